"""Which floating-point format a device computes in: ``fp32``, ``fp16`` or ``bf16``, by name.

Layer 0: the standard library only, so that :func:`mindtf.runtime.setup` (which reports what
``auto`` means on the device it picked) and :mod:`mindtf.training` (which applies it) share one
rule. The dtypes themselves and loss scaling live in :mod:`mindtf.training.amp`::

    requested ("fp32" | "fp16" | "bf16" | "auto", or an alias such as "float16")
        │  device "cpu" | "gpu" | "ascend"
        ▼
    resolve_precision ──► "fp32" | "fp16" | "bf16"   (or ValueError naming the fix)

    fp32   everywhere
    fp16   everywhere: GPU and Ascend compute in it natively; MindSpore's CPU has fp16 kernels
           too (slower than fp32: useful to test the fp16 path, loss scaling included, on a laptop)
    bf16   GPU with compute capability >= 8.0 (Ampere and newer), Ascend 910B and newer; not
           the CPU (MindSpore 2.10's CPU Gather and LayerNorm have no bf16 kernel), not V100,
           not the original Ascend 910 ("910A") nor the 310 series
    auto   CPU: fp32; GPU / Ascend: bf16 where supported, else fp16

What was verified where (README, "Precision and static shapes"): everything above on CPU; on a GPU
and an Ascend NPU the rule is what their documentation says, not something mindtf ran.
"""
from __future__ import annotations

import shutil
import subprocess
from typing import Optional

__all__ = ["PRECISIONS", "canonical_precision", "bf16_supported", "resolve_precision",
           "needs_loss_scaling"]

#: the values of ``TrainConfig.precision``
PRECISIONS = ("fp32", "fp16", "bf16", "auto")
_ALIASES = {
    "fp32": "fp32", "float32": "fp32", "32": "fp32",
    "fp16": "fp16", "float16": "fp16", "half": "fp16", "16": "fp16",
    "bf16": "bf16", "bfloat16": "bf16",
    "auto": "auto",
}
_DEVICES = ("cpu", "gpu", "ascend")


def canonical_precision(name: str) -> str:
    """``"float16"`` -> ``"fp16"``, ...; ValueError for an unknown name."""
    key = _ALIASES.get(str(name).strip().lower())
    if key is None:
        raise ValueError(f"unknown precision {name!r}: choose one of {', '.join(PRECISIONS)}.")
    return key


def _device(device: str) -> str:
    dev = str(device).strip().lower()
    if dev not in _DEVICES:
        raise ValueError(f"unknown device {device!r} (expected cpu, gpu or ascend).")
    return dev


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

    Uses the (private) query MindSpore's own ``Model`` uses; imported only when asked, on an
    Ascend build. It may move between releases: then the answer is "unknown".
    """
    try:
        from mindspore._c_expression import MSContext  # noqa: WPS433

        soc = MSContext.get_instance().get_ascend_soc_version()
        return str(soc).lower() or None
    except Exception:  # not an Ascend build, or the private API moved
        return None


def bf16_supported(device: str) -> Optional[bool]:
    """Whether ``device`` computes in bf16: ``True`` / ``False``, or ``None`` when unknown.

    CPU: ``False`` (MindSpore's CPU kernels lack bf16). GPU: compute capability >= 8.0, read
    from ``nvidia-smi``. Ascend: 910B and newer (``"ascend910"``, the original 910, and the 310
    series lack it).
    """
    dev = _device(device)
    if dev == "cpu":
        return False
    if dev == "gpu":
        cc = _gpu_compute_capability()
        return None if cc is None else cc >= 8.0
    soc = _ascend_soc()
    if soc is None:
        return None
    return not (soc == "ascend910" or soc.startswith("ascend310"))


def resolve_precision(requested: str, device: str) -> str:
    """The format ``requested`` means on ``device``: ``"fp32"``, ``"fp16"`` or ``"bf16"``.

    Raises ValueError (with the fix) for bf16 on a device known to lack it; when support cannot
    be detected (no ``nvidia-smi``, an unknown SoC), an explicit ``bf16`` is trusted and ``auto``
    takes fp16.

    >>> resolve_precision("auto", "cpu"), resolve_precision("float16", "CPU")
    ('fp32', 'fp16')
    """
    key, dev = canonical_precision(requested), _device(device)
    if key in ("fp32", "fp16"):
        return key
    support = bf16_supported(dev)
    if key == "auto":
        if dev == "cpu":
            return "fp32"
        return "bf16" if support else "fp16"
    if support is False:  # bf16 requested where it is known not to work
        why = ("MindSpore's CPU kernels (Gather, LayerNorm) have no bf16 version" if dev == "cpu"
               else f"this {dev.upper()} has no bf16 arithmetic (GPU: compute capability below "
                    "8.0; Ascend: 910A or 310)")
        raise ValueError(f"precision bf16 on {dev.upper()}: {why}. Use fp32, or fp16 (with "
                         "dynamic loss scaling), or auto.")
    return "bf16"


def needs_loss_scaling(precision: str) -> bool:
    """fp16 needs dynamic loss scaling (its smallest numbers are far from fp32's); bf16 has
    fp32's range and does not."""
    return precision == "fp16"
