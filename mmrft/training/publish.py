"""Publishing a checkpoint to the Hugging Face hub: weights, processor and model card, through
``huggingface_hub`` (its token, endpoint and offline settings apply: ``HF_TOKEN``, ``HF_ENDPOINT``,
``HF_HUB_OFFLINE``)."""

from __future__ import annotations

from pathlib import Path

from mmrft.config import ConfigError
from mmrft.training.checkpoint import ADAPTER_DIR, CARD, ENGINE_DIR, MARKER, STEP_DIR, verify_checkpoint, write_model_card

TRAINER_STATE = "trainer_state.pt"
PLACEHOLDER = "REPO_ID"  # what a card's usage snippet names the model until it is pushed


def ignore_patterns(include_trainer_state: bool = False) -> list[str]:
    """What stays local: the completion marker, DeepSpeed's per-process state, temporary files and,
    unless asked, the optimizer state (twice the weights' size, useful only to resume)."""
    patterns = [MARKER, f"{ENGINE_DIR}/*", ".*"]
    return patterns if include_trainer_state else [*patterns, TRAINER_STATE]


def files_to_push(checkpoint: Path, include_trainer_state: bool = False) -> list[str]:
    """The checkpoint's files that go to the hub (filtered as the hub client's ``upload_folder`` does)."""
    from huggingface_hub.utils import DEFAULT_IGNORE_PATTERNS, filter_repo_objects

    checkpoint = Path(checkpoint)
    local = sorted(p.relative_to(checkpoint).as_posix() for p in checkpoint.rglob("*") if p.is_file())
    patterns = [*ignore_patterns(include_trainer_state), *DEFAULT_IGNORE_PATTERNS]
    return list(filter_repo_objects(local, ignore_patterns=patterns))


def check_publishable(checkpoint: Path) -> None:
    """Raise :class:`ConfigError` unless ``checkpoint`` is a whole mmrft checkpoint."""
    checkpoint = Path(checkpoint)
    if not checkpoint.is_dir():
        raise ConfigError(f"checkpoint: no such directory: {checkpoint}")
    if not (checkpoint / MARKER).is_file():
        raise ConfigError(f"checkpoint: {checkpoint} has no {MARKER}; push a checkpoint folder (runs/<run>/checkpoints/step-NNNNNN)")
    problem = verify_checkpoint(checkpoint)
    if problem is not None:
        raise ConfigError(f"checkpoint: {checkpoint} is corrupt ({problem}); push another one")


def card_text(checkpoint: Path, repo_id: str) -> str:
    """The checkpoint's model card with its usage snippet naming ``repo_id``; a checkpoint saved
    without a card (before cards existed) gets one from its run directory, written beside it."""
    checkpoint = Path(checkpoint)
    card = checkpoint / CARD
    if not card.is_file():
        from mmrft.training.model_card import run_model_card

        run = checkpoint.parent.parent
        match = STEP_DIR.match(checkpoint.name)
        if match is None or not (run / "config.yaml").is_file():
            raise ConfigError(f"checkpoint: {checkpoint} has no {CARD} and is not inside a run directory to write one from")
        write_model_card(checkpoint, run_model_card(run, int(match.group(1))))
    return card.read_text(encoding="utf-8").replace(PLACEHOLDER, repo_id)


def push_checkpoint(
    checkpoint: Path,
    repo_id: str,
    *,
    private: bool = False,
    revision: str | None = None,
    commit_message: str | None = None,
    include_trainer_state: bool = False,
    api=None,
):
    """Upload ``checkpoint`` (model, processor, LoRA adapters, model card) to hub repo ``repo_id`` in
    one commit, creating the repo (and branch ``revision``) if missing; returns the hub's ``CommitInfo``.

    ``api``: the ``huggingface_hub.HfApi`` to use (default: one with the user's saved token).
    """
    from huggingface_hub import CommitOperationAdd, HfApi

    checkpoint = Path(checkpoint)
    check_publishable(checkpoint)
    card = card_text(checkpoint, repo_id).encode("utf-8")
    operations = [
        CommitOperationAdd(path_in_repo=name, path_or_fileobj=card if name == CARD else checkpoint / name)
        for name in files_to_push(checkpoint, include_trainer_state)
    ]
    api = api or HfApi()
    api.create_repo(repo_id, private=private, exist_ok=True)
    if revision:
        api.create_branch(repo_id, branch=revision, exist_ok=True)
    adapter = " (LoRA merged; adapters in adapter/)" if (checkpoint / ADAPTER_DIR).is_dir() else ""
    return api.create_commit(
        repo_id,
        operations,
        commit_message=commit_message or f"mmrft checkpoint {checkpoint.name}{adapter}",
        revision=revision,
    )
