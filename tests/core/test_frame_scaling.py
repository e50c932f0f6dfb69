"""Test-time frame scaling: agreement rules, stopping, and the report."""

from __future__ import annotations

import json

from mmrft.cli import main
from mmrft.data.jsonl import JsonlDataset
from mmrft.data.synthetic import write_synthetic_split
from mmrft.eval.frame_scaling import _agree, frame_scaling_eval, with_frames


def test_agreement_rules():
    assert _agree("video_qa", ["B", "b", "B"], 0.5)
    assert not _agree("video_qa", ["B", "C", "B"], 0.5)
    assert not _agree("video_qa", ["B", None], 0.5)  # an unparseable vote never agrees
    assert _agree("temporal_grounding", [[(1.0, 3.0)], [(1.2, 3.0)]], 0.5)
    assert not _agree("temporal_grounding", [[(1.0, 3.0)], [(4.0, 6.0)]], 0.5)


def test_with_frames_replaces_the_sampling():
    sample = {"messages": [{"role": "user", "content": [{"type": "video", "video": "v.mp4", "fps": 2.0}, {"type": "text", "text": "q"}]}]}
    framed = with_frames(sample, 8)
    assert framed["messages"][0]["content"][0] == {"type": "video", "video": "v.mp4", "nframes": 8}
    assert sample["messages"][0]["content"][0]["fps"] == 2.0  # the original is untouched


def test_stops_when_votes_agree_and_climbs_when_they_do_not(tmp_path, load_tiny_policy):
    data = JsonlDataset(write_synthetic_split("video_qa", "heldout", tmp_path, n=3))
    policy = load_tiny_policy("qwen2_5_vl")
    samples = [data[i] for i in range(len(data))]
    # a random tiny model never writes an answer block: no agreement, every sample climbs to 8 frames
    climbs = frame_scaling_eval(policy, samples, schedule=(4, 8), votes=2, temperature=1.0, max_new_tokens=6)
    assert climbs.frames_used == {8: 3} and climbs.mean_frames == 8 and set(climbs.fixed) == {4, 8}
    assert climbs.adaptive_accuracy == 0.0
    # the same real pipeline with the sampled text replaced by one fixed answer: all votes agree at 4 frames
    sample = policy.sample
    seen_frames = []

    def agreeing(batch, *args, **kwargs):
        rollout = sample(batch, *args, **kwargs)
        seen_frames.append(int(batch.videos.grid_thw[0][0]) * 2)
        rollout.texts = [f"<answer>{samples[0]['solution']}</answer>"] * len(rollout.texts)
        return rollout

    policy.sample = agreeing
    agree = frame_scaling_eval(policy, samples[:1], schedule=(4, 8), votes=3, max_new_tokens=6)
    assert agree.frames_used == {4: 1} and agree.mean_frames == 4 and agree.adaptive_accuracy == 1.0
    assert seen_frames[-1] == 4  # the adaptive pass decoded 4 frames and stopped


def test_eval_cli_writes_the_frame_scaling_report(tmp_path, tiny_model_dir, capsys):
    path = write_synthetic_split("temporal_grounding", "heldout", tmp_path / "data", n=2)
    code = main(
        ["eval", "--model", str(tiny_model_dir("qwen2_5_vl")), "--data", str(path), "--output-dir", str(tmp_path / "out"),
         "--max-new-tokens", "6", "--frame-schedule", "4", "8", "--votes", "2"]
    )
    assert code == 0, capsys.readouterr().err
    report = json.loads((tmp_path / "out" / "frame_scaling.json").read_text())
    assert report["n"] == 2 and set(report["fixed_frames_accuracy"]) == {"4", "8"}
    assert 4 <= report["adaptive"]["mean_frames"] <= 8
    evaluation = json.loads((tmp_path / "out" / "eval.json").read_text())
    assert set(evaluation["metrics"]) == {"r1@0.3", "r1@0.5", "r1@0.7", "miou", "target_hit"}
