"""Worker processes that encode chunks of float32 rows to a GGUF tensor type.

Plain subprocesses (`python -m tensorfile.convert.gguf.workers`) speaking a small framed protocol
over their pipes, not multiprocessing: spawn and forkserver re-import the caller's `__main__`
(a library user's unguarded script would run again in every worker), and fork is unsafe in a
process that runs threads. A worker reads a request, encodes it, writes the answer, and exits
when its stdin closes, so a killed parent leaves no workers behind.

    each way: u32 header length, a JSON header with "bytes": n, then n bytes
    request:  {"base", "final", "rows", "cols", "bytes"}, then rows*cols float32
    answer:   {"bytes"} then the encoded bytes, or {"error": text, "bytes": 0}
"""

from __future__ import annotations

import contextlib
import json
import os
import queue
import struct
import subprocess
import sys
import threading
from dataclasses import dataclass
from typing import BinaryIO

import numpy as np

from ...errors import TensorfileError

_LEN = struct.Struct("<I")


def _send(stream: BinaryIO, header: dict[str, object], payload: bytes | memoryview) -> None:
    head = json.dumps({**header, "bytes": memoryview(payload).nbytes}).encode()
    stream.write(_LEN.pack(len(head)) + head)
    stream.write(payload)
    stream.flush()


def _read_exact(stream: BinaryIO, n: int) -> bytes | None:
    data = stream.read(n)
    if len(data) != n:
        return None
    return data


def _receive(stream: BinaryIO) -> tuple[dict[str, object], bytes] | None:
    head = _read_exact(stream, _LEN.size)
    if head is None:
        return None
    raw = _read_exact(stream, _LEN.unpack(head)[0])
    if raw is None:
        return None
    header = json.loads(raw)
    size = int(header.get("bytes", 0))
    payload = _read_exact(stream, size) if size else b""
    if payload is None:
        return None
    return header, payload


class _Worker:
    """One child process, a feeder thread writing its requests, answers read back in order."""

    def __init__(self) -> None:
        env = dict(os.environ, TENSORFILE_QUANT_THREADS="1")  # each worker is one core already
        cmd = [sys.executable, "-m", "tensorfile.convert.gguf.workers"]
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env)
        self.pending = 0
        self._requests: queue.Queue[tuple[dict[str, object], np.ndarray] | None] = queue.Queue()
        self._feeder = threading.Thread(target=self._feed, daemon=True)
        self._feeder.start()

    def _feed(self) -> None:
        stdin = self.proc.stdin
        assert stdin is not None
        try:
            while (item := self._requests.get()) is not None:
                header, rows = item
                _send(stdin, header, memoryview(rows).cast("B"))
        except (BrokenPipeError, OSError):
            pass  # the worker died; the reader reports it
        finally:
            with contextlib.suppress(OSError):  # close flushes: fails too when the worker is gone
                stdin.close()

    def submit(self, rows: np.ndarray, base: str, final: str) -> None:
        rows = np.ascontiguousarray(rows, dtype=np.float32)
        if rows.ndim != 2:
            rows = rows.reshape(1, -1)
        header = {"base": base, "final": final, "rows": rows.shape[0], "cols": rows.shape[1]}
        self._requests.put((header, rows))
        self.pending += 1

    def answer(self) -> bytes:
        assert self.proc.stdout is not None
        got = _receive(self.proc.stdout)  # type: ignore[arg-type]
        self.pending -= 1
        if got is None:
            code = self.proc.poll()
            raise TensorfileError(f"a quantizing worker process stopped (exit code {code})")
        header, payload = got
        if "error" in header:
            raise TensorfileError(f"a quantizing worker failed: {header['error']}")
        return payload

    def close(self) -> None:
        self._requests.put(None)
        self._feeder.join(timeout=5)
        if self.proc.stdout is not None:
            self.proc.stdout.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


@dataclass(frozen=True)
class Ticket:
    """A submitted chunk: the worker that will answer it."""

    worker: _Worker


class EncodeWorkers:
    """N workers; `submit` returns a ticket, `result(ticket)` its bytes. Tickets must be redeemed
    in the order they were issued (each worker answers its own requests first-in, first-out)."""

    def __init__(self, count: int) -> None:
        self._workers: list[_Worker] = []
        try:
            for _ in range(count):
                self._workers.append(_Worker())
        except BaseException:
            self.close()
            raise

    def submit(self, rows: np.ndarray, base: str, final: str) -> Ticket:
        worker = min(self._workers, key=lambda w: w.pending)
        worker.submit(rows, base, final)
        return Ticket(worker)

    def result(self, ticket: Ticket) -> bytes:
        return ticket.worker.answer()

    def close(self) -> None:
        for worker in self._workers:
            worker.close()
        self._workers.clear()


def main() -> int:
    """The worker loop: requests on stdin, answers on stdout, until stdin closes."""
    import signal

    # Ctrl-C reaches the whole process group: the parent handles it and closes our pipes
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        return _serve(sys.stdin.buffer, sys.stdout.buffer)
    except (BrokenPipeError, ConnectionError, OSError):
        return 0  # the parent is gone: nobody to answer


def _serve(stdin: BinaryIO, stdout: BinaryIO) -> int:
    from .write import encode

    while True:
        got = _receive(stdin)
        if got is None:
            return 0  # stdin closed (or cut mid-request: the parent is gone either way)
        request, data = got
        rows, cols = int(request["rows"]), int(request["cols"])
        try:
            values = np.frombuffer(data, dtype=np.float32).reshape(rows, cols)
            out = encode(values, str(request["base"]), str(request["final"]))
        except Exception as exc:  # reported to the parent, which raises it as one line
            _send(stdout, {"error": f"{type(exc).__name__}: {exc}"}, b"")
            continue
        _send(stdout, {}, out)


if __name__ == "__main__":
    sys.exit(main())
