"""Resolve a model reference (local dir, hub id, or ``tiny:<arch>``) and load it as a policy."""

from __future__ import annotations

import re
from pathlib import Path

import huggingface_hub
import torch
from transformers import AutoModelForImageTextToText, AutoProcessor

from mmrft.config.paths import cache_root
from mmrft.policies.qwen_vl import QwenVLPolicy
from mmrft.policies.shapes import SHAPE_PREFIX, parse_shape, shape_model_path
from mmrft.policies.tiny import ARCHS, build_tiny_model
from mmrft.rewards.coords import MODEL_COORD_CONVENTION

TINY_PREFIX = "tiny:"
TINY_VERSION = 1  # bump when the tiny builder changes, so stale caches are rebuilt


class ModelLoadError(RuntimeError):
    """A model reference that cannot be resolved; the message is one line naming it."""


def resolve_model(reference: str) -> str:
    """A path or hub id that ``from_pretrained`` accepts; ``tiny:<arch>`` and ``shape:NAME[/K]`` are built on first use."""
    if reference.startswith(TINY_PREFIX):
        arch = reference[len(TINY_PREFIX) :]
        if arch not in ARCHS:
            raise ModelLoadError(f"model '{reference}': unknown tiny architecture; known: {', '.join(ARCHS)}")
        path = cache_root() / "models" / f"tiny-{arch}-v{TINY_VERSION}"
        if not (path / "config.json").is_file():
            build_tiny_model(arch, path, seed=0)
        return str(path)
    if reference.startswith(SHAPE_PREFIX):  # a real architecture's shape, random weights (mmrft.policies.shapes)
        try:
            parse_shape(reference[len(SHAPE_PREFIX) :])
        except ValueError as err:
            raise ModelLoadError(f"model '{reference}': {err}") from None
        return str(shape_model_path(reference[len(SHAPE_PREFIX) :]))
    return reference


def _check_hub_reachable(reference: str, repo_id: str) -> None:
    """Fail in seconds, not after a minute of retries, when a hub id is neither cached nor reachable."""
    try:
        if isinstance(huggingface_hub.try_to_load_from_cache(repo_id, "config.json"), str):
            return
        huggingface_hub.HfApi().model_info(repo_id, timeout=10)
    except Exception as err:  # invalid id, offline mode, DNS failure, 404, gated repo: all mean "cannot load"
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelLoadError(
            f"model '{reference}' could not be loaded: not a local directory, not in the Hugging Face cache, "
            f"and the hub cannot be reached ({reason})"
        ) from None


def load_model_and_processor(reference: str, dtype: str = "float32"):
    """Load with the Auto classes; a hub id that cannot be reached raises :class:`ModelLoadError`."""
    path = resolve_model(reference)
    # A hub id is "name" or "namespace/name"; anything else is a local path.
    looks_local = path.startswith((".", "/", "~")) or path.count("/") > 1 or Path(path).exists()
    if looks_local and not (Path(path).expanduser() / "config.json").is_file():
        raise ModelLoadError(f"model '{reference}': no config.json in local directory {path}")
    if not looks_local:
        _check_hub_reachable(reference, path)
    if looks_local and not any(Path(path).expanduser().glob("*.safetensors")):
        raise ModelLoadError(
            f"model '{reference}': no *.safetensors weights in {path}; mmrft loads safetensors only "
            "(pickled .bin/.pt weights can run code when loaded)"
        )
    try:
        model = AutoModelForImageTextToText.from_pretrained(path, dtype=getattr(torch, dtype), use_safetensors=True)
        processor = AutoProcessor.from_pretrained(path)
    except OSError as err:
        reason = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise ModelLoadError(
            f"model '{reference}' could not be loaded: not a local directory and not reachable on the hub "
            f"or in the local cache ({reason})"
        ) from None
    return model, processor


PROJECTOR_MODULES = ("merger", "deepstack_merger_list")


def freeze(model, vision: bool = False, projector: bool = False, language: bool = False) -> None:
    """Fix the chosen parts' weights: vision encoder, projector (mergers), language model + head."""
    visual = model.model.visual
    for name, module in visual.named_children():
        if (projector if name in PROJECTOR_MODULES else vision):
            module.requires_grad_(False)
    if language:
        model.model.language_model.requires_grad_(False)
        model.lm_head.requires_grad_(False)
    if not any(p.requires_grad for p in model.parameters()):
        raise ModelLoadError("model.freeze_*: every part of the model is frozen; nothing would train")


def enable_activation_checkpointing(model) -> None:
    """Recompute each layer's activations in the backward pass (non-reentrant: works with frozen inputs)."""
    model.activation_checkpointing_enable(activation_checkpointing_kwargs={"use_reentrant": False})


def add_lora(model, model_config):
    """Inject PEFT LoRA adapters into ``model`` in place (base weights frozen); returns the PeftModel."""
    from peft import LoraConfig, get_peft_model

    names = "|".join(re.escape(n) for n in model_config.lora_target_modules)
    scope = "" if model_config.lora_vision else r"language_model\."
    config = LoraConfig(
        r=model_config.lora_rank,
        lora_alpha=model_config.lora_alpha,
        lora_dropout=model_config.lora_dropout,
        target_modules=rf".*{scope}.*\.({names})$",
    )
    return get_peft_model(model, config)


def load_policy(model_config, video_config=None) -> QwenVLPolicy:
    """Build a :class:`QwenVLPolicy` from a :class:`mmrft.config.ModelConfig` (and a VideoConfig), on
    the GPU where there is one."""
    model, processor = load_model_and_processor(model_config.name_or_path, model_config.dtype)
    arch = model.config.model_type
    convention = model_config.coord_convention or MODEL_COORD_CONVENTION.get(arch)
    if convention is None:
        raise ModelLoadError(
            f"model '{model_config.name_or_path}': architecture {arch} has no known box convention; "
            "set model.coord_convention"
        )
    peft = add_lora(model, model_config) if model_config.lora_rank > 0 else None
    freeze(model, model_config.freeze_vision, model_config.freeze_projector, model_config.freeze_language)
    if model_config.gradient_checkpointing:
        enable_activation_checkpointing(model)
    model.to("cuda" if torch.cuda.is_available() else "cpu")  # a trainer moves it to its process's device
    pixels = {
        key: value
        for key, value in (("min_pixels", model_config.image_min_pixels), ("max_pixels", model_config.image_max_pixels))
        if value is not None
    }
    video = {} if video_config is None else {k: v for k, v in vars(video_config).items() if v is not None}
    if "nframes" in video:
        video.pop("fps", None)
    policy = QwenVLPolicy(
        model, processor, coord_convention=convention, image_pixels=pixels, video_options=video, autocast=model_config.autocast
    )
    policy.peft = peft
    return policy
