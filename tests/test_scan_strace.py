"""The scanner's guarantees, measured by the kernel: `tensorfile scan` over the public corpus and the
project's own fixtures, and `identify`/`inspect` of the HDF5 and Keras files, run under strace and
make zero process starts (threads are fine; with --jobs 2 exactly its two workers), zero socket
calls and zero opens for writing (no O_WRONLY/O_RDWR/O_CREAT/O_TRUNC, no creat, mkdir, unlink,
rename, link or truncate).

strace ships with the project's machine image; `make test` installs it with apt-get when it is
missing and the user is root. Elsewhere (or where ptrace is not permitted) this file skips.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from .conftest import CORPUS, HEAVY, ROOT

STRACE = shutil.which("strace")
NO_STRACE = "strace is not installed (make test installs it, as root)"
pytestmark = pytest.mark.skipif(STRACE is None, reason=NO_STRACE)

WRITES = ("creat", "mkdir", "mkdirat", "unlink", "unlinkat", "rename", "renameat", "renameat2", "link")
WRITES += ("linkat", "symlink", "symlinkat", "truncate", "ftruncate")
TRACE = "process,network,open,openat,creat," + ",".join(WRITES[1:])
_CALL = re.compile(r"^(\d+)\s+(?:<\.\.\. )?(\w+)[( ]")
_WRITE_FLAGS = re.compile(r"\bO_(?:WRONLY|RDWR|CREAT|TRUNC)\b")
_NETWORK = {
    "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4", "sendto", "sendmsg",
    "sendmmsg", "recvfrom", "recvmsg", "recvmmsg", "shutdown", "getsockopt", "setsockopt",
    "getsockname", "getpeername",
}  # fmt: skip


def _ptrace_works() -> bool:
    probe = subprocess.run([STRACE, "-f", "-qq", "-o", os.devnull, "true"], capture_output=True)
    return probe.returncode == 0


def _traced(tmp_path: Path, *args: str) -> tuple[subprocess.CompletedProcess[str], list[str]]:
    if not _ptrace_works():
        pytest.skip("strace cannot trace here (ptrace not permitted)")
    log = tmp_path / "strace.log"
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    command = [STRACE, "-f", "-qq", "-e", f"trace={TRACE}", "-o", str(log)]
    result = subprocess.run(
        [*command, sys.executable, "-B", "-m", "tensorfile", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=env,
        timeout=300,
    )
    return result, log.read_text().splitlines()


def violations(lines: list[str]) -> dict[str, list[str]]:
    """The traced calls that break a guarantee, by kind; the first execve is the program itself."""
    found: dict[str, list[str]] = {"process": [], "network": [], "write": []}
    execs = 0
    for line in lines:
        match = _CALL.match(line)
        if match is None or "resumed>" in line:  # a resumed call was judged at its start
            continue
        call = match.group(2)
        if call == "execve":
            execs += 1
            if execs > 1:
                found["process"].append(line)
        elif call in ("fork", "vfork") or (call in ("clone", "clone3") and "CLONE_THREAD" not in line):
            found["process"].append(line)
        elif call in _NETWORK:
            found["network"].append(line)
        elif call in WRITES or (call in ("open", "openat") and _WRITE_FLAGS.search(line)):
            found["write"].append(line)
    return found


def worker_starts(lines: list[str]) -> tuple[int, list[str]]:
    """With --jobs N: how many workers the scan started (a fork of the program, then one execve of
    this interpreter running tensorfile.scan.pool), and the process starts that are not that."""
    calls = [(m.group(1), m.group(2), line) for line in lines if (m := _CALL.match(line))]
    calls = [call for call in calls if "resumed>" not in call[2]]
    program = next(pid for pid, name, _ in calls if name == "execve")
    forks, other = 0, []
    execs: dict[str, int] = {}
    for pid, name, line in calls:
        if name in ("fork", "vfork") or (name in ("clone", "clone3") and "CLONE_THREAD" not in line):
            forks += pid == program
            if pid != program:
                other.append(line)
        elif name == "execve":
            execs[pid] = execs.get(pid, 0) + 1
            worker = f'"{sys.executable}"' in line and '"tensorfile.scan.pool"' in line
            if execs[pid] > 1 or (pid != program and not worker):
                other.append(line)
    return forks, other


def test_worker_starts_are_told_from_other_processes() -> None:
    python = sys.executable
    sample = [
        f'10 execve("{python}", ["{python}", "-m", "tensorfile"], 0x0 /* 3 vars */) = 0',
        "10 vfork( <unfinished ...>",
        "10 <... vfork resumed>) = 11",
        f'11 execve("{python}", ["{python}", "-m", "tensorfile.scan.pool"], 0x0) = 0',
        "11 clone3({flags=CLONE_VM|CLONE_THREAD|CLONE_SETTLS, exit_signal=0}, 88) = 12",
    ]
    assert worker_starts(sample) == (1, [])
    extra = [
        "11 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|SIGCHLD, child_tidptr=0x1) = 13",
        '13 execve("/usr/bin/uname", ["uname", "-p"], 0x0 /* 3 vars */) = 0',
        f'11 execve("{python}", ["{python}", "-m", "tensorfile.scan.pool"], 0x0) = 0',
    ]
    forks, other = worker_starts(sample + extra)
    assert forks == 1 and [line.split()[1][:5] for line in other] == ["clone", "execv", "execv"]


def _assert_clean(lines: list[str]) -> None:
    assert lines, "strace wrote no log"
    bad = violations(lines)
    assert bad == {"process": [], "network": [], "write": []}, {k: v[:5] for k, v in bad.items()}


def test_violations_are_recognised() -> None:
    sample = [
        '10 execve("/usr/bin/python", ["python"], 0x0 /* 3 vars */) = 0',
        "10 clone3({flags=CLONE_VM|CLONE_THREAD|CLONE_SETTLS, exit_signal=0}, 88) = 11",
        '10 openat(AT_FDCWD, "/etc/hosts", O_RDONLY|O_CLOEXEC) = 3',
        "10 clone(child_stack=NULL, flags=CLONE_CHILD_CLEARTID|SIGCHLD, child_tidptr=0x1) = 12",
        '12 execve("/usr/bin/uname", ["uname", "-p"], 0x0 /* 3 vars */) = 0',
        "10 vfork( <unfinished ...>",
        "10 <... vfork resumed>) = 13",
        "10 socket(AF_INET, SOCK_STREAM|SOCK_CLOEXEC, IPPROTO_IP) = 4",
        '10 openat(AT_FDCWD, "out.part", O_WRONLY|O_CREAT|O_TRUNC|O_CLOEXEC, 0666) = 5',
        '10 unlink("out.part") = 0',
    ]
    bad = violations(sample)
    assert [line.split()[1][:5] for line in bad["process"]] == ["clone", "execv", "vfork"]
    assert len(bad["network"]) == 1 and len(bad["write"]) == 2


def test_scan_of_the_corpus_and_fixtures_starts_no_process_opens_no_socket_writes_nothing(
    tmp_path: Path,
) -> None:
    paths = [ROOT / "tests" / "fixtures", ROOT / "examples" / "models"]
    paths += [p for p in (CORPUS / "security", CORPUS / "formats") if p.is_dir()]  # read as bytes only
    result, lines = _traced(tmp_path, "scan", "--jobs", "1", "--json", *map(str, paths))
    assert result.returncode in (0, 1), result.stderr[-2000:]  # 1: the corpus's malicious files
    assert '"files"' in result.stdout
    _assert_clean(lines)


def test_identify_and_inspect_of_hdf5_and_keras_start_no_process(tmp_path: Path) -> None:
    files = sorted(HEAVY.glob("*.h5")) + sorted(HEAVY.glob("*.keras"))
    result, lines = _traced(tmp_path, "identify", "--json", *map(str, files))
    assert result.returncode == 0, result.stderr[-2000:]
    _assert_clean(lines)
    result, lines = _traced(tmp_path, "inspect", "--json", str(HEAVY / "keras3_legacy_full.h5"))
    assert result.returncode == 0, result.stderr[-2000:]
    _assert_clean(lines)


def test_scan_with_two_workers_starts_exactly_the_two_workers(tmp_path: Path) -> None:
    paths = [ROOT / "tests" / "fixtures", ROOT / "examples" / "models"]
    paths += [p for p in (CORPUS / "security", CORPUS / "formats") if p.is_dir()]
    result, lines = _traced(tmp_path, "scan", "--jobs", "2", "--json", *map(str, paths))
    assert result.returncode in (0, 1), result.stderr[-2000:]
    started, other = worker_starts(lines)
    assert started == 2 and other == [], other[:5]
    bad = violations(lines)
    assert bad["network"] == [] and bad["write"] == [], {k: v[:5] for k, v in bad.items()}
    assert len(bad["process"]) == 4  # the two forks and the two execs of the workers, nothing else
