"""The Multi30k German -> English translation recipe (``mindtf train --task translation``).

::

    Multi30k train (29,000 pairs) --tokenize--> word vocabularies (min_freq 2, built on train only)
                                                or one joint byte-level BPE (data.tokenizer bpe)
        --> ids --> length-bucketed, seeded batches, lengths padded to a multiple of 8
                    (train.batch_size sentences, or data.batch_tokens padded tokens)
        --> Transformer + label-smoothed cross-entropy (0.1), AdamW, warmup+cosine (or Noam)
        --> validation loss on the whole val split (1,014 pairs) every eval_interval steps
        --> best checkpoint --> beam search on the whole test2016 split (1,000 sentences)
        --> detokenise --> sacreBLEU score + signature (bleu.json)

Everything the ``translate`` command needs is saved next to the weights in every checkpoint:
``src_vocab.json`` and ``tgt_vocab.json`` (words) or ``vocab.json`` and ``merges.txt`` (BPE), and
``translation.json`` (tokenisation and decoding settings).

    >>> model_cfg, train_cfg, data_cfg = translation_configs()
    >>> summary = train_translation(model_cfg, train_cfg, data_cfg)   # doctest: +SKIP
    >>> summary["bleu"], summary["bleu_signature"]                     # doctest: +SKIP

The configs and data preparation live in :mod:`mindtf.recipes.translation_setup` (no MindSpore).
In a data-parallel run (:mod:`mindtf.distributed`) the batches hold N x batch_size pairs, each
worker trains on its share, and rank 0 alone writes the run's files and computes BLEU.
"""
from __future__ import annotations

import json
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Dict, List, Optional, Sequence, Tuple

from mindtf.config import write_run_config
from mindtf.data.batching import EpochBatches
from mindtf.decoding.seq2seq_search import translate
from mindtf.distributed import world
from mindtf.errors import CheckpointError, ConfigError
from mindtf.metrics import corpus_bleu, perplexity
from mindtf.models.registry import load_model
from mindtf.models.transformer import Transformer
from mindtf.models.transformer_config import TransformerConfig
from mindtf.nn.layers import count_parameters
from mindtf.recipes.translation_setup import (SETTINGS_FILE, TranslationBatches,
                                              TranslationData, TranslationVocabs, build_vocabs,
                                              load_pairs, numericalise, text_functions,
                                              translation_configs)
from mindtf.recipes.translation_vocabs import load_vocabs
from mindtf.training.checkpoints import check_tokenizer_files, find_checkpoint
from mindtf.training.losses import Seq2SeqLossCell
from mindtf.training.trainer import Trainer
from mindtf.weights import read_state

__all__ = ["TranslationData", "translation_configs", "train_translation", "load_translator",
           "translate_sentences"]

#: the `--task` name of this recipe (saved in config.yaml)
TASK = "translation"


# --------------------------------------------------------------------------- decoding
def translate_sentences(model, sentences: Sequence[str], src_vocab, tgt_vocab, *,
                        lowercase: bool = True, beam_size: int = 4, length_penalty: float = 0.6,
                        batch_size: int = 64, max_len: Optional[int] = None,
                        max_src_len: Optional[int] = None) -> List[str]:
    """Translate raw sentences with :func:`mindtf.decoding.seq2seq_search.translate` (batched
    greedy or beam search, in PyNative mode whatever the current mode), returning detokenised
    text, one line per sentence (a line break the model wrote becomes a space; no space at
    either end).

    ``src_vocab`` / ``tgt_vocab``: word :class:`~mindtf.tokenizers.word.Vocab` objects
    (``lowercase`` says how to tokenise) or one :class:`~mindtf.tokenizers.bpe_vocab.BPEVocab`
    (which knows its own case setting)."""
    if max_src_len is None:
        max_src_len = model.config.max_len
    tok, detok = text_functions(src_vocab, tgt_vocab, lowercase)
    out = translate(model, list(sentences), src_vocab, tgt_vocab, tok,
                    beam_size=beam_size, batch_size=batch_size, max_len=max_len,
                    length_penalty=length_penalty, max_src_len=max_src_len, detokenize_fn=detok)
    return [" ".join(text.splitlines()).strip() for text in out]


def load_translator(path) -> Tuple[Any, Any, Any, Dict[str, Any]]:
    """``(model, src_vocab, tgt_vocab, settings)`` from a translation checkpoint folder, or from a
    run folder (its ``checkpoints/best``, else ``checkpoints/latest``). With a BPE checkpoint
    (``settings["tokenizer"] == "bpe"``) both vocabularies are the one
    :class:`~mindtf.tokenizers.bpe_vocab.BPEVocab`."""
    try:
        path = find_checkpoint(path)
    except CheckpointError:
        path = Path(path)  # reported below, naming the missing file
    if not (path / "config.json").is_file():
        raise CheckpointError(f"{path / 'config.json'} not found: pass a checkpoint folder "
                              "written by 'python -m mindtf train --task translation' (e.g. "
                              "runs/multi30k/checkpoints/best) or its run folder.")
    check_tokenizer_files(path)
    settings: Dict[str, Any] = {"lowercase": True, "tokenizer": "word"}
    if (path / SETTINGS_FILE).is_file():
        try:
            settings.update(json.loads((path / SETTINGS_FILE).read_text(encoding="utf-8")))
        except (ValueError, TypeError) as exc:
            raise CheckpointError(f"{path / SETTINGS_FILE} is damaged ({exc}): use the one the "
                                  "training run wrote.") from None
    vocabs = load_vocabs(path, settings)
    model = load_model(path)
    if not isinstance(model, Transformer):
        raise CheckpointError(f"{path} holds a {type(model).__name__}, not a translation "
                              "Transformer; use 'python -m mindtf generate' for GPT checkpoints.")
    src_vocab, tgt_vocab = vocabs.src, vocabs.tgt
    if (len(src_vocab) != model.config.src_vocab_size
            or len(tgt_vocab) != model.config.tgt_vocab_size):
        raise CheckpointError(f"{path}: vocabularies ({len(src_vocab)}, {len(tgt_vocab)} tokens) "
                              f"do not match the model ({model.config.src_vocab_size}, "
                              f"{model.config.tgt_vocab_size}).")
    settings["checkpoint"] = str(path)
    return model, src_vocab, tgt_vocab, settings


# --------------------------------------------------------------------------- the recipe
def train_translation(model_cfg, train_cfg, data_cfg: TranslationData,
                      fetch_kwargs: Optional[Dict[str, Any]] = None, verbose: bool = True,
                      resume: bool = False) -> Dict[str, Any]:
    """Train a Transformer on Multi30k, then compute BLEU on the test split.

    Args:
        model_cfg: a :class:`~mindtf.models.transformer.TransformerConfig`; the vocabulary sizes and
            ``pad_id`` are set from the vocabularies built here.
        train_cfg: a :class:`~mindtf.training.config.TrainConfig` (``label_smoothing`` goes to
            the loss).
        data_cfg: a :class:`TranslationData`.
        fetch_kwargs: ``mirror`` / ``data_dir`` / ``offline`` for :func:`mindtf.data.fetch`.
        resume: continue from ``out_dir/checkpoints/latest``.

    Returns:
        a summary: ``val_loss``, ``val_ppl``, ``bleu``, ``bleu_signature``, ``test_sentences``,
        ``steps``, ``seconds``, ``tokens_per_s``, ``best_checkpoint``, ``samples``, ... (also
        written to ``out_dir/summary.json``; the BLEU details to ``out_dir/bleu.json``).
    """
    say = print if verbose else (lambda *a, **k: None)
    t_start = time.perf_counter()
    splits = load_pairs(data_cfg, fetch_kwargs or {})
    train_pairs, val_pairs, test_pairs = splits["train"], splits["val"], splits["test"]
    t_vocab = time.perf_counter()  # vocabularies and ids (BPE training included)
    vocabs = build_vocabs(train_pairs, data_cfg, joint=model_cfg.share_embeddings)
    pad_id = vocabs.tgt.pad_id
    if vocabs.src.pad_id != pad_id:  # cannot happen with the shared SPECIALS; checked anyway
        raise ConfigError("source and target vocabularies pad with different ids.")
    # the model's sizes and padding id come from the vocabularies
    model_cfg = TransformerConfig.from_dict({**model_cfg.to_dict(), "pad_id": pad_id,
                                             "src_vocab_size": len(vocabs.src),
                                             "tgt_vocab_size": len(vocabs.tgt)})
    if data_cfg.padded_max_len > model_cfg.max_len:
        raise ConfigError(f"data.max_len={data_cfg.max_len} padded to a multiple of "
                          f"{data_cfg.pad_multiple} is {data_cfg.padded_max_len} positions, more "
                          f"than the model's position table (model.max_len={model_cfg.max_len}); "
                          "raise model.max_len or lower data.max_len.")
    train_ids = numericalise(train_pairs, vocabs, data_cfg.lowercase)
    keep = [p for p in train_ids
            if len(p[0]) <= data_cfg.max_len and len(p[1]) + 1 <= data_cfg.max_len]
    dropped = len(train_ids) - len(keep)
    train_ids = keep
    val_ids = numericalise(val_pairs, vocabs, data_cfg.lowercase)
    vocab_seconds = time.perf_counter() - t_vocab
    say(f"data: {len(train_ids):,} training pairs"
        + (f" ({dropped} longer than max_len={data_cfg.max_len} dropped)" if dropped else "")
        + f", {len(val_ids):,} validation pairs, {len(test_pairs):,} test pairs "
        f"({data_cfg.test_split}); vocabularies: {vocabs.describe()}, "
        f"{vocab_seconds:.1f} s")
    if data_cfg.max_eval_pairs:
        say(f"note: data.max_eval_pairs={data_cfg.max_eval_pairs} evaluates on part of the "
            "val/test splits only: scores are not comparable with published ones.")

    model = Transformer(model_cfg)
    n_params = count_parameters(model)
    say(f"model: Transformer {model_cfg.n_encoder_layers}+{model_cfg.n_decoder_layers} layers, "
        f"{model_cfg.n_heads} heads, d_model={model_cfg.d_model}, d_ff={model_cfg.d_ff}: "
        f"{n_params / 1e6:.2f}M parameters")

    out_dir = Path(train_cfg.out_dir)
    settings = {"tokenizer": vocabs.kind, "lowercase": data_cfg.lowercase,
                "direction": data_cfg.direction,
                "max_len": data_cfg.max_len, "src_bos": False, "src_eos": False,
                "beam_size": data_cfg.beam_size, "length_penalty": data_cfg.length_penalty}
    here = world()  # the global batch: batch_size pairs for each of here.size workers
    batches = TranslationBatches(train_ids, val_ids, data_cfg, train_cfg.batch_size * here.size,
                                 train_cfg.grad_accum, train_cfg.seed, pad_id, vocabs.tgt.bos_id,
                                 vocabs.tgt.eos_id, workers=here.size)
    say(f"batches: {batches.describe()}")
    trainer = Trainer(model, Seq2SeqLossCell(model, train_cfg.label_smoothing, pad_id), train_cfg,
                      EpochBatches(batches.epoch), batches.val,
                      tokens_per_batch=lambda b: int((b[2] != pad_id).sum()),
                      on_checkpoint=lambda folder: vocabs.save(folder, settings),
                      tokenizer_files=vocabs.files)
    if resume:
        step = trainer.resume()
        say(f"resumed from step {step} ({out_dir / 'checkpoints'})")
    # written once the run is known to start (a failed resume leaves the old one intact)
    if here.is_main:
        write_run_config(out_dir, {"task": TASK, "model": model_cfg.to_dict(),
                                   "train": train_cfg.to_dict(), "data": asdict(data_cfg)})
    say(f"schedule: {trainer.schedule.describe()}")
    summary = trainer.fit()
    if not here.is_main:  # the other workers of a data-parallel run are done
        return summary

    t_pick = time.perf_counter()
    best, picked = _pick_checkpoint(model, trainer, out_dir, summary.get("averaged_checkpoint"))
    summary.update({"checkpoint_choice": picked,
                    "pick_seconds": time.perf_counter() - t_pick})
    if picked.get("averaged_val_loss") is not None and picked.get("best_val_loss") is not None:
        say(f"decoding with the {picked['chosen']} checkpoint (validation loss: best "
            f"{picked['best_val_loss']:.4f}, average of the last {train_cfg.average_last} "
            f"{picked['averaged_val_loss']:.4f})")
    summary.update({"val_ppl": perplexity(summary["val_loss"])
                    if summary.get("val_loss") is not None else None,
                    "best_checkpoint": str(best), "plot": str(out_dir / "loss.png"),
                    "parameters": n_params, "train_pairs": len(train_ids),
                    "src_vocab_size": len(vocabs.src), "tgt_vocab_size": len(vocabs.tgt),
                    "tokenizer": vocabs.kind, "vocab_seconds": vocab_seconds})
    phases = {"data_and_vocab_s": t_vocab - t_start + vocab_seconds,
              "train_s": summary.get("train_s", summary.get("seconds")),
              "pick_checkpoint_s": summary["pick_seconds"]}
    if data_cfg.bleu:
        summary.update(_bleu(model, test_pairs, vocabs, data_cfg, out_dir, best, say,
                             phases, t_start))
    summary["total_seconds"] = time.perf_counter() - t_start
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False),
                                          encoding="utf-8")
    return summary


def _pick_checkpoint(model, trainer: Trainer, out_dir: Path,
                     averaged: Optional[str]) -> Tuple[Path, Dict[str, Any]]:
    """Load the weights to decode with into ``model``: the best checkpoint (lowest validation
    loss), or the average of the last ones (``train.average_last``) when its validation loss is
    lower. Returns the folder and what was compared (both losses, on the whole validation
    split; never the test split)."""
    best = find_checkpoint(out_dir, prefer="best")
    model.load_state_dict(read_state(best / "model.safetensors"))
    if not averaged:
        return best, {"chosen": "best", "path": str(best)}
    best_loss = trainer.evaluate().get("loss")
    model.load_state_dict(read_state(Path(averaged) / "model.safetensors"))
    avg_loss = trainer.evaluate().get("loss")
    record = {"best_val_loss": best_loss, "averaged_val_loss": avg_loss}
    if avg_loss is not None and (best_loss is None or avg_loss <= best_loss):
        return Path(averaged), {**record, "chosen": "averaged", "path": averaged}
    model.load_state_dict(read_state(best / "model.safetensors"))
    return best, {**record, "chosen": "best", "path": str(best)}


def _bleu(model, test_pairs, vocabs: TranslationVocabs, data_cfg: TranslationData,
          out_dir: Path, checkpoint: Path, say, phases: Optional[Dict[str, Any]] = None,
          t_start: Optional[float] = None) -> Dict[str, Any]:
    """Decode the whole test split, write hypotheses and ``bleu.json`` (score, signature, decode
    settings and the wall time of each phase of the run); return summary fields."""
    sources = [s for s, _ in test_pairs]
    references = [t for _, t in test_pairs]
    how = "greedy decoding" if data_cfg.beam_size == 1 else (
        f"beam search (beam {data_cfg.beam_size}, length penalty {data_cfg.length_penalty})")
    say(f"translating {len(sources):,} {data_cfg.test_split} sentences with {how} ...")
    t0 = time.perf_counter()
    hyps = translate_sentences(model, sources, vocabs.src, vocabs.tgt,
                               lowercase=data_cfg.lowercase, beam_size=data_cfg.beam_size,
                               length_penalty=data_cfg.length_penalty,
                               batch_size=data_cfg.eval_batch_size,
                               max_len=data_cfg.max_decode_len, max_src_len=data_cfg.max_len)
    seconds = time.perf_counter() - t0
    # a lowercased model is scored case-insensitively (the signature then says "case:lc")
    result = corpus_bleu(hyps, references, lowercase=data_cfg.lowercase)
    (out_dir / "test_hypotheses.txt").write_text("\n".join(hyps) + "\n", encoding="utf-8")
    record = {"score": result.score, "signature": result.signature, "sentences": len(hyps),
              "split": data_cfg.test_split, "direction": data_cfg.direction,
              "checkpoint": str(checkpoint), "beam_size": data_cfg.beam_size,
              "length_penalty": data_cfg.length_penalty, "precisions": result.precisions,
              "bp": result.bp, "sys_len": result.sys_len, "ref_len": result.ref_len,
              "decode_seconds": seconds, "text": str(result),
              "phases_s": {**(phases or {}), "decode_s": seconds},
              "wall_s": None if t_start is None else time.perf_counter() - t_start}
    (out_dir / "bleu.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    samples = [{"source": s, "reference": r, "translation": h}
               for s, r, h in list(zip(sources, references, hyps))[:3]]
    return {"bleu": result.score, "bleu_signature": result.signature,
            "bleu_text": str(result), "test_sentences": len(hyps),
            "bleu_file": str(out_dir / "bleu.json"), "decode_seconds": seconds, "samples": samples}
