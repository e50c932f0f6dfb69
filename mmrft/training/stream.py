"""Resumable, seeded streams of valid training samples that skip and count broken ones."""

from __future__ import annotations

import logging
import math
from collections import Counter

import numpy as np

from mmrft.algorithms.curriculum import CURRICULA
from mmrft.data.errors import SampleError
from mmrft.data.validate import check_sample

log = logging.getLogger(__name__)


class SampleStream:
    """Yields batches of valid samples in a seeded order, reshuffled every epoch.

    Its position (epoch, cursor) is part of a checkpoint, so a resumed run sees exactly the
    samples the uninterrupted run would have seen next. Samples that fail
    :func:`mmrft.data.validate.check_sample` are skipped and counted (``on_bad='skip'``) or
    raise (``on_bad='raise'``).
    """

    def __init__(self, dataset, seed: int, shuffle: bool = True, on_bad: str = "skip"):
        if len(dataset) == 0:
            raise ValueError("the training set has no samples")
        self.dataset = dataset
        self.seed = seed
        self.shuffle = shuffle
        self.on_bad = on_bad
        self.epoch = 0
        self.cursor = 0
        self.skipped: Counter[str] = Counter()
        self.skipped_ids: set[str] = set()
        self.new_skips: list[dict] = []  # first sighting of each broken sample, drained into skipped.jsonl
        self._cached_epoch, self._cached_order = -1, np.arange(0)

    def _order(self) -> np.ndarray:
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, self.epoch]).permutation(n)

    def _next_index(self) -> int:
        if self.cursor >= len(self.dataset):
            self.epoch, self.cursor = self.epoch + 1, 0
        if self._cached_epoch != self.epoch:
            self._cached_order, self._cached_epoch = self._order(), self.epoch
        index = int(self._cached_order[self.cursor])
        self.cursor += 1
        return index

    def next_batch(self, size: int) -> list[dict]:
        """The next ``size`` valid samples (crossing epochs as needed)."""
        batch, misses = [], 0
        while len(batch) < size:
            index = self._next_index()
            try:
                sample = self.dataset[index]
                check_sample(sample)
            except SampleError as err:
                if self.on_bad == "raise":
                    raise
                misses += 1
                if misses > 2 * len(self.dataset):
                    raise RuntimeError("every sample in the training set is broken; see the skipped-sample log") from err
                if err.sample_id not in self.skipped_ids:
                    self.skipped_ids.add(err.sample_id)
                    self.new_skips.append({"id": err.sample_id, "reason": err.reason})
                    log.warning("skipping %s", err)
                self.skipped[err.reason.split(":")[0]] += 1
                continue
            batch.append(sample)
        return batch

    def observe(self, step: int, metrics: dict) -> None:
        """Called after every step with its metrics (curricula react to the reward)."""

    def state_dict(self) -> dict:
        return {
            "epoch": self.epoch,
            "cursor": self.cursor,
            "skipped": dict(self.skipped),
            "skipped_ids": sorted(self.skipped_ids),
        }

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.cursor = int(state["epoch"]), int(state["cursor"])
        self.skipped = Counter(state.get("skipped", {}))
        self.skipped_ids = set(state.get("skipped_ids", []))


def _lookup(sample: dict, key: str):
    value = sample
    for part in key.split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


class CurriculumStream(SampleStream):
    """Draws each sample among those whose difficulty lies in the curriculum's current window.

    Difficulties are read once, at start-up, from ``difficulty_key`` (a dotted path such as
    ``meta.difficulty``); rows without one are never drawn. When no sample lies in the window,
    the window widens to the nearest difficulty present. Draws are seeded by (seed, draw
    count), so the stream resumes exactly.
    """

    def __init__(self, dataset, seed: int, curriculum: dict, on_bad: str = "skip"):
        super().__init__(dataset, seed, True, on_bad)
        spec = dict(curriculum)
        name, key = spec.pop("name", None), spec.pop("difficulty_key", "meta.difficulty")
        self.reward_key = spec.pop("reward_key", "reward/mean")
        self.difficulty = np.full(len(dataset), math.nan)
        for i in range(len(dataset)):
            try:
                value = _lookup(dataset[i], key)
            except SampleError:
                continue
            if isinstance(value, int | float):
                self.difficulty[i] = float(value)
        known = self.difficulty[~np.isnan(self.difficulty)]
        if known.size == 0:
            raise ValueError(f"curriculum {name!r}: no training sample has a number at {key!r}")
        for field in ("max_difficulty", "until"):
            if field in spec:
                spec[field] = tuple(spec[field])
        self.curriculum = CURRICULA.get(name)(d_min=float(known.min()), d_max=float(known.max()), **spec)
        self.step = 0
        self.draws = 0

    def _next_index(self) -> int:
        low, high = self.curriculum.window(self.step)
        present = np.unique(self.difficulty[~np.isnan(self.difficulty)])
        inside = present[(present >= low) & (present <= high)]
        if inside.size == 0:  # widen to the nearest difficulty present
            gap = np.minimum(np.abs(present - low), np.abs(present - high))
            inside = present[gap == gap.min()]
        pool = np.flatnonzero(np.isin(self.difficulty, inside))
        rng = np.random.default_rng([self.seed, self.draws])
        self.draws += 1
        return int(pool[rng.integers(len(pool))])

    def observe(self, step: int, metrics: dict) -> None:
        self.step = step
        self.curriculum.observe(step, float(metrics.get(self.reward_key, math.nan)))

    def state_dict(self) -> dict:
        return {**super().state_dict(), "draws": self.draws, "step": self.step, "curriculum": self.curriculum.state_dict()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.draws, self.step = int(state["draws"]), int(state["step"])
        self.curriculum.load_state_dict(state["curriculum"])


def make_stream(dataset, seed: int, data_config) -> SampleStream:
    """The stream a data config asks for: plain shuffled epochs, or a curriculum."""
    if data_config.curriculum:
        return CurriculumStream(dataset, seed, data_config.curriculum, data_config.on_bad_sample)
    return SampleStream(dataset, seed, data_config.shuffle, data_config.on_bad_sample)
