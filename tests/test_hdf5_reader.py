"""tensorfile.hdf5 against h5py as the referee: for files h5py writes in every layout it can
(earliest and latest formats, compact and dense groups and attributes, huge attributes, creation
order, user blocks, chunked and compact data, every datatype class Keras meets) the group tree,
attributes, dtypes, shapes, chunking and data offsets are equal. Corrupt and hostile structures
end in a FormatError, fast."""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tensorfile import hdf5
from tensorfile.errors import FormatError
from tensorfile.source import BytesSource, FileSource

from .conftest import CORPUS, HEAVY

h5py = pytest.importorskip("h5py")


def _fill(h5: Any, links: int = 20, attrs: int = 20, big: bool = False) -> None:
    group = h5.create_group("many")
    for i in range(links):
        group[f"d{i}"] = np.arange(i % 5 + 1, dtype="<f4")
    for i in range(attrs):
        h5.attrs[f"a{i}"] = i
    values: dict[str, Any] = {
        "vstr": "hello " * 10,
        "vstrs": ["a", "bb", "ccc"],
        "fixed": np.bytes_("fixed-string"),
        "fixedarr": [b"x", b"yy"],
        "floats": np.linspace(0, 1, 7),
        "be": np.arange(3, dtype=">i8"),
        "boolean": np.True_,
        "empty": h5py.Empty("f4"),
        "utf8": "héllo ✓",
    }
    if big:  # past 64 KiB: dense storage and huge fractal-heap objects in the latest format
        values |= {"bigjson": "x" * 200_000, "bigarr": np.zeros(20_000, "<f8")}
    h5.attrs.update(values)
    h5["scalar"] = np.int64(42)
    h5["lr"] = np.float32(0.001)
    h5.create_dataset("chunked", data=np.ones((64, 8), "<f4"), chunks=(8, 8), compression="gzip")
    h5.create_dataset("chunked_raw", data=np.ones((64, 8), "<f2"), chunks=(16, 8))
    h5.create_dataset("unallocated", shape=(10,), dtype="<f4")
    h5["bool"] = np.array([True, False])
    h5["compound"] = np.zeros(3, dtype=[("a", "<i4"), ("b", "<f8")])
    h5["array"] = np.zeros(2, dtype=("<f4", (3,)))
    h5["vlen"] = np.array(["a", "bcd"], dtype=h5py.string_dtype())
    h5.create_dataset("opaque", data=np.zeros(8, dtype="V2")).attrs["dtype"] = "bfloat16"
    h5["soft"] = h5py.SoftLink("/many/d1")
    h5["external"] = h5py.ExternalLink("other.h5", "/x")
    h5["hard2"] = h5["many/d2"]
    h5["named_type"] = np.dtype("<f8")
    h5.create_dataset("uses_named", data=np.zeros(2), dtype=h5["named_type"])
    h5.create_dataset("refs", data=[h5["many"].ref], dtype=h5py.ref_dtype)
    h5.create_group("a/b/c/d").attrs["deep"] = b"yes"
    h5["a/b/c/d/x"] = np.zeros((2, 3, 4), "<u1")


LAYOUTS: dict[str, dict[str, Any]] = {
    "earliest": {"libver": "earliest"},
    "latest": {"libver": "latest", "_big": True},
    "v110": {"libver": "v110", "_big": True},
    "user-block": {"userblock_size": 4096},
    "creation-order": {"libver": "latest", "track_order": True, "_links": 50, "_attrs": 50},
    "dense-latest": {"libver": "latest", "_links": 3000, "_attrs": 400, "_big": True},
    "old-style-deep-btree": {"_links": 3000, "_attrs": 50},
}


@pytest.fixture(scope="module")
def written(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("h5")
    paths = {}
    for name, options in LAYOUTS.items():
        kwargs = {k: v for k, v in options.items() if not k.startswith("_")}
        path = paths[name] = folder / f"{name}.h5"
        with h5py.File(path, "w", **kwargs) as h5:
            _fill(h5, options.get("_links", 20), options.get("_attrs", 20), options.get("_big", False))
    return paths


def _norm(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        if value.dtype.kind == "O":
            return ("array", value.shape, [_norm(v) for v in value.reshape(-1).tolist()])
        return ("array", value.dtype.str, value.shape, value.tobytes())
    if isinstance(value, np.generic):
        return ("scalar", value.dtype.str, value.tobytes())
    if value is None or isinstance(value, h5py.Empty):
        return None
    return value


def _tree(root: Any, dataset_type: type, group_type: type) -> dict[str, Any]:
    def attrs(obj: Any) -> dict[str, Any]:
        return {k: _norm(obj.attrs[k]) for k in sorted(obj.attrs)}

    out = {"/": ("group", list(root.keys()), attrs(root))}

    def visit(name: str, obj: Any) -> None:
        if isinstance(obj, dataset_type):
            contiguous = obj.chunks is None and not obj.is_virtual and not obj.external
            stored = obj.id.get_storage_size() if obj.chunks is None else None  # chunk indexes: not walked
            offset = obj.id.get_offset() if contiguous and stored else None
            value = _norm(obj[()]) if obj.shape == () and obj.dtype.kind in "iuf" else None
            out[name] = ("dataset", obj.dtype.str, obj.shape, obj.chunks, offset, stored, value, attrs(obj))
        elif isinstance(obj, group_type):
            out[name] = ("group", list(obj.keys()), attrs(obj))

    root.visititems(visit)
    return out


def _compare(path: Path) -> int:
    with h5py.File(path, "r") as ref:
        expected = _tree(ref, h5py.Dataset, h5py.Group)
    with FileSource(path) as source:
        got = _tree(hdf5.File(source), hdf5.Dataset, hdf5.Group)
    assert got.keys() == expected.keys()
    for name, facts in expected.items():
        assert got[name] == facts, name
    return len(got)


@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_written_layouts_read_as_h5py_reads_them(written: dict[str, Path], layout: str) -> None:
    assert _compare(written[layout]) > 30


def test_fixture_and_corpus_files_read_as_h5py_reads_them() -> None:
    files = sorted(HEAVY.glob("*.h5")) + sorted((CORPUS / "formats" / "keras-h5").glob("*.h5"))
    files += sorted((CORPUS / "security").rglob("*.h5"))  # their attributes only: bytes, never loaded
    for path in files:
        assert _compare(path) >= 1, path


def test_links_are_followed_as_h5py_follows_them(written: dict[str, Path]) -> None:
    with FileSource(written["earliest"]) as source:
        h5 = hdf5.File(source)
        assert h5["soft"].shape == (2,) and h5["/a/b"]["c/d/x"].shape == (2, 3, 4)
        assert "external" in list(h5) and h5.get("external") is None  # never opens another file
        assert "missing" not in h5 and h5.get("many/missing") is None
        with pytest.raises(KeyError):
            h5["nope"]


# --- corrupt and hostile structures ----------------------------------------------------------------


def _superblock_v0(root_header: int, size: int) -> bytearray:
    data = bytearray(size)
    data[:8] = hdf5.MAGIC
    data[13:15] = bytes([8, 8])  # offset and length sizes
    data[24 + 8 * 4 + 8 : 24 + 8 * 6] = root_header.to_bytes(8, "little")  # root symbol table entry
    return data


def test_a_tiny_file_declaring_a_huge_header_is_refused_without_allocating() -> None:
    data = _superblock_v0(96, 200)
    data[96:112] = bytes([1, 0, 1, 0, 1, 0, 0, 0]) + (1 << 31).to_bytes(4, "little") + bytes(4)
    with pytest.raises(FormatError, match=r"over the limit|past the end"):
        hdf5.File(BytesSource(bytes(data))).keys()


def test_an_object_header_continuing_into_itself_is_refused() -> None:
    data = _superblock_v0(96, 256)
    # v1 header: one chunk of 24 bytes holding a continuation message back to its own chunk
    data[96:112] = bytes([1, 0, 5, 0, 1, 0, 0, 0]) + (24).to_bytes(4, "little") + bytes(4)
    message = (0x10).to_bytes(2, "little") + (16).to_bytes(2, "little") + bytes(4)
    data[112:136] = message + (112).to_bytes(8, "little") + (24).to_bytes(8, "little")
    with pytest.raises(FormatError, match="continues into itself"):
        hdf5.File(BytesSource(bytes(data)))


@pytest.mark.parametrize("name", ["keras3_legacy_full.h5", "tfkeras2_full.h5", "keras3_dense.weights.h5"])
def test_truncated_and_flipped_fixtures_fail_cleanly_and_fast(name: str) -> None:
    good = (HEAVY / name).read_bytes()
    rng = np.random.default_rng(16)
    started = time.monotonic()
    cases = [good[:cut] for cut in range(0, len(good), max(1, len(good) // 60))]
    for _ in range(150):
        bad = bytearray(good)
        for at in rng.integers(0, len(good), 3):
            bad[int(at)] ^= 1 << int(rng.integers(0, 8))
        cases.append(bytes(bad))
    for data in cases:
        with contextlib.suppress(FormatError, KeyError):
            _tree(hdf5.File(BytesSource(data)), hdf5.Dataset, hdf5.Group)
    assert time.monotonic() - started < 30
