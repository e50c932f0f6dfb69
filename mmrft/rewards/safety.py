"""Calling rewards so that a broken one never stops training.

A user reward may raise, hang, return the wrong number of scores or a non-number. `call_reward`
contains all of these: the affected completions score per the `on_error` policy and the
failures are counted, so the trainer can log `reward/<name>/errors`.

A reward with a time limit runs in a worker process of its own (forked, so any callable
works), and a plugin reward (one not defined in mmrft) always has one: `DEFAULT_PLUGIN_TIMEOUT_S`
unless the config sets `timeout_s`. A call that runs past its limit kills the worker; the next
call forks a fresh one. So a reward that keeps hanging costs one process at a time, never a
growing pile of threads. The worker sees the trainer's state as of its fork: what a plugin
changes in its own module stays in the worker, and it cannot use a GPU the trainer already has.
To step through a plugin with `breakpoint()`, call it with `mmrft rewards score`, in-process.
"""

from __future__ import annotations

import math
import multiprocessing
import numbers
import signal
from collections.abc import Callable
from typing import Any

DEFAULT_PLUGIN_TIMEOUT_S = 60.0
"""Time limit of a plugin reward's call when its config sets none."""
ON_ERROR_POLICIES = ("none", "zero", "raise")
"""`none`: a failed item scores None (excluded from group normalisation); `zero`: 0.0; `raise`: re-raise."""


class RewardError(RuntimeError):
    """A reward failed under `on_error="raise"`; the message names the reward and what went wrong."""


def call_reward(
    fn: Callable[..., Any],
    completions: list[Any],
    columns: dict[str, list[Any]],
    on_error: str = "none",
    timeout_s: float | None = None,
    *,
    name: str | None = None,
) -> tuple[list[float | None], int]:
    """Score `completions` with `fn(completions, **columns)`; return (scores, number of failed items).

    Failures: `fn` raises (every item fails), runs past `timeout_s` (every item fails; its worker
    process is killed), returns something that is not a
    sequence of `len(completions)` (every item fails), or returns an item that is neither None
    nor a finite real number (that item fails). None is a valid score ("not applicable"), not a
    failure. `name` labels error messages (default: the function's `__name__`). With `timeout_s`
    unset, mmrft's own rewards run in this process without a limit, plugins in a worker with
    `DEFAULT_PLUGIN_TIMEOUT_S` (module docstring).
    """
    if on_error not in ON_ERROR_POLICIES:
        raise ValueError(f"on_error must be one of {', '.join(ON_ERROR_POLICIES)}; got {on_error!r}")
    label = name or getattr(fn, "__name__", None) or repr(fn)
    n = len(completions)
    try:
        raw = _run(fn, completions, columns, timeout_s)
    except Exception as error:  # noqa: BLE001 -- containing arbitrary user code is the point
        if on_error == "raise":
            raise RewardError(f"reward {label!r} failed: {_one_line(error)}") from error
        return [_failed(on_error)] * n, n
    if isinstance(raw, (str, bytes)) or not hasattr(raw, "__len__") or len(raw) != n:
        problem = f"returned {_describe(raw)} for {n} completions"
        if on_error == "raise":
            raise RewardError(f"reward {label!r} {problem}")
        return [_failed(on_error)] * n, n
    scores: list[float | None] = []
    errors = 0
    for index, item in enumerate(raw):
        score = _as_score(item)
        if score is _INVALID:
            if on_error == "raise":
                raise RewardError(f"reward {label!r} returned {item!r} for completion {index}: not a finite number")
            errors += 1
            score = _failed(on_error)
        scores.append(score)
    return scores, errors


def call_components(
    fn: Callable[..., Any] | None, completions: list[Any], columns: dict[str, list[Any]]
) -> dict[str, list[float | None]]:
    """Named components from a reward's companion (`RewardSpec.components`), for logging.

    Logging must never break training: any failure, or a component of the wrong length, drops
    that component (all of them if the companion raises). Non-finite values become None.
    """
    if fn is None:
        return {}
    try:
        raw = fn(completions, **columns)
    except Exception:  # noqa: BLE001
        return {}
    if not isinstance(raw, dict):
        return {}
    n = len(completions)
    out: dict[str, list[float | None]] = {}
    for key, values in raw.items():
        if isinstance(values, (str, bytes)) or not hasattr(values, "__len__") or len(values) != n:
            continue
        out[str(key)] = [None if (s := _as_score(v)) is _INVALID else s for v in values]
    return out


_INVALID = object()


def _as_score(item: Any) -> float | None | object:
    if item is None:
        return None
    if isinstance(item, numbers.Real):
        value = float(item)
        return value if math.isfinite(value) else _INVALID
    return _INVALID


def _failed(on_error: str) -> float | None:
    return 0.0 if on_error == "zero" else None


def _run(fn: Callable[..., Any], completions: list[Any], columns: dict[str, list[Any]], timeout_s: float | None) -> Any:
    if timeout_s is None and _is_builtin(fn):
        return fn(completions, **columns)
    worker = _WORKERS.get(fn)
    if worker is None or not worker.process.is_alive():
        worker = _WORKERS[fn] = _Worker(fn)
    try:
        return worker.call(completions, columns, DEFAULT_PLUGIN_TIMEOUT_S if timeout_s is None else timeout_s)
    except (TimeoutError, EOFError, OSError):
        worker.kill()  # hung or died: the next call forks a fresh one
        del _WORKERS[fn]
        raise


def _is_builtin(fn: Callable[..., Any]) -> bool:
    return (getattr(fn, "__module__", None) or "").startswith("mmrft.")


class _Worker:
    """A forked process that runs one reward function per request sent over a pipe."""

    def __init__(self, fn: Callable[..., Any]) -> None:
        context = multiprocessing.get_context("fork")  # fork: `fn` need not be picklable
        self.conn, child = context.Pipe()
        name = f"reward-{getattr(fn, '__name__', 'fn')}"
        self.process = context.Process(target=_serve, args=(fn, child), name=name, daemon=True)
        self.process.start()
        child.close()

    def call(self, completions: list[Any], columns: dict[str, list[Any]], timeout_s: float) -> Any:
        self.conn.send((completions, columns))
        if not self.conn.poll(timeout_s):
            raise TimeoutError(f"no result within {timeout_s:g} s")
        ok, value = self.conn.recv()  # EOFError if the worker died
        if not ok:
            raise value
        return value

    def kill(self) -> None:
        self.process.kill()
        self.process.join()
        self.conn.close()


_WORKERS: dict[Callable[..., Any], _Worker] = {}


def _serve(fn: Callable[..., Any], conn: Any) -> None:
    """The worker's loop: until the trainer closes the pipe, call `fn` and send back (ok, result or error)."""
    # Forked from a trainer whose SIGTERM handler finishes a step: the worker must instead die when
    # multiprocessing terminates it at exit, and leave Ctrl-C to the trainer, which kills it.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    while True:
        try:
            completions, columns = conn.recv()
        except EOFError:
            return
        try:
            reply = (True, fn(completions, **columns))
        except Exception as error:  # noqa: BLE001 -- handed to the caller
            reply = (False, error)
        try:
            conn.send(reply)
        except Exception as error:  # noqa: BLE001 -- an unpicklable result or exception
            conn.send((False, RuntimeError(f"the reward's {'result' if reply[0] else 'error'} could not be sent back: {_one_line(error)}")))


def _describe(value: Any) -> str:
    if hasattr(value, "__len__") and not isinstance(value, (str, bytes)):
        return f"{type(value).__name__} of length {len(value)}"
    return f"{type(value).__name__} {value!r}"[:200]


def _one_line(error: BaseException) -> str:
    text = " ".join(str(error).split())
    return f"{type(error).__name__}: {text}"[:500] if text else type(error).__name__
