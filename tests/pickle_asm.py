"""A tiny pickle assembler for tests: hostile pickles are written opcode by opcode.

Nothing here pickles a live object: each method appends the bytes of one opcode, so the tests
can reproduce published bypasses exactly without ever creating a dangerous object.
"""

from __future__ import annotations

import struct


class Asm:
    def __init__(self, protocol: int | None = 4) -> None:
        self.data = bytearray()
        if protocol is not None and protocol >= 2:
            self.data += bytes([0x80, protocol])

    def raw(self, data: bytes) -> Asm:
        self.data += data
        return self

    def global_(self, module: str, name: str) -> Asm:  # GLOBAL (text form, any protocol)
        self.data += b"c" + module.encode() + b"\n" + name.encode() + b"\n"
        return self

    def inst(self, module: str, name: str) -> Asm:
        self.data += b"i" + module.encode() + b"\n" + name.encode() + b"\n"
        return self

    def str_(self, text: str) -> Asm:  # SHORT_BINUNICODE / BINUNICODE
        raw = text.encode()
        if len(raw) < 256:
            self.data += b"\x8c" + bytes([len(raw)]) + raw
        else:
            self.data += b"X" + struct.pack("<I", len(raw)) + raw
        return self

    def bytes_(self, data: bytes) -> Asm:  # BINBYTES
        self.data += b"B" + struct.pack("<I", len(data)) + data
        return self

    def text_string(self, text: str) -> Asm:  # protocol 0 STRING
        self.data += b"S'" + text.encode() + b"'\n"
        return self

    def int_(self, value: int) -> Asm:  # BININT
        self.data += b"J" + struct.pack("<i", value)
        return self

    def stack_global(self) -> Asm:
        self.data += b"\x93"
        return self

    def mark(self) -> Asm:
        self.data += b"("
        return self

    def tuple_(self) -> Asm:
        self.data += b"t"
        return self

    def tuple1(self) -> Asm:
        self.data += b"\x85"
        return self

    def tuple2(self) -> Asm:
        self.data += b"\x86"
        return self

    def empty_tuple(self) -> Asm:
        self.data += b")"
        return self

    def empty_dict(self) -> Asm:
        self.data += b"}"
        return self

    def setitem(self) -> Asm:
        self.data += b"s"
        return self

    def reduce(self) -> Asm:
        self.data += b"R"
        return self

    def newobj(self) -> Asm:
        self.data += b"\x81"
        return self

    def obj(self) -> Asm:
        self.data += b"o"
        return self

    def build(self) -> Asm:
        self.data += b"b"
        return self

    def put(self, slot: int) -> Asm:  # BINPUT
        self.data += b"q" + bytes([slot])
        return self

    def get(self, slot: int) -> Asm:  # BINGET
        self.data += b"h" + bytes([slot])
        return self

    def memoize(self) -> Asm:
        self.data += b"\x94"
        return self

    def ext1(self, code: int) -> Asm:
        self.data += b"\x82" + bytes([code])
        return self

    def pop(self) -> Asm:
        self.data += b"0"
        return self

    def none(self) -> Asm:
        self.data += b"N"
        return self

    def stop(self) -> Asm:
        self.data += b"."
        return self

    def call(self, module: str, name: str, *args: str) -> Asm:
        """module.name(*args) via GLOBAL + TUPLE + REDUCE: the classic payload shape."""
        self.global_(module, name).mark()
        for arg in args:
            self.str_(arg)
        return self.tuple_().reduce()

    def build_bytes(self) -> bytes:
        return bytes(self.data)
