"""identify, inspect and scan start no process: every code path runs under an audit hook that ends
the interpreter (exit 97) at the first subprocess, exec, spawn or fork.

HDF5 is where this used to fail: importing h5py runs `uname -p` (h5py indexes platform.uname(),
whose processor field CPython resolves with a subprocess), and each h5py read ran in a forked
child with a deadline. tensorfile.hdf5 now reads the structures itself, and the one remaining
h5py user (convert) imports it through hdf5.import_h5py, which pre-empts the lookup.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from .conftest import CORPUS, HEAVY, ROOT

h5py = pytest.importorskip("h5py")

# Runs `python -m tensorfile ARGS` with the hook installed first.
RUNNER = """
import os, runpy, sys
EVENTS = {"subprocess.Popen", "os.system", "os.posix_spawn", "os.fork", "os.forkpty"}
def hook(event, args):
    if event in EVENTS or event.startswith(("os.exec", "os.spawn")):
        os.write(2, f"PROCESS-START {event} {str(args)[:200]}\\n".encode())
        os._exit(97)
sys.addaudithook(hook)
sys.argv = ["tensorfile", *sys.argv[1:]]
runpy.run_module("tensorfile", run_name="__main__", alter_sys=True)
"""


def _run_hooked(*args: str, code: str = RUNNER) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", code, *args], capture_output=True, text=True, cwd=ROOT, timeout=300
    )


def _assert_no_process(result: subprocess.CompletedProcess[str], ok: tuple[int, ...] = (0, 1)) -> None:
    assert "PROCESS-START" not in result.stderr, result.stderr[-2000:]
    assert result.returncode in ok, (result.returncode, result.stderr[-2000:])


@pytest.fixture(scope="module")
def hdf5_zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """HDF5 layouts h5py writes beyond the Keras fixtures: new-style dense groups and attributes,
    a user block, a Lambda layer's config in a latest-format file."""
    folder = tmp_path_factory.mktemp("hdf5")
    for libver in ("earliest", "latest"):
        with h5py.File(folder / f"{libver}.h5", "w", libver=libver) as h5:
            for i in range(40):
                h5.attrs[f"a{i}"] = i
                h5[f"layers/dense_{i}/vars/0"] = np.zeros((2, 3), "<f4")
            h5.attrs["model_config"] = '{"class_name": "Sequential", "config": {"layers": []}}'
    with h5py.File(folder / "lambda.h5", "w", libver="latest", userblock_size=1024) as h5:
        h5.attrs["model_config"] = (
            '{"class_name": "Sequential", "config": {"layers": '
            '[{"class_name": "Lambda", "config": {"name": "l", '
            '"function": ["4wEAAAAAAAAA", null, null]}}]}}'
        )
    return folder


def test_the_hook_catches_the_uname_subprocess_of_a_plain_h5py_import() -> None:
    code = RUNNER.replace(
        'runpy.run_module("tensorfile", run_name="__main__", alter_sys=True)', "import h5py"
    )
    result = _run_hooked(code=code)
    assert result.returncode == 97 and "PROCESS-START subprocess.Popen" in result.stderr
    assert "uname" in result.stderr


def test_import_h5py_starts_no_process() -> None:
    code = RUNNER.replace(
        'runpy.run_module("tensorfile", run_name="__main__", alter_sys=True)',
        "from tensorfile.hdf5 import import_h5py\nimport platform\nimport_h5py()\n"
        "assert 'processor' not in vars(platform.uname())",
    )
    _assert_no_process(_run_hooked(code=code), ok=(0,))


def test_scan_identify_inspect_hdf5_and_keras_start_no_process(hdf5_zoo: Path) -> None:
    files = sorted(HEAVY.glob("*.h5")) + sorted(HEAVY.glob("*.keras")) + sorted(hdf5_zoo.glob("*.h5"))
    assert len(files) >= 7
    scanned = _run_hooked("scan", "--jobs", "1", "--json", *map(str, files))
    _assert_no_process(scanned)
    assert '"keras-lambda"' in scanned.stdout  # the Lambda behind a user block in a latest-format file
    _assert_no_process(_run_hooked("identify", "--json", *map(str, files)))
    for path in files:
        _assert_no_process(_run_hooked("inspect", "--json", str(path)), ok=(0,))


def test_scan_and_identify_of_every_fixture_start_no_process() -> None:
    paths = [str(HEAVY), str(ROOT / "examples" / "models")]
    _assert_no_process(_run_hooked("scan", "--jobs", "1", *paths))
    _assert_no_process(_run_hooked("identify", *paths))


@pytest.mark.skipif(not (CORPUS / "security").is_dir(), reason="corpus absent")
def test_scan_of_the_corpus_starts_no_process() -> None:
    # Read as bytes by the scanner only; nothing in the corpus is loaded.
    _assert_no_process(_run_hooked("scan", "--jobs", "1", str(CORPUS / "security"), str(CORPUS / "formats")))
