"""What every Keras HDF5 reader shares: the superblock search (user blocks included), attribute text,
and reads guarded so a corrupt structure is the file's fault, said in one line."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ... import hdf5
from ...errors import TensorfileError
from ...probe import FileProbe
from ...source import FileSource

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_USERBLOCK_OFFSETS = (0, 512, 1024, 2048, 4096, 8192, 16384, 32768)


def hdf5_offset(head: bytes) -> int | None:
    """Where the HDF5 superblock starts (0 or a power-of-two user-block size), or None."""
    for offset in _USERBLOCK_OFFSETS:
        if head[offset : offset + 8] == HDF5_MAGIC:
            return offset
    return None


def attr_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


# Candidates past the head that identify reads on a source other than a local file: each is a
# Range request there (64 KiB fetched), so a remote file is searched up to a 16 MiB user block
# (9 requests at most, about 576 KiB), never read through. A local file is searched to its end.
_REMOTE_CANDIDATES = 9


def superblock_offset(probe: FileProbe) -> int | None:
    """hdf5_offset of the head, else libhdf5's search on (0, 512, 1024, …) up to the file size."""
    offset = hdf5_offset(probe.head)
    if offset is not None:
        return offset
    local = isinstance(probe.source, FileSource)
    return hdf5.find_superblock(
        probe.source, _USERBLOCK_OFFSETS[-1] * 2, None if local else _REMOTE_CANDIDATES
    )


def _reason(exc: BaseException) -> str:
    return str(exc).split("(")[0].strip() or type(exc).__name__


# HDF5 is read by tensorfile.hdf5, structure by structure in plain Python (bounded, no C library, no
# child process): h5py is not imported to identify, inspect or scan a file.


def guarded(fn: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    try:
        return fn()
    except TensorfileError as exc:
        return {"error": exc.message}
    except Exception as exc:  # a structure the reader does not expect: the file's fault, said so
        return {"error": f"HDF5 structure is corrupt: {_reason(exc)}"}
