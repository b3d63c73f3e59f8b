"""The encoder-decoder Transformer against torch.nn.Transformer with copied weights."""
import numpy as np
import pytest

from mindspore import Tensor

import mindtf
from mindtf.errors import ConfigError, InputError

PAD = 1


def _copy_mha(ours, ref, d):
    w, b = ref.in_proj_weight.detach().numpy(), ref.in_proj_bias.detach().numpy()
    for i, proj in enumerate((ours.q_proj, ours.k_proj, ours.v_proj)):
        proj.weight.set_data(Tensor(w[i * d:(i + 1) * d].copy()))
        proj.bias.set_data(Tensor(b[i * d:(i + 1) * d].copy()))
    ours.out_proj.weight.set_data(Tensor(ref.out_proj.weight.detach().numpy()))
    ours.out_proj.bias.set_data(Tensor(ref.out_proj.bias.detach().numpy()))


def _copy_linear(ours, ref):
    ours.weight.set_data(Tensor(ref.weight.detach().numpy()))
    ours.bias.set_data(Tensor(ref.bias.detach().numpy()))


def _copy_norm(ours, ref):
    ours.weight.set_data(Tensor(ref.weight.detach().numpy()))
    ours.bias.set_data(Tensor(ref.bias.detach().numpy()))


def _copy_transformer(model, ref, d):
    for ours, theirs in zip(model.encoder_layers, ref.encoder.layers):
        _copy_mha(ours.self_attn, theirs.self_attn, d)
        _copy_linear(ours.ff.linear1, theirs.linear1)
        _copy_linear(ours.ff.linear2, theirs.linear2)
        _copy_norm(ours.norm1, theirs.norm1)
        _copy_norm(ours.norm2, theirs.norm2)
    for ours, theirs in zip(model.decoder_layers, ref.decoder.layers):
        _copy_mha(ours.self_attn, theirs.self_attn, d)
        _copy_mha(ours.cross_attn, theirs.multihead_attn, d)
        _copy_linear(ours.ff.linear1, theirs.linear1)
        _copy_linear(ours.ff.linear2, theirs.linear2)
        for i in (1, 2, 3):
            _copy_norm(getattr(ours, f"norm{i}"), getattr(theirs, f"norm{i}"))
    _copy_norm(model.encoder_norm, ref.encoder.norm)
    _copy_norm(model.decoder_norm, ref.decoder.norm)


@pytest.mark.parametrize("norm_first", [False, True], ids=["post-norm", "pre-norm"])
def test_transformer_matches_torch(ms_cpu, torch_ref, norm_first):
    torch = torch_ref
    d, h, ff, v_src, v_tgt = 32, 4, 64, 40, 50
    cfg = mindtf.TransformerConfig(src_vocab_size=v_src, tgt_vocab_size=v_tgt, d_model=d,
                                   n_heads=h, n_encoder_layers=2, n_decoder_layers=2, d_ff=ff,
                                   dropout=0.0, norm_first=norm_first, final_norm=True,
                                   max_len=32, pad_id=PAD)
    model = mindtf.Transformer(cfg)
    model.set_train(False)
    ref = torch.nn.Transformer(d, h, 2, 2, ff, dropout=0.0, batch_first=True,
                               norm_first=norm_first)
    _copy_transformer(model, ref, d)

    rng = np.random.default_rng(0)
    src = rng.integers(2, v_src, (3, 9)).astype(np.int32)
    tgt = rng.integers(2, v_tgt, (3, 7)).astype(np.int32)
    src[1, 6:] = PAD
    src[2, 4:] = PAD
    tgt[0, 5:] = PAD
    logits = model(Tensor(src), Tensor(tgt)).asnumpy()  # masks built from pad_id

    # the same embeddings (scaled + sinusoidal) go into torch's encoder-decoder
    x_src = model._embed(model.src_embed, Tensor(src)).asnumpy()
    x_tgt = model._embed(model.tgt_embed, Tensor(tgt)).asnumpy()
    causal = torch.from_numpy(~np.tril(np.ones((7, 7), bool)))  # torch: True = blocked
    out = ref(torch.from_numpy(x_src), torch.from_numpy(x_tgt), tgt_mask=causal,
              src_key_padding_mask=torch.from_numpy(src == PAD),
              tgt_key_padding_mask=torch.from_numpy(tgt == PAD),
              memory_key_padding_mask=torch.from_numpy(src == PAD)).detach().numpy()
    gen = model.generator
    ref_logits = out @ gen.weight.asnumpy().T + gen.bias.asnumpy()
    assert np.abs(logits - ref_logits).max() <= 1e-4


def test_attention_maps_and_cached_decoding(ms_cpu):
    cfg = mindtf.TransformerConfig(src_vocab_size=30, tgt_vocab_size=30, d_model=16, n_heads=2,
                                   n_encoder_layers=2, n_decoder_layers=3, d_ff=32, dropout=0.0,
                                   max_len=20, share_embeddings=True, tie_output=True)
    model = mindtf.Transformer(cfg)
    model.set_train(False)
    assert model.tgt_embed is model.src_embed and model.generator is None
    rng = np.random.default_rng(1)
    src = Tensor(rng.integers(2, 30, (2, 6)).astype(np.int32))
    tgt = Tensor(rng.integers(2, 30, (2, 5)).astype(np.int32))
    logits, maps = model(src, tgt, return_attention=True)
    assert logits.shape == (2, 5, 30)
    assert [len(maps[k]) for k in ("encoder", "decoder_self", "cross")] == [2, 3, 3]
    assert maps["cross"][0].shape == (2, 2, 5, 6)
    self_w = maps["decoder_self"][0].asnumpy()
    assert np.all(np.triu(self_w[0, 0], 1) == 0)  # causal: no weight on the future
    memory = model.encode(src)
    cache = model.new_cache()
    steps = [model.decode(tgt[:, i:i + 1], memory, cache=cache, src_ids=src).asnumpy()
             for i in range(5)]
    np.testing.assert_allclose(np.concatenate(steps, 1), logits.asnumpy(), atol=1e-5)


def test_transformer_clear_errors(ms_cpu):
    with pytest.raises(ConfigError, match="not divisible"):
        mindtf.TransformerConfig(d_model=30, n_heads=4)
    with pytest.raises(ConfigError, match="share_embeddings"):
        mindtf.TransformerConfig(src_vocab_size=10, tgt_vocab_size=11, share_embeddings=True)
    model = mindtf.Transformer(mindtf.TransformerConfig(
        src_vocab_size=10, tgt_vocab_size=12, d_model=8, n_heads=2, n_encoder_layers=1,
        n_decoder_layers=1, d_ff=16, max_len=6))
    ok = Tensor(np.full((1, 3), 2, np.int32))
    with pytest.raises(InputError, match="outside the vocabulary"):
        model(Tensor(np.array([[2, 10]], np.int32)), ok)
    with pytest.raises(InputError, match="position table"):
        model(Tensor(np.full((1, 7), 2, np.int32)), ok)
