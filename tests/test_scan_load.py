"""`scan --jobs 2` under load: a seeded zoo of 2,000 small files of mixed formats (benign ones
written by the formats' own libraries, hostile, truncated and huge-declared ones) gets the
same verdicts and findings as a serial run, every file exactly once, the same exit code, and
bounded memory; a worker killed mid-scan costs no file (bench/bench_scan_load.py runs 10,000).
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tensorfile.errors import TensorfileError
from tensorfile.scan import pool
from tensorfile.scan.scanner import scan

from .conftest import ROOT, foreground_signals
from .fixtures.make_zoo import MEASURED_CLI, build_zoo

ZOO_FILES = 2000
MB = 1 << 20


@pytest.fixture(scope="session")
def shared(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder all xdist workers of this session share: the zoo and its serial scan are made
    once (importing torch and onnx is most of the cost)."""
    base = tmp_path_factory.getbasetemp()
    folder = (base.parent if "PYTEST_XDIST_WORKER" in os.environ else base) / "scan-load"
    folder.mkdir(exist_ok=True)
    return folder


@contextlib.contextmanager
def locked(folder: Path) -> Iterator[None]:
    with (folder / ".lock").open("w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        yield


@pytest.fixture(scope="module")
def zoo(shared: Path) -> Path:
    folder = shared / "zoo"
    with locked(shared):
        if not (folder / "ZOO.json").exists():  # written last
            build_zoo(folder, ZOO_FILES, seed=16)
    return folder


def measured(tmp: Path, *args: str, stdout: Any = subprocess.PIPE) -> tuple[dict[str, Any], bytes]:
    """`tensorfile ARGS` in a fresh process: (exit code and peak RSS, its standard output)."""
    stats = tmp / f"stats-{time.monotonic_ns()}.json"
    proc = subprocess.run(
        [sys.executable, "-c", MEASURED_CLI, str(stats), *args],
        stdout=stdout,
        timeout=300,
        cwd=ROOT,
        check=False,
    )
    assert proc.returncode == 0, "the measuring wrapper itself failed"
    return json.loads(stats.read_text()), proc.stdout


def by_path(doc: dict[str, Any]) -> dict[str, dict[str, Any]]:
    files = doc["files"]
    assert len({f["path"] for f in files}) == len(files), "a file appears twice in the report"
    return {f["path"]: f for f in files}


def on_disk(zoo: Path) -> set[str]:
    return {str(Path(root) / n) for root, _dirs, names in os.walk(zoo / "files") for n in names}


@pytest.fixture(scope="module")
def serial(zoo: Path, shared: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    done = shared / "serial.json"
    with locked(shared):
        if not done.exists():
            stats, out = measured(shared, "scan", "--json", "--jobs", "1", str(zoo / "files"))
            done.write_text(json.dumps([stats, json.loads(out)]))
        stats, doc = json.loads(done.read_text())
    return stats, doc


def test_zoo_is_mixed_and_seeded(zoo: Path, serial: tuple[dict[str, Any], dict[str, Any]]) -> None:
    manifest = json.loads((zoo / "ZOO.json").read_text())
    groups = {e["group"] for e in manifest.values()}
    assert groups == {"benign", "hostile", "truncated", "huge"} and len(manifest) == ZOO_FILES
    verdicts = {p: f["verdict"] for p, f in by_path(serial[1]).items()}
    for rel, entry in manifest.items():  # the zoo is what it says: benign clean, hostile unsafe
        verdict = verdicts[str(zoo / rel)]
        if entry["group"] == "benign":
            assert verdict == "clean", rel
        elif entry["group"] == "hostile":
            assert verdict == "unsafe", rel
    again = build_zoo(zoo.parent / "zoo-again", 50, seed=16)
    assert all((zoo / rel).read_bytes() == (zoo.parent / "zoo-again" / rel).read_bytes() for rel in again)


def test_jobs_2_equals_serial_every_file_once_memory_bounded(
    zoo: Path, serial: tuple[dict[str, Any], dict[str, Any]], tmp_path: Path
) -> None:
    serial_stats, serial_doc = serial
    stats, out = measured(tmp_path, "scan", "--json", "--jobs", "2", str(zoo / "files"))
    parallel_doc = json.loads(out)
    # the same per-file verdicts and findings, each file of the zoo exactly once, in the same order
    assert by_path(parallel_doc) == by_path(serial_doc)
    assert set(by_path(parallel_doc)) == on_disk(zoo)
    assert [f["path"] for f in parallel_doc["files"]] == [f["path"] for f in serial_doc["files"]]
    assert parallel_doc["summary"] == serial_doc["summary"]
    assert stats["code"] == serial_stats["code"] == serial_doc["summary"]["exit_code"] == 2  # some errors
    # Memory: the zoo's huge-declared files claim up to a terabyte (a safetensors header, an npy
    # shape, a BINBYTES8 length, a zip member, GGUF counts, a tar member); honouring any one of
    # them would take gigabytes. Every process must stay within 100 MB of an interpreter that
    # has scanned one small file: what is left for 2,000 results in the parent (about 10 MB as
    # objects) and for one file at a time in a worker.
    base, _ = measured(tmp_path, "scan", "--jobs", "1", min(on_disk(zoo)), stdout=subprocess.DEVNULL)
    bound = base["parent"] + 100 * MB
    assert serial_stats["parent"] < bound and serial_stats["workers"] < bound
    assert stats["parent"] < bound, (stats, base)
    assert 0 < stats["workers"] < bound, (stats, base)


def scan_with_workers(zoo: Path, **popen: Any) -> tuple[subprocess.Popen[bytes], list[int]]:
    """A running `tensorfile scan --json --jobs 2` over the zoo three times (6,000 files, a few
    seconds) and its two worker processes' pids, once they have had time to answer some files."""
    folder = str(zoo / "files")
    cmd = [sys.executable, "-m", "tensorfile", "scan", "--json", "--jobs", "2", folder, folder, folder]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=ROOT, **popen)
    children = Path(f"/proc/{proc.pid}/task/{proc.pid}/children")
    deadline = time.monotonic() + 60
    while len(children.read_text().split()) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.5)
    return proc, [int(pid) for pid in children.read_text().split()]


def test_a_killed_worker_loses_no_file(zoo: Path, serial: tuple[dict[str, Any], dict[str, Any]]) -> None:
    """kill -9 of a worker of a running `scan --jobs 2`: the report is the serial one, exit code too."""
    proc, workers = scan_with_workers(zoo)
    os.kill(workers[0], signal.SIGKILL)
    out, err = proc.communicate(timeout=300)
    assert b"Traceback" not in err
    doc = json.loads(out)
    assert doc["files"] == serial[1]["files"] * 3
    assert proc.returncode == serial[0]["code"]


def test_ctrl_c_and_kill_9_of_the_parent_leave_no_worker(zoo: Path) -> None:
    proc, workers = scan_with_workers(zoo, start_new_session=True, preexec_fn=foreground_signals)
    os.killpg(proc.pid, signal.SIGINT)  # Ctrl-C reaches the terminal's foreground process group
    _out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.strip() == b"tensorfile: interrupted"
    assert not [pid for pid in workers if Path(f"/proc/{pid}").exists()]
    proc, workers = scan_with_workers(zoo)
    proc.kill()
    proc.wait()
    deadline = time.monotonic() + 60  # each worker ends when its stdin closes, after its current file
    while [pid for pid in workers if _running(pid)] and time.monotonic() < deadline:
        time.sleep(0.05)
    assert not [pid for pid in workers if _running(pid)]


def _running(pid: int) -> bool:
    """Alive and not a zombie (an orphaned worker is reaped by init, or lingers as a zombie
    under a sandbox's init that does not reap)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (FileNotFoundError, ProcessLookupError):
        return False


def _zoo_paths(zoo: Path, count: int) -> list[Path]:
    return sorted(Path(p) for p in on_disk(zoo))[:count]


def test_workers_killed_again_and_again_lose_nothing(zoo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The parent kills -9 a worker every 40 answers, right after reading them (so it dies with
    requests in flight); retried as often as it takes, every file gets its serial result."""
    paths = _zoo_paths(zoo, 300)
    expected = [r.__dict__ for r in scan(paths, jobs=1).results]
    kills: list[int] = []
    answered = [0]
    real_read = pool._Worker.read

    def read(self: pool._Worker) -> list[dict[str, Any]] | None:
        answers = real_read(self)
        if answers is not None and self.pending and len(kills) < 6:
            answered[0] += len(answers)
            if answered[0] >= 40 * (len(kills) + 1):
                kills.append(self.proc.pid)
                self.proc.send_signal(signal.SIGKILL)
        return answers

    monkeypatch.setattr(pool._Worker, "read", read)
    monkeypatch.setattr(pool, "TRIES", 100)
    got = [r.__dict__ for r in scan(paths, jobs=2).results]
    assert len(kills) == 6
    assert got == expected


# A stand-in for `python -m tensorfile.scan.pool` (the tests point sys.executable at it): a real
# worker that SIGKILLs itself on the file named POISON, and right at start-up while it can create
# one of the files START_KILLS names (so exactly that many workers die starting).
POISONED_WORKER = """
import os, signal, sys
from tensorfile.scan import pool, scanner
poison, start_kills = sys.argv[1], sys.argv[2:]
for name in start_kills:
    try:
        os.close(os.open(name, os.O_CREAT | os.O_EXCL))
    except FileExistsError:
        continue
    os.kill(os.getpid(), signal.SIGKILL)
real = scanner.scan_file
def scan_file(path):
    if path.name == poison:
        os.kill(os.getpid(), signal.SIGKILL)  # as a crash in a C extension would end it
    return real(path)
scanner.scan_file = scan_file
sys.exit(pool.main())
"""


def poisoned_workers(monkeypatch: pytest.MonkeyPatch, tmp: Path, poison: str, start_kills: int = 0) -> None:
    (tmp / "worker.py").write_text(POISONED_WORKER)
    kills = " ".join(str(tmp / f"start-kill-{i}") for i in range(start_kills))
    python = tmp / "python"
    python.write_text(f"#!/bin/sh\nexec {sys.executable} {tmp / 'worker.py'} {poison} {kills}\n")
    python.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(python))


def test_a_file_that_kills_its_worker_twice_is_an_error(
    zoo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    paths = _zoo_paths(zoo, 60)
    poison = 17
    expected = [r.__dict__ for r in scan(paths, jobs=1).results]
    poisoned_workers(monkeypatch, tmp_path, paths[poison].name)
    results = scan(paths, jobs=2).results
    assert results[poison].status == "error"
    assert results[poison].error == f"the process scanning it stopped (killed by SIGKILL), {pool.TRIES} times"
    del expected[poison]
    assert [r.__dict__ for i, r in enumerate(results) if i != poison] == expected


def test_workers_killed_while_starting_are_replaced(
    zoo: Path, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    paths = _zoo_paths(zoo, 40)
    expected = [r.__dict__ for r in scan(paths, jobs=1).results]
    poisoned_workers(monkeypatch, tmp_path, "-", start_kills=pool.TRIES)
    assert [r.__dict__ for r in scan(paths, jobs=2).results] == expected
    assert len(list(tmp_path.glob("start-kill-*"))) == pool.TRIES


def test_workers_that_cannot_start_fail_in_one_line(zoo: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(sys, "executable", "/bin/false")
    with pytest.raises(TensorfileError, match="do not start"):
        scan(_zoo_paths(zoo, 8), jobs=2)
