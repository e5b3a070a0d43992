"""TF1 frozen graphs: a bare GraphDef whose weights are Const nodes, identified and inspected header-only.

Ground truth for tests/fixtures/heavy/tf_frozen_graph.pb is what protobuf read back from the file it
wrote (MANIFEST.json); the other graphs here are encoded by hand to reach what writers never produce.
"""

from __future__ import annotations

import json
import struct
import time
from pathlib import Path
from typing import Any

import numpy as np

from tensorfile.dtypes import lookup
from tensorfile.identification import identify
from tensorfile.inspection import inspect

from .conftest import HEAVY, ReadCounter, cli_json, inspect_mutations
from .pbwire import field as _f
from .pbwire import varint as _v

FIXTURE = HEAVY / "tf_frozen_graph.pb"
RECORD: dict[str, Any] = next(
    f for f in json.loads((HEAVY / "MANIFEST.json").read_text())["fixtures"] if f["path"] == FIXTURE.name
)
FACTS: dict[str, Any] = RECORD["facts"]
DENSE_W = (np.arange(6, dtype=np.float32).reshape(3, 2) - 2.5) / 10.0  # as make_heavy_fixtures writes it


# --- a hand encoder for the GraphDef messages ------------------------------------------------------


def _f32(number: int, value: float) -> bytes:  # one unpacked float (wire type 5), as proto2 writers emit
    return _v(number << 3 | 5) + struct.pack("<f", value)


def _tensor(dtype: int, dims: list[int], *values: bytes) -> bytes:
    shape = b"".join(_f(2, _f(1, d)) for d in dims)
    return _f(1, dtype) + _f(2, shape) + b"".join(values)


def _attr(key: str, value: bytes) -> bytes:
    return _f(5, _f(1, key.encode()) + _f(2, value))


def _node(name: str, op: str, *parts: bytes) -> bytes:
    """A GraphDef.node field holding one NodeDef."""
    return _f(1, _f(1, name.encode()) + _f(2, op.encode()) + b"".join(parts))


def _const(name: str, tensor: bytes) -> bytes:
    return _node(name, "Const", _attr("value", _f(8, tensor)))


DT_FLOAT, DT_INT32, DT_COMPLEX64, DT_INT64, DT_BOOL = 1, 3, 8, 9, 10
DT_FLOAT8_E5M2, DT_INT4, DT_FLOAT4_E2M1FN = 24, 29, 33
VERSIONS = _f(4, _f(1, 2474) + _f(2, 12))


# --- the fixture -----------------------------------------------------------------------------------


def test_fixture_is_identified_as_a_frozen_graph() -> None:
    result = identify(FIXTURE)
    assert (result.format, result.kind) == ("tf-savedmodel", "file")
    assert result.confidence >= 0.9
    assert result.details == {"variant": "frozen-graph", "graph_def_version": FACTS["graph_def_version"]}
    assert result.can_execute_code is True  # graph ops run when the graph does, as for SavedModel
    assert result.evidence[0].startswith(f"protobuf GraphDef: {FACTS['node_count']} NodeDef messages")
    assert not result.warnings


def test_fixture_consts_match_what_protobuf_read_back() -> None:
    info = inspect(FIXTURE)
    assert info.format == "tf-savedmodel" and not info.warnings
    got = [(t.name, t.dtype, list(t.shape), t.nbytes, t.role) for t in info.tensors]
    want = [
        (c["name"], lookup(c["dtype"]).name, c["shape"], c["nbytes"], "constant") for c in FACTS["consts"]
    ]
    assert got == want
    assert (info.tensor_count, info.parameter_count, info.total_bytes) == (
        FACTS["tensor_count"],
        FACTS["parameter_count"],
        FACTS["total_bytes"],
    )
    contents = {c["name"]: c["tensor_content_offset"] for c in FACTS["consts"] if c["tensor_content_offset"]}
    assert {t.name: t.offset for t in info.tensors if t.name in contents} == contents
    assert info.tensor_types == "F32·I32·F16·STRING·I64"


def test_fixture_metadata() -> None:
    meta = inspect(FIXTURE).metadata
    assert meta["variant"] == "frozen-graph"
    assert (meta["graph_def_version"], meta["min_consumer"]) == (
        FACTS["graph_def_version"],
        FACTS["min_consumer"],
    )
    assert (meta["node_count"], meta["function_count"]) == (FACTS["node_count"], FACTS["function_count"])
    assert meta["op_types"] == FACTS["op_types"]
    assert meta["inputs"] == [{"name": "x", "dtype": "F32", "shape": [-1, 3]}]
    assert meta["output_candidates"] == ["y"]
    assert meta["filled_constants"] == 1  # "zeros": one float_val fills a 2x3 shape


def test_fixture_offsets_hold_the_weights() -> None:
    info = inspect(FIXTURE)
    raw = FIXTURE.read_bytes()
    t = {x.name: x for x in info.tensors}
    kernel = np.frombuffer(raw, "<f4", t["dense/kernel"].numel, t["dense/kernel"].offset).reshape(3, 2)
    np.testing.assert_array_equal(kernel, DENSE_W)
    table = np.frombuffer(raw, "<f4", 64, t["table"].offset)
    np.testing.assert_array_equal(table, np.arange(64, dtype=np.float32) / 8)
    bias = np.frombuffer(raw, "<f4", 2, t["dense/bias"].offset)  # one packed float_val run: contiguous
    np.testing.assert_array_equal(bias, [0.5, -0.5])
    assert t["ids"].offset is None  # int_val varints are not the int32 layout


def test_cli_inspect_json() -> None:
    doc = cli_json("inspect", "--json", str(FIXTURE))
    assert doc["tensor_count"] == FACTS["tensor_count"] and doc["metadata"]["variant"] == "frozen-graph"
    first = doc["tensors"][0]
    assert (first["name"], first["dtype"], first["offset"]) == ("dense/kernel", "F32", 124)


# --- hand-encoded graphs -------------------------------------------------------------------------


def test_value_encodings_and_lies(tmp_path: Path) -> None:
    graph = b"".join(
        [
            _node("x", "Placeholder", _attr("dtype", _f(6, DT_FLOAT))),
            _const("unpacked", _tensor(DT_FLOAT, [3], _f32(5, 1.0), _f32(5, 2.0), _f32(5, 3.0))),
            _const("varints", _tensor(DT_INT64, [3], _f(10, _v(300) + _v(-1) + _v(5)))),
            _const("too_many", _tensor(DT_INT32, [2], _f(7, _v(1) + _v(2) + _v(3)))),
            _const("bools", _tensor(DT_BOOL, [3], _f(11, b"\x01\x00\x01"))),
            _const("cplx", _tensor(DT_COMPLEX64, [2], _f(9, struct.pack("<4f", 1, 2, 3, 4)))),
            _const("int4", _tensor(DT_INT4, [5], _f(4, bytes(5)))),  # TF keeps int4 one per byte
            _const("int4_lie", _tensor(DT_INT4, [5], _f(4, bytes(3)))),
            _const("empty", _tensor(DT_FLOAT, [4])),  # no values: TF fills zeros
            _const("fp8", _tensor(DT_FLOAT8_E5M2, [4], _f(18, b"\x3c\x40\x44\x48"))),  # float8_val bytes
            _const("fp4", _tensor(DT_FLOAT4_E2M1FN, [3], _f(4, bytes(3)))),  # one value per byte
            _const("bad_dtype", _tensor(99, [1], _f(4, bytes(4)))),
            _const("negative", _tensor(DT_FLOAT, [-1], _f(4, bytes(4)))),
            _node("no_value", "Const", _attr("dtype", _f(6, DT_FLOAT))),
            _node("w", "VariableV2", _attr("dtype", _f(6, DT_FLOAT))),
            _node("y", "Identity", _f(3, b"x"), _f(3, b"^w")),
            VERSIONS,
        ]
    )
    path = tmp_path / "frozen_graph.pb"
    path.write_bytes(graph)
    result = identify(path)
    assert result.format == "tf-savedmodel" and result.details["variant"] == "frozen-graph"
    assert result.warnings == ["graph has VariableV2 nodes: not frozen, its weights live in a checkpoint"]
    assert result.details["variable_ops"] == ["VariableV2"]
    info = inspect(path)
    got = {t.name: (t.dtype, t.shape, t.nbytes) for t in info.tensors}
    assert got == {
        "unpacked": ("F32", (3,), 12),
        "varints": ("I64", (3,), 24),
        "too_many": ("I32", (2,), 8),
        "bools": ("BOOL", (3,), 3),
        "cplx": ("C64", (2,), 16),
        "int4": ("I4", (5,), 5),
        "int4_lie": ("I4", (5,), 3),
        "empty": ("F32", (4,), 16),
        "fp8": ("F8_E5M2", (4,), 4),
        "fp4": ("F4", (3,), 3),
    }
    offsets = {t.name: t.offset for t in info.tensors}
    assert offsets["unpacked"] is None  # three separate fields: not one contiguous run
    raw = path.read_bytes()
    assert raw[offsets["cplx"] : offsets["cplx"] + 16] == struct.pack("<4f", 1, 2, 3, 4)
    assert raw[offsets["fp8"] : offsets["fp8"] + 4] == b"\x3c\x40\x44\x48"
    assert info.warnings == [
        result.warnings[0],  # identify's, kept first; the walk does not repeat it
        "Const 'too_many' holds 3 values but its shape [2] has 2",
        "Const 'int4_lie' holds 3 bytes of tensor_content, I4[5] needs 5",
        "Const 'bad_dtype' has unknown DataType 99: skipped",
        "Const 'negative' has an unknown, negative or absurd shape: skipped",
        "Const 'no_value' has no tensor value",
    ]
    assert info.metadata["variable_nodes"] == 1 and info.metadata["filled_constants"] == 1
    assert info.metadata["output_candidates"] == ["y"]  # x feeds y; w is a variable, not an output


def test_huge_tensor_content_is_located_not_read(tmp_path: Path, count_file_reads: ReadCounter) -> None:
    """A 4 GiB Const in a sparse file: inspect reads the headers around it, never its bytes."""
    size = 1 << 32

    def open_field(number: int, head: bytes) -> bytes:
        """A LEN field whose payload is `head` followed by the `size` tensor bytes, which are not written."""
        return _v(number << 3 | 2) + _v(len(head) + size) + head

    tensor = open_field(4, b"")  # tensor_content, last in the TensorProto
    tensor = open_field(8, _f(1, DT_FLOAT) + _f(2, _f(2, _f(1, size // 4))) + tensor)  # AttrValue.tensor
    entry = open_field(5, _f(1, b"value") + open_field(2, tensor))  # NodeDef.attr map entry
    node = open_field(1, _f(1, b"huge") + _f(2, b"Const") + entry)  # GraphDef.node
    header = _node("x", "Placeholder") + VERSIONS + node
    path = tmp_path / "huge_frozen.pb"
    with path.open("wb") as fh:
        fh.write(header)
        fh.truncate(len(header) + size)  # sparse: the 4 GiB of zeros cost no disk
    reads = count_file_reads()
    start = time.perf_counter()
    assert identify(path).details["variant"] == "frozen-graph"
    info = inspect(path)
    assert time.perf_counter() - start < 2
    (t,) = info.tensors
    assert (t.name, t.dtype, t.shape, t.nbytes) == ("huge", "F32", (size // 4,), size)
    assert t.offset == len(header) and not info.warnings
    assert max(reads) <= 64 * 1024 and sum(reads) < 1 << 20


def test_savedmodel_without_variables_lists_graph_constants(tmp_path: Path) -> None:
    folder = tmp_path / "consts_only"
    folder.mkdir()
    meta_graph = _f(1, _f(4, b"serve")) + _f(2, FIXTURE.read_bytes())  # MetaInfoDef tags, graph_def
    (folder / "saved_model.pb").write_bytes(_f(1, 1) + _f(2, meta_graph))
    info = inspect(folder)
    assert info.format == "tf-savedmodel" and info.metadata["tags"] == ["serve"]
    assert [t.name for t in info.tensors] == [c["name"] for c in FACTS["consts"]]
    assert {t.role for t in info.tensors} == {"constant"}
    assert info.parameter_count == FACTS["parameter_count"]
    assert info.metadata["graph"] == {
        "node_count": FACTS["node_count"],
        "function_count": FACTS["function_count"],
        "op_types": FACTS["op_types"],
    }
    assert "no variables/ folder: the weights, if any, are the graph's Const nodes" in info.warnings


def test_other_protobufs_are_not_graphs(tmp_path: Path) -> None:
    path = tmp_path / "frozen_graph.pb"
    path.write_bytes(_f(1, b"hello world, not a node") + _f(1, b"again"))
    assert identify(path).format == "unknown"
    path.write_bytes(_f(1, _f(1, b"n") + _f(2, b"bad op name!")))  # op names are identifiers
    assert identify(path).format == "unknown"
    path.write_bytes(_f(1, _f(1, b"n") + _f(2, 7)))  # NodeDef.op is a string, not a varint
    assert identify(path).format == "unknown"


def test_lying_length_inside_a_node_is_a_warning(tmp_path: Path) -> None:
    good = _const("good", _tensor(DT_FLOAT, [1], _f(4, bytes(4))))
    # The node's own length is right, but its attr field claims more bytes than the node holds.
    bad_body = _f(1, b"bad") + _f(2, b"Const") + _v(5 << 3 | 2) + _v(200) + b"\x0a\x05value"
    path = tmp_path / "frozen_graph.pb"
    # Identification samples the first 16 nodes; the damage lies beyond them, as in a big damaged file.
    sampled = b"".join(_node(f"x{i}", "Placeholder") for i in range(16))
    path.write_bytes(sampled + _f(1, bad_body) + good + VERSIONS)
    info = inspect(path)
    assert [t.name for t in info.tensors] == ["good"]
    assert len(info.warnings) == 1 and "could not be read" in info.warnings[0]


def test_truncated_and_flipped_fixture_never_crashes(tmp_path: Path) -> None:
    outcomes = inspect_mutations(FIXTURE.read_bytes(), 7, 120, tmp_path, ".pb")
    assert outcomes["report"] and outcomes["error"]  # both paths taken, and nothing else escaped


def test_variables_past_the_detection_sample_are_reported_by_inspect(tmp_path: Path) -> None:
    sampled = b"".join(_node(f"x{i}", "Placeholder") for i in range(16))
    path = tmp_path / "frozen_graph.pb"
    path.write_bytes(sampled + _node("w", "VarHandleOp") + _node("v", "VariableV2") + VERSIONS)
    assert not identify(path).warnings
    info = inspect(path)
    assert info.metadata["variable_nodes"] == 2
    assert info.warnings == ["2 variable node(s): not frozen, their weights live in a checkpoint"]
