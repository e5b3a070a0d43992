"""inspect for ONNX, TFLite and Caffe, checked against the onnx library and the heavy-fixture manifest."""

from __future__ import annotations

import contextlib
import json
import os
import random
import struct
from collections.abc import Callable, Iterator
from math import prod
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tensorfile.dtypes import lookup
from tensorfile.errors import FormatError, TensorfileError
from tensorfile.formats.caffe import inspect_caffe, parse_text_proto
from tensorfile.formats.onnx import inspect_onnx
from tensorfile.formats.tflite import inspect_tflite
from tensorfile.identification import identify
from tensorfile.inspection import inspect
from tensorfile.model import ModelInfo

from .conftest import CORPUS, HEAVY, ReadCounter, cli_json, heavy, run_cli
from .pbwire import field as _field
from .pbwire import varint as _varint

MANIFEST = {f["path"]: f for f in json.loads((HEAVY / "MANIFEST.json").read_text())["fixtures"]}


def _read(path: Path, offset: int, size: int) -> bytes:
    with path.open("rb") as fh:
        fh.seek(offset)
        return fh.read(size)


def _clean_failure(path: Path, inspector: Callable[[Path, Any], ModelInfo], ident: Any) -> None:
    """Bad bytes give a TensorfileError (or a report), never another exception."""
    with contextlib.suppress(TensorfileError):
        inspector(path, ident)


# --- ONNX -----------------------------------------------------------------------------------------


def _onnx_dtype(data_type: int) -> str:
    import onnx

    name = onnx.TensorProto.DataType.Name(data_type)
    return lookup(name).name


Entry = tuple[str, str, tuple[int, ...], str]  # name, dtype, shape, role


def _onnx_truth(model: Any) -> list[Entry]:
    """Initializers and Constant-node tensors, walked with onnx itself (sorted; names may repeat)."""
    import onnx

    truth: list[Entry] = []

    def tensor(t: Any, name: str, role: str) -> None:
        truth.append((name, _onnx_dtype(t.data_type), tuple(t.dims), role))

    def sparse(s: Any, name: str, role: str) -> None:
        tensor(s.values, name, role)
        tensor(s.indices, f"{name}.indices", role)

    def graph(g: Any, prefix: str = "") -> None:
        for t in g.initializer:
            tensor(t, t.name, "weight")
        for s in g.sparse_initializer:
            sparse(s, s.values.name, "weight")
        for node in g.node:
            nodes(node, prefix)

    def nodes(node: Any, prefix: str) -> None:
        for attr in node.attribute:
            if attr.type == onnx.AttributeProto.GRAPH:
                graph(attr.g)
            elif attr.type == onnx.AttributeProto.GRAPHS:
                for sub in attr.graphs:
                    graph(sub)
        if node.op_type != "Constant":
            return
        name = prefix + node.output[0]
        for attr in node.attribute:
            if attr.name == "value":
                tensor(attr.t, name, "constant")
            elif attr.name == "sparse_value":
                sparse(attr.sparse_tensor, name, "constant")
            elif attr.name == "value_floats":
                truth.append((name, "F32", (len(attr.floats),), "constant"))
            elif attr.name == "value_ints":
                truth.append((name, "I64", (len(attr.ints),), "constant"))
            elif attr.name == "value_float":
                truth.append((name, "F32", (), "constant"))
            elif attr.name == "value_int":
                truth.append((name, "I64", (), "constant"))

    graph(model.graph)
    for function in model.functions:
        for node in function.node:
            nodes(node, f"{function.name}/")
    return sorted(truth)


def _entries(info: ModelInfo) -> list[Entry]:
    return sorted((t.name, t.dtype, t.shape, t.role) for t in info.tensors)


def _rich_onnx_model() -> Any:
    """Initializers of several dtypes, If with Constant nodes in both branches (one nested deeper),
    a sparse initializer, a local function with a Constant, and model metadata."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    rng = np.random.default_rng(0)
    inner = helper.make_graph(
        [
            helper.make_node(
                "Constant", [], ["deep_c"], value=numpy_helper.from_array(np.ones((3, 2), np.int32))
            )
        ],
        "inner",
        [],
        [helper.make_tensor_value_info("deep_c", TensorProto.INT32, [3, 2])],
    )
    then_branch = helper.make_graph(
        [
            helper.make_node(
                "Constant", [], ["then_c"], value=numpy_helper.from_array(rng.random((2, 3), np.float32))
            ),
            helper.make_node("If", ["flag"], ["nested_out"], then_branch=inner, else_branch=inner),
        ],
        "then",
        [],
        [helper.make_tensor_value_info("then_c", TensorProto.FLOAT, [2, 3])],
    )
    else_branch = helper.make_graph(
        [helper.make_node("Constant", [], ["else_c"], value_floats=[1.0, 2.0, 3.0, 4.0, 5.0, 6.0])],
        "else",
        [],
        [helper.make_tensor_value_info("else_c", TensorProto.FLOAT, [6])],
    )
    nodes = [
        helper.make_node("If", ["flag"], ["branch_out"], then_branch=then_branch, else_branch=else_branch),
        helper.make_node(
            "Constant", [], ["shape_c"], value=numpy_helper.from_array(np.arange(4, dtype=np.int64))
        ),
        helper.make_node("Constant", [], ["scale_c"], value_float=0.5),
        helper.make_node("Constant", [], ["ints_c"], value_ints=[1, 2, 3]),
        helper.make_node("MatMul", ["X", "W"], ["Y"]),
        helper.make_node("Twice", ["Y"], ["Z"], domain="custom"),
    ]
    initializers = [
        numpy_helper.from_array(rng.random((4, 3), np.float32), "W"),
        numpy_helper.from_array(rng.random((8, 8)).astype(np.float16), "half"),
        numpy_helper.from_array(np.arange(10, dtype=np.int64), "ids"),
        helper.make_tensor("bf", TensorProto.BFLOAT16, [2, 2], [1.0, 2.0, 3.0, 4.0]),
        helper.make_tensor("typed_f32", TensorProto.FLOAT, [3], [1.0, 2.0, 3.0]),
        helper.make_tensor("i4", TensorProto.INT4, [5], [1, 2, 3, 4, 5]),
        numpy_helper.from_array(rng.random((64, 64), np.float32), "big"),
    ]
    sparse = helper.make_sparse_tensor(
        numpy_helper.from_array(np.array([1.5, 2.5], np.float32), "sparse_w"),
        numpy_helper.from_array(np.array([1, 5], np.int64), "sparse_w_idx"),
        [2, 3],
    )
    graph = helper.make_graph(
        nodes,
        "rich",
        [
            helper.make_tensor_value_info("X", TensorProto.FLOAT, ["batch", 4]),
            helper.make_tensor_value_info("flag", TensorProto.BOOL, []),
        ],
        [
            helper.make_tensor_value_info("Z", TensorProto.FLOAT, ["batch", 3]),
            helper.make_tensor_value_info("branch_out", TensorProto.FLOAT, None),
        ],
        initializers,
        sparse_initializer=[sparse],
    )
    twice = helper.make_function(
        "custom",
        "Twice",
        ["a"],
        ["b"],
        [
            helper.make_node(
                "Constant", [], ["two"], value=numpy_helper.from_array(np.array(2.0, np.float32))
            ),
            helper.make_node("Mul", ["a", "two"], ["b"]),
        ],
        [helper.make_opsetid("", 17)],
    )
    model = helper.make_model(
        graph,
        producer_name="tensorfile-tests",
        producer_version="1.2",
        domain="org.tensorfile",
        model_version=7,
        doc_string="d" * 2000,
        opset_imports=[helper.make_opsetid("", 17), helper.make_opsetid("custom", 1)],
        functions=[twice],
    )
    onnx.helper.set_model_props(model, {"author": "tests", "license": "CC0"})
    return model


@pytest.fixture(scope="module")
def rich_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import onnx

    path = tmp_path_factory.mktemp("onnx") / "rich.onnx"
    onnx.save_model(_rich_onnx_model(), path)
    return path


def test_onnx_counts_match_the_onnx_library(rich_onnx: Path) -> None:
    import onnx

    model = onnx.load(rich_onnx, load_external_data=False)
    truth = _onnx_truth(model)
    info = inspect(rich_onnx)
    assert info.format == "onnx"
    assert not info.warnings
    assert _entries(info) == truth
    assert info.tensor_count == len(truth) == 17
    assert info.parameter_count == sum(prod(shape) for _, _, shape, _ in truth)
    names = [t.name for t in info.tensors]
    assert {"then_c", "else_c", "shape_c", "Twice/two", "sparse_w.indices"} <= set(names)
    assert names.count("deep_c") == 2  # one subgraph serves both branches of the nested If
    assert info.parameters_by_dtype["F16"] == 64 and info.parameters_by_dtype["BF16"] == 4
    assert info.metadata["initializer_count"] == 9  # 7 dense + the sparse one's values and indices
    assert info.metadata["constant_count"] == 8


def test_onnx_offsets_point_at_the_tensor_bytes(rich_onnx: Path) -> None:
    import onnx
    from onnx import numpy_helper

    model = onnx.load(rich_onnx)
    arrays = {t.name: numpy_helper.to_array(t) for t in model.graph.initializer}
    tensors = {t.name: t for t in inspect(rich_onnx).tensors}
    for name in ("W", "half", "ids", "big", "typed_f32"):  # raw_data, and packed float_data
        t = tensors[name]
        assert t.offset is not None and t.file == str(rich_onnx)
        raw = np.frombuffer(_read(rich_onnx, t.offset, t.nbytes), arrays[name].dtype).reshape(t.shape)
        np.testing.assert_array_equal(raw, arrays[name])
    assert tensors["bf"].offset is None and tensors["bf"].nbytes == 8  # int32_data: not in BF16 layout
    assert tensors["i4"].nbytes == 3  # five 4-bit values take three bytes
    scale = tensors["scale_c"]
    assert struct.unpack("<f", _read(rich_onnx, scale.offset or 0, 4))[0] == 0.5


def test_onnx_metadata(rich_onnx: Path) -> None:
    meta = inspect(rich_onnx).metadata
    assert meta["ir_version"] >= 8
    assert meta["opset_import"] == {"ai.onnx": 17, "custom": 1}
    assert meta["producer_name"] == "tensorfile-tests" and meta["producer_version"] == "1.2"
    assert meta["domain"] == "org.tensorfile" and meta["model_version"] == 7
    assert meta["doc_string"].startswith("ddd") and len(meta["doc_string"]) < 600
    assert meta["metadata_props"] == {"author": "tests", "license": "CC0"}
    assert meta["graph_name"] == "rich"
    assert meta["inputs"] == [
        {"name": "X", "dtype": "F32", "shape": ["batch", 4]},
        {"name": "flag", "dtype": "BOOL", "shape": []},
    ]
    assert meta["outputs"][0] == {"name": "Z", "dtype": "F32", "shape": ["batch", 3]}
    assert meta["outputs"][1] == {"name": "branch_out", "dtype": "F32"}
    assert meta["op_types"]["Constant"] == 8 and meta["op_types"]["custom.Twice"] == 1
    assert meta["subgraph_count"] == 4
    assert meta["functions"] == ["Twice"]


@pytest.fixture(scope="module")
def external_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import onnx

    folder = tmp_path_factory.mktemp("onnx_ext")
    path = folder / "model.onnx"
    onnx.save_model(
        _rich_onnx_model(), path, save_as_external_data=True, location="weights.bin", size_threshold=0
    )
    return path


def test_onnx_external_data(external_onnx: Path) -> None:
    import onnx
    from onnx import numpy_helper
    from onnx.external_data_helper import ExternalDataInfo, uses_external_data

    header_only = onnx.load(external_onnx, load_external_data=False)
    entries = {t.name: ExternalDataInfo(t) for t in header_only.graph.initializer if uses_external_data(t)}
    assert len(entries) >= 4
    info = inspect(external_onnx)
    assert not info.warnings
    assert _entries(info) == _onnx_truth(header_only)
    arrays = {t.name: numpy_helper.to_array(t) for t in onnx.load(external_onnx).graph.initializer}
    tensors = {t.name: t for t in info.tensors}
    data = external_onnx.parent / "weights.bin"
    for name, entry in entries.items():
        t = tensors[name]
        assert (t.file, t.offset, t.nbytes) == ("weights.bin", entry.offset, entry.length)
        raw = np.frombuffer(_read(data, t.offset or 0, t.nbytes), arrays[name].dtype).reshape(t.shape)
        np.testing.assert_array_equal(raw, arrays[name])
    assert {"path": "weights.bin", "size_bytes": data.stat().st_size} in info.files


def test_onnx_external_offset_past_eof_is_a_warning(external_onnx: Path, tmp_path: Path) -> None:
    import onnx

    model = onnx.load(external_onnx, load_external_data=False)
    target = next(t for t in model.graph.initializer if t.name == "big")
    for entry in target.external_data:
        if entry.key == "offset":
            entry.value = str(10**9)
    (tmp_path / "weights.bin").write_bytes((external_onnx.parent / "weights.bin").read_bytes())
    path = tmp_path / "lying.onnx"
    path.write_bytes(model.SerializeToString())
    info = inspect(path)
    assert info.tensor_count == len(_onnx_truth(model))
    assert any("'big'" in w and "past the end of weights.bin" in w for w in info.warnings)


def test_onnx_missing_external_file_and_lying_raw_data(tmp_path: Path) -> None:
    import onnx
    import onnx.external_data_helper
    from onnx import TensorProto, helper

    short = helper.make_tensor("short", TensorProto.FLOAT, [4], b"\0" * 16, raw=True)
    short.raw_data = b"\0" * 8
    empty = TensorProto(name="empty", data_type=TensorProto.FLOAT, dims=[3])
    gone = helper.make_tensor("gone", TensorProto.FLOAT, [2], b"\0" * 8, raw=True)
    onnx.external_data_helper.set_external_data(gone, "nowhere.bin", offset=0, length=8)
    gone.data_location = TensorProto.EXTERNAL
    gone.ClearField("raw_data")
    graph = helper.make_graph([], "g", [], [], [short, empty, gone])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    path = tmp_path / "lies.onnx"
    onnx.save_model(model, path)
    info = inspect(path)
    text = " ".join(info.warnings)
    assert "'short' stores 8 bytes but F32[4] needs 16" in text
    assert "'empty' declares 3 elements but stores no data" in text
    assert sum("nowhere.bin" in w for w in info.warnings) == 1  # the detector's, not repeated
    gone_info = next(t for t in info.tensors if t.name == "gone")
    assert (gone_info.file, gone_info.offset, gone_info.nbytes) == ("nowhere.bin", 0, 8)


# ONNX folders whose initializers live in data files, written by onnx.save_model (heavy fixtures): one
# data file (model.onnx.data, the small tensors inline), and one file per tensor.

ONNX_EXTERNAL = ["onnx_external_data", "onnx_external_per_tensor"]


def _onnx_external_truth(name: str) -> dict[str, Any]:
    return MANIFEST[name]["facts"]


def _check_external_report(doc: dict[str, Any], folder: Path, truth: dict[str, Any]) -> None:
    """inspect's report (to_dict or the CLI's JSON) against what onnx said, bytes included."""
    import hashlib

    assert doc["format"] == "onnx" and doc["warnings"] == []
    assert doc["tensor_count"] == truth["initializer_count"] == len(truth["initializers"])
    assert doc["parameter_count"] == truth["parameter_count"]
    assert doc["metadata"]["initializer_count"] == truth["initializer_count"]
    tensors = {t["name"]: t for t in doc["tensors"]}
    assert list(tensors) == [t["name"] for t in truth["initializers"]]
    for want in truth["initializers"]:
        t = tensors[want["name"]]
        assert (t["dtype"], t["shape"], t["numel"]) == (
            lookup(want["dtype"]).name,
            want["shape"],
            want["numel"],
        )
        assert t["nbytes"] == want["nbytes"]
        external = want["external"]
        if external is None:  # inline raw_data: in model.onnx itself
            assert Path(t["file"]) == folder / "model.onnx"
            path = folder / "model.onnx"
        else:  # where onnx's ExternalDataInfo says: location, offset, length
            assert (t["file"], t["offset"], t["nbytes"]) == (
                external["location"],
                external["offset"],
                external["length"],
            )
            path = folder / t["file"]
        assert hashlib.sha256(_read(path, t["offset"], t["nbytes"])).hexdigest() == want["sha256"]
    sizes = {f["path"]: f["size_bytes"] for f in doc["files"]}
    assert {k: sizes[k] for k in truth["external_files"]} == truth["external_files"]


@pytest.mark.parametrize("name", ONNX_EXTERNAL)
def test_onnx_external_folder_and_model_identified(name: str) -> None:
    truth = _onnx_external_truth(name)
    folder = heavy(name)
    for path, kind in ((folder, "directory"), (folder / "model.onnx", "file")):
        result = identify(path)
        assert (result.format, result.kind, result.confidence) == ("onnx", kind, 1.0), result.reason
        assert sorted(result.details["external_data"]) == sorted(truth["external_files"])
        assert result.details["ir_version"] == truth["ir_version"] and not result.warnings
    assert identify(folder).details["weights_files"] == ["model.onnx"]
    doc = cli_json("identify", "--json", str(folder))["results"][0]
    assert (doc["format"], doc["kind"]) == ("onnx", "directory")


@pytest.mark.parametrize("name", ONNX_EXTERNAL)
def test_onnx_external_folder_inspect_matches_onnx(name: str) -> None:
    truth = _onnx_external_truth(name)
    folder = heavy(name)
    info = inspect(folder)
    assert info.path == str(folder)
    _check_external_report(info.to_dict(), folder, truth)
    external = sum(t.file in truth["external_files"] for t in info.tensors)
    assert external == truth["external_tensor_count"]
    assert info.tensor_count - external == truth["inline_tensor_count"]
    # The model file alone reads the same tensors from the same places.
    assert [t.to_dict() for t in inspect(folder / "model.onnx").tensors] == [
        t.to_dict() for t in info.tensors
    ]


@pytest.mark.parametrize("name", ONNX_EXTERNAL)
def test_onnx_external_folder_cli_json(name: str) -> None:
    folder = heavy(name)
    _check_external_report(cli_json("inspect", "--json", str(folder)), folder, _onnx_external_truth(name))


def _external_copy(tmp_path: Path, name: str = "onnx_external_data") -> Path:
    import shutil

    folder = tmp_path / "model"
    shutil.copytree(heavy(name), folder)
    return folder


def _snapshot(folder: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(folder.parent.rglob("*")) if p.is_file() and not p.is_symlink()}


def _inspect_cli(folder: Path) -> dict[str, Any]:
    """inspect through the library and the CLI: the same report, exit 0, no traceback, inputs untouched."""
    before = _snapshot(folder)
    info = inspect(folder)
    proc = run_cli("inspect", "--json", str(folder))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["warnings"] == info.warnings and doc["tensor_count"] == info.tensor_count
    assert _snapshot(folder) == before
    return doc


def test_onnx_external_truncated_data_file_names_the_tensor(tmp_path: Path) -> None:
    folder = _external_copy(tmp_path)
    truth = _onnx_external_truth("onnx_external_data")
    where = {t["name"]: t["external"] for t in truth["initializers"] if t["external"]}
    proj = where["proj.weight"]
    cut = proj["offset"] + proj["length"] // 2  # embedding.table still fits, proj.weight does not
    with (folder / "model.onnx.data").open("r+b") as fh:
        fh.truncate(cut)
    doc = _inspect_cli(folder)
    assert doc["tensor_count"] == truth["initializer_count"]
    assert doc["warnings"] == [
        f"tensor 'proj.weight' data [{proj['offset']}, {proj['offset'] + proj['length']}) lies past the end "
        f"of model.onnx.data ({cut} bytes)"
    ]
    assert {"path": "model.onnx.data", "size_bytes": cut} in doc["files"]


def test_onnx_external_missing_data_file_names_the_tensors(tmp_path: Path) -> None:
    folder = _external_copy(tmp_path)
    (folder / "model.onnx.data").unlink()
    result = identify(folder)
    assert (result.format, result.kind) == ("onnx", "directory")
    message = (
        "external data 'model.onnx.data' is missing: no data for 2 tensors ('embedding.table', 'proj.weight')"
    )
    assert result.warnings == [message]
    doc = _inspect_cli(folder)
    assert doc["warnings"] == [message]  # said once, by the detector; inspect does not repeat it
    assert {"path": "model.onnx.data", "size_bytes": 0, "problem": "missing"} in doc["files"]
    assert doc["tensor_count"] == _onnx_external_truth("onnx_external_data")["initializer_count"]


def _relocate(folder: Path, tensor: str, location: str) -> None:
    """Point one initializer's external data somewhere else, editing the copy with onnx itself."""
    import onnx

    model = onnx.load(folder / "model.onnx", load_external_data=False)
    target = next(t for t in model.graph.initializer if t.name == tensor)
    for entry in target.external_data:
        if entry.key == "location":
            entry.value = location
    (folder / "model.onnx").write_bytes(model.SerializeToString())


@pytest.mark.parametrize("how", ["dotdot", "nested-dotdot", "absolute", "backslash", "symlink"])
def test_onnx_external_location_outside_the_folder_is_not_followed(
    tmp_path: Path, how: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tensorfile.scan.scanner import scan_file

    folder = _external_copy(tmp_path, "onnx_external_per_tensor")
    secret = tmp_path / "secret.bin"
    secret.write_bytes(b"s" * 48)
    location = {
        "dotdot": "../secret.bin",
        "nested-dotdot": "sub/../../secret.bin",
        "absolute": str(secret),
        "backslash": "..\\secret.bin",
        "symlink": "dense.weight",
    }[how]
    if how == "symlink":
        (folder / "dense.weight").unlink()
        (folder / "dense.weight").symlink_to(secret)
    else:
        _relocate(folder, "dense.weight", location)
    problem = "is a symbolic link to outside" if how == "symlink" else "points outside"
    warning = f"external data {location!r} {problem} the model folder, not followed: "
    warning += "no data for tensor 'dense.weight'"
    assert identify(folder).warnings == [warning]
    doc = _inspect_cli(folder)
    assert doc["warnings"] == [warning]
    assert {"path": location, "size_bytes": 0, "problem": "link" if how == "symlink" else "outside"} in doc[
        "files"
    ]
    dense = next(t for t in doc["tensors"] if t["name"] == "dense.weight")
    assert (dense["file"], dense["nbytes"]) == (location, 48)  # where the model says it lives
    rules = {f.rule for f in scan_file(folder / "model.onnx").findings}
    assert "onnx-external-path" in rules
    touched: list[str] = []  # every file identify and inspect open or stat (os.lstat of links aside)
    for name in ("open", "stat"):
        real = getattr(os, name)
        monkeypatch.setattr(
            os, name, lambda p, *a, _real=real, **k: touched.append(str(p)) or _real(p, *a, **k)
        )
    identify(folder)
    inspect(folder)
    assert str(folder / "model.onnx") in touched
    assert not [p for p in touched if os.path.realpath(p) == str(secret)]  # never opened, nor its size asked


@pytest.mark.parametrize(
    ("location", "outside"),
    [
        ("model.onnx.data", False),
        ("./weights/a.bin", False),
        ("sub/../a.bin", False),  # onnx accepts it: it stays in the folder
        ("../a.bin", True),
        ("sub/../../a.bin", True),
        ("/etc/passwd", True),
        ("..\\..\\a.bin", True),
        ("C:\\a.bin", True),
        ("\\\\server\\share\\a.bin", True),
    ],
)
def test_onnx_escapes_follows_onnx_rule(location: str, outside: bool) -> None:
    from tensorfile.formats.onnx import escapes

    assert escapes(location) is outside


def test_onnx_external_folder_with_corrupt_model_is_a_clean_error(tmp_path: Path) -> None:
    folder = _external_copy(tmp_path)
    data = (folder / "model.onnx").read_bytes()
    (folder / "model.onnx").write_bytes(data[: len(data) // 3])
    for path in (folder, folder / "model.onnx"):
        proc = run_cli("inspect", str(path))
        assert proc.returncode == 2 and "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and str(path) in proc.stderr


def test_onnx_packed_and_string_sizes_match_numpy_helper(tmp_path: Path) -> None:
    """Sub-byte initializers take what onnx.numpy_helper packs (odd counts round up per tensor), strings
    what their string_data holds; dtypes are the table's names for the onnx enum names."""
    import ml_dtypes
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    arrays = {
        "i4_odd": np.array([1, -2, 3], ml_dtypes.int4),
        "i4_2d": np.arange(15).reshape(5, 3).astype(ml_dtypes.int4),
        "u4": np.arange(7).astype(ml_dtypes.uint4),
        "i2": np.array([1, 0, -1, -2, 1], ml_dtypes.int2),
        "u2": (np.arange(9) % 4).astype(ml_dtypes.uint2),
        "f4": np.array([0.5, 1.0, 6.0], ml_dtypes.float4_e2m1fn),
        "f6a": np.ones(5, ml_dtypes.float6_e2m3fn),
        "f6b": np.ones(1, ml_dtypes.float6_e3m2fn),
        "e8m0": np.ones(4, ml_dtypes.float8_e8m0fnu),
        "words": np.array([b"ab", b"cde", b""], object),
    }
    inits = [numpy_helper.from_array(a, name) for name, a in arrays.items()]
    graph = helper.make_graph(
        [], "packed", [], [helper.make_tensor_value_info("o", TensorProto.FLOAT, [1])], inits
    )
    path = tmp_path / "packed.onnx"
    onnx.save_model(helper.make_model(graph), path)
    info = inspect(path)
    assert not info.warnings
    got = {t.name: t for t in info.tensors}
    for t in inits:
        ours = got[t.name]
        assert ours.dtype == lookup(TensorProto.DataType.Name(t.data_type)).name
        assert ours.shape == tuple(t.dims)
        if t.data_type == TensorProto.STRING:
            assert ours.nbytes == sum(len(v) for v in t.string_data) == 5 and ours.offset is None
        else:
            assert ours.nbytes == len(t.raw_data), t.name
            assert _read(path, ours.offset or 0, ours.nbytes) == t.raw_data
    assert [got[n].nbytes for n in ("i4_odd", "i4_2d", "i2", "f6a", "f6b")] == [2, 8, 2, 4, 1]
    assert {got[n].dtype for n in arrays} == {
        "I4",
        "U4",
        "I2",
        "U2",
        "F4",
        "F6_E2M3",
        "F6_E3M2",
        "F8_E8M0",
        "STRING",
    }


def test_onnx_truncated_file_is_a_clean_error(rich_onnx: Path, tmp_path: Path) -> None:
    ident = identify(rich_onnx)
    data = rich_onnx.read_bytes()
    cut = tmp_path / "cut.onnx"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(TensorfileError):
        inspect(cut)
    with pytest.raises(FormatError, match="past"):
        inspect_onnx(cut, ident)  # even when told it is ONNX
    for size in range(0, len(data), 97):  # every cut point is a clean error or a report
        cut.write_bytes(data[:size])
        _clean_failure(cut, inspect_onnx, ident)


def test_onnx_deeply_nested_subgraphs_are_bounded(tmp_path: Path) -> None:
    # Written by hand: the protobuf library itself refuses to build messages nested this deep.
    tensor = _field(1, 1) + _field(2, 1) + _field(9, struct.pack("<f", 1.0))
    attribute = _field(1, b"value") + _field(20, 4) + _field(5, tensor)
    graph = _field(1, _field(2, b"c") + _field(4, b"Constant") + _field(5, attribute))
    for _ in range(40):
        attribute = _field(1, b"then_branch") + _field(20, 5) + _field(6, graph)
        graph = _field(1, _field(1, b"flag") + _field(2, b"c") + _field(4, b"If") + _field(5, attribute))
    path = tmp_path / "deep.onnx"
    path.write_bytes(_field(1, 8) + _field(7, graph) + _field(8, _field(2, 17)))
    info = inspect(path)
    assert info.format == "onnx"
    assert any("nested deeper than 32" in w for w in info.warnings)
    assert info.tensor_count == 0  # the only Constant is below the limit
    assert info.metadata["subgraph_count"] == 32


def test_onnx_inspect_reads_headers_not_weights(tmp_path: Path, count_file_reads: ReadCounter) -> None:
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    weights = [numpy_helper.from_array(np.zeros((512, 1024), np.float32), f"w{i}") for i in range(4)]
    graph = helper.make_graph(
        [], "big", [], [helper.make_tensor_value_info("o", TensorProto.FLOAT, [1])], weights
    )
    path = tmp_path / "big.onnx"
    onnx.save_model(helper.make_model(graph), path)
    reads = count_file_reads()
    info = inspect(path)
    assert info.tensor_count == 4 and info.total_bytes == 4 * 512 * 1024 * 4
    assert max(reads) <= 64 * 1024
    assert sum(reads) < path.stat().st_size // 8


# --- TFLite ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["dense.tflite", "tflite_with_metadata.tflite"])
def test_tflite_matches_manifest(name: str) -> None:
    path = heavy(name)
    facts = MANIFEST[name]["facts"]
    info = inspect(path)
    assert info.format == "tflite"
    assert not info.warnings
    assert info.parameter_count == facts["parameter_count"] == facts["constant_element_count"]
    # numpy's "float32" and TFLite's "FLOAT32" are both spellings the dtypes table knows.
    declared = {t["name"]: (tuple(t["shape"]), lookup(t["type"]).name) for t in facts["tensors"]}
    # Only the buffer-backed tensors (the weights) count; activations and I/O have empty buffers.
    assert {t.name for t in info.tensors} == {"MatMul", "add"}
    for t in info.tensors:
        assert (t.shape, t.dtype) == declared[t.name]
    meta = info.metadata
    assert meta["schema_version"] == facts["schema_version"]
    assert meta["description"] == facts["description"]
    assert meta["subgraph_count"] == facts["subgraph_count"]
    assert meta["operator_codes"] == facts["operator_codes"]
    assert list(meta["subgraphs"][0]["operators"]) == facts["operators"]
    assert meta["subgraphs"][0]["tensor_count"] == facts["tensor_count"]
    assert meta["buffer_count"] == facts["buffer_count"]
    assert sorted(meta["metadata_entries"]) == sorted(facts["metadata_names"])
    for side in ("inputs", "outputs"):
        expected = [{**io, "dtype": lookup(io["dtype"]).name} for io in facts[side]]
        assert meta[side] == expected
    assert meta["signature_defs"][0]["key"] == "serving_default"
    # The offsets are right if the stored weights reproduce the model's own output.
    weights = {t.name: np.frombuffer(_read(path, t.offset or 0, t.nbytes), np.float32) for t in info.tensors}
    x = np.array(facts["probe"]["x"], np.float32)
    y = x @ weights["MatMul"].reshape(2, 3).T + weights["add"]
    np.testing.assert_allclose(y, facts["probe"]["y"], rtol=1e-6)
    if facts["has_appended_zip"]:
        assert meta["associated_files"] == facts["zip_members"]
        expected_meta = {k: v for k, v in facts["metadata_json"].items() if isinstance(v, str)}
        assert meta["metadata_entries"]["TFLITE_METADATA"] == expected_meta


class _FB:
    """A forward-laid-out flatbuffer writer, enough to build TFLite models the converter cannot."""

    def __init__(self) -> None:
        self.buf = bytearray(8)

    def align(self, n: int) -> None:
        self.buf += bytes(-len(self.buf) % n)

    def emit(self, obj: Any) -> int:
        kind = obj[0]
        if kind == "table":
            return self._table(obj[1])
        if kind == "tables":
            self.align(4)
            pos = len(self.buf)
            self.buf += struct.pack("<I", len(obj[1])) + bytes(4 * len(obj[1]))
            for i, child in enumerate(obj[1]):
                slot = pos + 4 + 4 * i
                struct.pack_into("<I", self.buf, slot, self.emit(child) - slot)
            return pos
        if kind == "string":
            self.align(4)
            pos = len(self.buf)
            raw = obj[1].encode()
            self.buf += struct.pack("<I", len(raw)) + raw + b"\0"
            return pos
        fmt, values = obj[1], obj[2]  # ("vector", fmt, values)
        self.align(16)
        self.buf += bytes(12)  # so that the data after the length is 16-byte aligned
        pos = len(self.buf)
        self.buf += struct.pack(f"<I{len(values)}{fmt}", len(values), *values)
        return pos

    def _table(self, fields: dict[int, Any]) -> int:
        count = max(fields) + 1 if fields else 0
        self.align(8)
        vtable = len(self.buf)
        self.buf += bytes(4 + 2 * count)
        self.align(8)
        table = len(self.buf)
        layout: list[tuple[int, int, Any]] = []  # (field, offset in table, value)
        cursor = 8  # soffset, padded so 8-byte scalars stay aligned
        for index in sorted(fields):
            value = fields[index]
            width = struct.calcsize(value[1]) if value[0] == "scalar" else 4
            cursor += -cursor % width
            layout.append((index, cursor, value))
            cursor += width
        self.buf += bytes(cursor)
        struct.pack_into("<i", self.buf, table, table - vtable)
        struct.pack_into("<HH", self.buf, vtable, 4 + 2 * count, cursor)
        for index, offset, value in layout:
            struct.pack_into("<H", self.buf, vtable + 4 + 2 * index, offset)
            if value[0] == "scalar":
                struct.pack_into("<" + value[1], self.buf, table + offset, value[2])
        for _, offset, value in layout:
            if value[0] != "scalar":
                struct.pack_into("<I", self.buf, table + offset, self.emit(value) - (table + offset))
        return table

    def finish(self, root: Any) -> bytes:
        struct.pack_into("<I", self.buf, 0, self.emit(root))
        self.buf[4:8] = b"TFL3"
        return bytes(self.buf)


def _tensor(name: str, shape: list[int], type_id: int, buffer: int, **extra: Any) -> Any:
    fields: dict[int, Any] = {
        0: ("vector", "i", shape),
        1: ("scalar", "b", type_id),
        2: ("scalar", "I", buffer),
        3: ("string", name),
    }
    if "scale" in extra:
        fields[4] = ("table", {2: ("vector", "f", extra["scale"]), 3: ("vector", "q", [0])})
    if extra.get("variable"):
        fields[5] = ("scalar", "B", 1)
    return ("table", fields)


def _handmade_tflite(path: Path, big_offset: int | None = None) -> dict[str, bytes]:
    """A model whose F16 weight lives after the flatbuffer (Buffer.offset/size, the >2 GB layout)."""
    bias = np.arange(4, dtype=np.float32).tobytes()
    quant = bytes(range(8))
    state = np.zeros(2, np.float32).tobytes()
    big = np.linspace(0, 1, 16, dtype=np.float16).tobytes()
    tensors = [
        _tensor("input", [1, 4], 0, 0),
        _tensor("bias", [4], 0, 1),
        _tensor("big", [4, 4], 1, 2),
        _tensor("q", [8], 9, 3, scale=[0.5]),
        _tensor("state", [2], 0, 4, variable=True),
        _tensor("liar", [100], 0, 5),
    ]
    buffers = [
        ("table", {}),
        ("table", {0: ("vector", "B", list(bias))}),
        ("table", {1: ("scalar", "Q", 0), 2: ("scalar", "Q", len(big))}),  # offset patched below
        ("table", {0: ("vector", "B", list(quant))}),
        ("table", {0: ("vector", "B", list(state))}),
        ("table", {0: ("vector", "B", [0] * 8)}),
        ("table", {0: ("vector", "B", list(b"2.3.0\0"))}),
    ]
    subgraph = (
        "table",
        {0: ("tables", tensors), 1: ("vector", "i", [0]), 2: ("vector", "i", [1]), 4: ("string", "main")},
    )
    model = (
        "table",
        {
            0: ("scalar", "I", 3),
            1: (
                "tables",
                [
                    ("table", {0: ("scalar", "b", 32), 1: ("string", "MyOp")}),
                    ("table", {3: ("scalar", "i", 150)}),
                ],
            ),
            2: ("tables", [subgraph]),
            3: ("string", "handmade"),
            4: ("tables", buffers),
            6: ("tables", [("table", {0: ("string", "min_runtime_version"), 1: ("scalar", "I", 6)})]),
        },
    )
    data = bytearray(_FB().finish(model))
    flat_size = len(data)
    data += bytes(-len(data) % 16)
    offset = len(data) if big_offset is None else big_offset
    data += big
    # Patch buffer 2's offset: find its table by the size value we wrote next to it.
    marker = struct.pack("<QQ", 0, len(big))
    at = data.index(marker, 0, flat_size)
    struct.pack_into("<Q", data, at, offset)
    path.write_bytes(bytes(data))
    return {"bias": bias, "q": quant, "state": state, "big": big}


def test_tflite_offset_size_buffers_quantization_and_roles(tmp_path: Path) -> None:
    path = tmp_path / "handmade.tflite"
    stored = _handmade_tflite(path)
    info = inspect(path)
    tensors = {t.name: t for t in info.tensors}
    assert set(tensors) == {"bias", "big", "q", "state", "liar"}  # "input" has the empty buffer 0
    for name, raw in stored.items():
        t = tensors[name]
        assert _read(path, t.offset or 0, t.nbytes) == raw
    assert (tensors["big"].dtype, tensors["big"].shape) == ("F16", (4, 4))
    assert tensors["big"].offset is not None and tensors["big"].offset > 400  # after the flatbuffer
    assert tensors["q"].dtype == "I8" and tensors["state"].role == "buffer"
    assert info.quantization is not None and info.quantization["bits"] == 8
    assert info.metadata["quantized_tensor_count"] == 1
    assert info.metadata["operator_codes"] == ["CUSTOM:MyOp", "GELU"]
    assert info.metadata["metadata_entries"] == {"min_runtime_version": "2.3.0"}
    assert info.metadata["inputs"] == [{"name": "input", "dtype": "F32", "shape": [1, 4]}]
    assert info.warnings == ["tensor 'liar' buffer holds 8 bytes but F32[100] needs 400"]


def test_tflite_sub_byte_string_and_fp8_tensor_types(tmp_path: Path) -> None:
    """TensorType 17-22 (INT4, BFLOAT16, INT2, UINT4, FLOAT8_E4M3FN, FLOAT8_E5M2) and STRING: canonical
    dtypes, packed sizes rounded up per tensor, strings sized by their buffer."""
    cases = [  # name, shape, TensorType, buffer bytes, dtype
        ("i4", [3], 17, 2, "I4"),
        ("bf", [2], 18, 4, "BF16"),
        ("i2", [5], 19, 2, "I2"),
        ("u4", [2, 3], 20, 3, "U4"),
        ("e4m3", [4], 21, 4, "F8_E4M3"),
        ("e5m2", [1], 22, 1, "F8_E5M2"),
        ("words", [2], 5, 22, "STRING"),
        ("short", [4], 17, 1, "I4"),  # INT4[4] needs 2 bytes: a lie
        ("future", [2], 40, 2, "TFLITE_TYPE_40"),  # a TensorType newer than this reader
    ]
    tensors = [_tensor(name, shape, type_id, i + 1) for i, (name, shape, type_id, _, _) in enumerate(cases)]
    buffers = [("table", {})] + [("table", {0: ("vector", "B", [7] * size)}) for _, _, _, size, _ in cases]
    subgraph = ("table", {0: ("tables", tensors), 1: ("vector", "i", []), 2: ("vector", "i", [])})
    model = ("table", {0: ("scalar", "I", 3), 2: ("tables", [subgraph]), 4: ("tables", buffers)})
    path = tmp_path / "types.tflite"
    path.write_bytes(_FB().finish(model))
    info = inspect(path)
    assert [(t.name, t.dtype, t.nbytes) for t in info.tensors] == [
        (name, dtype, size) for name, _, _, size, dtype in cases
    ]
    assert info.warnings == [
        "tensor 'short' buffer holds 1 bytes but I4[4] needs 2",
        "tensor 'future' has TensorType 40, unknown to this reader",
    ]


def test_tflite_buffer_past_eof_is_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "past.tflite"
    _handmade_tflite(path, big_offset=1 << 40)
    info = inspect(path)
    assert any("'big'" in w and "past the end of the file" in w for w in info.warnings)


def test_tflite_hostile_bytes_are_clean_errors(tmp_path: Path) -> None:
    data = heavy("dense.tflite").read_bytes()
    ident = identify(heavy("dense.tflite"))
    path = tmp_path / "bad.tflite"
    path.write_bytes(data[:100])
    with pytest.raises(FormatError):
        inspect(path)
    root = struct.unpack_from("<I", data)[0]
    hostile = bytearray(data)
    struct.pack_into("<i", hostile, root, -0x7FFFFFF0)  # vtable far outside the file
    path.write_bytes(bytes(hostile))
    with pytest.raises(FormatError, match="outside"):
        inspect(path)
    for size in range(8, len(data), 7):
        path.write_bytes(data[:size])
        _clean_failure(path, inspect_tflite, ident)


def test_tflite_shared_reference_bomb_is_refused(tmp_path: Path) -> None:
    """50k subgraph slots all pointing at one subgraph whose 50k tensor slots all point at one tensor:
    400 KB of file, 2.5 billion tensors if followed naively."""
    n = 50_000
    buf = bytearray(struct.pack("<I", 0) + b"TFL3")
    model_vt = len(buf)
    buf += struct.pack("<5H", 10, 8, 0, 0, 4) + bytes(2)  # Model: only field 2 (subgraphs)
    model = len(buf)
    buf += struct.pack("<i", model - model_vt) + bytes(4)
    subgraphs = len(buf)
    buf += struct.pack("<I", n) + bytes(4 * n)
    sub_vt = len(buf)
    buf += struct.pack("<3H", 6, 8, 4) + bytes(2)  # SubGraph: only field 0 (tensors)
    sub = len(buf)
    buf += struct.pack("<i", sub - sub_vt) + bytes(4)
    tensors = len(buf)
    buf += struct.pack("<I", n) + bytes(4 * n)
    tensor_vt = len(buf)
    buf += struct.pack("<5H", 10, 8, 0, 0, 4) + bytes(2)  # Tensor: only field 2 (buffer)
    tensor = len(buf)
    buf += struct.pack("<iI", tensor - tensor_vt, 0)
    struct.pack_into("<I", buf, 0, model)
    struct.pack_into("<I", buf, model + 4, subgraphs - (model + 4))
    struct.pack_into("<I", buf, sub + 4, tensors - (sub + 4))
    for i in range(n):
        slot = subgraphs + 4 + 4 * i
        struct.pack_into("<I", buf, slot, sub - slot)
        slot = tensors + 4 + 4 * i
        struct.pack_into("<I", buf, slot, tensor - slot)
    path = tmp_path / "bomb.tflite"
    path.write_bytes(bytes(buf))
    with pytest.raises(FormatError, match="over and over"):
        inspect(path)


def _mutations(data: bytes, seed: int, count: int) -> Iterator[bytes]:
    rng = random.Random(seed)
    for _ in range(count):
        mutated = bytearray(data)
        for _ in range(rng.randint(1, 6)):
            mutated[rng.randrange(len(data))] = rng.choice(b'\x00\x01\x7f\x80\xff{}[]:"#<> 09az')
        yield bytes(mutated)


@pytest.mark.parametrize(
    "name",
    [
        "dense.tflite",
        "tflite_with_metadata.tflite",
        "caffe_lenet.caffemodel",
        "caffe_lenet_v1.caffemodel",
        "caffe_lenet_deploy.prototxt",
    ],
)
def test_mutated_fixtures_never_crash(name: str, tmp_path: Path) -> None:
    source = heavy(name)
    ident = identify(source)
    inspector = inspect_tflite if name.endswith(".tflite") else inspect_caffe
    path = tmp_path / name
    for data in _mutations(source.read_bytes(), seed=len(name), count=400):
        path.write_bytes(data)
        _clean_failure(path, inspector, ident)


def test_mutated_onnx_never_crashes(rich_onnx: Path, tmp_path: Path) -> None:
    ident = identify(rich_onnx)
    path = tmp_path / "mutated.onnx"
    for data in _mutations(rich_onnx.read_bytes(), seed=11, count=400):
        path.write_bytes(data)
        _clean_failure(path, inspect_onnx, ident)


# --- Caffe ----------------------------------------------------------------------------------------


def _check_caffe_blobs(path: Path, info: ModelInfo, blobs: list[dict[str, Any]], shape_key: str) -> None:
    assert [t.shape for t in info.tensors] == [tuple(b[shape_key]) for b in blobs]
    assert [t.numel for t in info.tensors] == [b["count"] for b in blobs]
    names = [f"{b['layer']}.{'weight' if b['index'] == 0 else 'bias'}" for b in blobs]
    assert [t.name for t in info.tensors] == names
    for t, blob in zip(info.tensors, blobs, strict=True):
        values = np.frombuffer(_read(path, t.offset or 0, t.nbytes), np.float32)
        np.testing.assert_allclose(values[:3], blob["first_values"], rtol=1e-6)


def test_caffe_layer_layout_matches_manifest() -> None:
    path = heavy("caffe_lenet.caffemodel")
    facts = MANIFEST["caffe_lenet.caffemodel"]["facts"]
    info = inspect(path)
    assert info.format == "caffe" and not info.warnings
    assert info.tensor_count == facts["tensor_count"]
    assert info.parameter_count == facts["parameter_count"]
    assert info.tensor_types == "F32"
    _check_caffe_blobs(path, info, facts["blobs"], "shape")
    meta = info.metadata
    assert meta["net_name"] == facts["net_name"] and meta["layer_count"] == facts["layer_count"]
    assert [layer["name"] for layer in meta["layers"]] == facts["layer_names"]
    assert [layer["type"] for layer in meta["layers"]] == facts["layer_types"]
    assert [layer["name"] for layer in meta["layers"] if layer["blobs"]] == facts["layers_with_blobs"]
    assert meta["inputs"] == [{"name": "data", "shape": facts["input_shape"]}]
    assert meta["prototxt"] == "caffe_lenet_deploy.prototxt"


def test_caffe_v1_layout_matches_manifest() -> None:
    path = heavy("caffe_lenet_v1.caffemodel")
    facts = MANIFEST["caffe_lenet_v1.caffemodel"]["facts"]
    info = inspect(path)
    assert not info.warnings
    assert info.tensor_count == facts["tensor_count"]
    assert info.parameter_count == facts["parameter_count"]
    _check_caffe_blobs(path, info, facts["blobs"], "legacy_nchw")
    meta = info.metadata
    assert meta["net_name"] == facts["net_name"] and meta["layout"] == "layers (V1)"
    assert [layer["name"] for layer in meta["layers"]] == facts["layer_names"]
    assert [layer["type"] for layer in meta["layers"]] == facts["layer_types"]
    assert meta["inputs"] == [{"name": facts["inputs"][0], "shape": facts["input_dim"]}]


def test_caffe_prototxt_alone() -> None:
    path = heavy("caffe_lenet_deploy.prototxt")
    facts = MANIFEST["caffe_lenet_deploy.prototxt"]["facts"]
    info = inspect(path)
    assert info.format == "caffe" and info.tensor_count == 0
    meta = info.metadata
    assert meta["net_name"] == facts["net_name"] and meta["layer_count"] == facts["layer_count"]
    assert [layer["name"] for layer in meta["layers"]] == facts["layer_names"]
    assert [layer["type"] for layer in meta["layers"]] == facts["layer_types"]
    assert meta["inputs"] == [{"name": "data", "shape": facts["input_shape"]}]
    assert meta["weights_file"] == facts["companion_weights"]
    assert any(facts["companion_weights"] in w for w in info.warnings)


def test_caffe_text_parser() -> None:
    text = (
        'name: "n"  # comment\ninput: "data"\ninput_dim: 1 input_dim: [3, 224, 224]\n'
        'layers { name: "c" type: CONVOLUTION }'
    )
    net = parse_text_proto(text)
    assert net == [
        ("name", "n"),
        ("input", "data"),
        ("input_dim", 1),
        ("input_dim", 3),
        ("input_dim", 224),
        ("input_dim", 224),
        ("layers", [("name", "c"), ("type", "CONVOLUTION")]),
    ]
    for bad in ("layer {", "layer { } }", 'name: "unterminated', "{", "layer " + "{ a " * 100 + "}" * 100):
        with pytest.raises(FormatError):
            parse_text_proto(bad)


def test_caffe_v1_prototxt_with_legacy_inputs(tmp_path: Path) -> None:
    path = tmp_path / "deploy.prototxt"
    path.write_text(
        'name: "Old"\ninput: "data"\ninput_dim: 1\ninput_dim: 3\ninput_dim: 8\ninput_dim: 8\n'
        'layers { name: "conv" type: CONVOLUTION bottom: "data" top: "conv" }\n'
    )
    info = inspect(path)
    assert info.tensor_count == 0
    assert info.metadata["inputs"] == [{"name": "data", "shape": [1, 3, 8, 8]}]
    assert info.metadata["layers"] == [{"name": "conv", "type": "CONVOLUTION"}]
    assert info.metadata["layout"] == "layers (V1)"


def _blob(
    shape: list[int] | None, floats: list[float] | None = None, doubles: list[float] | None = None
) -> bytes:
    out = b""
    if shape is not None:
        out += _field(7, _field(1, b"".join(_varint(d) for d in shape)))
    if floats is not None:
        out += _field(5, struct.pack(f"<{len(floats)}f", *floats))
    if doubles is not None:
        out += _field(8, struct.pack(f"<{len(doubles)}d", *doubles))
    return out


def _layer(name: str, kind: str, blobs: list[bytes]) -> bytes:
    return _field(
        100, _field(1, name.encode()) + _field(2, kind.encode()) + b"".join(_field(7, b) for b in blobs)
    )


def test_caffe_blob_names_roles_dtypes_and_lies(tmp_path: Path) -> None:
    net = _field(1, b"Handmade") + b"".join(
        [
            _layer("bn", "BatchNorm", [_blob([3], [0.0] * 3), _blob([3], [1.0] * 3), _blob([1], [1.0])]),
            _layer("emb", "Embed", [_blob([2, 2], doubles=[1.0, 2.0, 3.0, 4.0])]),
            _layer("odd", "MyLayer", [_blob([10], [1.0] * 3), _blob([5]), _blob(None, [1.0, 2.0])]),
        ]
    )
    path = tmp_path / "handmade.caffemodel"
    path.write_bytes(net)
    info = inspect(path)
    got = {t.name: (t.dtype, t.shape, t.role, t.nbytes) for t in info.tensors}
    assert got == {
        "bn.mean": ("F32", (3,), "buffer", 12),
        "bn.variance": ("F32", (3,), "buffer", 12),
        "bn.scale_factor": ("F32", (1,), "buffer", 4),
        "emb.weight": ("F64", (2, 2), "weight", 32),
        "odd.0": ("F32", (10,), "weight", 12),
        "odd.1": ("F32", (5,), "weight", 0),
        "odd.2": ("F32", (2,), "weight", 8),
    }
    emb = next(t for t in info.tensors if t.name == "emb.weight")
    assert np.frombuffer(_read(path, emb.offset or 0, 32), np.float64).tolist() == [1.0, 2.0, 3.0, 4.0]
    text = " ".join(info.warnings)
    assert "'odd.0' stores 3 values but its shape [10] needs 10" in text
    assert "'odd.1' declares 5 elements but stores no data" in text


def test_caffe_truncated_is_a_clean_error(tmp_path: Path) -> None:
    source = heavy("caffe_lenet.caffemodel")
    ident = identify(source)
    data = source.read_bytes()
    path = tmp_path / "cut.caffemodel"
    path.write_bytes(data[: len(data) - 40])
    with pytest.raises(TensorfileError):
        inspect(path)
    with pytest.raises(FormatError):
        inspect_caffe(path, ident)
    for size in range(0, len(data), 5):
        path.write_bytes(data[:size])
        _clean_failure(path, inspect_caffe, ident)


def _corpus_caffe() -> Iterator[dict[str, Any]]:
    manifest = CORPUS / "formats" / "manifest.json"
    if not manifest.is_file():
        return iter(())
    return (e for e in json.loads(manifest.read_text()) if e["format"] == "caffe")


def test_caffe_corpus_lenet() -> None:
    entries = list(_corpus_caffe())
    if not entries:
        pytest.skip("shared corpus not present")
    for entry in entries:
        path = CORPUS / "formats" / entry["path"]
        truth = entry["ground_truth"]
        info = inspect(path)
        assert info.tensor_count == truth["tensor_count"]
        assert info.parameter_count == truth["parameter_count"]
        assert sorted(info.parameters_by_dtype) == truth["dtypes"]
        assert info.metadata["prototxt"] == truth["companion"]
        assert not info.warnings
        assert all(t.offset is not None and t.offset + t.nbytes <= path.stat().st_size for t in info.tensors)
