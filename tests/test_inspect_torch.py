"""inspect for PyTorch zip, legacy and TorchScript files, checked against torch.load."""

from __future__ import annotations

import collections
import io
import pickle
import random
import struct
import tarfile
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tensorfile.errors import FormatError, TensorfileError
from tensorfile.formats import pytorch
from tensorfile.identification import identify
from tensorfile.inspection import inspect

torch = pytest.importorskip("torch")  # a test dependency: `make test` installs torch==2.13.0

_DTYPES = {
    torch.float32: "F32",
    torch.bfloat16: "BF16",
    torch.int64: "I64",
    torch.float16: "F16",
    torch.int32: "I32",
    torch.uint8: "U8",
    torch.bool: "BOOL",
    torch.float64: "F64",
}


def _flatten(value: Any, path: str = "") -> dict[str, Any]:
    """Every tensor torch.load returns, keyed like tensorfile names them."""
    out: dict[str, Any] = {}
    if isinstance(value, torch.Tensor):
        out[path] = value
    elif isinstance(value, dict):
        for k, v in value.items():
            out.update(_flatten(v, f"{path}.{k}" if path else str(k)))
    elif isinstance(value, (list, tuple)):
        for i, v in enumerate(value):
            out.update(_flatten(v, f"{path}.{i}" if path else str(i)))
    return out


def _assert_matches_torch(path: Path, legacy: bool = False) -> None:
    info = inspect(path)
    loaded = _flatten(torch.load(path, weights_only=True))
    assert {t.name for t in info.tensors} == set(loaded)
    for t in info.tensors:
        ref = loaded[t.name]
        assert t.shape == tuple(ref.shape), t.name
        assert t.dtype == _DTYPES[ref.dtype], t.name
        assert t.nbytes == ref.numel() * ref.element_size()
        if t.offset is not None:  # the bytes at the reported offset are the tensor's own
            with path.open("rb") as fh:
                fh.seek(t.offset)
                assert (
                    fh.read(t.nbytes) == ref.contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
                ), t.name
    assert info.parameter_count == sum(v.numel() for v in loaded.values())


@pytest.mark.parametrize("fixture", ["pytorch_state_dict", "pytorch_training_checkpoint", "pytorch_legacy"])
def test_counts_dtypes_shapes_offsets_match_torch(made: Callable[[str], Path], fixture: str) -> None:
    _assert_matches_torch(made(fixture))


def test_training_checkpoint_split(made: Callable[[str], Path]) -> None:
    info = inspect(made("pytorch_training_checkpoint"))
    ck = info.checkpoint
    assert ck is not None and ck["kind"] == "training-checkpoint" and ck["framework"] == "pytorch"
    assert ck["counters"] == {"epoch": 3, "step": 120, "loss": 0.25}
    assert ck["model"] == {"tensor_count": 2, "parameter_count": 4 * 3 + 3, "total_bytes": 4 * 15}
    opt = ck["optimizer"]
    assert opt is not None and opt["name"] is None  # torch's state dict does not record the class
    # AdamW keeps exp_avg and exp_avg_sq per parameter plus a scalar step tensor.
    assert opt["tensor_count"] == 6 and opt["parameter_count"] == 2 * (4 * 3 + 3) + 2
    assert opt["slots"] == ["step", "exp_avg", "exp_avg_sq"]
    assert opt["hyperparameters"]["lr"] == 0.001 and opt["hyperparameters"]["betas"] == [0.9, 0.999]
    assert opt["in_tensor_table"] is True and opt["tensors"] == []
    names = {t.name for t in info.tensors if t.role == "optimizer"}
    assert "optimizer_state_dict.state.0.exp_avg" in names and "optimizer_state_dict.state.1.step" in names
    assert ck["top_level_keys"] == ["epoch", "step", "model_state_dict", "optimizer_state_dict", "loss"]


def test_shared_and_strided_tensors(tmp_path: Path) -> None:
    base = torch.arange(24, dtype=torch.float32).reshape(4, 6)
    sd = {"base": base, "tied": base, "row": base[2], "transposed": base.t(), "half": torch.ones(3).half()}
    path = tmp_path / "views.pt"
    torch.save(sd, path)
    _assert_matches_torch(path)
    info = {t.name: t for t in inspect(path).tensors}
    assert info["transposed"].offset is None  # not contiguous: no single byte range
    assert info["row"].offset == info["base"].offset + 2 * 6 * 4
    assert info["tied"].offset == info["base"].offset


def test_legacy_views_and_offsets(tmp_path: Path) -> None:
    base = torch.arange(10, dtype=torch.int64)
    path = tmp_path / "legacy_views.pt"
    torch.save(
        {"a": base, "b": base[3:7], "c": torch.zeros(2, 2, dtype=torch.bfloat16)},
        path,
        _use_new_zipfile_serialization=False,
    )
    _assert_matches_torch(path)


def test_full_pickled_module(made: Callable[[str], Path]) -> None:
    info = inspect(made("pytorch_full_module"))
    assert info.checkpoint is not None and info.checkpoint["kind"] == "pickled-module"
    assert info.checkpoint["class"] == "torch.nn.modules.container.Sequential"
    assert info.checkpoint["model"]["tensor_count"] == 2 and info.checkpoint["optimizer"] is None
    assert {t.name for t in info.tensors} == {"0.weight", "0.bias"}
    assert info.pickle is not None and "torch.nn.modules.container.Sequential" in info.pickle["imports"]


def test_torchscript_parameters_and_buffers(tmp_path: Path) -> None:
    module = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.BatchNorm1d(4))
    path = tmp_path / "scripted.pt"
    torch.jit.save(torch.jit.script(module), path)
    info = inspect(path)
    expected = torch.jit.load(path).state_dict()
    assert info.format == "torchscript"
    assert {t.name: t.shape for t in info.tensors} == {k: tuple(v.shape) for k, v in expected.items()}
    # TorchScript pickles parameters and buffers alike as plain module attributes.
    assert {t.role for t in info.tensors} == {"weight"}
    assert info.parameter_count == sum(v.numel() for v in expected.values())
    assert info.metadata["code_files"]


def test_missing_storage_member_is_an_error(made: Callable[[str], Path], tmp_path: Path) -> None:
    src = made("pytorch_state_dict")
    dst = tmp_path / "gutted.pt"
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for item in zin.infolist():
            if not item.filename.endswith("/data/0"):
                zout.writestr(item, zin.read(item.filename))
    with pytest.raises(FormatError, match="missing"):
        inspect(dst)


def test_truncated_legacy_is_an_error(made: Callable[[str], Path], tmp_path: Path) -> None:
    data = made("pytorch_legacy").read_bytes()
    path = tmp_path / "cut.pth"
    path.write_bytes(data[: len(data) - 10])
    with pytest.raises(FormatError):
        inspect(path)


def test_inspect_never_imports_foreign_globals(tmp_path: Path) -> None:
    """A torch zip whose data.pkl would call os.system is described, not executed."""
    marker = tmp_path / "ran"
    payload = f"cos\nsystem\n(Vtouch {marker}\ntR.".encode()
    path = tmp_path / "evil.pt"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("evil/data.pkl", payload)
        zf.writestr("evil/version", "3\n")
    info = inspect(path)
    assert info.pickle is not None and "os.system" in info.pickle["imports"]
    assert info.tensor_count == 0
    assert not marker.exists()


# --- legacy tar layout (torch 0.1.x) -----------------------------------------------------------------


class _Ref:
    """Stands for a tensor or storage in the object pickle: torch wrote str(cdata) persistent ids."""

    def __init__(self, key: int) -> None:
        self.key = key


class _OldParameter:
    """Pickles as torch 0.3's Variable.__reduce_ex__ at protocol 2: Parameter(data)."""

    def __init__(self, data: _Ref) -> None:
        self.data = data

    def __reduce__(self) -> tuple[Any, ...]:
        return torch.nn.Parameter, (self.data,)


class _RefPickler(pickle.Pickler):
    def persistent_id(self, obj: Any) -> str | None:
        return str(obj.key) if isinstance(obj, _Ref) else None


def _tar_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def _legacy_tar(
    path: Path,
    obj: Any,
    storages: dict[int, tuple[Any, np.ndarray]],
    tensors: dict[int, tuple[int, tuple[int, ...], tuple[int, ...], int]],
    views: list[tuple[int, int, int, int]] = (),  # type: ignore[assignment]
    drop: str | None = None,
) -> Path:
    """A tar laid out as torch 0.1.x's torch.save wrote it, assembled here with tarfile and pickle
    (torch no longer writes it; torch/serialization.py `legacy_load` still reads it):
    sys_info, pickle (the object, tensors as persistent ids), tensors (per tensor a pickled
    (key, storage key, type) then int64 ndim, sizes, strides, offset), storages (per root storage a
    pickled (key, location, type) then int64 element count and raw bytes; then the view list)."""
    tensor_types = {torch.FloatStorage: torch.FloatTensor, torch.LongStorage: torch.LongTensor}
    members: dict[str, bytes] = {}
    members["sys_info"] = pickle.dumps(
        {"protocol_version": 1001, "little_endian": True, "type_sizes": {"short": 2, "int": 4, "long": 8}}, 2
    )
    buf = io.BytesIO()
    _RefPickler(buf, 2).dump(obj)
    members["pickle"] = buf.getvalue()
    buf = io.BytesIO()
    pickle.dump(len(tensors), buf, 2)
    for key, (storage, shape, stride, offset) in tensors.items():
        root = storages[storage][0] if storage in storages else torch.FloatStorage
        pickle.dump((key, storage, tensor_types[root]), buf, 2)
        buf.write(struct.pack(f"<q{2 * len(shape) + 1}q", len(shape), *shape, *stride, offset))
    members["tensors"] = buf.getvalue()
    buf = io.BytesIO()
    pickle.dump(len(storages), buf, 2)
    for key, (storage_type, data) in storages.items():
        pickle.dump((key, "cpu", storage_type), buf, 2)
        buf.write(struct.pack("<q", data.size) + data.tobytes())
    pickle.dump(list(views), buf, 2)
    members["storages"] = buf.getvalue()
    with tarfile.open(path, "w:", format=tarfile.PAX_FORMAT) as tar:
        for name in ("sys_info", "pickle", "tensors", "storages"):
            if name != drop:
                _tar_member(tar, name, members[name])
    return path


def _sample_legacy_tar(path: Path, **kwargs: Any) -> Path:
    weight = np.arange(12, dtype="<f4")
    counts = np.array([5, 6, 7], dtype="<i8")
    obj = {
        "state_dict": collections.OrderedDict(
            [("fc.weight", _Ref(201)), ("fc.bias", _Ref(202)), ("fc.tied", _Ref(201))]
        ),
        "rows": _Ref(203),  # rows 1..2 of the weight's storage
        "transposed": _Ref(204),  # strided: no single byte range
        "window": _Ref(205),  # on a storage view: root 101 from element 4
        "param": _OldParameter(_Ref(203)),
        "optimizer": {
            "state": {0: {"momentum_buffer": _Ref(206)}},
            "param_groups": [{"lr": 0.1, "params": [0]}],
        },
        "epoch": 4,
    }
    storages = {101: (torch.FloatStorage, weight), 102: (torch.LongStorage, counts)}
    tensors = {
        201: (101, (3, 4), (4, 1), 0),
        202: (102, (3,), (1,), 0),
        203: (101, (2, 4), (4, 1), 4),
        204: (101, (4, 3), (1, 4), 0),
        205: (301, (2, 2), (2, 1), 2),
        206: (101, (3,), (1,), 9),
    }
    return _legacy_tar(path, obj, storages, tensors, [(301, 101, 4, 8)], **kwargs)


def test_legacy_tar_matches_torch(tmp_path: Path) -> None:
    path = _sample_legacy_tar(tmp_path / "old.pt")
    assert identify(path).details["container"] == "tar"
    info = inspect(path)
    assert info.format == "pytorch-legacy"
    loaded = _flatten(torch.load(path, weights_only=False))  # our own fixture: safe to unpickle
    assert [t.name for t in info.tensors] == [
        "state_dict.fc.weight",
        "state_dict.fc.bias",
        "state_dict.fc.tied",
        "rows",
        "transposed",
        "window",
        "param",
        "optimizer.state.0.momentum_buffer",
    ]
    assert set(loaded) == {t.name for t in info.tensors}
    raw = path.read_bytes()
    for t in info.tensors:
        ref = loaded[t.name]
        assert t.shape == tuple(ref.shape) and t.dtype == _DTYPES[ref.dtype], t.name
        assert t.nbytes == ref.numel() * ref.element_size(), t.name
        if t.offset is not None:
            expected = ref.detach().contiguous().reshape(-1).view(torch.uint8).numpy().tobytes()
            assert raw[t.offset : t.offset + t.nbytes] == expected, t.name
    assert {t.name for t in info.tensors if t.offset is None} == {"transposed"}
    assert {t.name: t.role for t in info.tensors}["optimizer.state.0.momentum_buffer"] == "optimizer"
    assert info.metadata["sys_info"]["protocol_version"] == 1001
    assert info.metadata["storage_views"] == 1 and info.metadata["storage_locations"] == ["cpu"]
    ck = info.checkpoint
    assert ck is not None and ck["kind"] == "training-checkpoint" and ck["counters"] == {"epoch": 4}
    assert ck["optimizer"] is not None and ck["optimizer"]["slots"] == ["momentum_buffer"]
    assert ck["optimizer"]["hyperparameters"] == {"lr": 0.1} and ck["optimizer"]["parameter_count"] == 3
    assert ck["model"]["tensor_count"] == 7
    assert info.pickle is not None and "torch.nn.parameter.Parameter" in info.pickle["imports"]


def test_legacy_tar_hostile(tmp_path: Path) -> None:
    good = _sample_legacy_tar(tmp_path / "good.pt")
    ident = identify(good)
    weight = np.arange(4, dtype="<f4")
    cases = {
        "missing storages": _sample_legacy_tar(tmp_path / "a.pt", drop="storages"),
        "missing pickle": _sample_legacy_tar(tmp_path / "b.pt", drop="pickle"),
        "unknown persistent id": _legacy_tar(
            tmp_path / "c.pt",
            {"w": _Ref(999)},
            {101: (torch.FloatStorage, weight)},
            {201: (101, (4,), (1,), 0)},
        ),
        "tensor on a missing storage": _legacy_tar(
            tmp_path / "d.pt",
            {"w": _Ref(201)},
            {101: (torch.FloatStorage, weight)},
            {201: (555, (4,), (1,), 0)},
        ),
    }
    # A storage that claims more elements than its member holds.
    short = bytearray(good.read_bytes())
    count = struct.pack("<q", 12) + np.arange(12, dtype="<f4").tobytes()
    at = short.index(count)
    short[at : at + 8] = struct.pack("<q", 10**6)
    cases["short storage"] = tmp_path / "e.pt"
    cases["short storage"].write_bytes(bytes(short))
    # A tensor header with an absurd rank.
    bad_rank = bytearray(good.read_bytes())
    rank = struct.pack("<q4q", 2, 3, 4, 4, 1)
    at = bad_rank.index(rank)
    bad_rank[at : at + 8] = struct.pack("<q", 1 << 30)
    cases["absurd rank"] = tmp_path / "f.pt"
    cases["absurd rank"].write_bytes(bytes(bad_rank))
    cases["truncated"] = tmp_path / "g.pt"
    cases["truncated"].write_bytes(good.read_bytes()[:2000])
    for label, path in cases.items():
        with pytest.raises(FormatError):
            pytorch.inspect_legacy(path, ident)
        try:  # through the front door: identification or inspection refuses, one line, no traceback
            inspect(path)
        except TensorfileError as exc:
            assert "\n" not in str(exc), label


def test_legacy_tar_lies_become_warnings(tmp_path: Path) -> None:
    # A tensor whose shape reaches past its storage: described, with a warning.
    path = _legacy_tar(
        tmp_path / "lie.pt",
        {"w": _Ref(201)},
        {101: (torch.FloatStorage, np.zeros(4, "<f4"))},
        {201: (101, (4, 4), (4, 1), 0)},
    )
    info = inspect(path)
    assert [(t.name, t.shape) for t in info.tensors] == [("w", (4, 4))]
    assert any("past the end of its storage" in w for w in info.warnings)


def test_legacy_tar_mutations_give_errors_not_crashes(tmp_path: Path) -> None:
    """Byte flips inside the members (the tar headers' checksums would stop anything else) and
    truncations, read by the tar inspector directly: a report or a FormatError, nothing else."""
    good = _sample_legacy_tar(tmp_path / "good.pt")
    ident = identify(good)
    data = good.read_bytes()
    with tarfile.open(good) as tar:
        spans = [(m.offset_data, m.offset_data + m.size) for m in tar]
    rng = random.Random(7)
    outcomes = {"report": 0, "error": 0}
    for i in range(200):
        mutated = bytearray(data)
        if i % 4 == 0:
            mutated = mutated[: rng.randrange(1, spans[-1][1])]
        else:
            for _ in range(rng.randrange(1, 4)):
                start, end = rng.choice(spans)
                mutated[rng.randrange(start, end)] = rng.getrandbits(8)
        path = tmp_path / "m.pt"
        path.write_bytes(bytes(mutated))
        try:
            pytorch.inspect_legacy(path, ident)
            outcomes["report"] += 1
        except FormatError:
            outcomes["error"] += 1
    assert outcomes["report"] and outcomes["error"]
