"""The records a pickle reading produces: imports, calls, persistent ids, large payloads, the result."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from ..pickle_c import bytes_exist


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


# Called after BUILD on any object: joblib writes raw array bytes right after its array wrapper,
# and the hook may consume them from the stream before opcodes resume.
RawDataHook = Callable[[Call, Any], None]


def finish(
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
    """The result of a reading; globals past where CPython with stand-ins stops are never asked for."""
    if stop[0] is not None:
        for g in globals_:
            if g.position > stop[1]:
                g.asked = False
    return PickleResult(value, globals_, calls, refs, protocol, end, count, error, stop[0], stop[1], diffs)


def check_frames(
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
