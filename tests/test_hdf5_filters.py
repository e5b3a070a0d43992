"""Filtered fractal heaps (dense links of a group whose creation list has a filter pipeline) against
libhdf5: deflate and fletcher32 in every order, in a root direct block, in indirect blocks and in
huge objects; Fletcher32 computed as H5_checksum_fletcher32 and verified as H5Z_filter_fletcher32
verifies it (a flipped byte is a corrupt file: FormatError, `inspect` exit 2, one line); shuffle
undone for any element size.

Files are written by h5py's own libhdf5, its property lists set through ctypes (h5py has no API for
a group's filters). libhdf5 refuses shuffle on a heap (its set-local callback wants a dataset's
datatype), so the shuffled heap is made by re-encoding the block of a libhdf5 file, and libhdf5's
own unshuffle (h5py reading it) is the reference.
"""

from __future__ import annotations

import ctypes
import glob
import os
import random
import shutil
import struct
import zlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tensorfile import hdf5
from tensorfile.errors import FormatError
from tensorfile.hdf5 import filters as heap_filters
from tensorfile.hdf5 import structures
from tensorfile.scan import scan_file
from tensorfile.source import open_source

from .conftest import run_cli
from .test_hdf5_sohm_filtered import _tree

h5py = pytest.importorskip("h5py")
_LIBS = glob.glob(os.path.join(os.path.dirname(h5py.__file__) + ".libs", "libhdf5-*.so*"))
pytestmark = pytest.mark.skipif(not _LIBS, reason="h5py's bundled libhdf5 not found")
_CONFIG = '{"class_name": "Sequential", "config": {"layers": [{"class_name": "Dense", "config": {}}]}}'


def _lib() -> Any:
    return ctypes.CDLL(_LIBS[0])


def _make(path: Path, filters: list[str], links: int = 20, long_name: int = 0) -> None:
    """A Keras-like file whose `model_weights` group keeps its links in a heap filtered by `filters`
    (applied in that order on write); `long_name` adds a link whose name is a huge heap object."""
    lib = _lib()
    with h5py.File(path, "w", libver="latest", track_order=True) as f:
        f.attrs["model_config"] = _CONFIG
        f.attrs["keras_version"] = "2.15.0"
        gcpl = h5py.h5p.create(h5py.h5p.GROUP_CREATE)
        plist = ctypes.c_int64(gcpl.id)
        for name in filters:
            if name == "deflate":
                assert lib.H5Pset_deflate(plist, 6) >= 0
            elif name == "deflate0":  # stored, not compressed: a slot the shuffle test re-encodes
                assert lib.H5Pset_deflate(plist, 0) >= 0
            else:
                assert name == "fletcher32" and lib.H5Pset_fletcher32(plist) >= 0
        assert lib.H5Pset_link_phase_change(plist, 0, 0) >= 0  # dense links from the first one
        group = h5py.Group(h5py.h5g.create(f.id, b"model_weights", gcpl=gcpl))
        for i in range(links):
            group[f"layer_{i}"] = np.arange(i % 5 + 1, dtype="<f4")
            group.attrs[f"attr{i}"] = f"value {i}"
        if long_name:
            group["w" * long_name] = np.arange(3)


def _h5py_tree(path: Path) -> dict[str, Any]:
    with h5py.File(path, "r") as f:
        return _tree(f, h5py.Group)


def _our_tree(path: Path) -> dict[str, Any]:
    with open_source(path) as source, hdf5.File(source, str(path)) as f:
        return _tree(f, hdf5.Group)


def _heap_address(group: Any) -> int:
    """The link heap a group's link info message names."""
    h5 = group._h5
    (info,) = [body for kind, _flags, body in h5.messages(group._addr) if kind == structures.LINK_INFO]
    cur = structures.Cursor(info, h5, "link info")
    cur.skip(1)
    cur.skip(1 + (8 if cur.data[1] & 1 else 0))  # flags, then the maximum creation index if tracked
    return cur.addr()


def _heap(path: Path) -> tuple[int, int, Any]:
    """(superblock offset, heap header address, parsed heap header) of model_weights' link heap,
    found by reading the structures."""
    with open_source(path) as source, hdf5.File(source, str(path)) as f:
        address = _heap_address(f["model_weights"])
        return f._h5.base, address, f._h5.fractal_heap(address)


def _block(path: Path, heap_offset: int = 0) -> tuple[int, int]:
    """(file offset, stored length) of the filtered direct block holding `heap_offset`: the root
    block, or the one an indirect block's entry points at (with its stored size)."""
    with open_source(path) as source, hdf5.File(source, str(path)) as f:
        h5 = f._h5
        heap = h5.fractal_heap(_heap_address(f["model_weights"]))
        block, _start, (stored, _mask), _size = heap._direct_block(heap_offset)
        return h5.base + block, stored


def _huge_object(path: Path) -> tuple[int, int]:
    """(file offset, stored length) of the first huge object of the heap: IDs of 7 bytes hold no
    address, so the heap's huge-object B-tree records do (address, length, mask, size, ID)."""
    with open_source(path) as source, hdf5.File(source, str(path)) as f:
        h5 = f._h5
        heap = h5.fractal_heap(_heap_address(f["model_weights"]))
        assert heap.id_length == 7
        address, length = struct.unpack_from("<QQ", next(h5.btree2_records(heap.huge_tree)))
        return h5.base + address, length


def _flip(src: Path, dst: Path, offset: int) -> None:
    shutil.copyfile(src, dst)
    with open(dst, "r+b") as fh:
        fh.seek(offset)
        byte = fh.read(1)[0]
        fh.seek(offset)
        fh.write(bytes([byte ^ 0x01]))


def _h5py_fails(path: Path) -> bool:
    try:
        _h5py_tree(path)
    except (OSError, RuntimeError, KeyError):
        return True
    return False


# --- the checksum itself ----------------------------------------------------------------------


def test_fletcher32_is_libhdf5s() -> None:
    """Equal to libhdf5's own exported H5_checksum_fletcher32 on edge cases: odd lengths (the last
    byte is a high byte), all-0xff words (the folding at its limits), the 360-word blocks of the C
    loop, sums that are multiples of 65535, zeros, random data."""
    fn = _lib().H5_checksum_fletcher32
    fn.restype, fn.argtypes = ctypes.c_uint32, [ctypes.c_char_p, ctypes.c_size_t]
    rng = random.Random(16)
    cases = [b"\xff\xff" * 65535, b"\x00\x01" * 65535, b"\x00" * 4096 + b"\x01"]
    for n in [*range(1, 40), 719, 720, 721, 1439, 1440, 1441, 65535, 65536, 1 << 20]:
        cases += [b"\xff" * n, b"\x00" * n, bytes([0xFF, 0]) * (n // 2) + b"\x01" * (n % 2), rng.randbytes(n)]
    cases += [
        bytes(rng.choice((0, 255, rng.randrange(256))) for _ in range(rng.randrange(1, 3000)))
        for _ in range(500)
    ]
    wrong = [len(c) for c in cases if heap_filters.fletcher32(c) != fn(c, len(c))]
    assert not wrong and len(cases) > 600


# --- reading what libhdf5 wrote -----------------------------------------------------------------

_PIPELINES = [["deflate"], ["fletcher32"], ["deflate", "fletcher32"], ["fletcher32", "deflate"]]
_LAYOUTS = {"root-block": (20, 0), "indirect-blocks": (400, 0), "huge-object": (20, 5000)}


@pytest.mark.parametrize("layout", list(_LAYOUTS))
@pytest.mark.parametrize("filters", _PIPELINES, ids=["+".join(p) for p in _PIPELINES])
def test_reads_as_h5py_reads(tmp_path: Path, filters: list[str], layout: str) -> None:
    links, long_name = _LAYOUTS[layout]
    path = tmp_path / "model.h5"
    _make(path, filters, links, long_name)
    _base, _address, heap = _heap(path)
    assert [f.ident for f in heap.filters] == [{"deflate": 1, "fletcher32": 3}[n] for n in filters]
    assert (heap.rows > 0) == (layout == "indirect-blocks")
    want = _h5py_tree(path)
    assert _our_tree(path) == want and len(want) == links + 2 + bool(long_name)


# --- corruption ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("filters", "links", "where"),
    [
        (["fletcher32"], 20, "checksum"),
        (["fletcher32"], 20, "free space"),  # unread bytes: only the checksum notices
        (["deflate", "fletcher32"], 20, "checksum"),
        (["fletcher32"], 400, "checksum"),  # a block an indirect block points at
        (["deflate", "fletcher32"], 20, "huge object"),  # a link name too long for the blocks
    ],
    ids=["checksum", "free-space", "deflate-checksum", "indirect-block", "huge-object"],
)
def test_a_flipped_byte_is_a_corrupt_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, filters: list[str], links: int, where: str
) -> None:
    good, bad = tmp_path / "good.h5", tmp_path / "bad.h5"
    _make(good, filters, links, 5000 if where == "huge object" else 0)
    if where == "huge object":
        start, stored = _huge_object(good)
    else:
        start, stored = _block(good, heap_offset=0 if links == 20 else 5000)
    # the checksum is the stored bytes' last 4; free space ends the block just before it
    _flip(good, bad, start + stored - (1 if where == "checksum" else 5))
    assert _h5py_fails(bad)  # libhdf5 calls it corrupt too ("data error detected by Fletcher32 checksum")
    with pytest.raises(FormatError, match="fails its Fletcher32 checksum"):
        _our_tree(bad)
    proc = run_cli("inspect", str(bad))
    assert proc.returncode == 2 and not proc.stdout, proc.stdout
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Fletcher32 checksum" in lines[0] and "corrupt file" in lines[0], proc.stderr
    if where == "free space":  # without the check the damage would pass unseen
        with monkeypatch.context() as patch:
            patch.setattr(heap_filters, "check_fletcher32", lambda data, _h5: data[:-4])
            assert _our_tree(bad) == _our_tree(good)
    # scan judges model_config (a root attribute, never in a filtered heap): the verdict stands
    # and nothing is raised; see docs/SCAN.md
    before, after = scan_file(good), scan_file(bad)
    assert (after.status, after.error, after.findings) == (before.status, None, before.findings)


def test_byte_swapped_checksum_of_old_libhdf5_is_accepted(tmp_path: Path) -> None:
    """libhdf5 before 1.6.3 stored the checksum with the bytes of each 16-bit half swapped on
    little-endian hosts; H5Z_filter_fletcher32 still accepts that form, and so does the reader."""
    good, old = tmp_path / "good.h5", tmp_path / "old.h5"
    _make(good, ["deflate", "fletcher32"])
    start, stored = _block(good)
    shutil.copyfile(good, old)
    with open(old, "r+b") as fh:
        fh.seek(start + stored - 4)
        value = int.from_bytes(fh.read(4), "little")
        swapped = (value & 0x00FF00FF) << 8 | (value >> 8) & 0x00FF00FF
        assert swapped != value
        fh.seek(start + stored - 4)
        fh.write(swapped.to_bytes(4, "little"))
    assert _our_tree(old) == _h5py_tree(old) == _h5py_tree(good)


def test_short_and_oversized_blocks_are_format_errors(tmp_path: Path) -> None:
    path = tmp_path / "model.h5"
    _make(path, ["fletcher32"])
    _base, _address, heap = _heap(path)
    with pytest.raises(FormatError, match="too short"):
        heap._unfiltered(b"\x00\x01\x02", 0, 512)
    with pytest.raises(FormatError, match="over the limit"):
        heap._unfiltered(b"\x00" * 8, 0, 1 << 40)


# --- shuffle ------------------------------------------------------------------------------------


def _shuffle(data: bytes, width: int) -> bytes:
    """H5Z_filter_shuffle's forward direction, byte by byte: byte j of element i goes to
    j * count + i; bytes past the last whole element stay at the end."""
    count = len(data) // width
    if width <= 1 or count <= 1:
        return data
    out = bytearray(len(data))
    for i in range(count):
        for j in range(width):
            out[j * count + i] = data[i * width + j]
    out[count * width :] = data[count * width :]
    return bytes(out)


@pytest.mark.parametrize("width", [1, 2, 3, 4, 5, 8, 12, 16, 100, 1000])
def test_unshuffle_inverts_shuffle(width: int) -> None:
    rng = random.Random(width)
    for length in (0, 1, width - 1, width, width + 1, 2 * width, 2 * width + 1, 511, 512, 4099):
        data = rng.randbytes(max(length, 0))
        assert heap_filters.unshuffle((width,), _shuffle(data, width), None) == data  # type: ignore[arg-type]


@pytest.mark.parametrize("values", [(), (0,), (4, 1)])
def test_unshuffle_without_one_element_size_fails(values: tuple[int, ...], tmp_path: Path) -> None:
    path = tmp_path / "model.h5"
    _make(path, ["deflate"])
    _base, _address, heap = _heap(path)
    with pytest.raises(FormatError, match="shuffle filter has invalid parameters"):
        heap_filters.unshuffle(values, b"\x00" * 64, heap.h5)


@pytest.mark.parametrize("dtype", ["<i2", "<f4", "<f8", "S3", [("a", "<i4"), ("b", "<f8")]])
def test_unshuffle_undoes_libhdf5s_shuffle(tmp_path: Path, dtype: Any) -> None:
    """libhdf5's own shuffle, as it stores a shuffled dataset chunk (read back raw, filters not
    undone), is undone to the chunk's bytes."""
    data = np.frombuffer(random.Random(7).randbytes(np.dtype(dtype).itemsize * 300), dtype)
    with h5py.File(tmp_path / "d.h5", "w") as f:
        ds = f.create_dataset("x", data=data, chunks=(300,), shuffle=True)
        _mask, raw = ds.id.read_direct_chunk((0,))
    assert raw != data.tobytes() or np.dtype(dtype).itemsize == 1
    assert heap_filters.unshuffle((np.dtype(dtype).itemsize,), raw, None) == data.tobytes()  # type: ignore[arg-type]


def _lookup3(data: bytes) -> int:
    fn = _lib().H5_checksum_metadata
    fn.restype, fn.argtypes = ctypes.c_uint32, [ctypes.c_char_p, ctypes.c_size_t, ctypes.c_uint32]
    return int(fn(data, len(data), 0))


def _reencode_as_shuffled(src: Path, dst: Path, width: int) -> None:
    """`src`'s heap has the pipeline [deflate 0, deflate 0, fletcher32] in one root direct block
    (stored, so as large as a re-encoded block can be); `dst` gets [shuffle(width), deflate 6,
    fletcher32] with the block re-encoded to match: the filters' client values and the first one's
    id patched in the heap header (same encoded size), the block stored
    shuffled, deflated and checksummed (libhdf5's H5_checksum_fletcher32) in its old place, and the
    header's stored size and metadata checksum (libhdf5's H5_checksum_metadata) updated."""
    base, address, heap = _heap(src)
    assert [f.ident for f in heap.filters] == [1, 1, 3] and heap.rows == 0
    stored, _mask = heap.root_filtered
    data = bytearray(src.read_bytes())
    header = base + address
    # FRHP layout (sizes of offsets and lengths 8): up to the current row count, then the root
    # block's stored size (8), filter mask (4), the pipeline message, the checksum (4)
    assert data[header : header + 4] == b"FRHP"
    filter_len = struct.unpack_from("<H", data, header + 7)[0]
    fixed = 4 + 1 + 2 + 2 + 1 + 4 + 10 * 8 + 2 * 8 + 2 + 8 + 8 + 2 + 2 + 8 + 2
    size_at, pipeline_at = header + fixed, header + fixed + 8 + 4
    assert struct.unpack_from("<Q", data, size_at)[0] == stored
    version, count = data[pipeline_at], data[pipeline_at + 1]
    assert (version, count) == (2, 3)
    first = pipeline_at + 2  # id, flags, number of values, the value (v2: no name for ids < 256)
    assert struct.unpack_from("<HHHI", data, first) == (1, 1, 1, 0)  # deflate: optional, level 0
    struct.pack_into("<HHHI", data, first, 2, 1, 1, width)  # shuffle is optional, as H5Pset_shuffle sets it
    assert struct.unpack_from("<HHHI", data, first + 10) == (1, 1, 1, 0)
    struct.pack_into("<I", data, first + 16, 6)
    # the block: deflate 0 undone is its plain image; encode it as the new pipeline does
    block = base + heap.root
    plain = zlib.decompress(zlib.decompress(bytes(data[block : block + stored - 4])))
    assert len(plain) == heap.start_size
    fletcher = _lib().H5_checksum_fletcher32
    fletcher.restype, fletcher.argtypes = ctypes.c_uint32, [ctypes.c_char_p, ctypes.c_size_t]
    body = zlib.compress(_shuffle(plain, width), 6)
    encoded = body + int(fletcher(body, len(body))).to_bytes(4, "little")
    assert len(encoded) <= stored, "the re-encoded block must fit where the old one was"
    data[block : block + len(encoded)] = encoded
    struct.pack_into("<Q", data, size_at, len(encoded))
    checksum_at = pipeline_at + filter_len
    struct.pack_into("<I", data, checksum_at, _lookup3(bytes(data[header:checksum_at])))
    dst.write_bytes(bytes(data))


@pytest.mark.parametrize("width", [4, 3, 7])
def test_shuffled_heap_reads_as_libhdf5_reads(tmp_path: Path, width: int) -> None:
    src, dst = tmp_path / "src.h5", tmp_path / "shuffled.h5"
    _make(src, ["deflate0", "deflate0", "fletcher32"])
    _reencode_as_shuffled(src, dst, width)
    _base, _address, heap = _heap(dst)
    assert heap.filters == [
        heap_filters.Filter(2, (width,)),
        heap_filters.Filter(1, (6,)),
        heap_filters.Filter(3, ()),
    ]
    want = _h5py_tree(dst)  # libhdf5's H5Z_filter_shuffle undoes it
    assert want == _h5py_tree(src)
    assert _our_tree(dst) == want
