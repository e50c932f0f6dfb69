"""Tiny Qwen-VL models built locally: the real transformers classes with small dimensions.

Nothing can be downloaded on a workstation without hub access, so tests and the CPU demo
build their own models: a byte-level BPE tokenizer trained on the task vocabulary (digits stay
single tokens through Qwen's own pre-tokenizer), Qwen's special tokens and chat template, the
real image/video processors with a small pixel budget, and a randomly initialised
``*ForConditionalGeneration`` from a tiny config. Everything is deterministic from a seed and
saved in Hugging Face layout, reloadable with ``AutoModelForImageTextToText`` /
``AutoProcessor``.
"""

from __future__ import annotations

import itertools
import json
import shutil
from dataclasses import dataclass
from pathlib import Path

import torch
import transformers
from tokenizers import Regex, Tokenizer, models, pre_tokenizers, trainers
from transformers import Qwen2Tokenizer

SPECIAL_TOKENS = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|vision_pad|>",
    "<|image_pad|>",
    "<|video_pad|>",
]

# Qwen's chat template reduced to what the processors need: roles, image/video placeholders, text.
CHAT_TEMPLATE = (
    "{% for message in messages %}<|im_start|>{{ message['role'] }}\n"
    "{% if message['content'] is string %}{{ message['content'] }}"
    "{% else %}{% for item in message['content'] %}"
    "{% if item['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>"
    "{% elif item['type'] == 'video' %}<|vision_start|><|video_pad|><|vision_end|>"
    "{% elif item['type'] == 'text' %}{{ item['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}"
)

COLOURS = ["red", "green", "blue", "yellow", "purple", "orange", "black", "white"]
SHAPES = ["circle", "square", "triangle", "rectangle", "star"]


def task_corpus() -> list[str]:
    """Text the tiny tokenizer is trained on: the vocabulary of the synthetic tasks."""
    lines = []
    for colour, shape in itertools.product(COLOURS, SHAPES):
        lines += [
            f"Locate the {colour} {shape}. Answer with the box as <answer>[x1, y1, x2, y2]</answer>.",
            f"What shape is in the image? Answer as <answer>{shape}</answer>.",
            f"What colour is the {shape}? <answer>{colour}</answer>",
            f"<think>The {colour} {shape} is near the top left corner.</think><answer>{shape}</answer>",
        ]
    lines += [
        "How many shapes are in the image? Answer as <answer>3</answer>.",
        "When does the event happen? Answer in seconds as <answer>[1.5, 4.0]</answer>.",
        "user assistant system You are a helpful assistant. video frame seconds time answer think",
    ] + ["user\n", "assistant\n"] * 40
    numbers = [f"<answer>[{a}, {b}, {a + 7}, {b + 9}]</answer>" for a, b in zip(range(0, 1000, 7), range(3, 1000, 11))]
    return lines * 4 + numbers


def build_tokenizer(vocab_size: int = 600) -> Qwen2Tokenizer:
    """Train a byte-level BPE on :func:`task_corpus` and wrap it as a real ``Qwen2Tokenizer``."""
    bpe = Tokenizer(models.BPE())
    # Qwen's own split (digits one at a time), then byte-level, as Qwen2Tokenizer does.
    bpe.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(transformers.models.qwen2.tokenization_qwen2.PRETOKENIZE_REGEX), "isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    bpe.train_from_iterator(task_corpus(), trainer)
    model_state = json.loads(bpe.to_str())["model"]
    merges = [tuple(m.split(" ")) if isinstance(m, str) else tuple(m) for m in model_state["merges"]]
    tokenizer = Qwen2Tokenizer(vocab=model_state["vocab"], merges=merges)
    tokenizer.add_special_tokens({"additional_special_tokens": SPECIAL_TOKENS[1:]})
    tokenizer.eos_token = "<|im_end|>"
    tokenizer.pad_token = "<|endoftext|>"
    tokenizer.chat_template = CHAT_TEMPLATE
    return tokenizer


@dataclass(frozen=True)
class ArchSpec:
    """How one Qwen-VL generation is put together from transformers classes."""

    model_cls: str
    config_cls: str
    processor_cls: str
    video_processor_cls: str
    patch_size: int


ARCHS = {
    "qwen2_vl": ArchSpec(
        "Qwen2VLForConditionalGeneration", "Qwen2VLConfig", "Qwen2VLProcessor", "Qwen2VLVideoProcessor", 14
    ),
    "qwen2_5_vl": ArchSpec(
        "Qwen2_5_VLForConditionalGeneration", "Qwen2_5_VLConfig", "Qwen2_5_VLProcessor", "Qwen2VLVideoProcessor", 14
    ),
    "qwen3_vl": ArchSpec(
        "Qwen3VLForConditionalGeneration", "Qwen3VLConfig", "Qwen3VLProcessor", "Qwen3VLVideoProcessor", 16
    ),
}


@dataclass(frozen=True)
class TinySize:
    """Dimensions of a tiny model; the defaults give about 2M parameters."""

    hidden: int = 128
    layers: int = 4
    heads: int = 4
    kv_heads: int = 2
    intermediate: int = 384
    vision_hidden: int = 96
    vision_layers: int = 2
    vision_heads: int = 4
    image_tokens_side: int = 4  # an image is at most side x side merged tokens (112 px at patch 14)


def tiny_model_config(arch: str, size: TinySize, tokenizer: Qwen2Tokenizer):
    """The transformers config of a tiny ``arch`` model of ``size`` for ``tokenizer`` (special-token ids, M-RoPE sections)."""
    from mmrft.policies.shapes import Shape, model_config

    head_dim = size.hidden // size.heads
    # M-RoPE sections (temporal, height, width) must sum to head_dim / 2.
    spatial = 3 * head_dim // 16
    shape = Shape(
        arch=arch,
        hidden=size.hidden,
        intermediate=size.intermediate,
        layers=size.layers,
        heads=size.heads,
        kv_heads=size.kv_heads,
        vocab=len(tokenizer),
        tied=False,
        rope_theta=10000.0,
        mrope_section=(head_dim // 2 - 2 * spatial, spatial, spatial),
        vision_depth=size.vision_layers,
        vision_hidden=size.vision_hidden,
        vision_heads=size.vision_heads,
        vision_intermediate=2 * size.vision_hidden,
        patch_size=ARCHS[arch].patch_size,
        fullatt_blocks=(size.vision_layers - 1,),
        deepstack_blocks=(0,),
        num_position_embeddings=64,
        head_dim=head_dim,
        max_positions=4096,
    )
    return model_config(shape, {t: tokenizer.convert_tokens_to_ids(t) for t in SPECIAL_TOKENS})


def build_processor(arch: str, tokenizer: Qwen2Tokenizer, image_tokens_side: int):
    """The model's real processor with a small pixel budget (one image is a few dozen tokens)."""
    spec = ARCHS[arch]
    factor = spec.patch_size * 2
    pixels = {"min_pixels": (factor * 2) ** 2, "max_pixels": (factor * max(image_tokens_side, 2)) ** 2}
    image_processor = transformers.Qwen2VLImageProcessor(patch_size=spec.patch_size, merge_size=2, **pixels)
    video_processor = getattr(transformers, spec.video_processor_cls)(
        patch_size=spec.patch_size, merge_size=2, min_pixels=pixels["min_pixels"], max_pixels=pixels["max_pixels"]
    )
    processor_cls = getattr(transformers, spec.processor_cls)
    return processor_cls(
        image_processor=image_processor,
        tokenizer=tokenizer,
        video_processor=video_processor,
        chat_template=CHAT_TEMPLATE,
    )


def build_tiny_model(arch: str, out_dir: str | Path, seed: int = 0, size: TinySize = TinySize()) -> Path:
    """Build a tiny ``arch`` model (qwen2_vl, qwen2_5_vl or qwen3_vl) and its processor into ``out_dir``."""
    if arch not in ARCHS:
        raise ValueError(f"unknown tiny architecture {arch!r}; known: {', '.join(ARCHS)}")
    out_dir = Path(out_dir)
    tokenizer = build_tokenizer()
    torch.manual_seed(seed)
    config = tiny_model_config(arch, size, tokenizer)
    model = getattr(transformers, ARCHS[arch].model_cls)(config)
    model.generation_config.pad_token_id = config.text_config.pad_token_id
    model.generation_config.eos_token_id = config.text_config.eos_token_id
    model.generation_config.bos_token_id = config.text_config.bos_token_id
    tmp = out_dir.with_name(out_dir.name + ".partial")
    model.save_pretrained(tmp)
    build_processor(arch, tokenizer, size.image_tokens_side).save_pretrained(tmp)
    if out_dir.exists():
        shutil.rmtree(out_dir)
    tmp.rename(out_dir)
    return out_dir
