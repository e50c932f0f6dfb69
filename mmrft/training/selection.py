"""Offline difficulty selection from the model's own pass rates (ThinkLite-VL's idea, Wang et al. 2025).

Sample K completions per training prompt, call a prompt's pass rate the share of completions
whose task reward reaches a threshold, and keep the prompts that are hard but solvable. The
kept samples carry ``meta.pass_rate`` and ``meta.difficulty = 1 - pass_rate``, so a curriculum
(``data.curriculum``) can order them.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import torch

from mmrft.config import TrainConfig
from mmrft.data.errors import SampleError
from mmrft.data.jsonl import JsonlDataset, relative_media_paths
from mmrft.data.validate import check_sample
from mmrft.policies.loading import load_policy
from mmrft.rewards import reward_spec
from mmrft.training.grpo import score_completions

log = logging.getLogger(__name__)


def select_by_pass_rate(
    config: TrainConfig,
    out: str | Path,
    samples_per_prompt: int = 8,
    threshold: float = 0.5,
    min_pass: float = 0.0,
    max_pass: float = 1.0,
    limit: int | None = None,
    batch_size: int = 8,
) -> dict:
    """Write the training samples whose pass rate lies in [min_pass, max_pass] to ``out``.

    Uses the config's model, task rewards (``task: true``), generation settings and seed.
    Broken samples are skipped and counted. Returns counts and the pass-rate histogram.
    """
    policy = load_policy(config.model, config.video)
    policy.model.eval()
    rewards = [(r, reward_spec(r.name)) for r in config.rewards if r.task]
    if not rewards:
        raise ValueError("select: the config has no task reward (rewards with task: true)")
    dataset = JsonlDataset(config.data.train)
    n = len(dataset) if limit is None else min(limit, len(dataset))
    gen, generator = config.generation, torch.Generator().manual_seed(config.seed)
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    counts = {"seen": 0, "kept": 0, "skipped": 0, "pass_rates": [0] * (samples_per_prompt + 1)}
    with open(out, "w", encoding="utf-8") as f:
        for start in range(0, n, batch_size):
            samples = []
            for i in range(start, min(start + batch_size, n)):
                try:
                    sample = dataset[i]
                    check_sample(sample)
                except SampleError as err:
                    log.warning("skipping %s", err)
                    counts["skipped"] += 1
                    continue
                samples.append(sample)
            if not samples:
                continue
            batch = policy.prompts(samples)
            with torch.no_grad():
                rollout = policy.sample(batch, samples_per_prompt, gen.max_new_tokens, gen.temperature, gen.top_p, generator=generator)
            _, task, _, _ = score_completions(rewards, samples, batch, rollout, policy.coord_convention)
            for p, sample in enumerate(samples):
                passed = int((task[rollout.rows_of([p])].nan_to_num(0.0) >= threshold).sum())
                rate = passed / samples_per_prompt
                counts["seen"] += 1
                counts["pass_rates"][passed] += 1
                if min_pass <= rate <= max_pass:
                    sample.setdefault("meta", {}).update(pass_rate=rate, difficulty=1.0 - rate)
                    f.write(json.dumps(relative_media_paths(sample, out.parent.resolve())) + "\n")
                    counts["kept"] += 1
    return counts
