"""Greedy and beam-search decoding for the encoder-decoder Transformer (tiny random models)."""
import numpy as np
import pytest

from mindtf.decoding.seq2seq_search import (Hypothesis, beam_search, greedy_decode,
                                            length_penalty_factor, translate)
from mindtf.errors import InputError

PAD, BOS, EOS = 1, 2, 3
V_SRC, V_TGT = 20, 24

# four sources of different lengths, padded with PAD
SRC = np.array([[2, 5, 6, 7, 8, 3],
                [2, 9, 4, 3, 1, 1],
                [2, 11, 3, 1, 1, 1],
                [2, 12, 13, 14, 3, 1]], np.int32)


def _config(**kw):  # 2 decoder layers: the per-layer caches are really exercised
    import mindtf

    base = dict(src_vocab_size=V_SRC, tgt_vocab_size=V_TGT, d_model=16, n_heads=2,
                n_encoder_layers=1, n_decoder_layers=2, d_ff=32, dropout=0.0, max_len=16,
                pad_id=PAD)
    base.update(kw)
    return mindtf.TransformerConfig(**base)


@pytest.fixture(scope="module")
def model(ms_cpu):
    import mindtf

    m = mindtf.Transformer(_config())
    m.set_train(False)
    return m


def _eos_model(slope=None, pad_boost=100.0, **config):
    """A Transformer whose EOS logit depends on how long the output is compared with the source.

    ``slope=None``: EOS gets -50 before the output is as long as the source and +50 from there,
    so each row ends after exactly ``len(src) - 1`` tokens + EOS. A number: EOS gets
    ``slope * (position - len(src))``, a soft push that gives hypotheses of various lengths.
    The source lengths come from ``src_mask``, which decoding re-indexes together with the
    caches. ``pad_boost`` makes padding the favourite token (decoding must never emit it).
    ``calls`` records the number of rows of each decoder call.
    """
    import mindtf
    from mindspore import Tensor

    class EosModel(mindtf.Transformer):
        def decode(self, tgt, memory, src_mask=None, tgt_mask=None, cache=None,
                   return_attention=False, src_ids=None):
            logits = super().decode(tgt, memory, src_mask, tgt_mask, cache, return_attention,
                                    src_ids)
            t = tgt.shape[1]
            start = cache[0].length - t if cache is not None else 0
            pos = start + 1 + np.arange(t)[None, :]  # tokens fed up to each query, (1, T)
            n_src = src_mask.asnumpy().reshape(src_mask.shape[0], -1).sum(1)[:, None]  # (R, 1)
            boost = np.zeros(logits.shape, np.float32)
            if slope is None:
                boost[:, :, EOS] = np.where(pos >= n_src, 50.0, -50.0)
            else:
                boost[:, :, EOS] = slope * (pos - n_src)
            boost[:, :, PAD] = pad_boost
            self.calls.append(int(tgt.shape[0]))
            return logits + Tensor(boost)

    m = EosModel(_config(**config))
    m.calls = []
    m.set_train(False)
    return m


def _strip(row):
    """Greedy output row -> generated tokens (EOS kept, fill removed; PAD is never generated)."""
    return [int(x) for x in row if x != PAD]


def _teacher_forced_logprobs(model, src_rows, hyps):
    """Sum of log P(tokens | src) per hypothesis, by one full (uncached) forward pass."""
    from mindspore import Tensor

    width = max(len(h) for h in hyps)
    tgt_in = np.full((len(hyps), width), PAD, np.int32)  # [BOS] + tokens[:-1], padded after
    for i, h in enumerate(hyps):
        tgt_in[i, :len(h)] = [BOS] + h[:-1]
    logits = model(Tensor(np.asarray(src_rows, np.int32)), Tensor(tgt_in)).asnumpy()
    logits = logits.astype(np.float64)
    m = logits.max(-1, keepdims=True)
    logp = logits - m - np.log(np.exp(logits - m).sum(-1, keepdims=True))
    return [float(sum(logp[i, j, t] for j, t in enumerate(h))) for i, h in enumerate(hyps)]


def test_beam_one_equals_greedy(model):
    greedy = greedy_decode(model, SRC, bos_id=BOS, eos_id=EOS, max_len=5)
    assert greedy.dtype == np.int32 and greedy.shape[0] == 4 and greedy.shape[1] <= 5
    beams = beam_search(model, SRC, beam_size=1, bos_id=BOS, eos_id=EOS, max_len=5)
    assert [len(b) for b in beams] == [1, 1, 1, 1]
    assert [b[0].tokens for b in beams] == [_strip(r) for r in greedy]
    assert all(PAD not in b[0].tokens for b in beams)


def test_cached_greedy_equals_uncached_reference(model):
    from mindspore import Tensor

    max_len = 6
    out = greedy_decode(model, SRC, bos_id=BOS, eos_id=EOS, max_len=max_len)
    # reference: re-run the whole model (encoder + decoder prefix) every step, no cache
    ys = np.full((len(SRC), 1), BOS, np.int32)
    for _ in range(max_len):
        logits = model(Tensor(SRC), Tensor(ys)).asnumpy()[:, -1, :]
        logits[:, PAD] = -np.inf
        ys = np.concatenate([ys, logits.argmax(-1).astype(np.int32)[:, None]], 1)
    for row, ref in zip(out, ys[:, 1:]):
        ref = list(ref)
        ref = ref[:ref.index(EOS) + 1] if EOS in ref else ref
        assert _strip(row) == [int(x) for x in ref]


def test_beam_scores_sorted_nbest_and_teacher_forced(ms_cpu):
    k, alpha = 3, 0.6
    m = _eos_model(slope=1.5, pad_boost=0.0)  # EOS more and more likely: varied lengths
    src = SRC[1:3]
    res = beam_search(m, src, beam_size=k, bos_id=BOS, eos_id=EOS, max_len=8,
                      length_penalty=alpha, n_best=k)
    assert len(res) == 2
    for hyps in res:
        assert len(hyps) == k and all(isinstance(h, Hypothesis) for h in hyps)
        scores = [h.score for h in hyps]
        assert scores == sorted(scores, reverse=True)
        assert len({tuple(h.tokens) for h in hyps}) == k  # distinct hypotheses
    flat = [h for hyps in res for h in hyps]
    assert len({len(h.tokens) for h in flat}) > 1  # the length penalty really matters
    # scores = log-probs of a plain forward pass (no cache) / ((5 + len) / 6) ** alpha
    refs = _teacher_forced_logprobs(m, np.repeat(src, k, 0), [h.tokens for h in flat])
    for h, ref in zip(flat, refs):
        assert 1 <= len(h.tokens) <= 8 and PAD not in h.tokens
        assert EOS not in h.tokens[:-1]  # EOS only at the end
        assert h.logprob == pytest.approx(ref, abs=1e-4)
        assert h.score == pytest.approx(ref / length_penalty_factor(len(h.tokens), alpha),
                                        abs=1e-4)
    # n_best=1 returns the best of the same search
    best = beam_search(m, src, beam_size=k, bos_id=BOS, eos_id=EOS, max_len=8,
                       length_penalty=alpha)
    assert [b[0].tokens for b in best] == [r[0].tokens for r in res]
    assert [len(b) for b in best] == [1, 1]


def test_batched_equals_one_at_a_time(model):
    src = SRC[[0, 2]]  # 6 and 3 tokens: the short one is mostly padding
    g_batch = greedy_decode(model, src, bos_id=BOS, eos_id=EOS, max_len=4)
    b_batch = beam_search(model, src, beam_size=3, bos_id=BOS, eos_id=EOS, max_len=4)
    for i, row in enumerate(src):
        single = row[row != PAD][None]  # no padding at all when alone
        g = greedy_decode(model, single, bos_id=BOS, eos_id=EOS, max_len=4)
        assert _strip(g[0]) == _strip(g_batch[i])
        b = beam_search(model, single, beam_size=3, bos_id=BOS, eos_id=EOS, max_len=4)
        assert b[0][0].tokens == b_batch[i][0].tokens
        assert b[0][0].score == pytest.approx(b_batch[i][0].score, abs=1e-4)


def test_eos_stops_rows_and_pads(ms_cpu):
    m = _eos_model(n_decoder_layers=1)  # control flow only: one layer is enough (faster)
    n_src = (SRC != PAD).sum(1)  # [6, 4, 3, 5]
    m.calls.clear()
    out = greedy_decode(m, SRC, bos_id=BOS, eos_id=EOS, max_len=12)
    assert out.shape == (4, n_src.max())  # stops when the longest row has finished
    for row, n in zip(out, n_src):
        assert row[n - 1] == EOS and EOS not in row[:n - 1] and PAD not in row[:n]
        assert np.all(row[n:] == PAD)  # finished rows are padded
    # one decoder call per step, finished rows dropped from the batch
    assert m.calls == [4, 4, 4, 3, 2, 1]
    # beam 1 = greedy when rows finish at different steps; the train/eval mode is restored
    m.set_train(True)
    one = beam_search(m, SRC, beam_size=1, bos_id=BOS, eos_id=EOS, max_len=12)
    assert m.training
    m.set_train(False)
    assert [h[0].tokens for h in one] == [_strip(r) for r in out]
    # beam search: every hypothesis ends at the source length; search stops right there
    m.calls.clear()
    res = beam_search(m, SRC, beam_size=3, bos_id=BOS, eos_id=EOS, max_len=12, n_best=3)
    assert len(m.calls) == n_src.max()
    for hyps, n in zip(res, n_src):
        assert len(hyps) == 3
        for h in hyps:
            assert len(h.tokens) == n and h.tokens[-1] == EOS and PAD not in h.tokens
    # the default length limit (source length + 50, capped by config.max_len) also works
    assert greedy_decode(m, SRC[2:3], bos_id=BOS, eos_id=EOS).shape == (1, 3)


def test_length_limit_without_eos(ms_cpu):
    m = _eos_model(n_decoder_layers=1)
    # row 0 has 6 source tokens, so EOS cannot win before step 6: max_len=3 cuts it
    out = greedy_decode(m, SRC[:1], bos_id=BOS, eos_id=EOS, max_len=3)
    assert out.shape == (1, 3) and EOS not in out[0] and PAD not in out[0]
    res = beam_search(m, SRC[:1], beam_size=2, bos_id=BOS, eos_id=EOS, max_len=3, n_best=2)
    assert [len(h.tokens) for h in res[0]] == [3, 3]
    assert all(EOS not in h.tokens for h in res[0])
    assert res[0][0].score >= res[0][1].score


def test_translate_restores_order(ms_cpu):
    from mindtf.tokenizers.word import Vocab, detokenize, tokenize

    sents = ["a dog", "two cats run", "hello", "the cat"]
    src_vocab = Vocab.build([tokenize(s) for s in sents])
    tgt_vocab = Vocab(["<unk>", "<pad>", "<bos>", "<eos>"] + [f"w{i}" for i in range(V_TGT - 4)])
    m = _eos_model(src_vocab_size=len(src_vocab), n_decoder_layers=1)
    out = translate(m, sents, src_vocab, tgt_vocab, tokenize, batch_size=3, src_bos=True,
                    src_eos=True)
    assert len(out) == 4
    # reference: one padded batch in the input order
    ids = [[BOS] + src_vocab.lookup(tokenize(s)) + [EOS] for s in sents]
    src = np.full((4, max(map(len, ids))), PAD, np.int32)
    for i, seq in enumerate(ids):
        src[i, :len(seq)] = seq
    ref = greedy_decode(m, src, bos_id=BOS, eos_id=EOS)
    for i, row in enumerate(ref):
        assert (row != PAD).sum() == len(ids[i])  # the EOS model's output length
        words = tgt_vocab.lookup_tokens([t for t in row if t not in (PAD, EOS, BOS)])
        assert out[i] == detokenize(words)
    beam = translate(m, sents, src_vocab, tgt_vocab, tokenize, beam_size=2, batch_size=2,
                     length_penalty=1.0, src_bos=True, src_eos=True)
    ref_beam = beam_search(m, src, beam_size=2, bos_id=BOS, eos_id=EOS, length_penalty=1.0)
    for i, hyps in enumerate(ref_beam):
        words = tgt_vocab.lookup_tokens([t for t in hyps[0].tokens if t not in (EOS, BOS)])
        assert beam[i] == detokenize(words)
    assert translate(m, [], src_vocab, tgt_vocab, tokenize) == []


def test_clear_errors(model):
    with pytest.raises(InputError, match=r"\(B, S\)"):
        greedy_decode(model, SRC[0], bos_id=BOS, eos_id=EOS)
    with pytest.raises(InputError, match="outside the vocabulary"):
        greedy_decode(model, np.array([[2, V_SRC]]), bos_id=BOS, eos_id=EOS)
    with pytest.raises(InputError, match="position table"):
        greedy_decode(model, SRC, bos_id=BOS, eos_id=EOS, max_len=17)
    with pytest.raises(InputError, match="position table"):
        greedy_decode(model, np.full((1, 17), 4), bos_id=BOS, eos_id=EOS)
    with pytest.raises(InputError, match="beam_size"):
        beam_search(model, SRC, beam_size=0, bos_id=BOS, eos_id=EOS)
    with pytest.raises(InputError, match="n_best"):
        beam_search(model, SRC, beam_size=2, n_best=3, bos_id=BOS, eos_id=EOS)
    with pytest.raises(InputError, match="eos_id"):
        greedy_decode(model, SRC, bos_id=BOS, eos_id=V_TGT)
    with pytest.raises(InputError, match="max_len must be"):
        greedy_decode(model, SRC, bos_id=BOS, eos_id=EOS, max_len=0)
    with pytest.raises(InputError, match="empty"):
        greedy_decode(model, np.zeros((0, 3), np.int32), bos_id=BOS, eos_id=EOS)
    from mindtf.tokenizers.word import Vocab, tokenize

    vocab = Vocab(["<unk>", "<pad>", "<bos>", "<eos>", "a"])
    with pytest.raises(InputError, match="got one string"):
        translate(model, "a", vocab, vocab, tokenize)
    with pytest.raises(InputError, match="pads with id 0"):
        translate(model, ["a"], Vocab(["<pad>", "<unk>", "<bos>", "<eos>"]), vocab, tokenize)
