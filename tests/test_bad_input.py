"""Bad input: one clear line naming the path, exit code 2 for unreadable paths, never a traceback."""

from __future__ import annotations

import os
import random
import subprocess
import zipfile
from collections.abc import Callable
from pathlib import Path

import pytest

import tensorfile
from tensorfile.errors import InputError

from .conftest import LIBRARY_FILES, run_cli


def assert_one_line_error(proc: subprocess.CompletedProcess[str], path: str, words: str) -> None:
    assert proc.returncode == 2, proc
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert path in lines[0] and words in lines[0], lines[0]


def test_empty_file(tmp_path: Path) -> None:
    path = tmp_path / "empty.safetensors"
    path.write_bytes(b"")
    result = tensorfile.identify(path)
    assert result.format == "unknown" and result.reason == "empty file"


@pytest.mark.parametrize("data", [b"\x00", b"P", b"\x80", b"G", b"{"])
def test_one_byte(tmp_path: Path, data: bytes) -> None:
    path = tmp_path / "one.bin"
    path.write_bytes(data)
    result = tensorfile.identify(path)
    assert result.format == "unknown"
    assert "too small" in (result.reason or "")


def test_random_bytes(tmp_path: Path) -> None:
    rng = random.Random(1234)
    for i in range(200):
        path = tmp_path / f"r{i}.pt"
        path.write_bytes(bytes(rng.getrandbits(8) for _ in range(rng.randrange(1, 3000))))
        result = tensorfile.identify(path)  # must not raise
        assert result.format in ("unknown", "pickle") or result.confidence < 1.0, (i, result)


FIXTURES_TO_TRUNCATE = [*LIBRARY_FILES, "onnx", "joblib_gzip"]


@pytest.mark.parametrize("fixture", FIXTURES_TO_TRUNCATE)
def test_truncated_files_never_crash(made: Callable[[str], Path], tmp_path: Path, fixture: str) -> None:
    data = made(fixture).read_bytes()
    cuts = sorted(
        {1, 2, 4, 8, 9, 16, 24, 31, 64, 100, 255, 512, len(data) // 3, len(data) // 2, len(data) - 1}
    )
    for cut in cuts:
        if cut >= len(data):
            continue
        path = tmp_path / f"cut{cut}{made(fixture).suffix}"
        path.write_bytes(data[:cut])
        result = tensorfile.identify(path)
        assert isinstance(result, tensorfile.Identification)


@pytest.mark.parametrize("fixture", FIXTURES_TO_TRUNCATE)
def test_bit_flips_never_crash(made: Callable[[str], Path], tmp_path: Path, fixture: str) -> None:
    data = bytearray(made(fixture).read_bytes())
    rng = random.Random(fixture)
    for i in range(40):
        mutated = bytearray(data)
        for _ in range(rng.randrange(1, 8)):
            pos = rng.randrange(min(len(mutated), 4096))
            mutated[pos] = rng.getrandbits(8)
        path = tmp_path / f"flip{i}"
        path.write_bytes(bytes(mutated))
        tensorfile.identify(path)


def test_truncated_safetensors_header_warns(tmp_path: Path) -> None:
    path = tmp_path / "cut.safetensors"
    path.write_bytes((10_000).to_bytes(8, "little") + b'{"a": {"dtype": "F32", "shape": [2], "data_offsets"')
    result = tensorfile.identify(path)
    assert result.format == "safetensors"
    assert any("truncated" in w for w in result.warnings)


def test_header_larger_than_file_and_absurd_counts(tmp_path: Path) -> None:
    path = tmp_path / "lie.gguf"
    path.write_bytes(
        b"GGUF" + (3).to_bytes(4, "little") + (2**62).to_bytes(8, "little") + (5).to_bytes(8, "little")
    )
    result = tensorfile.identify(path)
    assert result.format == "gguf"
    assert any("implausible" in w for w in result.warnings)


def test_empty_directory(tmp_path: Path) -> None:
    folder = tmp_path / "nothing"
    folder.mkdir()
    result = tensorfile.identify(folder)
    assert result.format == "unknown" and result.reason == "empty directory"
    proc = run_cli("identify", str(folder))
    assert proc.returncode == 1


def test_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "nope.safetensors"
    with pytest.raises(InputError, match="no such file"):
        tensorfile.identify(missing)
    assert_one_line_error(run_cli("identify", str(missing)), str(missing), "no such file")


def test_unreadable_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    # Tests run as root, where chmod 000 does not stop reads: make open() refuse as it would.
    path = tmp_path / "locked.pt"
    path.write_bytes(b"\x80\x02}q\x00.")
    real_open = os.open

    def refusing_open(p: object, *args: object, **kwargs: object) -> int:
        if str(p) == str(path):
            raise PermissionError(13, "Permission denied")
        return real_open(p, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(os, "open", refusing_open)
    with pytest.raises(InputError, match="permission denied"):
        tensorfile.identify(path)
    from click.testing import CliRunner

    from tensorfile.cli import app

    outcome = CliRunner().invoke(app, ["identify", str(path)])
    assert outcome.exit_code == 2
    assert outcome.stderr.strip() == f"tensorfile: error: {path}: permission denied"


def test_fifo(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.pt"
    os.mkfifo(fifo)
    with pytest.raises(InputError, match="FIFO"):
        tensorfile.identify(fifo)
    assert_one_line_error(run_cli("identify", str(fifo)), str(fifo), "FIFO")


def test_device() -> None:
    with pytest.raises(InputError, match="character device"):
        tensorfile.identify("/dev/null")
    assert_one_line_error(run_cli("identify", "/dev/zero"), "/dev/zero", "character device")


def test_symlink_loop(tmp_path: Path) -> None:
    a, b = tmp_path / "a.pt", tmp_path / "b.pt"
    a.symlink_to(b)
    b.symlink_to(a)
    with pytest.raises(InputError, match="symbolic link loop"):
        tensorfile.identify(a)
    assert_one_line_error(run_cli("identify", str(a)), str(a), "symbolic link loop")


def test_broken_symlink(tmp_path: Path) -> None:
    link = tmp_path / "dangling.safetensors"
    link.symlink_to(tmp_path / "gone")
    assert_one_line_error(run_cli("identify", str(link)), str(link), "broken symbolic link")


def test_symlink_loop_inside_recursive_walk(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "loop").symlink_to(tmp_path / "d")
    (tmp_path / "d" / "x.npy").write_bytes(
        b"\x93NUMPY\x01\x00v\x00{'descr': '<f4', 'fortran_order': False, 'shape': (0,), }" + b" " * 57 + b"\n"
    )
    proc = run_cli("identify", "-r", "--json", str(tmp_path / "d"))
    assert "Traceback" not in proc.stderr
    assert proc.returncode in (0, 1, 2)


def test_zip_with_lying_central_directory(made: Callable[[str], Path], tmp_path: Path) -> None:
    data = bytearray(made("pytorch_state_dict").read_bytes())
    central = data.find(b"PK\x01\x02")
    data[central : central + 4] = b"LIE!"  # the central directory no longer points at real entries
    path = tmp_path / "lying.pt"
    path.write_bytes(bytes(data))
    result = tensorfile.identify(path)
    assert result.format == "pytorch-zip"  # still recognised from the local headers
    assert result.confidence < 1.0
    assert any("central directory" in w for w in result.warnings)


def test_zip_that_is_garbage_after_signature(tmp_path: Path) -> None:
    path = tmp_path / "broken.pt"
    path.write_bytes(b"PK\x03\x04" + os.urandom(200) + b"PK\x05\x06" + b"\xff" * 18)
    result = tensorfile.identify(path)
    assert result.format == "unknown"
    assert "zip" in (result.reason or "")


def test_unknown_zip(tmp_path: Path) -> None:
    path = tmp_path / "docs.zip"
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("readme.txt", "hello")
    result = tensorfile.identify(path)
    assert result.format == "unknown"
    assert "zip archive with 1 entries" in (result.reason or "")


def test_glob_without_match_is_an_error(tmp_path: Path) -> None:
    proc = run_cli("identify", str(tmp_path / "*.gguf"))
    assert_one_line_error(proc, "*.gguf", "no file matches")


def test_bad_usage_exit_code() -> None:
    proc = run_cli("identify", "--no-such-option", "x")
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr


def test_errors_and_results_mix_in_json(made: Callable[[str], Path], tmp_path: Path) -> None:
    import json

    proc = run_cli("identify", "--json", str(made("npy")), str(tmp_path / "missing.pt"))
    assert proc.returncode == 2
    doc = json.loads(proc.stdout)
    assert doc["summary"] == {"identified": 1, "unknown": 0, "errors": 1}
    assert doc["errors"][0]["error"] == "no such file or directory"
    assert proc.stderr == ""
