"""Batching (mindtf.data.batching): padding, bucketing, seq2seq and language-model batches."""
from __future__ import annotations

import numpy as np
import pytest

from mindtf.data.batching import (BucketBatchSampler, Seq2SeqBatcher, batch_iterator, lm_batches,
                             pad_sequences, random_lm_batch)
from mindtf.errors import InputError


def _random_lengths(n: int = 1000, seed: int = 0) -> list:
    return np.random.default_rng(seed).integers(1, 60, size=n).tolist()


# -------------------------------------------------------------------------------------- padding
def test_pad_sequences_shape_values_dtype():
    out = pad_sequences([[1, 2, 3], [4], []], pad_id=9)
    assert out.shape == (3, 3) and out.dtype == np.int32
    assert out.tolist() == [[1, 2, 3], [4, 9, 9], [9, 9, 9]]
    wide = pad_sequences([[1], [2, 3]], pad_id=0, max_len=5, dtype=np.int64)
    assert wide.shape == (2, 5) and wide.dtype == np.int64
    assert pad_sequences([], pad_id=0).shape == (0, 0)
    assert pad_sequences([np.array([7, 8])], pad_id=0).tolist() == [[7, 8]]


def test_pad_sequences_too_long():
    with pytest.raises(InputError):
        pad_sequences([[1, 2, 3]], pad_id=0, max_len=2)
    assert pad_sequences([[1, 2, 3]], pad_id=0, max_len=2, truncate=True).tolist() == [[1, 2]]


# ------------------------------------------------------------------------------------ bucketing
def _padded_tokens(batches, lengths) -> int:
    """Tokens in the padded arrays: batch size x longest example, summed."""
    return sum(len(b) * max(lengths[i] for i in b) for b in batches)


def test_every_example_exactly_once_per_epoch():
    lengths = _random_lengths(1003)
    sampler = BucketBatchSampler(lengths, batch_size=32, seed=1)
    for epoch in range(3):
        sampler.set_epoch(epoch)
        batches = list(sampler)
        flat = [i for b in batches for i in b]
        assert sorted(flat) == list(range(1003))
        assert len(batches) == len(sampler) == 32  # ceil(1003 / 32)
        assert sum(len(b) < 32 for b in batches) == 1  # only one short batch


def test_bucketing_reduces_padding():
    lengths = _random_lengths(2000)
    bucketed = BucketBatchSampler(lengths, batch_size=32, seed=0).batches()
    plain = BucketBatchSampler(lengths, batch_size=32, seed=0, bucket_size=32).batches()
    real = sum(lengths)
    assert _padded_tokens(bucketed, lengths) < 0.7 * _padded_tokens(plain, lengths)
    assert _padded_tokens(bucketed, lengths) < 1.15 * real  # almost no padding left
    # batches hold similar lengths
    spread = np.mean([max(lengths[i] for i in b) - min(lengths[i] for i in b) for b in bucketed])
    assert spread < 5


def test_same_seed_same_order_and_epochs_differ():
    lengths = _random_lengths(500)
    a = BucketBatchSampler(lengths, batch_size=16, seed=7)
    b = BucketBatchSampler(lengths, batch_size=16, seed=7)
    assert a.batches() == b.batches()
    assert a.batches(epoch=3) == b.batches(epoch=3)
    assert a.batches(epoch=0) != a.batches(epoch=1)
    a.set_epoch(1)
    assert list(a) == b.batches(epoch=1)
    assert BucketBatchSampler(lengths, 16, seed=8).batches() != b.batches()


def test_no_shuffle_is_deterministic_and_sorted_within_buckets():
    lengths = [5, 1, 4, 2, 3, 6]
    sampler = BucketBatchSampler(lengths, batch_size=2, shuffle=False)
    assert sampler.batches(0) == sampler.batches(1) == [[1, 3], [4, 2], [0, 5]]


def test_drop_last():
    lengths = _random_lengths(103)
    sampler = BucketBatchSampler(lengths, batch_size=10, seed=0, drop_last=True)
    batches = sampler.batches()
    assert len(batches) == len(sampler) == 10
    assert all(len(b) == 10 for b in batches)
    flat = [i for b in batches for i in b]
    assert len(set(flat)) == 100
    # the 3 dropped examples change with the epoch, so none is left out for good
    dropped = [set(range(103)) - {i for b in sampler.batches(e) for i in b} for e in range(5)]
    assert len(set().union(*dropped)) > 3


def test_batch_size_must_be_positive():
    with pytest.raises(InputError):
        BucketBatchSampler([1, 2], batch_size=0)


def test_batch_iterator_with_collate():
    data = [[1] * n for n in _random_lengths(100)]
    batches = list(batch_iterator(data, 8, seed=3, collate=lambda b: pad_sequences(b, 0)))
    assert len(batches) == 13
    assert sum(b.shape[0] for b in batches) == 100
    assert sum(int(b.sum()) for b in batches) == sum(len(x) for x in data)  # nothing lost
    again = list(batch_iterator(data, 8, seed=3, collate=lambda b: pad_sequences(b, 0)))
    assert all((x == y).all() for x, y in zip(batches, again))


# ------------------------------------------------------------------------------------- seq2seq
PAD, BOS, EOS = 1, 2, 3


def test_seq2seq_shift_and_padding():
    batcher = Seq2SeqBatcher(pad_id=PAD, bos_id=BOS, eos_id=EOS)
    batch = batcher([([10, 11, 12], [20, 21]), ([13], [22, 23, 24, 25])])
    assert set(batch) == {"src", "tgt_in", "tgt_out"}
    assert batch["src"].tolist() == [[10, 11, 12], [13, PAD, PAD]]
    assert batch["tgt_in"].tolist() == [[BOS, 20, 21, PAD, PAD], [BOS, 22, 23, 24, 25]]
    assert batch["tgt_out"].tolist() == [[20, 21, EOS, PAD, PAD], [22, 23, 24, 25, EOS]]
    assert batch["tgt_in"].shape == batch["tgt_out"].shape == (2, 5)
    # the decoder input is the target shifted right by one
    tgt_in, tgt_out = batch["tgt_in"][:, 1:], batch["tgt_out"][:, :-1]  # (B, T-1) each
    real = tgt_in != PAD
    assert (tgt_in[real] == tgt_out[real]).all()


def test_seq2seq_max_lengths():
    batcher = Seq2SeqBatcher(PAD, BOS, EOS, max_src_len=2, max_tgt_len=3)
    batch = batcher([([10, 11, 12], [20, 21, 22, 23])])
    assert batch["src"].tolist() == [[10, 11]]
    assert batch["tgt_in"].tolist() == [[BOS, 20, 21]]
    assert batch["tgt_out"].tolist() == [[20, 21, EOS]]


def test_seq2seq_batches_cover_the_dataset():
    rng = np.random.default_rng(0)
    pairs = [(list(range(4, 4 + rng.integers(1, 20))), [i + 4] * int(rng.integers(1, 20)))
             for i in range(200)]
    batcher = Seq2SeqBatcher(PAD, BOS, EOS)
    seen = []
    for batch in batcher.batches(pairs, batch_size=16, seed=0, epoch=2):
        assert batch["src"].shape[0] == batch["tgt_in"].shape[0] <= 16
        seen.extend(int(row[1]) - 4 for row in batch["tgt_in"])  # first target token = pair id + 4
    assert sorted(seen) == list(range(200))


# ---------------------------------------------------------------------------------- LM batches
def test_random_lm_batch_shift_and_determinism():
    data = np.arange(1000, dtype=np.uint16)
    x, y = random_lm_batch(data, block_size=8, batch_size=4, rng=np.random.default_rng(0))
    assert x.shape == y.shape == (4, 8) and x.dtype == np.int32
    assert (y == x + 1).all()  # targets are the next tokens
    assert (np.diff(x, axis=1) == 1).all()  # each row is a contiguous window
    x2, _ = random_lm_batch(data, 8, 4, np.random.default_rng(0))
    assert (x == x2).all()
    # windows never run past the end
    x3, y3 = random_lm_batch(np.arange(9), 8, 64, np.random.default_rng(1))
    assert (x3 == np.arange(8)).all() and (y3 == np.arange(1, 9)).all()


def test_lm_data_errors():
    with pytest.raises(InputError):
        random_lm_batch(np.arange(8), 8, 2, np.random.default_rng(0))
    with pytest.raises(InputError):
        next(lm_batches(np.zeros((4, 4)), 2, 2))


def test_lm_batches_cover_all_blocks_in_order():
    data = np.arange(103)
    batches = list(lm_batches(data, block_size=10, batch_size=4))
    assert [x.shape for x, _ in batches] == [(4, 10), (4, 10), (2, 10)]
    xs = np.concatenate([x for x, _ in batches])  # (10, 10): blocks 0..9, non-overlapping
    ys = np.concatenate([y for _, y in batches])
    assert (xs.ravel() == np.arange(100)).all()
    assert (ys.ravel() == np.arange(1, 101)).all()
    # exactly divisible: the last target still exists
    assert sum(x.shape[0] for x, _ in lm_batches(np.arange(101), 10, 4)) == 10
    assert sum(x.shape[0] for x, _ in lm_batches(np.arange(100), 10, 4)) == 9
