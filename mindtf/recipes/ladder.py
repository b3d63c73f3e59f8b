"""The perplexity ladder: one text, one tokenizer, one table from a unigram model to a GPT.

::

    Tiny Shakespeare -> CharTokenizer -> training ids (90 %) | validation ids (10 %)  (quickstart's)
      n-gram rungs (orders 1, 2, 3, 5; Kneser-Ney)  counted on the training ids ──┐
      NNLM (Bengio et al. 2003)  Trainer + LMLossCell + RandomLMBatches, compiled  ├─> scored on
      GPTs (quickstart's, longer)  RUN/checkpoints/best, or trained there first ───┘   the same
          validation tokens -> table (cross-entropy, perplexity, seconds), ladder.json, ladder.png

Every rung scores the same targets: each validation token after the first, given the tokens
before it -- as many as the model can use (n-1 for an n-gram model and the NNLM; for a GPT at
least the share ``gpt_context`` of its ``block_size``, with windows that overlap,
:func:`sliding_lm_batches`). The quickstart's own "validation loss" scores non-overlapping
windows, where a window's first tokens see little context; ``ladder.json`` keeps that number too.
Configs: :mod:`mindtf.recipes.ladder_setup` (no MindSpore import).
"""
from __future__ import annotations

import dataclasses
import datetime
import json
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

import numpy as np

from mindtf.data.batching import RandomLMBatches, full_lm_batches
from mindtf.errors import CheckpointError, ConfigError
from mindtf.metrics import perplexity
from mindtf.models.ngram import NgramConfig, NgramLM
from mindtf.models.nnlm import NNLM
from mindtf.models.registry import load_model
from mindtf.recipes.char_lm import train_char_lm
from mindtf.recipes.char_lm_setup import load_char_text, load_tokenizer
from mindtf.recipes.ladder_setup import ORDER_NAMES, GPTRung, LadderPlan, ladder_configs
from mindtf.runtime import cpu_name, execution_mode, seed_all
from mindtf.tokenizers import CharTokenizer
from mindtf.training.checkpoints import find_checkpoint, read_trainer_state
from mindtf.training.losses import LMLossCell
from mindtf.training.step import EvalStep, evaluate
from mindtf.training.trainer import Trainer

__all__ = ["run_ladder", "ladder_configs", "sliding_lm_batches", "score_lm", "format_table",
           "plot_ladder", "cpu_name"]

EVAL_BATCH = 64  # windows per evaluation batch


def sliding_lm_batches(ids: np.ndarray, block: int, context: int, batch: int = EVAL_BATCH
                       ) -> Iterator[Tuple[np.ndarray, np.ndarray]]:
    """Windows ``(x, y)`` of ``(batch, block)`` that score every token of ``ids`` after the first
    exactly once, each with at least ``min(context, its position)`` tokens before it.

    Window ``i`` starts at ``i * (block - context + 1)``; after the first window only its last
    ``block - context + 1`` targets count, the others are ``-100`` (ignored by the loss), as are
    the padding past the end and the rows that fill the last batch (one shape: one graph)."""
    if not 1 <= context <= block:
        raise ConfigError(f"context={context} must be between 1 and block={block}.")
    ids = np.asarray(ids, np.int32)
    n = len(ids)
    stride = block - context + 1
    n_windows = 1 + -(-max(n - 1 - block, 0) // stride)                   # ceil
    starts = np.arange(n_windows)[:, None] * stride                        # (W, 1)
    offsets = np.arange(block)[None, :]                                    # (1, T)
    padded = np.concatenate([ids, np.zeros(block + 1, np.int32)])
    x, y = padded[starts + offsets], padded[starts + offsets + 1]          # (W, T) each
    scored = (starts + offsets + 1 <= n - 1) & ((starts == 0) | (offsets >= context - 1))
    y = np.where(scored, y, -100).astype(np.int32)
    for first in range(0, n_windows, batch):
        xb, yb = x[first:first + batch], y[first:first + batch]
        if len(xb) < batch:
            fill = batch - len(xb)
            xb = np.concatenate([xb, np.zeros((fill, block), np.int32)])
            yb = np.concatenate([yb, np.full((fill, block), -100, np.int32)])
        yield xb, yb


def score_lm(model, ids: np.ndarray, block: int, context: int, mode: str = "graph",
             batches=None) -> Dict[str, float]:
    """Mean cross-entropy (nats) of a ``(B, T) -> (B, T, V)`` model on ``ids`` through
    :func:`sliding_lm_batches` (or the given ``batches``): ``{"loss", "ppl", "tokens"}``."""
    model.set_train(False)
    with execution_mode(mode):
        return evaluate(EvalStep(LMLossCell(model)),
                        batches if batches is not None else sliding_lm_batches(ids, block,
                                                                               context))


def _row(name: str, kind: str, context: str, ce: float, size: int, train_s: Optional[float],
         eval_s: float, **extra: Any) -> Dict[str, Any]:
    """One rung; ``context``: how many previous tokens it sees, ``size``: n-grams or
    parameters."""
    return {"name": name, "kind": kind, "context": context, "cross_entropy": float(ce),
            "perplexity": perplexity(ce), "size": int(size),
            "train_seconds": None if train_s is None else float(train_s),
            "eval_seconds": float(eval_s), **extra}


def _ngram_rung(order: int, smoothing: str, vocab: int, train_ids, val_ids) -> Dict[str, Any]:
    t0 = time.perf_counter()
    model = NgramLM(NgramConfig(vocab, order, smoothing)).fit(train_ids)
    t1 = time.perf_counter()
    ce = model.cross_entropy(val_ids)
    return _row(ORDER_NAMES.get(order, f"{order}-gram"), f"counts, {smoothing}", str(order - 1),
                ce, model.num_ngrams[-1], t1 - t0, time.perf_counter() - t1, order=order,
                tokens=len(val_ids) - 1)


def _nnlm_rung(plan: LadderPlan, vocab: int, train_ids, val_ids, verbose: bool):
    cfg = dataclasses.replace(plan.nnlm, vocab_size=vocab)
    train_cfg, block = plan.nnlm_train, plan.ladder.nnlm_block
    t0 = time.perf_counter()
    np.random.seed(train_cfg.seed)  # the initial weights
    model = NNLM(cfg)
    if verbose:
        print(f"NNLM: {cfg.context} previous tokens, m={cfg.n_embd}, h={cfg.n_hidden}, direct="
              f"{cfg.direct}: {model.num_parameters():,} parameters, {train_cfg.max_steps} "
              f"steps of {train_cfg.batch_size} x {block} ({train_cfg.mode})")
    trainer = Trainer(model, LMLossCell(model), train_cfg,
                      RandomLMBatches(train_ids, block, train_cfg.batch_size,
                                      seed=train_cfg.seed),
                      lambda: full_lm_batches(val_ids, block, train_cfg.batch_size))
    summary = trainer.fit()
    best = find_checkpoint(train_cfg.out_dir)
    t1 = time.perf_counter()
    score = score_lm(load_model(best), val_ids, block, cfg.context, train_cfg.mode)
    return _row("NNLM", "network, Bengio et al. 2003", str(cfg.context), score["loss"],
                model.num_parameters(), t1 - t0, time.perf_counter() - t1,
                steps=summary["steps"], checkpoint=str(best), config=cfg.to_dict(),
                tokens=score["tokens"])


def _gpt_rung(plan: LadderPlan, rung: GPTRung, tok: CharTokenizer, val_ids, fetch_kwargs,
              verbose: bool):
    run = Path(rung.train.out_dir)
    t0 = time.perf_counter()
    try:
        best, trained = find_checkpoint(run), False
    except CheckpointError:
        if verbose:
            print(f"{rung.name}: no checkpoint in {run}: training it there "
                  f"({rung.train.max_steps} steps of {rung.train.batch_size} x "
                  f"{rung.model.block_size} characters)")
        seed_all(rung.train.seed)  # the same first weights whatever ran before
        train_char_lm(rung.model, rung.train, plan.data, fetch_kwargs, verbose=verbose)
        best, trained = find_checkpoint(run), True
    if list(load_tokenizer(best).chars) != list(tok.chars):
        raise ConfigError(f"{best} was trained with another character vocabulary than this "
                          f"text's: pass another run with one trained on {plan.data.dataset}, "
                          "or move that folder away to train one.")
    t1 = time.perf_counter()
    model = load_model(best)
    block = model.config.block_size
    context = max(1, int(plan.ladder.gpt_context * block))
    score = score_lm(model, val_ids, block, context, rung.train.mode)
    windows = score_lm(model, val_ids, block, context, rung.train.mode,
                       batches=full_lm_batches(val_ids, block, EVAL_BATCH))
    t2 = time.perf_counter()
    try:
        steps = read_trainer_state(best)["step"]
    except CheckpointError:
        steps = None
    train_s = t1 - t0
    if not trained:  # the training time the run recorded, if it did
        try:
            train_s = json.loads((run / "summary.json").read_text(encoding="utf-8"))["seconds"]
        except (OSError, ValueError, KeyError, TypeError):
            train_s = None
    return _row(rung.name, "network, Transformer", f"{context}-{block - 1}",
                score["loss"], model.num_parameters(), train_s, t2 - t1, steps=steps,
                checkpoint=str(best), reused=not trained, tokens=score["tokens"],
                cross_entropy_windows=windows["loss"])


def run_ladder(plan: Optional[LadderPlan] = None, fetch_kwargs: Optional[Dict[str, Any]] = None,
               verbose: bool = True) -> Dict[str, Any]:
    """Measure every rung of ``plan`` (default: :func:`ladder_configs`), print the table and
    write ``OUT/ladder.json`` and ``OUT/ladder.png``; returns what ``ladder.json`` holds.

    Call :func:`mindtf.setup` first (as ``python -m mindtf ladder`` does): a GPT trained here
    then starts from the weights ``python -m mindtf quickstart`` starts from."""
    plan = plan or ladder_configs()
    lad = plan.ladder
    out = Path(lad.out_dir)
    out.mkdir(parents=True, exist_ok=True)
    t_start = time.perf_counter()
    train_text, val_text = load_char_text(plan.data, fetch_kwargs or {})
    tok = CharTokenizer.from_text(train_text + val_text)  # as train_char_lm builds it
    train_ids = np.array(tok.encode(train_text), np.int32)[:lad.train_tokens]
    val_ids = np.array(tok.encode(val_text), np.int32)[:lad.val_tokens]
    if verbose:
        print(f"data: {len(train_ids):,} training and {len(val_ids):,} validation characters, "
              f"vocabulary of {tok.vocab_size}")
    gpts = [_gpt_rung(plan, rung, tok, val_ids, fetch_kwargs or {}, verbose)
            for rung in plan.gpts]
    rows: List[Dict[str, Any]] = []
    for order in lad.ngram_orders:
        rows.append(_ngram_rung(order, lad.ngram_smoothing, tok.vocab_size, train_ids, val_ids))
        if verbose:
            print(format_table(rows[-1:], header=not rows[:-1]))
    rows.append(_nnlm_rung(plan, tok.vocab_size, train_ids, val_ids, verbose))
    rows.extend(gpts)
    result = {"rungs": rows, "validation_tokens": int(len(val_ids) - 1),
              "training_tokens": int(len(train_ids)), "vocab_size": tok.vocab_size,
              "dataset": plan.data.dataset, "ladder": dataclasses.asdict(lad),
              "date": datetime.date.today().isoformat(), "cpu": cpu_name(),
              "seconds": time.perf_counter() - t_start}
    (out / "ladder.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    result["plot"] = str(plot_ladder(rows, out / "ladder.png"))
    if verbose:
        print()
        print(format_table(rows))
        print(f"\n{out / 'ladder.json'}   {result['plot']}")
    return result


def format_table(rows: List[Dict[str, Any]], header: bool = True) -> str:
    """The rungs as a Markdown table (what the README quotes)."""
    lines = ["| model | kind | context | size | validation CE (nats) | perplexity | train s "
             "| eval s |", "|---|---|---:|---:|---:|---:|---:|---:|"] if header else []
    for r in rows:
        size = f"{r['size']:,} {'n-grams' if r['kind'].startswith('counts') else 'parameters'}"
        train = "n/a" if r["train_seconds"] is None else _seconds(r["train_seconds"])
        if r.get("reused"):
            train += " (earlier run)"
        lines.append(f"| {r['name']} | {r['kind']} | {r['context']} | {size} | "
                     f"{r['cross_entropy']:.4f} | {r['perplexity']:.2f} | {train} | "
                     f"{_seconds(r['eval_seconds'])} |")
    return "\n".join(lines)


def _seconds(s: float) -> str:
    return f"{s:.2f}" if s < 10 else f"{s:.0f}"


def plot_ladder(rows: List[Dict[str, Any]], out_png) -> Path:
    """A bar per rung: validation cross-entropy, with the perplexity written on it -> PNG."""
    from matplotlib.figure import Figure  # no pyplot: no backend to choose, nothing shown

    fig = Figure(figsize=(7, 3.6))
    ax = fig.subplots()
    names = [r["name"] for r in rows]
    ce = [r["cross_entropy"] for r in rows]
    colors = ["tab:blue" if r["kind"].startswith("counts") else "tab:orange" for r in rows]
    bars = ax.bar(names, ce, color=colors)
    for bar, r in zip(bars, rows):
        ax.text(bar.get_x() + bar.get_width() / 2, bar.get_height(),
                f"{r['cross_entropy']:.2f}\nppl {r['perplexity']:.1f}", ha="center",
                va="bottom", fontsize=8)
    ax.set_ylabel("validation cross-entropy (nats / token)")
    ax.set_ylim(0, max(ce) * 1.2)
    ax.set_title("The perplexity ladder (blue: counts, orange: networks)")
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    out = Path(out_png)
    fig.savefig(out, dpi=110)
    return out
