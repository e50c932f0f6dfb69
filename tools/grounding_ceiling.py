"""What a prompt-blind answer can score on synthetic temporal grounding: the ceilings a model
reaches without telling the asked shape from the others.

    python tools/grounding_ceiling.py ~/.cache/mmrft/data/moving_shapes_tg/heldout.jsonl [--out grounding_ceiling.json]

Each clip lists every shape's window (`meta.shapes`). For each clip the script scores, against
the asked shape's window:
- `union`: the span from the first shape's appearance to the last one's disappearance;
- `random shape`: an exact window of a shape picked at random (the mean over the shapes);
- `blind hedge @ r s`: the one window (on the clip's 0.25 s grid) with the highest mean tIoU over
  all shapes' windows, when those windows are seen rounded to r seconds. A model that sees
  frames at f fps through a temporal patch of 2 frames resolves r = 2 / f seconds.
- `bound @ r s`: the asked shape's own window rounded to r seconds (perfect grounding).
Prints mIoU and R1@0.5 for each and writes them to ``--out`` as JSON.
"""

import argparse
import json
from pathlib import Path

from mmrft.rewards.temporal import temporal_iou as tiou

GRID = [i / 4 for i in range(33)]  # the clips' 0.25 s frame grid over 8 s


def rounded(window, step: float) -> tuple[float, float]:
    return (round(window[0] / step) * step, round(window[1] / step) * step)


def best_hedge(windows) -> tuple[float, float]:
    return max(((a, b) for a in GRID for b in GRID if b > a), key=lambda w: sum(tiou(w, x) for x in windows))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("split", help="a synthetic temporal_grounding JSONL")
    parser.add_argument("--limit", type=int, default=200)
    parser.add_argument("--out", default="grounding_ceiling.json")
    args = parser.parse_args(argv)
    samples = [json.loads(line) for line in open(args.split)][: args.limit]
    rows: dict[str, list[float]] = {}
    for sample in samples:
        target = tuple(sample["solution"])
        windows = [(s["on_s"], s["off_s"]) for s in sample["meta"]["shapes"]]
        answers = {"union": [(min(w[0] for w in windows), max(w[1] for w in windows))], "random shape": windows}
        for step in (0.25, 0.5, 1.0):
            answers[f"blind hedge @ {step:g} s"] = [best_hedge([rounded(w, step) for w in windows])]
            answers[f"bound @ {step:g} s"] = [rounded(target, step)]
        for name, candidates in answers.items():
            rows.setdefault(name, []).extend(tiou(c, target) for c in candidates)
    scores = {
        name: {"miou": sum(ious) / len(ious), "r1@0.5": sum(i >= 0.5 for i in ious) / len(ious)} for name, ious in rows.items()
    }
    Path(args.out).write_text(json.dumps({"split": args.split, "n": len(samples), "answers": scores}, indent=2) + "\n")
    print(f"{args.split} (n={len(samples)})\n\n| answer | mIoU | R1@0.5 |\n|---|---|---|")
    for name, score in scores.items():
        print(f"| {name} | {score['miou']:.3f} | {score['r1@0.5']:.3f} |")


if __name__ == "__main__":
    main()
