"""Several training processes through accelerate (``accelerate launch --num_processes N``).

Every process reads the same global batch from the same seeded stream and keeps its own
contiguous slice of whole prompts, so a prompt's G completions never straddle processes. Each
process generates and scores its slice; advantages are computed over the gathered rewards of all
processes (batch-level normalisations see the global batch); losses are normalised by global
token and sequence counts and gradients summed by the DDP wrapper accelerate puts around the
policy's training forward. One process (the main one) writes the run directory.

In a single process (plain ``mmrft train``) every method here is the identity.
"""

from __future__ import annotations

import contextlib
import math

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, gather_object

from mmrft.config import ConfigError

# Metrics that count things per process (summed across processes); every other one is averaged.
SUMMED = ("/errors", "vision/encodes", "vision/encodes_train", "replay/groups")


class Processes:
    """This process's place among the training processes, and the collectives the trainer needs."""

    def __init__(self):
        # Parameters a batch does not touch (a vision tower on text-only prompts, frozen parts)
        # must not stall DDP's gradient reduction.
        # cpu=True where there is no GPU: without it accelerate starts every process alone.
        self.accelerator = Accelerator(
            cpu=not torch.cuda.is_available(), kwargs_handlers=[DistributedDataParallelKwargs(find_unused_parameters=True)]
        )
        self.device = self.accelerator.device  # this process's GPU, or the CPU
        self.rank = self.accelerator.process_index
        self.world = self.accelerator.num_processes
        self.is_main = self.accelerator.is_main_process
        self.wrapped: torch.nn.Module | None = None

    def check_batch(self, batch_size: int) -> None:
        if batch_size % self.world:
            raise ConfigError(f"batch_size: {batch_size} prompts do not split evenly over {self.world} processes")

    def shard(self, samples: list) -> list:
        """This process's contiguous slice of the global batch."""
        size = len(samples) // self.world
        return samples[self.rank * size : (self.rank + 1) * size]

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        """``module`` under accelerate's data-parallel wrapper when there is more than one process."""
        if self.world > 1:
            self.wrapped = self.accelerator.prepare_model(module)
            return self.wrapped
        return module

    def no_sync(self, sync: bool):
        """Accumulate gradients locally unless ``sync`` (the last backward of an optimizer step)."""
        if sync or self.wrapped is None:
            return contextlib.nullcontext()
        return self.accelerator.no_sync(self.wrapped)

    def sum(self, *values: float) -> list[float]:
        if self.world == 1:
            return list(values)
        total = self.accelerator.reduce(torch.tensor(values, dtype=torch.float64), "sum")
        return total.tolist()

    def any(self, flag: bool) -> bool:
        return self.sum(float(flag))[0] > 0

    def gather(self, item) -> list:
        """``[item of process 0, item of process 1, ...]`` (any picklable object)."""
        return [item] if self.world == 1 else gather_object([item])

    def barrier(self) -> None:
        self.accelerator.wait_for_everyone()

    def reduce_metrics(self, metrics: dict) -> dict:
        """Counts summed over processes, everything else averaged (NaN where no process had a value)."""
        if self.world == 1:
            return metrics
        every = self.gather(metrics)
        out = {}
        for key in every[0]:
            values = [m[key] for m in every if isinstance(m.get(key), (int, float))]
            finite = [v for v in values if math.isfinite(v)]
            if key.endswith(SUMMED):
                out[key] = sum(finite)
            else:
                out[key] = sum(finite) / len(finite) if finite else float("nan")
        return out
