"""Video decoding with an explicit reader, frame sampling in seconds, and an up-front token budget.

Frame selection follows qwen-vl-utils exactly (``calculate_video_frame_range`` for start/end
clipping in seconds, ``smart_nframes`` for fps / nframes, ``smart_resize`` for the per-frame
pixel budget); only the reading is ours, so that the reader is explicit (decord by default,
torchcodec or PyAV as fallbacks), a broken file is a per-sample error instead of a silent
fallback, and the frames x pixels budget is checked from the container's metadata before a
single frame is decoded.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from qwen_vl_utils.vision_process import FRAME_FACTOR, calculate_video_frame_range, smart_nframes, smart_resize
from torchvision.transforms import InterpolationMode
from torchvision.transforms import functional as TF

from mmrft.registry import Registry

log = logging.getLogger(__name__)
VIDEO_READERS = Registry("video reader")
DEFAULT_READER_ORDER = ("decord", "torchcodec", "pyav")


class VideoError(ValueError):
    """A video that cannot be used: missing, unreadable, empty, a time range outside it, or over budget."""


@dataclass(frozen=True)
class VideoInfo:
    """What the container says, read without decoding frames."""

    path: str
    total_frames: int
    fps: float
    width: int
    height: int

    @property
    def duration(self) -> float:
        return self.total_frames / self.fps


@dataclass
class DecodedVideo:
    """Sampled frames, resized for the model, with their times in seconds from the start of the file."""

    frames: torch.Tensor  # (T, C, H, W) float, resized
    timestamps: list[float]
    indices: list[int]
    info: VideoInfo
    sample_fps: float
    """Frames per second of the sampled frames over the clipped span (what qwen-vl-utils reports)."""
    reader: str


class _Reader:
    """Interface of a reader: ``info()`` from the container, ``frames(indices)`` as (T, H, W, C) uint8."""

    def __init__(self, path: str):
        self.path = path

    def info(self) -> VideoInfo:
        raise NotImplementedError

    def frames(self, indices: list[int]) -> np.ndarray:
        raise NotImplementedError


@VIDEO_READERS.register("decord")
class DecordReader(_Reader):
    def __init__(self, path: str):
        super().__init__(path)
        import decord

        self._vr = decord.VideoReader(path)
        self._info: VideoInfo | None = None

    def info(self) -> VideoInfo:
        if self._info is None:  # decord has no size query: decode the first frame, without a seek
            height, width = self._vr.next().shape[:2] if len(self._vr) else (0, 0)
            self._info = VideoInfo(self.path, len(self._vr), float(self._vr.get_avg_fps()), int(width), int(height))
        return self._info

    def frames(self, indices: list[int]) -> np.ndarray:
        return self._vr.get_batch(indices).asnumpy()


@VIDEO_READERS.register("torchcodec")
class TorchcodecReader(_Reader):
    def __init__(self, path: str):
        super().__init__(path)
        from torchcodec.decoders import VideoDecoder

        self._decoder = VideoDecoder(path)

    def info(self) -> VideoInfo:
        meta = self._decoder.metadata
        fps = float(meta.average_fps)
        return VideoInfo(self.path, int(meta.num_frames), fps, int(meta.width), int(meta.height))

    def frames(self, indices: list[int]) -> np.ndarray:
        return self._decoder.get_frames_at(indices=indices).data.permute(0, 2, 3, 1).numpy()


@VIDEO_READERS.register("pyav")
class PyAVReader(_Reader):
    """Decodes sequentially up to the last wanted frame (fine for the short clips RFT uses)."""

    def __init__(self, path: str):
        super().__init__(path)
        import av

        self._av = av
        with av.open(path) as container:
            stream = container.streams.video[0]
            self._info = VideoInfo(
                path, int(stream.frames), float(stream.average_rate or 0), int(stream.width), int(stream.height)
            )

    def info(self) -> VideoInfo:
        return self._info

    def frames(self, indices: list[int]) -> np.ndarray:
        wanted, out = set(indices), {}
        with self._av.open(self.path) as container:
            for i, frame in enumerate(container.decode(video=0)):
                if i in wanted:
                    out[i] = frame.to_ndarray(format="rgb24")
                if i >= max(indices):
                    break
        missing = wanted - out.keys()
        if missing:
            raise VideoError(f"{self.path}: frames {sorted(missing)[:3]} could not be decoded")
        return np.stack([out[i] for i in indices])


def available_readers() -> list[str]:
    """Registered readers whose library imports here, in the default preference order."""
    import importlib.util

    modules = {"decord": "decord", "torchcodec": "torchcodec", "pyav": "av"}
    return [name for name in DEFAULT_READER_ORDER if importlib.util.find_spec(modules[name]) is not None]


def open_video(path: str | Path, reader: str) -> _Reader:
    """Open ``path`` with ``reader``; a missing, unreadable or empty file raises :class:`VideoError`."""
    path = str(path)
    if not Path(path).is_file():
        raise VideoError(f"video not found: {path}")
    if Path(path).stat().st_size == 0:
        raise VideoError(f"video is empty (0 bytes): {path}")
    cls = VIDEO_READERS.get(reader)
    try:
        opened = cls(path)
        info = opened.info()
    except VideoError:
        raise
    except Exception as err:  # each library has its own exception types for a broken container
        raise VideoError(f"cannot read video {path} with {reader}: {str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__}") from None
    if info.total_frames <= 0 or info.fps <= 0:
        raise VideoError(f"video has no frames (or no frame rate): {path}")
    return opened


@dataclass(frozen=True)
class FramePlan:
    """Which frames to decode and at what size, computed before any decoding."""

    indices: list[int]
    height: int
    width: int
    tokens: int
    """Vision tokens after merging: frames / temporal patch x (H / (patch x merge)) x (W / (patch x merge))."""


def plan_frames(
    info: VideoInfo,
    fps: float | None = None,
    nframes: int | None = None,
    start: float | None = None,
    end: float | None = None,
    min_pixels: int = 16 * 28 * 28,
    max_pixels: int = 64 * 28 * 28,
    patch_size: int = 14,
    merge_size: int = 2,
    temporal_patch_size: int = 2,
) -> FramePlan:
    """The frames and per-frame size qwen-vl-utils would choose, with times checked against the video.

    ``start`` / ``end`` are seconds; a start at or past the end of the video, an end past it, or
    an empty span raise :class:`VideoError` (qwen-vl-utils would clamp them silently).
    """
    if fps is not None and nframes is not None:
        raise VideoError("give fps or nframes, not both")
    for name, t in (("video_start", start), ("video_end", end)):
        if t is not None and not 0 <= t <= info.duration + 1e-6:
            raise VideoError(f"{name} {t:g} s is outside the video ({info.duration:.2f} s): {info.path}")
    if start is not None and start >= info.duration:
        raise VideoError(f"video_start {start:g} s is at or past the end of the video ({info.duration:.2f} s): {info.path}")
    element = {"video": info.path}
    element.update({k: v for k, v in (("video_start", start), ("video_end", end)) if v is not None})
    if nframes is not None:
        element["nframes"] = nframes
    elif fps is not None:
        element["fps"] = fps
    try:
        first, last, span = calculate_video_frame_range(element, info.total_frames, info.fps)
        count = smart_nframes(element, total_frames=span, video_fps=info.fps)
    except (ValueError, AssertionError) as err:
        raise VideoError(f"{info.path}: {err}") from None
    indices = torch.linspace(first, last, count).round().long().tolist()
    factor = patch_size * merge_size
    height, width = smart_resize(info.height, info.width, factor=factor, min_pixels=min_pixels, max_pixels=max_pixels)
    tokens = math.ceil(count / temporal_patch_size) * (height // factor) * (width // factor)
    return FramePlan(indices, height, width, tokens)


def decode_video(
    path: str | Path,
    reader: str = "decord",
    max_tokens: int | None = None,
    on_over_budget: str = "reject",
    **plan_kwargs,
) -> DecodedVideo:
    """Decode the planned frames of ``path`` with ``reader``, resized for the model.

    ``max_tokens`` bounds the video's vision tokens. Over it, ``on_over_budget="reject"`` raises
    :class:`VideoError` with the computed number before anything is decoded; ``"downsample"``
    takes fewer frames (keeping the span) until it fits.
    """
    opened = open_video(path, reader)
    info = opened.info()
    plan = plan_frames(info, **plan_kwargs)
    if max_tokens is not None and plan.tokens > max_tokens:
        if on_over_budget != "downsample":
            raise VideoError(
                f"video {info.path} needs {plan.tokens} vision tokens ({len(plan.indices)} frames at "
                f"{plan.width}x{plan.height}); the budget is {max_tokens}"
            )
        per_pair = plan.tokens // math.ceil(len(plan.indices) / FRAME_FACTOR)
        frames = max(FRAME_FACTOR, (max_tokens // max(per_pair, 1)) * FRAME_FACTOR)
        kwargs = {k: v for k, v in plan_kwargs.items() if k not in ("fps", "nframes")}
        plan = plan_frames(info, nframes=frames, **kwargs)
        if plan.tokens > max_tokens:
            raise VideoError(f"video {info.path}: even {frames} frames need {plan.tokens} tokens; the budget is {max_tokens}")
        log.info("video %s down-sampled to %d frames to fit %d tokens", info.path, frames, max_tokens)
    try:
        raw = opened.frames(plan.indices)
    except VideoError:
        raise
    except Exception as err:
        raise VideoError(f"cannot decode frames of {info.path} with {reader}: {err}") from None
    frames = torch.from_numpy(np.ascontiguousarray(raw)).permute(0, 3, 1, 2)
    frames = TF.resize(frames, [plan.height, plan.width], interpolation=InterpolationMode.BICUBIC, antialias=True).float()
    span_frames = plan.indices[-1] - plan.indices[0] + 1
    return DecodedVideo(
        frames=frames,
        timestamps=[i / info.fps for i in plan.indices],
        indices=plan.indices,
        info=info,
        sample_fps=len(plan.indices) / max(span_frames, 1e-6) * info.fps,
        reader=reader,
    )
