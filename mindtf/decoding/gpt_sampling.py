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

One call makes at most :data:`~mindtf.decoding.MAX_NEW_TOKENS` (100,000) tokens; the settings are
checked by :func:`check_sampling` before anything runs. Long runs show a progress bar (or stream
their tokens through ``on_token``), and Ctrl-C stops at the next token, raising
:class:`~mindtf.errors.Interrupted` with the ids so far in its ``partial``.
"""
from __future__ import annotations

import contextlib
from typing import Callable, Iterable, Optional

import numpy as np

import mindspore as ms
from mindspore import Tensor

from mindtf.decoding import MAX_NEW_TOKENS
from mindtf.errors import InputError, Interrupted, check_range
from mindtf.models.base import as_token_ids
from mindtf.models.gpt_decoder import CompiledDecoder
from mindtf.progress import progress as show_progress
from mindtf.runtime import graph_mode, in_pynative, stop_signals

__all__ = ["generate", "check_sampling", "process_logits", "sample_next", "MAX_NEW_TOKENS"]

#: generate's progress bar appears from this many new tokens on (``progress=None``)
PROGRESS_FROM = 1000


def check_sampling(max_new_tokens: int, temperature: float = 1.0, top_k: Optional[int] = None,
                   top_p: Optional[float] = None, repetition_penalty: float = 1.0) -> None:
    """Raise :class:`~mindtf.errors.InputError` for a sampling setting :func:`generate` cannot
    use, naming the setting, its value and what is allowed."""
    check_range("max_new_tokens", max_new_tokens, 0, MAX_NEW_TOKENS, integer=True,
                error=InputError, fix="For more, generate again from the end of the output.")
    check_range("temperature", temperature, 0, error=InputError, fix="0 is greedy decoding.")
    check_range("top_k", top_k, 1, integer=True, optional=True, error=InputError,
                fix="none keeps every token.")
    check_range("top_p", top_p, 0, 1, lo_open=True, optional=True, error=InputError,
                fix="1 (or none) keeps every token.")
    check_range("repetition_penalty", repetition_penalty, 0, lo_open=True, error=InputError,
                fix="1 is no penalty; 1.1-1.3 discourages repeats.")


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
    arr = as_token_ids(idx, "the prompt")
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or arr.shape[1] == 0:
        raise InputError("the prompt must be a non-empty (B, T) array of ids, "
                         f"got shape {arr.shape}.")
    return arr


@in_pynative
def generate(model, idx, max_new_tokens: int, *, temperature: float = 1.0,
             top_k: Optional[int] = None, top_p: Optional[float] = None,
             repetition_penalty: float = 1.0, stop_tokens: Optional[Iterable[int]] = None,
             vocab_limit: Optional[int] = None, use_cache: bool = True, compiled: bool = True,
             seed: Optional[int] = None, rng: Optional[np.random.Generator] = None,
             pad_id: Optional[int] = None,
             on_token: Optional[Callable[[np.ndarray], None]] = None,
             progress: Optional[bool] = None) -> np.ndarray:
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
        on_token: called with each new column of ids ``(B,)`` as it is made (to stream text).
        progress: a progress bar over the tokens; ``None``: from :data:`PROGRESS_FROM` new
            tokens on, unless ``on_token`` streams them.

    Returns:
        numpy ``(B, T + n)`` int32: the prompts followed by the generated ids
        (``n <= max_new_tokens <= MAX_NEW_TOKENS``).

    Raises:
        InputError: a setting :func:`check_sampling` rejects, or a bad prompt.
        Interrupted: Ctrl-C or SIGTERM; its ``partial`` holds the ids generated so far.

    Runs in PyNative mode whatever the current mode (restored afterwards), so it can follow a
    compiled training run directly.
    """
    check_sampling(max_new_tokens, temperature, top_k, top_p, repetition_penalty)
    seqs = _as_ids(idx)
    prompt_len = seqs.shape[1]
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
    if progress is None:
        progress = on_token is None and max_new_tokens >= PROGRESS_FROM
    bar = show_progress(max_new_tokens, desc="generating", unit="token", disable=not progress)
    with mode, bar, stop_signals("stopping after this token") as stop:
        seqs = _loop(model, seqs, max_new_tokens, decoder, block, stops, greedy, rng,
                     pad_id, dict(temperature=temperature, top_k=top_k, top_p=top_p,
                                  repetition_penalty=repetition_penalty, vocab_limit=limit),
                     use_cache, lambda col: _after_token(col, on_token, bar, stop))
    if stop:
        raise Interrupted(f"generation interrupted after {seqs.shape[1] - prompt_len} of "
                          f"{max_new_tokens} tokens", partial=seqs)
    return seqs


def _after_token(col: np.ndarray, on_token, bar, stop) -> bool:
    """Report one new column of ids; True to go on."""
    if on_token is not None:
        on_token(col)
    bar.update(1)
    return not stop


def _loop(model, seqs, max_new_tokens, decoder, block, stops, greedy, rng, pad_id,
          processing, use_cache, after_token) -> np.ndarray:
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
        if not after_token(nxt) or (stops and finished.all()):
            break
    return seqs


def _compiled_decoder(model, batch_size: int):
    """One :class:`~mindtf.models.gpt_decoder.CompiledDecoder` per (model, batch size), kept on the
    model so that later calls reuse the compiled graphs."""
    store = model.__dict__.setdefault("_mindtf_decoders", {})
    if batch_size not in store:
        store[batch_size] = CompiledDecoder(model, batch_size)
    return store[batch_size]
