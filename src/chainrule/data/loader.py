"""``DataLoader``: shuffled mini-batches over in-memory arrays, resumable mid-epoch."""
from __future__ import annotations

import copy
from typing import Any, Iterator, Mapping

import numpy as np

import chainrule as cr

from .._random import default_generator

__all__ = ["DataLoader"]


class DataLoader:
    """Iterate over ``(X[idx], y[idx])`` mini-batches, one fresh permutation per epoch.

    Each batch is gathered with one fancy index, so an epoch never copies the whole set.
    The loader's generator state (at the start of the current epoch) and the number of
    batches already consumed are in ``state_dict()``, so a run interrupted mid-epoch can
    resume with exactly the batches it would have seen.

    Parameters
    ----------
    X, y : array-like
        Inputs and targets with the same first dimension.
    batch_size : int
        Samples per batch; the last partial batch is kept unless ``drop_last``.
    shuffle : bool
        Draw a new permutation every epoch.
    seed : int, optional
        Seed of the loader's own generator; drawn from ``cr.manual_seed``'s generator if
        omitted.
    rank, world_size : int, optional
        Data parallelism: every rank draws the same permutation (give every rank the same
        ``seed``, or the same ``cr.manual_seed``) and takes its part of each global batch of
        ``batch_size`` samples: the contiguous slices of ``np.array_split``, disjoint, and
        together exactly the batch one process would see. Defaults to
        ``cr.distributed.rank()`` and ``world_size()`` (0 of 1 outside MPI).

    Examples
    --------
    >>> import numpy as np
    >>> loader = DataLoader(np.arange(5), np.arange(5), batch_size=2, shuffle=False)
    >>> [xb.tolist() for xb, _ in loader]
    [[0, 1], [2, 3], [4]]
    >>> shard = DataLoader(np.arange(5), np.arange(5), batch_size=2, shuffle=False,
    ...                    rank=1, world_size=2)
    >>> [xb.tolist() for xb, _ in shard]
    [[1], [3], []]
    """

    def __init__(self, X: Any, y: Any, batch_size: int, shuffle: bool = True,
                 seed: int | None = None, drop_last: bool = False,
                 rank: int | None = None, world_size: int | None = None) -> None:
        self.X = np.asarray(X)
        self.y = np.asarray(y)
        if len(self.X) != len(self.y):
            raise cr.ChainruleError(
                f"DataLoader: X has {len(self.X)} samples but y has {len(self.y)}"
            )
        if batch_size < 1:
            raise cr.ChainruleError(f"DataLoader: batch_size must be >= 1, got {batch_size}")
        self.batch_size = int(batch_size)
        self.shuffle = bool(shuffle)
        self.drop_last = bool(drop_last)
        from .. import distributed

        self.world_size = int(distributed.world_size() if world_size is None else world_size)
        self.rank = int(distributed.rank() if rank is None else rank)
        if self.world_size < 1 or not 0 <= self.rank < self.world_size:
            raise cr.ChainruleError(f"DataLoader: rank {self.rank} is not in a world of "
                                    f"{self.world_size}")
        if seed is None:
            seed = int(default_generator().integers(2**63))
        self.rng = np.random.default_rng(seed)
        self._epoch_state: dict | None = None  # generator state when the current epoch began
        self._batch = 0  # batches consumed in the current epoch
        self.global_batch = 0  # size of the last global batch handed out (all ranks' shards)

    def __len__(self) -> int:
        n = len(self.X)
        return n // self.batch_size if self.drop_last else -(-n // self.batch_size)

    def __iter__(self) -> Iterator[tuple[np.ndarray, np.ndarray]]:
        if self._epoch_state is None:
            self._epoch_state = copy.deepcopy(self.rng.bit_generator.state)
            self._batch = 0
        else:
            # Resuming mid-epoch: replay the permutation this epoch began with.
            self.rng.bit_generator.state = copy.deepcopy(self._epoch_state)
        n = len(self.X)
        order = self.rng.permutation(n) if self.shuffle else np.arange(n)
        for b in range(self._batch, len(self)):
            # Counted when handed out: a checkpoint taken after the step on this batch
            # must not replay it.
            self._batch = b + 1
            idx = order[b * self.batch_size:(b + 1) * self.batch_size]
            self.global_batch = len(idx)    # so a rank can weight its share of the mean
            if self.world_size > 1:
                idx = self.shard(idx)
            yield self.X[idx], self.y[idx]
        self._batch = 0
        self._epoch_state = None

    def shard(self, idx: np.ndarray) -> np.ndarray:
        """This rank's contiguous part of one global batch's indices (may be empty)."""
        n, w = len(idx), self.world_size
        start = self.rank * (n // w) + min(self.rank, n % w)
        return idx[start:start + n // w + (self.rank < n % w)]

    def state_dict(self) -> dict[str, Any]:
        """The generator state and position: ``{"rng": ..., "batch": ...}``.

        Taken inside an epoch, ``batch`` counts the batches handed out so far (take it after
        the step on the last one), and ``rng`` is the state the epoch's permutation was drawn
        from; iterating after ``load_state_dict`` continues with the next batch.
        """
        if self._epoch_state is None:
            return {"rng": copy.deepcopy(self.rng.bit_generator.state), "batch": 0}
        return {"rng": copy.deepcopy(self._epoch_state), "batch": self._batch}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore what ``state_dict`` returned."""
        batch = int(state.get("batch", 0))
        if batch:
            self._epoch_state = copy.deepcopy(dict(state["rng"]))
            self._batch = batch
        else:
            self.rng.bit_generator.state = copy.deepcopy(dict(state["rng"]))
            self._epoch_state = None
            self._batch = 0
