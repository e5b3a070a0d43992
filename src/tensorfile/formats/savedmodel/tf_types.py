"""TensorFlow's DataType enum as canonical dtypes, the bytes TF stores per dtype, TensorShapeProto and
proto map entries: what every SavedModel walk reads."""

from __future__ import annotations

from typing import Any

from ...dtypes import DType, UnknownDType, lookup, nbytes
from ...protowire import LEN, VARINT, MessageReader, signed64

# TensorFlow's DataType enum (types.proto, as tensorflow 2.21 has it), spelled as TF names it; *_REF
# values (100 + n) name the same types.
_TF_ENUM = {
    1: "DT_FLOAT", 2: "DT_DOUBLE", 3: "DT_INT32", 4: "DT_UINT8", 5: "DT_INT16", 6: "DT_INT8",
    7: "DT_STRING", 8: "DT_COMPLEX64", 9: "DT_INT64", 10: "DT_BOOL", 11: "DT_QINT8", 12: "DT_QUINT8",
    13: "DT_QINT32", 14: "DT_BFLOAT16", 15: "DT_QINT16", 16: "DT_QUINT16", 17: "DT_UINT16",
    18: "DT_COMPLEX128", 19: "DT_HALF", 20: "DT_RESOURCE", 21: "DT_VARIANT", 22: "DT_UINT32",
    23: "DT_UINT64", 24: "DT_FLOAT8_E5M2", 25: "DT_FLOAT8_E4M3FN", 26: "DT_FLOAT8_E4M3FNUZ",
    27: "DT_FLOAT8_E4M3B11FNUZ", 28: "DT_FLOAT8_E5M2FNUZ", 29: "DT_INT4", 30: "DT_UINT4",
    31: "DT_INT2", 32: "DT_UINT2", 33: "DT_FLOAT4_E2M1FN",
}  # fmt: skip
# Quantized TF types have plain storage (the scales live in other tensors): report the storage type.
_TF_STORAGE = {
    "DT_QINT8": "I8",
    "DT_QUINT8": "U8",
    "DT_QINT16": "I16",
    "DT_QUINT16": "U16",
    "DT_QINT32": "I32",
}
# Canonical names by enum number; every other DT_ name is an alias in the dtypes table.
TF_DTYPES: dict[int, str] = {n: _TF_STORAGE.get(name) or lookup(name).name for n, name in _TF_ENUM.items()}


def tf_dtype_name(enum: int) -> str:
    """Canonical dtype for a TF DataType number (DT_STRING -> STRING…); "DT_<n>" for an unknown one."""
    return TF_DTYPES.get(enum - 100 if enum > 100 else enum, f"DT_{enum}")


def tf_nbytes(dtype: str | DType, numel: int) -> int | None:
    """Bytes TensorFlow stores for `numel` elements (tensor_content, tensor bundles), None when the size
    is in the data (strings). TF keeps sub-byte types one per byte (ml_dtypes layout), unpacked."""
    try:
        d = lookup(dtype)
        return numel if d.fixed_size and d.bits < 8 and not d.is_quantized else nbytes(d, numel)
    except (UnknownDType, ValueError):
        return None


def read_shape(reader: MessageReader) -> tuple[int, ...] | None:
    """TensorShapeProto -> dims (-1 for unknown), or None when the rank itself is unknown."""
    dims: list[int] = []
    for f in reader.fields():
        if f.number == 2 and f.wire_type == LEN:
            size = 0
            for g in reader.submessage(f).fields():
                if g.number == 1 and g.wire_type == VARINT:
                    size = signed64(g.value)
            dims.append(size)
        elif f.number == 3 and f.wire_type == VARINT and f.value:
            return None
    return tuple(dims)


def map_entry(reader: MessageReader) -> tuple[str | None, Any]:
    key, value = None, None
    for f in reader.fields():
        if f.number == 1:
            key = reader.string(f)
        elif f.number == 2 and f.wire_type == LEN:
            value = f
    return key, value
