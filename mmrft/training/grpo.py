"""The GRPO stage: sample G completions per prompt, score them, one clipped policy-gradient step."""

from __future__ import annotations

import time

import torch

from mmrft.algorithms.grpo import ADVANTAGES, KL_ESTIMATORS, LOSS_AGGREGATIONS, clipped_surrogate
from mmrft.policies.inputs import PromptBatch, select_prompts
from mmrft.policies.loading import load_model_and_processor
from mmrft.policies.qwen_vl import Rollout
from mmrft.rewards import call_components, call_reward, reward_spec
from mmrft.training.trainer import Trainer


def reward_columns(samples: list[dict], batch: PromptBatch, rollout: Rollout, convention: str) -> dict[str, list]:
    """The sample columns each completion's rewards see (TRL convention: one list entry per completion)."""
    rows = rollout.prompt_index.tolist()
    columns: dict[str, list] = {}
    for key in sorted({k for s in samples for k in s if k not in ("messages",)}):
        columns[key] = [samples[p].get(key) for p in rows]
    columns["image_size"] = [batch.image_sizes[p] for p in rows]
    columns["input_size"] = [batch.input_sizes[p] for p in rows]
    columns["coord_convention"] = [convention] * len(rows)
    return columns


def micro_batches(num_prompts: int, parts: int) -> list[list[int]]:
    """Split prompt indices into ``parts`` contiguous chunks: each micro-batch holds whole groups."""
    size = -(-num_prompts // parts)
    return [list(range(i, min(i + size, num_prompts))) for i in range(0, num_prompts, size)]


class GRPOTrainer(Trainer):
    """GRPO (Shao et al. 2024) with DAPO's decoupled clip and token-mean loss by default."""

    def __init__(self, config, resume: bool = False):
        super().__init__(config, resume)
        self.rewards = [(r, reward_spec(r.name)) for r in config.rewards]
        algo = config.algorithm
        self.advantage_fn = ADVANTAGES.get(algo.advantage)
        self.aggregate = LOSS_AGGREGATIONS.get(algo.loss_aggregation)
        self.ref_model = None
        if algo.beta > 0:  # the reference is loaded only when its KL term is on
            self.ref_model, _ = load_model_and_processor(config.model.name_or_path, config.model.dtype)
            self.ref_model.requires_grad_(False).eval()

    def score(self, samples: list[dict], batch: PromptBatch, rollout: Rollout) -> tuple[torch.Tensor, dict]:
        """Weighted total reward per completion (NaN where no reward applies) and per-reward means."""
        columns = reward_columns(samples, batch, rollout, self.policy.coord_convention)
        total = torch.zeros(len(rollout))
        applicable = torch.zeros(len(rollout), dtype=torch.bool)
        metrics, components = {}, {}
        for config, spec in self.rewards:
            name = config.name
            scores, errors = call_reward(
                spec.fn, rollout.texts, columns, config.on_error, config.timeout_s, name=name
            )
            values = torch.tensor([float("nan") if v is None else float(v) for v in scores])
            valid = ~values.isnan()
            total += config.weight * values.nan_to_num(0.0)
            applicable |= valid
            metrics[f"reward/{name}/mean"] = values[valid].mean().item() if valid.any() else float("nan")
            metrics[f"reward/{name}/errors"] = errors
            for part, part_values in call_components(spec.components, rollout.texts, columns).items():
                finite = [v for v in part_values if v is not None]
                metrics[f"reward/{name}/{part}"] = sum(finite) / len(finite) if finite else float("nan")
            components[name] = values
        total[~applicable] = float("nan")
        return total, {"metrics": metrics, "components": components}

    def train_step(self, samples: list[dict]) -> dict:
        cfg, gen, algo = self.config, self.config.generation, self.config.algorithm
        policy = self.policy
        policy.vision_encodes = 0
        t0 = time.perf_counter()
        batch = policy.prompts(samples)
        self.model.eval()
        rollout = policy.sample(
            batch, gen.num_generations, gen.max_new_tokens, gen.temperature, gen.top_p, generator=self.generator
        )
        self.model.train()
        generate_s = time.perf_counter() - t0
        generate_encodes = policy.vision_encodes
        t_reward = time.perf_counter()
        rewards, scored = self.score(samples, batch, rollout)
        reward_s = time.perf_counter() - t_reward
        group_ids = rollout.prompt_index  # explicit group id: the prompt each row continues
        advantages = self.advantage_fn(rewards, group_ids)

        mask = rollout.completion_mask.float()
        num_tokens, num_sequences = mask.sum().item(), float(len(rollout))
        sums = {"loss": 0.0, "entropy": 0.0, "clipped": 0.0, "kl": 0.0}
        for prompts in micro_batches(len(batch), cfg.optim.grad_accum):
            sub = select_prompts(batch, prompts)
            rows = torch.cat([(rollout.prompt_index == p).nonzero().squeeze(1) for p in prompts])
            local = torch.searchsorted(torch.tensor(prompts), rollout.prompt_index[rows])
            ids, m = rollout.completion_ids[rows], mask[rows]
            logprobs, entropy = policy.token_logprobs(sub, local, ids, rollout.completion_mask[rows], gen.temperature)
            # One update per batch: the policy has not changed since generation, so the
            # generation log-probs are the old policy's (no extra forward needed).
            per_token, clipped = clipped_surrogate(
                logprobs, rollout.logprobs[rows], advantages[rows], algo.epsilon_low, algo.epsilon_high
            )
            if self.ref_model is not None:
                with torch.no_grad():
                    ref, _ = policy.token_logprobs(
                        sub, local, ids, rollout.completion_mask[rows], gen.temperature, model=self.ref_model
                    )
                kl = KL_ESTIMATORS.get("k3")(logprobs, ref)
                per_token = per_token + algo.beta * kl
                sums["kl"] += (kl * m).sum().item()
            loss = self.aggregate(per_token, m, num_tokens=num_tokens, num_sequences=num_sequences)
            loss.backward()
            sums["loss"] += loss.item()
            sums["entropy"] += (entropy.detach() * m).sum().item()
            sums["clipped"] += (clipped.float() * m).sum().item()
        grad_norm = self.optimizer_step()

        valid = ~rewards.isnan()
        group_std = torch.stack(
            [rewards[(group_ids == g) & valid].std() if ((group_ids == g) & valid).sum() > 1 else torch.tensor(0.0)
             for g in group_ids.unique()]
        )
        metrics = {
            "loss": sums["loss"],
            "reward/mean": rewards[valid].mean().item() if valid.any() else float("nan"),
            "reward/std": rewards[valid].std().item() if valid.sum() > 1 else 0.0,
            **scored["metrics"],
            "entropy": sums["entropy"] / max(num_tokens, 1),
            "clip_frac": sums["clipped"] / max(num_tokens, 1),
            "completion_len/mean": mask.sum(1).mean().item(),
            "completion/truncated_frac": rollout.truncated.float().mean().item(),
            "frac_zero_std_groups": (group_std < 1e-6).float().mean().item(),
            "grad_norm": grad_norm,
            "vision/encodes": policy.vision_encodes,
            "vision/encodes_train": policy.vision_encodes - generate_encodes,
            "time/generate_s": generate_s,
            "time/reward_s": reward_s,
        }
        if self.ref_model is not None:
            metrics["kl"] = sums["kl"] / max(num_tokens, 1)
        if self.step % self.config.rollouts_every == 0:
            self.run.log_rollouts(
                [
                    {
                        "step": self.step + 1,
                        "prompt_id": batch.sample_ids[p],
                        "completion": rollout.texts[i],
                        "reward": rewards[i].item(),
                        **{f"reward/{n}": v[i].item() for n, v in scored["components"].items()},
                        "advantage": advantages[i].item(),
                    }
                    for i, p in enumerate(rollout.prompt_index.tolist())
                ]
            )
        return metrics

    def progress_fields(self, metrics: dict) -> dict:
        return {"reward": f"{metrics['reward/mean']:.3f}", "s/step": f"{metrics['time/step_s']:.2f}"}
