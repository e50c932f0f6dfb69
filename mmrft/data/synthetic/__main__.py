"""Generate the train and heldout splits of a synthetic image or video task into one directory."""

import argparse
from collections.abc import Sequence

from mmrft.data.synthetic import ALL_TASKS, write_synthetic


def main(argv: Sequence[str] | None = None) -> None:
    """Parse the command line and write `OUT/train.jsonl`, `OUT/heldout.jsonl` (or .parquet) and their media."""
    parser = argparse.ArgumentParser(prog="python -m mmrft.data.synthetic", description=__doc__)
    parser.add_argument("--task", required=True, choices=sorted(ALL_TASKS))
    parser.add_argument("--out", required=True, help="output directory")
    parser.add_argument("--train", type=int, default=1000, help="number of train samples")
    parser.add_argument("--heldout", type=int, default=200, help="number of heldout samples")
    parser.add_argument("--seed", type=int, default=0, help="non-negative base seed")
    parser.add_argument("--image-size", type=int, default=112, help="square canvas (or frame) side in pixels")
    parser.add_argument("--train-shapes", type=int, nargs="+", help="video tasks: shapes per training clip, drawn from these")
    parser.add_argument("--train-start", type=int, default=0, help="video tasks: index of the first training clip")
    parser.add_argument(
        "--train-max-overlap", type=float, help="temporal grounding: most tIoU of two shapes' windows in a training clip"
    )
    parser.add_argument("--video-first", action="store_true", help="video tasks: the video before the question")
    parser.add_argument(
        "--format", choices=("jsonl", "parquet"), default="jsonl",
        help="jsonl: media files beside; parquet: OUT/{split}.parquet with the images embedded (videos stay files)",
    )
    args = parser.parse_args(argv)
    if args.seed < 0 or args.train_start < 0:
        parser.error("--seed and --train-start must be non-negative")
    spec = {"task": args.task, "train": args.train, "heldout": args.heldout, "seed": args.seed, "image_size": args.image_size}
    if args.train_shapes:
        spec["train_shapes"] = args.train_shapes
    if args.train_start:
        spec["train_start"] = args.train_start
    if args.train_max_overlap is not None:
        spec["train_max_overlap"] = args.train_max_overlap
    if args.video_first:
        spec["question_first"] = False
    if args.format != "jsonl":
        spec["format"] = args.format
    write_synthetic(args.out, spec)
    print(f"wrote {args.train} training and {args.heldout} held-out samples to {args.out}")


if __name__ == "__main__":
    main()
