"""Name → reward function registry, plus loading rewards from files and entry points."""

from __future__ import annotations

import difflib
import hashlib
import importlib.util
import math
import sys
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from pathlib import Path

RewardFn = Callable[..., list[float | None]]
"""`fn(completions, **columns) -> list[float | None]`: TRL's `reward_funcs` convention."""

ComponentsFn = Callable[..., dict[str, list[float | None]]]
"""`fn(completions, **columns) -> {component: list[float | None]}`: named parts of a reward, for logging only."""

ENTRY_POINT_GROUP = "mmrft.rewards"
UNKNOWN_RANGE = (-math.inf, math.inf)


@dataclass(frozen=True)
class RewardSpec:
    """A reward function with the metadata that logging and the CLI show."""

    name: str
    fn: RewardFn
    range: tuple[float, float]
    description: str
    components: ComponentsFn | None = None
    """Optional companion returning named components (logged as `reward/<name>/<component>`).

    The reward itself stays a plain TRL reward returning one number per completion; the
    components never enter the advantage.
    """


class UnknownRewardError(KeyError, ValueError):
    """Raised for a reward name that is neither registered, a file reference nor an entry point."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


_REGISTRY: dict[str, RewardSpec] = {}


def register_reward(
    name: str,
    *,
    range: tuple[float, float] = (0.0, 1.0),
    description: str = "",
    components: ComponentsFn | None = None,
) -> Callable[[RewardFn], RewardFn]:
    """Decorator registering `fn(completions, **columns)` under `name`; a duplicate name raises.

    `range` is the closed interval every non-None score lies in. `components`, if given, is a
    companion `fn(completions, **columns) -> {component: scores}` whose values are logged as
    `reward/<name>/<component>` (see `mmrft.rewards.safety.call_components`).
    """
    low, high = range
    if not low <= high:
        raise ValueError(f"reward {name!r}: range {range!r} is not (low, high) with low <= high")

    def decorator(fn: RewardFn) -> RewardFn:
        if name in _REGISTRY:
            raise ValueError(f"reward {name!r} is already registered ({_REGISTRY[name].fn.__module__})")
        _REGISTRY[name] = RewardSpec(name, fn, (low, high), description or _first_doc_line(fn), components)
        return fn

    return decorator


def reward_spec(name: str) -> RewardSpec:
    """Resolve a registered name, a `path/to/file.py:function` reference or a `mmrft.rewards` entry point."""
    if name in _REGISTRY:
        return _REGISTRY[name]
    path, sep, attr = name.rpartition(":")
    if sep and path.endswith(".py"):
        return _spec_from_file(name, Path(path), attr)
    found = list(entry_points(group=ENTRY_POINT_GROUP, name=name))
    if found:
        fn = found[0].load()  # importing the target may register it under this name
        return _REGISTRY.get(name) or RewardSpec(name, fn, UNKNOWN_RANGE, _first_doc_line(fn))
    known = sorted(_REGISTRY)
    hint = difflib.get_close_matches(name, known, n=3)
    raise UnknownRewardError(
        f"unknown reward {name!r}"
        + (f"; did you mean {', '.join(map(repr, hint))}?" if hint else "")
        + f" Known rewards: {', '.join(known)}."
        + " A user reward is named 'path/to/file.py:function' or installed as a"
        + f" {ENTRY_POINT_GROUP!r} entry point."
    )


def get_reward(name: str) -> RewardFn:
    """The reward function for `name` (see `reward_spec` for the accepted forms)."""
    return reward_spec(name).fn


def list_rewards() -> list[RewardSpec]:
    """Registered rewards, sorted by name."""
    return [_REGISTRY[name] for name in sorted(_REGISTRY)]


def _spec_from_file(ref: str, path: Path, attr: str) -> RewardSpec:
    """Import `path` as a module (once per resolved path) and take `attr`; registers nothing."""
    path = path.expanduser().resolve()
    if not path.is_file():
        raise FileNotFoundError(f"reward file not found: {path} (from {ref!r})")
    module_name = f"mmrft_reward_plugin_{path.stem}_{hashlib.sha1(str(path).encode()).hexdigest()[:8]}"
    module = sys.modules.get(module_name)
    if module is None:
        spec = importlib.util.spec_from_file_location(module_name, path)
        module = importlib.util.module_from_spec(spec)
        sys.modules[module_name] = module  # so pickling and dataclasses inside the plugin work
        try:
            spec.loader.exec_module(module)
        except BaseException:
            del sys.modules[module_name]
            raise
    fn = getattr(module, attr, None)
    if not callable(fn):
        public = [n for n, v in vars(module).items() if callable(v) and not n.startswith("_")]
        raise UnknownRewardError(f"{path} has no function {attr!r}; it defines: {', '.join(public)}")
    return RewardSpec(ref, fn, UNKNOWN_RANGE, _first_doc_line(fn))


def _first_doc_line(fn: Callable) -> str:
    return (fn.__doc__ or "").strip().split("\n", 1)[0]
