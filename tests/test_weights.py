"""mindtf.weights: torch-free, code-free reading of .bin/.pt/.safetensors files and HF model
directories, the GPT-2 name mapping (mindtf.weights.gpt2) and the strict state loader
(mindtf.weights.state)."""
from __future__ import annotations

import builtins
import json
import os
import pickle
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import pytest

from mindtf.errors import CheckpointError, InputError
from mindtf.weights import (
    CONV1D_SUFFIXES,
    copy_into,
    from_gpt2_names,
    read_safetensors,
    read_safetensors_metadata,
    read_state,
    read_torch_file,
    state_of,
    to_gpt2_names,
    write_safetensors,
)

try:
    import torch  # writes the reference files; reading them needs numpy only
except ImportError:  # pragma: no cover
    torch = None
needs_torch = pytest.mark.skipif(torch is None, reason="torch (a dev requirement) is not installed")


def _expected(t: "torch.Tensor") -> np.ndarray:
    """What read_state should return for tensor ``t``: numpy dtypes as is, bf16/fp8 as float32."""
    t = t.detach()
    if t.dtype in (torch.bfloat16, torch.float8_e4m3fn, torch.float8_e5m2):
        return t.float().numpy()
    return t.numpy()


def _assert_same(got: dict, want: dict) -> None:
    assert sorted(got) == sorted(want)
    for k, t in want.items():
        exp = _expected(t) if isinstance(t, torch.Tensor) else t
        assert isinstance(got[k], np.ndarray), k
        assert got[k].dtype == exp.dtype, (k, got[k].dtype, exp.dtype)
        assert got[k].shape == exp.shape, (k, got[k].shape, exp.shape)
        np.testing.assert_array_equal(got[k], exp, err_msg=k)


# --------------------------------------------------------------------------------------------------
# torch.save files
# --------------------------------------------------------------------------------------------------


def _sample_state() -> dict:
    g = torch.Generator().manual_seed(0)
    base = torch.randn(20, generator=g)
    half_base = torch.randn(12, generator=g).half()
    mat = torch.randn(3, 5, generator=g)
    return {
        "f32": torch.randn(4, 3, generator=g),
        "f16": torch.randn(2, 3, generator=g).half(),
        "bf16": torch.randn(3, 4, generator=g).bfloat16(),
        "f64": torch.randn(3, generator=g).double(),
        "i64": torch.randint(-(2**40), 2**40, (5,), generator=g),
        "i32": torch.randint(-1000, 1000, (2, 2), generator=g, dtype=torch.int32),
        "i8": torch.tensor([-128, 0, 127], dtype=torch.int8),
        "u8": torch.tensor([0, 200, 255], dtype=torch.uint8),
        "bool": torch.tensor([[True, False], [False, True]]),
        "transposed": mat.t(),  # non-contiguous view
        "strided": mat[:, ::2],  # non-unit stride
        "expanded": torch.arange(3.0).unsqueeze(0).expand(4, 3),  # stride 0
        "bf16_t": torch.randn(2, 5, generator=g).bfloat16().t(),
        "shared_a": base[2:8],  # two views of one storage with offsets
        "shared_b": base[10:16].view(2, 3),
        "shared_h": half_base[5:],
        "scalar_f": torch.tensor(3.25),
        "scalar_i": torch.tensor(-7),
        "scalar_bf16": torch.tensor(1.5, dtype=torch.bfloat16),
        "empty": torch.zeros(0, 4),
        "param": torch.nn.Parameter(torch.randn(2, 2, generator=g)),
        "u16": torch.tensor([0, 1, 65535], dtype=torch.uint16),  # saved via _rebuild_tensor_v3
        "c64": torch.tensor([1 + 2j, -3.5j], dtype=torch.complex64),
        "fp8_e4m3": torch.tensor([0.0, -1.5, 448.0, 0.001953125, 3.0]).to(torch.float8_e4m3fn),
        "fp8_e5m2": torch.tensor([0.0, -2.5, 57344.0, 1.52587890625e-05]).to(torch.float8_e5m2),
    }


@needs_torch
def test_torch_save_all_dtypes_and_views(tmp_path: Path) -> None:
    state = _sample_state()
    assert not state["transposed"].is_contiguous()
    storage = {k: state[k].untyped_storage().data_ptr() for k in ("shared_a", "shared_b")}
    assert storage["shared_a"] == storage["shared_b"]
    for suffix in (".bin", ".pt", ".pth"):
        path = tmp_path / f"w{suffix}"
        torch.save(state, path)
        got = read_state(path)
        _assert_same(got, state)
        assert all(a.flags.writeable and a.flags.c_contiguous for a in got.values())
    # shared storages come back as independent arrays
    got["shared_a"][0] = 1e6
    assert got["shared_b"][0, 0] != 1e6


@needs_torch
def test_torch_save_exact_bf16_bits(tmp_path: Path) -> None:
    # every bf16 bit pattern but NaNs survives the conversion bit-exactly
    bits = torch.arange(0, 2**16, dtype=torch.int32).to(torch.int16).view(torch.bfloat16)
    torch.save({"all": bits}, tmp_path / "bf.pt")
    got = read_state(tmp_path / "bf.pt")["all"]
    np.testing.assert_array_equal(got, bits.float().numpy())


@needs_torch
def test_same_tensor_twice_and_plain_dict(tmp_path: Path) -> None:
    t = torch.arange(6.0).view(2, 3)
    torch.save({"a": t, "b": t}, tmp_path / "twice.pt")  # pickled once, memo-referenced twice
    got = read_state(tmp_path / "twice.pt")
    _assert_same(got, {"a": t, "b": t})
    got["a"][0, 0] = 99
    assert got["b"][0, 0] == 0


@needs_torch
def test_read_torch_file_nested(tmp_path: Path) -> None:
    ckpt = {"model": {"w": torch.ones(2)}, "step": 3, "lr": [0.1, 0.01], "name": "run1"}
    torch.save(ckpt, tmp_path / "ckpt.pt")
    got = read_torch_file(tmp_path / "ckpt.pt")
    assert got["step"] == 3 and got["lr"] == [0.1, 0.01] and got["name"] == "run1"
    np.testing.assert_array_equal(got["model"]["w"], np.ones(2, np.float32))
    with pytest.raises(CheckpointError, match="'model' is a dict, not a tensor"):
        read_state(tmp_path / "ckpt.pt")


@needs_torch
def test_tensor_with_python_attributes(tmp_path: Path) -> None:
    # such tensors are pickled via _rebuild_from_type_v2 / _rebuild_parameter_with_state
    t = torch.arange(4.0)
    t.note = "x"
    p = torch.nn.Parameter(torch.ones(2, 2))
    p.tag = 1
    torch.save({"t": t, "p": p, "size": torch.Size([2, 3])}, tmp_path / "attrs.pt")
    got = read_torch_file(tmp_path / "attrs.pt")
    np.testing.assert_array_equal(got["t"], np.arange(4.0, dtype=np.float32))
    np.testing.assert_array_equal(got["p"], np.ones((2, 2), np.float32))
    assert got["size"] == (2, 3)


@needs_torch
def test_legacy_torch_format_rejected(tmp_path: Path) -> None:
    path = tmp_path / "old.bin"
    torch.save({"w": torch.ones(2)}, path, _use_new_zipfile_serialization=False)
    with pytest.raises(CheckpointError, match="legacy") as info:
        read_state(path)
    assert "recent torch" in str(info.value) and "safetensors" in str(info.value)


@needs_torch
def test_torchscript_archive_rejected(tmp_path: Path) -> None:
    path = tmp_path / "scripted.pt"
    try:
        torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), str(path))
    except Exception as exc:  # TorchScript may be unavailable or deprecated in this torch
        pytest.skip(f"torch.jit unavailable: {exc}")
    with pytest.raises(CheckpointError, match="TorchScript"):
        read_state(path)


def test_torch_module_not_imported() -> None:
    code = ("import sys, mindtf.weights; "
            "assert 'torch' not in sys.modules and 'mindspore' not in sys.modules")
    subprocess.run([sys.executable, "-c", code], check=True)


# --------------------------------------------------------------------------------------------------
# Hand-built archives: other folder names, byte order, corrupt records, malicious pickles
# --------------------------------------------------------------------------------------------------


def _tensor_pickle(size: int, offset: int = 0, storage_cls: str = "FloatStorage") -> bytes:
    """data.pkl for ``{"w": tensor}`` written opcode by opcode, as torch.save would."""

    def uni(s: str) -> bytes:
        return b"X" + struct.pack("<I", len(s)) + s.encode()

    def int_(n: int) -> bytes:
        return b"J" + struct.pack("<i", n)

    return (
        b"\x80\x02}" + uni("w")
        + b"ctorch._utils\n_rebuild_tensor_v2\n"
        + b"((" + uni("storage") + f"ctorch\n{storage_cls}\n".encode()
        + uni("0") + uni("cpu") + int_(4) + b"tQ"
        + int_(offset) + int_(size) + b"\x85" + int_(1) + b"\x85" + b"\x89"
        + b"ccollections\nOrderedDict\n)R" + b"tR"
        + b"s."
    )


def _write_archive(
    path: Path, pkl: bytes, data: bytes = b"", folder: str = "my_model", byteorder: str = "little"
) -> Path:
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr(f"{folder}/data.pkl", pkl)
        zf.writestr(f"{folder}/byteorder", byteorder)
        zf.writestr(f"{folder}/data/0", data)
        zf.writestr(f"{folder}/version", "3\n")
    return path


def test_hand_built_archive_any_folder_name(tmp_path: Path) -> None:
    data = np.arange(1, 5, dtype="<f4").tobytes()
    got = read_state(_write_archive(tmp_path / "a.bin", _tensor_pickle(3, offset=1), data))
    np.testing.assert_array_equal(got["w"], np.array([2, 3, 4], np.float32))


def test_big_endian_archive(tmp_path: Path) -> None:
    data = np.arange(1, 5, dtype=">f4").tobytes()
    got = read_state(_write_archive(tmp_path / "be.pt", _tensor_pickle(4), data, byteorder="big"))
    assert got["w"].dtype == np.float32 and got["w"].dtype.isnative
    np.testing.assert_array_equal(got["w"], np.arange(1, 5, dtype=np.float32))


def test_out_of_bounds_view_rejected(tmp_path: Path) -> None:
    data = np.arange(4, dtype="<f4").tobytes()
    with pytest.raises(CheckpointError, match="holds only 4"):
        read_state(_write_archive(tmp_path / "oob.pt", _tensor_pickle(100), data))
    with pytest.raises(CheckpointError, match="not in the archive"):
        with zipfile.ZipFile(tmp_path / "nodata.pt", "w") as zf:
            zf.writestr("x/data.pkl", _tensor_pickle(4))
        read_state(tmp_path / "nodata.pt")


class _SystemPayload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


class _EvalPayload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (builtins.eval, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


class _ExecPayload:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (builtins.exec, (f"open({str(self.marker)!r}, 'w').write('pwned')",))


@pytest.mark.parametrize("payload", [_SystemPayload, _EvalPayload, _ExecPayload])
@pytest.mark.parametrize("protocol", [2, 4])
def test_malicious_pickle_rejected(tmp_path: Path, payload: type, protocol: int) -> None:
    marker = tmp_path / "PWNED"
    evil = payload(marker)
    good = {"w": np.zeros(1)}  # never reached: the payload sits next to a plausible entry
    pkl = pickle.dumps({"a": 1, "evil": evil, "w": good["w"].tolist()}, protocol=protocol)
    path = _write_archive(tmp_path / "evil.bin", pkl, b"\0" * 16, folder="archive")
    with pytest.raises(CheckpointError, match="refusing to load"):
        read_state(path)
    # the same file inside an HF directory
    (tmp_path / "hf").mkdir()
    os.replace(path, tmp_path / "hf" / "pytorch_model.bin")
    with pytest.raises(CheckpointError, match="refusing to load"):
        read_state(tmp_path / "hf")
    assert not marker.exists()


def test_malicious_pickle_via_torch_globals(tmp_path: Path) -> None:
    """Names next to the allowed ones (torch.load itself, torch._utils helpers) are refused too."""
    marker = tmp_path / "PWNED"
    for module, name in [("torch", "load"), ("torch._utils", "_import_dotted_name"),
                         ("posix", "system"),
                         ("builtins", "getattr"), ("collections", "defaultdict")]:
        pkl = f"c{module}\n{name}\n".encode() + b"X\x05\x00\x00\x00dummy\x85R."
        path = _write_archive(tmp_path / f"{name}.pt", pkl, folder="archive")
        with pytest.raises(CheckpointError, match=f"{module}.{name}"):
            read_state(path)
    assert not marker.exists()


def test_pickle_cannot_tamper_with_the_loader(tmp_path: Path) -> None:
    """BUILD / REDUCE on the stand-ins the unpickler hands out fail instead of mutating them."""
    cases = [
        # BUILD dict
        b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\n}X\x0c\x00\x00\x00__defaults__)sb.",
        # BUILD slots
        b"\x80\x02ctorch._utils\n_rebuild_tensor_v2\nN}X\x04\x00\x00\x00func)s\x86b.",
        # BUILD marker
        b"\x80\x02ctorch\nFloatStorage\n}X\x04\x00\x00\x00kindX\x01\x00\x00\x00xsb.",
        b"\x80\x02ctorch\nFloatStorage\n)R.",  # call a storage class
        b"\x80\x02X\x01\x00\x00\x00aQ.",  # bogus persistent id
        b"\x80\x02]q\x00h\x00a.",  # self-referencing list
    ]
    for i, pkl in enumerate(cases):
        with pytest.raises(CheckpointError):
            read_torch_file(_write_archive(tmp_path / f"t{i}.pt", pkl, b"\0" * 16))
    # a normal load still works afterwards
    data = np.arange(1, 5, dtype="<f4").tobytes()
    got = read_state(_write_archive(tmp_path / "ok.pt", _tensor_pickle(4), data))
    np.testing.assert_array_equal(got["w"], np.arange(1, 5, dtype=np.float32))


def test_corrupt_pickle(tmp_path: Path) -> None:
    path = _write_archive(tmp_path / "bad.pt", b"\x80\x02}q\x00(garbage")
    with pytest.raises(CheckpointError):
        read_state(path)


# --------------------------------------------------------------------------------------------------
# Missing / unsupported inputs
# --------------------------------------------------------------------------------------------------


def test_missing_paths(tmp_path: Path) -> None:
    with pytest.raises(CheckpointError) as info:
        read_state(tmp_path)  # exists, empty
    msg = str(info.value)
    for name in ("model.safetensors", "model.safetensors.index.json", "pytorch_model.bin",
                 "pytorch_model.bin.index.json"):
        assert name in msg
    with pytest.raises(CheckpointError, match="does not exist") as info:
        read_state(tmp_path / "nope")
    assert "model.safetensors" in str(info.value)
    with pytest.raises(CheckpointError, match="not found"):
        read_state(tmp_path / "nope.safetensors")
    with pytest.raises(CheckpointError, match="not found"):
        read_torch_file(tmp_path / "nope.bin")


def test_unsupported_format(tmp_path: Path) -> None:
    (tmp_path / "weights.txt").write_text("hello")
    with pytest.raises(CheckpointError, match="unsupported weight file format"):
        read_state(tmp_path / "weights.txt")
    (tmp_path / "w.bin").write_bytes(b"not a checkpoint at all")
    with pytest.raises(CheckpointError, match="not a zip-based"):
        read_state(tmp_path / "w.bin")
    (tmp_path / "w.safetensors").write_bytes(b"\x05\x00\x00\x00\x00\x00\x00\x00{bad}")
    with pytest.raises(CheckpointError, match="safetensors"):
        read_state(tmp_path / "w.safetensors")


# --------------------------------------------------------------------------------------------------
# safetensors
# --------------------------------------------------------------------------------------------------


def test_safetensors_round_trip_with_metadata(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    state = {
        "a": rng.standard_normal((3, 4)).astype(np.float32),
        "b": rng.integers(-5, 5, (7,)).astype(np.int64),
        "c": rng.standard_normal((2, 2)).astype(np.float16),
        "d": np.array([True, False]),
        "t": rng.standard_normal((4, 5)).astype(np.float64).T,  # non-contiguous input
        "s": np.array(2.5, dtype=np.float32),
    }
    path = tmp_path / "m.safetensors"
    write_safetensors(state, path, metadata={"format": "np", "step": "10"})
    got = read_safetensors(path)
    assert sorted(got) == sorted(state)
    for k, v in state.items():
        assert got[k].dtype == v.dtype and got[k].shape == v.shape
        np.testing.assert_array_equal(got[k], v)
    assert read_safetensors_metadata(path) == {"format": "np", "step": "10"}
    assert read_state(path).keys() == state.keys()
    # overwrite atomically; no temp files left behind
    write_safetensors({"a": np.ones(2, np.float32)}, path)
    assert list(read_safetensors(path)) == ["a"] and read_safetensors_metadata(path) == {}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.safetensors"]
    umask = os.umask(0o022)
    os.umask(umask)
    assert path.stat().st_mode & 0o777 == 0o666 & ~umask


def test_write_safetensors_bad_input_leaves_no_file(tmp_path: Path) -> None:
    path = tmp_path / "x.safetensors"
    with pytest.raises(InputError):
        write_safetensors({"a": [1, 2]}, path)  # type: ignore[dict-item]
    with pytest.raises(InputError):
        write_safetensors({"a": np.ones(1)}, path, metadata={"k": 1})  # type: ignore[dict-item]
    with pytest.raises(CheckpointError):
        write_safetensors({"a": np.array([object()])}, path)
    assert list(tmp_path.iterdir()) == []


@needs_torch
def test_safetensors_bf16_written_by_torch(tmp_path: Path) -> None:
    from safetensors.torch import save_file

    state = {
        "bf": torch.randn(3, 4).bfloat16(),
        "f32": torch.randn(2),
        "fp8": torch.tensor([1.0, -0.5, 448.0]).to(torch.float8_e4m3fn),
        "i": torch.arange(3),
    }
    save_file(state, str(tmp_path / "bf.safetensors"), metadata={"format": "pt"})
    got = read_state(tmp_path / "bf.safetensors")
    _assert_same(got, state)
    assert read_safetensors_metadata(tmp_path / "bf.safetensors") == {"format": "pt"}


# --------------------------------------------------------------------------------------------------
# Hugging Face directories
# --------------------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gpt2():
    if torch is None:
        pytest.skip("torch (a dev requirement) is not installed")
    transformers = pytest.importorskip("transformers")
    transformers.logging.set_verbosity_error()
    torch.manual_seed(0)
    cfg = transformers.GPT2Config(n_layer=2, n_embd=32, n_head=2, vocab_size=100, n_positions=64)
    return transformers.GPT2LMHeadModel(cfg).eval()


def _save_bin_dir(model, directory: Path) -> None:
    """save_pretrained(safe_serialization=False); transformers>=5 ignores the flag and writes
    safetensors,
    so then write pytorch_model.bin the way transformers 4.x did (torch.save of the state dict)."""
    model.save_pretrained(directory, safe_serialization=False)
    if not (directory / "pytorch_model.bin").exists():
        for p in directory.glob("model*.safetensors*"):
            p.unlink()
        torch.save(model.state_dict(), directory / "pytorch_model.bin")


def test_hf_gpt2_bin_and_safetensors(gpt2, tmp_path: Path) -> None:
    sd = gpt2.state_dict()
    bin_dir, st_dir = tmp_path / "bin", tmp_path / "st"
    _save_bin_dir(gpt2, bin_dir)
    gpt2.save_pretrained(st_dir, safe_serialization=True)
    assert (bin_dir / "pytorch_model.bin").exists() and (st_dir / "model.safetensors").exists()

    got_bin = read_state(bin_dir)
    got_st = read_state(st_dir)
    assert set(got_bin) <= set(sd) and set(got_st) <= set(sd)
    _assert_same(got_bin, {k: sd[k] for k in got_bin})
    _assert_same(got_st, {k: sd[k] for k in got_st})
    # every parameter is in both, except that safetensors may drop the tied lm_head.weight
    params = {k for k, _ in gpt2.named_parameters(remove_duplicate=False)}
    assert params - set(got_bin) == set()
    assert params - set(got_st) <= {"lm_head.weight"}
    if "lm_head.weight" in got_bin:  # tied to wte: same values, separate arrays
        np.testing.assert_array_equal(got_bin["lm_head.weight"], got_bin["transformer.wte.weight"])
        assert got_bin["lm_head.weight"] is not got_bin["transformer.wte.weight"]


def test_hf_directory_prefers_safetensors(gpt2, tmp_path: Path) -> None:
    d = tmp_path / "both"
    gpt2.save_pretrained(d, safe_serialization=True)
    torch.save({"only_in_bin": torch.ones(1)}, d / "pytorch_model.bin")
    assert "only_in_bin" not in read_state(d)
    (d / "model.safetensors").unlink()
    assert list(read_state(d)) == ["only_in_bin"]


def test_hf_sharded_safetensors(gpt2, tmp_path: Path) -> None:
    d = tmp_path / "sharded"
    gpt2.save_pretrained(d, max_shard_size="20KB")
    index = d / "model.safetensors.index.json"
    assert index.exists() and not (d / "model.safetensors").exists()
    sd = gpt2.state_dict()
    weight_map = json.loads(index.read_text())["weight_map"]
    got = read_state(d)
    assert set(got) == set(weight_map)
    _assert_same(got, {k: sd[k] for k in got})
    assert read_state(index).keys() == got.keys()
    # a missing shard is named
    victim = sorted(set(weight_map.values()))[0]
    (d / victim).unlink()
    with pytest.raises(CheckpointError, match=victim):
        read_state(d)


def test_hf_sharded_bin(gpt2, tmp_path: Path) -> None:
    d = tmp_path / "sharded_bin"
    d.mkdir()
    sd = gpt2.state_dict()
    keys = list(sd)
    shards = {"pytorch_model-00001-of-00002.bin": keys[: len(keys) // 2],
              "pytorch_model-00002-of-00002.bin": keys[len(keys) // 2 :]}
    for name, ks in shards.items():
        torch.save({k: sd[k] for k in ks}, d / name)
    weight_map = {k: name for name, ks in shards.items() for k in ks}
    index = d / "pytorch_model.bin.index.json"
    index.write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    _assert_same(read_state(d), dict(sd))
    # an index pointing outside the directory is refused
    index.write_text(json.dumps({"weight_map": {"w": "../evil.bin"}}))
    with pytest.raises(CheckpointError, match="invalid shard"):
        read_state(d)


# --------------------------------------------------------------------------------------------------
# Hugging Face GPT-2 names and layouts (mindtf.weights.gpt2)
# --------------------------------------------------------------------------------------------------


def _hf_gpt2_state(prefix: str = "transformer.") -> dict:
    """A GPT-2 checkpoint as Hugging Face names it: n_embd=4, vocab 10, 8 positions, one block."""
    rng = np.random.default_rng(0)

    def r(*shape: int) -> np.ndarray:
        return rng.standard_normal(shape).astype(np.float32)

    state = {
        "wte.weight": r(10, 4),
        "wpe.weight": r(8, 4),
        "h.0.ln_1.weight": r(4),
        "h.0.attn.c_attn.weight": r(4, 12),  # Conv1D (in, out)
        "h.0.attn.c_attn.bias": r(12),
        "h.0.attn.c_proj.weight": r(4, 4),
        "h.0.mlp.c_fc.weight": r(4, 16),
        "h.0.mlp.c_proj.weight": r(16, 4),
        "h.0.attn.bias": np.tril(np.ones((1, 1, 8, 8), np.float32)),  # causal-mask buffer
        "h.0.attn.masked_bias": np.array(-1e4, np.float32),
        "ln_f.weight": r(4),
    }
    state = {prefix + k: v for k, v in state.items()}
    state["lm_head.weight"] = r(10, 4)
    return state


@pytest.mark.parametrize("prefix", ["transformer.", ""])  # GPT2LMHeadModel / GPT2Model
def test_from_gpt2_names_rules(prefix: str) -> None:
    hf = _hf_gpt2_state(prefix)
    tied = from_gpt2_names(hf, tied=True)
    assert sorted(tied) == ["h.0.attn.c_attn.bias", "h.0.attn.c_attn.weight",
                            "h.0.attn.c_proj.weight", "h.0.ln_1.weight", "h.0.mlp.c_fc.weight",
                            "h.0.mlp.c_proj.weight", "ln_f.weight", "wpe.weight", "wte.weight"]
    # Conv1D (in, out) -> (out, in); everything else untouched
    for name in ("h.0.attn.c_attn.weight", "h.0.attn.c_proj.weight", "h.0.mlp.c_fc.weight",
                 "h.0.mlp.c_proj.weight"):
        np.testing.assert_array_equal(tied[name], hf[prefix + name].T)
    assert tied["h.0.attn.c_attn.weight"].shape == (12, 4)
    assert tied["h.0.mlp.c_fc.weight"].shape == (16, 4)
    assert tied["h.0.attn.c_attn.bias"] is hf[prefix + "h.0.attn.c_attn.bias"]
    assert tied["wte.weight"] is hf[prefix + "wte.weight"]
    # an untied head is kept, as it is
    untied = from_gpt2_names(hf, tied=False)
    assert set(untied) == set(tied) | {"lm_head.weight"}
    assert untied["lm_head.weight"] is hf["lm_head.weight"]
    assert set(CONV1D_SUFFIXES) >= {".attn.c_attn.weight", ".mlp.c_fc.weight"}


def test_gpt2_names_round_trip() -> None:
    hf = _hf_gpt2_state()
    buffers = {"transformer.h.0.attn.bias", "transformer.h.0.attn.masked_bias"}
    for tied in (False, True):
        back = to_gpt2_names(from_gpt2_names(hf, tied=tied))
        dropped = buffers | ({"lm_head.weight"} if tied else set())
        want = {k: v for k, v in hf.items() if k not in dropped}
        assert sorted(back) == sorted(want)
        for k, v in want.items():
            assert back[k].shape == v.shape and back[k].flags.c_contiguous, k
            np.testing.assert_array_equal(back[k], v, err_msg=k)
    # mindtf names -> Hugging Face -> mindtf is the identity
    mine = from_gpt2_names(hf, tied=False)
    again = from_gpt2_names(to_gpt2_names(mine), tied=False)
    assert sorted(again) == sorted(mine)
    for k, v in mine.items():
        np.testing.assert_array_equal(again[k], v, err_msg=k)
    assert "lm_head.weight" in to_gpt2_names(mine)  # the head keeps its own name


def test_gpt2_mapping_matches_transformers(gpt2, tmp_path: Path) -> None:
    """(out, in) weights compute what the Hugging Face Conv1D computes, as ``x @ W.T + b``; and
    what to_gpt2_names returns, written as safetensors, is what GPT2LMHeadModel.from_pretrained
    reads."""
    import transformers

    src = tmp_path / "src"
    gpt2.save_pretrained(src, safe_serialization=True)
    mine = from_gpt2_names(read_state(src), tied=True)
    hf_params = {k.removeprefix("transformer."): v for k, v in gpt2.state_dict().items()}
    assert set(mine) == {k for k in hf_params if not k.endswith((".attn.bias", ".attn.masked_bias"))
                         and k != "lm_head.weight"}
    for layer, name, n_in in [(gpt2.transformer.h[1].attn.c_attn, "h.1.attn.c_attn", 32),
                              (gpt2.transformer.h[0].mlp.c_proj, "h.0.mlp.c_proj", 128)]:
        x = torch.randn(3, n_in)
        w, b = mine[name + ".weight"], mine[name + ".bias"]  # (out, in), (out,)
        with torch.no_grad():
            want = layer(x).numpy()
        np.testing.assert_allclose(x.numpy() @ w.T + b, want, rtol=1e-5, atol=1e-5)

    out = tmp_path / "out"
    out.mkdir()
    write_safetensors(to_gpt2_names(mine), out / "model.safetensors", metadata={"format": "pt"})
    (out / "config.json").write_text((src / "config.json").read_text())
    back = transformers.GPT2LMHeadModel.from_pretrained(out).eval()
    ids = torch.tensor([[1, 5, 9, 42, 7]])
    with torch.no_grad():
        np.testing.assert_allclose(back(ids).logits.numpy(), gpt2(ids).logits.numpy(),
                                   rtol=1e-5, atol=1e-5)


# --------------------------------------------------------------------------------------------------
# The strict state loader (mindtf.weights.state)
# --------------------------------------------------------------------------------------------------


def _tiny_cell(extra_layers: int = 0):
    """dense.weight (2, 3), dense.bias (2,), half (4,) float16, count (1,) int32, more.N.weight"""
    import mindspore as ms
    from mindspore import Parameter, Tensor, nn

    class Tiny(nn.Cell):
        def __init__(self) -> None:
            super().__init__()
            self.dense = nn.Dense(3, 2)
            self.half = Parameter(Tensor(np.ones(4), ms.float16), name="half")
            self.count = Parameter(Tensor(np.array([3], np.int32)), name="count",
                                   requires_grad=False)
            self.more = nn.CellList([nn.Dense(2, 2, has_bias=False) for _ in range(extra_layers)])

    return Tiny()


def _params(cell) -> dict:
    return {p.name: p.asnumpy() for p in cell.get_parameters()}


def test_copy_into_and_state_of_round_trip(ms_cpu) -> None:
    a, b = _tiny_cell(), _tiny_cell()
    state = state_of(a)
    assert {k: v.dtype for k, v in state.items()} == {
        "dense.weight": np.float32, "dense.bias": np.float32, "half": np.float32, "count": np.int32}
    state = {k: v * 2 if v.dtype == np.float32 else v + 1 for k, v in state.items()}
    # float64, Fortran order: cast to the parameter's dtype, made C-contiguous
    state["dense.weight"] = np.asfortranarray(state["dense.weight"].astype(np.float64))
    copy_into(b, state)
    got = _params(b)
    np.testing.assert_allclose(got["dense.weight"], _params(a)["dense.weight"] * 2, rtol=1e-6)
    assert got["dense.weight"].dtype == np.float32 and got["half"].dtype == np.float16
    np.testing.assert_array_equal(got["half"], np.full(4, 2, np.float16))
    np.testing.assert_array_equal(got["count"], [4])


def test_copy_into_reports_missing_unexpected_misshaped(ms_cpu) -> None:
    cell = _tiny_cell()
    before = _params(cell)
    state = state_of(cell)
    del state["dense.bias"]
    state["dense.weight"] = np.zeros((3, 3), np.float32)
    state["half"] = np.full(4, 7, np.float32)  # fine, but nothing is copied when strict fails
    state["extra.weight"] = np.zeros(1, np.float32)
    with pytest.raises(CheckpointError) as info:
        copy_into(cell, state, hint="Check that config.json belongs to these weights.")
    msg = str(info.value)
    assert "does not match this Tiny configuration" in msg
    assert "missing keys (1): dense.bias" in msg
    assert "unexpected keys (1): extra.weight" in msg
    assert "mis-shaped keys (1): dense.weight: checkpoint (3, 3) vs model (2, 3)" in msg
    assert msg.endswith("\nCheck that config.json belongs to these weights.")
    for k, v in _params(cell).items():
        np.testing.assert_array_equal(v, before[k], err_msg=k)
    # long lists: counts and the first 12 names
    big = _tiny_cell(extra_layers=15)
    first_12 = r"missing keys \(15\): more\.0\.weight(, more\.\d+\.weight){11} "
    with pytest.raises(CheckpointError, match=first_12 + r"\.\.\. and 3 more$"):
        copy_into(big, state_of(cell))


def test_copy_into_non_strict_copies_what_matches(ms_cpu) -> None:
    cell = _tiny_cell()
    before = _params(cell)
    state = {"half": np.full(4, 5, np.float32), "dense.weight": np.zeros((3, 3), np.float32),
             "extra.weight": np.zeros(1, np.float32)}
    copy_into(cell, state, strict=False)
    got = _params(cell)
    np.testing.assert_array_equal(got["half"], np.full(4, 5, np.float16))  # matched: copied
    for k in ("dense.weight", "dense.bias", "count"):  # mis-shaped or missing: left as they were
        np.testing.assert_array_equal(got[k], before[k], err_msg=k)
