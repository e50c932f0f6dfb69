"""The lr schedule: linear warmup, then constant, linear or cosine decay to 0 at max_steps."""

import math

import pytest

from mmrft.training.trainer import lr_factor


def test_warmup_reaches_the_peak_on_its_last_step():
    assert [lr_factor("constant", 4, 10, s) for s in range(5)] == [0.25, 0.5, 0.75, 1.0, 1.0]


@pytest.mark.parametrize("schedule", ["linear", "cosine"])
def test_decay_starts_at_peak_and_ends_near_zero_without_a_wasted_step(schedule):
    factors = [lr_factor(schedule, 2, 12, s) for s in range(12)]
    assert factors[2] == 1.0
    assert all(a > b for a, b in zip(factors[2:], factors[3:]))
    assert 0 < factors[-1] < 0.15
    assert lr_factor(schedule, 2, 12, 12) == 0.0


def test_linear_and_cosine_values():
    assert lr_factor("linear", 0, 10, 5) == 0.5
    assert math.isclose(lr_factor("cosine", 0, 10, 5), 0.5)
    assert math.isclose(lr_factor("cosine", 0, 10, 2), 0.5 * (1 + math.cos(math.pi * 0.2)))
    assert lr_factor("constant", 0, 10, 9) == 1.0
