"""Hugging Face GPT-2 names and layouts <-> mindtf's GPT names and layouts (numpy only, no model).

mindtf's :class:`~mindtf.models.gpt.GPT` uses GPT-2's parameter names (``wte.weight``,
``h.0.attn.c_attn.weight``, ``ln_f.bias``...), so a Hugging Face checkpoint maps onto it with
four rules::

    Hugging Face (GPT2LMHeadModel)             mindtf GPT
    transformer.h.0.ln_1.weight          <->   h.0.ln_1.weight      prefix: GPT2LMHeadModel has
                                                                    it, GPT2Model does not
    transformer.h.0.attn.bias            -->   (dropped)            causal-mask buffers, not
    transformer.h.0.attn.masked_bias     -->   (dropped)            weights
    lm_head.weight                       -->   (dropped if tied)    the tied head *is* wte.weight
    h.0.attn.c_attn.weight (C, 3C)       <->   (3C, C)              Conv1D (in, out) <-> (out, in)

GPT-2 stores its projections (``c_attn``, ``c_proj``, ``c_fc``) as ``(in, out)`` "Conv1D"
matrices; mindtf keeps ``(out, in)`` (``torch.nn.Linear``'s layout, the fast one in MindSpore),
so those are transposed on the way in (:func:`from_gpt2_names`) and out (:func:`to_gpt2_names`).
What :func:`to_gpt2_names` returns is what ``transformers.GPT2LMHeadModel.from_pretrained`` reads.
"""

from __future__ import annotations

from typing import Dict, Mapping

import numpy as np

__all__ = ["from_gpt2_names", "to_gpt2_names", "CONV1D_SUFFIXES", "IGNORED_SUFFIXES"]

#: GPT-2 "Conv1D" weights: stored (in, out) in checkpoints and (out, in) in mindtf
CONV1D_SUFFIXES = (
    ".attn.c_attn.weight",
    ".attn.c_proj.weight",
    ".mlp.c_fc.weight",
    ".mlp.c_proj.weight",
    ".mlp.c_gate.weight",  # mindtf's gated MLP (not in GPT-2), stored the same way
)
#: buffers in Hugging Face checkpoints that are not weights (the causal mask and its fill value)
IGNORED_SUFFIXES = (".attn.bias", ".attn.masked_bias")

_PREFIX = "transformer."
_HEAD = "lm_head.weight"


def from_gpt2_names(state: Mapping[str, np.ndarray], tied: bool) -> Dict[str, np.ndarray]:
    """Hugging Face GPT-2 names and layouts -> mindtf's.

    Strips ``transformer.``, drops the ``attn.bias``/``attn.masked_bias`` buffers, drops
    ``lm_head.weight`` when ``tied`` (the head is ``wte.weight``), and transposes the 2-D Conv1D
    weights ``(in, out) -> (out, in)``. mindtf names pass through unchanged, so the result of
    :func:`to_gpt2_names` or of a mindtf GPT's own state both work.

    Args:
        state: name -> array, e.g. from :func:`mindtf.weights.read_state`.
        tied: whether the model ties its head to ``wte`` (``tie_word_embeddings``).

    Returns:
        A new dict; transposed arrays are views (not C-contiguous), the others are the input arrays.
    """
    out: Dict[str, np.ndarray] = {}
    for key, value in state.items():
        name = key[len(_PREFIX):] if key.startswith(_PREFIX) else key
        if name.endswith(IGNORED_SUFFIXES):
            continue
        if name == _HEAD and tied:
            continue
        if name.endswith(CONV1D_SUFFIXES) and value.ndim == 2:
            value = value.T  # (in, out) -> (out, in)
        out[name] = value
    return out


def to_gpt2_names(state: Mapping[str, np.ndarray]) -> Dict[str, np.ndarray]:
    """mindtf GPT names and layouts -> Hugging Face GPT-2's (inverse of :func:`from_gpt2_names`).

    Transposes the 2-D Conv1D weights back to ``(in, out)`` (C-contiguous copies) and prefixes
    every name but ``lm_head.*`` with ``transformer.``, as ``GPT2LMHeadModel`` expects. A tied
    head is simply absent from a tied model's state, so it is not stored twice.
    """
    out: Dict[str, np.ndarray] = {}
    for name, value in state.items():
        if name.endswith(CONV1D_SUFFIXES) and value.ndim == 2:
            value = np.ascontiguousarray(value.T)  # (out, in) -> (in, out)
        key = name if name.startswith("lm_head.") else _PREFIX + name
        out[key] = value
    return out
