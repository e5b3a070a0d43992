"""The dtype table's sub-byte, logical (NF4/FP4) and variable-size rows; every dtype string a reader emits
resolves in it; packed sizes agree with the onnx library's own packing."""

from __future__ import annotations

import ast
import json
import math
from pathlib import Path

import numpy as np
import pytest

from tensorfile import dtypes, torchpickle
from tensorfile.dtypes import DTYPES, explain_composite, lookup, nbytes, padded_nbytes, tensor_types_line
from tensorfile.errors import UnsupportedError
from tensorfile.formats import coreml, onnx, openvino, savedmodel, tflite

from .conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]
FORMATS = ROOT / "src" / "tensorfile" / "formats"

# Rows with no numpy/ml_dtypes equivalent, and rows with no fixed element size.
# torch's quantized integers have numpy's layout but not its meaning (scale and zero point are apart)
NO_NUMPY = {"U3", "U5", "U6", "U7", "NF4", "FP4", "RESOURCE", "VARIANT", "QINT8", "QUINT8", "QINT32"}
VARIABLE = {"STRING", "RESOURCE", "VARIANT"}


def test_table_invariants_cover_sub_byte_and_variable_rows() -> None:
    names = [d.name for d in DTYPES]
    assert len(names) == len(set(names))
    for d in DTYPES:
        assert d.kind in dtypes.KINDS and d.description.strip(), d.name
        assert d.block_size >= 1
        if not d.fixed_size:
            assert d.name in VARIABLE and d.kind in ("string", "handle"), d.name
            assert (d.bits, d.bits_per_weight, d.block_size, d.type_size) == (0, 0.0, 1, 0)
            continue
        assert d.type_size >= 1 and d.bits_per_weight == d.type_size * 8 / d.block_size, d.name
        if d.kind == "quant":
            assert d.numpy_name is None and d.ggml_type is not None
            continue
        assert d.bits == d.bits_per_weight, d.name
        assert (d.numpy_name is None) == (d.name in NO_NUMPY), d.name
        # Sub-byte rows pack the fewest elements that fill whole bytes: U3 is 8 values in 3 bytes.
        assert d.block_size == 8 // math.gcd(d.bits, 8), d.name
    assert {d.name for d in DTYPES if not d.fixed_size} == VARIABLE


@pytest.mark.parametrize(
    ("spelling", "name"),
    [
        ("u1", "U1"), ("UINT1", "U1"), ("uint2", "U2"), ("UINT2", "U2"), ("tensor(uint2)", "U2"),
        ("u3", "U3"), ("UINT3", "U3"), ("u6", "U6"), ("UINT6", "U6"), ("torch.uint7", "U7"), ("U5", "U5"),
        ("INT2", "I2"), ("tensor(int2)", "I2"), ("DT_INT2", "I2"), ("DT_UINT2", "U2"), ("torch.int4", "I4"),
        ("nf4", "NF4"), ("bnb_nf4", "NF4"), ("fp4", "FP4"), ("bnb_fp4", "FP4"),
        ("STRING", "STRING"), ("DT_STRING", "STRING"), ("tensor(string)", "STRING"), ("object", "STRING"),
        ("DT_RESOURCE", "RESOURCE"), ("DT_VARIANT", "VARIANT"), ("resource", "RESOURCE"),
        ("FLOAT32", "F32"), ("FLOAT64", "F64"), ("FLOAT8_E4M3FN", "F8_E4M3"), ("FLOAT8_E5M2", "F8_E5M2"),
        ("FLOAT8E8M0", "F8_E8M0"), ("FLOAT6E2M3", "F6_E2M3"), ("FLOAT6E3M2", "F6_E3M2"),
        ("FLOAT4E2M1", "F4"), ("f4e2m1", "F4"), ("DT_FLOAT8_E4M3B11FNUZ", "F8_E4M3B11FNUZ"),
        ("float8_e4m3b11fnuz", "F8_E4M3B11FNUZ"),
    ],
)  # fmt: skip
def test_new_spellings(spelling: str, name: str) -> None:
    assert lookup(spelling).name == name


# --- every dtype string a reader can emit resolves ---------------------------------------------------

# OpenVINO's element type names (ov::element::Type::get_type_name) and the rows they mean.
OPENVINO_ELEMENT_TYPES = {
    "boolean": "BOOL", "bf16": "BF16", "f16": "F16", "f32": "F32", "f64": "F64", "i4": "I4", "i8": "I8",
    "i16": "I16", "i32": "I32", "i64": "I64", "u1": "U1", "u2": "U2", "u3": "U3", "u4": "U4", "u6": "U6",
    "u8": "U8", "u16": "U16", "u32": "U32", "u64": "U64", "nf4": "NF4", "f8e4m3": "F8_E4M3",
    "f8e5m2": "F8_E5M2", "string": "STRING", "f4e2m1": "F4", "f8e8m0": "F8_E8M0",
}  # fmt: skip


def _literal_tensorinfo_dtypes() -> dict[str, set[str]]:
    """String literals passed as the dtype of TensorInfo(...) anywhere in the format readers."""
    found: dict[str, set[str]] = {}
    for path in [*sorted(FORMATS.rglob("*.py")), ROOT / "src" / "tensorfile" / "torchpickle.py"]:
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and getattr(node.func, "id", None) == "TensorInfo"):
                continue
            args = [*node.args[1:2], *(k.value for k in node.keywords if k.arg == "dtype")]
            for arg in args:
                if isinstance(arg, ast.Constant) and isinstance(arg.value, str):
                    found.setdefault(arg.value, set()).add(path.relative_to(ROOT).as_posix())
    return found


def test_every_reader_table_spelling_resolves() -> None:
    emitted = {
        "onnx": set(onnx.ONNX_DTYPES.values()),
        "tflite": set(tflite.TFLITE_DTYPES.values()),
        "tensorflow": set(savedmodel.TF_DTYPES.values()),
        "coreml mil": {name for name, _ in coreml.MIL_DTYPES.values()},
        "coreml blob": set(coreml.BLOB_DTYPES.values()),
        "coreml raw": {f"U{bits}" for bits in range(1, 9)},  # NeuralNetwork quantization: 1-8 bits
        "torch": set(torchpickle.STORAGE_DTYPES.values()) | set(torchpickle.TORCH_DTYPES.values()),
    }
    for reader, names in emitted.items():
        for name in names:
            assert lookup(name).name == name, (reader, name)  # canonical, not merely resolvable
    for name, bits in coreml.MIL_DTYPES.values():
        assert lookup(name).bits == bits, name
    for spelling in coreml.ARRAY_DTYPES.values():  # metadata spells Core ML's own enum names
        lookup(spelling)


def test_every_literal_dtype_in_the_readers_resolves() -> None:
    literals = _literal_tensorinfo_dtypes()
    assert {"F32", "I64", "STRING", "F64"} <= set(literals)  # the scan does find the readers' literals
    for literal, files in literals.items():
        assert lookup(literal).name == literal, (literal, files)


def test_openvino_element_types_resolve() -> None:
    for element_type, name in OPENVINO_ELEMENT_TYPES.items():
        row = openvino.element_type_dtype(element_type)
        assert row is not None and row.name == name, element_type
    assert openvino.element_type_dtype("dynamic") is None
    assert openvino.element_type_dtype("q4_0") is None  # a ggml name is not an OpenVINO element type


# types_pb2.DataType of tensorflow 2.21 (printed from its descriptor), below the *_REF range.
TF_221_DATATYPES = {
    1: "DT_FLOAT", 2: "DT_DOUBLE", 3: "DT_INT32", 4: "DT_UINT8", 5: "DT_INT16", 6: "DT_INT8", 7: "DT_STRING",
    8: "DT_COMPLEX64", 9: "DT_INT64", 10: "DT_BOOL", 11: "DT_QINT8", 12: "DT_QUINT8", 13: "DT_QINT32",
    14: "DT_BFLOAT16", 15: "DT_QINT16", 16: "DT_QUINT16", 17: "DT_UINT16", 18: "DT_COMPLEX128",
    19: "DT_HALF", 20: "DT_RESOURCE", 21: "DT_VARIANT", 22: "DT_UINT32", 23: "DT_UINT64",
    24: "DT_FLOAT8_E5M2", 25: "DT_FLOAT8_E4M3FN", 26: "DT_FLOAT8_E4M3FNUZ", 27: "DT_FLOAT8_E4M3B11FNUZ",
    28: "DT_FLOAT8_E5M2FNUZ", 29: "DT_INT4", 30: "DT_UINT4", 31: "DT_INT2", 32: "DT_UINT2",
    33: "DT_FLOAT4_E2M1FN",
}  # fmt: skip


def test_tensorflow_enum_is_complete() -> None:
    assert sorted(savedmodel.TF_DTYPES) == sorted(TF_221_DATATYPES)
    quantized = {
        "DT_QINT8": "I8",
        "DT_QUINT8": "U8",
        "DT_QINT16": "I16",
        "DT_QUINT16": "U16",
        "DT_QINT32": "I32",
    }
    for number, name in TF_221_DATATYPES.items():
        expected = quantized[name] if name in quantized else lookup(name).name
        assert savedmodel.tf_dtype_name(number) == expected, name


def test_tensorflow_enum_covers_ref_types_and_storage() -> None:
    assert savedmodel.tf_dtype_name(1) == savedmodel.tf_dtype_name(101) == "F32"
    assert savedmodel.tf_dtype_name(11) == "I8"  # DT_QINT8: quantized values stored as int8
    assert savedmodel.tf_dtype_name(7) == "STRING" and savedmodel.tf_dtype_name(20) == "RESOURCE"
    assert savedmodel.tf_dtype_name(31) == "I2" and savedmodel.tf_dtype_name(29) == "I4"
    assert savedmodel.tf_dtype_name(99) == "DT_99" and savedmodel.tf_dtype_name(250) == "DT_250"


def test_onnx_enum_matches_the_onnx_library() -> None:
    """Every TensorProto.DataType: our name is the table row of onnx's enum name and of the numpy dtype
    onnx maps it to (object for STRING)."""
    onnx_lib = pytest.importorskip("onnx")
    for name, number in onnx_lib.TensorProto.DataType.items():
        if number == onnx_lib.TensorProto.UNDEFINED:
            assert number not in onnx.ONNX_DTYPES
            continue
        ours = onnx.ONNX_DTYPES[number]
        assert lookup(name).name == ours, name
        np_dtype = onnx_lib.helper.tensor_dtype_to_np_dtype(number)
        assert lookup(np_dtype.name).name == ours, (name, np_dtype)


# --- sizes ----------------------------------------------------------------------------------------


def test_padded_sizes_match_onnx_numpy_helper() -> None:
    """What onnx.numpy_helper.from_array stores for n elements, for every fixed-size ONNX type."""
    onnx_lib = pytest.importorskip("onnx")
    from onnx import numpy_helper

    for number, ours in onnx.ONNX_DTYPES.items():
        if not lookup(ours).fixed_size:
            continue
        np_dtype = onnx_lib.helper.tensor_dtype_to_np_dtype(number)
        for n in range(0, 19):
            raw = numpy_helper.from_array(np.zeros(n, np_dtype)).raw_data
            assert padded_nbytes(ours, n) == len(raw), (ours, n)
            assert onnx.stored_bytes(ours, n) == len(raw)
    assert onnx.stored_bytes("STRING", 3) is None


def test_nbytes_exact_and_padded() -> None:
    assert nbytes("U3", 8) == 3 and nbytes("U6", 4) == 3 and nbytes("U5", 16) == 10 and nbytes("U1", 16) == 2
    assert nbytes("I2", 4) == 1 and nbytes("NF4", 128) == 64 and nbytes("FP4", 2) == 1
    with pytest.raises(ValueError, match="whole number"):
        nbytes("U3", 10)
    # Byte padding (ONNX, TFLite, Core ML) and group padding (OpenVINO) differ for 3/5/6/7-bit types.
    assert padded_nbytes("U3", 10) == 4 and padded_nbytes("U3", 10, "block") == 6
    assert padded_nbytes("U6", 6) == 5 and padded_nbytes("U6", 6, "block") == 6
    assert padded_nbytes("I4", 3) == padded_nbytes("I4", 3, "block") == 2
    assert padded_nbytes("F32", 3) == 12 and padded_nbytes("Q4_0", 64) == 36
    with pytest.raises(ValueError):
        padded_nbytes("Q4_0", 33)  # a ggml block is never partial
    with pytest.raises(ValueError, match="pad must be"):
        padded_nbytes("U3", 3, "word")
    for name in VARIABLE:
        with pytest.raises(ValueError, match="no fixed size"):
            nbytes(name, 2)
        with pytest.raises(ValueError, match="no fixed size"):
            padded_nbytes(name, 2)


def test_tensorflow_keeps_sub_byte_types_unpacked() -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    assert np.dtype(ml_dtypes.int4).itemsize == 1  # the layout TF's tensor_content and bundles copy
    assert savedmodel.tf_nbytes("I4", 5) == 5 and savedmodel.tf_nbytes("U2", 3) == 3
    assert savedmodel.tf_nbytes("F32", 5) == 20 and savedmodel.tf_nbytes("STRING", 5) is None


def test_to_numpy_for_the_new_rows() -> None:
    ml_dtypes = pytest.importorskip("ml_dtypes")
    assert dtypes.to_numpy("U1") == np.dtype(ml_dtypes.uint1)
    assert dtypes.to_numpy("I2") == np.dtype(ml_dtypes.int2)
    assert dtypes.to_numpy("STRING") == np.dtype(object)
    assert dtypes.to_numpy("F8_E4M3B11FNUZ") == np.dtype(ml_dtypes.float8_e4m3b11fnuz)
    for name in NO_NUMPY:
        with pytest.raises(UnsupportedError, match="no numpy or ml_dtypes equivalent"):
            dtypes.to_numpy(name)
    with pytest.raises(UnsupportedError, match="block-quantized"):
        dtypes.to_numpy("Q4_K")


def test_torch_spellings_name_real_torch_dtypes() -> None:
    torch = pytest.importorskip("torch")
    for d in DTYPES:
        for alias in d.aliases:
            if alias.startswith("torch."):
                assert isinstance(getattr(torch, alias[6:], None), torch.dtype), alias


# --- the tensor-type line and the CLI ----------------------------------------------------------------


def test_tensor_types_line_and_roles_of_the_new_kinds() -> None:
    assert tensor_types_line({"nf4": 100, "string": 3, "bf16": 10}) == "NF4·BF16·STRING"
    parts = explain_composite("NF4·BF16·STRING·RESOURCE")
    assert "bulk" in parts[0]["role"]
    assert "quantization scales" in parts[1]["role"]  # a 4-bit bulk makes the wider floats its scales
    assert "byte strings" in parts[2]["role"] and "handles" in parts[3]["role"]
    assert "U8" in parts[0]["description"]  # NF4 says what bitsandbytes actually stores


def test_cli_dtypes_lists_the_new_rows() -> None:
    env = {"COLUMNS": "200", "PATH": "/usr/bin:/bin"}
    proc = run_cli("dtypes", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    rows = {r["name"]: r for r in json.loads(proc.stdout)["dtypes"]}
    for name in ("U1", "U2", "U3", "U5", "U6", "U7", "I2", "NF4", "FP4", "F8_E4M3B11FNUZ", *VARIABLE):
        assert name in rows, name
    assert rows["STRING"]["kind"] == "string" and rows["STRING"]["type_size"] == 0
    assert (rows["U3"]["block_size"], rows["U3"]["type_size"], rows["U3"]["bits_per_weight"]) == (8, 3, 3.0)
    table = run_cli("dtypes", env=env)
    assert table.returncode == 0 and "NF4" in table.stdout and "RESOURCE" in table.stdout
