"""--force replacing an output folder: one renameat2(RENAME_EXCHANGE), so the destination is never
absent; where the swap is unavailable, the two renames still replace it."""

from __future__ import annotations

import ctypes
import errno
import os
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from safetensors.numpy import load_file, save_file

from tensorfile import atomic
from tensorfile.atomic import atomic_folder
from tensorfile.convert import convert

needs_exchange = pytest.mark.skipif(
    atomic._renameat2() is None, reason="renameat2 is Linux-only (glibc 2.28+)"
)


def _old_tree(dst: Path) -> None:
    (dst / "sub").mkdir(parents=True)
    (dst / "old.txt").write_text("old")
    (dst / "sub" / "deep.txt").write_text("old")


def _replace(dst: Path, text: str) -> None:
    with atomic_folder(dst, replace=True) as folder:
        (folder / "new.txt").write_text(text)


def _leftovers(folder: Path) -> list[str]:
    return [n for n in os.listdir(folder) if n.endswith(".part")]


@needs_exchange
def test_exchange_swaps_names_and_inodes(tmp_path: Path) -> None:
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.write_text("file")
    ino_a, ino_b = a.stat().st_ino, b.stat().st_ino
    assert atomic.exchange(a, b)
    assert a.is_file() and b.is_dir()
    assert (a.stat().st_ino, b.stat().st_ino) == (ino_b, ino_a)


@needs_exchange
def test_force_swaps_in_one_step(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    dst = tmp_path / "out"
    _old_tree(dst)
    old_inode = dst.stat().st_ino
    moved: list[tuple[str, str]] = []
    real_replace = os.replace

    def spy(src: str | Path, target: str | Path) -> None:
        moved.append((str(src), str(target)))
        real_replace(src, target)

    monkeypatch.setattr(os, "replace", spy)
    new_inode: list[int] = []
    with atomic_folder(dst, replace=True) as folder:
        (folder / "new.txt").write_text("new")
        new_inode.append(folder.stat().st_ino)
    assert moved == []  # never moved aside: one exchange, no rename
    assert dst.stat().st_ino == new_inode[0] != old_inode
    assert sorted(os.listdir(dst)) == ["new.txt"] and _leftovers(tmp_path) == []


@needs_exchange
def test_destination_is_never_absent(tmp_path: Path) -> None:
    dst = tmp_path / "out"
    _old_tree(dst)
    stop = threading.Event()
    seen = {"present": 0, "absent": 0}

    def poll() -> None:
        while not stop.is_set():
            seen["present" if os.path.lexists(dst) else "absent"] += 1

    reader = threading.Thread(target=poll)
    reader.start()
    try:
        for i in range(150):
            _replace(dst, str(i))
    finally:
        stop.set()
        reader.join()
    assert seen["absent"] == 0 and seen["present"] > 0
    assert (dst / "new.txt").read_text() == "149" and _leftovers(tmp_path) == []


def _failing(code: int) -> Callable[..., int]:
    def renameat2(*_args: object) -> int:
        ctypes.set_errno(code)
        return -1

    return renameat2


@pytest.mark.parametrize("code", [errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, None])
def test_fallback_still_replaces(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, code: int | None) -> None:
    # None: no renameat2 at all (another platform, an old libc)
    monkeypatch.setattr(atomic, "_renameat2", lambda: None if code is None else _failing(code))
    dst = tmp_path / "out"
    _old_tree(dst)
    moved: list[str] = []
    real_replace = os.replace

    def spy(src: str | Path, target: str | Path) -> None:
        moved.append(str(target))
        real_replace(src, target)

    monkeypatch.setattr(os, "replace", spy)
    _replace(dst, "new")
    assert len(moved) == 2 and moved[1] == str(dst)  # moved aside, then the new one in
    assert sorted(os.listdir(dst)) == ["new.txt"] and _leftovers(tmp_path) == []


def test_fallback_by_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(atomic.NO_EXCHANGE_ENV, "1")
    assert not atomic.exchange(tmp_path, tmp_path)
    dst = tmp_path / "out"
    _old_tree(dst)
    _replace(dst, "new")
    assert sorted(os.listdir(dst)) == ["new.txt"] and _leftovers(tmp_path) == []


def test_other_errors_leave_the_old_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(atomic, "_renameat2", lambda: _failing(errno.EACCES))
    dst = tmp_path / "out"
    _old_tree(dst)
    with pytest.raises(OSError, match="Permission denied"):
        _replace(dst, "new")
    assert (dst / "old.txt").read_text() == "old" and _leftovers(tmp_path) == []


@pytest.mark.skipif(sys.platform != "linux", reason="renameat2 is Linux-only")
def test_convert_force_to_a_folder_swaps(tmp_path: Path) -> None:
    src = tmp_path / "model.safetensors"
    arrays = {f"w{i}": np.full((64, 64), i, dtype="<f4") for i in range(4)}
    save_file(arrays, src)
    dst = tmp_path / "sharded"
    convert(src, dst, max_shard_size="20KB")
    before = dst.stat().st_ino
    convert(src, dst, max_shard_size="40KB", force=True)
    assert dst.stat().st_ino != before and _leftovers(tmp_path) == []
    loaded: dict[str, np.ndarray] = {}
    for shard in sorted(dst.glob("*.safetensors")):
        loaded.update(load_file(shard))
    assert set(loaded) == set(arrays)
    for name, value in arrays.items():
        assert (loaded[name] == value).all()
