"""Attention parity with PyTorch and mask behaviour."""
import numpy as np
import pytest

from mindspore import Tensor

import mindtf
from mindtf.nn.attention import scaled_dot_product_attention
from mindtf.errors import ConfigError, InputError


def _copy_mha(ours, torch_mha, d):
    w = torch_mha.in_proj_weight.detach().numpy()
    b = torch_mha.in_proj_bias.detach().numpy()
    for i, proj in enumerate((ours.q_proj, ours.k_proj, ours.v_proj)):
        proj.weight.set_data(Tensor(w[i * d:(i + 1) * d]))
        proj.bias.set_data(Tensor(b[i * d:(i + 1) * d]))
    ours.out_proj.weight.set_data(Tensor(torch_mha.out_proj.weight.detach().numpy()))
    ours.out_proj.bias.set_data(Tensor(torch_mha.out_proj.bias.detach().numpy()))


@pytest.mark.parametrize("masking", ["none", "padding", "causal", "both", "cross"])
def test_multihead_attention_matches_torch(ms_cpu, torch_ref, masking):
    torch = torch_ref
    d, h, b, tq = 32, 4, 3, 6
    tk = 9 if masking == "cross" else tq
    ref = torch.nn.MultiheadAttention(d, h, batch_first=True).eval()
    ours = mindtf.MultiHeadAttention(d, h)
    ours.set_train(False)
    _copy_mha(ours, ref, d)
    rng = np.random.default_rng(0)
    q = rng.standard_normal((b, tq, d)).astype(np.float32)
    kv = rng.standard_normal((b, tk, d)).astype(np.float32) if masking == "cross" else q
    lengths = np.array([tk, tk - 2, tk - 4])
    key_ok = np.arange(tk)[None, :] < lengths[:, None]  # (B, Tk) True = real token
    causal = np.tril(np.ones((tq, tk), bool))
    kw, mask = {}, None
    if masking in ("padding", "both", "cross"):
        kw["key_padding_mask"] = torch.from_numpy(~key_ok)
        mask = key_ok[:, None, None, :]
    if masking in ("causal", "both"):
        kw["attn_mask"] = torch.from_numpy(~causal)
        mask = causal if mask is None else (mask & causal)
    with torch.no_grad():
        out_ref, w_ref = ref(torch.from_numpy(q), torch.from_numpy(kv), torch.from_numpy(kv),
                             average_attn_weights=False, **kw)
    out, w = ours(Tensor(q), Tensor(kv), Tensor(kv),
                  mask=None if mask is None else Tensor(mask), return_weights=True)
    assert np.abs(out.asnumpy() - out_ref.numpy()).max() <= 1e-5
    assert np.abs(w.asnumpy() - w_ref.numpy()).max() <= 1e-5
    assert w.shape == (b, h, tq, tk)


def test_fully_masked_rows_are_finite(ms_cpu):
    rng = np.random.default_rng(1)
    q = Tensor(rng.standard_normal((2, 2, 4, 8)).astype(np.float32))
    mask = np.ones((2, 1, 4, 4), bool)
    mask[0, :, 1, :] = False  # query 1 of batch 0 sees nothing
    mask[1] = False  # the whole of batch 1 is masked
    out, w = scaled_dot_product_attention(q, q, q, Tensor(mask), return_weights=True)
    out, w = out.asnumpy(), w.asnumpy()
    assert np.isfinite(out).all() and np.isfinite(w).all()
    assert np.all(out[1] == 0) and np.all(w[0, :, 1] == 0)
    # rows that can see keys still sum to one
    np.testing.assert_allclose(w[0, :, 0].sum(-1), 1.0, rtol=1e-6)


def test_sdpa_mask_matches_manual_softmax(ms_cpu):
    rng = np.random.default_rng(2)
    q, k, v = (rng.standard_normal((1, 5, 4)).astype(np.float32) for _ in range(3))
    mask = np.tril(np.ones((5, 5), bool))
    out = scaled_dot_product_attention(Tensor(q), Tensor(k), Tensor(v), Tensor(mask)).asnumpy()
    s = q @ k.transpose(0, 2, 1) / 2.0
    s = np.where(mask, s, -np.inf)
    p = np.exp(s - s.max(-1, keepdims=True))
    p /= p.sum(-1, keepdims=True)
    np.testing.assert_allclose(out, p @ v, atol=1e-5)


def test_masks_helpers(ms_cpu):
    ids = np.array([[5, 6, 1, 1], [7, 1, 1, 1]])
    pm = mindtf.padding_mask(ids, pad_id=1).asnumpy()
    assert pm.shape == (2, 1, 1, 4) and pm.dtype == bool
    assert pm[0, 0, 0].tolist() == [True, True, False, False]
    cm = mindtf.causal_mask(3).asnumpy()
    assert cm.tolist() == [[True, False, False], [True, True, False], [True, True, True]]
    # with a cache: 2 new queries over 5 keys
    assert mindtf.causal_mask(2, 5).asnumpy().tolist() == [
        [True, True, True, True, False], [True, True, True, True, True]]


def test_additive_attention_shapes_and_mask(ms_cpu):
    att = mindtf.AdditiveAttention(6, 5, 7)
    rng = np.random.default_rng(3)
    q = Tensor(rng.standard_normal((2, 3, 6)).astype(np.float32))
    k = Tensor(rng.standard_normal((2, 4, 5)).astype(np.float32))
    v = Tensor(rng.standard_normal((2, 4, 2)).astype(np.float32))
    mask = Tensor(np.array([[1, 1, 0, 0], [1, 1, 1, 1]], bool)[:, None, None, :])
    ctx, w = att(q, k, v, mask)
    w = w.asnumpy()
    assert ctx.shape == (2, 3, 2) and w.shape == (2, 3, 4)
    assert np.all(w[0, :, 2:] == 0)
    np.testing.assert_allclose(w.sum(-1), 1.0, rtol=1e-5)


def test_bad_masks_and_config_raise_clear_errors(ms_cpu):
    with pytest.raises(ConfigError, match="not divisible by n_heads"):
        mindtf.MultiHeadAttention(30, 4)
    mha = mindtf.MultiHeadAttention(8, 2)
    x = Tensor(np.zeros((2, 3, 8), np.float32))
    with pytest.raises(InputError, match="must be boolean"):
        mha(x, mask=Tensor(np.ones((3, 3), np.float32)))
    with pytest.raises(InputError, match="does not broadcast"):
        mha(x, mask=Tensor(np.ones((2, 1, 1, 5), bool)))
    with pytest.raises(InputError, match="more dimensions"):
        mha(x, mask=Tensor(np.ones((1, 2, 1, 1, 3), bool)))


def test_kv_cache_matches_full_attention(ms_cpu):
    mha = mindtf.MultiHeadAttention(16, 4)
    mha.set_train(False)
    rng = np.random.default_rng(4)
    x = rng.standard_normal((2, 7, 16)).astype(np.float32)
    full = mha(Tensor(x), mask=mindtf.causal_mask(7)).asnumpy()
    cache = mindtf.nn.kv_cache.LayerKV()
    steps = [mha(Tensor(x[:, i:i + 1]), cache=cache).asnumpy() for i in range(7)]
    np.testing.assert_allclose(np.concatenate(steps, 1), full, atol=1e-5)
    assert cache.length == 7
