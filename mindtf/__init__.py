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

__version__ = "0.1.0"

# public name -> module that defines it (loaded on first access, PEP 562)
_LAZY = {
    # runtime
    "setup": "runtime", "RuntimeInfo": "runtime", "available_devices": "runtime",
    # attention and masks
    "scaled_dot_product_attention": "attention", "AdditiveAttention": "attention",
    "MultiHeadAttention": "attention", "KVCache": "attention",
    "padding_mask": "masks", "causal_mask": "masks",
    # building blocks
    "SinusoidalPositionalEncoding": "positional", "LearnedPositionalEmbedding": "positional",
    "RotaryEmbedding": "positional",
    "LayerNorm": "layers", "RMSNorm": "layers", "FeedForward": "layers",
    # models
    "Transformer": "transformer", "TransformerConfig": "transformer",
    "GPT": "gpt", "GPTConfig": "gpt",
    # training
    "TrainConfig": "train", "Trainer": "train", "TrainStep": "train", "LMLossCell": "train",
    "Seq2SeqLossCell": "train", "build_train_step": "train", "AdamW": "optim",
    "WarmupCosine": "schedules", "Noam": "schedules", "cross_entropy": "losses",
    # decoding and metrics
    "generate": "generation", "greedy_decode": "decoding", "beam_search": "decoding",
    "corpus_bleu": "metrics", "perplexity": "metrics", "accuracy": "metrics",
    # tokenizers
    "CharTokenizer": "tokenizers", "Vocab": "tokenizers", "WordTokenizer": "tokenizers",
    "ByteLevelBPE": "tokenizers",
    # checkpoints
    "save_model": "checkpoint", "load_model": "checkpoint",
    # errors
    "MindtfError": "errors", "ConfigError": "errors", "InputError": "errors",
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
    from .attention import (AdditiveAttention, KVCache, MultiHeadAttention,
                            scaled_dot_product_attention)
    from .errors import CheckpointError, ConfigError, InputError, MindtfError
    from .checkpoint import load_model, save_model
    from .decoding import beam_search, greedy_decode
    from .generation import generate
    from .gpt import GPT, GPTConfig
    from .losses import cross_entropy
    from .metrics import accuracy, corpus_bleu, perplexity
    from .optim import AdamW
    from .schedules import Noam, WarmupCosine
    from .tokenizers import ByteLevelBPE, CharTokenizer, Vocab, WordTokenizer
    from .train import (LMLossCell, Seq2SeqLossCell, TrainConfig, Trainer, TrainStep,
                        build_train_step)
    from .layers import FeedForward, LayerNorm, RMSNorm
    from .masks import causal_mask, padding_mask
    from .positional import LearnedPositionalEmbedding, RotaryEmbedding, SinusoidalPositionalEncoding
    from .runtime import RuntimeInfo, available_devices, setup
    from .transformer import Transformer, TransformerConfig
