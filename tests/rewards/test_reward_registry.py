from importlib.metadata import EntryPoint
from pathlib import Path

import pytest

import mmrft.rewards.registry as registry
from mmrft.rewards import UnknownRewardError, get_reward, list_rewards, register_reward, reward_spec

PLUGIN = Path(__file__).resolve().parents[2] / "rewards" / "example_plugin.py"


@pytest.fixture
def clean_registry(monkeypatch):
    """Register test rewards into a copy, so they do not leak into other tests."""
    monkeypatch.setattr(registry, "_REGISTRY", dict(registry._REGISTRY))


def test_builtins_registered():
    assert {s.name for s in list_rewards()} >= {
        "format", "format_nothink", "length_penalty", "repetition_penalty", "box_iou", "box_giou", "point_in_box",
        "detection_iou", "detection_confidence", "classification", "classification_exact", "count",
        "multiple_choice", "vqa_accuracy", "math", "temporal_iou", "track_iou", "trajectory",
    }
    assert all(s.range[0] < s.range[1] and s.description for s in list_rewards())
    assert reward_spec("box_giou").range == (-1.0, 1.0)
    assert reward_spec("length_penalty").range == (-1.0, 0.0)


def test_register_with_components(clean_registry):
    def parts(completions, **_):
        return {"a": [1.0] * len(completions)}

    @register_reward("with_parts", components=parts)
    def with_parts(completions, **_):
        """Has parts."""
        return [1.0] * len(completions)

    assert reward_spec("with_parts").components is parts
    assert reward_spec("format").components is None


def test_bad_range_raises(clean_registry):
    with pytest.raises(ValueError, match="low <= high"):
        register_reward("backwards", range=(1.0, 0.0))


def test_register_and_get(clean_registry):
    @register_reward("always_half", range=(0.0, 0.5))
    def always_half(completions, **_):
        """Half, always."""
        return [0.5] * len(completions)

    assert get_reward("always_half") is always_half
    assert reward_spec("always_half").range == (0.0, 0.5)
    assert reward_spec("always_half").description == "Half, always."


def test_duplicate_name_raises(clean_registry):
    with pytest.raises(ValueError, match="already registered"):
        register_reward("format")(lambda completions, **_: [])


def test_unknown_name_suggests_and_lists():
    with pytest.raises(KeyError) as info:
        get_reward("box_iuo")
    message = str(info.value)
    assert "did you mean 'box_iou'" in message
    assert "classification" in message and "format_nothink" in message
    with pytest.raises(ValueError):  # also a ValueError, for callers validating configs
        get_reward("nope")


def test_plugin_by_path_registers_nothing(monkeypatch):
    before = [s.name for s in list_rewards()]
    fn = get_reward(f"{PLUGIN}:answer_length_penalty")
    assert [s.name for s in list_rewards()] == before
    assert fn(["<answer>short</answer>", f"<answer>{'x' * 96}</answer>", "no block"], solution=[1, 2, 3]) == [
        1.0, 0.5, None
    ]
    assert get_reward(f"{PLUGIN}:answer_length_penalty") is fn  # the file is imported once
    monkeypatch.chdir(PLUGIN.parents[1])
    assert get_reward("rewards/example_plugin.py:answer_length_penalty") is fn


def test_plugin_by_path_errors(tmp_path):
    with pytest.raises(FileNotFoundError):
        get_reward(f"{tmp_path}/missing.py:fn")
    with pytest.raises(UnknownRewardError, match="answer_length_penalty"):
        get_reward(f"{PLUGIN}:no_such_function")


def test_entry_point(monkeypatch):
    ep = EntryPoint(name="my_count", value="mmrft.rewards.answers:count_reward", group="mmrft.rewards")

    def fake_entry_points(*, group, name):
        return [ep] if (group, name) == (ep.group, ep.name) else []

    monkeypatch.setattr(registry, "entry_points", fake_entry_points)
    spec = reward_spec("my_count")
    assert spec.name == "my_count"
    assert spec.fn(["<answer>2</answer>"], solution=[2]) == [1.0]
