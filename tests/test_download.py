"""`tensorfile download` and hub inputs against the local hub stand-in (tests/hubserver.py).

Every command runs in a child process with the stand-in's environment: huggingface_hub reads
HF_ENDPOINT and the cache variables once, at import.
"""

from __future__ import annotations

import json
import os
import resource
import signal
import struct
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from tests.conftest import foreground_signals, run_cli
from tests.hubserver import HubServer

# A pickle that would call os.system on load (never loaded here: only served and scanned).
EVIL_PICKLE = b"cos\nsystem\n(S'echo pwned'\ntR."
BIG = 3 * 1024 * 1024 + 123


def _repo_both(root: Path) -> None:
    repo = root / "org" / "both"
    repo.mkdir(parents=True)
    save_file({"w": np.arange(16, dtype=np.float32).reshape(4, 4)}, str(repo / "model.safetensors"))
    (repo / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 4}))
    (repo / "tokenizer.json").write_text("{}")
    (repo / "README.md").write_text("# both\n")
    (repo / "pytorch_model.bin").write_bytes(b"\x80\x02}q\x00.")
    big = root / "org" / "big"
    big.mkdir()
    rng = np.random.default_rng(0)
    (big / "weights.bin").write_bytes(b"\x80\x02}q\x00." + rng.bytes(BIG))  # a pickle head, then noise
    (big / "config.json").write_text("{}")
    evil = root / "org" / "evil"
    evil.mkdir()
    (evil / "pytorch_model.bin").write_bytes(EVIL_PICKLE)
    (evil / "config.json").write_text("{}")
    wide = root / "org" / "wide"  # a header of ~150 KB: longer than one range fetch
    wide.mkdir()
    save_file(
        {f"t{i:05d}": np.zeros(1, dtype=np.float32) for i in range(3000)}, str(wide / "model.safetensors")
    )
    huge = root / "org" / "huge"
    huge.mkdir()
    with (huge / "model.safetensors").open("wb") as fh:  # sparse: listed at 15 TB, costs no disk
        fh.truncate(15 * 10**12)
    (huge / "config.json").write_text("{}")


def _sparse_shards(repo: Path, shards: int = 3, tensor_bytes: int = 1 << 30) -> dict[str, str]:
    """Safetensors shards of 1 GiB of F16 each, sparse on disk (only headers are real), + index."""
    repo.mkdir(parents=True)
    weight_map = {}
    fake = {}
    for i in range(shards):
        name = f"model-{i + 1:05d}-of-{shards:05d}.safetensors"
        tensors = {}
        offset = 0
        for j in range(4):
            n = tensor_bytes // 4
            tensors[f"layers.{i}.w{j}"] = {
                "dtype": "F16",
                "shape": [n // 2],
                "data_offsets": [offset, offset + n],
            }
            weight_map[f"layers.{i}.w{j}"] = name
            offset += n
        header = json.dumps(tensors).encode()
        header += b" " * (-len(header) % 8)
        with (repo / name).open("wb") as fh:
            fh.write(struct.pack("<Q", len(header)) + header)
            fh.truncate(8 + len(header) + offset)
        fake[f"{repo.parent.name}/{repo.name}/{name}"] = f"{i:064x}"
    (repo / "model.safetensors.index.json").write_text(json.dumps({"metadata": {}, "weight_map": weight_map}))
    (repo / "config.json").write_text(json.dumps({"model_type": "llama", "num_hidden_layers": 3}))
    return fake


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubServer]:
    root = tmp_path_factory.mktemp("hubroot")
    _repo_both(root)
    fake = _sparse_shards(root / "org" / "sharded")
    fake["org/huge/model.safetensors"] = "f" * 64
    with HubServer(root, sha256=fake) as server:
        yield server


@pytest.fixture()
def env(hub: HubServer, tmp_path: Path) -> dict[str, str]:
    hub.clear_faults()
    hub.require_token = None
    hub.clear_requests()
    drop = ("HF_TOKEN", "MODELSCOPE_API_TOKEN", "TENSORFILE_HUB", "HF_HUB_CACHE")
    base = {k: v for k, v in os.environ.items() if k not in drop}
    return {**base, **hub.env(cache_dir=tmp_path / "caches")}


def _json(proc: subprocess.CompletedProcess[str]) -> dict:
    assert proc.stdout, proc.stderr
    return json.loads(proc.stdout)


def _files_under(folder: Path) -> set[str]:
    return {
        p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file() and ".cache" not in p.parts
    }


@pytest.mark.parametrize("spelling", ["hf://org/both", "ms://org/both"])
def test_safetensors_repo_comes_without_the_pickle(
    env: dict[str, str], tmp_path: Path, spelling: str
) -> None:
    dry = run_cli("download", spelling, "--dry-run", "--json", env=env)
    assert dry.returncode == 0, dry.stderr
    plan = {f["path"]: f for f in _json(dry)["files"]}
    assert not plan["pytorch_model.bin"]["chosen"]
    assert "pickled duplicate" in plan["pytorch_model.bin"]["reason"]
    assert {p for p, f in plan.items() if f["chosen"]} == {
        "model.safetensors",
        "config.json",
        "tokenizer.json",
        "README.md",
    }
    dest = tmp_path / "out"
    proc = run_cli("download", spelling, "--local-dir", str(dest), "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    report = _json(proc)
    assert _files_under(dest) == {"model.safetensors", "config.json", "tokenizer.json", "README.md"}
    assert report["totals"]["verified_files"] == 4 and report["totals"]["skipped_bytes"] == 6
    assert report["scan"]["verdict"] == "clean"
    assert report["model"]["tensor_types"] == "F32" and report["model"]["parameter_count"] == 16
    assert not (dest / ".cache").exists()  # staging cleaned up
    # a second run finds everything in place and fetches nothing
    again = _json(run_cli("download", spelling, "--local-dir", str(dest), "--json", env=env))
    assert again["totals"]["present_files"] == 4 and again["totals"]["fetched_bytes"] == 0


def test_the_seed_line_goes_to_modelscope(env: dict[str, str], hub: HubServer, tmp_path: Path) -> None:
    dest = tmp_path / "DeepSeek"
    proc = run_cli("download", "--model", "org/both", "--local_dir", str(dest), env=env)
    assert proc.returncode == 0, proc.stderr
    assert (dest / "model.safetensors").is_file()
    assert any(r["path"].startswith("/api/v1/models/org/both") for r in hub.requests)
    assert not any(r["path"].startswith("/api/models/") for r in hub.requests)


def test_official_clients_find_the_cache(env: dict[str, str], hub: HubServer) -> None:
    for spelling in ("hf://org/both", "ms://org/both"):
        proc = run_cli("download", spelling, "-q", env=env)
        assert proc.returncode == 0, proc.stderr
    script = (
        "import os, sys\n"
        "from huggingface_hub import snapshot_download, hf_hub_download\n"
        "p = snapshot_download('org/both', local_files_only=True)\n"
        "names = sorted(os.listdir(p))\n"
        "for n in names: hf_hub_download('org/both', n, local_files_only=True)\n"
        "from modelscope import snapshot_download as ms\n"
        "q = ms('org/both', local_files_only=True)\n"
        "print(names, sorted(os.listdir(q)))\n"
    )
    offline = {**env, "HF_HUB_OFFLINE": "1"}
    out = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, env=offline, timeout=120
    )
    assert out.returncode == 0, out.stderr[-2000:]
    expected = str(["README.md", "config.json", "model.safetensors", "tokenizer.json"])
    assert out.stdout.strip() == f"{expected} {expected}"


def test_hash_mismatch_places_nothing(env: dict[str, str], hub: HubServer, tmp_path: Path) -> None:
    hub.add_fault("corrupt", "model.safetensors", times=None)
    dest = tmp_path / "out"
    proc = run_cli("download", "hf://org/both", "--local-dir", str(dest), env=env)
    assert proc.returncode == 2
    assert "model.safetensors" in proc.stderr and "differs from the hub" in proc.stderr
    assert _files_under(dest) == set()
    fetches = [r for r in hub.requests if r["path"].startswith("/cdn/") and r["method"] == "GET"]
    assert len(fetches) == 2  # the download and one fresh retry


def test_one_bad_copy_is_retried(env: dict[str, str], hub: HubServer, tmp_path: Path) -> None:
    hub.add_fault("corrupt", "model.safetensors", times=1)
    proc = run_cli("download", "ms://org/both", "--local-dir", str(tmp_path / "out"), "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    by_path = {f["path"]: f for f in _json(proc)["files"]}
    assert by_path["model.safetensors"]["attempts"] == 2


def test_malicious_pickle_is_quarantined(env: dict[str, str], tmp_path: Path) -> None:
    dest = tmp_path / "out"
    proc = run_cli("download", "hf://org/evil", "--local-dir", str(dest), "--json", env=env)
    assert proc.returncode == 1, proc.stderr
    report = _json(proc)
    assert _files_under(dest) == set()
    quarantine = Path(report["quarantine"])
    assert (quarantine / "pytorch_model.bin").read_bytes() == EVIL_PICKLE
    assert report["scan"]["verdict"] == "unsafe"
    allowed = run_cli("download", "hf://org/evil", "--local-dir", str(dest), "--allow-unsafe", env=env)
    assert allowed.returncode == 0 and (dest / "pytorch_model.bin").is_file()


def _served(hub: HubServer, name: str) -> int:
    return sum(r["body_bytes_sent"] for r in hub.requests if name in r["path"] and r["method"] == "GET")


@pytest.mark.parametrize("hub_name", ["hf", "ms"])
def test_resume_after_a_cut(env: dict[str, str], hub: HubServer, tmp_path: Path, hub_name: str) -> None:
    hub.add_fault("cut", "weights.bin", times=1, after=BIG // 2)
    dest = tmp_path / "out"
    proc = run_cli("download", f"{hub_name}://org/big", "--local-dir", str(dest), "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    size = (dest / "weights.bin").stat().st_size
    assert size == BIG + 6
    lost_plus_block = 1024 * 1024  # our read block
    assert _served(hub, "weights.bin") <= size + lost_plus_block
    ranges = [
        r["range"]
        for r in hub.requests
        if ("weights.bin" in r["path"] or r["path"].startswith("/cdn/"))
        and r["method"] == "GET"
        and r["status"] != 302
    ]
    assert len(ranges) == 2 and ranges[1] and ranges[1].startswith("bytes=")


def test_resume_across_runs_from_the_part_file(env: dict[str, str], hub: HubServer, tmp_path: Path) -> None:
    src = Path(next(p for p in hub.root.rglob("weights.bin")))
    dest = tmp_path / "out"
    part = dest / ".cache" / "tensorfile" / "staging" / "weights.bin.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(src.read_bytes()[: 2 * 1024 * 1024])  # what a killed run left
    proc = run_cli("download", "hf://org/big", "--local-dir", str(dest), "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    assert (dest / "weights.bin").read_bytes() == src.read_bytes()
    assert _served(hub, "weights.bin") == src.stat().st_size - 2 * 1024 * 1024
    assert not part.exists()


def test_errors_are_one_line(env: dict[str, str], hub: HubServer, tmp_path: Path) -> None:
    dest = tmp_path / "untouched"
    cases = [
        (["download", "hf://org/nothere"], "no such model repo"),
        (["download", "ms://org/nothere"], "no such model repo"),
        (["download", "hf://org/both", "--revision", "v9"], "no revision"),
        (["download", "hf://org/both", "nothing-*.gguf"], "no file of this repo matches"),
        (["download", "hf://org/both", "--quant", "Q4_K_M"], "no GGUF files"),
        (["inspect", "hf://org/both/missing.safetensors"], "no file or folder"),
    ]
    for args, message in cases:
        proc = run_cli(*args, "--local-dir", str(dest)) if False else run_cli(*args, env=env)
        assert proc.returncode == 2, (args, proc.stderr)
        lines = proc.stderr.strip().splitlines()
        assert len(lines) == 1 and message in lines[0] and "Traceback" not in proc.stderr, (args, proc.stderr)
    hub.require_token = "secret"
    proc = run_cli("download", "hf://org/both", "--local-dir", str(dest), env=env)
    assert proc.returncode == 2 and "HF_TOKEN" in proc.stderr
    proc = run_cli("download", "ms://org/both", "--local-dir", str(dest), env=env)
    assert proc.returncode == 2 and "MODELSCOPE_API_TOKEN" in proc.stderr
    assert not dest.exists()
    proc = run_cli("download", "hf://org/both", "--local-dir", str(dest), "--token", "secret", env=env)
    assert proc.returncode == 0, proc.stderr
    unreachable = {**env, "HF_ENDPOINT": "http://127.0.0.1:9", "TENSORFILE_HTTP_TIMEOUT": "3"}
    proc = run_cli("inspect", "hf://org/both", env=unreachable, timeout=60)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr


def test_remote_inspect_of_a_sharded_repo_reads_only_headers(env: dict[str, str], hub: HubServer) -> None:
    local = run_cli("inspect", str(hub.root / "org" / "sharded"), "--json", env=env)
    remote = run_cli("inspect", "hf://org/sharded", "--json", env=env)
    ms = run_cli("inspect", "ms://org/sharded", "--json", env=env)
    for proc in (local, remote, ms):
        assert proc.returncode == 0, proc.stderr
    a, b, c = _json(local), _json(remote), _json(ms)
    for key in ("format", "tensor_count", "parameter_count", "parameters_by_dtype", "total_bytes"):
        assert a[key] == b[key] == c[key], key
    assert [t["name"] for t in a["tensors"]] == [t["name"] for t in b["tensors"]]
    total = sum(f.stat().st_size for f in (hub.root / "org" / "sharded").iterdir())
    for doc in (b, c):
        assert doc["http"]["bytes_fetched"] < total * 0.001, doc["http"]
        assert doc["http"]["requests"] <= 12, doc["http"]


def test_remote_identify_scan_estimate(env: dict[str, str]) -> None:
    ident = _json(run_cli("identify", "hf://org/both", "ms://org/both/pytorch_model.bin", "--json", env=env))
    assert [r["format"] for r in ident["results"]] == ["safetensors", "pickle"]
    assert ident["http"]["requests"] > 0
    scan = run_cli("scan", "hf://org/evil", "--json", env=env)
    assert scan.returncode == 1
    assert _json(scan)["summary"]["verdicts"]["unsafe"] == 1
    est = _json(run_cli("estimate", "hf://org/sharded", "--json", env=env))
    assert est["model"]["total_params"] == 3 * (1 << 30) // 2


def test_remote_diff_streams_values_and_convert_asks_for_a_download(
    env: dict[str, str], hub: HubServer, tmp_path: Path
) -> None:
    """diff reads a hub file's values by range requests; convert says to download first."""
    same = run_cli("diff", "hf://org/both", "ms://org/both/model.safetensors", "--json", env=env)
    assert same.returncode == 0, same.stderr
    doc = _json(same)
    assert doc["equal"] and doc["summary"]["identical"] == 1
    assert doc["http"]["bytes_fetched"] >= 16 * 4 and doc["http"]["requests"] > 0
    changed = tmp_path / "model.safetensors"
    save_file({"w": np.arange(16, dtype=np.float32).reshape(4, 4) * 2}, str(changed))
    differs = _json(run_cli("diff", "hf://org/both", str(changed), "--json", env=env))
    assert not differs["equal"] and differs["tensors"][0]["status"] == "different"
    assert differs["tensors"][0]["max_abs"] == 15.0
    refused = run_cli("convert", "hf://org/both", str(tmp_path / "out.safetensors"), env=env)
    assert refused.returncode == 2 and len(refused.stderr.strip().splitlines()) == 1, refused.stderr
    assert "tensorfile download hf://org/both" in refused.stderr
    assert not (tmp_path / "out.safetensors").exists()


def test_a_plain_url_is_one_file(env: dict[str, str], hub: HubServer) -> None:
    """Any http(s) address serving Range requests: the file alone, read by ranges, no hub API."""
    local = _json(run_cli("inspect", str(hub.root / "org" / "both" / "model.safetensors"), "--json", env=env))
    url = f"{hub.url}/org/both/resolve/main/model.safetensors"
    hub.clear_requests()
    remote = _json(run_cli("inspect", url, "--json", env=env))
    for key in ("format", "tensor_count", "parameter_count", "parameters_by_dtype"):
        assert local[key] == remote[key], key
    paths = [r["path"] for r in hub.requests]
    assert paths and not any("/api/" in p for p in paths), paths
    ident = _json(run_cli("identify", url, "--json", env=env))
    assert ident["results"][0]["format"] == "safetensors"


@pytest.mark.parametrize("spelling", ["hf://org/both", "ms://org/both"])
def test_a_silent_hub_gives_up_within_the_timeout(env: dict[str, str], hub: HubServer, spelling: str) -> None:
    """The listing (API) and a file body that stall: one line, exit 2, in bounded time."""
    slow = {**env, "TENSORFILE_HTTP_TIMEOUT": "2"}
    hub.add_fault("slow", "/api/*", times=None, delay=60)
    started = time.monotonic()
    proc = run_cli("inspect", spelling, env=slow, timeout=120)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "timeout" in proc.stderr
    assert time.monotonic() - started < 40


def test_a_stalled_download_gives_up_and_places_nothing(
    env: dict[str, str], hub: HubServer, tmp_path: Path
) -> None:
    hub.add_fault("slow", "weights.bin", times=None, delay=0.5, per_chunk=True)
    dest = tmp_path / "out"
    slow = {**env, "TENSORFILE_HTTP_TIMEOUT": "0.2"}
    proc = run_cli("download", "hf://org/big", "--local-dir", str(dest), "-q", env=slow, timeout=120)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "weights.bin" in proc.stderr and "timeout" in proc.stderr
    assert not (dest / "weights.bin").exists()


def test_ctrl_c_keeps_the_part_for_a_resume(env: dict[str, str], hub: HubServer, tmp_path: Path) -> None:
    src = next(hub.root.rglob("weights.bin"))
    hub.add_fault("slow", "weights.bin", times=None, delay=0.1, per_chunk=True)  # ~5 s for the file
    dest = tmp_path / "out"
    part = dest / ".cache" / "tensorfile" / "staging" / "weights.bin.part"
    proc = subprocess.Popen(
        [sys.executable, "-m", "tensorfile", "download", "hf://org/big", "--local-dir", str(dest), "-q"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=foreground_signals,
    )
    deadline = time.monotonic() + 60
    while not (part.exists() and part.stat().st_size >= 256 * 1024):
        assert time.monotonic() < deadline and proc.poll() is None, proc.communicate()
        time.sleep(0.05)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=60)
    assert proc.returncode == 130 and err.strip() == "tensorfile: interrupted", err
    assert not (dest / "weights.bin").exists() and not (dest / "config.json").exists()
    kept = part.stat().st_size
    assert 0 < kept < src.stat().st_size
    hub.clear_faults()
    again = run_cli("download", "hf://org/big", "--local-dir", str(dest), "-q", env=env)
    assert again.returncode == 0, again.stderr
    assert (dest / "weights.bin").read_bytes() == src.read_bytes()
    # Requests of the run that was stopped may still be logged now: theirs carry the slow fault.
    again_served = [r for r in hub.requests if "weights.bin" in r["path"] and "slow" not in r["faults"]]
    assert [r["range"] for r in again_served if r["status"] == 206] == [f"bytes={kept}-"]
    assert sum(r["body_bytes_sent"] for r in again_served) == src.stat().st_size - kept


def _file_size_limit(limit: int) -> None:
    # Writes past `limit` fail with EFBIG, as a full disk fails them with ENOSPC (Python ignores SIGXFSZ).
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))


def test_a_write_failure_is_one_line_and_places_nothing(env: dict[str, str], tmp_path: Path) -> None:
    dest = tmp_path / "out"
    proc = subprocess.run(
        [sys.executable, "-m", "tensorfile", "download", "hf://org/big", "--local-dir", str(dest), "-q"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        preexec_fn=lambda: _file_size_limit(1024 * 1024),
    )
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert "weights.bin" in proc.stderr and "Traceback" not in proc.stderr
    assert not (dest / "weights.bin").exists() and not (dest / "config.json").exists()


def test_free_space_is_checked_before_the_first_byte(
    env: dict[str, str], hub: HubServer, tmp_path: Path
) -> None:
    dest = tmp_path / "out"
    proc = run_cli("download", "hf://org/huge", "--local-dir", str(dest), "-q", env=env)
    assert proc.returncode == 2 and "not enough free space" in proc.stderr, proc.stderr
    assert len(proc.stderr.strip().splitlines()) == 1
    assert _served(hub, "model.safetensors") == 0 and _served(hub, "config.json") == 0
    assert not dest.exists() or not any(p.is_file() for p in dest.rglob("*"))


def test_a_long_header_is_fetched_once(env: dict[str, str], hub: HubServer) -> None:
    """The bytes after the first fetch come in one more request, without fetching the start again."""
    proc = run_cli("inspect", "ms://org/wide", "--json", env=env)
    assert proc.returncode == 0, proc.stderr
    doc = _json(proc)
    assert doc["tensor_count"] == 3000
    header = doc["files"][0]["header_bytes"]
    assert header > 128 * 1024
    served = _served(hub, "model.safetensors")
    assert served < header + 8 + 64 * 1024, (served, header)
    assert doc["http"]["requests"] == 2  # the first 64 KiB, then the rest (the client's listing apart)


def _stderr_on_a_terminal(args: list[str], env: dict[str, str], cwd: Path) -> tuple[int, str]:
    """Run the CLI with stderr on a pseudo-terminal (stdout a pipe); its exit code and what the
    terminal received."""
    import pty
    import threading

    master, slave = pty.openpty()
    proc = subprocess.Popen(
        [sys.executable, "-m", "tensorfile", *args],
        stdout=subprocess.PIPE,
        stderr=slave,
        cwd=cwd,
        env={**env, "COLUMNS": "120", "TERM": "xterm"},
    )
    os.close(slave)
    received = bytearray()

    def drain() -> None:
        while True:
            try:
                chunk = os.read(master, 65536)
            except OSError:  # EIO: the child closed the terminal
                return
            if not chunk:
                return
            received.extend(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    proc.communicate(timeout=120)
    reader.join(timeout=10)
    os.close(master)
    return proc.returncode, received.decode(errors="replace")


def test_progress_bars_on_a_terminal_only(env: dict[str, str], hub: HubServer, tmp_path: Path) -> None:
    """A terminal gets the bars (total and per file: bytes, speed, ETA); a pipe, --json and -q none."""
    hub.add_fault("slow", "org/big/weights.bin", times=None, delay=0.02, per_chunk=True)
    args = ["download", "hf://org/big", "--all", "--allow-unsafe", "--local-dir"]
    code, seen = _stderr_on_a_terminal([*args, str(tmp_path / "tty")], env, tmp_path)
    assert code in (0, 1), seen
    assert "file(s)" in seen and "weights.bin" in seen and "/s" in seen, seen
    quiet = _stderr_on_a_terminal([*args, str(tmp_path / "quiet"), "-q"], env, tmp_path)
    as_json = _stderr_on_a_terminal([*args, str(tmp_path / "json"), "--json"], env, tmp_path)
    for _, text in (quiet, as_json):
        assert "file(s)" not in text and "/s" not in text, text
    piped = run_cli(*args, str(tmp_path / "pipe"), env=env)
    assert "file(s)" not in piped.stderr
