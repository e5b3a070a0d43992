"""Ends the processes of a local Ray this run started, when the run ends however it ends.

Ray ties the processes that `ray.init()` starts to the driver (PR_SET_PDEATHSIG): a SIGKILLed
driver takes its GCS server and raylet with it, and the workers see the raylet go and exit
within ~2 s. The raylet's own children, the DashboardAgent and RuntimeEnvAgent, notice too, then
try to report the raylet's last log lines to the GCS, which is dead: they hang there ~60 s (the
GCS client's reconnect timeout) before exiting, re-parented to init. On Linux this reaper closes
that gap: the driver starts it before Ray (`python -m tensorfile.zoo.ray_reaper`, stdin a pipe
from the driver, SIGINT ignored), writes it Ray's session folder once Ray is up, and when that
pipe reaches end of file — the driver stopped Ray and closed it, or the driver died — it SIGKILLs
every Ray process that has a file of that session folder open or names it on its command line,
until none is left (a few sweeps over at most SWEEP_SECONDS), then exits.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

SWEEP_SECONDS = 5.0  # sweeps go on this long at most, while any process of the session is alive


def start() -> subprocess.Popen[bytes] | None:
    """The reaper, before ray.init (a driver killed during Ray's start-up is covered too); None
    where /proc is not there to find Ray's processes by."""
    if not sys.platform.startswith("linux") or not os.path.isdir("/proc/self/fd"):
        return None
    return subprocess.Popen(
        [sys.executable, "-m", "tensorfile.zoo.ray_reaper"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        close_fds=True,
    )


def watch(reaper: subprocess.Popen[bytes] | None, session_dir: str | None) -> None:
    """Tell the reaper which session is this run's (Ray is up)."""
    if reaper is None or reaper.stdin is None or not session_dir:
        return
    with contextlib.suppress(OSError):  # the reaper is gone: nothing to clean up with
        reaper.stdin.write(os.fsencode(session_dir) + b"\n")
        reaper.stdin.flush()


def stop(reaper: subprocess.Popen[bytes] | None, wait: float = SWEEP_SECONDS + 1) -> None:
    """After ray.shutdown(): the reaper sweeps once (Ray stopped its own) and exits."""
    if reaper is None:
        return
    if reaper.stdin is not None:
        with contextlib.suppress(OSError):
            reaper.stdin.close()
    try:
        reaper.wait(timeout=wait)
    except subprocess.TimeoutExpired:
        reaper.kill()
        reaper.wait()


def session_processes(session: bytes, spare: set[int]) -> list[int]:
    """The pids (this user's) of Ray processes that belong to `session`: a file in it open, or it
    on the command line (the raylet, the GCS server); `spare`: the driver and this reaper."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in spare:
            continue
        proc = Path("/proc", entry)
        try:
            cmdline = (proc / "cmdline").read_bytes()
            if b"ray" not in cmdline or (proc / "stat").read_text().rsplit(")", 1)[1].split()[0] == "Z":
                continue
            if session in cmdline or any(
                os.fsencode(os.readlink(proc / "fd" / fd)).startswith(session)
                for fd in os.listdir(proc / "fd")
            ):
                found.append(int(entry))
        except (OSError, IndexError):  # ended meanwhile, or not ours to look at
            continue
    return found


def reap(session_dir: bytes, driver: int) -> int:
    """SIGKILL the session's processes but the driver (it has the session's driver log open, and
    is still there when it closed the pipe after ray.shutdown()) until a sweep finds none, or
    SWEEP_SECONDS pass; how many were killed."""
    session = session_dir.rstrip(b"/") + b"/"
    spare = {os.getpid(), driver}
    killed: set[int] = set()
    deadline = time.monotonic() + SWEEP_SECONDS
    while True:
        alive = session_processes(session, spare)
        for pid in alive:
            try:
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
            except OSError:
                pass
        if not alive or time.monotonic() > deadline:
            return len(killed)
        time.sleep(0.1)


def main() -> int:
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # a Ctrl-C to the run: the driver stops Ray itself
    signal.signal(signal.SIGTERM, signal.SIG_IGN)  # and a kill of the run's group leaves us to clean
    driver = os.getppid()
    session = sys.stdin.buffer.readline().strip()
    sys.stdin.buffer.read()  # until the driver closes the pipe or dies
    if session:
        reap(session, driver)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
