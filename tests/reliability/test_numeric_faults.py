"""A non-finite loss or gradient skips its step; too many in a row stop the run with the last good checkpoint."""

from __future__ import annotations

import json

import pytest
import torch
from transformers import AutoModelForImageTextToText

from mmrft.training import GRPOTrainer
from mmrft.training.checkpoint import latest_valid_checkpoint
from mmrft.training.trainer import NonFiniteError

pytestmark = pytest.mark.faults


def snapshot(model) -> dict[str, torch.Tensor]:
    return {n: p.detach().clone() for n, p in model.named_parameters()}


def inject(trainer, where: str, bad_steps: set[int]) -> list[dict]:
    """Make the steps in ``bad_steps`` (0-based) non-finite; record the weights after every step."""
    snaps = []
    if where == "loss":  # NaN log-probs -> NaN loss
        token_logprobs = trainer.policy.token_logprobs

        def poisoned(*args, **kwargs):
            logprobs, entropy = token_logprobs(*args, **kwargs)
            return (logprobs * float("nan"), entropy) if trainer.step in bad_steps else (logprobs, entropy)

        trainer.policy.token_logprobs = poisoned
    else:  # one parameter's gradient becomes inf
        param = next(p for p in trainer.model.parameters() if p.requires_grad)
        param.register_hook(lambda g: g * float("inf") if trainer.step in bad_steps else g)
    train_step = trainer.train_step

    def recording(samples):
        metrics = train_step(samples)
        snaps.append(snapshot(trainer.model))
        return metrics

    trainer.train_step = recording
    return snaps


@pytest.mark.parametrize("where", ["loss", "gradient"])
def test_a_non_finite_step_is_skipped_and_training_goes_on(tmp_path, make_train_config, length_reward, where):
    config = make_train_config(tmp_path, rewards=[{"name": length_reward}], max_steps=3)
    trainer = GRPOTrainer(config)
    snaps = inject(trainer, where, bad_steps={1})
    trainer.train()
    rows = [json.loads(line) for line in (tmp_path / "metrics.jsonl").read_text().splitlines()]
    assert [r["numerics/skipped_updates"] for r in rows] == [0, 1, 0]
    assert all(torch.equal(snaps[1][n], snaps[0][n]) for n in snaps[0])  # the bad step changed nothing
    assert any(not torch.equal(snaps[2][n], snaps[1][n]) for n in snaps[0])  # the next one trained
    assert all(torch.isfinite(p).all() for p in trainer.model.parameters())
    state = next(iter(trainer.optimizer.state.values()))
    assert int(state["step"]) == 2  # two updates applied; the schedule counts steps, skipped or not
    assert [r["lr"] for r in rows] == [config.optim.lr] * 3


def test_too_many_non_finite_steps_stop_with_the_last_good_checkpoint(tmp_path, make_train_config, length_reward):
    config = make_train_config(
        tmp_path, rewards=[{"name": length_reward}], max_steps=10, save_every=1, max_nonfinite_steps=3
    )
    trainer = GRPOTrainer(config)
    inject(trainer, "gradient", bad_steps={2, 3, 4, 5, 6, 7, 8, 9})
    after_two = None
    with pytest.raises(NonFiniteError, match="3 steps in a row had a non-finite loss or gradient"):
        original = trainer.save

        def save():
            nonlocal after_two
            path = original()
            if trainer.step == 2:
                after_two = snapshot(trainer.model)
            return path

        trainer.save = save
        trainer.train()
    assert trainer.step == 5
    latest = latest_valid_checkpoint(tmp_path / "checkpoints")
    assert latest is not None
    saved = dict(AutoModelForImageTextToText.from_pretrained(latest).named_parameters())
    assert saved.keys() == after_two.keys()
    for name, tensor in saved.items():  # finite, and the skipped steps left step 2's weights in place
        assert torch.isfinite(tensor).all() and torch.equal(tensor.detach(), after_two[name]), name
