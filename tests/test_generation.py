"""Logit processing and sampling of GPT generation."""
import numpy as np
import pytest

import mindtf
from mindtf.errors import InputError
from mindtf.decoding.gpt_sampling import process_logits, sample_next


def test_top_k_top_p_temperature_and_vocab_limit():
    logits = np.log(np.array([[0.5, 0.2, 0.15, 0.1, 0.05]]))
    seqs = np.zeros((1, 1), np.int64)
    x = process_logits(logits, seqs, top_k=2)
    assert np.isfinite(x[0]).tolist() == [True, True, False, False, False]
    x = process_logits(logits, seqs, top_p=0.8)  # 0.5 + 0.2 < 0.8 <= 0.5 + 0.2 + 0.15
    assert np.isfinite(x[0]).tolist() == [True, True, True, False, False]
    x = process_logits(logits, seqs, vocab_limit=3)
    assert np.isfinite(x[0]).tolist() == [True, True, True, False, False]
    hot = process_logits(logits, seqs, temperature=2.0)
    np.testing.assert_allclose(hot, logits / 2.0)


def test_repetition_penalty_discourages_seen_tokens():
    logits = np.array([[2.0, -1.0, 1.0]])
    x = process_logits(logits, np.array([[0, 1]]), repetition_penalty=2.0)
    np.testing.assert_allclose(x, [[1.0, -2.0, 1.0]])


def test_sampling_is_seeded_and_respects_the_vocabulary(ms_cpu):
    model = mindtf.GPT(mindtf.GPTConfig(vocab_size=40, block_size=32, n_layer=1, n_head=2,
                                        n_embd=16))
    prompt = np.array([[1, 2, 3]], np.int32)
    a = mindtf.generate(model, prompt, 20, temperature=1.5, seed=7, vocab_limit=10)
    b = mindtf.generate(model, prompt, 20, temperature=1.5, seed=7, vocab_limit=10)
    np.testing.assert_array_equal(a, b)
    assert a[0, 3:].max() < 10  # never an id outside the real vocabulary
    greedy = sample_next(np.array([[0.1, 3.0, 0.2]]), True, np.random.default_rng(0))
    assert greedy.tolist() == [1]


def test_stop_tokens_end_rows_independently(ms_cpu):
    model = mindtf.GPT(mindtf.GPTConfig(vocab_size=12, block_size=32, n_layer=1, n_head=2,
                                        n_embd=16))
    prompt = np.array([[1, 2], [3, 4]], np.int32)
    free = mindtf.generate(model, prompt, 8, temperature=0.0)
    stop = int(free[0, 3])  # the second token row 0 generates greedily
    out = mindtf.generate(model, prompt, 8, temperature=0.0, stop_tokens=[stop], pad_id=0)
    row = out[0, 2:].tolist()
    first = row.index(stop)
    assert first <= 1 and all(t == 0 for t in row[first + 1:])


def test_bad_generation_arguments(ms_cpu):
    model = mindtf.GPT(mindtf.GPTConfig(vocab_size=12, block_size=8, n_layer=1, n_head=2,
                                        n_embd=8))
    with pytest.raises(InputError, match="temperature"):
        mindtf.generate(model, np.array([[1]]), 2, temperature=-1)
    with pytest.raises(InputError, match="non-empty"):
        mindtf.generate(model, np.zeros((1, 0), np.int32), 2)
    with pytest.raises(InputError, match="outside the vocabulary"):
        mindtf.generate(model, np.array([[99]]), 2)
