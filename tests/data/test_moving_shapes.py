"""Synthetic moving-shape videos: deterministic, decodable, and their answers true to the pixels."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mmrft.data.jsonl import JsonlDataset
from mmrft.data.synthetic import write_synthetic_split
from mmrft.data.synthetic.moving_shapes import FPS, FRAMES, SECONDS, TRAIN_SHAPES, make_video_sample
from mmrft.data.synthetic.shapes import COLOURS
from mmrft.data.validate import check_sample
from mmrft.data.video import decode_video
from mmrft.eval.evaluate import TASK_SCORERS
from mmrft.rewards.temporal import temporal_iou

TASKS = ("temporal_grounding", "video_qa", "tracking")


def _colour_present(frame: np.ndarray, colour: str) -> bool:
    return bool((np.abs(frame.astype(int) - COLOURS[colour]).sum(-1) < 60).sum() > 20)


def _item(sample: dict, kind: str) -> dict:
    return next(c for c in sample["messages"][0]["content"] if c["type"] == kind)


@pytest.mark.parametrize("task", TASKS)
def test_deterministic_and_valid(task, tmp_path):
    a, fa = make_video_sample(task, "train", 3, seed=1)
    b, fb = make_video_sample(task, "train", 3, seed=1)
    assert a == b and np.array_equal(fa, fb)
    assert fa.shape == (FRAMES, 112, 112, 3)
    path = write_synthetic_split(task, "heldout", tmp_path, n=3, seed=1)
    data = JsonlDataset(path)
    for i in range(len(data)):
        check_sample(data[i])
        assert data[i]["meta"]["difficulty"] == 3  # held-out clips hold 3 shapes
    counts = {make_video_sample(task, "train", i)[0]["meta"]["difficulty"] for i in range(20)}
    assert counts == set(TRAIN_SHAPES[task])  # temporal grounding 2-3, the others 1-2


def test_shape_counts_and_question_order_are_settable(tmp_path):
    first, _ = make_video_sample("temporal_grounding", "train", 0)
    assert [c["type"] for c in first["messages"][0]["content"]] == ["text", "video"]
    after, _ = make_video_sample("temporal_grounding", "train", 0, question_first=False)
    assert after["messages"][0]["content"] == first["messages"][0]["content"][::-1]  # the same clip and question
    assert {k: v for k, v in after.items() if k != "messages"} == {k: v for k, v in first.items() if k != "messages"}
    assert {make_video_sample("tracking", "train", i, shapes=(4,))[0]["meta"]["difficulty"] for i in range(3)} == {4}
    with pytest.raises(ValueError, match="between 1 and 12"):
        make_video_sample("temporal_grounding", "train", 0, shapes=(13,))
    with pytest.raises(ValueError, match="options of the video tasks"):
        write_synthetic_split("grounding", "train", tmp_path, n=1, question_first=False)
    with pytest.raises(ValueError, match="non-negative"):
        write_synthetic_split("temporal_grounding", "train", tmp_path, n=1, train_start=-1)


def test_temporal_window_matches_the_decoded_video(tmp_path):
    path = write_synthetic_split("temporal_grounding", "train", tmp_path, n=6, seed=0)
    checked = 0
    for line in path.read_text().splitlines():
        sample = json.loads(line)
        start, end = sample["solution"]
        assert sample["duration"] == SECONDS and 0 <= start < end <= SECONDS
        target = _item(sample, "text")["text"].split("the ")[1].split(" visible")[0]
        colour = target.split()[0]
        others = [s for s in sample["meta"]["shapes"] if s["colour"] == colour and f"{s['colour']} {s['shape']}" != target]
        if others:  # another shape shares the colour: pixel colour alone cannot tell them apart
            continue
        video = decode_video(tmp_path / _item(sample, "video")["video"], "decord", nframes=FRAMES)
        frames = video.frames.permute(0, 2, 3, 1).numpy()
        visible = [t for t, f in zip(video.timestamps, frames) if _colour_present(f, colour)]
        assert visible[0] == pytest.approx(start) and visible[-1] == pytest.approx(end - 1 / FPS)
        checked += 1
    assert checked >= 3


def test_scorers_on_hand_checked_answers():
    sample, _ = make_video_sample("temporal_grounding", "train", 0)
    start, end = sample["solution"]
    score = TASK_SCORERS.get("temporal_grounding")
    exact = score(f"<answer>[{start}, {end}]</answer>", sample, {})
    assert exact.scores == {"r1@0.3": 1.0, "r1@0.5": 1.0, "r1@0.7": 1.0, "miou": 1.0, "target_hit": 1.0}
    length = end - start
    shifted = score(f"<answer>[{start + length / 2}, {end + length / 2}]</answer>", sample, {})
    if end + length / 2 <= SECONDS:
        assert shifted.scores["miou"] == pytest.approx(1 / 3) and shifted.scores["r1@0.3"] == 1.0 and shifted.scores["r1@0.5"] == 0.0
    assert score("the moment is early on", sample, {}).failure == "no_answer_block"
    assert score("the moment is early on", sample, {}).scores["target_hit"] == 0.0
    assert score("<answer>soon</answer>", sample, {}).failure == "unparseable_interval"

    qa, _ = make_video_sample("video_qa", "train", 0)
    assert TASK_SCORERS.get("video_qa")(f"<answer>{qa['solution']}</answer>", qa, {}).scores == {"accuracy": 1.0}
    right_text = qa["options"][ord(qa["solution"]) - 65]
    assert TASK_SCORERS.get("video_qa")(f"<answer>{right_text}</answer>", qa, {}).scores == {"accuracy": 1.0}

    track, _ = make_video_sample("tracking", "train", 0)
    meta = {"image_size": (112, 112), "input_size": (112, 112), "convention": "pixels"}
    perfect = TASK_SCORERS.get("tracking")(f"<answer>{json.dumps(track['solution'])}</answer>", track, meta)
    assert perfect.scores == {"mean_iou": pytest.approx(1.0)} and perfect.failure is None


def test_target_hit_tells_the_asked_shape_from_a_distractor():
    sample = next(s for s in (make_video_sample("temporal_grounding", "heldout", i)[0] for i in range(50)) if _apart(s))
    windows = [(s["on_s"], s["off_s"]) for s in sample["meta"]["shapes"]]
    score = TASK_SCORERS.get("temporal_grounding")
    hits = [score(f"<answer>[{start}, {end}]</answer>", sample, {}).scores["target_hit"] for start, end in windows]
    assert hits == [float(w == tuple(sample["solution"])) for w in windows] and sum(hits) == 1.0
    assert "target_hit" not in score("<answer>[1, 2]</answer>", {**sample, "meta": {}}, {}).scores  # no windows listed


def _apart(sample: dict) -> bool:
    """Every shape's window differs from the others' (so the hit is unambiguous)."""
    windows = [(s["on_s"], s["off_s"]) for s in sample["meta"]["shapes"]]
    return len(set(windows)) == len(windows)


def _overlap(sample: dict) -> float:
    """Largest tIoU of two shapes' windows, from the sample's metadata."""
    windows = [(s["on_s"], s["off_s"]) for s in sample["meta"]["shapes"]]
    return max(temporal_iou(a, b) for i, a in enumerate(windows) for b in windows[i + 1 :])


def test_max_overlap_keeps_only_clips_whose_windows_stand_apart():
    passed = 0
    for i in range(40):
        plain, _ = make_video_sample("temporal_grounding", "train", i, shapes=(3,))
        apart, frames = make_video_sample("temporal_grounding", "train", i, shapes=(3,), max_overlap=0.4)
        assert _overlap(apart) <= 0.4 and frames.shape == (FRAMES, 112, 112, 3)
        if _overlap(plain) <= 0.4:  # a clip that passes is the unfiltered clip itself
            assert apart == plain
            passed += 1
    assert 0 < passed < 40  # both cases were seen
    for task, value in (("video_qa", 0.3), ("temporal_grounding", -0.1), ("temporal_grounding", 1.5)):
        with pytest.raises(ValueError, match="max_overlap is a temporal IoU"):
            make_video_sample(task, "train", 0, max_overlap=value)


def test_a_config_generates_video_data_with_its_generator_options(tmp_path):
    from mmrft.config import ConfigError, TrainConfig, from_dict
    from mmrft.training.trainer import prepare_data

    train = tmp_path / "tg" / "train.jsonl"
    spec = {"task": "temporal_grounding", "train": 3, "heldout": 2, "train_shapes": [1], "train_start": 5, "question_first": False}

    def config(synthetic: dict) -> TrainConfig:
        return from_dict(TrainConfig, {"stage": "sft", "data": {"train": str(train), "synthetic": synthetic}})

    prepare_data(config(spec), write=False)
    assert not train.parent.exists()  # a process that does not write leaves generation to the main one
    prepare_data(config(spec))
    rows = [json.loads(line) for line in train.read_text().splitlines()]
    assert len(rows) == 3 and all(r["meta"]["difficulty"] == 1 for r in rows)
    assert rows[0] == make_video_sample("temporal_grounding", "train", 5, shapes=(1,), question_first=False)[0]  # train_start
    assert all(r["messages"][0]["content"][0]["type"] == "video" for r in rows)
    assert all((train.parent / _item(r, "video")["video"]).is_file() for r in rows)  # the writer found the item
    held = [json.loads(line) for line in (tmp_path / "tg" / "heldout.jsonl").read_text().splitlines()]
    assert len(held) == 2 and all(r["meta"]["difficulty"] == 3 for r in held)  # train_shapes: the training split only
    assert held[0] == make_video_sample("temporal_grounding", "heldout", 0, question_first=False)[0]  # so is train_start
    made = train.stat().st_mtime_ns
    prepare_data(config({**spec, "seed": 0}))
    assert train.stat().st_mtime_ns == made  # the same spec (a default spelled out): reused, not rewritten
    with pytest.raises(ConfigError, match="delete it to regenerate"):  # not silently reused under another spec
        prepare_data(config({**spec, "train": 4}))
    with pytest.raises(ConfigError, match="delete it to regenerate"):  # on every process, not only the writing one
        prepare_data(config({**spec, "train": 4}), write=False)


def test_cli_passes_the_video_options(tmp_path):
    from mmrft.data.synthetic.__main__ import main

    args = ["--train", "2", "--heldout", "1", "--train-shapes", "3", "--train-start", "7", "--video-first", "--train-max-overlap", "0.2"]
    main(["--task", "temporal_grounding", "--out", str(tmp_path), *args])
    rows = [json.loads(line) for line in (tmp_path / "train.jsonl").read_text().splitlines()]
    assert [r["id"][-6:] for r in rows] == ["000007", "000008"] and {r["meta"]["difficulty"] for r in rows} == {3}
    assert rows[0] == make_video_sample("temporal_grounding", "train", 7, shapes=(3,), question_first=False, max_overlap=0.2)[0]
    held = json.loads((tmp_path / "heldout.jsonl").read_text())
    assert held == make_video_sample("temporal_grounding", "heldout", 0, question_first=False)[0]  # train_* options: not held out
    spec = json.loads((tmp_path / "synthetic.json").read_text())
    assert spec["train_start"] == 7 and spec["train_max_overlap"] == 0.2  # the spec is recorded
    with pytest.raises(SystemExit):
        main(["--task", "temporal_grounding", "--out", str(tmp_path), "--train-start", "-1"])
