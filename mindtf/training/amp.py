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
"""
from __future__ import annotations

import shutil
import subprocess
import warnings
from typing import Optional, Sequence

from mindspore import Parameter, Tensor, nn, ops
from mindspore.common import dtype as mstype

__all__ = ["DynamicLossScaler", "autocast_dtype", "bf16_supported"]

_map = ops.HyperMap()

_ALIASES = {
    "fp32": "fp32", "float32": "fp32", "32": "fp32",
    "fp16": "fp16", "float16": "fp16", "half": "fp16", "16": "fp16",
    "bf16": "bf16", "bfloat16": "bf16",
    "auto": "auto",
}
_DTYPES = {"fp32": mstype.float32, "fp16": mstype.float16, "bf16": mstype.bfloat16}


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
def _gpu_compute_capability() -> Optional[float]:
    """Compute capability of GPU 0 from ``nvidia-smi`` (e.g. 8.0 for A100), or None if unknown."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run([exe, "--query-gpu=compute_cap", "--format=csv,noheader"],
                             capture_output=True, text=True, timeout=10, check=True).stdout
        return float(out.strip().splitlines()[0])
    except (OSError, subprocess.SubprocessError, ValueError, IndexError):
        return None


def _ascend_soc() -> Optional[str]:
    """The Ascend SoC name (e.g. ``"ascend910b"``), or None if unknown.

    Uses the same (private) MindSpore query MindSpore's own ``Model`` uses; it may change.
    """
    try:
        from mindspore._c_expression import MSContext  # noqa: WPS433

        soc = MSContext.get_instance().get_ascend_soc_version()
        return str(soc).lower() or None
    except Exception:  # not an Ascend build, or the private API moved
        return None


def bf16_supported(device: str) -> Optional[bool]:
    """Whether ``device`` computes in bf16: ``True``/``False``, or ``None`` when it can't tell.

    CPU: ``False`` for mindtf (MindSpore 2.10's CPU kernels fail on bf16). GPU: compute
    capability >= 8.0 (Ampere or newer), read from ``nvidia-smi``. Ascend: 910B and newer
    (the original 910, "ascend910", and the 310 series lack it).
    """
    dev = device.lower()
    if dev == "cpu":
        return False
    if dev == "gpu":
        cc = _gpu_compute_capability()
        return None if cc is None else cc >= 8.0
    if dev == "ascend":
        soc = _ascend_soc()
        if soc is None:
            return None
        return not (soc == "ascend910" or soc.startswith("ascend310"))
    raise ValueError(f"unknown device {device!r} (expected cpu, gpu or ascend)")


def autocast_dtype(device: str, requested: str = "auto") -> mstype.Type:
    """The compute dtype to use for ``requested`` precision on ``device``.

    Args:
        device: ``"cpu"``, ``"gpu"`` or ``"ascend"`` (case-insensitive; ``RuntimeInfo.device``).
        requested: ``"fp32"``, ``"fp16"``, ``"bf16"`` (or ``float32``/``float16``/``bfloat16``)
            or ``"auto"``.

    Returns:
        * CPU: always ``float32`` (warns if fp16/bf16 was requested: MindSpore's CPU kernels are
          slow or missing in fp16 and fail in bf16);
        * GPU/Ascend, ``"fp32"``: ``float32``; ``"fp16"``: ``float16`` (use
          :class:`DynamicLossScaler`);
        * GPU/Ascend, ``"bf16"``: ``bfloat16`` unless the hardware is known to lack it (then
          ``float16``, with a warning); when support cannot be detected, the explicit request is
          trusted;
        * GPU/Ascend, ``"auto"``: ``bfloat16`` where support is detected, else ``float16``.
    """
    dev = str(device).lower()
    if dev not in ("cpu", "gpu", "ascend"):
        raise ValueError(f"unknown device {device!r} (expected cpu, gpu or ascend)")
    key = _ALIASES.get(str(requested).lower())
    if key is None:
        raise ValueError(f"unknown precision {requested!r} (expected fp32, fp16, bf16 or auto)")
    if dev == "cpu":
        if key in ("fp16", "bf16"):
            warnings.warn(f"{requested} was requested on CPU; using float32 (MindSpore's CPU "
                          "kernels are slow or missing in fp16 and fail in bf16).", stacklevel=2)
        return mstype.float32
    if key in ("fp32", "fp16"):
        return _DTYPES[key]
    support = bf16_supported(dev)
    if key == "bf16":
        if support is False:
            warnings.warn(f"bf16 was requested but this {device} does not support it; "
                          "using float16 (use DynamicLossScaler).", stacklevel=2)
            return mstype.float16
        return mstype.bfloat16
    return mstype.bfloat16 if support else mstype.float16  # auto
