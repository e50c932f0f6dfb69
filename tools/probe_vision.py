"""Linear probes on a tiny base's vision tower: can its features tell a shape's colour and its shape?

    python tools/probe_vision.py models/tiny-qwen2_5_vl-base models/tiny-qwen2_5_vl-video-base [--out probe_vision.json]

Takes the moving-shapes generator's one-shape clips (112 px; its training stream to fit, its
held-out stream to score), two frames 0.5 s apart from each (one temporal patch at 2 fps, as the
video demo samples), encodes them with the model's vision tower and merger,
pools the merged tokens (mean and max, so the probe does not depend on where the shape is), and
fits a logistic-regression probe per label on 600 clips, scored on 300 others. A probe near
chance means the language model never receives that property. Prints the held-out accuracies
and writes them to ``--out`` as JSON.
"""

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from mmrft.data.synthetic.moving_shapes import FPS, make_video_sample
from mmrft.data.synthetic.shapes import COLOURS, SHAPES
from mmrft.policies.loading import load_model_and_processor

FRAME = 112
STRIDE = FPS // 2  # generator frames between the two frames of a temporal patch at the demo's 2 fps


def clips(n: int, split: str) -> tuple[list[np.ndarray], dict[str, np.ndarray]]:
    """``n`` (2, H, W, 3) uint8 frame pairs of the generator's one-shape clips (its tracking task,
    where the shape is visible throughout), with the shape's colour and shape indices."""
    pairs, labels = [], {"colour": [], "shape": []}
    for index in range(n):
        sample, frames = make_video_sample("tracking", split, index, size=FRAME, shapes=(1,))
        (shape,) = sample["meta"]["shapes"]
        pairs.append(frames[: STRIDE * 2 : STRIDE])  # two frames 0.5 s apart: one temporal patch at 2 fps
        labels["colour"].append(list(COLOURS).index(shape["colour"]))
        labels["shape"].append(SHAPES.index(shape["shape"]))
    return pairs, {k: np.array(v) for k, v in labels.items()}


@torch.no_grad()
def features(model, processor, pairs: list[np.ndarray]) -> torch.Tensor:
    """(n, 2 * hidden): mean and max over each clip's merged vision tokens."""
    out = []
    for pair in pairs:
        video = torch.from_numpy(pair).permute(0, 3, 1, 2)
        inputs = processor.video_processor(
            videos=[video], return_tensors="pt", do_resize=False, cap_pixels_per_frame=True, do_sample_frames=False
        )  # 112 px frames, as the demo's 12,544-pixel budget sizes them
        encoded = model.model.get_video_features(inputs["pixel_values_videos"], inputs["video_grid_thw"], return_dict=True)
        tokens = encoded.pooler_output[0]  # (merged tokens, hidden): what the language model receives
        out.append(torch.cat([tokens.mean(0), tokens.max(0).values]))
    return torch.stack(out).float()


def probe(x_train, y_train, x_test, y_test, classes: int, steps: int = 500) -> float:
    """Held-out accuracy of an L2-regularised logistic regression (standardised features, L-BFGS)."""
    mean, std = x_train.mean(0), x_train.std(0) + 1e-6
    x_train, x_test = (x_train - mean) / std, (x_test - mean) / std
    linear = torch.nn.Linear(x_train.shape[1], classes)
    optim = torch.optim.LBFGS(linear.parameters(), max_iter=steps)
    y = torch.as_tensor(y_train)

    def closure():
        optim.zero_grad()
        loss = torch.nn.functional.cross_entropy(linear(x_train), y) + 1e-3 * linear.weight.square().sum()
        loss.backward()
        return loss

    optim.step(closure)
    return float((linear(x_test).argmax(1).numpy() == y_test).mean())


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="+")
    parser.add_argument("--train", type=int, default=600)
    parser.add_argument("--test", type=int, default=300)
    parser.add_argument("--out", default="probe_vision.json")
    args = parser.parse_args(argv)
    torch.manual_seed(0)
    train_clips, train_labels = clips(args.train, "train")
    test_clips, test_labels = clips(args.test, "heldout")
    chance = {"colour": 1 / len(COLOURS), "shape": 1 / len(SHAPES)}
    report = {"train_clips": args.train, "test_clips": args.test, "chance": chance, "models": {}}
    print(f"chance: colour {chance['colour']:.3f}, shape {chance['shape']:.3f}")
    for path in args.models:
        model, processor = load_model_and_processor(path)
        model.eval()
        x_train, x_test = features(model, processor, train_clips), features(model, processor, test_clips)
        scores = {
            label: probe(x_train, train_labels[label], x_test, test_labels[label], n)
            for label, n in (("colour", len(COLOURS)), ("shape", len(SHAPES)))
        }
        report["models"][path] = {**scores, "features": x_train.shape[1]}
        print(f"{path}: colour {scores['colour']:.3f}, shape {scores['shape']:.3f} (held-out clips, {x_train.shape[1]} features)")
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
