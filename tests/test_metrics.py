"""BLEU (against sacreBLEU directly), perplexity, accuracy and the token-weighted loss meter."""
import math
import warnings

import numpy as np
import pytest

from mindtf.errors import InputError
from mindtf.metrics import BleuResult, TokenLossMeter, accuracy, corpus_bleu, perplexity

sacrebleu = pytest.importorskip("sacrebleu")

HYPS = ["The cat sat on the mat.", "A dog runs in the park!", "Two men, one ball.",
        "she reads a book", "It's raining (again)."]
REFS = ["The cat sat on a mat.", "A dog is running in the park!", "Two men play with one ball.",
        "She is reading a book.", "It is raining again."]
REFS2 = ["There is a cat on the mat.", "The dog runs through the park.", "Two men and a ball.",
         "she reads a book", "Rain again."]


def _quiet(fn, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fn(*args, **kwargs)


def test_bleu_matches_sacrebleu():
    res = _quiet(corpus_bleu, HYPS, REFS)
    ref = sacrebleu.corpus_bleu(HYPS, [REFS])
    assert isinstance(res, BleuResult)
    assert res.score == pytest.approx(ref.score, abs=1e-9)
    assert res.precisions == pytest.approx(ref.precisions)
    assert res.bp == pytest.approx(ref.bp)
    assert (res.sys_len, res.ref_len) == (ref.sys_len, ref.ref_len)
    assert "tok:13a" in res.signature and "nrefs:1" in res.signature
    text = str(res)
    assert text.startswith(f"BLEU = {ref.score:.2f}") and res.signature in text
    # several references per hypothesis, as per-sentence lists (sacreBLEU takes streams)
    multi = _quiet(corpus_bleu, HYPS, [[a, b] for a, b in zip(REFS, REFS2)])
    assert multi.score == pytest.approx(sacrebleu.corpus_bleu(HYPS, [REFS, REFS2]).score)
    assert "nrefs:2" in multi.signature
    # other tokenizers and lowercase go through
    low = _quiet(corpus_bleu, HYPS, REFS, tokenize="intl", lowercase=True)
    assert low.score == pytest.approx(
        sacrebleu.corpus_bleu(HYPS, [REFS], tokenize="intl", lowercase=True).score)


def test_bleu_hand_checked():
    same = ["a small dog runs .", "the cat sleeps on the warm sofa"]
    assert _quiet(corpus_bleu, same, same).score == pytest.approx(100.0)
    # no shared 4-gram at all (and one hypothesis): BLEU is 0 without smoothing of the 4-gram
    zero = _quiet(corpus_bleu, ["x y z w"], ["a b c d"])
    assert zero.score == pytest.approx(0.0)
    # a prefix of the reference: all n-gram precisions are 100, only the brevity penalty bites
    # hyp 6 tokens, ref 8 tokens -> BP = exp(1 - 8/6), BLEU = 100 * BP
    half = _quiet(corpus_bleu, ["a b c d e f"], ["a b c d e f g h"])
    assert half.precisions == pytest.approx([100.0] * 4)
    assert half.bp == pytest.approx(math.exp(1 - 8 / 6))
    assert half.score == pytest.approx(100 * math.exp(1 - 8 / 6))


def test_bleu_errors_and_warning():
    with pytest.raises(InputError, match="2 hypotheses but 1 references"):
        corpus_bleu(["a", "b"], ["a"])
    with pytest.raises(InputError, match="at least one"):
        corpus_bleu([], [])
    with pytest.raises(InputError, match="detokenised"):
        corpus_bleu([["a", "b"]], ["a b"])
    with pytest.raises(InputError, match="single string"):
        corpus_bleu("a b", ["a b"])
    with pytest.raises(InputError, match="mixes"):
        corpus_bleu(["a", "b"], ["a", ["b"]])
    with pytest.warns(UserWarning, match="not meaningful"):
        corpus_bleu(["a b c"], ["a b c"])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 100 sentences: no warning
        corpus_bleu(["a b c d"] * 100, ["a b c d"] * 100)


def test_perplexity():
    assert perplexity(0.0) == 1.0
    assert perplexity(math.log(7.0)) == pytest.approx(7.0)
    assert perplexity(np.float32(1.0)) == pytest.approx(math.e, rel=1e-6)
    assert perplexity(1e4) == math.inf  # guarded overflow
    assert math.isnan(perplexity(float("nan")))
    with pytest.raises(InputError, match="scalar"):
        perplexity(np.ones(3))


def test_accuracy_numpy_and_tensor(ms_cpu):
    from mindspore import Tensor

    labels = np.array([[1, 2, 3], [4, 0, 0]])
    pred = np.array([[1, 2, 0], [4, 1, 0]])
    assert accuracy(pred, labels) == pytest.approx(4 / 6)
    assert accuracy(pred, labels, ignore_index=0) == pytest.approx(3 / 4)
    assert accuracy(Tensor(pred.astype(np.int32)), Tensor(labels.astype(np.int32))) == \
        pytest.approx(4 / 6)
    logits = np.eye(5, dtype=np.float32)[pred]  # (2, 3, 5), arg-max = pred
    assert accuracy(Tensor(logits), labels) == pytest.approx(4 / 6)
    with pytest.raises(InputError, match="shape"):
        accuracy(pred[:, :2], labels)
    with pytest.raises(InputError, match="nothing"):
        accuracy(np.zeros(2), np.zeros(2), ignore_index=0)


def test_token_loss_meter(ms_cpu):
    from mindspore import Tensor

    meter = TokenLossMeter()
    assert meter.total_tokens == 0 and repr(meter) == "TokenLossMeter(empty)"
    for name in ("mean_loss", "perplexity"):  # an empty meter refuses to make up a number
        with pytest.raises(InputError, match="no tokens"):
            getattr(meter, name)
    # batch 1: 10 tokens with mean loss 2.0; batch 2: 30 tokens with mean 1.0 -> 50 / 40
    meter.update(2.0, 10)
    meter.update(Tensor(np.float32(1.0)), Tensor(np.int32(30)))
    assert meter.mean_loss == pytest.approx(50 / 40)
    assert meter.perplexity == pytest.approx(math.exp(50 / 40))
    assert meter.total_tokens == 40 and meter.n_batches == 2
    meter.update(5.0, 10, reduction="sum")  # a summed loss
    assert meter.mean_loss == pytest.approx(55 / 50)
    meter.update(3.0, 0)  # empty batch: ignored
    assert meter.total_tokens == 50 and "ppl=" in repr(meter)
    with pytest.raises(InputError, match="reduction"):
        meter.update(1.0, 1, reduction="max")
    with pytest.raises(InputError, match="non-negative"):
        meter.update(1.0, -1)
    meter.reset()
    assert meter.total_tokens == 0 and repr(meter) == "TokenLossMeter(empty)"
