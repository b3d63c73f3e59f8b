"""Decoding for the encoder-decoder :class:`~mindtf.models.transformer.Transformer`: greedy search,
beam search and a ``translate`` helper, all on the KV cache (PyNative).

The source is encoded once. The decoder then runs one position per step: the self-attention
cache grows by one key/value per layer, the cross-attention cache holds the projected memory. The
per-step logits ``(rows, V)`` are post-processed on the host in numpy (cheap, identical on every
device, easy to read), as in :mod:`mindtf.decoding.gpt_sampling`.

Conventions shared by all functions here:

* ``src`` is ``(B, S)`` token ids padded with ``pad_id`` (default ``model.config.pad_id``);
* the target starts with ``bos_id``; outputs **exclude BOS and include EOS** when one was produced;
* ``max_len`` counts generated tokens (EOS included). Generating ``n`` tokens feeds ``n``
  positions to the decoder (BOS + the first ``n - 1`` tokens), so ``max_len <= config.max_len``.
  Default: per sentence, its number of non-padding source tokens + 50, capped at
  ``config.max_len`` (so a sentence gets the same limit alone and in a batch);
* ``pad_id`` is never generated (its log-probability stays in the normalisation, it just cannot
  be picked), unless it equals ``eos_id``;
* rows (sentences) that are finished are dropped from the running batch (the caches are
  re-indexed with ``KVCache.reorder``), so late steps only pay for unfinished sentences.

Beam search scores a hypothesis ``y`` with the GNMT length penalty (Wu et al., 2016)::

    score(y) = log P(y | x) / lp(|y|),     lp(n) = ((5 + n) / 6) ** length_penalty

with ``|y|`` the number of generated tokens, EOS included. ``length_penalty=0`` ranks by raw
log-probability (which favours short outputs).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, List, Optional, Sequence

import numpy as np

from mindspore import Tensor, ops

from mindtf.errors import InputError
from mindtf.nn.masks import padding_mask
from mindtf.runtime import in_pynative

__all__ = ["Hypothesis", "greedy_decode", "beam_search", "translate", "length_penalty_factor"]

#: default slack on top of the source length when ``max_len`` is not given
EXTRA_LEN = 50


@dataclass
class Hypothesis:
    """One beam-search output.

    Attributes:
        tokens: generated ids (no BOS; ends with EOS unless the length limit cut it).
        score: ``logprob / lp(len(tokens))`` (the ranking criterion, higher is better).
        logprob: total log-probability of ``tokens`` under the model.
    """

    tokens: List[int]
    score: float
    logprob: float


def length_penalty_factor(length: int, alpha: float) -> float:
    """GNMT length penalty ``((5 + length) / 6) ** alpha``."""
    return ((5.0 + length) / 6.0) ** alpha


# --------------------------------------------------------------------------- shared helpers
def _log_softmax(x: np.ndarray) -> np.ndarray:
    x = x.astype(np.float64)
    m = x.max(-1, keepdims=True)
    return x - (m + np.log(np.exp(x - m).sum(-1, keepdims=True)))


def _prepare(model, src, bos_id: int, eos_id: int, max_len: Optional[int],
             pad_id: Optional[int]):
    """Validate the inputs; return (src int32 (B, S), pad_id, per-row length limits (B,))."""
    c = model.config
    arr = src.asnumpy() if isinstance(src, Tensor) else np.asarray(src)
    if arr.ndim != 2:
        raise InputError(f"src must be a (B, S) array of token ids, got shape {arr.shape}; "
                         "wrap a single sentence as [ids].")
    if arr.shape[0] == 0 or arr.shape[1] == 0:
        raise InputError(f"src is empty (shape {arr.shape}); pass at least one non-empty sentence.")
    if not np.issubdtype(arr.dtype, np.integer):
        raise InputError(f"src must hold integer token ids, got dtype {arr.dtype}.")
    model.check_input(src=arr)  # range and position-table checks
    for name, value in (("bos_id", bos_id), ("eos_id", eos_id)):
        if value is None or not 0 <= int(value) < c.tgt_vocab_size:
            raise InputError(f"{name}={value} is not a target-vocabulary id "
                             f"[0, {c.tgt_vocab_size}).")
    pad = c.pad_id if pad_id is None else int(pad_id)
    if max_len is not None:
        if int(max_len) < 1:
            raise InputError(f"max_len must be >= 1, got {max_len}.")
        if int(max_len) > c.max_len:
            raise InputError(f"max_len={max_len} generated tokens need {max_len} decoder positions "
                             f"but the position table holds {c.max_len} (config.max_len); use "
                             f"max_len <= {c.max_len}.")
        limits = np.full(arr.shape[0], int(max_len), dtype=np.int64)
    else:
        limits = np.minimum((arr != pad).sum(1) + EXTRA_LEN, c.max_len).astype(np.int64)
    return arr.astype(np.int32), pad, limits


class _Decoder:
    """Encoder memory + decoder caches for a running set of rows that can shrink and reorder."""

    def __init__(self, model, src: np.ndarray, pad_id: int, repeat: int = 1):
        self.model = model
        src_t = Tensor(src)
        self.src_mask = padding_mask(src_t, pad_id)  # (B, 1, 1, S)
        self.memory = model.encode(src_t, self.src_mask)  # (B, S, D)
        if repeat > 1:  # each sentence's memory once per beam: rows b*k .. b*k+k-1
            self.select(np.repeat(np.arange(src.shape[0]), repeat), caches=False)
        self.cache = model.new_cache()

    def select(self, index: np.ndarray, caches: bool = True) -> None:
        """Keep (and reorder to) rows ``index`` of the running batch."""
        idx = Tensor(np.asarray(index, dtype=np.int32))
        self.memory = ops.gather(self.memory, idx, 0)
        self.src_mask = ops.gather(self.src_mask, idx, 0)
        if caches:
            for c in self.cache:
                c.reorder(idx)

    def step(self, last: np.ndarray) -> np.ndarray:
        """Feed ``last (R,)`` ids, return the next-token logits ``(R, V)`` as float32 numpy."""
        logits = self.model.decode(Tensor(last.astype(np.int32)[:, None]), self.memory,
                                   self.src_mask, cache=self.cache)  # (R, 1, V)
        return logits[:, -1, :].asnumpy()


class _eval_mode:
    """Put the model in inference mode (no dropout) and restore its previous mode afterwards."""

    def __init__(self, model):
        self.model, self.was_training = model, bool(getattr(model, "training", False))

    def __enter__(self):
        self.model.set_train(False)

    def __exit__(self, *exc):
        if self.was_training:
            self.model.set_train(True)
        return False


# --------------------------------------------------------------------------- greedy
@in_pynative
def greedy_decode(model, src, *, bos_id: int, eos_id: int, max_len: Optional[int] = None,
                  pad_id: Optional[int] = None) -> np.ndarray:
    """Greedy (arg-max) decoding of a batch of sources.

    Args:
        model: a :class:`~mindtf.models.transformer.Transformer` (run in eval mode; its previous
            train/eval mode is restored afterwards).
        src: ``(B, S)`` source ids (Tensor or array), padded with ``pad_id``.
        bos_id, eos_id: target begin/end-of-sentence ids.
        max_len: most tokens to generate per sentence (EOS included); see the module docstring
            for the default.
        pad_id: padding id of ``src`` and filler of the output (default ``config.pad_id``).

    Returns:
        int32 ``(B, L)`` with ``L <= max_len``: the generated ids without BOS, each row ending
        with EOS when it produced one and padded with ``pad_id`` after it. ``L`` is the length
        of the longest row.
    """
    src, pad, limits = _prepare(model, src, bos_id, eos_id, max_len, pad_id)
    b = src.shape[0]
    out = np.full((b, int(limits.max())), pad, dtype=np.int32)
    lengths = np.zeros(b, dtype=np.int64)
    with _eval_mode(model):
        dec = _Decoder(model, src, pad)
        rows = np.arange(b)  # sentence index of each running row
        last = np.full(b, bos_id, dtype=np.int32)
        t = 0
        while rows.size:
            logits = dec.step(last)  # (R, V)
            if pad != eos_id:
                logits[:, pad] = -np.inf
            nxt = logits.argmax(-1).astype(np.int32)  # (R,)
            out[rows, t] = nxt
            t += 1
            lengths[rows] = t
            done = (nxt == eos_id) | (t >= limits[rows])
            if done.any():
                keep = np.flatnonzero(~done)
                if keep.size:
                    dec.select(keep)
                rows, nxt = rows[keep], nxt[keep]
            last = nxt
    return out[:, : int(lengths.max())]


# --------------------------------------------------------------------------- beam search
@in_pynative
def beam_search(model, src, *, beam_size: int = 4, bos_id: int, eos_id: int,
                max_len: Optional[int] = None, length_penalty: float = 0.6, n_best: int = 1,
                pad_id: Optional[int] = None) -> List[List[Hypothesis]]:
    """Beam search, batched over sentences and beams (``B * beam_size`` decoder rows).

    Each step, for every sentence, the ``2 * beam_size`` best one-token extensions of its live
    hypotheses are ranked by total log-probability. Extensions that end in EOS and rank among the
    first ``beam_size`` become finished hypotheses (scored with the length penalty); the best
    ``beam_size`` extensions that do not end in EOS form the next beam (the caches follow them
    with ``KVCache.reorder``).

    Stopping rule, per sentence: it is done when

    * it has at least ``beam_size`` finished hypotheses **and** the best of them scores at least
      as high as every live hypothesis scores at its current length (a live hypothesis's
      log-probability can only fall as it grows, so this is exact for ``length_penalty <= 0``; for
      ``length_penalty > 0`` the growing ``lp`` could in principle still let it overtake: the
      usual heuristic, which keeps ``beam_size=1`` identical to greedy), or
    * its hypotheses reached ``max_len`` tokens: the live ones are then added, without EOS, to the
      finished ones.

    With ``beam_size=1`` this is exactly :func:`greedy_decode` (the first EOS ends the sentence).

    Args:
        model, src, bos_id, eos_id, max_len, pad_id: as in :func:`greedy_decode`.
        beam_size: hypotheses kept per sentence (>= 1).
        length_penalty: GNMT ``alpha`` (see the module docstring).
        n_best: hypotheses returned per sentence (``1 <= n_best <= beam_size``).

    Returns:
        one list per sentence of ``n_best`` :class:`Hypothesis`, best score first.
    """
    if int(beam_size) < 1:
        raise InputError(f"beam_size must be >= 1, got {beam_size}.")
    if not 1 <= int(n_best) <= int(beam_size):
        raise InputError(f"n_best must be between 1 and beam_size={beam_size}, got {n_best}.")
    k = int(beam_size)
    src, pad, limits = _prepare(model, src, bos_id, eos_id, max_len, pad_id)
    b = src.shape[0]
    ban_pad = pad != eos_id

    def lp(n: int) -> float:
        return length_penalty_factor(n, length_penalty)

    finished: List[List[Hypothesis]] = [[] for _ in range(b)]
    with _eval_mode(model):
        dec = _Decoder(model, src, pad, repeat=k)
        rows = np.arange(b)  # sentence of each running group of k decoder rows
        seqs = np.zeros((b * k, 0), dtype=np.int32)  # (R*k, t) tokens of the live hypotheses
        beam_lp = np.full((b, k), -np.inf)  # (R, k) total log-probs; only beam 0 starts live
        beam_lp[:, 0] = 0.0
        last = np.full(b * k, bos_id, dtype=np.int32)
        t = 0
        while rows.size:
            r = rows.size
            logp = _log_softmax(dec.step(last))  # (R*k, V)
            v = logp.shape[-1]
            if ban_pad:
                logp[:, pad] = -np.inf
            cand = (beam_lp.reshape(r * k, 1) + logp).reshape(r, k * v)  # (R, k*V)
            n_cand = min(2 * k, k * v)
            top = np.argpartition(-cand, n_cand - 1, axis=1)[:, :n_cand]  # (R, 2k) unordered
            t += 1
            new_lp = np.full((r, k), -np.inf)
            origin = np.zeros((r, k), dtype=np.int64)  # flat decoder row each new beam extends
            new_tok = np.full((r, k), pad, dtype=np.int32)
            done = np.zeros(r, dtype=bool)
            for i in range(r):
                s = rows[i]
                vals = cand[i, top[i]]
                order = np.lexsort((top[i], -vals))  # best first, ties: lower flat index first
                n_live = 0
                for rank, j in enumerate(top[i][order]):
                    score_lp = float(cand[i, j])
                    if score_lp == -np.inf:
                        break
                    beam, tok = divmod(int(j), v)
                    if tok == eos_id:
                        if rank < k:
                            toks = seqs[i * k + beam].tolist() + [int(tok)]
                            finished[s].append(Hypothesis(toks, score_lp / lp(t), score_lp))
                    elif n_live < k:
                        new_lp[i, n_live] = score_lp
                        origin[i, n_live] = i * k + beam
                        new_tok[i, n_live] = tok
                        n_live += 1
                    if n_live == k:  # (k live found => ranks 0..k-1 were all seen)
                        break
                best_live = new_lp[i].max()
                if t >= limits[s] or best_live == -np.inf:
                    for j in range(n_live):  # length limit: live hypotheses end without EOS
                        toks = seqs[origin[i, j]].tolist() + [int(new_tok[i, j])]
                        lp_j = float(new_lp[i, j])
                        finished[s].append(Hypothesis(toks, lp_j / lp(t), lp_j))
                    done[i] = True
                elif len(finished[s]) >= k:
                    best_fin = max(h.score for h in finished[s])
                    done[i] = best_fin >= best_live / lp(t)
            keep = np.flatnonzero(~done)
            if keep.size == 0:
                break
            flat = origin[keep].reshape(-1)  # (R'*k,) rows of the current batch to continue
            dec.select(flat)
            seqs = np.concatenate([seqs[flat], new_tok[keep].reshape(-1, 1)], axis=1)
            beam_lp = new_lp[keep]
            last = new_tok[keep].reshape(-1)
            rows = rows[keep]
    results = []
    for hyps in finished:
        order = sorted(range(len(hyps)), key=lambda j: -hyps[j].score)  # stable: ties keep order
        results.append([hyps[j] for j in order[: int(n_best)]])
    return results


# --------------------------------------------------------------------------- translate
def _strip(ids: Sequence[int], bos_id: int, eos_id: int, pad_id: int) -> List[int]:
    out = []
    for i in ids:
        i = int(i)
        if i == eos_id:
            break
        if i not in (bos_id, pad_id):
            out.append(i)
    return out


@in_pynative
def translate(model, sentences: Sequence[str], src_vocab, tgt_vocab,
              tokenize_fn: Callable[[str], List[str]], *, beam_size: int = 1,
              batch_size: int = 64, max_len: Optional[int] = None, length_penalty: float = 0.6,
              src_bos: bool = False, src_eos: bool = False,
              max_src_len: Optional[int] = None,
              detokenize_fn: Callable[[List[str]], str] = " ".join,
              pad_id: Optional[int] = None) -> List[str]:
    """Translate raw sentences: tokenize, look up ids, pad, decode, detokenize.

    Sentences are decoded ``batch_size`` at a time, longest first (less padding per batch); the
    results come back in the input order.

    Args:
        model: a trained :class:`~mindtf.models.transformer.Transformer`.
        sentences: source sentences (raw text).
        src_vocab, tgt_vocab: :class:`~mindtf.tokenizers.word.Vocab` objects (anything with
            ``lookup``, ``lookup_tokens``, ``bos_id``, ``eos_id``; ``src_vocab`` needs ``bos_id``
            / ``eos_id`` only when ``src_bos`` / ``src_eos``).
        tokenize_fn: ``str -> list[str]`` source tokenizer (the one used for training).
        beam_size: 1 for greedy decoding, otherwise beam search with ``length_penalty``.
        max_len: as in :func:`greedy_decode`.
        src_bos, src_eos: add ``<bos>`` / ``<eos>`` around each source, as in training (off by
            default, as :class:`~mindtf.data.batching.Seq2SeqBatcher` leaves sources as is).
        max_src_len: cut longer sources (counting the added ``<bos>``/``<eos>``); without it a
            source longer than ``config.max_len`` raises ``InputError``.
        detokenize_fn: ``list[str] -> str``, the inverse of the tokenizer (default: join with
            spaces; the translation recipe passes :func:`mindtf.tokenizers.word.detokenize`).
        pad_id: padding id (default ``config.pad_id``; must match the vocabulary's ``<pad>``).

    Returns:
        one translated string per input sentence (BOS, EOS and padding removed).
    """
    if isinstance(sentences, str):
        raise InputError("sentences must be a list of strings, got one string: wrap it in a list.")
    if int(batch_size) < 1:
        raise InputError(f"batch_size must be >= 1, got {batch_size}.")
    pad = model.config.pad_id if pad_id is None else int(pad_id)
    for name, vocab in (("src_vocab", src_vocab), ("tgt_vocab", tgt_vocab)):
        has_pad = "<pad>" in getattr(vocab, "stoi", {})
        if has_pad and vocab.pad_id != pad:
            raise InputError(f"{name} pads with id {vocab.pad_id} but decoding uses "
                             f"pad_id={pad} (config.pad_id); build the model with "
                             f"pad_id={vocab.pad_id} or pass the matching pad_id.")
    ids = []
    for s in sentences:
        if not isinstance(s, str):
            raise InputError(f"sentences must be strings, got {type(s).__name__}: {s!r}.")
        seq = list(src_vocab.lookup(list(tokenize_fn(s))))
        if src_bos:
            seq.insert(0, src_vocab.bos_id)
        if src_eos:
            seq.append(src_vocab.eos_id)
        if max_src_len is not None:
            seq = seq[:int(max_src_len)]
        ids.append(seq)
    bos, eos = tgt_vocab.bos_id, tgt_vocab.eos_id
    order = sorted(range(len(ids)), key=lambda i: -len(ids[i]))  # longest first, stable
    results: List[Optional[str]] = [None] * len(ids)
    for start in range(0, len(order), int(batch_size)):
        chunk = order[start:start + int(batch_size)]
        width = max(1, max(len(ids[i]) for i in chunk))
        src = np.full((len(chunk), width), pad, dtype=np.int32)
        for row, i in enumerate(chunk):
            src[row, :len(ids[i])] = ids[i]
        if int(beam_size) == 1:
            outs = list(greedy_decode(model, src, bos_id=bos, eos_id=eos, max_len=max_len,
                                      pad_id=pad))
        else:
            hyps = beam_search(model, src, beam_size=beam_size, bos_id=bos, eos_id=eos,
                               max_len=max_len, length_penalty=length_penalty, n_best=1,
                               pad_id=pad)
            outs = [h[0].tokens if h else [] for h in hyps]
        for row, i in enumerate(chunk):
            tokens = tgt_vocab.lookup_tokens(_strip(outs[row], bos, eos, pad))
            results[i] = detokenize_fn(tokens)
    return results  # type: ignore[return-value]
