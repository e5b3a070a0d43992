"""inspect for Keras (.h5, .weights.h5, .keras), Flax msgpack and TensorFlow SavedModel.

Ground truth is what each format's own library said about its file: tests/fixtures/heavy/MANIFEST.json
(keras, tf_keras, tensorflow, flax wrote the files) and the shared corpus manifest. Offsets are
checked by reading the bytes there and comparing with h5py / msgpack / the recorded model outputs.
Hand-made files cover what the libraries rarely write (chunked flax arrays, snappy index blocks,
big-endian HDF5, user blocks) and hostile input.
"""

from __future__ import annotations

import json
import shutil
import struct
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import h5py
import msgpack
import numpy as np
import pytest

from tensorfile.errors import FormatError
from tensorfile.formats import flax, keras, savedmodel
from tensorfile.formats.registry import INSPECTORS
from tensorfile.identification import identify
from tensorfile.inspection import inspect
from tensorfile.model import Identification, ModelInfo
from tensorfile.source import FileSource

from .conftest import CORPUS, ReadCounter, cli_json, heavy, run_cli
from .pbwire import field as _field
from .pbwire import varint as _varint

MANIFEST = {e["path"]: e for e in json.loads(heavy("MANIFEST.json").read_text())["fixtures"]}
CORPUS_MANIFEST = CORPUS / "formats" / "manifest.json"
CORPUS_KERAS = (
    [e for e in json.loads(CORPUS_MANIFEST.read_text()) if e["format"] == "keras-h5"]
    if CORPUS_MANIFEST.exists()
    else []
)
NP_DTYPE = {"float32": "F32", "int64": "I64", "int32": "I32"}


def facts(name: str) -> dict[str, Any]:
    return MANIFEST[name]["facts"]


def table(info: ModelInfo) -> dict[str, tuple[list[int], str]]:
    return {t.name: (list(t.shape), t.dtype) for t in info.tensors}


def expected_table(datasets: dict[str, Any]) -> dict[str, tuple[list[int], str]]:
    return {name: (d["shape"], NP_DTYPE[d["dtype"]]) for name, d in datasets.items()}


def test_every_inspector_is_registered() -> None:
    for fmt in ("keras-h5", "keras-v3", "flax-msgpack", "tf-savedmodel"):
        assert fmt in INSPECTORS


# --- Keras HDF5 ---------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["keras3_legacy_full.h5", "tfkeras2_full.h5"])
def test_keras_full_model_counts_match_keras(name: str) -> None:
    truth = facts(name)
    info = inspect(heavy(name))
    assert info.format == "keras-h5"
    # Model weights only (Keras' count_params); the optimizer is training state, reported apart.
    assert info.tensor_count == truth["model_weight_tensor_count"] == 2
    assert info.parameter_count == truth["keras_count_params"] == truth["parameter_count"] == 8
    assert table(info) == expected_table(truth["model_weight_datasets"])
    assert info.tensor_types == "F32"
    opt = info.checkpoint["optimizer"]
    assert opt["tensor_count"] == truth["optimizer_weight_tensor_count"]
    assert {t["name"]: (t["shape"], t["dtype"]) for t in opt["tensors"]} == expected_table(
        truth["optimizer_weight_datasets"]
    )
    assert all(t["role"] == "optimizer" for t in opt["tensors"])
    assert info.tensor_count + opt["tensor_count"] == truth["tensor_count"]  # every dataset, accounted for
    assert opt["name"] == truth["optimizer_class_name"] and opt["in_tensor_table"] is False
    # Adam's per-weight slots, as each writer names them: tf.keras 2 m/v, Keras 3 momentum/velocity.
    assert opt["slots"] == (["m", "v"] if name.startswith("tfkeras2") else ["momentum", "velocity"])
    assert opt["hyperparameters"]["beta_1"] == 0.9
    assert opt["hyperparameters"]["learning_rate"] == pytest.approx(0.001)
    assert info.checkpoint["counters"] == {"iterations": 1}  # one fit step
    assert info.checkpoint["model"]["tensor_count"] == 2 and info.checkpoint["framework"] == "keras"
    meta = info.metadata
    assert meta["keras_version"] == truth["root_attrs"]["keras_version"]
    assert meta["backend"] == truth["root_attrs"]["backend"]
    assert meta["model_class"] == truth["model_class_name"]
    assert meta["model_name"] == truth["model_name"]
    assert meta["layer_names"] == truth["layer_names"] and meta["layer_count"] == 1
    assert meta["lambda_layers"] == 0 and meta["loss"] == truth["loss"]
    # Keras' own order (weight_names): kernel before bias.
    assert [t.name.rsplit("/", 1)[-1].split(":")[0] for t in info.tensors] == ["kernel", "bias"]


def _assert_offsets_match_h5py(info: ModelInfo, h5_path: Path) -> None:
    """Bytes at each reported offset (model and optimizer tensors) are exactly what h5py reads."""
    raw = Path(info.files[0]["path"]).read_bytes()
    spans = [(t.name, t.offset, t.nbytes) for t in info.tensors]
    optimizer = ((info.checkpoint or {}).get("optimizer") or {}).get("tensors", [])
    spans += [(t["name"], t["offset"], t["nbytes"]) for t in optimizer]
    assert len(spans) > len(info.tensors)
    with h5py.File(h5_path, "r") as h5:
        for name, offset, size in spans:
            data = np.asarray(h5[name][()])
            assert offset is not None and size == data.nbytes, name
            assert raw[offset : offset + size] == data.tobytes(), name


@pytest.mark.parametrize("name", ["keras3_legacy_full.h5", "tfkeras2_full.h5", "keras3_dense.weights.h5"])
def test_keras_h5_offsets_point_at_the_data(name: str) -> None:
    info = inspect(heavy(name))
    _assert_offsets_match_h5py(info, heavy(name))


def test_keras3_weights_h5() -> None:
    truth = facts("keras3_dense.weights.h5")
    info = inspect(heavy("keras3_dense.weights.h5"))
    assert info.metadata["variant"] == "keras3-weights"
    assert info.tensor_count == truth["model_weight_tensor_count"]
    assert info.parameter_count == truth["parameter_count"]
    model = {k: v for k, v in truth["datasets"].items() if k.startswith("layers/")}
    assert table(info) == expected_table(model)
    opt = info.checkpoint["optimizer"]
    assert opt["tensor_count"] == truth["optimizer_weight_tensor_count"]
    assert [t["name"] for t in opt["tensors"]] == [f"optimizer/vars/{i}" for i in range(6)]
    assert info.parameter_count + opt["parameter_count"] == truth["total_array_elements"]
    # Numbered variables carry no slot names: they come from the optimizer's own name ("adam").
    assert opt["name"] == "adam" and opt["slots"] == ["momentum", "velocity"]
    assert info.checkpoint["counters"] == {"iterations": 1}


@pytest.mark.skipif(not CORPUS_KERAS, reason="../shared/corpus is not present on this machine")
@pytest.mark.parametrize("entry", CORPUS_KERAS, ids=[e["path"] for e in CORPUS_KERAS])
def test_keras_corpus_files(entry: dict[str, Any]) -> None:
    truth = entry["ground_truth"]
    info = inspect(CORPUS / "formats" / entry["path"])
    assert info.tensor_count == truth["tensor_count"]
    assert info.parameter_count == truth["parameter_count"]
    assert sorted(info.parameters_by_dtype) == truth["dtypes"]
    assert info.checkpoint["optimizer"]["tensor_count"] == truth["optimizer_dataset_count"]
    assert info.metadata["keras_version"] == truth["hdf5_root_attrs"]["keras_version"]
    assert info.metadata["backend"] == truth["hdf5_root_attrs"]["backend"]
    assert ("model_class" in info.metadata) == truth["has_model_config"]


def _keras2_weights_file(path: Path, **kwargs: Any) -> dict[str, np.ndarray]:
    """The layout of Keras 2 `save_weights(…h5)`: layer_names at the root, weight_names per layer."""
    arrays = {
        "dense/dense/kernel:0": np.arange(12, dtype="<f4").reshape(4, 3),
        "dense/dense/bias:0": np.ones(3, dtype="<f4"),
        "bn/bn/gamma:0": np.ones(3, dtype="<f4"),
        "bn/bn/moving_mean:0": np.zeros(3, dtype="<f4"),
    }
    with h5py.File(path, "w", **kwargs) as h5:
        h5.attrs["layer_names"] = [b"dense", b"bn"]
        h5.attrs["keras_version"] = b"2.15.0"
        h5.attrs["backend"] = b"tensorflow"
        for layer in ("dense", "bn"):
            names = [n.split("/", 1)[1] for n in arrays if n.startswith(layer + "/")]
            h5.create_group(layer).attrs["weight_names"] = [n.encode() for n in names]
        for name, value in arrays.items():
            h5[name] = value
    return arrays


def test_keras2_weights_only_with_user_block(tmp_path: Path) -> None:
    path = tmp_path / "weights.h5"
    arrays = _keras2_weights_file(path, userblock_size=512)
    info = inspect(path)
    assert info.format == "keras-h5" and info.metadata["variant"] == "weights-only"
    assert [t.name for t in info.tensors] == list(arrays)  # layer_names / weight_names order
    assert info.parameter_count == 12 + 3 + 3 + 3 and info.checkpoint is None
    assert {t.name: t.role for t in info.tensors}["bn/bn/moving_mean:0"] == "buffer"
    raw = path.read_bytes()
    for t in info.tensors:  # offsets are absolute: they include the 512-byte user block
        assert t.offset is not None and t.offset >= 512
        assert raw[t.offset : t.offset + t.nbytes] == arrays[t.name].tobytes()


def test_keras_h5_chunked_bfloat16_big_endian_and_strings(tmp_path: Path) -> None:
    path = tmp_path / "odd.weights.h5"
    with h5py.File(path, "w") as h5:
        group = h5.create_group("layers/dense/vars")
        group.create_dataset("0", data=np.ones((64, 8), "<f4"), chunks=(8, 8), compression="gzip")
        bf16 = group.create_dataset("1", data=np.zeros(8, dtype="V2"))
        bf16.attrs["dtype"] = "bfloat16"  # how Keras 3 stores bfloat16 variables
        group["2"] = np.arange(4, dtype=">i4")
        group["3"] = np.array([b"ab", b"cd"])
    info = inspect(path)
    by_name = {t.name: t for t in info.tensors}
    assert by_name["layers/dense/vars/0"].offset is None  # compressed chunks: no contiguous span
    assert by_name["layers/dense/vars/0"].nbytes == 64 * 8 * 4
    assert by_name["layers/dense/vars/1"].dtype == "BF16" and by_name["layers/dense/vars/1"].nbytes == 16
    assert by_name["layers/dense/vars/2"].dtype == "I32"
    assert "layers/dense/vars/3" not in by_name
    assert any("vars/3" in w and "skipped" in w for w in info.warnings)


@pytest.mark.parametrize(
    ("fixture", "keep", "inspector"),
    [
        ("keras3_legacy_full.h5", 3000, keras.inspect_h5),
        ("keras3_dense.keras", 5000, keras.inspect_keras_zip),
    ],
    ids=["h5", "keras-v3"],
)
def test_keras_truncated_is_a_format_error(
    tmp_path: Path, fixture: str, keep: int, inspector: Callable[[Path, Identification], ModelInfo]
) -> None:
    good = heavy(fixture)
    ident = identify(good)
    bad = tmp_path / f"cut{good.suffix}"
    bad.write_bytes(good.read_bytes()[:keep])
    with pytest.raises(FormatError):
        inspector(bad, ident)


def test_keras_h5_that_hung_the_hdf5_library_is_a_clear_error(tmp_path: Path) -> None:
    # One flipped byte in the global heap holding the config strings made HDF5 1.14 spin forever
    # reading an attribute (it needed a forked child with a deadline). tensorfile.hdf5 reads the
    # heap itself, bounded: the damaged attribute is a clear error at once, the rest still reads.
    data = bytearray(heavy("keras3_legacy_full.h5").read_bytes())
    data[0x1010] = 0xA3
    path = tmp_path / "spin.h5"
    path.write_bytes(bytes(data))
    assert identify(path).format == "keras-h5"
    with pytest.raises(FormatError, match="global heap object 15 is missing"):
        keras.inspect_h5(path, identify(heavy("keras3_legacy_full.h5")))


def test_keras_h5_reads_only_metadata(tmp_path: Path, count_file_reads: ReadCounter) -> None:
    path = tmp_path / "big.weights.h5"
    with h5py.File(path, "w") as h5:
        for i in range(4):
            h5[f"layers/dense_{i}/vars/0"] = np.zeros((2048, 1024), "<f4")  # 32 MB in all
    reads = count_file_reads()
    with FileSource(path) as source:  # the payload function in-process, so the count is ours to see
        payload = keras._h5_payload(source.open_stream, str(path), 0, True)
    assert len(payload["tensors"]) == 4 and payload["tensors"][0]["numel"] == 2048 * 1024
    assert sum(reads) < 256 * 1024


# --- .keras zip ------------------------------------------------------------------------------------


def test_keras_v3_zip_counts_and_absolute_offsets(tmp_path: Path) -> None:
    truth = facts("keras3_dense.keras")
    path = heavy("keras3_dense.keras")
    info = inspect(path)
    assert info.format == "keras-v3"
    assert info.tensor_count == truth["model_weight_tensor_count"]
    assert info.parameter_count == truth["parameter_count"]
    model = {k: v for k, v in truth["weights_h5_datasets"].items() if k.startswith("layers/")}
    assert table(info) == expected_table(model)
    assert info.checkpoint["optimizer"]["tensor_count"] == truth["optimizer_weight_tensor_count"]
    assert info.metadata["keras_version"] == truth["keras_version"]
    assert info.metadata["model_class"] == truth["model_class_name"]
    assert info.metadata["model_name"] == truth["model_name"]
    assert info.metadata["compiled"] is truth["compiled"]
    assert "date_saved" in info.metadata and info.metadata["layer_count"] == 1
    # Offsets are in the .keras file itself: the stored member's data start plus the HDF5 offset.
    member = tmp_path / "model.weights.h5"
    with zipfile.ZipFile(path) as zf:
        member.write_bytes(zf.read("model.weights.h5"))
    _assert_offsets_match_h5py(info, member)


def test_keras_v3_deflated_member_has_no_offsets(tmp_path: Path) -> None:
    src = heavy("keras3_dense.keras")
    path = tmp_path / "deflated.keras"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zout:
        for item in zin.infolist():
            zout.writestr(item.filename, zin.read(item.filename))
    info = inspect(path)
    assert info.tensor_count == 2 and info.parameter_count == 8
    assert all(t.offset is None for t in info.tensors)
    assert any("compressed" in w for w in info.warnings)


def test_keras_v3_npz_variant(tmp_path: Path) -> None:
    # Keras' NpzIOStore.close() is np.savez(f, **{path: {"0": array, …}}): one pickled dict per entry.
    import io

    contents = {
        "layers/dense": {"0": np.ones((3, 2), "f4"), "1": np.zeros(2, "f4")},
        "optimizer": {"0": np.array(1, "i8"), "1": np.ones((3, 2), "f4")},
    }
    buffer = io.BytesIO()
    np.savez(buffer, **contents)
    path = tmp_path / "npz.keras"
    with zipfile.ZipFile(heavy("keras3_dense.keras")) as zin, zipfile.ZipFile(path, "w") as zout:
        zout.writestr("metadata.json", zin.read("metadata.json"))
        zout.writestr("config.json", zin.read("config.json"))
        zout.writestr("model.weights.npz", buffer.getvalue())
    info = inspect(path)
    assert info.format == "keras-v3"
    assert table(info) == {"layers/dense/0": ([3, 2], "F32"), "layers/dense/1": ([2], "F32")}
    assert info.checkpoint["optimizer"]["tensor_count"] == 2
    assert info.checkpoint["optimizer"]["parameter_count"] == 7


# --- Flax msgpack ----------------------------------------------------------------------------------


def _decoded_arrays(path: Path) -> dict[str, tuple[list[int], str, bytes]]:
    """What the msgpack library itself finds: ext-1 payloads decoded as flax does."""
    out: dict[str, tuple[list[int], str, bytes]] = {}

    def walk(value: Any, prefix: str) -> None:
        if isinstance(value, dict):
            for k, v in value.items():
                walk(v, f"{prefix}/{k}" if prefix else str(k))
        elif isinstance(value, msgpack.ExtType) and value.code == 1:
            shape, dtype, data = msgpack.unpackb(value.data)
            out[prefix] = (list(shape), dtype, data)

    walk(msgpack.unpackb(path.read_bytes(), strict_map_key=False), "")
    return out


@pytest.mark.parametrize("name", ["flax_params.msgpack", "flax_trainstate.msgpack"])
def test_flax_matches_msgpack_and_manifest(name: str) -> None:
    truth = facts(name)
    path = heavy(name)
    info = inspect(path)
    assert info.format == "flax-msgpack"
    arrays = {k: v for k, v in truth["leaves"].items() if v["kind"] == "ndarray"}
    assert info.tensor_count == truth["tensor_count"] == len(arrays)
    assert table(info) == {k: (v["shape"], NP_DTYPE[v["dtype"]]) for k, v in arrays.items()}
    assert info.parameters_by_role["weight"] == truth["parameter_count"]
    raw = path.read_bytes()
    decoded = _decoded_arrays(path)
    for t in info.tensors:
        assert raw[t.offset : t.offset + t.nbytes] == decoded[t.name][2], t.name


def test_flax_offsets_reproduce_the_model_output() -> None:
    truth = facts("flax_params.msgpack")
    info = inspect(heavy("flax_params.msgpack"))
    raw = heavy("flax_params.msgpack").read_bytes()
    tensors = {t.name: t for t in info.tensors}

    def array(name: str) -> np.ndarray:
        t = tensors[name]
        return np.frombuffer(raw, "<f4", t.numel, t.offset).reshape(t.shape)

    y = np.array(truth["probe"]["x"], "f4") @ array("params/dense/kernel") + array("params/dense/bias")
    np.testing.assert_allclose(y, truth["probe"]["y"], rtol=1e-6)


def test_flax_train_state_roles_and_step() -> None:
    truth = facts("flax_trainstate.msgpack")
    info = inspect(heavy("flax_trainstate.msgpack"))
    assert info.metadata["kind"] == "train-state"
    assert info.parameter_count == truth["total_array_elements"]  # every stored array counts
    assert info.parameters_by_role == {"weight": 8, "optimizer": 17}
    assert {t.name for t in info.tensors if t.role == "optimizer"} == {
        k for k in truth["leaves"] if k.startswith("opt_state/") and truth["leaves"][k]["kind"] == "ndarray"
    }
    ckpt = info.checkpoint
    assert ckpt["kind"] == "flax-train-state" and ckpt["framework"] == "flax"
    assert ckpt["counters"] == {"step": truth["step"]}
    assert ckpt["model"]["tensor_count"] == 2 and ckpt["model"]["parameter_count"] == truth["parameter_count"]
    opt = ckpt["optimizer"]
    assert opt["tensor_count"] == 5 and opt["parameter_count"] == 17
    assert opt["slots"] == ["count", "mu", "nu"] and opt["in_tensor_table"] is True  # optax adam
    assert info.parameters_by_dtype == {"F32": 24, "I32": 1}


def _flax_array(arr: np.ndarray, code: int = 1) -> msgpack.ExtType:
    # flax.serialization._ndarray_to_bytes
    return msgpack.ExtType(
        code, msgpack.packb((arr.shape, arr.dtype.name, arr.tobytes("C")), use_bin_type=True)
    )


def _flax_chunked(arr: np.ndarray, chunk: int) -> dict[str, Any]:
    # flax.serialization._chunk
    flat = arr.reshape(-1)
    chunks = [flat[i : i + chunk] for i in range(0, flat.size, chunk)]
    return {
        "__msgpack_chunked_array__": True,
        "shape": {str(i): d for i, d in enumerate(arr.shape)},
        "chunks": {str(i): _flax_array(c) for i, c in enumerate(chunks)},
    }


def _write(path: Path, tree: Any) -> Path:
    path.write_bytes(msgpack.packb(tree, use_bin_type=True))
    return path


def test_flax_chunked_scalars_and_plain_values(tmp_path: Path) -> None:
    big = np.arange(100, dtype="<f4").reshape(10, 10)
    tree = {
        "params": {
            "embed": _flax_chunked(big, 64),
            "one_chunk": _flax_chunked(np.ones(4, "<f2"), 64),
            "scale": _flax_array(np.array(2.0, "<f4"), code=3),  # numpy scalar leaf
            "gamma": _flax_array(np.ones(3, "f4").astype(np.dtype("bool"))),
        },
        "batch_stats": {"mean": _flax_array(np.zeros(3, "<f4"))},
        "config": {"lr": 0.001, "name": "adam", "z": msgpack.ExtType(2, msgpack.packb((1.0, 2.0)))},
    }
    path = _write(tmp_path / "chunked.msgpack", tree)
    info = inspect(path)
    t = {x.name: x for x in info.tensors}
    assert t["params/embed"].shape == (10, 10) and t["params/embed"].dtype == "F32"
    assert t["params/embed"].nbytes == 400 and t["params/embed"].offset is None
    one = t["params/one_chunk"]
    assert one.dtype == "F16" and one.shape == (4,)
    assert path.read_bytes()[one.offset : one.offset + 8] == np.ones(4, "<f2").tobytes()
    assert t["params/scale"].shape == () and t["params/gamma"].dtype == "BOOL"
    assert t["batch_stats/mean"].role == "buffer" and t["params/embed"].role == "weight"
    assert info.tensor_count == 5 and info.metadata["chunked_arrays"] == 2
    assert info.metadata["plain_values"]["config/lr"] == 0.001
    assert info.metadata["plain_values"]["config/name"] == "adam"
    assert info.checkpoint is None and not info.warnings


def test_flax_reads_only_headers_of_a_big_file(tmp_path: Path, count_file_reads: ReadCounter) -> None:
    tree = {"params": {f"w{i}": _flax_array(np.zeros((1024, 1024), "<f4")) for i in range(8)}}
    path = _write(tmp_path / "big.msgpack", tree)  # 32 MB of weights
    reads = count_file_reads()
    info = flax.inspect_file(path, identify(path))
    assert info.tensor_count == 8 and info.parameter_count == 8 * 1024 * 1024
    assert sum(reads) < 1024 * 1024  # a few windows per array, never the data


def test_flax_hostile(tmp_path: Path) -> None:
    good = _write(tmp_path / "good.msgpack", {"params": {"w": _flax_array(np.ones((4, 4), "f4"))}})
    ident = identify(good)
    data = good.read_bytes()
    cases = {
        "truncated": data[:-10],
        "lying ext length": data.replace(b"\xc7", b"\xc9\x7f\xff\xff", 1),
        "not msgpack": b"\x81\xa1a\xc1",
        "deep": b"\x81\xa1a" * 200 + b"\xc0",
        "payload not a triple": msgpack.packb({"w": msgpack.ExtType(1, msgpack.packb([1, 2]))}),
        "negative dim": msgpack.packb({"w": msgpack.ExtType(1, msgpack.packb([[-1], "float32", b""]))}),
    }
    for label, blob in cases.items():
        path = tmp_path / "bad.msgpack"
        path.write_bytes(blob)
        with pytest.raises(FormatError):
            flax.inspect_file(path, ident)
        assert label


def test_flax_lies_become_warnings(tmp_path: Path) -> None:
    tree = {
        "w": msgpack.ExtType(1, msgpack.packb([[4], "float32", b"\0" * 8])),  # 4 floats need 16 bytes
        "odd": msgpack.ExtType(1, msgpack.packb([[2], "str64", b"\0" * 16])),
        "ext": msgpack.ExtType(9, b"??"),
    }
    path = tmp_path / "lies.msgpack"
    path.write_bytes(msgpack.packb(tree, use_bin_type=True) + b"junk")
    info = flax.inspect_file(path, identify(_write(tmp_path / "ok.msgpack", {"a": 1})))
    text = " ".join(info.warnings)
    assert "needs 16" in text and "str64" in text and "ext type 9" in text and "trailing" in text
    assert info.tensor_count == 2


# --- TensorFlow SavedModel -------------------------------------------------------------------------


def test_savedmodel_variables_match_tensorflow() -> None:
    truth = facts("savedmodel_dense")
    folder = heavy("savedmodel_dense")
    info = inspect(folder)
    assert info.format == "tf-savedmodel"
    assert info.tensor_count == truth["variable_count"] == truth["tensor_count"]
    assert info.parameter_count == truth["parameter_count"]
    assert table(info) == expected_table(truth["checkpoint_variables"])
    assert info.tensor_types == "F32" and info.checkpoint is None
    assert info.metadata["object_graph_bytes"] > 0  # _CHECKPOINTABLE_OBJECT_GRAPH: not a variable
    data = folder / "variables" / "variables.data-00000-of-00001"
    assert all(t.file == "variables/variables.data-00000-of-00001" for t in info.tensors)
    assert info.total_bytes + info.metadata["object_graph_bytes"] == data.stat().st_size
    # Offsets are right: the stored kernel and bias reproduce the model's recorded output.
    raw = data.read_bytes()
    arr = {
        t.name.split("/")[0]: np.frombuffer(raw, "<f4", t.numel, t.offset).reshape(t.shape)
        for t in info.tensors
    }
    y = np.array(truth["probe"]["x"], "f4") @ arr["kernel"] + arr["bias"]
    np.testing.assert_allclose(y, truth["probe"]["y"], rtol=1e-6)


def test_savedmodel_signatures() -> None:
    truth = facts("savedmodel_dense")
    info = inspect(heavy("savedmodel_dense"))
    meta = info.metadata
    assert meta["saved_model_schema_version"] == truth["saved_model_schema_version"]
    assert meta["meta_graph_count"] == truth["meta_graph_count"]
    assert meta["tags"] == truth["tags"] and meta["tensorflow_version"] == truth["tensorflow_version"]
    assert sorted(meta["signatures"]) == truth["signature_keys"]
    sig = meta["signatures"]["serving_default"]
    want = truth["serving_default"]
    assert sig["method_name"] == want["method_name"]
    for side in ("inputs", "outputs"):
        assert sig[side] == {
            k: {"name": v["name"], "dtype": "F32", "shape": v["shape"]} for k, v in want[side].items()
        }


def test_savedmodel_graph_file_alone_still_finds_variables() -> None:
    info = inspect(heavy("savedmodel_dense") / "saved_model.pb")
    assert info.tensor_count == 2 and info.parameter_count == 8
    assert "serving_default" in info.metadata["signatures"]


# Hand-made tensor bundles: a LevelDB table writer just big enough for the tests.


def _entry(dtype: int, shape: list[int], offset: int, size: int, shard: int = 0) -> bytes:
    dims = b"".join(_field(2, _field(1, d)) for d in shape)
    out = _field(1, dtype) + _field(2, dims)
    if shard:
        out += _field(3, shard)
    return out + _field(4, offset) + _field(5, size)


def _block(entries: list[tuple[bytes, bytes]]) -> bytes:
    out = bytearray()
    previous = b""
    for key, value in entries:  # prefix-compressed like LevelDB, one restart point
        shared = 0
        while shared < min(len(key), len(previous)) and key[shared] == previous[shared]:
            shared += 1
        out += _varint(shared) + _varint(len(key) - shared) + _varint(len(value)) + key[shared:] + value
        previous = key
    return bytes(out) + struct.pack("<II", 0, 1)


def _snappy_literal(data: bytes) -> bytes:
    n = len(data) - 1
    tag = bytes([n << 2]) if n < 60 else bytes([61 << 2]) + n.to_bytes(2, "little")
    return _varint(len(data)) + tag + data


def _table(entries: list[tuple[bytes, bytes]], snappy: bool = False, kind: int | None = None) -> bytes:
    body = bytearray()

    def put(block: bytes) -> bytes:
        payload = _snappy_literal(block) if snappy else block
        handle = _varint(len(body)) + _varint(len(payload))
        body.extend(payload + bytes([kind if kind is not None else int(snappy)]) + b"\0\0\0\0")
        return handle

    data_handle = put(_block(entries))
    meta_handle = put(_block([]))
    index_handle = put(_block([(entries[-1][0] + b"\xff", data_handle)]))
    footer = (meta_handle + index_handle).ljust(40, b"\0") + struct.pack("<Q", 0xDB4775248B80FB57)
    return bytes(body) + footer


def _savedmodel(tmp_path: Path, index: bytes, data_sizes: dict[int, int], shards: int = 1) -> Path:
    folder = tmp_path / "sm"
    (folder / "variables").mkdir(parents=True)
    shutil.copyfile(heavy("savedmodel_dense") / "saved_model.pb", folder / "saved_model.pb")
    (folder / "variables" / "variables.index").write_bytes(index)
    for shard, size in data_sizes.items():
        (folder / "variables" / f"variables.data-{shard:05d}-of-{shards:05d}").write_bytes(b"\0" * size)
    return folder


# A 10-byte DT_STRING scalar holding a TrackableObjectGraph: length, 4-byte checksum, then one empty
# node and an unknown field (5 bytes of proto).
_OBJECT_GRAPH_10 = _varint(5) + b"\0" * 4 + _field(1, b"") + _field(15, b"x")


def _training_bundle(snappy: bool = False) -> bytes:
    entries = [
        (b"", _field(1, 2)),  # BundleHeaderProto: num_shards 2
        (b"_CHECKPOINTABLE_OBJECT_GRAPH", _entry(7, [], 0, 10)),
        (b"kernel/.ATTRIBUTES/VARIABLE_VALUE", _entry(14, [4, 8], 10, 64)),
        (
            b"kernel/.OPTIMIZER_SLOT/optimizer/m/.ATTRIBUTES/VARIABLE_VALUE",
            _entry(14, [4, 8], 0, 64, shard=1),
        ),
        (b"optimizer/iter/.ATTRIBUTES/VARIABLE_VALUE", _entry(9, [], 64, 8, shard=1)),
        (b"save_counter/.ATTRIBUTES/VARIABLE_VALUE", _entry(9, [], 74, 8)),
        (b"vocab/.ATTRIBUTES/VARIABLE_VALUE", _entry(7, [3], 82, 20)),
    ]
    return _table(entries, snappy)


@pytest.mark.parametrize("snappy", [False, True])
def test_savedmodel_training_bundle_roles_shards_and_snappy(tmp_path: Path, snappy: bool) -> None:
    folder = _savedmodel(tmp_path, _training_bundle(snappy), {0: 102, 1: 72}, shards=2)
    with (folder / "variables" / "variables.data-00000-of-00002").open("r+b") as shard:
        shard.write(_OBJECT_GRAPH_10)
    with (folder / "variables" / "variables.data-00001-of-00002").open("r+b") as shard:
        shard.seek(64)
        shard.write((1234).to_bytes(8, "little"))  # optimizer/iter
    info = inspect(folder)
    t = {x.name.removesuffix("/.ATTRIBUTES/VARIABLE_VALUE"): x for x in info.tensors}
    slot = "kernel/.OPTIMIZER_SLOT/optimizer/m"
    assert set(t) == {"kernel", slot, "optimizer/iter", "save_counter", "vocab"}
    roles = {name: x.role for name, x in t.items()}
    assert roles == {
        "kernel": "weight",
        slot: "optimizer",
        "optimizer/iter": "optimizer",
        "save_counter": "buffer",
        "vocab": "weight",
    }
    assert t["kernel"].dtype == "BF16" and t["kernel"].shape == (4, 8) and t["kernel"].offset == 10
    assert t["kernel"].file == "variables/variables.data-00000-of-00002"
    assert t[slot].file == "variables/variables.data-00001-of-00002" and t[slot].offset == 0
    assert t["optimizer/iter"].dtype == "I64" and t["optimizer/iter"].shape == ()
    assert t["vocab"].dtype == "STRING" and t["vocab"].nbytes == 20
    assert info.metadata["num_shards"] == 2 and info.metadata["object_graph_bytes"] == 10
    ck = info.checkpoint
    assert ck["kind"] == "tf-training-checkpoint" and ck["framework"] == "tensorflow"
    assert ck["model"] == {"tensor_count": 3, "parameter_count": 32 + 1 + 3, "total_bytes": 64 + 8 + 20}
    assert ck["optimizer"]["tensor_count"] == 2 and ck["optimizer"]["parameter_count"] == 33
    assert ck["optimizer"]["slots"] == ["m", "iter"]
    assert ck["counters"] == {"iterations": 1234, "save_counter": 0}
    assert ck["top_level_keys"] == ["kernel", "optimizer", "save_counter", "vocab"]
    assert not info.warnings


def test_savedmodel_lies_become_warnings(tmp_path: Path) -> None:
    entries = [
        (b"", _field(1, 1)),
        (b"a/.ATTRIBUTES/VARIABLE_VALUE", _entry(1, [3], 0, 8)),  # 3 floats in 8 bytes
        (b"b/.ATTRIBUTES/VARIABLE_VALUE", _entry(1, [100], 12, 400)),  # past the shard's end
        (b"c/.ATTRIBUTES/VARIABLE_VALUE", _entry(1, [2], 0, 8, shard=3)),  # shard that does not exist
    ]
    info = inspect(_savedmodel(tmp_path, _table(entries), {0: 20}))
    text = " ".join(info.warnings)
    assert "needs 12" in text and "past the end" in text and "missing" in text
    assert info.tensor_count == 3


def test_savedmodel_hostile_index(tmp_path: Path) -> None:
    good = (heavy("savedmodel_dense") / "variables" / "variables.index").read_bytes()
    lying_footer = (_varint(0) + _varint(10) + _varint(10**6) + _varint(50)).ljust(40, b"\0") + good[-8:]
    cases = {
        "truncated": good[:200],
        "tiny": good[:20],
        "bad magic": good[:-1] + b"\0",
        "index handle past the end": good[:-48] + lying_footer,
        "unknown compression": _table([(b"a", _entry(1, [1], 0, 4))], kind=7),
        "entry past its block": _table([(b"a", b"\x08\x01\x12")]).replace(
            b"\x00\x01\x03a", b"\x00\x01\x7fa", 1
        ),
    }
    for label, blob in cases.items():
        folder = tmp_path / label.replace(" ", "_")
        folder.mkdir()
        with pytest.raises(FormatError):
            inspect(_savedmodel(folder, blob, {0: 32}))


# Keras 3 Model.export(): every variable checkpointed twice (variables/N and _all_variables/N).

EXPORT = "keras3_export_savedmodel"
EXPORT_DATA = "variables/variables.data-00000-of-00001"


def _export_copy(tmp_path: Path) -> Path:
    folder = tmp_path / "export"
    shutil.copytree(heavy(EXPORT), folder)
    return folder


def _check_export(doc: dict[str, Any], folder: Path) -> None:
    """inspect's report (ModelInfo.to_dict or the CLI's JSON) against tf.saved_model.load's variables."""
    truth = facts(EXPORT)
    assert doc["tensor_count"] == truth["variable_count"] == 10
    assert doc["parameter_count"] == truth["parameter_count"] == truth["keras_count_params"] == 62
    assert doc["tensor_types"] == "F32" and doc["warnings"] == []
    names = doc["metadata"]["variable_names"]
    tensors = {names[t["name"]] + ":0": t for t in doc["tensors"]}
    assert {n: t["shape"] for n, t in tensors.items()} == {v["name"]: v["shape"] for v in truth["variables"]}
    raw = (folder / EXPORT_DATA).read_bytes()
    for v in truth["variables"]:
        t = tensors[v["name"]]
        assert t["file"] == EXPORT_DATA and t["dtype"] == "F32"
        np.testing.assert_array_equal(np.frombuffer(raw, "<f4", t["numel"], t["offset"]), v["values"])
    # The keys kept are the ones the serving functions bind; every key TF lists is either kept or a copy.
    assert {t["name"].split("/")[0] for t in doc["tensors"]} == {"variables"}
    dup = doc["metadata"]["duplicate_variables"]
    assert dup["count"] == truth["checkpoint_key_count"] - truth["variable_count"] == 10
    assert sorted([*dup["copies"], *(t["name"] for t in doc["tensors"])]) == truth["checkpoint_keys"]
    assert set(dup["copies"].values()) == {t["name"] for t in doc["tensors"]}
    stored = doc["total_bytes"] + dup["bytes"] + doc["metadata"]["object_graph_bytes"]
    assert stored == (folder / EXPORT_DATA).stat().st_size


def test_keras_export_counts_each_variable_once() -> None:
    truth = facts(EXPORT)
    # What the file holds: 20 variable nodes and checkpoint keys for tf.saved_model.load's 10 variables.
    assert truth["object_graph_variable_nodes"] == truth["checkpoint_key_count"] == 20
    assert truth["all_variables_count"] == truth["variable_count"] == 10
    info = inspect(heavy(EXPORT))
    assert info.format == "tf-savedmodel" and info.checkpoint is None
    _check_export(info.to_dict(), heavy(EXPORT))
    assert sorted(info.metadata["signatures"]) == truth["signature_keys"]


def test_keras_export_cli_json() -> None:
    _check_export(cli_json("inspect", "--json", str(heavy(EXPORT))), heavy(EXPORT))


def test_plain_savedmodel_names_and_no_copies() -> None:
    info = inspect(heavy("savedmodel_dense"))
    assert info.metadata["variable_names"] == {
        "bias/.ATTRIBUTES/VARIABLE_VALUE": "bias",
        "kernel/.ATTRIBUTES/VARIABLE_VALUE": "kernel",
    }
    assert "duplicate_variables" not in info.metadata


def test_keras_export_copy_with_other_bytes_is_its_own_variable(tmp_path: Path) -> None:
    """A copy is a copy only if its stored bytes are the same (crc32c in the index): change one
    checksum and that key counts as a variable of its own."""
    folder = _export_copy(tmp_path)
    index = folder / "variables" / "variables.index"
    entries = list(savedmodel.read_table(index))
    key = b"_all_variables/3/.ATTRIBUTES/VARIABLE_VALUE"
    i = next(n for n, (k, _) in enumerate(entries) if k == key)
    value = entries[i][1]
    assert value[-5] == 0x35  # BundleEntryProto field 6, fixed32: the entry ends with its crc32c
    entries[i] = (key, value[:-4] + bytes(b ^ 0xFF for b in value[-4:]))
    index.write_bytes(_table(entries))
    info = inspect(folder)
    assert info.tensor_count == 11 and key.decode() in {t.name for t in info.tensors}
    assert info.metadata["duplicate_variables"]["count"] == 9


@pytest.mark.parametrize("damage", ["garbage", "length"])
def test_keras_export_unreadable_object_graph_is_a_warning(tmp_path: Path, damage: str) -> None:
    folder = _export_copy(tmp_path)
    truth = facts(EXPORT)
    index = dict(savedmodel.read_table(folder / "variables" / "variables.index"))
    entry = savedmodel._bundle_entry(index[b"_CHECKPOINTABLE_OBJECT_GRAPH"], "index")
    with (folder / EXPORT_DATA).open("r+b") as fh:
        fh.seek(entry["offset"])
        # garbage: no varint ends; length: the string claims the whole entry, leaving no checksum room
        fh.write(b"\xff" * entry["size"] if damage == "garbage" else _varint(entry["size"]))
    before = {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()}
    info = inspect(folder)
    assert info.tensor_count == truth["checkpoint_key_count"]  # every key listed, nothing merged
    assert any(w.startswith("object graph not read") for w in info.warnings)
    proc = run_cli("inspect", "--json", str(folder))
    assert proc.returncode == 0 and "Traceback" not in proc.stderr
    assert {p: p.read_bytes() for p in folder.rglob("*") if p.is_file()} == before  # inputs untouched


def test_snappy_copies() -> None:
    # literal "abc", then a 1-byte-offset copy of 9 (overlapping its own output), then a 2-byte-offset copy
    data = (
        _varint(15)
        + bytes([2 << 2])
        + b"abc"
        + bytes([(9 - 4) << 2 | 1, 3])
        + bytes([(3 - 1) << 2 | 2, 12, 0])
    )
    assert savedmodel.snappy_decompress(data) == b"abcabcabcabcabc"
    with pytest.raises(FormatError):
        savedmodel.snappy_decompress(_varint(4) + bytes([(4 - 4) << 2 | 1, 9]))  # copy before the start
    with pytest.raises(FormatError):
        savedmodel.snappy_decompress(_varint(10) + bytes([0 << 2]) + b"a")  # shorter than announced
