"""Scan pickle programs: every global they import, how they use it, and pickles hidden inside.

The program runs on the non-executing VM (`picklevm`) in lenient mode, so a stream that breaks
off on purpose still shows what came before the break (the real unpickler runs that part).
After a STOP the scan goes on while more pickle streams follow, since loaders such as torch's
legacy format read several in a row. Byte strings, and base64 or hex text, that hold another
pickle are scanned too, up to a few layers deep.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from ..formats.pickle import joblib_array_data
from ..picklevm import (
    Call,
    Global,
    LargeValue,
    PersistentRef,
    PickleResult,
    is_pickle_start,
    parses_as_pickle,
    read_pickle_lenient,
)
from .findings import CONVERT_ADVICE, Finding, rank
from .rules import classify, normalize

MAX_STREAMS = 64
# A program longer than the VM's opcode budget is read that far: the rest is unjudged, so the
# file's scan is incomplete (never clean).
BUDGET_RULE = "pickle-opcode-budget"
MAX_NESTING = 4
_MIN_ENCODED = 16
_BASE64 = re.compile(rb"^[A-Za-z0-9+/=_\-\s]+$")
_HEX = re.compile(rb"^(?:[0-9a-fA-F]{2})+$")

# Callers whose arguments are plain data (a global passed to them is not called by them).
_DATA_CONSTRUCTORS = frozenset(
    {
        "collections.OrderedDict",
        "builtins.set",
        "builtins.frozenset",
        "builtins.list",
        "builtins.tuple",
        "builtins.dict",
        "builtins.slice",
        "builtins.setstate",
    }
)
# Callers that instantiate the class given as their first argument.
_CONSTRUCTORS = frozenset(
    {
        "copyreg._reconstructor",
        "copyreg.__newobj__",
        "copyreg.__newobj_ex__",
        "numpy.core.multiarray._reconstruct",
    }
)
_REBUILD_FROM_TYPE = "torch._tensor._rebuild_from_type_v2"
_ADVICE = "do not load it with pickle, torch.load or joblib.load; " + CONVERT_ADVICE


@dataclass
class PickleScan:
    findings: list[Finding] = field(default_factory=list)
    streams: int = 0
    incomplete: list[str] = field(default_factory=list)  # parts that could not be checked
    opcodes: int = 0
    joblib: bool = False  # saw joblib array wrappers (their raw bytes were skipped)


def looks_like_pickle(head: bytes) -> bool:
    """Whether `head` would be read as pickle opcodes. Fail closed: pickle.load accepts programs
    that open with any opcode (no PROTO), so a head that decodes as opcodes counts too."""
    return (is_pickle_start(head) is not None and parses_as_pickle(head, 1)) or parses_as_pickle(head)


def scan_pickle(
    stream: Any,
    label: str = "",
    *,
    max_streams: int = MAX_STREAMS,
    joblib: bool = True,
    depth: int = 0,
    max_opcodes: int | None = None,
) -> PickleScan:
    """Scan every pickle stream in `stream` (read/readline/tell/seek) from its current position.

    `scan.incomplete` lists where a program ran past the opcode budget (`max_opcodes`, default
    the VM's `MAX_OPCODES`): the caller reports the file as incomplete."""
    scan = PickleScan()
    start = stream.tell()
    _scan_streams(stream, label, max_streams, joblib, depth, scan, max_opcodes)
    if joblib and scan.joblib and _seek_ok(stream, start):
        # pickle.load does not skip joblib's raw array bytes: it reads them as opcodes. Scan
        # that reading as well, so payload hidden in "array data" is not missed.
        plain = PickleScan()
        _scan_streams(stream, label, 1, False, depth, plain, max_opcodes)
        known = {(f.rule, f.evidence) for f in scan.findings}
        # The plain reading is expected to break at the first array's bytes: only new findings count.
        scan.findings += [
            f
            for f in plain.findings
            if (f.rule, f.evidence) not in known
            and f.rule not in ("pickle-malformed", "pickle-trailing-data")
        ]
    scan.incomplete = [f.location for f in scan.findings if f.rule == BUDGET_RULE]
    return scan


_JOBLIB_WRAPPER = "joblib.numpy_pickle.NumpyArrayWrapper"


def _seek_ok(stream: Any, offset: int) -> bool:
    try:
        stream.seek(offset)
    except OSError:  # a forward-only decompressing stream
        return False
    return True


def _scan_streams(
    stream: Any,
    label: str,
    max_streams: int,
    joblib: bool,
    depth: int,
    scan: PickleScan,
    max_opcodes: int | None = None,
) -> None:
    inline: list[PickleResult] = []

    def hook(call: Call, inner: Any) -> None:
        if not isinstance(call.func, Global) or call.func.qualname != _JOBLIB_WRAPPER:
            return
        scan.joblib = True
        joblib_array_data(call, inner, lambda s: inline.append(read_pickle_lenient(s)))

    while scan.streams < max_streams:
        begin = stream.tell()
        result = read_pickle_lenient(
            stream, name=label, raw_data_hook=hook if joblib else None, max_opcodes=max_opcodes
        )
        scan.streams += 1
        scan.opcodes += result.opcode_count
        where = f"stream {scan.streams}" if scan.streams > 1 else ""
        for res in [result, *inline]:
            scan.findings += [f.within(where) if where else f for f in analyze(res, depth)]
        inline.clear()
        if any(d.kind in ("frame-straddle", "frame-nested") for d in result.differentials):
            scan.findings += _buffered_reading(stream, begin, result, label, depth, where, scan.findings)
        if result.budget_exhausted:
            scan.findings.append(
                Finding(
                    BUDGET_RULE,
                    "medium",
                    "This pickle is longer than the scan reads: it was checked up to here, what "
                    "follows was not, so the file is reported as incomplete.",
                    result.error or "",
                    f"byte {result.end}" + (f", {where}" if where else ""),
                )
            )
            return
        if result.error:
            if scan.streams == 1 or result.opcode_count > 1:
                scan.findings.append(
                    Finding(
                        "pickle-malformed",
                        "low" if result.globals or scan.streams > 1 else "info",
                        "The pickle breaks off here: loading stops with an error, but everything before "
                        "this point runs (and was checked).",
                        result.error,
                        f"byte {result.end}" + (f", {where}" if where else ""),
                    )
                )
            return
        head = stream.read(64)
        stream.seek(result.end)
        if not head:
            return
        if not looks_like_pickle(head):
            # Anything that reads as opcodes counts as another stream: a loader that calls
            # pickle.load again (torch's legacy format reads five in a row) runs it, header or not.
            scan.findings.append(
                Finding(
                    "pickle-trailing-data",
                    "info",
                    "Bytes follow the end of the pickle; pickle.load ignores them.",
                    f"{len(head)}+ bytes after STOP",
                    f"byte {result.end}",
                )
            )
            return
        if stream.tell() <= begin:  # no progress: a zero-length program
            return


def _buffered_reading(
    stream: Any, begin: int, result: PickleResult, label: str, depth: int, where: str, known: list[Finding]
) -> list[Finding]:
    """The same stream read as C reads a stream without peek(): what that reading adds."""
    if not _seek_ok(stream, begin):
        return []
    other = read_pickle_lenient(stream, name=label, drop_frame_tails=True)
    stream.seek(result.end)
    seen = {(f.rule, f.evidence) for f in known}
    place = ", ".join(p for p in (where, "read as torch.load reads a zip record") if p)
    return [
        f.within(place)
        for f in analyze(other, depth)
        if (f.rule, f.evidence) not in seen and f.rule != "pickle-frame-mismatch"
    ]


def analyze(result: PickleResult, depth: int = 0) -> list[Finding]:
    """Findings for one pickle program: its globals judged by use, odd constructs, nested pickles."""
    findings: list[Finding] = []
    usage = _usage(result)
    seen: dict[str, Finding] = {}
    for g in result.globals:
        if g.computed:
            findings.append(
                Finding(
                    "pickle-computed-import",
                    "high",
                    "The name to import is computed while loading instead of written out, a trick "
                    "used to hide what a pickle imports.",
                    f"STACK_GLOBAL({g.module}, {g.name})",
                    f"byte {g.position}",
                    _ADVICE,
                )
            )
            continue
        if g.module == "copyreg._extension_registry":
            findings.append(
                Finding(
                    "pickle-extension-code",
                    "medium",
                    "Imports through a copyreg extension code; what it names depends on the loading "
                    "program's registry.",
                    f"EXT {g.name}",
                    f"byte {g.position}",
                )
            )
            continue
        # Judged by what CPython's find_class imports: below protocol 3 a Python 2 name is mapped
        # (__builtin__.xrange is builtins.range), then known aliases (posix is os) apply.
        qualname = ".".join(normalize(g.resolved_module, g.resolved_name)) or g.qualname
        how = usage.get(id(g), "referenced")
        verdict = classify(g.resolved_module, g.resolved_name, how)
        if verdict.severity is None:
            continue
        key = f"{verdict.rule}:{g.qualname}"
        if key in seen:
            continue
        written = g.qualname if g.qualname == qualname else f"{g.qualname} (= {qualname})"
        finding = Finding(
            verdict.rule,
            verdict.severity,
            _message(verdict.severity, how, written, verdict.reason),
            written,
            f"byte {g.position}",
            _ADVICE if rank(verdict.severity) >= rank("high") else "",
        )
        seen[key] = finding
        findings.append(finding)
    findings += _odd_calls(result)
    findings += _frame_findings(result)
    if depth < MAX_NESTING:
        findings += _nested(result, depth)
    return findings


_FRAME_PROBLEMS = {
    "frame-straddle": "A frame ends inside an opcode",
    "frame-nested": "A FRAME starts inside another frame",
    "frame-overrun": "A frame claims more bytes than the data holds",
    "frame-past-stop": "A frame runs on past the end of the pickle",
}


def _frame_findings(result: PickleResult) -> list[Finding]:
    """Frames that disagree with the opcodes they hold. No pickler writes them; readers differ on
    them: CPython's C unpickler reading a stream without peek() (torch.load's zip records) drops
    the rest of a frame an opcode runs past, pickle.loads reads on, pickle._Unpickler refuses, and a
    reader that trusts frame lengths sees yet another program."""
    findings = []
    for kind in dict.fromkeys(d.kind for d in result.differentials):
        first = next(d for d in result.differentials if d.kind == kind)
        findings.append(
            Finding(
                "pickle-frame-mismatch",
                "high",
                f"{_FRAME_PROBLEMS[first.kind]}: unpicklers disagree on which opcodes this file runs "
                "(both readings were checked).",
                first.detail,
                f"byte {first.position}",
                _ADVICE,
            )
        )
    return findings


def _message(severity: str, how: str, name: str, reason: str) -> str:
    verb = {"called": "calls", "constructed": "builds an object of", "referenced": "imports"}[how]
    if severity == "critical":
        return f"Loading this file {verb} {name}, which {reason}."
    if severity == "high":
        return f"Loading this file {verb} {name}: it {reason}."
    return f"Loading this file {verb} {name}: {reason}."


def _usage(result: PickleResult) -> dict[int, str]:
    """How each Global object is used: "called", "constructed" or (default) "referenced"."""
    order = {"referenced": 0, "constructed": 1, "called": 2}
    usage: dict[int, str] = {}

    def mark(value: Any, how: str) -> None:
        if isinstance(value, Global) and order[how] > order[usage.get(id(value), "referenced")]:
            usage[id(value)] = how

    for call in result.calls:
        func = call.func
        name = func.qualname if isinstance(func, Global) else ""
        canonical = ".".join(normalize(func.resolved_module, func.resolved_name)) if name else ""
        if call.kind in ("newobj", "newobj_ex"):
            mark(func, "constructed")
        elif call.kind != "build":
            mark(func, "called")
        rest: tuple[Any, ...] = call.args
        if canonical == _REBUILD_FROM_TYPE and len(call.args) > 1:
            # _rebuild_from_type_v2(func, new_type, args, state) calls func(*args), then makes the
            # result an instance of new_type
            mark(call.args[0], "called")
            mark(call.args[1], "constructed")
            rest = call.args[2:]
        elif canonical in _CONSTRUCTORS and call.args:
            mark(call.args[0], "constructed")
            rest = call.args[1:]
        if call.kind == "build" or name == "builtins.setstate" or canonical in _DATA_CONSTRUCTORS:
            continue
        # Anything else that receives a global may call it (partial, apply, map, defaultdict…).
        # Torch's dtypes, qschemes and layouts passed to its rebuild functions are data: the rules
        # allow them however they are used (they cannot be called).
        for value in _shallow(rest, 3):
            mark(value, "called")
        if call.kwargs:  # NEWOBJ_EX takes whatever object the pickle put there, not always a dict
            kwargs = call.kwargs.values() if isinstance(call.kwargs, dict) else (call.kwargs,)
            for value in _shallow(tuple(kwargs), 3):
                mark(value, "called")
    return usage


def _shallow(values: tuple[Any, ...], depth: int) -> Iterator[Any]:
    for value in values:
        yield value
        if depth > 0 and isinstance(value, (tuple, list)):
            yield from _shallow(tuple(value), depth - 1)
        elif depth > 0 and isinstance(value, dict):
            yield from _shallow(tuple(value.values()), depth - 1)


# How a pickle can change an object it imported, besides calling it.
_MUTATIONS = {
    "build": ("changes attributes of", "BUILD"),
    "setitems": ("stores items into", "SETITEM"),
    "appends": ("appends to", "APPEND"),
    "additems": ("adds to", "ADDITEMS"),
}


def _odd_calls(result: PickleResult) -> list[Finding]:
    findings: list[Finding] = []
    for call in result.calls:
        if call.kind in _MUTATIONS and call.args and isinstance(call.args[0], Global):
            target = call.args[0]
            verb, opcode = _MUTATIONS[call.kind]
            findings.append(
                Finding(
                    "pickle-build-on-import",
                    "high",
                    f"Loading this file {verb} the imported object {target.qualname} (a known way "
                    "to swap library functions or settings for dangerous ones).",
                    f"{opcode} on {target.qualname}",
                    f"byte {call.position}",
                    _ADVICE,
                )
            )
        elif call.kind in ("reduce", "inst", "obj") and not isinstance(call.func, Global):
            findings.append(
                Finding(
                    "pickle-indirect-call",
                    "high",
                    "Loading this file calls an object produced earlier in the same load, not a "
                    "named import: a way to hide what runs.",
                    f"{call.kind.upper()} on {type(call.func).__name__}",
                    f"byte {call.position}",
                    _ADVICE,
                )
            )
    return findings


# --- pickles inside pickles ---------------------------------------------------------------------


def _nested(result: PickleResult, depth: int) -> list[Finding]:
    findings: list[Finding] = []
    for value in _payloads(result):
        if isinstance(value, LargeValue):
            if looks_like_pickle(value.head):
                findings.append(
                    Finding(
                        "pickle-embedded-large",
                        "medium",
                        "A large value inside this pickle is itself a pickle; it runs only if the "
                        "loading code unpickles it.",
                        f"{value.length}-byte {value.kind}",
                        f"byte {value.offset}",
                    )
                )
            continue
        inner, how = _decode_layers(value)
        if inner is None:
            continue
        nested = scan_pickle(io.BytesIO(inner), depth=depth + 1, max_streams=4)
        where = f"embedded pickle ({how})"
        for f in nested.findings:
            if f.rule in ("pickle-malformed", "pickle-trailing-data"):
                continue
            findings.append(f.within(where))
    return findings


def _payloads(result: PickleResult) -> Iterator[Any]:
    """Every bytes/str value worth checking for a hidden pickle, from values and call arguments."""
    stack: list[Any] = [result.value]
    for call in result.calls:
        stack.extend((call.args, call.state, call.kwargs, call.items, call.list_items))
    seen: set[int] = set()
    budget = 2_000_000
    while stack and budget > 0:
        budget -= 1
        value = stack.pop()
        if isinstance(value, (bytes, bytearray)):
            if len(value) >= 8:
                yield bytes(value)
        elif isinstance(value, str):
            if len(value) >= _MIN_ENCODED:
                yield value
        elif isinstance(value, LargeValue):
            yield value
        elif isinstance(value, (list, tuple, dict, set, frozenset, Call)):
            if id(value) in seen:
                continue
            seen.add(id(value))
            if isinstance(value, dict):
                stack.extend(value.keys())
                stack.extend(value.values())
            elif isinstance(value, Call):
                stack.extend((value.args, value.state, value.items, value.list_items))
            else:
                stack.extend(value)
        elif isinstance(value, PersistentRef):
            stack.append(value.pid)


def _decode_layers(value: bytes | str) -> tuple[bytes | None, str]:
    """The pickle hidden in `value` (raw, base64 or hex, up to three layers), and how it was found."""
    data = value.encode("latin-1", "ignore") if isinstance(value, str) else value
    steps: list[str] = []
    for _ in range(3):
        head = data[:256]
        if looks_like_pickle(head):
            return data, " → ".join(steps) or "raw bytes"
        stripped = data.strip()
        if len(stripped) < _MIN_ENCODED:
            return None, ""
        if _HEX.match(stripped[:4096]) and len(stripped) % 2 == 0:
            try:
                data = binascii.unhexlify(stripped)
            except (binascii.Error, ValueError):
                return None, ""
            steps.append("hex")
        elif _BASE64.match(stripped[:4096]):
            try:
                data = base64.b64decode(stripped + b"=" * (-len(stripped) % 4), altchars=_altchars(stripped))
            except (binascii.Error, ValueError):
                return None, ""
            steps.append("base64")
        else:
            return None, ""
    return None, ""


def _altchars(data: bytes) -> bytes | None:
    return b"-_" if (b"-" in data or b"_" in data) and b"+" not in data and b"/" not in data else None
