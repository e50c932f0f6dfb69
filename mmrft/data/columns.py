"""Rows of other projects' dataset layouts turned into mmrft samples (DESIGN.md §2).

A *preset* names the columns a project uses; ``data.columns`` picks one (or lets the columns
found pick it) and may rename any role:

- ``mmrft``: ``messages`` (Qwen chat format), ``solution``, ``task``; ``images`` fills the
  image items that carry no ``image`` value, in order (how ``mmrft data convert`` writes parquet).
- ``trl``: ``prompt`` (a string, or conversational messages with ``{"type": "image"}``
  placeholders), ``image`` or ``images``, ``solution`` (TRL's GRPO vision datasets).
- ``easyr1``: ``problem`` (text with ``<image>`` / ``<video>`` placeholders), ``answer``,
  ``images`` and ``videos`` (EasyR1's RLHFDataset).
- ``vlm_r1``: ``image`` (a path or a list), ``conversations`` (``from`` human / gpt, the gpt
  turn being the answer), VLM-R1's ``grpo_jsonl.py`` layout.

Images may be paths (relative to the dataset), PIL images, raw bytes, or ``datasets.Image``'s
``{"bytes": ..., "path": ...}``; embedded ones become ``data:image;base64,...`` URIs, which the
Qwen-VL processor path and :func:`mmrft.data.validate.check_sample` read. Videos are paths.
Columns no role takes (``task``, ``image_size``, ``meta``, ...) pass through to the sample, so
rewards see them as TRL's do. A conversion that fails raises :class:`SampleError`, so a bad row
is skipped and counted like a bad JSONL line.
"""

from __future__ import annotations

import base64
import io
import json
import os
import re
from dataclasses import dataclass, field
from typing import Any

from mmrft.data.errors import SampleError
from mmrft.data.jsonl import resolve_media_paths
from mmrft.data.validate import SOLUTION_CHECKERS, decode_data_uri


@dataclass(frozen=True)
class Preset:
    """A project's column layout: for each role, the column names it may have, first match wins."""

    name: str
    roles: dict[str, tuple[str, ...]]
    required: tuple[str, ...]
    """Roles every row must have a column for."""
    source: str
    """Where the layout comes from (shown by ``mmrft data inspect``)."""


PRESETS: dict[str, Preset] = {
    "mmrft": Preset(
        "mmrft",
        {"messages": ("messages",), "images": ("images",), "videos": ("videos",), "solution": ("solution",), "id": ("id",), "task": ("task",)},
        ("messages", "solution"),
        "mmrft's own sample schema (DESIGN.md §2); images embedded in an `images` column",
    ),
    "trl": Preset(
        "trl",
        {"prompt": ("prompt",), "images": ("images", "image"), "solution": ("solution",), "id": ("id",), "task": ("task",)},
        ("prompt", "solution"),
        "TRL GRPOTrainer: prompt (text or conversational), image(s), solution",
    ),
    "easyr1": Preset(
        "easyr1",
        {"problem": ("problem",), "images": ("images",), "videos": ("videos",), "solution": ("answer",), "id": ("id",), "task": ("task",)},
        ("problem", "solution"),
        "EasyR1: problem with <image> placeholders, answer, images",
    ),
    "vlm_r1": Preset(
        "vlm_r1",
        {"conversations": ("conversations",), "images": ("image",), "solution": ("solution",), "id": ("id",), "task": ("task",)},
        ("conversations",),
        "VLM-R1 grpo_jsonl: image (path or list), conversations human/gpt",
    ),
}
ROLES = ("messages", "prompt", "problem", "conversations", "images", "videos", "solution", "id", "task")
_PLACEHOLDER = re.compile(r"(<image>|<video>)")
_ANSWER_TAGS = re.compile(r"\s*<answer>(.*)</answer>\s*", re.S)


class LayoutError(ValueError):
    """A dataset whose columns fit no preset (or not the one asked for)."""


def describe_presets(columns: list[str]) -> str:
    """Each preset with its required columns and, against ``columns``, what it lacks."""
    lines = []
    for preset in PRESETS.values():
        names = [" or ".join(preset.roles[role]) for role in preset.required]
        missing = [name for role, name in zip(preset.required, names, strict=True) if not set(preset.roles[role]) & set(columns)]
        verdict = "fits" if not missing else f"lacks {', '.join(missing)}"
        lines.append(f"  {preset.name}: {', '.join(names)} [{verdict}]")
    return "\n".join(lines)


def matching_presets(columns: list[str]) -> list[str]:
    """Presets whose required columns are all among ``columns``, in PRESETS order."""
    return [p.name for p in PRESETS.values() if all(set(p.roles[r]) & set(columns) for r in p.required)]


@dataclass
class ColumnMap:
    """How one dataset's rows become samples: a preset's roles, with ``overrides`` renaming any.

    Built by :meth:`from_config` from ``data.columns`` and the dataset's column names.
    """

    preset: str
    columns: dict[str, str]
    """Role -> the column that fills it (only roles whose column exists)."""
    task: str | None = None
    """Task of rows that have no task column."""
    base_dir: str = "."
    """Relative media paths are resolved against this directory."""
    name: str = "data"
    """Rows without an id column get ``{name}:{index}``."""
    passthrough: list[str] = field(default_factory=list)
    """Columns no role takes, copied into each sample."""

    @classmethod
    def from_config(cls, spec: dict | None, column_names: list[str], base_dir: str = ".", name: str = "data") -> ColumnMap:
        """``spec`` is ``data.columns``: ``preset`` (else picked from the columns), ``task``, and role -> column renames."""
        spec = dict(spec or {})
        preset_name, task = spec.pop("preset", None), spec.pop("task", None)
        unknown = sorted(set(spec) - set(ROLES))
        if unknown:
            raise LayoutError(f"data.columns: unknown key {unknown[0]!r}; valid: preset, task, {', '.join(ROLES)}")
        if preset_name is None:
            fits = matching_presets(column_names) if not spec else _fits_with(spec, column_names)
            if not fits:
                raise LayoutError(
                    f"no column layout fits the columns found: {', '.join(column_names)}\n"
                    f"presets (required columns):\n{describe_presets(column_names)}\n"
                    "set data.columns, e.g. {preset: trl, prompt: question, images: image, solution: answer, task: grounding}"
                )
            preset_name = fits[0]
        if preset_name not in PRESETS:
            raise LayoutError(f"data.columns.preset: unknown preset {preset_name!r}; known: {', '.join(PRESETS)}")
        preset = PRESETS[preset_name]
        foreign = sorted(set(spec) - set(preset.roles))
        if foreign:
            raise LayoutError(f"data.columns.{foreign[0]}: preset {preset_name} has no such role; its roles: {', '.join(preset.roles)}")
        chosen = {}
        for role, candidates in preset.roles.items():
            names = (spec[role],) if role in spec else candidates
            found = next((c for c in names if c in column_names), None)
            if found is not None:
                chosen[role] = found
            elif role in spec:
                raise LayoutError(f"data.columns.{role}: no column {spec[role]!r}; columns found: {', '.join(column_names)}")
        missing = [role for role in preset.required if role not in chosen]
        if missing:
            raise LayoutError(
                f"preset {preset_name}: no column for {', '.join(missing)} among the columns found: {', '.join(column_names)}\n"
                f"presets (required columns):\n{describe_presets(column_names)}"
            )
        taken = set(chosen.values())
        passthrough = [c for c in column_names if c not in taken]
        return cls(preset_name, chosen, task, str(base_dir), name, passthrough)

    def to_sample(self, row: dict[str, Any], index: int) -> dict[str, Any]:
        """The mmrft sample of ``row`` (row ``index`` of the dataset); raises SampleError if it cannot be built."""
        sample_id = str(row[self.columns["id"]]) if "id" in self.columns and row.get(self.columns["id"]) is not None else f"{self.name}:{index}"
        try:
            sample = {key: row[key] for key in self.passthrough}
            sample["id"] = sample_id
            sample["messages"] = self._messages(row)
            task = row.get(self.columns["task"]) if "task" in self.columns else None
            task = task or self.task
            if task is None:
                raise SampleError(sample_id, "no task: the rows have no task column; set data.columns.task")
            sample["task"] = task
            solution = row.get(self.columns["solution"]) if "solution" in self.columns else self._answer_turn(row)
            sample["solution"] = coerce_solution(task, solution)
            resolve_media_paths(sample, self.base_dir)
            if "image_size" not in sample or sample["image_size"] is None:
                size = first_image_size(sample["messages"])
                if size is not None:
                    sample["image_size"] = size
        except SampleError:
            raise
        except (TypeError, ValueError, KeyError, AttributeError) as err:
            raise SampleError(sample_id, f"cannot convert the row: {type(err).__name__}: {err}") from None
        return sample

    # -- messages per layout -----------------------------------------------------------------
    def _messages(self, row: dict) -> list[dict]:
        media = {kind: _as_list(row.get(self.columns[kind])) if kind in self.columns else [] for kind in ("images", "videos")}
        if self.preset == "mmrft":
            messages = row[self.columns["messages"]]
            messages = json.loads(messages) if isinstance(messages, str) else messages
            messages = [_clean_message(m) for m in messages]
        elif self.preset == "trl":
            prompt = row[self.columns["prompt"]]
            messages = [_clean_message(m) for m in prompt] if isinstance(prompt, list) else [_user(_split_placeholders(prompt))]
        elif self.preset == "easyr1":
            messages = [_user(_split_placeholders(row[self.columns["problem"]]))]
        else:
            turns = [t for t in row[self.columns["conversations"]] if t.get("from") in ("human", "user")]
            if not turns:
                raise ValueError("no human turn in conversations")
            messages = [_user(_split_placeholders(turns[0]["value"]))]
        for kind in ("images", "videos"):
            _place_media(messages, kind[:-1], [_media_value(v, kind) for v in media[kind]])
        return messages

    def _answer_turn(self, row: dict) -> Any:
        """VLM-R1 rows without a solution column: the first gpt turn is the answer."""
        turns = row[self.columns["conversations"]] if "conversations" in self.columns else []
        answers = [t["value"] for t in turns if t.get("from") in ("gpt", "assistant")]
        if not answers:
            raise ValueError("no gpt turn (the answer) in conversations")
        return answers[0]


def _fits_with(spec: dict, column_names: list[str]) -> list[str]:
    """Presets whose required roles are all present once ``spec``'s renames apply."""
    names = set(column_names)
    return [
        p.name for p in PRESETS.values()
        if all((spec[r] in names) if r in spec else bool(set(p.roles[r]) & names) for r in p.required)
    ]


def _user(content: list[dict]) -> dict:
    return {"role": "user", "content": content}


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, list | tuple) else [value]


def _split_placeholders(text: str) -> list[dict]:
    """Text with ``<image>`` / ``<video>`` markers -> content items, a placeholder per marker."""
    content = []
    for part in _PLACEHOLDER.split(text):
        if part in ("<image>", "<video>"):
            content.append({"type": part[1:-1]})
        elif part:
            content.append({"type": "text", "text": part})
    return content


def _clean_message(message: dict) -> dict:
    """Drop the null fields Arrow adds to struct rows (a text item read back has ``image: None``)."""
    content = message["content"]
    if isinstance(content, str):
        return {"role": message["role"], "content": content}
    items = []
    for item in content:
        item = {k: v for k, v in item.items() if v is not None}
        if item.get("type") == "text" and "text" not in item:
            item["text"] = ""
        items.append(item)
    return {"role": message["role"], "content": items}


def _place_media(messages: list[dict], kind: str, values: list[str]) -> None:
    """Fill the ``kind`` items without a value, in order; with none, put the media first in the first user turn."""
    slots = [
        item for m in messages if isinstance(m["content"], list) for item in m["content"]
        if item.get("type") == kind and not item.get(kind)
    ]
    if not slots and values:
        first = next((m for m in messages if m["role"] == "user"), messages[0])
        if isinstance(first["content"], str):
            first["content"] = [{"type": "text", "text": first["content"]}]
        first["content"][:0] = [{"type": kind, kind: v} for v in values]
        return
    if len(slots) != len(values):
        raise ValueError(f"{len(slots)} {kind} placeholders but {len(values)} {kind}s")
    for item, value in zip(slots, values, strict=True):
        item[kind] = value


def _media_value(value: Any, kind: str) -> str:
    """A path string, or an embedded image as a data URI."""
    if isinstance(value, str):
        return value
    if isinstance(value, dict):
        if value.get("bytes"):
            return data_uri(value["bytes"]) if kind == "images" else _refuse(kind)
        if value.get("path"):
            return value["path"]
        raise ValueError(f"an {kind[:-1]} with neither bytes nor a path")
    if isinstance(value, bytes | bytearray | memoryview):
        return data_uri(bytes(value)) if kind == "images" else _refuse(kind)
    from PIL import Image

    if isinstance(value, Image.Image) and kind == "images":
        buffer = io.BytesIO()
        value.save(buffer, format="PNG")
        return data_uri(buffer.getvalue())
    raise ValueError(f"cannot read an {kind[:-1]} from a {type(value).__name__}")


def _refuse(kind: str):
    raise ValueError(f"embedded {kind} are not supported: give {kind} as paths")


def data_uri(data: bytes) -> str:
    """``data:image;base64,...``: the embedded-image form qwen-vl-utils' fetch_image reads."""
    return "data:image;base64," + base64.b64encode(data).decode("ascii")


def first_image_size(messages: list[dict]) -> list[int] | None:
    """[width, height] of the first image, from its header (not decoded); None without images or when unreadable."""
    from PIL import Image

    for message in messages:
        for item in message["content"] if isinstance(message["content"], list) else []:
            if item.get("type") != "image" or not isinstance(item.get("image"), str):
                continue
            image = item["image"]
            try:
                source = io.BytesIO(decode_data_uri(image)) if image.startswith("data:") else image.removeprefix("file://")
                if isinstance(source, str) and (source.startswith(("http://", "https://")) or not os.path.isfile(source)):
                    return None
                with Image.open(source) as im:
                    return list(im.size)
            except (OSError, ValueError, SyntaxError):
                return None  # check_sample reports the broken image
    return None


def coerce_solution(task: str, solution: Any) -> Any:
    """A solution given as text (EasyR1's answer, VLM-R1's gpt turn) in the form ``task``'s checker wants.

    ``"[1, 2, 3, 4]"`` -> a box, ``"3"`` -> a count, ``"cat"`` -> ``["cat"]`` for VQA; an
    ``<answer>...</answer>`` wrapper is removed. Anything the checker rejects either way is
    returned unchanged, for validation to report.
    """
    checker = SOLUTION_CHECKERS.get(task)
    if checker is None or not isinstance(solution, str) or checker(solution) is None:
        return solution
    match = _ANSWER_TAGS.fullmatch(solution)
    text = (match.group(1) if match else solution).strip()
    candidates: list[Any] = [text, [text]]
    try:
        candidates.insert(0, json.loads(text))
    except ValueError:
        parsed = False
    else:
        parsed = True
    for candidate in candidates:
        if checker(candidate) is None:
            return candidate
    return candidates[0] if parsed else solution  # validation then names what is wrong with the value


__all__ = ["PRESETS", "ColumnMap", "LayoutError", "coerce_solution", "data_uri", "describe_presets", "matching_presets"]
