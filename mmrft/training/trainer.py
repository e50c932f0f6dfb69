"""The training loop shared by the SFT and GRPO stages: setup, resume, logging, checkpoints, eval.

A stage subclasses :class:`Trainer` and implements :meth:`Trainer.train_step` (one optimizer
step on a batch of samples, returning its metrics). Everything else — the seeded resumable data
stream, AdamW with warmup, atomic checkpoints, metrics.jsonl and the before/after evaluation —
lives here once.
"""

from __future__ import annotations

import json
import logging
import math
import random
import resource
import signal
import threading
import time
from pathlib import Path

import torch
from tqdm import tqdm

from mmrft.config import ConfigError, TrainConfig
from mmrft.data.sources import open_config_data
from mmrft.data.synthetic import SPEC_FILE, full_spec, write_synthetic
from mmrft.eval.evaluate import evaluate
from mmrft.policies.loading import load_model_and_processor, load_policy
from mmrft.policies.qwen_vl import TrainingForward
from mmrft.training.checkpoint import (
    ENGINE_DIR,
    latest_valid_checkpoint,
    load_adapter,
    load_trainer_state,
    partial_path,
    remove_partial_checkpoints,
    rng_state,
    save_checkpoint,
    set_rng_state,
    start_checkpoint,
)
from mmrft.training.distributed import Processes
from mmrft.training.run_dir import RunDir
from mmrft.training.stream import make_stream

log = logging.getLogger(__name__)


def peak_memory_gb() -> float:
    """Peak accelerator memory of this step (reset after reading) on CUDA; else the process's peak RSS."""
    if torch.cuda.is_available():
        peak = torch.cuda.max_memory_allocated() / 1e9
        torch.cuda.reset_peak_memory_stats()
        return peak
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 / 1e9  # ru_maxrss is KiB on Linux


def lr_factor(schedule: str, warmup: int, total: int, step: float) -> float:
    """The lr multiplier of training step `step` (0-based; fractional when a time budget runs the
    schedule ahead): linear warmup to 1, then `schedule`."""
    if step < warmup:
        return (step + 1) / warmup
    progress = min(1.0, (step - warmup) / max(1, total - warmup))
    if schedule == "linear":
        return 1.0 - progress
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * progress))
    return 1.0


class NonFiniteError(RuntimeError):
    """Too many optimizer steps in a row had a non-finite loss or gradient."""


def prepare_data(config: TrainConfig, write: bool = True) -> None:
    """Generate the synthetic training/held-out files named in the config if they are missing.

    The spec they were generated from is kept beside them (synthetic.json); existing files
    generated from another spec are an error, not silently reused. ``write=False`` (every process
    but the main one): only that check, so all processes stop on it, not just the one that writes.
    """
    spec = config.data.synthetic
    train = Path(config.data.train)
    if spec is None:
        return
    record = train.parent / SPEC_FILE
    if not train.is_file():
        if write:
            write_synthetic(train.parent, spec)
            log.info("generated synthetic %s data in %s", spec["task"], train.parent)
    elif not record.is_file():  # generated before the record existed, or by hand
        if write:
            log.warning("%s has no %s recording its spec; using it as it is (delete it to regenerate)", train.parent, SPEC_FILE)
    elif (made := json.loads(record.read_text())) != full_spec(spec):
        raise ConfigError(f"data.synthetic: {train.parent} was generated from {made}, not {spec}; delete it to regenerate")


class Trainer:
    """One training run: owns the policy, optimizer, data stream and run directory."""

    def __init__(self, config: TrainConfig, resume: bool = False):
        self.config = config
        self.processes = Processes()
        self.processes.check_batch(config.batch_size)
        random.seed(config.seed)
        torch.manual_seed(config.seed)
        prepare_data(config, write=self.processes.is_main)
        self.processes.barrier()
        self.dataset, self.heldout = open_config_data(config.data)  # before the model: a data error fails fast
        self.run = RunDir(config.output_dir, config, config.report_to, write=self.processes.is_main, resume=resume)
        self.policy = load_policy(config.model, config.video)
        self.model = self.policy.model.to(self.processes.device)
        processes = self.processes
        if self.policy.peft is not None and processes.sharded and processes.zero_stage != 2:  # sharded weights: merging needs a gather
            raise ConfigError(
                f"model.lora_rank: LoRA under {processes.sharding} is not supported yet; launch with DDP or DeepSpeed ZeRO-2"
            )
        if processes.sharded:
            if config.optim.micro_batch_tokens is not None:  # processes would run different numbers of forwards
                raise ConfigError(f"optim.micro_batch_tokens: not supported under {processes.sharding}; use optim.grad_accum")
            self.policy.everyone_done = processes.all
        if processes.fsdp:
            processes.shard_model(self.model)
        elif processes.world > 1 and processes.zero_stage is None:
            self.policy.training_forward = processes.wrap(TrainingForward(self.policy))
        self.stream = make_stream(self.dataset, config.seed, config.data)
        params = [p for p in self.model.parameters() if p.requires_grad]
        opt = config.optim
        self.optimizer = torch.optim.AdamW(params, lr=opt.lr, betas=tuple(opt.betas), weight_decay=opt.weight_decay)
        if processes.zero_stage is not None:  # DeepSpeed now owns the optimizer step (the schedule stays ours)
            self.policy.training_forward = processes.prepare_engine(TrainingForward(self.policy), self.optimizer, opt.max_grad_norm)
        self.generator = torch.Generator(self.processes.device).manual_seed(config.seed + self.processes.rank)  # sampling
        self.step = 0
        self.elapsed = 0.0  # training wall time, carried across resumes
        self.nonfinite_in_a_row = 0
        self.skipped_updates = 0  # updates of the current step dropped for a non-finite gradient
        self.stop_signal: str | None = None
        if resume:
            self._restore()
        self.apply_schedule()

    # -- the schedule -----------------------------------------------------------------------
    def schedule_progress(self) -> float:
        """Training steps done, as the schedule counts them: under a time budget (max_minutes),
        the larger of the steps done and the budget's spent share of max_steps, so a slow machine
        still completes the schedule when its time runs out."""
        cfg = self.config
        progress = float(self.step)
        if cfg.max_minutes is not None:
            progress = max(progress, self.elapsed / (cfg.max_minutes * 60) * cfg.max_steps)
        return min(progress, float(cfg.max_steps))

    def apply_schedule(self) -> None:
        """Set the lr of the next step. Schedules count training steps, never optimizer updates
        (a step with num_iterations updates advances them once)."""
        opt = self.config.optim
        factor = lr_factor(opt.lr_schedule, max(opt.warmup_steps, 0), self.config.max_steps, self.schedule_progress())
        for group in self.optimizer.param_groups:
            group["lr"] = opt.lr * factor

    # -- one optimizer step; stages implement this ------------------------------------------
    def train_step(self, samples: list[dict]) -> dict:
        raise NotImplementedError

    def optimizer_step(self) -> float:
        """Clip and step; returns the pre-clip gradient norm.

        A non-finite gradient norm (from a NaN or inf loss or gradient) skips the update: the
        gradients are dropped, the weights and optimizer stay as they were, and the step is
        counted in ``numerics/skipped_updates``.
        """
        if self.processes.engine is not None:  # DeepSpeed clips, steps (or skips) and clears the gradients
            norm, applied = self.processes.engine_step()
        else:
            params = [p for p in self.model.parameters() if p.requires_grad]
            max_norm = self.config.optim.max_grad_norm
            norm = torch.nn.utils.clip_grad_norm_(params, max_norm if max_norm > 0 else float("inf"))
            norm = float(norm.full_tensor() if hasattr(norm, "full_tensor") else norm)  # a DTensor under FSDP
            applied = math.isfinite(norm)
            if applied:
                self.optimizer.step()
            self.optimizer.zero_grad(set_to_none=True)
        if not applied:
            self.skipped_updates += 1
        return norm

    # -- checkpoints ---------------------------------------------------------------------
    def _state(self) -> tuple[dict | None, dict]:
        """(the model's whole state dict under FSDP, else None; the trainer state with the random
        states of every process). Collective: all processes call it."""
        randomness = self.processes.gather({"rng": rng_state(), "generator": self.generator.get_state()})
        weights, optimizer = self.processes.full_state(self.model, self.optimizer)
        return weights, {
            "step": self.step,
            "elapsed": self.elapsed,
            "optimizer": optimizer,
            "stream": self.stream.state_dict(),
            "processes": randomness,
        }

    def save(self) -> Path:
        """Checkpoint this step (written by the main process; the others wait for it)."""
        (weights, state), path = self._state(), self.run.checkpoints / f"step-{self.step:06d}"
        engine = self.processes.engine is not None
        if engine:  # DeepSpeed's per-process state goes into the partial checkpoint first
            if self.processes.is_main:
                start_checkpoint(self.run.checkpoints, self.step)
            self.processes.barrier()
            self.processes.save_engine_state(partial_path(self.run.checkpoints, self.step) / ENGINE_DIR)
        if self.processes.is_main:
            path = save_checkpoint(
                self.run.checkpoints, self.step, self.model, self.policy.processor, state, self.config.keep_last,
                peft=self.policy.peft, state_dict=weights, started=engine, card=self.run.model_card(self.step),
            )
        self.processes.barrier()
        return path

    def _restore(self) -> None:
        if self.processes.is_main:
            remove_partial_checkpoints(self.run.checkpoints)
        self.processes.barrier()
        latest = latest_valid_checkpoint(self.run.checkpoints)
        if latest is None:
            log.warning("--resume: no valid checkpoint in %s; starting from scratch", self.run.checkpoints)
            self.run.truncate_after(0)
            return
        state = load_trainer_state(latest)
        randomness = state["processes"]
        if len(randomness) != self.processes.world:
            raise ConfigError(
                f"--resume: {latest} was written by {len(randomness)} training processes; resume it with as many "
                f"(this launch has {self.processes.world})"
            )
        if self.processes.engine is not None:  # DeepSpeed's own state: the module (adapters included) and optimizer
            if not (latest / ENGINE_DIR).is_dir():
                raise ConfigError(f"--resume: {latest} was not written under DeepSpeed; resume it with the launch that wrote it")
            self.processes.load_engine_state(latest / ENGINE_DIR)
        elif state["optimizer"] is None:
            raise ConfigError(f"--resume: {latest} holds DeepSpeed optimizer state; resume it under DeepSpeed")
        elif self.policy.peft is not None:
            load_adapter(self.policy.peft, latest)
            self.optimizer.load_state_dict(state["optimizer"])
        else:
            saved, _ = load_model_and_processor(str(latest), self.config.model.dtype)
            self.processes.load_full_state(self.model, self.optimizer, saved.state_dict(), state["optimizer"])
        self.stream.load_state_dict(state["stream"])
        set_rng_state(randomness[self.processes.rank]["rng"])
        self.generator.set_state(randomness[self.processes.rank]["generator"])
        self.step, self.elapsed = int(state["step"]), float(state["elapsed"])
        self.run.truncate_after(self.step)
        log.info("resumed from %s at step %d", latest, self.step)

    # -- evaluation ----------------------------------------------------------------------
    def evaluate_heldout(self, tag: str) -> dict:
        """Held-out (and a same-size slice of train) metrics; written to eval/<tag>/.

        The main process evaluates and writes; the others wait for it and return ``{}`` (under
        FSDP they evaluate alongside it, as every forward gathers weights from all of them).
        """
        if not self.processes.is_main and not self.processes.sharded:
            self.processes.barrier()
            return {}
        results = {}
        was_training = self.model.training
        self.model.eval()
        for split, data in (("heldout", self.heldout), ("train", self.dataset)):
            result = evaluate(
                self.policy, data, limit=self.config.eval_samples, max_new_tokens=self.config.generation.max_new_tokens
            )
            self.run.write_json(f"eval/{tag}/{split}/eval.json", result.as_json(split, tag))
            self.run.write_jsonl(f"eval/{tag}/{split}/samples.jsonl", result.samples)
            results[split] = result.as_json(split, tag)
        self.model.train(was_training)
        self.processes.barrier()
        return results if self.processes.is_main else {}

    # -- the loop ------------------------------------------------------------------------
    def train(self) -> dict:
        """Run to max_steps (or max_minutes); returns the summary (also written to summary.json)."""
        cfg = self.config
        start_path = self.run.root / "eval" / "start.json"
        before = None
        if cfg.eval_before_after and self.heldout is not None:
            if start_path.is_file():
                before = json.loads(start_path.read_text())
            else:
                before = self.evaluate_heldout("start")
                self.run.write_json("eval/start.json", before)
            self.processes.barrier()  # nobody reads start.json before it is whole
        self.model.train()
        show = cfg.progress_bar and self.processes.is_main
        bar = tqdm(total=cfg.max_steps, initial=self.step, disable=not show, dynamic_ncols=True)
        previous = {}
        if threading.current_thread() is threading.main_thread():  # signal handlers live in the main thread
            previous = {sig: signal.signal(sig, self._request_stop) for sig in (signal.SIGTERM, signal.SIGINT)}
        ended_by = "steps"
        try:
            while self.step < cfg.max_steps:
                # one reduction a step: has any process been signalled, or run out of time?
                signalled, out_of_time = self.processes.sum(
                    float(self.stop_signal is not None), float(cfg.max_minutes is not None and self.elapsed >= cfg.max_minutes * 60)
                )
                if signalled:
                    ended_by = "signal"
                    break
                if out_of_time:
                    log.info("max_minutes reached after %d steps", self.step)
                    ended_by = "time"
                    break
                self._one_step(bar)
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            bar.close()
            self.run.close()
        final = self.save()
        summary = {"start": before, "final": None, "final_checkpoint": str(final), "steps": self.step, "ended_by": ended_by}
        if self.processes.any(self.stop_signal is not None):
            summary["stopped_by"] = self.stop_signal or "a signal to another training process"
            log.warning(
                "stopped by %s after step %d; checkpoint %s written. Resume with: mmrft train <config> --output-dir %s --resume",
                self.stop_signal, self.step, final, cfg.output_dir,
            )
            return summary
        if cfg.eval_before_after and self.heldout is not None:
            summary["final"] = self.evaluate_heldout("final")
            self.run.write_json("summary.json", summary)
            self.run.update_model_card(final, self.step, "final")
        return summary

    def _request_stop(self, signum, frame) -> None:
        """SIGTERM / SIGINT: finish the current step, checkpoint, and return. A second one stops at once."""
        if self.stop_signal is not None:
            raise KeyboardInterrupt
        self.stop_signal = signal.Signals(signum).name
        log.warning("%s received: stopping after the current step", self.stop_signal)

    def _one_step(self, bar) -> None:
        cfg = self.config
        t0 = time.perf_counter()
        self.skipped_updates = 0
        samples = self.processes.shard(self.stream.next_batch(cfg.batch_size))
        metrics = self.processes.reduce_metrics(self.train_step(samples))
        self.step += 1
        self.stream.observe(self.step, metrics)
        (step_time,) = self.processes.sum((time.perf_counter() - t0) / self.processes.world)  # one clock for all
        self.elapsed += step_time
        self.apply_schedule()
        metrics = {
            "step": self.step,
            **metrics,
            "lr": self.optimizer.param_groups[0]["lr"],  # the next step's
            "data/skipped": sum(self.stream.skipped.values()),
            "numerics/skipped_updates": self.skipped_updates,
            "mem/peak_gb": peak_memory_gb(),
            "time/step_s": step_time,
            "time/elapsed_s": self.elapsed,
        }
        if self.stream.new_skips:
            self.run.log_skipped([{"step": self.step, **row} for row in self.stream.new_skips])
            self.stream.new_skips.clear()
        if cfg.eval_every and self.heldout is not None and self.step % cfg.eval_every == 0:
            for name, value in self.evaluate_heldout(f"step-{self.step:06d}")["heldout"]["metrics"].items():
                metrics[f"eval/{name}"] = value
        if self.step % cfg.log_every == 0:
            self.run.log_metrics(metrics)
        self.nonfinite_in_a_row = self.nonfinite_in_a_row + 1 if self.skipped_updates else 0
        if self.nonfinite_in_a_row >= cfg.max_nonfinite_steps:
            raise NonFiniteError(
                f"{self.nonfinite_in_a_row} steps in a row had a non-finite loss or gradient (last at step "
                f"{self.step}); stopped. The last good checkpoint is in {self.run.checkpoints}: lower optim.lr "
                "or check the rewards, then resume with --resume"
            )
        if self.step % cfg.save_every == 0:
            self.save()
        bar.update(1)
        bar.set_postfix(self.progress_fields(metrics))

    def progress_fields(self, metrics: dict) -> dict:
        return {"loss": f"{metrics.get('loss', 0):.4f}", "s/step": f"{metrics['time/step_s']:.2f}"}
