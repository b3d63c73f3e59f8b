"""Evaluation metrics: corpus BLEU (via sacreBLEU), perplexity, accuracy, and a token-weighted loss
meter for "loss and perplexity over the whole validation set".

BLEU is computed on **detokenised** text with sacreBLEU's own tokenizer (``13a`` by default), so
scores are comparable across papers and tokenizers; always report the signature with the score.
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import List, Sequence, Union

import numpy as np

from mindtf.errors import InputError

__all__ = ["BleuResult", "corpus_bleu", "perplexity", "accuracy", "TokenLossMeter"]

#: below this many sentences corpus_bleu warns that the score is not meaningful
MIN_BLEU_SENTENCES = 100


@dataclass
class BleuResult:
    """A corpus BLEU score.

    Attributes:
        score: BLEU in ``[0, 100]``.
        signature: sacreBLEU signature (references, case, tokenizer, smoothing, version).
        precisions: the 1- to 4-gram precisions, in percent.
        bp: brevity penalty.
        sys_len, ref_len: hypothesis and (effective) reference lengths in tokens.
    """

    score: float
    signature: str
    precisions: List[float] = field(default_factory=list)
    bp: float = 1.0
    sys_len: int = 0
    ref_len: int = 0

    def __str__(self) -> str:
        prec = "/".join(f"{p:.1f}" for p in self.precisions)
        ratio = self.sys_len / self.ref_len if self.ref_len else 0.0
        return (f"BLEU = {self.score:.2f} {prec} (BP = {self.bp:.3f} ratio = {ratio:.3f} "
                f"hyp_len = {self.sys_len} ref_len = {self.ref_len}) | {self.signature}")


def _to_str_list(xs, what: str) -> List[str]:
    if isinstance(xs, str):
        raise InputError(f"{what} must be a list of sentences, got a single string; wrap it in a "
                         "list.")
    out = list(xs)
    for i, x in enumerate(out):
        if not isinstance(x, str):
            raise InputError(f"{what}[{i}] is {type(x).__name__}, not a string: BLEU is computed "
                             "on detokenised text (join tokens with the detokenizer first).")
    return out


def corpus_bleu(hypotheses: Sequence[str],
                references: Union[Sequence[str], Sequence[Sequence[str]]],
                tokenize: str = "13a", lowercase: bool = False) -> BleuResult:
    """Corpus-level BLEU of detokenised ``hypotheses`` against ``references`` with sacreBLEU.

    Args:
        hypotheses: one detokenised system output per sentence.
        references: one reference string per hypothesis, or one *list* of reference strings
            per hypothesis (multiple references; the lists may differ in length).
        tokenize: sacreBLEU tokenizer (``"13a"`` the WMT standard, ``"intl"``, ``"zh"``,
            ``"char"``, ``"none"``, ...).
        lowercase: case-insensitive BLEU.

    Returns:
        a :class:`BleuResult`; ``str(result)`` prints the score and the signature.

    Warns when there are fewer than 100 sentences: corpus BLEU on a handful of sentences is
    dominated by chance and should not be compared across systems.
    """
    try:
        from sacrebleu.metrics import BLEU
    except ImportError as e:  # pragma: no cover - sacrebleu is a dependency
        raise ImportError("corpus_bleu needs sacrebleu: pip install sacrebleu") from e
    hyps = _to_str_list(hypotheses, "hypotheses")
    if isinstance(references, str):
        raise InputError("references must be a list (one entry per hypothesis), got a string.")
    refs = list(references)
    if not hyps or not refs:
        raise InputError("corpus_bleu needs at least one hypothesis and one reference; got "
                         f"{len(hyps)} hypotheses and {len(refs)} references.")
    if len(hyps) != len(refs):
        raise InputError(f"got {len(hyps)} hypotheses but {len(refs)} references: pass exactly one "
                         "reference (or one list of references) per hypothesis, in the same order.")
    multi = [not isinstance(r, str) for r in refs]
    if any(multi) and not all(multi):
        raise InputError("references mixes strings and lists: use one string per hypothesis, or "
                         "one list of reference strings per hypothesis.")
    if all(multi):
        per_sent = [_to_str_list(r, f"references[{i}]") for i, r in enumerate(refs)]
        if any(len(r) == 0 for r in per_sent):
            raise InputError("every hypothesis needs at least one reference.")
        n = max(len(r) for r in per_sent)
        # sacreBLEU wants reference *streams*: stream j holds the j-th reference of each sentence
        streams = [[r[j] if j < len(r) else None for r in per_sent] for j in range(n)]
    else:
        streams = [_to_str_list(refs, "references")]
    if len(hyps) < MIN_BLEU_SENTENCES:
        warnings.warn(f"corpus BLEU on only {len(hyps)} sentences is not meaningful (scores on a "
                      f"handful of sentences swing wildly); evaluate on a full test set "
                      f"(>= {MIN_BLEU_SENTENCES} sentences, ideally thousands).", stacklevel=2)
    try:
        metric = BLEU(tokenize=tokenize, lowercase=lowercase)
    except Exception as e:  # unknown tokenizer name
        raise InputError(f"sacreBLEU rejected tokenize={tokenize!r}: {e}") from e
    res = metric.corpus_score(hyps, streams)
    return BleuResult(score=float(res.score), signature=str(metric.get_signature()),
                      precisions=[float(p) for p in res.precisions], bp=float(res.bp),
                      sys_len=int(res.sys_len), ref_len=int(res.ref_len))


def perplexity(mean_loss: float) -> float:
    """``exp(mean_loss)`` for a mean per-token cross-entropy in nats; ``inf`` instead of overflow.

    Accepts a float, a numpy scalar or a one-element Tensor.
    """
    x = _scalar(mean_loss, "mean_loss")
    if math.isnan(x):
        return float("nan")
    if x > 709.0:  # math.exp overflows above ~709.78
        return float("inf")
    return math.exp(x)


def _scalar(x, what: str) -> float:
    if hasattr(x, "asnumpy"):
        x = x.asnumpy()
    arr = np.asarray(x)
    if arr.size != 1:
        raise InputError(f"{what} must be a scalar, got shape {arr.shape}.")
    return float(arr.reshape(()))


def _to_numpy(x) -> np.ndarray:
    return np.asarray(x.asnumpy() if hasattr(x, "asnumpy") else x)


def accuracy(pred, labels, ignore_index=None) -> float:
    """Fraction of positions where ``pred`` equals ``labels``.

    Args:
        pred: predicted ids with the shape of ``labels``, or scores/logits with one more
            trailing axis (``labels.shape + (C,)``; the arg-max is taken). numpy or Tensor.
        labels: integer ids, any shape. numpy or Tensor.
        ignore_index: label value left out of the count (e.g. the padding id).

    Returns:
        accuracy in ``[0, 1]``.
    """
    p, y = _to_numpy(pred), _to_numpy(labels)
    if p.shape == y.shape + p.shape[-1:] and p.ndim == y.ndim + 1:
        p = p.argmax(-1)
    if p.shape != y.shape:
        raise InputError(f"pred has shape {p.shape} but labels have shape {y.shape}; pass "
                         "predicted ids of the same shape, or logits with one extra class axis.")
    keep = np.ones(y.shape, dtype=bool) if ignore_index is None else (y != ignore_index)
    n = int(keep.sum())
    if n == 0:
        raise InputError("accuracy of nothing: labels are empty (or all equal ignore_index).")
    return float(((p == y) & keep).sum() / n)


class TokenLossMeter:
    """Token-weighted average of a loss over many batches.

    Averaging per-batch mean losses is wrong when batches hold different numbers of tokens;
    this meter keeps the total loss and the total token count instead::

        meter = TokenLossMeter()
        for src, tgt_in, tgt_out in val_batches:
            loss = cross_entropy(model(src, tgt_in), tgt_out, ignore_index=pad)  # mean
            meter.update(loss, (tgt_out != pad).sum())
        print(meter.mean_loss, meter.perplexity)

    ``update(loss, n_tokens, reduction="mean")``: ``loss`` is the mean over ``n_tokens`` tokens
    (``reduction="sum"``: their sum). Floats, numpy scalars and one-element Tensors are accepted.
    """

    def __init__(self) -> None:
        self.reset()

    def reset(self) -> None:
        self.total_loss = 0.0
        self.total_tokens = 0
        self.n_batches = 0

    def update(self, loss, n_tokens, reduction: str = "mean") -> None:
        if reduction not in ("mean", "sum"):
            raise InputError(f"reduction must be 'mean' or 'sum', got {reduction!r}.")
        n = _scalar(n_tokens, "n_tokens")
        if n < 0 or n != int(n):
            raise InputError(f"n_tokens must be a non-negative integer, got {n}.")
        n = int(n)
        value = _scalar(loss, "loss")
        if n == 0:
            return
        self.total_loss += value * n if reduction == "mean" else value
        self.total_tokens += n
        self.n_batches += 1

    @property
    def mean_loss(self) -> float:
        """Total loss / total tokens."""
        if self.total_tokens == 0:
            raise InputError("TokenLossMeter has no tokens yet: call update() first.")
        return self.total_loss / self.total_tokens

    @property
    def perplexity(self) -> float:
        return perplexity(self.mean_loss)

    def __repr__(self) -> str:
        if self.total_tokens == 0:
            return "TokenLossMeter(empty)"
        return (f"TokenLossMeter(mean_loss={self.mean_loss:.4f}, ppl={self.perplexity:.2f}, "
                f"tokens={self.total_tokens}, batches={self.n_batches})")
