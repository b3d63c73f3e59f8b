"""The Multi30k German -> English translation recipe (``mindtf train --task translation``).

::

    Multi30k train (29,000 pairs) --tokenize--> word vocabularies (min_freq 2, built on train only)
        --> ids --> length-bucketed, seeded batches, lengths padded to a multiple of 8
        --> Transformer + label-smoothed cross-entropy (0.1), AdamW, warmup+cosine (or Noam)
        --> validation loss on the whole val split (1,014 pairs) every eval_interval steps
        --> best checkpoint --> beam search on the whole test2016 split (1,000 sentences)
        --> detokenise --> sacreBLEU score + signature (bleu.json)

Everything the ``translate`` command needs is saved next to the weights in every checkpoint:
``src_vocab.json``, ``tgt_vocab.json`` and ``translation.json`` (tokenisation settings).

    >>> model_cfg, train_cfg, data_cfg = translation_configs()
    >>> summary = train_translation(model_cfg, train_cfg, data_cfg)   # doctest: +SKIP
    >>> summary["bleu"], summary["bleu_signature"]                     # doctest: +SKIP

MindSpore is imported only when training or decoding starts, so the configs are cheap to import.
"""
from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple

import numpy as np

from .errors import ConfigError

__all__ = ["TranslationData", "translation_configs", "train_translation", "TranslationVocabs",
           "build_vocabs", "numericalise", "pad_batch", "load_translator", "translate_sentences"]

#: written next to the weights of every translation checkpoint
SETTINGS_FILE = "translation.json"


@dataclass
class TranslationData:
    """Data, batching and evaluation settings of the translation recipe.

    The training batch size (sentences per step) is ``TrainConfig.batch_size``.
    """

    dataset: str = "multi30k"  # the only parallel corpus in the registry
    direction: str = "de-en"  # "de-en" (German -> English) | "en-de"
    lowercase: bool = True  # lowercase before tokenising (BLEU is then case-insensitive)
    min_freq: int = 2  # words seen fewer times in the training split become <unk>
    max_len: int = 64  # most tokens per sentence (+<bos>/<eos>); longer training pairs dropped
    pad_multiple: int = 8  # pad batch lengths up to a multiple of this (few shapes to compile)
    bucket_size: Optional[int] = None  # examples sorted by length together (default 100 x batch)
    eval_batch_size: int = 128  # sentences per validation / decoding batch
    max_train_pairs: Optional[int] = None  # use only the first N training pairs (quick tests)
    max_eval_pairs: Optional[int] = None  # only the first N val / test pairs (quick tests only)
    test_split: str = "test2016"  # the split BLEU is computed on
    bleu: bool = True  # decode the test split and compute BLEU after training
    beam_size: int = 4  # 1 = greedy decoding
    length_penalty: float = 0.6  # GNMT length penalty alpha for beam search
    max_decode_len: Optional[int] = None  # most generated tokens (default: source length + 50)

    def __post_init__(self) -> None:
        if self.dataset != "multi30k":
            raise ConfigError(f"translation dataset {self.dataset!r}: only 'multi30k' is available.")
        if self.direction not in ("de-en", "en-de"):
            raise ConfigError(f"direction={self.direction!r}: choose 'de-en' or 'en-de'.")
        for name in ("min_freq", "max_len", "pad_multiple", "eval_batch_size", "beam_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"data.{name} must be >= 1, got {getattr(self, name)}.")
        if self.max_len < 3:
            raise ConfigError(f"data.max_len={self.max_len} leaves no room for a word between "
                              "<bos> and <eos>; use at least 3.")
        for name in ("max_train_pairs", "max_eval_pairs", "bucket_size", "max_decode_len"):
            value = getattr(self, name)
            if value is not None and value < 1:
                raise ConfigError(f"data.{name} must be >= 1 (or unset), got {value}.")

    @property
    def padded_max_len(self) -> int:
        """The longest padded batch length: ``max_len`` rounded up to ``pad_multiple``."""
        return _round_up(self.max_len, self.pad_multiple)


def translation_configs() -> tuple:
    """A small Transformer for CPU on Multi30k de->en: ``(TransformerConfig, TrainConfig,
    TranslationData)``.

    3 + 3 post-norm layers, d_model 256, 4 heads, d_ff 512, dropout 0.1 (about 9M parameters
    with Multi30k's vocabularies); batches of 128 sentences, AdamW (0.9, 0.98), peak lr 1e-3 with
    400 warmup steps and cosine decay over 4000 steps (~18 epochs), label smoothing 0.1.
    """
    from .train import TrainConfig
    from .transformer import TransformerConfig

    model = TransformerConfig(d_model=256, n_heads=4, n_encoder_layers=3, n_decoder_layers=3,
                              d_ff=512, dropout=0.1, max_len=128)
    train = TrainConfig(max_steps=4000, batch_size=128, lr=1e-3, min_lr=1e-5, warmup_steps=400,
                        schedule="cosine", beta1=0.9, beta2=0.98, weight_decay=0.01,
                        grad_clip=1.0, label_smoothing=0.1, eval_interval=500, log_interval=20,
                        out_dir="runs/multi30k", mode="graph")
    return model, train, TranslationData()


# --------------------------------------------------------------------------- data
def _round_up(n: int, multiple: int) -> int:
    return max(multiple, int(math.ceil(n / multiple)) * multiple)


def _tokenize_fn(lowercase: bool) -> Callable[[str], List[str]]:
    from .tokenizers.word import tokenize

    return lambda text: tokenize(text, lowercase)


@dataclass
class TranslationVocabs:
    src: Any  # mindtf.tokenizers.word.Vocab
    tgt: Any

    def save(self, folder: Path, settings: Dict[str, Any]) -> None:
        folder = Path(folder)
        self.src.save(folder / "src_vocab.json")
        self.tgt.save(folder / "tgt_vocab.json")
        (folder / SETTINGS_FILE).write_text(json.dumps(settings, indent=2), encoding="utf-8")


def build_vocabs(train_pairs: Sequence[Tuple[str, str]], data: TranslationData,
                 joint: bool = False) -> TranslationVocabs:
    """Word vocabularies from the **training** pairs only (specials ``<unk> <pad> <bos> <eos>``
    first, so ``<pad>`` is id 1 whatever the corpus). ``joint``: one vocabulary for both sides
    (needed by ``share_embeddings``)."""
    from .tokenizers.word import SPECIALS, Vocab

    tok = _tokenize_fn(data.lowercase)
    src_tokens = [tok(s) for s, _ in train_pairs]
    tgt_tokens = [tok(t) for _, t in train_pairs]
    if joint:
        vocab = Vocab.build(src_tokens + tgt_tokens, min_freq=data.min_freq, specials=SPECIALS)
        return TranslationVocabs(vocab, vocab)
    return TranslationVocabs(Vocab.build(src_tokens, min_freq=data.min_freq, specials=SPECIALS),
                             Vocab.build(tgt_tokens, min_freq=data.min_freq, specials=SPECIALS))


def numericalise(pairs: Sequence[Tuple[str, str]], vocabs: TranslationVocabs,
                 lowercase: bool) -> List[Tuple[List[int], List[int]]]:
    """Sentence pairs -> ``(source ids, target ids)`` without ``<bos>``/``<eos>`` (the batcher
    adds them to the target)."""
    tok = _tokenize_fn(lowercase)
    return [(vocabs.src.lookup(tok(s)), vocabs.tgt.lookup(tok(t))) for s, t in pairs]


def pad_batch(batch: Dict[str, np.ndarray], pad_id: int, multiple: int,
              rows: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pad a collated batch to a common length ``L`` (a multiple of ``multiple``) for source and
    target, and optionally to ``rows`` sentences.

    Why: in GRAPH_MODE MindSpore compiles the training step once per distinct input shape.
    Bucketed batches have a different longest sentence almost every step, which would mean a
    new compilation (seconds to minutes) every few steps. Rounding every length up to a multiple
    of 8 and using one length for both sides leaves only ``max_len / 8`` shapes (at most 6 for
    Multi30k), each compiled once, for at most 7 padding tokens per sentence, which the masks
    and the loss ignore. The same holds for the evaluation graph.

    Extra rows (the last, smaller evaluation batch) copy the first sentence with an all-padding
    target, so they add nothing to the loss sums.
    """
    src, tgt_in, tgt_out = batch["src"], batch["tgt_in"], batch["tgt_out"]
    length = _round_up(max(src.shape[1], tgt_in.shape[1]), multiple)
    n = src.shape[0] if rows is None else rows

    def fit(a: np.ndarray, fill_rows_from_first: bool) -> np.ndarray:
        out = np.full((n, length), pad_id, dtype=np.int32)
        out[: a.shape[0], : a.shape[1]] = a
        if fill_rows_from_first and n > a.shape[0]:
            out[a.shape[0]:] = out[0]
        return out

    return fit(src, True), fit(tgt_in, True), fit(tgt_out, False)


class _Batches:
    """Training and validation batches for the Trainer."""

    def __init__(self, train_ids, val_ids, data: TranslationData, batch_size: int,
                 grad_accum: int, seed: int, pad_id: int, bos_id: int, eos_id: int):
        from .batching import BucketBatchSampler, Seq2SeqBatcher

        self.train_ids, self.val_ids = train_ids, val_ids
        self.data, self.pad_id = data, pad_id
        self.batch_size, self.accum = batch_size, grad_accum
        self.collate = Seq2SeqBatcher(pad_id, bos_id, eos_id, max_src_len=data.max_len,
                                      max_tgt_len=data.max_len)
        if len(train_ids) < batch_size:
            raise ConfigError(f"only {len(train_ids)} training pairs for batches of {batch_size}: "
                              "lower train.batch_size or use more pairs.")
        lengths = [max(len(s), len(t) + 1) for s, t in train_ids]
        # drop_last: every training batch has exactly batch_size sentences (one shape less to
        # compile); a different random few sentences are left out each epoch.
        self.sampler = BucketBatchSampler(lengths, batch_size, shuffle=True, seed=seed,
                                          drop_last=True, bucket_size=data.bucket_size)

    def epoch(self, epoch: int) -> List[Tuple[np.ndarray, ...]]:
        """All training batches of one epoch, in a seeded order (same seed and epoch -> same
        batches, which is what makes resuming exact)."""
        m = self.data.pad_multiple
        batches = [pad_batch(self.collate([self.train_ids[i] for i in idx]), self.pad_id, m)
                   for idx in self.sampler.batches(epoch)]
        if self.accum > 1:
            # the Trainer stacks grad_accum consecutive batches into one (A, B, L) array: give
            # each group one length, and drop the incomplete group at the end of the epoch
            batches = batches[: len(batches) - len(batches) % self.accum]
            for g in range(0, len(batches), self.accum):
                group = batches[g:g + self.accum]
                width = max(b[0].shape[1] for b in group)
                for j, b in enumerate(group):
                    batches[g + j] = tuple(_widen(a, width, self.pad_id) for a in b)
        if not batches:
            raise ConfigError("an epoch has no complete batch: lower train.batch_size or "
                              "train.grad_accum.")
        return batches

    def val(self):
        """Every validation pair once, longest first, batches padded to eval_batch_size rows."""
        bs = self.data.eval_batch_size
        order = sorted(range(len(self.val_ids)),
                       key=lambda i: -max(len(self.val_ids[i][0]), len(self.val_ids[i][1])))
        for start in range(0, len(order), bs):
            pairs = [self.val_ids[i] for i in order[start:start + bs]]
            yield pad_batch(self.collate(pairs), self.pad_id, self.data.pad_multiple, rows=bs)


def _widen(a: np.ndarray, width: int, pad_id: int) -> np.ndarray:
    if a.shape[1] == width:
        return a
    out = np.full((a.shape[0], width), pad_id, dtype=a.dtype)
    out[:, : a.shape[1]] = a
    return out


def _load_pairs(data: TranslationData, fetch_kwargs: Dict[str, Any]):
    from .data import load_multi30k

    kw = {"progress": False, **fetch_kwargs}
    splits = {}
    for name, split, cap in (("train", "train", data.max_train_pairs),
                             ("val", "val", data.max_eval_pairs),
                             ("test", data.test_split, data.max_eval_pairs)):
        pairs = load_multi30k(split, **kw)
        if data.direction == "en-de":
            pairs = [(t, s) for s, t in pairs]
        splits[name] = pairs[:cap] if cap else pairs
    return splits


# --------------------------------------------------------------------------- decoding
def translate_sentences(model, sentences: Sequence[str], src_vocab, tgt_vocab, *,
                        lowercase: bool = True, beam_size: int = 4, length_penalty: float = 0.6,
                        batch_size: int = 64, max_len: Optional[int] = None,
                        max_src_len: Optional[int] = None) -> List[str]:
    """Translate raw sentences with :func:`mindtf.decoding.translate` (batched greedy or beam
    search, in PyNative mode whatever the current mode), returning detokenised text."""
    from .decoding import translate
    from .runtime import pynative

    if max_src_len is None:
        max_src_len = model.config.max_len
    with pynative():
        return translate(model, list(sentences), src_vocab, tgt_vocab, _tokenize_fn(lowercase),
                         beam_size=beam_size, batch_size=batch_size, max_len=max_len,
                         length_penalty=length_penalty, max_src_len=max_src_len)


def load_translator(path) -> Tuple[Any, Any, Any, Dict[str, Any]]:
    """``(model, src_vocab, tgt_vocab, settings)`` from a translation checkpoint folder, or from a
    run folder (its ``checkpoints/best``, else ``checkpoints/latest``)."""
    from .checkpoint import load_model
    from .errors import CheckpointError
    from .tokenizers.word import Vocab

    path = Path(path)
    if not (path / "config.json").is_file():
        ck = path / "checkpoints"
        if (ck / "best" / "config.json").is_file():
            path = ck / "best"
        elif (ck / "latest").is_file():
            path = ck / (ck / "latest").read_text().strip()
    for name in ("config.json", "src_vocab.json", "tgt_vocab.json"):
        if not (path / name).is_file():
            raise CheckpointError(f"{path / name} not found: pass a checkpoint folder written by "
                                  "'python -m mindtf train --task translation' (e.g. "
                                  "runs/multi30k/checkpoints/best) or its run folder.")
    settings: Dict[str, Any] = {"lowercase": True}
    if (path / SETTINGS_FILE).is_file():
        settings.update(json.loads((path / SETTINGS_FILE).read_text(encoding="utf-8")))
    model = load_model(path)
    if model.__class__.__name__ != "Transformer":
        raise CheckpointError(f"{path} holds a {model.__class__.__name__}, not a translation "
                              "Transformer; use 'python -m mindtf generate' for GPT checkpoints.")
    src_vocab, tgt_vocab = Vocab.load(path / "src_vocab.json"), Vocab.load(path / "tgt_vocab.json")
    if len(src_vocab) != model.config.src_vocab_size or len(tgt_vocab) != model.config.tgt_vocab_size:
        raise CheckpointError(f"{path}: vocabularies ({len(src_vocab)}, {len(tgt_vocab)} words) do "
                              f"not match the model ({model.config.src_vocab_size}, "
                              f"{model.config.tgt_vocab_size}).")
    settings["checkpoint"] = str(path)
    return model, src_vocab, tgt_vocab, settings


# --------------------------------------------------------------------------- the recipe
def train_translation(model_cfg, train_cfg, data_cfg: TranslationData,
                      fetch_kwargs: Optional[Dict[str, Any]] = None, verbose: bool = True,
                      resume: bool = False) -> Dict[str, Any]:
    """Train a Transformer on Multi30k, then compute BLEU on the test split.

    Args:
        model_cfg: a :class:`~mindtf.transformer.TransformerConfig`; the vocabulary sizes and
            ``pad_id`` are set from the vocabularies built here.
        train_cfg: a :class:`~mindtf.train.TrainConfig` (``label_smoothing`` goes to the loss).
        data_cfg: a :class:`TranslationData`.
        fetch_kwargs: ``mirror`` / ``data_dir`` / ``offline`` for :func:`mindtf.data.fetch`.
        resume: continue from ``out_dir/checkpoints/latest``.

    Returns:
        a summary: ``val_loss``, ``val_ppl``, ``bleu``, ``bleu_signature``, ``test_sentences``,
        ``steps``, ``seconds``, ``tokens_per_s``, ``best_checkpoint``, ``samples``, ... (also
        written to ``out_dir/summary.json``; the BLEU details to ``out_dir/bleu.json``).
    """
    from .checkpoint import load_params, load_state
    from .train import EpochBatches, Seq2SeqLossCell, Trainer
    from .transformer import Transformer, TransformerConfig

    say = print if verbose else (lambda *a, **k: None)
    t_start = time.perf_counter()
    splits = _load_pairs(data_cfg, fetch_kwargs or {})
    train_pairs, val_pairs, test_pairs = splits["train"], splits["val"], splits["test"]
    vocabs = build_vocabs(train_pairs, data_cfg, joint=model_cfg.share_embeddings)
    pad_id = vocabs.tgt.pad_id
    if vocabs.src.pad_id != pad_id:  # cannot happen with the shared SPECIALS; checked anyway
        raise ConfigError("source and target vocabularies pad with different ids.")
    # the model's sizes and padding id come from the vocabularies
    model_cfg = TransformerConfig(**{**dataclasses.asdict(model_cfg), "pad_id": pad_id,
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
    say(f"data: {len(train_ids):,} training pairs"
        + (f" ({dropped} longer than max_len={data_cfg.max_len} dropped)" if dropped else "")
        + f", {len(val_ids):,} validation pairs, {len(test_pairs):,} test pairs "
        f"({data_cfg.test_split}); vocabularies: {len(vocabs.src):,} source and "
        f"{len(vocabs.tgt):,} target words "
        f"(min_freq={data_cfg.min_freq}, built on the training split)")
    if data_cfg.max_eval_pairs:
        say(f"note: data.max_eval_pairs={data_cfg.max_eval_pairs} evaluates on part of the "
            "val/test splits only: scores are not comparable with published ones.")

    model = Transformer(model_cfg)
    n_params = sum(int(np.prod(p.shape)) for p in model.trainable_params())
    say(f"model: Transformer {model_cfg.n_encoder_layers}+{model_cfg.n_decoder_layers} layers, "
        f"{model_cfg.n_heads} heads, d_model={model_cfg.d_model}, d_ff={model_cfg.d_ff}: "
        f"{n_params / 1e6:.2f}M parameters")

    out_dir = Path(train_cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    settings = {"lowercase": data_cfg.lowercase, "direction": data_cfg.direction,
                "max_len": data_cfg.max_len, "src_bos": False, "src_eos": False,
                "beam_size": data_cfg.beam_size, "length_penalty": data_cfg.length_penalty}
    batches = _Batches(train_ids, val_ids, data_cfg, train_cfg.batch_size, train_cfg.grad_accum,
                       train_cfg.seed, pad_id, vocabs.tgt.bos_id, vocabs.tgt.eos_id)
    trainer = Trainer(model, Seq2SeqLossCell(model, train_cfg.label_smoothing, pad_id), train_cfg,
                      EpochBatches(batches.epoch), batches.val,
                      tokens_per_batch=lambda b: int((b[2] != pad_id).sum()),
                      on_checkpoint=lambda folder: vocabs.save(folder, settings))
    if resume:
        step = trainer.resume()
        say(f"resumed from step {step} ({out_dir / 'checkpoints'})")
    say(f"schedule: {trainer.schedule.describe()}")
    summary = trainer.fit()

    best = out_dir / "checkpoints" / "best"
    if (best / "model.safetensors").is_file():  # decode with the best weights (lowest val loss)
        load_params(model, load_state(best / "model.safetensors"))
    else:
        best = Path(trainer.save_checkpoint())
    summary.update({"val_ppl": math.exp(min(summary["val_loss"], 700.0))
                    if summary.get("val_loss") is not None else None,
                    "best_checkpoint": str(best), "plot": str(out_dir / "loss.png"),
                    "parameters": n_params, "train_pairs": len(train_ids),
                    "src_vocab_size": len(vocabs.src), "tgt_vocab_size": len(vocabs.tgt)})
    if data_cfg.bleu:
        summary.update(_bleu(model, test_pairs, vocabs, data_cfg, out_dir, best, say))
    summary["total_seconds"] = time.perf_counter() - t_start
    (out_dir / "summary.json").write_text(json.dumps(summary, indent=2, ensure_ascii=False),
                                          encoding="utf-8")
    return summary


def _bleu(model, test_pairs, vocabs: TranslationVocabs, data_cfg: TranslationData,
          out_dir: Path, checkpoint: Path, say) -> Dict[str, Any]:
    """Decode the whole test split, write hypotheses and ``bleu.json``; return summary fields."""
    from .metrics import corpus_bleu

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
              "decode_seconds": seconds, "text": str(result)}
    (out_dir / "bleu.json").write_text(json.dumps(record, indent=2), encoding="utf-8")
    samples = [{"source": s, "reference": r, "translation": h}
               for s, r, h in list(zip(sources, references, hyps))[:3]]
    return {"bleu": result.score, "bleu_signature": result.signature,
            "bleu_text": str(result), "test_sentences": len(hyps),
            "bleu_file": str(out_dir / "bleu.json"), "decode_seconds": seconds, "samples": samples}
