"""Many-file runs through the CLI (`scan|inspect|identify ... --out FILE`): a seeded zoo of 300 mixed
files (benign, hostile, truncated, huge-declared; tests/fixtures/make_zoo.py) plus two 32 MiB
files, in a local folder, in a local S3 (moto's server on 127.0.0.1, tests/s3stand.py) and in hub
repos (tests/hubserver.py).

What is checked: serial (--jobs 1) and pool (--jobs 2) records are the same file by file, from S3
and from the folder, for scan, identify and inspect; the folder and S3 give the same verdicts,
formats and findings; every file is written exactly once; a pool worker killed with SIGKILL
mid-run changes nothing; the CLI killed with SIGKILL mid-run, then --resume (also over a torn last
line), ends with every file exactly once and the serial records; each S3 record's requests and
bytes are recorded and bounded (the 32 MiB objects cost < 1 MiB); Parquet round-trips; hub owners
(hf://org, ms://org) and @repo lists give every file of every repo; bad inputs are one line and
exit code 2. Every run is a `python -m tensorfile` child, as a user runs it.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from .fixtures.make_zoo import build_zoo
from .s3stand import S3Stand, free_port

ROOT = Path(__file__).resolve().parents[1]
ZOO_FILES = 300
BIG = 32 << 20  # bytes of each of the two large files
BUCKET = "zoo"

pytest.importorskip("moto.server")
pytest.importorskip("s3fs")

Records = dict[str, dict[str, Any]]


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return zoo_files(tmp_path_factory.mktemp("zoo"), ZOO_FILES)


def zoo_files(folder: Path, count: int) -> Path:
    """`count` files of the seeded zoo, plus big/ with a 32 MiB safetensors and a 32 MiB .npy."""
    from safetensors.numpy import save_file

    build_zoo(folder, count, seed=18)
    files = folder / "files"
    (files / "big").mkdir()
    save_file({"w": np.zeros(BIG // 4, np.float32)}, str(files / "big" / "big.safetensors"))
    np.save(files / "big" / "big.npy", np.zeros(BIG // 4, np.float32))
    return files


@pytest.fixture(scope="module")
def s3(zoo: Path) -> Iterator[tuple[S3Stand, dict[str, int]]]:
    with S3Stand() as stand:
        keys = stand.upload(zoo, BUCKET)
        yield stand, keys


def _cli(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "tensorfile", *args],
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _records(out: Path) -> Records:
    """Records by path; a path written twice, or a line that is not a whole record, fails."""
    records: Records = {}
    data = out.read_bytes()
    assert data.endswith(b"\n"), "torn last line"
    for line in data.decode().splitlines():
        record = json.loads(line)
        assert record["path"] not in records, f"{record['path']} written twice"
        records[record["path"]] = record
    return records


def _run(verb: str, inputs: list[str], out: Path, *extra: str, env: dict[str, str] | None = None) -> Records:
    done = _cli(verb, *inputs, "--out", str(out), "--json", *extra, env=env)
    assert done.returncode in (0, 1, 2), done.stderr
    assert "Traceback" not in done.stderr, done.stderr
    summary = json.loads(done.stdout)
    records = _records(out)
    assert summary["files"] == len(records) and summary["exit_code"] == done.returncode
    return records


def _judged(records: Records, prefix: str = "") -> dict[str, tuple[Any, ...]]:
    """What a run says about each file (path relative to `prefix`): verdict, format, error, findings."""
    return {
        path[len(prefix) :]: (
            r["verdict"],
            r["format"],
            r["error"],
            json.dumps(r.get("findings"), sort_keys=True),
        )
        for path, r in records.items()
    }


def _without_io(records: Records) -> Records:
    """The records less their io: a file and its S3 object are read through different doors (read
    syscalls on the page cache, range GETs through a block cache), so their costs differ."""
    return {p: {k: v for k, v in r.items() if k != "io"} for p, r in records.items()}


@pytest.fixture(scope="module")
def runs(
    zoo: Path, s3: tuple[S3Stand, dict[str, int]], tmp_path_factory: pytest.TempPathFactory
) -> dict[str, Records]:
    """scan of S3 serially and on the pool, and of the folder serially and on the pool."""
    stand, _ = s3
    out = tmp_path_factory.mktemp("runs")
    return {
        "s3-serial": _run("scan", [f"s3://{BUCKET}"], out / "s3-1.jsonl", "--jobs", "1", env=stand.env),
        "s3-pool": _run("scan", [f"s3://{BUCKET}"], out / "s3-2.jsonl", "--jobs", "2", env=stand.env),
        "local-serial": _run("scan", [str(zoo)], out / "local-1.jsonl", "--jobs", "1"),
        "local-pool": _run("scan", [str(zoo)], out / "local-2.jsonl", "--jobs", "2"),
    }


def test_serial_and_pool_scan_are_the_same_file_by_file(
    runs: dict[str, Records], s3: tuple[S3Stand, dict[str, int]]
) -> None:
    _, keys = s3
    serial, pool = runs["s3-serial"], runs["s3-pool"]
    assert set(serial) == {f"s3://{BUCKET}/{k}" for k in keys}  # every object, each once
    assert pool == serial  # whole records, requests and bytes included: reads are deterministic
    verdicts = {r["verdict"] for r in serial.values()}
    assert {"clean", "unsafe", "incomplete"} <= verdicts  # a mixed zoo: a real comparison


def test_folder_and_s3_give_the_same_verdicts(runs: dict[str, Records], zoo: Path) -> None:
    local = _relative(_without_io(runs["local-pool"]), f"{zoo}/")
    remote = _relative(_without_io(runs["s3-serial"]), f"s3://{BUCKET}/")
    assert len(local) == ZOO_FILES + 2
    assert local == remote  # verdicts, formats, findings with their evidence and offsets
    assert sum(r["verdict"] == "unsafe" for r in local.values()) >= 20


def test_s3_requests_and_bytes_are_recorded_and_bounded(
    runs: dict[str, Records], s3: tuple[S3Stand, dict[str, int]]
) -> None:
    _, keys = s3
    for path, record in runs["s3-serial"].items():
        io = record["io"]
        assert record["size"] == keys[path.removeprefix(f"s3://{BUCKET}/")]
        assert record["etag"]  # what --resume compares, with path and size
        assert 1 <= io["requests"] <= 16, (path, io)
        assert io["bytes"] <= record["size"], (path, io)
        if "/big/" in path:
            assert record["verdict"] == "clean"
            assert io["bytes"] <= BIG // 32, (path, io)  # headers, never the whole object


def test_local_requests_and_bytes_are_the_files_own(runs: dict[str, Records], zoo: Path) -> None:
    """A local file's io is its own reads, whatever process read it and whatever it imported
    first: the serial run (one process, imports on its first files) and the pool (two workers,
    each importing on other first files) record the same requests and bytes, file by file."""
    serial, pool = runs["local-serial"], runs["local-pool"]
    assert len(serial) == ZOO_FILES + 2
    assert pool == serial  # io included
    for path, record in serial.items():
        assert record["io"]["requests"] >= 1, (path, record["io"])
        if "/big/" in path:  # headers, never the 32 MiB
            assert record["io"]["bytes"] <= BIG // 32, (path, record["io"])


# Each file twice, in a fresh process: the first ONNX, tar and torch zip import their readers.
_READS_CHILD = """
import json, os, sys
from tensorfile.zoo.items import WorkItem
from tensorfile.zoo.work import process

for path in sys.argv[1:] + sys.argv[1:]:
    item = WorkItem(path, os.path.getsize(path), None, "local")
    print(json.dumps([path, process("scan", item, {})["io"]]))
"""


def _kernel_reads(trace: str, paths: list[str]) -> dict[str, dict[str, int]]:
    """Read syscalls and bytes per path, from an strace of openat, read*, close (one thread)."""
    import re

    fds: dict[int, str] = {}
    totals = {p: {"requests": 0, "bytes": 0} for p in paths}
    for line in trace.splitlines():
        opened = re.match(r'openat\(AT_FDCWD, "([^"]+)".* = (\d+)$', line)
        if opened:
            if opened.group(1) in totals:
                fds[int(opened.group(2))] = opened.group(1)
            continue
        closed = re.match(r"close\((\d+)\)", line)
        if closed:
            fds.pop(int(closed.group(1)), None)
            continue
        read = re.match(r"(?:read|pread64|readv|preadv2?)\((\d+),.* = (-?\d+)", line)
        if read and int(read.group(1)) in fds:
            total = totals[fds[int(read.group(1))]]
            total["requests"] += 1
            total["bytes"] += max(0, int(read.group(2)))
    return totals


@pytest.mark.skipif(not Path("/proc/thread-self/io").exists(), reason="per-thread io counters are Linux's")
def test_local_io_is_what_the_kernel_saw_and_the_first_file_is_not_inflated(
    zoo: Path, tmp_path: Path
) -> None:
    import shutil

    kinds = ("_onnx.onnx", "_tar_of_models.tar", "_torch_zip.pt", "_npy.npy")
    files = [str(min(zoo.rglob(f"*{k}"))) for k in kinds]
    if shutil.which("strace") is None:
        pytest.skip("strace is not installed")
    trace = tmp_path / "trace.txt"
    done = subprocess.run(
        [
            "strace",
            "-qq",
            "-s",
            "0",
            "-e",
            "trace=openat,close,read,pread64,readv,preadv,preadv2",
            "-o",
            str(trace),
            sys.executable,
            "-c",
            _READS_CHILD,
            *files,
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    if done.returncode != 0 and "ptrace" in done.stderr:
        pytest.skip("ptrace is not allowed here")
    assert done.returncode == 0, done.stderr
    first: dict[str, dict[str, int]] = {}
    totals = {p: {"requests": 0, "bytes": 0} for p in files}
    for line in done.stdout.splitlines():
        path, io = json.loads(line)
        assert first.setdefault(path, io) == io, (path, "first", first[path], "again", io)
        totals[path] = {k: totals[path][k] + io[k] for k in io}
    assert totals == _kernel_reads(trace.read_text(), files)  # the file's reads and nothing else
    npy = files[-1]  # a plain array: its header and data, once
    assert first[npy]["bytes"] <= os.path.getsize(npy)


@pytest.mark.parametrize("verb", ["identify", "inspect"])
def test_identify_and_inspect_serial_pool_and_folder_agree(
    verb: str, zoo: Path, s3: tuple[S3Stand, dict[str, int]], tmp_path: Path
) -> None:
    stand, _ = s3
    serial = _run(verb, [f"s3://{BUCKET}"], tmp_path / "1.jsonl", "--jobs", "1", env=stand.env)
    pool = _run(verb, [f"s3://{BUCKET}"], tmp_path / "2.jsonl", "--jobs", "2", env=stand.env)
    assert pool == serial and len(serial) == ZOO_FILES + 2
    assert {r["verb"] for r in serial.values()} == {verb}
    if verb == "identify":  # scan and inspect compare the folder with S3
        assert {r["verdict"] for r in serial.values()} == {"identified", "unknown"}
        return
    local = _run(verb, [str(zoo)], tmp_path / "local.jsonl", "--jobs", "2")
    remote = _relative(_without_io(serial), f"s3://{BUCKET}/")
    assert remote == _relative(_without_io(local), f"{zoo}/")  # tensors, counts, files: all of it
    big = remote["big/big.safetensors"]
    assert big["parameter_count"] == BIG // 4 and big["tensor_types"] == "F32"


def _relative(records: Records, prefix: str) -> dict[str, Any]:
    """Records with the location (folder or bucket) cut from every path in them, etag and kind
    left out: what differs between a file and its object, and nothing else."""
    out = {}
    for path, record in records.items():
        same = {k: v for k, v in record.items() if k not in ("etag", "kind")}
        out[path[len(prefix) :]] = json.loads(json.dumps(same).replace(json.dumps(prefix)[1:-1], ""))
    return out


def _children(pid: int) -> list[int]:
    try:
        text = Path(f"/proc/{pid}/task/{pid}/children").read_text()
    except OSError:
        return []
    return [int(p) for p in text.split()]


def _lines(path: Path) -> int:
    try:
        return path.read_bytes().count(b"\n")
    except OSError:
        return 0


@contextlib.contextmanager
def _started(
    verb: str, inputs: list[str], out: Path, env: dict[str, str], *extra: str
) -> Iterator[subprocess.Popen]:
    """A run in the background (killed at the end if the test left it running)."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "tensorfile", verb, *inputs, "--out", str(out), "--json", *extra],
        cwd=ROOT,
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()


def _wait_for(condition: Any, proc: subprocess.Popen, what: str, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert proc.poll() is None, f"the run ended before {what}"
        assert time.monotonic() < deadline, f"no {what} within {seconds} s"
        time.sleep(0.005)


def test_a_pool_worker_killed_mid_run_changes_nothing(
    runs: dict[str, Records], s3: tuple[S3Stand, dict[str, int]], tmp_path: Path
) -> None:
    stand, _ = s3
    out = tmp_path / "killed-worker.jsonl"
    with _started("scan", [f"s3://{BUCKET}"], out, stand.env, "--jobs", "2") as proc:
        _wait_for(lambda: _lines(out) >= 20 and len(_children(proc.pid)) >= 2, proc, "20 records")
        victim = _children(proc.pid)[0]
        assert b"tensorfile.scan.pool" in Path(f"/proc/{victim}/cmdline").read_bytes()
        os.kill(victim, signal.SIGKILL)
        at_kill = _lines(out)
        stdout, stderr = proc.communicate(timeout=120)
    assert at_kill < ZOO_FILES, "the worker was killed after the run had finished"
    assert "Traceback" not in stderr, stderr
    assert json.loads(stdout)["files"] == ZOO_FILES + 2
    assert _records(out) == runs["s3-serial"]  # nothing lost, nothing twice, nothing different


def test_the_cli_killed_mid_run_then_resume_has_every_file_once(
    runs: dict[str, Records], s3: tuple[S3Stand, dict[str, int]], tmp_path: Path
) -> None:
    stand, _ = s3
    out = tmp_path / "killed-cli.jsonl"
    with _started("scan", [f"s3://{BUCKET}"], out, stand.env, "--jobs", "2") as proc:
        _wait_for(lambda: _lines(out) >= 60, proc, "60 records")
        workers = _children(proc.pid)
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=30)
    # The workers stop when their stdin closes: none is left behind.
    deadline = time.monotonic() + 30
    while any(Path(f"/proc/{w}").exists() and _state(w) != "Z" for w in workers):
        assert time.monotonic() < deadline, "a worker outlived the killed run"
        time.sleep(0.05)
    complete = _lines(out)
    assert 60 <= complete < ZOO_FILES, "the run was not killed mid-way"
    # A kill during a write leaves part of a line; the next --resume cuts it off.
    with out.open("ab") as f:
        f.write(b'{"path": "s3://zoo/d00/f00000_npy.npy", "size": 1')
    done = _cli("scan", f"s3://{BUCKET}", "--out", str(out), "--resume", "--json", env=stand.env)
    assert "Traceback" not in done.stderr, done.stderr
    summary = json.loads(done.stdout)
    assert summary["skipped"] == complete and summary["processed"] == ZOO_FILES + 2 - complete
    assert _records(out) == runs["s3-serial"]
    again = _cli("scan", f"s3://{BUCKET}", "--out", str(out), "--resume", "--json", env=stand.env)
    assert json.loads(again.stdout)["processed"] == 0 and _records(out) == runs["s3-serial"]


def _state(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except (OSError, IndexError):
        return "Z"


def test_parquet_output_round_trips(zoo: Path, tmp_path: Path) -> None:
    import pyarrow.parquet as pq

    jsonl = _run("identify", [str(zoo / "d01"), str(zoo / "big")], tmp_path / "r.jsonl", "--jobs", "1")
    parquet = tmp_path / "r.parquet"
    first = _cli("identify", str(zoo / "d01"), str(zoo / "big"), "--out", str(parquet), "--jobs", "1")
    assert first.returncode in (0, 1) and not (tmp_path / "r.parquet.journal.jsonl").exists()
    table = pq.read_table(parquet)
    rows = table.to_pylist()
    assert len(rows) == len(jsonl) > 10
    for row in rows:
        record = json.loads(row["record"])
        assert _without_io({row["path"]: record}) == _without_io({row["path"]: jsonl[row["path"]]})
        assert (row["verdict"], row["format"], row["size"]) == (
            record["verdict"],
            record["format"],
            record["size"],
        )
        assert row["requests"] == record["io"]["requests"] and row["bytes"] == record["io"]["bytes"]
    resumed = _cli(
        "identify", str(zoo / "d01"), str(zoo / "big"), "--out", str(parquet), "--resume", "--json"
    )
    summary = json.loads(resumed.stdout)
    assert summary["processed"] == 0 and summary["skipped"] == summary["files"] == len(jsonl)
    assert pq.read_table(parquet).num_rows == len(jsonl)


@pytest.fixture(scope="module")
def hub(zoo: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, dict[str, str], Path]]:
    """Three repos of owner `acme` (the zoo's d00, d01, d02 folders) and one of `other`."""
    from .hubserver import HubServer

    root = tmp_path_factory.mktemp("hub")
    for owner, name, folder in (
        ("acme", "r0", "d00"),
        ("acme", "r1", "d01"),
        ("acme", "r2", "d02"),
        ("other", "x", "d03"),
    ):
        repo = root / owner / name
        repo.mkdir(parents=True)
        for file in (zoo / folder).iterdir():
            (repo / file.name).write_bytes(file.read_bytes())
    with HubServer(root, models_page_size=2) as server:  # two pages of acme's three repos
        yield server, server.env(cache_dir=root.parent / f"{root.name}-caches"), root


def test_hub_owners_and_repo_lists(
    hub: tuple[Any, dict[str, str], Path], runs: dict[str, Records], zoo: Path, tmp_path: Path
) -> None:
    server, env, _root = hub
    local = _judged(runs["local-pool"], f"{zoo}/")
    expected = {
        f"{name}/{f.name}": local[f"{folder}/{f.name}"]
        for name, folder in (("r0", "d00"), ("r1", "d01"), ("r2", "d02"))
        for f in (zoo / folder).iterdir()
    }
    server.clear_requests()
    hf = _run("scan", ["hf://acme"], tmp_path / "hf.jsonl", "--jobs", "2", env=env)
    assert _judged(hf, "hf://acme/") == expected
    listings = [r for r in server.requests if r["path"].startswith("/api/models/")]
    assert len(listings) <= 3 * 3  # each repo listed by the run and at most once by each worker
    ms = _run("scan", ["ms://acme/"], tmp_path / "ms.jsonl", "--jobs", "1", env=env)
    assert _judged(ms, "ms://acme/") == expected
    repos = tmp_path / "repos.txt"
    repos.write_text("# the repos to gate\nacme/r0\n\nms://acme/r1  # from ModelScope\nhf://other\n")
    listed = _run("scan", [f"@{repos}"], tmp_path / "list.jsonl", "--jobs", "2", env=env)
    prefixes = {p.rsplit("/", 1)[0] for p in listed}
    assert prefixes == {"hf://acme/r0", "ms://acme/r1", "hf://other/x"}
    assert len(listed) == sum(len(list((zoo / d).iterdir())) for d in ("d00", "d01", "d03"))


def test_a_repo_that_cannot_be_listed_is_one_error_record(
    hub: tuple[Any, dict[str, str], Path], runs: dict[str, Records], zoo: Path, tmp_path: Path
) -> None:
    """One repo of an owner answering 500 (every time), or a repo of a list that is not there
    (404): that repo is one "error" record, every other repo's files are read; the owner listing
    itself failing stays a one-line error, exit 2, no results file."""
    server, env, _root = hub
    local = _judged(runs["local-pool"], f"{zoo}/")

    def expected(repos: dict[str, str]) -> dict[str, tuple[Any, ...]]:
        return {
            f"{url}/{f.name}": local[f"{folder}/{f.name}"]
            for url, folder in repos.items()
            for f in (zoo / folder).iterdir()
        }

    def run(inputs: list[str], out: Path) -> tuple[dict[str, Any], Records, Records]:
        done = _cli("scan", *inputs, "--out", str(out), "--json", "--jobs", "2", env=env)
        assert "Traceback" not in done.stderr, done.stderr
        summary, records = json.loads(done.stdout), _records(out)
        assert done.returncode == summary["exit_code"] == 2 and summary["files"] == len(records)
        unlisted = {p: r for p, r in records.items() if r["kind"] == "repo"}
        return summary, unlisted, {p: r for p, r in records.items() if r["kind"] != "repo"}

    server.add_fault("status", "/api/models/acme/r1*", times=None, code=500)
    try:
        summary, unlisted, files = run(["hf://acme"], tmp_path / "owner.jsonl")
    finally:
        server.clear_faults()
    assert list(unlisted) == ["hf://acme/r1"]
    record = unlisted["hf://acme/r1"]
    assert (record["verdict"], record["format"], record["size"], record["verb"]) == ("error", None, 0, "scan")
    assert record["error"].startswith("the repo could not be listed: ") and "\n" not in record["error"]
    assert record["io"] == {"requests": 0, "bytes": 0}
    assert _judged(files) == expected({"hf://acme/r0": "d00", "hf://acme/r2": "d02"})
    file_errors = sum(j[0] == "error" for j in _judged(files).values())
    assert summary["verdicts"]["error"] == file_errors + 1 and summary["by_format"]["-"]["error"] >= 1

    repos = tmp_path / "repos.txt"
    repos.write_text("acme/r0\nacme/gone\nms://acme/r2\n")
    summary, unlisted, files = run([f"@{repos}"], tmp_path / "list.jsonl")
    assert list(unlisted) == ["hf://acme/gone"] and "\n" not in unlisted["hf://acme/gone"]["error"]
    assert _judged(files) == expected({"hf://acme/r0": "d00", "ms://acme/r2": "d02"})
    again = _cli("scan", f"@{repos}", "--out", str(tmp_path / "list.jsonl"), "--resume", "--json", env=env)
    assert json.loads(again.stdout)["processed"] == 0  # the unlisted repo is done too: no record twice

    # The owner listing itself (404: a 500 is the same error after huggingface_hub's 5 retries, 23 s)
    server.add_fault("status", "/api/models", times=None, code=404)
    try:
        out = tmp_path / "no-owner.jsonl"
        _one_line_error(_cli("scan", "hf://acme", "--out", str(out), env=env), "hf://acme")
    finally:
        server.clear_faults()
    assert not out.exists()


def _one_line_error(done: subprocess.CompletedProcess, *words: str) -> None:
    assert done.returncode == 2, (done.returncode, done.stdout, done.stderr)
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("tensorfile: error: "), done.stderr
    for word in words:
        assert word in lines[0], lines[0]


def _main(capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, *args: str) -> Any:
    """The CLI's entry point in this process (for the errors found before any reading)."""
    from tensorfile.cli import main

    monkeypatch.setattr(sys, "argv", ["tensorfile", *args])
    with pytest.raises(SystemExit) as exit_info:
        main()
    captured = capsys.readouterr()
    return subprocess.CompletedProcess(args, exit_info.value.code, captured.out, captured.err)


def test_bad_inputs_are_one_line_and_exit_2(
    s3: tuple[S3Stand, dict[str, int]],
    zoo: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    stand, _ = s3
    out = str(tmp_path / "r.jsonl")
    _one_line_error(
        _cli("scan", "s3://no-such-bucket-here", "--out", out, env=stand.env), "no-such-bucket-here"
    )
    assert not Path(out).exists()  # a run that listed nothing leaves no results file
    dead = {**stand.env, "AWS_ENDPOINT_URL": f"http://127.0.0.1:{free_port()}"}
    _one_line_error(_cli("scan", f"s3://{BUCKET}", "--out", out, env=dead), "cannot reach the object store")
    not_results = tmp_path / "notes.jsonl"
    not_results.write_text("hello\n")
    _one_line_error(_cli("scan", str(zoo / "d00"), "--out", str(not_results), "--resume"), "not a result")
    assert not_results.read_text() == "hello\n"  # inputs are never modified

    def cli(*args: str) -> Any:
        return _main(capsys, monkeypatch, *args)

    _one_line_error(cli("scan", str(zoo / "d00"), "--out", str(tmp_path / "r.csv")), ".jsonl or .parquet")
    assert cli("scan", str(zoo / "d00"), "--out", out, "--jobs", "1").returncode in (0, 1)
    _one_line_error(cli("identify", str(zoo / "d00"), "--out", out, "--resume"), "'scan'", "'identify'")
    _one_line_error(cli("scan", str(zoo / "d00"), "--out", out), "--resume")  # exists: not overwritten
    _one_line_error(cli("scan", "hf://acme"), "--out")
    _one_line_error(cli("scan", "@repos.txt"), "--out")
    _one_line_error(cli("inspect", str(zoo / "d00"), "--resume"), "--out")
    _one_line_error(cli("identify", str(zoo / "d00"), "--ray"), "--out")
    _one_line_error(cli("scan", "--ray", f"s3://{BUCKET}", "--out", out), "not a Ray address")
    _one_line_error(cli("inspect", str(zoo / "d00"), str(zoo / "d01")), "one PATH")
    _one_line_error(cli("scan", str(zoo / "d00"), "--out", out, "--sarif", "x.sarif"), "--sarif")


@pytest.mark.parametrize("suffix", [".jsonl", ".parquet"])
def test_run_zoo_refuses_to_resume_another_verbs_results(zoo: Path, tmp_path: Path, suffix: str) -> None:
    """The library call checks what the CLI does: a scan's results are not resumed by inspect."""
    from tensorfile.errors import UsageError
    from tensorfile.zoo.run import run_zoo

    out = tmp_path / f"r{suffix}"
    first = run_zoo("scan", [str(zoo / "d00")], str(out), jobs=1, progress=False)
    assert first.files > 10
    before = out.read_bytes()
    for verb in ("inspect", "identify"):
        with pytest.raises(UsageError) as caught:
            run_zoo(verb, [str(zoo / "d00")], str(out), resume=True, jobs=1, progress=False)
        assert caught.value.message == (
            f"{out} holds results of 'scan', not {verb!r}: resume it with that command or choose "
            "another --out"
        )
        assert out.read_bytes() == before  # refused before anything was read or written
    again = run_zoo("scan", [str(zoo / "d00")], str(out), resume=True, jobs=1, progress=False)
    assert (again.processed, again.skipped, again.files) == (0, first.files, first.files)


def test_an_object_url_without_out_is_the_single_report(s3: tuple[S3Stand, dict[str, int]]) -> None:
    """Without --out an object (or a prefix, as a folder) is scanned as before: one report."""
    stand, _ = s3
    done = _cli("scan", f"s3://{BUCKET}/big/big.safetensors", "--json", env=stand.env)
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert [r["verdict"] for r in report["files"]] == ["clean"]


def test_ray_option_reaches_run_zoo(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, zoo: Path) -> None:
    """--ray alone is a local Ray, --ray=ADDRESS a cluster; the rest of the run is the same call."""
    from click.testing import CliRunner

    from tensorfile.cli import app
    from tensorfile.zoo import run as zoo_run

    calls: list[dict[str, Any]] = []

    def fake(verb: str, inputs: list[str], out: str, **kw: Any) -> zoo_run.Summary:
        calls.append({"verb": verb, "inputs": inputs, **kw})
        return zoo_run.Summary(verb, out)

    monkeypatch.setattr(zoo_run, "run_zoo", fake)
    runner = CliRunner()
    out = str(tmp_path / "r.jsonl")
    for args, ray in (([str(zoo), "--ray"], "local"), (["--ray=auto", str(zoo)], "auto"), ([str(zoo)], None)):
        result = runner.invoke(app, ["identify", *args, "--out", out, "--json"])
        assert result.exit_code == 0, result.output
        assert calls[-1]["ray"] == ray and calls[-1]["inputs"] == [str(zoo)]
    result = runner.invoke(
        app, ["scan", str(zoo), "--out", out, "--ray", "ray://head:10001", "--fail-on", "low"]
    )
    assert calls[-1]["ray"] == "ray://head:10001" and calls[-1]["options"] == {"fail_on": "low"}


def test_readme_zoo_example_is_what_the_cli_prints(
    s3: tuple[S3Stand, dict[str, int]], tmp_path: Path
) -> None:
    """The console block of the README's "Model zoos" section, run against examples/models in a
    bucket of the stand-in (only the seconds and files per second may differ)."""
    import re

    readme = (ROOT / "README.md").read_text()
    section = readme[readme.index("## Model zoos") :]
    block = re.search(r"```console\n\$ (tensorfile [^\n]*)\n(.*?)```", section, flags=re.S)
    assert block is not None
    command, expected = block.group(1).split(), block.group(2)
    stand, _ = s3
    stand.upload(ROOT / "examples" / "models", "models")
    done = subprocess.run(
        [sys.executable, "-m", "tensorfile", *command[1:]],
        cwd=tmp_path,
        env={**os.environ, **stand.env, "COLUMNS": "100", "PYTHONPATH": str(ROOT / "src")},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr

    def timeless(text: str) -> str:
        return re.sub(r"in [\d.,]+ s \([\d.,]+ files/s\)", "in T s (R files/s)", text)

    assert timeless(done.stdout) == timeless(expected)


def test_an_owner_listing_answering_500_is_one_line_after_the_clients_retries(
    hub: tuple[Any, dict[str, str], Path], monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """huggingface_hub retries a 5xx five times, logging each retry to stderr: the user still gets
    one line (the listing's error), nothing else on stderr. In this process, the waits skipped."""
    from huggingface_hub import constants
    from huggingface_hub.utils import _http

    from tensorfile.hub.http import HubError
    from tensorfile.hub.orgs import list_owner_repos

    server, env, _root = hub
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setattr(constants, "ENDPOINT", server.url)  # read by the client at import
    monkeypatch.setattr(_http.time, "sleep", lambda _seconds: None)
    server.add_fault("status", "/api/models", times=None, code=500)
    try:
        capfd.readouterr()
        with pytest.raises(HubError) as failure:
            list_owner_repos("huggingface", "acme")
    finally:
        server.clear_faults()
    assert "HTTP 500" in str(failure.value) and "\n" not in str(failure.value)
    assert sum(r["path"].startswith("/api/models") for r in server.requests) >= 5  # it did retry
    assert capfd.readouterr().err == ""
