"""convert from PyTorch files written by torch.save itself (zip and legacy formats), read back with
safetensors and compared with what torch.load(weights_only=True) returns from the same file.

Covers state dicts of real modules, tied weights and views, training and Lightning checkpoints,
--dtype casts bit for bit against torch's .to(), selection and renaming, sharded folders, hostile
pickles (refused, and with --trust converted without running anything), bad input and atomicity.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import zipfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tensorfile.convert import convert, diff
from tensorfile.errors import TensorfileError, UnsupportedError, UsageError

from .pickle_asm import Asm

torch = pytest.importorskip("torch")  # a test dependency: `make test` installs torch==2.13.0
safetensors_torch = pytest.importorskip("safetensors.torch")
from safetensors import safe_open  # noqa: E402 - after the importorskip above

nn = torch.nn
ROOT = Path(__file__).resolve().parents[1]
FORMATS = pytest.mark.parametrize("legacy", [False, True], ids=["zip", "legacy"])


# --- helpers -------------------------------------------------------------------------------------


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tensorfile", *args], capture_output=True, text=True, cwd=cwd, timeout=120
    )


def assert_one_line_error(proc: subprocess.CompletedProcess[str], *words: str) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def save(obj: Any, path: Path, legacy: bool = False) -> Path:
    torch.save(obj, path, _use_new_zipfile_serialization=not legacy)
    return path


def load_st(path: Path) -> dict[str, Any]:
    return safetensors_torch.load_file(path)


def st_metadata(path: Path) -> dict[str, str]:
    with safe_open(path, "pt") as f:
        return f.metadata() or {}


def leftovers(folder: Path) -> list[str]:
    """Temporary files or folders a conversion may leave beside its destination."""
    return sorted(p.name for p in folder.iterdir() if ".part" in p.name or p.name.endswith(".old"))


def assert_same_tensor(got: Any, ref: Any, name: str) -> None:
    assert got.dtype == ref.dtype, (name, got.dtype, ref.dtype)
    assert tuple(got.shape) == tuple(ref.shape), (name, got.shape, ref.shape)
    assert got.is_contiguous(), name
    assert torch.equal(got, ref), name


def assert_matches_torch(dst: Path, src: Path, aliases: dict[str, str] | None = None) -> None:
    """Every tensor torch.load returns is in dst (stored, or an alias of a stored one), equal."""
    ref = torch.load(src, weights_only=True)
    got = load_st(dst)
    aliases = aliases or {}
    assert set(got) | set(aliases) == set(ref), "names differ"
    assert not set(got) & set(aliases)
    for name, value in ref.items():
        assert_same_tensor(got[aliases.get(name, name)], value, name)


def storage_bytes(tensors: dict[str, Any]) -> int:
    return sum(t.numel() * t.element_size() for t in tensors.values())


def rewrite_zip(
    src: Path, dst: Path, edit: Callable[[str, bytes], bytes | None] = lambda _name, data: data
) -> Path:
    """A copy of a torch zip with members edited (None drops the member)."""
    with zipfile.ZipFile(src) as zin, zipfile.ZipFile(dst, "w") as zout:
        for info in zin.infolist():
            data = edit(info.filename, zin.read(info))
            if data is not None:
                zout.writestr(info, data)
    return dst


# --- models --------------------------------------------------------------------------------------


class Net(nn.Module):
    """Parameters and buffers of every dtype a state dict commonly holds, a 0-d and an empty one."""

    def __init__(self) -> None:
        super().__init__()
        self.embed = nn.Embedding(10, 4)
        self.proj = nn.Linear(4, 6)
        self.norm = nn.BatchNorm1d(6)  # running stats and a 0-d int64 num_batches_tracked
        self.head = nn.Linear(6, 3).to(torch.bfloat16)
        self.gate = nn.Parameter(torch.randn(3, 2, dtype=torch.float16))
        self.register_buffer("position_ids", torch.arange(10))
        self.register_buffer("mask", torch.tensor([True, False, True, True]))
        self.register_buffer("temperature", torch.tensor(0.7))
        self.register_buffer("unused", torch.empty(0, 4))
        self.register_buffer("counts", torch.arange(6, dtype=torch.int32))
        self.register_buffer("pixels", torch.arange(5, dtype=torch.uint8))
        self.register_buffer("precise", torch.randn(2, dtype=torch.float64))


def net_state_dict() -> dict[str, Any]:
    torch.manual_seed(0)
    net = Net()
    net.train()
    net.norm(torch.randn(5, 6))  # moves the running stats off their initial values
    return net.state_dict()


class TiedLM(nn.Module):
    """lm_head.weight is embed's weight, as in most language models."""

    def __init__(self, embed_name: str) -> None:
        super().__init__()
        self.embed_name = embed_name
        self.body = nn.ModuleDict({embed_name: nn.Embedding(12, 4)})
        self.norm = nn.LayerNorm(4)
        self.lm_head = nn.Linear(4, 12, bias=False)
        self.lm_head.weight = self.body[embed_name].weight


# --- 1. state dicts ------------------------------------------------------------------------------


@FORMATS
def test_state_dict_of_a_real_module(tmp_path: Path, legacy: bool) -> None:
    sd = net_state_dict()
    dtypes = {v.dtype for v in sd.values()}
    assert {torch.float32, torch.float16, torch.bfloat16, torch.int64, torch.bool} <= dtypes
    src = save(sd, tmp_path / "net.pt", legacy)
    dst = tmp_path / "net.safetensors"
    # trust for legacy: test_legacy_converts_without_trust checks that it is not needed
    result = convert(src, dst, trust=legacy)
    assert_matches_torch(dst, src)
    assert result.source_format == ("pytorch-legacy" if legacy else "pytorch-zip")
    assert result.tensor_count == len(sd)
    assert result.total_bytes == storage_bytes(sd)
    assert result.aliases == {}
    assert st_metadata(dst).get("format") == "pt"
    assert diff(src, dst, trust=legacy).equal


def test_legacy_converts_without_trust(tmp_path: Path) -> None:
    """A plain legacy torch.save of tensors imports nothing beyond tensor rebuilds: no --trust needed."""
    sd = {"w": torch.randn(3, 4), "ids": torch.arange(5)}
    src = save(sd, tmp_path / "legacy.pth", legacy=True)
    dst = tmp_path / "legacy.safetensors"
    proc = run_cli("convert", str(src), str(dst))
    assert proc.returncode == 0, proc.stderr
    assert_matches_torch(dst, src)


def test_bf16_ones_need_no_trust(tmp_path: Path) -> None:
    """A bf16 model's norm weights are ones: storage bytes 80 3f 80 3f…, which only look like the
    start of a pickle (PROTO 63). Storages are data, not pickles, and must not block the conversion."""
    model = nn.Sequential(nn.Linear(4, 4), nn.LayerNorm(4)).to(torch.bfloat16)
    sd = model.state_dict()
    src = save(sd, tmp_path / "bf16_model.bin")
    dst = tmp_path / "bf16_model.safetensors"
    proc = run_cli("convert", str(src), str(dst))
    assert proc.returncode == 0, proc.stderr
    assert_matches_torch(dst, src)


def test_cli_json_summary(tmp_path: Path) -> None:
    sd = net_state_dict()
    src = save(sd, tmp_path / "net.bin")
    dst = tmp_path / "out.safetensors"
    proc = run_cli("convert", "--json", str(src), str(dst))
    assert proc.returncode == 0, proc.stderr
    assert proc.stderr == ""
    doc = json.loads(proc.stdout)  # one JSON document and nothing else on stdout
    assert doc["source_format"] == "pytorch-zip" and doc["target"] == "safetensors"
    assert doc["dtype"] is None
    assert doc["tensor_count"] == len(sd)
    assert doc["total_bytes"] == storage_bytes(sd)
    assert doc["files"] == [{"path": str(dst), "size_bytes": dst.stat().st_size, "tensors": len(sd)}]
    assert doc["aliases"] == {}
    assert isinstance(doc["notes"], list)
    assert_matches_torch(dst, src)
    # the table form names the destination and the tensor count
    again = run_cli("convert", str(src), str(tmp_path / "again.safetensors"))
    assert again.returncode == 0, again.stderr
    assert f"{len(sd)} tensors" in " ".join(again.stdout.split())  # rich wraps long temp paths


def test_output_file_permissions_follow_umask(tmp_path: Path) -> None:
    """Converted weights are readable like any file the user writes (torch.save, save_file give 0644)."""
    src = save({"w": torch.ones(2)}, tmp_path / "w.pt")
    umask = os.umask(0o022)
    os.umask(umask)
    convert(src, tmp_path / "w.safetensors")
    convert(src, tmp_path / "folder")
    assert (tmp_path / "w.safetensors").stat().st_mode & 0o777 == 0o666 & ~umask
    assert (tmp_path / "folder").stat().st_mode & 0o777 == 0o777 & ~umask
    assert (tmp_path / "folder" / "model.safetensors").stat().st_mode & 0o777 == 0o666 & ~umask


# --- 2. tied weights and views -------------------------------------------------------------------


@FORMATS
@pytest.mark.parametrize("embed_name", ["embed", "wte"])
def test_tied_weights_stored_once(tmp_path: Path, legacy: bool, embed_name: str) -> None:
    torch.manual_seed(1)
    model = TiedLM(embed_name)
    sd = model.state_dict()
    tied = {f"body.{embed_name}.weight", "lm_head.weight"}
    kept = min(tied)  # the sorted-first name, as safetensors' save_model keeps
    (alias,) = tied - {kept}
    src = save(sd, tmp_path / "tied.bin", legacy)
    dst = tmp_path / "tied.safetensors"
    result = convert(src, dst, trust=legacy)

    assert result.aliases == {alias: kept}
    assert result.tensor_count == len(sd) - 1
    assert result.total_bytes == storage_bytes(sd) - sd[alias].numel() * 4
    assert any("alias" in note for note in result.notes), result.notes
    stored = load_st(dst)
    assert kept in stored and alias not in stored
    assert st_metadata(dst)[alias] == kept and st_metadata(dst)["format"] == "pt"
    assert_matches_torch(dst, src, {alias: kept})

    fresh = TiedLM(embed_name)
    missing, unexpected = safetensors_torch.load_model(fresh, dst)
    assert not missing and not unexpected
    assert fresh.lm_head.weight is fresh.body[embed_name].weight
    for name, value in fresh.state_dict().items():
        assert torch.equal(value, sd[name]), name

    report = diff(src, dst, trust=legacy)
    assert report.equal and {t.name for t in report.tensors} == set(sd)
    assert {t.status for t in report.tensors} == {"identical"}


@FORMATS
def test_views_offsets_and_strides(tmp_path: Path, legacy: bool) -> None:
    x = torch.arange(60, dtype=torch.float32).reshape(6, 10)
    sd = {
        "base": x,
        "transposed": x.t(),
        "slice": x[2:5],
        "narrow": x.narrow(1, 3, 4),
        "every_other": x[:, ::2],
        "row": x[3],
        "scalar": x[4, 7],
        "expanded": x[:, :1].expand(6, 3),
        "flat_window": x.view(-1)[7:19],
        "empty_view": x[1:1],
        "own_transposed": torch.arange(24.0).reshape(2, 3, 4).permute(2, 0, 1),
        "int_transposed": torch.arange(6).reshape(2, 3).t(),
        "bool_transposed": torch.tensor([[True, False], [False, False]]).t(),
    }
    shared = 10  # names over x's storage
    src = save(sd, tmp_path / "views.pt", legacy)
    dst = tmp_path / "views.safetensors"
    result = convert(src, dst, trust=legacy)
    assert result.aliases == {}
    assert result.tensor_count == len(sd)  # nothing dropped, nothing merged
    assert_matches_torch(dst, src)
    back = load_st(dst)
    assert torch.equal(back["transposed"], x.t().contiguous())
    assert torch.equal(back["every_other"], x[:, ::2].contiguous())
    assert back["scalar"].shape == () and back["scalar"].item() == 47.0
    assert result.total_bytes == sum(v.numel() * v.element_size() for v in sd.values())
    notes = " ".join(result.notes)
    assert re.search(rf"\b{shared - 1}\b[^.;]*view", notes), result.notes
    assert "contiguous" in notes or "cop" in notes, result.notes


@FORMATS
def test_tied_names_and_views_over_one_storage(tmp_path: Path, legacy: bool) -> None:
    emb = torch.randn(8, 4)
    sd = {"z.embed.weight": emb, "lm_head.weight": emb, "a.window": emb[2:5], "b.t": emb.t()}
    src = save(sd, tmp_path / "mixed.pt", legacy)
    dst = tmp_path / "mixed.safetensors"
    result = convert(src, dst, trust=legacy)
    assert result.aliases == {"z.embed.weight": "lm_head.weight"}
    assert_matches_torch(dst, src, result.aliases)
    assert set(load_st(dst)) == {"lm_head.weight", "a.window", "b.t"}
    assert diff(src, dst, trust=legacy).equal


# --- 3. training checkpoints ---------------------------------------------------------------------


def _trained() -> tuple[Any, Any]:
    torch.manual_seed(2)
    model = nn.Sequential(nn.Linear(4, 3), nn.ReLU(), nn.Linear(3, 2), nn.LayerNorm(2))
    opt = torch.optim.Adam(model.parameters())
    model(torch.randn(2, 4)).sum().backward()
    opt.step()
    return model, opt


@FORMATS
def test_training_checkpoint_converts_the_model_part(tmp_path: Path, legacy: bool) -> None:
    model, opt = _trained()
    sd = model.state_dict()
    src = save(
        {"model_state_dict": sd, "optimizer_state_dict": opt.state_dict(), "epoch": 3},
        tmp_path / "train.ckpt",
        legacy,
    )
    dst = tmp_path / "model.safetensors"
    result = convert(src, dst, trust=legacy)
    back = load_st(dst)
    assert set(back) == set(sd)  # names as in the state dict, without "model_state_dict."
    for name, value in sd.items():
        assert_same_tensor(back[name], value, name)
    notes = " ".join(result.notes)
    assert "optimizer" in notes and "model_state_dict" in notes, result.notes
    assert result.tensor_count == len(sd)
    assert diff(src, dst, trust=legacy).equal


@FORMATS
def test_lightning_checkpoint(tmp_path: Path, legacy: bool) -> None:
    model, opt = _trained()
    sd = {f"model.{k}": v for k, v in model.state_dict().items()}
    ckpt = {
        "epoch": 1,
        "global_step": 10,
        "pytorch-lightning_version": "2.4.0",
        "state_dict": sd,
        "optimizer_states": [opt.state_dict()],
        "lr_schedulers": [],
        "hparams_name": "kwargs",
        "hyper_parameters": {"lr": 0.001, "hidden": 3},
    }
    src = save(ckpt, tmp_path / "epoch=1.ckpt", legacy)
    result = convert(src, tmp_path / "a.safetensors", trust=legacy)
    assert set(load_st(tmp_path / "a.safetensors")) == set(sd)  # as the LightningModule names them
    assert any("state_dict" in n for n in result.notes), result.notes
    assert any("optimizer" in n for n in result.notes), result.notes
    stripped = convert(src, tmp_path / "b.safetensors", rename=["model.="], trust=legacy)
    back = load_st(tmp_path / "b.safetensors")
    assert set(back) == set(model.state_dict())
    for name, value in model.state_dict().items():
        assert_same_tensor(back[name], value, name)
    assert stripped.tensor_count == len(sd)


def test_lightning_checkpoint_with_callback_state(tmp_path: Path) -> None:
    """Lightning's ModelCheckpoint keeps best_model_score / current_score as tensors in "callbacks":
    they are not weights and must not pull the model's names back under "state_dict."."""
    model, opt = _trained()
    sd = {f"model.{k}": v for k, v in model.state_dict().items()}
    callback = "ModelCheckpoint{'monitor': 'val_loss', 'mode': 'min'}"
    ckpt = {
        "epoch": 4,
        "global_step": 50,
        "pytorch-lightning_version": "2.4.0",
        "state_dict": sd,
        "loops": {"fit_loop": {"epoch_progress": {"total": {"ready": 5, "completed": 4}}}},
        "callbacks": {
            callback: {
                "monitor": "val_loss",
                "best_model_score": torch.tensor(0.25),
                "current_score": torch.tensor(0.3),
                "best_model_path": "/runs/epoch=3.ckpt",
            }
        },
        "optimizer_states": [opt.state_dict()],
        "lr_schedulers": [],
    }
    src = save(ckpt, tmp_path / "last.ckpt")
    dst = tmp_path / "last.safetensors"
    convert(src, dst)
    assert set(load_st(dst)) == set(sd)


def test_training_checkpoint_with_rng_state(tmp_path: Path) -> None:
    """A saved RNG state (a uint8 tensor beside the state dict) is not part of the model."""
    model, _ = _trained()
    sd = model.state_dict()
    src = save({"model_state_dict": sd, "epoch": 3, "rng_state": torch.get_rng_state()}, tmp_path / "r.pt")
    dst = tmp_path / "r.safetensors"
    convert(src, dst)
    assert set(load_st(dst)) == set(sd)


# --- 4. --dtype ----------------------------------------------------------------------------------

TORCH_TARGETS = {
    "f16": torch.float16,
    "bf16": torch.bfloat16,
    "f8_e4m3": torch.float8_e4m3fn,
    "f8_e5m2": torch.float8_e5m2,
    "f32": torch.float32,
}
_SPECIALS = [
    0.0,
    -0.0,
    1.0,
    -1.0,
    0.1,
    1e-3,
    1e-8,
    1e-40,  # F32 subnormal
    1e-45,
    5e-324,  # smallest F64 subnormal
    2.0**-14,  # smallest normal F16
    2.0**-24,  # smallest subnormal F16
    2.0**-25,  # a tie: rounds to zero
    2.0**-25 * 1.0000001,
    2.0**-126,
    2.0**-133,
    2.0**-149,
    1 + 2.0**-8,  # BF16 tie
    1 + 2.0**-8 + 2.0**-30,  # F64 -> F32 rounds it onto the tie (torch goes through F32)
    1 + 3 * 2.0**-8,
    1 + 2.0**-11 + 2.0**-40,  # the same for F16
    65504.0,
    65519.99,
    65520.0,  # F16 overflow boundary
    1e5,
    448.0,
    449.0,
    464.0,
    465.0,  # E4M3 saturation
    57344.0,
    61439.0,
    61440.0,  # E5M2 overflow boundary
    1e10,
    1e38,
    3.4e38,
    3.5e38,  # past F32
    1e300,
    -1e300,
    float("inf"),
    float("-inf"),
    float("nan"),
    -float("nan"),
]


def _cast_sources() -> dict[str, Any]:
    torch.manual_seed(3)
    wide = torch.randn(4000, dtype=torch.float64) * torch.logspace(-60, 60, 4000, dtype=torch.float64)
    specials = torch.tensor(_SPECIALS + [-v for v in _SPECIALS], dtype=torch.float64)
    return {
        "f64.specials": specials,
        "f64.wide": wide,
        "f64.2d_transposed": wide[:400].reshape(20, 20).t(),
        "f32.specials": specials.float(),
        "f32.wide": wide.float(),
        "f32.slice": wide.float()[100:300],
        "f16": specials.half(),
        "f16.random": torch.randn(500, dtype=torch.float16) * 100,
        "bf16": specials.bfloat16(),
        "bf16.random": torch.randn(500).bfloat16() * 1e20,
        "i64": torch.tensor([-(2**63), -1, 0, 2**63 - 1]),
        "i32": torch.arange(-3, 3, dtype=torch.int32),
        "i16": torch.arange(-3, 3, dtype=torch.int16),
        "i8": torch.arange(-3, 3, dtype=torch.int8),
        "u8": torch.arange(0, 256, 51, dtype=torch.uint8),
        "bool": torch.tensor([True, False, True]),
        "scalar": torch.tensor(3.14159, dtype=torch.float64),
        "empty": torch.empty(0, 3),
    }


def _bits(t: Any) -> Any:
    return t.view({1: torch.uint8, 2: torch.int16, 4: torch.int32, 8: torch.int64}[t.element_size()])


def assert_same_bits(got: Any, expected: Any, name: str) -> None:
    """Equal bit patterns, except that any NaN matches any NaN (payloads may differ from torch's)."""
    assert got.dtype == expected.dtype and got.shape == expected.shape, name
    nan = torch.isnan(expected.float())
    assert torch.equal(torch.isnan(got.float()), nan), name
    g, e = _bits(got.contiguous())[~nan], _bits(expected.contiguous())[~nan]
    if not torch.equal(g, e):
        bad = (g != e).nonzero().flatten()[:5]
        pytest.fail(f"{name}: {g[bad].tolist()} != torch's {e[bad].tolist()}")


@pytest.mark.parametrize("spelling", list(TORCH_TARGETS))
def test_dtype_cast_is_torch_bit_for_bit(tmp_path: Path, spelling: str) -> None:
    sd = _cast_sources()
    src = save(sd, tmp_path / "cast.pt")
    dst = tmp_path / f"{spelling}.safetensors"
    result = convert(src, dst, dtype=spelling)
    target = TORCH_TARGETS[spelling]
    back = load_st(dst)
    assert set(back) == set(sd)
    for name, value in sd.items():
        if value.is_floating_point():
            assert_same_bits(back[name], value.to(target), name)
        else:  # integers and bools keep their type and values
            assert_same_tensor(back[name], value, name)
    floats = [v for v in sd.values() if v.is_floating_point()]
    others = [v for v in sd.values() if not v.is_floating_point()]
    expected_bytes = sum(v.numel() * target.itemsize for v in floats) + storage_bytes(dict(enumerate(others)))
    assert result.total_bytes == expected_bytes


@pytest.mark.parametrize("spelling", list(TORCH_TARGETS))
def test_dtype_cast_from_float8_sources(tmp_path: Path, spelling: str) -> None:
    torch.manual_seed(4)
    base = torch.tensor(_SPECIALS, dtype=torch.float32)
    sd = {
        "e4m3": torch.cat([base, torch.randn(100) * 50]).to(torch.float8_e4m3fn),
        "e5m2": torch.cat([base, torch.randn(100) * 1e4]).to(torch.float8_e5m2),
    }
    src = save(sd, tmp_path / "f8.pt")
    dst = tmp_path / "out.safetensors"
    convert(src, dst, dtype=spelling, trust=True)  # trust: see test_float8_tensors_need_no_trust
    back = load_st(dst)
    for name, value in sd.items():
        assert_same_bits(back[name], value.to(TORCH_TARGETS[spelling]), name)


def test_float8_tensors_need_no_trust(tmp_path: Path) -> None:
    """torch.save writes float8 tensors with _rebuild_tensor_v3(..., torch.float8_e4m3fn): the dtype
    is an argument, nothing calls it, so the file is as safe as any other state dict."""
    sd = {"w8": torch.randn(6).to(torch.float8_e4m3fn), "w5": torch.randn(6).to(torch.float8_e5m2)}
    src = save(sd, tmp_path / "fp8.pt")
    dst = tmp_path / "fp8.safetensors"
    convert(src, dst)
    back = load_st(dst)
    for name, value in sd.items():
        assert torch.equal(back[name].view(torch.uint8), value.view(torch.uint8)), name


def test_dtype_cli_keeps_stderr_clean(tmp_path: Path) -> None:
    """Casting huge F64 values (past F32) gives inf as torch does, without warnings on stderr."""
    sd = {"big": torch.tensor([1e300, -1e300, 1.0, 1e39], dtype=torch.float64)}
    src = save(sd, tmp_path / "big.pt")
    for spelling in ("f16", "bf16", "f8_e5m2", "f32"):
        dst = tmp_path / f"{spelling}.safetensors"
        proc = run_cli("convert", "--json", "--dtype", spelling, str(src), str(dst))
        assert proc.returncode == 0, proc.stderr
        assert proc.stderr == "", proc.stderr
        assert json.loads(proc.stdout)["dtype"] == {"f16": "F16", "bf16": "BF16"}.get(
            spelling, spelling.upper()
        )
        assert_same_bits(load_st(dst)["big"], sd["big"].to(TORCH_TARGETS[spelling]), spelling)


def test_dtype_bad_spelling(tmp_path: Path) -> None:
    src = save({"w": torch.ones(2)}, tmp_path / "w.pt")
    with pytest.raises(UsageError):
        convert(src, tmp_path / "w.safetensors", dtype="int3")
    assert not (tmp_path / "w.safetensors").exists()


# --- 5. selection and renaming -------------------------------------------------------------------


def _named() -> dict[str, Any]:
    torch.manual_seed(5)
    return {
        "model.layers.0.attn.weight": torch.randn(3, 3),
        "model.layers.0.mlp.weight": torch.randn(3, 3),
        "model.layers.1.attn.weight": torch.randn(3, 3),
        "model.layers.1.mlp.weight": torch.randn(3, 3),
        "model.norm.weight": torch.ones(3),
        "lm_head.weight": torch.randn(5, 3),
    }


@pytest.mark.parametrize(
    ("include", "exclude", "rename", "expected"),
    [
        (["model.layers.*"], [], [], {k for k in _named() if k.startswith("model.layers.")}),
        ([], ["*.mlp.*"], [], {k for k in _named() if ".mlp." not in k}),
        (["model.*"], ["*.1.*", "*norm*"], [], {"model.layers.0.attn.weight", "model.layers.0.mlp.weight"}),
        ([], [], ["model.="], {k.removeprefix("model.") for k in _named()}),
        ([], [], ["model.layers.=blocks.", "lm_head.=output."], None),
        (["*attn*"], [], ["model.="], {"layers.0.attn.weight", "layers.1.attn.weight"}),
    ],
)
def test_include_exclude_rename(
    tmp_path: Path, include: list[str], exclude: list[str], rename: list[str], expected: set[str] | None
) -> None:
    sd = _named()
    src = save(sd, tmp_path / "named.pt")
    dst = tmp_path / "out.safetensors"
    result = convert(src, dst, include=include, exclude=exclude, rename=rename)
    back = load_st(dst)
    if expected is None:
        expected = {
            "blocks.0.attn.weight",
            "blocks.0.mlp.weight",
            "blocks.1.attn.weight",
            "blocks.1.mlp.weight",
            "model.norm.weight",
            "output.weight",
        }
    assert set(back) == expected
    originals = {}
    for old in sd:
        new = old
        for rule in rename:
            prefix, repl = rule.split("=", 1)
            if old.startswith(prefix):
                new = repl + old[len(prefix) :]
                break
        originals[new] = old
    for name in back:
        assert torch.equal(back[name], sd[originals[name]]), name
    left_out = len(sd) - len(expected)
    assert result.tensor_count == len(expected)
    if left_out:
        assert any(str(left_out) in n and "left out" in n for n in result.notes), result.notes


def test_rename_keeps_tied_aliases(tmp_path: Path) -> None:
    emb = torch.randn(6, 2)
    src = save({"model.embed.weight": emb, "model.lm_head.weight": emb}, tmp_path / "t.pt")
    dst = tmp_path / "t.safetensors"
    result = convert(src, dst, rename=["model.="])
    assert result.aliases == {"lm_head.weight": "embed.weight"}
    assert set(load_st(dst)) == {"embed.weight"}
    assert st_metadata(dst)["lm_head.weight"] == "embed.weight"


def test_excluding_one_tied_name_keeps_the_other(tmp_path: Path) -> None:
    emb = torch.randn(6, 2)
    src = save({"embed.weight": emb, "lm_head.weight": emb}, tmp_path / "t.pt")
    dst = tmp_path / "t.safetensors"
    result = convert(src, dst, exclude=["embed.*"])
    assert result.aliases == {}
    back = load_st(dst)
    assert set(back) == {"lm_head.weight"} and torch.equal(back["lm_head.weight"], emb)
    assert "lm_head.weight" not in st_metadata(dst)


def test_rename_collision_is_a_usage_error(tmp_path: Path) -> None:
    src = save({"model.w": torch.ones(2), "w": torch.zeros(2)}, tmp_path / "c.pt")
    dst = tmp_path / "c.safetensors"
    proc = run_cli("convert", "--rename", "model.=", str(src), str(dst))
    assert_one_line_error(proc, "'w'")
    assert not dst.exists() and leftovers(tmp_path) == []


def test_selection_errors(tmp_path: Path) -> None:
    src = save({"a": torch.ones(2)}, tmp_path / "s.pt")
    dst = tmp_path / "s.safetensors"
    with pytest.raises(UsageError, match="no tensors"):
        convert(src, dst, include=["nothing*"])
    with pytest.raises(UsageError):
        convert(src, dst, rename=["a="])  # the whole name stripped
    with pytest.raises(UsageError):
        convert(src, dst, rename=["no-equals-sign"])
    assert not dst.exists() and leftovers(tmp_path) == []


# --- 6. sharding ---------------------------------------------------------------------------------


def _shardable() -> dict[str, Any]:
    torch.manual_seed(6)
    sd: dict[str, Any] = {f"layers.{i}.weight": torch.randn(8, 8) for i in range(6)}  # 256 B each
    sd["layers.0.bias"] = torch.randn(8)
    sd["norm.scale"] = torch.randn(8, dtype=torch.float64)
    sd["ids"] = torch.arange(16)
    sd["half"] = torch.randn(8, 8).half()
    sd["big"] = torch.randn(300)  # 1200 B: more than a shard, gets one of its own
    return sd


def _load_index_folder(folder: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    """What transformers' sharded loading reads, with safetensors and the index only."""
    index = json.loads((folder / "model.safetensors.index.json").read_text())
    tensors: dict[str, Any] = {}
    for shard in sorted(set(index["weight_map"].values())):
        part = load_st(folder / shard)
        assert not set(part) & set(tensors)
        tensors.update(part)
    return index, tensors


@FORMATS
def test_sharded_folder(tmp_path: Path, legacy: bool) -> None:
    sd = _shardable()
    src = save(sd, tmp_path / "pytorch_model.bin", legacy)
    dst = tmp_path / "converted"
    limit = 600
    result = convert(src, dst, max_shard_size=f"{limit}B", trust=legacy)

    shards = sorted(p.name for p in dst.glob("*.safetensors"))
    count = len(shards)
    assert count >= 3
    assert shards == [f"model-{i:05d}-of-{count:05d}.safetensors" for i in range(1, count + 1)]
    assert sorted(p.name for p in dst.iterdir()) == [*shards, "model.safetensors.index.json"]
    index, tensors = _load_index_folder(dst)
    assert index["metadata"]["total_size"] == storage_bytes(sd) == result.total_bytes
    assert set(index["weight_map"]) == set(sd)
    assert set(index["weight_map"].values()) == set(shards)
    ref = torch.load(src, weights_only=True)
    assert set(tensors) == set(ref)
    for name, value in ref.items():
        assert_same_tensor(tensors[name], value, name)
    for shard in shards:
        part = load_st(dst / shard)
        assert {n for n, f in index["weight_map"].items() if f == shard} == set(part)
        size = sum(t.numel() * t.element_size() for t in part.values())
        assert size <= limit or len(part) == 1, (shard, size)
        assert st_metadata(dst / shard).get("format") == "pt"
    files = {f["path"]: f for f in result.files}
    assert set(files) == {*shards, "model.safetensors.index.json"}
    for shard in shards:
        assert files[shard]["size_bytes"] == (dst / shard).stat().st_size
        assert files[shard]["tensors"] == len(load_st(dst / shard))
    assert diff(src, dst, trust=legacy).equal
    assert leftovers(tmp_path) == []


def test_sharded_folder_from_cli(tmp_path: Path) -> None:
    sd = _shardable()
    src = save(sd, tmp_path / "model.pt")
    dst = tmp_path / "out"
    proc = run_cli("convert", "--json", "--max-shard-size", "1KB", str(src), str(dst))
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    names = [f["path"] for f in doc["files"]]
    assert names[-1] == "model.safetensors.index.json" and len(names) >= 4
    _, tensors = _load_index_folder(dst)
    for name, value in sd.items():
        assert_same_tensor(tensors[name], value, name)


def test_single_shard_folder_has_no_index(tmp_path: Path) -> None:
    sd = _shardable()
    src = save(sd, tmp_path / "model.pt")
    dst = tmp_path / "one"
    result = convert(src, dst)  # the default limit (5GB) holds everything
    assert sorted(p.name for p in dst.iterdir()) == ["model.safetensors"]
    assert [f["path"] for f in result.files] == ["model.safetensors"]
    assert_matches_torch(dst / "model.safetensors", src)


def test_tied_names_survive_sharding(tmp_path: Path) -> None:
    """An alias whose stored tensor lands in a later shard is still found by diff (and not lost)."""
    torch.manual_seed(7)
    emb = torch.randn(8, 4)
    sd = {
        "a.weight": torch.randn(64),
        "b.weight": torch.randn(64),
        "z.embed.weight": emb,
        "lm_head.weight": emb,
        "c.weight": torch.randn(64),
    }
    src = save(sd, tmp_path / "tied.pt")
    dst = tmp_path / "tied"
    result = convert(src, dst, max_shard_size="300B")
    assert result.aliases == {"z.embed.weight": "lm_head.weight"}
    assert len([f for f in result.files if f["path"].endswith(".safetensors")]) >= 3
    report = diff(src, dst)
    assert {t.name: t.status for t in report.tensors} == dict.fromkeys(sd, "identical")


def test_max_shard_size_needs_a_folder(tmp_path: Path) -> None:
    src = save({"w": torch.ones(2)}, tmp_path / "w.pt")
    with pytest.raises(UsageError):
        convert(src, tmp_path / "w.safetensors", max_shard_size="1KB")
    with pytest.raises(UsageError):
        convert(src, tmp_path / "folder", max_shard_size="lots")
    assert leftovers(tmp_path) == [] and not (tmp_path / "folder").exists()


# --- 7. safety -----------------------------------------------------------------------------------

MARKER_CMD = "touch {marker}"


def _hostile(tmp_path: Path) -> tuple[Path, dict[str, Any], Path]:
    """A real torch.save zip whose data.pkl also calls os.system, which would create `marker`."""
    torch.manual_seed(8)
    sd = {"w": torch.randn(3, 4), "b": torch.arange(4)}
    clean = save(sd, tmp_path / "clean.pt")
    marker = tmp_path / "pwned"

    def edit(name: str, data: bytes) -> bytes:
        if not name.endswith("/data.pkl"):
            return data
        assert data.endswith(b".")
        payload = Asm(None).str_("evil").call("posix", "system", MARKER_CMD.format(marker=marker))
        return data[:-1] + payload.setitem().stop().build_bytes()

    return rewrite_zip(clean, tmp_path / "hostile.pt", edit), sd, marker


def test_hostile_pickle_is_refused(tmp_path: Path) -> None:
    src, _, marker = _hostile(tmp_path)
    before = src.read_bytes()
    dst = tmp_path / "out.safetensors"
    line = assert_one_line_error(run_cli("convert", str(src), str(dst)), "--trust")
    assert "scan finding" in line and "system" in line
    assert not dst.exists() and leftovers(tmp_path) == []
    assert not marker.exists()
    assert src.read_bytes() == before
    with pytest.raises(UnsupportedError):
        convert(src, dst)
    folder = tmp_path / "as_folder"
    with pytest.raises(UnsupportedError, match="--trust"):
        convert(src, folder)
    assert not folder.exists() and leftovers(tmp_path) == []
    assert_one_line_error(run_cli("diff", str(src), str(src)), "--trust")


def test_trust_converts_without_executing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import posix

    src, sd, marker = _hostile(tmp_path)
    calls: list[object] = []
    monkeypatch.setattr(posix, "system", lambda *a: calls.append(a) or 0)
    monkeypatch.setattr(os, "system", lambda *a: calls.append(a) or 0)
    dst = tmp_path / "out.safetensors"
    result = convert(src, dst, trust=True)
    assert calls == [] and not marker.exists()
    assert result.tensor_count == len(sd)
    back = load_st(dst)
    assert set(back) == set(sd)
    for name, value in sd.items():
        assert_same_tensor(back[name], value, name)
    report = diff(src, dst, trust=True)
    assert report.equal and calls == []
    # and through the CLI, in a fresh process that really has os.system
    proc = run_cli("convert", "--trust", "--json", str(src), str(tmp_path / "cli.safetensors"))
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout)["tensor_count"] == len(sd)
    assert not marker.exists()


def test_checkpoint_with_a_namespace_is_refused(tmp_path: Path) -> None:
    """argparse.Namespace is not a tensor rebuild class: torch.load(weights_only=True) refuses it too."""
    model, _ = _trained()
    sd = model.state_dict()
    src = save({"state_dict": sd, "args": argparse.Namespace(lr=0.1, layers=2)}, tmp_path / "ns.ckpt")
    with pytest.raises(Exception, match="Namespace"):
        torch.load(src, weights_only=True)
    dst = tmp_path / "ns.safetensors"
    assert_one_line_error(run_cli("convert", str(src), str(dst)), "--trust")
    assert not dst.exists() and leftovers(tmp_path) == []
    convert(src, dst, trust=True)
    assert set(load_st(dst)) == set(sd)


NO_TORCH = """
import atexit, sys
tried = []
class NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            tried.append(name)
            raise ImportError("torch is blocked in this test")
        return None
sys.meta_path.insert(0, NoTorch())
@atexit.register
def report():
    if tried or "torch" in sys.modules:
        sys.stderr.write("TORCH WAS IMPORTED: %r\\n" % tried)
from tensorfile.cli import main
sys.argv = ["tensorfile", *sys.argv[1:]]
main()
"""


def test_convert_and_diff_never_import_torch(tmp_path: Path) -> None:
    model, opt = _trained()
    src = save(
        {"model_state_dict": model.state_dict(), "optimizer_state_dict": opt.state_dict()}, tmp_path / "c.pt"
    )
    hostile, _, marker = _hostile(tmp_path)
    runs = [
        (["convert", "--json", "--dtype", "bf16", str(src), str(tmp_path / "c.safetensors")], 0),
        (["convert", "--trust", "--max-shard-size", "100B", str(hostile), str(tmp_path / "h")], 0),
        (["diff", "--json", "--rtol", "0.01", str(src), str(tmp_path / "c.safetensors")], 0),
        (["diff", "--trust", str(hostile), str(tmp_path / "h")], 0),
    ]
    for args, code in runs:
        proc = subprocess.run(
            [sys.executable, "-c", NO_TORCH, *args], capture_output=True, text=True, timeout=120
        )
        assert proc.returncode == code, (args, proc.stdout, proc.stderr)
        assert "TORCH WAS IMPORTED" not in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
    assert not marker.exists()
    assert set(load_st(tmp_path / "c.safetensors")) == set(model.state_dict())


# --- 8. bad input --------------------------------------------------------------------------------


def _clean_zip(tmp_path: Path) -> Path:
    torch.manual_seed(9)
    sd = {"w": torch.randn(20, 30), "b": torch.randn(20), "ids": torch.arange(7)}
    return save(sd, tmp_path / "clean.pt")


def _cut(fraction: float) -> Callable[[Path, Path], Path]:
    def make(clean: Path, dst: Path) -> Path:
        raw = clean.read_bytes()
        dst.write_bytes(raw[: int(len(raw) * fraction)])
        return dst

    return make


def _edit_member(suffix: str, fn: Callable[[bytes], bytes | None]) -> Callable[[Path, Path], Path]:
    def make(clean: Path, dst: Path) -> Path:
        return rewrite_zip(clean, dst, lambda name, data: fn(data) if name.endswith(suffix) else data)

    return make


def _tail_cut(clean: Path, dst: Path) -> Path:
    dst.write_bytes(clean.read_bytes()[:-30])  # the end-of-central-directory record is gone
    return dst


BAD_INPUTS = {
    "truncated_half": _cut(0.5),
    "truncated_header": _cut(0.02),
    "truncated_tail": _tail_cut,
    "empty_file": _cut(0.0),
    "truncated_data_pkl": _edit_member("/data.pkl", lambda d: d[: len(d) // 2]),
    "data_pkl_without_stop": _edit_member("/data.pkl", lambda d: d[:-1]),
    "missing_storage_member": _edit_member("/data/0", lambda d: None),
    "missing_last_storage_member": _edit_member("/data/2", lambda d: None),
    "short_first_storage": _edit_member("/data/0", lambda d: d[:100]),
    "short_middle_storage": _edit_member("/data/1", lambda d: d[:4]),
    "empty_storage": _edit_member("/data/0", lambda d: b""),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_fails_cleanly(tmp_path: Path, case: str) -> None:
    clean = _clean_zip(tmp_path)
    src = BAD_INPUTS[case](clean, tmp_path / f"{case}.pt")
    clean.unlink()
    before = src.read_bytes()
    dst = tmp_path / "out.safetensors"
    folder = tmp_path / "out_folder"
    assert_one_line_error(run_cli("convert", str(src), str(dst)), src.name)
    for trust in (False, True):
        for out in (dst, folder):
            with pytest.raises(TensorfileError):
                convert(src, out, trust=trust)
    with pytest.raises(TensorfileError):
        diff(src, src, trust=True)
    assert not dst.exists() and not folder.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == [src.name]  # no .part leftovers either
    assert src.read_bytes() == before


def test_destination_exists(tmp_path: Path) -> None:
    src = save({"w": torch.randn(3)}, tmp_path / "w.pt")
    dst = tmp_path / "w.safetensors"
    dst.write_bytes(b"old contents")
    assert_one_line_error(run_cli("convert", str(src), str(dst)), "already exists", "--force")
    assert dst.read_bytes() == b"old contents"
    proc = run_cli("convert", "--force", str(src), str(dst))
    assert proc.returncode == 0, proc.stderr
    assert_matches_torch(dst, src)
    assert leftovers(tmp_path) == []


def test_destination_folder_exists(tmp_path: Path) -> None:
    src = save({"w": torch.randn(3)}, tmp_path / "w.pt")
    dst = tmp_path / "out"
    dst.mkdir()
    (dst / "stale.txt").write_text("old")
    with pytest.raises(UsageError, match="--force"):
        convert(src, dst)
    assert (dst / "stale.txt").read_text() == "old"
    convert(src, dst, force=True)
    assert sorted(p.name for p in dst.iterdir()) == ["model.safetensors"]
    assert_matches_torch(dst / "model.safetensors", src)
    assert leftovers(tmp_path) == []


def test_destination_folder_missing(tmp_path: Path) -> None:
    src = save({"w": torch.randn(3)}, tmp_path / "w.pt")
    assert_one_line_error(
        run_cli("convert", str(src), str(tmp_path / "nowhere" / "w.safetensors")), "nowhere"
    )
    with pytest.raises(TensorfileError, match="does not exist"):
        convert(src, tmp_path / "nowhere" / "sub")
    assert not (tmp_path / "nowhere").exists()


def test_destination_is_the_source(tmp_path: Path) -> None:
    src = save({"w": torch.randn(3)}, tmp_path / "w.pt")
    (tmp_path / "link.safetensors").symlink_to(src)
    before, mtime = src.read_bytes(), src.stat().st_mtime_ns
    assert_one_line_error(run_cli("convert", str(src), str(src)), "source")
    for dst in (src, tmp_path / "." / "w.pt", tmp_path / "link.safetensors"):
        with pytest.raises(UsageError, match="source"):
            convert(src, dst, force=True)
    assert src.read_bytes() == before and src.stat().st_mtime_ns == mtime
    assert (tmp_path / "link.safetensors").is_symlink()
    assert leftovers(tmp_path) == []


def test_missing_source(tmp_path: Path) -> None:
    assert_one_line_error(run_cli("convert", str(tmp_path / "nope.pt"), str(tmp_path / "x.safetensors")))
    assert list(tmp_path.iterdir()) == []


# --- 9. atomicity --------------------------------------------------------------------------------


def _fail_after_first(monkeypatch: pytest.MonkeyPatch, exc: type[BaseException]) -> list[str]:
    """Make the writer raise `exc` once one tensor has been written."""
    from tensorfile.convert import safetensors_out, stream

    real = stream.write_tensor
    written: list[str] = []

    def failing(out: Any, tensor: Any, *args: Any, **kwargs: Any) -> None:
        if written:
            raise exc("simulated failure mid-write")
        real(out, tensor, *args, **kwargs)
        written.append(tensor.name)

    monkeypatch.setattr(stream, "write_tensor", failing)
    if hasattr(safetensors_out, "write_tensor"):
        monkeypatch.setattr(safetensors_out, "write_tensor", failing)
    return written


@pytest.mark.parametrize("exc", [RuntimeError, KeyboardInterrupt, OSError])
@pytest.mark.parametrize("kind", ["file", "folder", "shards"])
def test_failure_mid_write_leaves_nothing(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, exc: type[BaseException], kind: str
) -> None:
    sd = _shardable()
    src = save(sd, tmp_path / "src.pt")
    os.utime(src, ns=(1_000_000_000_000_000_000, 1_000_000_000_000_000_000))
    before, stat = src.read_bytes(), src.stat()
    written = _fail_after_first(monkeypatch, exc)
    dst = tmp_path / ("out.safetensors" if kind == "file" else "out")
    with pytest.raises(exc):
        convert(src, dst, max_shard_size="600B" if kind == "shards" else None)
    assert written, "the failure was not reached"
    assert not dst.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["src.pt"]
    assert src.read_bytes() == before
    assert src.stat().st_mtime_ns == stat.st_mtime_ns and src.stat().st_size == stat.st_size


@pytest.mark.parametrize("kind", ["file", "folder", "shards"])
def test_failure_with_force_keeps_the_old_destination(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    sd = _shardable()
    src = save(sd, tmp_path / "src.pt")
    dst = tmp_path / ("out.safetensors" if kind == "file" else "out")
    if kind == "file":
        dst.write_bytes(b"previous conversion")
    else:
        dst.mkdir()
        (dst / "model.safetensors").write_bytes(b"previous conversion")
        (dst / "config.json").write_text("{}")
    _fail_after_first(monkeypatch, RuntimeError)
    with pytest.raises(RuntimeError):
        convert(src, dst, force=True, max_shard_size="600B" if kind == "shards" else None)
    if kind == "file":
        assert dst.read_bytes() == b"previous conversion"
    else:
        assert sorted(p.name for p in dst.iterdir()) == ["config.json", "model.safetensors"]
        assert (dst / "model.safetensors").read_bytes() == b"previous conversion"
    assert leftovers(tmp_path) == []
    monkeypatch.undo()
    convert(src, dst, force=True)  # and the next try succeeds and replaces it
    assert_matches_torch(dst if kind == "file" else dst / "model.safetensors", src)
    assert leftovers(tmp_path) == []


INTERRUPT = """
import sys
from tensorfile.convert import safetensors_out, stream
real = stream.write_tensor
seen = []
def interrupted(out, tensor, *args, **kwargs):
    if seen:
        raise KeyboardInterrupt
    real(out, tensor, *args, **kwargs)
    seen.append(tensor)
stream.write_tensor = interrupted
safetensors_out.write_tensor = interrupted
from tensorfile.cli import main
sys.argv = ["tensorfile", *sys.argv[1:]]
main()
"""


def test_ctrl_c_from_the_cli(tmp_path: Path) -> None:
    src = save(_shardable(), tmp_path / "src.pt")
    for dst in (tmp_path / "out.safetensors", tmp_path / "out"):
        proc = subprocess.run(
            [sys.executable, "-c", INTERRUPT, "convert", str(src), str(dst)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert "Traceback" not in proc.stderr and len(proc.stderr.strip().splitlines()) == 1
        assert sorted(p.name for p in tmp_path.iterdir()) == ["src.pt"]
        # 130 as main() intends, not click's "Aborted!" with exit 1 (which `diff` uses for "differ")
        assert proc.returncode == 130, proc.stderr
