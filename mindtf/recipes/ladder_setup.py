"""The perplexity ladder's settings: which rungs, how each neural rung trains, what is scored.

Nothing here imports MindSpore, so ``python -m mindtf ladder --help`` is instant. The recipe
itself is :mod:`mindtf.recipes.ladder`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import List, Optional, Tuple

from mindtf.errors import check_choice, check_range
from mindtf.models.gpt_config import GPTConfig
from mindtf.models.nnlm_config import NNLMConfig
from mindtf.recipes.char_lm_setup import CharLMData, quickstart_configs
from mindtf.training.config import TrainConfig

__all__ = ["LadderConfig", "LadderPlan", "GPTRung", "ladder_configs", "nnlm_configs",
           "long_gpt_configs"]

#: an n-gram rung's name by order
ORDER_NAMES = {1: "unigram", 2: "bigram", 3: "trigram"}


@dataclass
class LadderConfig:
    """What the ladder measures (the models' own settings are in :class:`LadderPlan`)."""

    ngram_orders: Tuple[int, ...] = (1, 2, 3, 5)  # the n-gram rungs, by order n
    ngram_smoothing: str = "kneser-ney"  # smoothing of every n-gram rung: kneser-ney | add-k
    nnlm_block: int = 64  # length of the NNLM's training and scoring windows
    gpt_run: str = "runs/quickstart"  # the quickstart GPT's run: reused if it holds a checkpoint
    long_gpt_run: Optional[str] = "runs/ladder/gpt_long"  # the longer GPT's run (None: no rung)
    gpt_context: float = 0.875  # a GPT scores each token with >= this share of its block before it
    train_tokens: Optional[int] = None  # use only the first N training tokens (None: all)
    val_tokens: Optional[int] = None  # score only the first N validation tokens (None: all)
    out_dir: str = "runs/ladder"  # where ladder.json and ladder.png go (and the NNLM's run)

    def __post_init__(self) -> None:
        name = f"{type(self).__name__}."
        self.ngram_orders = tuple(self.ngram_orders)
        for order in self.ngram_orders:
            check_range(name + "ngram_orders[]", order, 1, 32, integer=True)
        check_choice(name + "ngram_smoothing", self.ngram_smoothing, ("kneser-ney", "add-k"))
        check_range(name + "nnlm_block", self.nnlm_block, 1, integer=True)
        check_range(name + "gpt_context", self.gpt_context, 0, 1, lo_open=True,
                    fix="It is a share of the block, e.g. 0.875: 56 of 64 characters.")
        for field in ("train_tokens", "val_tokens"):
            check_range(name + field, getattr(self, field), 100, integer=True, optional=True)


@dataclass
class GPTRung:
    """One GPT on the ladder: scored from ``train.out_dir`` if a checkpoint is there, trained
    there with ``model`` and ``train`` first if not."""

    name: str  # its name in the table, e.g. "GPT (quickstart)"
    model: GPTConfig  # vocab_size is set from the text
    train: TrainConfig  # train.out_dir is the run folder


@dataclass
class LadderPlan:
    """Everything one ladder run needs."""

    ladder: LadderConfig
    nnlm: NNLMConfig  # the NNLM (vocab_size is set from the tokenizer)
    nnlm_train: TrainConfig  # how the NNLM trains (its out_dir: OUT/nnlm)
    gpts: List[GPTRung]  # the GPT rungs, scored (and trained if need be) in this order
    data: CharLMData  # the text: Tiny Shakespeare, 90 % / 10 %, as the quickstart


def nnlm_configs(out_dir: str = "runs/ladder/nnlm") -> tuple:
    """The NNLM rung, ``(NNLMConfig, TrainConfig)``: 8 previous characters, 32-wide features,
    256 tanh units, direct connections (101k parameters); 3000 steps of 64 windows of 64
    characters (12M predictions, ~12 passes over the text), AdamW 3e-3 -> 3e-4 cosine with 100
    warmup steps, weight decay 0.1 (on C as well, as in the paper), compiled. About 2.5 minutes
    on 2 cores; 1500 steps gave 1.76 nats on quickstart-style windows."""
    model = NNLMConfig(vocab_size=65, context=8, n_embd=32, n_hidden=256, direct=True)
    train = TrainConfig(max_steps=3000, batch_size=64, lr=3e-3, min_lr=3e-4, warmup_steps=100,
                        weight_decay=0.1, eval_interval=1000, log_interval=50, out_dir=out_dir,
                        mode="graph")
    return model, train


def long_gpt_configs(out_dir: str = "runs/ladder/gpt_long") -> tuple:
    """The ladder's longer GPT, ``(GPTConfig, TrainConfig)``: the quickstart's model (4 layers,
    4 heads, d=128) with a 128-character context, trained on 4 times as many characters --
    3000 steps of 24 windows of 128 (9.2M predictions, ~9 passes over the text), the
    quickstart's optimiser and schedule otherwise. About 15 minutes on 2 quiet cores."""
    model, train, _ = quickstart_configs()
    model = dataclasses.replace(model, block_size=128)
    train = dataclasses.replace(train, max_steps=3000, batch_size=24, eval_interval=500,
                                out_dir=out_dir)
    return model, train


def ladder_configs(out_dir: str = "runs/ladder", gpt_run: Optional[str] = None,
                   long_gpt_run: Optional[str] = None, long_gpt: bool = True,
                   smoke: bool = False, seed: int = 0, progress: bool = True) -> LadderPlan:
    """The ladder of the README: the n-grams, the NNLM of :func:`nnlm_configs`, the quickstart
    GPT (:func:`~mindtf.recipes.char_lm_setup.quickstart_configs`, in ``gpt_run`` -- default
    ``runs/quickstart``) and the longer GPT of :func:`long_gpt_configs` (in ``long_gpt_run`` --
    default ``OUT/gpt_long``; ``long_gpt=False`` leaves it out). A GPT whose run folder holds a
    checkpoint is scored as it is, otherwise it is trained there first.

    ``smoke`` shrinks everything for tests (seconds, on the same data): 200k training and 5k
    validation characters, 30 op-by-op steps of a smaller NNLM, and one-layer GPTs trained for
    30 and 40 steps in ``OUT/gpt`` and ``OUT/gpt_long`` (``runs/quickstart`` is never touched)."""
    nnlm, nnlm_train = nnlm_configs(str(Path(out_dir) / "nnlm"))
    gpt, gpt_train, data = quickstart_configs()
    long_run = long_gpt_run or str(Path(out_dir) / "gpt_long")
    long_model, long_train = long_gpt_configs(long_run)
    ladder = LadderConfig(gpt_run=gpt_run or "runs/quickstart",
                          long_gpt_run=long_run if long_gpt else None, out_dir=str(out_dir))
    if smoke:
        ladder = dataclasses.replace(ladder, gpt_run=gpt_run or str(Path(out_dir) / "gpt"),
                                     train_tokens=200_000, val_tokens=5_000, gpt_context=0.75)
        nnlm = dataclasses.replace(nnlm, n_hidden=64)
        nnlm_train = dataclasses.replace(nnlm_train, max_steps=30, batch_size=16, warmup_steps=5,
                                         eval_interval=30, log_interval=10, mode="pynative")
        tiny = dict(n_layer=1, n_head=2, n_embd=32, block_size=32)
        gpt, long_model = (dataclasses.replace(m, **tiny) for m in (gpt, long_model))
        small = dict(warmup_steps=5, log_interval=10, mode="pynative", eval_max_batches=2,
                     batch_size=12)
        gpt_train = dataclasses.replace(gpt_train, max_steps=30, eval_interval=30, **small)
        long_train = dataclasses.replace(long_train, max_steps=40, eval_interval=40, **small)
        data = dataclasses.replace(data, sample_tokens=0)
    gpts = [GPTRung("GPT (quickstart)", gpt, dataclasses.replace(
        gpt_train, out_dir=ladder.gpt_run, seed=seed, progress=progress))]
    if ladder.long_gpt_run:
        gpts.append(GPTRung("GPT (longer)", long_model, dataclasses.replace(
            long_train, out_dir=ladder.long_gpt_run, seed=seed, progress=progress)))
    nnlm_train = dataclasses.replace(nnlm_train, seed=seed, progress=progress)
    return LadderPlan(ladder, nnlm, nnlm_train, gpts, data)
