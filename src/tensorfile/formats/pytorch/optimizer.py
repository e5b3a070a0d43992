"""Optimizer state (slots, hyperparameters) read from the symbolic optimizer dicts of a torch
training checkpoint."""

from __future__ import annotations

from typing import Any

from ...model import OptimizerState, TensorInfo, is_plain_number, optimizer_state
from ...torchpickle import OPTIMIZER_KEYS
from .kind import mapping


def _optimizer_dicts(value: Any, depth: int = 0) -> list[dict[Any, Any]]:
    """Optimizer state dicts ({state, param_groups}) under an optimizer key: one, a list (Lightning's
    optimizer_states) or a dict of them (several named optimizers)."""
    items = mapping(value)
    if items is not None and "state" in items and "param_groups" in items:
        return [items]
    if depth >= 3:
        return []
    children = (
        list(items.values()) if items is not None else value if isinstance(value, (list, tuple)) else []
    )
    return [d for child in children[:64] for d in _optimizer_dicts(child, depth + 1)]


def _hyperparameters(group: Any) -> dict[str, Any]:
    """Numbers of a torch param group (lr, betas, eps, weight_decay…); flags and param ids left out."""
    items = mapping(group) or {}
    out: dict[str, Any] = {}
    for key, value in items.items():
        if key == "params":
            continue
        if is_plain_number(value):
            out[str(key)] = value
        elif isinstance(value, (tuple, list)) and 0 < len(value) <= 8 and all(map(is_plain_number, value)):
            out[str(key)] = list(value)
    return out


def read_optimizer(items: dict[Any, Any], tensors: list[TensorInfo]) -> OptimizerState | None:
    """Slots (exp_avg, exp_avg_sq, step…) and hyperparameters read from the symbolic optimizer dicts.

    torch's optimizer state dict does not record the optimizer class, so `name` stays None; the
    slots and hyperparameters say which family it is.
    """
    found = [
        d
        for key, value in items.items()
        if str(key).lower() in OPTIMIZER_KEYS
        for d in _optimizer_dicts(value)
    ]
    if not found and not tensors:
        return None
    slots: list[str] = []
    for opt in found:
        for per_param in list((mapping(opt["state"]) or {}).values())[:4096]:
            slots.extend(str(k) for k in (mapping(per_param) or {}))
    groups = found[0]["param_groups"] if found else None
    first = groups[0] if isinstance(groups, (list, tuple)) and groups else None
    return optimizer_state(tensors, slots=slots, hyperparameters=_hyperparameters(first))
