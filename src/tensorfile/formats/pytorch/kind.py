"""What a torch pickle holds (state dict, training checkpoint, pickled module…), read from its
symbolic value; shared by detection and inspection."""

from __future__ import annotations

from typing import Any

from ...model import is_plain_number
from ...picklevm import Call, Global, PickleResult
from ...torchpickle import OPTIMIZER_KEYS

_MODEL_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "model_state", "ema", "params")
_MAX_PLAIN = 32  # top-level plain values reported; a hostile dict may hold millions


def is_tensor_rebuild(value: Any) -> bool:
    return (
        isinstance(value, Call)
        and isinstance(value.func, Global)
        and (
            value.func.module in ("torch._utils", "torch._tensor") and value.func.name.startswith("_rebuild")
        )
    )


def mapping(value: Any) -> dict[Any, Any] | None:
    """A symbolic dict: a plain dict, or an OrderedDict call's items."""
    if isinstance(value, dict):
        return value
    if isinstance(value, Call) and isinstance(value.func, Global) and value.func.name == "OrderedDict":
        return value.items
    return None


def checkpoint_kind(value: Any) -> tuple[str, dict[str, Any]]:
    """What a torch pickle holds: a state dict, a training checkpoint, a whole pickled module…"""
    items: dict[Any, Any] | None = None
    if isinstance(value, dict):
        items = value
    elif (
        isinstance(value, Call)
        and isinstance(value.func, Global)
        and value.func.qualname in ("collections.OrderedDict", "torch.nn.modules.module._IncompatibleKeys")
    ):
        items = value.items
    if items is None:
        if is_tensor_rebuild(value):
            return "tensor", {}
        if isinstance(value, Call) and isinstance(value.func, Global):
            return "pickled-object", {"class": value.func.qualname}
        return "other", {"python_type": type(value).__name__}
    keys = [str(k) for k in items]
    info: dict[str, Any] = {"top_level_keys": keys[:32]}
    if items and all(is_tensor_rebuild(v) for v in items.values()):
        return "state-dict", info
    lowered = {k.lower(): k for k in keys}
    if "pytorch-lightning_version" in lowered:
        return "lightning-checkpoint", info
    optimizer = [lowered[k] for k in OPTIMIZER_KEYS if k in lowered]
    counters, _ = plain_values(items)
    if counters:
        info["counters"] = counters
    if optimizer:
        info["optimizer_keys"] = optimizer
        return "training-checkpoint", info
    if any(k in lowered for k in _MODEL_KEYS):
        return "checkpoint", info
    if any(is_tensor_rebuild(v) for v in items.values()):
        return "state-dict", info
    return "dict", info


def plain_values(items: dict[Any, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(numbers, other plain values) at the top of a checkpoint dict: epoch, step, loss; versions, flags."""
    numbers: dict[str, Any] = {}
    others: dict[str, Any] = {}
    for key, value in items.items():
        if len(numbers) + len(others) >= _MAX_PLAIN:
            break
        if is_plain_number(value):
            numbers[str(key)] = value
        elif isinstance(value, bool) or (isinstance(value, str) and len(value) <= 200):
            others[str(key)] = value
    return numbers, others


def kind_details(result: PickleResult) -> dict[str, Any]:
    kind, info = checkpoint_kind(result.value)
    details: dict[str, Any] = {"checkpoint_kind": kind, **info}
    details["tensor_records"] = sum(1 for c in result.calls if is_tensor_rebuild(c))
    foreign = sorted(
        {g.qualname for g in result.globals if not g.module.startswith(("torch", "collections"))}
    )
    if foreign:
        details["imports_outside_torch"] = foreign[:16]
    return details
