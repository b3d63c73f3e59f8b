"""The character-level LM recipe's settings and data: configs, the text, the tokenizer file.

Nothing here imports MindSpore, so the CLI can read configs and print help quickly.
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

from mindtf.data import load_tinyshakespeare
from mindtf.decoding import MAX_NEW_TOKENS
from mindtf.errors import CheckpointError, ConfigError, check_choice, check_range
from mindtf.models.gpt_config import GPTConfig
from mindtf.tokenizers import CharTokenizer
from mindtf.training.config import TrainConfig

__all__ = ["CharLMData", "quickstart_configs", "load_char_text", "load_tokenizer",
           "save_char_tokenizer"]


@dataclass
class CharLMData:
    """Where the text of a character-level LM comes from."""

    dataset: str = "tinyshakespeare"  # a registry name, or "file"
    text_file: Optional[str] = None  # used when dataset == "file"
    val_fraction: float = 0.1  # the last fraction of the text used for validation
    sample_prompt: str = "\n"  # prompt of the sample printed at the end
    sample_tokens: int = 300  # characters in that sample
    sample_temperature: float = 0.8  # sampling temperature of that sample
    sample_top_k: int = 0  # 0 = no top-k filtering

    def __post_init__(self) -> None:
        name = f"{type(self).__name__}."
        check_choice(name + "dataset", self.dataset, ("tinyshakespeare", "file"),
                     fix="For your own text use dataset='file' with text_file=PATH.")
        if self.dataset == "file" and not self.text_file:
            raise ConfigError(f"{name}dataset='file' needs text_file: the path of a UTF-8 text "
                              "file (--data.text_file PATH).")
        check_range(name + "val_fraction", self.val_fraction, 0, 1, lo_open=True, hi_open=True,
                    fix="It is the share of the text kept for validation, e.g. 0.1.")
        check_range(name + "sample_tokens", self.sample_tokens, 0, MAX_NEW_TOKENS, integer=True)
        check_range(name + "sample_temperature", self.sample_temperature, 0,
                    fix="0 is greedy decoding.")
        check_range(name + "sample_top_k", self.sample_top_k, 0, integer=True,
                    fix="0 turns top-k filtering off.")


def quickstart_configs() -> tuple:
    """nanoGPT's Shakespeare-char CPU settings (4 layers, 4 heads, d=128, block 64, batch 12,
    2000 steps, cosine with 100 warmup steps, AdamW(0.9, 0.99), wd 0.1, clip 1, no dropout) with a
    peak learning rate of 2e-3 -> 2e-4 instead of nanoGPT's 1e-3 -> 1e-4: measured on this
    0.8M-parameter model, whole-validation-set loss 1.78 vs 1.88 after 2000 steps (seed 0)."""
    model = GPTConfig(vocab_size=65, block_size=64, n_layer=4, n_head=4, n_embd=128, dropout=0.0)
    train = TrainConfig(max_steps=2000, batch_size=12, lr=2e-3, min_lr=2e-4, warmup_steps=100,
                        beta2=0.99, weight_decay=0.1, grad_clip=1.0, eval_interval=500,
                        log_interval=10, out_dir="runs/quickstart", mode="graph")
    return model, train, CharLMData()


def load_char_text(data: CharLMData, fetch_kwargs: Dict[str, Any]) -> tuple:
    """``(training text, validation text)`` of ``data``."""
    if data.dataset == "tinyshakespeare":
        return load_tinyshakespeare(data.val_fraction, **fetch_kwargs)
    path = Path(data.text_file)
    if not path.is_file():
        raise ConfigError(f"CharLMData.text_file={data.text_file!r} is not a file: give the path "
                          "of a UTF-8 text file (--data.text_file PATH).")
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{path} is not UTF-8 text (byte {exc.start}): convert it, e.g. "
                          f"iconv -t UTF-8 {path} > text.txt.") from None
    cut = int(len(text) * (1 - data.val_fraction))
    return text[:cut], text[cut:]


def load_tokenizer(path):
    """Read the ``tokenizer.json`` saved next to a checkpoint (char, word or BPE)."""
    path = Path(path)
    file = path / "tokenizer.json" if path.is_dir() else path
    try:
        meta = json.loads(file.read_text(encoding="utf-8"))
        kind = meta.get("mindtf_tokenizer", "char")
        if kind == "char":
            return CharTokenizer.load(file)
    except (OSError, ValueError, KeyError, TypeError, AttributeError) as exc:
        raise CheckpointError(f"{file} is not a tokenizer file written by mindtf ({exc}); use "
                              "the one the training run saved next to the weights.") from None
    raise CheckpointError(f"unknown tokenizer kind {kind!r} in {file}")


def save_char_tokenizer(tok, path: Path) -> None:
    """Write ``tokenizer.json`` with the kind marker :func:`load_tokenizer` reads."""
    tok.save(path)
    meta = json.loads(path.read_text(encoding="utf-8"))
    meta["mindtf_tokenizer"] = "char"
    path.write_text(json.dumps(meta, ensure_ascii=False), encoding="utf-8")
