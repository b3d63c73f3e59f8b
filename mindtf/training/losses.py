"""Cross-entropy for classification and language modelling, with ignore_index and label smoothing.

Built from ``ops.log_softmax`` and ``ops.gather_elements`` (both registered on CPU, GPU and Ascend),
so it runs in PyNative and GRAPH_MODE alike and matches ``torch.nn.functional.cross_entropy``.

For one position with logits ``z`` (``V`` classes), target class ``y`` and smoothing ``eps``::

    logp  = log_softmax(z)
    nll   = -logp[y]
    smooth = -(1/V) * sum_c logp[c]
    loss  = (1 - eps) * nll + eps * smooth

which is the cross-entropy against the target distribution ``(1 - eps) * onehot(y) + eps / V``.
Positions whose target equals ``ignore_index`` contribute 0 and are left out of the mean.

The loss *cells* wrap a model and its batch layout for the training step::

    LMLossCell(model)(x (B, T), y (B, T))                        -> mean CE    (GPT, any LM)
    Seq2SeqLossCell(model)(src (B, S), tgt_in (B, T), tgt_out)   -> mean CE    (Transformer)

and ``.sums(*batch) -> (sum of token losses, token count)`` for exact whole-dataset averages.
"""
from __future__ import annotations

from typing import Optional, Tuple

import mindspore as ms
from mindspore import Tensor, nn, ops
from mindspore.common import dtype as mstype

__all__ = ["cross_entropy", "LMLossCell", "Seq2SeqLossCell"]

_REDUCTIONS = ("mean", "sum", "none")


def cross_entropy(logits: Tensor, targets: Tensor, ignore_index: int = -100,
                  label_smoothing: float = 0.0, reduction: str = "mean") -> Tensor:
    """Cross-entropy between ``logits`` and integer class ``targets``.

    Args:
        logits: ``(N, V)`` or ``(B, T, V)`` (any leading shape), float. Computed in float32.
        targets: integer class ids of shape ``logits.shape[:-1]``, i.e. ``(N,)`` or ``(B, T)``.
        ignore_index: target value that marks positions to skip (padding, prompt tokens).
        label_smoothing: ``eps`` in ``[0, 1]``; ``eps / V`` of the target mass goes to every class.
        reduction: ``"mean"`` (over non-ignored positions; 0 if all are ignored, not NaN),
            ``"sum"``, or ``"none"`` (per-position losses of shape ``targets.shape``, 0 where
            ignored).

    Returns:
        float32 scalar Tensor (``"mean"``/``"sum"``) or float32 Tensor of ``targets.shape``.
    """
    if reduction not in _REDUCTIONS:
        raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
    if not 0.0 <= label_smoothing <= 1.0:
        raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
    logp = ops.log_softmax(ops.cast(logits, mstype.float32), -1)      # (..., V)
    targets = ops.cast(targets, mstype.int32)
    keep = targets != ignore_index                                     # (...,) bool
    safe_targets = ops.where(keep, targets, ops.zeros_like(targets))   # a valid index everywhere
    nll = -ops.gather_elements(logp, -1, safe_targets.expand_dims(-1)).squeeze(-1)  # (...,)
    if label_smoothing > 0.0:
        smooth = -logp.mean(-1)                                        # -(1/V) sum_c logp[c]
        loss = (1.0 - label_smoothing) * nll + label_smoothing * smooth
    else:
        loss = nll
    keep_f = ops.cast(keep, mstype.float32)
    loss = loss * keep_f                                               # 0 at ignored positions
    if reduction == "none":
        return loss
    total = loss.sum()
    if reduction == "sum":
        return total
    count = keep_f.sum()
    return total / ops.maximum(count, ops.ones_like(count))           # all ignored -> 0 / 1 = 0


class LMLossCell(nn.Cell):
    """Next-token loss of a language model: ``(x (B, T), y (B, T)) -> mean CE``.

    Targets equal to ``ignore_index`` (e.g. padding) are skipped. :meth:`sums` returns
    ``(sum of token losses, number of tokens)`` for exact averages over a whole dataset.
    """

    def __init__(self, model: nn.Cell, label_smoothing: float = 0.0, ignore_index: int = -100):
        super().__init__(auto_prefix=False)
        self.model = model
        self.label_smoothing, self.ignore_index = float(label_smoothing), int(ignore_index)

    def construct(self, x: Tensor, y: Tensor) -> Tensor:
        logits = self.model(x)  # (B, T, V)
        return cross_entropy(logits, y, self.ignore_index, self.label_smoothing)

    def sums(self, x: Tensor, y: Tensor) -> Tuple[Tensor, Tensor]:
        logits = self.model(x)
        total = cross_entropy(logits, y, self.ignore_index, 0.0, "sum")
        count = (y != self.ignore_index).astype(ms.float32).sum()
        return total, count


class Seq2SeqLossCell(nn.Cell):
    """Translation loss: ``(src (B, S), tgt_in (B, T), tgt_out (B, T)) -> mean CE`` over the
    non-padding target tokens (label smoothing as in the paper, 0.1)."""

    def __init__(self, model: nn.Cell, label_smoothing: float = 0.1, pad_id: Optional[int] = None):
        super().__init__(auto_prefix=False)
        self.model = model
        self.label_smoothing = float(label_smoothing)
        self.ignore_index = int(model.config.pad_id if pad_id is None else pad_id)

    def construct(self, src: Tensor, tgt_in: Tensor, tgt_out: Tensor) -> Tensor:
        logits = self.model(src, tgt_in)  # (B, T, V)
        return cross_entropy(logits, tgt_out, self.ignore_index, self.label_smoothing)

    def sums(self, src: Tensor, tgt_in: Tensor, tgt_out: Tensor) -> Tuple[Tensor, Tensor]:
        logits = self.model(src, tgt_in)
        total = cross_entropy(logits, tgt_out, self.ignore_index, 0.0, "sum")
        count = (tgt_out != self.ignore_index).astype(ms.float32).sum()
        return total, count
