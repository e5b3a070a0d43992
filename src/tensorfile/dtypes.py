"""The one table of tensor types: names, sizes, numpy/ml_dtypes names, ggml block layouts.

Every reader maps its own spelling ("torch.bfloat16", "<f4", ONNX "FLOAT", TF "DT_HALF", ggml type 12)
to one `DType` here, so sizes, parameter counts and the "BF16·I32·F32" line are computed in one place.
Canonical names are the ones the Hugging Face file viewer shows (the safetensors dtype strings) and,
for block-quantized types, the ggml names. Import-light on purpose: numpy and ml_dtypes are only
imported inside `to_numpy`, so `tensorfile dtypes` and the readers' header paths stay fast.

Three kinds of rows need care when counting bytes:
- sub-byte types (U1…U7, I2, I4, F4, F6, NF4, FP4) pack several elements into whole bytes. `nbytes`
  refuses a partial byte; containers that pad the last byte of a tensor (ONNX, TFLite, Core ML) or
  the last packing group (OpenVINO) are counted with `padded_nbytes`. torch (torch.uint4…) and
  TensorFlow (DT_INT4…) keep them unpacked, one element per byte, so those readers count numel bytes.
- STRING, RESOURCE and VARIANT have no fixed size (bits 0): their bytes come from the stored data.
- NF4 and FP4 are *logical* types. bitsandbytes stores them packed two per byte in a U8 tensor, so a
  checkpoint's stored dtype is U8; only formats that name the type (OpenVINO nf4) store them as such.
"""

from __future__ import annotations

import math
import re
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from .errors import TensorfileError, UnsupportedError

if TYPE_CHECKING:  # only for annotations; numpy is never imported at module load
    import numpy as np

__all__ = [
    "DTYPES",
    "GGML_TYPES",
    "DType",
    "UnknownDType",
    "explain_composite",
    "from_ggml_type",
    "lookup",
    "nbytes",
    "padded_nbytes",
    "tensor_types_line",
    "to_numpy",
]

# "string": variable-length byte strings; "handle": opaque references (TF resources, variants).
KINDS = ("float", "int", "uint", "bool", "complex", "quant", "string", "handle")
SEPARATOR = "\u00b7"  # the middle dot Hugging Face puts between dtypes: "BF16·I32·F32"


class UnknownDType(KeyError, TensorfileError):
    """A dtype spelling that is in no row of the table.

    A KeyError so that dict-style callers can catch it, and a TensorfileError so that the CLI reports it
    as one clear line (KeyError's own str() would wrap the message in quotes).
    """

    def __init__(self, name: object) -> None:
        TensorfileError.__init__(self, f"unknown tensor type {name!r}")
        self.name = name

    def __str__(self) -> str:
        return self.message


@dataclass(frozen=True)
class DType:
    """One tensor element type.

    Sizes are exact per block: a tensor of n elements takes n / block_size * type_size bytes. Plain
    types have block_size 1, except sub-byte ones (U1…U7, I2, I4, F4, F6, NF4, FP4), which pack the
    fewest elements that fill whole bytes, as safetensors does (U3: 8 values in 3 bytes). For quant
    types `bits` is the nominal width (the digit in the name) and `bits_per_weight` the true cost
    including block scales. Variable-size types (STRING, RESOURCE, VARIANT) have bits 0 and
    type_size 0: no element count tells their size.
    """

    name: str
    kind: str
    bits: int
    bits_per_weight: float
    block_size: int
    type_size: int
    numpy_name: str | None
    ggml_type: int | None
    aliases: tuple[str, ...]
    description: str

    @property
    def is_quantized(self) -> bool:
        return self.kind == "quant"

    @property
    def fixed_size(self) -> bool:
        """False for STRING, RESOURCE and VARIANT, whose bytes come from the stored data."""
        return self.type_size > 0

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["aliases"] = list(self.aliases)
        return data


def _plain(
    name: str,
    kind: str,
    bits: int,
    numpy_name: str | None,
    ggml_type: int | None,
    aliases: tuple[str, ...],
    description: str,
) -> DType:
    # Sub-byte types pack the fewest elements that fill whole bytes (F4: 2 per byte, F6: 4 per 3 bytes).
    block = 8 // math.gcd(bits, 8)
    unique: dict[str, str] = {}  # drop spellings that differ only in case: lookup ignores case anyway
    for alias in aliases:
        unique.setdefault(alias.casefold(), alias)
    return DType(
        name,
        kind,
        bits,
        float(bits),
        block,
        bits * block // 8,
        numpy_name,
        ggml_type,
        tuple(unique.values()),
        description,
    )


def _variable(
    name: str, kind: str, numpy_name: str | None, aliases: tuple[str, ...], description: str
) -> DType:
    # No fixed width: bits 0 and type_size 0, so that nothing can multiply an element count by them.
    return DType(name, kind, 0, 0.0, 1, 0, numpy_name, None, aliases, description)


def _quant(
    name: str,
    ggml_type: int,
    block_size: int,
    type_size: int,
    bits: int,
    description: str,
    aliases: tuple[str, ...] = (),
) -> DType:
    return DType(
        name,
        "quant",
        bits,
        type_size * 8 / block_size,
        block_size,
        type_size,
        None,
        ggml_type,
        (f"GGML_TYPE_{name}", *aliases),
        description,
    )


def _spellings(numpy_name: str, torch: tuple[str, ...], onnx: str | None, tf: str | None) -> tuple[str, ...]:
    """The spellings frameworks derive from one type: numpy name, torch.*, ONNX enum and type string, TF."""
    out = [numpy_name, *(f"torch.{t}" for t in torch)]
    if onnx:
        out += [onnx, f"tensor({onnx.lower()})"]
    if tf:
        out += [f"DT_{tf}", f"tf.{numpy_name}"]
    return tuple(out)


# Bare numpy type codes ("f4", "i8", "u1") are deliberately not aliases: numpy's "f4" is float32 but
# safetensors' "F4" is FP4, numpy's "i8" is int64 but HF's "I8" is int8, and OpenVINO's "u1" is 1-bit.
# numpy's byte-order-qualified codes ("<f4", "|u1"), which are what .npy headers and dtype.str hold,
# are unambiguous and are listed.
# A table reads better one row per type than one argument per line.
# fmt: off
_PLAIN: tuple[DType, ...] = (
    #      name           kind       bits numpy_name         ggml
    _plain("F64",         "float",   64,  "float64",         28,
           (*_spellings("float64", ("float64", "double"), "DOUBLE", "DOUBLE"), "fp64", "<f8", "f64",
            "FLOAT64", "GGML_TYPE_F64"),
           "64-bit double-precision float: scientific computing, rarely used for model weights"),
    _plain("F32",         "float",   32,  "float32",         0,
           (*_spellings("float32", ("float32", "float"), "FLOAT", "FLOAT"), "fp32", "single", "<f4", "f32",
            "FLOAT32", "GGML_TYPE_F32"),
           "32-bit single-precision float: the standard full precision for training, master weights, "
           "norms and accumulation"),
    _plain("F16",         "float",   16,  "float16",         1,
           (*_spellings("float16", ("float16", "half"), "FLOAT16", "HALF"), "fp16", "half", "<f2", "f16",
            "GGML_TYPE_F16"),
           "16-bit IEEE half-precision float: halves memory, suited to inference; its narrow range can "
           "overflow in training without loss scaling"),
    _plain("BF16",        "float",   16,  "bfloat16",        30,
           (*_spellings("bfloat16", ("bfloat16",), "BFLOAT16", "BFLOAT16"), "bf16", "GGML_TYPE_BF16"),
           "16-bit brain float: same 8-bit exponent (dynamic range) as F32 with fewer mantissa bits; "
           "suited to training and the usual dtype of released LLM weights"),
    _plain("F8_E4M3",     "float",   8,   "float8_e4m3fn",   None,
           (*_spellings("float8_e4m3fn", ("float8_e4m3fn",), "FLOAT8E4M3FN", "FLOAT8_E4M3FN"),
            "F8_E4M3FN", "FLOAT8_E4M3FN", "fp8_e4m3", "fp8e4m3", "e4m3", "f8e4m3"),
           "8-bit float, 4 exponent and 3 mantissa bits (OCP 'fn' variant, max 448): FP8 weights and "
           "activations for inference on Hopper, Ada and Blackwell GPUs"),
    _plain("F8_E5M2",     "float",   8,   "float8_e5m2",     None,
           (*_spellings("float8_e5m2", ("float8_e5m2",), "FLOAT8E5M2", "FLOAT8_E5M2"),
            "FLOAT8_E5M2", "fp8_e5m2", "fp8e5m2", "e5m2", "f8e5m2"),
           "8-bit float, 5 exponent and 2 mantissa bits: wider range than E4M3, used for FP8 gradients"),
    _plain("F8_E4M3FNUZ", "float",   8,   "float8_e4m3fnuz", None,
           _spellings("float8_e4m3fnuz", ("float8_e4m3fnuz",), "FLOAT8E4M3FNUZ", "FLOAT8_E4M3FNUZ"),
           "8-bit float E4M3 without negative zero or infinities (exponent bias 8): the FP8 of AMD "
           "MI300-class GPUs"),
    _plain("F8_E5M2FNUZ", "float",   8,   "float8_e5m2fnuz", None,
           _spellings("float8_e5m2fnuz", ("float8_e5m2fnuz",), "FLOAT8E5M2FNUZ", "FLOAT8_E5M2FNUZ"),
           "8-bit float E5M2 without negative zero or infinities (exponent bias 16): AMD MI300-class FP8"),
    _plain("F8_E4M3B11FNUZ", "float", 8, "float8_e4m3b11fnuz", None,
           ("float8_e4m3b11fnuz", "DT_FLOAT8_E4M3B11FNUZ", "f8e4m3b11fnuz"),
           "8-bit float E4M3 with exponent bias 11, without negative zero or infinities: XLA's FP8 for "
           "Google TPUs (TensorFlow's DT_FLOAT8_E4M3B11FNUZ)"),
    _plain("F8_E8M0",     "float",   8,   "float8_e8m0fnu",  None,
           (*_spellings("float8_e8m0fnu", ("float8_e8m0fnu",), "FLOAT8E8M0", None),
            "e8m0", "ue8m0", "f8e8m0"),
           "8-bit exponent-only power-of-two scale (OCP microscaling): the shared block scale of "
           "MXFP4/MXFP8 weights"),
    _plain("F6_E2M3",     "float",   6,   "float6_e2m3fn",   None,
           ("float6_e2m3fn", "fp6_e2m3", "e2m3", "FLOAT6E2M3", "tensor(float6e2m3)", "f6e2m3"),
           "6-bit float, 2 exponent and 3 mantissa bits (OCP MXFP6 element), four values in 3 bytes"),
    _plain("F6_E3M2",     "float",   6,   "float6_e3m2fn",   None,
           ("float6_e3m2fn", "fp6_e3m2", "e3m2", "FLOAT6E3M2", "tensor(float6e3m2)", "f6e3m2"),
           "6-bit float, 3 exponent and 2 mantissa bits (OCP MXFP6 element), four values in 3 bytes"),
    _plain("F4",          "float",   4,   "float4_e2m1fn",   None,
           ("float4_e2m1fn", "fp4_e2m1", "e2m1", "FLOAT4E2M1", "tensor(float4e2m1)", "f4e2m1",
            "DT_FLOAT4_E2M1FN"),
           "4-bit float E2M1 (OCP MXFP4/NVFP4 element), two values per byte; needs block scales to be "
           "useful"),
    _plain("NF4",         "float",   4,   None,              None,
           ("nf4", "normalfloat4", "bnb_nf4"),
           "4-bit NormalFloat (QLoRA): 16 levels at quantiles of a normal distribution, scaled by an "
           "absmax per block of 64. A logical type: bitsandbytes packs two NF4 values per byte into a U8 "
           "tensor, so its checkpoints store U8; OpenVINO IR stores nf4 constants as such"),
    _plain("FP4",         "float",   4,   None,              None,
           ("bnb_fp4",),
           "bitsandbytes 4-bit float (bnb_4bit_quant_type='fp4'): sign plus a 3-bit E2M1-style code "
           "scaled by a per-block absmax, packed two per byte into U8 like NF4; its code table differs "
           "from OCP F4"),
    _plain("I64",         "int",     64,  "int64",           27,
           (*_spellings("int64", ("int64", "long"), "INT64", "INT64"), "long", "<i8", "GGML_TYPE_I64"),
           "64-bit signed integer: token and position ids, indices, counters such as num_batches_tracked"),
    _plain("I32",         "int",     32,  "int32",           26,
           (*_spellings("int32", ("int32", "int"), "INT32", "INT32"), "<i4", "GGML_TYPE_I32"),
           "32-bit signed integer: indices and counts, and the container of packed 4-bit weights in "
           "AWQ/GPTQ checkpoints (eight per element)"),
    _plain("I16",         "int",     16,  "int16",           25,
           (*_spellings("int16", ("int16", "short"), "INT16", "INT16"), "short", "<i2", "GGML_TYPE_I16"),
           "16-bit signed integer: audio samples and some quantized activations"),
    _plain("I8",          "int",     8,   "int8",            24,
           (*_spellings("int8", ("int8",), "INT8", "INT8"), "|i1", "GGML_TYPE_I8"),
           "8-bit signed integer: INT8-quantized weights and activations (LLM.int8, TensorRT, TFLite)"),
    _plain("I4",          "int",     4,   "int4",            None,
           ("int4", "INT4", "tensor(int4)", "DT_INT4", "torch.int4"),
           "4-bit signed integer, two per byte: INT4 weight-only quantization in ONNX, OpenVINO, TFLite"),
    _plain("I2",          "int",     2,   "int2",            None,
           ("int2", "INT2", "tensor(int2)", "DT_INT2", "torch.int2"),
           "2-bit signed integer (-2..1), four per byte: ONNX INT2 and TFLite/LiteRT INT2 weights"),
    _plain("U64",         "uint",    64,  "uint64",          None,
           (*_spellings("uint64", ("uint64",), "UINT64", "UINT64"), "<u8"),
           "64-bit unsigned integer: hashes, sizes and counters"),
    _plain("U32",         "uint",    32,  "uint32",          None,
           (*_spellings("uint32", ("uint32",), "UINT32", "UINT32"), "<u4"),
           "32-bit unsigned integer: ids, bit masks and packed low-bit data"),
    _plain("U16",         "uint",    16,  "uint16",          None,
           (*_spellings("uint16", ("uint16",), "UINT16", "UINT16"), "<u2"),
           "16-bit unsigned integer: 16-bit image data, or raw bits of a 16-bit float a tool cannot name"),
    _plain("U8",          "uint",    8,   "uint8",           None,
           (*_spellings("uint8", ("uint8",), "UINT8", "UINT8"), "|u1"),
           "8-bit unsigned integer: image pixels and packed quantized weights (bitsandbytes 4-bit, "
           "NVFP4/MXFP4 pairs)"),
    _plain("U7",          "uint",    7,   None,              None,
           ("uint7", "torch.uint7"),
           "7-bit unsigned integer, eight values in 7 bytes: Core ML neural-network weights quantized "
           "to 7 bits"),
    _plain("U6",          "uint",    6,   None,              None,
           ("uint6", "UINT6", "torch.uint6"),
           "6-bit unsigned integer, four values in 3 bytes: OpenVINO u6 and Core ML 6-bit palette "
           "indices"),
    _plain("U5",          "uint",    5,   None,              None,
           ("uint5", "torch.uint5"),
           "5-bit unsigned integer, eight values in 5 bytes: Core ML neural-network weights quantized "
           "to 5 bits"),
    _plain("U4",          "uint",    4,   "uint4",           None,
           ("uint4", "UINT4", "tensor(uint4)", "DT_UINT4", "torch.uint4"),
           "4-bit unsigned integer, two per byte: asymmetric INT4 weights in ONNX and OpenVINO"),
    _plain("U3",          "uint",    3,   None,              None,
           ("uint3", "UINT3", "torch.uint3"),
           "3-bit unsigned integer, eight values in 3 bytes: OpenVINO u3 and Core ML 3-bit palette "
           "indices"),
    _plain("U2",          "uint",    2,   "uint2",           None,
           ("uint2", "UINT2", "tensor(uint2)", "DT_UINT2", "torch.uint2"),
           "2-bit unsigned integer, four per byte: ONNX UINT2, OpenVINO u2 and Core ML 2-bit palette "
           "indices"),
    _plain("U1",          "uint",    1,   "uint1",           None,
           ("uint1", "UINT1", "torch.uint1"),
           "1-bit unsigned integer, eight per byte: binary masks and 1-bit palette indices (OpenVINO u1, "
           "Core ML UINT1)"),
    _plain("QINT8",       "int",     8,   None,              None,
           ("qint8", "torch.qint8", "QInt8Storage"),
           "PyTorch quantized int8 (torch.quantize_per_tensor / per_channel, quantize_dynamic weights): "
           "int8 values whose scale and zero point, per tensor or per channel, live beside the data"),
    _plain("QUINT8",      "uint",    8,   None,              None,
           ("quint8", "torch.quint8", "QUInt8Storage"),
           "PyTorch quantized uint8: uint8 values with an affine scale and zero point beside the data "
           "(static quantization's activations and weights)"),
    _plain("QINT32",      "int",     32,  None,              None,
           ("qint32", "torch.qint32", "QInt32Storage"),
           "PyTorch quantized int32: int32 values with a scale and zero point beside the data (quantized "
           "biases)"),
    _plain("BOOL",        "bool",    8,   "bool",            None,
           (*_spellings("bool", ("bool",), None, "BOOL"), "tensor(bool)", "boolean", "|b1"),
           "boolean stored one per byte: attention masks and flags"),
    _plain("C64",         "complex", 64,  "complex64",       None,
           (*_spellings("complex64", ("complex64", "cfloat"), "COMPLEX64", "COMPLEX64"), "<c8"),
           "complex number of two F32 parts: FFT and signal-processing layers, rotary tables"),
    _plain("C128",        "complex", 128, "complex128",      None,
           (*_spellings("complex128", ("complex128", "cdouble"), "COMPLEX128", "COMPLEX128"), "<c16"),
           "complex number of two F64 parts: scientific computing"),
    _variable("STRING", "string", "object",
              ("string", "DT_STRING", "tf.string", "tensor(string)", "object"),
              "variable-length byte strings (vocabularies, labels, file names): no fixed size, the bytes "
              "come from the stored data; numpy holds them as object arrays"),
    _variable("RESOURCE", "handle", None, ("resource", "DT_RESOURCE", "tf.resource"),
              "a handle to a TensorFlow resource (a variable, table or iterator) in a graph or TFLite "
              "model: a reference, not weights"),
    _variable("VARIANT", "handle", None, ("variant", "DT_VARIANT", "tf.variant"),
              "an opaque TensorFlow value (tensor lists, datasets, optionals) in a graph or TFLite model: "
              "no fixed size and no weights"),
)

# ggml block types. Numbers, block sizes and bytes per block are those of ggml.h / gguf-py's
# GGML_QUANT_SIZES (checked programmatically against gguf 0.19.0), with one correction: Q8_1 is 36
# bytes (F16 d and s + 32 int8), as ggml's block_q8_1 is today; gguf-py still says 40, the size from
# when d and s were F32. Q8_1 and Q8_K only ever exist at run time, as the activation side of dot
# products; they are listed so that every ggml number resolves. 31-33 were written to GGUF files in
# 2024 and then dropped from ggml; old files still carry them.
_QUANT: tuple[DType, ...] = (
    # name, ggml type number, elements per block, bytes per block, nominal bits, description
    _quant("Q4_0", 2, 32, 18, 4, "ggml 4-bit round-to-nearest, one F16 scale per 32 weights (legacy)"),
    _quant("Q4_1", 3, 32, 20, 4, "ggml 4-bit with an F16 scale and minimum per 32 weights (legacy)"),
    _quant("Q5_0", 6, 32, 22, 5, "ggml 5-bit with one F16 scale per 32 weights (legacy)"),
    _quant("Q5_1", 7, 32, 24, 5, "ggml 5-bit with an F16 scale and minimum per 32 weights (legacy)"),
    _quant("Q8_0", 8, 32, 34, 8, "ggml 8-bit with one F16 scale per 32 weights: near-lossless"),
    _quant("Q8_1", 9, 32, 36, 8, "ggml 8-bit with F16 scale and sum per 32: run-time activations only"),
    _quant("Q2_K", 10, 256, 84, 2, "k-quant 2-bit: 16 sub-blocks of 16 with 4-bit scales and minimums"),
    _quant("Q3_K", 11, 256, 110, 3, "k-quant 3-bit: 16 sub-blocks of 16 with 6-bit scales (Q3_K_* files)"),
    _quant("Q4_K", 12, 256, 144, 4, "k-quant 4-bit: 8 sub-blocks of 32 with 6-bit scales and minimums; "
        "the bulk of Q4_K_M/Q4_K_S files"),
    _quant("Q5_K", 13, 256, 176, 5, "k-quant 5-bit: 8 sub-blocks of 32 with 6-bit scales and minimums "
        "(Q5_K_M/Q5_K_S)"),
    _quant("Q6_K", 14, 256, 210, 6, "k-quant 6-bit with 8-bit scales: Q6_K files and the sensitive "
        "tensors of Q4_K_M/Q5_K_M"),
    _quant("Q8_K", 15, 256, 292, 8, "k-quant 8-bit with F32 scale and sums: run-time activations only"),
    _quant("IQ2_XXS", 16, 256, 66, 2, "i-quant 2-bit E8-lattice codebook; needs an importance matrix"),
    _quant("IQ2_XS", 17, 256, 74, 2, "i-quant 2-bit lattice codebook with per-32 scales"),
    _quant("IQ3_XXS", 18, 256, 98, 3, "i-quant 3-bit lattice codebook"),
    _quant("IQ1_S", 19, 256, 50, 1, "i-quant 1-bit-class codebook: the smallest usable LLM quant"),
    _quant("IQ4_NL", 20, 32, 18, 4, "4-bit non-linear (lookup-table) values, one F16 scale per 32"),
    _quant("IQ3_S", 21, 256, 110, 3, "i-quant 3-bit lattice codebook with separate signs and scales"),
    _quant("IQ2_S", 22, 256, 82, 2, "i-quant 2-bit lattice codebook, larger than IQ2_XS"),
    _quant("IQ4_XS", 23, 256, 136, 4, "4-bit non-linear values in 256-weight super-blocks, 6-bit scales"),
    _quant("IQ1_M", 29, 256, 56, 1, "i-quant 1-bit-class codebook with per-16 scales, larger than IQ1_S"),
    _quant("Q4_0_4_4", 31, 32, 18, 4, "Q4_0 interleaved 4x4 for ARM NEON; removed from GGUF late 2024"),
    _quant("Q4_0_4_8", 32, 32, 18, 4, "Q4_0 interleaved 4x8 for ARM i8mm; removed from GGUF late 2024"),
    _quant("Q4_0_8_8", 33, 32, 18, 4, "Q4_0 interleaved 8x8 for ARM SVE; removed from GGUF late 2024"),
    _quant("TQ1_0", 34, 256, 54, 1, "ternary (-1, 0, 1) weights packed base 3, for BitNet b1.58 models"),
    _quant("TQ2_0", 35, 256, 66, 2, "ternary (-1, 0, 1) weights at 2 bits each, for BitNet b1.58 models"),
    _quant("MXFP4", 39, 32, 17, 4, "OCP microscaling FP4: E2M1 values, one E8M0 scale per 32 (gpt-oss)"),
    _quant("NVFP4", 40, 64, 36, 4, "NVIDIA FP4: E2M1 values with an unsigned E4M3 scale per 16"),
    _quant("Q1_0", 41, 128, 18, 1, "ggml 1-bit weights with one F16 scale per 128 weights"),
)
# fmt: on

DTYPES: tuple[DType, ...] = _PLAIN + _QUANT

GGML_TYPES: dict[int, DType] = {d.ggml_type: d for d in DTYPES if d.ggml_type is not None}


def _build_index() -> dict[str, DType]:
    index: dict[str, DType] = {}
    for d in DTYPES:
        for alias in d.aliases:
            key = alias.casefold()
            other = index.setdefault(key, d)
            if other is not d:  # the table is data: keep it unambiguous, fail at import in tests
                raise AssertionError(f"alias {alias!r} names both {other.name} and {d.name}")
    for d in DTYPES:  # an alias that is another type's name would be dead: refuse it too
        other = index.setdefault(d.name.casefold(), d)
        if other is not d:
            raise AssertionError(f"alias of {other.name} shadows the name {d.name}")
    return index


_INDEX = _build_index()


def lookup(name: str | DType) -> DType:
    """The DType for any known spelling, case-insensitively (names and aliases never collide)."""
    if isinstance(name, DType):
        return name
    found = _INDEX.get(str(name).strip().casefold())
    if found is None:
        raise UnknownDType(name)
    return found


def from_ggml_type(type_id: int) -> DType:
    """The DType for a ggml type number as stored in a GGUF tensor info."""
    found = GGML_TYPES.get(type_id)
    if found is None:
        raise UnknownDType(f"ggml type {type_id}")
    return found


def _checked(dtype: DType | str, n_elements: int) -> DType:
    d = lookup(dtype)
    if n_elements < 0:
        raise ValueError(f"negative element count {n_elements}")
    if not d.fixed_size:
        raise ValueError(f"{d.name} elements have no fixed size: the byte count comes from the stored data")
    return d


def nbytes(dtype: DType | str, n_elements: int) -> int:
    """Exact bytes for n_elements; a partial block cannot be stored, so it is an error, not rounded.

    ValueError also for variable-size types (STRING, RESOURCE, VARIANT), whose size is in the data.
    """
    d = _checked(dtype, n_elements)
    if n_elements % d.block_size:
        raise ValueError(f"{n_elements} elements is not a whole number of {d.name} blocks of {d.block_size}")
    return n_elements // d.block_size * d.type_size


def padded_nbytes(dtype: DType | str, n_elements: int, pad: str = "byte") -> int:
    """Bytes a container stores for one tensor of a packed sub-byte type, its tail padded.

    pad="byte": values are packed bit after bit and the last byte is padded, as ONNX
    (numpy_helper.from_array), TFLite and Core ML do: ceil(n * bits / 8); INT4[3] takes 2 bytes.
    pad="block": whole packing groups, as OpenVINO does (u3: 8 values per 3 bytes, u6: 4 per 3), so
    U3[10] takes 6 bytes where byte padding gives 4. Whole-byte types are exact either way, and a
    ggml block type still cannot be partial (ValueError, as in `nbytes`).
    """
    d = _checked(dtype, n_elements)
    if d.kind == "quant" or d.block_size == 1:
        return nbytes(d, n_elements)
    if pad == "byte":
        return -(-n_elements * d.bits // 8)
    if pad == "block":
        return -(-n_elements // d.block_size) * d.type_size
    raise ValueError(f"pad must be 'byte' or 'block', not {pad!r}")


def _canonical(name: str) -> str:
    try:
        return lookup(name).name
    except UnknownDType:  # a dtype newer than this table still gets a line, under its own spelling
        return str(name).strip()


def tensor_types_line(params_by_dtype: dict[str, int]) -> str:
    """Hugging Face's "Tensor type" line: dtypes by parameter count, largest first, ties by name."""
    totals: dict[str, int] = {}
    for name, count in params_by_dtype.items():
        if count < 0:
            raise ValueError(f"negative parameter count {count} for {name}")
        key = _canonical(name)
        totals[key] = totals.get(key, 0) + count
    ordered = sorted((item for item in totals.items() if item[1] > 0), key=lambda kv: (-kv[1], kv[0]))
    return SEPARATOR.join(name for name, _ in ordered)


_SPLIT = re.compile(r"[\u00b7\u2022\u22c5,+\s]+")  # middle dot, bullet, dot operator, comma, plus


def _role(d: DType, position: int, bulk: DType) -> str:
    # A bulk in integers, ggml blocks or 8-bit-or-less floats means the checkpoint is quantized, and the
    # wider floats that follow are its scales and the layers quantizers leave alone.
    quantized = bulk.kind in ("int", "uint", "quant") or (bulk.kind == "float" and bulk.bits <= 8)
    if position == 0:
        if d.kind == "quant":
            return "bulk of the weights, block-quantized (ggml)"
        if d.kind in ("int", "uint"):
            return (
                "bulk of the parameters: packed quantized weights (several low-bit values per integer "
                "element, e.g. AWQ/GPTQ in I32, bitsandbytes 4-bit in U8)"
            )
        return "bulk of the parameters: most weights are stored in this type"
    if d.name == "F8_E8M0":
        return "power-of-two block scales of microscaled (MXFP4/MXFP8) weights"
    if d.kind == "float":
        if quantized:
            return (
                "quantization scales, and layers left in higher precision (embeddings, lm_head, norms, "
                "biases)"
            )
        if d.bits > bulk.bits:
            return (
                "kept in higher precision: usually norms, biases, router/gate weights or other layers "
                "excluded from low precision"
            )
        return "a smaller group of parameters stored in this type"
    if d.kind in ("int", "uint"):
        return (
            "integer tensors: indices and counters (position ids, num_batches_tracked), GPTQ g_idx, "
            "or packed quantized values and zero-points"
        )
    if d.kind == "bool":
        return "boolean buffers such as attention masks"
    if d.kind == "string":
        return "byte strings such as vocabularies or labels, sized by their contents"
    if d.kind == "handle":
        return "resource or variant handles: references to state, not stored weights"
    if d.kind == "quant":
        return "tensors quantized with another ggml type (mixed-quant files such as Q4_K_M)"
    return "complex-valued buffers (e.g. precomputed rotary or FFT tables)"


def explain_composite(line: str) -> list[dict[str, Any]]:
    """Explain a "BF16·I32·F32" line part by part.

    The line lists the dtypes of the stored tensors ordered by how many parameters use each, so the
    first is the bulk of the weights and the rest are smaller groups of stored tensors; it says nothing
    about the dtypes used during computation.
    """
    names = [p for p in _SPLIT.split(line.strip()) if p]
    if not names:
        raise ValueError("empty tensor type line")
    types = [lookup(n) for n in names]
    out: list[dict[str, Any]] = []
    for i, d in enumerate(types):
        out.append(
            {
                "name": d.name,
                "rank": i + 1,
                "kind": d.kind,
                "bits_per_weight": d.bits_per_weight,
                "description": d.description,
                "role": _role(d, i, types[0]),
            }
        )
    return out


_NUMPY_NATIVE = frozenset(
    {
        "float64",
        "float32",
        "float16",
        "int64",
        "int32",
        "int16",
        "int8",
        "uint64",
        "uint32",
        "uint16",
        "uint8",
        "bool",
        "complex64",
        "complex128",
        "object",
    }
)


def to_numpy(dtype: DType | str) -> np.dtype[Any]:
    """The numpy dtype (through ml_dtypes for BF16/FP8/FP6/FP4/sub-byte ints); imported only when called."""
    d = lookup(dtype)
    if d.numpy_name is None:
        why = "is block-quantized" if d.is_quantized else "has no numpy or ml_dtypes equivalent"
        raise UnsupportedError(f"{d.name} {why}, so it has no element-wise numpy dtype")
    import numpy as np

    if d.numpy_name in _NUMPY_NATIVE:
        return np.dtype(d.numpy_name)
    import ml_dtypes

    return np.dtype(getattr(ml_dtypes, d.numpy_name))
