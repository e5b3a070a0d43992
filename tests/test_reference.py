"""The reference tables as data: the format catalogue, the selection guide and the dtype table."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from tensorfile import catalog, dtypes
from tensorfile.dtypes import DTYPES, UnknownDType, explain_composite, lookup, nbytes, tensor_types_line
from tensorfile.errors import TensorfileError

SRC = Path(__file__).resolve().parents[1] / "src" / "tensorfile"

# (ggml type number, name, elements per block, bytes per block), copied from gguf-py 0.19.0's
# GGMLQuantizationType and GGML_QUANT_SIZES, except Q8_1: 36 as in ggml's block_q8_1 (gguf-py says 40,
# the size from before d and s became F16). 31-33 are the removed Q4_0 ARM layouts from ggml.h.
GGML_EXPECTED = [
    (0, "F32", 1, 4), (1, "F16", 1, 2), (2, "Q4_0", 32, 18), (3, "Q4_1", 32, 20), (6, "Q5_0", 32, 22),
    (7, "Q5_1", 32, 24), (8, "Q8_0", 32, 34), (9, "Q8_1", 32, 36), (10, "Q2_K", 256, 84),
    (11, "Q3_K", 256, 110), (12, "Q4_K", 256, 144), (13, "Q5_K", 256, 176), (14, "Q6_K", 256, 210),
    (15, "Q8_K", 256, 292), (16, "IQ2_XXS", 256, 66), (17, "IQ2_XS", 256, 74), (18, "IQ3_XXS", 256, 98),
    (19, "IQ1_S", 256, 50), (20, "IQ4_NL", 32, 18), (21, "IQ3_S", 256, 110), (22, "IQ2_S", 256, 82),
    (23, "IQ4_XS", 256, 136), (24, "I8", 1, 1), (25, "I16", 1, 2), (26, "I32", 1, 4), (27, "I64", 1, 8),
    (28, "F64", 1, 8), (29, "IQ1_M", 256, 56), (30, "BF16", 1, 2), (31, "Q4_0_4_4", 32, 18),
    (32, "Q4_0_4_8", 32, 18), (33, "Q4_0_8_8", 32, 18), (34, "TQ1_0", 256, 54), (35, "TQ2_0", 256, 66),
    (39, "MXFP4", 32, 17), (40, "NVFP4", 64, 36), (41, "Q1_0", 128, 18),
]  # fmt: skip


# ---- catalogue ---------------------------------------------------------------------------------------


def test_catalog_ids_unique_and_families_known() -> None:
    ids = [f.id for f in catalog.FORMATS]
    assert len(ids) == len(set(ids))
    assert set(catalog.BY_ID) == set(ids)
    for f in catalog.FORMATS:
        assert f.family in catalog.FAMILIES, f.id


@pytest.mark.parametrize("fmt", catalog.FORMATS, ids=lambda f: f.id)
def test_catalog_text_fields_filled(fmt: catalog.FormatInfo) -> None:
    for name in ("name", "execution_risk", "features", "strengths", "weaknesses", "typical_use"):
        value = getattr(fmt, name)
        assert isinstance(value, str) and value.strip(), f"{fmt.id}.{name} is empty"
        assert value == value.strip()
    for name in ("extensions", "frameworks", "produced_by", "consumed_by"):
        values = getattr(fmt, name)
        assert isinstance(values, tuple) and values, f"{fmt.id}.{name} is empty"
        assert all(isinstance(v, str) and v.strip() for v in values)
    assert all(e.startswith(".") and e == e.lower() for e in fmt.extensions)
    assert fmt.safe_to_load is (not fmt.can_execute_code)


def test_catalog_to_dict_is_json_ready() -> None:
    import json

    data = catalog.get("safetensors").to_dict()  # type: ignore[union-attr]
    assert data["safe_to_load"] is True
    assert isinstance(data["produced_by"], list) and "safetensors.torch.save_file" in data["produced_by"]
    json.dumps([f.to_dict() for f in catalog.FORMATS])


def test_catalog_seed_facts() -> None:
    # The seed's safety column: pickle-based formats can run code, safetensors and GGUF cannot.
    assert catalog.BY_ID["pytorch-zip"].can_execute_code
    assert catalog.BY_ID["pickle"].can_execute_code
    assert not catalog.BY_ID["safetensors"].can_execute_code
    assert not catalog.BY_ID["gguf"].can_execute_code
    assert "pickle" in catalog.BY_ID["pytorch-zip"].features.lower()
    assert "json" in catalog.BY_ID["safetensors"].features.lower()
    assert "llama.cpp convert_hf_to_gguf.py" in catalog.BY_ID["gguf"].produced_by
    assert "trtexec --saveEngine" in catalog.BY_ID["tensorrt"].produced_by
    assert "tf.saved_model.save" in catalog.BY_ID["tf-savedmodel"].produced_by
    assert catalog.formats_for_extension(".GGUF") == ["gguf"]


def test_selection_guide() -> None:
    guide = catalog.SELECTION_GUIDE
    assert len({r.id for r in guide}) == len(guide) == len(catalog.SELECTION_BY_ID)
    for rec in guide:
        assert rec.need and rec.choice and rec.reason
        assert rec.format_ids and all(fid in catalog.BY_ID for fid in rec.format_ids), rec.id
    by_id = catalog.SELECTION_BY_ID
    assert by_id["safe-download"].format_ids[0] == "safetensors"
    assert by_id["resume-training"].format_ids == ("pytorch-zip",)
    assert by_id["cross-framework"].format_ids == ("onnx",)
    assert set(by_id["nvidia-deploy"].format_ids) == {"tensorrt", "awq"}
    assert by_id["cpu-llm"].format_ids == ("gguf",) and "Q4_K_M" in by_id["cpu-llm"].choice
    assert set(by_id["quantized-llm-deploy"].format_ids) == {"awq", "gptq"}
    assert {"tflite", "coreml-mlpackage"} <= set(by_id["mobile"].format_ids)
    assert by_id["mobile"].to_dict()["format_ids"][0] == "tflite"


# ---- dtypes: the table -------------------------------------------------------------------------------


def test_dtype_names_unique_and_well_formed() -> None:
    names = [d.name for d in DTYPES]
    assert len(names) == len(set(names))
    for d in DTYPES:
        assert d.kind in dtypes.KINDS, d.name
        assert d.description.strip(), d.name
        assert d.block_size >= 1
        if not d.fixed_size:  # STRING, RESOURCE, VARIANT: the size comes from the stored data
            continue
        assert d.type_size >= 1
        assert d.bits_per_weight == d.type_size * 8 / d.block_size
        if d.kind == "quant":
            assert d.numpy_name is None and d.ggml_type is not None
        else:
            # sub-byte integer widths, bitsandbytes' NF4/FP4 and torch's quantized ints have no numpy dtype
            no_numpy = {"U3", "U5", "U6", "U7", "NF4", "FP4", "QINT8", "QUINT8", "QINT32"}
            assert d.numpy_name is not None or d.name in no_numpy, d.name
            assert d.bits == d.bits_per_weight


def test_every_alias_resolves_to_its_own_type() -> None:
    for d in DTYPES:
        for spelling in (d.name, *d.aliases):
            assert lookup(spelling) is d, spelling


# Every dtype string safetensors 0.8 writes, plus the ggml names the brief lists.
EXPECTED_NAMES = (
    "F64", "F32", "F16", "BF16", "F8_E4M3", "F8_E5M2", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "F8_E8M0", "F6_E2M3",
    "F6_E3M2", "F4", "I64", "I32", "I16", "I8", "U64", "U32", "U16", "U8", "BOOL", "C64", "C128",
    "Q4_0", "Q4_1", "Q5_0", "Q5_1", "Q8_0", "Q8_1", "Q2_K", "Q3_K", "Q4_K", "Q5_K", "Q6_K", "Q8_K",
    "IQ2_XXS", "IQ2_XS", "IQ3_XXS", "IQ1_S", "IQ4_NL", "IQ3_S", "IQ2_S", "IQ4_XS", "IQ1_M", "TQ1_0",
    "TQ2_0", "MXFP4",
)  # fmt: skip


def test_expected_names_present() -> None:
    for name in EXPECTED_NAMES:
        assert lookup(name).name == name


@pytest.mark.parametrize(
    ("spelling", "name"),
    [
        ("float32", "F32"), ("fp32", "F32"), ("torch.float32", "F32"), ("<f4", "F32"), ("FLOAT", "F32"),
        ("DT_FLOAT", "F32"), ("tensor(float)", "F32"), ("torch.float", "F32"), ("GGML_TYPE_F32", "F32"),
        ("float16", "F16"), ("torch.half", "F16"), ("DT_HALF", "F16"), ("<f2", "F16"), ("fp16", "F16"),
        ("bfloat16", "BF16"), ("torch.bfloat16", "BF16"), ("DT_BFLOAT16", "BF16"), ("bf16", "BF16"),
        ("float64", "F64"), ("DOUBLE", "F64"), ("torch.double", "F64"),
        ("float8_e4m3fn", "F8_E4M3"), ("torch.float8_e4m3fn", "F8_E4M3"), ("FLOAT8E4M3FN", "F8_E4M3"),
        ("float8_e5m2", "F8_E5M2"), ("float8_e8m0fnu", "F8_E8M0"), ("float4_e2m1fn", "F4"),
        ("int64", "I64"), ("torch.long", "I64"), ("<i8", "I64"), ("DT_INT64", "I64"),
        ("int32", "I32"), ("torch.int", "I32"), ("int8", "I8"), ("|i1", "I8"),
        ("uint8", "U8"), ("UINT8", "U8"), ("|u1", "U8"), ("torch.uint8", "U8"),
        ("bool", "BOOL"), ("torch.bool", "BOOL"), ("|b1", "BOOL"), ("boolean", "BOOL"),
        ("complex64", "C64"), ("torch.cfloat", "C64"), ("complex128", "C128"),
        ("int4", "I4"), ("INT4", "I4"), ("uint4", "U4"),
        ("q4_k", "Q4_K"), ("GGML_TYPE_Q4_K", "Q4_K"), ("  bf16 ", "BF16"), ("Bf16", "BF16"),
    ],
)  # fmt: skip
def test_lookup_aliases(spelling: str, name: str) -> None:
    assert lookup(spelling).name == name


def test_canonical_names_beat_foreign_codes() -> None:
    # HF/safetensors names win: "I8" is int8 (numpy's bare "i8" would be int64), "F4" is FP4.
    assert lookup("I8").name == lookup("i8").name == "I8"
    assert lookup("U8").bits == 8
    assert lookup("F4").bits == 4
    assert lookup(lookup("F16")) is lookup("F16")


def test_unknown_dtype_error() -> None:
    with pytest.raises(UnknownDType) as info:
        lookup("F12")
    assert isinstance(info.value, KeyError) and isinstance(info.value, TensorfileError)
    assert str(info.value) == "unknown tensor type 'F12'"
    with pytest.raises(KeyError):
        lookup("")
    with pytest.raises(UnknownDType):
        dtypes.from_ggml_type(4)  # Q4_2, removed before GGUF existed


@pytest.mark.parametrize(("type_id", "name", "block", "size"), GGML_EXPECTED)
def test_ggml_numbers_and_blocks(type_id: int, name: str, block: int, size: int) -> None:
    d = dtypes.from_ggml_type(type_id)
    assert (d.name, d.ggml_type, d.block_size, d.type_size) == (name, type_id, block, size)


def test_ggml_table_complete() -> None:
    assert sorted(dtypes.GGML_TYPES) == [row[0] for row in GGML_EXPECTED]


def test_bits_per_weight() -> None:
    expected = {
        "Q4_0": 4.5, "Q4_1": 5.0, "Q5_0": 5.5, "Q8_0": 8.5, "Q2_K": 2.625, "Q3_K": 3.4375, "Q4_K": 4.5,
        "Q5_K": 5.5, "Q6_K": 6.5625, "IQ4_XS": 4.25, "IQ2_XXS": 2.0625, "IQ1_S": 1.5625, "TQ1_0": 1.6875,
        "MXFP4": 4.25, "F32": 32.0, "BF16": 16.0, "F4": 4.0,
    }  # fmt: skip
    for name, bpw in expected.items():
        assert lookup(name).bits_per_weight == bpw, name


# ---- dtypes: sizes -----------------------------------------------------------------------------------


def test_nbytes_plain() -> None:
    assert nbytes("F32", 10) == 40
    assert nbytes("BF16", 7) == 14
    assert nbytes(lookup("I64"), 3) == 24
    assert nbytes("BOOL", 5) == 5
    assert nbytes("C128", 2) == 32
    assert nbytes("F8_E4M3", 9) == 9
    assert nbytes("F32", 0) == 0
    assert nbytes("torch.float16", 4096 * 4096) == 2 * 4096 * 4096


def test_nbytes_sub_byte_packs_like_safetensors() -> None:
    assert nbytes("F4", 2) == 1 and nbytes("F4", 64) == 32
    assert nbytes("F6_E2M3", 4) == 3
    assert nbytes("I4", 10) == 5
    with pytest.raises(ValueError):
        nbytes("F4", 3)  # half a byte cannot be stored
    with pytest.raises(ValueError):
        nbytes("F6_E3M2", 6)


def test_nbytes_blocks() -> None:
    assert nbytes("Q4_0", 64) == 36
    assert nbytes("Q4_K", 256) == 144
    assert nbytes("Q8_0", 32) == 34
    assert nbytes("Q6_K", 4096 * 4096) == 4096 * 4096 // 256 * 210
    assert nbytes("MXFP4", 2880) == 90 * 17
    with pytest.raises(ValueError):
        nbytes("Q4_0", 33)
    with pytest.raises(ValueError):
        nbytes("Q4_K", 128)
    with pytest.raises(ValueError):
        nbytes("F32", -1)
    with pytest.raises(UnknownDType):
        nbytes("Q9_9", 32)


# ---- dtypes: the Hugging Face "Tensor type" line ------------------------------------------------------


def test_tensor_types_line_orders_by_count() -> None:
    assert tensor_types_line({"F32": 10, "BF16": 7_000_000, "I32": 500}) == "BF16·I32·F32"
    assert tensor_types_line({"I64": 1}) == "I64"
    assert tensor_types_line({}) == ""


def test_tensor_types_line_ties_by_name_and_merges_spellings() -> None:
    assert tensor_types_line({"F32": 5, "BF16": 5, "I32": 9}) == "I32·BF16·F32"
    # Spellings of one type merge before ordering: 3 + 3 BF16 beats 5 F32.
    assert tensor_types_line({"torch.bfloat16": 3, "bf16": 3, "float32": 5}) == "BF16·F32"
    assert tensor_types_line({"F16": 0, "F32": 1}) == "F32"  # an unused dtype is not listed
    assert tensor_types_line({"NEWTYPE": 2, "F32": 1}) == "NEWTYPE·F32"  # unknown ones keep their name
    with pytest.raises(ValueError):
        tensor_types_line({"F32": -1})


def test_explain_composite_seed_example() -> None:
    parts = explain_composite("BF16·I32·F32")
    assert [p["name"] for p in parts] == ["BF16", "I32", "F32"]
    assert [p["rank"] for p in parts] == [1, 2, 3]
    assert all(p["description"] and p["role"] for p in parts)
    assert "bulk" in parts[0]["role"]
    assert "indices" in parts[1]["role"]
    assert "norms" in parts[2]["role"] and "higher precision" in parts[2]["role"]
    assert parts[0]["description"] == lookup("BF16").description


def test_explain_composite_quantized_and_spellings() -> None:
    gptq = explain_composite("I32 · F16")
    assert "packed quantized weights" in gptq[0]["role"]
    assert "scales" in gptq[1]["role"]
    mx = explain_composite("bf16, f8_e8m0")
    assert [p["name"] for p in mx] == ["BF16", "F8_E8M0"] and "scales" in mx[1]["role"]
    with pytest.raises(UnknownDType):
        explain_composite("BF16·XYZ")
    with pytest.raises(ValueError):
        explain_composite(" · ")


# ---- import weight and optional cross-checks against the real libraries ------------------------------


@pytest.mark.parametrize("module", ["catalog.py", "dtypes.py"])
def test_modules_import_only_stdlib_at_top_level(module: str) -> None:
    tree = ast.parse((SRC / module).read_text(encoding="utf-8"))
    for node in tree.body:  # function bodies may import numpy lazily; module level may not
        if isinstance(node, ast.Import):
            roots = [alias.name.split(".")[0] for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            roots = [] if node.level else [(node.module or "").split(".")[0]]
        else:
            continue
        for root in roots:
            assert root in sys.stdlib_module_names or root == "__future__", f"{module} imports {root}"


def test_numpy_names_resolve() -> None:
    np = pytest.importorskip("numpy")
    pytest.importorskip("ml_dtypes")
    for d in DTYPES:
        if d.numpy_name is None:
            with pytest.raises(TensorfileError):
                dtypes.to_numpy(d)
            continue
        nd = dtypes.to_numpy(d)
        assert nd.name == d.numpy_name
        assert lookup(nd.name) is d and lookup(str(nd)) is d
        if d.bits >= 8:
            assert nd.itemsize * 8 == d.bits
        for alias in d.aliases:
            if alias[:1] in "<|":  # numpy byte-order codes must name the same numpy dtype
                assert np.dtype(alias) == nd, alias


def test_matches_gguf_py_when_installed() -> None:
    gguf = pytest.importorskip("gguf")
    sizes = gguf.constants.GGML_QUANT_SIZES
    for qtype in gguf.GGMLQuantizationType:
        ours = dtypes.from_ggml_type(int(qtype))
        assert ours.name == qtype.name
        if qtype.name == "Q8_1" and sizes[qtype] == (32, 40):
            continue  # gguf-py's stale size; ggml's block_q8_1 is 36 bytes
        assert (ours.block_size, ours.type_size) == sizes[qtype], qtype.name
