"""`call_reward` contains failing rewards: raising, hanging, wrong length, non-numbers; and `call_components`."""

import multiprocessing
import threading
import time

import pytest

from mmrft.rewards import RewardError, call_components, call_reward, get_reward, reward_spec, safety

COMPLETIONS = ["<answer>cat</answer>", "<answer>dog</answer>", "<answer>owl</answer>"]

PLUGIN = '''
def broken_reward(completions, **_):
    """Fails on purpose, like a buggy user reward."""
    raise KeyError("solution_v2")
'''


@pytest.fixture
def broken_plugin(tmp_path):
    path = tmp_path / "broken_plugin.py"
    path.write_text(PLUGIN)
    return get_reward(f"{path}:broken_reward")


@pytest.mark.parametrize("policy, expected", [("none", [None] * 3), ("zero", [0.0] * 3)])
def test_raising_plugin_is_contained(broken_plugin, policy, expected):
    scores, errors = call_reward(broken_plugin, COMPLETIONS, {"solution": ["cat", "dog", "owl"]}, on_error=policy)
    assert scores == expected
    assert errors == 3


def test_raising_plugin_raise_policy_names_the_reward(broken_plugin):
    with pytest.raises(RewardError, match=r"reward 'broken_reward' failed: KeyError: 'solution_v2'") as info:
        call_reward(broken_plugin, COMPLETIONS, {}, on_error="raise")
    assert "\n" not in str(info.value)
    assert isinstance(info.value.__cause__, KeyError)


def test_good_reward_passes_through():
    scores, errors = call_reward(get_reward("classification"), COMPLETIONS, {"solution": ["cat", "cow", "owl"]})
    assert (scores, errors) == ([1.0, 0.0, 1.0], 0)


BAD_ITEMS = [
    ("string", "1.0"),
    ("nan", float("nan")),
    ("inf", float("inf")),
    ("list", [1.0]),
    ("dict", {"iou": 1.0}),
]


@pytest.mark.parametrize("case, bad", BAD_ITEMS, ids=[c[0] for c in BAD_ITEMS])
def test_bad_item_fails_alone(case, bad):
    def reward(completions, **_):
        return [1.0, bad, None]

    assert call_reward(reward, COMPLETIONS, {}, on_error="none") == ([1.0, None, None], 1)
    assert call_reward(reward, COMPLETIONS, {}, on_error="zero") == ([1.0, 0.0, None], 1)
    with pytest.raises(RewardError, match="completion 1"):
        call_reward(reward, COMPLETIONS, {}, on_error="raise")


def test_numpy_and_int_scores_are_floats():
    np = pytest.importorskip("numpy")

    def reward(completions, **_):
        return [np.float32(0.5), 1, np.int64(0)]

    scores, errors = call_reward(reward, COMPLETIONS, {})
    assert scores == [0.5, 1.0, 0.0] and all(type(s) is float for s in scores) and errors == 0


@pytest.mark.parametrize("result", [[1.0], [1.0] * 4, None, "abc", 1.0], ids=["short", "long", "None", "str", "float"])
def test_wrong_shape_fails_every_item(result):
    scores, errors = call_reward(lambda completions, **_: result, COMPLETIONS, {}, on_error="zero")
    assert (scores, errors) == ([0.0] * 3, 3)
    with pytest.raises(RewardError, match="for 3 completions"):
        call_reward(lambda completions, **_: result, COMPLETIONS, {}, on_error="raise", name="shape")


def test_timeout():
    def slow(completions, **_):
        time.sleep(2)
        return [1.0] * len(completions)

    start = time.perf_counter()
    assert call_reward(slow, COMPLETIONS, {}, on_error="none", timeout_s=0.05) == ([None] * 3, 3)
    assert time.perf_counter() - start < 1.0
    with pytest.raises(RewardError, match="TimeoutError"):
        call_reward(slow, COMPLETIONS, {}, on_error="raise", timeout_s=0.05)
    assert call_reward(lambda c, **_: [0.5] * 3, COMPLETIONS, {}, timeout_s=5) == ([0.5] * 3, 0)


def test_timeout_still_passes_exceptions():
    def boom(completions, **_):
        raise ValueError("bad")

    assert call_reward(boom, COMPLETIONS, {}, on_error="zero", timeout_s=5) == ([0.0] * 3, 3)


def test_unknown_policy():
    with pytest.raises(ValueError, match="none, zero, raise"):
        call_reward(get_reward("format"), COMPLETIONS, {}, on_error="skip")


def test_components_of_a_registered_reward():
    spec = reward_spec("detection_iou")
    columns = {"solution": [[[0, 0, 10, 10]]], "image_size": [[100, 100]]}
    components = call_components(spec.components, ['<answer>[{"bbox_2d": [0, 0, 10, 10], "confidence": 0.8}]</answer>'],
                                 columns)
    assert components == {"iou": [1.0], "confidence": [0.8], "precision": [1.0], "recall": [1.0]}


def test_components_failures_are_dropped():
    assert call_components(None, COMPLETIONS, {}) == {}
    assert call_components(lambda c, **_: 1 / 0, COMPLETIONS, {}) == {}
    out = call_components(lambda c, **_: {"ok": [1, float("nan"), None], "short": [1.0]}, COMPLETIONS, {})
    assert out == {"ok": [1.0, None, None]}


FOREVER = """
import time

def forever(completions, **columns):
    while True:
        time.sleep(3600)

def three_seconds(completions, **columns):
    time.sleep(3)
    return [1.0] * len(completions)
"""


@pytest.fixture
def hanging_plugin(tmp_path):
    path = tmp_path / "hanging.py"
    path.write_text(FOREVER)
    return path


def _reward_processes(name):
    return [p for p in multiprocessing.active_children() if p.name == f"reward-{name}"]


def test_a_reward_that_hangs_forever_costs_one_process_at_a_time(hanging_plugin):
    fn = reward_spec(f"{hanging_plugin}:forever").fn
    threads = threading.active_count()
    for _ in range(20):
        assert call_reward(fn, COMPLETIONS, {}, timeout_s=0.05) == ([None] * 3, 3)
        assert threading.active_count() == threads  # no abandoned thread per call
        assert _reward_processes("forever") == []  # the hung worker was killed
    assert call_reward(get_reward("format"), COMPLETIONS, {}, timeout_s=5)[1] == 0  # a fresh worker still scores


def test_plugins_get_a_default_timeout(hanging_plugin, monkeypatch):
    monkeypatch.setattr(safety, "DEFAULT_PLUGIN_TIMEOUT_S", 0.2)
    start = time.perf_counter()
    assert call_reward(reward_spec(f"{hanging_plugin}:three_seconds").fn, COMPLETIONS, {}) == ([None] * 3, 3)
    assert time.perf_counter() - start < 2.0
    assert call_reward(get_reward("format"), COMPLETIONS, {}) == call_reward(get_reward("format"), COMPLETIONS, {}, timeout_s=5)


def test_a_worker_that_dies_is_replaced(tmp_path):
    path = tmp_path / "dies.py"
    path.write_text("import os\n\ndef dies(completions, **columns):\n    os._exit(3)\n")
    fn = reward_spec(f"{path}:dies").fn
    for _ in range(3):
        assert call_reward(fn, COMPLETIONS, {}, timeout_s=5) == ([None] * 3, 3)
    assert _reward_processes("dies") == []
