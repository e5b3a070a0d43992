"""Pickle programs for the differential referee: plain data pickled by CPython, opcode programs
assembled at random (every opcode, the odd argument spellings C accepts, names that need the
Python 2 mapping, frames that lie), and mutations of both. Deterministic for a given seed, so the
suite's short run and bench/pickle_differential.py's long run draw from the same families.
"""

from __future__ import annotations

import collections
import datetime
import decimal
import fractions
import pickle
import random
import struct
from collections.abc import Callable
from typing import Any

# Names a program may import: the referee never imports any of them (stand-ins only).
NAMES = [
    ("os", "system"),
    ("builtins", "eval"),
    ("__builtin__", "xrange"),
    ("__builtin__", "long"),
    ("__builtin__", "set"),
    ("__builtin__", "reduce"),
    ("copy_reg", "_reconstructor"),
    ("exceptions", "ValueError"),
    ("UserDict", "UserDict"),
    ("urllib", "urlopen"),
    ("collections", "OrderedDict"),
    ("torch._utils", "_rebuild_tensor_v2"),
    ("torch", "FloatStorage"),
    ("os", "path.join"),
    ("builtins", "getattr.__call__"),
    ("x", "a.<locals>.b"),
    ("x", "a..b"),
    ("numpy.core.multiarray", "_reconstruct"),
    ("cPickle", "loads"),
    ("", "empty"),
    ("m\u00e9", "n\u00e9"),
]


def plain_objects(rng: random.Random, depth: int = 0) -> Any:
    """A random tree of the data types pickle writes without custom classes."""
    leaves: list[Callable[[], Any]] = [
        lambda: rng.randint(-(1 << 70), 1 << 70),
        lambda: rng.randint(-300, 300),
        lambda: rng.random() * 10 ** rng.randint(-300, 300),
        lambda: rng.choice([float("inf"), float("nan"), -0.0]),
        lambda: "".join(
            chr(rng.choice([rng.randint(32, 126), rng.randint(0xA0, 0x2FFF), 0xD800]))
            for _ in range(rng.randint(0, 8))
        ),
        lambda: bytes(rng.randint(0, 255) for _ in range(rng.randint(0, 12))),
        lambda: bytearray(rng.randint(0, 255) for _ in range(rng.randint(0, 6))),
        lambda: rng.choice([None, True, False]),
        lambda: complex(rng.random(), rng.random()),
        lambda: decimal.Decimal(rng.randint(-999, 999)) / 7,
        lambda: fractions.Fraction(rng.randint(1, 99), rng.randint(1, 99)),
        lambda: datetime.datetime(
            2000 + rng.randint(0, 30), 1 + rng.randint(0, 11), 1 + rng.randint(0, 27), 1, 2, 3
        ),
        lambda: datetime.date(2020, 2, 29),
        lambda: datetime.timedelta(seconds=rng.randint(0, 10**6)),
        lambda: datetime.timezone(datetime.timedelta(hours=rng.randint(-12, 12))),
        lambda: range(rng.randint(0, 5), rng.randint(5, 50), rng.randint(1, 3)),
        lambda: slice(rng.randint(0, 5), None, 2),
        lambda: Ellipsis,
    ]
    if depth > 3 or rng.random() < 0.4:
        return rng.choice(leaves)()
    kids = [plain_objects(rng, depth + 1) for _ in range(rng.randint(0, 4))]
    hashable = [k for k in kids if _hashable(k)]
    kind = rng.randint(0, 9)
    if kind == 0:
        return kids
    if kind == 1:
        return tuple(kids)
    if kind == 2:
        return {k: v for k, v in zip(hashable, kids, strict=False)}
    if kind == 3:
        return set(hashable)
    if kind == 4:
        return frozenset(hashable)
    if kind == 5:
        return collections.OrderedDict(zip(map(str, range(len(kids))), kids, strict=True))
    if kind == 6:
        d: collections.defaultdict[Any, Any] = collections.defaultdict(list)
        d.update(zip(map(str, range(len(kids))), kids, strict=True))
        return d
    if kind == 7:
        return collections.Counter({str(i): i for i in range(len(kids))})
    if kind == 8:
        return collections.deque(kids)
    shared = kids or [1]
    return [shared, shared, {"again": shared}]  # memo references


def _hashable(value: Any) -> bool:
    try:
        hash(value)
    except TypeError:
        return False
    return True


def pickled(rng: random.Random) -> bytes:
    """Plain data as CPython's own pickler writes it, any protocol, with or without fix_imports."""
    return pickle.dumps(plain_objects(rng), protocol=rng.randint(0, 5), fix_imports=rng.random() < 0.7)


class _Program:
    def __init__(self, rng: random.Random) -> None:
        self.rng = rng
        self.out = bytearray()

    def op(self, data: bytes) -> None:
        self.out += data

    def line(self, text: bytes) -> bytes:
        return text + b"\n"

    def string(self) -> None:
        rng = self.rng
        text = rng.choice(
            [
                "os",
                "system",
                "builtins",
                "eval",
                "__builtin__",
                "xrange",
                "a.b",
                "",
                "x" * rng.randint(1, 300),
            ]
        )
        raw = text.encode("utf-8")
        choice = rng.randint(0, 5)
        if choice == 0:
            self.op(b"\x8c" + bytes([len(raw) % 256]) + raw[:255])
        elif choice == 1:
            self.op(b"X" + struct.pack("<I", len(raw)) + raw)
        elif choice == 2:
            self.op(b"V" + raw.replace(b"\n", b"") + b"\n")
        elif choice == 3:
            self.op(b"S'" + raw.replace(b"\n", b"") + b"'\n")
        elif choice == 4:
            self.op(b"U" + bytes([len(raw) % 256]) + raw[:255])
        else:
            self.op(b"X\x02\x00\x00\x00\xed\xa0")  # a lone surrogate (surrogatepass)

    def number(self) -> None:
        rng = self.rng
        spelled = rng.choice(
            [
                b"5",
                b"0x10",
                b"010",
                b"08",
                b" 7",
                b"1_0",
                b"00",
                b"01",
                b"5\x00z",
                b"-0x1f",
                b"+3",
                b"99999999999999999999",
                b"",
                b"x",
            ]
        )
        choice = rng.randint(0, 6)
        if choice == 0:
            self.op(b"I" + spelled + b"\n")
        elif choice == 1:
            self.op(b"L" + spelled + rng.choice([b"L", b"", b"LL"]) + b"\n")
        elif choice == 2:
            self.op(
                b"F"
                + rng.choice(
                    [
                        b"1.5",
                        b" 1.5",
                        b"1_0",
                        b"1e999",
                        b"inf",
                        b"-nan",
                        b"1.",
                        b".5",
                        b"1e",
                        b"0x1p3",
                        b"1.5\x00z",
                        b"",
                    ]
                )
                + b"\n"
            )
        elif choice == 3:
            self.op(b"K" + bytes([rng.randint(0, 255)]))
        elif choice == 4:
            self.op(b"J" + struct.pack("<i", rng.randint(-(1 << 31), (1 << 31) - 1)))
        elif choice == 5:
            n = rng.choice([0, 1, 8, 300])
            self.op(
                b"\x8b"
                + struct.pack("<i", n if rng.random() < 0.9 else -1)
                + bytes(rng.randint(0, 255) for _ in range(n))
            )
        else:
            self.op(b"G" + struct.pack(">d", rng.random()))

    def name(self) -> None:
        module, attr = self.rng.choice(NAMES)
        choice = self.rng.randint(0, 3)
        if choice == 0:
            self.op(b"c" + module.encode() + b"\n" + attr.encode() + b"\n")
        elif choice == 1:
            self.op(b"(i" + module.encode() + b"\n" + attr.encode() + b"\n")
        else:
            for text in (module, attr):
                raw = text.encode()
                self.op(b"\x8c" + bytes([len(raw)]) + raw)
                if self.rng.random() < 0.3:
                    self.op(b"\x94")  # MEMOIZE, fetched back below
            if self.rng.random() < 0.3:
                self.op(b"0h\x00" if self.rng.random() < 0.5 else b"")
            self.op(b"\x93")

    def memo(self) -> None:
        rng = self.rng
        slot = rng.choice([0, 1, 2, 5, 255, 256, 70000, (1 << 24) + 3, (1 << 32) - 1])
        choice = rng.randint(0, 6)
        if choice == 0:
            self.op(b"q" + bytes([slot % 256]))
        elif choice == 1:
            self.op(b"h" + bytes([slot % 256]))
        elif choice == 2:
            self.op(b"r" + struct.pack("<I", slot))
        elif choice == 3:
            self.op(b"j" + struct.pack("<I", slot))
        elif choice == 4:
            self.op(b"p" + rng.choice([str(slot).encode(), b"-1", b" 1", b"1_0", b"x"]) + b"\n")
        elif choice == 5:
            self.op(b"g" + rng.choice([str(slot % 300).encode(), b" 1", b"1_0"]) + b"\n")
        else:
            self.op(b"\x94")

    def frame(self) -> None:
        rng = self.rng
        length = rng.choice([0, 1, 2, 5, 9, 40, 1 << 20, (1 << 63) + 1])
        self.op(b"\x95" + struct.pack("<Q", length % (1 << 64)))

    def structure(self) -> None:
        self.op(
            self.rng.choice(
                [
                    b"(",
                    b"t",
                    b"l",
                    b"d",
                    b"}",
                    b"]",
                    b")",
                    b"\x8f",
                    b"\x90",
                    b"\x91",
                    b"\x85",
                    b"\x86",
                    b"\x87",
                    b"a",
                    b"e",
                    b"s",
                    b"u",
                    b"R",
                    b"\x81",
                    b"\x92",
                    b"o",
                    b"b",
                    b"0",
                    b"1",
                    b"2",
                    b"N",
                    b"\x88",
                    b"\x89",
                    b"Q",
                    b"P1\n",
                    b"\x97",
                    b"\x98",
                    b"\x82\x05",
                    b"\x83\x00\x01",
                    b"\x84\xff\xff\xff\xff",
                    b"C\x03abc",
                    b"B\x02\x00\x00\x00ab",
                    b"\x96\x01\x00\x00\x00\x00\x00\x00\x00z",
                    b"\x80" + bytes([self.rng.randint(0, 6)]),
                    b".",
                    b"T\x02\x00\x00\x00ab",
                ]
            )
        )


def program(rng: random.Random) -> bytes:
    """An opcode program assembled at random, most of them valid enough to get somewhere."""
    prog = _Program(rng)
    if rng.random() < 0.8:
        prog.op(b"\x80" + bytes([rng.randint(0, 5)]))
    steps = [prog.string, prog.number, prog.name, prog.memo, prog.structure, prog.structure, prog.structure]
    if rng.random() < 0.2:
        steps.append(prog.frame)
    for _ in range(rng.randint(1, 30)):
        rng.choice(steps)()
    if rng.random() < 0.9:
        prog.op(b".")
    return bytes(prog.out)


def calls(rng: random.Random) -> bytes:
    """A well-formed program that imports and calls: the globals come in every spelling (GLOBAL,
    STACK_GLOBAL from strings or memo slots, INST), used by REDUCE, NEWOBJ, BUILD and SETITEM."""
    out = bytearray(b"\x80" + bytes([rng.randint(0, 5)]) + b"]q\x00")  # a list to collect results in
    slot = 1
    for _ in range(rng.randint(1, 8)):
        module, attr = rng.choice(NAMES[:14])
        kind = rng.randint(0, 4)
        if kind == 0:
            out += b"c" + module.encode() + b"\n" + attr.encode() + b"\n(K\x01tR"
        elif kind == 1:
            for text in (module, attr):
                raw = text.encode()
                out += b"\x8c" + bytes([len(raw)]) + raw + b"q" + bytes([slot])
                slot += 1
            out += b"00h" + bytes([slot - 2]) + b"h" + bytes([slot - 1]) + b"\x93)\x81"
        elif kind == 2:
            out += b"(i" + module.encode() + b"\n" + attr.encode() + b"\n"
        elif kind == 3:
            out += b"c" + module.encode() + b"\n" + attr.encode() + b"\n)R}\x8c\x01kK\x02sb"
        else:
            out += b"c" + module.encode() + b"\n" + attr.encode() + b"\n)R\x8c\x01kNs"
        out += b"a"  # onto the list
    return bytes(out + b".")


def framed(rng: random.Random) -> bytes:
    """A program re-framed at random: FRAME headers put in between opcodes, claiming the bytes up
    to the next header, a few more or fewer, or any length at all."""
    import pickletools

    body = calls(rng) if rng.random() < 0.5 else pickle.dumps(plain_objects(rng), protocol=2)
    starts = [pos for _, _, pos in pickletools.genops(body)][1:]  # after PROTO
    cuts = sorted(rng.sample(starts, min(len(starts), rng.randint(1, 4))))
    out = bytearray(body[: cuts[0]])
    for i, cut in enumerate(cuts):
        nxt = cuts[i + 1] if i + 1 < len(cuts) else len(body)
        length = nxt - cut
        choice = rng.randint(0, 4)
        if choice == 1:
            length = max(0, length + rng.choice([-3, -2, -1, 1, 2, 5]))
        elif choice == 2:
            length = rng.randint(0, 64)
        elif choice == 3:
            length = len(body) + rng.randint(1, 100)
        out += b"\x95" + struct.pack("<Q", length) + body[cut:nxt]
    return bytes(out)


def mutate(rng: random.Random, data: bytes) -> bytes:
    """A few byte flips, insertions, deletions and a cut, the way fuzzers break files."""
    out = bytearray(data)
    for _ in range(rng.randint(1, 4)):
        if not out:
            break
        pos = rng.randrange(len(out))
        action = rng.randint(0, 3)
        if action == 0:
            out[pos] = rng.randint(0, 255)
        elif action == 1:
            out[pos : pos + 1] = bytes([rng.choice(b"(tldRcq\x93\x94\x95.0N")]) + out[pos : pos + 1]
        elif action == 2:
            del out[pos]
        else:
            out[pos] ^= 1 << rng.randint(0, 7)
    if out and rng.random() < 0.2:
        del out[rng.randrange(len(out)) :]
    return bytes(out)


FAMILIES: dict[str, Callable[[random.Random], bytes]] = {
    "pickled": pickled,
    "program": program,
    "calls": calls,
    "framed": framed,
    "mutated-calls": lambda rng: mutate(rng, calls(rng)),
    "mutated-pickled": lambda rng: mutate(rng, pickled(rng)),
    "mutated-program": lambda rng: mutate(rng, program(rng)),
}
