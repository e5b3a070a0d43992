"""The ONNX graph walk: nodes, subgraphs, initializers, Constant values, sparse and external tensors,
and the graph's inputs and outputs."""

from __future__ import annotations

from collections import Counter
from math import prod
from pathlib import Path
from typing import Any

from ...model import TensorInfo, add_warning
from ...protowire import I32, LEN, VARINT, decode_varints, signed64
from .external_data import data_file
from .field_scan import Message, Scanned
from .onnx_dtypes import ONNX_DTYPES, stored_bytes

EXTERNAL = 1  # TensorProto.DataLocation.EXTERNAL
# AttributeProto.type values and field numbers used by the walk.
_ATTR_GRAPH, _ATTR_GRAPHS = 5, 10
MAX_GRAPH_DEPTH = 32  # If/Loop/Scan nest subgraphs; deeper than this is hostile, not a real model
MAX_DIMS = 64
MAX_LISTED = 256  # inputs/outputs/metadata entries kept in the report


# --- the ONNX walk --------------------------------------------------------------------------------


class OnnxWalk:
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
        if location == EXTERNAL:
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
