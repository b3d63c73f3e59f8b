"""Cased, open-vocabulary translation: the joint byte-level BPE vocabulary (deterministic, exact
round trips of every Multi30k training sentence, no <unk>), token-count batches (never over the
budget, every pair once an epoch, seeded), BPE checkpoints that load_translator and
``python -m mindtf translate --input --output --ref`` read back."""
import json
from collections import Counter

import numpy as np
import pytest

from mindtf.cli.main import main
from mindtf.data.token_batching import TokenBatchSampler
from mindtf.errors import ConfigError, InputError
from mindtf.recipes.translation_setup import (TranslationBatches, TranslationData, build_vocabs,
                                              numericalise)
from mindtf.recipes.translation_vocabs import load_vocabs
from mindtf.tokenizers.bpe_vocab import BPEVocab

PAIRS = [("Ein Hund läuft.", "A dog runs."), ("Ein Hund schläft.", "A dog sleeps."),
         ("Zwei Katzen spielen im Garten.", "Two cats play in the garden."),
         ("Eine Frau liest ein Buch.", "A woman reads a book.")] * 5
# the tiny end-to-end runs score a handful of sentences (corpus_bleu warns about that)
pytestmark = pytest.mark.filterwarnings("ignore:corpus BLEU on only")
ODD = ["Quetzalcoatl schläft 漢字 🙂!", "  two  spaces\tand a tab ", "<unk> <pad> <eos>", "x"]


@pytest.fixture(scope="module")
def multi30k(shared_data, tmp_path_factory):
    from mindtf.data import load_multi30k

    return load_multi30k("train", mirror=str(shared_data), offline=True, progress=False,
                         data_dir=tmp_path_factory.mktemp("data"))


def test_bpe_vocabulary_round_trips_every_training_sentence(multi30k):
    """The recipe's 8k joint BPE on all 29,000 cased pairs: decode(encode(s)) == s for every
    sentence of both languages; no <unk> anywhere; specials present."""
    data = TranslationData(tokenizer="bpe", lowercase=False)
    vocabs = build_vocabs(multi30k, data)
    v = vocabs.src
    assert vocabs.tgt is v and vocabs.kind == "bpe" and len(v) == data.bpe_vocab_size
    assert v.unk is None and "<unk>" not in v and {"<pad>", "<bos>", "<eos>"} <= set(v.stoi)
    ids = numericalise(multi30k, vocabs, lowercase=False)
    bad = [(s, t) for (s, t), (a, b) in zip(multi30k, ids) if v.decode(a) != s or v.decode(b) != t]
    assert not bad, bad[:3]
    specials = {v.pad_id, v.bos_id, v.eos_id}
    assert not any(specials & set(a + b) for a, b in ids)
    assert "Männer" in v.detokenize(v.tokenize("Zwei Männer")) and v.tokenize("A")[0] == "A"


def test_bpe_training_is_deterministic_and_cased():
    texts = [s for s, _ in PAIRS] + [t for _, t in PAIRS]
    one, two = BPEVocab.train(texts, 300), BPEVocab.train(list(texts), 300)
    assert one == two and one.bpe.merges == two.bpe.merges and one.bpe.vocab == two.bpe.vocab
    assert one.decode(one.encode("Ein Hund")) == "Ein Hund"
    low = BPEVocab.train(texts, 300, lowercase=True)
    assert low.decode(low.encode("Ein Hund")) == "ein hund"
    for text in ODD:  # unseen scripts and emoji are bytes: no <unk>, exact text back
        assert one.decode(one.encode(text)) == text
        assert one.detokenize(one.tokenize(text)) == text
    ids = one.encode("A dog") + [one.eos_id, 5]
    assert one.decode(ids) == "A dog"  # stops at <eos>
    with pytest.raises(InputError):
        one.lookup("no such token")


def test_bpe_vocabulary_files_and_settings(tmp_path):
    data = TranslationData(tokenizer="bpe", bpe_vocab_size=300, lowercase=False)
    vocabs = build_vocabs(PAIRS, data)
    vocabs.save(tmp_path, {"lowercase": False})
    assert sorted(p.name for p in tmp_path.iterdir()) == ["merges.txt", "translation.json",
                                                          "vocab.json"]
    settings = json.loads((tmp_path / "translation.json").read_text())
    assert settings["tokenizer"] == "bpe" and vocabs.files == ("vocab.json", "merges.txt")
    again = load_vocabs(tmp_path, settings)
    assert again.src == vocabs.src and again.tgt is again.src
    assert numericalise(PAIRS, again, False) == numericalise(PAIRS, vocabs, False)


@pytest.mark.parametrize("kwargs", [{"tokenizer": "sentencepiece"}, {"bpe_vocab_size": 100},
                                    {"batch_tokens": 32}, {"batch_tokens": 0}])
def test_bad_bpe_and_token_settings_are_config_errors(kwargs):
    with pytest.raises(ConfigError):
        TranslationData(**kwargs)  # max_len 64: batch_tokens must hold one row of 64


@pytest.mark.parametrize("module", ["mindtf.tokenizers.bpe_vocab", "mindtf.data.token_batching"])
def test_docstring_examples(module):
    import doctest
    import importlib

    result = doctest.testmod(importlib.import_module(module), optionflags=doctest.ELLIPSIS)
    assert result.failed == 0 and result.attempted > 0


def test_setup_modules_do_not_import_mindspore():
    import subprocess
    import sys

    code = ("import sys, mindtf.recipes.translation_setup, mindtf.tokenizers.bpe_vocab; "
            "print('mindspore' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------------------- token batches
def test_token_batches_fit_the_budget_cover_every_pair_once_and_are_seeded():
    rng = np.random.default_rng(1)
    lengths = rng.integers(2, 64, size=1000).tolist()
    padded = tuple(range(8, 65, 8))
    for group, workers in ((1, 1), (3, 2)):
        s = TokenBatchSampler(lengths, padded, batch_tokens=600, seed=7, group=group,
                              row_multiple=workers)
        one = s.batches(0)
        assert one == s.batches(0) and one != s.batches(1) and len(one) == len(s)
        seen = Counter(i for idx, _ in one for i in idx)
        assert sorted(seen) == list(range(1000)) and set(seen.values()) == {1}
        for g in range(0, len(one), group):  # one length per accumulation group
            assert len({n for _, n in one[g:g + group]}) == 1
        for idx, n in one:
            assert len(idx) <= s.rows(n) and s.rows(n) * n <= 600 * workers
            assert s.rows(n) % workers == 0 and (s.rows(n) // workers) * n <= 600
            assert all(lengths[i] <= n for i in idx)
        assert {(s.rows(n), n) for _, n in one} <= set(s.shapes())
        assert len(s.shapes()) == len(padded)  # one shape per padded length


def test_token_batches_of_the_recipe():
    pairs = [(list(range(5, 5 + 1 + i % 13)), list(range(40, 40 + 1 + i % 29))) for i in range(90)]
    data = TranslationData(batch_tokens=96, max_len=32, pad_multiple=8)
    b = TranslationBatches(pairs, pairs[:5], data, batch_size=4, grad_accum=1, seed=3,
                           pad_id=1, bos_id=2, eos_id=3)
    epoch = b.epoch(0)
    got = Counter()
    for src, tgt_in, tgt_out in epoch:
        assert src.shape == tgt_in.shape == tgt_out.shape and src.size <= 96
        assert src.shape[0] == b.tokens.rows(src.shape[1])
        for row in range(src.shape[0]):
            out = [int(t) for t in tgt_out[row] if t != 1]
            if out:  # fill rows have no target
                got[(tuple(int(t) for t in src[row] if t != 1), tuple(out[:-1]))] += 1
    assert got == Counter((tuple(s), tuple(t)) for s, t in pairs)
    again = b.epoch(0)
    assert all((x == y).all() for p, q in zip(epoch, again) for x, y in zip(p, q))
    assert "padded tokens" in b.describe()
    # gradient accumulation: groups of 2 batches of one shape; an empty batch has no target
    acc = TranslationBatches(pairs, pairs[:5], data, batch_size=4, grad_accum=2, seed=3,
                             pad_id=1, bos_id=2, eos_id=3).epoch(0)
    assert len(acc) % 2 == 0
    assert all(acc[i][0].shape == acc[i + 1][0].shape for i in range(0, len(acc), 2))
    assert sum(int((b[2] != 1).sum()) for b in acc) == sum(len(t) + 1 for _, t in pairs)


# --------------------------------------------------------------------------- end to end
@pytest.fixture(scope="module")
def bpe_run(shared_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mt_bpe")
    out = tmp / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINDTF_DATA_MIRROR", str(shared_data))
        code = main(["train", "--task", "translation", "--data.tokenizer", "bpe",
                     "--data.bpe_vocab_size", "400", "--data.lowercase", "false",
                     "--data.batch_tokens", "512", "--data.max_len", "40",
                     "--data.max_train_pairs", "200", "--data.max_eval_pairs", "20",
                     "--data.beam_size", "1", "--data.max_decode_len", "6",
                     "--model.d_model", "32", "--model.n_heads", "2", "--model.d_ff", "64",
                     "--model.n_encoder_layers", "1", "--model.n_decoder_layers", "1",
                     "--model.share_embeddings", "true", "--model.tie_output", "true",
                     "--model.max_len", "40",
                     "--train.max_steps", "3", "--train.eval_interval", "3",
                     "--train.mode", "pynative", "--train.progress", "false",
                     "--train.out_dir", str(out),
                     "--offline", "--data-dir", str(tmp / "data"), "--device", "cpu"])
    assert code == 0
    return out


def test_bpe_run_is_cased_and_reloads(bpe_run):
    from mindtf.recipes.translation import load_translator, translate_sentences

    bleu = json.loads((bpe_run / "bleu.json").read_text())
    assert bleu["signature"].startswith("nrefs:1|case:mixed|") and "tok:13a" in bleu["signature"]
    assert "<unk>" not in (bpe_run / "test_hypotheses.txt").read_text()
    best = bpe_run / "checkpoints" / "best"
    assert (best / "vocab.json").is_file() and (best / "merges.txt").is_file()
    trainer = json.loads((best / "trainer.json").read_text())
    assert set(trainer["tokenizer"]) == {"vocab.json", "merges.txt"}
    model, src, tgt, settings = load_translator(bpe_run)
    assert isinstance(src, BPEVocab) and tgt is src and settings["tokenizer"] == "bpe"
    assert model.config.pad_id == src.pad_id and model.config.src_vocab_size == len(src)
    out = translate_sentences(model, ["Ein Hund läuft.", "漢字 🙂"], src, tgt, beam_size=2,
                              max_len=4)
    assert len(out) == 2 and all(isinstance(t, str) and "\n" not in t for t in out)


def test_translate_file_with_references_prints_corpus_bleu(bpe_run, tmp_path, capsys):
    from mindtf.metrics import corpus_bleu

    src, ref, hyp = tmp_path / "in.de", tmp_path / "ref.en", tmp_path / "out.en"
    lines = ["Ein Hund läuft.", "", "Quetzalcoatl 漢字 🙂 xyzzy", " ".join(["Hund"] * 80),
             "Zwei Männer."]
    src.write_text("\n".join(lines) + "\n", encoding="utf-8")
    ref.write_text("A dog runs.\n\nA snake.\nDogs.\nTwo men.\n", encoding="utf-8")
    assert main(["translate", "--checkpoint", str(bpe_run), "--input", str(src),
                 "--output", str(hyp), "--ref", str(ref), "--beam", "2", "--max-len", "5"]) == 0
    captured = capsys.readouterr()
    hyps = hyp.read_text(encoding="utf-8").split("\n")[:-1]
    assert len(hyps) == len(lines) and hyps[1] == ""  # one line each, blank stays blank
    expected = corpus_bleu(hyps, ref.read_text(encoding="utf-8").splitlines())
    assert captured.out.strip() == str(expected)
    assert "case:mixed" in captured.out
    assert "1 line(s) have more than 40 source tokens" in captured.err and "line 4" in captured.err


def test_translate_reference_mismatch_and_stdin(bpe_run, tmp_path, capsys, monkeypatch):
    import io

    src, ref = tmp_path / "in.de", tmp_path / "ref.en"
    src.write_text("Ein Hund.\nZwei Hunde.\n", encoding="utf-8")
    ref.write_text("A dog.\n", encoding="utf-8")
    assert main(["translate", "--checkpoint", str(bpe_run), "--input", str(src),
                 "--ref", str(ref)]) == 1
    assert "--ref has 1 lines but there are 2 input lines" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("Ein Hund.\n\nEine Katze.\n"))
    assert main(["translate", "--checkpoint", str(bpe_run), "--input", "-", "--beam", "1",
                 "--max-len", "3"]) == 0
    assert len(capsys.readouterr().out.split("\n")[:-1]) == 3
