"""The HDF5 reader on shared object header messages (SOHM) and filtered fractal heaps, against h5py.

h5py has no API for either; its own libhdf5 is called through ctypes to set them on the property
lists (H5Pset_shared_mesg_nindexes / _index, H5Pset_deflate on a group creation list).
"""

from __future__ import annotations

import ctypes
import glob
import json
import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tensorfile import hdf5
from tensorfile.scan import scan_file
from tensorfile.source import open_source

h5py = pytest.importorskip("h5py")
_LIBS = glob.glob(os.path.join(os.path.dirname(h5py.__file__) + ".libs", "libhdf5-*.so*"))
pytestmark = pytest.mark.skipif(not _LIBS, reason="h5py's bundled libhdf5 not found")
_CONFIG = json.dumps(
    {"class_name": "Sequential", "config": {"layers": [{"class_name": "Lambda", "config": {}}]}}
)


def _lib() -> Any:
    return ctypes.CDLL(_LIBS[0])


def _fill(f: Any, group: Any) -> None:
    f.attrs["model_config"] = _CONFIG
    f.attrs["keras_version"] = "2.15.0"
    for i in range(20):  # past the compact limits: dense links and attributes
        group[f"d{i}"] = np.arange(i + 1, dtype="<f4")
        group[f"d{i}"].attrs["a"] = np.arange(4)
        group.attrs[f"attr{i}"] = f"value {i}"


def _sohm(path: Path) -> None:
    fcpl = h5py.h5p.create(h5py.h5p.FILE_CREATE)
    lib = _lib()
    assert lib.H5Pset_shared_mesg_nindexes(ctypes.c_int64(fcpl.id), 1) >= 0
    assert lib.H5Pset_shared_mesg_index(ctypes.c_int64(fcpl.id), 0, 0xFF, 0) >= 0
    with h5py.File(h5py.h5f.create(os.fsencode(path), fcpl=fcpl)) as f:
        _fill(f, f.create_group("model_weights"))


def _filtered(path: Path) -> None:
    with h5py.File(path, "w", libver="latest", track_order=True) as f:
        gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
        lib = _lib()
        assert lib.H5Pset_deflate(ctypes.c_int64(gcpl.id), 6) >= 0
        assert lib.H5Pset_link_phase_change(ctypes.c_int64(gcpl.id), 0, 0) >= 0
        _fill(f, h5py.Group(h5py.h5g.create(f.id, b"model_weights", gcpl=gcpl)))


def _tree(f: Any, is_group: type, path: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {path or "/": sorted((k, repr(f.attrs[k])) for k in f.attrs.keys())}  # noqa: SIM118
    for key in f.keys():  # noqa: SIM118 (the reader mirrors keys(), not iteration)
        obj = f[key]
        if isinstance(obj, is_group):
            out.update(_tree(obj, is_group, f"{path}/{key}"))
        else:
            attrs = sorted((k, repr(obj.attrs[k])) for k in obj.attrs.keys())  # noqa: SIM118
            out[f"{path}/{key}"] = (obj.shape, str(obj.dtype), attrs)
    return out


@pytest.mark.parametrize("make", [_sohm, _filtered], ids=["sohm", "filtered-heap"])
def test_reads_as_h5py_reads(tmp_path: Path, make: Any) -> None:
    path = tmp_path / "model.h5"
    make(path)
    with h5py.File(path, "r") as f:
        want = _tree(f, h5py.Group)
    with open_source(path) as source, hdf5.File(source, str(path)) as f:
        got = _tree(f, hdf5.Group)
    assert got == want and len(got) == 22
    result = scan_file(path)
    assert result.format == "keras-h5" and any(x.rule == "keras-lambda" for x in result.findings)
