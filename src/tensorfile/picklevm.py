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
"""

from __future__ import annotations

import io
import pickle
import pickletools
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import FormatError
from .pickle_c import (
    SSIZE_MAX,
    FrameBuffer,
    bytes_exist,
    c_float,
    c_index,
    c_int,
    c_long,
    long_line,
    name_line,
    resolve_name,
    string_arg,
)
from .pickle_c import Broken as _Broken


@dataclass(eq=False)
class Global:
    """A name the pickle imports (GLOBAL, STACK_GLOBAL, INST, EXT).

    `module`/`name` are as written; `resolved_module`/`resolved_name` are what CPython's find_class
    imports, after the Python 2 name mapping that applies below protocol 3.
    """

    module: str
    name: str
    position: int = -1
    computed: bool = False  # STACK_GLOBAL fed something other than two strings (an evasion)
    resolved_module: str = ""
    resolved_name: str = ""
    protocol: int = 0  # the protocol in force when it was read (PROTO may change mid-stream)
    asked: bool = True  # CPython's C unpickler calls find_class(module, name) for it
    resolves: bool = True  # ... and find_class returns an object (a stand-in) for it

    def __post_init__(self) -> None:
        if not self.resolved_module and not self.resolved_name:
            self.resolved_module, self.resolved_name = self.module, self.name

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"

    @property
    def resolved_qualname(self) -> str:
        return f"{self.resolved_module}.{self.resolved_name}"

    def __repr__(self) -> str:
        return f"Global({self.qualname})"


@dataclass(eq=False)
class Call:
    """A call the pickle would make: `func(*args)`, then attribute/item updates."""

    func: Any
    args: tuple[Any, ...]
    kind: str  # reduce | newobj | newobj_ex | inst | obj | build | setitems | appends | additems
    position: int = -1
    kwargs: dict[Any, Any] | None = None
    state: Any = None  # from BUILD (__setstate__ or __dict__ update)
    items: dict[Any, Any] = field(default_factory=dict)  # from SETITEM(S) on the result
    list_items: list[Any] = field(default_factory=list)  # from APPEND(S) on the result

    @property
    def func_name(self) -> str:
        return self.func.qualname if isinstance(self.func, Global) else type(self.func).__name__

    def __repr__(self) -> str:
        return f"Call({self.func_name}, {len(self.args)} args)"


@dataclass(eq=False)
class PersistentRef:
    """A persistent id (PERSID/BINPERSID): PyTorch uses these to point at tensor storages."""

    pid: Any
    position: int = -1


@dataclass(frozen=True)
class Differential:
    """A place where readers of the same bytes disagree about what the program is."""

    position: int
    kind: str  # frame-straddle | frame-nested | frame-overrun | frame-past-stop
    detail: str


@dataclass
class PickleResult:
    value: Any
    globals: list[Global]
    calls: list[Call]
    persistent_refs: list[PersistentRef]
    protocol: int
    end: int  # byte offset just past STOP (or where a lenient read broke off)
    opcode_count: int
    error: str | None = None  # lenient reads only: why the program broke off
    # Where CPython's unpickler, with every global an inert stand-in, raises although this reading
    # went on (fail closed). None when it gets as far as this reading does.
    cpython_stop: str | None = None
    cpython_stop_at: int = -1
    differentials: list[Differential] = field(default_factory=list)
    # The read stopped at the opcode budget (`max_opcodes`), not at a fault of the program: what
    # lies past `end` was never read, so the program is unjudged from there on.
    budget_exhausted: bool = False

    def asked(self) -> list[Global]:
        """The globals CPython's find_class is asked for, in order (EXT codes and computed names
        never reach it; nothing past `cpython_stop` does)."""
        return [g for g in self.globals if g.asked]


@dataclass(eq=False)
class LargeValue:
    """A bytes or str payload too large to hold: where it lies in the stream, and its first bytes.

    Big raw pickles are mostly array bytes; skipping them keeps memory flat, and the head is
    enough to tell whether the payload is itself a pickle (the scanner looks inside those).
    """

    kind: str  # bytes | bytearray | str | int
    offset: int
    length: int
    head: bytes

    def __repr__(self) -> str:
        return f"LargeValue({self.kind}, {self.length} bytes at {self.offset})"


# The opcode budget of one program: a longer one is read this far and reported as not read whole.
MAX_OPCODES = 50_000_000
LARGE_VALUE = 1 << 20  # payloads above this many bytes are skipped over, not read
HEAD_KEEP = 256
MAX_LINE = LARGE_VALUE  # protocol-0 text arguments are read whole up to this length
# C's memo is an array sized from the largest index written (2 slots per index): above this index
# the allocation (256 MiB) is refused on a small machine and may succeed on a big one.
CPYTHON_MEMO_LIMIT = 1 << 24
_HIGHEST_PROTOCOL = 5
# Values whose behaviour the reader cannot know: an imported object (a stand-in class in the model),
# the result of a call, a persistent id's object.
_OPAQUE = (Global, Call, PersistentRef)

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
    result = _run(stream, name)
    if cacheable:
        _last = (data, offset, result)  # type: ignore[assignment]
    return result


# Called after BUILD on any object: joblib writes raw array bytes right after its array wrapper,
# and the hook may consume them from the stream before opcodes resume.
RawDataHook = Callable[[Call, Any], None]


def read_pickle_stream(
    stream: Any, *, name: str = "<pickle>", raw_data_hook: RawDataHook | None = None
) -> PickleResult:
    """Run one pickle program from a file-like stream (read, readline, tell, seek)."""
    return _run(stream, name, raw_data_hook)


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
    return _run(
        stream, name, raw_data_hook, lenient=True, drop_frame_tails=drop_frame_tails, max_opcodes=max_opcodes
    )


_SIMPLE_CONSTANTS = {b"N": None, b"\x88": True, b"\x89": False}
_EMPTY_FACTORIES: dict[bytes, Callable[[], Any]] = {b"}": dict, b"]": list, b"\x8f": set}
_EXT_WIDTH = {b"\x82": 1, b"\x83": 2, b"\x84": 4}


def _run(
    stream: Any,
    name: str,
    raw_data_hook: RawDataHook | None = None,
    *,
    lenient: bool = False,
    drop_frame_tails: bool = False,
    max_opcodes: int | None = None,
) -> PickleResult:
    """The opcode loop. Stack discipline follows CPython's _pickle: pops never cross the last MARK."""
    raw_stream = stream
    framing = FrameBuffer(stream) if drop_frame_tails else None
    if framing is not None:
        stream = framing
    read = stream.read
    read_bytes = framing.read_contiguous if framing is not None else read  # BINBYTES, BYTEARRAY8
    tell = stream.tell
    stack: list[Any] = []
    marks: list[int] = []  # stack heights at each MARK, like _pickle's fence
    fence = 0
    memo: dict[int, Any] = {}
    globals_: list[Global] = []
    calls: list[Call] = []
    refs: list[PersistentRef] = []
    diffs: list[Differential] = []
    frames: list[tuple[int, int]] = []  # (FRAME position, end of the bytes it claims)
    frame_end = -1  # end of the frame being read, -1 outside frames
    protocol = 0
    count = 0
    budget = MAX_OPCODES if max_opcodes is None else max_opcodes
    exhausted = False
    stop: list[Any] = [None, -1]  # cpython_stop, cpython_stop_at
    unpack_from = struct.unpack

    def soft(reason: str, pos: int) -> None:
        """CPython with stand-ins raises here; a real object might not. Note it and read on."""
        if stop[0] is None:
            stop[0], stop[1] = reason, pos

    def readline() -> bytes | LargeValue:
        line = stream.readline(MAX_LINE)
        if line.endswith(b"\n"):
            return line[:-1]
        if len(line) < MAX_LINE:
            raise _Broken("truncated")
        begin, length = long_line(stream, line, MAX_LINE)
        return LargeValue("str", begin, length, line[:HEAD_KEEP])

    def argument(what: str) -> bytes | None:
        """A numeric text argument, or None (read on, noted) when it is too long to hold."""
        line = readline()
        if isinstance(line, bytes):
            return line
        soft(f"a {what} argument longer than 1 MiB", line.offset)
        return None

    def global_name(encoding: str) -> str:
        line = readline()
        if isinstance(line, LargeValue):
            raise _Broken("a module or attribute name longer than 1 MiB")
        return name_line(line, encoding)

    def take(n: int, fetch: Callable[[int], bytes] = read) -> bytes:
        data = fetch(n)
        if len(data) < n:
            raise _Broken("truncated")
        return data

    def payload(n: int, kind: str, contiguous: bool = False) -> Any:
        if n < 0:
            raise _Broken(f"negative length {n}")
        if n > SSIZE_MAX:
            raise _Broken(f"a length of {n} bytes exceeds the system's maximum")
        if n <= LARGE_VALUE:
            data = take(n, read_bytes if contiguous else read)
            if kind == "str":
                return data.decode("utf-8", "surrogatepass")
            return bytearray(data) if kind == "bytearray" else data
        begin = framing.skip(n, contiguous) if framing is not None else tell()
        head = stream.stream.read(HEAD_KEEP) if framing is not None else read(HEAD_KEEP)
        try:
            stream.seek(begin + n - 1)  # its last byte must be there, as C reads it all
            whole = len(stream.read(1)) == 1
        except (OSError, OverflowError, ValueError):
            whole = False
        if not whole:
            stream.seek(begin)
            raise _Broken(f"a {n}-byte value runs past the end: truncated")
        return LargeValue(kind, begin, n, head)

    def pop_mark(what: str = "could not find MARK") -> list[Any]:
        """The items above the last MARK, removed from the stack; the fence drops to the MARK before."""
        nonlocal fence
        if not marks:
            raise _Broken(what)
        k = marks.pop()
        fence = marks[-1] if marks else 0
        items = stack[k:]
        del stack[k:]
        return items

    def make_call(func: Any, args: Any, kind: str, pos: int, kwargs: Any = None) -> Call:
        call = Call(func, tuple(args) if isinstance(args, (tuple, list)) else (args,), kind, pos, kwargs)
        calls.append(call)
        return call

    def mutate(target: Global, kind: str, pos: int, values: list[Any]) -> None:
        # An imported object changed in place (a dict or list living in a module): recorded like a
        # BUILD on it, since that is what it is for.
        calls.append(Call(Global("builtins", "setstate"), (target, values), kind, pos))

    def set_items(target: Any, pairs: list[Any], pos: int) -> None:
        if not pairs:
            return  # C returns before looking at the target
        if len(pairs) % 2:
            raise _Broken("odd number of items for SETITEMS")
        if isinstance(target, dict):
            for k, v in zip(pairs[::2], pairs[1::2], strict=True):
                target[_c_key(k)] = v
        elif isinstance(target, Call):
            for k, v in zip(pairs[::2], pairs[1::2], strict=True):
                target.items[_hashable(k)] = v
        elif isinstance(target, Global):
            mutate(target, "setitems", pos, pairs)
        elif isinstance(target, PersistentRef):
            pass
        elif isinstance(target, (list, bytearray)):
            for k, v in zip(pairs[::2], pairs[1::2], strict=True):
                _assign_index(target, k, v, soft, pos)
        else:
            raise _Broken(f"'{type(target).__name__}' object does not support item assignment")

    def append_items(target: Any, values: list[Any], pos: int) -> None:
        if not values:
            return
        if isinstance(target, list):
            target.extend(values)
        elif isinstance(target, Call):
            target.list_items.extend(values)
        elif isinstance(target, Global):
            mutate(target, "appends", pos, values)
        elif isinstance(target, PersistentRef):
            pass
        elif isinstance(target, bytearray):
            _extend_bytearray(target, values, soft, pos)
        else:
            raise _Broken(f"'{type(target).__name__}' object has no attribute 'append'")

    def add_items(target: Any, values: list[Any], pos: int) -> None:
        if not values:
            return
        if isinstance(target, set):
            target.update(_c_key(v) for v in values)
        elif isinstance(target, Call):
            target.list_items.extend(values)
        elif isinstance(target, Global):
            mutate(target, "additems", pos, values)
        elif not isinstance(target, PersistentRef):
            raise _Broken(f"'{type(target).__name__}' object has no attribute 'add'")

    def new_global(module: str, attr: str, pos: int, *, computed: bool = False) -> Global:
        rmodule, rname = resolve_name(module, attr, protocol)
        g = Global(module, attr, pos, computed, rmodule, rname, protocol, not computed and stop[0] is None)
        globals_.append(g)
        if computed:
            return g
        if not rmodule:
            g.resolves = False
            raise _Broken("find_class: empty module name")
        # find_class looks the name up with getattr: dotted paths only from protocol 4 on
        parts = rname.split(".") if protocol >= 4 else [rname]
        if "" in parts or "<locals>" in parts or (protocol < 4 and "." in rname):
            g.resolves = False
            soft(f"find_class cannot get attribute {rname!r} of {rmodule} at protocol {protocol}", pos)
        return g

    def frame_check() -> None:
        """At an opcode boundary: has the frame ended, and exactly here?"""
        nonlocal frame_end
        at = tell()
        if at >= frame_end:
            if at > frame_end:
                detail = f"the frame ends at byte {frame_end}, inside the opcode that ends at {at}"
                diffs.append(Differential(frame_end, "frame-straddle", detail))
            frame_end = -1

    def build(state: Any, target: Any, pos: int) -> None:
        if isinstance(target, Call):
            target.state = state
            if raw_data_hook is not None:
                if frame_end >= 0:  # joblib ends the frame before the raw bytes it writes
                    frame_check()
                try:
                    raw_data_hook(target, stream)
                except (KeyError, ValueError, TypeError, OverflowError) as exc:
                    raise _Broken(f"raw data after {target.func_name} cannot be read: {exc}") from None
            return
        if isinstance(target, _OPAQUE):
            # BUILD on an imported object or a persistent object: its __setstate__ or __dict__ is
            # changed (setattr on a class or module is a known bypass), recorded as a call.
            calls.append(Call(Global("builtins", "setstate"), (target, state), "build", pos))
            return
        _build_plain(state, soft, pos)

    try:
        while True:
            if frame_end >= 0:
                frame_check()
            if count >= budget:
                exhausted = True
                raise _Broken(
                    f"pickle read stopped at the opcode budget: {count:,} opcodes read, up to byte "
                    f"{tell():,}; the rest was not read"
                )
            code = read(1)
            count += 1
            # Ordered roughly by how often PyTorch and joblib pickles use them.
            # Hot opcodes read their arguments inline: a short read raises IndexError or
            # struct.error, which end the program as truncated.
            if code == b"q":  # BINPUT
                slot = read(1)[0]
                if len(stack) <= fence:
                    raise _Broken("stack underflow")
                memo[slot] = stack[-1]
            elif code == b"h":  # BINGET
                stack.append(memo[read(1)[0]])
            elif code == b"X":  # BINUNICODE
                n = unpack_from("<I", read(4))[0]
                if n > LARGE_VALUE:
                    stack.append(payload(n, "str"))
                else:
                    data = read(n)
                    if len(data) < n:
                        raise _Broken("truncated")
                    stack.append(data.decode("utf-8", "surrogatepass"))
            elif code == b"\x8c":  # SHORT_BINUNICODE
                n = read(1)[0]
                data = read(n)
                if len(data) < n:
                    raise _Broken("truncated")
                stack.append(data.decode("utf-8", "surrogatepass"))
            elif code == b"(":  # MARK
                marks.append(len(stack))
                fence = len(stack)
            elif code == b"K":  # BININT1
                stack.append(read(1)[0])
            elif code == b"t" or code == b"l" or code == b"d" or code == b"\x91":  # TUPLE LIST DICT FROZENSET
                items = pop_mark()
                if code == b"t":
                    stack.append(tuple(items))
                elif code == b"l":
                    stack.append(items)
                elif code == b"d":
                    if len(items) % 2:
                        raise _Broken("odd number of items for DICT")
                    stack.append({_c_key(k): v for k, v in zip(items[::2], items[1::2], strict=True)})
                else:
                    stack.append(frozenset(_c_key(v) for v in items))
            elif code == b"\x94":  # MEMOIZE: the next free slot is the number of slots written
                if len(stack) <= fence:
                    raise _Broken("stack underflow")
                memo[len(memo)] = stack[-1]
            elif code == b"R":  # REDUCE
                pos = tell() - 1
                if len(stack) - 2 < fence:
                    raise _Broken("stack underflow")
                args = stack.pop()
                func = stack[-1]
                if not isinstance(func, _OPAQUE):
                    raise _Broken(f"'{type(func).__name__}' object is not callable")
                accepted = _accepts(args, tuple)
                if accepted is False:
                    raise _Broken("argument list must be a tuple")
                if accepted is None:
                    soft("REDUCE is given arguments computed while loading", pos)
                stack[-1] = make_call(func, args, "reduce", pos)
            elif code == b"c":  # GLOBAL
                pos = tell() - 1
                module = global_name("utf-8")
                attr = global_name("utf-8")
                stack.append(new_global(module, attr, pos))
            elif code == b"\x93":  # STACK_GLOBAL
                pos = tell() - 1
                if len(stack) - 2 < fence:
                    raise _Broken("stack underflow")
                attr = stack.pop()
                module = stack.pop()
                if isinstance(module, str) and isinstance(attr, str):
                    stack.append(new_global(module, attr, pos))
                else:
                    # C raises "STACK_GLOBAL requires str"; a value computed while loading may be one,
                    # and any other operand is a crafted stream: recorded as a computed import.
                    soft("STACK_GLOBAL is not given two strings", pos)
                    stack.append(new_global(_show(module), _show(attr), pos, computed=True))
            elif code in _SIMPLE_CONSTANTS:
                stack.append(_SIMPLE_CONSTANTS[code])
            elif code == b")":
                stack.append(())
            elif code in _EMPTY_FACTORIES:
                stack.append(_EMPTY_FACTORIES[code]())
            elif code == b"Q":  # BINPERSID
                if len(stack) <= fence:
                    raise _Broken("stack underflow")
                ref = PersistentRef(stack.pop(), tell() - 1)
                refs.append(ref)
                stack.append(ref)
            elif code == b"\x85" or code == b"\x86" or code == b"\x87":  # TUPLE1/2/3
                n = code[0] - 0x84
                if len(stack) - n < fence:
                    raise _Broken("stack underflow")
                items = stack[-n:]
                del stack[-n:]
                stack.append(tuple(items))
            elif code == b"J":  # BININT
                stack.append(unpack_from("<i", take(4))[0])
            elif code == b"M":  # BININT2
                stack.append(unpack_from("<H", take(2))[0])
            elif code == b"u" or code == b"e" or code == b"\x90":  # SETITEMS, APPENDS, ADDITEMS
                pos = tell() - 1
                items = pop_mark()
                if len(stack) <= fence:
                    raise _Broken("stack underflow")
                if code == b"u":
                    set_items(stack[-1], items, pos)
                elif code == b"e":
                    append_items(stack[-1], items, pos)
                else:
                    add_items(stack[-1], items, pos)
            elif code == b"s":  # SETITEM
                if len(stack) - 3 < fence:
                    raise _Broken("stack underflow")
                value = stack.pop()
                k = stack.pop()
                set_items(stack[-1], [k, value], tell() - 1)
            elif code == b"a":  # APPEND
                if len(stack) - 2 < fence:
                    raise _Broken("stack underflow")
                value = stack.pop()
                append_items(stack[-1], [value], tell() - 1)
            elif code == b"r":  # LONG_BINPUT
                pos = tell() - 1
                slot = unpack_from("<I", take(4))[0]
                if len(stack) <= fence:
                    raise _Broken("stack underflow")
                put(memo, slot, stack[-1], soft, pos)
            elif code == b"j":  # LONG_BINGET
                k = unpack_from("<I", take(4))[0]
                if k not in memo:
                    raise _Broken(f"reads memo slot {k} that was never written")
                stack.append(memo[k])
            elif code == b"b":  # BUILD
                pos = tell() - 1
                if len(stack) - 2 < fence:
                    raise _Broken("stack underflow")
                state = stack.pop()
                build(state, stack[-1], pos)
            elif code == b"\x81" or code == b"\x92":  # NEWOBJ, NEWOBJ_EX
                pos = tell() - 1
                ex = code == b"\x92"
                if len(stack) - (3 if ex else 2) < fence:
                    raise _Broken("stack underflow")
                kwargs = stack.pop() if ex else None
                args = stack.pop()
                cls = stack[-1]
                checks = [
                    _accepts(cls, Global),
                    _accepts(args, tuple),
                    _accepts(kwargs, dict) if ex else True,
                ]
                if False in checks:
                    raise _Broken("NEWOBJ needs a class, an argument tuple (and a keyword dict)")
                if None in checks:
                    soft("NEWOBJ is given a value computed while loading", pos)
                stack[-1] = make_call(cls, args, "newobj_ex" if ex else "newobj", pos, kwargs)
            elif code == b"\x95":  # FRAME: C checks that the bytes exist, then reads on as usual
                pos = tell() - 1
                n = unpack_from("<Q", take(8))[0]
                if n > SSIZE_MAX:
                    raise _Broken("FRAME length exceeds the system's maximum")
                if frame_end >= 0:  # still inside the previous frame
                    diffs.append(
                        Differential(
                            pos, "frame-nested", f"a FRAME starts before the frame ending at {frame_end}"
                        )
                    )
                frame_end = pos + 9 + n
                frames.append((pos, frame_end))
                if framing is not None:
                    framing.frame(n)
            elif code == b"\x80":  # PROTO
                protocol = take(1)[0]
                if protocol > _HIGHEST_PROTOCOL:
                    raise _Broken(f"unsupported pickle protocol {protocol}")
            elif code == b".":  # STOP
                if len(stack) <= fence:
                    raise _Broken("STOP with an empty stack")
                end = tell()
                if frame_end > end:
                    diffs.append(
                        Differential(end, "frame-past-stop", f"the frame claims bytes up to {frame_end}")
                    )
                value = stack.pop()
                _check_frames(raw_stream, frames, end, diffs, stop)
                if framing is not None and framing.end > end:
                    end = framing.end  # C has read the frame's rest: the next load starts after it
                    raw_stream.seek(end)
                return _result(value, globals_, calls, refs, protocol, end, count, None, stop, diffs)
            elif code == b"0":  # POP
                if marks and marks[-1] == len(stack):  # a MARK on top: POP removes it, as C's does
                    pop_mark()
                elif len(stack) <= fence:
                    raise _Broken("stack underflow")
                else:
                    stack.pop()
            elif code == b"1":  # POP_MARK
                pop_mark()
            elif code == b"2":  # DUP
                if len(stack) <= fence:
                    raise _Broken("stack underflow")
                stack.append(stack[-1])
            elif code == b"o":  # OBJ
                pos = tell() - 1
                items = pop_mark()
                if not items:
                    raise _Broken("stack underflow")
                if not isinstance(items[0], _OPAQUE):
                    raise _Broken(f"'{type(items[0]).__name__}' object is not callable")
                stack.append(make_call(items[0], items[1:], "obj", pos))
            elif code == b"i":  # INST: the MARK is taken before the names are read
                pos = tell() - 1
                items = pop_mark()
                module = global_name("ascii")
                attr = global_name("ascii")
                stack.append(make_call(new_global(module, attr, pos), items, "inst", pos))
            elif code == b"G":  # BINFLOAT
                stack.append(unpack_from(">d", take(8))[0])
            elif code == b"\x8a":  # LONG1
                stack.append(int.from_bytes(take(take(1)[0]), "little", signed=True))
            elif code == b"\x8b":  # LONG4
                n = unpack_from("<i", take(4))[0]
                if n < 0:
                    raise _Broken("LONG pickle has negative byte count")
                raw = payload(n, "bytes")
                if isinstance(raw, LargeValue):
                    raw.kind = "int"
                    stack.append(raw)
                else:
                    stack.append(int.from_bytes(raw, "little", signed=True))
            elif code == b"C":  # SHORT_BINBYTES
                stack.append(take(take(1)[0], read_bytes))
            elif code == b"B":  # BINBYTES
                stack.append(payload(unpack_from("<I", take(4))[0], "bytes", True))
            elif code == b"\x8e":  # BINBYTES8
                stack.append(payload(unpack_from("<Q", take(8))[0], "bytes", True))
            elif code == b"\x8d":  # BINUNICODE8
                stack.append(payload(unpack_from("<Q", take(8))[0], "str"))
            elif code == b"\x96":  # BYTEARRAY8
                stack.append(payload(unpack_from("<Q", take(8))[0], "bytearray", True))
            elif code == b"U":  # SHORT_BINSTRING (Python 2 str, decoded as latin-1)
                stack.append(take(take(1)[0]).decode("latin-1"))
            elif code == b"T":  # BINSTRING: C reads the length unsigned
                value = payload(unpack_from("<I", take(4))[0], "bytes")
                stack.append(value.decode("latin-1") if isinstance(value, bytes) else value)
            elif code == b"I" or code == b"L" or code == b"F":  # INT, LONG, FLOAT
                line = argument("numeric")
                parse = c_int if code == b"I" else c_long if code == b"L" else c_float
                stack.append(0 if line is None else parse(line))
            elif code == b"S":  # STRING
                line = readline()
                stack.append(string_arg(line) if isinstance(line, bytes) else line)
            elif code == b"V":  # UNICODE
                line = readline()
                stack.append(line.decode("raw-unicode-escape") if isinstance(line, bytes) else line)
            elif code == b"p":  # PUT
                pos = tell() - 1
                line = argument("PUT")
                if len(stack) <= fence:
                    raise _Broken("stack underflow")
                slot = None if line is None else c_index(line)
                if slot is None:
                    pass
                elif slot < 0:
                    raise _Broken("negative PUT argument")
                else:
                    put(memo, slot, stack[-1], soft, pos)
            elif code == b"g":  # GET
                pos = tell() - 1
                line = argument("GET")
                k = None if line is None else c_index(line)
                if k is None:
                    stack.append(PersistentRef("<memo slot longer than 1 MiB>", pos))
                elif k not in memo:
                    raise _Broken(f"reads memo slot {k} that was never written")
                else:
                    stack.append(memo[k])
            elif code == b"P":  # PERSID
                line = readline()
                if isinstance(line, bytes) and not line.isascii():
                    raise _Broken("persistent IDs in protocol 0 must be ASCII strings")
                ref = PersistentRef(line.decode("ascii") if isinstance(line, bytes) else line, tell() - 1)
                refs.append(ref)
                stack.append(ref)
            elif code in _EXT_WIDTH:  # EXT1/2/4
                width = _EXT_WIDTH[code]
                pos = tell() - 1
                ext = int.from_bytes(take(width), "little", signed=width == 4)
                if ext <= 0:
                    raise _Broken("EXT specifies code <= 0")
                soft(f"extension code {ext} is not registered in a plain interpreter", pos)
                g = Global("copyreg._extension_registry", str(ext), pos, asked=False)
                globals_.append(g)
                stack.append(g)
            elif code == b"\x97":  # NEXT_BUFFER: an out-of-band buffer, modelled as a bytearray
                stack.append(bytearray())
            elif code == b"\x98":  # READONLY_BUFFER
                if len(stack) <= fence:
                    raise _Broken("stack underflow")
                stack[-1] = _readonly(stack[-1], soft, tell() - 1)
            elif not code:
                raise _Broken("ends without STOP: truncated")
            else:
                raise _Broken(f"unknown opcode {code!r} at byte {tell() - 1}")
    except KeyError as exc:  # BINGET of a slot never written
        message = f"pickle reads memo slot {exc} that was never written"
    except (IndexError, struct.error):  # an inline argument read came up short
        message = "pickle is cut short: truncated"
    except (_Broken, ValueError, OverflowError, TypeError, UnicodeDecodeError) as exc:
        message = str(exc) if isinstance(exc, _Broken) else f"not a valid pickle: {exc}"
        if message == "truncated":
            message = "pickle is cut short: truncated"
        elif not message.startswith(("pickle", "not a valid")):
            message = f"pickle {message}"
    if lenient:
        end = tell()
        _check_frames(raw_stream, frames, end, diffs, stop)
        result = _result(None, globals_, calls, refs, protocol, end, count, message, stop, diffs)
        result.budget_exhausted = exhausted
        return result
    raise FormatError(message, name)


def _result(
    value: Any,
    globals_: list[Global],
    calls: list[Call],
    refs: list[PersistentRef],
    protocol: int,
    end: int,
    count: int,
    error: str | None,
    stop: list[Any],
    diffs: list[Differential],
) -> PickleResult:
    if stop[0] is not None:
        for g in globals_:
            if g.position > stop[1]:
                g.asked = False
    return PickleResult(value, globals_, calls, refs, protocol, end, count, error, stop[0], stop[1], diffs)


def _accepts(value: Any, types: type | tuple[type, ...]) -> bool | None:
    """True when C's type check passes, None when only a real object could pass it, else False."""
    if isinstance(value, types):
        return True
    return None if isinstance(value, _OPAQUE) else False


def _show(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


def put(memo: dict[int, Any], slot: int, value: Any, soft: Callable[[str, int], None], pos: int) -> None:
    if slot >= CPYTHON_MEMO_LIMIT:
        soft(f"memo slot {slot}: CPython first allocates a memo of {2 * slot} entries", pos)
    memo[slot] = value


def _readonly(value: Any, soft: Callable[[str, int], None], pos: int) -> Any:
    """READONLY_BUFFER: a memoryview of a bytes-like value (a bytearray becomes read-only)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray):
        return bytes(value)
    if isinstance(value, LargeValue) and value.kind in ("bytes", "bytearray"):
        return LargeValue("bytes", value.offset, value.length, value.head)
    if isinstance(value, _OPAQUE):
        soft("READONLY_BUFFER on a value computed while loading", pos)
        return value
    raise _Broken(f"memoryview: a bytes-like object is required, not '{type(value).__name__}'")


def _byte_value(value: Any, soft: Callable[[str, int], None], pos: int) -> int | None:
    if isinstance(value, _OPAQUE):
        soft("a byte computed while loading", pos)
        return None
    if not isinstance(value, int) or not 0 <= value < 256:
        raise _Broken("byte must be in range(0, 256)")
    return value


def _assign_index(
    target: list[Any] | bytearray, index: Any, value: Any, soft: Callable[[str, int], None], pos: int
) -> None:
    """SETITEM on a list or bytearray: C calls target[index] = value."""
    if isinstance(index, _OPAQUE):
        soft("an index computed while loading", pos)
        return
    if not isinstance(index, int):
        raise _Broken(f"{type(target).__name__} indices must be integers")
    if not -len(target) <= index < len(target):
        raise _Broken(f"{type(target).__name__} assignment index out of range")
    if isinstance(target, bytearray):
        byte = _byte_value(value, soft, pos)
        if byte is not None:
            target[index] = byte
    else:
        target[index] = value


def _extend_bytearray(
    target: bytearray, values: list[Any], soft: Callable[[str, int], None], pos: int
) -> None:
    """APPEND(S) on a bytearray: C calls its extend(), which takes integers 0-255."""
    for value in values:
        byte = _byte_value(value, soft, pos)
        if byte is not None:
            target.append(byte)


def _build_plain(state: Any, soft: Callable[[str, int], None], pos: int) -> None:
    """BUILD on a plain value (no __setstate__, no __dict__): C accepts only a state of None, or
    (None, {}) - anything else fails, unless a value computed while loading might be None."""
    if state is None:
        return
    if isinstance(state, _OPAQUE):
        soft("BUILD is given a state computed while loading", pos)
        return
    if not (isinstance(state, tuple) and len(state) == 2):
        raise _Broken("BUILD on a plain value with a state it cannot take")
    inner, slots = state
    if isinstance(inner, _OPAQUE) or isinstance(slots, _OPAQUE):
        soft("BUILD is given a state computed while loading", pos)
    if inner is not None and not isinstance(inner, _OPAQUE):
        raise _Broken("BUILD on a plain value with a state it cannot take")
    if not isinstance(slots, (dict, *_OPAQUE)) or (isinstance(slots, dict) and slots):
        raise _Broken("BUILD on a plain value with a slot state it cannot take")


def _check_frames(
    stream: Any, frames: list[tuple[int, int]], end: int, diffs: list[Differential], stop: list[Any]
) -> None:
    """A frame that claims more bytes than the data holds: C refuses it at the FRAME opcode
    (nothing after it runs), pickle._Unpickler reads on (its frame is just shorter)."""
    for pos, frame_end in frames:
        if frame_end <= end or bytes_exist(stream, frame_end) is not False:
            continue
        diffs.append(
            Differential(pos, "frame-overrun", f"the frame claims bytes up to {frame_end}, past the end")
        )
        if stop[0] is None or stop[1] > pos:
            stop[0], stop[1] = "FRAME claims more bytes than the data holds", pos
        break


_ATOMS = (str, int, float, complex, bytes, bool, type(None), Global, PersistentRef, LargeValue, Call)
MAX_KEY_DEPTH = 64


def _hashable(key: Any) -> Any:
    """`key` if it can be a dict/set key, else a stand-in string.

    CPython hashes nested tuples recursively in C with no depth check, so a pickle that builds a
    tuple 200,000 levels deep and uses it as a key would crash the interpreter; such keys (and
    repr of them) are never attempted.
    """
    if isinstance(key, _ATOMS):
        return key
    if isinstance(key, (tuple, frozenset)) and _depth(key, MAX_KEY_DEPTH) <= MAX_KEY_DEPTH:
        try:
            hash(key)
        except TypeError:
            return f"<unhashable {type(key).__name__}>"
        return key
    return f"<unhashable {type(key).__name__}>"


def _c_key(value: Any) -> Any:
    """`value` as a dict or set key, or the TypeError C's hashing raises for it."""
    if isinstance(value, (list, dict, set, bytearray)) or (
        isinstance(value, LargeValue) and value.kind == "bytearray"
    ):
        raise _Broken(f"unhashable type: '{type(value).__name__}'")
    if isinstance(value, (tuple, frozenset)):
        if _depth(value, MAX_KEY_DEPTH) > MAX_KEY_DEPTH:
            return f"<unhashable {type(value).__name__}>"
        try:
            hash(value)
        except TypeError as exc:
            raise _Broken(str(exc)) from None
    return value


def _depth(value: Any, limit: int) -> int:
    """Nesting depth of tuples/frozensets in `value`, counted only up to `limit` + 1."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if level > limit:
            return level
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in item if isinstance(child, (tuple, frozenset)))
    return deepest


def is_pickle_start(head: bytes) -> int | None:
    """The pickle protocol `head` opens with (0-5), or None when it does not look like a pickle.

    Protocol 2+ pickles open with PROTO n. Protocol 0/1 pickles have no header, so accept only
    the openings real ones have: MARK, an empty container, or a GLOBAL/INST with a dotted name.
    """
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return head[1]
    if not head:
        return None
    first = head[:1]
    if first in (b"}", b"]", b")"):
        return 1 if len(head) > 1 and head[1:2] in (b"q", b"r", b"(", b".") else None
    if first in (b"c", b"i"):
        line = head[1:].split(b"\n", 1)[0]
        return 0 if 0 < len(line) < 200 and line.replace(b"_", b"").replace(b".", b"").isalnum() else None
    if (
        first == b"("
        and len(head) > 1
        and head[1:2] in (b"d", b"l", b"t", b"c", b"i", b"S", b"V", b"I", b"(")
    ):
        return 0
    return None


def parses_as_pickle(head: bytes, min_opcodes: int = 3) -> bool:
    """Whether `head` decodes as pickle opcodes up to STOP or up to where it is cut short."""
    count = 0
    try:
        for opcode, arg, _pos in pickletools.genops(io.BytesIO(head)):
            if opcode.name == "PROTO" and isinstance(arg, int) and arg > pickle.HIGHEST_PROTOCOL:
                # pickle.load refuses the stream right here ("unsupported pickle protocol"): what
                # came before is all that could run. Raw bf16 1.0 values (80 3F) read this way.
                return count >= min_opcodes
            count += 1
            if opcode.name == "STOP":
                return True
    except ValueError as exc:
        # genops says "unknown opcode"/"invalid ..." for garbage, anything else is a cut-short
        # read. joblib writes raw array bytes between opcodes, so a long valid prefix counts.
        text = str(exc)
        if "unknown" in text or "invalid" in text or "no newline" in text:
            return count >= 16
        return count >= min_opcodes
    except (EOFError, UnicodeDecodeError):
        return count >= min_opcodes
    return count >= min_opcodes


def scan_globals(data: bytes, limit: int = 1 << 20) -> list[str]:
    """The globals a pickle names in its first `limit` bytes, even when it is cut short.

    For detection only: a truncated head still shows which modules it imports.
    """
    names: list[str] = []
    strings: list[str] = []
    memo: dict[int, Any] = {}
    last: Any = None  # value on top of the stack, as far as memo bookkeeping needs it
    try:
        for opcode, arg, _pos in pickletools.genops(io.BytesIO(data[:limit])):
            op = opcode.name
            if op in ("GLOBAL", "INST"):
                names.append(str(arg).replace(" ", "."))
                last = None
            elif op == "STACK_GLOBAL":
                if len(strings) >= 2:
                    names.append(f"{strings[-2]}.{strings[-1]}")
                last = None
            elif op.endswith(("UNICODE", "STRING")) and isinstance(arg, str):
                strings.append(arg)
                last = arg
            elif op in ("BINPUT", "LONG_BINPUT", "PUT"):
                memo[arg] = last
            elif op == "MEMOIZE":
                memo[len(memo)] = last
            elif op in ("BINGET", "LONG_BINGET", "GET"):
                last = memo.get(arg)
                if isinstance(last, str):
                    strings.append(last)
            elif op == "STOP":
                break
            else:
                last = None
    except (ValueError, EOFError, UnicodeDecodeError):
        pass
    return names
