"""The perplexity ladder's settings: which rungs, how each neural rung trains, what is scored.

Nothing here imports MindSpore, so ``python -m mindtf ladder --help`` is instant. The recipe
itself is :mod:`mindtf.recipes.ladder`.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Tuple

from mindtf.errors import check_choice, check_range
from mindtf.models.gpt_config import GPTConfig
from mindtf.models.nnlm_config import NNLMConfig
from mindtf.recipes.char_lm_setup import CharLMData, quickstart_configs
from mindtf.training.config import TrainConfig

__all__ = ["LadderConfig", "LadderPlan", "ladder_configs", "nnlm_configs"]

#: an n-gram rung's name by order
ORDER_NAMES = {1: "unigram", 2: "bigram", 3: "trigram"}


@dataclass
class LadderConfig:
    """What the ladder measures (the models' own settings are in :class:`LadderPlan`)."""

    ngram_orders: Tuple[int, ...] = (1, 2, 3, 5)  # the n-gram rungs, by order n
    ngram_smoothing: str = "kneser-ney"  # smoothing of every n-gram rung: kneser-ney | add-k
    nnlm_block: int = 64  # length of the NNLM's training and scoring windows
    gpt_run: str = "runs/quickstart"  # the GPT's run folder: reused if it holds a checkpoint
    gpt_context: int = 56  # the GPT scores each token with >= this many previous ones (<= block)
    train_tokens: Optional[int] = None  # use only the first N training tokens (None: all)
    val_tokens: Optional[int] = None  # score only the first N validation tokens (None: all)
    out_dir: str = "runs/ladder"  # where ladder.json and ladder.png go (and the NNLM's run)

    def __post_init__(self) -> None:
        name = f"{type(self).__name__}."
        self.ngram_orders = tuple(self.ngram_orders)
        for order in self.ngram_orders:
            check_range(name + "ngram_orders[]", order, 1, 32, integer=True)
        check_choice(name + "ngram_smoothing", self.ngram_smoothing, ("kneser-ney", "add-k"))
        for field in ("nnlm_block", "gpt_context"):
            check_range(name + field, getattr(self, field), 1, integer=True)
        for field in ("train_tokens", "val_tokens"):
            check_range(name + field, getattr(self, field), 100, integer=True, optional=True)


@dataclass
class LadderPlan:
    """Everything one ladder run needs."""

    ladder: LadderConfig
    nnlm: NNLMConfig  # the NNLM (vocab_size is set from the tokenizer)
    nnlm_train: TrainConfig  # how the NNLM trains (its out_dir: OUT/nnlm)
    gpt: GPTConfig  # the GPT trained when ladder.gpt_run holds no checkpoint
    gpt_train: TrainConfig  # how that GPT trains (its out_dir: ladder.gpt_run)
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


def ladder_configs(out_dir: str = "runs/ladder", gpt_run: Optional[str] = None,
                   smoke: bool = False, seed: int = 0, progress: bool = True) -> LadderPlan:
    """The ladder of the README: the n-grams, the NNLM of :func:`nnlm_configs` and the quickstart
    GPT (:func:`~mindtf.recipes.char_lm_setup.quickstart_configs`, trained in ``gpt_run`` --
    default ``runs/quickstart`` -- unless a checkpoint is there).

    ``smoke`` shrinks everything for tests (seconds, on the same data): 200k training and 5k
    validation characters, 30 op-by-op steps of a smaller NNLM, and a one-layer GPT trained for
    30 steps in ``OUT/gpt`` (``runs/quickstart`` is never touched)."""
    nnlm, nnlm_train = nnlm_configs(str(Path(out_dir) / "nnlm"))
    gpt, gpt_train, data = quickstart_configs()
    ladder = LadderConfig(gpt_run=gpt_run or "runs/quickstart", out_dir=str(out_dir))
    if smoke:
        ladder = dataclasses.replace(ladder, gpt_run=gpt_run or str(Path(out_dir) / "gpt"),
                                     train_tokens=200_000, val_tokens=5_000, gpt_context=24)
        nnlm = dataclasses.replace(nnlm, n_hidden=64)
        nnlm_train = dataclasses.replace(nnlm_train, max_steps=30, batch_size=16, warmup_steps=5,
                                         eval_interval=30, log_interval=10, mode="pynative")
        gpt = dataclasses.replace(gpt, n_layer=1, n_head=2, n_embd=32, block_size=32)
        gpt_train = dataclasses.replace(gpt_train, max_steps=30, warmup_steps=5,
                                        eval_interval=30, log_interval=10, mode="pynative",
                                        eval_max_batches=2)
        data = dataclasses.replace(data, sample_tokens=0)
    gpt_train = dataclasses.replace(gpt_train, out_dir=ladder.gpt_run, seed=seed,
                                    progress=progress)
    nnlm_train = dataclasses.replace(nnlm_train, seed=seed, progress=progress)
    return LadderPlan(ladder, nnlm, nnlm_train, gpt, gpt_train, data)
