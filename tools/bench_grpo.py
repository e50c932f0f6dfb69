"""GRPO step time, side by side: mmrft's GRPOTrainer, an unshared mmrft baseline, and TRL 1.16's GRPOTrainer.

One step, on every side: 4 prompts x G=8 completions of exactly 32 tokens (the stop tokens are
suppressed like the vision specials, so no side stops early), box-IoU + format rewards (temporal
IoU + format for video), no reference model (beta=0), one AdamW update, float32 on CPU. Every
side loads the same tiny Qwen2.5-VL, built here by :func:`mmrft.policies.tiny.build_tiny_model`
with a processor budget of 224 x 224 px, so 224 px images reach the vision tower unscaled.
Configs: 112 px images, 224 px images, an 8-frame 112 px video. Columns:

- mmrft: ``GRPOTrainer.train_step`` (one prefill per prompt in generation and in the training
  forward, its KV cache shared by the prompt's completions; each visual encoded once in each).
- unshared: the same trainer with :class:`UnsharedPolicy`, which does what TRL does: each prompt
  is repeated G times and run per completion, and every row's visuals are encoded separately,
  in generation and in the training forward.
- trl: one optimizer step of ``trl.GRPOTrainer`` (generation, rewards, forward/backward, clip,
  AdamW), timed by a callback in TRL's own training loop. After each TRL step the callback runs
  one mmrft and one unshared step, so the sides alternate under the same machine load. TRL 1.16
  has no video path (its GRPOTrainer reads only "image"/"images" columns and its training forward
  takes no ``pixel_values_videos``): the video row's ratio is against the unshared baseline.

Per step it records wall time, images/videos run through the vision tower and their patches (a
forward hook on ``model.model.visual`` counting ``grid_thw`` rows; mmrft's own ``vision/encodes``
alongside), mean completion length, and for the mmrft sides the overhead share
``1 - (time/generate_s + time/update_s) / step time`` (everything outside sampling and the
updates' forward/backward), and within it the prepare share (``time/prepare_s``: media loading,
video decoding, processor). After ``--warmup`` discarded steps it
prints per config the medians over ``--rounds`` steps and the ratio mmrft / baseline (TRL, or
unshared for video), and writes them to ``--out`` as JSON. Timings drift with machine load;
compare the ratios, which are measured in the same run.

    OMP_NUM_THREADS=1 python tools/bench_grpo.py [--rounds N] [--configs 112 224 video] [--out bench_grpo.json]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import torch
from PIL import Image
from transformers import PrinterCallback, TrainerCallback
from transformers.utils import logging as hf_logging

from mmrft.config import TrainConfig
from mmrft.config.schema import DataConfig, GenerationConfig, ModelConfig, OptimConfig, RewardConfig, VideoConfig
from mmrft.data.synthetic import write_synthetic_split
from mmrft.policies.inputs import PromptBatch, VisualBank, select_prompts
from mmrft.policies.loading import load_model_and_processor
from mmrft.policies.qwen_vl import QwenVLPolicy
from mmrft.policies.tiny import TinySize, build_tiny_model
from mmrft.rewards import get_reward
from mmrft.training.grpo import GRPOTrainer

PROMPTS, G, NEW_TOKENS, FRAMES, LR = 4, 8, 32, 8, 1e-4
TRL_VERSION = "1.16."
NO_TRL_VIDEO = "no video path in TRL 1.16"


@dataclass(frozen=True)
class BenchConfig:
    task: str  # mmrft.data.synthetic task
    size: int  # image or frame side, px
    reward: str  # the task reward (plus format_nothink at weight 0.1)
    target: float  # acceptance bar: mmrft median / baseline median at most this
    video: bool = False


CONFIGS = {
    "112": BenchConfig("grounding", 112, "box_iou", 0.7),
    "224": BenchConfig("grounding", 224, "box_iou", 0.5),
    "video": BenchConfig("temporal_grounding", 112, "temporal_iou", 0.5, video=True),
}


def require_trl():
    try:
        import trl
    except ImportError:
        sys.exit("tools/bench_grpo.py needs trl 1.16: pip install -e '.[dev]'  (or: pip install 'trl==1.16.*')")
    if not trl.__version__.startswith(TRL_VERSION):
        sys.exit(f"tools/bench_grpo.py needs trl 1.16, found {trl.__version__}: pip install 'trl==1.16.*'")
    return trl


class EncodeCounter:
    """Counts the images and videos a model's vision tower encodes (``grid_thw`` rows) and their patches."""

    def __init__(self, model):
        self.count = self.patches = 0
        model.model.visual.register_forward_hook(self._hook, with_kwargs=True)

    def _hook(self, module, args, kwargs, output) -> None:
        grid = kwargs["grid_thw"] if "grid_thw" in kwargs else args[1]
        self.count += len(grid)
        self.patches += int(grid.prod(-1).sum())

    def reset(self) -> dict:
        """The counts since the last reset (patches per visual: 64 at 112 px, 256 at 224 px)."""
        counts = {"encodes": self.count, "patches_per_visual": self.patches / max(self.count, 1)}
        self.count = self.patches = 0
        return counts


def _own_copies(bank: VisualBank, index: list[list[int]]) -> tuple[VisualBank, list[list[int]]]:
    own = VisualBank()
    keys = [[own.add(f"{bank.keys[i]}#{row}", bank.pixel_values[i], bank.grid_thw[i], bank.seconds_per_grid[i]) for i in indices]
            for row, indices in enumerate(index)]
    return own, keys


def one_visual_per_row(batch: PromptBatch, rows: list[int]) -> PromptBatch:
    """Prompts ``rows`` of ``batch`` as a batch in which every row holds its own copy of its visuals."""
    out = select_prompts(batch, rows)
    out.visuals, out.visual_index = _own_copies(batch.visuals, [batch.visual_index[p] for p in rows])
    out.videos, out.video_index = _own_copies(batch.videos, [batch.video_index[p] for p in rows])
    return out


class UnsharedPolicy(QwenVLPolicy):
    """TRL's layout: every completion is its own prompt row, prefilled and vision-encoded separately."""

    def sample(self, batch: PromptBatch, num_samples: int = 1, *args, **kwargs):
        rows = torch.arange(len(batch)).repeat_interleave(num_samples)
        rollout = super().sample(select_prompts(batch, rows.tolist()), 1, *args, **kwargs)
        rollout.prompt_index = rows
        return rollout

    def _encode(self, batch: PromptBatch, prompt_rows: list[int], model=None):
        return super()._encode(one_visual_per_row(batch, prompt_rows), list(range(len(prompt_rows))), model)

    def _shared_prefix_scores(self, *args):
        return self._full_scores(*args)  # the training forward runs the prompt again for every completion


def force_full_length(policy: QwenVLPolicy) -> None:
    """Suppress the stop tokens as well, so every completion is exactly max_new_tokens long."""
    policy.suppressed_ids = torch.cat([policy.suppressed_ids, policy.stop_ids])
    policy.stop_ids = policy.stop_ids[:0]


def mmrft_trainer(model_dir: Path, train: Path, spec: BenchConfig, out: Path, unshared: bool) -> GRPOTrainer:
    pixels = spec.size * spec.size
    config = TrainConfig(
        model=ModelConfig(name_or_path=str(model_dir), image_min_pixels=pixels, image_max_pixels=pixels),
        data=DataConfig(train=str(train)),
        video=VideoConfig(fps=None, nframes=FRAMES, min_pixels=pixels, max_pixels=pixels),
        generation=GenerationConfig(num_generations=G, max_new_tokens=NEW_TOKENS, temperature=1.0, top_p=1.0),
        rewards=[RewardConfig(name=spec.reward), RewardConfig(name="format_nothink", weight=0.1, task=False)],
        optim=OptimConfig(lr=LR),
        batch_size=PROMPTS,
        output_dir=str(out),
        progress_bar=False,
        eval_before_after=False,
        rollouts_every=10**9,
    )
    config.validate()
    trainer = GRPOTrainer(config)
    if unshared:
        trainer.policy.__class__ = UnsharedPolicy  # same model, processor and options; only the layout differs
    force_full_length(trainer.policy)
    return trainer


class MmrftSide:
    """One mmrft trainer stepped by hand; records one dict per step."""

    def __init__(self, trainer: GRPOTrainer):
        self.trainer, self.counter, self.steps = trainer, EncodeCounter(trainer.model), []

    def step(self) -> None:
        trainer = self.trainer
        samples = trainer.stream.next_batch(trainer.config.batch_size)
        self.counter.reset()
        t0 = time.perf_counter()
        metrics = trainer.train_step(samples)
        seconds = time.perf_counter() - t0
        trainer.step += 1
        self.steps.append({
            "seconds": seconds,
            **self.counter.reset(),
            "encodes_reported": metrics["vision/encodes"],
            "completion_len": metrics["completion_len/mean"],
            "overhead_share": 1 - (metrics["time/generate_s"] + metrics["time/update_s"]) / seconds,
            "prepare_share": metrics["time/prepare_s"] / seconds,
            **{key: metrics[f"time/{key}"] for key in ("prepare_s", "generate_s", "reward_s", "update_s")},
        })


def trl_trainer(trl, model_dir: Path, samples: list[dict], spec: BenchConfig, suppressed: list[int], steps: int, out: Path):
    """TRL's GRPOTrainer set up as mmrft's side: same model, prompts, rewards, sampling and update."""
    import datasets

    model, processor = load_model_and_processor(str(model_dir))
    rows = []
    for sample in samples:
        content = sample["messages"][0]["content"]
        rows.append({
            "prompt": [{"role": "user", "content": next(c["text"] for c in content if c["type"] == "text")}],
            "image": Image.open(next(c["image"] for c in content if c["type"] == "image")).convert("RGB"),
            "solution": sample["solution"],
            "image_size": sample["image_size"],
            "input_size": [spec.size, spec.size],
            "coord_convention": "input_pixels",  # Qwen2.5-VL's, as mmrft's policy uses
        })
    args = trl.GRPOConfig(
        output_dir=str(out), per_device_train_batch_size=PROMPTS * G, num_generations=G,
        max_completion_length=NEW_TOKENS, temperature=1.0, top_p=1.0, beta=0.0, learning_rate=LR,
        reward_weights=[1.0, 0.1], max_steps=steps, seed=0,
        generation_kwargs={"suppress_tokens": suppressed},  # mmrft's suppressed set, stop tokens included
        activation_checkpointing=False, bf16=False, use_cpu=True,  # TRL defaults both on; mmrft has neither
        report_to=[], logging_strategy="no", save_strategy="no", disable_tqdm=True,
    )
    return trl.GRPOTrainer(
        model=model, reward_funcs=[get_reward(spec.reward), get_reward("format_nothink")], args=args,
        train_dataset=datasets.Dataset.from_list(rows), processing_class=processor,
    )


def alternate_with_trl(trainer, sides: list[MmrftSide]) -> list[dict]:
    """Run TRL's training loop; time each of its steps, then step every mmrft side once."""
    counter, steps = EncodeCounter(trainer.model), []

    class Alternate(TrainerCallback):
        def on_step_begin(self, args, state, control, **kwargs):
            counter.reset()
            self.t0 = time.perf_counter()

        def on_step_end(self, args, state, control, **kwargs):
            steps.append({
                "seconds": time.perf_counter() - self.t0,
                **counter.reset(),
                "completion_len": trainer._metrics["train"]["completions/mean_length"][-1],
            })
            for side in sides:
                side.step()

    trainer.add_callback(Alternate())
    trainer.remove_callback(PrinterCallback)  # it prints TRL's end-of-training log
    trainer.train()
    return steps


# Per-step record key -> summary key; each summary value is the median over the timed steps.
SUMMARY_KEYS = {
    "seconds": "median_s",
    "encodes": "encodes_per_step",
    "encodes_reported": "mmrft_vision_encodes_metric",
    "patches_per_visual": "patches_per_visual",
    "completion_len": "completion_len",
    "overhead_share": "overhead_share",
    "prepare_share": "prepare_share",
    "generate_s": "generate_s",
    "reward_s": "reward_s",
    "update_s": "update_s",
}


def summarize(steps: list[dict]) -> dict:
    summary = {name: statistics.median(s[key] for s in steps) for key, name in SUMMARY_KEYS.items() if key in steps[0]}
    return {**summary, "runs": len(steps), "seconds": [round(s["seconds"], 4) for s in steps]}


def bench(name: str, model_dir: Path, work: Path, rounds: int, warmup: int, trl) -> dict:
    spec = CONFIGS[name]
    train = write_synthetic_split(spec.task, "train", work / name / "data", n=4 * PROMPTS, seed=0, size=spec.size)
    sides = {
        side: MmrftSide(mmrft_trainer(model_dir, train, spec, work / name / side, unshared=side == "unshared"))
        for side in ("mmrft", "unshared")
    }
    if spec.video:
        trl_steps = None
        for _ in range(warmup + rounds):
            for side in sides.values():
                side.step()
    else:
        suppressed = sides["mmrft"].trainer.policy.suppressed_ids.tolist()
        dataset = sides["mmrft"].trainer.dataset
        samples = [dataset[i] for i in range(len(dataset))]
        trainer = trl_trainer(trl, model_dir, samples, spec, suppressed, warmup + rounds, work / name / "trl")
        trl_steps = alternate_with_trl(trainer, list(sides.values()))[warmup:]
    result = {side: summarize(s.steps[warmup:]) for side, s in sides.items()}
    result["trl"] = summarize(trl_steps) if trl_steps else {"skipped": NO_TRL_VIDEO}
    result["baseline"] = "unshared" if spec.video else "trl"
    result["ratio"] = result["mmrft"]["median_s"] / result[result["baseline"]]["median_s"]
    result["ratio_vs_unshared"] = result["mmrft"]["median_s"] / result["unshared"]["median_s"]
    result["target"] = spec.target
    result["meets_target"] = result["ratio"] <= spec.target
    return result


def print_table(results: dict) -> None:
    def cell(side: dict, key: str, fmt: str) -> str:
        return format(side[key], fmt) if key in side else "-"

    def sides(r: dict, key: str, fmt: str) -> str:
        return "/".join(cell(r[side], key, fmt) for side in ("mmrft", "unshared", "trl"))

    lines = [("config", "median s m/u/t", "ratio", "vs", "target", "encodes m/u/t", "patches", "mmrft overhead",
              "mmrft prep", "len m/u/t", "runs")]
    for name, r in results.items():
        lines.append((
            name, sides(r, "median_s", ".3f"), f"{r['ratio']:.2f}", r["baseline"], f"<={r['target']}",
            sides(r, "encodes_per_step", "g"), f"{r['mmrft']['patches_per_visual']:g}",
            cell(r["mmrft"], "overhead_share", ".1%"), cell(r["mmrft"], "prepare_share", ".1%"),
            sides(r, "completion_len", "g"), str(r["mmrft"]["runs"]),
        ))
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    for line in lines:
        print("  ".join(text.ljust(width) for text, width in zip(line, widths)))
    for name, r in results.items():
        if "skipped" in r["trl"]:
            print(f"{name}: TRL side skipped ({r['trl']['skipped']}); its ratio is mmrft / unshared")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15, help="timed steps per side and config")
    parser.add_argument("--warmup", type=int, default=2, help="steps per side discarded first")
    parser.add_argument("--configs", nargs="+", choices=sorted(CONFIGS), default=list(CONFIGS))
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (same for every side)")
    parser.add_argument("--out", default="bench_grpo.json")
    args = parser.parse_args(argv)
    trl = require_trl()
    hf_logging.disable_progress_bar()
    torch.set_num_threads(args.threads)
    with tempfile.TemporaryDirectory(prefix="bench_grpo_") as tmp:
        work = Path(tmp)
        # image_tokens_side=8: the processor's pixel budget is 224 x 224 (the default, 4, caps images at 112 px).
        model_dir = build_tiny_model("qwen2_5_vl", work / "model", seed=0, size=TinySize(image_tokens_side=8))
        results = {name: bench(name, model_dir, work, args.rounds, args.warmup, trl) for name in args.configs}
        params = sum(p.numel() for p in load_model_and_processor(str(model_dir))[0].parameters())
    report = {
        "setup": {
            "prompts": PROMPTS, "num_generations": G, "new_tokens": NEW_TOKENS, "video_frames": FRAMES,
            "model": f"tiny Qwen2.5-VL, {params} parameters", "threads": args.threads, "warmup": args.warmup,
            "trl": trl.__version__, "torch": torch.__version__,
        },
        "configs": results,
    }
    Path(args.out).write_text(json.dumps(report, indent=2) + "\n")
    print_table(results)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
