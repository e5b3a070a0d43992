"""Scan many local files on worker processes: every file gets its result, in input order,
whatever happens to a worker.

Workers are plain subprocesses (`python -m tensorfile.scan.pool`), as the GGUF encoders are,
not multiprocessing: spawn and forkserver re-import the caller's `__main__`, and fork is unsafe
in a process that runs threads. Each worker reads one JSON line per request (a path) and writes
one JSON line per answer (that file's `FileResult`), after a first line saying it is ready.
`run_pool` is the same machinery for any request: the worker runs a handler of ours named on its
command line (`tensorfile.zoo.work:handle` for the many-files runs of scan, inspect and identify),
and answers are yielded as they arrive.

A worker that dies (killed, out of memory, crashed in a C extension) loses no file: the one it
was scanning is tried once more on a fresh worker, and reported as an error if that one dies
too; the files queued behind it go back to the queue. Workers that end before they are ready
(cannot start) make the scan fail with one line, after a few tries. A worker also stops when its stdin
closes, so a parent killed with -9 leaves no worker behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import selectors
import signal
import subprocess
import sys
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

from ..errors import TensorfileError
from .findings import FileResult, Finding

DEPTH = 4  # requests in flight per worker: one being scanned, the next ones waiting in its pipe
TRIES = 2  # a file whose worker dies this many times is reported as an error
SCAN_HANDLER = "tensorfile.scan.pool:scan_request"


def to_wire(result: FileResult) -> dict[str, Any]:
    return {**vars(result), "findings": [vars(f) for f in result.findings]}  # asdict is 3x slower


def from_wire(data: dict[str, Any]) -> FileResult:
    findings = [Finding(**f) for f in data.pop("findings")]
    return FileResult(**data, findings=findings)


def _death(code: int | None) -> str:
    if code is not None and code < 0:
        with contextlib.suppress(ValueError):
            return f"killed by {signal.Signals(-code).name}"
    return f"exit code {code}"


class _Worker:
    """One child process and the indices of the requests it has not answered yet (oldest first)."""

    def __init__(self, handler: str) -> None:
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "tensorfile.scan.pool"]
            + ([] if handler == SCAN_HANDLER else ["--handler", handler]),
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            start_new_session=True,  # Ctrl-C is the parent's, even while a worker is starting
        )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        self.stdin = self.proc.stdin
        self.fd = self.proc.stdout.fileno()
        self.pending: deque[int] = deque()
        self.ready = False
        self._buffer = b""

    def send(self, requests: dict[int, Any]) -> None:
        """Queue requests (index: request). To a worker that is gone, nothing: its end of file is
        read next, and these requests go back to the queue with its others."""
        self.pending.extend(requests)
        with contextlib.suppress(BrokenPipeError, OSError):
            self.stdin.write(b"".join(json.dumps(req).encode() + b"\n" for req in requests.values()))
            self.stdin.flush()

    def read(self) -> list[dict[str, Any]] | None:
        """The answers that have arrived, or None when the worker has ended."""
        chunk = os.read(self.fd, 1 << 16)
        if not chunk:
            return None
        self._buffer += chunk
        *lines, self._buffer = self._buffer.split(b"\n")
        return [json.loads(line) for line in lines]

    def reap(self) -> str:
        """Wait for a worker that has ended; how it ended, in words."""
        self.close()
        return _death(self.proc.returncode)

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.stdin.close()
        try:
            self.proc.wait(timeout=5)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        assert self.proc.stdout is not None
        self.proc.stdout.close()


def scan_files(paths: list[Path], workers: int) -> list[FileResult]:
    """`scan_file` of each path on `workers` processes; the results in the order of `paths`."""
    results: list[FileResult | None] = [None] * len(paths)

    def lost(path: str, how: str) -> dict[str, Any]:
        error = f"the process scanning it stopped ({how}), {TRIES} times"
        return to_wire(FileResult(path, status="error", error=error))

    for index, answer in run_pool((str(p) for p in paths), workers, SCAN_HANDLER, lost):
        results[index] = from_wire(answer)
    missing = [str(paths[i]) for i, r in enumerate(results) if r is None]
    if missing:  # never report fewer files than asked: that would read as a clean zoo
        raise TensorfileError(
            f"the scan's workers gave no result for {len(missing)} file(s), e.g. {missing[0]}"
        )
    return [r for r in results if r is not None]


def run_pool(
    requests: Iterable[Any],
    workers: int,
    handler: str,
    lost: Callable[[Any, str], dict[str, Any]],
) -> Iterator[tuple[int, dict[str, Any]]]:
    """Each request (a JSON value) answered by `handler` on `workers` processes: (index of the
    request, its answer) as answers arrive. A request whose worker died `TRIES` times gets
    `lost(request, how)` as its answer. Requests are taken from the iterable as workers have
    room, so only those in flight are held."""
    source = iter(requests)
    held: dict[int, Any] = {}  # index -> request, for those not answered yet
    todo: deque[int] = deque()  # indices taken (or given back by a dead worker), not yet sent
    counter = [0]
    deaths: dict[int, int] = {}
    failed_starts: list[str] = []
    pool: list[_Worker] = []
    selector = selectors.DefaultSelector()

    def take(room: int) -> None:
        while len(todo) < room:
            request = next(source, _END)
            if request is _END:
                return
            held[counter[0]] = request
            todo.append(counter[0])
            counter[0] += 1

    def start() -> None:
        worker = _Worker(handler)
        pool.append(worker)
        selector.register(worker.fd, selectors.EVENT_READ, worker)

    def feed(worker: _Worker) -> None:
        take(DEPTH)
        room = min(DEPTH - len(worker.pending), len(todo))
        if room > 0:
            worker.send({i: held[i] for i in (todo.popleft() for _ in range(room))})

    def lost_worker(worker: _Worker) -> tuple[int, dict[str, Any]] | None:
        """A worker ended: blame the request it was on, requeue the others, replace it."""
        selector.unregister(worker.fd)
        pool.remove(worker)
        how = worker.reap()
        given_up = None
        if not worker.ready:  # it never read a request: no request to blame
            failed_starts.append(how)
            if len(failed_starts) > TRIES:
                raise TensorfileError(f"the scan's worker processes do not start ({how}); try --jobs 1")
        elif worker.pending:
            index = worker.pending[0]
            deaths[index] = deaths.get(index, 0) + 1
            if deaths[index] >= TRIES:
                worker.pending.popleft()
                given_up = (index, lost(held.pop(index), how))
        todo.extendleft(reversed(worker.pending))
        take(1)
        if todo:
            start()
        return given_up

    try:
        take(workers)
        for _ in range(min(workers, len(todo))):
            start()
        while True:
            take(1)  # the queue runs dry between answers while the iterable still has requests
            if not todo and not any(w.pending for w in pool):
                break
            for worker in pool:
                feed(worker)
            for key, _events in selector.select():
                worker = key.data
                answers = worker.read()
                if answers is None:
                    given_up = lost_worker(worker)
                    if given_up is not None:
                        yield given_up
                    continue
                for answer in answers:
                    if not worker.ready:
                        worker.ready = bool(answer.get("ready"))
                        continue
                    index = worker.pending.popleft()
                    held.pop(index, None)
                    deaths.pop(index, None)
                    yield index, answer
    except BaseException:  # Ctrl-C or a bug: stop the workers now, not after their current file
        for worker in pool:
            worker.proc.kill()
        raise
    finally:
        for worker in pool:
            worker.close()
        selector.close()


_END = object()


def scan_request(path: str) -> dict[str, Any]:
    """The scan workers' handler: one path in, its FileResult out."""
    from .scanner import scan_file

    return to_wire(scan_file(Path(path)))


def _handler(spec: str) -> Callable[[Any], dict[str, Any]]:
    """`module:function` of this package (nothing else is ever run by a worker)."""
    import importlib

    module, _, name = spec.partition(":")
    if not module.startswith("tensorfile.") or not name:
        raise SystemExit(f"not a tensorfile handler: {spec!r}")
    return getattr(importlib.import_module(module), name)  # type: ignore[no-any-return]


def main() -> int:
    """The worker loop: a request per line on stdin, its answer per line on stdout."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's: it stops us
    args = sys.argv[1:]
    handle = _handler(args[1] if len(args) > 1 and args[0] == "--handler" else SCAN_HANDLER)
    answers = os.fdopen(os.dup(1), "wb")
    os.dup2(2, 1)  # anything a library prints goes to stderr, never into the answers

    try:
        answers.write(b'{"ready": true}\n')
        answers.flush()
        for line in sys.stdin.buffer:
            answers.write(json.dumps(handle(json.loads(line))).encode() + b"\n")
            answers.flush()
    except (BrokenPipeError, ConnectionError):  # the parent is gone: nobody to answer
        with contextlib.suppress(OSError):
            answers.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
