"""The translation recipe's settings and data: configs, vocabularies, ids, fixed-shape batches.

Nothing here imports MindSpore, so the CLI can read configs and print help quickly.

::

    Multi30k pairs --tokenize--> word vocabularies (min_freq, training split only), or one joint
                                 byte-level BPE vocabulary (data.tokenizer = "bpe", no <unk>)
        --> ids --> length-bucketed, seeded batches, lengths padded to a multiple of 8
            (or, with data.length_buckets = "16,32,64", to one of those lengths only)
            of train.batch_size sentences, or (data.batch_tokens) of batch_tokens // length

Every batch shape is one compilation of the training step in GRAPH_MODE: the padded lengths
(``TranslationData.padded_lengths``) are the whole list of shapes a run can meet (with
``batch_tokens``, each length has its own fixed number of rows).

The vocabularies live in :mod:`mindtf.recipes.translation_vocabs` (re-exported here).
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Sequence, Tuple

import numpy as np

from mindtf.data import load_multi30k
from mindtf.data.batching import BucketBatchSampler, Seq2SeqBatcher, bucket_length
from mindtf.data.token_batching import TokenBatchSampler
from mindtf.errors import ConfigError, check_choice, check_range
from mindtf.models.transformer_config import TransformerConfig
from mindtf.recipes.translation_vocabs import (SETTINGS_FILE, TOKENIZERS, TranslationVocabs,
                                               build_vocabs, numericalise, text_functions,
                                               tokenize_fn)
from mindtf.training.config import TrainConfig

__all__ = ["TranslationData", "translation_configs", "TranslationVocabs", "TranslationBatches",
           "build_vocabs", "numericalise", "pad_batch", "load_pairs", "tokenize_fn",
           "text_functions", "SETTINGS_FILE"]


@dataclass
class TranslationData:
    """Data, batching and evaluation settings of the translation recipe.

    The training batch size (sentences per step) is ``TrainConfig.batch_size``, unless
    ``batch_tokens`` sets a budget of padded tokens instead.
    """

    dataset: str = "multi30k"  # the only parallel corpus in the registry
    direction: str = "de-en"  # "de-en" (German -> English) | "en-de"
    lowercase: bool = True  # lowercase before tokenising (BLEU is then case-insensitive)
    tokenizer: str = "word"  # "word" (min_freq, <unk>) | "bpe" (one joint byte-level BPE, no <unk>)
    bpe_vocab_size: int = 8000  # tokenizer "bpe": tokens (256 bytes + merges + <pad> <bos> <eos>)
    min_freq: int = 2  # tokenizer "word": words seen fewer times in the training split -> <unk>
    max_len: int = 64  # most tokens per sentence (+<bos>/<eos>); longer training pairs dropped
    pad_multiple: int = 8  # pad batch lengths up to a multiple of this (few shapes to compile)
    length_buckets: str = ""  # e.g. "16,32,64": pad each batch to one of these (Ascend: few graphs)
    bucket_size: Optional[int] = None  # examples sorted by length together (default 100 x batch)
    batch_tokens: Optional[int] = None  # padded tokens a batch (rows x length); None: batch_size
    eval_batch_size: int = 128  # sentences per validation / decoding batch
    max_train_pairs: Optional[int] = None  # use only the first N training pairs (quick tests)
    max_eval_pairs: Optional[int] = None  # only the first N val / test pairs (quick tests only)
    test_split: str = "test2016"  # the split BLEU is computed on
    bleu: bool = True  # decode the test split and compute BLEU after training
    beam_size: int = 4  # 1 = greedy decoding
    length_penalty: float = 0.6  # GNMT length penalty alpha for beam search
    max_decode_len: Optional[int] = None  # most generated tokens (default: source length + 50)

    def __post_init__(self) -> None:
        name = f"{type(self).__name__}."
        check_choice(name + "dataset", self.dataset, ("multi30k",),
                     fix="It is the only parallel corpus in the registry.")
        check_choice(name + "direction", self.direction, ("de-en", "en-de"))
        check_choice(name + "tokenizer", self.tokenizer, TOKENIZERS,
                     fix="\"bpe\" spells every word with subwords (no <unk>, cased output).")
        check_range(name + "bpe_vocab_size", self.bpe_vocab_size, 260, integer=True,
                    fix="It holds the 256 byte tokens, the 3 specials and at least one merge.")
        for field in ("lowercase", "bleu"):
            check_choice(name + field, getattr(self, field), (True, False))
        for field in ("min_freq", "pad_multiple", "eval_batch_size", "beam_size"):
            check_range(name + field, getattr(self, field), 1, integer=True)
        check_range(name + "max_len", self.max_len, 3, integer=True,
                    fix="It leaves room for a word between <bos> and <eos>.")
        for field in ("max_train_pairs", "max_eval_pairs", "bucket_size", "max_decode_len"):
            check_range(name + field, getattr(self, field), 1, integer=True, optional=True)
        check_range(name + "length_penalty", self.length_penalty, 0,
                    fix="0 turns the length penalty off; 0.6 is GNMT's.")
        _ = self.buckets  # parses and checks length_buckets
        check_range(name + "batch_tokens", self.batch_tokens, self.padded_max_len, integer=True,
                    optional=True, fix=f"A batch holds at least one sentence of the longest "
                    f"padded length ({self.padded_max_len}); None: train.batch_size sentences.")

    @property
    def buckets(self) -> Optional[Tuple[int, ...]]:
        """``length_buckets`` as ascending ints, or None when unset (multiples of pad_multiple)."""
        text = str(self.length_buckets or "").strip()
        if not text:
            return None
        fix = ("Give ascending positive lengths separated by commas, the largest >= "
               f"data.max_len={self.max_len} (e.g. \"16,32,{_round_up(self.max_len, 8)}\"), or "
               "\"\" for every multiple of pad_multiple.")
        try:
            lengths = tuple(int(part) for part in text.replace(" ", "").split(","))
        except ValueError:
            raise ConfigError(f"TranslationData.length_buckets={text!r}: {fix}") from None
        if (any(n < 1 for n in lengths) or list(lengths) != sorted(set(lengths))
                or lengths[-1] < self.max_len):
            raise ConfigError(f"TranslationData.length_buckets={text!r}: {fix}")
        return lengths

    @property
    def padded_lengths(self) -> Tuple[int, ...]:
        """Every length a padded batch can have: the buckets, or each multiple of pad_multiple
        up to ``padded_max_len``. With a fixed batch size, one training graph per length."""
        if self.buckets:
            return self.buckets
        return tuple(range(self.pad_multiple, self.padded_max_len + 1, self.pad_multiple))

    @property
    def padded_max_len(self) -> int:
        """The longest padded batch length: the largest bucket, or ``max_len`` rounded up to
        ``pad_multiple``."""
        if self.buckets:
            return self.buckets[-1]
        return _round_up(self.max_len, self.pad_multiple)


def translation_configs() -> tuple:
    """A small Transformer for CPU on Multi30k de->en: ``(TransformerConfig, TrainConfig,
    TranslationData)``.

    3 + 3 post-norm layers, d_model 256, 4 heads, d_ff 512, dropout 0.1 (about 9M parameters
    with Multi30k's vocabularies); batches of 128 sentences, AdamW (0.9, 0.98), peak lr 1e-3 with
    400 warmup steps and cosine decay over 4000 steps (~18 epochs), label smoothing 0.1.
    """
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


def pad_batch(batch: Dict[str, np.ndarray], pad_id: int, multiple: int,
              rows: Optional[int] = None, lengths: Optional[Sequence[int]] = None,
              length: Optional[int] = None) -> Tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Pad a collated batch to a common length ``L`` (a multiple of ``multiple``, or with
    ``lengths`` the smallest of them that fits, or exactly ``length``) for source and target,
    and optionally to ``rows`` sentences.

    Why: in GRAPH_MODE MindSpore compiles the training step once per distinct input shape.
    Bucketed batches have a different longest sentence almost every step, which would mean a
    new compilation (seconds to minutes) every few steps. Rounding every length up to a multiple
    of 8 and using one length for both sides leaves only ``max_len / 8`` shapes (at most 6 for
    Multi30k), each compiled once, for at most 7 padding tokens per sentence, which the masks
    and the loss ignore. The same holds for the evaluation graph. On an Ascend NPU, where a
    compilation takes minutes, fewer shapes pay: ``lengths=(16, 32, 64)`` leaves three.

    Extra rows (the last, smaller evaluation batch; the fill rows of a token-count batch) copy
    the first sentence with an all-padding target, so they add nothing to the loss.
    """
    src, tgt_in, tgt_out = batch["src"], batch["tgt_in"], batch["tgt_out"]
    longest = max(src.shape[1], tgt_in.shape[1])
    if length is None:
        length = bucket_length(longest, lengths) if lengths else _round_up(longest, multiple)
    elif longest > length:
        raise ConfigError(f"a batch has {longest} tokens per sentence, more than length={length}.")
    n = src.shape[0] if rows is None else rows

    def fit(a: np.ndarray, fill_rows_from_first: bool) -> np.ndarray:
        out = np.full((n, length), pad_id, dtype=np.int32)
        out[: a.shape[0], : a.shape[1]] = a
        if fill_rows_from_first and n > a.shape[0]:
            out[a.shape[0]:] = out[0]
        return out

    return fit(src, True), fit(tgt_in, True), fit(tgt_out, False)


class TranslationBatches:
    """Training and validation batches for the Trainer.

    ``batch_size`` sentences a batch (global: all workers'), or with ``data.batch_tokens`` a
    :class:`~mindtf.data.token_batching.TokenBatchSampler`'s ``batch_tokens // L`` sentences of
    padded length ``L`` (``workers`` x that in a data-parallel run).
    """

    def __init__(self, train_ids, val_ids, data: TranslationData, batch_size: int,
                 grad_accum: int, seed: int, pad_id: int, bos_id: int, eos_id: int,
                 workers: int = 1):
        self.train_ids, self.val_ids = train_ids, val_ids
        self.data, self.pad_id = data, pad_id
        self.batch_size, self.accum = batch_size, grad_accum
        self.collate = Seq2SeqBatcher(pad_id, bos_id, eos_id, max_src_len=data.max_len,
                                      max_tgt_len=data.max_len)
        lengths = [max(len(s), len(t) + 1) for s, t in train_ids]
        self.tokens: Optional[TokenBatchSampler] = None
        if data.batch_tokens:
            if not train_ids:
                raise ConfigError("no training pairs: use more pairs (data.max_train_pairs).")
            self.tokens = TokenBatchSampler(lengths, data.padded_lengths,
                                            data.batch_tokens * workers, seed=seed,
                                            group=grad_accum, row_multiple=workers)
            self._shortest = int(np.argmin(lengths))
            return
        if len(train_ids) < batch_size:
            raise ConfigError(f"only {len(train_ids)} training pairs for batches of {batch_size}: "
                              "lower train.batch_size or use more pairs.")
        # drop_last: every training batch has exactly batch_size sentences (one shape less to
        # compile); a different random few sentences are left out each epoch.
        self.sampler = BucketBatchSampler(lengths, batch_size, shuffle=True, seed=seed,
                                          drop_last=True, bucket_size=data.bucket_size)

    def epoch(self, epoch: int) -> List[Tuple[np.ndarray, ...]]:
        """All training batches of one epoch, in a seeded order (same seed and epoch -> same
        batches, which is what makes resuming exact)."""
        m = self.data.pad_multiple
        if self.tokens is not None:
            return [self._token_batch(idx, length) for idx, length in self.tokens.batches(epoch)]
        batches = [pad_batch(self.collate([self.train_ids[i] for i in idx]), self.pad_id, m,
                             lengths=self.data.buckets)
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

    def _token_batch(self, idx: List[int], length: int) -> Tuple[np.ndarray, ...]:
        """``rows(length) x length`` arrays; rows without a sentence copy one with no target."""
        # (a batch without sentences copies the shortest pair: it fits any length)
        pairs = [self.train_ids[i] for i in idx] or [self.train_ids[self._shortest]]
        src, tgt_in, tgt_out = pad_batch(self.collate(pairs), self.pad_id, self.data.pad_multiple,
                                         rows=self.tokens.rows(length), length=length)
        if not idx:  # a batch of fill rows only (the end of an accumulation group)
            tgt_out[:] = self.pad_id
        return src, tgt_in, tgt_out

    def describe(self) -> str:
        """How the training batches are made, for the run's log."""
        if self.tokens is None:
            return f"{self.batch_size} sentences a batch"
        shapes = ", ".join(f"{r}x{n}" for r, n in self.tokens.shapes())
        return (f"up to {self.tokens.batch_tokens:,} padded tokens a batch and side; "
                f"{len(self.tokens):,} batches an epoch, shapes (rows x length): {shapes}")

    def val(self):
        """Every validation pair once, longest first, batches padded to eval_batch_size rows."""
        bs = self.data.eval_batch_size
        order = sorted(range(len(self.val_ids)),
                       key=lambda i: -max(len(self.val_ids[i][0]), len(self.val_ids[i][1])))
        for start in range(0, len(order), bs):
            pairs = [self.val_ids[i] for i in order[start:start + bs]]
            yield pad_batch(self.collate(pairs), self.pad_id, self.data.pad_multiple, rows=bs,
                            lengths=self.data.buckets)


def _widen(a: np.ndarray, width: int, pad_id: int) -> np.ndarray:
    if a.shape[1] == width:
        return a
    out = np.full((a.shape[0], width), pad_id, dtype=a.dtype)
    out[:, : a.shape[1]] = a
    return out


def load_pairs(data: TranslationData, fetch_kwargs: Dict[str, Any]) -> Dict[str, list]:
    """``{"train", "val", "test"}`` -> lists of (source, target) sentence pairs."""
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
