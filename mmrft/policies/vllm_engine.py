"""Sampling through vLLM (optional extra ``mmrft[vllm]``, GPU machines): the same :class:`Rollout`
as :meth:`QwenVLPolicy.sample`, for training rollouts (``generation.backend: vllm``) and for
``mmrft eval --backend vllm``.

The engine is colocated with the trainer in the same process (TRL's colocate mode, vLLM's
``external_launcher`` executor). With ``sleep`` on it sleeps between rollouts at level 2, which
frees both its weights and its KV cache for the training step; before the next rollout it wakes
and gets the training weights pushed in (the weights also go in after every update without
sleep). Prompts are the ones the HF path builds: the same chat template, the same images resized
by qwen-vl-utils and the same decoded video frames, so box coordinates mean the same thing.

Log-probs are vLLM's *processed* log-probs (after temperature), which is what the HF sampler
records; the two engines still differ numerically, which the trainer corrects with truncated
importance sampling (``generation.is_cap``).
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import torch

from mmrft.policies.inputs import PromptBatch, PromptParts, prompt_parts
from mmrft.policies.qwen_vl import QwenVLPolicy, Rollout

SUPPRESSED_BIAS = -100.0
"""Logit bias of the tokens the HF sampler never emits (vision placeholders, ``<|im_start|>``)."""


def require_vllm():
    """Import vLLM, or say how to get it."""
    try:
        import vllm
    except ImportError as err:
        raise ImportError(
            f"generation.backend vllm needs vLLM, which is not importable here ({err}); "
            "install the extra mmrft[vllm] on a GPU machine (pip install -e '.[vllm]')"
        ) from None
    return vllm


def multimodal_data(parts: PromptParts) -> dict:
    """vLLM's ``multi_modal_data`` of one prompt: its images as PIL and each video as
    (frames (T, H, W, C) uint8, metadata), frames already sampled and sized; the metadata's
    ``do_sample_frames: False`` keeps vLLM's processor from sampling them again, and its frame
    indices give Qwen3-VL its timestamps."""
    data = {}
    if parts.images:
        data["image"] = parts.images
    if parts.clips:
        data["video"] = [
            (
                clip.frames.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy(),
                {
                    "fps": clip.info.fps,
                    "frames_indices": list(clip.indices),
                    "total_num_frames": clip.indices[-1] - clip.indices[0] + 1,
                    "duration": len(clip.indices) / clip.sample_fps,
                    "do_sample_frames": False,
                },
            )
            for clip in parts.clips
        ]
    return data


def vllm_requests(policy: QwenVLPolicy, samples: list[dict], batch: PromptBatch | None = None) -> list[dict]:
    """One vLLM prompt per sample: the chat-templated text and its visuals, as the HF path sees them
    (taken from ``batch``, the samples' PromptBatch, where the caller has one: nothing is loaded twice)."""
    if batch is not None and batch.parts:
        every_part = batch.parts
    else:
        decoded: dict = {}  # each unique video decoded once
        every_part = [prompt_parts(s, policy.processor, policy.image_pixels, policy.video_options, decoded) for s in samples]
    requests = []
    for parts in every_part:
        request = {"prompt": parts.text}
        data = multimodal_data(parts)
        if data:
            request["multi_modal_data"] = data
        requests.append(request)
    return requests


def rollout_from_outputs(policy: QwenVLPolicy, token_ids: list[list[int]], logprobs: list[list[float]], num_samples: int) -> Rollout:
    """A :class:`Rollout` from each completion's token ids and their log-probs (``num_samples``
    per prompt, in prompt order), padded to the longest; a completion that ended on a stop token
    keeps it, as the HF sampler's do."""
    width = max(1, max(len(ids) for ids in token_ids))
    ids = torch.full((len(token_ids), width), policy.pad_id, dtype=torch.long)
    lps = torch.zeros((len(token_ids), width))
    for row, (tokens, values) in enumerate(zip(token_ids, logprobs, strict=True)):
        ids[row, : len(tokens)] = torch.tensor(tokens, dtype=torch.long)
        lps[row, : len(values)] = torch.tensor(values, dtype=torch.float)
    return policy.rollout(ids, lps, num_samples)


def sampled_logprobs(output) -> list[float]:
    """The log-prob of each sampled token of one vLLM ``CompletionOutput`` (requested with ``logprobs=0``)."""
    if output.logprobs is None:
        raise RuntimeError("vLLM returned no log-probs; the request must set SamplingParams(logprobs=0)")
    return [step[token].logprob for token, step in zip(output.token_ids, output.logprobs, strict=True)]


def sampling_extras(policy: QwenVLPolicy, seed: int | None) -> dict:
    """vLLM sampling parameters that make it sample as the HF path does: the same stop and
    suppressed tokens, the sampled token's log-prob returned, a seed per request."""
    return {
        "logprobs": 0,
        "seed": seed,
        "stop_token_ids": policy.stop_ids.tolist(),
        "logit_bias": {int(t): SUPPRESSED_BIAS for t in policy.suppressed_ids.tolist()},
        "skip_special_tokens": False,
    }


def place_image_features(features: dict | None, prompt_ids: list[int], image_token_id: int) -> dict | None:
    """Point server-processed image features at the runs of image tokens in ``prompt_ids`` (the
    server reports positions in the throwaway conversation it rendered the images in)."""
    if features is None:
        return None
    runs, i = [], 0
    while i < len(prompt_ids):
        if prompt_ids[i] == image_token_id:
            start = i
            while i < len(prompt_ids) and prompt_ids[i] == image_token_id:
                i += 1
            runs.append({"offset": start, "length": i - start})
        else:
            i += 1
    if len(runs) != len(features["mm_placeholders"]["image"]):
        raise ValueError(f"{len(runs)} runs of image tokens in the prompt, {len(features['mm_placeholders']['image'])} images processed")
    return {**features, "mm_placeholders": {**features["mm_placeholders"], "image": runs}}


def training_weights(policy: QwenVLPolicy) -> Iterator[tuple[str, torch.Tensor]]:
    """The policy's weights under the base model's parameter names; LoRA layers give W + their
    adapter's delta, computed aside (the module's own weights are never merged in place, which
    would round the frozen base a little at every push)."""
    if policy.peft is None:
        yield from ((name, p.detach()) for name, p in policy.model.state_dict().items())
        return
    from peft.tuners.lora import LoraLayer

    deltas = {
        name: module.get_delta_weight(module.active_adapters[0]).detach()
        for name, module in policy.peft.base_model.model.named_modules()
        if isinstance(module, LoraLayer) and module.merged_adapters == []
    }
    for name, p in policy.peft.base_model.model.state_dict().items():
        if "lora_" in name:
            continue
        owner = name.rsplit(".base_layer.", 1)[0] if ".base_layer." in name else None
        if owner is None:
            yield name, p.detach()
        elif name.endswith(".base_layer.weight") and owner in deltas:
            yield f"{owner}.weight", p.detach() + deltas[owner]
        else:
            yield name.replace(".base_layer.", "."), p.detach()


class EngineWeights:
    """The training weights, pushed to an engine lazily: after an update, before the next rollout."""

    stale = True  # the engine starts from the weights on disk; training may have resumed from others

    def mark_updated(self) -> None:
        """The training weights changed: push them before the next rollout."""
        self.stale = True

    def sync(self) -> None:
        if self.stale:
            self.push_weights()
            self.stale = False

    def push_weights(self) -> None:
        raise NotImplementedError


class VLLMSampler(EngineWeights):
    """A vLLM engine serving one policy's rollouts (see the module docstring)."""

    def __init__(
        self,
        policy: QwenVLPolicy,
        model_path: str,
        gpu_memory_utilization: float = 0.3,
        max_model_len: int | None = None,
        sleep: bool = True,
        seed: int = 0,
    ):
        vllm = require_vllm()
        for key, value in (("RANK", "0"), ("LOCAL_RANK", "0"), ("WORLD_SIZE", "1"), ("MASTER_ADDR", "127.0.0.1"), ("MASTER_PORT", "29533")):
            os.environ.setdefault(key, value)  # external_launcher runs in this process's (possibly trivial) group
        self.policy = policy
        self.sleep_between = sleep
        self.llm = vllm.LLM(
            model=model_path,
            gpu_memory_utilization=gpu_memory_utilization,
            max_model_len=max_model_len,
            enable_sleep_mode=sleep,
            distributed_executor_backend="external_launcher",
            seed=seed,
            logprobs_mode="processed_logprobs",  # after temperature, as the HF sampler records them
            limit_mm_per_prompt={"image": 4, "video": 1},
        )
        self.asleep = False
        if sleep:
            self.llm.sleep(level=2)  # level 2 drops the weights: they are pushed on waking
            self.asleep = True

    def push_weights(self) -> None:
        """Load the training model's current weights into the engine."""
        runner = self.llm.llm_engine.model_executor.driver_worker.model_runner
        with torch.no_grad():
            runner.model.load_weights(training_weights(self.policy))
        self.llm.reset_prefix_cache()

    def sample(
        self,
        samples: list[dict],
        num_samples: int = 1,
        max_new_tokens: int = 32,
        temperature: float = 1.0,
        top_p: float = 1.0,
        seed: int | None = None,
        batch=None,
    ) -> Rollout:
        """``num_samples`` completions of each sample's prompt (greedy at temperature 0). ``batch``:
        the samples' PromptBatch where the caller has one (its prompts' text and visuals are reused)."""
        from vllm import SamplingParams

        if self.asleep:
            self.llm.wake_up(tags=["weights"])
        self.sync()
        if self.asleep:
            self.llm.wake_up(tags=["kv_cache"])
            self.asleep = False
        params = SamplingParams(n=num_samples, temperature=temperature, top_p=top_p, max_tokens=max_new_tokens, **sampling_extras(self.policy, seed))
        outputs = self.llm.generate(vllm_requests(self.policy, samples, batch), sampling_params=params, use_tqdm=False)
        completions = [c for out in outputs for c in out.outputs]
        rollout = rollout_from_outputs(
            self.policy, [list(c.token_ids) for c in completions], [sampled_logprobs(c) for c in completions], num_samples
        )
        if self.sleep_between:
            self.llm.sleep(level=2)
            self.asleep = self.stale = True  # level 2 dropped the weights
        return rollout


class VLLMServerSampler(EngineWeights):
    """Rollouts from a separate vLLM server (its own GPUs), through TRL's ``VLLMClient``: start it with
    ``vllm serve MODEL --weight-transfer-config '{"backend": "nccl"}' --enable-scale-out
    --logprobs-mode processed_logprobs``. Prompts go as the HF path's token ids with server-processed
    images; updated weights are broadcast over NCCL before the next rollout. Images only: the
    client has no video path."""

    def __init__(self, policy: QwenVLPolicy, base_url: str, connection_timeout: float = 240.0):
        require_vllm()
        from trl.generation.vllm_client import VLLMClient

        self.policy = policy
        self.client = VLLMClient(base_url=base_url, connection_timeout=connection_timeout)
        mode = self.client.get_server_info()["model_config"].get("logprobs_mode")
        if mode != "processed_logprobs":
            raise RuntimeError(f"the vLLM server at {base_url} runs with --logprobs-mode {mode}; restart it with processed_logprobs")
        self.client.init_communicator(torch.device("cuda", torch.cuda.current_device()))

    def push_weights(self) -> None:
        weights = list(training_weights(self.policy))
        metadata = [(name, str(t.dtype).removeprefix("torch."), list(t.shape)) for name, t in weights]
        self.client.update_named_params(metadata, iter(weights))
        self.client.reset_prefix_cache()

    def sample(self, samples, num_samples=1, max_new_tokens=32, temperature=1.0, top_p=1.0, seed=None, batch=None) -> Rollout:
        batch = batch if batch is not None else self.policy.prompts(samples, keep_parts=True)
        if len(batch.videos):
            raise ValueError("the vLLM server mode takes images only (TRL's client has no video path); use the colocated engine")
        self.sync()
        prompt_ids = [row[mask.bool()].tolist() for row, mask in zip(batch.input_ids, batch.attention_mask, strict=True)]
        images = [request.get("multi_modal_data", {}).get("image") for request in vllm_requests(self.policy, samples, batch)]
        features = self.client.image_features(images) if any(images) else None
        if features is not None:
            image_token = self.policy.processor.tokenizer.convert_tokens_to_ids("<|image_pad|>")
            features = [place_image_features(f, ids, image_token) for f, ids in zip(features, prompt_ids, strict=True)]
        extras = sampling_extras(self.policy, seed)
        out = self.client.generate(
            prompt_ids, features, n=num_samples, temperature=temperature, top_p=top_p, max_tokens=max_new_tokens,
            logprobs=0, generation_kwargs={k: v for k, v in extras.items() if k != "logprobs"},
        )
        logprobs = [[step[0] for step in row] for row in out["logprobs"]]
        return rollout_from_outputs(self.policy, out["completion_ids"], logprobs, num_samples)


__all__ = ["VLLMSampler", "VLLMServerSampler", "place_image_features", "require_vllm", "rollout_from_outputs", "training_weights", "vllm_requests"]
