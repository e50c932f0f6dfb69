"""Video GRPO step cost against frames per video: step time, peak memory, decodes and encodes per step.

    python tools/bench_video.py                 # 4, 8 and 16 frames, 6 steps each
    python tools/bench_video.py --frames 4 8 --steps 4

Each frame count runs in its own process (so peak memory is its own): a tiny Qwen2.5-VL, GRPO on
synthetic temporal grounding (moving shapes, 112 px frames), 2 prompts x G=4 with the same
video twice per batch, 16 new tokens. Reports the median step time, the peak resident memory
added by training over the loaded model (ru_maxrss), and per step the video decodes and
vision-tower encodes (one each per unique video is the target). Writes bench_video.json.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def worker(frames: int, steps: int, out: Path) -> None:
    import mmrft.policies.inputs as inputs
    from mmrft.config import TrainConfig, from_dict
    from mmrft.data.synthetic import write_synthetic_split
    from mmrft.training import GRPOTrainer

    work = Path(tempfile.mkdtemp(prefix="bench_video_"))
    train = write_synthetic_split("temporal_grounding", "train", work / "data", n=8, seed=0)
    # every prompt twice in a row: two groups share one video, which must be decoded and encoded once
    lines = train.read_text().splitlines()
    train.write_text("".join(f"{line}\n{line}\n" for line in lines))
    config = from_dict(
        TrainConfig,
        {
            "model": {"name_or_path": "tiny:qwen2_5_vl"},
            "data": {"train": str(train), "shuffle": False},
            "video": {"nframes": frames, "min_pixels": 16 * 28 * 28, "max_pixels": 16 * 28 * 28},
            "generation": {"num_generations": 4, "max_new_tokens": 16},
            "rewards": [{"name": "temporal_iou"}],
            "batch_size": 2,
            "max_steps": steps,
            "save_every": 10_000,
            "eval_before_after": False,
            "progress_bar": False,
            "output_dir": str(work / "run"),
        },
    )
    decodes = []
    real = inputs.decode_video
    inputs.decode_video = lambda *a, **k: decodes.append(a[0]) or real(*a, **k)
    trainer = GRPOTrainer(config)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    trainer.train()
    after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    rows = [json.loads(line) for line in (work / "run" / "metrics.jsonl").read_text().splitlines()]
    times = [r["time/step_s"] for r in rows[1:]]  # the first step warms up
    out.write_text(
        json.dumps(
            {
                "frames": frames,
                "step_s_median": statistics.median(times),
                "peak_rss_mb": after / 1024,
                "train_rss_added_mb": (after - before) / 1024,
                "decodes_per_step": len(decodes) / len(rows),
                "encodes_per_step": statistics.mean(r["vision/encodes"] for r in rows),
                "unique_videos_per_step": 1,
            }
        )
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, nargs="+", default=[4, 8, 16])
    parser.add_argument("--steps", type=int, default=6)
    parser.add_argument("--out", default="bench_video.json")
    parser.add_argument("--worker", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--result", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker is not None:
        return worker(args.worker, args.steps, Path(args.result))
    results = []
    for frames in args.frames:
        with tempfile.NamedTemporaryFile(suffix=".json", delete=False) as f:
            result = Path(f.name)
        env = {**os.environ, "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}
        subprocess.run(
            [sys.executable, __file__, "--worker", str(frames), "--steps", str(args.steps), "--result", str(result)],
            cwd=ROOT, env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )
        results.append(json.loads(result.read_text()))
    base = results[0]
    print("| frames | step s (median) | x vs first | peak RSS MB | added by training MB | decodes/step | encodes/step |")
    print("|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r['frames']} | {r['step_s_median']:.3f} | {r['step_s_median'] / base['step_s_median']:.2f} | "
            f"{r['peak_rss_mb']:.0f} | {r['train_rss_added_mb']:.0f} | {r['decodes_per_step']:.1f} | {r['encodes_per_step']:.1f} |"
        )
    Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    sys.exit(main())
