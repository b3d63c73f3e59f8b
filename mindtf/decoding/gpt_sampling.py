"""Text generation for :class:`~mindtf.models.gpt.GPT`: greedy and sampled decoding on the KV cache.

Each step the model produces logits for the last position ``(B, V)``; they are processed on the
host in numpy (cheap at ``B x V``, identical on every device, easy to read):

1. ids at or above ``vocab_limit`` (padding rows of an enlarged embedding table) are banned, so
   sampling never emits an id outside the real vocabulary;
2. ``repetition_penalty`` (CTRL, Keskar et al. 2019) divides positive / multiplies negative
   logits of tokens already in the sequence;
3. ``temperature`` rescales; ``0`` means greedy (arg-max);
4. ``top_k`` keeps the k best tokens; ``top_p`` keeps the smallest set with probability >= p;
5. a token is drawn with a seeded ``numpy.random.Generator``.

With ``use_cache=True`` the prompt is run once and then one token per step, attending to the
cached keys/values; with ``use_cache=False`` the whole (cropped) context is recomputed every step
(the slow reference).
"""
from __future__ import annotations

import contextlib
from typing import Iterable, Optional

import numpy as np

import mindspore as ms
from mindspore import Tensor

from mindtf.errors import InputError
from mindtf.models.gpt_decoder import CompiledDecoder
from mindtf.runtime import graph_mode, in_pynative

__all__ = ["generate", "process_logits", "sample_next"]


def process_logits(logits: np.ndarray, seqs: np.ndarray, *, temperature: float = 1.0,
                   top_k: Optional[int] = None, top_p: Optional[float] = None,
                   repetition_penalty: float = 1.0, vocab_limit: Optional[int] = None
                   ) -> np.ndarray:
    """Apply the steps above to ``logits (B, V)`` given the sequences so far ``seqs (B, T)``.

    Returns float64 logits with banned entries at ``-inf`` (temperature not applied when 0).
    """
    x = logits.astype(np.float64).copy()  # (B, V)
    v = x.shape[-1]
    if vocab_limit is not None and vocab_limit < v:
        x[:, vocab_limit:] = -np.inf
    if repetition_penalty != 1.0:
        for b in range(x.shape[0]):
            seen = np.unique(seqs[b][(seqs[b] >= 0) & (seqs[b] < v)])
            vals = x[b, seen]
            x[b, seen] = np.where(vals > 0, vals / repetition_penalty, vals * repetition_penalty)
    if temperature > 0:
        x = x / temperature
    if top_k is not None and 0 < top_k < v:
        kth = np.sort(x, axis=-1)[:, -top_k][:, None]  # (B, 1)
        x = np.where(x < kth, -np.inf, x)
    if top_p is not None and 0.0 < top_p < 1.0:
        order = np.argsort(-x, axis=-1)  # (B, V) best first
        sorted_x = np.take_along_axis(x, order, -1)
        p = np.exp(sorted_x - sorted_x[:, :1])
        p /= p.sum(-1, keepdims=True)
        cum = np.cumsum(p, -1)
        drop_sorted = (cum - p) >= top_p  # keep tokens until the mass reaches top_p
        drop = np.zeros_like(drop_sorted)
        np.put_along_axis(drop, order, drop_sorted, -1)
        x = np.where(drop, -np.inf, x)
    return x


def sample_next(x: np.ndarray, greedy: bool, rng: np.random.Generator) -> np.ndarray:
    """Pick one id per row from processed logits ``x (B, V)``: arg-max or a draw."""
    if greedy:
        return x.argmax(-1)
    p = np.exp(x - x.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    return np.array([rng.choice(p.shape[-1], p=row) for row in p])


def _as_ids(idx) -> np.ndarray:
    arr = idx.asnumpy() if isinstance(idx, Tensor) else np.asarray(idx)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise InputError("the prompt must be a non-empty (B, T) array of ids, "
                         f"got shape {arr.shape}.")
    return arr.astype(np.int32)


@in_pynative
def generate(model, idx, max_new_tokens: int, *, temperature: float = 1.0,
             top_k: Optional[int] = None, top_p: Optional[float] = None,
             repetition_penalty: float = 1.0, stop_tokens: Optional[Iterable[int]] = None,
             vocab_limit: Optional[int] = None, use_cache: bool = True, compiled: bool = True,
             seed: Optional[int] = None, rng: Optional[np.random.Generator] = None,
             pad_id: Optional[int] = None) -> np.ndarray:
    """Continue the prompts ``idx (B, T)`` (or ``(T,)``) by up to ``max_new_tokens`` tokens.

    Args:
        model: a :class:`~mindtf.models.gpt.GPT` (put in eval mode by this function).
        temperature: ``0`` for greedy decoding, otherwise the sampling temperature.
        top_k, top_p, repetition_penalty, vocab_limit: see the module docstring.
        stop_tokens: ids that end a sequence; a finished row is filled with ``pad_id``
            (default: the stop token itself) while the others go on.
        use_cache: run on the KV cache (fast) or recompute the prefix each step.
        compiled: with the cache, run each step as one compiled graph over a fixed-size cache
            (:class:`~mindtf.models.gpt_decoder.CompiledDecoder`, fastest) instead of op by op.
        seed / rng: randomness for sampling (``seed`` builds a fresh generator).

    Returns:
        numpy ``(B, T + n)`` int32: the prompts followed by the generated ids.

    Runs in PyNative mode whatever the current mode (restored afterwards), so it can follow a
    compiled training run directly.
    """
    if max_new_tokens < 0:
        raise InputError(f"max_new_tokens must be >= 0, got {max_new_tokens}.")
    if temperature < 0:
        raise InputError(f"temperature must be >= 0 (0 = greedy), got {temperature}.")
    seqs = _as_ids(idx)
    rng = rng if rng is not None else np.random.default_rng(seed)
    block = model.config.block_size
    limit = model.config.vocab_size if vocab_limit is None else min(vocab_limit,
                                                                   model.config.vocab_size)
    stops = set(int(s) for s in (stop_tokens or ()))
    greedy = temperature == 0
    model.set_train(False)
    decoder = None
    mode = contextlib.nullcontext()
    if use_cache and compiled:
        decoder = _compiled_decoder(model, seqs.shape[0])
        mode = graph_mode()  # the decoder is the only MindSpore code in the loop
    with mode:
        return _loop(model, seqs, max_new_tokens, decoder, block, stops, greedy, rng,
                     pad_id, dict(temperature=temperature, top_k=top_k, top_p=top_p,
                                  repetition_penalty=repetition_penalty, vocab_limit=limit),
                     use_cache)


def _loop(model, seqs, max_new_tokens, decoder, block, stops, greedy, rng, pad_id,
          processing, use_cache) -> np.ndarray:
    """The token loop of :func:`generate` (compiled decoder, PyNative cache or recompute)."""
    finished = np.zeros(seqs.shape[0], dtype=bool)
    cache, length = None, 0
    for _ in range(max_new_tokens):
        if decoder is not None:
            if length == 0 or length + 1 > block:  # (re)fill: the prompt, or the last half block
                keep = seqs[:, -block:] if length == 0 else seqs[:, -(block // 2):]
                model.check_input(keep)
                last = decoder(Tensor(keep), Tensor(0, ms.int32)).asnumpy()
                length = keep.shape[1]
            else:
                last = decoder(Tensor(seqs[:, -1:]), Tensor(length, ms.int32)).asnumpy()
                length += 1
        elif use_cache:
            if cache is None or cache.length + 1 > block:
                # (re)fill the cache with the last part of the context that fits
                keep = seqs[:, -block:] if cache is None else seqs[:, -(block // 2):]
                cache = model.new_cache()
                logits = model(Tensor(keep), cache, last_only=True)
            else:
                logits = model(Tensor(seqs[:, -1:]), cache, last_only=True)
        else:
            logits = model(Tensor(seqs[:, -block:]), last_only=True)
        if decoder is None:
            last = logits[:, -1, :].asnumpy()  # (B, V)
        x = process_logits(last, seqs, **processing)
        nxt = sample_next(x, greedy, rng).astype(np.int32)  # (B,)
        if stops:  # finished rows repeat their stop token (or pad_id)
            filler = seqs[:, -1] if pad_id is None else np.full_like(nxt, pad_id)
            nxt = np.where(finished, filler, nxt)
            finished |= np.isin(nxt, list(stops))
        seqs = np.concatenate([seqs, nxt[:, None]], axis=1)
        if stops and finished.all():
            break
    return seqs


def _compiled_decoder(model, batch_size: int):
    """One :class:`~mindtf.models.gpt_decoder.CompiledDecoder` per (model, batch size), kept on the
    model so that later calls reuse the compiled graphs."""
    store = model.__dict__.setdefault("_mindtf_decoders", {})
    if batch_size not in store:
        store[batch_size] = CompiledDecoder(model, batch_size)
    return store[batch_size]
