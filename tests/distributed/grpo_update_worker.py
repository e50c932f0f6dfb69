"""One GRPO update on a fixed global batch, in one process or under ``accelerate launch``.

Run by test_multiprocess.py: ``python grpo_update_worker.py CONFIG.json OUT.pt [--half]``. Every
process generates the same global batch with the same generator, keeps its shard of whole groups
and takes one optimizer step through the trainer's own code; the main process saves the loss,
the gradients the optimizer saw, the advantages of all processes and the updated weights; a
second update, with a NaN loss, must then be skipped. ``--half``: only the first half of the
batch is trained (in two processes, the second process has nothing to train, as when its groups
were all filtered out).
"""

from __future__ import annotations

import json
from collections import defaultdict
import sys
from pathlib import Path

import torch

from mmrft.config import TrainConfig, from_dict
from mmrft.training import GRPOTrainer


def whole(tensor: torch.Tensor) -> torch.Tensor:
    """A sharded (FSDP) tensor gathered whole; any other tensor as it is."""
    return tensor.full_tensor() if hasattr(tensor, "full_tensor") else tensor


def whole_grad(processes, param) -> torch.Tensor | None:
    """The gradient the optimizer will see (collective under DeepSpeed, which keeps it in its own partitions)."""
    if processes.engine is not None:
        from deepspeed.utils import safe_get_full_grad

        return safe_get_full_grad(param)
    return None if param.grad is None else whole(param.grad)


def whole_weight(processes, param) -> torch.Tensor:
    if processes.engine is not None:
        from deepspeed.utils import safe_get_full_fp32_param

        return safe_get_full_fp32_param(param)
    return whole(param.detach())


def main(config_path: str, out: str, half: bool) -> None:
    config = from_dict(TrainConfig, json.loads(Path(config_path).read_text()))
    trainer = GRPOTrainer(config)
    processes = trainer.processes
    samples = trainer.stream.next_batch(config.batch_size)
    trainer.generator = torch.Generator().manual_seed(0)
    scored, _ = trainer.generate_and_score(samples, defaultdict(float))
    size = len(samples) // processes.world
    if half:
        size = len(samples) // 2
        shard = list(range(size)) if processes.rank == 0 else []
    else:
        shard = list(range(processes.rank * size, (processes.rank + 1) * size))
    parts = [scored.select(shard)] if shard else []
    trainer.assign_advantages(parts)
    weight = 1.0
    if not parts:  # as GRPOTrainer.train_step does for a process with nothing to train
        parts, weight = [trainer.idle_part([scored])], 0.0

    grads = {}
    step = trainer.optimizer_step

    def capture() -> float:
        every = {n: whole_grad(processes, p) for n, p in trainer.model.named_parameters()}
        grads.update({n: g.clone() for n, g in every.items() if g is not None})
        return step()

    trainer.optimizer_step = capture
    metrics = trainer.update(parts, weight)
    advantages = processes.gather(parts[0].advantages if weight else torch.zeros(0))
    weights = {n: whole_weight(processes, p).clone() for n, p in trainer.model.named_parameters()}  # collective if sharded

    # A second update whose loss is NaN is skipped (by DeepSpeed's engine under DeepSpeed): no weight moves.
    trainer.optimizer_step, aggregate = step, trainer.aggregate
    trainer.aggregate = lambda *args, **kwargs: aggregate(*args, **kwargs) * float("nan")
    trainer.update(parts, weight)
    after = {n: whole_weight(processes, p) for n, p in trainer.model.named_parameters()}
    nonfinite = {"skipped": trainer.skipped_updates, "unchanged": all(torch.equal(after[n], w) for n, w in weights.items())}
    if processes.is_main:
        saved = {"metrics": metrics, "grads": grads, "advantages": torch.cat(advantages), "weights": weights, "nonfinite": nonfinite}
        torch.save({**saved, "processes": processes.world, "sharding": processes.sharding, "zero_stage": processes.zero_stage}, out)
    processes.close()


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2], "--half" in sys.argv[3:])
