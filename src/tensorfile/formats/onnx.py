"""ONNX: a protobuf ModelProto (no magic number), recognised by its field layout."""

from __future__ import annotations

import os
import posixpath
import re
from collections import Counter
from collections.abc import Iterator
from math import prod
from pathlib import Path
from typing import Any

from ..dtypes import UnknownDType, lookup, padded_nbytes
from ..errors import FormatError, TensorfileError
from ..model import CERTAIN, LIKELY, STRONG, Detection, Identification, ModelInfo, TensorInfo, add_warning
from ..probe import DirProbe, FileProbe
from ..protowire import I32, I64, LEN, VARINT, Field, MessageReader, decode_varint, decode_varints, signed64
from ..source import ByteSource, CachedSource, open_source, read_exact

# ModelProto field number -> wire type.
_MODEL_FIELDS = {
    1: VARINT,
    2: LEN,
    3: LEN,
    4: LEN,
    5: VARINT,
    6: LEN,
    7: LEN,
    8: LEN,
    14: LEN,
    20: LEN,
    25: LEN,
}
_GRAPH_INITIALIZER = 5
_TENSOR_NAME, _TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION = 8, 13, 14
MAX_INITIALIZERS_WALKED = 100_000


def detect_file(probe: FileProbe) -> Detection | None:
    fields, clean = probe.proto_fields
    if not fields or not clean:
        return None
    numbers = {f.number for f in fields}
    if 7 not in numbers or any(_MODEL_FIELDS.get(f.number) != f.wire_type for f in fields):
        return None
    reader = MessageReader(probe.source)
    details: dict[str, Any] = {}
    evidence: list[str] = []
    for f in fields:
        if f.number == 1:
            details["ir_version"] = f.value
        elif f.number in (2, 3, 4):
            text = reader.string(f)
            if text is None:
                return None
            details[{2: "producer_name", 3: "producer_version", 4: "domain"}[f.number]] = text
    if not 1 <= details.get("ir_version", 0) <= 64:
        return None
    opsets = _opsets(reader, [f for f in fields if f.number == 8])
    if opsets is None:
        return None
    details["opset_import"] = opsets
    evidence.append(f"protobuf ModelProto: ir_version {details['ir_version']}, graph field present")
    if opsets:
        evidence.append("opset_import " + ", ".join(f"{d or 'ai.onnx'}:{v}" for d, v in opsets.items()))
    if "producer_name" in details:
        evidence.append(f"producer {details['producer_name']} {details.get('producer_version', '')}".rstrip())
    warnings: list[str] = []
    graph = next(f for f in fields if f.number == 7)
    try:
        external = _external_locations(Message(probe.source, graph.offset, graph.end))
    except FormatError as exc:
        external = {}
        warnings.append(f"graph could not be walked: {exc.message}")
    if external:
        details["external_data"] = list(external)
        evidence.append(f"initializers with external data in {len(external)} file(s)")
        for location, names in external.items():
            problem = data_file(probe.path.parent, location)[1]
            if problem:
                add_warning(warnings, external_problem(location, problem, names))
    confidence = CERTAIN if opsets else STRONG
    return Detection("onnx", confidence if "ir_version" in details else LIKELY, evidence, details, warnings)


_MAX_FOLDER_MODELS = 16


def detect_dir(probe: DirProbe) -> Detection | None:
    """A folder holding one ONNX model whose initializers live in data files beside it (model.onnx +
    model.onnx.data, or one file per tensor). The model is found by content among the .onnx files."""
    names = probe.matching(".onnx")
    if not names or len(names) > _MAX_FOLDER_MODELS:
        return None
    models: list[tuple[str, Detection]] = []
    for name in names:
        try:
            file_probe = FileProbe(probe.path / name)
        except (TensorfileError, OSError):
            continue
        try:
            found = detect_file(file_probe)
        except (TensorfileError, OSError, ValueError):
            found = None
        finally:
            file_probe.close()
        if found is not None:
            models.append((name, found))
    if len(models) != 1 or not models[0][1].details.get("external_data"):
        return None  # several models (use -r), or one without data files (a plain model folder)
    name, model = models[0]
    files = model.details["external_data"]
    shown = ", ".join(files[:3]) + ("…" if len(files) > 3 else "")
    return Detection(
        "onnx",
        model.confidence,
        [
            f"{name}: an ONNX model whose initializers live in {len(files)} data file(s): {shown}",
            *model.evidence,
        ],
        {"weights_files": [name], **model.details},
        model.warnings,
    )


def _opsets(reader: MessageReader, fields: list[Field]) -> dict[str, int] | None:
    opsets: dict[str, int] = {}
    for f in fields:
        domain, version = "", None
        for sub in reader.submessage(f).fields(8):
            if sub.number == 1 and sub.wire_type == LEN:
                domain = reader.string(sub) or ""
            elif sub.number == 2 and sub.wire_type == VARINT:
                version = sub.value
            else:
                return None
        if version is None:
            return None
        opsets[domain] = version
    return opsets


def _external_locations(graph: Message) -> dict[str, list[str]]:
    """Files named by initializers stored outside the model (data_location = EXTERNAL), each with the
    names of the initializers it holds."""
    locations: dict[str, list[str]] = {}
    walked = 0
    for number, wire, offset, length in graph.fields():
        if number != _GRAPH_INITIALIZER or wire != LEN:
            continue
        walked += 1
        if walked > MAX_INITIALIZERS_WALKED:
            break
        tensor = graph.sub(offset, length)
        location = None
        external = False
        name = ""
        for t_number, t_wire, t_offset, t_value in tensor.fields():
            if t_number == _TENSOR_DATA_LOCATION and t_wire == VARINT:
                external = t_value == 1
            elif t_number == _TENSOR_NAME and t_wire == LEN:
                name = tensor.text(t_offset, t_value, limit=256)
            elif t_number == _TENSOR_EXTERNAL_DATA and t_wire == LEN:
                entry = tensor.sub(t_offset, t_value)
                kv = {e[0]: entry.text(e[2], e[3]) for e in entry.fields() if e[1] == LEN and e[0] in (1, 2)}
                if kv.get(1) == "location":
                    location = kv.get(2)
        if external and location:
            locations.setdefault(location, []).append(name)
    return locations


def escapes(location: str) -> bool:
    """Whether an external-data location leaves the model's folder, by onnx's own rule (absolute, or
    climbing out with `..` once normalised); Windows separators and drive letters count too, since the
    same model may be loaded there."""
    text = location.replace("\\", "/")
    if text.startswith("/") or re.match(r"[A-Za-z]:", text):
        return True
    normal = posixpath.normpath(text)
    return normal == ".." or normal.startswith("../")


def data_file(folder: Path | Any, location: str) -> tuple[Path | Any | None, str | None]:
    """(the data file, None), or (None, "outside" | "link" | "missing"). A location outside the folder,
    also through a symbolic link ("link"), is never followed: not even its size is asked."""
    if escapes(location):
        return None, "outside"
    target = folder / location
    try:
        if isinstance(target, Path):  # local: resolve links before touching the target
            base = os.path.realpath(folder)
            if os.path.commonpath([base, os.path.realpath(target)]) != base:
                return None, "link"
        return (target, None) if target.is_file() else (None, "missing")
    except (OSError, ValueError):  # an unreadable folder, a NUL byte in the location
        return None, "missing"


_PROBLEMS = {
    "outside": "points outside the model folder, not followed",
    "link": "is a symbolic link to outside the model folder, not followed",
    "missing": "is missing",
}


def external_problem(location: str, problem: str, tensors: list[str]) -> str:
    """One line naming the data file, what is wrong with it and the tensors whose data it holds."""
    names = ", ".join(repr(n) for n in tensors[:3]) + (
        f" and {len(tensors) - 3} more" if len(tensors) > 3 else ""
    )
    what = f"tensor {names}" if len(tensors) == 1 else f"{len(tensors)} tensors ({names})"
    return f"external data {location!r} {_PROBLEMS.get(problem, problem)}: no data for {what}"


# --- inspect --------------------------------------------------------------------------------------


# TensorProto.DataType, spelled as onnx.proto names it; every name is an alias in the dtypes table, so
# ONNX_DTYPES maps each enum number straight to a canonical name (an import error if one is missing).
_ONNX_ENUM = (
    "UNDEFINED", "FLOAT", "UINT8", "INT8", "UINT16", "INT16", "INT32", "INT64", "STRING", "BOOL",
    "FLOAT16", "DOUBLE", "UINT32", "UINT64", "COMPLEX64", "COMPLEX128", "BFLOAT16", "FLOAT8E4M3FN",
    "FLOAT8E4M3FNUZ", "FLOAT8E5M2", "FLOAT8E5M2FNUZ", "UINT4", "INT4", "FLOAT4E2M1", "FLOAT8E8M0",
    "UINT2", "INT2", "FLOAT6E2M3", "FLOAT6E3M2",
)  # fmt: skip
ONNX_DTYPES: dict[int, str] = {n: lookup(name).name for n, name in enumerate(_ONNX_ENUM) if n}
_EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL
# AttributeProto.type values and field numbers used by the walk.
_ATTR_GRAPH, _ATTR_GRAPHS = 5, 10
MAX_GRAPH_DEPTH = 32  # If/Loop/Scan nest subgraphs; deeper than this is hostile, not a real model
MAX_DIMS = 64
MAX_LISTED = 256  # inputs/outputs/metadata entries kept in the report
DOC_CHARS = 500


def stored_bytes(dtype: str, numel: int) -> int | None:
    """Bytes of `numel` elements as ONNX stores them: sub-byte types packed with the last byte padded
    (numpy_helper.from_array: INT4[3] is 2 bytes, FLOAT6E2M3[1] is 1); None for STRING."""
    try:
        return padded_nbytes(dtype, numel, "byte")
    except (UnknownDType, ValueError):
        return None


# --- a fast protobuf field scan -------------------------------------------------------------------

WINDOW = 64 * 1024
# A scanned field: (number, wire type, payload offset, value). For LEN fields the value is the payload
# length, for VARINT the decoded value, for I32/I64 the little-endian integer. Plain tuples, not
# protowire.Field objects: a graph of 100k nodes has a million fields and this walk is the hot path.
Scanned = tuple[int, int, int, int]


def scan_fields(source: ByteSource, start: int, end: int) -> Iterator[Scanned]:
    """The fields of the message in [start, end), read a window at a time; payloads are skipped."""
    if end > source.size:
        raise FormatError("protobuf message runs past the end of the file", source.name)
    buf, base, pos = b"", start, start
    want = 256  # grows with each refill: small messages cost a small read, long ones few reads
    while pos < end:
        i = pos - base
        if i + 32 > len(buf) and base + len(buf) < end:  # a tag and a length always fit after a refill
            buf, base, i = source.read_at(pos, min(want, end - pos)), pos, 0
            want = min(want * 4, WINDOW)
        try:
            key = buf[i]
            if key < 0x80:
                i += 1
            else:
                key, i = decode_varint(buf, i)
            number, wire = key >> 3, key & 7
            if number == 0:
                raise FormatError(f"protobuf field number 0 at offset {pos}", source.name)
            if wire == LEN:
                length = buf[i]
                if length < 0x80:
                    i += 1
                else:
                    length, i = decode_varint(buf, i)
                offset = base + i
                if offset + length > end:
                    raise FormatError(
                        f"protobuf field {number} at offset {pos} claims {length} bytes, "
                        "past the message end",
                        source.name,
                    )
                pos = offset + length
                yield number, LEN, offset, length
            elif wire == VARINT:
                value, i = decode_varint(buf, i)
                pos = base + i
                yield number, VARINT, pos, value
            elif wire in (I32, I64):
                size = 4 if wire == I32 else 8
                offset = base + i
                if offset + size > end or i + size > len(buf):
                    raise FormatError(f"protobuf fixed field past message end at {pos}", source.name)
                pos = offset + size
                yield number, wire, offset, int.from_bytes(buf[i : i + size], "little")
            else:
                raise FormatError(f"protobuf wire type {wire} at offset {pos}", source.name)
        except (IndexError, FormatError) as exc:
            if isinstance(exc, FormatError) and exc.path:
                raise
            raise FormatError(f"protobuf field cut short at offset {pos}", source.name) from None


class Message:
    """A protobuf message in [start, end) of a byte source, walked with `scan_fields`."""

    __slots__ = ("end", "source", "start")

    def __init__(self, source: ByteSource, start: int, end: int) -> None:
        self.source, self.start, self.end = source, start, end

    def fields(self) -> Iterator[Scanned]:
        return scan_fields(self.source, self.start, self.end)

    def sub(self, offset: int, length: int) -> Message:
        return Message(self.source, offset, offset + length)

    def payload(self, offset: int, length: int, limit: int = 1 << 20) -> bytes:
        if length > limit:
            raise FormatError(
                f"protobuf field at {offset} is {length} bytes, over the read limit", self.source.name
            )
        return read_exact(self.source, offset, length, "protobuf field")

    def text(self, offset: int, length: int, limit: int = 1 << 16) -> str:
        """A string field, cut at `limit` bytes (names and docs, never weights)."""
        size = min(length, limit)
        data = self.source.read_at(offset, size)
        if len(data) != size:
            raise FormatError(f"protobuf string at {offset} runs past the end of the file", self.source.name)
        return data.decode("utf-8", "replace") + ("…" if length > limit else "")


# --- the ONNX walk --------------------------------------------------------------------------------


class _OnnxWalk:
    """One pass over a ModelProto, collecting tensors, graph facts and warnings."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self.label = str(path)
        self.tensors: list[TensorInfo] = []
        self.warnings: list[str] = []
        self.op_types: Counter[str] = Counter()
        self.node_count = 0
        self.subgraph_count = 0
        self.external_files: dict[str, tuple[int | None, str | None]] = {}  # location -> (size, problem)
        self.external_tensors: dict[str, list[str]] = {}  # location -> names of the tensors it holds
        self._deep_warned = False

    def warn(self, message: str) -> None:
        add_warning(self.warnings, message)

    # --- graphs and nodes ---

    def graph(self, msg: Message, depth: int, describe: bool = False) -> dict[str, Any]:
        facts: dict[str, Any] = {}
        inputs: list[dict[str, Any]] = []
        outputs: list[dict[str, Any]] = []
        init_names: set[str] = set()
        for number, wire, offset, length in msg.fields():
            if wire != LEN:
                continue
            if number == 1:
                self.node(msg.sub(offset, length), depth)
            elif number == 5:
                tensor = self.tensor(msg.sub(offset, length), "weight")
                if tensor is not None:
                    init_names.add(tensor.name)
            elif number == 15:
                init_names.update(self.sparse(msg.sub(offset, length), "weight"))
            elif describe and number == 2:
                facts["graph_name"] = msg.text(offset, length)
            elif describe and number == 11 and len(inputs) < MAX_LISTED + len(init_names):
                inputs.append(_value_info(msg.sub(offset, length)))
            elif describe and number == 12 and len(outputs) < MAX_LISTED:
                outputs.append(_value_info(msg.sub(offset, length)))
        if describe:
            # IR < 4 lists initializers among the inputs too; the report shows the real inputs.
            facts["inputs"] = [i for i in inputs if i.get("name") not in init_names][:MAX_LISTED]
            facts["outputs"] = outputs
        return facts

    def node(self, msg: Message, depth: int, prefix: str = "") -> None:
        self.node_count += 1
        op_type, domain, output, name = "", "", "", ""
        attributes: list[Message] = []
        for number, wire, offset, length in msg.fields():
            if wire != LEN:
                continue
            if number == 2 and not output:
                output = msg.text(offset, length)
            elif number == 3:
                name = msg.text(offset, length)
            elif number == 4:
                op_type = msg.text(offset, length)
            elif number == 7:
                domain = msg.text(offset, length)
            elif number == 5:
                attributes.append(msg.sub(offset, length))
        standard = domain in ("", "ai.onnx")
        self.op_types[op_type if standard else f"{domain}.{op_type}"] += 1
        constant_name = prefix + (output or name) if standard and op_type == "Constant" else None
        for attribute in attributes:
            self.attribute(attribute, depth, constant_name)

    def attribute(self, msg: Message, depth: int, constant_name: str | None) -> None:
        """Recurse into GRAPH/GRAPHS attributes; for a Constant node, record its value."""
        name = ""
        found: dict[int, list[Scanned]] = {}
        for field in msg.fields():
            number = field[0]
            if number == 1 and field[1] == LEN:
                name = msg.text(field[2], field[3])
            elif number in (2, 3, 4, 5, 6, 7, 8, 9, 11, 22):
                found.setdefault(number, []).append(field)
        for _, wire, offset, length in [*found.get(6, []), *found.get(11, [])]:
            if wire != LEN:
                continue
            if depth >= MAX_GRAPH_DEPTH:
                if not self._deep_warned:
                    self._deep_warned = True
                    self.warn(f"subgraphs nested deeper than {MAX_GRAPH_DEPTH} levels were not walked")
                continue
            self.subgraph_count += 1
            self.graph(msg.sub(offset, length), depth + 1)
        if constant_name is not None:
            self.constant(msg, name, found, constant_name)

    def constant(self, msg: Message, attr: str, found: dict[int, list[Scanned]], name: str) -> None:
        """The value of a Constant node: a TensorProto, a sparse tensor, or a plain attribute value."""
        first = {number: fields[0] for number, fields in found.items()}
        if attr == "value" and 5 in first and first[5][1] == LEN:
            self.tensor(msg.sub(first[5][2], first[5][3]), "constant", name)
        elif attr == "sparse_value" and 22 in first and first[22][1] == LEN:
            self.sparse(msg.sub(first[22][2], first[22][3]), "constant", name)
        elif attr == "value_float" and 2 in first:
            offset = first[2][2] if first[2][1] == I32 else None
            self.tensors.append(TensorInfo(name, "F32", (), 4, self.label, offset, "constant"))
        elif attr == "value_int" and 3 in first:
            self.tensors.append(TensorInfo(name, "I64", (), 8, self.label, None, "constant"))
        elif attr == "value_string" and 4 in first:
            self.tensors.append(TensorInfo(name, "STRING", (), first[4][3], self.label, None, "constant"))
        elif attr == "value_floats":
            n, offset = self._repeated(msg, found.get(7, []), 4)
            self.tensors.append(TensorInfo(name, "F32", (n,), 4 * n, self.label, offset, "constant"))
        elif attr == "value_ints":
            n, _ = self._repeated(msg, found.get(8, []), 0)
            self.tensors.append(TensorInfo(name, "I64", (n,), 8 * n, self.label, None, "constant"))
        elif attr == "value_strings":
            fields = found.get(9, [])
            size = sum(f[3] for f in fields)
            self.tensors.append(
                TensorInfo(name, "STRING", (len(fields),), size, self.label, None, "constant")
            )

    def _repeated(self, msg: Message, fields: list[Scanned], width: int) -> tuple[int, int | None]:
        """(element count, offset when contiguous) of a repeated scalar, packed or not."""
        if len(fields) == 1 and fields[0][1] == LEN:
            _, _, offset, length = fields[0]
            if width:
                return length // width, offset
            return len(decode_varints(msg.payload(offset, length))), None
        return sum(1 for f in fields if f[1] != LEN), None

    # --- tensors ---

    def tensor(self, msg: Message, role: str, name: str | None = None) -> TensorInfo | None:
        dims: list[int] = []
        data_type = 0
        own_name = ""
        raw: Scanned | None = None
        typed: dict[int, list[Scanned]] = {}
        location = 0
        external: dict[str, str] = {}
        for field in msg.fields():
            number, wire, offset, value = field
            if number == 1:
                if wire == VARINT:
                    dims.append(signed64(value))
                elif wire == LEN and value <= 10 * MAX_DIMS:
                    dims.extend(signed64(v) for v in decode_varints(msg.payload(offset, value)))
                else:
                    dims.extend([-1] * (MAX_DIMS + 1))  # too many to be real: reported below
            elif number == 2 and wire == VARINT:
                data_type = value
            elif number == 8 and wire == LEN:
                own_name = msg.text(offset, value)
            elif number == 9 and wire == LEN:
                raw = field
            elif number in (4, 5, 6, 7, 10, 11):
                typed.setdefault(number, []).append(field)
            elif number == 13 and wire == LEN:
                entry = msg.sub(offset, value)
                kv = {e[0]: entry.text(e[2], e[3]) for e in entry.fields() if e[1] == LEN and e[0] in (1, 2)}
                if kv.get(1):
                    external[kv[1]] = kv.get(2, "")
            elif number == 14 and wire == VARINT:
                location = value
        name = name or own_name
        if len(dims) > MAX_DIMS:
            self.warn(f"tensor {name!r} claims more than {MAX_DIMS} dimensions: skipped")
            return None
        if any(d < 0 for d in dims):
            self.warn(f"tensor {name!r} has a negative dimension {dims}: skipped")
            return None
        dtype = ONNX_DTYPES.get(data_type)
        if dtype is None:
            self.warn(f"tensor {name!r} has unknown data_type {data_type}: skipped")
            return None
        shape = tuple(dims)
        numel = prod(shape)
        expected = stored_bytes(dtype, numel)
        file, offset, size = self.label, None, expected
        if location == _EXTERNAL:
            file, offset, size = self._external(name, external, expected)
        elif raw is not None:
            offset, size = raw[2], raw[3]
        elif typed:
            offset, size = self._typed(name, dtype, numel, typed, expected)
        elif numel:
            self.warn(f"tensor {name!r} declares {numel} elements but stores no data")
        if size is not None and expected is not None and size != expected:
            self.warn(f"tensor {name!r} stores {size} bytes but {dtype}{list(shape)} needs {expected}")
        info = TensorInfo(name, dtype, shape, size if size is not None else 0, file, offset, role)
        self.tensors.append(info)
        return info

    def _typed(
        self, name: str, dtype: str, numel: int, typed: dict[int, list[Scanned]], expected: int | None
    ) -> tuple[int | None, int | None]:
        """(offset, bytes) of data held in typed repeated fields (float_data, int64_data, …)."""
        if 6 in typed:  # string_data: one field per element, sizes known without reading them
            return None, sum(f[3] for f in typed[6] if f[1] == LEN)
        if expected is None:
            return None, None
        for number, width in ((4, 4), (10, 8)):  # float_data / double_data: fixed width, checkable
            fields = typed.get(number)
            if fields and len(fields) == 1 and fields[0][1] == LEN:
                _, _, offset, length = fields[0]
                parts = 2 if dtype in ("C64", "C128") else 1
                if length != numel * parts * width:
                    self.warn(
                        f"tensor {name!r} holds {length // width} values but its shape needs {numel * parts}"
                    )
                # Stored contiguously in the dtype's own layout only for F32/C64 and F64/C128.
                if (number, dtype) in ((4, "F32"), (4, "C64"), (10, "F64"), (10, "C128")):
                    return offset, length
        return None, expected

    def _external(
        self, name: str, entries: dict[str, str], expected: int | None
    ) -> tuple[str, int | None, int | None]:
        location = entries.get("location", "")
        if not location:
            self.warn(f"tensor {name!r} is external but names no location")
            return "", None, expected
        try:
            offset = int(entries.get("offset") or 0)
            size = int(entries["length"]) if entries.get("length") else expected
        except ValueError:
            self.warn(f"tensor {name!r} has a non-numeric external offset or length")
            return location, None, expected
        if offset < 0 or (size is not None and size < 0):
            self.warn(f"tensor {name!r} has a negative external offset or length")
            return location, None, expected
        self.external_tensors.setdefault(location, []).append(name)
        file_size = self._external_size(location)
        if file_size is not None and size is not None and offset + size > file_size:
            self.warn(
                f"tensor {name!r} data [{offset}, {offset + size}) lies past the end of {location} "
                f"({file_size} bytes)"
            )
        return location, offset, size

    def _external_size(self, location: str) -> int | None:
        if location not in self.external_files:
            target, problem = data_file(self.path.parent, location)
            try:
                self.external_files[location] = (target.stat().st_size, None) if target else (None, problem)
            except OSError:
                self.external_files[location] = None, "missing"
        return self.external_files[location][0]

    def sparse(self, msg: Message, role: str, name: str | None = None) -> list[str]:
        """A SparseTensorProto stores two tensors, its values and their indices."""
        values: Message | None = None
        indices: Message | None = None
        for number, wire, offset, length in msg.fields():
            if number == 1 and wire == LEN:
                values = msg.sub(offset, length)
            elif number == 2 and wire == LEN:
                indices = msg.sub(offset, length)
        names: list[str] = []
        stored = self.tensor(values, role, name) if values is not None else None
        if stored is not None:
            names.append(stored.name)
            if indices is not None:
                index = self.tensor(indices, role, f"{name or stored.name}.indices")
                if index is not None:
                    names.append(index.name)
        return names


def _value_info(msg: Message) -> dict[str, Any]:
    """A graph input/output: name, element type and shape (numbers or symbolic dim names)."""
    info: dict[str, Any] = {}
    for number, wire, offset, length in msg.fields():
        if number == 1 and wire == LEN:
            info["name"] = msg.text(offset, length)
        elif number == 2 and wire == LEN:
            info.update(_type_proto(msg.sub(offset, length)))
    return info


def _type_proto(msg: Message) -> dict[str, Any]:
    kinds = {4: "sequence", 5: "map", 7: "opaque", 8: "sparse_tensor", 9: "optional"}
    for number, wire, offset, length in msg.fields():
        if number == 1 and wire == LEN:
            out: dict[str, Any] = {}
            tensor = msg.sub(offset, length)
            for t_number, t_wire, t_offset, t_value in tensor.fields():
                if t_number == 1 and t_wire == VARINT:
                    out["dtype"] = ONNX_DTYPES.get(t_value, f"ONNX_TYPE_{t_value}")
                elif t_number == 2 and t_wire == LEN:
                    out["shape"] = _shape(tensor.sub(t_offset, t_value))
            return out
        if number in kinds:
            return {"type": kinds[number]}
    return {}


def _shape(msg: Message) -> list[int | str | None]:
    dims: list[int | str | None] = []
    for number, wire, offset, length in msg.fields():
        if number != 1 or wire != LEN:
            continue
        if len(dims) >= MAX_DIMS:
            break
        value: int | str | None = None
        dim = msg.sub(offset, length)
        for d_number, d_wire, d_offset, d_value in dim.fields():
            if d_number == 1 and d_wire == VARINT:
                value = signed64(d_value)
            elif d_number == 2 and d_wire == LEN:
                value = dim.text(d_offset, d_value, limit=256)
        dims.append(value)
    return dims


def _truncate(text: str | None, limit: int = DOC_CHARS) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[:limit] + "…"


def inspect_onnx(path: Path, ident: Identification) -> ModelInfo:
    """Initializers and Constant-node tensors (subgraphs and functions too), from the protobuf fields."""
    info = ModelInfo(str(path), "onnx")
    with open_source(path) as raw:
        source = CachedSource(raw)
        model = Message(source, 0, source.size)
        walk = _OnnxWalk(path)
        meta: dict[str, Any] = {}
        opsets: dict[str, int] = {}
        props: dict[str, str] = {}
        functions: list[str] = []
        graph_seen = False
        strings = {2: "producer_name", 3: "producer_version", 4: "domain"}
        for number, wire, offset, value in model.fields():
            if number == 1 and wire == VARINT:
                meta["ir_version"] = value
            elif number in strings and wire == LEN:
                meta[strings[number]] = model.text(offset, value)
            elif number == 5 and wire == VARINT:
                meta["model_version"] = signed64(value)
            elif number == 6 and wire == LEN:
                meta["doc_string"] = _truncate(model.text(offset, value, limit=4 * DOC_CHARS))
            elif number == 8 and wire == LEN:
                domain, version = _pair(model.sub(offset, value))
                if isinstance(version, int):
                    opsets[str(domain or "ai.onnx")] = version
            elif number == 14 and wire == LEN and len(props) < MAX_LISTED:
                key, text = _pair(model.sub(offset, value))
                props[str(key)] = _truncate(str(text or "")) or ""
            elif number == 7 and wire == LEN:
                graph_seen = True
                meta.update(walk.graph(model.sub(offset, value), 0, describe=True))
            elif number == 25 and wire == LEN:
                functions.append(_function(walk, model.sub(offset, value)))
        size = source.size
    if not graph_seen:
        raise FormatError("ONNX model has no graph", path)
    meta["opset_import"] = opsets
    if props:
        meta["metadata_props"] = props
    meta["node_count"] = walk.node_count
    meta["op_types"] = dict(walk.op_types.most_common())
    meta["subgraph_count"] = walk.subgraph_count
    if functions:
        meta["functions"] = functions[:MAX_LISTED]
    roles = Counter(t.role for t in walk.tensors)
    meta["initializer_count"] = roles["weight"]
    meta["constant_count"] = roles["constant"]
    info.metadata = meta
    info.tensors = walk.tensors
    info.warnings = walk.warnings
    info.files.append({"path": str(path), "size_bytes": size})
    known = set(ident.details.get("external_data", []))
    for location, (ext_size, problem) in walk.external_files.items():
        if problem is None:
            info.files.append({"path": location, "size_bytes": ext_size or 0})
            continue
        info.files.append({"path": location, "size_bytes": 0, "problem": problem})
        if location not in known:  # the detector named the files of top-level initializers only
            add_warning(info.warnings, external_problem(location, problem, walk.external_tensors[location]))
    return info


def _pair(msg: Message) -> tuple[str | int | None, str | int | None]:
    """Fields 1 and 2 of a small message: OperatorSetIdProto (domain, version) or a key/value entry."""
    found: dict[int, str | int] = {}
    for number, wire, offset, value in msg.fields():
        if number in (1, 2):
            found[number] = msg.text(offset, value, limit=4 * DOC_CHARS) if wire == LEN else value
    return found.get(1), found.get(2)


def _function(walk: _OnnxWalk, msg: Message) -> str:
    """A FunctionProto's name; Constant nodes in its body are recorded as `<function>/<output>`."""
    name = ""
    nodes: list[Message] = []
    for number, wire, offset, length in msg.fields():
        if number == 1 and wire == LEN:
            name = msg.text(offset, length)
        elif number == 7 and wire == LEN:
            nodes.append(msg.sub(offset, length))
    for node in nodes:
        walk.node(node, 0, prefix=f"{name}/")
    return name


INSPECTS = {"onnx": inspect_onnx}
