"""inspect for safetensors and GGUF, checked against the formats' own readers."""

from __future__ import annotations

import json
import struct
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tensorfile.errors import FormatError, UnsupportedError
from tensorfile.inspection import group_layers, inspect, select_tensors


def test_safetensors_matches_safe_open(made: Callable[[str], Path]) -> None:
    from safetensors import safe_open

    path = made("safetensors")
    info = inspect(path)
    with safe_open(path, "pt") as f:
        keys = list(f.keys())
        shapes = {k: tuple(f.get_slice(k).get_shape()) for k in keys}
        dtypes = {k: f.get_slice(k).get_dtype() for k in keys}
        meta = f.metadata()
    assert info.tensor_count == len(keys)
    assert {t.name: t.shape for t in info.tensors} == shapes
    assert {t.name: t.dtype for t in info.tensors} == dtypes
    assert info.metadata == meta
    assert info.parameter_count == sum(int(np.prod(s)) for s in shapes.values())
    assert info.tensor_types == "F32·I64·BF16"
    # Offsets point at the real bytes: read one tensor back by offset.
    emb = next(t for t in info.tensors if t.name == "embed.weight")
    with path.open("rb") as fh:
        fh.seek(emb.offset)
        raw = np.frombuffer(fh.read(emb.nbytes), np.float32).reshape(emb.shape)
    with safe_open(path, "np") as f:
        np.testing.assert_array_equal(raw, f.get_tensor("embed.weight"))


def test_sharded_folder_and_index(made: Callable[[str], Path]) -> None:
    folder = made("safetensors_sharded_dir")
    info = inspect(folder)
    assert info.format == "safetensors-sharded"
    assert info.tensor_count == 5
    assert len(info.files) > 1
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    assert {t.name: t.file for t in info.tensors} == index["weight_map"]
    assert info.total_bytes == index["metadata"]["total_size"]
    assert not info.warnings
    assert inspect(folder / "model.safetensors.index.json").tensor_count == 5


def test_safetensors_lies_are_reported(tmp_path: Path) -> None:
    header = {
        "a": {"dtype": "F32", "shape": [4], "data_offsets": [0, 16]},
        "b": {"dtype": "F32", "shape": [4], "data_offsets": [8, 24]},  # overlaps a
        "c": {"dtype": "F16", "shape": [2], "data_offsets": [24, 30]},  # wrong size
        "d": {"dtype": "F32", "shape": [1000], "data_offsets": [30, 4030]},  # past EOF
    }
    raw = json.dumps(header).encode()
    path = tmp_path / "lies.safetensors"
    path.write_bytes(struct.pack("<Q", len(raw)) + raw + bytes(30))
    info = inspect(path)
    text = " ".join(info.warnings)
    assert "overlap" in text and "needs 4" in text and "outside the file" in text


def test_safetensors_header_larger_than_file(tmp_path: Path) -> None:
    path = tmp_path / "short.safetensors"
    path.write_bytes(
        struct.pack("<Q", 5000) + b'{"a": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]}}'
    )
    with pytest.raises((FormatError, UnsupportedError)):
        inspect(path)


@pytest.fixture(scope="module")
def gguf_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import gguf

    path = tmp_path_factory.mktemp("gguf") / "model.gguf"
    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(2)
    w.add_context_length(4096)
    w.add_embedding_length(64)
    w.add_head_count(8)
    w.add_head_count_kv(2)
    w.add_file_type(gguf.LlamaFileType.MOSTLY_Q4_K_M)
    w.add_tokenizer_model("llama")
    w.add_token_list([f"tok{i}" for i in range(1000)])
    w.add_token_scores([0.0] * 1000)
    rng = np.random.default_rng(0)
    w.add_tensor("token_embd.weight", rng.random((100, 64), dtype=np.float32).astype(np.float16))
    for qtype, shape in (
        (gguf.GGMLQuantizationType.Q8_0, (64, 64)),
        (gguf.GGMLQuantizationType.Q4_0, (32, 64)),
    ):
        q = gguf.quants.quantize(rng.random(shape, dtype=np.float32), qtype)
        w.add_tensor(f"blk.0.{qtype.name.lower()}.weight", q, raw_dtype=qtype)
    w.add_tensor("output_norm.weight", np.ones(64, np.float32))
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_tensors_to_file()
    w.close()
    return path


def test_gguf_matches_gguf_reader(gguf_file: Path) -> None:
    import gguf

    info = inspect(gguf_file)
    reader = gguf.GGUFReader(gguf_file)
    assert info.tensor_count == len(reader.tensors)
    for ours, theirs in zip(info.tensors, reader.tensors, strict=True):
        assert ours.name == theirs.name
        assert ours.dtype == theirs.tensor_type.name
        assert ours.shape == tuple(int(d) for d in reversed(theirs.shape))
        assert ours.numel == theirs.n_elements
        assert ours.nbytes == theirs.n_bytes
        assert ours.offset == theirs.data_offset
    assert info.metadata["tokenizer.ggml.tokens"] == {
        "type": "array[string]",
        "length": 1000,
        "head": [f"tok{i}" for i in range(8)],
    }
    assert info.architecture == {
        "model_type": "llama",
        "source": "gguf",
        "layers": 2,
        "hidden_size": 64,
        "heads": 8,
        "kv_heads": 2,
        "context_length": 4096,
        "vocab_size": 1000,
    }
    q = info.quantization
    assert q is not None and q["file_type"] == "MOSTLY_Q4_K_M" and q["method"] == "gguf"
    assert q["types"] == {"F16": 6400, "Q8_0": 4096, "Q4_0": 2048, "F32": 64}
    assert info.tensor_types == "F16·Q8_0·Q4_0·F32"


def test_gguf_truncated_is_a_clean_error(gguf_file: Path, tmp_path: Path) -> None:
    data = gguf_file.read_bytes()
    for cut in (30, 200, 2000, 9000):
        path = tmp_path / f"cut{cut}.gguf"
        path.write_bytes(data[:cut])
        with pytest.raises(FormatError):
            inspect(path)


def test_gguf_truncated_data_is_a_warning(gguf_file: Path, tmp_path: Path) -> None:
    data = gguf_file.read_bytes()
    path = tmp_path / "partial.gguf"
    path.write_bytes(data[: len(data) - 100])
    info = inspect(path)
    assert any("past the end" in w for w in info.warnings)


def test_gguf_lying_counts(tmp_path: Path) -> None:
    path = tmp_path / "lie.gguf"
    path.write_bytes(b"GGUF" + struct.pack("<IQQ", 3, 2**40, 1) + bytes(64))
    with pytest.raises(FormatError, match="more than the file holds"):
        inspect(path)


def test_select_and_group() -> None:
    from tensorfile.model import TensorInfo

    tensors = [TensorInfo(f"model.layers.{i}.mlp.weight", "F32", (4, 4), 64) for i in range(32)]
    tensors.append(TensorInfo("lm_head.weight", "F32", (10, 4), 160))
    assert group_layers([t.name for t in tensors]) == [("model.layers.{0..31}", 32)]
    gaps = ["m.blocks.0.w", "m.blocks.1.w", "m.blocks.3.w", "m.head.5.w"]
    assert group_layers(gaps) == [("m.blocks.{0,1,3}", 3), ("m.head.{5}", 1)]  # a missing block shows
    assert [t.name for t in select_tensors(tensors, "lm_*")] == ["lm_head.weight"]
    assert select_tensors(tensors, sort="size", limit=1)[0].name == "lm_head.weight"
    by_name = [t.name for t in select_tensors(tensors, sort="name")]
    assert by_name[:3] == ["lm_head.weight", "model.layers.0.mlp.weight", "model.layers.1.mlp.weight"]
    assert by_name.index("model.layers.2.mlp.weight") < by_name.index("model.layers.10.mlp.weight")
    with pytest.raises(UnsupportedError):
        select_tensors(tensors, sort="bogus")


def test_npy_and_npz_match_numpy(tmp_path: Path) -> None:
    arrays = {
        "w": np.arange(12, dtype=np.float32).reshape(3, 4),
        "ids": np.arange(5, dtype=np.int64),
        "mask": np.ones((2, 2), bool),
        "h": np.zeros(7, np.float16),
    }
    npz = tmp_path / "weights.npz"
    np.savez(npz, **arrays)
    info = inspect(npz)
    assert info.tensor_count == 4
    assert {t.name: (t.dtype, t.shape) for t in info.tensors} == {
        "w": ("F32", (3, 4)),
        "ids": ("I64", (5,)),
        "mask": ("BOOL", (2, 2)),
        "h": ("F16", (7,)),
    }
    w = next(t for t in info.tensors if t.name == "w")
    with npz.open("rb") as fh:
        fh.seek(w.offset)
        np.testing.assert_array_equal(np.frombuffer(fh.read(w.nbytes), np.float32).reshape(3, 4), arrays["w"])
    compressed = tmp_path / "small.npz"
    np.savez_compressed(compressed, **arrays)
    cinfo = inspect(compressed)
    assert cinfo.parameter_count == info.parameter_count == 12 + 5 + 4 + 7
    assert cinfo.metadata["compressed"] is True and all(t.offset is None for t in cinfo.tensors)
    npy = tmp_path / "one.npy"
    np.save(npy, arrays["w"].T)  # fortran order: no contiguous C layout to point at
    single = inspect(npy)
    assert single.tensors[0].shape == (4, 3) and single.tensors[0].offset is None


def test_npy_object_array_is_reported_not_counted(made: Callable[[str], Path]) -> None:
    info = inspect(made("npy_object"))
    assert info.tensor_count == 0
    assert any("Python objects" in w for w in info.warnings)


def test_model_folder_with_two_safetensors_variants(tmp_path: Path) -> None:
    """A folder found by its config.json that holds model.safetensors and model.fp16.safetensors:
    the default variant is counted once, the other named in a warning (it used to raise KeyError)."""
    from safetensors.numpy import save_file

    from tensorfile.inspection import inspect as inspect_path

    save_file({"w": np.zeros(4, np.float32)}, str(tmp_path / "model.safetensors"))
    save_file({"w": np.zeros(4, np.float16)}, str(tmp_path / "model.fp16.safetensors"))
    (tmp_path / "config.json").write_text('{"model_type": "clip_text_model"}')
    info = inspect_path(tmp_path)
    assert info.parameter_count == 4 and info.parameters_by_dtype == {"F32": 4}
    assert any("fp16" in w for w in info.warnings)
