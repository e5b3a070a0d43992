"""A non-executing pickle reader.

It runs the pickle opcode program on a symbolic stack: imports become `Global` records and calls
become `Call` records that are never performed. What comes out is the shape of the object the
pickle would build (dicts, lists, tuples, plain values, and symbolic calls), plus the list of
globals it would import and the calls it would make. `tensorfile` uses this for PyTorch
checkpoints, joblib files and plain pickles, and the scanner uses the same records.

Opcode decoding is `pickletools.genops`, which only parses; nothing here imports or calls
anything named in the file.
"""

from __future__ import annotations

import codecs
import io
import pickle
import pickletools
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import FormatError


@dataclass(eq=False)
class Global:
    """A name the pickle imports (GLOBAL, STACK_GLOBAL, INST, EXT)."""

    module: str
    name: str
    position: int = -1
    computed: bool = False  # STACK_GLOBAL fed something other than two strings (an evasion)

    @property
    def qualname(self) -> str:
        return f"{self.module}.{self.name}"

    def __repr__(self) -> str:
        return f"Global({self.qualname})"


@dataclass(eq=False)
class Call:
    """A call the pickle would make: `func(*args)`, then attribute/item updates."""

    func: Any
    args: tuple[Any, ...]
    kind: str  # reduce | newobj | newobj_ex | inst | obj
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


@dataclass(eq=False)
class LargeValue:
    """A bytes or str payload too large to hold: where it lies in the stream, and its first bytes.

    Big raw pickles are mostly array bytes; skipping them keeps memory flat, and the head is
    enough to tell whether the payload is itself a pickle (the scanner looks inside those).
    """

    kind: str  # bytes | bytearray | str
    offset: int
    length: int
    head: bytes

    def __repr__(self) -> str:
        return f"LargeValue({self.kind}, {self.length} bytes at {self.offset})"


MAX_OPCODES = 50_000_000
LARGE_VALUE = 1 << 20  # payloads above this many bytes are skipped over, not read
HEAD_KEEP = 256
MAX_LINE = 1 << 16  # protocol-0 text arguments longer than this are refused


class _Broken(Exception):
    """The opcode program is invalid at this point (becomes FormatError or a lenient result)."""


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
    stream: Any, *, name: str = "<pickle>", raw_data_hook: RawDataHook | None = None
) -> PickleResult:
    """Like `read_pickle_stream`, but a broken program still returns what was seen before the break.

    For the scanner: a payload placed before deliberately invalid bytes still runs when the
    real unpickler reaches it, so the globals and calls up to the break matter. `error` says
    where and why it broke off; `value` is then None.
    """
    return _run(stream, name, raw_data_hook, lenient=True)


_SIMPLE_CONSTANTS = {b"N": None, b"\x88": True, b"\x89": False}
_EMPTY_FACTORIES: dict[bytes, Callable[[], Any]] = {b"}": dict, b"]": list, b"\x8f": set}


def _run(
    stream: Any, name: str, raw_data_hook: RawDataHook | None = None, *, lenient: bool = False
) -> PickleResult:
    """The opcode loop. Stack discipline follows CPython's _pickle: pops never cross the last MARK."""
    read = stream.read
    tell = stream.tell
    stack: list[Any] = []
    marks: list[int] = []  # stack heights at each MARK, like _pickle's fence
    fence = 0
    memo: dict[int, Any] = {}
    globals_: list[Global] = []
    calls: list[Call] = []
    refs: list[PersistentRef] = []
    protocol = 0
    count = 0
    unpack_from = struct.unpack

    def readline() -> bytes:
        line = stream.readline(MAX_LINE)
        if not line.endswith(b"\n"):
            raise _Broken("text argument without a newline" if len(line) >= MAX_LINE else "truncated")
        return line[:-1]

    def take(n: int) -> bytes:
        data = read(n)
        if len(data) < n:
            raise _Broken("truncated")
        return data

    def payload(n: int, kind: str) -> Any:
        if n < 0:
            raise _Broken(f"negative length {n}")
        if n <= LARGE_VALUE:
            data = take(n)
            if kind == "str":
                return data.decode("utf-8", "surrogatepass")
            return bytearray(data) if kind == "bytearray" else data
        start = tell()
        head = read(HEAD_KEEP)
        try:
            stream.seek(start + n)
        except (OSError, OverflowError, ValueError):
            raise _Broken(f"a {n}-byte value runs past the end") from None
        return LargeValue(kind, start, n, head)

    def pop_mark(what: str = "pops a MARK that was never pushed") -> list[Any]:
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

    def set_items(target: Any, pairs: list[Any]) -> None:
        if len(pairs) % 2:
            raise _Broken("SETITEMS with an odd number of items")
        for key, value in zip(pairs[::2], pairs[1::2], strict=True):
            key = _hashable(key)
            if isinstance(target, dict):
                target[key] = value
            elif isinstance(target, Call):
                target.items[key] = value
            else:
                raise _Broken(f"sets items on a {type(target).__name__}")

    def append_items(target: Any, values: list[Any]) -> None:
        if isinstance(target, list):
            target.extend(values)
        elif isinstance(target, Call):
            target.list_items.extend(values)
        elif isinstance(target, set):
            target.update(_hashable(v) for v in values)
        else:
            raise _Broken(f"appends to a {type(target).__name__}")

    def new_global(module: Any, attr: Any, pos: int) -> Global:
        g = Global(
            module if isinstance(module, str) else repr(module),
            attr if isinstance(attr, str) else repr(attr),
            pos,
            computed=not (isinstance(module, str) and isinstance(attr, str)),
        )
        globals_.append(g)
        return g

    try:
        while True:
            code = read(1)
            count += 1
            if count > MAX_OPCODES:
                raise _Broken(f"more than {MAX_OPCODES} opcodes")
            # Ordered roughly by how often PyTorch and joblib pickles use them.
            # Hot opcodes read their arguments inline: a short read raises IndexError or
            # struct.error, which end the program as truncated.
            if code == b"q":  # BINPUT
                if len(stack) <= fence:
                    raise _Broken("stack underflow")
                memo[read(1)[0]] = stack[-1]
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
                    d: dict[Any, Any] = {}
                    set_items(d, items)
                    stack.append(d)
                else:
                    stack.append(frozenset(_hashable(v) for v in items))
            elif code == b"\x94":  # MEMOIZE
                if len(stack) <= fence:
                    raise _Broken("stack underflow")
                memo[len(memo)] = stack[-1]
            elif code == b"R":  # REDUCE
                if len(stack) - 2 < fence:
                    raise _Broken("stack underflow")
                args = stack.pop()
                stack[-1] = make_call(stack[-1], args, "reduce", tell() - 1)
            elif code == b"c" or code == b"i":  # GLOBAL, INST
                pos = tell() - 1
                module = readline().decode("utf-8", "surrogatepass")
                attr = readline().decode("utf-8", "surrogatepass")
                g = new_global(module, attr, pos)
                if code == b"c":
                    stack.append(g)
                else:
                    items = pop_mark("INST without a MARK")
                    stack.append(make_call(g, items, "inst", pos))
            elif code == b"\x93":  # STACK_GLOBAL
                if len(stack) - 2 < fence:
                    raise _Broken("stack underflow")
                attr = stack.pop()
                module = stack.pop()
                stack.append(new_global(module, attr, tell() - 1))
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
                items = pop_mark()
                if len(stack) <= fence:
                    raise _Broken("stack underflow")
                if code == b"u":
                    set_items(stack[-1], items)
                else:
                    append_items(stack[-1], items)
            elif code == b"s":  # SETITEM
                if len(stack) - 3 < fence:
                    raise _Broken("stack underflow")
                value = stack.pop()
                key = stack.pop()
                set_items(stack[-1], [key, value])
            elif code == b"a":  # APPEND
                if len(stack) - 2 < fence:
                    raise _Broken("stack underflow")
                value = stack.pop()
                append_items(stack[-1], [value])
            elif code == b"r":  # LONG_BINPUT
                if len(stack) <= fence:
                    raise _Broken("stack underflow")
                memo[unpack_from("<I", take(4))[0]] = stack[-1]
            elif code == b"j":  # LONG_BINGET
                key = unpack_from("<I", take(4))[0]
                if key not in memo:
                    raise _Broken(f"reads memo slot {key} that was never written")
                stack.append(memo[key])
            elif code == b"b":  # BUILD
                if len(stack) - 2 < fence:
                    raise _Broken("stack underflow")
                state = stack.pop()
                target = stack[-1]
                if isinstance(target, Call):
                    target.state = state
                    if raw_data_hook is not None:
                        try:
                            raw_data_hook(target, stream)
                        except (KeyError, ValueError, TypeError, OverflowError) as exc:
                            raise _Broken(
                                f"raw data after {target.func_name} cannot be read: {exc}"
                            ) from None
                else:
                    # BUILD on a plain value or an imported object: keep the value, and record
                    # the state applied (setattr on a class or module is a known bypass).
                    calls.append(Call(Global("builtins", "setstate"), (target, state), "build", tell() - 1))
            elif code == b"\x81" or code == b"\x92":  # NEWOBJ, NEWOBJ_EX
                pos = tell() - 1
                if code == b"\x81":
                    if len(stack) - 2 < fence:
                        raise _Broken("stack underflow")
                    args = stack.pop()
                    stack[-1] = make_call(stack[-1], args, "newobj", pos)
                else:
                    if len(stack) - 3 < fence:
                        raise _Broken("stack underflow")
                    kwargs = stack.pop()
                    args = stack.pop()
                    stack[-1] = make_call(stack[-1], args, "newobj_ex", pos, kwargs)
            elif code == b"\x95":  # FRAME: a length hint only
                take(8)
            elif code == b"\x80":  # PROTO
                protocol = take(1)[0]
                if protocol > 5:
                    raise _Broken(f"unsupported protocol {protocol}")
            elif code == b".":  # STOP
                if len(stack) <= fence:
                    raise _Broken("STOP with an empty stack")
                return PickleResult(stack.pop(), globals_, calls, refs, protocol, tell(), count)
            elif code == b"0":  # POP
                if len(stack) > fence:
                    stack.pop()
                else:  # a MARK on top: POP removes it, as CPython's does
                    pop_mark("stack underflow")
            elif code == b"1":  # POP_MARK
                pop_mark()
            elif code == b"2":  # DUP
                if len(stack) <= fence:
                    raise _Broken("stack underflow")
                stack.append(stack[-1])
            elif code == b"o":  # OBJ
                items = pop_mark("OBJ without a MARK")
                if not items:
                    raise _Broken("OBJ without a class")
                stack.append(make_call(items[0], items[1:], "obj", tell() - 1))
            elif code == b"G":  # BINFLOAT
                stack.append(unpack_from(">d", take(8))[0])
            elif code == b"\x8a":  # LONG1
                stack.append(int.from_bytes(take(take(1)[0]), "little", signed=True))
            elif code == b"\x8b":  # LONG4
                n = unpack_from("<i", take(4))[0]
                if not 0 <= n <= 1 << 16:
                    raise _Broken(f"LONG4 of {n} bytes")
                stack.append(int.from_bytes(take(n), "little", signed=True))
            elif code == b"C":  # SHORT_BINBYTES
                stack.append(take(take(1)[0]))
            elif code == b"B":  # BINBYTES
                stack.append(payload(unpack_from("<I", take(4))[0], "bytes"))
            elif code == b"\x8e":  # BINBYTES8
                stack.append(payload(unpack_from("<Q", take(8))[0], "bytes"))
            elif code == b"\x8d":  # BINUNICODE8
                stack.append(payload(unpack_from("<Q", take(8))[0], "str"))
            elif code == b"\x96":  # BYTEARRAY8
                stack.append(payload(unpack_from("<Q", take(8))[0], "bytearray"))
            elif code == b"U":  # SHORT_BINSTRING (Python 2 str)
                stack.append(take(take(1)[0]).decode("latin-1"))
            elif code == b"T":  # BINSTRING
                value = payload(unpack_from("<i", take(4))[0], "bytes")
                stack.append(value.decode("latin-1") if isinstance(value, bytes) else value)
            elif code == b"I":  # INT
                line = readline()
                stack.append(True if line == b"01" else False if line == b"00" else int(line))
            elif code == b"L":  # LONG
                stack.append(int(readline().rstrip(b"L")))
            elif code == b"F":  # FLOAT
                stack.append(float(readline()))
            elif code == b"S":  # STRING
                stack.append(_string_arg(readline()))
            elif code == b"V":  # UNICODE
                stack.append(readline().decode("raw-unicode-escape"))
            elif code == b"p":  # PUT
                if len(stack) <= fence:
                    raise _Broken("stack underflow")
                memo[int(readline())] = stack[-1]
            elif code == b"g":  # GET
                key = int(readline())
                if key not in memo:
                    raise _Broken(f"reads memo slot {key} that was never written")
                stack.append(memo[key])
            elif code == b"P":  # PERSID
                ref = PersistentRef(readline().decode("ascii", "replace"), tell() - 1)
                refs.append(ref)
                stack.append(ref)
            elif code == b"\x82" or code == b"\x83" or code == b"\x84":  # EXT1/2/4
                width = {b"\x82": 1, b"\x83": 2, b"\x84": 4}[code]
                ext = int.from_bytes(take(width), "little")
                stack.append(new_global("copyreg._extension_registry", str(ext), tell() - 1 - width))
            elif code == b"\x97":  # NEXT_BUFFER
                stack.append(PersistentRef("out-of-band buffer", tell() - 1))
            elif code == b"\x98":  # READONLY_BUFFER
                if len(stack) <= fence:
                    raise _Broken("stack underflow")
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
        return PickleResult(None, globals_, calls, refs, protocol, tell(), count, error=message)
    raise FormatError(message, name)


def _string_arg(line: bytes) -> str:
    """A protocol-0 STRING argument: a quoted Python 2 string literal with backslash escapes."""
    if len(line) < 2 or line[:1] != line[-1:] or line[:1] not in (b"'", b'"'):
        raise _Broken("STRING argument is not quoted")
    return codecs.escape_decode(line[1:-1])[0].decode("latin-1")


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
