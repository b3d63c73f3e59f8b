"""Count-based n-gram LMs: probabilities computed by hand, normalisation over the vocabulary for
seen and unseen contexts, backoff, seeded sampling, files, and Tiny Shakespeare in seconds."""
import math
import subprocess
import sys
import time
from collections import Counter

import numpy as np
import pytest

from mindtf.errors import ConfigError, InputError
from mindtf.models.ngram import NgramConfig, NgramLM

# a b a c a b  (a=0, b=1, c=2)
TINY = [0, 1, 0, 2, 0, 1]


def _fit(order, smoothing="kneser-ney", vocab=3, ids=TINY, **kw):
    return NgramLM(NgramConfig(vocab, order, smoothing, **kw)).fit(ids)


def test_counts_by_hand():
    m = _fit(3)
    assert [m.count([t]) for t in range(3)] == [3, 2, 1]
    assert m.count([0, 1]) == 2 and m.count([1, 0]) == 1 and m.count([2, 2]) == 0
    assert m.count([1, 0, 2]) == 1 and m.count([0, 1, 0]) == 1 and m.count([2, 1, 0]) == 0
    assert m.num_ngrams == [3, 4, 4]  # a b c | ab ba ac ca | aba bac aca cab


def test_add_k_by_hand():
    uni = _fit(1, "add-k")  # (c(w) + 1) / (6 + 3)
    np.testing.assert_allclose(uni.distribution(), [4 / 9, 3 / 9, 2 / 9])
    bi = _fit(2, "add-k")  # context a: followed by b, c, b -> (c + 1) / (3 + 3)
    np.testing.assert_allclose(bi.distribution([0]), [1 / 6, 3 / 6, 2 / 6])
    np.testing.assert_allclose(bi.distribution([1]), [2 / 4, 1 / 4, 1 / 4])  # b: once, by a
    half = _fit(2, "add-k", k=0.5)
    np.testing.assert_allclose(half.distribution([0]), [0.5 / 4.5, 2.5 / 4.5, 1.5 / 4.5])


def test_kneser_ney_by_hand():
    m = _fit(2)
    # bigram counts ab:2 ba:1 ac:1 ca:1 -> n1=3, n2=1 -> D2 = 3 / (3 + 2)
    # continuation counts N1+(. w): a:2 (after b, c), b:1, c:1 -> n1=2, n2=1 -> D1 = 2 / 4
    assert m.discounts == pytest.approx([0.5, 0.6])
    p1 = np.array([(1.5 + 0.5) / 4, (0.5 + 0.5) / 4, (0.5 + 0.5) / 4])  # 0.5 * 3 types / 3
    np.testing.assert_allclose(m.distribution(), p1)  # the start of a text: unigram level
    # context a: c(a.) = 3, two distinct followers: (max(c - D, 0) + D * 2 * p1) / 3
    expected = (np.maximum(np.array([0, 2, 1]) - 0.6, 0) + 0.6 * 2 * p1) / 3
    np.testing.assert_allclose(m.distribution([0]), expected)
    assert expected[1] == pytest.approx(1.7 / 3)
    # cross-entropy of "a b" is -log P(b | a)
    assert m.cross_entropy([0, 1]) == pytest.approx(-math.log(1.7 / 3))


def _kneser_ney_reference(ids, vocab, n):
    """Interpolated Kneser-Ney written from its definition with dictionaries."""
    counts = {k: Counter(tuple(ids[i:i + k]) for i in range(len(ids) - k + 1))
              for k in range(1, n + 1)}
    value = {n: dict(counts[n])}
    for k in range(1, n):
        value[k] = dict(Counter(g[1:] for g in counts[k + 1]))
    total, types, disc = {}, {}, {}
    for k in range(1, n + 1):
        total[k], types[k] = Counter(), Counter()
        for g, v in value[k].items():
            total[k][g[:-1]] += v
            types[k][g[:-1]] += 1
        vs = list(value[k].values())
        n1, n2 = vs.count(1), vs.count(2)
        disc[k] = min(max(n1 / (n1 + 2 * n2), 0.01), 1.0) if n1 + n2 else 0.5

    def prob(w, h, k):
        if k == 0:
            return 1.0 / vocab
        h = h[len(h) - k + 1:] if k > 1 else ()
        lower = prob(w, h[1:], k - 1)
        if total[k].get(h, 0) == 0:
            return lower
        return (max(value[k].get(h + (w,), 0) - disc[k], 0)
                + disc[k] * types[k][h] * lower) / total[k][h]

    return prob


def test_kneser_ney_equals_the_definition():
    rng = np.random.default_rng(0)
    train = rng.choice(6, size=400, p=[0.4, 0.2, 0.15, 0.1, 0.1, 0.05]).tolist()
    test = rng.choice(6, size=60).tolist()
    ref = _kneser_ney_reference(train, 6, 4)
    m = _fit(4, vocab=6, ids=train)
    expected = [math.log(ref(test[i], tuple(test[max(0, i - 3):i]), min(4, i + 1)))
                for i in range(1, len(test))]
    np.testing.assert_allclose(m.log_probs(test), expected, rtol=1e-12)


@pytest.mark.parametrize("smoothing", ["kneser-ney", "add-k"])
def test_every_distribution_sums_to_one(smoothing):
    rng = np.random.default_rng(1)
    v = 5
    m = _fit(4, smoothing, vocab=v, ids=rng.choice(4, size=300).tolist())  # token 4 never seen
    # every context of length 3 (seen or not), plus contexts cut by the start of a text
    grid = np.stack(np.meshgrid(*[np.arange(v)] * 3, indexing="ij"), -1).reshape(-1, 3)
    cut = np.array([[-1, -1, -1], [-1, -1, 2], [-1, 4, 4]])
    contexts = np.concatenate([grid, cut])                                 # (C, 3)
    probs = m.probs(np.repeat(contexts, v, axis=0), np.tile(np.arange(v), len(contexts)))
    probs = probs.reshape(len(contexts), v)
    assert (probs > 0).all()
    np.testing.assert_allclose(probs.sum(1), 1.0, rtol=1e-12)


def test_unseen_contexts_back_off_and_stay_finite():
    m = _fit(3, vocab=4)  # id 3 never occurs in training
    # (c, c) was never a context: the trigram backs off to its suffix (c) alone
    np.testing.assert_allclose(m.distribution([2, 2]), m.distribution([2]))
    assert not np.allclose(m.distribution([2]), 0.25)
    for smoothing in ("kneser-ney", "add-k"):
        lm = _fit(3, smoothing, vocab=4)
        ce = lm.cross_entropy([3, 3, 2, 2, 1, 3, 0])  # unseen tokens, contexts and trigrams
        assert math.isfinite(ce) and ce > 0
        assert lm.perplexity([3, 3, 2, 2]) == pytest.approx(math.exp(lm.cross_entropy([3, 3, 2,
                                                                                      2])))


def test_sampling_is_seeded():
    rng = np.random.default_rng(2)
    m = _fit(3, vocab=6, ids=rng.choice(6, size=500).tolist())
    a = m.sample(50, context=[1, 2], seed=7)
    assert len(a) == 52 and a[:2].tolist() == [1, 2] and a.min() >= 0 and a.max() < 6
    assert a.tolist() == m.sample(50, context=[1, 2], seed=7).tolist()
    assert a.tolist() != m.sample(50, context=[1, 2], seed=8).tolist()
    cold = m.sample(50, seed=7, temperature=0.05)  # nearly greedy: follows the likeliest path
    assert len(set(cold.tolist())) <= 6


def test_save_and_load(tmp_path):
    m = _fit(3, "add-k", vocab=4, k=0.3)
    path = m.save_pretrained(tmp_path / "ngram")
    again = NgramLM.from_pretrained(path)
    assert again.config == m.config
    text = [3, 0, 1, 0, 2, 2, 1]
    np.testing.assert_array_equal(again.log_probs(text), m.log_probs(text))


def test_clear_errors():
    with pytest.raises(ConfigError, match="smoothing"):
        NgramConfig(5, 3, "laplace")
    with pytest.raises(ConfigError, match="k=0"):
        NgramConfig(5, 3, "add-k", k=0)
    with pytest.raises(InputError, match="outside the vocabulary"):
        NgramLM(NgramConfig(3, 2)).fit([0, 1, 5])
    with pytest.raises(InputError, match="at least 2 tokens"):
        _fit(2).cross_entropy([1])


def test_no_mindspore_import():
    code = "import sys, mindtf.models.ngram; sys.exit('mindspore' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], timeout=120).returncode == 0


def test_tiny_shakespeare_in_seconds(shared_data, tmp_path):
    from mindtf.recipes.char_lm_setup import CharLMData, load_char_text
    from mindtf.tokenizers import CharTokenizer

    train, val = load_char_text(CharLMData(), {"mirror": str(shared_data), "offline": True,
                                               "data_dir": str(tmp_path)})
    tok = CharTokenizer.from_text(train + val)
    train_ids, val_ids = np.array(tok.encode(train)), np.array(tok.encode(val))
    t0 = time.perf_counter()
    five = NgramLM(NgramConfig(tok.vocab_size, 5)).fit(train_ids)
    assert time.perf_counter() - t0 < 20  # ~1.5 s here; counting is vectorised
    bigram = NgramLM(NgramConfig(tok.vocab_size, 2)).fit(train_ids)
    assert 2.40 <= bigram.cross_entropy(val_ids) <= 2.55
    assert five.cross_entropy(val_ids) < bigram.cross_entropy(val_ids)
