"""mindtf — build large language models step by step on MindSpore.

Importing ``mindtf`` is cheap and side-effect free: MindSpore is imported only when you first use
something that needs it (``mindtf.GPT``, ``mindtf.setup``, ...), and nothing touches the network.

Start with :func:`mindtf.setup`, which picks the device (Ascend > GPU > CPU), the execution mode,
the seed and the CPU thread count in one call.
"""
from __future__ import annotations

import importlib
import os
from typing import TYPE_CHECKING, Any

# MindSpore reads its C++ log level once, when it is first imported: default to errors only
# (warnings about absent GPU/Ascend plugins are noise on a laptop). Set GLOG_v yourself to change
# it (4 also silences the errors that jit compilation prints in notebooks).
os.environ.setdefault("GLOG_v", "3")

from mindtf.version import __version__  # noqa: E402 (after GLOG_v on purpose)

# public name -> module that defines it (loaded on first access, PEP 562)
_LAZY = {
    # runtime
    "setup": "runtime", "RuntimeInfo": "runtime", "available_devices": "runtime",
    # nn: attention, masks, positions, layers
    "scaled_dot_product_attention": "nn.attention", "AdditiveAttention": "nn.attention",
    "MultiHeadAttention": "nn.attention", "KVCache": "nn.kv_cache",
    "padding_mask": "nn.masks", "causal_mask": "nn.masks",
    "SinusoidalPositionalEncoding": "nn.positional", "LearnedPositionalEmbedding": "nn.positional",
    "RotaryEmbedding": "nn.positional",
    "LayerNorm": "nn.layers", "RMSNorm": "nn.layers", "FeedForward": "nn.layers",
    # models
    "Transformer": "models.transformer", "TransformerConfig": "models.transformer_config",
    "GPT": "models.gpt", "GPTConfig": "models.gpt_config",
    "save_model": "models.registry", "load_model": "models.registry",
    "NgramLM": "models.ngram", "NgramConfig": "models.ngram",
    "NNLM": "models.nnlm", "NNLMConfig": "models.nnlm_config",
    # training
    "TrainConfig": "training.config", "Trainer": "training.trainer", "TrainStep": "training.step",
    "build_train_step": "training.step", "LMLossCell": "training.losses",
    "Seq2SeqLossCell": "training.losses", "cross_entropy": "training.losses",
    "AdamW": "training.optim", "WarmupCosine": "training.schedules", "Noam": "training.schedules",
    # decoding and metrics
    "generate": "decoding.gpt_sampling", "greedy_decode": "decoding.seq2seq_search",
    "beam_search": "decoding.seq2seq_search",
    "corpus_bleu": "metrics", "perplexity": "metrics", "accuracy": "metrics",
    # tokenizers
    "CharTokenizer": "tokenizers", "Vocab": "tokenizers", "WordTokenizer": "tokenizers",
    "ByteLevelBPE": "tokenizers",
    # errors
    "MindtfError": "errors", "ConfigError": "errors", "InputError": "errors",
    "Interrupted": "errors",
    "CheckpointError": "errors",
}

__all__ = ["__version__", *sorted(_LAZY)]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        value = getattr(module, name)
        globals()[name] = value
        return value
    raise AttributeError(f"module 'mindtf' has no attribute {name!r}")


def __dir__() -> list:
    return sorted(set(globals()) | set(_LAZY))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs only
    from mindtf.decoding.gpt_sampling import generate
    from mindtf.decoding.seq2seq_search import beam_search, greedy_decode
    from mindtf.errors import CheckpointError, ConfigError, InputError, Interrupted, MindtfError
    from mindtf.metrics import accuracy, corpus_bleu, perplexity
    from mindtf.models.gpt import GPT
    from mindtf.models.gpt_config import GPTConfig
    from mindtf.models.ngram import NgramConfig, NgramLM
    from mindtf.models.nnlm import NNLM
    from mindtf.models.nnlm_config import NNLMConfig
    from mindtf.models.registry import load_model, save_model
    from mindtf.models.transformer import Transformer
    from mindtf.models.transformer_config import TransformerConfig
    from mindtf.nn.attention import (AdditiveAttention, MultiHeadAttention,
                                     scaled_dot_product_attention)
    from mindtf.nn.kv_cache import KVCache
    from mindtf.nn.layers import FeedForward, LayerNorm, RMSNorm
    from mindtf.nn.masks import causal_mask, padding_mask
    from mindtf.nn.positional import (LearnedPositionalEmbedding, RotaryEmbedding,
                                      SinusoidalPositionalEncoding)
    from mindtf.runtime import RuntimeInfo, available_devices, setup
    from mindtf.tokenizers import ByteLevelBPE, CharTokenizer, Vocab, WordTokenizer
    from mindtf.training.config import TrainConfig
    from mindtf.training.losses import LMLossCell, Seq2SeqLossCell, cross_entropy
    from mindtf.training.optim import AdamW
    from mindtf.training.schedules import Noam, WarmupCosine
    from mindtf.training.step import TrainStep, build_train_step
    from mindtf.training.trainer import Trainer
