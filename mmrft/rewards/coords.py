"""Box coordinates: one canonical frame (original-image pixels, xyxy) and explicit model conventions.

Ground truth always lives in original-image pixels. A model writes boxes in its own convention,
chosen per model and never guessed from the size of the numbers:

- ``"norm1000"``: 0–1000 of the image (Qwen2-VL, Qwen3-VL)
- ``"input_pixels"``: absolute pixels of the resized model input (Qwen2.5-VL)
- ``"pixels"``: original-image pixels
- ``"unit"``: fractions of the image in [0, 1]

Sizes are ``(width, height)``.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

Size = Sequence[float]
Box = Sequence[float]

MODEL_COORD_CONVENTION: dict[str, str] = {
    "qwen2_vl": "norm1000",
    "qwen2_5_vl": "input_pixels",
    "qwen3_vl": "norm1000",
}
"""Box convention of each model type (the `model_type` of its transformers config)."""


def _input_pixels_scale(image_size: Size, input_size: Size | None) -> tuple[float, float]:
    if input_size is None:
        raise ValueError("the 'input_pixels' convention needs input_size (width, height of the model input)")
    return input_size[0] / image_size[0], input_size[1] / image_size[1]


# Convention units per original pixel, along x and y.
_SCALES: dict[str, Callable[[Size, Size | None], tuple[float, float]]] = {
    "pixels": lambda image, _: (1.0, 1.0),
    "unit": lambda image, _: (1.0 / image[0], 1.0 / image[1]),
    "norm1000": lambda image, _: (1000.0 / image[0], 1000.0 / image[1]),
    "input_pixels": _input_pixels_scale,
}


def _scale(convention: str, image_size: Size, input_size: Size | None) -> tuple[float, float]:
    if convention not in _SCALES:
        raise ValueError(f"unknown coordinate convention {convention!r}; known: {', '.join(_SCALES)}")
    return _SCALES[convention](image_size, input_size)


def to_original(box: Box, convention: str, image_size: Size, input_size: Size | None = None) -> list[float]:
    """Convert a box written in `convention` to original-image pixels."""
    sx, sy = _scale(convention, image_size, input_size)
    x1, y1, x2, y2 = box
    return [x1 / sx, y1 / sy, x2 / sx, y2 / sy]


def from_original(box: Box, convention: str, image_size: Size, input_size: Size | None = None) -> list[float]:
    """Convert a box in original-image pixels to `convention` (e.g. to render an SFT target)."""
    sx, sy = _scale(convention, image_size, input_size)
    x1, y1, x2, y2 = box
    return [x1 * sx, y1 * sy, x2 * sx, y2 * sy]


def clip_box(box: Box, image_size: Size) -> list[float]:
    """Clamp a pixel box to the image; a box wholly outside collapses to zero area."""
    w, h = image_size
    x1, y1, x2, y2 = box
    return [min(max(x1, 0.0), w), min(max(y1, 0.0), h), min(max(x2, 0.0), w), min(max(y2, 0.0), h)]


def box_iou(a: Box, b: Box) -> float:
    """Intersection over union of two xyxy boxes; 0.0 if either has no positive area (incl. inverted)."""
    ax1, ay1, ax2, ay2 = a
    bx1, by1, bx2, by2 = b
    if ax2 <= ax1 or ay2 <= ay1 or bx2 <= bx1 or by2 <= by1:
        return 0.0
    inter = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    return inter / union


def box_giou(a: Box, b: Box) -> float:
    """Generalised IoU (Rezatofighi et al., CVPR 2019): IoU - |C \\ (A ∪ B)| / |C|, C the enclosing box.

    In [-1, 1]. -1.0 if either box is inverted or has no positive area: unlike IoU, GIoU rewards
    a far-off valid box below 0, so an invalid one must not score better than that.
    """
    ax1, ay1, ax2, ay2 = a
    bx1, by1, bx2, by2 = b
    if ax2 <= ax1 or ay2 <= ay1 or bx2 <= bx1 or by2 <= by1:
        return -1.0
    inter = max(0.0, min(ax2, bx2) - max(ax1, bx1)) * max(0.0, min(ay2, by2) - max(ay1, by1))
    union = (ax2 - ax1) * (ay2 - ay1) + (bx2 - bx1) * (by2 - by1) - inter
    hull = (max(ax2, bx2) - min(ax1, bx1)) * (max(ay2, by2) - min(ay1, by1))
    return inter / union - (hull - union) / hull


def format_box(box: Box) -> str:
    """Render a box with integer coordinates, e.g. ``[12, 30, 55, 80]``."""
    return "[" + ", ".join(str(round(v)) for v in box) + "]"
