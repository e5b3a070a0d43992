"""gs:// inputs against a local Google Cloud Storage (gcp-storage-emulator on 127.0.0.1, through
gcsfs, fsspec's official backend): the same zoo as tests/test_zoo.py's S3 runs, a smaller draw of
it plus a 32 MiB safetensors and a 32 MiB .npy. scan of the bucket equals scan of the folder file
by file, every object is read by a few ranged requests (never whole), ETags are recorded so
--resume skips them,
inspect of one object equals inspect of the local file, and a missing bucket is one line, exit 2.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from .gcsstand import GCSStand
from .test_zoo import _cli, _judged, _one_line_error, _run, zoo_files

pytest.importorskip("gcsfs")
pytest.importorskip("gcp_storage_emulator")

BUCKET = "zoo"
FILES = 120


@pytest.fixture(scope="module")
def zoo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return zoo_files(tmp_path_factory.mktemp("gcs-zoo"), FILES)


@pytest.fixture(scope="module")
def gcs(zoo: Path) -> Iterator[GCSStand]:
    with GCSStand(BUCKET) as stand:
        stand.upload(zoo)
        yield stand


def test_scan_of_a_bucket_equals_scan_of_the_folder(gcs: GCSStand, zoo: Path, tmp_path: Path) -> None:
    remote = _run("scan", [f"gs://{BUCKET}"], tmp_path / "gcs.jsonl", "--jobs", "2", env=gcs.env)
    local = _run("scan", [str(zoo)], tmp_path / "local.jsonl", "--jobs", "1")
    assert len(remote) == len(local) == FILES + 2  # every object, each once
    assert _judged(remote, f"gs://{BUCKET}/") == _judged(local, f"{zoo}/")
    for path, record in remote.items():
        io = record["io"]
        assert record["kind"] == "object" and record["etag"], record
        assert 1 <= io["requests"] <= 16, (path, io)
        if "/big/" in path:  # the header, never the 32 MiB
            assert io["bytes"] < 2 << 20, (path, io)
        else:
            assert io["bytes"] <= max(record["size"], 1 << 20), (path, io)
    again = _cli(
        "scan", f"gs://{BUCKET}", "--out", str(tmp_path / "gcs.jsonl"), "--resume", "--json", env=gcs.env
    )
    summary = json.loads(again.stdout)
    assert (summary["skipped"], summary["processed"]) == (FILES + 2, 0), again.stderr


def test_inspect_of_one_object_equals_the_local_file(gcs: GCSStand, zoo: Path) -> None:
    done = _cli("inspect", f"gs://{BUCKET}/big/big.safetensors", "--json", env=gcs.env)
    assert done.returncode == 0, done.stderr
    remote = json.loads(done.stdout)
    local = json.loads(_cli("inspect", str(zoo / "big" / "big.safetensors"), "--json").stdout)
    for document in (remote, local):
        document.pop("path", None)
        document.pop("files", None)
        for tensor in document["tensors"]:
            tensor.pop("file")
    assert remote == local


def test_a_missing_bucket_is_one_line(gcs: GCSStand, tmp_path: Path) -> None:
    out = tmp_path / "none.jsonl"
    _one_line_error(
        _cli("scan", "gs://no-such-bucket", "--out", str(out), env=gcs.env), "gs://no-such-bucket"
    )
    assert not out.exists()


def test_an_unreachable_store_is_one_line_and_nothing_else_on_stderr(tmp_path: Path) -> None:
    """gcsfs retries six times and logs the last failure with its traceback: the CLI still prints
    one line, exit 2. Run in a child whose gcsfs waits are skipped (its backoff is ~30 s a call);
    the child's stderr is the real one, not pytest's log capture."""
    stand = GCSStand(BUCKET)  # not started: its port answers nothing
    out = tmp_path / "none.jsonl"
    child = (
        "import sys\n"
        "from gcsfs import retry\n"
        "async def no_wait(_seconds):\n"
        "    return None\n"
        "retry.asyncio.sleep = no_wait\n"
        "from tensorfile.cli import main\n"
        f"sys.argv = ['tensorfile', 'scan', 'gs://{BUCKET}', '--out', {str(out)!r}]\n"
        "main()\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", child],
        env={**os.environ, **stand.env},
        capture_output=True,
        text=True,
        timeout=120,
    )
    _one_line_error(done, f"gs://{BUCKET}", "cannot reach the object store")
    assert not out.exists()
