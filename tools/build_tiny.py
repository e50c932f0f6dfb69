"""Build a tiny random Qwen-VL model (real transformers classes) into a directory.

    python tools/build_tiny.py --arch qwen2_5_vl --out models/tiny-qwen2_5_vl --seed 0
"""

import argparse

from mmrft.policies.tiny import ARCHS, build_tiny_model


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--arch", choices=sorted(ARCHS), default="qwen2_5_vl")
    parser.add_argument("--out", required=True)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    print(build_tiny_model(args.arch, args.out, seed=args.seed))


if __name__ == "__main__":
    main()
