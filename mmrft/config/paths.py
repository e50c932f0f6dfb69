"""Where mmrft keeps what it builds or generates on demand: tiny models and synthetic data.

Both live under one cache root, ``$MMRFT_CACHE`` (default ``~/.cache/mmrft``): tiny models in
``models/``, synthetic data at its config path below the root (``data/shapes_grounding/...``).
A config's ``data.root`` moves the data elsewhere; nothing is generated in the current
directory unless a config says so.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

CACHE_ENV = "MMRFT_CACHE"
SCHEME = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]+:")  # hf:..., s3://...; two letters at least (not C:)


def cache_root() -> Path:
    """``$MMRFT_CACHE``, else ``~/.cache/mmrft``."""
    return Path(os.environ.get(CACHE_ENV) or Path.home() / ".cache" / "mmrft").expanduser()


def resolve_data_path(path: str, root: str | None, generated: bool) -> str:
    """Where a data path in a config points.

    Absolute paths and references with a scheme (``hf:org/name:split``) stay. A relative path is
    joined to ``root`` when given; otherwise data that mmrft generates when it is missing
    (``generated``) lives under :func:`cache_root`, and a user's own files are read relative to the
    current directory, like any path on the command line.
    """
    if not path or SCHEME.match(path):
        return path
    if Path(path).expanduser().is_absolute():
        return str(Path(path).expanduser())
    if root is not None:
        return str(Path(root).expanduser().absolute() / path)
    return str(cache_root() / path) if generated else path
