"""SIGKILL a command at chosen points of its run: for the kill -9 tests and bench/kill_bench.py.

A kill point is a byte count and a delay: the command is killed `delay` seconds after its output
(what `watch(pid)` counts: part files, unnamed O_TMPFILE inodes it holds open, staged downloads)
first reaches `bytes`. `kill_points` spreads them, seeded, over start-up (0 bytes, a delay into
the start), the writing (a byte count, no delay) and the end (every byte, a delay into fsync,
link, rename and placing).
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class KillPoint:
    bytes: int
    delay: float

    def describe(self) -> str:
        return f"{self.bytes:,} B + {self.delay * 1000:.0f} ms"


@dataclass
class Outcome:
    point: KillPoint
    killed: bool  # False: the command ended on its own before the point
    returncode: int
    written: int  # output bytes seen at the kill
    seconds: float
    stderr: str


def kill_points(
    seed: int | str, n: int, total: int, startup: float = 0.4, tail: float = 0.06
) -> list[KillPoint]:
    rng = random.Random(seed)
    points = []
    for _ in range(n):
        phase = rng.random()
        if phase < 0.15:
            points.append(KillPoint(0, rng.uniform(0, startup)))
        elif phase < 0.8:
            points.append(KillPoint(rng.randint(1, max(1, total)), 0.0))
        else:
            points.append(KillPoint(total, rng.uniform(0, tail)))
    return points


def run_and_kill(
    cmd: list[str],
    point: KillPoint,
    watch: Callable[[int], int],
    env: dict[str, str] | None = None,
    timeout: float = 120,
) -> Outcome:
    """Start `cmd`, SIGKILL it at `point` (unless it ends first) and reap it."""
    started = time.monotonic()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    seen = 0
    reached: float | None = None
    killed = False
    while proc.poll() is None:
        now = time.monotonic()
        if now - started > timeout:
            proc.kill()
            raise AssertionError(f"{cmd} ran past {timeout} s")
        if reached is None:
            with contextlib.suppress(OSError):
                seen = max(seen, watch(proc.pid))
            if seen >= point.bytes:
                reached = now
        if reached is not None and now - reached >= point.delay:
            os.kill(proc.pid, signal.SIGKILL)
            killed = True
            break
        time.sleep(0.0002)
    _, err = proc.communicate(timeout=timeout)
    killed = killed and proc.returncode == -signal.SIGKILL
    return Outcome(
        point, killed, proc.returncode, seen, time.monotonic() - started, err.decode(errors="replace")
    )


def open_unnamed_bytes(pid: int, folder: Path) -> int:
    """Bytes in the unnamed (O_TMPFILE) files in `folder` that process `pid` holds open."""
    total = 0
    fds = f"/proc/{pid}/fd"
    prefix = f"{folder}/#"
    for fd in os.listdir(fds):
        try:
            if os.readlink(f"{fds}/{fd}").startswith(prefix):
                total += os.stat(f"{fds}/{fd}").st_size
        except OSError:
            continue
    return total


def is_temp(name: str) -> bool:
    """A name of an output being built: ours (`.NAME.tf-PID-HEX.part`) and the older mkstemp ones."""
    return name.startswith(".") and (name.endswith(".part") or name.endswith(".old"))


def temps(folder: Path) -> dict[str, int]:
    """The temporary outputs in `folder` and the disk bytes each holds."""
    found = {}
    for entry in os.scandir(folder):
        if is_temp(entry.name):
            found[entry.name] = disk_bytes([Path(entry.path)])
    return found


def disk_bytes(paths: Iterable[Path]) -> int:
    total = 0
    for path in paths:
        if path.is_dir() and not path.is_symlink():
            total += disk_bytes(path.iterdir())
        else:
            with contextlib.suppress(OSError):
                total += path.lstat().st_blocks * 512
    return total


def file_bytes(folder: Path, keep: Callable[[Path], bool] = lambda _: True) -> int:
    """Apparent sizes of the regular files under `folder` (rglob) that `keep` accepts."""
    total = 0
    for root, _dirs, files in os.walk(folder):
        for name in files:
            path = Path(root, name)
            if keep(path):
                with contextlib.suppress(OSError):
                    total += path.lstat().st_size
    return total


def tree_digest(path: Path) -> dict[str, str]:
    """sha256 of every file under `path` (or of the file `path`), by relative name."""
    if path.is_file():
        return {path.name: _sha256(path)}
    return {p.relative_to(path).as_posix(): _sha256(p) for p in sorted(path.rglob("*")) if p.is_file()}


def _sha256(path: Path) -> str:
    with path.open("rb") as fh:
        return hashlib.file_digest(fh, "sha256").hexdigest()


# The CLI with os.<fn> armed to SIGKILL the process at its n-th call: for the moments between two
# steps that a random point is unlikely to hit.
_ARMED = """
import os, signal, sys
fn, nth = sys.argv[1], int(sys.argv[2])
real = getattr(os, fn)
calls = []
def armed(*args, **kwargs):
    calls.append(args)
    if len(calls) == nth:
        os.kill(os.getpid(), signal.SIGKILL)
    return real(*args, **kwargs)
setattr(os, fn, armed)
from tensorfile.cli import main
sys.argv = ["tensorfile", *sys.argv[3:]]
main()
"""


def armed_cli(fn: str, nth: int, *args: str) -> list[str]:
    """`tensorfile ARGS` as a command that SIGKILLs itself at the `nth` call of os.`fn`."""
    return [sys.executable, "-c", _ARMED, fn, str(nth), *args]
