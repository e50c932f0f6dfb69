"""The SFT stage: cross-entropy on the assistant's tokens only (the warm start before RFT)."""

from __future__ import annotations

import torch

from mmrft.policies.inputs import select_prompts
from mmrft.training.batching import micro_batches, token_budget_batches
from mmrft.training.targets import target_ids
from mmrft.training.trainer import Trainer


class SFTTrainer(Trainer):
    """Token-mean negative log-likelihood of the answer given the prompt; prompt tokens carry no loss."""

    def train_step(self, samples: list[dict]) -> dict:
        self.policy.vision_encodes = 0
        batch = self.policy.prompts(samples)
        ids, mask = target_ids(self.policy, samples, batch)
        (num_tokens,) = self.processes.sum(mask.sum().item())  # over all processes
        world, total_loss = self.processes.world, 0.0
        budget = self.config.optim.micro_batch_tokens
        if budget is None:
            micro = micro_batches(len(batch), self.config.optim.grad_accum)
        else:
            lengths = (batch.attention_mask.sum(1) + mask.sum(1)).tolist()
            micro = token_budget_batches([int(n) for n in lengths], [1] * len(batch), budget)
        for k, prompts in enumerate(micro):
            with self.processes.no_sync(sync=k == len(micro) - 1):
                sub = select_prompts(batch, prompts)
                index = torch.tensor(prompts)
                width = int(mask[index].sum(1).max())  # this micro-batch's longest answer
                sub_ids, sub_mask = ids[index, :width], mask[index, :width]
                logprobs, _ = self.policy.token_logprobs(sub, torch.arange(len(prompts)), sub_ids, sub_mask)
                loss = -(logprobs * sub_mask).sum() / num_tokens
                self.processes.backward(loss * world)  # the wrapper averages over processes: this makes it the global sum
                total_loss += loss.item()
        (total_loss,) = self.processes.sum(total_loss)
        grad_norm = self.optimizer_step()
        return {
            "loss": total_loss,
            "grad_norm": grad_norm,
            "completion_len/mean": mask.sum(1).float().mean().item(),
            "vision/encodes": self.policy.vision_encodes,
        }
