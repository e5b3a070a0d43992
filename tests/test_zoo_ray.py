"""Zoo runs on a one-node local Ray (this machine's 2 CPUs): the records are the serial run's,
file by file, from a local folder and from a local S3 (moto's server on 127.0.0.1); a Ray worker
killed mid-task (SIGKILL) is retried and changes nothing, and nothing is counted twice; a task
that dies every time turns its files into error records; Ray's log noise stays off stdout; no
Ray installed, or a Ray address nobody answers, is a one-line error (exit 2 from the CLI).

Ray is started once for the module (about 5 s); the zoo is 200 seeded files of mixed formats.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tensorfile.errors import UsageError
from tensorfile.zoo import ray_runner
from tensorfile.zoo.items import WorkItem
from tensorfile.zoo.run import run_zoo

from .conftest import ROOT
from .fixtures.make_zoo import build_zoo
from .s3stand import S3Stand, forget_filesystems, free_port

ray = pytest.importorskip("ray")

ZOO_FILES = 200
BUCKET = "zoo-ray"


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("zoo-ray")
    build_zoo(folder, ZOO_FILES, seed=18)
    return folder / "files"


@pytest.fixture(scope="module")
def s3(zoo: Path) -> Iterator[str]:
    """moto's S3 server on 127.0.0.1 holding the zoo; its endpoint and fake credentials are in the
    environment before Ray starts, so Ray's workers (children of this process) see them too."""
    pytest.importorskip("moto.server")
    with S3Stand() as stand:
        saved = {k: os.environ.get(k) for k in stand.env}
        os.environ.update(stand.env)
        forget_filesystems()
        stand.upload(zoo, BUCKET)
        try:
            yield f"s3://{BUCKET}"
        finally:
            forget_filesystems()
            for k, v in saved.items():
                if v is None:
                    os.environ.pop(k, None)
                else:
                    os.environ[k] = v


@pytest.fixture(scope="module")
def local_ray(s3: str) -> Iterator[None]:
    """One Ray for the module, started after the S3 environment is set (workers inherit it)."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False, logging_level="ERROR")
    try:
        yield
    finally:
        ray.shutdown()


def _records(out: Path) -> dict[tuple[str, int, str | None], dict[str, Any]]:
    """The records of a results file by key; a key written twice fails the test."""
    records: dict[tuple[str, int, str | None], dict[str, Any]] = {}
    for line in out.read_text().splitlines():
        record = json.loads(line)
        key = (record["path"], record["size"], record["etag"])
        assert key not in records, f"{key} written twice"
        records[key] = record
    return records


@pytest.fixture(scope="module")
def serial_local(zoo: Path, tmp_path_factory: pytest.TempPathFactory) -> dict[Any, dict[str, Any]]:
    out = tmp_path_factory.mktemp("serial") / "serial.jsonl"
    run_zoo("scan", [str(zoo)], str(out), jobs=1, progress=False)
    return _records(out)


def test_ray_local_folder_is_serial_file_by_file(
    local_ray: None, zoo: Path, serial_local: dict[Any, dict[str, Any]], tmp_path: Path
) -> None:
    out = tmp_path / "ray.jsonl"
    summary = run_zoo("scan", [str(zoo)], str(out), jobs=2, progress=False, ray="local")
    got = _records(out)
    assert len(got) == ZOO_FILES == summary.processed == summary.files
    # io included: a local file's reads are counted on the reading thread, less imports, so a
    # Ray worker (gRPC threads reading sockets beside it) records what the serial run does
    assert got == serial_local
    verdicts = {r["verdict"] for r in got.values()}
    assert {"clean", "unsafe"} <= verdicts  # the zoo is mixed: a real comparison
    assert all(r["io"]["requests"] > 0 for r in got.values() if r["verdict"] != "error")
    assert ray.is_initialized()  # the caller's Ray session was used, not stopped


def test_ray_over_s3_is_serial_file_by_file_with_the_same_requests(
    local_ray: None, s3: str, tmp_path: Path
) -> None:
    serial, on_ray = tmp_path / "serial.jsonl", tmp_path / "ray.jsonl"
    run_zoo("scan", [s3], str(serial), jobs=1, progress=False)
    run_zoo("scan", [s3], str(on_ray), progress=False, ray="local")
    expected, got = _records(serial), _records(on_ray)
    assert len(got) == ZOO_FILES
    assert got == expected  # io included: range requests and bytes are the same on a Ray worker
    assert all(r["kind"] == "object" for r in got.values())
    sizes = {r["path"]: r["size"] for r in got.values()}
    assert all(r["io"]["bytes"] <= max(sizes[r["path"]], 1) * 2 for r in got.values())


def _dies_once(marker: str, log: str) -> Any:
    """A task body that SIGKILLs its own Ray worker the first time any task reaches its second
    item (after doing real work), then runs like the real one; every start is logged."""
    real = ray_runner._process_batch

    def body(verb: str, wires: list[dict[str, Any]], options: dict[str, Any]) -> list[dict[str, Any]]:
        with open(log, "a") as f:
            f.write(wires[0]["path"] + "\n")
        records = real(verb, wires[:1], options)
        try:
            os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
        except FileExistsError:
            return records + real(verb, wires[1:], options)
        os.kill(os.getpid(), signal.SIGKILL)
        raise AssertionError("unreachable")

    return body


def test_a_killed_ray_worker_changes_nothing(
    local_ray: None,
    zoo: Path,
    serial_local: dict[Any, dict[str, Any]],
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    marker, log = tmp_path / "killed", tmp_path / "starts.log"
    monkeypatch.setattr(ray_runner, "_process_batch", _dies_once(str(marker), str(log)))
    out = tmp_path / "ray.jsonl"
    summary = run_zoo("scan", [str(zoo)], str(out), progress=False, ray="local")
    assert marker.exists()  # a worker was killed mid-task
    starts = log.read_text().splitlines()
    assert len(starts) == len(set(starts)) + 1  # exactly one batch ran twice: Ray's retry
    got = _records(out)  # no key twice
    assert summary.processed == len(got) == ZOO_FILES
    assert got == serial_local


def test_a_task_that_always_dies_is_error_records(
    local_ray: None, zoo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = ray_runner._process_batch
    doomed = sorted(str(p) for p in zoo.rglob("*") if p.is_file())[0]

    def body(verb: str, wires: list[dict[str, Any]], options: dict[str, Any]) -> list[dict[str, Any]]:
        if any(w["path"] == doomed for w in wires):
            os.kill(os.getpid(), signal.SIGKILL)
        return real(verb, wires, options)

    monkeypatch.setattr(ray_runner, "_process_batch", body)
    items = [WorkItem(doomed, 1, "e", "local"), WorkItem(doomed + ".x", 2, "e", "local")]
    records = list(ray_runner.run_ray("scan", items, {}, "local", batch=2, max_retries=1))
    assert [r["path"] for r in records] == [doomed, doomed + ".x"]
    for record in records:
        assert record["verdict"] == "error"
        assert record["error"] == "the Ray worker reading it failed (its process died), 2 times"
        assert record["io"] == {"requests": 0, "bytes": 0}


def test_without_ray_installed_is_a_one_line_usage_error(
    zoo: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray raises ImportError
    out = tmp_path / "out.jsonl"
    with pytest.raises(UsageError, match=r"pip install 'tensorfile\[ray\]'"):
        run_zoo("scan", [str(zoo)], str(out), progress=False, ray="local")
    assert not out.exists()  # refused before anything was listed or written


@pytest.mark.parametrize(
    ("address", "message"),
    [
        (None, "cannot reach Ray at '127.0.0.1:{port}' (Connection refused)"),
        ("no-port", "a Ray address is host:port, ray://host:port or auto, not 'no-port'"),
    ],
)
def test_a_bad_ray_address_is_a_one_line_error_before_any_work(
    zoo: Path, tmp_path: Path, address: str | None, message: str
) -> None:
    port = free_port()  # nothing listens there
    out = tmp_path / "out.jsonl"
    with pytest.raises(UsageError) as caught:
        run_zoo("scan", [str(zoo)], str(out), progress=False, ray=address or f"127.0.0.1:{port}")
    assert caught.value.message == message.format(port=port)
    assert not out.exists()


def test_batches_are_a_few_dozen_files_and_every_cpu_gets_several() -> None:
    assert ray_runner.batch_size(1_000_000, 64) == ray_runner.BATCH
    assert ray_runner.batch_size(200, 2) == 25
    assert ray_runner.batch_size(3, 2) == 1


SCRIPT = """
import os, signal, sys
from tensorfile.zoo import ray_runner
from tensorfile.zoo.items import WorkItem
from tensorfile.zoo.run import run_zoo

real = ray_runner._process_batch

def body(verb, wires, options, marker=sys.argv[3]):  # SIGKILLs its worker once
    try:
        os.close(os.open(marker, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        return real(verb, wires, options)
    os.kill(os.getpid(), signal.SIGKILL)

ray_runner._process_batch = body
summary = run_zoo("scan", [sys.argv[1]], sys.argv[2], jobs=2, progress=False, ray="local")
sys.stderr.write(f"processed={summary.processed}\\n")
"""


def test_ray_started_by_the_run_keeps_stdout_clean(zoo: Path, tmp_path: Path) -> None:
    """A run that starts its own Ray (and stops it), with a worker killed on the way: Ray's
    notice of the death goes to stderr, nothing reaches stdout, and every file is done once."""
    out, marker = tmp_path / "own.jsonl", tmp_path / "killed"
    sub = sorted(zoo.iterdir())[0]  # one sub-folder: a few files are enough here
    files = sum(1 for p in sub.rglob("*") if p.is_file())
    proc = subprocess.run(
        [sys.executable, "-c", SCRIPT, str(sub), str(out), str(marker)],
        capture_output=True,
        cwd=ROOT,
        timeout=120,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr.decode()[-2000:]
    assert marker.exists()
    assert proc.stdout == b""
    assert f"processed={files}".encode() in proc.stderr
    assert len(_records(out)) == files


def _tree(root: int) -> dict[int, tuple[str, str]]:
    """Every live descendant of `root` (and root): pid -> (start time, command line)."""
    children: dict[int, list[int]] = {}
    stats: dict[int, tuple[str, str]] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(")", 1)[1].split()
            cmdline = (
                Path(f"/proc/{entry}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
            )
        except (OSError, IndexError):
            continue
        if fields[0] != "Z":
            children.setdefault(int(fields[1]), []).append(int(entry))
            stats[int(entry)] = (fields[19], cmdline.strip())
    found, todo = {}, [root]
    while todo:
        pid = todo.pop()
        if pid in stats:
            found[pid] = stats[pid]
        todo.extend(children.get(pid, ()))
    return found


def _survivors(tree: dict[int, tuple[str, str]]) -> list[str]:
    """The processes of `tree` still running (same pid and start time, not a zombie)."""
    alive = []
    for pid, (start, cmdline) in tree.items():
        try:
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[19] == start and fields[0] != "Z":
            alive.append(f"{pid} {cmdline[:80]}")
    return alive


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the reaper finds Ray's processes in /proc")
def test_a_killed_ray_driver_leaves_no_ray_process_and_resume_finishes(
    zoo: Path, serial_local: dict[Any, dict[str, Any]], tmp_path: Path
) -> None:
    """`scan --ray` SIGKILLed mid-run: every process it started (GCS, raylet, dashboard, monitors,
    the two agents that Ray alone leaves for ~60 s, workers, our reaper) is gone within 10 s;
    --resume then gives every file once, as the serial run has them."""
    import time

    out = tmp_path / "killed.jsonl"
    cmd = [sys.executable, "-m", "tensorfile", "scan", str(zoo), "--out", str(out), "--json"]
    proc = subprocess.Popen(
        [*cmd, "--ray", "--jobs", "2"], cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
    )
    try:
        deadline = time.monotonic() + 120
        while not (out.exists() and out.read_bytes().count(b"\n") >= 20):
            assert proc.poll() is None, proc.communicate()[1].decode()[-2000:]
            assert time.monotonic() < deadline, "no 20 records within 120 s"
            time.sleep(0.01)
        tree = _tree(proc.pid)
        proc.kill()
        proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    names = " ".join(c for _, c in tree.values())
    for part in ("gcs_server", "raylet", "ray::DashboardAgent", "ray::RuntimeEnvAgent", "ray_reaper"):
        assert part in names, f"no {part} in the run's processes: {names}"
    deadline = time.monotonic() + 10
    while left := _survivors(tree):
        assert time.monotonic() < deadline, f"outlived the killed driver by 10 s: {left}"
        time.sleep(0.1)
    done = _records(out)
    assert 20 <= len(done) < ZOO_FILES, "the run was not killed mid-way"
    resumed = subprocess.run([*cmd, "--resume", "--jobs", "2"], cwd=ROOT, capture_output=True, timeout=120)
    assert json.loads(resumed.stdout)["skipped"] == len(done), resumed.stderr.decode()[-2000:]
    assert _records(out) == serial_local  # every file once, io included


def test_cli_ray_without_ray_installed_is_one_line_exit_2(zoo: Path, tmp_path: Path) -> None:
    """`scan --ray` where `import ray` fails (a stand-in package that raises ImportError)."""
    fake = tmp_path / "fake" / "ray"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise ImportError('no ray here')\n")
    out = tmp_path / "out.jsonl"
    proc = subprocess.run(
        [sys.executable, "-m", "tensorfile", "scan", str(zoo), "--out", str(out), "--ray"],
        capture_output=True,
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(fake.parent)},
        timeout=60,
        check=False,
    )
    assert proc.returncode == 2
    expected = "tensorfile: error: --ray needs Ray: pip install 'tensorfile[ray]'"
    assert proc.stderr.decode().splitlines() == [expected]
    assert proc.stdout == b""
    assert not out.exists()
