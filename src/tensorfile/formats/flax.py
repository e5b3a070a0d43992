"""JAX/Flax msgpack: flax.serialization.to_bytes of a nested dict, arrays as msgpack ext type 1."""

from __future__ import annotations

import struct
from pathlib import Path
from typing import Any

from ..dtypes import UnknownDType, lookup, nbytes
from ..errors import FormatError
from ..model import (
    CERTAIN,
    LIKELY,
    Detection,
    Identification,
    ModelInfo,
    TensorInfo,
    is_plain_number,
    new_checkpoint,
    optimizer_state,
)
from ..probe import FileProbe
from ..source import ByteSource, open_source, read_exact

EXT_NDARRAY, EXT_NATIVE_COMPLEX, EXT_NPSCALAR = 1, 2, 3
_TRAIN_STATE_KEYS = {"step", "params", "opt_state"}


class _Stop(Exception):
    """The walk ran past the bytes we hold or found what it needed."""


class _Walker:
    """Walks msgpack in a byte prefix without materialising values."""

    def __init__(self, buf: bytes) -> None:
        self.buf = buf
        self.ext_types: dict[int, int] = {}
        self.visited = 0

    def _need(self, pos: int, n: int) -> None:
        if pos + n > len(self.buf):
            raise _Stop

    def _uint(self, pos: int, n: int) -> int:
        self._need(pos, n)
        return int.from_bytes(self.buf[pos : pos + n], "big")

    def map_header(self, pos: int) -> tuple[int, int] | None:
        self._need(pos, 1)
        b = self.buf[pos]
        if 0x80 <= b <= 0x8F:
            return b & 0x0F, pos + 1
        if b == 0xDE:
            return self._uint(pos + 1, 2), pos + 3
        if b == 0xDF:
            return self._uint(pos + 1, 4), pos + 5
        return None

    def string(self, pos: int) -> tuple[str, int] | None:
        self._need(pos, 1)
        b = self.buf[pos]
        if 0xA0 <= b <= 0xBF:
            n, start = b & 0x1F, pos + 1
        elif b == 0xD9:
            n, start = self._uint(pos + 1, 1), pos + 2
        elif b == 0xDA:
            n, start = self._uint(pos + 1, 2), pos + 3
        elif b == 0xDB:
            n, start = self._uint(pos + 1, 4), pos + 5
        else:
            return None
        self._need(start, n)
        return self.buf[start : start + n].decode("utf-8", "replace"), start + n

    def skip(self, pos: int, depth: int = 0) -> int:
        """Position after the value at `pos`, recording ext types on the way."""
        if depth > 64:
            raise ValueError("nesting too deep")
        self.visited += 1
        self._need(pos, 1)
        b = self.buf[pos]
        if b <= 0x7F or b >= 0xE0 or b in (0xC0, 0xC2, 0xC3):
            return pos + 1
        if 0x80 <= b <= 0x8F or b in (0xDE, 0xDF):
            n, p = self.map_header(pos)  # type: ignore[misc]
            for _ in range(2 * n):
                p = self.skip(p, depth + 1)
            return p
        if 0x90 <= b <= 0x9F or b in (0xDC, 0xDD):
            n, p = (
                (b & 0x0F, pos + 1)
                if b <= 0x9F
                else ((self._uint(pos + 1, 2), pos + 3) if b == 0xDC else (self._uint(pos + 1, 4), pos + 5))
            )
            for _ in range(n):
                p = self.skip(p, depth + 1)
            return p
        if 0xA0 <= b <= 0xBF or b in (0xD9, 0xDA, 0xDB):
            return self.string(pos)[1]  # type: ignore[index]
        sizes = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8, 0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8, 0xCA: 4, 0xCB: 8}
        if b in sizes:
            return pos + 1 + sizes[b]
        if b in (0xC4, 0xC5, 0xC6):  # bin 8/16/32
            width = {0xC4: 1, 0xC5: 2, 0xC6: 4}[b]
            return pos + 1 + width + self._uint(pos + 1, width)
        if 0xD4 <= b <= 0xD8:  # fixext 1..16
            self._need(pos, 2)
            self._ext(struct.unpack_from("b", self.buf, pos + 1)[0])
            return pos + 2 + (1 << (b - 0xD4))
        if b in (0xC7, 0xC8, 0xC9):  # ext 8/16/32
            width = {0xC7: 1, 0xC8: 2, 0xC9: 4}[b]
            n = self._uint(pos + 1, width)
            self._need(pos + 1 + width, 1)
            self._ext(struct.unpack_from("b", self.buf, pos + 1 + width)[0])
            return pos + 2 + width + n
        raise ValueError(f"byte {b:#x} is not msgpack")

    def _ext(self, code: int) -> None:
        self.ext_types[code] = self.ext_types.get(code, 0) + 1
        if self.ext_types.get(EXT_NDARRAY, 0) >= 4:
            raise _Stop


def detect_file(probe: FileProbe) -> Detection | None:
    walker = _Walker(probe.head)
    try:
        header = walker.map_header(0)
    except _Stop:
        return None
    if header is None or header[0] == 0:
        return None
    count, pos = header
    keys: list[str] = []
    try:
        for _ in range(count):
            key = walker.string(pos)
            if key is None:
                return None
            keys.append(key[0])
            pos = walker.skip(key[1])
    except _Stop:
        pass
    except (ValueError, UnicodeDecodeError):
        return None
    if not keys:
        return None
    arrays = walker.ext_types.get(EXT_NDARRAY, 0) + walker.ext_types.get(EXT_NPSCALAR, 0)
    unknown_ext = set(walker.ext_types) - {EXT_NDARRAY, EXT_NATIVE_COMPLEX, EXT_NPSCALAR}
    if unknown_ext:
        return None
    details: dict[str, Any] = {"top_level_keys": keys[:16]}
    if set(keys) >= _TRAIN_STATE_KEYS:
        details["kind"] = "train-state"
    evidence = [f"msgpack map with string keys ({', '.join(keys[:4])}{'…' if len(keys) > 4 else ''})"]
    if arrays:
        evidence.append("arrays as msgpack ext type 1 (flax.serialization ndarray)")
        return Detection("flax-msgpack", CERTAIN, evidence, details)
    if probe.ext in (".msgpack", ".flax"):
        return Detection("flax-msgpack", LIKELY, evidence, details, ["no array found in the first bytes"])
    return None


# --- inspect --------------------------------------------------------------------------------------
#
# The whole file is walked, but array bytes are only skipped over: a 10 GB checkpoint costs the
# same handful of reads per array as a 10 KB one. Each ndarray is ext type 1 whose payload is itself
# msgpack [shape, dtype name, bin data]; the bin header inside gives the data's absolute offset.

CHUNK_MARKER = "__msgpack_chunked_array__"
_MAX_DEPTH = 128
_MAX_KEY = 1 << 16  # dict keys are parameter names; a longer one is a corrupt length
_MAX_PLAIN = 100_000  # scalar leaves remembered (hyperparameters, chunk shapes); beyond: not recorded
_OPTIMIZER_KEYS = {"opt_state", "optimizer_state", "opt"}
_BUFFER_KEYS = {"batch_stats", "cache", "step"}
_INT_WIDTHS = {0xCC: 1, 0xCD: 2, 0xCE: 4, 0xCF: 8, 0xD0: 1, 0xD1: 2, 0xD2: 4, 0xD3: 8}


class _Stream:
    """Positioned reads through a ByteSource with a small window cache; skipping costs nothing."""

    WINDOW = 1 << 16

    def __init__(self, source: ByteSource) -> None:
        self.source = source
        self.size = source.size
        self._buf = b""
        self._start = 0

    def read(self, pos: int, n: int, what: str) -> bytes:
        if pos + n > self.size:
            raise FormatError(
                f"{what} at offset {pos} (+{n} bytes) runs past the end of the file "
                f"({self.size} bytes): truncated or corrupt",
                self.source.name,
            )
        rel = pos - self._start
        if rel >= 0 and rel + n <= len(self._buf):
            return self._buf[rel : rel + n]
        if n > self.WINDOW:
            return read_exact(self.source, pos, n, what)
        self._buf = self.source.read_at(pos, self.WINDOW)
        self._start = pos
        if len(self._buf) < n:
            raise FormatError(f"{what} at offset {pos}: short read", self.source.name)
        return self._buf[:n]

    def byte(self, pos: int, what: str) -> int:
        return self.read(pos, 1, what)[0]

    def uint(self, pos: int, n: int, what: str) -> int:
        return int.from_bytes(self.read(pos, n, what), "big")


def _header(s: _Stream, pos: int) -> tuple[str, int, int]:
    """(kind, n, next): kind is map/array/str/bin/ext/scalar; n the entry count or byte length.

    For `ext`, next points at the type byte. For `scalar`, n is unused and next is past the value.
    """
    b = s.byte(pos, "msgpack value")
    if b <= 0x7F or b >= 0xE0 or b in (0xC0, 0xC2, 0xC3):
        return "scalar", 0, pos + 1
    if 0x80 <= b <= 0x8F:
        return "map", b & 0x0F, pos + 1
    if 0x90 <= b <= 0x9F:
        return "array", b & 0x0F, pos + 1
    if 0xA0 <= b <= 0xBF:
        return "str", b & 0x1F, pos + 1
    if b in (0xDE, 0xDF, 0xDC, 0xDD):
        width = 2 if b in (0xDE, 0xDC) else 4
        return (
            ("map" if b in (0xDE, 0xDF) else "array"),
            s.uint(pos + 1, width, "msgpack length"),
            pos + 1 + width,
        )
    if b in (0xD9, 0xDA, 0xDB, 0xC4, 0xC5, 0xC6):
        width = {0xD9: 1, 0xDA: 2, 0xDB: 4, 0xC4: 1, 0xC5: 2, 0xC6: 4}[b]
        kind = "str" if b >= 0xD9 else "bin"
        return kind, s.uint(pos + 1, width, "msgpack length"), pos + 1 + width
    if b in _INT_WIDTHS or b in (0xCA, 0xCB):
        return "scalar", 0, pos + 1 + (_INT_WIDTHS.get(b) or (4 if b == 0xCA else 8))
    if 0xD4 <= b <= 0xD8:  # fixext 1..16
        return "ext", 1 << (b - 0xD4), pos + 1
    if b in (0xC7, 0xC8, 0xC9):
        width = {0xC7: 1, 0xC8: 2, 0xC9: 4}[b]
        return "ext", s.uint(pos + 1, width, "msgpack ext length"), pos + 1 + width
    raise FormatError(f"byte {b:#x} at offset {pos} is not msgpack", s.source.name)


def _scalar(s: _Stream, pos: int) -> tuple[Any, int]:
    """A small plain value (int, float, bool, None, str, short bin) and the position after it."""
    kind, n, nxt = _header(s, pos)
    if kind == "scalar":
        b = s.byte(pos, "msgpack value")
        if b <= 0x7F:
            return b, nxt
        if b >= 0xE0:
            return b - 0x100, nxt
        if b in (0xC0, 0xC2, 0xC3):
            return {0xC0: None, 0xC2: False, 0xC3: True}[b], nxt
        raw = s.read(pos + 1, nxt - pos - 1, "msgpack number")
        if b in (0xCA, 0xCB):
            return struct.unpack(">f" if b == 0xCA else ">d", raw)[0], nxt
        return int.from_bytes(raw, "big", signed=b >= 0xD0), nxt
    if kind in ("str", "bin"):
        if n > _MAX_KEY:
            raise FormatError(
                f"msgpack {kind} of {n} bytes at offset {pos} where a key belongs", s.source.name
            )
        raw = s.read(nxt, n, f"msgpack {kind}")
        return (raw.decode("utf-8", "replace") if kind == "str" else raw), nxt + n
    raise FormatError(f"msgpack {kind} at offset {pos} where a plain value belongs", s.source.name)


class _TreeWalker:
    """Walks a flax state dict, collecting arrays (name, dtype, shape, data offset) and scalar leaves."""

    def __init__(self, source: ByteSource, label: str) -> None:
        self.s = _Stream(source)
        self.label = label
        self.tensors: list[TensorInfo] = []
        self.plain: dict[str, Any] = {}
        self.warnings: list[str] = []
        self.ext_types: dict[int, int] = {}
        self.chunked = 0
        self.chunk_parts: dict[str, list[tuple[int, int]]] = {}  # name -> (offset, nbytes) of each chunk

    def value(self, pos: int, path: tuple[str, ...], depth: int = 0) -> int:
        if depth > _MAX_DEPTH:
            raise FormatError(f"msgpack nesting deeper than {_MAX_DEPTH} at offset {pos}", self.s.source.name)
        kind, n, nxt = _header(self.s, pos)
        if kind == "map":
            return self._map(n, nxt, path, depth)
        if kind == "array":  # lists are rare in flax state dicts (it turns tuples into dicts)
            for i in range(n):
                nxt = self.value(nxt, (*path, str(i)), depth + 1)
            return nxt
        if kind == "ext":
            return self._ext(n, nxt, path)
        if kind == "scalar" or (kind in ("str", "bin") and n <= 256):
            value, end = _scalar(self.s, pos)
            self._remember(path, value if not isinstance(value, bytes) else f"<{len(value)} bytes>")
            return end
        end = nxt + n  # long strings / raw bytes: skipped, never read
        if end > self.s.size:
            raise FormatError(
                f"msgpack {kind} at offset {pos} runs past the end of the file", self.s.source.name
            )
        self._remember(path, f"<{kind} of {n} bytes>")
        return end

    def _remember(self, path: tuple[str, ...], value: Any) -> None:
        if len(self.plain) < _MAX_PLAIN:
            self.plain["/".join(path)] = value

    def _map(self, n: int, pos: int, path: tuple[str, ...], depth: int) -> int:
        first_tensor = len(self.tensors)
        keys: list[str] = []
        for _ in range(n):
            key, pos = _scalar(self.s, pos)
            key_text = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
            keys.append(key_text)
            pos = self.value(pos, (*path, key_text), depth + 1)
        if CHUNK_MARKER in keys:
            self._fold_chunks(path, first_tensor)
        return pos

    def _fold_chunks(self, path: tuple[str, ...], first: int) -> None:
        """flax splits arrays over MAX_CHUNK_SIZE into {marker, shape: {"0": d0…}, chunks: {"0": arr…}}."""
        prefix = "/".join(path)
        chunks = self.tensors[first:]
        del self.tensors[first:]
        dims: list[int] = []
        while f"{prefix}/shape/{len(dims)}" in self.plain:
            dims.append(self.plain.pop(f"{prefix}/shape/{len(dims)}"))
        self.plain.pop(f"{prefix}/{CHUNK_MARKER}", None)
        name = prefix or "<root>"
        if not chunks or not all(isinstance(d, int) and d >= 0 for d in dims):
            self.warnings.append(f"chunked array {name!r} has no chunks or a malformed shape")
            return
        tensor = TensorInfo(name, chunks[0].dtype, tuple(dims), sum(c.nbytes for c in chunks), self.label)
        tensor.offset = chunks[0].offset if len(chunks) == 1 else None  # msgpack headers split the data
        if sum(c.numel for c in chunks) != tensor.numel or len({c.dtype for c in chunks}) > 1:
            self.warnings.append(f"chunked array {name!r}: chunks do not add up to shape {dims}")
        self.chunked += 1
        self.chunk_parts[name] = [(c.offset or 0, c.nbytes) for c in chunks]
        self.tensors.append(tensor)

    def _ext(self, length: int, pos: int, path: tuple[str, ...]) -> int:
        code = struct.unpack(">b", self.s.read(pos, 1, "msgpack ext type"))[0]
        start, end = pos + 1, pos + 1 + length
        if end > self.s.size:
            raise FormatError(
                f"msgpack ext at offset {pos} claims {length} bytes, past the end of the file",
                self.s.source.name,
            )
        self.ext_types[code] = self.ext_types.get(code, 0) + 1
        name = "/".join(path) or "<root>"
        if code in (EXT_NDARRAY, EXT_NPSCALAR):
            self.tensors.append(self._ndarray(start, end, name))
        elif code == EXT_NATIVE_COMPLEX:
            self._remember(path, "<complex>")
        else:
            self.warnings.append(f"{name!r}: unknown msgpack ext type {code} ({length} bytes) skipped")
        return end

    def _ndarray(self, start: int, end: int, name: str) -> TensorInfo:
        """flax `_ndarray_to_bytes`: msgpack [shape, dtype.name, bytes] inside the ext payload."""
        kind, n, pos = _header(self.s, start)
        if kind != "array" or n != 3:
            raise FormatError(
                f"array {name!r} at offset {start}: payload is not [shape, dtype, data]", self.s.source.name
            )
        kind, rank, pos = _header(self.s, pos)
        if kind != "array":
            raise FormatError(f"array {name!r}: shape is not a list", self.s.source.name)
        shape: list[int] = []
        for _ in range(rank):
            dim, pos = _scalar(self.s, pos)
            if not isinstance(dim, int) or isinstance(dim, bool) or dim < 0:
                raise FormatError(f"array {name!r}: shape entry {dim!r} is not a size", self.s.source.name)
            shape.append(dim)
        dtype_name, pos = _scalar(self.s, pos)
        if isinstance(dtype_name, bytes):
            dtype_name = dtype_name.decode("ascii", "replace")
        kind, size, data = _header(self.s, pos)
        if kind not in ("bin", "str") or data + size != end:
            raise FormatError(f"array {name!r}: data does not fill the ext payload", self.s.source.name)
        try:
            dtype = lookup(str(dtype_name))
        except UnknownDType:
            self.warnings.append(f"array {name!r}: dtype {dtype_name!r} is not in the dtypes table")
            return TensorInfo(name, str(dtype_name), tuple(shape), size, self.label, data)
        tensor = TensorInfo(name, dtype.name, tuple(shape), size, self.label, data)
        try:
            expected = nbytes(dtype, tensor.numel)
        except ValueError:
            expected = -1
        if expected != size:
            self.warnings.append(
                f"array {name!r}: {size} data bytes but {dtype.name}{shape} needs {expected}"
            )
        return tensor


def _flax_role(path: str, top_keys: set[str]) -> str:
    top = path.split("/", 1)[0]
    if top in _OPTIMIZER_KEYS or (top == "state" and "target" in top_keys):  # flax.optim: target/state
        return "optimizer"
    if top in _BUFFER_KEYS:
        return "buffer"
    return "weight"


def _flax_slots(tensors: list[TensorInfo]) -> list[str]:
    """optax state kinds: opt_state/0/mu/dense/kernel -> mu (tuple indices skipped); flax.optim's
    state/param_states/<param path>/grad_ema -> grad_ema."""
    slots: list[str] = []
    for t in tensors:
        parts = [p for p in t.name.split("/")[1:] if not p.isdigit()]
        if not parts:
            continue
        slots.append(parts[-1] if parts[0] == "param_states" else parts[0])
    return list(dict.fromkeys(slots))


def inspect_file(path: Path, ident: Identification) -> ModelInfo:
    with open_source(path) as source:
        walker = _TreeWalker(source, str(path))
        kind, _, _ = _header(walker.s, 0)
        end = walker.value(0, ())
        size = source.size
        step = walker.plain.get("step")
        step_tensor = None
        for tensor in walker.tensors:
            if (
                tensor.name == "step"
                and tensor.numel == 1
                and tensor.dtype[:1] in "IU"
                and tensor.nbytes <= 8
            ):
                # An array-valued step counter: its few bytes are training state, not weights.
                raw = read_exact(source, tensor.offset or 0, tensor.nbytes, "step counter")
                step = int.from_bytes(raw, "little", signed=tensor.dtype[0] == "I")
                step_tensor = tensor
    info = ModelInfo(str(path), "flax-msgpack", files=[{"path": str(path), "size_bytes": size}])
    info.warnings.extend(walker.warnings)
    if end != size:
        info.warnings.append(f"{size - end} bytes after the msgpack object: trailing data")
    top_keys = {p.split("/", 1)[0] for p in (*walker.plain, *(t.name for t in walker.tensors))}
    for tensor in walker.tensors:
        tensor.role = _flax_role(tensor.name, top_keys)
    info.tensors = walker.tensors
    train_state = top_keys >= _TRAIN_STATE_KEYS
    info.metadata = {
        "kind": "train-state" if train_state else ("variables" if kind == "map" else kind),
        "top_level_keys": sorted(top_keys),
        "msgpack_ext_types": {str(k): v for k, v in sorted(walker.ext_types.items())},
    }
    if walker.chunked:
        info.metadata["chunked_arrays"] = walker.chunked
    plain = {k: v for k, v in walker.plain.items() if k.split("/", 1)[0] not in ("step",)}
    if plain:
        info.metadata["plain_values"] = dict(list(plain.items())[:64])
    optimizer = [t for t in info.tensors if t.role == "optimizer"]
    if train_state or optimizer:
        # Counters: plain numbers at the top of the tree (step, and epoch when a trainer adds one).
        counters = {k: v for k, v in walker.plain.items() if "/" not in k and is_plain_number(v)}
        if step is not None:
            counters["step"] = step
        info.checkpoint = new_checkpoint(
            "flax-train-state" if train_state else "flax-optimizer",
            "flax",
            [t for t in info.tensors if t.role != "optimizer" and t is not step_tensor],
            optimizer_state(optimizer, slots=_flax_slots(optimizer)) if optimizer else None,
            counters=dict(list(counters.items())[:32]),
            top_level_keys=sorted(top_keys),
        )
    return info


def chunk_parts(path: Path) -> dict[str, list[tuple[int, int]]]:
    """Where the pieces of each chunked array are: (offset, nbytes) per chunk, in order."""
    with open_source(path) as source:
        walker = _TreeWalker(source, str(path))
        walker.value(0, ())
    return walker.chunk_parts


INSPECTS = {"flax-msgpack": inspect_file}
