"""The GRPO stage: sample G completions per prompt, score them, clipped policy-gradient updates.

One step = collect (generate and score, filter, sample more under dynamic sampling, add replayed
groups) -> advantages over everything collected -> ``num_iterations`` optimizer updates. Every
formula lives in :mod:`mmrft.algorithms`; this module only moves tensors between them.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import torch

from mmrft.algorithms.advantages import ADVANTAGES
from mmrft.config import ConfigError
from mmrft.algorithms.chord import sft_coef_at, weighted_sft_loss
from mmrft.algorithms.filtering import informative_groups
from mmrft.algorithms.losses import (
    KL_ESTIMATORS,
    LOSS_AGGREGATIONS,
    clipped_surrogate,
    entropy_bonus_coef,
    truncated_is_weights,
)
from mmrft.policies.inputs import PromptBatch, select_prompts
from mmrft.policies.loading import load_model_and_processor, resolve_model
from mmrft.policies.qwen_vl import Rollout
from mmrft.rewards import call_components, call_reward, reward_spec
from mmrft.training.batching import micro_batches, token_budget_batches
from mmrft.training.sinks import prompt_image
from mmrft.training.targets import target_ids
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


def score_completions(
    rewards: list, samples: list[dict], batch: PromptBatch, rollout: Rollout, convention: str
) -> tuple[torch.Tensor, torch.Tensor, dict[str, torch.Tensor], dict]:
    """Score completions with ``rewards`` ([(RewardConfig, RewardSpec)]).

    Returns the weighted total and the weighted task reward per completion, each reward's values
    by name, and metrics (means, error counts, components). A completion is *unscored* (NaN in
    both totals: left out of its group's statistics and of the loss) when no task reward gave it
    a number — a task reward failed on it or none applies — or, where no reward is a task reward,
    when no reward did; ``reward/unscored`` counts them.
    """
    columns = reward_columns(samples, batch, rollout, convention)
    n = len(rollout)
    total, task = torch.zeros(n), torch.zeros(n)
    applicable, task_applicable = torch.zeros(n, dtype=torch.bool), torch.zeros(n, dtype=torch.bool)
    metrics, values_by_name = {}, {}
    for config, spec in rewards:
        name = config.name
        scores, errors = call_reward(spec.fn, rollout.texts, columns, config.on_error, config.timeout_s, name=name)
        values = torch.tensor([float("nan") if v is None else float(v) for v in scores])
        valid = ~values.isnan()
        total += config.weight * values.nan_to_num(0.0)
        applicable |= valid
        if config.task:
            task += config.weight * values.nan_to_num(0.0)
            task_applicable |= valid
        metrics[f"reward/{name}/mean"] = values[valid].mean().item() if valid.any() else float("nan")
        metrics[f"reward/{name}/errors"] = errors
        for part, part_values in call_components(spec.components, rollout.texts, columns).items():
            finite = [v for v in part_values if v is not None]
            metrics[f"reward/{name}/{part}"] = sum(finite) / len(finite) if finite else float("nan")
        values_by_name[name] = values
    unscored = ~task_applicable if any(config.task for config, _ in rewards) else ~applicable
    total[unscored] = float("nan")
    task[~task_applicable] = float("nan")
    metrics["reward/unscored"] = int(unscored.sum())
    return total, task, values_by_name, metrics


@dataclass
class ScoredRollouts:
    """Prompts of one generation round with their completions, rewards and (once trained on) the
    training forward's log-probs (row i continues prompt_index[i])."""

    samples: list[dict]
    batch: PromptBatch
    rollout: Rollout
    rewards: torch.Tensor  # (N,) weighted total; NaN where the completion is unscored
    task_rewards: torch.Tensor  # (N,) weighted sum of the task rewards alone
    components: dict[str, torch.Tensor]
    ref_logprobs: torch.Tensor | None = None  # (N, T) under the frozen reference, when beta > 0
    old_logprobs: torch.Tensor | None = None  # (N, T) the training forward's at the first update (detached)
    is_weights: torch.Tensor | None = None  # (N, T) truncated importance weights pi_train / pi_sampler
    advantages: torch.Tensor | None = field(default=None, repr=False)

    def select(self, prompts: list[int]) -> ScoredRollouts:
        rows = self.rollout.rows_of(prompts)
        rollout = self.rollout.select(prompts)
        width = rollout.completion_ids.shape[1]
        return ScoredRollouts(
            samples=[self.samples[p] for p in prompts],
            batch=select_prompts(self.batch, prompts),
            rollout=rollout,
            rewards=self.rewards[rows],
            task_rewards=self.task_rewards[rows],
            components={k: v[rows] for k, v in self.components.items()},
            ref_logprobs=None if self.ref_logprobs is None else self.ref_logprobs[rows, :width],
            old_logprobs=None if self.old_logprobs is None else self.old_logprobs[rows, :width],
            is_weights=None if self.is_weights is None else self.is_weights[rows, :width],
            advantages=None if self.advantages is None else self.advantages[rows],
        )


def _reward_spec(name: str, index: int):
    try:
        return reward_spec(name)
    except (KeyError, ValueError, ImportError, OSError, SyntaxError) as err:
        message = err.args[0] if err.args else type(err).__name__
        raise ConfigError(f"rewards[{index}].name: {message}") from None


class GRPOTrainer(Trainer):
    """GRPO (Shao et al. 2024) with DAPO's decoupled clip and token-mean loss by default."""

    def __init__(self, config, resume: bool = False):
        self.rewards = [(r, _reward_spec(r.name, i)) for i, r in enumerate(config.rewards)]  # fail before loading
        super().__init__(config, resume)
        algo = config.algorithm
        if self.processes.world > 1:
            for key, on in (("dynamic_sampling", algo.dynamic_sampling), ("sft_coef", algo.sft_coef > 0)):
                if on:
                    raise ConfigError(f"algorithm.{key}: not supported with several training processes yet; run one")
        if self.processes.sharded:  # every process must run as many forwards as the others
            for key, on in (
                ("algorithm.filter_zero_variance", algo.filter_zero_variance),
                ("algorithm.replay_groups", algo.replay_groups > 0),
            ):
                if on:
                    raise ConfigError(
                        f"{key}: not supported under {self.processes.sharding} (processes would run different numbers of forwards)"
                    )
        self.advantage_fn = ADVANTAGES.get(algo.advantage)
        self.aggregate = LOSS_AGGREGATIONS.get(algo.loss_aggregation)
        self.kl_estimator = KL_ESTIMATORS.get(algo.kl_estimator)
        self.entropy_coef = algo.entropy_coef
        self.replay: list[tuple[float, ScoredRollouts]] = []  # (task-reward std, one group); not checkpointed
        self.ref_model = None
        if algo.beta > 0:  # the reference is loaded only when its KL term is on
            # frozen, so in the compute dtype when there is one: no master copy to keep
            self.ref_model, _ = load_model_and_processor(config.model.name_or_path, config.model.autocast or config.model.dtype)
            self.ref_model.requires_grad_(False).eval().to(self.processes.device)
        self.vllm = None
        gen = config.generation
        if gen.backend == "vllm":
            if self.processes.world > 1 or self.processes.zero_stage is not None:
                raise ConfigError("generation.backend: vllm runs with one plain training process for now; launch one")
            from mmrft.policies.vllm_engine import VLLMSampler, VLLMServerSampler

            if gen.vllm_server_url:
                self.vllm = VLLMServerSampler(self.policy, gen.vllm_server_url)
            else:
                self.vllm = VLLMSampler(
                    self.policy, resolve_model(config.model.name_or_path), gen.vllm_gpu_memory_utilization,
                    gen.vllm_max_model_len, gen.vllm_sleep, config.seed,
                )

    # -- collect ----------------------------------------------------------------------------
    def generate_and_score(self, samples: list[dict], timings: dict) -> tuple[ScoredRollouts, dict]:
        gen, policy = self.config.generation, self.policy
        t_prepare = time.perf_counter()
        batch = policy.prompts(samples, keep_parts=self.vllm is not None)
        t0 = time.perf_counter()
        timings["prepare_s"] += t0 - t_prepare
        self.model.eval()
        if self.vllm is None:
            rollout = policy.sample(batch, gen.num_generations, gen.max_new_tokens, gen.temperature, gen.top_p, generator=self.generator)
        else:
            seed = int(torch.randint(2**31 - 1, (1,), generator=self.generator, device=self.generator.device))
            rollout = self.vllm.sample(samples, gen.num_generations, gen.max_new_tokens, gen.temperature, gen.top_p, seed, batch)
        self.model.train()
        t1 = time.perf_counter()
        rewards, task, components, metrics = score_completions(
            self.rewards, samples, batch, rollout, policy.coord_convention
        )
        timings["generate_s"] += t1 - t0
        timings["reward_s"] += time.perf_counter() - t1
        scored = ScoredRollouts(samples, batch, rollout, rewards, task, components)
        if self.ref_model is not None:
            scored.ref_logprobs = self.reference_logprobs(scored)
        return scored, metrics

    def reference_logprobs(self, part: ScoredRollouts) -> torch.Tensor:
        """(N, T) log-probs under the frozen reference model, in the training pass's micro-batches."""
        out = torch.zeros_like(part.rollout.logprobs)
        with torch.no_grad():
            for prompts in self.micro_batches(part):
                sub = part.select(prompts)
                r = sub.rollout
                logprobs, _ = self.policy.token_logprobs(
                    sub.batch, r.prompt_index, r.completion_ids, r.completion_mask, self.config.generation.temperature,
                    model=self.ref_model,
                )
                out[part.rollout.rows_of(prompts), : logprobs.shape[1]] = logprobs
        return out

    def collect(self, samples: list[dict], timings: dict) -> tuple[list[ScoredRollouts], list[ScoredRollouts], dict]:
        """(groups to train on, everything generated, sampling metrics)."""
        algo = self.config.algorithm
        want, generated, kept, metrics = len(samples), [], [], {}
        while True:
            scored, round_metrics = self.generate_and_score(samples, timings)
            for key, value in round_metrics.items():  # error counts add up over rounds
                metrics[key] = metrics.get(key, 0) + value if key.endswith("/errors") else value
            generated.append(scored)
            if algo.filter_zero_variance or algo.dynamic_sampling:
                need = want - sum(len(k.batch) for k in kept)
                keep = informative_groups(scored.task_rewards, scored.rollout.prompt_index)[:need]
                if keep:
                    kept.append(scored.select(keep))
            else:
                kept.append(scored)
            have = sum(len(k.batch) for k in kept)
            if not algo.dynamic_sampling or have >= want or len(generated) >= algo.max_sampling_rounds:
                break
            samples = self.stream.next_batch(want - have)
        prompts = sum(len(g.batch) for g in generated)
        metrics["sampling/rounds"] = len(generated)
        metrics["filter/kept_frac"] = sum(len(k.batch) for k in kept) / prompts
        return kept, generated, metrics

    # -- advantages ---------------------------------------------------------------------------
    def assign_advantages(self, parts: list[ScoredRollouts]) -> None:
        """Advantages over all parts of all processes at once (batch-level estimators see the
        whole global batch; a group lives in one process)."""
        algo = self.config.algorithm
        rewards, group_ids, offset = [torch.zeros(0)], [torch.zeros(0, dtype=torch.long)], 0
        for part in parts:
            r = part.rewards
            if self.ref_model is not None and algo.kl_in == "reward":
                kl = self.kl_estimator(part.rollout.logprobs, part.ref_logprobs) * part.rollout.completion_mask
                r = r - algo.beta * kl.sum(-1)
            rewards.append(r)
            group_ids.append(part.rollout.prompt_index + offset)
            offset += len(part.batch)
        every = self.processes.gather((torch.cat(rewards), torch.cat(group_ids), offset))
        all_rewards, all_ids, offset = [], [], 0
        for r, ids, groups in every:
            all_rewards.append(r)
            all_ids.append(ids + offset)
            offset += groups
        kwargs = {} if algo.std_scale is None else {"std_scale": algo.std_scale}
        advantages = self.advantage_fn(torch.cat(all_rewards), torch.cat(all_ids), **kwargs)
        start = sum(len(r) for r, _, _ in every[: self.processes.rank])
        mine = advantages[start : start + sum(len(p.rollout) for p in parts)]
        for part, adv in zip(parts, mine.split([len(p.rollout) for p in parts]), strict=True):
            part.advantages = adv

    def remember(self, parts: list[ScoredRollouts]) -> None:
        """Keep the highest task-reward-variance groups of this step for replay."""
        algo = self.config.algorithm
        for part in parts:
            for p in range(len(part.batch)):
                rows = part.rollout.rows_of([p])
                std = part.task_rewards[rows].nan_to_num(0.0).std().item()
                if std > 0:
                    self.replay.append((std, part.select([p])))
        self.replay.sort(key=lambda item: -item[0])
        del self.replay[algo.replay_buffer :]

    # -- update -------------------------------------------------------------------------------
    def loss_mask(self, part: ScoredRollouts) -> torch.Tensor:
        """(N, T) tokens that enter the loss: completion tokens of scored completions in groups
        with at least two scored members (and not truncated, under mask_truncated)."""
        mask = part.rollout.completion_mask.float()
        if self.config.algorithm.mask_truncated:
            mask = mask * (~part.rollout.truncated).float().unsqueeze(1)
        scored = ~part.rewards.isnan()
        index = part.rollout.prompt_index
        scored_in_group = torch.zeros(int(index.max()) + 1 if len(index) else 0).index_add_(0, index, scored.float())
        return mask * (scored & (scored_in_group[index] >= 2)).float().unsqueeze(1)

    def micro_batches(self, part: ScoredRollouts) -> list[list[int]]:
        """The prompts of each training micro-batch of ``part``: optim.grad_accum equal parts, or
        packed by length within optim.micro_batch_tokens."""
        budget = self.config.optim.micro_batch_tokens
        if budget is None:
            return micro_batches(len(part.batch), self.config.optim.grad_accum)
        prompt_lengths = part.batch.attention_mask.sum(1).tolist()
        completion_lengths = part.rollout.completion_mask.sum(1)
        rows = [part.rollout.rows_of([p]) for p in range(len(part.batch))]
        lengths = [int(prompt_lengths[p] + completion_lengths[r].max()) for p, r in enumerate(rows)]
        return token_budget_batches(lengths, [len(r) for r in rows], budget)

    @staticmethod
    def idle_part(generated: list[ScoredRollouts]) -> ScoredRollouts:
        """For a process left with nothing to train (all its groups filtered) while others train:
        one generated group with zero advantages, updated with weight 0 so that the process still
        takes part in the gradient reduction."""
        part = generated[0].select([0])
        part.advantages = torch.zeros(len(part.rollout))
        return part

    def update(self, parts: list[ScoredRollouts], weight: float = 1.0) -> dict:
        """One optimizer step over ``parts`` (gradient accumulation over their micro-batches).

        Losses are normalised by the token and sequence counts of all processes. ``weight`` 0
        makes this process's contribution zero (a process with nothing to train still joins the
        gradient reduction of the others).
        """
        cfg, algo, gen, policy = self.config, self.config.algorithm, self.config.generation, self.policy
        world = self.processes.world
        masks = [self.loss_mask(p) for p in parts]
        num_tokens, num_sequences = self.processes.sum(
            weight * sum(m.sum().item() for m in masks), weight * sum((m.sum(1) > 0).sum().item() for m in masks)
        )
        mu = sft_coef_at(self.step, algo.sft_coef, algo.sft_coef_end, algo.sft_decay_steps)
        sums = {"loss": 0.0, "entropy": 0.0, "clipped": 0.0, "kl": 0.0, "sft_loss": 0.0, "sampler_diff": 0.0, "is_weight": 0.0}
        first_tokens = 0.0  # tokens whose old log-probs this update records
        fresh = {j for j, part in enumerate(parts) if part.old_logprobs is None}  # parts at their first update
        for j in fresh:
            parts[j].old_logprobs = torch.zeros_like(parts[j].rollout.logprobs)
        if mu > 0:  # expert answers, tokenised once per update
            targets = [target_ids(policy, p.samples, p.batch) for p in parts]
            sft_tokens = sum(mask.sum().item() for _, mask in targets)
        micro = [(j, prompts) for j, part in enumerate(parts) for prompts in self.micro_batches(part)]
        for k, (j, prompts) in enumerate(micro):
            part = parts[j]
            with self.processes.no_sync(sync=k == len(micro) - 1):
                sub = part.select(prompts)
                r, m = sub.rollout, self.loss_mask(sub)
                logprobs, entropy = policy.token_logprobs(
                    sub.batch, r.prompt_index, r.completion_ids, r.completion_mask, gen.temperature,
                    entropy_grad=self.entropy_coef > 0,
                )
                if j in fresh:
                    self.record_old_logprobs(part, sub, prompts, logprobs.detach(), sums)
                    first_tokens += weight * r.completion_mask.sum().item()
                # Old log-probs are this forward's own at a group's first update (ratio exactly 1, in
                # any precision, as in TRL), kept for its later updates (PPO epochs, replay).
                per_token, clipped = clipped_surrogate(
                    logprobs, sub.old_logprobs, sub.advantages, algo.epsilon_low, algo.epsilon_high, algo.dual_clip
                )
                if sub.ref_logprobs is not None:
                    kl = self.kl_estimator(logprobs, sub.ref_logprobs)
                    if algo.kl_in == "loss":
                        per_token = per_token + algo.beta * kl
                    sums["kl"] += weight * (kl.detach() * m).sum().item()
                if sub.is_weights is not None:  # truncated IS: the sampler's distribution is not the trainer's
                    per_token = per_token * sub.is_weights
                loss = self.aggregate(per_token, m, num_tokens=num_tokens, num_sequences=num_sequences, max_tokens=gen.max_new_tokens)
                if self.entropy_coef > 0:
                    loss = loss - self.entropy_coef * (entropy * m).sum() / max(num_tokens, 1.0)
                if mu > 0:
                    ids, tmask = (t[torch.tensor(prompts)] for t in targets[j])
                    width = int(tmask.sum(1).max())  # this micro-batch's longest answer
                    ids, tmask = ids[:, :width], tmask[:, :width]
                    sft_logprobs, _ = policy.token_logprobs(sub.batch, torch.arange(len(prompts)), ids, tmask)
                    sft = weighted_sft_loss(sft_logprobs, tmask, sft_tokens, algo.sft_token_weighting)
                    loss = (1 - mu) * loss + mu * sft
                    sums["sft_loss"] += sft.item()
                # The data-parallel wrapper averages gradients over processes; the loss is a share of
                # the global one, so scaling by the process count makes that average the global sum.
                self.processes.backward(loss * (weight * world))
                sums["loss"] += weight * loss.item()
                sums["entropy"] += weight * (entropy.detach() * m).sum().item()
                sums["clipped"] += weight * (clipped.float() * m).sum().item()
        sums = dict(zip(sums, self.processes.sum(*sums.values())))
        (first_tokens,) = self.processes.sum(first_tokens)
        grad_norm = self.optimizer_step()
        if self.vllm is not None:
            self.vllm.mark_updated()
        metrics = {
            "loss": sums["loss"],
            "grad_norm": grad_norm,
            "entropy": sums["entropy"] / max(num_tokens, 1),
            "clip_frac": sums["clipped"] / max(num_tokens, 1),
            "entropy_coef": self.entropy_coef,
        }
        if self.ref_model is not None:
            metrics["kl"] = sums["kl"] / max(num_tokens, 1)
        if mu > 0:
            metrics["sft/coef"], metrics["sft/loss"] = mu, sums["sft_loss"]
        if first_tokens:
            metrics["sampler/logprob_abs_diff"] = sums["sampler_diff"] / first_tokens
            if gen.is_cap > 0:
                metrics["sampler/is_weight_mean"] = sums["is_weight"] / first_tokens
        return metrics

    def record_old_logprobs(self, part: ScoredRollouts, sub: ScoredRollouts, prompts: list[int], old: torch.Tensor, sums: dict) -> None:
        """A micro-batch's first update: keep its training log-probs as the old policy's (in ``part``
        for later updates, in ``sub`` for this one), measure them against the sampler's and, with
        generation.is_cap, weight its tokens by min(pi_train / pi_sampler, cap)."""
        gen, mask = self.config.generation, sub.rollout.completion_mask
        rows, width = part.rollout.rows_of(prompts), old.shape[1]
        part.old_logprobs[rows, :width] = old
        sub.old_logprobs = old
        sums["sampler_diff"] += ((old - sub.rollout.logprobs).abs() * mask).sum().item()
        if gen.is_cap > 0:
            weights = truncated_is_weights(old, sub.rollout.logprobs, mask, gen.is_cap)
            if part.is_weights is None:
                part.is_weights = torch.ones_like(part.rollout.logprobs)
            part.is_weights[rows, :width] = weights
            sub.is_weights = weights
            sums["is_weight"] += (weights * mask).sum().item()

    def train_step(self, samples: list[dict]) -> dict:
        algo, policy = self.config.algorithm, self.policy
        policy.vision_encodes = 0
        timings = {"prepare_s": 0.0, "generate_s": 0.0, "reward_s": 0.0}
        parts, generated, metrics = self.collect(samples, timings)
        generate_encodes = policy.vision_encodes
        replayed = [group for _, group in self.replay[: algo.replay_groups]]
        trained = parts + replayed
        update_metrics = {}
        t0 = time.perf_counter()
        if self.processes.any(bool(trained)):
            self.assign_advantages(trained)
            trained, weight = (trained, 1.0) if trained else ([self.idle_part(generated)], 0.0)
            for _ in range(algo.num_iterations):
                update_metrics = self.update(trained, weight)
            self.entropy_coef = entropy_bonus_coef(  # once a step, like every schedule
                self.entropy_coef, update_metrics["entropy"], algo.entropy_target, algo.entropy_coef_step, algo.entropy_coef_max
            )
        if algo.replay_groups:  # after the update: a kept group carries its old log-probs, so replay stays off-policy-corrected
            self.remember(parts)
        timings["update_s"] = time.perf_counter() - t0
        metrics.update(update_metrics)
        metrics.update(self.generation_metrics(generated))
        metrics.update(
            {
                "update/skipped": float(not update_metrics),
                "replay/groups": len(replayed),
                "vision/encodes": policy.vision_encodes,
                "vision/encodes_train": policy.vision_encodes - generate_encodes,
                **{f"time/{k}": v for k, v in timings.items()},
            }
        )
        if self.step % self.config.rollouts_every == 0:
            self.log_rollouts(parts)
        return metrics

    # -- logging ------------------------------------------------------------------------------
    def generation_metrics(self, generated: list[ScoredRollouts]) -> dict:
        """Reward and length statistics over every completion generated this step."""
        rewards = torch.cat([g.rewards for g in generated])
        valid = ~rewards.isnan()
        masks = torch.cat([g.rollout.completion_mask.float().sum(1) for g in generated])
        groups = sum(len(g.batch) for g in generated)
        zero_std = groups - sum(len(informative_groups(g.rewards, g.rollout.prompt_index)) for g in generated)
        metrics = {
            "reward/mean": rewards[valid].mean().item() if valid.any() else float("nan"),
            "reward/std": rewards[valid].std().item() if valid.sum() > 1 else 0.0,
            "completion_len/mean": masks.mean().item(),
            "completion/truncated_frac": torch.cat([g.rollout.truncated for g in generated]).float().mean().item(),
            "frac_zero_std_groups": zero_std / groups,
        }
        for name in generated[0].components:
            values = torch.cat([g.components[name] for g in generated])
            ok = ~values.isnan()
            metrics[f"reward/{name}/mean"] = values[ok].mean().item() if ok.any() else float("nan")
        return metrics

    def log_rollouts(self, parts: list[ScoredRollouts]) -> None:
        """Append this step's completions of every process to rollouts.jsonl (collective)."""
        rows = [
            {
                "step": self.step + 1,
                "prompt_id": part.batch.sample_ids[p],
                "image": prompt_image(part.samples[p]),
                "completion": part.rollout.texts[i],
                "reward": part.rewards[i].item(),
                **{f"reward/{n}": v[i].item() for n, v in part.components.items()},
                "advantage": part.advantages[i].item() if part.advantages is not None else 0.0,
            }
            for part in parts
            for i, p in enumerate(part.rollout.prompt_index.tolist())
        ]
        self.run.log_rollouts([row for rows_of_process in self.processes.gather(rows) for row in rows_of_process])

    def progress_fields(self, metrics: dict) -> dict:
        return {"reward": f"{metrics['reward/mean']:.3f}", "s/step": f"{metrics['time/step_s']:.2f}"}
