"""Fixtures written by each format's own library, made once per test session in a temp folder.

Light libraries (torch, safetensors, huggingface_hub, gguf, onnx, numpy, joblib, scikit-learn)
write their files here at test time. Heavy ones (tensorflow, keras, coremltools, openvino, flax)
ran once in tests/fixtures/make_heavy_fixtures.py; their small outputs are committed under
tests/fixtures/heavy/.
"""

from __future__ import annotations

import json
import pickle
import random
import shutil
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest


def foreground_signals() -> None:
    """A Popen preexec_fn for tests that press Ctrl-C: the child gets SIGINT as a terminal's
    foreground job does, even when this test run was started in the background (a non-interactive
    shell's `make test &` ignores SIGINT, children inherit that, and Python then keeps ignoring it)."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


HEAVY = Path(__file__).parent / "fixtures" / "heavy"
CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"

# Single files written by the format libraries (the makers below) that the robustness tests share;
# each test adds the makers it needs on top.
LIBRARY_FILES = [
    "pytorch_state_dict",
    "pytorch_legacy",
    "torchscript",
    "safetensors",
    "gguf",
    "npy",
    "npz",
    "joblib",
    "pickle",
]

_MAKERS: dict[str, Callable[[Path], Path]] = {}


def maker(name: str) -> Callable[[Callable[[Path], Path]], Callable[[Path], Path]]:
    def register(fn: Callable[[Path], Path]) -> Callable[[Path], Path]:
        _MAKERS[name] = fn
        return fn

    return register


def train_one_step(model: Any, optimizer: Any, batch: Any) -> None:
    """One backward pass and optimizer step, so the optimizer holds state (moments, buffers) to save."""
    model(batch).sum().backward()
    optimizer.step()


def _tiny_state_dict() -> dict:
    import torch

    torch.manual_seed(0)
    return {
        "embed.weight": torch.randn(16, 8),
        "layers.0.attn.q_proj.weight": torch.randn(8, 8),
        "layers.0.attn.q_proj.bias": torch.zeros(8),
        "layers.0.norm.weight": torch.ones(8, dtype=torch.bfloat16),
        "position_ids": torch.arange(16, dtype=torch.int64),
    }


@maker("pytorch_state_dict")
def _(d: Path) -> Path:
    import torch

    path = d / "state_dict.pt"
    torch.save(_tiny_state_dict(), path)
    return path


@maker("pytorch_hf_bin")
def _(d: Path) -> Path:
    import torch

    folder = d / "hf_bin_repo"
    folder.mkdir()
    torch.save(_tiny_state_dict(), folder / "pytorch_model.bin")
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "hidden_size": 8}))
    return folder / "pytorch_model.bin"


@maker("pytorch_training_checkpoint")
def _(d: Path) -> Path:
    import torch

    model = torch.nn.Linear(4, 3)
    opt = torch.optim.AdamW(model.parameters())
    train_one_step(model, opt, torch.randn(2, 4))
    path = d / "checkpoint.ckpt"
    torch.save(
        {
            "epoch": 3,
            "step": 120,
            "model_state_dict": model.state_dict(),
            "optimizer_state_dict": opt.state_dict(),
            "loss": 0.25,
        },
        path,
    )
    return path


@maker("pytorch_legacy")
def _(d: Path) -> Path:
    import torch

    path = d / "legacy.pth"
    torch.save(_tiny_state_dict(), path, _use_new_zipfile_serialization=False)
    return path


@maker("pytorch_full_module")
def _(d: Path) -> Path:
    import torch

    path = d / "full_module.pt"
    torch.save(torch.nn.Sequential(torch.nn.Linear(2, 2)), path)
    return path


@maker("torchscript")
def _(d: Path) -> Path:
    import torch

    path = d / "scripted.pt"
    torch.jit.save(torch.jit.script(torch.nn.Linear(3, 2)), path)
    return path


@maker("safetensors")
def _(d: Path) -> Path:
    from safetensors.torch import save_file

    path = d / "model.safetensors"
    save_file(_tiny_state_dict(), path, metadata={"format": "pt"})
    return path


@maker("safetensors_sharded_dir")
def _(d: Path) -> Path:
    from huggingface_hub import save_torch_state_dict

    folder = d / "sharded_repo"
    folder.mkdir()
    save_torch_state_dict(_tiny_state_dict(), folder, max_shard_size=400)
    (folder / "config.json").write_text(json.dumps({"model_type": "llama"}))
    return folder


@maker("safetensors_index")
def _(d: Path) -> Path:
    return _MAKERS["safetensors_sharded_dir"](d) / "model.safetensors.index.json"


@maker("gguf")
def _(d: Path) -> Path:
    import gguf
    import numpy as np

    path = d / "tiny.gguf"
    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(1)
    writer.add_context_length(64)
    writer.add_tensor("token_embd.weight", np.random.rand(8, 32).astype(np.float32))
    q = gguf.quants.quantize(np.random.rand(4, 64).astype(np.float32), gguf.GGMLQuantizationType.Q8_0)
    writer.add_tensor("blk.0.attn_q.weight", q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


def _onnx_model(with_constant: bool = True):
    import numpy as np
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    w = numpy_helper.from_array(np.random.rand(4, 3).astype(np.float32), "W")
    nodes = [helper.make_node("MatMul", ["X", "W"], ["Y"])]
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("X", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info("Y", TensorProto.FLOAT, [1, 3])],
        [w],
    )
    model = helper.make_model(
        graph, producer_name="tensorfile-tests", opset_imports=[helper.make_opsetid("", 17)]
    )
    onnx.checker.check_model(model)
    return model


@maker("onnx")
def _(d: Path) -> Path:
    import onnx

    path = d / "tiny.onnx"
    onnx.save_model(_onnx_model(), path)
    return path


@maker("onnx_external")
def _(d: Path) -> Path:
    import onnx

    folder = d / "onnx_ext"
    folder.mkdir()
    path = folder / "model.onnx"
    onnx.save_model(
        _onnx_model(),
        path,
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="model.onnx.data",
        size_threshold=0,
    )
    return path


@maker("npy")
def _(d: Path) -> Path:
    import numpy as np

    path = d / "array.npy"
    np.save(path, np.arange(12, dtype=np.float16).reshape(3, 4))
    return path


@maker("npy_object")
def _(d: Path) -> Path:
    import numpy as np

    path = d / "objects.npy"
    np.save(path, np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    return path


@maker("npz")
def _(d: Path) -> Path:
    import numpy as np

    path = d / "weights.npz"
    np.savez(path, w=np.ones((2, 2), np.float32), b=np.zeros(2, np.int32))
    return path


def _sklearn_model():
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression().fit([[0.0, 1.0], [1.0, 0.0], [0.5, 0.5], [1.0, 1.0]], [0, 1, 0, 1])


@maker("pickle")
def _(d: Path) -> Path:
    path = d / "model.pkl"
    path.write_bytes(pickle.dumps(_sklearn_model(), protocol=4))
    return path


@maker("pickle_protocol0")
def _(d: Path) -> Path:
    path = d / "plain_p0.pkl"
    path.write_bytes(pickle.dumps({"weights": [1.0, 2.0], "name": "x"}, protocol=0))
    return path


@maker("joblib")
def _(d: Path) -> Path:
    import joblib
    import numpy as np

    path = d / "model.joblib"
    joblib.dump({"model": _sklearn_model(), "table": np.ones((64, 4))}, path)
    return path


for _comp in ("zlib", "gzip", "bz2", "lzma", "xz"):

    def _make_compressed(d: Path, comp: str = _comp) -> Path:
        import joblib
        import numpy as np

        path = d / f"model.{comp}.joblib"
        joblib.dump({"table": np.ones((64, 4)), "model": _sklearn_model()}, path, compress=(comp, 3))
        return path

    _MAKERS[f"joblib_{_comp}"] = _make_compressed


@maker("awq_dir")
def _(d: Path) -> Path:
    return _quant_dir(d / "awq_repo", "awq")


@maker("gptq_dir")
def _(d: Path) -> Path:
    return _quant_dir(d / "gptq_repo", "gptq")


@maker("bnb_dir")
def _(d: Path) -> Path:
    return _quant_dir(d / "bnb_repo", "bitsandbytes")


def _quant_dir(folder: Path, method: str) -> Path:
    """Tensor names, shapes and config keys as AutoAWQ / AutoGPTQ / transformers+bitsandbytes save them."""
    import torch
    from safetensors.torch import save_file

    folder.mkdir(parents=True)
    p = "model.layers.0.self_attn.q_proj"
    tensors = {"model.embed_tokens.weight": torch.zeros(32, 64, dtype=torch.float16)}
    if method == "awq":
        tensors |= {
            f"{p}.qweight": torch.zeros(64, 8, dtype=torch.int32),
            f"{p}.qzeros": torch.zeros(1, 8, dtype=torch.int32),
            f"{p}.scales": torch.zeros(1, 64, dtype=torch.float16),
        }
        qc = {"quant_method": "awq", "bits": 4, "group_size": 64, "zero_point": True, "version": "gemm"}
    elif method == "gptq":
        tensors |= {
            f"{p}.qweight": torch.zeros(8, 64, dtype=torch.int32),
            f"{p}.qzeros": torch.zeros(1, 8, dtype=torch.int32),
            f"{p}.scales": torch.zeros(1, 64, dtype=torch.float16),
            f"{p}.g_idx": torch.zeros(64, dtype=torch.int32),
        }
        qc = {"quant_method": "gptq", "bits": 4, "group_size": 64, "desc_act": False, "sym": True}
    else:
        tensors |= {
            f"{p}.weight": torch.zeros(2048, 1, dtype=torch.uint8),
            f"{p}.weight.absmax": torch.zeros(64, dtype=torch.float32),
            f"{p}.weight.quant_map": torch.zeros(16, dtype=torch.float32),
            f"{p}.weight.quant_state.bitsandbytes__nf4": torch.zeros(100, dtype=torch.uint8),
        }
        qc = {
            "quant_method": "bitsandbytes",
            "load_in_4bit": True,
            "bnb_4bit_quant_type": "nf4",
            "bnb_4bit_use_double_quant": False,
        }
    save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
    (folder / "config.json").write_text(json.dumps({"model_type": "llama", "quantization_config": qc}))
    return folder


@maker("diffusers_dir")
def _(d: Path) -> Path:
    import torch
    from safetensors.torch import save_file

    folder = d / "sd_pipeline"
    (folder / "unet").mkdir(parents=True)
    (folder / "vae").mkdir()
    (folder / "model_index.json").write_text(
        json.dumps(
            {
                "_class_name": "StableDiffusionPipeline",
                "_diffusers_version": "0.30.0",
                "unet": ["diffusers", "UNet2DConditionModel"],
                "vae": ["diffusers", "AutoencoderKL"],
                "safety_checker": [None, None],
            }
        )
    )
    for comp in ("unet", "vae"):
        (folder / comp / "config.json").write_text(
            json.dumps({"_class_name": "X", "_diffusers_version": "0.30.0"})
        )
        save_file({"w": torch.zeros(2, 2)}, folder / comp / "diffusion_pytorch_model.safetensors")
    return folder


@pytest.fixture(scope="session")
def made(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """made("gguf") -> path of a file (or folder) written by that format's own library."""
    root = tmp_path_factory.mktemp("made")
    cache: dict[str, Path] = {}

    def get(name: str) -> Path:
        if name not in cache:
            folder = root / name
            folder.mkdir()
            cache[name] = _MAKERS[name](folder)
        return cache[name]

    return get


@pytest.fixture
def renamed(tmp_path: Path) -> Callable[[Path, str], Path]:
    """A copy of a fixture file under a misleading name."""

    def copy(src: Path, name: str) -> Path:
        dst = tmp_path / name
        shutil.copyfile(src, dst)
        return dst

    return copy


def heavy(rel: str) -> Path:
    path = HEAVY / rel
    if not path.exists():
        pytest.fail(f"committed fixture {rel} is missing: run tests/fixtures/make_heavy_fixtures.py")
    return path


ROOT = Path(__file__).resolve().parents[1]


def run_cli(
    *args: str, cwd: Path | None = None, timeout: float = 120, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """`python -m tensorfile ARGS` in a fresh process (from the repository root unless `cwd`), as text."""
    return subprocess.run(
        [sys.executable, "-m", "tensorfile", *args],
        capture_output=True,
        text=True,
        cwd=cwd or ROOT,
        timeout=timeout,
        env=env,
    )


def cli_json(*args: str) -> Any:
    """The JSON a successful `python -m tensorfile ARGS` prints (ARGS include --json)."""
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


ReadCounter = Callable[[], list[int]]  # the count_file_reads fixture


@pytest.fixture
def count_file_reads(monkeypatch: pytest.MonkeyPatch) -> ReadCounter:
    """count_file_reads() -> a list that gets the length of every FileSource.read_at from then on.

    For tests that a reader skips the weights; counting starts at the call, so writing the test
    file beforehand is not counted.
    """
    from tensorfile.source import FileSource

    def start() -> list[int]:
        reads: list[int] = []
        original = FileSource.read_at

        def counting(self: FileSource, offset: int, length: int) -> bytes:
            data = original(self, offset, length)
            reads.append(len(data))
            return data

        monkeypatch.setattr(FileSource, "read_at", counting)
        return reads

    return start


def inspect_mutations(data: bytes, seed: Any, count: int, folder: Path, suffix: str) -> dict[str, int]:
    """inspect() `count` damaged copies of `data`, written to `folder` as m<i><suffix>: every third
    cut short at a random length, the others with 1 to 5 random bytes changed.

    How many gave a report and how many a TensorfileError; any other exception escapes.
    """
    from tensorfile.errors import TensorfileError
    from tensorfile.inspection import inspect

    rng = random.Random(seed)
    outcomes = {"report": 0, "error": 0}
    for i in range(count):
        mutated = bytearray(data)
        if i % 3 == 0:
            mutated = mutated[: rng.randrange(1, len(mutated))]
        else:
            for _ in range(rng.randrange(1, 6)):
                pos = rng.randrange(len(mutated))
                mutated[pos] = rng.getrandbits(8)
        path = folder / f"m{i}{suffix}"
        path.write_bytes(bytes(mutated))
        try:
            inspect(path)
            outcomes["report"] += 1
        except TensorfileError:
            outcomes["error"] += 1
    return outcomes
