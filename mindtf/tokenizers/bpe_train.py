"""Learning byte-level BPE merges from a corpus, fast enough to run inside a lesson.

The textbook algorithm (Sennrich et al., 2016) is four lines:

1. split every word into symbols (here: the bytes of its UTF-8 encoding);
2. count every pair of adjacent symbols over the corpus;
3. merge the most frequent pair into a new symbol everywhere it occurs;
4. repeat 2-3 until the vocabulary has the size you want.

Done literally, step 2 re-reads the whole corpus once per merge, which is far too slow for
thousands of merges. Three standard tricks make it fast; each is a few lines below:

* **count unique pre-tokens, not positions.** Tiny Shakespeare has ~300k pre-tokens but only ~25k
  distinct ones. We store each distinct pre-token once with its count, and a pair inside a word
  that occurs ``n`` times counts ``n`` times (:func:`count_pretokens`).
* **update pair counts incrementally.** Merging ``(a, b)`` only changes the pairs inside the words
  that contain ``a b``. We keep an index ``pair -> words that contain it`` and, for each affected
  word, subtract its old pairs and add its new ones.
* **a lazy max-heap** finds the most frequent pair without scanning every pair. Counts of old pairs
  only go down, so an entry in the heap is an upper bound: when the entry we pop is out of date we
  push it back with its true count and pop again.

Ties (two pairs with the same count) are broken by taking the smaller pair in string order, so the
result does not depend on dict or hash order: same corpus, same merges, on every machine.

    >>> counts = count_pretokens(["low lower lowest"])  # pre-tokens: low, Ġlower, Ġlowest
    >>> learn_merges(counts, num_merges=3)
    [('l', 'o'), ('lo', 'w'), ('low', 'e')]

(The third merge is a tie: ``Ġ low`` and ``low e`` both occur twice; ``'low' < 'Ġ'``.)
"""
from __future__ import annotations

import heapq
from collections import Counter, defaultdict
from typing import DefaultDict, Dict, Iterable, List, Set, Tuple, Union

import regex

from mindtf.tokenizers.bytes_unicode import GPT2_REGEX, bytes_to_symbols

__all__ = ["count_pretokens", "learn_merges"]

Pair = Tuple[str, str]


def count_pretokens(texts: Union[str, Iterable[str]],
                    pattern: "regex.Pattern" = GPT2_REGEX) -> Counter:
    """Count how often each pre-token occurs, in byte-symbol form (``' the'`` -> ``'Ġthe'``).

    ``texts`` is one string or an iterable of strings (lines, documents); pre-tokens never span two
    strings. Special tokens should be removed from the text before counting (they are never merged).
    """
    if isinstance(texts, str):
        texts = [texts]
    raw: Counter = Counter()
    for text in texts:
        raw.update(pattern.findall(text))
    # convert each *distinct* pre-token to byte symbols once, not each occurrence
    return Counter({bytes_to_symbols(piece.encode("utf-8")): n for piece, n in raw.items()})


def _merge_word(word: List[str], a: str, b: str, merged: str) -> List[str]:
    """Replace every ``a b`` in ``word`` (left to right, non-overlapping) by ``merged``."""
    out: List[str] = []
    i = 0
    while i < len(word):
        if i + 1 < len(word) and word[i] == a and word[i + 1] == b:
            out.append(merged)
            i += 2
        else:
            out.append(word[i])
            i += 1
    return out


def learn_merges(pretoken_counts: Dict[str, int], num_merges: int) -> List[Pair]:
    """Learn up to ``num_merges`` merges, most frequent pair first.

    ``pretoken_counts`` maps each pre-token (already in byte-symbol form, see
    :func:`count_pretokens`) to its count. Returns the merges in the order they were learnt; that
    order is the merge *rank* used when encoding. Stops early when no pair is left to merge.
    """
    # words[i]: the current symbols of the i-th distinct pre-token; freqs[i]: how often it occurs
    words: List[List[str]] = [list(w) for w in pretoken_counts]
    freqs: List[int] = list(pretoken_counts.values())

    # pair counts over the corpus, and which words contain each pair
    pair_counts: DefaultDict[Pair, int] = defaultdict(int)
    where: DefaultDict[Pair, Set[int]] = defaultdict(set)
    for i, word in enumerate(words):
        for pair in zip(word, word[1:]):
            pair_counts[pair] += freqs[i]
            where[pair].add(i)

    # max-heap via negated counts; equal counts pop the smaller pair first (deterministic ties)
    heap = [(-count, pair) for pair, count in pair_counts.items()]
    heapq.heapify(heap)

    merges: List[Pair] = []
    while len(merges) < num_merges and heap:
        neg_count, pair = heapq.heappop(heap)
        count = pair_counts.get(pair, 0)
        if count <= 0:
            continue  # this pair was merged away or no longer occurs
        if -neg_count != count:
            heapq.heappush(heap, (-count, pair))  # stale entry: retry with the true count
            continue

        merges.append(pair)
        for new_pair in _apply_merge(pair, words, freqs, pair_counts, where):
            heapq.heappush(heap, (-pair_counts[new_pair], new_pair))
    return merges


def _apply_merge(pair: Pair, words: List[List[str]], freqs: List[int],
                 pair_counts: DefaultDict[Pair, int],
                 where: DefaultDict[Pair, Set[int]]) -> Set[Pair]:
    """Merge ``pair`` in every word that contains it and update the counts in place.

    Returns the pairs that involve the new symbol: their counts went up, so they need new heap
    entries. (Every other pair's count can only have gone down.)
    """
    a, b = pair
    merged = a + b
    created: Set[Pair] = set()
    for i in where.pop(pair):
        old = words[i]
        new = _merge_word(old, a, b, merged)
        if len(new) == len(old):
            continue  # index entry out of date: the pair was already merged away in this word
        freq = freqs[i]
        for p in zip(old, old[1:]):
            pair_counts[p] -= freq
        for p in zip(new, new[1:]):
            pair_counts[p] += freq
            if p[0] == merged or p[1] == merged:
                where[p].add(i)
                created.add(p)
        words[i] = new
    pair_counts.pop(pair, None)
    return created
