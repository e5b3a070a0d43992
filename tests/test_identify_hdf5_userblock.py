"""HDF5 behind a user block of any size libhdf5 allows (0, 512, 1024, … up to the file size).

identify found the superblock only within the first 32 KiB; h5py writes it after user blocks of
64 KiB and more. identify, inspect and scan must all find it, with one 8-byte read per candidate
offset, and a source other than a local file is searched only up to a cap.
"""

from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest

from tensorfile.formats import keras
from tensorfile.identification import identify
from tensorfile.inspection import inspect
from tensorfile.probe import FileProbe
from tensorfile.scan import scan_file
from tensorfile.source import BytesSource, FileSource

from .conftest import ReadCounter

h5py = pytest.importorskip("h5py")

_CONFIG = {"class_name": "Sequential", "config": {"layers": [{"class_name": "Lambda", "config": {}}]}}


def _keras_file(path: Path, userblock: int) -> np.ndarray:
    kernel = np.arange(12, dtype="<f4").reshape(3, 4)
    with h5py.File(path, "w", userblock_size=userblock, libver="latest") as h5:
        h5.attrs["keras_version"] = "2.15.0"
        h5.attrs["backend"] = "tensorflow"
        h5.attrs["model_config"] = json.dumps(_CONFIG)
        h5["model_weights/dense/kernel:0"] = kernel
    return kernel


@pytest.mark.parametrize("userblock", [65536, 1 << 20, 1 << 22])
def test_big_user_blocks_identify_inspect_and_scan(tmp_path: Path, userblock: int) -> None:
    path = tmp_path / "model.h5"
    kernel = _keras_file(path, userblock)
    ident = identify(path)
    assert ident.format == "keras-h5", ident
    assert f"after a {userblock}-byte user block" in ident.evidence[0]
    assert ident.details["variant"] == "full-model" and ident.details["lambda_layers"] == 1
    info = inspect(path)
    (tensor,) = info.tensors
    assert tensor.shape == (3, 4) and tensor.offset is not None and tensor.offset > userblock
    with path.open("rb") as fh:
        fh.seek(tensor.offset)
        assert fh.read(tensor.nbytes) == kernel.tobytes()
    result = scan_file(path)
    assert result.format == "keras-h5" and result.verdict("high") == "unsafe"
    assert any(f.rule == "keras-lambda" for f in result.findings)


def test_a_pickle_in_a_big_user_block_is_scanned_as_content(tmp_path: Path) -> None:
    # the user block is the start of the file for pickle.load and torch.load: scanned too
    path = tmp_path / "polyglot.h5"
    _keras_file(path, 1 << 17)
    payload = pickle.dumps({"x": 1}, protocol=2)[:-1] + b"cos\nsystem\nX\x04\x00\x00\x00true\x85R."
    with path.open("r+b") as fh:
        fh.write(payload)
    with h5py.File(path, "r") as h5:  # still a valid HDF5 file for h5py
        assert h5["model_weights/dense/kernel:0"].shape == (3, 4)
    result = scan_file(path)
    rules = {f.rule: f for f in result.findings}
    assert "keras-lambda" in rules
    assert any(f.severity == "critical" and "os.system" in f.evidence for f in result.findings)


def test_each_candidate_costs_one_eight_byte_read(tmp_path: Path, count_file_reads: ReadCounter) -> None:
    path = tmp_path / "sparse.bin"
    with path.open("wb") as fh:  # 64 GiB of holes: no HDF5 anywhere
        fh.truncate(1 << 36)
    reads = count_file_reads()
    probe = FileProbe(path)
    try:
        assert keras.superblock_offset(probe) is None
    finally:
        probe.source.close()
    past_head = reads[1:]  # the first read is the 64 KiB head
    assert past_head == [8] * len(past_head)
    assert len(past_head) == 36 - 16  # 64 KiB, 128 KiB, … 32 GiB: one candidate per power of two


class _Remote(BytesSource):
    """A large source that is not a local file, counting its reads (as a Range source pays them)."""

    def __init__(self, size: int, superblock_at: int) -> None:
        super().__init__(b"", "remote.h5")
        self.size, self.at, self.reads = size, superblock_at, 0

    def read_at(self, offset: int, length: int) -> bytes:
        self.reads += 1
        if offset == self.at:
            return keras.HDF5_MAGIC[:length]
        return bytes(min(length, max(0, self.size - offset)))

    def close(self) -> None:
        pass


def test_remote_sources_search_a_bounded_number_of_candidates(tmp_path: Path) -> None:
    near, far = _Remote(1 << 40, 1 << 20), _Remote(1 << 40, 1 << 30)
    assert keras.superblock_offset(FileProbe(tmp_path / "near.h5", near)) == 1 << 20
    assert keras.superblock_offset(FileProbe(tmp_path / "far.h5", far)) is None  # past the cap
    assert far.reads == 1 + keras._REMOTE_CANDIDATES
    assert not isinstance(near, FileSource)
