"""Checks that a sample is usable for training or evaluation before it reaches a model."""

import base64
import io
import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

from PIL import Image

from mmrft.data.errors import SampleError

REQUIRED_KEYS = ("id", "messages", "solution", "task")
_REMOTE_PREFIXES = ("http://", "https://", "data:")

SolutionChecker = Callable[[Any], str | None]
"""Takes a solution; returns why it is malformed, or None when it is fine."""

SOLUTION_CHECKERS: dict[str, SolutionChecker] = {}


def register_solution_checker(task: str) -> Callable[[SolutionChecker], SolutionChecker]:
    """Register the solution checker for `task`; a second checker for one task raises."""

    def register(checker: SolutionChecker) -> SolutionChecker:
        if task in SOLUTION_CHECKERS:
            raise ValueError(f"a solution checker for task {task!r} is already registered")
        SOLUTION_CHECKERS[task] = checker
        return checker

    return register


def _is_number(x: Any) -> bool:
    return isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x)


@register_solution_checker("grounding")
@register_solution_checker("gui_grounding")
def _check_box(solution: Any) -> str | None:
    """A box in original-image pixels, xyxy, with positive width and height."""
    if not isinstance(solution, list) or len(solution) != 4 or not all(map(_is_number, solution)):
        return f"grounding solution must be 4 finite numbers [x1, y1, x2, y2], got {solution!r}"
    x1, y1, x2, y2 = solution
    if not (x1 < x2 and y1 < y2):
        return f"grounding solution needs x1 < x2 and y1 < y2, got {solution!r}"
    return None


@register_solution_checker("temporal_grounding")
def _check_interval(solution: Any) -> str | None:
    """A moment in seconds: [start, end] with 0 <= start < end."""
    if not isinstance(solution, list) or len(solution) != 2 or not all(map(_is_number, solution)):
        return f"temporal_grounding solution must be [start, end] in seconds, got {solution!r}"
    if not 0 <= solution[0] < solution[1]:
        return f"temporal_grounding solution needs 0 <= start < end, got {solution!r}"
    return None


@register_solution_checker("vqa")
def _check_answers(solution: Any) -> str | None:
    if not isinstance(solution, list) or not solution or not all(isinstance(a, str) for a in solution):
        return f"vqa solution must be a non-empty list of answer strings, got {solution!r}"
    return None


@register_solution_checker("detection")
def _check_detections(solution: Any) -> str | None:
    """Ground-truth boxes: a list of {"bbox": [x1, y1, x2, y2], "label": ...} (or bare boxes); may be empty."""
    if not isinstance(solution, list):
        return f"detection solution must be a list of boxes, got {solution!r}"
    for item in solution:
        box = item.get("bbox") if isinstance(item, dict) else item
        if _check_box(box) is not None:
            return f"detection solution has a bad box {item!r}"
    return None


@register_solution_checker("mathvista")
def _check_answer_string(solution: Any) -> str | None:
    if not isinstance(solution, str) or not solution.strip():
        return f"mathvista solution must be the answer string, got {solution!r}"
    return None


@register_solution_checker("video_qa")
@register_solution_checker("multiple_choice")
def _check_letter(solution: Any) -> str | None:
    if not (isinstance(solution, str) and len(solution) == 1 and "A" <= solution <= "Z"):
        return f"solution must be one option letter A-Z, got {solution!r}"
    return None


@register_solution_checker("tracking")
def _check_track(solution: Any) -> str | None:
    """One box per asked frame ([x1, y1, x2, y2] pixels, or null where the object is absent)."""
    if not isinstance(solution, list) or not solution:
        return f"tracking solution must be a non-empty list of boxes or nulls, got {solution!r}"
    for box in solution:
        if box is not None and _check_box(box) is not None:
            return f"tracking solution has a bad box {box!r}"
    return None


@register_solution_checker("driving_plan")
def _check_waypoints(solution: Any) -> str | None:
    if not isinstance(solution, list) or not solution or not all(
        isinstance(p, (list, tuple)) and len(p) == 2 and all(_is_number(v) for v in p) for p in solution
    ):
        return f"driving_plan solution must be a non-empty list of [x, y] waypoints in metres, got {solution!r}"
    return None


@register_solution_checker("classification")
def _check_label(solution: Any) -> str | None:
    if not isinstance(solution, str) or not solution.strip():
        return f"classification solution must be a non-empty string, got {solution!r}"
    return None


@register_solution_checker("counting")
def _check_count(solution: Any) -> str | None:
    if not isinstance(solution, int) or isinstance(solution, bool) or solution < 0:
        return f"counting solution must be an int >= 0, got {solution!r}"
    return None


def check_sample(sample: dict[str, Any]) -> None:
    """Raise `SampleError` if `sample` breaks the sample schema or its images cannot be decoded.

    Checks the required keys, the message structure, that every local image exists and decodes
    fully, the solution against its task's checker, and `image_size` ([w, h]) when present.
    Relative image paths are opened as given, so resolve them first (`JsonlDataset` does).
    """
    sample_id = str(sample.get("id", "<no id>"))

    def fail(reason: str) -> SampleError:
        return SampleError(sample_id, reason)

    missing = [key for key in REQUIRED_KEYS if key not in sample]
    if missing:
        raise fail(f"missing keys: {', '.join(missing)}")
    image_paths = _image_paths(sample["messages"], fail)
    video_durations = [_video_duration(path, fail) for path in _video_paths(sample["messages"])]

    task = sample["task"]
    checker = SOLUTION_CHECKERS.get(task) if isinstance(task, str) else None
    if checker is None:
        raise fail(f"unknown task {task!r}; known tasks: {', '.join(sorted(SOLUTION_CHECKERS))}")
    problem = checker(sample["solution"])
    if problem:
        raise fail(problem)
    duration = sample.get("duration")
    if duration is not None and (not _is_number(duration) or duration <= 0):
        raise fail(f"duration must be a positive number of seconds, got {duration!r}")
    if task == "temporal_grounding":
        limits = [d for d in [duration, *video_durations[:1]] if d is not None]
        if limits and sample["solution"][1] > min(limits) + 1e-6:
            raise fail(f"solution ends at {sample['solution'][1]:g} s, beyond the video's duration {min(limits):g} s")

    size = sample.get("image_size")
    if size is not None and not (
        isinstance(size, list)
        and len(size) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) and v > 0 for v in size)
    ):
        raise fail(f"image_size must be [width, height] of positive ints, got {size!r}")

    decoded_sizes = [_decoded_size(path, fail) for path in image_paths]
    if size is not None and len(decoded_sizes) == 1 and tuple(size) != decoded_sizes[0]:
        width, height = decoded_sizes[0]
        raise fail(f"image_size {size} does not match the image's {width}x{height}")


def _image_paths(messages: Any, fail: Callable[[str], SampleError]) -> list[str]:
    """Check the message structure and return the local image paths it names."""
    if not isinstance(messages, list) or not messages:
        raise fail("messages must be a non-empty list")
    paths = []
    for i, message in enumerate(messages):
        if not isinstance(message, dict) or not {"role", "content"} <= message.keys():
            raise fail(f"message {i} must be an object with 'role' and 'content'")
        content = message["content"]
        if isinstance(content, str):
            continue
        if not isinstance(content, list) or not all(isinstance(item, dict) for item in content):
            raise fail(f"message {i} content must be a string or a list of objects")
        for item in content:
            if item.get("type") == "video":
                _check_video_files(item.get("video"), i, fail)
            if item.get("type") != "image":
                continue
            path = item.get("image")
            if not isinstance(path, str):
                raise fail(f"message {i} has an image item without an 'image' path")
            if path.startswith("data:image"):
                paths.append(path)  # an embedded image: decoded like a file
            elif not path.startswith(_REMOTE_PREFIXES):
                paths.append(path.removeprefix("file://"))
    return paths


def _video_paths(messages: list) -> list[str]:
    """Local video files (not frame lists) named by the (already checked) messages."""
    return [
        item["video"].removeprefix("file://")
        for message in messages
        if isinstance(message["content"], list)
        for item in message["content"]
        if item.get("type") == "video" and isinstance(item.get("video"), str) and not item["video"].startswith(_REMOTE_PREFIXES)
    ]


def _video_duration(path: str, fail: Callable[[str], SampleError]) -> float:
    """Open the container (no frames decoded): missing, empty, unreadable or frameless files fail."""
    from mmrft.data.video import VideoError, available_readers, open_video

    try:
        return open_video(path, available_readers()[0]).info().duration
    except VideoError as err:
        raise fail(str(err)) from None


def _check_video_files(video: Any, i: int, fail: Callable[[str], SampleError]) -> None:
    """A video item names a file or a list of frame files; every local one must exist."""
    files = video if isinstance(video, list) else [video]
    if not files or not all(isinstance(f, str) for f in files):
        raise fail(f"message {i} has a video item without a 'video' path or list of frame paths")
    for f in files:
        if not f.startswith(_REMOTE_PREFIXES) and not Path(f.removeprefix("file://")).is_file():
            raise fail(f"video not found: {f}")


def decode_data_uri(uri: str) -> bytes:
    """The bytes of a ``data:...;base64,`` URI."""
    _, sep, payload = uri.partition("base64,")
    if not sep:
        raise ValueError("not a base64 data URI")
    return base64.b64decode(payload, validate=True)


def _decoded_size(path: str, fail: Callable[[str], SampleError]) -> tuple[int, int]:
    """Decode the whole image (so truncation is caught) and return its (width, height)."""
    name = "embedded image" if path.startswith("data:") else path
    try:
        source = io.BytesIO(decode_data_uri(path)) if path.startswith("data:") else path
        with Image.open(source) as image:
            image.load()
            return image.size
    except FileNotFoundError:
        raise fail(f"image not found: {path}") from None
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as e:
        # PIL reports corrupt data as OSError (truncated, unidentified), SyntaxError (bad PNG
        # chunks) or ValueError, depending on where decoding breaks.
        raise fail(f"corrupt image: {name} ({str(e).split(' <_io.')[0]})") from None  # no BytesIO repr
