"""TensorFlow Lite: a flatbuffer whose file identifier at bytes 4..8 is 'TFL3'."""

from __future__ import annotations

import struct
import zipfile
from collections import Counter
from math import prod
from pathlib import Path
from typing import Any

from ..dtypes import UnknownDType, lookup, padded_nbytes
from ..errors import FormatError
from ..model import CERTAIN, Detection, Identification, ModelInfo, TensorInfo, add_warning
from ..probe import FileProbe
from ..source import ByteSource, CachedSource, open_source


def detect_file(probe: FileProbe) -> Detection | None:
    head = probe.head
    if len(head) < 8 or head[4:8] != b"TFL3":
        return None
    root = struct.unpack_from("<I", head)[0]
    evidence = ["flatbuffer file identifier 'TFL3' at offset 4"]
    warnings = []
    if not 8 <= root < probe.size:
        warnings.append(f"flatbuffer root offset {root} lies outside the file: corrupt")
    details: dict[str, object] = {}
    # Checked before zip on purpose: TFLite files with metadata carry an appended zip archive.
    if b"PK\x05\x06" in probe.tail:
        details["appended_zip"] = True
        evidence.append("appended zip archive (TFLite metadata / associated files)")
    return Detection("tflite", CERTAIN, evidence, details, warnings)


# --- inspect --------------------------------------------------------------------------------------

# TensorType enum (schema.fbs; 19-22 are LiteRT's), spelled as the schema names it; each name is an alias
# in the dtypes table, so TFLITE_DTYPES holds canonical names (an import error if one is missing).
_TENSOR_TYPES = (
    "FLOAT32", "FLOAT16", "INT32", "UINT8", "INT64", "STRING", "BOOL", "INT16", "COMPLEX64", "INT8",
    "FLOAT64", "COMPLEX128", "UINT64", "RESOURCE", "VARIANT", "UINT32", "UINT16", "INT4", "BFLOAT16",
    "INT2", "UINT4", "FLOAT8_E4M3FN", "FLOAT8_E5M2",
)  # fmt: skip
TFLITE_DTYPES: dict[int, str] = {n: lookup(name).name for n, name in enumerate(_TENSOR_TYPES)}
# Integer types whose tensors carry quantization scales (the int8/int16/int4 quantized models).
_QUANTIZED_STORAGE = {"I8", "U8", "I16", "I4", "I2", "U4", "I32"}

# BuiltinOperator enum, by number (schema.fbs up to RIGHT_SHIFT = 161); later codes show as BUILTIN_<n>.
# fmt: off
BUILTIN_OPERATORS: tuple[str, ...] = (
    "ADD", "AVERAGE_POOL_2D", "CONCATENATION", "CONV_2D", "DEPTHWISE_CONV_2D", "DEPTH_TO_SPACE",
    "DEQUANTIZE", "EMBEDDING_LOOKUP", "FLOOR", "FULLY_CONNECTED", "HASHTABLE_LOOKUP", "L2_NORMALIZATION",
    "L2_POOL_2D", "LOCAL_RESPONSE_NORMALIZATION", "LOGISTIC", "LSH_PROJECTION", "LSTM", "MAX_POOL_2D",
    "MUL", "RELU", "RELU_N1_TO_1", "RELU6", "RESHAPE", "RESIZE_BILINEAR", "RNN", "SOFTMAX",
    "SPACE_TO_DEPTH", "SVDF", "TANH", "CONCAT_EMBEDDINGS", "SKIP_GRAM", "CALL", "CUSTOM",
    "EMBEDDING_LOOKUP_SPARSE", "PAD", "UNIDIRECTIONAL_SEQUENCE_RNN", "GATHER", "BATCH_TO_SPACE_ND",
    "SPACE_TO_BATCH_ND", "TRANSPOSE", "MEAN", "SUB", "DIV", "SQUEEZE", "UNIDIRECTIONAL_SEQUENCE_LSTM",
    "STRIDED_SLICE", "BIDIRECTIONAL_SEQUENCE_RNN", "EXP", "TOPK_V2", "SPLIT", "LOG_SOFTMAX", "DELEGATE",
    "BIDIRECTIONAL_SEQUENCE_LSTM", "CAST", "PRELU", "MAXIMUM", "ARG_MAX", "MINIMUM", "LESS", "NEG", "PADV2",
    "GREATER", "GREATER_EQUAL", "LESS_EQUAL", "SELECT", "SLICE", "SIN", "TRANSPOSE_CONV", "SPARSE_TO_DENSE",
    "TILE", "EXPAND_DIMS", "EQUAL", "NOT_EQUAL", "LOG", "SUM", "SQRT", "RSQRT", "SHAPE", "POW", "ARG_MIN",
    "FAKE_QUANT", "REDUCE_PROD", "REDUCE_MAX", "PACK", "LOGICAL_OR", "ONE_HOT", "LOGICAL_AND",
    "LOGICAL_NOT", "UNPACK", "REDUCE_MIN", "FLOOR_DIV", "REDUCE_ANY", "SQUARE", "ZEROS_LIKE", "FILL",
    "FLOOR_MOD", "RANGE", "RESIZE_NEAREST_NEIGHBOR", "LEAKY_RELU", "SQUARED_DIFFERENCE", "MIRROR_PAD",
    "ABS", "SPLIT_V", "UNIQUE", "CEIL", "REVERSE_V2", "ADD_N", "GATHER_ND", "COS", "WHERE", "RANK", "ELU",
    "REVERSE_SEQUENCE", "MATRIX_DIAG", "QUANTIZE", "MATRIX_SET_DIAG", "ROUND", "HARD_SWISH", "IF", "WHILE",
    "NON_MAX_SUPPRESSION_V4", "NON_MAX_SUPPRESSION_V5", "SCATTER_ND", "SELECT_V2", "DENSIFY", "SEGMENT_SUM",
    "BATCH_MATMUL", "PLACEHOLDER_FOR_GREATER_OP_CODES", "CUMSUM", "CALL_ONCE", "BROADCAST_TO", "RFFT2D",
    "CONV_3D", "IMAG", "REAL", "COMPLEX_ABS", "HASHTABLE", "HASHTABLE_FIND", "HASHTABLE_IMPORT",
    "HASHTABLE_SIZE", "REDUCE_ALL", "CONV_3D_TRANSPOSE", "VAR_HANDLE", "READ_VARIABLE", "ASSIGN_VARIABLE",
    "BROADCAST_ARGS", "RANDOM_STANDARD_NORMAL", "BUCKETIZE", "RANDOM_UNIFORM", "MULTINOMIAL", "GELU",
    "DYNAMIC_UPDATE_SLICE", "RELU_0_TO_1", "UNSORTED_SEGMENT_PROD", "UNSORTED_SEGMENT_MAX",
    "UNSORTED_SEGMENT_SUM", "ATAN2", "UNSORTED_SEGMENT_MIN", "SIGN", "BITCAST", "BITWISE_XOR",
    "RIGHT_SHIFT",
)
# fmt: on
_CUSTOM = 32
MAX_LISTED = 256
MAX_RANK = 64


class FlatBuffer:
    """Bounds-checked reads of one flatbuffer occupying [base, end) of a byte source.

    Every offset is checked against the buffer's bounds before it is followed and nothing recurses,
    so a hostile file gets a FormatError, never an IndexError or a big allocation. Flatbuffers may
    share objects, so a small file can point at one big vector thousands of times; a read budget
    proportional to the buffer's size turns that into an error instead of a hang.
    """

    def __init__(
        self, source: ByteSource, base: int = 0, end: int | None = None, what: str = "flatbuffer"
    ) -> None:
        self.source = source
        self.base = base
        self.end = source.size if end is None else end
        self.what = what
        self.budget = 4 * max(self.end - base, 0) + (1 << 20)

    def fail(self, message: str) -> FormatError:
        return FormatError(f"{self.what}: {message}", self.source.name)

    def check(self, pos: int, size: int) -> None:
        if pos < self.base or size < 0 or pos + size > self.end:
            raise self.fail(f"reference to [{pos}, {pos + size}) lies outside [{self.base}, {self.end})")

    def read(self, pos: int, size: int) -> bytes:
        self.check(pos, size)
        self.budget -= size + 16  # + per-call cost, so millions of tiny shared reads count too
        if self.budget < 0:
            raise self.fail("the same data is referenced over and over (more reading than its size allows)")
        data = self.source.read_at(pos, size)
        if len(data) != size:
            raise self.fail(f"short read at {pos}: truncated")
        return data

    def unpack(self, fmt: str, pos: int) -> Any:
        return struct.unpack("<" + fmt, self.read(pos, struct.calcsize(fmt)))[0]

    def root(self) -> Table:
        return self.table(self.base + self.unpack("I", self.base))

    def table(self, pos: int) -> Table:
        vtable = pos - self.unpack("i", pos)
        vt_size, obj_size = self.unpack("H", vtable), self.unpack("H", vtable + 2)
        if vt_size < 4 or vt_size % 2 or obj_size < 4:
            raise self.fail(f"vtable at {vtable} has impossible sizes {vt_size}/{obj_size}")
        self.check(vtable, vt_size)  # the whole vtable and table lie inside the buffer
        self.check(pos, obj_size)
        return Table(self, pos, vtable, vt_size, obj_size)


class Table:
    """One flatbuffer table: fields by index through its vtable, absent fields give defaults."""

    def __init__(self, fb: FlatBuffer, pos: int, vtable: int, vt_size: int, obj_size: int) -> None:
        self.fb, self.pos, self.vtable, self.vt_size, self.obj_size = fb, pos, vtable, vt_size, obj_size

    def field(self, index: int, width: int) -> int | None:
        """Absolute position of field `index` (`width` bytes inline), or None when absent."""
        slot = 4 + 2 * index
        if slot + 2 > self.vt_size:
            return None
        offset = self.fb.unpack("H", self.vtable + slot)
        if offset == 0:
            return None
        if offset + width > self.obj_size:
            raise self.fb.fail(f"field {index} of the table at {self.pos} lies outside the table")
        return self.pos + offset

    def scalar(self, index: int, fmt: str, default: int = 0) -> int:
        pos = self.field(index, struct.calcsize(fmt))
        return default if pos is None else int(self.fb.unpack(fmt, pos))

    def _target(self, index: int) -> int | None:
        pos = self.field(index, 4)
        return None if pos is None else pos + self.fb.unpack("I", pos)

    def table(self, index: int) -> Table | None:
        target = self._target(index)
        return None if target is None else self.fb.table(target)

    def vector(self, index: int, width: int) -> tuple[int, int] | None:
        """(position of the first element, element count) of a vector field, bounds-checked."""
        target = self._target(index)
        if target is None:
            return None
        count = self.fb.unpack("I", target)
        if target + 4 + count * width > self.fb.end:
            raise self.fb.fail(f"vector at {target} claims {count} elements, past the end of the buffer")
        return target + 4, count

    def scalars(self, index: int, fmt: str, limit: int = 1 << 16) -> list[int] | None:
        found = self.vector(index, struct.calcsize(fmt))
        if found is None:
            return None
        start, count = found
        if count > limit:
            raise self.fb.fail(f"vector of {count} values where at most {limit} make sense")
        data = self.fb.read(start, count * struct.calcsize(fmt))
        return list(struct.unpack(f"<{count}{fmt}", data))

    def tables(self, index: int) -> list[Table]:
        found = self.vector(index, 4)
        if found is None:
            return []
        start, count = found
        return [self.fb.table(start + 4 * i + self.fb.unpack("I", start + 4 * i)) for i in range(count)]

    def string(self, index: int, limit: int = 4096) -> str | None:
        found = self.vector(index, 1)
        if found is None:
            return None
        start, count = found
        data = self.fb.read(start, min(count, limit))
        return data.decode("utf-8", "replace") + ("…" if count > limit else "")


def _stored_bytes(dtype: str, numel: int) -> int | None:
    """Buffer bytes for `numel` elements: sub-byte types packed, last byte padded; None for strings,
    resources and variants (their buffers hold their own encoding)."""
    try:
        return padded_nbytes(dtype, numel, "byte")
    except (UnknownDType, ValueError):
        return None


def _operator_name(code: Table) -> str:
    # builtin_code (field 3, int32) superseded deprecated_builtin_code (field 0, int8) at 127 operators;
    # TFLite itself takes the larger of the two.
    number = max(code.scalar(0, "b"), code.scalar(3, "i"))
    if number == _CUSTOM:
        return f"CUSTOM:{code.string(1) or '?'}"
    return BUILTIN_OPERATORS[number] if 0 <= number < len(BUILTIN_OPERATORS) else f"BUILTIN_{number}"


def _buffer_span(buffer: Table) -> tuple[int, int] | None:
    """(absolute offset, length) of a buffer's data, inside the flatbuffer or appended after it."""
    data = buffer.vector(0, 1)
    if data is not None and data[1] > 0:
        return data
    # Models over 2 GB keep data outside the flatbuffer: offset from the file start (valid when > 1).
    offset, size = buffer.scalar(1, "Q"), buffer.scalar(2, "Q")
    if offset > 1 and size > 0:
        return offset, size
    return None


def inspect_tflite(path: Path, ident: Identification) -> ModelInfo:
    """Tensors backed by a non-empty buffer, plus schema version, subgraphs, operators and metadata."""
    info = ModelInfo(str(path), "tflite")
    with open_source(path) as raw:
        source = CachedSource(raw)
        if source.size < 8:
            raise FormatError("file too short for a flatbuffer", path)
        fb = FlatBuffer(source, what="TFLite flatbuffer")
        model = fb.root()
        buffers = model.tables(4)
        spans: list[tuple[int, int] | None] = [_buffer_span(b) for b in buffers]
        codes = [_operator_name(c) for c in model.tables(1)]
        meta: dict[str, Any] = {
            "schema_version": model.scalar(0, "I"),
            "description": model.string(3),
            "buffer_count": len(buffers),
            "operator_codes": codes,
        }
        subgraphs: list[dict[str, Any]] = []
        quantized = 0
        for index, subgraph in enumerate(model.tables(2)):
            facts, n_quant = _subgraph(subgraph, index, codes, spans, str(path), info)
            subgraphs.append(facts)
            quantized += n_quant
        meta["subgraph_count"] = len(subgraphs)
        meta["subgraphs"] = subgraphs[:MAX_LISTED]
        if subgraphs:
            meta["inputs"], meta["outputs"] = subgraphs[0]["inputs"], subgraphs[0]["outputs"]
        meta["signature_defs"] = _signatures(model)
        meta["metadata_entries"] = _metadata(model, spans, fb, info.warnings)
        size = source.size
    for tensor in info.tensors:
        if tensor.offset is not None and tensor.offset + tensor.nbytes > size:
            add_warning(
                info.warnings,
                f"tensor {tensor.name!r} data [{tensor.offset}, {tensor.offset + tensor.nbytes}) "
                f"lies past the end of the file ({size} bytes)",
            )
    if quantized:
        meta["quantized_tensor_count"] = quantized
        info.quantization = _quantization(info)
    if ident.details.get("appended_zip"):
        meta["appended_zip"] = True
        meta["associated_files"] = _zip_members(path, info.warnings)
    info.metadata = {k: v for k, v in meta.items() if v is not None}
    info.files.append({"path": str(path), "size_bytes": size})
    return info


def _subgraph(
    subgraph: Table,
    index: int,
    codes: list[str],
    spans: list[tuple[int, int] | None],
    label: str,
    info: ModelInfo,
) -> tuple[dict[str, Any], int]:
    name = subgraph.string(4)
    prefix = "" if index == 0 else f"{name or f'subgraph{index}'}/"
    described: list[dict[str, Any]] = []
    quantized = 0
    for position, tensor in enumerate(subgraph.tables(0)):
        tname = tensor.string(3) or f"tensor{position}"
        type_id = tensor.scalar(1, "b")
        dtype = TFLITE_DTYPES.get(type_id, f"TFLITE_TYPE_{type_id}")
        shape = tuple(tensor.scalars(0, "i", MAX_RANK) or ())
        described.append({"name": tname, "dtype": dtype, "shape": list(shape)})
        buffer = tensor.scalar(2, "I")
        span = spans[buffer] if 0 < buffer < len(spans) else None
        if buffer >= len(spans):
            add_warning(
                info.warnings, f"tensor {tname!r} refers to buffer {buffer}, the model has {len(spans)}"
            )
        if span is None:
            continue
        if any(d < 0 for d in shape):
            add_warning(info.warnings, f"tensor {tname!r} has stored data but a dynamic shape {list(shape)}")
            continue
        offset, length = span
        if type_id not in TFLITE_DTYPES:
            add_warning(info.warnings, f"tensor {tname!r} has TensorType {type_id}, unknown to this reader")
        expected = _stored_bytes(dtype, prod(shape))
        sparse = tensor.field(6, 4) is not None  # sparse tensors store fewer bytes than the shape
        if expected is not None and expected != length and not sparse:
            add_warning(
                info.warnings,
                f"tensor {tname!r} buffer holds {length} bytes but {dtype}{list(shape)} needs {expected}",
            )
        quant = tensor.table(4)
        scales = quant.vector(2, 4) if quant is not None else None
        if scales is not None and scales[1] > 0 and dtype in _QUANTIZED_STORAGE:
            quantized += 1
        role = "buffer" if tensor.scalar(5, "B") else "weight"  # is_variable: state, not weights
        info.tensors.append(TensorInfo(prefix + tname, dtype, shape, length, label, offset, role))
    op_names: Counter[str] = Counter()
    operators = subgraph.tables(3)
    for op in operators:
        code = op.scalar(0, "I")
        op_names[codes[code] if code < len(codes) else f"opcode {code}"] += 1

    def io(field: int) -> list[dict[str, Any]]:
        ids = subgraph.scalars(field, "i") or []
        return [described[i] if 0 <= i < len(described) else {"index": i} for i in ids[:MAX_LISTED]]

    facts = {
        "name": name,
        "tensor_count": len(described),
        "operator_count": len(operators),
        "operators": dict(op_names.most_common()),
        "inputs": io(1),
        "outputs": io(2),
    }
    return facts, quantized


def _signatures(model: Table) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    for sig in model.tables(7)[:MAX_LISTED]:
        out.append(
            {
                "key": sig.string(2),
                "subgraph_index": sig.scalar(4, "I"),
                "inputs": [m.string(0) for m in sig.tables(0)[:MAX_LISTED]],
                "outputs": [m.string(0) for m in sig.tables(1)[:MAX_LISTED]],
            }
        )
    return out


def _metadata(
    model: Table, spans: list[tuple[int, int] | None], fb: FlatBuffer, warnings: list[str]
) -> dict[str, Any]:
    """Model.metadata entries by name; small known ones decoded (runtime version, TFLite metadata)."""
    out: dict[str, Any] = {}
    for entry in model.tables(6)[:MAX_LISTED]:
        name = entry.string(0) or ""
        buffer = entry.scalar(1, "I")
        span = spans[buffer] if buffer < len(spans) else None
        value: Any = {"buffer": buffer, "bytes": span[1] if span else 0}
        try:
            if span and name == "min_runtime_version" and span[1] <= 64:
                value = fb.read(span[0], span[1]).split(b"\0", 1)[0].decode("ascii", "replace")
            elif span and name == "TFLITE_METADATA":
                nested = FlatBuffer(fb.source, span[0], span[0] + span[1], "TFLITE_METADATA")
                value = _model_metadata(nested)
        except FormatError as exc:  # descriptive extras: a bad one is worth a warning, not a failure
            warnings.append(f"metadata {name!r} could not be read: {exc.message}")
        out[name] = value
    return out


def _model_metadata(fb: FlatBuffer) -> dict[str, Any]:
    """The tflite_support ModelMetadata table: its descriptive strings."""
    table = fb.root()
    fields = {0: "name", 1: "description", 2: "version", 4: "author", 5: "license", 7: "min_parser_version"}
    found = {key: table.string(index) for index, key in fields.items()}
    return {k: v for k, v in found.items() if v is not None}


def _quantization(info: ModelInfo) -> dict[str, Any]:
    counts = Counter(t.dtype for t in info.tensors if t.dtype in _QUANTIZED_STORAGE - {"I32"})
    main = counts.most_common(1)[0][0] if counts else None
    bits = lookup(main).bits if main else None
    return {
        "method": "tflite",
        "bits": bits,
        "group_size": None,
        "logical_parameter_count": info.parameter_count,
    }


def _zip_members(path: Path, warnings: list[str]) -> list[str]:
    """Names in the appended zip (associated files such as labels), from its central directory."""
    try:
        with open_source(path) as source, zipfile.ZipFile(source.open_stream()) as zf:
            return zf.namelist()[:MAX_LISTED]
    except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error, NotImplementedError) as exc:
        warnings.append(f"appended zip is unreadable ({exc})")
        return []


INSPECTS = {"tflite": inspect_tflite}
