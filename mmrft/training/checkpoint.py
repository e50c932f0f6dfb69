"""Checkpoints: HF-layout safetensors weights plus trainer state, written atomically.

A checkpoint directory ``checkpoints/step-000123`` holds the model (``save_pretrained``,
safetensors), the processor, and ``trainer_state.pt`` (optimizer, scheduler, RNG and data
position; loaded with ``weights_only=True``). It is written under a ``.partial`` name and renamed
when complete, so a checkpoint is either whole or absent; ``complete.json`` marks it valid and
records the SHA-256 of every file, which :func:`verify_checkpoint` checks before a resume.

The model card ``README.md`` is the one file outside that scheme: it is written with the rest
(so it is there when the checkpoint appears), but it describes the weights rather than being
part of them, and it is rewritten (atomically, by :func:`write_model_card`) once the final
held-out evaluation exists. It is therefore not hashed, and a missing or edited card never
makes a checkpoint corrupt.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import random
import re
import shutil
from pathlib import Path

import torch

STEP_DIR = re.compile(r"^step-(\d+)$")
MARKER = "complete.json"
CARD = "README.md"  # the model card: in the checkpoint, outside the hashes (see above)
ADAPTER_DIR = "adapter"
ENGINE_DIR = "deepspeed"  # DeepSpeed's own per-process state (weights, optimizer partitions)
log = logging.getLogger(__name__)


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def partial_path(root: Path, step: int) -> Path:
    """Where checkpoint ``step`` is written before it is renamed into place."""
    return root / f".step-{step:06d}.partial"


def start_checkpoint(root: Path, step: int) -> Path:
    """An empty :func:`partial_path` for checkpoint ``step``, for files written before :func:`save_checkpoint`."""
    tmp = partial_path(root, step)
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    return tmp


def save_checkpoint(
    root: Path, step: int, model, processor, state: dict, keep_last: int, peft=None, state_dict: dict | None = None,
    started: bool = False, card: str | None = None,
) -> Path:
    """Write checkpoint ``step`` under ``root`` atomically and delete all but the last ``keep_last``.

    With LoRA (``peft``, the PeftModel around ``model``) the checkpoint holds the merged model,
    loadable like any other, and the adapters in ``adapter/``. ``state_dict``: the weights to
    write instead of the model's own (a sharded model's, gathered whole). ``started``: the
    partial directory was made by :func:`start_checkpoint` and holds files to keep (DeepSpeed's
    per-process state); they are covered by the completion marker like the rest. ``card``: the
    text of the model card, written as README.md (not hashed).
    """
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:06d}"
    tmp = partial_path(root, step)
    if not started:
        shutil.rmtree(tmp, ignore_errors=True)
    if peft is None:
        model.save_pretrained(tmp, state_dict=state_dict, safe_serialization=True)
        _plain_architecture_name(tmp / "config.json", model)
    else:  # a plain HF model with the adapters merged in, plus the adapters alone (what resume loads)
        model.save_pretrained(tmp, state_dict=merged_lora_state_dict(model), safe_serialization=True)
        peft.save_pretrained(tmp / ADAPTER_DIR)
    if processor is not None:
        processor.save_pretrained(tmp)
    torch.save(state, tmp / "trainer_state.pt")
    if card is not None:
        write_model_card(tmp, card)
    files = {str(p.relative_to(tmp)): _sha256(p) for p in sorted(tmp.rglob("*")) if p.is_file() and p != tmp / CARD}
    for name in [*files, *([CARD] if card is not None else [])]:  # contents on disk before the marker that vouches for them
        with open(tmp / name, "rb") as f:
            os.fsync(f.fileno())
    (tmp / MARKER).write_text(json.dumps({"step": step, "files": files}))
    _discard(final)
    tmp.rename(final)
    _fsync_dir(root)
    for old in list_checkpoints(root)[:-keep_last] if keep_last > 0 else []:
        _discard(old)
    return final


def write_model_card(checkpoint: Path, text: str) -> Path:
    """Write (or replace) ``checkpoint``'s model card atomically: a reader sees the old card or the new one."""
    path = checkpoint / CARD
    tmp = path.with_name(f".{CARD}.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def _plain_architecture_name(config_path: Path, model) -> None:
    """FSDP2 swaps a sharded model's class for ``FSDP<Class>``, which ``save_pretrained`` records as
    the architecture; write the model's own class name, which loaders (vLLM among them) look up."""
    plain = next(c.__name__ for c in type(model).__mro__ if not c.__name__.startswith("FSDP"))
    config = json.loads(config_path.read_text())
    if config.get("architectures") != [plain]:
        config["architectures"] = [plain]
        config_path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")


def _discard(checkpoint: Path) -> None:
    """Delete a checkpoint so that a kill at any moment leaves it whole or unlisted: it is first renamed
    (atomically) to a ``.partial`` name, which `list_checkpoints` ignores and resume clears."""
    if checkpoint.exists():
        doomed = checkpoint.with_name(f".{checkpoint.name}.discard.partial")
        shutil.rmtree(doomed, ignore_errors=True)
        checkpoint.rename(doomed)
        shutil.rmtree(doomed, ignore_errors=True)


def list_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoints under ``root``, oldest first."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if STEP_DIR.match(p.name) and (p / MARKER).is_file()]
    return sorted(found, key=lambda p: int(STEP_DIR.match(p.name).group(1)))


def merged_lora_state_dict(model) -> dict:
    """``model``'s state dict as the plain architecture names it, LoRA deltas added to their base weights.

    Nothing is merged in place, so the training weights stay bit-exact.
    """
    from peft.tuners.lora import LoraLayer

    layers = {name: module for name, module in model.named_modules() if isinstance(module, LoraLayer)}
    merged = {}
    for key, value in model.state_dict().items():
        if ".lora_" in key:
            continue
        if ".base_layer." in key:
            owner, _, leaf = key.partition(".base_layer.")
            if leaf == "weight":
                value = value + layers[owner].get_delta_weight(layers[owner].active_adapters[0]).to(value.dtype)
            key = f"{owner}.{leaf}"
        merged[key] = value
    return merged


def load_adapter(peft, checkpoint: Path) -> None:
    """Restore LoRA adapter weights saved by :func:`save_checkpoint` into ``peft``."""
    from peft import set_peft_model_state_dict
    from safetensors.torch import load_file

    set_peft_model_state_dict(peft, load_file(checkpoint / ADAPTER_DIR / "adapter_model.safetensors"))


def remove_partial_checkpoints(root: Path) -> None:
    """Delete ``.step-*.partial`` directories a killed save left behind (never valid checkpoints)."""
    if root.is_dir():
        for partial in root.glob(".step-*.partial"):
            shutil.rmtree(partial, ignore_errors=True)


def verify_checkpoint(checkpoint: Path) -> str | None:
    """None if every file listed in the checkpoint's marker is present with its recorded hash,
    else what is wrong."""
    try:
        marker = json.loads((checkpoint / MARKER).read_text())
    except (OSError, ValueError) as err:
        return f"unreadable {MARKER}: {err}"
    files = marker.get("files")
    if not files:
        return f"{MARKER} lists no files"
    for name, digest in files.items():
        path = checkpoint / name
        if not path.is_file():
            return f"{name} is missing"
        if _sha256(path) != digest:
            return f"{name} does not match its recorded SHA-256"
    return None


def latest_valid_checkpoint(root: Path) -> Path | None:
    """The newest checkpoint that passes :func:`verify_checkpoint`; corrupt ones are skipped with a warning."""
    for checkpoint in reversed(list_checkpoints(root)):
        problem = verify_checkpoint(checkpoint)
        if problem is None:
            return checkpoint
        log.warning("checkpoint %s is corrupt (%s); trying the one before it", checkpoint, problem)
    return None


def load_trainer_state(checkpoint: Path) -> dict:
    return torch.load(checkpoint / "trainer_state.pt", weights_only=True)


def rng_state() -> dict:
    return {
        "python": random.getstate(),
        "torch": torch.get_rng_state(),
    }


def set_rng_state(state: dict) -> None:
    random.setstate(state["python"])
    torch.set_rng_state(state["torch"])
