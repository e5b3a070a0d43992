"""What SETITEMS, APPENDS and ADDITEMS (and SETITEM, APPEND) do to each kind of target, as C does:
plain containers change, a call's result collects the items, an imported object is mutated (a call).

`calls` is the reading's list of calls; `soft` its note that CPython with stand-ins stops here.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..pickle_c import Broken as _Broken
from .plain import assign_index, c_key, extend_bytearray, hashable_key
from .records import Call, Global, PersistentRef

Soft = Callable[[str, int], None]


def _mutate(calls: list[Call], target: Global, kind: str, pos: int, values: list[Any]) -> None:
    # An imported object changed in place (a dict or list living in a module): recorded like a
    # BUILD on it, since that is what it is for.
    calls.append(Call(Global("builtins", "setstate"), (target, values), kind, pos))


def set_items(target: Any, pairs: list[Any], pos: int, calls: list[Call], soft: Soft) -> None:
    if not pairs:
        return  # C returns before looking at the target
    if len(pairs) % 2:
        raise _Broken("odd number of items for SETITEMS")
    if isinstance(target, dict):
        for k, v in zip(pairs[::2], pairs[1::2], strict=True):
            target[c_key(k)] = v
    elif isinstance(target, Call):
        for k, v in zip(pairs[::2], pairs[1::2], strict=True):
            target.items[hashable_key(k)] = v
    elif isinstance(target, Global):
        _mutate(calls, target, "setitems", pos, pairs)
    elif isinstance(target, PersistentRef):
        pass
    elif isinstance(target, (list, bytearray)):
        for k, v in zip(pairs[::2], pairs[1::2], strict=True):
            assign_index(target, k, v, soft, pos)
    else:
        raise _Broken(f"'{type(target).__name__}' object does not support item assignment")


def append_items(target: Any, values: list[Any], pos: int, calls: list[Call], soft: Soft) -> None:
    if not values:
        return
    if isinstance(target, list):
        target.extend(values)
    elif isinstance(target, Call):
        target.list_items.extend(values)
    elif isinstance(target, Global):
        _mutate(calls, target, "appends", pos, values)
    elif isinstance(target, PersistentRef):
        pass
    elif isinstance(target, bytearray):
        extend_bytearray(target, values, soft, pos)
    else:
        raise _Broken(f"'{type(target).__name__}' object has no attribute 'append'")


def add_items(target: Any, values: list[Any], pos: int, calls: list[Call], soft: Soft) -> None:
    if not values:
        return
    if isinstance(target, set):
        target.update(c_key(v) for v in values)
    elif isinstance(target, Call):
        target.list_items.extend(values)
    elif isinstance(target, Global):
        _mutate(calls, target, "additems", pos, values)
    elif not isinstance(target, PersistentRef):
        raise _Broken(f"'{type(target).__name__}' object has no attribute 'add'")
