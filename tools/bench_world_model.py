"""World-model environment throughput, and a world-model chunk against the policies' forward passes.

    python tools/bench_world_model.py [--world-model DIR] [--repeats 5]

For 1, 64 and 256 parallel environments: simulator steps per second of the world-model
environment (each `step` advances every environment one action chunk of 5 steps: one batched
ensemble forward plus the verifiers' collision, off-road and goal checks), and, on the same batch
of states, the time of one world-model chunk against one forward pass of (a) the Gaussian
trajectory head and (b) a tiny Qwen2.5-VL reading the rendered frame and the instruction (the
shipped base model, 56 px frames). Ratios are measured in the same run. The world model is a
trained one if --world-model names a checkpoint, else a freshly initialised one of the same
size (the cost does not depend on the weights). Writes bench_world_model.json.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
SIZES = (1, 64, 256)


def timed(fn, repeats: int) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def vlm_forward(n: int, frames: np.ndarray, lanes: np.ndarray):
    """A closure running the tiny Qwen2.5-VL's forward on n frames + instructions (prefill only)."""
    from PIL import Image
    from transformers import AutoModelForImageTextToText, AutoProcessor

    from mmrft.envs.driving import instruction

    path = ROOT / "models" / "tiny-qwen2_5_vl-base"
    model = AutoModelForImageTextToText.from_pretrained(path).eval()
    processor = AutoProcessor.from_pretrained(path)
    texts, images = [], []
    for i in range(n):
        messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": instruction(lanes[i])}]}]
        texts.append(processor.apply_chat_template(messages, add_generation_prompt=True))
        images.append(Image.fromarray(frames[i]))
    batch = processor(text=texts, images=images, return_tensors="pt", padding=True)

    def run():
        with torch.no_grad():
            model(**batch)

    return run


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world-model", help="a world_model run's checkpoint directory")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", default="bench_world_model.json")
    args = parser.parse_args()
    from mmrft.envs.render import render
    from mmrft.envs.world_model import WorldModel
    from mmrft.envs.world_model_env import WorldModelVectorEnv
    from mmrft.policies.action import GaussianTrajectoryPolicy, state_features

    torch.manual_seed(0)
    model = WorldModel.from_pretrained(args.world_model) if args.world_model else WorldModel(5)
    policy = GaussianTrajectoryPolicy(model.chunk)
    rows, results = [], {}
    for n in SIZES:
        env = WorldModelVectorEnv(n, model)
        obs, _ = env.reset(seed=0, options={"split": "heldout", "indices": range(n)})
        actions = np.zeros((n, model.chunk, 2))
        actions[..., 0] = 0.1

        chunk_times = []
        for _ in range(args.repeats + 1):  # each chunk from fresh initial states; the reset is not timed
            env.reset(seed=0, options={"split": "heldout", "indices": range(n)})
            start = time.perf_counter()
            env.step(actions)
            chunk_times.append(time.perf_counter() - start)
        chunk_s = statistics.median(chunk_times[1:])
        feats = torch.as_tensor(state_features(obs))
        head_s = timed(lambda feats=feats: policy(feats), args.repeats)
        vlm_s = timed(vlm_forward(n, render(obs["ego"], obs["obstacles"]), obs["lane"][:, 0]), max(1, args.repeats // 2))
        results[n] = {
            "sim_steps_per_s": n * model.chunk / chunk_s,
            "chunk_s": chunk_s,
            "gaussian_head_forward_s": head_s,
            "vlm_forward_s": vlm_s,
        }
        rows.append(
            f"| {n} | {n * model.chunk / chunk_s:,.0f} | {chunk_s * 1e3:.2f} | {head_s * 1e3:.3f} | {vlm_s * 1e3:.1f} | "
            f"{vlm_s / chunk_s:.1f}x |"
        )
    print("| envs | sim steps/s | world-model chunk (ms) | Gaussian head forward (ms) | tiny Qwen2.5-VL forward (ms) | VLM forward / chunk |")
    print("|---|---|---|---|---|---|")
    print("\n".join(rows))
    Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
