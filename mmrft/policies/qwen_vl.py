"""QwenVLPolicy: a Qwen-VL model as a policy that samples completions and scores their tokens.

The log-prob grain is the token: :meth:`QwenVLPolicy.sample` returns, for every generated
token, ``log softmax(logits / T)`` of the full vocabulary at the generation forward, and
:meth:`QwenVLPolicy.token_logprobs` recomputes the same quantity in a training forward over
``[prompt | completion]``. Both use the same M-RoPE positions (computed once from the prompt
with ``mm_token_type_ids``), so the two agree to float precision (DESIGN.md §4).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from mmrft.policies.inputs import PromptBatch, build_prompt_batch, encode_visuals, gather_for_rows
from mmrft.policies.logprobs import head_logprobs, head_override, restrict

# Tokens a young model may sample that would break the next forward (image features vs tokens)
# or start a new turn.
SUPPRESSED_TOKENS = ("<|im_start|>", "<|vision_start|>", "<|vision_end|>", "<|vision_pad|>", "<|image_pad|>", "<|video_pad|>")
STOP_TOKENS = ("<|im_end|>", "<|endoftext|>")


@dataclass
class Rollout:
    """Completions sampled for a :class:`PromptBatch`; row ``i`` continues prompt ``prompt_index[i]``."""

    prompt_index: torch.Tensor  # (N,)
    completion_ids: torch.Tensor  # (N, T), padded after the stop token
    completion_mask: torch.Tensor  # (N, T), 1 up to and including the stop token
    logprobs: torch.Tensor  # (N, T), generation-time log-probs of the sampled tokens
    texts: list[str]
    truncated: torch.Tensor  # (N,), True where no stop token was produced

    def __len__(self) -> int:
        return len(self.texts)

    def rows_of(self, prompts: list[int]) -> torch.Tensor:
        """Row indices of the completions of ``prompts``, prompt by prompt."""
        return torch.cat([(self.prompt_index == p).nonzero().squeeze(1) for p in prompts])

    def select(self, prompts: list[int]) -> Rollout:
        """The completions of ``prompts``, renumbered to index ``select_prompts(batch, prompts)``,
        without the padding columns past their longest completion."""
        rows = self.rows_of(prompts)
        local = {p: i for i, p in enumerate(prompts)}
        width = max(1, int(self.completion_mask[rows].sum(1).max())) if len(rows) else 1
        return Rollout(
            prompt_index=torch.tensor([local[p] for p in self.prompt_index[rows].tolist()], dtype=torch.long),
            completion_ids=self.completion_ids[rows, :width],
            completion_mask=self.completion_mask[rows, :width],
            logprobs=self.logprobs[rows, :width],
            texts=[self.texts[i] for i in rows.tolist()],
            truncated=self.truncated[rows],
        )


def _top_p_filter(logits: torch.Tensor, top_p: float) -> torch.Tensor:
    if top_p >= 1.0:
        return logits
    sorted_logits, order = logits.sort(dim=-1, descending=True)
    cumulative = sorted_logits.softmax(-1).cumsum(-1)
    drop = cumulative - sorted_logits.softmax(-1) > top_p  # keep the token that crosses p
    sorted_logits = sorted_logits.masked_fill(drop, float("-inf"))
    return torch.empty_like(logits).scatter_(-1, order, sorted_logits)


class QwenVLPolicy:
    """A Qwen2-VL / Qwen2.5-VL / Qwen3-VL model and processor, wrapped for RFT."""

    def __init__(
        self,
        model,
        processor,
        coord_convention: str,
        image_pixels: dict[str, int] | None = None,
        video_options: dict | None = None,
        autocast: str | None = None,
    ):
        self.model = model
        self.processor = processor
        self.coord_convention = coord_convention
        self.image_pixels = image_pixels or {}
        self.video_options = video_options or {}
        self.autocast = getattr(torch, autocast) if autocast else None  # mixed-precision dtype of the forwards
        self.peft = None  # the PeftModel wrapping ``model`` when LoRA adapters train (see loading.add_lora)
        tok = processor.tokenizer
        self.pad_id = tok.pad_token_id
        self.stop_ids = torch.tensor([tok.convert_tokens_to_ids(t) for t in STOP_TOKENS if t in tok.get_vocab()])
        self.suppressed_ids = torch.tensor([tok.convert_tokens_to_ids(t) for t in SUPPRESSED_TOKENS if t in tok.get_vocab()])
        self.vision_encodes = 0  # images and videos run through the vision tower since the last reset
        self.training_forward: torch.nn.Module | None = None  # a wrapped TrainingForward (several processes)
        # Whether sampling may stop, given that this process's sequences are all done. Sharded
        # weights (FSDP) make every forward collective: there, all processes must be done.
        self.everyone_done: Callable[[bool], bool] = lambda done: done

    @property
    def arch(self) -> str:
        return self.model.config.model_type

    def prompts(self, samples: list[dict], keep_parts: bool = False) -> PromptBatch:
        """Process samples into a :class:`PromptBatch` (left-padded, visuals deduplicated);
        ``keep_parts`` keeps each prompt's text and visuals for a vLLM request."""
        return build_prompt_batch(samples, self.processor, self.model, self.image_pixels, self.video_options, keep_parts)

    def _precision(self, model):
        """Autocast in the mixed-precision dtype when there is one (a no-op otherwise)."""
        return torch.autocast(model.device.type, dtype=self.autocast, enabled=self.autocast is not None)

    def _forward(self, model, **inputs):
        with self._precision(model):
            return model(**inputs)

    def _prefill(self, model, batch: PromptBatch):
        """One forward over every prompt of ``batch`` (vision tower included), keeping its KV cache
        and the logits of its last position: what its completions continue."""
        return self._forward(
            model,
            input_ids=batch.input_ids,
            attention_mask=batch.attention_mask,
            position_ids=batch.position_ids,
            mm_encoder_outputs=self._encode(batch, list(range(len(batch))), model),
            use_cache=True,
            logits_to_keep=1,
        )

    def _encode(self, batch: PromptBatch, prompt_rows: list[int], model=None) -> dict | None:
        """Vision-tower outputs for rows continuing ``prompt_rows``: each unique visual encoded once."""
        model = model or self.model
        with self._precision(model):
            encoded = encode_visuals(model, batch)
        self.vision_encodes += batch.num_visuals
        return gather_for_rows(encoded, batch, prompt_rows)

    @torch.no_grad()
    def sample(
        self,
        batch: PromptBatch,
        num_samples: int = 1,
        max_new_tokens: int = 32,
        temperature: float = 1.0,
        top_p: float = 1.0,
        generator: torch.Generator | None = None,
        allowed_ids: torch.Tensor | None = None,
    ) -> Rollout:
        """Sample ``num_samples`` completions per prompt (greedy when ``temperature == 0``).

        One prefill per prompt: the vision tower and the prompt run once, and the KV cache is
        repeated for the prompt's samples. Log-probs are of ``softmax(logits / T)`` (T=1 for greedy).
        ``allowed_ids`` restricts the vocabulary (action tokens): the distribution sampled and
        scored is then the softmax over those tokens only, as in :meth:`token_logprobs`.
        """
        model = self.model
        device = model.device
        batch = batch.to(device)
        stop_ids = self.stop_ids.to(device)
        P = len(batch)
        out = self._prefill(model, batch)
        cache = out.cache
        cache.batch_repeat_interleave(num_samples)
        logits = out.logits[:, -1].repeat_interleave(num_samples, 0)
        attention = batch.attention_mask.repeat_interleave(num_samples, 0)
        position = batch.next_position.repeat_interleave(num_samples, 0)
        N = P * num_samples
        tokens, logprobs = [], []
        done = torch.zeros(N, dtype=torch.bool, device=device)
        scale = temperature if temperature > 0 else 1.0
        for t in range(max_new_tokens):
            scaled = restrict(logits.float() / scale, allowed_ids)
            step_logprobs = scaled.log_softmax(-1)
            allowed = scaled.clone()
            allowed[:, self.suppressed_ids] = float("-inf")
            if temperature > 0:
                probs = _top_p_filter(allowed, top_p).softmax(-1)
                where = generator.device if generator is not None else device  # the generator's device draws
                token = torch.multinomial(probs.to(where), 1, generator=generator).squeeze(1).to(device)
            else:
                token = allowed.argmax(-1)
            token = torch.where(done, torch.full_like(token, self.pad_id), token)
            tokens.append(token)
            logprobs.append(step_logprobs.gather(1, token[:, None]).squeeze(1).masked_fill(done, 0.0))
            done = done | torch.isin(token, stop_ids)
            if self.everyone_done(bool(done.all())) or t == max_new_tokens - 1:
                break
            attention = torch.cat([attention, torch.ones(N, 1, dtype=attention.dtype, device=device)], dim=1)
            out = self._forward(
                model,
                input_ids=token[:, None],
                attention_mask=attention,
                position_ids=(position + t).view(1, N, 1).expand(3, N, 1),
                cache=cache,
                use_cache=True,
            )
            logits = out.logits[:, -1]
        # rollouts live on the CPU, beside the rewards
        return self.rollout(torch.stack(tokens, 1).cpu(), torch.stack(logprobs, 1).cpu(), num_samples)

    def rollout(self, completion_ids: torch.Tensor, logprobs: torch.Tensor, num_samples: int) -> Rollout:
        """A :class:`Rollout` from sampled tokens (N, T) and their log-probs, ``num_samples`` rows per
        prompt in prompt order: masked after the first stop token and decoded."""
        is_stop = torch.isin(completion_ids, self.stop_ids)
        # Mask: every token up to and including the first stop token.
        after_stop = (is_stop.cumsum(1) - is_stop.long()) > 0
        completion_mask = (~after_stop).long()
        texts = self.processor.tokenizer.batch_decode(
            completion_ids.masked_fill(~completion_mask.bool() | is_stop, self.pad_id), skip_special_tokens=True
        )
        return Rollout(
            prompt_index=torch.arange(len(completion_ids) // num_samples).repeat_interleave(num_samples),
            completion_ids=completion_ids,
            completion_mask=completion_mask,
            logprobs=logprobs * completion_mask,
            texts=texts,
            truncated=~is_stop.any(1),
        )

    def token_logprobs(
        self,
        batch: PromptBatch,
        prompt_index: torch.Tensor,
        completion_ids: torch.Tensor,
        completion_mask: torch.Tensor,
        temperature: float = 1.0,
        model=None,
        allowed_ids: torch.Tensor | None = None,
        entropy_grad: bool = False,
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-token log-probs and entropies of completions, from a training forward.

        Rows are ``[prompt[prompt_index[i]] | completion_ids[i]]``. Each unique visual in
        ``batch`` is encoded once and shared by all rows that use it. ``model`` defaults to the
        policy's own, through :attr:`training_forward` when a trainer wrapped it for several
        processes (pass a frozen reference model to score under it).
        """
        args = (batch, prompt_index, completion_ids, completion_mask, temperature, allowed_ids, entropy_grad)
        if model is None and self.training_forward is not None:
            return self.training_forward(*args)
        return self.logprobs_under(model or self.model, *args)

    def logprobs_under(
        self, model, batch, prompt_index, completion_ids, completion_mask, temperature, allowed_ids, entropy_grad=False
    ):
        """:meth:`token_logprobs` under ``model``.

        The output head runs only at the completion tokens, in bounded chunks
        (:func:`mmrft.policies.logprobs.head_logprobs`): no (rows, positions, vocabulary) tensor is
        built. Where prompts have several completions (GRPO's groups), each prompt runs once and
        its KV cache, still in the autograd graph, is shared by its completions, which then run
        alone: N x (prompt + T) tokens become P x prompt + N x T. Gradient checkpointing (no cache
        in training) and one completion per prompt take the plain path: prompt and completion
        together. ``entropy_grad`` keeps the entropies in the autograd graph.
        """
        # Inputs go to the model's device; log-probs and entropies come back to the CPU (where
        # rollouts, rewards and advantages live), still in the autograd graph.
        device = model.device
        batch, prompt_index, completion_ids = batch.to(device), prompt_index.to(device), completion_ids.to(device)
        completion_mask = completion_mask.to(device, batch.attention_mask.dtype)
        steps = torch.arange(completion_ids.shape[1], device=device)
        completion_pos = (batch.next_position[prompt_index].view(1, -1, 1) + steps).expand(3, -1, -1)
        head = model.get_output_embeddings()
        vocab = getattr(head, "out_features", None)

        def score(forward, hidden, targets):
            return torch.stack(head_logprobs(forward, hidden, targets, temperature, allowed_ids, entropy_grad, vocab), 1)

        shared = len(prompt_index) > len(set(prompt_index.tolist())) and not getattr(model, "is_activation_checkpointing", False)
        parts = (self._shared_prefix_scores if shared else self._full_scores)(
            model, head, score, batch, prompt_index, completion_ids, completion_mask, completion_pos
        )
        out = torch.zeros(*completion_ids.shape, 2, device=device)
        for (rows, cols), values in parts:
            out = out.index_put((rows, cols), values)
        entropy = out[..., 1] if entropy_grad else out[..., 1].detach()
        return out[..., 0].cpu(), entropy.cpu()

    def _full_scores(self, model, head, score, batch, prompt_index, completion_ids, completion_mask, completion_pos):
        """[((rows, cols), (M, 2) log-probs and entropies)] of the completion tokens, from one
        forward over prompt + completion rows."""
        rows, cols = completion_mask.nonzero(as_tuple=True)
        with head_override(head, lambda forward, hidden: score(forward, hidden[rows, cols], completion_ids[rows, cols])):
            out = self._forward(
                model,
                input_ids=torch.cat([batch.input_ids[prompt_index], completion_ids], dim=1),
                attention_mask=torch.cat([batch.attention_mask[prompt_index], completion_mask], dim=1),
                position_ids=torch.cat([batch.position_ids[:, prompt_index], completion_pos], dim=2),
                mm_encoder_outputs=self._encode(batch, prompt_index.tolist(), model),
                use_cache=False,
                logits_to_keep=completion_ids.shape[1] + 1,  # hidden[:, t] predicts completion token t
            )
        return [((rows, cols), out.logits)]

    def _shared_prefix_scores(self, model, head, score, batch, prompt_index, completion_ids, completion_mask, completion_pos):
        """As :meth:`_full_scores`, from one prompt forward shared through its cache: each
        completion's first token is scored at its prompt's last position, the others at the
        completion's own positions."""
        first = completion_mask[:, 0].nonzero().squeeze(1)
        rows, cols = completion_mask[:, 1:].nonzero(as_tuple=True)
        prompt_rows = prompt_index[first]
        with head_override(head, lambda forward, hidden: score(forward, hidden[prompt_rows, -1], completion_ids[first, 0])):
            prefill = self._prefill(model, batch)
        cache = prefill.cache
        cache.reorder_cache(prompt_index)  # row i continues prompt prompt_index[i] (differentiable index_select)
        with head_override(head, lambda forward, hidden: score(forward, hidden[rows, cols], completion_ids[rows, cols + 1])):
            out = self._forward(
                model,
                input_ids=completion_ids,
                attention_mask=torch.cat([batch.attention_mask[prompt_index], completion_mask], dim=1),
                position_ids=completion_pos,
                cache=cache,
                use_cache=True,
            )
        return [((first, torch.zeros_like(first)), prefill.logits), ((rows, cols + 1), out.logits)]


class TrainingForward(torch.nn.Module):
    """The policy's training forward (vision tower, shared visuals, language model, log-probs) as
    one module, so that accelerate's data-parallel wrapper sees every parameter used in one call."""

    def __init__(self, policy: QwenVLPolicy):
        super().__init__()
        self.model = policy.model
        self.policy = policy

    def forward(self, *args) -> tuple[torch.Tensor, torch.Tensor]:
        return self.policy.logprobs_under(self.model, *args)
