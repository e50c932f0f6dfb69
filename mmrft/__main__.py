"""``python -m mmrft`` (what ``accelerate launch -m mmrft train CONFIG`` runs in each process)."""

import sys

from mmrft.cli import main

sys.exit(main())
