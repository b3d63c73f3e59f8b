"""Byte-level BPE (mindtf.tokenizers.bpe): training, round trips, and parity with GPT-2-style
reference implementations (Hugging Face ``tokenizers``, ``tiktoken``) built from the same files."""
from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mindtf.errors import InputError
from mindtf.tokenizers import ByteLevelBPE, pretokenize
from mindtf.tokenizers.bpe_train import count_pretokens, learn_merges
from mindtf.tokenizers.bytes_unicode import (BYTE_TO_UNICODE, UNICODE_TO_BYTE, bytes_to_symbols,
                                             symbols_to_bytes)

EOT = "<|endoftext|>"
MIXED = [
    "The quick brown fox jumps over the lazy dog. It's 2024, and we'll see what they've done!\n",
    "Zwei junge weiße Männer sind im Freien in der Nähe vieler Büsche. Größe, Übermaß, Straße.\n",
    "我们今天去公园玩，天气很好。这是一个用于测试的中文句子。\n",
    "Emoji: 🙂👍🏽 🎉🎉 👨‍👩‍👧 — ça va? naïve café… 12345 3.14\t tabs   and   spaces\n",
]
SAMPLES = {
    "english": "The lazy dog's owner said: \"we'll jump over 3 foxes in 2024!\"  Double  spaces.\n",
    "german": "Ein kleines Mädchen klettert in ein Spielhaus aus Holz. Die Größe ist übermäßig.",
    "chinese": "我们今天去公园玩，天气很好。明天会下雨吗？",
    "emoji": "🙂👍🏽 party 🎉🎉 family 👨‍👩‍👧 flags 🇩🇪🇨🇳 ✔️",
}


# Text for comparisons with Hugging Face: any *assigned* character (in this Python's Unicode
# database). Unassigned code points are left out because the regex engines disagree on them: each
# ships its own Unicode version, and a code point that is unassigned in one can be a letter (\p{L})
# in a newer one (e.g. U+3D000). Lone surrogates (Cs) are not text at all: UTF-8 cannot encode them.
assigned_text = st.text(st.characters(blacklist_categories=("Cn", "Cs")))


def _data_root() -> Path:
    mirror = os.environ.get("MINDTF_DATA_MIRROR")
    if mirror:
        return Path(mirror)
    return Path(__file__).resolve().parents[1].parent / "shared" / "data"


def _shakespeare() -> str:
    path = _data_root() / "tinyshakespeare" / "input.txt"
    if not path.is_file():
        pytest.skip(f"Tiny Shakespeare not found at {path}")
    return path.read_text(encoding="utf-8")


@pytest.fixture(scope="module")
def small_bpe() -> ByteLevelBPE:
    """A small tokenizer trained on the mixed corpus (cheap: a few hundred merges)."""
    return ByteLevelBPE.train(MIXED * 5, vocab_size=400, special_tokens=(EOT, "<pad>"))


# --------------------------------------------------------------------------------- byte map
def test_byte_map_is_gpt2s():
    assert len(BYTE_TO_UNICODE) == 256 and len(set(BYTE_TO_UNICODE.values())) == 256
    assert list(BYTE_TO_UNICODE.values())[0] == "!"  # id 0 in GPT-2's vocab
    assert BYTE_TO_UNICODE[32] == "Ġ" and BYTE_TO_UNICODE[10] == "Ċ"
    assert all(ch.isprintable() and not ch.isspace() for ch in UNICODE_TO_BYTE)
    data = bytes(range(256))
    assert symbols_to_bytes(bytes_to_symbols(data)) == data


@settings(max_examples=200, deadline=None)
@given(assigned_text)
def test_pretokenize_matches_hf_byte_level(text):
    pre_tokenizers = pytest.importorskip("tokenizers.pre_tokenizers")
    hf = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    expected = [piece for piece, _ in hf.pre_tokenize_str(text)]
    assert [bytes_to_symbols(p.encode()) for p in pretokenize(text)] == expected


# --------------------------------------------------------------------------------- training
def test_training_is_deterministic():
    a = ByteLevelBPE.train(MIXED, vocab_size=350)
    b = ByteLevelBPE.train(list(reversed(MIXED)), vocab_size=350)  # document order is irrelevant
    assert a.merges == b.merges and a.vocab == b.vocab
    assert len(a.merges) == 350 - 256 - 1 and a.vocab_size == 350


def test_merges_are_most_frequent_pairs_first():
    counts = count_pretokens("aaab aab ab")  # pre-tokens: aaab, Ġaab, Ġab
    # pairs: (a,a)=3, (a,b)=3, (Ġ,a)=2 -> tie (a,a)/(a,b): smaller pair first
    assert learn_merges(counts, 1) == [("a", "a")]
    merges = learn_merges(counts, 100)
    assert len(merges) == len(set(merges))  # stops when nothing is left to merge
    bpe = ByteLevelBPE.train("aaab aab ab", vocab_size=1000, special_tokens=())
    assert bpe.merges == merges and bpe.decode(bpe.encode("aaab aab ab")) == "aaab aab ab"


def test_vocab_size_too_small():
    with pytest.raises(InputError):
        ByteLevelBPE.train("abc", vocab_size=256, special_tokens=(EOT,))


def test_special_tokens_are_atomic(small_bpe):
    eot = small_bpe.special_tokens[EOT]
    assert eot == small_bpe.vocab_size - 2  # specials come after the merges
    text = f"hello world{EOT}<pad>next doc"
    ids = small_bpe.encode(text, allowed_special="all")
    assert eot in ids and small_bpe.special_tokens["<pad>"] in ids
    assert small_bpe.decode(ids) == text
    # not allowed -> plain text (no injection of control tokens)
    plain = small_bpe.encode(text)
    assert eot not in plain and small_bpe.decode(plain) == text
    only_eot = small_bpe.encode(text, allowed_special={EOT})
    assert eot in only_eot and small_bpe.special_tokens["<pad>"] not in only_eot
    with pytest.raises(InputError):
        small_bpe.encode(text, allowed_special={"<nope>"})
    # specials in training text are never merged
    trained = ByteLevelBPE.train([f"a{EOT}b " * 50], vocab_size=300)
    assert all("<|" not in a + b for a, b in trained.merges)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.text())
def test_round_trip_arbitrary_unicode(small_bpe, text):
    ids = small_bpe.encode(text)
    assert small_bpe.decode(ids) == text
    assert small_bpe.decode(small_bpe.encode(text, allowed_special="all")) == text
    assert all(0 <= i < small_bpe.vocab_size for i in ids)


def test_lone_surrogate_is_an_input_error(small_bpe):
    with pytest.raises(InputError):
        small_bpe.encode("abc\ud800")


def test_decode_errors(small_bpe):
    with pytest.raises(InputError):
        small_bpe.decode([small_bpe.vocab_size])
    half_emoji = small_bpe.encode("🙂")  # a slice of ids may stop inside a character
    assert small_bpe.decode_bytes(half_emoji) == "🙂".encode()


def test_save_load_identity(small_bpe, tmp_path):
    vocab_path, merges_path = small_bpe.save(tmp_path)
    assert merges_path.read_text(encoding="utf-8").splitlines()[0] == "#version: 0.2"
    loaded = ByteLevelBPE.load(tmp_path)
    assert loaded.vocab == small_bpe.vocab and loaded.merges == small_bpe.merges
    assert loaded.special_tokens == small_bpe.special_tokens  # found again in vocab.json
    for text in SAMPLES.values():
        assert loaded.encode(text) == small_bpe.encode(text)


def test_shakespeare_training():
    text = _shakespeare()
    bpe = ByteLevelBPE.train(text, vocab_size=3000)
    assert bpe.vocab_size == 3000
    chunk = text[:50_000]
    ids = bpe.encode(chunk)
    assert bpe.decode(ids) == chunk
    assert len(chunk) / len(ids) > 2.5  # characters per token: real compression


# ------------------------------------------------------------------ parity with references
def _hf_from_files(vocab_path, merges_path, specials=()):
    tokenizers = pytest.importorskip("tokenizers")
    from tokenizers import decoders, models, pre_tokenizers
    tok = tokenizers.Tokenizer(models.BPE.from_file(str(vocab_path), str(merges_path)))
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    if specials:
        tok.add_special_tokens(list(specials))
    return tok


@pytest.fixture(scope="module")
def hf_files(tmp_path_factory):
    """GPT-2-format files written by Hugging Face's own ByteLevel BPE trainer (~1000 tokens)."""
    tokenizers = pytest.importorskip("tokenizers")
    corpus = MIXED * 20
    try:
        corpus = corpus + [_shakespeare()[:100_000]]
    except pytest.skip.Exception:
        pass
    hf = tokenizers.ByteLevelBPETokenizer(add_prefix_space=False)
    hf.train_from_iterator(corpus, vocab_size=1000, min_frequency=2, special_tokens=[EOT],
                           show_progress=False)
    folder = tmp_path_factory.mktemp("hf_bpe")
    hf.save_model(str(folder))
    return folder / "vocab.json", folder / "merges.txt"


def _parity_texts():
    texts = dict(SAMPLES)
    try:
        texts["shakespeare"] = _shakespeare()[500_000:520_000]
    except pytest.skip.Exception:
        pass
    return texts


def test_parity_with_hf_tokenizers(hf_files):
    mine = ByteLevelBPE.from_files(*hf_files)
    assert list(mine.special_tokens) == [EOT]
    ref = _hf_from_files(*hf_files, specials=[EOT])
    for name, text in _parity_texts().items():
        ids = mine.encode(text)
        assert ids == ref.encode(text).ids, name
        assert mine.decode(ids) == text == ref.decode(ids, skip_special_tokens=False), name
    text = f"end of one{EOT}start of two"
    assert mine.encode(text, allowed_special="all") == ref.encode(text).ids


@pytest.fixture(scope="module")
def hf_pair(hf_files):
    """(mindtf tokenizer, HF tokenizer) loaded from the same files."""
    return ByteLevelBPE.from_files(*hf_files), _hf_from_files(*hf_files)


@settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(assigned_text)
def test_parity_with_hf_on_arbitrary_text(hf_pair, text):
    mine, ref = hf_pair
    assert mine.encode(text) == ref.encode(text).ids


def test_parity_with_tiktoken(hf_files):
    tiktoken = pytest.importorskip("tiktoken")
    mine = ByteLevelBPE.from_files(*hf_files)
    # tiktoken ranks *byte strings*: single bytes first, then each merge's result in merge order
    ranks = {bytes([b]): b for b in range(256)}
    for a, b in mine.merges:
        ranks.setdefault(symbols_to_bytes(a + b), len(ranks))
    enc = tiktoken.Encoding(name="mindtf-test", pat_str=mine.pattern, mergeable_ranks=ranks,
                            special_tokens={})
    for name, text in _parity_texts().items():
        tokens = [bytes_to_symbols(enc.decode_single_token_bytes(i)) for i in enc.encode(text)]
        assert [mine.vocab[t] for t in tokens] == mine.encode(text), name


def test_files_saved_by_mindtf_load_in_hf(tmp_path):
    corpus = MIXED * 10
    try:
        corpus = corpus + [_shakespeare()[:100_000]]
    except pytest.skip.Exception:
        pass
    mine = ByteLevelBPE.train(corpus, vocab_size=800, special_tokens=(EOT,))
    vocab_path, merges_path = mine.save(tmp_path)
    assert json.loads(vocab_path.read_text(encoding="utf-8"))[EOT] == 799
    ref = _hf_from_files(vocab_path, merges_path, specials=[EOT])
    for name, text in _parity_texts().items():
        assert mine.encode(text) == ref.encode(text).ids, name
    text = f"one{EOT}two"
    assert mine.encode(text, allowed_special="all") == ref.encode(text).ids
