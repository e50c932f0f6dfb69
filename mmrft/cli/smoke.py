"""``mmrft smoke CONFIG [--shape S] [--steps N]``: estimate a config's memory, then run N steps and measure.

Prints the estimate (mmrft.training.memory) before anything is allocated, then runs N steps of
the config through the real GRPO trainer (no eval, no checkpoint) and prints the measured peak
memory, the step time split (generate / update / other), new tokens per second and the fraction
of trainable entries that moved. ``--shape qwen2_5_vl_3b`` trains a random-weight model of that
shape (``shape:`` in mmrft.policies.shapes) instead of the config's model: a real-size check
without the hub.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import resource
import tempfile
import time
from pathlib import Path

from mmrft.config import load_train_config


def add_parser(subparsers) -> argparse.ArgumentParser:
    parser = subparsers.add_parser("smoke", help="estimate a GRPO config's memory, run a few steps, measure")
    parser.add_argument("config", help="YAML config (see configs/)")
    parser.add_argument("overrides", nargs="*", help="key.sub=value overrides, e.g. optim.grad_accum=8")
    parser.add_argument("--shape", help="train a random-weight model of this shape (NAME or NAME/K; see mmrft.policies.shapes)")
    parser.add_argument("--steps", type=int, default=3, help="training steps to run (0: estimate only)")
    parser.add_argument("--out", help="also write the estimate and measurements to this JSON file")
    parser.add_argument("--output-dir", help="run directory (default: a temporary one, removed afterwards)")
    parser.set_defaults(func=run)
    return parser


def rss_bytes() -> int:
    """This process's resident memory now (Linux)."""
    pages = int(Path("/proc/self/statm").read_text().split()[1])
    return pages * resource.getpagesize()


def peak_rss_bytes() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux


def return_freed_memory() -> None:
    """Make glibc give every freed block over 128 KiB back to the system (a fixed mmap threshold),
    so that the process's RSS follows its live tensors. Otherwise glibc raises the threshold to 32 MB
    as blocks are freed and keeps freed heap memory (the vocabulary-sized log-prob chunks) resident,
    and peak RSS measures the allocator's cache, not the run (seen: 2.3 GB instead of 1.2 GB)."""
    try:
        ctypes.CDLL("libc.so.6").mallopt(-3, 128 * 1024)  # M_MMAP_THRESHOLD
    except (OSError, AttributeError):  # not glibc: RSS then includes the allocator's cache
        pass


def snapshot(params: list, folder: Path) -> None:
    """A CPU copy of ``params`` on disk, one file per tensor: the copy takes no process memory,
    and a full-size model is copied one tensor at a time."""
    import torch

    for i, p in enumerate(params):
        torch.save(p.detach().to("cpu", copy=True), folder / f"{i}.pt")


def moved_fraction(params: list, folder: Path) -> float:
    """Share of the entries of ``params`` that differ from the snapshot in ``folder``."""
    import torch

    moved = total = 0
    for i, p in enumerate(params):
        before = torch.load(folder / f"{i}.pt")
        moved += int((p.detach().cpu() != before).sum())
        total += before.numel()
    return moved / max(total, 1)


def run(args: argparse.Namespace) -> int:
    overrides = list(args.overrides)
    if args.shape:
        overrides.append(f"model.name_or_path=shape:{args.shape}")
    config = load_train_config(args.config, [*overrides, f"max_steps={max(args.steps, 1)}"])
    import torch

    from mmrft.policies.loading import resolve_model
    from mmrft.training.memory import estimate_memory, format_estimate
    from mmrft.training.trainer import prepare_data

    device = "cuda" if torch.cuda.is_available() else "cpu"
    estimate = estimate_memory(config, device)
    print(f"estimated memory ({device}, {config.model.name_or_path}):\n{format_estimate(estimate)}", flush=True)
    report = {"config": args.config, "model": config.model.name_or_path, "device": device, "estimate": estimate}
    if args.steps > 0:
        with tempfile.TemporaryDirectory(prefix="mmrft-smoke-") as tmp:
            config.output_dir = args.output_dir or str(Path(tmp) / "run")
            config.eval_before_after, config.report_to, config.progress_bar = False, [], False
            prepare_data(config)  # synthetic data and a shape: model are built before the baseline is taken
            resolve_model(config.model.name_or_path)
            report["measured"] = measure(config, args.steps, device, Path(tmp))
        measured = report["measured"]
        report["estimate_over_measured"] = estimate["peak"] / max(measured["peak_bytes"], 1)
        print(format_measured(measured, estimate["peak"]))
    if args.out:
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    return 0


def measure(config, steps: int, device: str, tmp: Path) -> dict:
    """Run ``steps`` GRPO steps of ``config``; peak memory, per-step times and tokens, fraction moved."""
    import torch

    from mmrft.training.grpo import GRPOTrainer

    if device == "cuda":
        torch.cuda.reset_peak_memory_stats()
        baseline = torch.cuda.memory_allocated()
    else:
        return_freed_memory()
        baseline = rss_bytes()
    trainer = GRPOTrainer(config)
    trainable = [p for p in trainer.model.parameters() if p.requires_grad]
    (tmp / "before").mkdir()
    snapshot(trainable, tmp / "before")
    records = []
    for _ in range(steps):
        t0 = time.perf_counter()
        metrics = trainer.train_step(trainer.stream.next_batch(config.batch_size))
        step_s = time.perf_counter() - t0
        trainer.step += 1
        trainer.apply_schedule()
        generated = metrics["completion_len/mean"] * config.batch_size * config.generation.num_generations * metrics["sampling/rounds"]
        generate_s, update_s = metrics["time/generate_s"], metrics["time/update_s"]
        records.append(
            {
                "step_s": step_s,
                "generate_s": generate_s,
                "update_s": update_s,
                "other_s": step_s - generate_s - update_s,
                "new_tokens": generated,
                "new_tokens_per_s": generated / max(generate_s, 1e-9),
                "loss": metrics.get("loss"),
            }
        )
        print(
            f"step {trainer.step}: {step_s:.2f} s (generate {generate_s:.2f}, update {update_s:.2f}, other "
            f"{step_s - generate_s - update_s:.2f}); {generated:.0f} new tokens, {generated / max(generate_s, 1e-9):.0f}/s",
            flush=True,
        )
    if device == "cuda":
        peak = torch.cuda.max_memory_allocated() - baseline
    else:
        peak = peak_rss_bytes() - baseline
    return {
        "peak_bytes": peak,
        "peak_method": "torch.cuda.max_memory_allocated" if device == "cuda" else "peak RSS growth over the RSS before the model was built",
        "steps": records,
        "moved_frac": moved_fraction(trainable, tmp / "before"),
        "trainable_params": sum(p.numel() for p in trainable),
    }


def format_measured(measured: dict, estimated_peak: int) -> str:
    steps = measured["steps"]
    later = steps[1:] or steps  # the first step includes warm-up (allocator, kernels)
    mean = {k: sum(s[k] for s in later) / len(later) for k in ("step_s", "generate_s", "update_s", "other_s", "new_tokens_per_s")}
    return (
        f"measured peak memory: {measured['peak_bytes'] / 1e9:.2f} GB ({measured['peak_method']}); "
        f"estimate {estimated_peak / 1e9:.2f} GB ({estimated_peak / max(measured['peak_bytes'], 1):.2f}x)\n"
        f"step time (mean of steps after the first): {mean['step_s']:.2f} s = generate {mean['generate_s']:.2f} + "
        f"update {mean['update_s']:.2f} + other {mean['other_s']:.2f}\n"
        f"new tokens per second (generation): {mean['new_tokens_per_s']:.0f}\n"
        f"trainable entries moved: {100 * measured['moved_frac']:.2f}% of {measured['trainable_params']:,}"
    )
