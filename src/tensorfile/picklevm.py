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

import io
import pickletools
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
    end: int  # byte offset just past STOP
    opcode_count: int


class _Mark:
    __slots__ = ()


_MARK = _Mark()
MAX_OPCODES = 50_000_000


def read_pickle(data: bytes | memoryview, *, name: str = "<pickle>", offset: int = 0) -> PickleResult:
    """Run one pickle program starting at `offset` of `data`, symbolically, up to its STOP."""
    stream = io.BytesIO(data)
    stream.seek(offset)
    return _run(stream, name)


# Called after BUILD on any object: joblib writes raw array bytes right after its array wrapper,
# and the hook may consume them from the stream before opcodes resume.
RawDataHook = Callable[[Call, Any], None]


def read_pickle_stream(
    stream: Any, *, name: str = "<pickle>", raw_data_hook: RawDataHook | None = None
) -> PickleResult:
    """Run one pickle program from a file-like stream."""
    return _run(stream, name, raw_data_hook)


def _run(stream: Any, name: str, raw_data_hook: RawDataHook | None = None) -> PickleResult:
    stack: list[Any] = []
    metastack: list[list[Any]] = []
    memo: dict[int, Any] = {}
    globals_: list[Global] = []
    calls: list[Call] = []
    refs: list[PersistentRef] = []
    protocol = 0
    count = 0

    def pop_mark() -> list[Any]:
        nonlocal stack
        if not metastack:
            raise FormatError("pickle pops a MARK that was never pushed", name)
        items = stack
        stack = metastack.pop()
        return items

    def pop() -> Any:
        if not stack:
            raise FormatError("pickle stack underflow", name)
        value = stack.pop()
        if value is _MARK:
            raise FormatError("pickle pops a MARK as a value", name)
        return value

    def make_call(func: Any, args: Any, kind: str, pos: int, kwargs: Any = None) -> Call:
        call = Call(func, tuple(args) if isinstance(args, (tuple, list)) else (args,), kind, pos, kwargs)
        calls.append(call)
        return call

    def set_items(target: Any, pairs: list[Any]) -> None:
        if len(pairs) % 2:
            raise FormatError("pickle SETITEMS with an odd number of items", name)
        for key, value in zip(pairs[::2], pairs[1::2], strict=True):
            key = _hashable(key)
            if isinstance(target, dict):
                target[key] = value
            elif isinstance(target, Call):
                target.items[key] = value
            else:
                raise FormatError(f"pickle sets items on a {type(target).__name__}", name)

    def append_items(target: Any, values: list[Any]) -> None:
        if isinstance(target, list):
            target.extend(values)
        elif isinstance(target, Call):
            target.list_items.extend(values)
        elif isinstance(target, set):
            target.update(_hashable(v) for v in values)
        else:
            raise FormatError(f"pickle appends to a {type(target).__name__}", name)

    try:
        for opcode, arg, pos in pickletools.genops(stream):
            count += 1
            if count > MAX_OPCODES:
                raise FormatError(f"pickle has more than {MAX_OPCODES} opcodes", name)
            op = opcode.name
            pos = pos if pos is not None else -1
            if op == "PROTO":
                protocol = arg
            elif op in ("FRAME",):
                pass
            elif op == "STOP":
                value = pop()
                return PickleResult(value, globals_, calls, refs, protocol, stream.tell(), count)
            elif op == "MARK":
                metastack.append(stack)
                stack = []
            elif op == "POP":
                if (stack and stack[-1] is _MARK) or stack:
                    stack.pop()
                else:
                    pop_mark()
            elif op == "POP_MARK":
                pop_mark()
            elif op == "DUP":
                stack.append(stack[-1] if stack else None)
            elif op in (
                "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT",
                "STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE",
                "BINUNICODE8", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8",
            ):  # fmt: skip
                stack.append(arg)
            elif op == "BYTEARRAY8":
                stack.append(bytearray(arg))
            elif op == "NONE":
                stack.append(None)
            elif op == "NEWTRUE":
                stack.append(True)
            elif op == "NEWFALSE":
                stack.append(False)
            elif op in ("EMPTY_DICT",):
                stack.append({})
            elif op in ("EMPTY_LIST",):
                stack.append([])
            elif op == "EMPTY_TUPLE":
                stack.append(())
            elif op == "EMPTY_SET":
                stack.append(set())
            elif op == "DICT":
                items = pop_mark()
                d: dict[Any, Any] = {}
                set_items(d, items)
                stack.append(d)
            # pop_mark() rebinds `stack`: always take its result before touching `stack` again.
            elif op == "LIST":
                items = pop_mark()
                stack.append(items)
            elif op == "TUPLE":
                items = pop_mark()
                stack.append(tuple(items))
            elif op == "FROZENSET":
                items = pop_mark()
                stack.append(frozenset(_hashable(v) for v in items))
            elif op in ("TUPLE1", "TUPLE2", "TUPLE3"):
                n = int(op[-1])
                if len(stack) < n:
                    raise FormatError("pickle stack underflow", name)
                values = [pop() for _ in range(n)][::-1]
                stack.append(tuple(values))
            elif op == "APPEND":
                value = pop()
                append_items(stack[-1] if stack else None, [value])
            elif op == "APPENDS" or op == "ADDITEMS":
                values = pop_mark()
                append_items(stack[-1] if stack else None, values)
            elif op == "SETITEM":
                value = pop()
                key = pop()
                set_items(stack[-1] if stack else None, [key, value])
            elif op == "SETITEMS":
                items = pop_mark()
                set_items(stack[-1] if stack else None, items)
            elif op in ("GET", "BINGET", "LONG_BINGET"):
                if arg not in memo:
                    raise FormatError(f"pickle reads memo slot {arg} that was never written", name)
                stack.append(memo[arg])
            elif op in ("PUT", "BINPUT", "LONG_BINPUT"):
                if not stack:
                    raise FormatError("pickle stack underflow", name)
                memo[arg] = stack[-1]
            elif op == "MEMOIZE":
                if not stack:
                    raise FormatError("pickle stack underflow", name)
                memo[len(memo)] = stack[-1]
            elif op == "GLOBAL":
                module, _, attr = str(arg).partition(" ")
                g = Global(module, attr, pos)
                globals_.append(g)
                stack.append(g)
            elif op == "STACK_GLOBAL":
                attr = pop()
                module = pop()
                g = Global(str(module), str(attr), pos)
                globals_.append(g)
                stack.append(g)
            elif op in ("EXT1", "EXT2", "EXT4"):
                g = Global("copyreg._extension_registry", str(arg), pos)
                globals_.append(g)
                stack.append(g)
            elif op == "REDUCE":
                args = pop()
                func = pop()
                stack.append(make_call(func, args, "reduce", pos))
            elif op == "NEWOBJ":
                args = pop()
                cls = pop()
                stack.append(make_call(cls, args, "newobj", pos))
            elif op == "NEWOBJ_EX":
                kwargs = pop()
                args = pop()
                cls = pop()
                stack.append(make_call(cls, args, "newobj_ex", pos, kwargs))
            elif op == "INST":
                module, _, attr = str(arg).partition(" ")
                g = Global(module, attr, pos)
                globals_.append(g)
                items = pop_mark()
                stack.append(make_call(g, items, "inst", pos))
            elif op == "OBJ":
                items = pop_mark()
                if not items:
                    raise FormatError("pickle OBJ without a class", name)
                stack.append(make_call(items[0], items[1:], "obj", pos))
            elif op == "BUILD":
                state = pop()
                target = stack[-1] if stack else None
                if isinstance(target, Call):
                    target.state = state
                    if raw_data_hook is not None:
                        raw_data_hook(target, stream)
                else:
                    # BUILD on a plain value: keep the value, record that state was applied.
                    calls.append(Call(Global("builtins", "setstate"), (target, state), "build", pos))
            elif op in ("PERSID", "BINPERSID"):
                pid = arg if op == "PERSID" else pop()
                ref = PersistentRef(pid, pos)
                refs.append(ref)
                stack.append(ref)
            elif op in ("NEXT_BUFFER", "READONLY_BUFFER"):
                if op == "NEXT_BUFFER":
                    stack.append(PersistentRef("out-of-band buffer", pos))
            else:  # pragma: no cover - genops knows no other opcodes
                raise FormatError(f"unsupported pickle opcode {op}", name)
    except FormatError:
        raise
    except (ValueError, EOFError, IndexError, KeyError, TypeError, UnicodeDecodeError) as exc:
        raise FormatError(f"not a valid pickle: {exc}", name) from None
    raise FormatError("pickle ends without STOP: truncated", name)


def _hashable(key: Any) -> Any:
    try:
        hash(key)
    except TypeError:
        return repr(key)
    return key


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
        for opcode, _arg, _pos in pickletools.genops(io.BytesIO(head)):
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
