"""Every source kind the GGUF writer takes gives the same file: a safetensors folder (single or
sharded), pickled `pytorch_model.bin` read by our own unpickler (torch never imported), and one
weights file with its config.json beside it."""

from __future__ import annotations

import hashlib
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tensorfile.convert.run import convert

from .gguf_models import make_model

CASE = "llama-gqa"


def _sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    work = tmp_path_factory.mktemp("src")
    folder = make_model(CASE, work / "safetensors" / "model")
    out = work / "ref.gguf"
    convert(folder, out, quant="Q4_K_M")
    return folder, _sha(out)


def _copy_without_weights(folder: Path, dest: Path) -> Path:
    """The same folder name (general.name comes from it), weights left to the caller."""
    shutil.copytree(folder, dest, ignore=shutil.ignore_patterns("*.safetensors"))
    return dest


def test_pickled_bin_without_torch(reference: tuple[Path, str], tmp_path: Path) -> None:
    torch = pytest.importorskip("torch")
    from safetensors.torch import load_file

    folder, want = reference
    dest = _copy_without_weights(folder, tmp_path / "bin" / folder.name)
    torch.save(load_file(str(folder / "model.safetensors")), dest / "pytorch_model.bin")
    out = tmp_path / "bin.gguf"
    code = (
        "import sys; from tensorfile.convert.run import convert; "
        f"convert({str(dest)!r}, {str(out)!r}, quant='Q4_K_M'); print('torch' in sys.modules)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert proc.stdout.strip() == "False"
    assert _sha(out) == want


def test_sharded_safetensors(reference: tuple[Path, str], tmp_path: Path) -> None:
    from safetensors.numpy import load_file, save_file

    folder, want = reference
    dest = _copy_without_weights(folder, tmp_path / "sharded" / folder.name)
    tensors = load_file(str(folder / "model.safetensors"))
    names = sorted(tensors)
    halves = [names[: len(names) // 2], names[len(names) // 2 :]]
    weight_map = {}
    for i, part in enumerate(halves, 1):
        shard = f"model-{i:05d}-of-00002.safetensors"
        save_file({n: tensors[n] for n in part}, str(dest / shard), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(part, shard))
    index = {"metadata": {}, "weight_map": weight_map}
    (dest / "model.safetensors.index.json").write_text(json.dumps(index), encoding="utf-8")
    out = tmp_path / "sharded.gguf"
    convert(dest, out, quant="Q4_K_M")
    assert _sha(out) == want


def test_single_weights_file_with_config_beside(reference: tuple[Path, str], tmp_path: Path) -> None:
    folder, want = reference
    out = tmp_path / "file.gguf"
    convert(folder / "model.safetensors", out, quant="Q4_K_M")
    assert _sha(out) == want


def test_worker_processes_write_the_same_bytes(
    reference: tuple[Path, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tensorfile.convert.gguf import write

    folder, want = reference
    serial_q8 = tmp_path / "q8-serial.gguf"
    convert(folder, serial_q8, quant="Q8_0")
    serial = tmp_path / "requant-serial.gguf"
    convert(serial_q8, serial, quant="Q4_K_M")
    started: list[int] = []

    class Recording(write.EncodeWorkers):
        def submit(self, *args: object, **kwargs: object):  # type: ignore[no-untyped-def]
            started.append(1)
            return super().submit(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(write, "EncodeWorkers", Recording)
    monkeypatch.setattr(write, "POOL_MIN_VALUES", 0)
    monkeypatch.setenv("TENSORFILE_NO_KERNEL", "1")  # the pool is the numpy quantizers' path
    monkeypatch.setenv("TENSORFILE_QUANT_WORKERS", "2")
    out = tmp_path / "pooled.gguf"
    convert(folder, out, quant="Q4_K_M")
    assert _sha(out) == want
    pooled = tmp_path / "requant-pooled.gguf"  # kept tensors copied from the map between pooled ones
    convert(serial_q8, pooled, quant="Q4_K_M")
    assert _sha(pooled) == _sha(serial)
    assert len(started) > 10  # chunks really went to the workers


def test_progress_hears_every_tensor_by_name(reference: tuple[Path, str], tmp_path: Path) -> None:
    import gguf

    folder, _ = reference

    class Recorder:
        def __init__(self) -> None:
            self.names: list[str] = []
            self.bytes = 0
            self.total = 0

        def start(self, total: int) -> Recorder:
            self.total = total
            return self

        def __call__(self, n: int) -> None:
            self.bytes += n

        def tensor(self, name: str) -> None:
            self.names.append(name)

    seen = Recorder()
    out = tmp_path / "named.gguf"
    convert(folder, out, quant="Q4_K_M", progress=seen.start)
    written = [t.name for t in gguf.GGUFReader(str(out)).tensors]
    assert seen.names == written and seen.bytes == seen.total > 0
