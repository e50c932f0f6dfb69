"""Synthetic shape scenes and the grounding, classification and counting tasks built on them.

A scene is a light, faintly noisy grey canvas holding non-overlapping filled circles, squares
and triangles, each a distinct (colour, shape) pair. Every sample is a pure function of
(task, split, seed, index), so a split regenerates byte for byte. Train and heldout splits
differ by their random streams and by the scene parameters in `SPLITS`, so heldout accuracy
measures generalisation to scenes unlike any seen in training.
"""

import zlib
from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from mmrft.data.synthetic.writer import write_samples

COLOURS: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 170, 60),
    "blue": (40, 80, 220),
    "yellow": (235, 200, 30),
}
# Each draws its shape filling a square footprint whose last pixel index is `last`.
_DRAWERS: dict[str, Callable[[ImageDraw.ImageDraw, int], None]] = {
    "circle": lambda draw, last: draw.ellipse((0, 0, last, last), fill=255),
    "square": lambda draw, last: draw.rectangle((0, 0, last, last), fill=255),
    "triangle": lambda draw, last: draw.polygon([(0, last), (last, last), (last / 2, 0)], fill=255),
}
SHAPES = tuple(_DRAWERS)
BACKGROUND_TONES = (215, 246)  # grey level range, half-open; far from every colour above
NOISE = 4  # background varies by up to this many grey levels...
NOISE_BLOCK = 4  # ...in blocks of this many pixels square, which keeps PNGs small and fast
GAP = 2  # minimum pixels between two shapes' footprints
MAX_LAYOUT_TRIES = 100
MAX_PLACEMENT_TRIES = 50

ANSWER_BOX = "Answer with the box as <answer>[x1, y1, x2, y2]</answer>."
ANSWER = "Answer as <answer>...</answer>."


@dataclass(frozen=True)
class SplitSpec:
    """How one split of one task draws its scenes."""

    counts: tuple[int, ...]
    """Number of shapes in a scene, drawn uniformly from these."""
    sizes: tuple[int, ...]
    """Side of a shape's square footprint in pixels, drawn uniformly from these."""


_SIZES = tuple(range(16, 37))
SPLITS: dict[tuple[str, str], SplitSpec] = {
    # heldout grounding has more distractors than any training scene
    ("grounding", "train"): SplitSpec(counts=(1, 2, 3), sizes=_SIZES),
    ("grounding", "heldout"): SplitSpec(counts=(3, 4), sizes=_SIZES),
    # heldout classification uses shape sizes outside the training range, on both sides
    ("classification", "train"): SplitSpec(counts=(1,), sizes=tuple(range(18, 31))),
    ("classification", "heldout"): SplitSpec(
        counts=(1,), sizes=tuple(range(14, 18)) + tuple(range(31, 37))
    ),
    # heldout counting asks for a count never seen in training; sizes stay small enough
    # for five shapes to fit a 112 x 112 canvas, the same in both splits
    ("counting", "train"): SplitSpec(counts=(1, 2, 3, 4), sizes=tuple(range(16, 29))),
    ("counting", "heldout"): SplitSpec(counts=(5,), sizes=tuple(range(16, 29))),
}


@dataclass(frozen=True)
class Shape:
    """One filled shape: its footprint's top-left corner and side, and its tight pixel box."""

    shape: str
    colour: str
    x: int
    y: int
    size: int
    box: tuple[int, int, int, int]
    """Tight box of the drawn pixels, xyxy with exclusive right/bottom edges."""


@dataclass(frozen=True)
class Scene:
    """A canvas size, its background grey level, and the shapes on it."""

    width: int
    height: int
    background: int
    shapes: tuple[Shape, ...]


@cache
def shape_mask(shape: str, size: int) -> Image.Image:
    """The shape drawn in white on a black `size` x `size` mask."""
    mask = Image.new("L", (size, size), 0)
    _DRAWERS[shape](ImageDraw.Draw(mask), size - 1)
    return mask


def make_scene(rng: np.random.Generator, spec: SplitSpec, width: int, height: int) -> Scene:
    """Draw a scene's layout: shape count, distinct (colour, shape) pairs, sizes, positions."""
    count = int(rng.choice(spec.counts))
    pairs = [(c, s) for c in COLOURS for s in SHAPES]
    chosen = [pairs[i] for i in rng.choice(len(pairs), size=count, replace=False)]
    sizes = [int(rng.choice(spec.sizes)) for _ in chosen]
    if max(sizes) > min(width, height):
        raise ValueError(f"a shape of size {max(sizes)} does not fit a {width}x{height} canvas")
    for _ in range(MAX_LAYOUT_TRIES):
        corners = _layout(rng, sizes, width, height)
        if corners is not None:
            break
    else:
        raise ValueError(f"could not place shapes of sizes {sizes} on a {width}x{height} canvas")
    shapes = []
    for (colour, shape), size, (x, y) in zip(chosen, sizes, corners, strict=True):
        bx1, by1, bx2, by2 = shape_mask(shape, size).getbbox()
        shapes.append(Shape(shape, colour, x, y, size, (x + bx1, y + by1, x + bx2, y + by2)))
    background = int(rng.integers(*BACKGROUND_TONES))
    return Scene(width, height, background, tuple(shapes))


def _layout(
    rng: np.random.Generator, sizes: list[int], width: int, height: int
) -> list[tuple[int, int]] | None:
    """Top-left corners for square footprints of `sizes`, GAP apart, or None if one got stuck."""
    corners: list[tuple[int, int]] = []
    for size in sizes:
        for _ in range(MAX_PLACEMENT_TRIES):
            x = int(rng.integers(0, width - size + 1))
            y = int(rng.integers(0, height - size + 1))
            if all(
                x + size + GAP <= px
                or px + psize + GAP <= x
                or y + size + GAP <= py
                or py + psize + GAP <= y
                for (px, py), psize in zip(corners, sizes[: len(corners)], strict=True)
            ):
                corners.append((x, y))
                break
        else:
            return None
    return corners


def render(scene: Scene, rng: np.random.Generator) -> Image.Image:
    """Paint the scene: mottled grey background, then each shape in its flat colour."""
    blocks = (-(-scene.height // NOISE_BLOCK), -(-scene.width // NOISE_BLOCK))
    noise = rng.integers(-NOISE, NOISE + 1, size=blocks)
    noise = noise.repeat(NOISE_BLOCK, 0).repeat(NOISE_BLOCK, 1)[: scene.height, : scene.width]
    grey = (scene.background + noise).clip(0, 255).astype(np.uint8)
    image = Image.fromarray(grey, mode="L").convert("RGB")
    for s in scene.shapes:
        image.paste(COLOURS[s.colour], (s.x, s.y), shape_mask(s.shape, s.size))
    return image


TaskBuilder = Callable[[Scene, np.random.Generator], tuple[str, Any, dict[str, Any]]]
"""Turns a scene into (prompt, solution, extra metadata)."""


def _grounding(scene: Scene, rng: np.random.Generator) -> tuple[str, Any, dict[str, Any]]:
    target = int(rng.integers(len(scene.shapes)))
    shape = scene.shapes[target]
    return (
        f"Locate the {shape.colour} {shape.shape}. {ANSWER_BOX}",
        list(shape.box),
        {"target": target},
    )


def _classification(scene: Scene, rng: np.random.Generator) -> tuple[str, Any, dict[str, Any]]:
    return f"What shape is in the image? Answer with one word. {ANSWER}", scene.shapes[0].shape, {}


def _counting(scene: Scene, rng: np.random.Generator) -> tuple[str, Any, dict[str, Any]]:
    return f"How many shapes are in the image? {ANSWER}", len(scene.shapes), {}


TASKS: dict[str, TaskBuilder] = {
    "grounding": _grounding,
    "classification": _classification,
    "counting": _counting,
}


def make_sample(
    task: str, split: str, index: int, seed: int = 0, image_size: int | tuple[int, int] = 112
) -> tuple[dict[str, Any], Image.Image]:
    """Build sample `index` of a split: its JSON record and its image.

    The image path in the record is `images/{split}-{index:06d}.png`, relative to the JSONL.
    """
    if task not in TASKS:
        raise ValueError(f"unknown task {task!r}; known tasks: {', '.join(TASKS)}")
    spec = SPLITS.get((task, split))
    if spec is None:
        splits = sorted({s for t, s in SPLITS if t == task})
        raise ValueError(
            f"unknown split {split!r} for task {task!r}; known splits: {', '.join(splits)}"
        )
    width, height = (image_size, image_size) if isinstance(image_size, int) else image_size
    stream = zlib.crc32(f"{task}/{split}".encode())  # splits sharing a seed still differ
    rng = np.random.default_rng([seed, stream, index])

    scene = make_scene(rng, spec, width, height)
    prompt, solution, extra_meta = TASKS[task](scene, rng)
    image = render(scene, rng)
    sample = {
        "id": f"shapes_{task}-{split}-{index:06d}",
        "task": task,
        "messages": [
            {
                "role": "user",
                "content": [
                    {"type": "image", "image": f"images/{split}-{index:06d}.png"},
                    {"type": "text", "text": prompt},
                ],
            }
        ],
        "solution": solution,
        "image_size": [width, height],
        "meta": {
            "split": split,
            "difficulty": len(scene.shapes),
            "seed": seed,
            "background": scene.background,
            "shapes": [
                {"shape": s.shape, "colour": s.colour, "box": list(s.box)} for s in scene.shapes
            ],
            **extra_meta,
        },
    }
    return sample, image


def write_split(
    task: str,
    split: str,
    out_dir: str | Path,
    n: int,
    seed: int = 0,
    image_size: int | tuple[int, int] = 112,
    format: str = "jsonl",
) -> Path:
    """Write `n` samples to `out_dir/{split}.jsonl` and their PNGs to `out_dir/images/`
    (``format="parquet"``: `out_dir/{split}.parquet`, the PNGs embedded).

    Returns the written file's path. `seed` must be a non-negative int.
    """
    return write_samples(
        out_dir, split, n, lambda index: make_sample(task, split, index, seed, image_size), lambda image, path: image.save(path), format
    )
