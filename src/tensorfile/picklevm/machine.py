"""The opcode loop: one pickle program run on a symbolic stack, as `Modules/_pickle.c` runs it."""

from __future__ import annotations

import pickletools
import struct
from collections.abc import Callable
from typing import Any

from ..errors import FormatError
from ..pickle_c import (
    SSIZE_MAX,
    FrameBuffer,
    c_float,
    c_index,
    c_int,
    c_long,
    long_line,
    name_line,
    resolve_name,
    string_arg,
)
from ..pickle_c import Broken as _Broken
from .plain import (
    OPAQUE,
    accepts,
    build_plain,
    c_key,
    put,
    readonly,
    show,
)
from .records import (
    Call,
    Differential,
    Global,
    LargeValue,
    PersistentRef,
    PickleResult,
    RawDataHook,
    check_frames,
    finish,
)
from .targets import add_items, append_items, set_items

LARGE_VALUE = 1 << 20  # payloads above this many bytes are skipped over, not read
HEAD_KEEP = 256
MAX_LINE = LARGE_VALUE  # protocol-0 text arguments are read whole up to this length
_HIGHEST_PROTOCOL = 5

_OPCODES = {op.name: ord(op.code) for op in pickletools.opcodes}
Handler = Callable[[int], None]
# The tables of the handlers that serve several opcodes, keyed by opcode: what each one pushes.
_SIMPLE_CONSTANTS = {
    _OPCODES["NONE"]: None,
    _OPCODES["NEWTRUE"]: True,
    _OPCODES["NEWFALSE"]: False,
    _OPCODES["EMPTY_TUPLE"]: (),
}
_EMPTY_FACTORIES: dict[int, Callable[[], Any]] = {
    _OPCODES["EMPTY_DICT"]: dict,
    _OPCODES["EMPTY_LIST"]: list,
    _OPCODES["EMPTY_SET"]: set,
}
_EXT_WIDTH = {_OPCODES["EXT1"]: 1, _OPCODES["EXT2"]: 2, _OPCODES["EXT4"]: 4}
_SIZED = {  # (length format, its width, kind, read contiguously)
    _OPCODES["BINBYTES"]: ("<I", 4, "bytes", True),
    _OPCODES["BINBYTES8"]: ("<Q", 8, "bytes", True),
    _OPCODES["BINUNICODE8"]: ("<Q", 8, "str", False),
    _OPCODES["BYTEARRAY8"]: ("<Q", 8, "bytearray", True),
}
_FIXED = {_OPCODES["BININT"]: ("<i", 4), _OPCODES["BININT2"]: ("<H", 2), _OPCODES["BINFLOAT"]: (">d", 8)}


def run(
    stream: Any,
    name: str,
    raw_data_hook: RawDataHook | None = None,
    *,
    lenient: bool = False,
    drop_frame_tails: bool = False,
    max_opcodes: int,
) -> PickleResult:
    """The opcode loop. Stack discipline follows CPython's _pickle: pops never cross the last MARK."""
    raw_stream = stream
    framing = FrameBuffer(stream) if drop_frame_tails else None
    if framing is not None:
        stream = framing
    # a stream may offer a faster read for the sizes this loop asks (at most LARGE_VALUE bytes)
    read = getattr(stream, "read_small", stream.read)
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
    budget = max_opcodes
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
        if isinstance(target, OPAQUE):
            # BUILD on an imported object or a persistent object: its __setstate__ or __dict__ is
            # changed (setattr on a class or module is a known bypass), recorded as a call.
            calls.append(Call(Global("builtins", "setstate"), (target, state), "build", pos))
            return
        build_plain(state, soft, pos)

    def op_unknown(op: int) -> None:
        raise _Broken(f"unknown opcode {bytes([op])!r} at byte {tell() - 1}")

    # One handler per opcode, not a chain of comparisons: in a chain the last opcode costs ~40 tests
    table: list[Handler] = [op_unknown] * 256

    def handles(*opcodes: str | int) -> Callable[[Handler], Handler]:
        """Register a handler for opcodes by name, or by code (the keys of a table above)."""

        def register(handler: Handler) -> Handler:
            for opcode in opcodes:
                table[_OPCODES[opcode] if isinstance(opcode, str) else opcode] = handler
            return handler

        return register

    @handles("TUPLE", "LIST", "DICT", "FROZENSET")
    def op_container_from_mark(op: int) -> None:
        items = pop_mark()
        if op == 0x74:  # TUPLE
            stack.append(tuple(items))
        elif op == 0x6C:  # LIST
            stack.append(items)
        elif op == 0x64:  # DICT (else FROZENSET)
            if len(items) % 2:
                raise _Broken("odd number of items for DICT")
            stack.append({c_key(k): v for k, v in zip(items[::2], items[1::2], strict=True)})
        else:
            stack.append(frozenset(c_key(v) for v in items))

    @handles("MEMOIZE")
    def op_memoize(op: int) -> None:  # the next free slot is the number of slots written
        if len(stack) <= fence:
            raise _Broken("stack underflow")
        memo[len(memo)] = stack[-1]

    @handles("REDUCE")
    def op_reduce(op: int) -> None:
        pos = tell() - 1
        if len(stack) - 2 < fence:
            raise _Broken("stack underflow")
        args = stack.pop()
        func = stack[-1]
        if not isinstance(func, OPAQUE):
            raise _Broken(f"'{type(func).__name__}' object is not callable")
        accepted = accepts(args, tuple)
        if accepted is False:
            raise _Broken("argument list must be a tuple")
        if accepted is None:
            soft("REDUCE is given arguments computed while loading", pos)
        stack[-1] = make_call(func, args, "reduce", pos)

    @handles("GLOBAL")
    def op_global(op: int) -> None:
        pos = tell() - 1
        module = global_name("utf-8")
        attr = global_name("utf-8")
        stack.append(new_global(module, attr, pos))

    @handles("STACK_GLOBAL")
    def op_stack_global(op: int) -> None:
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
            stack.append(new_global(show(module), show(attr), pos, computed=True))

    @handles(*_SIMPLE_CONSTANTS)
    def op_constant(op: int) -> None:
        stack.append(_SIMPLE_CONSTANTS[op])

    @handles(*_EMPTY_FACTORIES)
    def op_empty_container(op: int) -> None:
        stack.append(_EMPTY_FACTORIES[op]())

    @handles("BINPERSID")
    def op_binpersid(op: int) -> None:
        if len(stack) <= fence:
            raise _Broken("stack underflow")
        ref = PersistentRef(stack.pop(), tell() - 1)
        refs.append(ref)
        stack.append(ref)

    @handles("TUPLE1", "TUPLE2", "TUPLE3")
    def op_small_tuple(op: int) -> None:
        n = op - 0x84  # TUPLE1 0x85, TUPLE2, TUPLE3
        if len(stack) - n < fence:
            raise _Broken("stack underflow")
        items = stack[-n:]
        del stack[-n:]
        stack.append(tuple(items))

    @handles(*_FIXED)
    def op_fixed_number(op: int) -> None:
        number_format, width = _FIXED[op]
        stack.append(unpack_from(number_format, take(width))[0])

    @handles("SETITEMS", "APPENDS", "ADDITEMS")
    def op_items_from_mark(op: int) -> None:
        pos = tell() - 1
        items = pop_mark()
        if len(stack) <= fence:
            raise _Broken("stack underflow")
        if op == 0x75:  # SETITEMS
            set_items(stack[-1], items, pos, calls, soft)
        elif op == 0x65:  # APPENDS (else ADDITEMS)
            append_items(stack[-1], items, pos, calls, soft)
        else:
            add_items(stack[-1], items, pos, calls, soft)

    @handles("SETITEM")
    def op_setitem(op: int) -> None:
        if len(stack) - 3 < fence:
            raise _Broken("stack underflow")
        value = stack.pop()
        k = stack.pop()
        set_items(stack[-1], [k, value], tell() - 1, calls, soft)

    @handles("APPEND")
    def op_append(op: int) -> None:
        if len(stack) - 2 < fence:
            raise _Broken("stack underflow")
        value = stack.pop()
        append_items(stack[-1], [value], tell() - 1, calls, soft)

    @handles("LONG_BINPUT")
    def op_long_binput(op: int) -> None:
        pos = tell() - 1
        slot = unpack_from("<I", take(4))[0]
        if len(stack) <= fence:
            raise _Broken("stack underflow")
        put(memo, slot, stack[-1], soft, pos)

    @handles("LONG_BINGET")
    def op_long_binget(op: int) -> None:
        k = unpack_from("<I", take(4))[0]
        if k not in memo:
            raise _Broken(f"reads memo slot {k} that was never written")
        stack.append(memo[k])

    @handles("BUILD")
    def op_build(op: int) -> None:
        pos = tell() - 1
        if len(stack) - 2 < fence:
            raise _Broken("stack underflow")
        state = stack.pop()
        build(state, stack[-1], pos)

    @handles("NEWOBJ", "NEWOBJ_EX")
    def op_newobj(op: int) -> None:
        pos = tell() - 1
        ex = op == 0x92  # NEWOBJ_EX
        if len(stack) - (3 if ex else 2) < fence:
            raise _Broken("stack underflow")
        kwargs = stack.pop() if ex else None
        args = stack.pop()
        cls = stack[-1]
        checks = [
            accepts(cls, Global),
            accepts(args, tuple),
            accepts(kwargs, dict) if ex else True,
        ]
        if False in checks:
            raise _Broken("NEWOBJ needs a class, an argument tuple (and a keyword dict)")
        if None in checks:
            soft("NEWOBJ is given a value computed while loading", pos)
        stack[-1] = make_call(cls, args, "newobj_ex" if ex else "newobj", pos, kwargs)

    @handles("FRAME")
    def op_frame(op: int) -> None:  # C checks that the bytes exist, then reads on as usual
        nonlocal frame_end
        pos = tell() - 1
        n = unpack_from("<Q", take(8))[0]
        if n > SSIZE_MAX:
            raise _Broken("FRAME length exceeds the system's maximum")
        if frame_end >= 0:  # still inside the previous frame
            diffs.append(
                Differential(pos, "frame-nested", f"a FRAME starts before the frame ending at {frame_end}")
            )
        frame_end = pos + 9 + n
        frames.append((pos, frame_end))
        if framing is not None:
            framing.frame(n)

    @handles("PROTO")
    def op_proto(op: int) -> None:
        nonlocal protocol
        protocol = take(1)[0]
        if protocol > _HIGHEST_PROTOCOL:
            raise _Broken(f"unsupported pickle protocol {protocol}")

    @handles("POP")
    def op_pop(op: int) -> None:
        if marks and marks[-1] == len(stack):  # a MARK on top: POP removes it, as C's does
            pop_mark()
        elif len(stack) <= fence:
            raise _Broken("stack underflow")
        else:
            stack.pop()

    @handles("POP_MARK")
    def op_pop_mark(op: int) -> None:
        pop_mark()

    @handles("DUP")
    def op_dup(op: int) -> None:
        if len(stack) <= fence:
            raise _Broken("stack underflow")
        stack.append(stack[-1])

    @handles("OBJ")
    def op_obj(op: int) -> None:
        pos = tell() - 1
        items = pop_mark()
        if not items:
            raise _Broken("stack underflow")
        if not isinstance(items[0], OPAQUE):
            raise _Broken(f"'{type(items[0]).__name__}' object is not callable")
        stack.append(make_call(items[0], items[1:], "obj", pos))

    @handles("INST")
    def op_inst(op: int) -> None:  # the MARK is taken before the names are read
        pos = tell() - 1
        items = pop_mark()
        module = global_name("ascii")
        attr = global_name("ascii")
        stack.append(make_call(new_global(module, attr, pos), items, "inst", pos))

    @handles("LONG1")
    def op_long1(op: int) -> None:
        stack.append(int.from_bytes(take(take(1)[0]), "little", signed=True))

    @handles("LONG4")
    def op_long4(op: int) -> None:
        n = unpack_from("<i", take(4))[0]
        if n < 0:
            raise _Broken("LONG pickle has negative byte count")
        raw = payload(n, "bytes")
        if isinstance(raw, LargeValue):
            raw.kind = "int"
            stack.append(raw)
        else:
            stack.append(int.from_bytes(raw, "little", signed=True))

    @handles("SHORT_BINBYTES")
    def op_short_binbytes(op: int) -> None:
        stack.append(take(take(1)[0], read_bytes))

    @handles(*_SIZED)
    def op_sized_payload(op: int) -> None:
        size_format, width, kind, contiguous = _SIZED[op]
        stack.append(payload(unpack_from(size_format, take(width))[0], kind, contiguous))

    @handles("SHORT_BINSTRING")
    def op_short_binstring(op: int) -> None:
        stack.append(take(take(1)[0]).decode("latin-1"))

    @handles("BINSTRING")
    def op_binstring(op: int) -> None:  # C reads the length unsigned
        value = payload(unpack_from("<I", take(4))[0], "bytes")
        stack.append(value.decode("latin-1") if isinstance(value, bytes) else value)

    @handles("INT", "LONG", "FLOAT")
    def op_text_number(op: int) -> None:
        line = argument("numeric")
        parse = c_int if op == 0x49 else c_long if op == 0x4C else c_float  # INT LONG FLOAT
        stack.append(0 if line is None else parse(line))

    @handles("STRING")
    def op_string(op: int) -> None:
        line = readline()
        stack.append(string_arg(line) if isinstance(line, bytes) else line)

    @handles("UNICODE")
    def op_unicode(op: int) -> None:
        line = readline()
        stack.append(line.decode("raw-unicode-escape") if isinstance(line, bytes) else line)

    @handles("PUT")
    def op_put(op: int) -> None:
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

    @handles("GET")
    def op_get(op: int) -> None:
        pos = tell() - 1
        line = argument("GET")
        k = None if line is None else c_index(line)
        if k is None:
            stack.append(PersistentRef("<memo slot longer than 1 MiB>", pos))
        elif k not in memo:
            raise _Broken(f"reads memo slot {k} that was never written")
        else:
            stack.append(memo[k])

    @handles("PERSID")
    def op_persid(op: int) -> None:
        line = readline()
        if isinstance(line, bytes) and not line.isascii():
            raise _Broken("persistent IDs in protocol 0 must be ASCII strings")
        ref = PersistentRef(line.decode("ascii") if isinstance(line, bytes) else line, tell() - 1)
        refs.append(ref)
        stack.append(ref)

    @handles(*_EXT_WIDTH)
    def op_extension(op: int) -> None:
        width = _EXT_WIDTH[op]
        pos = tell() - 1
        ext = int.from_bytes(take(width), "little", signed=width == 4)
        if ext <= 0:
            raise _Broken("EXT specifies code <= 0")
        soft(f"extension code {ext} is not registered in a plain interpreter", pos)
        g = Global("copyreg._extension_registry", str(ext), pos, asked=False)
        globals_.append(g)
        stack.append(g)

    @handles("NEXT_BUFFER")
    def op_next_buffer(op: int) -> None:  # an out-of-band buffer, modelled as a bytearray
        stack.append(bytearray())

    @handles("READONLY_BUFFER")
    def op_readonly_buffer(op: int) -> None:
        if len(stack) <= fence:
            raise _Broken("stack underflow")
        stack[-1] = readonly(stack[-1], soft, tell() - 1)

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
            if not code:
                raise _Broken("ends without STOP: truncated")
            op = code[0]  # int comparisons are specialised by the interpreter, bytes ones are not
            # The most frequent opcodes of PyTorch and joblib pickles inline, the rest by the table.
            # Hot opcodes read their arguments inline: a short read raises IndexError or
            # struct.error, which end the program as truncated.
            if op == 0x71:  # BINPUT
                slot = read(1)[0]
                if len(stack) <= fence:
                    raise _Broken("stack underflow")
                memo[slot] = stack[-1]
            elif op == 0x68:  # BINGET
                stack.append(memo[read(1)[0]])
            elif op == 0x58:  # BINUNICODE
                n = unpack_from("<I", read(4))[0]
                if n > LARGE_VALUE:
                    stack.append(payload(n, "str"))
                else:
                    data = read(n)
                    if len(data) < n:
                        raise _Broken("truncated")
                    stack.append(data.decode("utf-8", "surrogatepass"))
            elif op == 0x8C:  # SHORT_BINUNICODE
                n = read(1)[0]
                data = read(n)
                if len(data) < n:
                    raise _Broken("truncated")
                stack.append(data.decode("utf-8", "surrogatepass"))
            elif op == 0x28:  # MARK
                marks.append(len(stack))
                fence = len(stack)
            elif op == 0x4B:  # BININT1
                stack.append(read(1)[0])
            elif op == 0x2E:  # STOP
                if len(stack) <= fence:
                    raise _Broken("STOP with an empty stack")
                end = tell()
                if frame_end > end:
                    diffs.append(
                        Differential(end, "frame-past-stop", f"the frame claims bytes up to {frame_end}")
                    )
                value = stack.pop()
                check_frames(raw_stream, frames, end, diffs, stop)
                if framing is not None and framing.end > end:
                    end = framing.end  # C has read the frame's rest: the next load starts after it
                    raw_stream.seek(end)
                return finish(value, globals_, calls, refs, protocol, end, count, None, stop, diffs)
            else:  # the rest through the table, at one lookup each whatever the opcode
                table[op](op)
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
        check_frames(raw_stream, frames, end, diffs, stop)
        result = finish(None, globals_, calls, refs, protocol, end, count, message, stop, diffs)
        result.budget_exhausted = exhausted
        return result
    raise FormatError(message, name)
