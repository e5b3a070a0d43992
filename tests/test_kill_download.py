"""kill -9 of `tensorfile download` against the hub stand-in, and what staging keeps afterwards.

Each case downloads a repo of ~19 MB (three safetensors shards served a little slowly, so the
run lasts long enough to be hit anywhere) and SIGKILLs it at seeded points (tests/kill_points.py).
After every kill: each file under its real name (in --local-dir, or a snapshot link into the hub
cache) is complete and the hub's bytes; then the next run succeeds, fetches exactly what the kill
did not leave in staging (it resumes the `.part` files and keeps verified files), and leaves no
staging behind. The staging rule (download/place.py): parts of the paths a run fetches are always
kept, others once idle for STALE_DAYS, never a part a live run holds.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import save_file

from tensorfile.download.place import STALE_DAYS
from tests.conftest import run_cli
from tests.hubserver import HubServer
from tests.kill_points import KillPoint, armed_cli, file_bytes, kill_points, run_and_kill

REPO = "org/killme"
KILLS = {"hf-local": 4, "ms-local": 4, "hf-cache": 4}


def _make_repo(root: Path) -> None:
    repo = root / "org" / "killme"
    repo.mkdir(parents=True)
    rng = np.random.default_rng(9)
    weight_map = {}
    for i in range(3):
        name = f"model-{i + 1:05d}-of-00003.safetensors"
        arrays = {f"layers.{i}.w{j}": rng.standard_normal((384, 1024)).astype(np.float32) for j in range(4)}
        save_file(arrays, str(repo / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(arrays, name))
    index = {"metadata": {}, "weight_map": weight_map}
    (repo / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    (repo / "config.json").write_text(json.dumps({"model_type": "llama", "num_hidden_layers": 3}))
    (repo / "tokenizer.json").write_text("{}")
    other = root / "org" / "other"
    other.mkdir()
    (other / "config.json").write_text("{}")


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubServer]:
    root = tmp_path_factory.mktemp("killhub")
    _make_repo(root)
    with HubServer(root) as server:
        yield server


@pytest.fixture()
def env(hub: HubServer, tmp_path: Path) -> dict[str, str]:
    hub.clear_faults()
    drop = ("HF_TOKEN", "MODELSCOPE_API_TOKEN", "TENSORFILE_HUB", "HF_HUB_CACHE")
    base = {k: v for k, v in os.environ.items() if k not in drop}
    return {**base, **hub.env(cache_dir=tmp_path / "caches")}


def _sources(hub: HubServer) -> dict[str, bytes]:
    repo = hub.root / "org" / "killme"
    return {p.relative_to(repo).as_posix(): p.read_bytes() for p in repo.rglob("*") if p.is_file()}


class Layout:
    """Where a download puts its files and its staging, for one of the three set-ups."""

    def __init__(self, case: str, tmp_path: Path, env: dict[str, str], hub: HubServer) -> None:
        self.hub_name, self.where = case.split("-")
        self.env = env
        if self.where == "local":
            self.root = tmp_path / "out"
            self.staging = self.root / ".cache" / "tensorfile" / "staging"
            self.top = self.root
            self.args = ["--local-dir", str(self.root)]
        else:
            top = Path(env["HF_HOME"]) / "hub"
            self.root = top / "models--org--killme" / "snapshots" / hub.commit(REPO)
            self.staging = top / ".tensorfile" / "models--org--killme" / "staging"
            self.top = top
            self.args = []

    def cmd(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "tensorfile",
            "download",
            f"{self.hub_name}://{REPO}",
            *self.args,
            "--json",
        ]

    def placed(self) -> dict[str, bytes]:
        """The files under their real names (snapshot links followed)."""
        if not self.root.exists():
            return {}
        return {
            p.relative_to(self.root).as_posix(): p.read_bytes()
            for p in self.root.rglob("*")
            if p.is_file()
            and ".cache" not in p.relative_to(self.root).parts
            and not p.name.endswith(".tensorfile-link")  # a link being made, not yet named
        }

    def watch(self) -> Callable[[int], int]:
        """Bytes the run has added to staging and the placed files."""
        before = file_bytes(self.top)
        return lambda _pid: file_bytes(self.top) - before

    def wipe(self) -> None:
        shutil.rmtree(self.top, ignore_errors=True)

    def still_to_fetch(self, sources: dict[str, bytes]) -> int:
        """What the next run must fetch, from what is on disk now: no file placed or staged
        complete, less what its part holds."""
        placed = self.placed()
        need = 0
        for path, data in sources.items():
            staged = self.staging / path
            if (
                placed.get(path) == data
                or self._blob_ok(data)
                or (staged.is_file() and staged.stat().st_size == len(data))
            ):
                continue
            part = self.staging / (path + ".part")
            need += len(data) - (part.stat().st_size if part.is_file() else 0)
        return need

    def _blob_ok(self, data: bytes) -> bool:
        if self.where == "local":
            return False
        import hashlib

        blobs = self.top / "models--org--killme" / "blobs"
        sha = hashlib.sha256(data).hexdigest()
        git = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        return any((blobs / d).is_file() and (blobs / d).read_bytes() == data for d in (sha, git))


@pytest.mark.parametrize("case", KILLS)
def test_kill_download_at_random_points(
    case: str, hub: HubServer, env: dict[str, str], tmp_path: Path
) -> None:
    """Points in pairs: a run from nothing killed, a second run resuming it killed too, then the
    run that must finish."""
    sources = _sources(hub)
    total = sum(map(len, sources.values()))
    layout = Layout(case, tmp_path, env, hub)
    hub.add_fault("slow", "*.safetensors", times=None, delay=0.004, per_chunk=True)
    kept = 0
    for i, point in enumerate(kill_points(case, KILLS[case], total, startup=1.0)):
        where = f"{case} kill {i} at {point.describe()}"
        if i % 2 == 0:
            layout.wipe()
        else:  # the same share of what the first run left to do
            left = layout.still_to_fetch(sources)
            point = KillPoint(point.bytes * left // total, point.delay)
        run = run_and_kill(layout.cmd(), point, layout.watch(), env)
        assert run.killed or run.returncode == 0, (where, run.stderr)
        for path, data in layout.placed().items():
            assert sources.get(path) == data, (where, path)  # nothing incomplete under a real name
        if i % 2 == 0 and i + 1 < KILLS[case]:
            continue
        need = layout.still_to_fetch(sources)
        kept += total - need
        again = subprocess.run(layout.cmd(), env=env, capture_output=True, text=True, timeout=300)
        assert again.returncode == 0, (where, again.stderr)
        report = json.loads(again.stdout)
        assert report["totals"]["fetched_bytes"] == need, (where, report["totals"])
        assert layout.placed() == sources, where
        assert not layout.staging.exists() or not any(layout.staging.rglob("*")), where
    assert kept > 0  # the kills left bytes that the next runs did not fetch again


@pytest.mark.parametrize(
    ("case", "nth"),
    [
        ("hf-local", 8),  # all six verified and staged, two placed
        ("hf-cache", 10),  # two blobs placed, one linked: the second blob is in, its link not
    ],
)
def test_kill_while_placing(case: str, nth: int, hub: HubServer, env: dict[str, str], tmp_path: Path) -> None:
    sources = _sources(hub)
    layout = Layout(case, tmp_path, env, hub)
    cmd = armed_cli("replace", nth, *layout.cmd()[3:])
    run = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == -9, run.stderr
    placed = layout.placed()
    assert placed and len(placed) < len(sources)
    assert all(sources[p] == data for p, data in placed.items())
    again = subprocess.run(layout.cmd(), env=env, capture_output=True, text=True, timeout=300)
    assert again.returncode == 0, again.stderr
    assert json.loads(again.stdout)["totals"]["fetched_bytes"] == 0  # all of it was kept
    assert layout.placed() == sources


# --- what staging keeps --------------------------------------------------------------------------


def _age(path: Path, days: float) -> None:
    when = time.time() - days * 86400
    os.utime(path, (when, when))


def test_the_sweep_keeps_resume_state_and_drops_abandoned_parts(
    hub: HubServer, env: dict[str, str], tmp_path: Path
) -> None:
    sources = _sources(hub)
    dest = tmp_path / "out"
    staging = dest / ".cache" / "tensorfile" / "staging"
    staging.mkdir(parents=True)
    shard1, shard2 = "model-00001-of-00003.safetensors", "model-00002-of-00003.safetensors"
    resume = staging / (shard1 + ".part")  # this run fetches it: kept however old, and resumed
    resume.write_bytes(sources[shard1][: 3 << 20])
    _age(resume, STALE_DAYS + 30)
    verified = staging / shard2  # verified by a run that stopped before placing: kept, not fetched
    verified.write_bytes(sources[shard2])
    abandoned = staging / "older-revision.bin.part"  # no file of this run, idle past the limit
    abandoned.write_bytes(b"a" * 100_000)
    _age(abandoned, STALE_DAYS + 1)
    recent = staging / "sub" / "other-selection.gguf.part"  # no file of this run, but recent
    recent.parent.mkdir()
    recent.write_bytes(b"r" * 1000)
    _age(recent, STALE_DAYS - 1)
    live = staging / "being-written.bin.part"  # idle, but a live process holds it
    live.write_bytes(b"l" * 1000)
    _age(live, STALE_DAYS + 1)
    holder = live.open("rb")
    fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
    try:
        proc = run_cli("download", f"hf://{REPO}", "--local-dir", str(dest), "--json", env=env)
    finally:
        holder.close()
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    by_path = {f["path"]: f for f in report["files"]}
    assert by_path[shard1]["resumed_from_bytes"] == 3 << 20
    assert by_path[shard2]["attempts"] == 0 and by_path[shard2]["resumed_from_bytes"] == len(sources[shard2])
    assert report["totals"]["fetched_bytes"] == sum(map(len, sources.values())) - (3 << 20) - len(
        sources[shard2]
    )
    assert any("abandoned partial downloads" in n for n in report["notes"])
    assert not abandoned.exists() and recent.exists() and live.exists()
    assert (dest / shard1).read_bytes() == sources[shard1]


def test_the_sweep_reaches_other_repos_in_the_cache(hub: HubServer, env: dict[str, str]) -> None:
    top = Path(env["HF_HOME"]) / "hub" / ".tensorfile"
    gone = top / "models--org--gone" / "staging" / "model.safetensors.part"
    gone.parent.mkdir(parents=True)
    gone.write_bytes(b"g" * 10_000)
    _age(gone, STALE_DAYS + 1)
    fresh = top / "models--org--paused" / "staging" / "model.safetensors.part"
    fresh.parent.mkdir(parents=True)
    fresh.write_bytes(b"f" * 10_000)
    proc = run_cli("download", "hf://org/other", "-q", env=env)
    assert proc.returncode == 0, proc.stderr
    assert not (top / "models--org--gone").exists()  # its emptied folders too
    assert fresh.exists()


def test_a_part_a_live_run_writes_is_not_shared(hub: HubServer, env: dict[str, str], tmp_path: Path) -> None:
    dest = tmp_path / "out"
    part = dest / ".cache" / "tensorfile" / "staging" / "model-00001-of-00003.safetensors.part"
    part.parent.mkdir(parents=True)
    part.write_bytes(b"")
    with part.open("rb") as holder:
        fcntl.flock(holder.fileno(), fcntl.LOCK_EX)
        proc = run_cli("download", f"hf://{REPO}", "--local-dir", str(dest), "-q", env=env)
    assert proc.returncode == 2 and "another download is writing this file now" in proc.stderr, proc.stderr
    assert not (dest / "model-00001-of-00003.safetensors").exists()
