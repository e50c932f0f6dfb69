"""Several training processes through accelerate (``accelerate launch --num_processes N``).

Every process reads the same global batch from the same seeded stream and keeps its own
contiguous slice of whole prompts, so a prompt's G completions never straddle processes. Each
process generates and scores its slice; advantages are computed over the gathered rewards of all
processes (batch-level normalisations see the global batch); losses are normalised by global
token and sequence counts and gradients summed by the DDP wrapper accelerate puts around the
policy's training forward. One process (the main one) writes the run directory.

Launched with FSDP (``accelerate launch --use_fsdp`` or ``--config_file configs/accelerate/fsdp.yaml``),
the model is instead sharded in place with PyTorch's FSDP2 ``fully_shard``: each decoder layer
and vision block, the vision tower and the whole model are units, so that sampling, which calls
the model and its vision tower directly, gathers each unit's weights as it runs. Every process
must then run the same forwards: sampling stops when all processes' sequences are done,
evaluation runs on every process, and checkpoints gather full state dicts on all of them.
(accelerate's own FSDP plugin needs GPUs; ``fully_shard`` runs on gloo too, so the CPU test
checks the same code the GPU runs.)

Launched with DeepSpeed (``--use_deepspeed --zero_stage 2|3`` or ``configs/accelerate/zero{2,3}.yaml``),
accelerate hands the training forward and the optimizer to a DeepSpeed engine, which then owns the
gradient reduction, clipping (``optim.max_grad_norm``), the skip of a non-finite update and the
optimizer step; the trainer marks the last micro-batch of each step as DeepSpeed's accumulation
boundary. ZeRO-2 partitions gradients and optimizer state, reducing gradients in every
backward; ZeRO-3 also the weights, which DeepSpeed gathers module by module in every forward,
sampling's included. Both run in lock-step like FSDP. Optimizer state is saved in DeepSpeed's
own per-process files inside each checkpoint (``deepspeed/``), beside the whole weights in HF
layout. (On a CPU, DeepSpeed's CPU accelerator talks gloo; the CPU tests run the same engine
code the GPU runs.)

In a single process (plain ``mmrft train``) every method here is the identity.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import DistributedDataParallelKwargs, InitProcessGroupKwargs, gather_object

from mmrft.config import ConfigError

# Metrics that count things per process (summed across processes); every other one is averaged.
SUMMED = ("/errors", "vision/encodes", "vision/encodes_train", "replay/groups")
ENGINE_TAG = "state"  # DeepSpeed's name for the one state it writes into a checkpoint's deepspeed/ folder


class Processes:
    """This process's place among the training processes, and the collectives the trainer needs."""

    def __init__(self):
        cpu = not torch.cuda.is_available()
        deepspeed = os.environ.get("ACCELERATE_USE_DEEPSPEED", "false").lower() == "true"
        # Parameters a batch does not touch (a vision tower on text-only prompts, frozen parts)
        # must not stall DDP's gradient reduction.
        handlers = [DistributedDataParallelKwargs(find_unused_parameters=True)]
        if deepspeed and cpu:  # DeepSpeed's CPU accelerator talks gloo (accelerate's cpu=True would drop DeepSpeed)
            handlers.append(InitProcessGroupKwargs(backend="gloo"))
        # cpu=True where there is no GPU: without it accelerate starts every process alone.
        self.accelerator = Accelerator(cpu=cpu and not deepspeed, kwargs_handlers=handlers)
        self.device = self.accelerator.device  # this process's GPU, or the CPU
        self.rank = self.accelerator.process_index
        self.world = self.accelerator.num_processes
        self.is_main = self.accelerator.is_main_process
        self.wrapped: torch.nn.Module | None = None
        self.fsdp = self.world > 1 and os.environ.get("ACCELERATE_USE_FSDP", "false").lower() == "true"
        self.sharded_model: torch.nn.Module | None = None
        plugin = self.accelerator.state.deepspeed_plugin  # None unless launched with DeepSpeed
        self.zero_stage: int | None = None if plugin is None else int(plugin.zero_stage)
        self.engine = None  # the DeepSpeed engine, once prepared
        # How the model's state is split over processes, if it is. Every process then runs the same
        # forwards and backwards: FSDP and ZeRO-3 gather weights in each forward, ZeRO-2 reduces
        # gradients in every backward, accumulation boundary or not.
        self.sharding = "FSDP" if self.fsdp else None if self.zero_stage is None else f"DeepSpeed ZeRO-{self.zero_stage}"
        self.sharded = self.sharding is not None

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

    def shard_model(self, model: torch.nn.Module) -> None:
        """FSDP2: shard ``model`` in place over the processes (see the module docstring)."""
        from torch.distributed.fsdp import fully_shard

        reshard = os.environ.get("FSDP_RESHARD_AFTER_FORWARD", "true").lower() != "false"
        layers = set(getattr(model, "_no_split_modules", None) or ())  # decoder layers, vision blocks
        for module in list(model.modules()):
            if type(module).__name__ in layers:
                fully_shard(module, reshard_after_forward=reshard)
        fully_shard(model.model.visual, reshard_after_forward=reshard)  # sampling encodes outside the model's forward
        fully_shard(model, reshard_after_forward=reshard)
        # FSDP2 marks its root on the first forward through the root; sampling runs the vision
        # tower first, so initialise from the root now (no public call does this yet).
        model._get_fsdp_state()._lazy_init()
        self.sharded_model = model

    def prepare_engine(self, module: torch.nn.Module, optimizer: torch.optim.Optimizer, max_grad_norm: float) -> torch.nn.Module:
        """DeepSpeed: ``module`` (the training forward) and ``optimizer`` handed to a DeepSpeed engine,
        which is returned and used as the module. The trainer owns the batch, accumulation and
        clipping settings: DeepSpeed's are set from them (one optimizer step per ``step()``, the
        boundary marked by :meth:`no_sync`)."""
        self.accelerator.state.deepspeed_plugin.deepspeed_config.update(
            train_micro_batch_size_per_gpu=1,
            train_batch_size=self.world,
            gradient_accumulation_steps=1,
            gradient_clipping=max(max_grad_norm, 0.0),
        )
        self.engine, _ = self.accelerator.prepare(module, optimizer)
        return self.engine

    def backward(self, loss: torch.Tensor) -> None:
        if self.engine is not None:
            self.engine.backward(loss)
        else:
            loss.backward()

    def engine_step(self) -> tuple[float, bool]:
        """DeepSpeed: reduce, clip and step (skipped by DeepSpeed on a non-finite gradient);
        returns (the pre-clip gradient norm, whether the weights were updated)."""
        self.engine.step()
        norm = self.engine.get_global_grad_norm()
        return float(norm), bool(self.engine.was_step_applied())

    def no_sync(self, sync: bool):
        """Accumulate gradients locally unless ``sync`` (the last backward of an optimizer step)."""
        if self.engine is not None:
            self.engine.set_gradient_accumulation_boundary(sync)
            return contextlib.nullcontext()
        if sync or (self.wrapped is None and self.sharded_model is None):
            return contextlib.nullcontext()
        if self.sharded_model is not None:
            return self._fsdp_no_sync()
        return self.accelerator.no_sync(self.wrapped)

    @contextlib.contextmanager
    def _fsdp_no_sync(self):
        self.sharded_model.set_requires_gradient_sync(False)
        try:
            yield
        finally:
            self.sharded_model.set_requires_gradient_sync(True)

    def full_state(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer) -> tuple[dict | None, dict | None]:
        """(model state dict or None when the model is not sharded, optimizer state dict): whole
        tensors on the CPU, gathered from every process when sharded (collective). Under DeepSpeed
        the optimizer state is None: it is saved by :meth:`save_engine_state`."""
        if self.engine is not None:
            if self.zero_stage != 3:
                return None, None
            weights = self.engine._zero3_consolidated_16bit_state_dict()  # on the main process; None elsewhere
            prefix = "model."  # the engine wraps the TrainingForward module, which holds the model as `model`
            return weights and {k.removeprefix(prefix): v for k, v in weights.items()}, None
        if self.sharded_model is None:
            return None, optimizer.state_dict()
        from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict, get_optimizer_state_dict

        options = StateDictOptions(full_state_dict=True, cpu_offload=True)
        return get_model_state_dict(model, options=options), get_optimizer_state_dict(model, optimizer, options=options)

    def load_full_state(self, model: torch.nn.Module, optimizer: torch.optim.Optimizer, weights: dict, optim_state: dict) -> None:
        """Load whole-tensor state dicts (as :meth:`full_state` returns them) into a sharded or plain model."""
        if self.sharded_model is None:
            model.load_state_dict(weights)
            optimizer.load_state_dict(optim_state)
            return
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict, set_optimizer_state_dict

        options = StateDictOptions(full_state_dict=True)
        set_model_state_dict(model, weights, options=options)
        set_optimizer_state_dict(model, optimizer, optim_state, options=options)

    def save_engine_state(self, directory: Path) -> None:
        """DeepSpeed: every process writes its part of the engine's state (trained weights, optimizer
        partitions) under ``directory`` (collective). Frozen weights (a LoRA base, a frozen tower)
        are left out: they are the starting model's, which a resumed run loads first, and would
        otherwise be stored again beside the checkpoint's whole weights."""
        self.engine.save_checkpoint(str(directory), tag=ENGINE_TAG, save_latest=False, exclude_frozen_parameters=True)
        self.barrier()

    def load_engine_state(self, directory: Path) -> None:
        frozen = any(not p.requires_grad for p in self.engine.module.parameters())
        path, _ = self.engine.load_checkpoint(
            str(directory), tag=ENGINE_TAG, load_optimizer_states=True, load_lr_scheduler_states=False,
            load_module_strict=not frozen,  # the saved module state lacks the frozen weights
        )
        if path is None:
            raise FileNotFoundError(f"--resume: no DeepSpeed state in {directory}")

    def sum(self, *values: float) -> list[float]:
        if self.world == 1:
            return list(values)
        # on this process's device: NCCL reduces only CUDA tensors (gloo takes CPU ones)
        total = self.accelerator.reduce(torch.tensor(values, dtype=torch.float64, device=self.device), "sum")
        return total.tolist()

    def any(self, flag: bool) -> bool:
        return self.sum(float(flag))[0] > 0

    def all(self, flag: bool) -> bool:
        return not self.any(not flag)

    def gather(self, item) -> list:
        """``[item of process 0, item of process 1, ...]`` (any picklable object)."""
        return [item] if self.world == 1 else gather_object([item])

    def barrier(self) -> None:
        self.accelerator.wait_for_everyone()

    def close(self) -> None:
        """End of the run: wait for every process, then tear the process group down (a process
        leaving with the group alive can abort at exit while another still talks to it)."""
        if self.world > 1:
            self.barrier()
            self.accelerator.end_training()

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
