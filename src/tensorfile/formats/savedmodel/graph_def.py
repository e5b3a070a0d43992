"""GraphDef walks: the Const tensors, ops, placeholders and likely outputs of a TF1 frozen graph or of
the graph inside a SavedModel, and the op counts the scanner checks."""

from __future__ import annotations

from collections import Counter
from math import prod
from pathlib import Path
from typing import Any

from ...dtypes import UnknownDType, lookup
from ...errors import FormatError
from ...model import (
    TensorInfo,
    add_warning,
)
from ...protowire import I32, I64, LEN, VARINT, Field, MessageReader, signed64
from ...source import ByteSource, CachedSource, open_source
from .tf_types import map_entry, read_shape, tf_dtype_name, tf_nbytes

# --- GraphDef: TF1 frozen graphs, and the graph inside a SavedModel ----------------------------------
#
# Field numbers from tensorflow/core/framework/*.proto:
#   GraphDef: node 1, library 2, version 3 (deprecated), versions 4, debug_info 5
#   VersionDef: producer 1, min_consumer 2;  FunctionDefLibrary: function 1
#   FunctionDef: signature 1 (OpDef: name 1), node_def 3
#   NodeDef: name 1, op 2, input 3, device 4, attr 5 (map entry: key 1, value 2), debug info 6, type 7
#   AttrValue: list 1, s 2, i 3, f 4, b 5, type 6, shape 7, tensor 8, placeholder 9, func 10
#   TensorProto: dtype 1, tensor_shape 2, version_number 3, tensor_content 4, then one typed field
#     (float_val 5, double_val 6, int_val 7, string_val 8, scomplex_val 9, int64_val 10, bool_val 11,
#     dcomplex_val 12, half_val 13, resource_handle_val 14, variant_val 15, uint32_val 16,
#     uint64_val 17, float8_val 18 — one bytes field, a byte per value)
# The walk records where tensor_content lies and counts typed values from field lengths; it never reads
# weight bytes (packed varints are counted in chunks, not decoded).


_CONST_OPS = frozenset({"Const", "HostConst"})
VARIABLE_OPS = frozenset({"Variable", "VariableV2", "VarHandleOp", "AutoReloadVariable"})


_NOT_OUTPUTS = _CONST_OPS | VARIABLE_OPS | {"NoOp", "Placeholder", "PlaceholderWithDefault", "Assert"}


MAX_DIMS = 64
MAX_LISTED = 256
# Typed value fields: bytes per value for fixed-width packed ones (complex: two values per element).
_FIXED_WIDTH = {5: 4, 6: 8, 9: 4, 12: 8, 18: 1}
_PER_FIELD = (8, 14, 15)  # string_val, resource_handle_val, variant_val: one field per value
_CONTIGUOUS = {(5, "F32"), (6, "F64"), (9, "C64"), (12, "C128")}  # values laid out as the dtype is
_HIGH_BYTES = bytes(range(0x80, 0x100))


def read_versions(reader: MessageReader) -> dict[str, int]:
    out: dict[str, int] = {}
    for f in reader.fields():
        if f.number == 1 and f.wire_type == VARINT:
            out["graph_def_version"] = signed64(f.value)
        elif f.number == 2 and f.wire_type == VARINT:
            out["min_consumer"] = signed64(f.value)
    return out


def _count_varints(source: ByteSource, field: Field, chunk: int = 1 << 16) -> int:
    """Values in a packed varint field: every value ends in one byte below 0x80. Read in chunks, so a
    huge int_val costs a bounded buffer, never a list of Python ints."""
    count, pos = 0, field.offset
    while pos < field.end:
        data = source.read_at(pos, min(chunk, field.end - pos))
        if not data:
            raise FormatError(f"packed field at {field.offset} runs past the end of the file", source.name)
        count += len(data.translate(None, _HIGH_BYTES))
        pos += len(data)
    return count


class GraphWalk:
    """One pass over a GraphDef: Const tensors, op counts, placeholders, likely outputs."""

    def __init__(self, source: ByteSource, label: str) -> None:
        self.source = source
        self.label = label
        self.tensors: list[TensorInfo] = []
        self.warnings: list[str] = []
        self.op_types: Counter[str] = Counter()
        self.inputs: list[dict[str, Any]] = []
        self.node_count = 0
        self.function_count = 0
        self.filled = 0  # Consts whose shape holds more values than are stored (TF repeats the last)
        self._consumed: set[str] = set()
        self._sinks: list[str] = []  # top-level nodes that could be outputs, in graph order

    def warn(self, message: str) -> None:
        add_warning(self.warnings, message)

    def graph(self, reader: MessageReader) -> dict[str, Any]:
        meta: dict[str, Any] = {}
        for f in reader.fields():
            if f.number == 1 and f.wire_type == LEN:
                self.node_count += 1
                self.node(reader.submessage(f), "", top=True)
            elif f.number == 2 and f.wire_type == LEN:
                self.library(reader.submessage(f))
            elif f.number == 4 and f.wire_type == LEN:
                meta.update(read_versions(reader.submessage(f)))
            elif f.number == 3 and f.wire_type == VARINT:  # the deprecated single version number
                meta.setdefault("graph_def_version", signed64(f.value))
        meta["node_count"] = self.node_count
        meta["function_count"] = self.function_count
        meta["op_types"] = dict(self.op_types.most_common())
        meta["inputs"] = self.inputs[:MAX_LISTED]
        meta["output_candidates"] = [n for n in self._sinks if n not in self._consumed][:MAX_LISTED]
        variables = sum(n for op, n in self.op_types.items() if op in VARIABLE_OPS)
        if variables:
            meta["variable_nodes"] = variables
        if self.filled:
            meta["filled_constants"] = self.filled
        return meta

    def library(self, reader: MessageReader) -> None:
        for f in reader.fields():
            if f.number != 1 or f.wire_type != LEN:
                continue
            self.function_count += 1
            try:
                self.function(reader.submessage(f))
            except FormatError as exc:
                self.warn(f"function at offset {f.offset} could not be read: {exc.message}")

    def function(self, reader: MessageReader) -> None:
        """A FunctionDef: its body's Consts are named <function>/<node>."""
        name, nodes = "", []
        for g in reader.fields():
            if g.number == 1 and g.wire_type == LEN:  # OpDef signature: name 1
                signature = reader.submessage(g)
                name = next((signature.string(h) or "" for h in signature.fields() if h.number == 1), "")
            elif g.number == 3 and g.wire_type == LEN:
                nodes.append(g)
        prefix = f"{name or f'function{self.function_count}'}/"
        for g in nodes:
            self.node(reader.submessage(g), prefix, top=False)

    def node(self, reader: MessageReader, prefix: str, top: bool) -> None:
        """One NodeDef; a malformed node is a warning, the walk goes on with the next."""
        try:
            self._node(reader, prefix, top)
        except FormatError as exc:
            self.warn(f"node at offset {reader.start} could not be read: {exc.message}")

    def _node(self, reader: MessageReader, prefix: str, top: bool) -> None:
        name, op = "", ""
        attrs: dict[str, tuple[MessageReader, Field]] = {}
        for f in reader.fields():
            if f.wire_type != LEN:
                continue
            if f.number == 1:
                name = reader.string(f, 4096) or ""
            elif f.number == 2:
                op = reader.string(f, 4096) or ""
            elif f.number == 3 and top:
                source = reader.string(f, 4096) or ""
                self._consumed.add(source.lstrip("^").split(":", 1)[0])
            elif f.number == 5:
                entry = reader.submessage(f)
                key, value = map_entry(entry)
                if key in ("value", "dtype", "shape") and value is not None:
                    attrs[key] = (entry.submessage(value), value)
        self.op_types[op] += 1
        if op in _CONST_OPS:
            tensor = _attr_field(attrs.get("value"), 8)
            if tensor is None:
                self.warn(f"Const {prefix + name!r} has no tensor value")
            else:
                self.tensor(tensor, prefix + name)
        elif top and op in ("Placeholder", "PlaceholderWithDefault") and len(self.inputs) < MAX_LISTED:
            dtype = _attr_field(attrs.get("dtype"), 6)
            shape = _attr_field(attrs.get("shape"), 7)
            dims = read_shape(shape) if isinstance(shape, MessageReader) else None
            self.inputs.append(
                {
                    "name": name,
                    "dtype": tf_dtype_name(dtype) if isinstance(dtype, int) else None,
                    "shape": None if dims is None else list(dims),
                }
            )
        if top and op not in _NOT_OUTPUTS:
            self._sinks.append(name)

    def tensor(self, reader: MessageReader, name: str) -> None:
        """A TensorProto: where tensor_content lies, or how many typed values it holds."""
        dtype_enum = 0
        shape: tuple[int, ...] | None = ()
        content: Field | None = None
        values: dict[int, list[Field]] = {}
        for f in reader.fields():
            if f.number == 1 and f.wire_type == VARINT:
                dtype_enum = f.value
            elif f.number == 2 and f.wire_type == LEN:
                shape = read_shape(reader.submessage(f))
            elif f.number == 4 and f.wire_type == LEN:
                content = f
            elif 5 <= f.number <= 18:
                values.setdefault(f.number, []).append(f)
        dtype = tf_dtype_name(dtype_enum)
        try:
            row = lookup(dtype)
        except UnknownDType:
            self.warn(f"Const {name!r} has unknown DataType {dtype_enum}: skipped")
            return
        if shape is None or len(shape) > MAX_DIMS or any(d < 0 for d in shape):
            self.warn(f"Const {name!r} has an unknown, negative or absurd shape: skipped")
            return
        numel = prod(shape)
        logical = tf_nbytes(row, numel)
        offset: int | None = None
        if content is not None:
            size: int = content.length
            offset = content.offset
            if logical is not None and size != logical:
                self.warn(
                    f"Const {name!r} holds {size} bytes of tensor_content, "
                    f"{dtype}{list(shape)} needs {logical}"
                )
        else:
            count, stored, contiguous = self._values(values, dtype)
            if count > numel:
                self.warn(f"Const {name!r} holds {count} values but its shape {list(shape)} has {numel}")
            elif count < numel:
                self.filled += 1  # TF repeats the last value (zeros when there is none) to fill the shape
            if logical is None:  # strings: what is stored is all there is
                size = stored
            else:
                size = logical
                offset = contiguous if count == numel else None
        self.tensors.append(TensorInfo(name, row.name, shape, size, self.label, offset, "constant"))

    def _values(self, values: dict[int, list[Field]], dtype: str) -> tuple[int, int, int | None]:
        """(value count, payload bytes, offset when the values are one packed run in dtype layout)."""
        count = stored = 0
        offset: int | None = None
        for number, fields in values.items():
            width = _FIXED_WIDTH.get(number)
            n = 0
            for f in fields:
                stored += f.length
                if number in _PER_FIELD or f.wire_type in (I32, I64, VARINT):
                    n += 1
                elif f.wire_type == LEN:
                    n += f.length // width if width else _count_varints(self.source, f)
            count += n // 2 if number in (9, 12) else n
            in_layout = number == 18 or (number, dtype) in _CONTIGUOUS  # float8_val: the FP8 bytes themselves
            if len(fields) == 1 and fields[0].wire_type == LEN and in_layout:
                offset = fields[0].offset
        return count, stored, offset


def _attr_field(attr: tuple[MessageReader, Field] | None, number: int) -> MessageReader | int | None:
    """Field `number` of an AttrValue: a sub-reader for a message, the value for a varint."""
    if attr is None:
        return None
    reader, _ = attr
    for f in reader.fields():
        if f.number == number:
            if f.wire_type == LEN:
                return reader.submessage(f)
            if f.wire_type == VARINT:
                return f.value
    return None


def graph_op_counts(path: Path) -> Counter[str]:
    """How often each op appears in a bare GraphDef or in every meta graph of a saved_model.pb,
    function bodies included (the scanner looks for ops that touch files or call Python)."""
    counts: Counter[str] = Counter()
    with open_source(path) as raw:
        source = CachedSource(raw)
        top = MessageReader(source)
        fields = list(top.fields())
        if any(f.number == 1 and f.wire_type == LEN for f in fields):  # GraphDef: field 1 is a node
            graphs = [top]
        else:  # SavedModel: meta_graphs (2) → graph_def (2)
            graphs = []
            for f in fields:
                if f.number == 2 and f.wire_type == LEN:
                    meta = top.submessage(f)
                    graphs += [
                        meta.submessage(g) for g in meta.fields() if g.number == 2 and g.wire_type == LEN
                    ]
        for graph in graphs:
            walk = GraphWalk(source, path.name)
            walk.graph(graph)
            counts.update(walk.op_types)
    return counts
