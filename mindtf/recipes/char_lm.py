"""The character-level GPT recipe: ``python -m mindtf quickstart`` and ``train --task char-lm``.

::

    text (Tiny Shakespeare or a file) -> CharTokenizer -> ids (90% train / 10% validation)
        -> random windows of block_size (B, T) -> GPT + next-token cross-entropy, AdamW, cosine
        -> validation loss on every window of the validation text -> best checkpoint -> a sample

Configs and data live in :mod:`mindtf.recipes.char_lm_setup` (no MindSpore import). In a
data-parallel run (:mod:`mindtf.distributed`) the windows are drawn N x batch_size at a time, as one
process with that batch would draw them, and each worker trains on its share; rank 0 alone writes
the run's files and the sample.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, Optional

import numpy as np

from mindtf.config import write_run_config
from mindtf.data.batching import RandomLMBatches, full_lm_batches
from mindtf.decoding.gpt_sampling import generate
from mindtf.distributed import world
from mindtf.errors import ConfigError
from mindtf.models.gpt import GPT
from mindtf.models.gpt_config import GPTConfig
from mindtf.recipes.char_lm_setup import (CharLMData, load_char_text, quickstart_configs,
                                          save_char_tokenizer)
from mindtf.tokenizers import CharTokenizer
from mindtf.training.checkpoints import find_checkpoint
from mindtf.training.losses import LMLossCell
from mindtf.training.trainer import Trainer

__all__ = ["CharLMData", "quickstart_configs", "train_char_lm", "TASK"]

#: the `--task` name of this recipe (saved in config.yaml)
TASK = "char-lm"


def train_char_lm(model_cfg, train_cfg, data, fetch_kwargs: Optional[Dict[str, Any]] = None,
                  resume: bool = False, verbose: bool = True) -> Dict[str, Any]:
    """Train a character-level GPT and return a summary (val loss, sample, timings, paths).

    With ``resume`` the run continues from ``out_dir/checkpoints/latest`` (weights, optimiser,
    step, data order and RNG states), giving the same losses as an uninterrupted run."""
    t_start = time.perf_counter()
    train_text, val_text = load_char_text(data, fetch_kwargs or {})
    tok = CharTokenizer.from_text(train_text + val_text)
    model_cfg = GPTConfig.from_dict({**model_cfg.to_dict(), "vocab_size": tok.vocab_size})
    train_ids = np.array(tok.encode(train_text), dtype=np.int32)
    val_ids = np.array(tok.encode(val_text), dtype=np.int32)
    block, batch = model_cfg.block_size, train_cfg.batch_size
    for name, ids in (("training", train_ids), ("validation", val_ids)):
        if len(ids) <= block:
            raise ConfigError(f"the {name} text has {len(ids)} characters, not more than "
                              f"model.block_size={block}: use more text, a smaller block_size "
                              "or another data.val_fraction.")
    if verbose:
        print(f"data: {len(train_ids):,} training and {len(val_ids):,} validation characters, "
              f"vocabulary of {tok.vocab_size}")
    model = GPT(model_cfg)
    if verbose:
        print(f"model: GPT {model_cfg.n_layer} layers, {model_cfg.n_head} heads, "
              f"d={model_cfg.n_embd}, block {block}: "
              f"{model.num_parameters() / 1e6:.2f}M parameters")
    out_dir = Path(train_cfg.out_dir)
    here = world()  # the global batch: batch rows for each of here.size workers
    trainer = Trainer(model, LMLossCell(model, train_cfg.label_smoothing), train_cfg,
                      RandomLMBatches(train_ids, block, batch * here.size, seed=train_cfg.seed),
                      lambda: full_lm_batches(val_ids, block, batch),
                      on_checkpoint=lambda d: save_char_tokenizer(tok, d / "tokenizer.json"),
                      tokenizer_files=("tokenizer.json",))
    if resume:
        step = trainer.resume()
        if verbose:
            print(f"resumed from step {step} ({out_dir / 'checkpoints'})")
    # written once the run is known to start (a failed resume leaves the old one intact)
    if here.is_main:
        write_run_config(out_dir, {"task": TASK, "model": model_cfg.to_dict(),
                                   "train": train_cfg.to_dict(), "data": asdict(data)})
    summary = trainer.fit()
    if not here.is_main:  # the other workers of a data-parallel run are done
        return summary
    prompt = np.array([tok.encode(data.sample_prompt)], dtype=np.int32)
    sample = generate(model, prompt, data.sample_tokens, temperature=data.sample_temperature,
                      top_k=data.sample_top_k or None, seed=train_cfg.seed)
    best = find_checkpoint(out_dir)
    summary.update({"sample": tok.decode(sample[0].tolist()), "plot": str(out_dir / "loss.png"),
                    "best_checkpoint": str(best), "total_seconds": time.perf_counter() - t_start})
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2), encoding="utf-8")
    return summary
