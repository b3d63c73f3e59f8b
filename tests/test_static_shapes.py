"""Static shapes for compiled training (Ascend): translation batches take a fixed, short list of
padded lengths, so the training and evaluation graphs are compiled once per length."""
from __future__ import annotations

import numpy as np
import pytest

from mindtf.data.batching import bucket_length
from mindtf.errors import ConfigError, InputError
from mindtf.recipes.translation_setup import TranslationBatches, TranslationData, pad_batch

BATCH = 8


def _pairs(n=400, seed=0, longest=60):
    """Sentence pairs of every length from 1 to ``longest`` tokens (ids 4..99)."""
    rng = np.random.default_rng(seed)
    out = []
    for _ in range(n):
        s, t = rng.integers(1, longest + 1, 2)
        out.append((rng.integers(4, 100, s).tolist(), rng.integers(4, 100, min(t, longest - 1))
                    .tolist()))
    return out


def _shapes(data: TranslationData, accum: int = 1) -> tuple:
    pairs = _pairs()
    batches = TranslationBatches(pairs, pairs[:50], data, batch_size=BATCH, grad_accum=accum,
                                 seed=0, pad_id=1, bos_id=2, eos_id=3)
    shapes = set()
    for epoch in range(3):
        for src, tgt_in, tgt_out in batches.epoch(epoch):
            assert src.shape == tgt_in.shape == tgt_out.shape
            shapes.add(src.shape)
    val = {b[0].shape for b in batches.val()}
    return shapes, val


def test_bucket_length_picks_the_smallest_that_fits():
    assert [bucket_length(n, (16, 32, 64)) for n in (1, 16, 17, 33, 64)] == [16, 16, 32, 64, 64]
    with pytest.raises(InputError, match="longer than the largest padded length 64"):
        bucket_length(65, (16, 32, 64))


def test_buckets_give_a_fixed_set_of_shapes():
    data = TranslationData(max_len=64, length_buckets="16,32,64")
    assert data.buckets == (16, 32, 64) == data.padded_lengths and data.padded_max_len == 64
    train, val = _shapes(data)
    assert train == {(BATCH, 16), (BATCH, 32), (BATCH, 64)}  # three graphs, whatever the data
    assert val <= {(data.eval_batch_size, n) for n in (16, 32, 64)}
    with_accum, _ = _shapes(data, accum=2)  # a group takes its longest bucket: still a bucket
    assert with_accum <= train


def test_without_buckets_every_multiple_of_pad_multiple_can_occur():
    data = TranslationData(max_len=64, pad_multiple=8)
    assert data.buckets is None and data.padded_lengths == (8, 16, 24, 32, 40, 48, 56, 64)
    train, _ = _shapes(data)
    assert {n for _, n in train} <= set(data.padded_lengths) and len(train) > 3


def test_one_bucket_is_one_shape():
    data = TranslationData(max_len=64, length_buckets="64")
    train, val = _shapes(data)
    assert train == {(BATCH, 64)} and val == {(data.eval_batch_size, 64)}


def test_pad_batch_with_lengths():
    batch = {"src": np.array([[5] * 17], np.int32), "tgt_in": np.array([[2, 8]], np.int32),
             "tgt_out": np.array([[8, 3]], np.int32)}
    src, tgt_in, _ = pad_batch(batch, pad_id=1, multiple=8, lengths=(16, 32, 64))
    assert src.shape == tgt_in.shape == (1, 32)


@pytest.mark.parametrize("text", ["32,16,64", "16,16,64", "16,32", "0,64", "16;64", "a"])
def test_bad_length_buckets_are_config_errors(text):
    with pytest.raises(ConfigError, match="length_buckets"):
        TranslationData(max_len=64, length_buckets=text)
