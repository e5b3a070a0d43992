"""GGUF → safetensors/npz for every ggml type a GGUF file can hold, dequantized while streaming.

The values must be ggml's own: gguf-py's dequantizers (which convert uses) are checked against
ggml's `to_float` through ctypes in the llamacpp-marked test, on random blocks of every type.
"""

from __future__ import annotations

import sys
from pathlib import Path

import gguf
import numpy as np
import pytest
from gguf.quants import dequantize
from safetensors.numpy import load_file

from tensorfile.convert import convert
from tensorfile.convert.quants import QUANT_TYPES, quantize

ROOT = Path(__file__).resolve().parents[1]
# Types a GGUF file can hold that gguf-py dequantizes (Q8_1/Q8_K are ggml's intermediate types).
_NOT_STORED = {"F32", "F16", "BF16", "F64", "I8", "I16", "I32", "I64", "Q8_1", "Q8_K", "Q1_0"}
FILE_TYPES = [t.name for t in gguf.GGML_QUANT_SIZES if t.name not in _NOT_STORED]


def _blocks(type_name: str, rows: int, rng: np.random.Generator) -> np.ndarray:
    """Real quantized rows for the types we quantize; random bytes (valid for any type) for others."""
    block, size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[type_name]]
    n_per_row = max(block, 512 // block * block)
    if type_name in QUANT_TYPES:
        return quantize(rng.standard_normal((rows, n_per_row)).astype(np.float32), type_name)
    raw = rng.integers(0, 256, (rows, n_per_row // block * size), dtype=np.uint8)
    return raw


@pytest.fixture(scope="module")
def every_type(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, np.ndarray]]:
    path = tmp_path_factory.mktemp("gguf") / "every-type.gguf"
    rng = np.random.default_rng(7)
    writer = gguf.GGUFWriter(str(path), "llama")
    expected: dict[str, np.ndarray] = {}
    for i, name in enumerate(FILE_TYPES):
        qtype = gguf.GGMLQuantizationType[name]
        blocks = _blocks(name, 3 + i % 4, rng)
        writer.add_tensor(f"t.{name.lower()}", blocks, raw_dtype=qtype)
        with np.errstate(all="ignore"):
            expected[f"t.{name.lower()}"] = dequantize(blocks, qtype)
    writer.add_tensor("plain.f32", rng.standard_normal((2, 8)).astype(np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path, expected


@pytest.mark.parametrize("dtype", [None, "f16", "bf16"])
def test_every_ggml_type_dequantizes(
    every_type: tuple[Path, dict[str, np.ndarray]], tmp_path: Path, dtype: str | None
) -> None:
    src, expected = every_type
    out = tmp_path / "out.safetensors"
    result = convert(src, out, dtype=dtype)
    assert result.tensor_count == len(expected) + 1
    got = load_file(str(out))
    for name, want in expected.items():
        if dtype == "f16":
            with np.errstate(all="ignore"):
                want = want.astype(np.float16)
        elif dtype == "bf16":
            import ml_dtypes

            want = want.astype(ml_dtypes.bfloat16)
        np.testing.assert_array_equal(
            got[name].view(np.uint8), np.ascontiguousarray(want).view(np.uint8), name
        )


def test_dequantizing_streams_in_row_chunks(every_type: tuple[Path, dict[str, np.ndarray]]) -> None:
    from tensorfile.convert.sources import open_tensors
    from tensorfile.convert.stream import dequantized_rows
    from tensorfile.convert.tensors import FileMaps

    src, expected = every_type
    tensors = {t.name: t for t in open_tensors(src).tensors}
    with FileMaps() as maps:
        source = tensors["t.q4_k"]
        chunks = list(dequantized_rows(source, maps, max_bytes=512 * 4))  # one row at a time
    assert len(chunks) == source.shape[0]
    np.testing.assert_array_equal(np.concatenate(chunks), expected["t.q4_k"])


@pytest.mark.llamacpp
@pytest.mark.parametrize("type_name", FILE_TYPES)
def test_gguf_py_dequantizers_are_ggml(type_name: str) -> None:
    sys.path.insert(0, str(ROOT))
    from bench import ggml_ref

    if not ggml_ref.available():
        pytest.skip("llama.cpp not built (bench/llamacpp.py)")
    rng = np.random.default_rng(11)
    for _ in range(8):
        blocks = _blocks(type_name, 64, rng)
        if rng.random() < 0.5:  # random bytes for every type too, scales included
            blocks = rng.integers(0, 256, blocks.shape, dtype=np.uint8)
        with np.errstate(all="ignore"):
            ours = dequantize(blocks, gguf.GGMLQuantizationType[type_name])
        ggml = ggml_ref.dequantize(blocks, type_name)
        np.testing.assert_array_equal(ours.reshape(ggml.shape), ggml)
