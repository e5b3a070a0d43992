"""The checkpoint summary of an inspected torch pickle: kind, counters, plain values, optimizer."""

from __future__ import annotations

from typing import Any

from ...model import ModelInfo, new_checkpoint
from ...picklevm import Call
from .kind import checkpoint_kind, mapping, plain_values
from .optimizer import read_optimizer


def _is_module(value: Any) -> bool:
    """A pickled torch.nn.Module: its __dict__ holds _parameters / _modules."""
    state = value.state if isinstance(value, Call) else None
    return isinstance(state, dict) and ("_parameters" in state or "_modules" in state)


def add_checkpoint(value: Any, info: ModelInfo) -> None:
    kind, details = checkpoint_kind(value)
    if kind == "pickled-object" and _is_module(value):
        kind = "pickled-module"
    items = mapping(value) or {}
    counters, others = plain_values(items)
    optimizer_tensors = [t for t in info.tensors if t.role == "optimizer"]
    optimizer = read_optimizer(items, optimizer_tensors)
    extra: dict[str, Any] = {"values": others} if others else {}
    info.checkpoint = new_checkpoint(
        kind,
        "pytorch",
        [t for t in info.tensors if t.role != "optimizer"],
        optimizer,
        counters=counters,
        object_class=details.get("class"),
        top_level_keys=details.get("top_level_keys", []),
        extra=extra,
    )
