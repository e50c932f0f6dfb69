"""tools/probe_vision.py: the probe separates what is separable, and reads a real tower's tokens."""

import sys
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools"))
from probe_vision import FRAME, clips, features, probe  # noqa: E402


def test_the_probe_scores_separable_labels_high_and_random_ones_near_chance():
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 3, (400,), generator=generator)
    centres = torch.randn(3, 16, generator=generator) * 3
    x = centres[labels] + torch.randn(400, 16, generator=generator)
    y = labels.numpy()
    assert probe(x[:300], y[:300], x[300:], y[300:], 3) > 0.95
    shuffled = np.random.default_rng(0).permutation(y)
    assert probe(x[:300], shuffled[:300], x[300:], shuffled[300:], 3) < 0.55


def test_clips_and_features_of_the_shipped_base():
    from mmrft.policies.loading import load_model_and_processor

    pairs, labels = clips(3, "train")
    assert [p.shape for p in pairs] == [(2, FRAME, FRAME, 3)] * 3 and set(labels) == {"colour", "shape"}
    assert not np.array_equal(pairs[0][0], pairs[0][1])  # the shape moved between the two frames
    model, processor = load_model_and_processor(str(Path(__file__).resolve().parents[2] / "models/tiny-qwen2_5_vl-base"))
    x = features(model, processor, pairs)
    assert x.shape == (3, 2 * model.config.text_config.hidden_size) and torch.isfinite(x).all()
