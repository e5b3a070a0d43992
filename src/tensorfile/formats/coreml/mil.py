"""ML programs (MIL): functions, blocks and operations, their const and constexpr values, and the
weight blobs (MILBlob storage) those values point into."""

from __future__ import annotations

import struct
from collections.abc import Iterator
from math import prod
from pathlib import Path
from typing import Any

from ...errors import FormatError
from ...model import TensorInfo
from ...protowire import LEN, VARINT, Field, MessageReader
from ...source import open_source, read_exact
from .walk import MAX_DEPTH, Blob, Walk, bits_bytes

# MIL DataType (MIL.proto) -> (canonical dtype, bits); every name is a row of the dtypes table.
MIL_DTYPES: dict[int, tuple[str, int]] = {
    1: ("BOOL", 8),
    10: ("F16", 16),
    11: ("F32", 32),
    12: ("F64", 64),
    13: ("BF16", 16),
    21: ("I8", 8),
    22: ("I16", 16),
    23: ("I32", 32),
    24: ("I64", 64),
    25: ("I4", 4),
    31: ("U8", 8),
    32: ("U16", 16),
    33: ("U32", 32),
    34: ("U64", 64),
    35: ("U4", 4),
    36: ("U2", 2),
    37: ("U1", 1),
    38: ("U6", 6),
    39: ("U3", 3),
    40: ("F8_E4M3", 8),
    41: ("F8_E5M2", 8),
}
_MIL_STRING = 2
_DTYPE_BITS = {name: bits for name, bits in MIL_DTYPES.values()}
# MILBlob BlobDataType (coremltools mlmodel/src/MILBlob/Blob/BlobDataType.hpp).
BLOB_DTYPES: dict[int, str] = {
    1: "F16",
    2: "F32",
    3: "U8",
    4: "I8",
    5: "BF16",
    6: "I16",
    7: "U16",
    8: "I4",
    9: "U1",
    10: "U2",
    11: "U4",
    12: "U3",
    13: "U6",
    14: "I32",
    15: "U32",
    16: "F8_E4M3",
    17: "F8_E5M2",
}
BLOB_SENTINEL = 0xDEADBEEF
_BLOB_HEADER = struct.Struct("<II56x")  # count, version, reserved
_BLOB_METADATA = struct.Struct("<IIQQQ24x")  # sentinel, mil dtype, sizeInBytes, offset, padding bits
# constexpr_* ops keep their quantized payload under these keys; their other tensors are scales,
# zero points, lookup tables and masks.
_CONSTEXPR_PAYLOAD = {"quantized_data", "data", "indices", "nonzero_data"}


_WEIGHTS_PREFIX = "@model_path/"


def _entries(reader: MessageReader) -> Iterator[tuple[str, Field]]:
    """(key, value field) of a map<string, message> entry message."""
    key = ""
    value: Field | None = None
    for f in reader.fields():
        if f.number == 1 and f.wire_type == LEN:
            key = reader.string(f) or ""
        elif f.number == 2 and f.wire_type == LEN:
            value = f
    if value is not None:
        yield key, value


def read_program(reader: MessageReader, walk: Walk, prefix: str, depth: int) -> dict[str, Any]:
    out: dict[str, Any] = {"functions": [], "opsets": []}
    functions: list[tuple[str, Field]] = []
    for f in reader.fields():
        if f.number == 1 and f.wire_type == VARINT:
            out["mil_version"] = f.value
        elif f.number == 2 and f.wire_type == LEN:
            functions.extend(_entries(reader.submessage(f)))
    for name, f in functions:
        out["functions"].append(name)
        fn_prefix = prefix if len(functions) == 1 else f"{prefix}{name}/"
        opset = _function(reader.submessage(f), walk, fn_prefix, depth)
        if opset and opset not in out["opsets"]:
            out["opsets"].append(opset)
    out["op_count"] = sum(walk.op_types.values())
    out["op_types"] = dict(walk.op_types.most_common())
    return out


def _function(reader: MessageReader, walk: Walk, prefix: str, depth: int) -> str | None:
    opset = None
    blocks: list[tuple[str, Field]] = []
    for f in reader.fields():
        if f.number == 2 and f.wire_type == LEN:
            opset = reader.string(f)
        elif f.number == 3 and f.wire_type == LEN:
            blocks.extend(_entries(reader.submessage(f)))
    # One block per opset specialization; the function's own opset is the one that runs.
    chosen = [b for b in blocks if b[0] == opset] or blocks[:1]
    for _key, f in chosen:
        _block(reader.submessage(f), walk, prefix, depth)
    return opset


def _block(reader: MessageReader, walk: Walk, prefix: str, depth: int) -> None:
    if depth > MAX_DEPTH:
        walk.warn(f"MIL blocks nested deeper than {MAX_DEPTH}: the rest is not read")
        return
    for f in reader.fields():
        if f.number == 3 and f.wire_type == LEN:
            _operation(reader.submessage(f), walk, prefix, depth)


def _operation(reader: MessageReader, walk: Walk, prefix: str, depth: int) -> None:
    op_type = ""
    output: str | None = None
    output_type: Field | None = None
    type_reader = reader  # the NamedValueType message output_type belongs to
    attributes: list[tuple[str, Field]] = []
    bound: list[tuple[str, Field]] = []  # values written inline into an input argument
    blocks: list[Field] = []
    for f in reader.fields():
        if f.wire_type != LEN:
            continue
        if f.number == 1:
            op_type = reader.string(f) or ""
        elif f.number == 2:
            for key, arg in _entries(reader.submessage(f)):
                argument = reader.submessage(arg)
                for b in argument.fields():
                    if b.number == 1 and b.wire_type == LEN:
                        binding = argument.submessage(b)
                        for v in binding.fields():
                            if v.number == 2 and v.wire_type == LEN:
                                bound.append((key, v))  # a binding holds a name or a value
        elif f.number == 3 and output is None:
            named = reader.submessage(f)
            for g in named.fields():
                if g.number == 1 and g.wire_type == LEN:
                    output = named.string(g)
                elif g.number == 2 and g.wire_type == LEN:
                    output_type = g
                    type_reader = named
        elif f.number == 4:
            blocks.append(f)
        elif f.number == 5:
            attributes.extend(_entries(reader.submessage(f)))
    walk.op_types[op_type] += 1
    name = f"{prefix}{output or op_type}"
    first = len(walk.info.tensors)
    if op_type == "const":
        for key, value in attributes:
            if key == "val":
                _mil_value(reader, value, name, walk, "constant")
    elif op_type.startswith("constexpr_"):
        for key, value in attributes:
            if key != "name":
                role = "weight" if key in _CONSTEXPR_PAYLOAD else "quant-aux"
                _mil_value(reader, value, f"{name}.{key}", walk, role)
    # iOS18 constexpr ops take their payload as inline input values; elsewhere only blob-backed
    # inputs are stored weights (small inline arguments are like attributes).
    constexpr = op_type.startswith("constexpr_")
    for key, value in bound:
        role = "weight" if not constexpr or key in _CONSTEXPR_PAYLOAD else "quant-aux"
        _mil_value(reader, value, f"{name}.{key}", walk, role, blob_only=not constexpr)
    if constexpr:
        # The op's output type is the dense tensor the compressed payload stands for.
        dense = _tensor_type(type_reader, output_type)[1] if output_type is not None else None
        added = range(first, len(walk.info.tensors))
        walk.compressed.update(added)
        walk.dense_elements += prod(dense) if dense is not None else 0
        payload = [walk.info.tensors[i] for i in added if walk.info.tensors[i].role == "weight"]
        if payload:
            # Bits per dense element: iOS16 palettization packs 4-bit indices into a U8 array.
            bits = _DTYPE_BITS.get(payload[0].dtype, 0)
            if dense:
                bits = max(1, round(payload[0].nbytes * 8 / prod(dense)))
            walk.quantized[(op_type, bits)] += 1
    for f in blocks:
        _block(reader.submessage(f), walk, prefix, depth + 1)


def _tensor_type(reader: MessageReader, value_type: Field) -> tuple[int | None, tuple[int, ...] | None]:
    """(MIL dtype, shape) of a ValueType that is a tensorType; shape None when a dim is unknown."""
    vt = reader.submessage(value_type)
    for f in vt.fields():
        if f.number == 1 and f.wire_type == LEN:
            tt = vt.submessage(f)
            dtype: int | None = None
            dims: list[int] | None = []
            for g in tt.fields():
                if g.number == 1 and g.wire_type == VARINT:
                    dtype = g.value
                elif g.number == 3 and g.wire_type == LEN and dims is not None:
                    dim = tt.submessage(g)
                    size = None
                    for h in dim.fields():
                        if h.number == 1 and h.wire_type == LEN:  # ConstantDimension{size}
                            const = dim.submessage(h)
                            size = next((c.value for c in const.fields() if c.number == 1), 0)
                    if size is None:
                        dims = None
                    else:
                        dims.append(size)
            return dtype, tuple(dims) if dims is not None else None
    return None, None


def _mil_value(
    reader: MessageReader,
    f: Field,
    name: str,
    walk: Walk,
    role: str,
    blob_only: bool = False,
) -> None:
    """A MIL Value holding a tensor: inline (immediateValue) or in a weight blob (blobFileValue)."""
    value = reader.submessage(f)
    dtype_id: int | None = None
    shape: tuple[int, ...] | None = None
    immediate: Field | None = None
    blob: Field | None = None
    for g in value.fields():
        if g.number == 2 and g.wire_type == LEN:
            dtype_id, shape = _tensor_type(value, g)
        elif g.number == 3 and g.wire_type == LEN:
            immediate = g
        elif g.number == 5 and g.wire_type == LEN:
            blob = g
    if blob_only and blob is None:
        return
    if dtype_id == _MIL_STRING:
        walk.string_constants += 1
        return
    if dtype_id is None or shape is None:
        if immediate is not None or blob is not None:
            walk.warn(f"{name}: value is not a tensor of known shape; not counted")
        return
    dtype, bits = MIL_DTYPES.get(dtype_id, (f"MIL_TYPE_{dtype_id}", 0))
    if not bits:
        walk.warn(f"{name}: MIL data type {dtype_id} is unknown to this reader")
    numel = prod(shape)
    expected = bits_bytes(bits, numel)
    if blob is not None:
        # A const whose value sits in the weight blob is a weight, not a small constant.
        _blob_tensor(
            value, blob, name, dtype, shape, expected, walk, "weight" if role == "constant" else role
        )
        return
    offset = None
    if immediate is not None:
        offset = _immediate_offset(value, immediate)
    walk.add(TensorInfo(name, dtype, shape, expected, walk.label, offset, role))


def _immediate_offset(reader: MessageReader, immediate: Field) -> int | None:
    """Where packed float/double values of an immediate tensor start (contiguous), else None."""
    imm = reader.submessage(immediate)
    for f in imm.fields():
        if f.number == 1 and f.wire_type == LEN:
            tv = imm.submessage(f)
            for g in tv.fields():
                if g.number in (1, 6) and g.wire_type == LEN:  # floats / doubles
                    rep = tv.submessage(g)
                    packed = next((h for h in rep.fields() if h.number == 1 and h.wire_type == LEN), None)
                    return packed.offset if packed is not None else None
    return None


def _blob_tensor(
    reader: MessageReader,
    blob: Field,
    name: str,
    dtype: str,
    shape: tuple[int, ...],
    expected: int,
    walk: Walk,
    role: str,
) -> None:
    ref = reader.submessage(blob)
    file_name = ""
    meta_offset: int | None = None
    for f in ref.fields():
        if f.number == 1 and f.wire_type == LEN:
            file_name = ref.string(f) or ""
        elif f.number == 2 and f.wire_type == VARINT:
            meta_offset = f.value
    store = _open_blob(file_name, walk)
    if store is None or meta_offset is None:
        walk.add(TensorInfo(name, dtype, shape, expected, file_name or None, None, role))
        return
    try:
        raw = read_exact(store.source, meta_offset, _BLOB_METADATA.size, "blob metadata")
    except FormatError:
        walk.warn(f"{name}: blob metadata at offset {meta_offset} lies past the end of {store.label}")
        walk.add(TensorInfo(name, dtype, shape, expected, store.label, None, role))
        return
    if meta_offset in store.seen:
        # Multi-function programs point several consts at one stored blob: count the data once.
        walk.shared_blob_references += 1
        return
    store.seen.add(meta_offset)
    sentinel, blob_dtype, size, data_offset, _padding = _BLOB_METADATA.unpack(raw)
    if sentinel != BLOB_SENTINEL:
        walk.warn(f"{name}: no blob metadata (sentinel 0xDEADBEEF) at offset {meta_offset} of {store.label}")
        walk.add(TensorInfo(name, dtype, shape, expected, store.label, None, role))
        return
    stored = BLOB_DTYPES.get(blob_dtype, f"BLOB_TYPE_{blob_dtype}")
    if stored != dtype:
        walk.warn(f"{name}: program says {dtype} but the blob stores {stored}")
    if size != expected:
        walk.warn(f"{name}: blob holds {size} bytes but {dtype}{list(shape)} needs {expected}")
    if data_offset + size > store.source.size:
        walk.warn(
            f"{name}: blob data [{data_offset}, {data_offset + size}) lies past the end of {store.label}"
        )
    walk.add(TensorInfo(name, dtype, shape, size, store.label, data_offset, role))


def _open_blob(file_name: str, walk: Walk) -> Blob | None:
    if file_name in walk.blobs:
        return walk.blobs[file_name]
    walk.blobs[file_name] = None
    relative = file_name[len(_WEIGHTS_PREFIX) :] if file_name.startswith(_WEIGHTS_PREFIX) else file_name
    rel = Path(relative)
    if not relative or rel.is_absolute() or ".." in rel.parts:
        walk.warn(f"weight blob path {file_name!r} escapes the model folder: not read")
        return None
    path = walk.model_dir / rel
    label = str(path.relative_to(walk.package)) if walk.package else str(path)
    if not path.is_file():
        walk.warn(f"weight blob {label} is missing: blob tensors have no offsets")
        return None
    store = Blob(open_source(path), label)
    walk.blobs[file_name] = store
    if all(f["path"] != label for f in walk.info.files):
        walk.info.files.append({"path": label, "size_bytes": store.source.size})
    try:
        count, version = _BLOB_HEADER.unpack(read_exact(store.source, 0, _BLOB_HEADER.size, "blob header"))
    except FormatError:
        walk.warn(f"weight blob {label} is shorter than its 64-byte header")
        return store
    if version != 2:
        walk.warn(f"weight blob {label} has storage version {version}, not 2")
    walk.info.metadata.setdefault("weight_blobs", {})[label] = {"blobs": count, "version": version}
    return store
