"""Count-based n-gram language models over token ids (numpy only: no MindSpore).

A language model gives every text a probability; the chain rule writes it as a product of
next-token probabilities, and an n-gram model keeps only the last ``n - 1`` tokens of each history::

    P(w_1 .. w_L) = prod_i P(w_i | w_1 .. w_{i-1})  ~=  prod_i P(w_i | w_{i-n+1} .. w_{i-1})

::

    ids (N,) --fit--> counts of every k-gram, k = 1..n  (np.unique over integer keys, no loop
                      over the text)
        add-k        P(w | h) = (c(h w) + k) / (c(h) + k V)        h: the longest context seen
        Kneser-Ney   P(w | h) = max(c(h w) - D, 0) / c(h)  +  D N1+(h .) / c(h) * P(w | h')
                     h' = h without its oldest token; below the top order c counts distinct
                     left neighbours N1+(. h w) ("continuations"); at the bottom 1/V
    log_probs(ids) -> (N-1,)   cross_entropy(ids) -> mean nats   perplexity(ids) = exp(CE)
    distribution(context) -> (V,)   sample(n, context, seed) -> ids

A context never seen (or seen only at the very end of the training text) backs off to its
shorter suffix, and both smoothings give every token of the vocabulary a probability > 0, so
every text gets a finite cross-entropy. Ids come from any mindtf tokenizer (char, word, BPE);
``vocab_size`` is the tokenizer's.

How the k-grams are numbered: a 1-gram's id is its token; a k-gram ``(t, rest)`` (its first
token, then a (k-1)-gram) has the key ``id(rest) * V + t`` and its id is the key's rank among
the k-grams seen. Keys stay below ``N * V`` whatever ``n`` is, and the ids of every suffix of a
context come out of one pass that prepends one token at a time.
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import List, Optional, Sequence, Union

import numpy as np

from mindtf.config import dataclass_from_dict
from mindtf.errors import CheckpointError, InputError, check_choice, check_range
from mindtf.metrics import perplexity

__all__ = ["NgramConfig", "NgramLM", "NGRAM_FILE"]

#: the arrays of a saved n-gram model (next to ``config.json``)
NGRAM_FILE = "ngram.npz"
PathLike = Union[str, "os.PathLike[str]"]


@dataclass
class NgramConfig:
    """Hyper-parameters of :class:`NgramLM`."""

    vocab_size: int  # number of token ids (the tokenizer's vocab_size)
    order: int = 3  # n: each token is predicted from the n - 1 tokens before it
    smoothing: str = "kneser-ney"  # "kneser-ney" (interpolated) | "add-k" (Laplace with k=1)
    k: float = 1.0  # the pseudo-count of add-k smoothing
    discount: Optional[float] = None  # Kneser-Ney's D; None: n1 / (n1 + 2 n2) for each order

    def __post_init__(self) -> None:
        name = f"{type(self).__name__}."
        check_range(name + "vocab_size", self.vocab_size, 1, integer=True)
        check_range(name + "order", self.order, 1, 32, integer=True)
        check_choice(name + "smoothing", self.smoothing, ("kneser-ney", "add-k"))
        check_range(name + "k", self.k, 0, lo_open=True,
                    fix="k > 0 gives unseen tokens a probability (k = 1 is Laplace).")
        check_range(name + "discount", self.discount, 0, 1, lo_open=True, optional=True,
                    fix="none estimates D from the counts.")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "NgramConfig":
        return dataclass_from_dict(cls, d)


class NgramLM:
    """An n-gram language model: ``NgramLM(NgramConfig(vocab_size=65, order=5)).fit(ids)``.

    After :meth:`fit`: ``keys[k-1]`` (sorted int64), ``counts[k-1]`` and ``prefix[k-1]`` (the id
    of each k-gram's first k-1 tokens, its context) describe the distinct k-grams of the text.
    """

    def __init__(self, config: NgramConfig):
        self.config = config
        self.keys: List[np.ndarray] = []
        self.counts: List[np.ndarray] = []
        self.prefix: List[np.ndarray] = []

    # ------------------------------------------------------------------ counting
    def fit(self, ids) -> "NgramLM":
        """Count every k-gram (k = 1..order) of the token stream ``ids`` (N,); returns self."""
        t = self._check_ids(ids, "training ids").astype(np.int64)  # (N,)
        v, n = self.config.vocab_size, self.config.order
        self.keys = [np.arange(v, dtype=np.int64)]
        self.counts = [np.bincount(t, minlength=v).astype(np.int64)]
        self.prefix = [np.zeros(v, np.int64)]  # the empty context has id 0
        gram_ids = t  # (N-k+2,) id of the (k-1)-gram starting at each position
        for k in range(2, n + 1):
            m = max(len(t) - k + 1, 0)  # positions where a k-gram starts
            key = gram_ids[1:1 + m] * v + t[:m]  # (m,) id(rest) * V + first token
            uniq, inverse, count = np.unique(key, return_inverse=True, return_counts=True)
            prefix = np.zeros(len(uniq), np.int64)
            prefix[inverse] = gram_ids[:m]  # the (k-1)-gram that starts where this one does
            self.keys.append(uniq)
            self.counts.append(count.astype(np.int64))
            self.prefix.append(prefix)
            gram_ids = inverse.reshape(-1).astype(np.int64)
        self._prepare()
        return self

    def _prepare(self) -> None:
        """Derive what the probabilities need: for each order k, the value of each k-gram (its
        count, or for Kneser-Ney below the top order its continuation count), the total and the
        number of non-zero values per context, and the discount."""
        c, n = self.config, self.config.order
        kneser_ney = c.smoothing == "kneser-ney"
        self.values, self.totals, self.types, self.discounts = [], [], [], []
        for k in range(1, n + 1):
            value = self.counts[k - 1].astype(np.float64)
            if kneser_ney and k < n:  # N1+(. g): distinct (k+1)-grams whose suffix is g
                value = np.bincount(self.keys[k] // c.vocab_size,
                                    minlength=len(self.keys[k - 1])).astype(np.float64)
            n_contexts = 1 if k == 1 else len(self.keys[k - 2])
            self.values.append(value)
            self.totals.append(np.bincount(self.prefix[k - 1], weights=value,
                                           minlength=n_contexts))
            self.types.append(np.bincount(self.prefix[k - 1], weights=(value > 0),
                                          minlength=n_contexts))
            n1, n2 = float(np.sum(value == 1)), float(np.sum(value == 2))
            d = c.discount or (n1 / (n1 + 2 * n2) if n1 + n2 > 0 else 0.5)
            self.discounts.append(float(np.clip(d, 0.01, 1.0)))

    @property
    def num_ngrams(self) -> List[int]:
        """How many distinct k-grams the training text holds, for k = 1..order."""
        return [int(np.sum(self.counts[0] > 0))] + [len(k) for k in self.keys[1:]]

    def count(self, tokens: Sequence[int]) -> int:
        """How often the token sequence ``tokens`` (1..order ids) occurs in the training text."""
        tokens = self._check_ids(tokens, "tokens")
        if not 1 <= len(tokens) <= self.config.order:
            raise InputError(f"count() takes 1 to order={self.config.order} tokens, got "
                             f"{len(tokens)}.")
        gram = np.array([tokens[-1]], np.int64)
        for k in range(2, len(tokens) + 1):
            gram = self._lookup(k, gram, np.array([tokens[-k]], np.int64))
        return int(self.counts[len(tokens) - 1][gram[0]]) if gram[0] >= 0 else 0

    # ------------------------------------------------------------------ probabilities
    def _lookup(self, k: int, rest: np.ndarray, first: np.ndarray) -> np.ndarray:
        """Ids of the k-grams ``(first, rest)`` (rest: (k-1)-gram ids), -1 where unseen."""
        keys = self.keys[k - 1]
        ok = (rest >= 0) & (first >= 0)
        if len(keys) == 0:
            return np.full(rest.shape, -1, np.int64)
        query = np.where(ok, rest * self.config.vocab_size + first, -1)
        pos = np.minimum(np.searchsorted(keys, query), len(keys) - 1)
        return np.where(ok & (keys[pos] == query), pos, -1)

    def probs(self, contexts: np.ndarray, tokens: np.ndarray) -> np.ndarray:
        """``P(tokens[i] | contexts[i])`` for ``contexts`` (M, order-1) (ids, -1 = no token:
        the start of a text) and ``tokens`` (M,) -> (M,) float64, every value > 0."""
        c, n = self.config, self.config.order
        w = self._check_ids(tokens, "tokens").astype(np.int64)           # (M,)
        h = np.asarray(contexts, np.int64).reshape(len(w), n - 1)       # (M, n-1), newest last
        if h.size and (h.min() < -1 or h.max() >= c.vocab_size):
            raise InputError(f"contexts hold ids outside [-1, {c.vocab_size}): -1 marks the "
                             "start of a text, other ids come from the tokenizer.")
        ctx = [np.zeros(len(w), np.int64)]  # ids of the context's suffixes, length 0..n-1
        gram = [w]                          # ids of (suffix, w), length 1..n
        for j in range(1, n):
            ctx.append(h[:, -1] if j == 1 else self._lookup(j, ctx[-1], h[:, -j]))
            gram.append(self._lookup(j + 1, gram[-1], h[:, -j]))
        p = np.full(len(w), 1.0 / c.vocab_size)  # the bottom: every token alike
        for k in range(1, n + 1):            # shortest context first; longer ones refine
            cid, gid = ctx[k - 1], gram[k - 1]
            total = np.where(cid >= 0, self.totals[k - 1][np.maximum(cid, 0)], 0.0)
            value = np.where(gid >= 0, self.values[k - 1][np.maximum(gid, 0)], 0.0)
            seen = total > 0  # an unseen context keeps the shorter context's p (backoff)
            safe = np.where(seen, total, 1.0)
            if c.smoothing == "add-k":
                new = (value + c.k) / (safe + c.k * c.vocab_size)
            else:
                d = self.discounts[k - 1]
                types = self.types[k - 1][np.maximum(cid, 0)]
                new = (np.maximum(value - d, 0.0) + d * types * p) / safe
            p = np.where(seen, new, p)
        return p

    def log_probs(self, ids) -> np.ndarray:
        """``log P(ids[i] | the tokens before it)`` for i = 1..N-1 (nats), shape (N-1,)."""
        ids = self._check_ids(ids, "ids").astype(np.int64)
        if len(ids) < 2:
            raise InputError("scoring needs at least 2 tokens: the first one is the context of "
                             "the second.")
        n = self.config.order
        padded = np.concatenate([np.full(n - 1, -1, np.int64), ids])  # (N + n-1,)
        # the n-1 tokens before each target ids[i], i = 1..N-1: (N-1, n-1)
        contexts = np.lib.stride_tricks.sliding_window_view(padded, n - 1)[1:len(ids)]
        return np.log(self.probs(contexts, ids[1:]))

    def cross_entropy(self, ids) -> float:
        """Mean next-token cross-entropy of ``ids`` in nats (the first token is given)."""
        return float(-self.log_probs(ids).mean())

    def perplexity(self, ids) -> float:
        """``exp(cross_entropy(ids))``: the number of equally likely tokens it amounts to."""
        return perplexity(self.cross_entropy(ids))

    def distribution(self, context: Sequence[int] = ()) -> np.ndarray:
        """``P(w | context)`` for every token w: (V,), sums to 1. Only the last order-1 ids of
        ``context`` count; a shorter one is treated as the start of a text."""
        c, n = self.config, self.config.order
        context = self._check_ids(context, "context").astype(np.int64)
        context = context[max(len(context) - (n - 1), 0):]  # the last n-1 ids at most
        row = np.concatenate([np.full(n - 1 - len(context), -1, np.int64), context])
        return self.probs(np.tile(row, (c.vocab_size, 1)), np.arange(c.vocab_size))

    def sample(self, max_new_tokens: int, context: Sequence[int] = (),
               seed: Optional[int] = None, temperature: float = 1.0,
               rng: Optional[np.random.Generator] = None) -> np.ndarray:
        """``context`` followed by ``max_new_tokens`` sampled ids, (len(context) + n,) int64.
        The same ``seed`` gives the same text; ``temperature`` < 1 sharpens, > 1 flattens."""
        check_range("max_new_tokens", max_new_tokens, 0, integer=True, error=InputError)
        check_range("temperature", temperature, 0, lo_open=True, error=InputError,
                    fix="Sampling divides log-probabilities by it.")
        rng = rng if rng is not None else np.random.default_rng(seed)
        out = [int(i) for i in self._check_ids(context, "context")]
        for _ in range(max_new_tokens):
            p = self.distribution(out)
            if temperature != 1.0:
                p = np.exp((np.log(p) - np.log(p).max()) / temperature)
            out.append(int(rng.choice(len(p), p=p / p.sum())))
        return np.array(out, np.int64)

    # ------------------------------------------------------------------ checks and files
    def _check_ids(self, ids, what: str) -> np.ndarray:
        arr = np.asarray(ids)
        if arr.size == 0:
            return np.zeros(0, np.int64)
        if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer):
            raise InputError(f"{what} must be a 1-D sequence of integer token ids, got "
                             f"{arr.dtype} of shape {arr.shape}: encode the text with the "
                             "tokenizer first.")
        v = self.config.vocab_size
        if arr.min() < 0 or arr.max() >= v:
            bad = int(arr.max()) if arr.max() >= v else int(arr.min())
            raise InputError(f"{what}: token id {bad} is outside the vocabulary [0, {v}): set "
                             "NgramConfig.vocab_size to the tokenizer's vocab_size.")
        return arr

    def save_pretrained(self, path: PathLike) -> Path:
        """Write ``config.json`` and the counts (:data:`NGRAM_FILE`) into the directory."""
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        arrays = {f"{name}_{k}": a for name, arrs in
                  (("keys", self.keys), ("counts", self.counts), ("prefix", self.prefix))
                  for k, a in enumerate(arrs, start=1)}
        np.savez_compressed(path / NGRAM_FILE, **arrays)
        (path / "config.json").write_text(json.dumps(
            {"model_type": "mindtf-ngram", "mindtf": self.config.to_dict()}, indent=2),
            encoding="utf-8")
        return path

    @classmethod
    def from_pretrained(cls, path: PathLike) -> "NgramLM":
        """The model :meth:`save_pretrained` wrote into the directory ``path``."""
        path = Path(path)
        try:
            meta = json.loads((path / "config.json").read_text(encoding="utf-8"))
            model = cls(NgramConfig.from_dict(meta["mindtf"]))
            with np.load(path / NGRAM_FILE) as f:
                n = model.config.order
                model.keys = [f[f"keys_{k}"] for k in range(1, n + 1)]
                model.counts = [f[f"counts_{k}"] for k in range(1, n + 1)]
                model.prefix = [f[f"prefix_{k}"] for k in range(1, n + 1)]
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise CheckpointError(f"{path} does not hold an n-gram model ({type(exc).__name__}: "
                                  f"{exc}); write one with NgramLM.save_pretrained.") from None
        model._prepare()
        return model
