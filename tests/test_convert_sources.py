"""convert from every non-PyTorch source (npz, Keras h5, Flax msgpack, GGUF, safetensors folders),
each read back by its own library and compared with what that library reads from the source."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from safetensors import safe_open

from tensorfile.convert import convert, diff

from .conftest import HEAVY

HF = Path(__file__).parent / "fixtures" / "hf"


def _read_safetensors(path: Path) -> dict[str, np.ndarray]:
    with safe_open(path, "np") as f:
        return {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118 - safe_open has no __iter__


def _metadata(path: Path) -> dict[str, str]:
    with safe_open(path, "np") as f:
        return f.metadata() or {}


def test_npz_stored_compressed_and_fortran(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    arrays = {
        "w": rng.standard_normal((5, 7)).astype(np.float32),
        "f": np.asfortranarray(rng.standard_normal((4, 6))),  # column-major on disk
        "i": np.arange(10, dtype=np.int64),
        "b": np.array([True, False, True]),
        "s": np.float16(3.5) * np.ones((), np.float16),
    }
    for save in (np.savez, np.savez_compressed):
        src = tmp_path / f"{save.__name__}.npz"
        save(src, **arrays)
        out = tmp_path / f"{save.__name__}.safetensors"
        result = convert(src, out)
        assert result.tensor_count == len(arrays)
        back = _read_safetensors(out)
        for name, value in arrays.items():
            assert back[name].dtype == value.dtype and back[name].shape == value.shape
            assert np.array_equal(back[name], value)
        assert diff(src, out).equal


def test_keras_weights_h5() -> None:
    h5py = pytest.importorskip("h5py")
    src = HEAVY / "keras3_dense.weights.h5"
    with h5py.File(src, "r") as f:
        expected = {name: f[name][()] for name in ("layers/dense/vars/0", "layers/dense/vars/1")}
    out_dir = Path(pytest.importorskip("tempfile").mkdtemp())
    out = out_dir / "k.safetensors"
    result = convert(src, out)
    back = _read_safetensors(out)
    assert set(back) == set(expected)
    for name, value in expected.items():
        assert np.array_equal(back[name], value)
    assert _metadata(out)["format"] == "tf"
    assert result.source_format == "keras-h5"


def test_flax_train_state_keeps_params(tmp_path: Path) -> None:
    msgpack = pytest.importorskip("msgpack")
    src = HEAVY / "flax_trainstate.msgpack"
    out = tmp_path / "params.safetensors"
    result = convert(src, out)
    back = _read_safetensors(out)
    assert set(back) == {"dense/bias", "dense/kernel"}
    assert any("optimizer" in n for n in result.notes)
    assert _metadata(out)["format"] == "flax"

    def ext(code: int, data: bytes) -> object:
        shape, dtype, raw = msgpack.unpackb(data)
        return np.frombuffer(raw, dtype).reshape(shape)

    tree = msgpack.unpackb(src.read_bytes(), ext_hook=ext, strict_map_key=False)
    assert np.array_equal(back["dense/kernel"], tree["params"]["dense"]["kernel"])
    assert np.array_equal(back["dense/bias"], tree["params"]["dense"]["bias"])


def _gguf(path: Path, tensors: dict[str, np.ndarray], quantized: bool = False) -> None:
    gguf = pytest.importorskip("gguf")
    writer = gguf.GGUFWriter(str(path), "llama")
    for name, value in tensors.items():
        writer.add_tensor(name, value)
    if quantized:
        raw = gguf.quants.quantize(np.ones((4, 64), np.float32), gguf.GGMLQuantizationType.Q8_0)
        writer.add_tensor("q.weight", raw, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def test_gguf_unquantized(tmp_path: Path) -> None:
    gguf = pytest.importorskip("gguf")
    rng = np.random.default_rng(1)
    tensors = {
        "token_embd.weight": rng.standard_normal((12, 8)).astype(np.float32),
        "blk.0.attn_q.weight": rng.standard_normal((8, 8)).astype(np.float16),
        "output_norm.weight": np.ones(8, np.float32),
    }
    src = tmp_path / "m.gguf"
    _gguf(src, tensors)
    out = tmp_path / "m.safetensors"
    convert(src, out)
    back = _read_safetensors(out)
    reader = gguf.GGUFReader(str(src))
    for t in reader.tensors:
        assert back[t.name].shape == tuple(t.data.shape)
        assert np.array_equal(back[t.name], t.data)
    for name, value in tensors.items():
        assert np.array_equal(back[name], value)


def test_gguf_quantized_is_dequantized(tmp_path: Path) -> None:
    from gguf import GGMLQuantizationType, GGUFReader
    from gguf.quants import dequantize

    src = tmp_path / "q.gguf"
    _gguf(src, {"a.weight": np.ones((4, 4), np.float32)}, quantized=True)
    result = convert(src, tmp_path / "q.safetensors")
    back = _read_safetensors(tmp_path / "q.safetensors")
    for t in GGUFReader(src).tensors:
        if t.tensor_type == GGMLQuantizationType.Q8_0:
            assert np.array_equal(back[t.name], dequantize(t.data, t.tensor_type).reshape(back[t.name].shape))
            assert back[t.name].dtype == np.float32
    result = convert(src, tmp_path / "part.safetensors", exclude=["q.*"])
    assert result.tensor_count == 1 and result.notes[-1].startswith("1 tensors left out")


def test_sharded_folder_merges_to_one_file(tmp_path: Path) -> None:
    src = HF / "llama_sharded"
    out = tmp_path / "merged.safetensors"
    convert(src, out)
    back = _read_safetensors(out)
    expected: dict[str, np.ndarray] = {}
    for shard in sorted(src.glob("*.safetensors")):
        expected |= _read_safetensors(shard)
    assert back.keys() == expected.keys()
    assert all(np.array_equal(back[k], expected[k]) for k in expected)
    assert diff(src, out).equal


def test_model_folder_to_folder_with_cast_and_copies(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    src = HF / "llama_sharded"
    out = tmp_path / "bf16"
    result = convert(src, out, dtype="bf16", max_shard_size="40KB")
    files = sorted(p.name for p in out.iterdir())
    assert {"config.json", "generation_config.json"} <= set(files)
    assert result.copied_files == ["config.json", "generation_config.json"]
    index = json.loads((out / "model.safetensors.index.json").read_text())
    shards = sorted(p for p in out.glob("model-*.safetensors"))
    assert len(shards) >= 2 and shards[0].name.endswith(f"-of-{len(shards):05d}.safetensors")
    stored: dict[str, torch.Tensor] = {}
    for shard in shards:
        stored |= load_file(shard)
    assert set(index["weight_map"]) == set(stored)
    assert index["metadata"]["total_size"] == sum(t.numel() * t.element_size() for t in stored.values())
    original: dict[str, torch.Tensor] = {}
    for shard in sorted(src.glob("*.safetensors")):
        original |= load_file(shard)
    for name, value in original.items():
        expected = value.to(torch.bfloat16) if value.is_floating_point() else value
        assert torch.equal(stored[name], expected), name
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left


def test_pickled_shards_folder(tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    src = tmp_path / "repo"
    src.mkdir()
    torch.manual_seed(0)
    parts = [{"a.weight": torch.randn(4, 4)}, {"b.weight": torch.randn(3), "b.bias": torch.arange(3)}]
    names = ["pytorch_model-00001-of-00002.bin", "pytorch_model-00002-of-00002.bin"]
    weight_map = {}
    for name, part in zip(names, parts, strict=True):
        torch.save(part, src / name)
        weight_map |= dict.fromkeys(part, name)
    (src / "pytorch_model.bin.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    (src / "config.json").write_text("{}")
    (src / "tokenizer.json").write_text("{}")
    out = tmp_path / "out"
    result = convert(src, out)
    assert sorted(p.name for p in out.iterdir()) == ["config.json", "model.safetensors", "tokenizer.json"]
    back = load_file(out / "model.safetensors")
    for part in parts:
        for name, value in part.items():
            assert torch.equal(back[name], value)
    assert result.source_format == "pytorch-zip"


def test_cli_json_and_exit_codes(tmp_path: Path) -> None:
    src = HF / "llama_safetensors" / "model.safetensors"
    out = tmp_path / "x.npz"
    run = [sys.executable, "-m", "tensorfile"]
    done = subprocess.run(
        [*run, "convert", str(src), str(tmp_path / "y.safetensors"), "--json"], capture_output=True
    )
    assert done.returncode == 0, done.stderr
    summary = json.loads(done.stdout)
    assert summary["target"] == "safetensors" and summary["tensor_count"] > 0
    again = subprocess.run([*run, "convert", str(src), str(tmp_path / "y.safetensors")], capture_output=True)
    assert again.returncode == 2 and b"--force" in again.stderr and b"Traceback" not in again.stderr
    bad = subprocess.run([*run, "convert", str(src), str(out), "--dtype", "int3"], capture_output=True)
    assert bad.returncode == 2 and bad.stderr.count(b"\n") == 1
    assert not out.exists()


def test_flax_chunked_array(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    serialization = pytest.importorskip("flax.serialization")
    monkeypatch.setattr(serialization, "MAX_CHUNK_SIZE", 64)  # flax splits arrays over this many bytes
    tree = {
        "dense": {"kernel": np.arange(60, dtype=np.float32).reshape(6, 10), "bias": np.ones(3, np.float32)}
    }
    src = tmp_path / "chunked.msgpack"
    src.write_bytes(serialization.to_bytes(tree))
    out = tmp_path / "c.safetensors"
    convert(src, out)
    back = _read_safetensors(out)
    assert np.array_equal(back["dense/kernel"], tree["dense"]["kernel"])
    assert np.array_equal(back["dense/bias"], tree["dense"]["bias"])


def test_progress_bar_appears_only_after_a_while(monkeypatch: pytest.MonkeyPatch) -> None:
    from tensorfile.convert import report

    monkeypatch.setattr(report, "_SHOW_AFTER", 3600.0)
    with report.ConvertProgress(enabled=True) as progress:
        progress.start(1000)(100)
        assert progress._bar is None  # a short run never shows a bar
    monkeypatch.setattr(report, "_SHOW_AFTER", 0.0)
    with report.ConvertProgress(enabled=True) as progress:
        advance = progress.start(1000)
        advance(100)
        advance(400)
        assert progress._bar is not None
        assert progress._bar.tasks[0].completed == 500 and progress._bar.tasks[0].total == 1000
    quiet = report.ConvertProgress(enabled=False)
    quiet.start(10)(10)
    assert quiet._bar is None


def test_destination_with_a_weight_extension_we_cannot_write(tmp_path: Path) -> None:
    from tensorfile.errors import UsageError

    with pytest.raises(UsageError, match=r"cannot write \.pt files"):
        convert(HF / "llama_safetensors" / "model.safetensors", tmp_path / "model.pt")
    assert not (tmp_path / "model.pt").exists()
