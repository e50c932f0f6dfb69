"""Peak memory of GRPO steps at the tiny base's own vocabulary and at Qwen's real one (151,936).

    python tools/bench_logprob_memory.py              # 2 steps each, writes bench_logprob_memory.json
    python tools/bench_logprob_memory.py --steps 3

The shipped tiny Qwen2.5-VL base, once as shipped and once with its embeddings and output head
resized to 151,936 tokens (``resize_token_embeddings``), runs the demo's GRPO shape (4 prompts x
G=8, 24 new tokens) for a few steps, each in its own process. The peak is the process's peak
resident memory (ru_maxrss) over its resident memory before the model is loaded, with glibc made
to return freed blocks over 128 KiB (as `mmrft smoke` does), so that it follows live tensors. The extra peak
of the real vocabulary is the comparison: its parameters, gradients and AdamW state alone are
about 0.62 GB; the rest is what log-probs and entropies cost (issue 27: at most 1.0 GB in all).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
BASE = ROOT / "models" / "tiny-qwen2_5_vl-base"
REAL_VOCAB = 151_936


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * resource.getpagesize()


def resized_base(vocab: int, out: Path) -> Path:
    """The base with its embeddings and output head resized to ``vocab`` tokens, saved in ``out``."""
    from transformers import AutoModelForImageTextToText, AutoProcessor

    model = AutoModelForImageTextToText.from_pretrained(BASE)
    model.resize_token_embeddings(vocab, mean_resizing=False)
    model.save_pretrained(out)
    AutoProcessor.from_pretrained(BASE).save_pretrained(out)
    return out


def worker(model_dir: Path, steps: int) -> dict:
    """Run ``steps`` GRPO steps on the model in ``model_dir``; peak RSS growth over loading it."""
    import torch

    from mmrft.cli.smoke import return_freed_memory
    from mmrft.config import TrainConfig, from_dict
    from mmrft.data.synthetic.shapes import write_split
    from mmrft.training.grpo import GRPOTrainer

    torch.set_num_threads(1)
    return_freed_memory()  # RSS then follows live tensors, not glibc's cache of freed chunks
    work = Path(tempfile.mkdtemp(prefix="bench_logprob_memory_"))
    train = write_split("grounding", "train", work / "data", n=16, seed=0)
    config = from_dict(TrainConfig, {
        "model": {"name_or_path": str(model_dir)},
        "data": {"train": str(train)},
        "generation": {"num_generations": 8, "max_new_tokens": 24},
        "rewards": [{"name": "box_iou"}, {"name": "format_nothink", "weight": 0.1, "task": False}],
        "optim": {"lr": 1e-4},
        "batch_size": 4, "max_steps": steps, "eval_before_after": False, "progress_bar": False,
        "save_every": 10_000, "output_dir": str(work / "run"),
    })
    before = rss_bytes()
    trainer = GRPOTrainer(config)
    trainer.train()
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    vocab_size = trainer.model.get_output_embeddings().weight.shape[0]
    return {"vocab": vocab_size, "peak_gb": (peak - before) / 1e9, "steps": steps}


def measure(steps: int = 2) -> dict:
    """Both runs, each in a fresh process; the second's extra peak over the first."""
    runs = []
    resized = resized_base(REAL_VOCAB, Path(tempfile.mkdtemp(prefix="bench_logprob_memory_model_")))
    for model_dir in (BASE, resized):
        args = [sys.executable, __file__, "--worker", str(model_dir), "--steps", str(steps)]
        done = subprocess.run(args, capture_output=True, text=True, check=True, env={**os.environ, "OMP_NUM_THREADS": "1"})
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    return {"native": runs[0], "real_vocab": runs[1], "extra_peak_gb": runs[1]["peak_gb"] - runs[0]["peak_gb"]}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=2)
    parser.add_argument("--worker", type=Path, default=None, help=argparse.SUPPRESS)
    parser.add_argument("--out", default="bench_logprob_memory.json")
    args = parser.parse_args(argv)
    if args.worker:
        print(json.dumps(worker(args.worker, args.steps)))
        return
    result = measure(args.steps)
    for name in ("native", "real_vocab"):
        run = result[name]
        print(f"vocabulary {run['vocab']:>7,}: peak {run['peak_gb']:.2f} GB over the process before loading")
    print(f"extra peak of the real vocabulary: {result['extra_peak_gb']:.2f} GB (target <= 1.0)")
    Path(args.out).write_text(json.dumps(result, indent=2) + "\n")


if __name__ == "__main__":
    main()
