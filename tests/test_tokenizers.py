"""Character- and word-level tokenizers (mindtf.tokenizers.char / .word)."""
from __future__ import annotations

import doctest
import importlib

import pytest

from mindtf.errors import InputError
from mindtf.tokenizers import CharTokenizer, Vocab, WordTokenizer, detokenize, tokenize


# ------------------------------------------------------------------------------------------ char
def test_char_round_trip_and_sorted_vocab():
    text = "First Citizen:\nBefore we proceed any further, hear me speak.\n"
    tok = CharTokenizer.from_text(text)
    assert tok.chars == sorted(set(text))
    assert tok.vocab_size == len(set(text)) == len(tok)
    ids = tok.encode(text)
    assert len(ids) == len(text)
    assert tok.decode(ids) == text
    assert tok.decode([]) == "" and tok.encode("") == []


def test_char_unknown_character_error_names_them():
    tok = CharTokenizer.from_text("abc")
    with pytest.raises(InputError) as err:
        tok.encode("abxzx")
    message = str(err.value)
    assert "'x'" in message and "'z'" in message
    assert message.count("'x'") == 1  # each unknown character named once


def test_char_unk_maps_unknown_characters():
    tok = CharTokenizer.from_text("abc", unk="?")
    assert "?" in tok.chars
    ids = tok.encode("axb")
    assert tok.decode(ids) == "a?b"
    with pytest.raises(InputError):
        CharTokenizer(["a", "b"], unk="?")  # unk must be in the vocabulary


def test_char_decode_out_of_range():
    tok = CharTokenizer.from_text("ab")
    with pytest.raises(InputError):
        tok.decode([2])


def test_char_save_load_identity(tmp_path):
    tok = CharTokenizer.from_text("héllo wörld 🙂\n", unk="~")
    path = tmp_path / "char.json"
    tok.save(path)
    loaded = CharTokenizer.load(path)
    assert loaded == tok
    assert loaded.encode("wörld 🙂") == tok.encode("wörld 🙂")
    path.write_text('{"type": "word"}', encoding="utf-8")
    with pytest.raises(InputError):
        CharTokenizer.load(path)


# ------------------------------------------------------------------------------------- tokenize
def test_tokenize_splits_punctuation_and_lowercases():
    assert tokenize("Two young, White males are outside near many bushes.") == [
        "two", "young", ",", "white", "males", "are", "outside", "near", "many", "bushes", "."]
    assert tokenize("A man's T-shirt (blue)!", lowercase=False) == [
        "A", "man's", "T-shirt", "(", "blue", ")", "!"]
    assert tokenize("Zwei junge weiße Männer sind im Freien.") == [
        "zwei", "junge", "weiße", "männer", "sind", "im", "freien", "."]


@pytest.mark.parametrize("sentence", [
    "two young, white males are outside near many bushes.",
    "a man (in a blue shirt) is standing on a ladder!",
    "ein mann mit 5 hunden: er läuft; sie bellen?",
])
def test_detokenize_inverts_tokenize(sentence):
    assert detokenize(tokenize(sentence)) == sentence


# ---------------------------------------------------------------------------------------- vocab
CORPUS = [["a", "dog", "runs"], ["a", "cat", "runs"], ["a", "bird"], ["the", "dog"]]


def test_vocab_specials_first_then_frequency_then_alphabetical():
    vocab = Vocab.build(CORPUS)
    assert vocab.itos[:4] == ["<unk>", "<pad>", "<bos>", "<eos>"]
    assert (vocab.unk_id, vocab.pad_id, vocab.bos_id, vocab.eos_id) == (0, 1, 2, 3)
    # a:3, dog:2, runs:2, then bird, cat, the (1 each, alphabetical)
    assert vocab.itos[4:] == ["a", "dog", "runs", "bird", "cat", "the"]
    assert all(vocab.stoi[t] == i for i, t in enumerate(vocab.itos))
    assert len(vocab) == 10
    # same corpus in another order -> same ids
    assert Vocab.build(list(reversed(CORPUS))).itos == vocab.itos


def test_vocab_min_freq_and_max_size():
    vocab = Vocab.build(CORPUS, min_freq=2)
    assert vocab.itos[4:] == ["a", "dog", "runs"]
    assert vocab.lookup("cat") == vocab.unk_id
    small = Vocab.build(CORPUS, max_size=6)
    assert small.itos == ["<unk>", "<pad>", "<bos>", "<eos>", "a", "dog"]
    with pytest.raises(InputError):
        Vocab.build(CORPUS, max_size=2)


def test_vocab_special_ids_stable_across_corpora():
    v1, v2 = Vocab.build(CORPUS), Vocab.build([["x", "<pad>", "y"]])
    assert v2.itos[:4] == v1.itos[:4]  # a special in the corpus is not counted twice
    assert v2.itos.count("<pad>") == 1
    custom = Vocab.build(CORPUS, specials=("<pad>", "<unk>"))
    assert (custom.pad_id, custom.unk_id) == (0, 1)
    with pytest.raises(InputError):
        _ = custom.bos_id


def test_vocab_lookup_unknown_and_no_unk():
    vocab = Vocab.build(CORPUS)
    assert vocab.lookup(["a", "zebra"]) == [4, 0]
    assert vocab["zebra"] == 0 and "zebra" not in vocab and "a" in vocab
    assert vocab.lookup_tokens([4, 5]) == ["a", "dog"]
    strict = Vocab.build(CORPUS, specials=("<pad>",))
    with pytest.raises(InputError):
        strict.lookup("zebra")


def test_vocab_save_load_identity(tmp_path):
    vocab = Vocab.build(CORPUS + [["größe", "🙂"]])
    vocab.save(tmp_path / "vocab.json")
    loaded = Vocab.load(tmp_path / "vocab.json")
    assert loaded == vocab and loaded.stoi == vocab.stoi and loaded.unk_id == vocab.unk_id


# ---------------------------------------------------------------------------------------- word
def test_word_tokenizer_round_trip_and_specials(tmp_path):
    sentences = ["A dog runs on the grass.", "A cat sleeps, a dog barks!"]
    tok = WordTokenizer.build(sentences)
    ids = tok.encode("A dog sleeps on the grass.", add_bos=True, add_eos=True)
    assert ids[0] == tok.vocab.bos_id and ids[-1] == tok.vocab.eos_id
    assert tok.decode(ids) == "a dog sleeps on the grass."
    # decoding stops at <eos> and hides padding
    assert tok.decode(ids + [tok.vocab.pad_id] * 3) == "a dog sleeps on the grass."
    assert tok.decode([tok.vocab.lookup("a"), tok.vocab.unk_id]) == "a <unk>"
    assert "<bos>" in tok.decode(ids, skip_special=False)
    tok.save(tmp_path / "word.json")
    loaded = WordTokenizer.load(tmp_path / "word.json")
    assert loaded.vocab == tok.vocab and loaded.lowercase == tok.lowercase
    assert loaded.encode("the cat runs.") == tok.encode("the cat runs.")


def test_word_tokenizer_case_sensitive_option():
    tok = WordTokenizer.build(["Berlin is big."], lowercase=False)
    assert tok.encode("Berlin")[0] != tok.vocab.unk_id
    assert tok.encode("berlin") == [tok.vocab.unk_id]


# ------------------------------------------------------------------------------------ doctests
@pytest.mark.parametrize("module", ["mindtf.tokenizers.char", "mindtf.tokenizers.word",
                                    "mindtf.tokenizers.bpe", "mindtf.tokenizers.bpe_train",
                                    "mindtf.tokenizers.bytes_unicode", "mindtf.data.batching"])
def test_docstring_examples(module):
    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0


def test_modules_do_not_import_mindspore():
    import subprocess
    import sys
    code = ("import sys, mindtf.tokenizers, mindtf.data.batching; "
            "print('mindspore' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"
