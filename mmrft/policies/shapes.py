"""Real Qwen-VL architecture dimensions, so a random-weight model of a real size builds offline.

Only the dimension fields of the public ``config.json`` files are kept (no weights, no
tokenizer): enough to build ``Qwen/Qwen2.5-VL-3B-Instruct``'s exact parameter count on the
meta device (memory estimates, :mod:`mmrft.training.memory`) or a random-weight model of its
shape with the tiny builder's tokenizer and processor (``shape:qwen2_5_vl_3b`` in a config;
``shape:NAME/K`` scales it down K times, keeping head dimensions so M-RoPE stays valid).
"""

from __future__ import annotations

import math
import shutil
from dataclasses import dataclass, replace
from pathlib import Path

SHAPE_PREFIX = "shape:"
SHAPE_VERSION = 1  # bump when the builder changes, so stale cached models are rebuilt


@dataclass(frozen=True)
class Shape:
    """One released model's dimensions (text decoder and vision tower)."""

    arch: str  # qwen2_vl, qwen2_5_vl or qwen3_vl (mmrft.policies.tiny.ARCHS)
    hidden: int
    intermediate: int
    layers: int
    heads: int
    kv_heads: int
    vocab: int
    tied: bool
    rope_theta: float
    mrope_section: tuple[int, ...]
    vision_depth: int
    vision_hidden: int  # Qwen2-VL: embed_dim
    vision_heads: int
    vision_intermediate: int = 0  # Qwen2-VL: hidden x mlp_ratio (4)
    patch_size: int = 14
    window_size: int = 112  # Qwen2.5-VL window attention
    fullatt_blocks: tuple[int, ...] = ()  # Qwen2.5-VL blocks with full attention
    deepstack_blocks: tuple[int, ...] = ()  # Qwen3-VL blocks whose features feed the decoder
    num_position_embeddings: int = 2304  # Qwen3-VL learned vision positions (a perfect square)
    head_dim: int = 128
    max_positions: int = 32768  # the text model's max_position_embeddings

    def scaled(self, k: int) -> Shape:
        """The shape K times smaller: heads, KV heads, intermediate sizes and vision heads divided by
        K (head dims kept), layers and vision depth ceil-divided, block indexes mapped into the new depth."""
        if k == 1:
            return self
        heads = max(1, self.heads // k)
        kv_heads = max(1, self.kv_heads // k)
        while heads % kv_heads:
            kv_heads -= 1
        vision_heads = max(1, self.vision_heads // k)
        depth = math.ceil(self.vision_depth / k)

        def blocks(indexes: tuple[int, ...]) -> tuple[int, ...]:
            return tuple(sorted({i * depth // self.vision_depth for i in indexes}))

        vision_head_dim = self.vision_hidden // self.vision_heads
        return replace(
            self,
            hidden=heads * self.head_dim,
            intermediate=max(1, self.intermediate // k),
            layers=math.ceil(self.layers / k),
            heads=heads,
            kv_heads=kv_heads,
            vision_depth=depth,
            vision_hidden=vision_heads * vision_head_dim,
            vision_heads=vision_heads,
            vision_intermediate=max(1, self.vision_intermediate // k),
            fullatt_blocks=blocks(self.fullatt_blocks),
            deepstack_blocks=blocks(self.deepstack_blocks),
        )


_QWEN2_ROPE = dict(rope_theta=1e6, mrope_section=(16, 24, 24))
_QWEN25_VISION = dict(
    vision_depth=32, vision_hidden=1280, vision_heads=16, vision_intermediate=3420, fullatt_blocks=(7, 15, 23, 31)
)
_QWEN3_ROPE = dict(rope_theta=5e6, mrope_section=(24, 20, 20), patch_size=16)
_QWEN3_SMALL_VISION = dict(
    vision_depth=24, vision_hidden=1024, vision_heads=16, vision_intermediate=4096, deepstack_blocks=(5, 11, 17)
)

SHAPES: dict[str, Shape] = {
    "qwen2_vl_2b": Shape(
        "qwen2_vl", 1536, 8960, 28, 12, 2, 151936, True, **_QWEN2_ROPE,
        vision_depth=32, vision_hidden=1280, vision_heads=16, vision_intermediate=5120,
    ),
    "qwen2_vl_7b": Shape(
        "qwen2_vl", 3584, 18944, 28, 28, 4, 152064, False, **_QWEN2_ROPE,
        vision_depth=32, vision_hidden=1280, vision_heads=16, vision_intermediate=5120,
    ),
    "qwen2_5_vl_3b": Shape("qwen2_5_vl", 2048, 11008, 36, 16, 2, 151936, True, **_QWEN2_ROPE, **_QWEN25_VISION),
    "qwen2_5_vl_7b": Shape("qwen2_5_vl", 3584, 18944, 28, 28, 4, 152064, False, **_QWEN2_ROPE, **_QWEN25_VISION),
    "qwen3_vl_2b": Shape("qwen3_vl", 2048, 6144, 28, 16, 8, 151936, True, **_QWEN3_ROPE, **_QWEN3_SMALL_VISION),
    "qwen3_vl_4b": Shape("qwen3_vl", 2560, 9728, 36, 32, 8, 151936, True, **_QWEN3_ROPE, **_QWEN3_SMALL_VISION),
    "qwen3_vl_8b": Shape(
        "qwen3_vl", 4096, 12288, 36, 32, 8, 151936, False, **_QWEN3_ROPE,
        vision_depth=27, vision_hidden=1152, vision_heads=16, vision_intermediate=4304, deepstack_blocks=(8, 16, 24),
    ),
}
"""Dimensions from each model's public config.json on the Hugging Face hub."""

HUB_IDS = {
    "Qwen/Qwen2-VL-2B-Instruct": "qwen2_vl_2b",
    "Qwen/Qwen2-VL-7B-Instruct": "qwen2_vl_7b",
    "Qwen/Qwen2.5-VL-3B-Instruct": "qwen2_5_vl_3b",
    "Qwen/Qwen2.5-VL-7B-Instruct": "qwen2_5_vl_7b",
    "Qwen/Qwen3-VL-2B-Instruct": "qwen3_vl_2b",
    "Qwen/Qwen3-VL-4B-Instruct": "qwen3_vl_4b",
    "Qwen/Qwen3-VL-8B-Instruct": "qwen3_vl_8b",
}
"""Hub models whose shape is in :data:`SHAPES` (their base, non-Instruct ids too): a memory
estimate needs no hub access for them."""


def parse_shape(spec: str) -> tuple[str, int]:
    """(name, K) of ``NAME`` or ``NAME/K`` (the part after ``shape:``); ValueError naming the known shapes."""
    name, _, k = spec.partition("/")
    if name not in SHAPES:
        raise ValueError(f"unknown shape {name!r}; known: {', '.join(SHAPES)}")
    if k and (not k.isdigit() or int(k) < 1):
        raise ValueError(f"shape {spec!r}: the scale divisor after '/' must be a positive integer")
    return name, int(k or 1)


def shape_of(reference: str) -> Shape | None:
    """The :class:`Shape` of ``shape:NAME[/K]`` or of a known hub id (base or Instruct); else None."""
    if reference.startswith(SHAPE_PREFIX):
        name, k = parse_shape(reference[len(SHAPE_PREFIX) :])
        return SHAPES[name].scaled(k)
    name = HUB_IDS.get(reference) or HUB_IDS.get(f"{reference}-Instruct")
    return SHAPES[name] if name else None


def model_config(shape: Shape, token_ids: dict[str, int] | None = None):
    """The transformers config of ``shape``; ``token_ids`` maps Qwen's special tokens to ids
    (default: ids past the tiny vocabulary; only a model that runs needs the real ones)."""
    import transformers

    from mmrft.policies.tiny import ARCHS, SPECIAL_TOKENS

    ids = token_ids or {t: 600 + i for i, t in enumerate(SPECIAL_TOKENS)}
    rope = {"rope_type": "default", "rope_theta": shape.rope_theta, "mrope_section": list(shape.mrope_section)}
    text = dict(
        vocab_size=shape.vocab,
        hidden_size=shape.hidden,
        intermediate_size=shape.intermediate,
        num_hidden_layers=shape.layers,
        num_attention_heads=shape.heads,
        num_key_value_heads=shape.kv_heads,
        max_position_embeddings=shape.max_positions,
        rope_parameters=rope,
        tie_word_embeddings=shape.tied,
        bos_token_id=ids["<|endoftext|>"],
        eos_token_id=ids["<|im_end|>"],
        pad_token_id=ids["<|endoftext|>"],
    )
    vision = dict(depth=shape.vision_depth, num_heads=shape.vision_heads, patch_size=shape.patch_size, spatial_merge_size=2, temporal_patch_size=2)
    if shape.arch == "qwen2_vl":
        vision.update(embed_dim=shape.vision_hidden, hidden_size=shape.hidden, mlp_ratio=shape.vision_intermediate // shape.vision_hidden)
    elif shape.arch == "qwen2_5_vl":
        vision.update(
            hidden_size=shape.vision_hidden,
            intermediate_size=shape.vision_intermediate,
            out_hidden_size=shape.hidden,
            window_size=shape.window_size,
            fullatt_block_indexes=list(shape.fullatt_blocks),
        )
    else:
        text.update(head_dim=shape.head_dim)
        rope["mrope_interleaved"] = True
        vision.update(
            hidden_size=shape.vision_hidden,
            intermediate_size=shape.vision_intermediate,
            out_hidden_size=shape.hidden,
            num_position_embeddings=shape.num_position_embeddings,
            deepstack_visual_indexes=list(shape.deepstack_blocks),
        )
    return getattr(transformers, ARCHS[shape.arch].config_cls)(
        text_config=text,
        vision_config=vision,
        image_token_id=ids["<|image_pad|>"],
        video_token_id=ids["<|video_pad|>"],
        vision_start_token_id=ids["<|vision_start|>"],
        vision_end_token_id=ids["<|vision_end|>"],
        tie_word_embeddings=shape.tied,
    )


def build_shape_model(spec: str, out_dir: str | Path, seed: int = 0) -> Path:
    """Build a random-weight model of ``spec`` (``NAME`` or ``NAME/K``) with the tiny builder's
    tokenizer and processor into ``out_dir``, weights saved in bfloat16 (a full-size model is
    large; ``from_pretrained`` casts them to the dtype asked for). Built on the GPU where there is one."""
    import torch
    import transformers

    from mmrft.policies.tiny import ARCHS, SPECIAL_TOKENS, TinySize, build_processor, build_tokenizer

    name, k = parse_shape(spec)
    shape = SHAPES[name].scaled(k)
    tokenizer = build_tokenizer()
    config = model_config(shape, {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS})
    torch.manual_seed(seed)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    with torch.device(device):
        model = getattr(transformers, ARCHS[shape.arch].model_cls)._from_config(config, dtype=torch.bfloat16)
    for key in ("pad_token_id", "eos_token_id", "bos_token_id"):
        setattr(model.generation_config, key, getattr(config.text_config, key))
    out_dir = Path(out_dir)
    tmp = out_dir.with_name(out_dir.name + ".partial")
    model.save_pretrained(tmp)
    del model
    build_processor(shape.arch, tokenizer, TinySize().image_tokens_side).save_pretrained(tmp)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return out_dir


def shape_model_path(spec: str) -> Path:
    """Where ``shape:SPEC`` is cached (built on first use)."""
    from mmrft.config.paths import cache_root

    name, k = parse_shape(spec)
    path = cache_root() / "models" / f"shape-{name}-k{k}-v{SHAPE_VERSION}"
    if not (path / "config.json").is_file():
        build_shape_model(spec, path)
    return path
