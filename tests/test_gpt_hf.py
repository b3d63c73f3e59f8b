"""GPT against Hugging Face GPT-2: weights load by name, same logits, same greedy tokens,
same gradients. transformers/torch are test-only references."""
import json

import numpy as np
import pytest

import mindspore as ms
from mindspore import Tensor, ops

import mindtf
from mindtf.errors import CheckpointError, ConfigError, InputError

transformers = pytest.importorskip("transformers")


@pytest.fixture(scope="module")
def hf_model(tmp_path_factory):
    import torch

    torch.manual_seed(0)
    cfg = transformers.GPT2Config(vocab_size=97, n_positions=64, n_embd=32, n_layer=2, n_head=4,
                                  resid_pdrop=0.0, embd_pdrop=0.0, attn_pdrop=0.0)
    model = transformers.GPT2LMHeadModel(cfg).eval()
    root = tmp_path_factory.mktemp("hf")
    model.save_pretrained(root / "safetensors", safe_serialization=True)
    # transformers 5 always writes safetensors; write the classic pytorch_model.bin ourselves, with
    # the non-weight buffers (attn.bias, attn.masked_bias) that transformers 4.x stored in it
    (root / "bin").mkdir()
    cfg.save_pretrained(root / "bin")
    state = dict(model.state_dict())
    for i in range(cfg.n_layer):
        state[f"transformer.h.{i}.attn.bias"] = torch.tril(torch.ones(64, 64)).view(1, 1, 64, 64)
        state[f"transformer.h.{i}.attn.masked_bias"] = torch.tensor(-1e4)
    torch.save(state, root / "bin" / "pytorch_model.bin")
    assert (root / "safetensors" / "model.safetensors").exists()
    return model, root


IDS = np.random.default_rng(0).integers(0, 97, (2, 12)).astype(np.int64)


@pytest.mark.parametrize("fmt", ["safetensors", "bin"])
def test_logits_match_hf(ms_cpu, hf_model, fmt):
    import torch

    ref, root = hf_model
    ours = mindtf.GPT.from_pretrained(root / fmt)
    with torch.no_grad():
        want = ref(torch.from_numpy(IDS)).logits.numpy()
    got = ours(Tensor(IDS.astype(np.int32))).asnumpy()
    assert got.shape == want.shape
    assert np.abs(got - want).max() <= 1e-4


@pytest.mark.parametrize("use_cache,compiled", [(True, True), (True, False), (False, False)],
                         ids=["compiled-kv-cache", "pynative-kv-cache", "recompute"])
def test_greedy_generation_matches_hf(ms_cpu, hf_model, use_cache, compiled):
    import torch

    ref, root = hf_model
    ours = mindtf.GPT.from_pretrained(root / "safetensors")
    prompt = IDS[:1, :5]
    with torch.no_grad():
        want = ref.generate(torch.from_numpy(prompt), max_new_tokens=20, do_sample=False,
                            eos_token_id=None, pad_token_id=0).numpy()
    got = mindtf.generate(ours, prompt, 20, temperature=0.0, use_cache=use_cache, compiled=compiled)
    assert want.shape == (1, 25)
    np.testing.assert_array_equal(got, want)


def test_gradients_match_torch(ms_cpu, hf_model):
    import torch

    ref, root = hf_model
    ours = mindtf.GPT.from_pretrained(root / "bin")
    ours.set_train(True)  # dropout is 0, so train mode changes nothing numerically
    x, y = IDS[:, :-1], IDS[:, 1:]

    ref.zero_grad()
    logits = ref(torch.from_numpy(x)).logits
    loss_t = torch.nn.functional.cross_entropy(logits.reshape(-1, 97),
                                               torch.from_numpy(y).reshape(-1))
    loss_t.backward()
    ref_grads = {k.removeprefix("transformer."): p.grad.numpy() for k, p in ref.named_parameters()}

    params = ours.trainable_params()

    def loss_fn(xb, yb):
        lg = ours(xb).reshape(-1, 97)
        logp = ops.log_softmax(lg, -1)
        return -ops.gather_elements(logp, 1, yb.reshape(-1, 1)).mean()

    grad_fn = ms.value_and_grad(loss_fn, None, params)
    loss_m, grads = grad_fn(Tensor(x.astype(np.int32)), Tensor(y.astype(np.int32)))
    assert abs(float(loss_m.asnumpy()) - float(loss_t.item())) <= 1e-5
    assert len(params) == len(ref_grads)  # lm_head is tied to wte in both
    from mindtf.weights.gpt2 import CONV1D_SUFFIXES as _CONV1D_SUFFIXES

    for p, g in zip(params, grads):
        want = ref_grads[p.name]
        if p.name.endswith(_CONV1D_SUFFIXES):  # GPT-2 keeps these (in, out); mindtf (out, in)
            want = want.T
        err = np.abs(g.asnumpy() - want).max() / max(np.linalg.norm(want), 1e-12)
        assert err <= 1e-4, f"{p.name}: relative error {err:.2e}"


def test_save_pretrained_round_trip_and_hf_reads_it(ms_cpu, hf_model, tmp_path):
    import torch

    ref, root = hf_model
    ours = mindtf.GPT.from_pretrained(root / "safetensors")
    ours.save_pretrained(tmp_path / "ours")
    again = mindtf.GPT.from_pretrained(tmp_path / "ours")
    for a, b in zip(ours.get_parameters(), again.get_parameters()):
        assert a.name == b.name
        np.testing.assert_array_equal(a.asnumpy(), b.asnumpy())
    back = transformers.GPT2LMHeadModel.from_pretrained(tmp_path / "ours").eval()
    with torch.no_grad():
        np.testing.assert_allclose(back(torch.from_numpy(IDS)).logits.numpy(),
                                   ref(torch.from_numpy(IDS)).logits.numpy(), atol=1e-6)


@pytest.mark.parametrize("variant", [dict(position="rope"), dict(layout="gpt1"),
                                     dict(activation="swiglu", norm="rmsnorm", tie_weights=False)])
def test_other_layouts_round_trip_and_cache(ms_cpu, tmp_path, variant):
    cfg = mindtf.GPTConfig(vocab_size=50, block_size=16, n_layer=2, n_head=2, n_embd=16, **variant)
    model = mindtf.GPT(cfg)
    model.set_train(False)
    ids = np.random.default_rng(1).integers(0, 50, (2, 9)).astype(np.int32)
    full = model(Tensor(ids)).asnumpy()
    cache = model.new_cache()
    parts = [model(Tensor(ids[:, :4]), cache).asnumpy(), model(Tensor(ids[:, 4:]), cache).asnumpy()]
    np.testing.assert_allclose(np.concatenate(parts, 1), full, atol=1e-5)
    model.save_pretrained(tmp_path / "m")
    cfg_json = json.loads((tmp_path / "m" / "config.json").read_text())
    assert cfg_json["model_type"] == "mindtf-gpt"  # transformers must not mis-load it
    again = mindtf.GPT.from_pretrained(tmp_path / "m")
    assert again.config == cfg
    np.testing.assert_allclose(again(Tensor(ids)).asnumpy(), full, atol=1e-6)


def test_gpt2_initialisation_statistics(ms_cpu):
    cfg = mindtf.GPTConfig(vocab_size=500, block_size=64, n_layer=4, n_head=4, n_embd=128)
    model = mindtf.GPT(cfg)
    p = {q.name: q.asnumpy() for q in model.get_parameters()}
    assert abs(p["wte.weight"].std() - 0.02) < 0.002
    assert abs(p["h.0.attn.c_attn.weight"].std() - 0.02) < 0.002
    scaled = 0.02 / np.sqrt(2 * 4)
    assert abs(p["h.0.attn.c_proj.weight"].std() - scaled) < 0.0015
    assert abs(p["h.3.mlp.c_proj.weight"].std() - scaled) < 0.001
    assert np.all(p["h.0.attn.c_attn.bias"] == 0) and np.all(p["ln_f.weight"] == 1)
    assert "lm_head.weight" not in p  # tied to wte


def test_mismatched_checkpoint_lists_keys(ms_cpu, hf_model, tmp_path):
    _, root = hf_model
    cfg = json.loads((root / "safetensors" / "config.json").read_text())
    cfg["n_layer"] = 3  # one block more than the weights have
    cfg["n_positions"] = 32  # wpe mis-shaped
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "config.json").write_text(json.dumps(cfg))
    weights = (root / "safetensors" / "model.safetensors").read_bytes()
    (bad / "model.safetensors").write_bytes(weights)
    with pytest.raises(CheckpointError) as err:
        mindtf.GPT.from_pretrained(bad)
    msg = str(err.value)
    assert "missing keys" in msg and "h.2.attn.c_attn.weight" in msg
    assert "mis-shaped" in msg and "wpe.weight" in msg
    model = mindtf.GPT(mindtf.GPTConfig(vocab_size=97, block_size=64, n_layer=2, n_head=4,
                                        n_embd=32))
    state = {p.name: p.asnumpy() for p in model.get_parameters()}
    state["h.9.extra.weight"] = np.zeros(3, np.float32)
    with pytest.raises(CheckpointError, match=r"unexpected keys \(1\): h.9.extra.weight"):
        model.load_state_dict(state)


def test_gpt_clear_input_errors(ms_cpu):
    model = mindtf.GPT(mindtf.GPTConfig(vocab_size=20, block_size=8, n_layer=1, n_head=2, n_embd=8))
    with pytest.raises(ConfigError, match="not divisible by n_head"):
        mindtf.GPTConfig(n_embd=10, n_head=4)
    with pytest.raises(InputError, match="outside the vocabulary"):
        model(Tensor(np.array([[1, 20]], np.int32)))
    with pytest.raises(InputError, match="longer than the model's block_size=8"):
        model(Tensor(np.zeros((1, 9), np.int32)))
    with pytest.raises(InputError, match=r"shape \(B, T\)"):
        model(Tensor(np.zeros((9,), np.int32)))
    with pytest.raises(InputError, match="must be integers"):
        model(Tensor(np.zeros((1, 3), np.float32)))
    cache = model.new_cache()
    model(Tensor(np.zeros((1, 6), np.int32)), cache)
    with pytest.raises(InputError, match="longer than"):
        model(Tensor(np.zeros((1, 3), np.int32)), cache)


def test_compiled_cache_slides_like_the_pynative_cache(ms_cpu):
    """Past block_size both caches keep the last half block and go on: same tokens."""
    cfg = mindtf.GPTConfig(vocab_size=30, block_size=12, n_layer=2, n_head=2, n_embd=16)
    model = mindtf.GPT(cfg)
    prompt = np.random.default_rng(3).integers(0, 30, (2, 5)).astype(np.int32)
    a = mindtf.generate(model, prompt, 25, temperature=0.0, compiled=True)
    b = mindtf.generate(model, prompt, 25, temperature=0.0, compiled=False)
    np.testing.assert_array_equal(a, b)
    c = mindtf.generate(model, prompt, 7, temperature=0.9, top_k=5, seed=4, compiled=True)
    d = mindtf.generate(model, prompt, 7, temperature=0.9, top_k=5, seed=4, use_cache=False)
    np.testing.assert_array_equal(c, d)  # same sampling stream within the block
