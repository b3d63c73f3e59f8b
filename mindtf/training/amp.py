"""Mixed precision helpers: pick a compute dtype per device, and dynamic loss scaling for fp16.

fp16 has a narrow range (max 65504, smallest normal ~6e-5), so small gradients underflow to 0.
Loss scaling multiplies the loss by a large factor ``S`` before backprop (every gradient is then
``S`` times larger, lifting it out of the underflow zone) and divides the gradients by ``S``
before the optimiser step. ``S`` is adapted on the fly:

* a step whose gradients contain ``inf``/``nan`` (overflow): skip the update, ``S <- S * backoff``;
* after ``growth_interval`` finite steps in a row: ``S <- S * growth`` (try a larger scale again).

Inside a compiled train step (the same code works in PyNative and on CPU in float32)::

    loss, grads = self.grad_fn(x, y)              # grad_fn differentiates scaler.scale_loss(loss)
    grads = self.scaler.unscale(grads)
    finite = all_finite(grads)                    # mindtf.training.optim.all_finite
    self.scaler.update(finite)
    if finite:                                    # graph-mode control flow on a Tensor
        self.optimizer(grads, lr)

bf16 has fp32's range, so it needs no loss scaling; it is used only where the hardware has it.

How a precision reaches a model (:func:`set_compute_dtype`, called by
:func:`mindtf.training.step.build_train_step` for ``TrainConfig.precision``)::

    "auto" | "fp32" | "fp16" | "bf16" --mindtf.precision.resolve_precision(device)--> fp16, say
    model.to_float(float16)          every cell casts its float inputs and parameters to fp16
    norm layers .to_float(float32)   LayerNorm / RMSNorm keep fp32 (means and variances)
    parameters                       stay float32: the "master weights" AdamW updates
    cross_entropy                    casts the logits to float32 (mindtf.training.losses)
"""
from __future__ import annotations

from typing import Sequence

from mindspore import Parameter, Tensor, nn, ops
from mindspore.common import dtype as mstype

from mindtf.nn.layers import LayerNorm, RMSNorm
from mindtf.precision import bf16_supported, canonical_precision, resolve_precision

__all__ = ["DynamicLossScaler", "autocast_dtype", "bf16_supported", "compute_dtype",
           "set_compute_dtype", "NORM_LAYERS"]

_map = ops.HyperMap()

_DTYPES = {"fp32": mstype.float32, "fp16": mstype.float16, "bf16": mstype.bfloat16}
#: layers that keep computing in float32 under fp16 / bf16 (their means and variances)
NORM_LAYERS = (LayerNorm, RMSNorm, nn.LayerNorm, nn.BatchNorm1d, nn.BatchNorm2d, nn.GroupNorm)


def _unscale_one(inv_scale: Tensor, g: Tensor) -> Tensor:
    return ops.cast(ops.cast(g, mstype.float32) * inv_scale, g.dtype)


class DynamicLossScaler(nn.Cell):
    """Dynamic loss scale for fp16 training (the logic of ``torch.cuda.amp.GradScaler``).

    State (Parameters, saved with the checkpoint of any cell that holds this one):

    * ``scale``: float32 scalar, starts at ``init_scale`` (named ``loss_scaler.scale``);
    * ``good_steps``: int32 scalar, finite steps since the last change (``loss_scaler.good_steps``).

    Args:
        init_scale: initial ``S`` (``2**16``).
        growth: factor applied after ``growth_interval`` finite steps in a row.
        backoff: factor applied after a step with non-finite gradients.
        growth_interval: finite steps needed before growing.
        min_scale: ``S`` never backs off below this (keeps it from collapsing to 0).
    """

    def __init__(self, init_scale: float = 2.0 ** 16, growth: float = 2.0, backoff: float = 0.5,
                 growth_interval: int = 2000, min_scale: float = 1.0) -> None:
        super().__init__()
        if init_scale <= 0 or growth < 1.0 or not 0.0 < backoff < 1.0 or growth_interval < 1:
            raise ValueError("need init_scale > 0, growth >= 1, 0 < backoff < 1, "
                             f"growth_interval >= 1 (got {init_scale}, {growth}, {backoff}, "
                             f"{growth_interval})")
        self.scale = Parameter(Tensor(float(init_scale), mstype.float32),
                               name="loss_scaler.scale", requires_grad=False)
        self.good_steps = Parameter(Tensor(0, mstype.int32), name="loss_scaler.good_steps",
                                    requires_grad=False)
        self.growth = float(growth)
        self.backoff = float(backoff)
        self.growth_interval = int(growth_interval)
        self.min_scale = float(min_scale)

    def scale_loss(self, loss: Tensor) -> Tensor:
        """``loss * S`` in float32 (``S = 2**16`` would overflow fp16 itself). Shape of ``loss``."""
        return ops.cast(loss, mstype.float32) * self.scale

    def unscale(self, grads: Sequence[Tensor]) -> tuple:
        """``g / S`` for every gradient (computed in float32, returned in each gradient's dtype)."""
        inv_scale = 1.0 / self.scale
        return _map(ops.partial(_unscale_one, inv_scale), tuple(grads))

    def update(self, finite: Tensor) -> None:
        """Adapt ``S`` after a step. ``finite``: bool scalar Tensor, e.g. ``all_finite(grads)``.

        Overflow: ``S <- max(S * backoff, min_scale)`` and the counter restarts. Otherwise the
        counter grows, and when it reaches ``growth_interval``: ``S <- S * growth``, counter 0.
        """
        good = self.good_steps + 1
        grow = good >= self.growth_interval
        scale = self.scale
        grown = ops.select(grow, scale * self.growth, scale)
        floor = ops.full((), self.min_scale, dtype=mstype.float32)
        backed_off = ops.maximum(scale * self.backoff, floor)
        zero = ops.zeros_like(good)
        ops.assign(self.scale, ops.select(finite, grown, backed_off))
        ops.assign(self.good_steps, ops.select(finite, ops.select(grow, zero, good), zero))

    def construct(self, loss: Tensor) -> Tensor:
        """Calling the cell scales a loss: ``scaler(loss) == scaler.scale_loss(loss)``."""
        return self.scale_loss(loss)

    def extend_repr(self) -> str:
        return (f"growth={self.growth}, backoff={self.backoff}, "
                f"growth_interval={self.growth_interval}, min_scale={self.min_scale}")


# ---------------------------------------------------------------------------- dtype selection
def compute_dtype(precision: str) -> mstype.Type:
    """``"fp32"`` / ``"fp16"`` / ``"bf16"`` (or an alias) -> the MindSpore dtype."""
    key = canonical_precision(precision)
    if key == "auto":
        raise ValueError("compute_dtype needs fp32, fp16 or bf16: resolve 'auto' for a device "
                         "first (mindtf.precision.resolve_precision).")
    return _DTYPES[key]


def autocast_dtype(device: str, requested: str = "auto") -> mstype.Type:
    """The compute dtype for ``requested`` precision on ``device`` (``"cpu"``, ``"gpu"``,
    ``"ascend"``; case-insensitive): :func:`mindtf.precision.resolve_precision` as a dtype.

    * ``"fp32"``: ``float32``; ``"fp16"``: ``float16`` on every device (use
      :class:`DynamicLossScaler`; on a CPU it runs, slower than fp32);
    * ``"bf16"``: ``bfloat16``; ValueError where the device is known to lack it (the CPU, GPUs
      before Ampere, Ascend 910A / 310); trusted when support cannot be detected;
    * ``"auto"``: CPU ``float32``; GPU / Ascend ``bfloat16`` where detected, else ``float16``.
    """
    return _DTYPES[resolve_precision(requested, device)]


def set_compute_dtype(model: nn.Cell, precision: str) -> nn.Cell:
    """Make ``model`` compute in ``precision`` (``"fp32"``, ``"fp16"``, ``"bf16"``) with float32
    master weights, and return it.

    ``model.to_float(dtype)`` makes every cell cast its floating inputs (and the parameters it
    reads) to ``dtype``; the normalisation layers (:data:`NORM_LAYERS`) are set back to
    float32. The parameters themselves, their gradients and AdamW's moments stay float32.
    ``"fp32"`` undoes an earlier call (decoding with a KV cache needs it: its buffers are
    float32). In GRAPH_MODE a cell compiled before the change keeps its compiled graph.
    """
    dtype = compute_dtype(precision)
    model.to_float(dtype)
    if dtype != mstype.float32:
        for _, cell in model.cells_and_names():
            if isinstance(cell, NORM_LAYERS):
                cell.to_float(mstype.float32)
    return model
