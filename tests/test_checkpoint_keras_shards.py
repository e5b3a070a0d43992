"""Sharded Keras 3 weights: `model.save_weights("model.weights.json", max_shard_size=…)`.

Keras is not installed here, so `_save_sharded` writes with h5py what keras' saving_lib
ShardedH5IOStore writes: one ordinary Keras 3 weights file per shard (`<group>/vars/<i>` datasets,
the group's `name` attribute where the group was first made), a new shard `model_NNNNN.weights.h5`
whenever the next variable would overflow the current one (the group is made again, without
attributes, in the new shard), and `model.weights.json` = {"metadata": {"total_size": bytes},
"weight_map": {h5 group path: shard of its first variable}}.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import h5py
import numpy as np
import pytest

from tensorfile.errors import FormatError, TensorfileError
from tensorfile.formats import keras
from tensorfile.identification import identify
from tensorfile.inspection import inspect

Groups = list[tuple[str, str, list[np.ndarray]]]


def _save_sharded(folder: Path, groups: Groups, max_bytes: int, base: str = "model") -> Path:
    folder.mkdir(exist_ok=True)
    index = 0
    shard = h5py.File(folder / f"{base}_{index:05}.weights.h5", "w")
    used = total = 0
    weight_map: dict[str, str] = {}
    for path, name, arrays in groups:
        group = shard.create_group(path).create_group("vars")  # store.make(path, metadata)
        group.attrs["name"] = name
        for key, array in enumerate(arrays):
            total += array.nbytes
            if used + array.nbytes > max_bytes:  # __setitem__: close, open the next shard, make again
                shard.close()
                index += 1
                shard = h5py.File(folder / f"{base}_{index:05}.weights.h5", "w")
                group = shard.create_group(path).create_group("vars")
                used = 0
            used += array.nbytes
            group[str(key)] = array
            weight_map.setdefault(group.name, Path(shard.filename).name)
    shard.close()
    index_path = folder / f"{base}.weights.json"
    index_path.write_text(json.dumps({"metadata": {"total_size": float(total)}, "weight_map": weight_map}))
    return index_path


def _dense_adam() -> Groups:
    """Dense(3 -> 4) and Dense(4 -> 2) trained 3 steps with Adam: iterations, learning rate, then
    momentum and velocity per weight (Keras 3 numbers its optimizer variables)."""
    rng = np.random.default_rng(0)
    weights = [
        rng.standard_normal((3, 4)).astype("f4"),
        np.zeros(4, "f4"),
        rng.standard_normal((4, 2)).astype("f4"),
        np.zeros(2, "f4"),
    ]
    slots = [np.full(w.shape, i, "f4") for w in weights for i in (1, 2)]
    return [
        ("layers/dense", "dense", weights[:2]),
        ("layers/dense_1", "dense_1", weights[2:]),
        ("optimizer", "adam", [np.array(3, "i8"), np.array(0.001, "f4"), *slots]),
    ]


@pytest.fixture
def sharded(tmp_path: Path) -> Path:
    return _save_sharded(tmp_path / "shards", _dense_adam(), max_bytes=64)


def _h5_truth(folder: Path) -> dict[str, np.ndarray]:
    out: dict[str, np.ndarray] = {}

    def keep(name: str, obj: object) -> None:  # visititems stops at the first non-None return
        if isinstance(obj, h5py.Dataset):
            out.setdefault(name, np.asarray(obj))

    for shard in sorted(folder.glob("model_*.weights.h5")):
        with h5py.File(shard, "r") as h5:
            h5.visititems(keep)
    return out


def test_folder_and_index_list_every_shard(sharded: Path) -> None:
    folder = sharded.parent
    truth = _h5_truth(folder)
    index = json.loads(sharded.read_text())
    shard_files = sorted(p.name for p in folder.glob("model_*.weights.h5"))
    # The weight_map names only the shards where a group starts; later shards are found by name.
    assert set(index["weight_map"].values()) < set(shard_files)
    for target in (folder, sharded):
        ident = identify(target)
        assert ident.format == "keras-h5" and ident.details["variant"] == "keras3-sharded-weights"
        assert ident.details["shards"] == shard_files and not ident.warnings
        info = inspect(target)
        assert info.format == "keras-h5" and not info.warnings
        assert [f["path"] for f in info.files] == ["model.weights.json", *shard_files]
        model = {k: v for k, v in truth.items() if k.startswith("layers/")}
        assert {t.name: (t.shape, t.dtype) for t in info.tensors} == {
            k: (v.shape, "F32") for k, v in model.items()
        }
        assert info.tensor_count == 4 and info.parameter_count == 12 + 4 + 8 + 2
        for t in info.tensors:  # offsets are in the shard the tensor lives in
            raw = (folder / str(t.file)).read_bytes()
            assert raw[t.offset : t.offset + t.nbytes] == truth[t.name].tobytes(), t.name
        ck = info.checkpoint
        assert ck is not None and ck["kind"] == "keras-training-state"
        assert ck["counters"] == {"iterations": 3}
        opt = ck["optimizer"]
        assert opt is not None and opt["name"] == "adam" and opt["slots"] == ["momentum", "velocity"]
        assert opt["tensor_count"] == 10 and opt["parameter_count"] == 2 + 2 * 26
        assert opt["hyperparameters"] == {"learning_rate": pytest.approx(0.001)}
        assert [t["name"] for t in opt["tensors"]] == [f"optimizer/vars/{i}" for i in range(10)]
        assert info.total_bytes + opt["total_bytes"] == index["metadata"]["total_size"]


def _without_tensor_lists(checkpoint: Any) -> Any:
    """The checkpoint without per-tensor entries, whose file and offset depend on the shard."""
    return {
        **checkpoint,
        "optimizer": {**checkpoint["optimizer"], "tensors": len(checkpoint["optimizer"]["tensors"])},
    }


def test_sharding_does_not_change_the_report(tmp_path: Path) -> None:
    single = tmp_path / "model.weights.h5"  # what save_weights writes without max_shard_size
    with h5py.File(single, "w") as h5:
        for path, name, arrays in _dense_adam():
            group = h5.create_group(path).create_group("vars")
            group.attrs["name"] = name
            for key, array in enumerate(arrays):
                group[str(key)] = array
    one = _save_sharded(tmp_path / "one", _dense_adam(), max_bytes=1 << 30)
    assert sorted(p.name for p in one.parent.iterdir()) == ["model.weights.json", "model_00000.weights.h5"]
    many = _save_sharded(tmp_path / "many", _dense_adam(), max_bytes=40)
    reports = [inspect(single), inspect(one.parent), inspect(many.parent)]
    assert [len(r.files) for r in reports[:2]] == [1, 2] and len(reports[2].files) > 6
    tables = [[(t.name, t.shape, t.dtype, t.nbytes) for t in r.tensors] for r in reports]
    assert tables[0] == tables[1] == tables[2]
    summaries = [_without_tensor_lists(r.checkpoint) for r in reports]
    assert summaries[0] == summaries[1] == summaries[2]


def test_index_lies_become_warnings(sharded: Path) -> None:
    index = json.loads(sharded.read_text())
    index["metadata"]["total_size"] = 1
    index["weight_map"]["/layers/dense_1/vars"] = "model_00000.weights.h5"
    index["weight_map"]["/x/vars"] = "../outside.weights.h5"
    sharded.write_text(json.dumps(index))
    info = inspect(sharded.parent)
    text = " ".join(info.warnings)
    assert "total_size is 1" in text and "name a shard without that group" in text
    assert "outside the folder: ../outside.weights.h5" in text
    assert info.tensor_count == 4


def test_hostile_shards(sharded: Path, tmp_path: Path) -> None:
    folder = sharded.parent
    ident = identify(folder)
    (folder / "model_00001.weights.h5").unlink()
    with pytest.raises(FormatError, match="missing: model_00001"):
        keras.inspect_h5(folder, ident)
    assert any("missing" in w for w in identify(folder).warnings)
    with pytest.raises(TensorfileError):
        inspect(folder)
    shutil.copy(folder / "model_00000.weights.h5", folder / "model_00001.weights.h5")
    info = inspect(folder)  # the same datasets twice: kept once, with a warning
    assert any("already in an earlier shard" in w for w in info.warnings)
    (folder / "model_00002.weights.h5").write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 100)
    with pytest.raises(FormatError):
        inspect(folder)
    for bad in ("{", "[]", json.dumps({"weight_map": {"/vars": 3}}), json.dumps({"weight_map": {}})):
        sharded.write_text(bad)
        assert identify(sharded).format == "unknown"
