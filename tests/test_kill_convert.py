"""kill -9 of `tensorfile convert`, and the atomic outputs under it (src/tensorfile/atomic.py).

Each case converts an input of a few tens of MB in a child process and SIGKILLs it at seeded
points spread over start-up, writing and the end (tests/kill_points.py), half of them through
O_TMPFILE and half through named parts (TENSORFILE_NO_O_TMPFILE=1). After every kill: the
destination is absent or the complete reference output (same bytes, loaded by the format's own
library), the input is unchanged, an O_TMPFILE file output left no name behind; then the next run
succeeds with the same bytes and leaves no part. bench/kill_bench.py runs many more points.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import gguf
import ml_dtypes
import numpy as np
import pytest
import torch
from safetensors.numpy import load_file, save_file

from tensorfile import atomic
from tensorfile.atomic import NO_EXCHANGE_ENV, NO_TMPFILE_ENV, atomic_folder, atomic_output, clear_stale_parts
from tests.gguf_models import TOKENIZERS, _weights, llama_config, tokenizer_size
from tests.kill_points import (
    KillPoint,
    armed_cli,
    file_bytes,
    kill_points,
    open_unnamed_bytes,
    run_and_kill,
    temps,
    tree_digest,
)

KILLS_PER_CASE = 4  # the GGUF case 3: each of its runs takes longer


def make_inputs(folder: Path) -> dict[str, Path]:
    """A 25 MB safetensors file, a 25 MB torch zip, and a 13 MB bf16 llama folder for GGUF."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(16)
    arrays = {f"layers.{i}.weight": rng.standard_normal((512, 1024)).astype(np.float32) for i in range(12)}
    save_file(arrays, str(folder / "model.safetensors"), metadata={"format": "pt"})
    torch.save({k: torch.from_numpy(v) for k, v in arrays.items()}, folder / "model.pt")
    llama = folder / "llama"
    llama.mkdir()
    config = {**llama_config(384, 1024, 6, 2, 4), "vocab_size": tokenizer_size(TOKENIZERS / "llama-spm")}
    (llama / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    weights = {k: v.astype(ml_dtypes.bfloat16) for k, v in _weights(config, rng).items()}
    save_file(weights, str(llama / "model.safetensors"), metadata={"format": "pt"})
    for item in (TOKENIZERS / "llama-spm").iterdir():
        if item.is_file():
            (llama / item.name).write_bytes(item.read_bytes())
    return {"safetensors": folder / "model.safetensors", "pt": folder / "model.pt", "llama": llama}


def load_shards(path: Path) -> None:
    index = json.loads((path / "model.safetensors.index.json").read_text())
    names = set()
    for shard in sorted(set(index["weight_map"].values())):
        names |= set(load_file(str(path / shard)))
    assert names == set(index["weight_map"])


def load_safetensors(path: Path) -> None:
    assert len(load_file(str(path))) == 12


def load_npz(path: Path) -> None:
    with np.load(path) as archive:
        assert sum(archive[name].size for name in archive.files) == 12 * 512 * 1024


def load_gguf(path: Path) -> None:
    reader = gguf.GGUFReader(path)
    assert reader.tensors and all(t.data.size for t in reader.tensors)


# case: (input key, destination name, extra arguments, the official library's load)
CASES: dict[str, tuple[str, str, list[str], Callable[[Path], None]]] = {
    "safetensors-shards": ("safetensors", "sharded", ["--max-shard-size", "5MB"], load_shards),
    "pickle-safetensors": ("pt", "model.safetensors", [], load_safetensors),
    "safetensors-npz": ("safetensors", "model.npz", [], load_npz),
    "hf-gguf": ("llama", "model-q8_0.gguf", ["--quant", "Q8_0"], load_gguf),
}


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    return make_inputs(tmp_path_factory.mktemp("kill-inputs"))


def convert_cmd(src: Path, dst: Path, args: list[str]) -> list[str]:
    return [sys.executable, "-m", "tensorfile", "convert", str(src), str(dst), *args, "--force"]


def child_env(named: bool) -> dict[str, str]:
    """The environment of a run with (named) or without the fallbacks: named parts instead of
    O_TMPFILE, and a folder replaced by two renames instead of renameat2's exchange."""
    env = {k: v for k, v in os.environ.items() if k not in (NO_TMPFILE_ENV, NO_EXCHANGE_ENV)}
    return {**env, NO_TMPFILE_ENV: "1", NO_EXCHANGE_ENV: "1"} if named else env


def output_watch(folder: Path) -> Callable[[int], int]:
    """Bytes of output being built in `folder`: part files and folders, and unnamed inodes."""

    def in_parts(path: Path) -> bool:
        return any(part.startswith(".") and part.endswith(".part") for part in path.relative_to(folder).parts)

    return lambda pid: file_bytes(folder, in_parts) + open_unnamed_bytes(pid, folder)


@pytest.mark.parametrize("case", CASES)
def test_kill_convert_at_random_points(case: str, inputs: dict[str, Path], tmp_path: Path) -> None:
    key, name, args, load = CASES[case]
    src = inputs[key]
    source_digest = tree_digest(src)
    ref = tmp_path / "ref" / name
    ref.parent.mkdir()
    done = subprocess.run(convert_cmd(src, ref, args), env=child_env(False), capture_output=True, timeout=300)
    assert done.returncode == 0, done.stderr
    load(ref)
    want = tree_digest(ref)
    total = file_bytes(ref) if ref.is_dir() else ref.stat().st_size
    out = tmp_path / "out"
    out.mkdir()
    dst = out / name
    killed = 0
    count = KILLS_PER_CASE - (case == "hf-gguf")
    for i, point in enumerate(kill_points(case, count, total)):
        named = i % 2 == 1
        if i % 3 == 0:  # a fresh destination, else a complete one --force replaces
            atomic._remove(dst)
        run = run_and_kill(convert_cmd(src, dst, args), point, output_watch(out), child_env(named))
        killed += run.killed
        where = f"{case} kill {i} at {point.describe()} ({'named part' if named else 'O_TMPFILE'})"
        assert run.killed or run.returncode == 0, (where, run.stderr)
        if dst.exists():
            assert tree_digest(dst) == want, where
        assert tree_digest(src) == source_digest, where
        left = temps(out)
        if not named and ref.is_file():
            # an unnamed inode has no name to leave; only a kill between its link and the rename can
            assert all(size >= total for size in left.values()), (where, left)
        again = subprocess.run(
            convert_cmd(src, dst, args), env=child_env(named), capture_output=True, timeout=300
        )
        assert again.returncode == 0, (where, again.stderr)
        assert tree_digest(dst) == want, where
        assert temps(out) == {}, where
    load(dst)
    assert killed >= count - 2  # a point past the end lets the run finish, not more


# --- the moments no random point is likely to hit ------------------------------------------------


@pytest.mark.parametrize(
    ("kind", "named", "fn", "nth", "left"),
    [
        ("file", False, "replace", 1, 1),  # O_TMPFILE linked to its part name, not yet renamed
        ("file", False, "fsync", 1, 0),  # O_TMPFILE complete, not yet named
        ("file", True, "replace", 1, 1),  # named part complete, not yet renamed
        ("folder", True, "replace", 2, 2),  # --force without exchange: the old folder moved aside only
        ("folder", False, "unlink", 1, 1),  # --force: folders swapped, the old one being removed
        ("folder", False, "fsync", 2, 1),  # a shard written, the folder not complete
    ],
)
def test_kill_at_a_step(
    inputs: dict[str, Path], tmp_path: Path, kind: str, named: bool, fn: str, nth: int, left: int
) -> None:
    src = inputs["safetensors"]
    dst = tmp_path / ("model.safetensors" if kind == "file" else "sharded")
    args = ["--max-shard-size", "10MB"] if kind == "folder" else []
    first = subprocess.run(
        convert_cmd(src, dst, args), env=child_env(named), capture_output=True, timeout=120
    )
    assert first.returncode == 0, first.stderr
    want = tree_digest(dst)
    if kind == "folder" and fn == "fsync":
        atomic._remove(dst)
    cmd = armed_cli(fn, nth, "convert", str(src), str(dst), *args, "--force")
    run = subprocess.run(cmd, env=child_env(named), capture_output=True, timeout=120)
    assert run.returncode == -signal.SIGKILL, run.stderr
    assert not dst.exists() or tree_digest(dst) == want
    assert len(temps(tmp_path)) == left, temps(tmp_path)
    again = subprocess.run(
        convert_cmd(src, dst, args), env=child_env(named), capture_output=True, timeout=120
    )
    assert again.returncode == 0, again.stderr
    assert tree_digest(dst) == want and temps(tmp_path) == {}
    if left:
        assert b"removed what killed runs left here" in again.stdout, again.stdout


# --- atomic.py, in this process --------------------------------------------------------------------


@pytest.fixture(params=["O_TMPFILE", "named"])
def mode(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> str:
    if request.param == "named":
        monkeypatch.setenv(NO_TMPFILE_ENV, "1")
    else:
        monkeypatch.delenv(NO_TMPFILE_ENV, raising=False)
    return str(request.param)


def test_atomic_output_names_nothing_until_complete(tmp_path: Path, mode: str) -> None:
    dst = tmp_path / "out.bin"
    with atomic_output(dst) as out:
        out.write(b"x" * 1000)
        during = os.listdir(tmp_path)
        if mode == "named":
            (part,) = during
            assert atomic._PART.fullmatch(part) and f"-{os.getpid()}-" in part
            fd = os.open(tmp_path / part, os.O_RDONLY)
            assert not atomic.try_lock(fd)  # held by the writer: no cleanup may take it
            os.close(fd)
            assert clear_stale_parts(tmp_path) == 0 and os.listdir(tmp_path) == [part]
        else:
            assert during == []  # the inode has no name
    assert os.listdir(tmp_path) == ["out.bin"] and dst.read_bytes() == b"x" * 1000
    assert dst.stat().st_mode & 0o777 == 0o666 & ~atomic.current_umask()


def test_atomic_output_removes_its_part_on_error(tmp_path: Path, mode: str) -> None:
    dst = tmp_path / "out.bin"
    dst.write_bytes(b"old")
    with pytest.raises(RuntimeError), atomic_output(dst) as out:
        out.write(b"new")
        raise RuntimeError("failed")
    assert os.listdir(tmp_path) == ["out.bin"] and dst.read_bytes() == b"old"


def test_o_tmpfile_unsupported_falls_back_to_a_named_part(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(NO_TMPFILE_ENV, raising=False)
    real = os.open

    def no_tmpfile(path: object, flags: int, *args: object, **kwargs: object) -> int:
        if flags & os.O_TMPFILE == os.O_TMPFILE:
            raise OSError(95, "Operation not supported")  # EOPNOTSUPP, as on NFS or vfat
        return real(path, flags, *args, **kwargs)

    monkeypatch.setattr(os, "open", no_tmpfile)
    with atomic_output(tmp_path / "out.bin") as out:
        out.write(b"data")
        assert len(os.listdir(tmp_path)) == 1
    assert os.listdir(tmp_path) == ["out.bin"]


def test_atomic_folder_replaces_only_when_complete(tmp_path: Path) -> None:
    dst = tmp_path / "out"
    dst.mkdir()
    (dst / "old.txt").write_text("old")
    with pytest.raises(RuntimeError), atomic_folder(dst, replace=True) as folder:
        (folder / "new.txt").write_text("new")
        raise RuntimeError("failed")
    assert os.listdir(tmp_path) == ["out"] and os.listdir(dst) == ["old.txt"]
    with atomic_folder(dst, replace=True) as folder:
        (folder / "new.txt").write_text("new")
    assert os.listdir(tmp_path) == ["out"] and os.listdir(dst) == ["new.txt"]


def _dead_writer_part(folder: Path, name: str, directory: bool = False) -> Path:
    """A part as a SIGKILLed writer leaves it: its name, some bytes, and no lock."""
    code = (
        "import os, signal, sys\nfrom pathlib import Path\nfrom tensorfile import atomic\n"
        f"path, fd = atomic._new_part(Path(sys.argv[1]), sys.argv[2], directory={directory})\n"
        "target = path / 'shard' if path.is_dir() else path\n"
        "target.write_bytes(b'x' * 100000)\nprint(path, flush=True)\nos.kill(os.getpid(), signal.SIGKILL)\n"
    )
    run = subprocess.run([sys.executable, "-c", code, str(folder), name], capture_output=True, text=True)
    assert run.returncode == -signal.SIGKILL, run.stderr
    return Path(run.stdout.strip())


def test_stale_parts_of_dead_writers_go_and_live_ones_stay(tmp_path: Path) -> None:
    dead_file = _dead_writer_part(tmp_path, "a.safetensors")
    dead_dir = _dead_writer_part(tmp_path, "shards", directory=True)
    other = _dead_writer_part(tmp_path, "b.safetensors")
    live, fd = atomic._new_part(tmp_path, "a.safetensors", directory=False)  # this process: alive
    foreign = tmp_path / ".a.safetensors.download.part"  # not our pattern
    foreign.write_bytes(b"y")
    link = tmp_path / f".a.safetensors.tf-{os.getpid() + 1}-00000000.part"
    link.symlink_to(dead_file)  # a symlink under our pattern is never followed nor removed
    try:
        freed = clear_stale_parts(tmp_path, "a.safetensors")
        assert freed >= 100000
        assert not dead_file.exists() and live.exists() and other.exists() and dead_dir.exists()
        assert foreign.exists() and link.is_symlink()
        assert clear_stale_parts(tmp_path) >= 200000  # every output's
        assert not other.exists() and not dead_dir.exists() and live.exists()
    finally:
        os.close(fd)
    assert clear_stale_parts(tmp_path) == 0  # an empty part: nothing on disk
    assert not live.exists()


def test_legacy_parts_go_once_idle_beside_the_same_output(tmp_path: Path) -> None:
    old = tmp_path / ".model.safetensors.k2j4h6g8.part"  # tempfile.mkstemp's name, as before
    fresh = tmp_path / ".model.safetensors.a1b2c3d4.part"
    other = tmp_path / ".other.bin.q1w2e3r4.part"
    for path in (old, fresh, other):
        path.write_bytes(b"z" * 5000)
    hour_ago = time.time() - 2 * atomic.LEGACY_PART_AGE
    for path in (old, other):
        os.utime(path, (hour_ago, hour_ago))
    clear_stale_parts(tmp_path, "model.safetensors")
    assert not old.exists() and fresh.exists() and other.exists()


def test_convert_frees_the_space_before_checking_it(inputs: dict[str, Path], tmp_path: Path) -> None:
    from tensorfile.convert import convert

    for _ in range(3):
        _dead_writer_part(tmp_path, "model.safetensors")
    result = convert(inputs["safetensors"], tmp_path / "other.safetensors")
    assert any("removed what killed runs left here" in n for n in result.notes)
    assert sorted(os.listdir(tmp_path)) == ["other.safetensors"]


def test_kill_point_helper_spreads_points() -> None:
    points = kill_points("spread", 200, 1000)
    assert {p.bytes == 0 for p in points} == {True, False}
    assert any(p.bytes == 1000 and p.delay > 0 for p in points)
    assert KillPoint(10, 0.0).describe() == "10 B + 0 ms"
