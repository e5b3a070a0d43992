"""The requests and bytes a verb reads of a local file: this thread's read syscalls, exactly.

A local file is read through several doors (our FileSource's preads, `Path.open` for the scanner's
head and pickles, `read_bytes` for a folder's config.json, zipfile and tarfile over streams), so
the count is taken where they all meet: the kernel's per-thread counters (`/proc/thread-self/io`,
syscr and rchar). Per thread, not per process: a Ray worker's gRPC threads read sockets meanwhile.
Two things the thread reads that are not the file are taken out:

- our own reads of the counters (one syscall and the length of the text each time);
- imports the verb triggers (the first ONNX file of a worker imports the ONNX reader: hundreds
  of kB of .pyc). While a meter runs, `importlib._bootstrap._find_and_load` is wrapped: every
  import of a module not yet in sys.modules goes through it, whether it came from an import
  statement, `importlib.import_module` or a C extension, so each is measured and left out.

So a file costs the same bytes in a serial run, on the pool and on Ray, first in its worker or
not. Where the counters do not exist (not Linux) the counts are zero.
"""

from __future__ import annotations

import os
import threading
from importlib import _bootstrap  # type: ignore[attr-defined]
from typing import Any

_SELF = "/proc/thread-self/io"
_local = threading.local()  # .meter: the Meter running on this thread, .depth: imports open
_lock = threading.Lock()
_installed: list[Any] = []  # the real _find_and_load while ours is in place
_users = 0


def _counters() -> tuple[int, int, int] | None:
    """(read syscalls, bytes read, length of the text just read) for this thread, or None."""
    try:
        fd = os.open(_SELF, os.O_RDONLY)
    except OSError:
        return None
    try:
        text = os.read(fd, 4096)  # one read: the text is ~100 bytes
    finally:
        os.close(fd)
    fields = dict(line.split(b": ", 1) for line in text.splitlines() if b": " in line)
    try:
        return int(fields[b"syscr"]), int(fields[b"rchar"]), len(text)
    except (KeyError, ValueError):
        return None


class Meter:
    """`with Meter() as m: ...` then `m.counts()`: {"requests", "bytes"} read by this thread in
    the block, less imports and the meter's own reads."""

    def __init__(self) -> None:
        self._start: tuple[int, int, int] | None = None
        self._end: tuple[int, int, int] | None = None
        self._noise = [0, 0]  # syscalls and bytes that were not the file

    def __enter__(self) -> Meter:
        _install()
        self._start = _counters()
        if self._start is not None:
            self._add_own(self._start)
        _local.meter = self
        _local.depth = 0
        return self

    def __exit__(self, *exc: object) -> None:
        _local.meter = None
        self._end = _counters()
        _uninstall()

    def counts(self) -> dict[str, int]:
        if self._start is None or self._end is None:
            return {"requests": 0, "bytes": 0}
        return {
            "requests": self._end[0] - self._start[0] - self._noise[0],
            "bytes": self._end[1] - self._start[1] - self._noise[1],
        }

    def _add_own(self, snap: tuple[int, int, int]) -> None:
        self._noise[0] += 1
        self._noise[1] += snap[2]

    def _import(self, real: Any, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        before = _counters()
        _local.depth = 1
        try:
            return real(*args, **kwargs)
        finally:
            _local.depth = 0
            after = _counters()
            if before is not None and after is not None:
                self._noise[0] += after[0] - before[0]  # the import's reads, and `before`'s own
                self._noise[1] += after[1] - before[1]
                self._add_own(after)


def _measured_load(name: str, *args: Any, **kwargs: Any) -> Any:
    real = _installed[0]
    meter = getattr(_local, "meter", None)
    if meter is None or getattr(_local, "depth", 0):
        return real(name, *args, **kwargs)
    return meter._import(real, (name, *args), kwargs)


def _install() -> None:
    global _users
    with _lock:
        if _users == 0 and _bootstrap._find_and_load is not _measured_load:
            _installed[:] = [_bootstrap._find_and_load]
            _bootstrap._find_and_load = _measured_load
        _users += 1


def _uninstall() -> None:
    global _users
    with _lock:
        _users -= 1
        if _users == 0 and _bootstrap._find_and_load is _measured_load:
            _bootstrap._find_and_load = _installed[0]
