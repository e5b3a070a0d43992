"""Detection helpers: does a byte string open like a pickle, parse as one, and what does it import?

These use the standard library's `pickletools.genops`, which parses opcodes and never executes.
"""

from __future__ import annotations

import io
import pickle
import pickletools
from typing import Any


def is_pickle_start(head: bytes) -> int | None:
    """The pickle protocol `head` opens with (0-5), or None when it does not look like a pickle.

    Protocol 2+ pickles open with PROTO n. Protocol 0/1 pickles have no header, so accept only
    the openings real ones have: MARK, an empty container, or a GLOBAL/INST with a dotted name.
    """
    if len(head) >= 2 and head[0] == 0x80 and 2 <= head[1] <= 5:
        return head[1]
    if not head:
        return None
    first = head[:1]
    if first in (b"}", b"]", b")"):
        return 1 if len(head) > 1 and head[1:2] in (b"q", b"r", b"(", b".") else None
    if first in (b"c", b"i"):
        line = head[1:].split(b"\n", 1)[0]
        return 0 if 0 < len(line) < 200 and line.replace(b"_", b"").replace(b".", b"").isalnum() else None
    if (
        first == b"("
        and len(head) > 1
        and head[1:2] in (b"d", b"l", b"t", b"c", b"i", b"S", b"V", b"I", b"(")
    ):
        return 0
    return None


def parses_as_pickle(head: bytes, min_opcodes: int = 3) -> bool:
    """Whether `head` decodes as pickle opcodes up to STOP or up to where it is cut short."""
    count = 0
    try:
        for opcode, arg, _pos in pickletools.genops(io.BytesIO(head)):
            if opcode.name == "PROTO" and isinstance(arg, int) and arg > pickle.HIGHEST_PROTOCOL:
                # pickle.load refuses the stream right here ("unsupported pickle protocol"): what
                # came before is all that could run. Raw bf16 1.0 values (80 3F) read this way.
                return count >= min_opcodes
            count += 1
            if opcode.name == "STOP":
                return True
    except ValueError as exc:
        # genops says "unknown opcode"/"invalid ..." for garbage, anything else is a cut-short
        # read. joblib writes raw array bytes between opcodes, so a long valid prefix counts.
        text = str(exc)
        if "unknown" in text or "invalid" in text or "no newline" in text:
            return count >= 16
        return count >= min_opcodes
    except (EOFError, UnicodeDecodeError):
        return count >= min_opcodes
    return count >= min_opcodes


def scan_globals(data: bytes, limit: int = 1 << 20) -> list[str]:
    """The globals a pickle names in its first `limit` bytes, even when it is cut short.

    For detection only: a truncated head still shows which modules it imports.
    """
    names: list[str] = []
    strings: list[str] = []
    memo: dict[int, Any] = {}
    last: Any = None  # value on top of the stack, as far as memo bookkeeping needs it
    try:
        for opcode, arg, _pos in pickletools.genops(io.BytesIO(data[:limit])):
            op = opcode.name
            if op in ("GLOBAL", "INST"):
                names.append(str(arg).replace(" ", "."))
                last = None
            elif op == "STACK_GLOBAL":
                if len(strings) >= 2:
                    names.append(f"{strings[-2]}.{strings[-1]}")
                last = None
            elif op.endswith(("UNICODE", "STRING")) and isinstance(arg, str):
                strings.append(arg)
                last = arg
            elif op in ("BINPUT", "LONG_BINPUT", "PUT"):
                memo[arg] = last
            elif op == "MEMOIZE":
                memo[len(memo)] = last
            elif op in ("BINGET", "LONG_BINGET", "GET"):
                last = memo.get(arg)
                if isinstance(last, str):
                    strings.append(last)
            elif op == "STOP":
                break
            else:
                last = None
    except (ValueError, EOFError, UnicodeDecodeError):
        pass
    return names
