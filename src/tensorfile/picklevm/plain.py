"""How C's unpickler treats plain values: the type checks, item assignment, hashing and BUILD of
`Modules/_pickle.c` on the values a reading holds, each failing where C's fails.

`soft` is the reading's note that CPython with stand-ins stops here although a real object might
not (see `cpython_stop`).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from ..pickle_c import Broken as _Broken
from .records import Call, Global, LargeValue, PersistentRef

# C's memo is an array sized from the largest index written (2 slots per index): above this index
# the allocation (256 MiB) is refused on a small machine and may succeed on a big one.
CPYTHON_MEMO_LIMIT = 1 << 24
# Values whose behaviour the reader cannot know: an imported object (a stand-in class in the model),
# the result of a call, a persistent id's object.
OPAQUE = (Global, Call, PersistentRef)


def accepts(value: Any, types: type | tuple[type, ...]) -> bool | None:
    """True when C's type check passes, None when only a real object could pass it, else False."""
    if isinstance(value, types):
        return True
    return None if isinstance(value, OPAQUE) else False


def show(value: Any) -> str:
    return value if isinstance(value, str) else repr(value)


def put(memo: dict[int, Any], slot: int, value: Any, soft: Callable[[str, int], None], pos: int) -> None:
    if slot >= CPYTHON_MEMO_LIMIT:
        soft(f"memo slot {slot}: CPython first allocates a memo of {2 * slot} entries", pos)
    memo[slot] = value


def readonly(value: Any, soft: Callable[[str, int], None], pos: int) -> Any:
    """READONLY_BUFFER: a memoryview of a bytes-like value (a bytearray becomes read-only)."""
    if isinstance(value, bytes):
        return value
    if isinstance(value, bytearray):
        return bytes(value)
    if isinstance(value, LargeValue) and value.kind in ("bytes", "bytearray"):
        return LargeValue("bytes", value.offset, value.length, value.head)
    if isinstance(value, OPAQUE):
        soft("READONLY_BUFFER on a value computed while loading", pos)
        return value
    raise _Broken(f"memoryview: a bytes-like object is required, not '{type(value).__name__}'")


def byte_value(value: Any, soft: Callable[[str, int], None], pos: int) -> int | None:
    if isinstance(value, OPAQUE):
        soft("a byte computed while loading", pos)
        return None
    if not isinstance(value, int) or not 0 <= value < 256:
        raise _Broken("byte must be in range(0, 256)")
    return value


def assign_index(
    target: list[Any] | bytearray, index: Any, value: Any, soft: Callable[[str, int], None], pos: int
) -> None:
    """SETITEM on a list or bytearray: C calls target[index] = value."""
    if isinstance(index, OPAQUE):
        soft("an index computed while loading", pos)
        return
    if not isinstance(index, int):
        raise _Broken(f"{type(target).__name__} indices must be integers")
    if not -len(target) <= index < len(target):
        raise _Broken(f"{type(target).__name__} assignment index out of range")
    if isinstance(target, bytearray):
        byte = byte_value(value, soft, pos)
        if byte is not None:
            target[index] = byte
    else:
        target[index] = value


def extend_bytearray(
    target: bytearray, values: list[Any], soft: Callable[[str, int], None], pos: int
) -> None:
    """APPEND(S) on a bytearray: C calls its extend(), which takes integers 0-255."""
    for value in values:
        byte = byte_value(value, soft, pos)
        if byte is not None:
            target.append(byte)


def build_plain(state: Any, soft: Callable[[str, int], None], pos: int) -> None:
    """BUILD on a plain value (no __setstate__, no __dict__): C accepts only a state of None, or
    (None, {}) - anything else fails, unless a value computed while loading might be None."""
    if state is None:
        return
    if isinstance(state, OPAQUE):
        soft("BUILD is given a state computed while loading", pos)
        return
    if not (isinstance(state, tuple) and len(state) == 2):
        raise _Broken("BUILD on a plain value with a state it cannot take")
    inner, slots = state
    if isinstance(inner, OPAQUE) or isinstance(slots, OPAQUE):
        soft("BUILD is given a state computed while loading", pos)
    if inner is not None and not isinstance(inner, OPAQUE):
        raise _Broken("BUILD on a plain value with a state it cannot take")
    if not isinstance(slots, (dict, *OPAQUE)) or (isinstance(slots, dict) and slots):
        raise _Broken("BUILD on a plain value with a slot state it cannot take")


ATOMS = (str, int, float, complex, bytes, bool, type(None), Global, PersistentRef, LargeValue, Call)
MAX_KEY_DEPTH = 64


def hashable_key(key: Any) -> Any:
    """`key` if it can be a dict/set key, else a stand-in string.

    CPython hashes nested tuples recursively in C with no depth check, so a pickle that builds a
    tuple 200,000 levels deep and uses it as a key would crash the interpreter; such keys (and
    repr of them) are never attempted.
    """
    if isinstance(key, ATOMS):
        return key
    if isinstance(key, (tuple, frozenset)) and depth(key, MAX_KEY_DEPTH) <= MAX_KEY_DEPTH:
        try:
            hash(key)
        except TypeError:
            return f"<unhashable {type(key).__name__}>"
        return key
    return f"<unhashable {type(key).__name__}>"


def c_key(value: Any) -> Any:
    """`value` as a dict or set key, or the TypeError C's hashing raises for it."""
    if isinstance(value, (list, dict, set, bytearray)) or (
        isinstance(value, LargeValue) and value.kind == "bytearray"
    ):
        raise _Broken(f"unhashable type: '{type(value).__name__}'")
    if isinstance(value, (tuple, frozenset)):
        if depth(value, MAX_KEY_DEPTH) > MAX_KEY_DEPTH:
            return f"<unhashable {type(value).__name__}>"
        try:
            hash(value)
        except TypeError as exc:
            raise _Broken(str(exc)) from None
    return value


def depth(value: Any, limit: int) -> int:
    """Nesting depth of tuples/frozensets in `value`, counted only up to `limit` + 1."""
    deepest = 0
    stack = [(value, 1)]
    while stack:
        item, level = stack.pop()
        if level > limit:
            return level
        deepest = max(deepest, level)
        stack.extend((child, level + 1) for child in item if isinstance(child, (tuple, frozenset)))
    return deepest
