"""The Multi30k translation recipe: vocabularies, shape-stable batches, a tiny end-to-end run with
BLEU, and the ``translate`` command on its checkpoint."""
import json

import numpy as np
import pytest

from mindtf.cli.main import main
from mindtf.errors import ConfigError
from mindtf.recipes.translation_setup import (TranslationBatches, TranslationData, build_vocabs,
                                              numericalise, pad_batch, translation_configs)

PAIRS = [("Ein Hund läuft.", "A dog runs."), ("Ein Hund schläft.", "A dog sleeps."),
         ("Zwei Katzen spielen im Garten.", "Two cats play in the garden."),
         ("Eine Frau liest ein Buch.", "A woman reads a book.")] * 5


def test_vocabularies_come_from_training_pairs_with_fixed_specials():
    data = TranslationData(min_freq=2)
    v = build_vocabs(PAIRS, data)
    assert v.src.itos[:4] == ["<unk>", "<pad>", "<bos>", "<eos>"]
    assert v.src.pad_id == v.tgt.pad_id == 1 == translation_configs()[0].pad_id
    assert "hund" in v.src and "dog" in v.tgt and "Hund" not in v.src  # lowercased
    ids = numericalise([("Ein Zebra läuft.", "A zebra runs.")], v, lowercase=True)
    assert ids[0][0][1] == v.src.unk_id  # unseen word
    joint = build_vocabs(PAIRS, data, joint=True)
    assert joint.src is joint.tgt and "hund" in joint.src and "dog" in joint.src


def test_pad_batch_rounds_lengths_and_adds_ignored_rows():
    batch = {"src": np.array([[5, 6, 7]], np.int32), "tgt_in": np.array([[2, 8]], np.int32),
             "tgt_out": np.array([[8, 3]], np.int32)}
    src, tgt_in, tgt_out = pad_batch(batch, pad_id=1, multiple=8, rows=3)
    assert src.shape == tgt_in.shape == tgt_out.shape == (3, 8)
    assert src[0, :3].tolist() == [5, 6, 7] and (src[0, 3:] == 1).all()
    assert (src[1:] == src[0]).all() and (tgt_out[1:] == 1).all()  # extra rows: no loss


def _batches(accum=1, seed=0):
    data = TranslationData(min_freq=1, pad_multiple=8)
    v = build_vocabs(PAIRS, data)
    ids = numericalise(PAIRS, v, True)
    return TranslationBatches(ids, ids[:6], data, batch_size=4, grad_accum=accum, seed=seed,
                    pad_id=1, bos_id=2, eos_id=3)


def test_training_batches_are_seeded_and_shape_stable():
    b = _batches()
    one, again, other = b.epoch(0), b.epoch(0), b.epoch(1)
    assert len(one) == 5  # 20 pairs / 4, drop_last
    for x, y in zip(one, again):
        assert all((p == q).all() for p, q in zip(x, y))
    assert any(not (x[0].shape == y[0].shape and (x[0] == y[0]).all())
               for x, y in zip(one, other))  # a new order next epoch
    for src, tgt_in, tgt_out in one:
        assert src.shape[0] == 4 and src.shape[1] % 8 == 0
        assert src.shape == tgt_in.shape == tgt_out.shape
        assert (tgt_in[:, 0] == 2).all()
    val = list(b.val())
    assert [x[0].shape[0] for x in val] == [b.data.eval_batch_size]
    # every target token once
    assert int((val[0][2] != 1).sum()) == sum(len(t) + 1 for _, t in b.val_ids)


def test_grad_accum_groups_share_one_length():
    epoch = _batches(accum=2).epoch(0)
    assert len(epoch) == 4  # 5 batches -> the incomplete group is dropped
    for i in range(0, 4, 2):
        assert epoch[i][0].shape == epoch[i + 1][0].shape


@pytest.mark.parametrize("kwargs", [{"direction": "fr-en"}, {"min_freq": 0}, {"max_len": 2},
                                    {"max_train_pairs": 0}, {"dataset": "wmt14"}])
def test_bad_translation_data_is_a_config_error(kwargs):
    with pytest.raises(ConfigError):
        TranslationData(**kwargs)


# --------------------------------------------------------------------------- tiny real run
@pytest.fixture(scope="module")
def mt_run(shared_data, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mt")
    out = tmp / "run"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MINDTF_DATA_MIRROR", str(shared_data))
        code = main(["train", "--task", "translation",
                     "--data.max_train_pairs", "200", "--data.max_eval_pairs", "100",
                     "--data.beam_size", "1", "--data.max_decode_len", "6",
                     "--model.d_model", "32", "--model.n_heads", "2", "--model.d_ff", "64",
                     "--model.n_encoder_layers", "1", "--model.n_decoder_layers", "1",
                     "--train.max_steps", "3", "--train.batch_size", "32",
                     "--train.eval_interval", "3", "--train.mode", "pynative",
                     "--train.progress", "false", "--train.out_dir", str(out),
                     "--offline", "--data-dir", str(tmp / "data"), "--device", "cpu"])
    assert code == 0
    return out


def test_tiny_translation_run_writes_bleu_and_vocabularies(mt_run):
    bleu = json.loads((mt_run / "bleu.json").read_text())
    assert isinstance(bleu["score"], float) and 0.0 <= bleu["score"] <= 100.0
    assert bleu["signature"].startswith("nrefs:1|case:lc|") and "tok:13a" in bleu["signature"]
    assert bleu["sentences"] == 100 and bleu["split"] == "test2016"
    hyps = (mt_run / "test_hypotheses.txt").read_text().splitlines()
    assert len(hyps) == 100
    summary = json.loads((mt_run / "summary.json").read_text())
    assert summary["steps"] == 3 and summary["val_loss"] > 0 and summary["train_pairs"] == 200
    best = mt_run / "checkpoints" / "best"
    cfg = json.loads((best / "config.json").read_text())["mindtf"]
    tgt = json.loads((best / "tgt_vocab.json").read_text())
    assert tgt["itos"][cfg["pad_id"]] == "<pad>" and len(tgt["itos"]) == cfg["tgt_vocab_size"]
    assert (best / "src_vocab.json").is_file() and (best / "translation.json").is_file()


def test_translate_command_on_the_checkpoint(mt_run, tmp_path, capsys):
    best = mt_run / "checkpoints" / "best"
    assert main(["translate", "--checkpoint", str(best), "--beam", "2", "--max-len", "5",
                 "Ein Hund läuft.", "", "Zwei Männer."]) == 0
    lines = capsys.readouterr().out.split("\n")[:-1]
    assert len(lines) == 3 and lines[1] == ""  # blank input -> blank output
    assert all(len(line.split()) <= 5 for line in lines)
    src = tmp_path / "in.de"
    src.write_text("Ein Hund läuft.\nZwei Männer.\n", encoding="utf-8")
    assert main(["translate", "--checkpoint", str(mt_run), "--input", str(src),  # the run folder
                 "--beam", "1", "--max-len", "5"]) == 0
    assert len(capsys.readouterr().out.splitlines()) == 2


def test_translate_command_unknown_words_and_too_long_lines(mt_run, tmp_path, capsys):
    """Unknown words (all <unk>) and a line longer than the model reads are translated, with a
    note naming the cut line, never a crash."""
    src, out = tmp_path / "in.de", tmp_path / "out.en"
    src.write_text("Xylophonquetzal Zzyzxbrumm Qwertzuiop\n" + " ".join(["Hund"] * 90) + "\n",
                   encoding="utf-8")
    assert main(["translate", "--checkpoint", str(mt_run), "--input", str(src), "--output",
                 str(out), "--beam", "1", "--max-len", "4"]) == 0
    assert len(out.read_text(encoding="utf-8").splitlines()) == 2
    err = capsys.readouterr().err
    assert "1 line(s) have more than 64 source tokens" in err and "(line 2)" in err


def test_translate_command_errors(mt_run, tmp_path, capsys):
    assert main(["translate", "--checkpoint", str(tmp_path), "Hallo"]) == 1
    assert "config.json not found" in capsys.readouterr().err
    missing = tmp_path / "no.txt"
    assert main(["translate", "--checkpoint", str(mt_run), "--input", str(missing)]) == 1
    assert "no such file" in capsys.readouterr().err


def test_graph_mode_training_step_compiles_padded_shapes(shared_data, tmp_path, graph_mode,
                                                         monkeypatch):
    """The compiled (GRAPH_MODE) step on length-bucketed batches padded to multiples of 8."""
    monkeypatch.setenv("MINDTF_DATA_MIRROR", str(shared_data))
    out = tmp_path / "run"
    code = main(["train", "--task", "translation", "--data.max_train_pairs", "64",
                 "--data.max_eval_pairs", "16", "--data.bleu", "false",
                 "--model.d_model", "16", "--model.n_heads", "2", "--model.d_ff", "32",
                 "--model.n_encoder_layers", "1", "--model.n_decoder_layers", "1",
                 "--train.max_steps", "2", "--train.batch_size", "32", "--train.mode", "graph",
                 "--train.eval_interval", "2", "--train.progress", "false",
                 "--train.out_dir", str(out), "--offline", "--data-dir", str(tmp_path / "data"),
                 "--device", "cpu"])
    assert code == 0
    summary = json.loads((out / "summary.json").read_text())
    assert summary["steps"] == 2 and np.isfinite(summary["val_loss"])
    assert not (out / "bleu.json").exists()
