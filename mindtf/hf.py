"""Hugging Face GPT-2 interoperability: load and save :class:`~mindtf.gpt.GPT` checkpoints.

``load_gpt(dir)`` reads ``config.json`` plus ``model.safetensors`` or ``pytorch_model.bin`` (the
latter parsed without torch and without executing pickled code, see :mod:`mindtf.weights`) and
maps Hugging Face names onto mindtf's, which are the same apart from:

* an optional ``transformer.`` prefix (``GPT2LMHeadModel`` vs ``GPT2Model``);
* buffers that are not weights (``attn.bias``, ``attn.masked_bias``): ignored;
* ``lm_head.weight``: the tied head is ``wte.weight`` itself, so it is ignored when tied.

* GPT-2 stores its projections (``c_attn``, ``c_proj``, ``c_fc``) as ``(in, out)`` "Conv1D"
  matrices; mindtf keeps ``(out, in)`` (``torch.nn.Linear``'s layout, faster in MindSpore), so
  those are transposed on the way in and out.

``save_gpt`` writes files in GPT-2's layout that both :func:`load_gpt` and
``transformers.GPT2LMHeadModel.from_pretrained`` read.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Dict, Union

import numpy as np

from mindspore import Tensor

from .errors import CheckpointError, ConfigError
from .gpt import GPT, GPTConfig

__all__ = ["load_gpt", "save_gpt", "config_from_hf", "config_to_hf", "load_gpt_state"]

_IGNORED_SUFFIXES = (".attn.bias", ".attn.masked_bias")
# GPT-2 "Conv1D" weights, stored (in, out) in checkpoints and (out, in) in mindtf
_CONV1D_SUFFIXES = (".attn.c_attn.weight", ".attn.c_proj.weight", ".mlp.c_fc.weight",
                    ".mlp.c_proj.weight", ".mlp.c_gate.weight")
_HF_ACT = {"gelu_new": "gelu", "gelu_pytorch_tanh": "gelu", "gelu_fast": "gelu", "relu": "relu"}


def config_from_hf(hf: dict) -> GPTConfig:
    """Translate a Hugging Face GPT-2 ``config.json`` dict into a :class:`GPTConfig`."""
    if "mindtf" in hf:  # written by save_gpt: exact round trip
        return GPTConfig.from_dict(hf["mindtf"])
    act = hf.get("activation_function", "gelu_new")
    if act not in _HF_ACT:
        raise ConfigError(f"activation_function={act!r} is not supported by mindtf's GPT "
                          f"(supported: {sorted(_HF_ACT)}).")
    return GPTConfig(
        vocab_size=int(hf["vocab_size"]), block_size=int(hf.get("n_positions", 1024)),
        n_layer=int(hf["n_layer"]), n_head=int(hf["n_head"]), n_embd=int(hf["n_embd"]),
        n_inner=hf.get("n_inner"), dropout=float(hf.get("resid_pdrop", 0.0)),
        layer_norm_epsilon=float(hf.get("layer_norm_epsilon", 1e-5)), activation=_HF_ACT[act],
        tie_weights=bool(hf.get("tie_word_embeddings", True)))


def _hf_compatible(c: GPTConfig) -> bool:
    return (c.layout == "gpt2" and c.position == "learned" and c.norm == "layernorm"
            and c.activation in ("gelu", "relu") and c.bias)


def config_to_hf(c: GPTConfig) -> dict:
    """A ``config.json`` dict readable by ``transformers`` (when the layout is GPT-2's) and,
    through its ``mindtf`` entry, by :func:`config_from_hf` exactly."""
    d = {"vocab_size": c.vocab_size, "n_positions": c.block_size, "n_ctx": c.block_size,
         "n_embd": c.n_embd, "n_layer": c.n_layer, "n_head": c.n_head, "n_inner": c.n_inner,
         "activation_function": "gelu_new" if c.activation == "gelu" else c.activation,
         "resid_pdrop": c.dropout, "embd_pdrop": c.dropout, "attn_pdrop": c.dropout,
         "layer_norm_epsilon": c.layer_norm_epsilon, "tie_word_embeddings": c.tie_weights,
         "mindtf": c.to_dict()}
    if _hf_compatible(c):
        d.update({"model_type": "gpt2", "architectures": ["GPT2LMHeadModel"]})
    else:
        d["model_type"] = "mindtf-gpt"
    return d


def _normalise_names(state: Dict[str, np.ndarray], tied: bool) -> Dict[str, np.ndarray]:
    out = {}
    for key, value in state.items():
        name = key[len("transformer."):] if key.startswith("transformer.") else key
        if name.endswith(_IGNORED_SUFFIXES):
            continue
        if name == "lm_head.weight" and tied:
            continue
        if name.endswith(_CONV1D_SUFFIXES) and value.ndim == 2:
            value = value.T
        out[name] = value
    return out


def _short(items, n: int = 12) -> str:
    items = list(items)
    more = f" ... and {len(items) - n} more" if len(items) > n else ""
    return ", ".join(items[:n]) + more


def load_gpt_state(model: GPT, state: Dict[str, np.ndarray], strict: bool = True) -> None:
    """Copy a name -> array mapping (Hugging Face or mindtf names) into ``model``.

    Raises:
        CheckpointError: listing missing, unexpected and mis-shaped keys (``strict=True``).
    """
    state = _normalise_names(state, model.config.tie_weights)
    params = {p.name: p for p in model.get_parameters()}
    missing = sorted(set(params) - set(state))
    unexpected = sorted(set(state) - set(params))
    misshaped = [f"{k}: checkpoint {tuple(state[k].shape)} vs model {tuple(params[k].shape)}"
                 for k in sorted(set(params) & set(state))
                 if tuple(state[k].shape) != tuple(params[k].shape)]
    if strict and (missing or unexpected or misshaped):
        parts = []
        if missing:
            parts.append(f"missing keys ({len(missing)}): {_short(missing)}")
        if unexpected:
            parts.append(f"unexpected keys ({len(unexpected)}): {_short(unexpected)}")
        if misshaped:
            parts.append(f"mis-shaped keys ({len(misshaped)}): {_short(misshaped, 6)}")
        raise CheckpointError(
            "the checkpoint does not match this GPT configuration:\n  " + "\n  ".join(parts)
            + "\nCheck that config.json belongs to these weights (n_layer, n_embd, vocab_size, "
              "tie_word_embeddings).")
    for name, p in params.items():
        if name in state and tuple(state[name].shape) == tuple(p.shape):
            p.set_data(Tensor(np.ascontiguousarray(state[name]), dtype=p.dtype))


def load_gpt(path: Union[str, os.PathLike], **overrides) -> GPT:
    """Build a :class:`GPT` from a checkpoint directory (see the module docstring).

    ``overrides`` replace config fields, e.g. ``dropout=0.0``.
    """
    from .weights import load_state_dict

    path = Path(path)
    cfg_file = path / "config.json"
    if not cfg_file.is_file():
        raise CheckpointError(f"{cfg_file} not found: from_pretrained needs a directory with "
                              "config.json and model.safetensors or pytorch_model.bin.")
    with open(cfg_file, encoding="utf-8") as fh:
        hf = json.load(fh)
    config = config_from_hf(hf)
    if overrides:
        config = GPTConfig.from_dict({**config.to_dict(), **overrides})
    model = GPT(config)
    load_gpt_state(model, load_state_dict(path))
    model.set_train(False)
    return model


def save_gpt(model: GPT, path: Union[str, os.PathLike]) -> None:
    """Write ``config.json`` and ``model.safetensors`` (names prefixed ``transformer.`` as
    ``GPT2LMHeadModel`` expects; the tied head is not stored twice)."""
    from .weights import save_safetensors

    path = Path(path)
    path.mkdir(parents=True, exist_ok=True)
    state = {}
    for p in model.get_parameters():
        arr = p.asnumpy()
        if arr.dtype != np.float32 and np.issubdtype(arr.dtype, np.floating):
            arr = arr.astype(np.float32)
        if p.name.endswith(_CONV1D_SUFFIXES):
            arr = np.ascontiguousarray(arr.T)  # back to GPT-2's (in, out)
        key = p.name if p.name.startswith("lm_head.") else "transformer." + p.name
        state[key] = arr
    save_safetensors(state, path / "model.safetensors", metadata={"format": "pt"})
    tmp = path / "config.json.tmp"
    with open(tmp, "w", encoding="utf-8") as fh:
        json.dump(config_to_hf(model.config), fh, indent=2)
    os.replace(tmp, path / "config.json")
