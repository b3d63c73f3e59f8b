"""Batches by token count: as many sentences as fit in a budget of padded tokens, in few shapes.

A fixed number of sentences per batch gives a batch of short sentences few tokens to learn from
and a batch of long ones many (and the most memory). Counting tokens instead evens the work of
every step out. In GRAPH_MODE, though, every distinct ``(rows, length)`` shape is a compilation,
so the rows are not chosen freely: each padded length ``L`` has one row count,
``rows(L) = batch_tokens // L``, and a batch is exactly ``rows(L) x L`` (per side)::

    pairs --padded length L (8, 16, 24, ... or the length buckets)--> one pool per L
    each epoch, seeded by (seed, epoch):
      shortest L first: shuffle its pool, cut it into groups of rows(L) x group sentences;
                        the few left over move on to the next longer L (they fit it too)
      the last leftovers: one partial group, its missing rows filled (masked out of the loss)
      shuffle the order of the groups
    --> [(indices, L), ...]: every pair exactly once per epoch, rows(L) x L <= batch_tokens

``group`` keeps consecutive batches in one shape (gradient accumulation stacks ``group``
batches into one ``(group, rows, L)`` array); ``row_multiple`` makes ``rows(L)`` divisible by
the number of data-parallel workers, each of which gets ``batch_tokens / row_multiple`` tokens.

    >>> s = TokenBatchSampler([3, 5, 9, 12, 2, 7], (8, 16), batch_tokens=32, seed=0)
    >>> s.rows(8), s.rows(16)
    (4, 2)
    >>> sorted(sorted(idx) for idx, length in s.batches(0))
    [[0, 1, 4, 5], [2, 3]]
"""
from __future__ import annotations

from typing import Dict, List, Sequence, Tuple

import numpy as np

from mindtf.data.batching import bucket_length
from mindtf.errors import InputError

__all__ = ["TokenBatchSampler"]


class TokenBatchSampler:
    """Yields ``(indices, L)``: batches of at most ``rows(L)`` examples, padded to length ``L``.

    Args:
        lengths: each example's length (for a translation pair: the longer of source and
            decoder input).
        padded_lengths: the lengths a batch can be padded to (ascending), e.g. ``(8, 16, ..., 64)``.
        batch_tokens: most padded tokens in a batch (per side): ``rows(L) * L <= batch_tokens``.
        seed: same seed and epoch -> same batches.
        group: consecutive batches that share one ``L`` (gradient accumulation).
        row_multiple: ``rows(L)`` is a multiple of this (data-parallel workers).
        shuffle: False keeps examples in dataset order and groups shortest ``L`` first.
    """

    def __init__(self, lengths: Sequence[int], padded_lengths: Sequence[int], batch_tokens: int,
                 seed: int = 0, group: int = 1, row_multiple: int = 1,
                 shuffle: bool = True) -> None:
        self.padded_lengths = tuple(sorted(int(n) for n in padded_lengths))
        if not self.padded_lengths:
            raise InputError("padded_lengths is empty: give at least one length.")
        if group < 1 or row_multiple < 1:
            raise InputError(f"group={group} and row_multiple={row_multiple} must be >= 1.")
        self.batch_tokens, self.seed = int(batch_tokens), seed
        self.group, self.row_multiple, self.shuffle = int(group), int(row_multiple), shuffle
        longest = self.padded_lengths[-1]
        if self.rows(longest) < 1:
            raise InputError(f"batch_tokens={batch_tokens} cannot hold one row of the longest "
                             f"padded length {longest}"
                             + (f" per worker ({row_multiple} workers)" if row_multiple > 1
                                else "")
                             + f": use batch_tokens >= {longest * row_multiple}.")
        self.n = len(lengths)
        #: each example's padded length
        self.padded = np.asarray([bucket_length(int(n), self.padded_lengths) for n in lengths],
                                 dtype=np.int64)  # (N,)
        by_length: Dict[int, List[int]] = {n: [] for n in self.padded_lengths}
        for i, n in enumerate(self.padded.tolist()):
            by_length[n].append(i)
        #: the example indices of each padded length, in dataset order
        self.pools = {n: np.asarray(ix, dtype=np.int64) for n, ix in by_length.items()}

    def rows(self, length: int) -> int:
        """Sentences in a batch padded to ``length`` (fill rows included)."""
        per_worker = self.batch_tokens // self.row_multiple // int(length)
        return per_worker * self.row_multiple

    def shapes(self) -> List[Tuple[int, int]]:
        """Every ``(rows, L)`` a batch of these examples can have (one compilation each): each
        padded length up to the longest example's (leftovers of shorter lengths can fill a batch
        of a length that has no example of its own)."""
        longest = int(self.padded.max()) if self.n else 0
        return [(self.rows(n), n) for n in self.padded_lengths if n <= longest]

    def batches(self, epoch: int = 0) -> List[Tuple[List[int], int]]:
        """One epoch: ``[(indices, L), ...]`` in groups of ``group`` batches with one ``L``.
        Only the last group of the epoch's build (before the groups are shuffled) can hold fewer
        than ``rows(L)`` examples per batch (or none: pad such a batch with masked rows)."""
        rng = np.random.default_rng([self.seed, epoch])
        groups: List[List[Tuple[List[int], int]]] = []
        carry = np.zeros(0, dtype=np.int64)
        for length in self.padded_lengths:
            pool = self.pools[length]
            if self.shuffle:
                pool = rng.permutation(pool)
            pool = np.concatenate([carry, pool])
            rows = self.rows(length)
            unit = rows * self.group
            full = len(pool) - len(pool) % unit
            for start in range(0, full, unit):
                groups.append([(pool[s:s + rows].tolist(), length)
                               for s in range(start, start + unit, rows)])
            carry = pool[full:]
        if len(carry):  # the last few: one partial group at the length the longest of them needs
            length = int(self.padded[carry].max())
            groups.append([(part.tolist(), length)
                           for part in np.array_split(carry, self.group)])
        if self.shuffle:
            groups = [groups[i] for i in rng.permutation(len(groups))]
        return [batch for g in groups for batch in g]

    def __len__(self) -> int:
        """Batches per epoch (the same every epoch)."""
        return len(self.batches(0))
