"""Turning token ids into training batches: padding, length bucketing, seq2seq and LM batches.

Why plain numpy and not ``mindspore.dataset``? Batching here is a few array operations, and
keeping it in numpy makes it

* **simple** — every step is visible in a few lines, nothing runs in background worker processes;
* **deterministic** — the order of examples depends only on ``(seed, epoch)``, so a run can be
  reproduced or resumed exactly;
* **the same on every device** — CPU, GPU and Ascend get the same batches;
* **easy to test** — no MindSpore import, no graph compilation.

The arrays become ``mindspore.Tensor`` only at the training step (``Tensor(batch["src"])``), which
is also where they are moved to the device.

    >>> pad_sequences([[5, 6, 7], [8]], pad_id=0)
    array([[5, 6, 7],
           [8, 0, 0]], dtype=int32)
"""
from __future__ import annotations

import math
from typing import (Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple)

import numpy as np

from mindtf.errors import InputError

__all__ = ["pad_sequences", "bucket_length", "BucketBatchSampler", "batch_iterator",
           "Seq2SeqBatcher", "random_lm_batch", "lm_batches",
           "RandomLMBatches", "EpochBatches", "full_lm_batches"]


def pad_sequences(seqs: Sequence[Sequence[int]], pad_id: int, max_len: Optional[int] = None,
                  dtype: Any = np.int32, truncate: bool = False) -> np.ndarray:
    """Stack sequences of different lengths into one ``(B, T)`` array, right-padded with ``pad_id``.

    ``T`` is ``max_len`` if given, else the longest sequence. A sequence longer than ``max_len``
    raises :class:`~mindtf.errors.InputError` unless ``truncate=True`` (then it is cut to fit).
    """
    longest = max((len(s) for s in seqs), default=0)
    width = longest if max_len is None else max_len
    if longest > width and not truncate:
        raise InputError(f"a sequence has {longest} tokens but max_len={max_len}; "
                         "pass truncate=True to cut long sequences")
    out = np.full((len(seqs), width), pad_id, dtype=dtype)  # (B, T)
    for row, seq in enumerate(seqs):
        seq = seq[:width]
        out[row, :len(seq)] = seq
    return out


def bucket_length(n: int, lengths: Sequence[int]) -> int:
    """The smallest of ``lengths`` that holds ``n`` tokens: the padded length of a batch whose
    longest sequence has ``n``. With a fixed, short list of lengths every batch has one of a few
    shapes, so a compiled step (GRAPH_MODE; on Ascend each new shape is a new compilation) is
    compiled a few times, not once per batch::

        >>> bucket_length(13, (16, 32, 64)), bucket_length(16, (16, 32, 64))
        (16, 16)
    """
    for length in sorted(lengths):
        if n <= length:
            return int(length)
    raise InputError(f"a sequence of {n} tokens is longer than the largest padded length "
                     f"{max(lengths)}: add a larger length or cut the sequences shorter.")


class BucketBatchSampler:
    """Yields lists of example indices, grouping examples of similar length to reduce padding.

    Each epoch: shuffle all indices (seeded by ``(seed, epoch)``), cut them into *buckets* of
    ``bucket_size`` examples, sort each bucket by length, cut it into batches, then shuffle the
    order of the batches. Batches are made of similar lengths, yet which examples meet in a batch
    still changes from epoch to epoch.

    Args:
        lengths: length of each example.
        batch_size: examples per batch.
        shuffle: if False, buckets are taken in dataset order and batches are not shuffled.
        seed: same seed and epoch -> same batches.
        drop_last: drop the examples that would make the last batch smaller than ``batch_size``
            (a different random few each epoch).
        bucket_size: examples sorted together (rounded up to a multiple of ``batch_size``;
            default ``100 * batch_size``). ``bucket_size=batch_size`` turns bucketing off.

    Call :meth:`set_epoch` before each epoch (or pass ``epoch`` to :meth:`batches`) to get a new
    order::

        >>> sampler = BucketBatchSampler([5, 1, 4, 2, 3, 1], batch_size=2, seed=0)
        >>> sorted(len(b) for b in sampler)
        [2, 2, 2]
    """

    def __init__(self, lengths: Sequence[int], batch_size: int, shuffle: bool = True,
                 seed: int = 0, drop_last: bool = False,
                 bucket_size: Optional[int] = None) -> None:
        if batch_size < 1:
            raise InputError(f"batch_size must be >= 1, got {batch_size}")
        self.lengths = np.asarray(lengths, dtype=np.int64)  # (N,)
        self.batch_size = batch_size
        self.shuffle = shuffle
        self.seed = seed
        self.drop_last = drop_last
        size = 100 * batch_size if bucket_size is None else max(bucket_size, 1)
        self.bucket_size = math.ceil(size / batch_size) * batch_size
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Choose the epoch whose order the next iteration uses."""
        self.epoch = epoch

    def __len__(self) -> int:
        n = len(self.lengths)
        return n // self.batch_size if self.drop_last else math.ceil(n / self.batch_size)

    def __iter__(self) -> Iterator[List[int]]:
        return iter(self.batches())

    def batches(self, epoch: Optional[int] = None) -> List[List[int]]:
        """All batches of one epoch (``epoch`` defaults to the one set by :meth:`set_epoch`)."""
        epoch = self.epoch if epoch is None else epoch
        rng = np.random.default_rng([self.seed, epoch])  # one independent stream per (seed, epoch)
        n, bs = len(self.lengths), self.batch_size
        order = rng.permutation(n) if self.shuffle else np.arange(n)  # (N,)
        if self.drop_last:
            order = order[: n - n % bs]
        batches: List[List[int]] = []
        for start in range(0, len(order), self.bucket_size):
            bucket = order[start:start + self.bucket_size]
            bucket = bucket[np.argsort(self.lengths[bucket], kind="stable")]  # shortest first
            batches.extend(bucket[i:i + bs].tolist() for i in range(0, len(bucket), bs))
        if self.shuffle:
            batches = [batches[i] for i in rng.permutation(len(batches))]
        return batches


def _default_length(example: Any) -> int:
    """``len(example)``, or the longest part of a pair such as ``(src_ids, tgt_ids)``."""
    if isinstance(example, tuple) and example and hasattr(example[0], "__len__"):
        return max(len(part) for part in example)
    return len(example)


def batch_iterator(dataset: Sequence[Any], batch_size: int, *, shuffle: bool = True,
                   seed: int = 0, epoch: int = 0, drop_last: bool = False,
                   bucket_size: Optional[int] = None,
                   length_fn: Callable[[Any], int] = _default_length,
                   collate: Optional[Callable[[List[Any]], Any]] = None) -> Iterator[Any]:
    """Iterate over one epoch of ``dataset`` in length-bucketed batches.

    Each batch is the list of examples, or ``collate(list)`` if given (e.g. a
    :class:`Seq2SeqBatcher`, or ``lambda b: pad_sequences(b, pad_id)``).

        >>> data = [[1], [2, 2, 2], [3, 3], [4]]
        >>> [b.tolist() for b in batch_iterator(data, 2, shuffle=False,
        ...                                     collate=lambda b: pad_sequences(b, 0))]
        [[[1], [4]], [[3, 3, 0], [2, 2, 2]]]
    """
    sampler = BucketBatchSampler([length_fn(x) for x in dataset], batch_size, shuffle=shuffle,
                                 seed=seed, drop_last=drop_last, bucket_size=bucket_size)
    for indices in sampler.batches(epoch):
        examples = [dataset[i] for i in indices]
        yield collate(examples) if collate is not None else examples


class Seq2SeqBatcher:
    """Collates ``(src_ids, tgt_ids)`` pairs into padded arrays for teacher forcing.

    The decoder reads ``tgt_in`` = ``<bos>`` + target and learns to predict ``tgt_out`` = target +
    ``<eos>``: the same tokens shifted by one position.

        >>> batch = Seq2SeqBatcher(pad_id=0, bos_id=1, eos_id=2)([([5, 6], [7, 8, 9]), ([5], [7])])
        >>> batch["src"].tolist(), batch["tgt_in"].tolist(), batch["tgt_out"].tolist()
        ([[5, 6], [5, 0]], [[1, 7, 8, 9], [1, 7, 0, 0]], [[7, 8, 9, 2], [7, 2, 0, 0]])

    ``max_src_len``/``max_tgt_len`` cut over-long sequences (the target limit counts the added
    ``<bos>``/``<eos>``).
    """

    def __init__(self, pad_id: int, bos_id: int, eos_id: int, max_src_len: Optional[int] = None,
                 max_tgt_len: Optional[int] = None, dtype: Any = np.int32) -> None:
        self.pad_id, self.bos_id, self.eos_id = pad_id, bos_id, eos_id
        self.max_src_len, self.max_tgt_len = max_src_len, max_tgt_len
        self.dtype = dtype

    def __call__(self, pairs: Sequence[Tuple[Sequence[int], Sequence[int]]]
                 ) -> Dict[str, np.ndarray]:
        srcs = [list(s)[: self.max_src_len] for s, _ in pairs]
        cut = None if self.max_tgt_len is None else self.max_tgt_len - 1
        tgts = [list(t)[:cut] for _, t in pairs]
        tgt_in = [[self.bos_id] + t for t in tgts]
        tgt_out = [t + [self.eos_id] for t in tgts]
        return {
            "src": pad_sequences(srcs, self.pad_id, dtype=self.dtype),         # (B, S)
            "tgt_in": pad_sequences(tgt_in, self.pad_id, dtype=self.dtype),    # (B, T)
            "tgt_out": pad_sequences(tgt_out, self.pad_id, dtype=self.dtype),  # (B, T)
        }

    def batches(self, pairs: Sequence[Tuple[Sequence[int], Sequence[int]]], batch_size: int,
                **kwargs: Any) -> Iterator[Dict[str, np.ndarray]]:
        """One epoch of collated batches; ``kwargs`` go to :func:`batch_iterator`."""
        return batch_iterator(pairs, batch_size, collate=self, **kwargs)


def _check_lm_data(data: np.ndarray, block_size: int) -> np.ndarray:
    data = np.asarray(data)
    if data.ndim != 1:
        raise InputError(f"expected a 1-D array of token ids, got shape {data.shape}")
    if len(data) <= block_size:
        raise InputError(f"need more than block_size={block_size} tokens, got {len(data)}")
    return data


def random_lm_batch(data: np.ndarray, block_size: int, batch_size: int,
                    rng: np.random.Generator, dtype: Any = np.int32
                    ) -> Tuple[np.ndarray, np.ndarray]:
    """A batch of random windows from a token stream, as in nanoGPT's ``get_batch``.

    ``data`` is ``(N,)`` (a ``np.memmap`` is fine: only the windows are read). Returns ``x`` and
    ``y``, both ``(B, T)``, where ``y`` is ``x`` shifted left by one: ``y[b, t]`` is the token
    after ``x[b, t]``.

        >>> x, y = random_lm_batch(np.arange(100), block_size=4, batch_size=2,
        ...                        rng=np.random.default_rng(0))
        >>> bool((y[:, :-1] == x[:, 1:]).all())
        True
    """
    data = _check_lm_data(data, block_size)
    starts = rng.integers(0, len(data) - block_size, size=batch_size)  # (B,)
    idx = starts[:, None] + np.arange(block_size)[None, :]             # (B, T)
    return data[idx].astype(dtype), data[idx + 1].astype(dtype)


def lm_batches(data: np.ndarray, block_size: int, batch_size: int,
               dtype: Any = np.int32) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """All non-overlapping windows of ``data``, in order: for a full, deterministic validation.

    Window ``k`` covers tokens ``k*T .. k*T+T-1`` (inputs) and the next token of each (targets);
    the last batch may be smaller than ``batch_size``; the final < ``T`` tokens are left out.

        >>> [x.tolist() for x, y in lm_batches(np.arange(10), block_size=3, batch_size=2)]
        [[[0, 1, 2], [3, 4, 5]], [[6, 7, 8]]]
    """
    data = _check_lm_data(data, block_size)
    n_windows = (len(data) - 1) // block_size
    offsets = np.arange(block_size)[None, :]                           # (1, T)
    for first in range(0, n_windows, batch_size):
        starts = np.arange(first, min(first + batch_size, n_windows)) * block_size  # (B,)
        idx = starts[:, None] + offsets                                 # (B, T)
        yield data[idx].astype(dtype), data[idx + 1].astype(dtype)


# --------------------------------------------------------------------------- batch sources
# what the Trainer draws from: next() -> a tuple of arrays, and a state that resumes exactly
class RandomLMBatches:
    """nanoGPT-style random windows of a token stream: each call returns ``(x, y)`` of shape
    ``(B, T)`` with ``y`` the next tokens. The generator's state is checkpointed, so a resumed
    run sees exactly the batches it would have seen."""

    def __init__(self, data: np.ndarray, block_size: int, batch_size: int, seed: int = 0):
        self.data, self.block_size, self.batch_size = data, block_size, batch_size
        self.rng = np.random.default_rng(seed)

    def next(self) -> Tuple[np.ndarray, ...]:
        return random_lm_batch(self.data, self.block_size, self.batch_size, self.rng)

    def state_dict(self) -> dict:
        return {"rng": self.rng.bit_generator.state}

    def load_state_dict(self, state: dict) -> None:
        self.rng.bit_generator.state = state["rng"]


class EpochBatches:
    """Walks a list of pre-built batches epoch after epoch (re-built per epoch by
    ``make_epoch(epoch)``, e.g. a seeded bucketed shuffle); the position is checkpointed."""

    def __init__(self, make_epoch: Callable[[int], List[Tuple[np.ndarray, ...]]]):
        self.make_epoch = make_epoch
        self.epoch, self.pos = 0, 0
        self._batches = None

    def next(self) -> Tuple[np.ndarray, ...]:
        if self._batches is None:
            self._batches = self.make_epoch(self.epoch)
        if self.pos >= len(self._batches):
            self.epoch, self.pos = self.epoch + 1, 0
            self._batches = self.make_epoch(self.epoch)
        batch = self._batches[self.pos]
        self.pos += 1
        return batch

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "pos": self.pos}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.pos, self._batches = int(state["epoch"]), int(state["pos"]), None


def full_lm_batches(ids: np.ndarray, block: int, batch: int):
    """Every validation window once, the last batch padded (targets = -100, ignored) so that a
    compiled evaluation graph sees one shape only."""
    for x, y in lm_batches(ids, block, batch):
        if len(x) < batch:
            pad = batch - len(x)
            x = np.concatenate([x, np.zeros((pad, block), x.dtype)])
            y = np.concatenate([y, np.full((pad, block), -100, y.dtype)])
        yield x, y
