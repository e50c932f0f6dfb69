"""Checkpoints: HF-layout safetensors weights plus trainer state, written atomically.

A checkpoint directory ``checkpoints/step-000123`` holds the model (``save_pretrained``,
safetensors), the processor, and ``trainer_state.pt`` (optimizer, scheduler, RNG and data
position; loaded with ``weights_only=True``). It is written under a ``.partial`` name and renamed
when complete, so a checkpoint is either whole or absent; ``complete.json`` marks it valid.
"""

from __future__ import annotations

import json
import random
import re
import shutil
from pathlib import Path

import torch

STEP_DIR = re.compile(r"^step-(\d+)$")


def save_checkpoint(root: Path, step: int, model, processor, state: dict, keep_last: int) -> Path:
    """Write checkpoint ``step`` under ``root`` atomically and delete all but the last ``keep_last``."""
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{step:06d}"
    tmp = root / f".step-{step:06d}.partial"
    shutil.rmtree(tmp, ignore_errors=True)
    model.save_pretrained(tmp, safe_serialization=True)
    processor.save_pretrained(tmp)
    torch.save(state, tmp / "trainer_state.pt")
    (tmp / "complete.json").write_text(json.dumps({"step": step}))
    shutil.rmtree(final, ignore_errors=True)
    tmp.rename(final)
    for old in list_checkpoints(root)[:-keep_last] if keep_last > 0 else []:
        shutil.rmtree(old, ignore_errors=True)
    return final


def list_checkpoints(root: Path) -> list[Path]:
    """Complete checkpoints under ``root``, oldest first."""
    if not root.is_dir():
        return []
    found = [p for p in root.iterdir() if STEP_DIR.match(p.name) and (p / "complete.json").is_file()]
    return sorted(found, key=lambda p: int(STEP_DIR.match(p.name).group(1)))


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
