"""The streaming .npz and Flax msgpack writers, checked against numpy's and flax's own readers and writers.

Sources are real files in tmp_path described the way readers describe them (byte offsets,
element offsets, strides for views, loaders), so the writers run their real streaming paths.
"""

from __future__ import annotations

import io
import time
import tracemalloc
import types
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import ml_dtypes
import numpy as np
import pytest

from tensorfile.convert import flax_out
from tensorfile.convert.flax_out import build_tree, write_flax_msgpack
from tensorfile.convert.npz_out import npy_header, write_npz
from tensorfile.convert.stream import OutTensor
from tensorfile.convert.stream import out_chunks as real_out_chunks
from tensorfile.convert.tensors import FileMaps, SourceTensor
from tensorfile.errors import UsageError

CANONICAL = {
    np.dtype(np.float64): "F64",
    np.dtype(np.float32): "F32",
    np.dtype(np.float16): "F16",
    np.dtype(ml_dtypes.bfloat16): "BF16",
    np.dtype(ml_dtypes.float8_e4m3fn): "F8_E4M3",
    np.dtype(ml_dtypes.float8_e5m2): "F8_E5M2",
    np.dtype(np.int64): "I64",
    np.dtype(np.int32): "I32",
    np.dtype(np.bool_): "BOOL",
}


class Case:
    """Makes source tensors in files under one folder and remembers what each must read back as."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.tensors: list[OutTensor] = []
        self.expected: dict[str, np.ndarray] = {}

    def _file(self, storage: np.ndarray, pad: int) -> Path:
        path = self.folder / f"storage{len(self.tensors)}.bin"
        path.write_bytes(b"\xa5" * pad + storage.tobytes())
        return path

    def plain(self, name: str, array: np.ndarray, out_dtype: Any = None, pad: int = 0) -> None:
        """A C-contiguous tensor stored at byte `pad` of its file, optionally cast on the way out."""
        source = SourceTensor(
            name, CANONICAL[array.dtype], array.shape, file=self._file(array, pad), storage_offset=pad
        )
        self._add(source, array, out_dtype)

    def view(
        self,
        name: str,
        storage: np.ndarray,
        shape: tuple[int, ...],
        strides: tuple[int, ...],
        element_offset: int = 0,
        out_dtype: Any = None,
    ) -> None:
        """A view into a 1-D storage, like a torch tensor that is a transpose or a slice."""
        source = SourceTensor(
            name,
            CANONICAL[storage.dtype],
            shape,
            file=self._file(storage, 8),
            storage_offset=8,
            storage_nbytes=storage.nbytes,
            element_offset=element_offset,
            strides=strides,
        )
        step = storage.itemsize
        expected = np.lib.stride_tricks.as_strided(
            storage[element_offset:], shape=shape, strides=tuple(s * step for s in strides)
        )
        self._add(source, expected.copy(), out_dtype)

    def loaded(self, name: str, array: np.ndarray) -> None:
        """Data that is not plain in a file (a deflated member): handed over by a loader."""
        source = SourceTensor(name, CANONICAL[array.dtype], array.shape, loader=lambda: array.copy())
        self._add(source, array, None)

    def _add(self, source: SourceTensor, array: np.ndarray, out_dtype: Any) -> None:
        if out_dtype is None:
            out, expected = source.dtype, array
        else:
            out = CANONICAL[np.dtype(out_dtype)]
            expected = array.astype(out_dtype)
        self.tensors.append(OutTensor(source.name, source, out))
        self.expected[source.name] = expected.copy(order="C")


def mixed_case(folder: Path, sep: str = ".") -> Case:
    """Every kind of source and dtype the writers must handle, under nested names."""
    rng = np.random.default_rng(0)
    case = Case(folder)
    f32 = rng.standard_normal(64).astype(np.float32) * 100
    case.plain(f"embed{sep}weight", f32[:12].reshape(4, 3), pad=16)
    case.view(f"layers{sep}0{sep}kernel", f32[:15], shape=(5, 3), strides=(1, 5))  # a transpose
    case.view(f"layers{sep}0{sep}bias", f32[:10], shape=(4,), strides=(1,), element_offset=3)
    case.plain(f"cast{sep}bf16", f32[:6].reshape(2, 3), out_dtype=ml_dtypes.bfloat16)
    case.plain(f"cast{sep}f16", f32[:5], out_dtype=np.float16)
    case.plain("bf16", rng.standard_normal((3, 2)).astype(ml_dtypes.bfloat16))
    e4m3 = np.array([0, 1, -1.5, 448, -448, 0.015625, np.nan], np.float32).astype(ml_dtypes.float8_e4m3fn)
    case.plain(f"fp8{sep}e4m3", e4m3)
    case.plain("scalar", np.array(3.25, np.float64))
    case.plain("empty", np.zeros((0, 3), np.float32))
    case.plain("mask", np.array([[True, False], [False, True]]))
    case.view("ids", np.arange(-3, 3, dtype=np.int64) * 10**12, shape=(3,), strides=(2,))
    case.loaded("loaded", np.arange(6, dtype=np.int32).reshape(2, 3))
    return case


def same(got: np.ndarray, expected: np.ndarray) -> None:
    """Same dtype, shape and bits (NaN included)."""
    assert got.dtype == expected.dtype
    assert got.shape == expected.shape
    assert got.tobytes() == expected.tobytes()


def counting() -> tuple[Callable[[int], None], list[int]]:
    calls: list[int] = []
    return calls.append, calls


# .npz


def write_npz_file(case: Case, path: Path) -> list[int]:
    progress, calls = counting()
    with FileMaps() as maps, open(path, "wb") as out:
        write_npz(out, case.tensors, maps, progress)
    return calls


def from_npz(got: np.ndarray, expected: np.ndarray) -> np.ndarray:
    """np.load gives ml_dtypes data as raw void of the same width: view it as the real type."""
    if expected.dtype.num >= 256:
        assert got.dtype == np.dtype(f"V{expected.itemsize}")
        return got.view(expected.dtype)
    return got


def test_npz_reads_back_with_np_load(tmp_path: Path) -> None:
    case = mixed_case(tmp_path, sep="/")
    case.plain("fp8/e5m2", np.array([1, -2, 57344], np.float32).astype(ml_dtypes.float8_e5m2))
    path = tmp_path / "out.npz"
    calls = write_npz_file(case, path)
    assert sum(calls) == sum(t.nbytes for t in case.tensors)
    with np.load(path) as npz:
        assert list(npz.files) == [t.name for t in case.tensors]
        for name, expected in case.expected.items():
            same(from_npz(npz[name], expected), expected)
    with zipfile.ZipFile(path) as archive:
        assert {info.compress_type for info in archive.infolist()} == {zipfile.ZIP_STORED}
        assert archive.testzip() is None  # every member's CRC checks out


def test_npz_is_byte_identical_to_np_savez(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Same member timestamps for both archives; everything else must match as written.
    clock = types.SimpleNamespace(time=lambda: 1_700_000_000.0, localtime=time.localtime)
    monkeypatch.setattr(zipfile, "time", clock)
    case = mixed_case(tmp_path, sep="/")
    ours, theirs = tmp_path / "ours.npz", tmp_path / "theirs.npz"
    write_npz_file(case, ours)
    np.savez(theirs, **case.expected)
    assert ours.read_bytes() == theirs.read_bytes()


@pytest.mark.parametrize(
    "dtype",
    [np.float32, np.int64, np.bool_, np.float16, ml_dtypes.bfloat16, ml_dtypes.float8_e4m3fn],
)
@pytest.mark.parametrize("shape", [(), (0,), (3, 0, 2), (2, 3), (10**11,)])
def test_npy_header_is_what_np_save_writes(dtype: Any, shape: tuple[int, ...]) -> None:
    buffer = io.BytesIO()
    np.lib.format.write_array_header_1_0(
        buffer,
        {"descr": np.lib.format.dtype_to_descr(np.dtype(dtype)), "fortran_order": False, "shape": shape},
    )
    assert npy_header(CANONICAL[np.dtype(dtype)], shape) == buffer.getvalue()
    if shape != (10**11,):
        saved = io.BytesIO()
        np.save(saved, np.zeros(shape, dtype))
        assert saved.getvalue().startswith(npy_header(CANONICAL[np.dtype(dtype)], shape))


def test_npz_e5m2_gets_a_loadable_descr() -> None:
    # np.save writes '<f1' for float8_e5m2, which np.load rejects; we write raw void instead.
    assert b"'descr': '<V1'" in npy_header("F8_E5M2", (3,))


def test_npz_rejects_duplicate_names(tmp_path: Path) -> None:
    case = Case(tmp_path)
    case.plain("w", np.zeros(2, np.float32))
    case.plain("w", np.ones(2, np.float32))
    with pytest.raises(UsageError, match="appears twice"):
        write_npz_file(case, tmp_path / "out.npz")


# Flax msgpack


def nest(expected: dict[str, np.ndarray], sep: str) -> dict[str, Any]:
    """The nested dict a flax user would hand to `to_bytes`, in first-appearance order."""
    tree: dict[str, Any] = {}
    for name, array in expected.items():
        *parents, last = name.split(sep)
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[last] = array
    return tree


def assert_same_tree(got: Any, expected: Any) -> None:
    if isinstance(expected, dict):
        assert isinstance(got, dict)
        assert set(got) == set(expected)
        for key in expected:
            assert_same_tree(got[key], expected[key])
    else:
        same(np.asarray(got), expected)


def write_flax_bytes(case: Case, path: Path, sep: str | None = None) -> tuple[bytes, list[int]]:
    progress, calls = counting()
    with FileMaps() as maps, open(path, "wb") as out:
        write_flax_msgpack(out, case.tensors, maps, progress, sep=sep)
    return path.read_bytes(), calls


@pytest.mark.parametrize("sep", [".", "/"])
def test_flax_is_byte_identical_to_to_bytes(tmp_path: Path, sep: str) -> None:
    serialization = pytest.importorskip("flax.serialization")
    case = mixed_case(tmp_path, sep=sep)
    data, calls = write_flax_bytes(case, tmp_path / "out.msgpack")
    assert sum(calls) == sum(t.nbytes for t in case.tensors)
    tree = nest(case.expected, sep)
    assert data == serialization.to_bytes(tree)
    assert_same_tree(serialization.msgpack_restore(data), tree)


def test_flax_separator_choice(tmp_path: Path) -> None:
    serialization = pytest.importorskip("flax.serialization")
    case = Case(tmp_path)
    case.plain("params/dense.0/kernel", np.ones((2, 2), np.float32))
    case.plain("params/dense.0/bias", np.zeros(2, np.float32))
    case.plain("step", np.array(7, np.int64))
    data, _ = write_flax_bytes(case, tmp_path / "auto.msgpack")  # a '/' anywhere: split on '/'
    restored = serialization.msgpack_restore(data)
    assert set(restored["params"]) == {"dense.0"}
    assert_same_tree(restored, nest(case.expected, "/"))
    data, _ = write_flax_bytes(case, tmp_path / "dots.msgpack", sep=".")
    assert set(serialization.msgpack_restore(data)) == {"params/dense", "step"}


@pytest.mark.parametrize("names", [["a.b", "a.b.c"], ["a.b.c", "a.b"], ["x", "a.b.c.d", "a.b.c"]])
def test_flax_leaf_that_is_also_a_prefix_is_refused(tmp_path: Path, names: list[str]) -> None:
    case = Case(tmp_path)
    for name in names:
        case.plain(name, np.zeros(1, np.float32))
    with pytest.raises(UsageError, match="both an array and a dict") as caught:
        build_tree(case.tensors)
    assert "\n" not in str(caught.value)


def test_flax_duplicate_name_is_refused(tmp_path: Path) -> None:
    case = Case(tmp_path)
    case.plain("a.b", np.zeros(1, np.float32))
    case.plain("a.b", np.zeros(1, np.float32))
    with pytest.raises(UsageError, match="appears twice"):
        build_tree(case.tensors)


@pytest.mark.parametrize("threshold", [24, 30])
@pytest.mark.parametrize("read_bytes", [None, 10])
def test_flax_chunked_arrays(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, threshold: int, read_bytes: int | None
) -> None:
    """Arrays over the threshold take flax's chunked form, whichever way their bytes arrive."""
    serialization = pytest.importorskip("flax.serialization")
    monkeypatch.setattr(flax_out, "MAX_CHUNK_SIZE", threshold)
    if read_bytes is not None:  # read chunks smaller than flax chunks: one flax chunk spans several
        monkeypatch.setattr(flax_out, "out_chunks", lambda t, m: real_out_chunks(t, m, read_bytes))
    rng = np.random.default_rng(1)
    case = Case(tmp_path)
    f32 = rng.standard_normal(40).astype(np.float32)
    case.plain("big.plain", f32[:20].reshape(4, 5), pad=4)  # 80 bytes: contiguous run per chunk
    case.plain("big.cast", f32[:21].reshape(3, 7), out_dtype=ml_dtypes.bfloat16)  # 42 bytes after cast
    case.view("big.strided", np.arange(15, dtype=np.int64), shape=(5, 3), strides=(1, 5))
    case.loaded("big.loaded", np.arange(12, dtype=np.int32).reshape(3, 4))
    case.plain("small.bias", f32[:3])  # 12 bytes: stays a plain leaf
    case.plain("small.scalar", np.array(True))
    case.plain("small.empty", np.zeros((0, 9), np.float32))
    data, calls = write_flax_bytes(case, tmp_path / "out.msgpack")
    assert sum(calls) == sum(t.nbytes for t in case.tensors)

    tree = nest(case.expected, ".")
    assert_same_tree(serialization.msgpack_restore(data), tree)  # flax reads chunks at any threshold
    monkeypatch.setattr(serialization, "MAX_CHUNK_SIZE", threshold)
    assert data == serialization.to_bytes(tree)
    assert b"__msgpack_chunked_array__" in data


def test_flax_chunked_scalar(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    serialization = pytest.importorskip("flax.serialization")
    monkeypatch.setattr(flax_out, "MAX_CHUNK_SIZE", 4)
    monkeypatch.setattr(serialization, "MAX_CHUNK_SIZE", 4)
    case = Case(tmp_path)
    case.plain("step", np.array(2**40, np.int64))  # 8 bytes over a 4-byte threshold, no dims
    data, _ = write_flax_bytes(case, tmp_path / "out.msgpack")
    assert data == serialization.to_bytes({"step": case.expected["step"]})
    same(serialization.msgpack_restore(data)["step"], case.expected["step"])


def test_flax_framing_matches_msgpack() -> None:
    msgpack = pytest.importorskip("msgpack")
    for n in [0, 1, 2, 3, 4, 8, 15, 16, 17, 31, 32, 127, 128, 255, 256, 65535, 65536, 2**32 - 1, 2**32]:
        assert flax_out._pack(n) == msgpack.packb(n)
    for n in [0, 1, 15, 16, 17, 65535, 65536]:
        assert flax_out._pack(list(range(n))) == msgpack.packb(list(range(n)))
        assert (
            flax_out._map_header(n)
            == msgpack.packb({str(i): 0 for i in range(n)})[: len(flax_out._map_header(n))]
        )
    for n in [0, 1, 31, 32, 255, 256, 65535, 65536]:
        assert flax_out._pack("é" * (n // 2) + "x" * (n % 2)) == msgpack.packb("é" * (n // 2) + "x" * (n % 2))
    for n in [0, 1, 2, 3, 4, 5, 8, 9, 15, 16, 17, 255, 256, 65535, 65536]:
        assert flax_out._bin_header(n) == msgpack.packb(b"\0" * n, use_bin_type=True)[: -n or None]
        if n:
            ext = msgpack.packb(msgpack.ExtType(1, b"\0" * n))
            assert flax_out._ext_header(1, n) == ext[:-n]
    assert flax_out._pack(True) == msgpack.packb(True)


# Both writers


def test_writers_accept_in_memory_output(tmp_path: Path) -> None:
    """A BytesIO has no file descriptor: the writers fall back from kernel copies to plain writes."""
    case = mixed_case(tmp_path)
    for writer, name in [(write_npz, "out.npz"), (write_flax_msgpack, "out.msgpack")]:
        buffer = io.BytesIO()
        with FileMaps() as maps, open(tmp_path / name, "wb") as out:
            writer(buffer, case.tensors, maps)
            writer(out, case.tensors, maps)
        if writer is write_flax_msgpack:
            assert buffer.getvalue() == (tmp_path / name).read_bytes()
        else:
            buffer.seek(0)
            with np.load(buffer) as npz:
                for key, expected in case.expected.items():
                    same(from_npz(npz[key], expected), expected)


@pytest.mark.parametrize("writer", ["npz", "flax"])
def test_memory_does_not_grow_with_tensor_size(tmp_path: Path, writer: str) -> None:
    """A 64 MiB tensor, cast on the way out, goes through in bounded chunks."""
    case = Case(tmp_path)
    big = np.arange(16 * 2**20, dtype=np.float32)
    case.plain("big.weight", big, out_dtype=ml_dtypes.bfloat16)
    case.plain("big.copy", big)
    del big
    tracemalloc.start()
    try:
        with FileMaps() as maps, open(tmp_path / "out", "wb") as out:
            if writer == "npz":
                write_npz(out, case.tensors, maps)
            else:
                write_flax_msgpack(out, case.tensors, maps)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 24 * 2**20
    if writer == "npz":
        with np.load(tmp_path / "out") as npz:
            same(npz["big.weight"].view(ml_dtypes.bfloat16), case.expected["big.weight"])
            same(npz["big.copy"], case.expected["big.copy"])
