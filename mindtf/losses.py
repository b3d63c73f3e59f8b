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
"""
from __future__ import annotations

from mindspore import Tensor, nn, ops
from mindspore.common import dtype as mstype

__all__ = ["cross_entropy", "CrossEntropyLoss", "LMLoss"]

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


class CrossEntropyLoss(nn.Cell):
    """:func:`cross_entropy` as a Cell: ``loss = CrossEntropyLoss(...)(logits, targets)``.

    Args:
        ignore_index, label_smoothing, reduction: as in :func:`cross_entropy`.

    Inputs:
        logits ``(N, V)`` or ``(B, T, V)``; targets ``(N,)`` or ``(B, T)`` integer ids.
    """

    def __init__(self, ignore_index: int = -100, label_smoothing: float = 0.0,
                 reduction: str = "mean") -> None:
        super().__init__()
        if reduction not in _REDUCTIONS:
            raise ValueError(f"reduction must be one of {_REDUCTIONS}, got {reduction!r}")
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(f"label_smoothing must be in [0, 1], got {label_smoothing}")
        self.ignore_index = int(ignore_index)
        self.label_smoothing = float(label_smoothing)
        self.reduction = reduction

    def construct(self, logits: Tensor, targets: Tensor) -> Tensor:
        return cross_entropy(logits, targets, self.ignore_index, self.label_smoothing,
                             self.reduction)

    def extend_repr(self) -> str:
        return (f"ignore_index={self.ignore_index}, label_smoothing={self.label_smoothing}, "
                f"reduction={self.reduction!r}")


class LMLoss(CrossEntropyLoss):
    """Next-token loss for language models: ``(B, T, V)`` logits vs ``(B, T)`` targets.

    Same as :class:`CrossEntropyLoss`, with an option to do the usual shift itself.

    Args:
        shift: if ``True``, ``targets`` are the *input* ids and the loss compares
            ``logits[:, :-1]`` with ``targets[:, 1:]`` (predict token ``t+1`` from position
            ``t``). If ``False`` (default), targets are already aligned with the logits.
        ignore_index, label_smoothing, reduction: as in :func:`cross_entropy`.
    """

    def __init__(self, shift: bool = False, ignore_index: int = -100,
                 label_smoothing: float = 0.0, reduction: str = "mean") -> None:
        super().__init__(ignore_index, label_smoothing, reduction)
        self.shift = bool(shift)

    def construct(self, logits: Tensor, targets: Tensor) -> Tensor:
        if self.shift:
            logits = logits[:, :-1]
            targets = targets[:, 1:]
        return cross_entropy(logits, targets, self.ignore_index, self.label_smoothing,
                             self.reduction)

    def extend_repr(self) -> str:
        return f"shift={self.shift}, " + super().extend_repr()
