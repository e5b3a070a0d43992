"""A non-executing pickle reader that reads the opcode program exactly as CPython's C unpickler does.

It runs the program on a symbolic stack: imports become `Global` records and calls become `Call`
records that are never performed. What comes out is the shape of the object the pickle would
build (dicts, lists, tuples, plain values, and symbolic calls), plus the list of globals it would
import and the calls it would make. `tensorfile` uses this for PyTorch checkpoints, joblib files
and plain pickles, and the scanner uses the same records.

The reference is `Modules/_pickle.c`, the unpickler behind `pickle.load` and `torch.load` (the
pure-Python `pickle._Unpickler` differs in places; where they disagree this follows C): arguments
are parsed as C parses them (`pickle_c`), PROTO may come anywhere and changes how later names
resolve (below protocol 3 Python 2 names go through `_compat_pickle`, dotted names need 4), and
each stack operation fails exactly where C's fails on plain values (SETITEM on a list works,
ADDITEMS on a list does not, an unhashable key stops the load).

What an imported object *is* cannot be known without importing it, so the model is CPython's
unpickler with every global an inert stand-in: a class whose instances accept any call, item or
attribute. Where a real object could get further than the stand-in (a call whose result is used as
the argument tuple, a computed STACK_GLOBAL name, an unregistered EXT code, a frame that claims
more bytes than the file has), the reading records where CPython with stand-ins stops
(`cpython_stop`) and carries on, fail closed: what lies beyond is still read and judged.
`Global.asked` says whether C's `find_class` is called for that global in the model; the
differential tests (tests/test_pickle_differential.py) hold this reader to CPython's own
unpickler on that.

Frames: by default the bytes are read as one run, as `pickle.loads` and `pickle.load` on a file
do; `drop_frame_tails` reads them as C reads a stream without peek() (torch.load's zip records),
where a read past a frame's end drops the rest of the frame. The two differ only where frame and
opcode boundaries disagree, and every such place is recorded as a `Differential`: no pickler
writes them.

The modules: `records` (what a reading produces), `machine` (the opcode loop), `plain` (C's
behaviour on plain values), `sniff` (detection helpers on raw heads); this one holds the entry
points and the opcode budget.
"""

from __future__ import annotations

import io
from typing import Any

from .machine import HEAD_KEEP, LARGE_VALUE, MAX_LINE, run
from .plain import CPYTHON_MEMO_LIMIT, MAX_KEY_DEPTH
from .records import Call, Differential, Global, LargeValue, PersistentRef, PickleResult, RawDataHook
from .sniff import is_pickle_start, parses_as_pickle, scan_globals

__all__ = [
    "CPYTHON_MEMO_LIMIT",
    "HEAD_KEEP",
    "LARGE_VALUE",
    "MAX_KEY_DEPTH",
    "MAX_LINE",
    "MAX_OPCODES",
    "Call",
    "Differential",
    "Global",
    "LargeValue",
    "PersistentRef",
    "PickleResult",
    "RawDataHook",
    "is_pickle_start",
    "parses_as_pickle",
    "read_pickle",
    "read_pickle_lenient",
    "read_pickle_stream",
    "scan_globals",
]

# The opcode budget of one program: a longer one is read this far and reported as not read whole.
MAX_OPCODES = 50_000_000

# identify and then inspect both read a checkpoint's data.pkl: the last big result is kept, keyed
# by the bytes themselves. Results are never modified by their readers, so sharing one is safe.
_CACHE_MIN = 4096
_last: tuple[bytes, int, PickleResult] | None = None


def read_pickle(data: bytes | memoryview, *, name: str = "<pickle>", offset: int = 0) -> PickleResult:
    """Run one pickle program starting at `offset` of `data`, symbolically, up to its STOP."""
    global _last
    cacheable = isinstance(data, bytes) and len(data) >= _CACHE_MIN
    if cacheable and _last is not None and _last[1] == offset and _last[0] == data:
        return _last[2]
    stream = io.BytesIO(data)
    stream.seek(offset)
    result = run(stream, name, max_opcodes=MAX_OPCODES)
    if cacheable:
        _last = (data, offset, result)  # type: ignore[assignment]
    return result


def read_pickle_stream(
    stream: Any, *, name: str = "<pickle>", raw_data_hook: RawDataHook | None = None
) -> PickleResult:
    """Run one pickle program from a file-like stream (read, readline, tell, seek)."""
    return run(stream, name, raw_data_hook, max_opcodes=MAX_OPCODES)


def read_pickle_lenient(
    stream: Any,
    *,
    name: str = "<pickle>",
    raw_data_hook: RawDataHook | None = None,
    drop_frame_tails: bool = False,
    max_opcodes: int | None = None,
) -> PickleResult:
    """Like `read_pickle_stream`, but a broken program still returns what was seen before the break.

    For the scanner: a payload placed before deliberately invalid bytes still runs when the
    real unpickler reaches it, so the globals and calls up to the break matter. `error` says
    where and why it broke off; `value` is then None.

    By default the bytes are read as one run, as `pickle.loads` and `pickle.load` on a file do.
    `drop_frame_tails` reads them as C's unpickler reads a stream without peek() (io.BytesIO,
    torch.load's zip records): the two differ only where frame and opcode boundaries disagree.
    `max_opcodes` (default `MAX_OPCODES`) bounds the work: past it the result has
    `budget_exhausted` set and `error` says how far the read got.
    """
    budget = MAX_OPCODES if max_opcodes is None else max_opcodes
    return run(
        stream, name, raw_data_hook, lenient=True, drop_frame_tails=drop_frame_tails, max_opcodes=budget
    )
