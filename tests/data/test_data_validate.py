"""check_sample: one table of broken samples, each with the reason it must report."""

import copy
import math

import numpy as np
import pytest
from PIL import Image

from mmrft.data import SampleError, check_sample


@pytest.fixture
def image_path(tmp_path):
    # Noise so the PNG has enough compressed data to truncate mid-stream.
    pixels = np.random.default_rng(0).integers(0, 256, size=(48, 64, 3), dtype=np.uint8)
    path = tmp_path / "img.png"
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture
def good(image_path):
    return {
        "id": "s-1",
        "task": "grounding",
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image", "image": str(image_path)},
                    {"type": "text", "text": "Locate it."},
                ],
            }
        ],
        "solution": [1, 2.5, 30, 40],
        "image_size": [64, 48],
    }


def test_good_samples_pass(good):
    check_sample(good)
    check_sample({**good, "task": "classification", "solution": "circle"})
    check_sample({**good, "task": "counting", "solution": 0})
    no_size = {k: v for k, v in good.items() if k != "image_size"}
    check_sample(no_size)
    as_file_url = copy.deepcopy(good)
    as_file_url["messages"][0]["content"][0]["image"] = (
        "file://" + good["messages"][0]["content"][0]["image"]
    )
    check_sample(as_file_url)


# Each case turns the good sample into a broken one: corrupt(sample, tmp_path) -> sample.
def _drop(key):
    return lambda s, _: {k: v for k, v in s.items() if k != key}


def _set(**changes):
    return lambda s, _: {**s, **changes}


def _image(s, path):
    s = copy.deepcopy(s)
    s["messages"][0]["content"][0]["image"] = str(path)
    return s


def _random_bytes(s, tmp_path):
    path = tmp_path / "random.png"
    path.write_bytes(np.random.default_rng(1).bytes(2000))
    return _image(s, path)


def _truncated(s, tmp_path):
    data = open(s["messages"][0]["content"][0]["image"], "rb").read()
    path = tmp_path / "truncated.png"
    path.write_bytes(data[: len(data) // 2])
    return _image(s, path)


def _garbage_after_header(s, tmp_path):
    data = open(s["messages"][0]["content"][0]["image"], "rb").read()
    path = tmp_path / "garbage.png"
    path.write_bytes(data[:60] + bytes(200) + data[260:])
    return _image(s, path)


BAD_BOX = "grounding solution must be 4 finite numbers"
EMPTY_BOX = "grounding solution needs x1 < x2 and y1 < y2"
BAD_LABEL = "classification solution must be a non-empty string"
BAD_COUNT = "counting solution must be an int >= 0"
BAD_SIZE = "image_size must be [width, height]"

# (name, corrupt, how the reason starts)
CASES = [
    ("missing id", _drop("id"), "missing keys: id"),
    ("missing messages", _drop("messages"), "missing keys: messages"),
    ("missing solution", _drop("solution"), "missing keys: solution"),
    ("missing task", _drop("task"), "missing keys: task"),
    ("messages not a list", _set(messages="hi"), "messages must be a non-empty list"),
    ("messages empty", _set(messages=[]), "messages must be a non-empty list"),
    ("message without role", _set(messages=[{"content": "hi"}]), "message 0 must be an object"),
    ("message not an object", _set(messages=["hi"]), "message 0 must be an object"),
    ("content wrong type", _set(messages=[{"role": "user", "content": 3}]), "message 0 content"),
    (
        "image item without path",
        _set(messages=[{"role": "user", "content": [{"type": "image"}]}]),
        "message 0 has an image item without",
    ),
    ("image not found", lambda s, t: _image(s, t / "nope.png"), "image not found: "),
    ("random bytes", _random_bytes, "corrupt image: "),
    ("truncated png", _truncated, "corrupt image: "),
    ("garbage after header", _garbage_after_header, "corrupt image: "),
    (
        "unknown task",
        _set(task="dance"),
        "unknown task 'dance'; known tasks: classification, counting, detection",
    ),
    ("task not a string", _set(task=["grounding"]), "unknown task"),
    ("box of 3", _set(solution=[1, 2, 3]), BAD_BOX),
    ("box as dict", _set(solution={"x1": 1}), BAD_BOX),
    ("box with strings", _set(solution=["1", 2, 3, 4]), BAD_BOX),
    ("box with bool", _set(solution=[True, 2, 3, 4]), BAD_BOX),
    ("box with nan", _set(solution=[1, 2, math.nan, 4]), BAD_BOX),
    ("box with inf", _set(solution=[1, 2, math.inf, 4]), BAD_BOX),
    ("box x1 == x2", _set(solution=[5, 2, 5, 4]), EMPTY_BOX),
    ("box y1 > y2", _set(solution=[1, 9, 5, 4]), EMPTY_BOX),
    ("label empty", _set(task="classification", solution=""), BAD_LABEL),
    ("label blank", _set(task="classification", solution="  "), BAD_LABEL),
    ("label not str", _set(task="classification", solution=3), BAD_LABEL),
    ("count negative", _set(task="counting", solution=-1), BAD_COUNT),
    ("count float", _set(task="counting", solution=2.0), BAD_COUNT),
    ("count bool", _set(task="counting", solution=True), BAD_COUNT),
    ("count str", _set(task="counting", solution="3"), BAD_COUNT),
    ("image_size zero", _set(image_size=[0, 48]), BAD_SIZE),
    ("image_size one value", _set(image_size=[64]), BAD_SIZE),
    ("image_size str", _set(image_size="64x48"), BAD_SIZE),
    ("image_size float", _set(image_size=[64.0, 48]), BAD_SIZE),
    (
        "image_size swapped",
        _set(image_size=[48, 64]),
        "image_size [48, 64] does not match the image's 64x48",
    ),
]


@pytest.mark.parametrize("name, corrupt, reason", CASES, ids=[c[0] for c in CASES])
def test_broken_sample_raises_with_reason(good, tmp_path, name, corrupt, reason):
    broken = corrupt(good, tmp_path)
    with pytest.raises(SampleError) as info:
        check_sample(broken)
    assert info.value.reason.startswith(reason), info.value.reason
    expected_id = "<no id>" if name == "missing id" else "s-1"
    assert info.value.sample_id == expected_id
    message = str(info.value)
    assert message == f"sample {expected_id}: {info.value.reason}" and "\n" not in message


def test_missing_image_reason_names_the_path(good, tmp_path):
    with pytest.raises(SampleError) as info:
        check_sample(_image(good, tmp_path / "nope.png"))
    assert str(info.value) == f"sample s-1: image not found: {tmp_path / 'nope.png'}"
