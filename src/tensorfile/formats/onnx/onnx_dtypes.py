"""ONNX's TensorProto data types as canonical dtypes, and the bytes ONNX stores for them."""

from __future__ import annotations

from ...dtypes import UnknownDType, lookup, padded_nbytes

# TensorProto.DataType, spelled as onnx.proto names it; every name is an alias in the dtypes table, so
# ONNX_DTYPES maps each enum number straight to a canonical name (an import error if one is missing).
_ONNX_ENUM = (
    "UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64", "STRING", "BOOL",
    "FLOAT16", "DOUBLE", "UINT32", "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16", "FLOAT8E4M3FN",
    "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "UINT4", "INT4", "FLOAT4E2M1", "FLOAT8E8M0",
    "UINT2", "INT2", "FLOAT6E2M3", "FLOAT6E3M2",
)  # fmt: skip
ONNX_DTYPES: dict[int, str] = {n: lookup(name).name for n, name in enumerate(_ONNX_ENUM) if n}


def stored_bytes(dtype: str, numel: int) -> int | None:
    """Bytes of `numel` elements as ONNX stores them: sub-byte types packed with the last byte padded
    (numpy_helper.from_array: INT4[3] is 2 bytes, FLOAT6E2M3[1] is 1); None for STRING."""
    try:
        return padded_nbytes(dtype, numel, "byte")
    except (UnknownDType, ValueError):
        return None
