"""A resumable, seeded stream of valid training samples that skips and counts broken ones."""

from __future__ import annotations

import logging
from collections import Counter

import numpy as np

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

    def _order(self) -> np.ndarray:
        n = len(self.dataset)
        if not self.shuffle:
            return np.arange(n)
        return np.random.default_rng([self.seed, self.epoch]).permutation(n)

    def next_batch(self, size: int) -> list[dict]:
        """The next ``size`` valid samples (crossing epochs as needed)."""
        batch, order, misses = [], self._order(), 0
        while len(batch) < size:
            if self.cursor >= len(order):
                self.epoch, self.cursor = self.epoch + 1, 0
                order = self._order()
                if misses >= len(order):
                    raise RuntimeError("every sample in the training set is broken; see the skipped-sample log")
            index = int(order[self.cursor])
            self.cursor += 1
            try:
                sample = self.dataset[index]
                check_sample(sample)
            except SampleError as err:
                if self.on_bad == "raise":
                    raise
                misses += 1
                if err.sample_id not in self.skipped_ids:
                    self.skipped_ids.add(err.sample_id)
                    log.warning("skipping %s", err)
                self.skipped[err.reason.split(":")[0]] += 1
                continue
            batch.append(sample)
        return batch

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "cursor": self.cursor, "skipped": dict(self.skipped)}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.cursor = int(state["epoch"]), int(state["cursor"])
        self.skipped = Counter(state.get("skipped", {}))
