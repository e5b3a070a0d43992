"""How CPython's C unpickler (Modules/_pickle.c) reads the bytes of a pickle, for `picklevm`.

The opcode loop lives in picklevm; this module holds what _pickle.c decides about the bytes
themselves, where a naive reader decides differently:

- text arguments: INT through C's strtol in base 0 (`0x10` is 16, `010` is 8, a NUL byte ends the
  number), then int(s, 0); LONG in base 0 with one trailing L; FLOAT through PyOS_string_to_double
  (no whitespace, no underscores, overflow refused); PUT/GET indices in base 10; GLOBAL names as
  strict UTF-8 and INST names as ASCII, an empty line refused;
- names: below protocol 3, Python 2 names go through `_compat_pickle` as C's find_class maps them;
- frames: C reads a FRAME's bytes into its buffer. From a stream without peek() (io.BytesIO,
  which is how torch.load reads a zip record) a read that runs past the end of that buffer drops
  the rest of it and takes its bytes from after it: `FrameBuffer` reads the same way.

`Broken` is raised where C raises; picklevm turns it into its error.
"""

from __future__ import annotations

import _compat_pickle
import codecs
import re
import warnings
from math import isinf
from typing import Any

SSIZE_MAX = (1 << 63) - 1


class Broken(Exception):
    """The opcode program is invalid at this point (becomes FormatError or a lenient result)."""


# --- names ---------------------------------------------------------------------------------------

# Python 2 names, as C's find_class maps them below protocol 3 (fix_imports, the default of
# pickle.load and torch.load).
NAME_MAPPING: dict[tuple[str, str], tuple[str, str]] = _compat_pickle.NAME_MAPPING
IMPORT_MAPPING: dict[str, str] = _compat_pickle.IMPORT_MAPPING


def resolve_name(module: str, name: str, protocol: int) -> tuple[str, str]:
    """The (module, name) CPython's find_class imports for a global written as (module, name)."""
    if protocol < 3:
        if (module, name) in NAME_MAPPING:
            return NAME_MAPPING[(module, name)]
        if module in IMPORT_MAPPING:
            return IMPORT_MAPPING[module], name
    return module, name


def name_line(line: bytes, encoding: str) -> str:
    """A GLOBAL (UTF-8) or INST (ASCII) name line, decoded strictly as C does."""
    if not line:
        raise Broken("truncated")  # C: "pickle data was truncated" for an empty line
    return line.decode(encoding)


# --- text arguments ------------------------------------------------------------------------------


def c_string(line: bytes) -> bytes:
    """The argument as C's string functions see it: the line up to its first NUL byte."""
    return line.split(b"\0", 1)[0]


_SPACES = b" \t\n\v\f\r"
_DIGITS = {8: b"01234567", 10: b"0123456789", 16: b"0123456789abcdefABCDEF"}


def strtol(s: bytes) -> tuple[int | None, int]:
    """C's strtol(s, &end, 0): (value, or None when it overflows a long; index of end)."""
    i, n = 0, len(s)
    while i < n and s[i] in _SPACES:
        i += 1
    negative = i < n and s[i] == 0x2D
    if i < n and s[i] in b"+-":
        i += 1
    base = 10
    if s[i : i + 2] in (b"0x", b"0X") and i + 2 < n and s[i + 2] in _DIGITS[16]:
        base, i = 16, i + 2
    elif s[i : i + 1] == b"0":
        base = 8
    j = i
    while j < n and s[j] in _DIGITS[base]:
        j += 1
    if j == i:
        return 0, 0  # no digits: end is the start of the string
    value = int(s[i:j], base) * (-1 if negative else 1)
    return (value if -(1 << 63) <= value < 1 << 63 else None), j


def _argument(line: bytes) -> bytes:
    if not line:
        raise Broken("truncated")  # C: a line of just "\n" is "pickle data was truncated"
    return c_string(line)


def c_int(line: bytes) -> int:
    """INT: strtol in base 0 (0x.. hex, 0.. octal), else int(s, 0); "00"/"01" are booleans."""
    s = _argument(line)
    value, end = strtol(s)
    if value is None or end != len(s):
        return int(s, 0)  # "could not convert string to int" when this fails too
    if len(line) == 2 and value in (0, 1):  # "I00" / "I01" are the protocol-0 booleans
        return bool(value)
    return value


def c_long(line: bytes) -> int:
    """LONG: one trailing L dropped, then base 0."""
    _argument(line)
    return int(c_string(line[:-1] if line.endswith(b"L") else line), 0)


# PyOS_string_to_double: no whitespace, no underscores, inf/infinity/nan in any case.
_FLOAT = re.compile(rb"[+-]?(?:(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][+-]?[0-9]+)?|inf(?:inity)?|nan)", re.I)


def c_float(line: bytes) -> float:
    s = _argument(line)
    match = _FLOAT.match(s)
    if match is None or match.end() != len(s):
        raise Broken("could not convert string to float")
    value = float(s)
    if isinf(value) and not s.lstrip(b"+-")[:1].isalpha():  # a finite literal that overflows
        raise Broken("FLOAT value too large to convert to float")
    return value


def c_index(line: bytes) -> int:
    """A PUT/GET memo index (PyLong_FromString in base 10)."""
    value = int(_argument(line), 10)
    if not -(1 << 63) <= value <= SSIZE_MAX:
        raise Broken("memo index too large")
    return value


def string_arg(line: bytes) -> str:
    """A protocol-0 STRING argument: a quoted Python 2 string literal with backslash escapes."""
    if len(line) < 2 or line[:1] != line[-1:] or line[:1] not in (b"'", b'"'):
        raise Broken("STRING argument is not quoted")
    with warnings.catch_warnings():  # an unknown escape such as \l is kept, with a DeprecationWarning
        warnings.simplefilter("ignore")
        return codecs.escape_decode(line[1:-1])[0].decode("latin-1")


def long_line(stream: Any, first: bytes, limit: int) -> tuple[int, int]:
    """A text argument longer than `limit`, found to its newline in chunks: (offset, length)."""
    begin = stream.tell() - len(first)
    length = len(first)
    while True:
        chunk = stream.readline(limit)
        if not chunk:
            raise Broken("truncated")
        if chunk.endswith(b"\n"):
            return begin, length + len(chunk) - 1
        length += len(chunk)


# --- frames --------------------------------------------------------------------------------------


def bytes_exist(stream: Any, offset: int) -> bool | None:
    """Whether the stream holds a byte before `offset` (None when it cannot be told cheaply)."""
    try:
        here = stream.tell()
        stream.seek(offset - 1)
        found = len(stream.read(1)) == 1
        stream.seek(here)
    except (OSError, ValueError, OverflowError):
        return None
    return found


class FrameBuffer:
    """The input as C's unpickler buffers a stream without peek() (io.BytesIO; torch.load hands
    each zip record to it as one): a FRAME's bytes are read into a buffer, and a read that runs
    past the buffer's end drops the rest of the buffer and takes its bytes from after it. Only
    BINBYTES and BYTEARRAY8 payloads (C's readinto path) go on contiguously."""

    def __init__(self, stream: Any) -> None:
        self.stream = stream
        self.end = -1  # where the buffered frame bytes end, -1 when the buffer is used up
        self.tell = stream.tell
        self.seek = stream.seek

    def _at(self, n: int) -> None:
        """Position for a read of n bytes through C's buffer."""
        if self.end >= 0 and self.tell() + n >= self.end:
            if self.tell() + n > self.end and self.tell() < self.end:
                self.stream.seek(self.end)  # the rest of the frame is dropped
            self.end = -1

    def read(self, n: int = -1) -> bytes:
        self._at(n)
        return self.stream.read(n)

    def read_contiguous(self, n: int) -> bytes:
        if self.end >= 0 and self.tell() + n >= self.end:
            self.end = -1
        return self.stream.read(n)

    def skip(self, n: int, contiguous: bool) -> int:
        """Where an n-byte payload that is not read into memory lies."""
        if contiguous:
            self.read_contiguous(0)
        else:
            self._at(n)
        return self.tell()

    def readline(self, limit: int = -1) -> bytes:
        if self.end >= 0:
            here = self.tell()
            chunk = self.stream.read(min(self.end - here, limit))
            cut = chunk.find(b"\n")
            if cut >= 0:
                self.stream.seek(here + cut + 1)
                return chunk[: cut + 1]
            self.stream.seek(self.end)  # no newline in the buffer: C reads a new line after it
            self.end = -1
        return self.stream.readline(limit)

    def frame(self, n: int) -> None:
        """FRAME of n bytes: C reads them into its buffer unless they are in it already."""
        here = self.tell()
        if (self.end >= 0 and here + n <= self.end) or (self.end < 0 and n == 0):
            return
        start = self.end if 0 <= here < self.end else here  # the rest of the old buffer is dropped
        if n and bytes_exist(self.stream, start + n) is False:
            raise Broken("FRAME claims more bytes than the data holds: truncated")
        self.stream.seek(start)
        self.end = start + n
