"""Memory a GRPO run needs, estimated from its config before anything is allocated.

The model is built on the meta device from its config (exact parameter counts, LoRA and
freezing applied as the trainer applies them); everything else is arithmetic on the config's
batch, group, token and pixel budgets. A step has three phases whose live memory differs, and
the peak is the largest:

- generation: weights, optimizer state (kept between steps), the reference model, the sampler's
  KV cache of batch_size x G rows over prompt + max_new_tokens, its per-step vocabulary tensors,
  and the reference model's no-grad log-prob pass over one micro-batch;
- training (one micro-batch's forward and backward): weights, optimizer state, reference,
  gradients, autocast's low-precision weight copies, activations, log-prob chunks;
- optimizer step: weights, gradients, optimizer state and AdamW's temporaries.

Sizes are bytes. The activation count per token and layer is written out in
:func:`decoder_layer_bytes`; allocator fragmentation and CUDA's context are not included.
"""

from __future__ import annotations

import math

import torch

from mmrft.policies.logprobs import CHUNK_ELEMENTS

PROMPT_TEXT_TOKENS = 64
"""Text tokens of a prompt besides its image: chat template, system line and question (the
synthetic tasks' questions are 15-30 tokens)."""

DTYPE_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
SAMPLER_VOCAB_TENSORS = 5
"""(rows, vocabulary) fp32 tensors alive in one sampling step: logits, scaled, log-softmax, the
suppressed copy and the probabilities (QwenVLPolicy.sample)."""
LOGPROB_CHUNK_TENSORS = 5
"""CHUNK_ELEMENTS-sized fp32 tensors alive in one log-prob chunk (mmrft.policies.logprobs)."""


def model_config_of(reference: str):
    """The transformers config of a model reference: the shape table for ``shape:`` specs and known
    hub ids (no hub access needed), else the resolved model's own config.json."""
    from transformers import AutoConfig

    from mmrft.policies.loading import resolve_model
    from mmrft.policies.shapes import model_config, shape_of

    shape = shape_of(reference)
    if shape is not None:
        return model_config(shape)
    return AutoConfig.from_pretrained(resolve_model(reference))


def meta_model(train_config):
    """The policy model on the meta device, with the config's LoRA and freezing applied."""
    from transformers import AutoModelForImageTextToText

    from mmrft.policies.loading import add_lora, freeze

    model_cfg = train_config.model
    with torch.device("meta"):
        model = AutoModelForImageTextToText.from_config(model_config_of(model_cfg.name_or_path))
        if model_cfg.lora_rank > 0:
            add_lora(model, model_cfg)  # adapters injected in place, as load_policy does
    freeze(model, model_cfg.freeze_vision, model_cfg.freeze_projector, model_cfg.freeze_language)
    return model


def prompt_tokens(train_config, model_config) -> tuple[int, int]:
    """(tokens of one prompt, vision patches of its image): the image at the synthetic data's size
    (or the largest the pixel budget allows), resized as Qwen's processor does, plus text."""
    from transformers.models.qwen2_vl.image_processing_qwen2_vl import smart_resize

    vision = model_config.vision_config
    merge = vision.spatial_merge_size
    factor = vision.patch_size * merge
    max_pixels = train_config.model.image_max_pixels or 1024 * 1024
    min_pixels = train_config.model.image_min_pixels or factor * factor * 4
    side = (train_config.data.synthetic or {}).get("image_size") or math.isqrt(max_pixels)
    height, width = smart_resize(side, side, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
    patches = (height // vision.patch_size) * (width // vision.patch_size)
    return patches // (merge * merge) + PROMPT_TEXT_TOKENS, patches


def decoder_layer_bytes(hidden: int, intermediate: int, q_dim: int, kv_dim: int, compute: int, residual: int, autocast: bool) -> int:
    """Bytes one decoder layer saves for backward per token (Qwen2/Qwen3 layer, SDPA attention).

    ``compute``: bytes of the matmuls' dtype (2 under bf16 autocast); ``residual``: of the
    residual stream (the weights' dtype: autocast leaves it fp32).

    - two RMSNorms: input (residual) and the normalised fp32 hidden: 2 (residual + 4) h;
    - the norms' outputs cast for q, k, v and gate, up (autocast casts per op): 5 c h (else 2 c h);
    - q, k, v projections: c (q + 2 kv); rotary in the residual dtype (cos/sin follow the hidden
      states) with its rotate_half inputs: (residual + c) (q + kv);
    - SDPA's inputs cast to c, k and v repeated to the query heads (a padding mask rules out
      grouped-query SDPA), and its output: c (q + 2 kv) + 2 c q + c q;
    - MLP: gate, up, SiLU(gate) and their product: 4 c I.
    """
    casts = 5 * compute * hidden if autocast else 2 * compute * hidden
    return (
        2 * (residual + 4) * hidden
        + casts
        + compute * (q_dim + 2 * kv_dim)
        + (residual + compute) * (q_dim + kv_dim)
        + compute * (q_dim + 2 * kv_dim)
        + 3 * compute * q_dim
        + 4 * compute * intermediate
    )


def vision_layer_bytes(hidden: int, intermediate: int, compute: int, residual: int) -> int:
    """Bytes one vision block saves per patch: two norms (residual + 4) h each, qkv c 3h, rotary
    (residual + c) 2h, attention inputs and output c 4h, MLP 4 c I (gated; Qwen2-VL's plain MLP saves less)."""
    return 2 * (residual + 4) * hidden + compute * 3 * hidden + (residual + compute) * 2 * hidden + 4 * compute * hidden + 4 * compute * intermediate


def estimate_memory(train_config, device: str = "cuda") -> dict:
    """Bytes each part of a GRPO step needs on ``device`` (cuda or cpu), by phase, and the peak.

    Keys: the components (``weights``, ``autocast_copies``, ``gradients``, ``optimizer_state``,
    ``optimizer_step_temp``, ``activations``, ``logprob_chunks``, ``kv_cache``, ``sampler_vocab``,
    ``reference_model``, ``reference_pass``), the phases (``phase/generation``,
    ``phase/training``, ``phase/optimizer_step``), ``peak``, and the counts they come from
    (``params``, ``trainable_params``, ``prompt_tokens``, ``micro_batch_rows``).
    """
    cfg, model_cfg, gen = train_config, train_config.model, train_config.generation
    model = meta_model(cfg)
    text = model.config.text_config
    vision = model.config.vision_config
    lora = model_cfg.lora_rank > 0
    weight_bytes = DTYPE_BYTES[model_cfg.dtype]
    autocast = model_cfg.autocast is not None
    compute = DTYPE_BYTES[model_cfg.autocast] if autocast else weight_bytes

    params = list({id(p): p for p in model.parameters()}.values())  # tied weights once
    trainable = [p for p in params if p.requires_grad]
    n_params = sum(p.numel() for p in params)
    n_trainable = sum(p.numel() for p in trainable)

    def stored(p) -> int:  # PEFT keeps adapters in float32 on a low-precision base
        return 4 if lora and p.requires_grad else weight_bytes

    weights = sum(p.numel() * stored(p) for p in params)
    # autocast caches a low-precision copy of every trainable weight for the forward and keeps it
    # for the backward; frozen float32 weights on the gradient path are cast per op and saved too.
    # (Embeddings are looked up, not cast, unless tied to the output head; a frozen vision tower
    # runs outside the graph, its projector alone on the gradient path.)
    from mmrft.policies.loading import PROJECTOR_MODULES

    visual = model.model.visual
    vision_trains = any(
        p.requires_grad for name, m in visual.named_children() if name not in PROJECTOR_MODULES for p in m.parameters()
    )
    embedding = model.get_input_embeddings().weight
    grad_path = {id(p): p for p in model.model.language_model.parameters() if p is not embedding}
    grad_path.update({id(p): p for p in model.get_output_embeddings().parameters()})
    grad_path.update({id(p): p for p in (visual.parameters() if vision_trains else trainable)})
    autocast_copies = sum(p.numel() * compute for p in grad_path.values() if stored(p) == 4) if autocast else 0
    gradients = sum(p.numel() * stored(p) for p in trainable)
    optimizer_state = 2 * gradients  # AdamW's exp_avg and exp_avg_sq, in the parameters' dtype
    # torch's foreach AdamW (the CUDA default) allocates about one copy of the parameters in its
    # step; the single-tensor loop on CPU one parameter's worth.
    largest = max((p.numel() * stored(p) for p in trainable), default=0)
    optimizer_step_temp = gradients if device == "cuda" else 2 * largest

    # -- tokens -----------------------------------------------------------------------------
    G, T = gen.num_generations, gen.max_new_tokens
    prompt, patches = prompt_tokens(cfg, model.config)
    micro_prompts = cfg.batch_size // cfg.optim.grad_accum
    if cfg.optim.micro_batch_tokens is not None:
        micro_prompts = max(1, cfg.optim.micro_batch_tokens // (G * (prompt + T)))
    micro_prompts = min(micro_prompts, cfg.batch_size)
    rows = micro_prompts * G
    gen_rows = cfg.batch_size * G

    head_dim = getattr(text, "head_dim", None) or text.hidden_size // text.num_attention_heads
    q_dim, kv_dim = text.num_attention_heads * head_dim, text.num_key_value_heads * head_dim
    layers, hidden, vocab = text.num_hidden_layers, text.hidden_size, text.vocab_size
    residual = weight_bytes
    per_token = layers * decoder_layer_bytes(hidden, text.intermediate_size, q_dim, kv_dim, compute, residual, autocast)
    # the cache keeps k after rotary (residual dtype) and v in the compute dtype
    kv_token_layer = kv_dim * (residual + compute)

    # -- training activations of one micro-batch ----------------------------------------------
    checkpointing = model_cfg.gradient_checkpointing
    if checkpointing:  # layer inputs only, plus one layer recomputed at a time (plain path: prompt + completion per row)
        tokens = rows * (prompt + T)
        activations = tokens * layers * residual * hidden + tokens * per_token // layers
        attention_keys = rows * (prompt + T) * (kv_dim * compute + 2 * q_dim * compute)  # one layer's
    else:  # each prompt once, its KV cache (reordered per row) shared by its G completions
        tokens = micro_prompts * prompt + rows * T
        activations = tokens * per_token
        # per row and layer: the reordered and extended cache, its cast and the repeat to query heads
        attention_keys = rows * (prompt + T) * layers * (kv_token_layer + kv_dim * compute + 2 * q_dim * compute)
    activations += attention_keys
    # the padding mask, cast to the compute dtype for each layer's SDPA: (queries x keys) per row
    queries_keys = rows * (prompt + T) ** 2 if checkpointing else micro_prompts * prompt**2 + rows * T * (prompt + T)
    activations += (1 if checkpointing else layers) * compute * queries_keys
    if vision_trains:
        vision_intermediate = getattr(vision, "intermediate_size", None) or vision.embed_dim * vision.mlp_ratio
        vision_hidden = getattr(vision, "embed_dim", None) or vision.hidden_size
        activations += micro_prompts * patches * vision.depth * vision_layer_bytes(vision_hidden, vision_intermediate, compute, residual)
    completion_hidden = rows * T * hidden * (compute + 4)  # the head's inputs at completion tokens
    logprob_chunks = LOGPROB_CHUNK_TENSORS * CHUNK_ELEMENTS * 4 + completion_hidden

    # -- generation ------------------------------------------------------------------------------
    kv_cache = gen_rows * (prompt + T) * layers * kv_token_layer
    sampler_vocab = SAMPLER_VOCAB_TENSORS * gen_rows * vocab * 4
    prefill = cfg.batch_size * prompt * (3 * compute * text.intermediate_size + 4 * residual * hidden)  # one layer, no grad

    reference_model = n_params * DTYPE_BYTES[model_cfg.autocast or model_cfg.dtype] if cfg.algorithm.beta > 0 else 0
    reference_pass = 0
    if reference_model:  # no grad: the reordered cache of one micro-batch across layers, plus chunks
        reference_pass = rows * (prompt + T) * layers * kv_token_layer + LOGPROB_CHUNK_TENSORS * CHUNK_ELEMENTS * 4

    resident = weights + optimizer_state + reference_model
    phases = {
        "phase/generation": resident + autocast_copies + kv_cache + sampler_vocab + prefill,
        "phase/reference": resident + reference_pass,
        "phase/training": resident + gradients + autocast_copies + activations + logprob_chunks,
        "phase/optimizer_step": resident + gradients + optimizer_step_temp,
    }
    if not reference_model:
        del phases["phase/reference"]
    return {
        "weights": weights,
        "autocast_copies": autocast_copies,
        "gradients": gradients,
        "optimizer_state": optimizer_state,
        "optimizer_step_temp": optimizer_step_temp,
        "activations": activations,
        "logprob_chunks": logprob_chunks,
        "kv_cache": kv_cache,
        "sampler_vocab": sampler_vocab + prefill,
        "reference_model": reference_model,
        "reference_pass": reference_pass,
        **phases,
        "peak": max(phases.values()),
        "params": n_params,
        "trainable_params": n_trainable,
        "prompt_tokens": prompt,
        "micro_batch_rows": rows,
    }


def format_estimate(estimate: dict) -> str:
    """The estimate as lines of GB, components then phases."""
    counts = ("params", "trainable_params", "prompt_tokens", "micro_batch_rows")
    lines = [
        f"  params {estimate['params'] / 1e9:.3f}B, trainable {estimate['trainable_params'] / 1e9:.3f}B; "
        f"prompt {estimate['prompt_tokens']} tokens; {estimate['micro_batch_rows']} rows a micro-batch"
    ]
    for key, value in estimate.items():
        if key not in counts:
            lines.append(f"  {key:<22} {value / 1e9:8.2f} GB")
    return "\n".join(lines)
