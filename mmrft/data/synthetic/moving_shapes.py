"""Synthetic videos of moving shapes and three tasks on them: temporal grounding, video QA, tracking.

A clip is ``SECONDS`` long at ``FPS`` frames per second on a grey canvas. Each shape (a distinct
colour–shape pair, drawn like the image tasks') moves in a straight line and bounces off the
walls. Tasks:

- ``temporal_grounding``: every shape is visible only during its own window; "When is the red
  circle visible?" -> ``[start, end]`` in seconds (``duration`` is the clip length).
- ``video_qa``: every shape moves along one axis; "Which way does the red circle move?" with
  four lettered options (left, right, up, down) -> the letter.
- ``tracking``: "Give the box of the red circle in each frame" -> one pixel box per sampled
  frame; the video item fixes ``nframes`` so the frames the model sees are the frames boxed.

Held-out clips hold 3 shapes. Training clips hold 1–2 (video QA, tracking: held-out clips hold
more distractors than any training clip, as in the image tasks) or, for temporal grounding, 2–3: a
clip with one shape can be answered without reading the query, and a tiny base trained on 1–2
shapes learned to answer some shape's window whichever was asked. The question comes before the
video, so that in a causal language model every frame token can attend to it; with the video
first, the tiny base did not learn to tell the asked shape from the others (docs/video.md). Both
can be set per split (``shapes``, ``question_first``), as can a bound on how much any two
temporal-grounding windows overlap (``max_overlap``). Every clip is a pure function of (task,
split, seed, index) and those settings.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from mmrft.data.synthetic.shapes import COLOURS, NOISE, NOISE_BLOCK, SHAPES, shape_mask
from mmrft.data.synthetic.writer import write_samples
from mmrft.rewards.temporal import temporal_iou

FPS = 4
SECONDS = 8
FRAMES = FPS * SECONDS
TRACK_FRAMES = 8  # frames the tracking task asks boxes for (the video item's nframes)
DIRECTIONS = {"left": (-1, 0), "right": (1, 0), "up": (0, -1), "down": (0, 1)}
HELDOUT_SHAPES = (3,)
TRAIN_SHAPES = {"temporal_grounding": (2, 3), "video_qa": (1, 2), "tracking": (1, 2)}  # shapes per clip
SIZES = tuple(range(16, 29))


@dataclass(frozen=True)
class Mover:
    """One shape's motion: top-left corner at frame 0, velocity in pixels per frame, visible frames [on, off)."""

    shape: str
    colour: str
    size: int
    x: float
    y: float
    vx: float
    vy: float
    on: int = 0
    off: int = FRAMES

    def corner(self, frame: int, width: int, height: int) -> tuple[int, int]:
        """Top-left corner at ``frame``, reflecting off the walls."""
        return (_bounce(self.x + self.vx * frame, width - self.size), _bounce(self.y + self.vy * frame, height - self.size))

    def box(self, frame: int, width: int, height: int) -> list[int] | None:
        """Tight pixel box (xyxy, exclusive right/bottom) at ``frame``, None while hidden."""
        if not self.on <= frame < self.off:
            return None
        x, y = self.corner(frame, width, height)
        bx1, by1, bx2, by2 = shape_mask(self.shape, self.size).getbbox()
        return [x + bx1, y + by1, x + bx2, y + by2]


def _bounce(position: float, limit: int) -> int:
    """Fold a straight-line coordinate into [0, limit] as a ball bouncing between two walls."""
    period = 2 * limit
    p = position % period
    return int(round(p if p <= limit else period - p))


def _movers(task: str, rng: np.random.Generator, count: int, width: int, height: int) -> list[Mover]:
    pairs = [(c, s) for c in COLOURS for s in SHAPES]
    chosen = [pairs[i] for i in rng.choice(len(pairs), size=count, replace=False)]
    movers = []
    for colour, shape in chosen:
        size = int(rng.choice(SIZES))
        x, y = float(rng.integers(0, width - size + 1)), float(rng.integers(0, height - size + 1))
        speed = float(rng.uniform(1.0, 2.5))
        if task == "video_qa":  # one axis, never reaching a wall: the direction is unambiguous
            dx, dy = DIRECTIONS[str(rng.choice(list(DIRECTIONS)))]
            travel = speed * (FRAMES - 1)
            x = float(rng.uniform(max(0, -dx * travel), min(width - size, width - size - dx * travel))) if dx else x
            y = float(rng.uniform(max(0, -dy * travel), min(height - size, height - size - dy * travel))) if dy else y
            movers.append(Mover(shape, colour, size, x, y, dx * speed, dy * speed))
            continue
        angle = float(rng.uniform(0, 2 * np.pi))
        on, off = 0, FRAMES
        if task == "temporal_grounding":  # a window of 2-5 s somewhere in the clip
            length = int(rng.integers(2 * FPS, 5 * FPS + 1))
            on = int(rng.integers(0, FRAMES - length + 1))
            off = on + length
        movers.append(Mover(shape, colour, size, x, y, speed * np.cos(angle), speed * np.sin(angle), on, off))
    return movers


def window_overlap(movers: list[Mover]) -> float:
    """The largest temporal IoU between two shapes' visible windows (0 for a single shape)."""
    pairs = ((a, b) for i, a in enumerate(movers) for b in movers[i + 1 :])
    return max((temporal_iou((a.on, a.off), (b.on, b.off)) for a, b in pairs), default=0.0)


def render_frames(movers: list[Mover], rng: np.random.Generator, width: int, height: int) -> np.ndarray:
    """(FRAMES, H, W, 3) uint8: a mottled grey background (fixed over the clip), shapes drawn per frame."""
    background = int(rng.integers(215, 246))
    blocks = rng.integers(-NOISE, NOISE + 1, size=(-(-height // NOISE_BLOCK), -(-width // NOISE_BLOCK)))
    noise = blocks.repeat(NOISE_BLOCK, 0).repeat(NOISE_BLOCK, 1)[:height, :width]
    base = np.repeat((background + noise).clip(0, 255).astype(np.uint8)[..., None], 3, axis=2)
    frames = np.repeat(base[None], FRAMES, axis=0)
    for m in movers:
        mask = np.asarray(shape_mask(m.shape, m.size)) > 0
        for f in range(m.on, m.off):
            x, y = m.corner(f, width, height)
            frames[f, y : y + m.size, x : x + m.size][mask] = COLOURS[m.colour]
    return frames


def write_mp4(frames: np.ndarray, path: Path, fps: int = FPS) -> None:
    """H.264 (PyAV's bundled libx264), near-lossless, yuv420p: readable by decord, torchcodec and PyAV."""
    try:
        import av  # the video extra: an image-only install never writes clips
    except ImportError:
        raise ImportError("writing synthetic video clips needs PyAV: pip install 'mmrft[video]'") from None
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], "yuv420p"
        stream.options = {"crf": "12", "preset": "veryfast"}
        for frame in frames:
            container.mux(stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")))
        container.mux(stream.encode())


def _prompt_and_solution(task: str, target: Mover, rng: np.random.Generator, width: int, height: int) -> tuple[dict, str, Any, dict]:
    name = f"{target.colour} {target.shape}"
    if task == "temporal_grounding":
        text = f"When is the {name} visible? Answer with its start and end time in seconds as <answer>[start, end]</answer>."
        return {}, text, [target.on / FPS, target.off / FPS], {"duration": float(SECONDS)}
    if task == "video_qa":
        options = list(DIRECTIONS)
        rng.shuffle(options)
        direction = next(d for d, v in DIRECTIONS.items() if v == (int(np.sign(target.vx)), int(np.sign(target.vy))))
        listing = " ".join(f"{chr(65 + i)}. {o}" for i, o in enumerate(options))
        text = f"Which way does the {name} move? {listing} Answer with the letter as <answer>X</answer>."
        return {}, text, chr(65 + options.index(direction)), {"options": options}
    indices = np.linspace(0, FRAMES - 1, TRACK_FRAMES).round().astype(int).tolist()
    text = (
        f"Give the box of the {name} in each of the {TRACK_FRAMES} frames as a JSON list of "
        "[x1, y1, x2, y2] in <answer></answer>."
    )
    boxes = [target.box(f, width, height) for f in indices]
    return {"nframes": TRACK_FRAMES}, text, boxes, {"image_size": [width, height], "frame_indices": indices}


def make_video_sample(
    task: str,
    split: str,
    index: int,
    seed: int = 0,
    size: int = 112,
    shapes: tuple[int, ...] | None = None,
    question_first: bool = True,
    max_overlap: float | None = None,
) -> tuple[dict, np.ndarray]:
    """Sample ``index`` of a split: its JSON record (video at ``videos/{split}-{index:06d}.mp4``) and frames.

    ``shapes``: the shape counts a clip draws from (default: the split's); ``question_first``:
    the question text before the video in the message (else after it); ``max_overlap``
    (temporal grounding): keep only clips where no two shapes' windows overlap by more than this
    temporal IoU, so that answering another shape's window scores low. Every pair, not only the
    asked shape's: were it the only window apart from the others, it could be found without
    reading the question.
    """
    if task not in TRAIN_SHAPES:
        raise ValueError(f"unknown video task {task!r}; known: {', '.join(TRAIN_SHAPES)}")
    if split not in ("train", "heldout"):
        raise ValueError(f"unknown split {split!r}; known: train, heldout")
    counts = shapes or (TRAIN_SHAPES[task] if split == "train" else HELDOUT_SHAPES)
    if not all(1 <= int(c) <= len(COLOURS) * len(SHAPES) for c in counts):
        raise ValueError(f"shapes per clip must be between 1 and {len(COLOURS) * len(SHAPES)}, got {list(counts)}")
    if max_overlap is not None and (task != "temporal_grounding" or not 0 <= max_overlap <= 1):
        raise ValueError(f"max_overlap is a temporal IoU in [0, 1] for temporal_grounding, got {max_overlap!r} for {task}")
    rng = np.random.default_rng([seed, zlib.crc32(f"video/{task}/{split}".encode()), index])
    while True:  # a clip over max_overlap is drawn again from the same stream: the first draw is kept when it passes
        movers = _movers(task, rng, int(rng.choice(counts)), size, size)
        target = movers[int(rng.integers(len(movers)))]
        if max_overlap is None or window_overlap(movers) <= max_overlap:
            break
    item_extra, text, solution, columns = _prompt_and_solution(task, target, rng, size, size)
    frames = render_frames(movers, rng, size, size)
    content = [{"type": "text", "text": text}, {"type": "video", "video": f"videos/{split}-{index:06d}.mp4", **item_extra}]
    sample = {
        "id": f"moving_shapes_{task}-{split}-{index:06d}",
        "task": task,
        "messages": [{"role": "user", "content": content if question_first else content[::-1]}],
        "solution": solution,
        **columns,
        "meta": {
            "split": split,
            "seed": seed,
            "fps": FPS,
            "difficulty": len(movers),
            "shapes": [{"shape": m.shape, "colour": m.colour, "on_s": m.on / FPS, "off_s": m.off / FPS} for m in movers],
        },
    }
    return sample, frames


def write_video_split(
    task: str,
    split: str,
    out_dir: str | Path,
    n: int,
    seed: int = 0,
    size: int = 112,
    shapes: tuple[int, ...] | None = None,
    question_first: bool = True,
    start: int = 0,
    max_overlap: float | None = None,
    format: str = "jsonl",
) -> Path:
    """Write samples ``start .. start + n - 1`` to ``out_dir/{split}.jsonl`` (or ``.parquet``) and their MP4s to ``out_dir/videos/``."""
    if start < 0:
        raise ValueError(f"the first sample index must be non-negative, got {start}")
    make = lambda i: make_video_sample(task, split, start + i, seed, size, shapes, question_first, max_overlap)  # noqa: E731
    return write_samples(out_dir, split, n, make, write_mp4, format)
