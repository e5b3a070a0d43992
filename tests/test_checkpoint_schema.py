"""One `checkpoint` shape for PyTorch, Keras and Flax training state (model.Checkpoint).

Each case is a file its own library wrote: torch.save of a training dict, Keras with optimizer
state (committed fixtures, ground truth in tests/fixtures/heavy/MANIFEST.json), and a Flax
TrainState msgpack. The same keys must come back from every reader, through the Python API, the
`--json` document and the rich summary line.
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from tensorfile.inspection import inspect
from tensorfile.model import CHECKPOINT_KEYS, ModelInfo
from tensorfile.render import inspect_report

from .conftest import cli_json, heavy, train_one_step

torch = pytest.importorskip("torch")

MANIFEST = {e["path"]: e["facts"] for e in json.loads(heavy("MANIFEST.json").read_text())["fixtures"]}
GROUP_KEYS = {"tensor_count", "parameter_count", "total_bytes"}
OPTIMIZER_KEYS = {*GROUP_KEYS, "name", "slots", "hyperparameters", "in_tensor_table", "tensors"}


def _assert_schema(checkpoint: Any) -> None:
    assert isinstance(checkpoint, dict) and tuple(checkpoint) == CHECKPOINT_KEYS
    assert set(checkpoint["model"]) == GROUP_KEYS
    assert checkpoint["optimizer"] is None or set(checkpoint["optimizer"]) == OPTIMIZER_KEYS
    assert isinstance(checkpoint["counters"], dict) and isinstance(checkpoint["extra"], dict)


def _summary(info: ModelInfo) -> str:
    console = Console(file=io.StringIO(), width=200, color_system=None)
    inspect_report(console, info, [], None)
    return console.file.getvalue()  # type: ignore[attr-defined]


def _cases(made: Callable[[str], Path]) -> dict[str, Path]:
    return {
        "torch": made("pytorch_training_checkpoint"),
        "keras-h5": heavy("keras3_legacy_full.h5"),
        "keras-weights": heavy("keras3_dense.weights.h5"),
        "flax": heavy("flax_trainstate.msgpack"),
    }


def test_same_keys_for_every_framework(made: Callable[[str], Path]) -> None:
    checkpoints = {name: inspect(path).checkpoint for name, path in _cases(made).items()}
    for name, ck in checkpoints.items():
        _assert_schema(ck)
        assert ck is not None and ck["optimizer"] is not None, name
    torch_ck, keras_ck, weights_ck, flax_ck = checkpoints.values()
    assert [c["framework"] for c in checkpoints.values()] == ["pytorch", "keras", "keras", "flax"]
    assert [c["kind"] for c in checkpoints.values()] == [
        "training-checkpoint",
        "keras-training-state",
        "keras-training-state",
        "flax-train-state",
    ]
    # The model part: Linear(4, 3) for torch, Dense(3 -> 2) for the Keras and Flax fixtures.
    assert torch_ck["model"] == {"tensor_count": 2, "parameter_count": 15, "total_bytes": 60}
    for ck, truth in ((keras_ck, "keras3_legacy_full.h5"), (flax_ck, "flax_trainstate.msgpack")):
        assert ck["model"]["tensor_count"] == 2
        assert ck["model"]["parameter_count"] == MANIFEST[truth]["parameter_count"] == 8
    # The optimizer part: Adam-family slots under each framework's names, and its step counter.
    assert torch_ck["optimizer"]["slots"] == ["step", "exp_avg", "exp_avg_sq"]
    assert keras_ck["optimizer"]["slots"] == weights_ck["optimizer"]["slots"] == ["momentum", "velocity"]
    assert flax_ck["optimizer"]["slots"] == ["count", "mu", "nu"]
    assert keras_ck["optimizer"]["name"] == MANIFEST["keras3_legacy_full.h5"]["optimizer_class_name"]
    assert (
        keras_ck["optimizer"]["tensor_count"]
        == MANIFEST["keras3_legacy_full.h5"]["optimizer_weight_tensor_count"]
    )
    assert flax_ck["optimizer"]["parameter_count"] == (
        MANIFEST["flax_trainstate.msgpack"]["total_array_elements"] - 8
    )
    assert torch_ck["counters"] == {"epoch": 3, "step": 120, "loss": 0.25}
    assert keras_ck["counters"] == weights_ck["counters"] == {"iterations": 1}
    assert flax_ck["counters"] == {"step": MANIFEST["flax_trainstate.msgpack"]["step"]}
    # Keras keeps optimizer tensors out of the model's table, so the checkpoint lists them.
    assert keras_ck["optimizer"]["in_tensor_table"] is False and len(keras_ck["optimizer"]["tensors"]) == 6
    assert torch_ck["optimizer"]["in_tensor_table"] and flax_ck["optimizer"]["in_tensor_table"]


def test_json_and_summary_line_carry_it(made: Callable[[str], Path]) -> None:
    for name, path in _cases(made).items():
        doc = cli_json("inspect", "--json", str(path))["checkpoint"]
        _assert_schema(doc)
        assert doc == json.loads(json.dumps(inspect(path).checkpoint)), name
    lines = {name: _summary(inspect(path)) for name, path in _cases(made).items()}
    assert "training-checkpoint (pytorch); model 2 tensors, 15 params; optimizer 6 tensors" in lines["torch"]
    assert "(step, exp_avg, exp_avg_sq) lr=0.001; epoch=3, step=120, loss=0.25" in lines["torch"]
    assert (
        "optimizer Adam 6 tensors, 18 params (momentum, velocity) lr=0.001; iterations=1" in lines["keras-h5"]
    )
    assert "flax-train-state (flax); model 2 tensors, 8 params; optimizer 5 tensors" in lines["flax"]


def test_other_torch_kinds(tmp_path: Path) -> None:
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.SGD(model.parameters(), lr=0.5, momentum=0.9)
    train_one_step(model, opt, torch.ones(1, 2))
    # Lightning's Trainer.save_checkpoint layout: optimizer_states is a list of state dicts.
    lightning = tmp_path / "lightning.ckpt"
    torch.save(
        {
            "epoch": 2,
            "global_step": 40,
            "pytorch-lightning_version": "2.4.0",
            "state_dict": model.state_dict(),
            "optimizer_states": [opt.state_dict()],
            "lr_schedulers": [],
        },
        lightning,
    )
    ck = inspect(lightning).checkpoint
    _assert_schema(ck)
    assert ck is not None and ck["kind"] == "lightning-checkpoint"
    assert ck["counters"] == {"epoch": 2, "global_step": 40}
    assert ck["extra"] == {"values": {"pytorch-lightning_version": "2.4.0"}}
    assert ck["optimizer"] is not None and ck["optimizer"]["slots"] == ["momentum_buffer"]
    assert ck["optimizer"]["hyperparameters"]["lr"] == 0.5
    assert ck["optimizer"]["hyperparameters"]["momentum"] == 0.9
    assert ck["optimizer"]["parameter_count"] == 6 and ck["model"]["parameter_count"] == 6
    plain = tmp_path / "weights.pt"
    torch.save(model.state_dict(), plain)
    ck = inspect(plain).checkpoint
    _assert_schema(ck)
    assert ck is not None and ck["kind"] == "state-dict" and ck["optimizer"] is None
    assert ck["model"] == {"tensor_count": 2, "parameter_count": 6, "total_bytes": 24}


def test_weights_only_files_have_no_checkpoint() -> None:
    assert inspect(heavy("flax_params.msgpack")).checkpoint is None
    info = inspect(heavy("keras3_dense.keras"))
    _assert_schema(info.checkpoint)  # compiled and fitted: it carries the optimizer
