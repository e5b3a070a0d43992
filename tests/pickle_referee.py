"""The differential referee: CPython's own unpickler beside tensorfile's reader, on the same bytes.

`Referee` keeps one child process (tests/referee_child.py) that unpickles with the C unpickler
and inert stand-ins and reports which globals find_class was asked for and what they resolved to;
`compare` holds tensorfile's reading to that. `TorchReferee` asks torch.load(weights_only=True)
whether it accepts a file. `corpus_pickles` and `fixture_pickles` find the pickles to compare in
../shared/corpus and tests/fixtures (bytes only: nothing here unpickles them in this process).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import select
import struct
import subprocess
import sys
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from tensorfile.picklevm import read_pickle_lenient
from tensorfile.scan.pickles import looks_like_pickle

CHILD = Path(__file__).with_name("referee_child.py")
MAX_STREAMS = 8
TIMEOUT = 20.0  # seconds per case


class RefereeError(RuntimeError):
    pass


_C = TypeVar("_C", bound="_Child")


class _Child:
    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.proc: subprocess.Popen[bytes] | None = None

    def _start(self) -> subprocess.Popen[bytes]:
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen(
                [sys.executable, str(CHILD), self.mode, str(MAX_STREAMS)],
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                env={**os.environ, "PYTHONHASHSEED": "0"},
            )
        return self.proc

    def ask(self, data: bytes) -> dict[str, Any]:
        proc = self._start()
        assert proc.stdin is not None and proc.stdout is not None
        try:
            proc.stdin.write(struct.pack("<I", len(data)) + data)
            proc.stdin.flush()
        except BrokenPipeError:
            return self._died("crashed")
        ready, _, _ = select.select([proc.stdout], [], [], TIMEOUT)
        if not ready:
            return self._died("timeout")
        line = proc.stdout.readline()
        if not line:
            return self._died("crashed")
        return json.loads(line)

    def _died(self, what: str) -> dict[str, Any]:
        if self.proc is not None:
            self.proc.kill()
            self.close()
        return {what: True}

    def close(self) -> None:
        if self.proc is not None:
            assert self.proc.stdin is not None and self.proc.stdout is not None
            with contextlib.suppress(BrokenPipeError):
                self.proc.stdin.close()
            self.proc.wait(timeout=30)
            self.proc.stdout.close()
            self.proc = None

    def __enter__(self: _C) -> _C:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class Referee(_Child):
    """CPython's C unpickler with stand-ins, in a child process; `ask(data)` answers for both ways
    C reads: {"joined": streams, "buffered": streams}."""

    def __init__(self) -> None:
        super().__init__("pickle")


class TorchReferee(_Child):
    """torch.load(weights_only=True) in a child process; `ask(data)` says whether it accepts."""

    def __init__(self) -> None:
        super().__init__("torch")


def our_streams(data: bytes, buffered: bool = False, max_streams: int = MAX_STREAMS) -> list[dict[str, Any]]:
    """tensorfile's reading in the referee's terms: per stream, the globals find_class is asked for,
    what each resolves to (None where find_class fails), and whether CPython raises."""
    stream = io.BytesIO(data)
    out = []
    while len(out) < max_streams:
        result = read_pickle_lenient(stream, drop_frame_tails=buffered)
        asked = result.asked()
        raised = result.error is not None or result.cpython_stop is not None
        out.append(
            {
                "asked": [[g.module, g.name] for g in asked],
                "resolved": [[g.resolved_module, g.resolved_name] if g.resolves else None for g in asked],
                "raised": raised,
                "why": result.cpython_stop or result.error,
            }
        )
        if raised or result.end >= len(data):
            break
        stream.seek(result.end)
    return out


@dataclass
class Tally:
    cases: int = 0
    streams: int = 0
    globals: int = 0
    memory_bound: int = 0  # C ran out of the capped address space where the reader reads on
    disagreements: list[str] = field(default_factory=list)

    def line(self) -> str:
        return (
            f"{self.cases} cases, {self.streams} streams, {self.globals} globals asked of find_class: "
            f"{self.cases - len(self.disagreements)} agree, {len(self.disagreements)} disagree "
            f"({self.memory_bound} stopped by the memory cap)"
        )


def compare(label: str, data: bytes, theirs: dict[str, Any], tally: Tally) -> str | None:
    """Hold our reading of `data` to the referee's answer; a description of the first difference."""
    tally.cases += 1
    if "blocked" in theirs or "crashed" in theirs or "timeout" in theirs:
        problem = f"{label}: referee {theirs}"
        tally.disagreements.append(problem)
        return problem
    for mode in ("joined", "buffered"):
        ours = our_streams(data, mode == "buffered")
        problem = _compare_mode(
            f"{label} ({mode})", ours, theirs[mode], tally if mode == "joined" else Tally()
        )
        if problem:
            tally.disagreements.append(problem)
            return problem
    return None


def _compare_mode(
    label: str, ours: list[dict[str, Any]], theirs: list[dict[str, Any]], tally: Tally
) -> str | None:
    for i, (mine, cpython) in enumerate(zip(ours, theirs, strict=False)):
        tally.streams += 1
        tally.globals += len(cpython["asked"])
        raised = cpython["error"] is not None
        if raised and cpython["error"].startswith("MemoryError") and not mine["raised"]:
            # the capped child could not allocate what a bigger machine can: a prefix must agree
            tally.memory_bound += 1
            if mine["asked"][: len(cpython["asked"])] == cpython["asked"]:
                return None
        if mine["asked"] != cpython["asked"]:
            return f"{label} stream {i}: asked {mine['asked']} != CPython {cpython['asked']}"
        if mine["resolved"] != cpython["resolved"]:
            return f"{label} stream {i}: resolved {mine['resolved']} != CPython {cpython['resolved']}"
        if mine["raised"] != raised:
            return (
                f"{label} stream {i}: raised {mine['raised']} ({mine['why']}) != CPython {cpython['error']}"
            )
    if len(ours) != len(theirs):
        return f"{label}: {len(ours)} streams read, CPython read {len(theirs)}"
    return None


# --- where the pickles are ----------------------------------------------------------------------


def _pickles_in(label: str, data: bytes, depth: int = 0) -> Iterator[tuple[str, bytes]]:
    if data[:4] == b"PK\x03\x04" and depth < 2:
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
            members = [m for m in archive.infolist() if not m.is_dir() and m.file_size < 64 << 20]
            for member in members:
                try:
                    inner = archive.read(member)
                except (zipfile.BadZipFile, RuntimeError, NotImplementedError, OSError, EOFError):
                    continue  # encrypted, tampered or unsupported members: the scanner's business
                yield from _pickles_in(f"{label}!{member.filename}", inner, depth + 1)
        except zipfile.BadZipFile:
            pass
        return
    if data[:6] == b"\x93NUMPY":
        header_len = (
            struct.unpack("<H", data[8:10])[0] if data[6] == 1 else struct.unpack("<I", data[8:12])[0]
        )
        offset = (10 if data[6] == 1 else 12) + header_len
        if b"'O'" in data[:offset] or b'"O"' in data[:offset]:
            yield f"{label} (object array)", data[offset:]
        return
    if looks_like_pickle(data[:256]):
        yield label, data


def files_pickles(root: Path) -> Iterator[tuple[str, bytes]]:
    """Every pickle in the files under `root`: raw, zip members (PyTorch zips), .npy object arrays."""
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.stat().st_size > 64 << 20 or path.name == "manifest.json":
            continue
        yield from _pickles_in(str(path.relative_to(root)), path.read_bytes())


def torch_files(root: Path) -> Iterator[tuple[str, bytes]]:
    """Files under `root` that torch.load would take: PyTorch zips and legacy pickle stacks."""
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        if path.stat().st_size > 64 << 20:
            continue
        data = path.read_bytes()
        is_zip = data[:4] == b"PK\x03\x04" and any(n.endswith("data.pkl") for n in _zip_names(data))
        legacy = data[:2] == b"\x80\x02" and data[2:3] == b"\x8a"  # torch's magic number comes first
        if is_zip or legacy:
            yield str(path.relative_to(root)), data


def _zip_names(data: bytes) -> list[str]:
    try:
        return zipfile.ZipFile(io.BytesIO(data)).namelist()
    except zipfile.BadZipFile:
        return []
