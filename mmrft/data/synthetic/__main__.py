"""Generate the train and heldout splits of a synthetic image or video task into one directory."""

import argparse
from collections.abc import Sequence

from mmrft.data.synthetic import ALL_TASKS, write_synthetic_split


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and write `OUT/train.jsonl`, `OUT/heldout.jsonl` and their media."""
    parser = argparse.ArgumentParser(prog="python -m mmrft.data.synthetic", description=__doc__)
    parser.add_argument("--task", required=True, choices=sorted(ALL_TASKS))
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--train", type=int, default=1000, help="number of train samples")
    parser.add_argument("--heldout", type=int, default=200, help="number of heldout samples")
    parser.add_argument("--seed", type=int, default=0, help="non-negative base seed")
    parser.add_argument("--image-size", type=int, default=112, help="square canvas (or frame) side in pixels")
    parser.add_argument("--train-shapes", type=int, nargs="+", help="video tasks: shapes per training clip, drawn from these")
    parser.add_argument("--train-start", type=int, default=0, help="video tasks: index of the first training clip")
    parser.add_argument("--video-first", action="store_true", help="video tasks: the video before the question")
    args = parser.parse_args(argv)
    if args.seed < 0:
        parser.error("--seed must be non-negative")
    video = {"question_first": False} if args.video_first else {}
    if args.train_shapes:
        video["train_shapes"] = args.train_shapes
    if args.train_start:
        video["train_start"] = args.train_start
    for split, n in (("train", args.train), ("heldout", args.heldout)):
        path = write_synthetic_split(args.task, split, args.out, n, seed=args.seed, size=args.image_size, **video)
        print(f"wrote {n} samples to {path}")


if __name__ == "__main__":
    main()
