"""Plain pickles and joblib files, raw or compressed with zlib, gzip, bz2, lzma or xz."""

from __future__ import annotations

import io
from collections.abc import Callable
from math import prod
from pathlib import Path
from typing import Any

from ..decompress import DECODE_ERRORS, KINDS, DecompressedStream, new_decompressor
from ..dtypes import lookup, nbytes
from ..errors import FormatError, UnsupportedError
from ..model import CERTAIN, LIKELY, STRONG, Detection, Identification, ModelInfo, TensorInfo
from ..picklevm import (
    Call,
    Global,
    is_pickle_start,
    parses_as_pickle,
    read_pickle,
    read_pickle_stream,
    scan_globals,
)
from ..probe import FileProbe
from .pytorch import legacy_magic_at

_DECOMPRESSED_PEEK = 256 * 1024


def _decompress_head(head: bytes) -> tuple[str, bytes] | None:
    """(compression name, first decompressed bytes) for a compressed stream, else None."""
    try:
        if head[:2] == b"\x1f\x8b":
            return "gzip", new_decompressor("gzip").decompress(head, _DECOMPRESSED_PEEK)
        if len(head) > 1 and head[0] == 0x78 and head[1] in (0x01, 0x5E, 0x9C, 0xDA):
            return "zlib", new_decompressor("zlib").decompress(head, _DECOMPRESSED_PEEK)
        if head[:6] == b"\xfd7zXZ\x00":
            return "xz", new_decompressor("xz").decompress(head, _DECOMPRESSED_PEEK)
        if head[:3] == b"\x5d\x00\x00":
            return "lzma", new_decompressor("lzma").decompress(head, _DECOMPRESSED_PEEK)
        if head[:3] == b"BZh" and head[4:10] == b"1AY&SY":
            return "bz2", new_decompressor("bz2").decompress(head, _DECOMPRESSED_PEEK)
        if head[:2] == b"ZF":  # joblib < 0.10: 'ZF' + hex length, then a zlib stream
            zstart = head.find(b"x", 2, 40)
            if zstart > 0:
                return "zlib (joblib<0.10)", new_decompressor("zlib").decompress(
                    head[zstart:], _DECOMPRESSED_PEEK
                )
    except DECODE_ERRORS:
        return None
    return None


def _whole_file_is_one_pickle(data: bytes) -> bool:
    try:
        return read_pickle(data).end == len(data)
    except FormatError:
        return False


def classify_globals(names: list[str]) -> dict[str, Any]:
    details: dict[str, Any] = {}
    if names:
        details["imports"] = sorted(set(names))[:32]
    if any(n.startswith(("joblib.", "sklearn.externals.joblib")) for n in names):
        details["producer"] = "joblib"
    roots = sorted(
        {n.split(".", 1)[0] for n in names}
        - {"builtins", "__builtin__", "copy_reg", "copyreg", "collections", "_codecs"}
    )
    if roots:
        details["libraries"] = roots
    return details


def detect_file(probe: FileProbe) -> Detection | None:
    head = probe.head
    compression = None
    decompressed = _decompress_head(head)
    if decompressed is not None:
        compression, head = decompressed
    if legacy_magic_at(head) is not None and compression is None:
        return None  # torch legacy stack: formats/pytorch owns it
    protocol = is_pickle_start(head)
    if protocol is None or not parses_as_pickle(head):
        return None
    names = scan_globals(head)
    details: dict[str, Any] = {"protocol": protocol, **classify_globals(names)}
    evidence = [f"pickle protocol {protocol} opcodes" if protocol >= 2 else "pickle (protocol 0/1) opcodes"]
    if compression:
        details["compression"] = compression
        evidence.insert(0, f"{compression}-compressed stream")
    if names:
        evidence.append("imports " + ", ".join(sorted(set(names))[:4]) + ("…" if len(set(names)) > 4 else ""))
    if details.get("producer") == "joblib":
        evidence.append("joblib NumpyArrayWrapper records")
    if any(n.startswith("torch.") for n in names):
        details["holds_torch_tensors"] = True
    confidence = CERTAIN if protocol >= 2 and (names or len(head) > 16) else STRONG if names else LIKELY
    if compression is None and probe.size <= len(head) and _whole_file_is_one_pickle(head):
        confidence = CERTAIN
    return Detection("pickle", confidence, evidence, details)


# --- inspect --------------------------------------------------------------------------------------

_WRAPPER = "joblib.numpy_pickle.NumpyArrayWrapper"
_RECONSTRUCT = ("numpy.core.multiarray._reconstruct", "numpy._core.multiarray._reconstruct")


def _open_stream(path: Path, compression: str | None) -> Any:
    raw = path.open("rb")
    if compression is None:
        return raw
    if compression not in KINDS:
        raw.close()
        raise UnsupportedError(f"{compression} pickles are not inspected yet", path)
    # Forward-only: joblib's raw array bytes are skipped by decompressing them. A stream cut short
    # just ends, so the pickle reader reports it as truncated, as for an uncompressed file.
    stream = DecompressedStream(raw, lambda _src: new_decompressor(compression), allow_truncated=True)
    return io.BufferedReader(stream)  # read(n) returns n bytes unless the data ends


def _dtype_from_call(value: Any) -> str | None:
    """'<f4' from a pickled numpy.dtype(...) call with its state (version, byteorder, …)."""
    if not isinstance(value, Call) or not value.args or not isinstance(value.args[0], str):
        return None
    order = value.state[1] if isinstance(value.state, tuple) and len(value.state) > 1 else "|"
    if not (isinstance(order, str) and len(order) == 1 and order in "<>|="):
        order = "|"  # a hostile state may hold anything there (None made `in` a TypeError)
    return f"{order}{value.args[0]}"


def joblib_array_data(
    call: Call, stream: Any, read_object_array: Callable[[Any], None]
) -> tuple[int, int] | None:
    """Skip the raw bytes joblib writes right after a NumpyArrayWrapper: (data offset, nbytes).

    Object arrays are pickled inline instead; `read_object_array(stream)` must consume them.
    None when `call` is not a joblib array wrapper with a usable state.
    """
    if (
        not isinstance(call.func, Global)
        or call.func.qualname != _WRAPPER
        or not isinstance(call.state, dict)
    ):
        return None
    state = call.state
    dtype_text = _dtype_from_call(state.get("dtype"))
    shape = state.get("shape")
    if dtype_text and "O" in dtype_text:
        read_object_array(stream)
        return None
    if dtype_text is None or not isinstance(shape, tuple) or not all(isinstance(n, int) for n in shape):
        return None
    if "numpy_array_alignment_bytes" in state:  # joblib >= 1.2 pads the data to 16 bytes
        pad = stream.read(1)
        stream.seek(stream.tell() + (pad[0] if pad else 0))
    size = _itemsize(state.get("dtype"), dtype_text) * prod(shape)
    start = stream.tell()
    stream.seek(start + size)
    return start, size


def _itemsize(dtype_call: Any, dtype_text: str) -> int:
    """Bytes per element: from the dtype table, else from the pickled dtype's own state (numpy
    writes elsize there), which also covers structured and void dtypes such as sklearn's nodes."""
    try:
        return nbytes(lookup(dtype_text), 1)
    except (KeyError, ValueError, FormatError):
        pass
    state = dtype_call.state if isinstance(dtype_call, Call) else None
    if isinstance(state, tuple) and len(state) > 5 and isinstance(state[5], int) and state[5] > 0:
        return state[5]
    raise FormatError(f"joblib array of unknown dtype {dtype_text}")


def inspect_file(path: Path, ident: Identification) -> ModelInfo:
    compression = ident.details.get("compression")
    arrays: dict[int, tuple[int | None, int]] = {}  # id(wrapper call) -> (data offset, nbytes)
    warnings: list[str] = []

    def joblib_arrays(call: Call, stream: Any) -> None:
        def object_array(inner: Any) -> None:
            warnings.append("joblib object array: its elements are pickled Python objects")
            read_pickle_stream(inner, name=str(path))

        found = joblib_array_data(call, stream, object_array)
        if found is not None:
            arrays[id(call)] = (found[0] if compression is None else None, found[1])

    stream = _open_stream(path, compression)
    try:
        result = read_pickle_stream(stream, name=str(path), raw_data_hook=joblib_arrays)
    except OSError as exc:  # a cut-short value makes the reader seek back in a forward-only stream
        raise FormatError(f"pickle stream is truncated or corrupt ({exc})", path) from None
    finally:
        stream.close()
    info = ModelInfo(str(path), "pickle", files=[{"path": str(path), "size_bytes": path.stat().st_size}])
    info.pickle = {
        "protocol": result.protocol,
        "imports": sorted({g.qualname for g in result.globals}),
        "calls": len(result.calls),
        "compression": compression,
    }
    if ident.details.get("producer"):
        info.metadata["producer"] = ident.details["producer"]
    info.warnings.extend(warnings)
    for name, call in _array_calls(result.value):
        if id(call) in arrays:
            offset, size = arrays[id(call)]
            state = call.state
            dtype_name = _dtype_name(_dtype_from_call(state["dtype"]) or "|u1")
            info.tensors.append(TensorInfo(name, dtype_name, tuple(state["shape"]), size, str(path), offset))
        elif isinstance(call.state, tuple) and len(call.state) >= 5:  # numpy _reconstruct + BUILD
            _version, shape, dtype_call, _fortran, _raw = call.state[:5]
            dtype_text = _dtype_from_call(dtype_call)
            if dtype_text and "O" not in dtype_text and isinstance(shape, tuple):
                size = _itemsize(dtype_call, dtype_text) * prod(shape)
                info.tensors.append(TensorInfo(name, _dtype_name(dtype_text), shape, size, str(path)))
    return info


def _dtype_name(dtype_text: str) -> str:
    """The table's name for a numpy dtype string; structured/void dtypes keep numpy's ("V64")."""
    try:
        return lookup(dtype_text).name
    except (KeyError, ValueError, FormatError):
        return dtype_text.lstrip("<>|=")


def _array_calls(root: Any) -> list[tuple[str, Call]]:
    """(path, call) for every numpy array (joblib wrapper or ndarray _reconstruct) in the tree."""
    found: list[tuple[str, Call]] = []
    seen: set[int] = set()
    stack: list[tuple[Any, str]] = [(root, "")]
    while stack:
        value, path = stack.pop()
        if isinstance(value, (dict, list, tuple, Call)):
            if id(value) in seen:
                continue
            seen.add(id(value))
        if isinstance(value, Call):
            qualname = value.func.qualname if isinstance(value.func, Global) else ""
            if qualname == _WRAPPER or qualname in _RECONSTRUCT:
                found.append((path or "array", value))
                continue
            children = list(value.items.items())
            if isinstance(value.state, dict):
                children += list(value.state.items())
            stack.extend((v, f"{path}.{k}" if path else str(k)) for k, v in reversed(children))
            stack.extend(
                (v, f"{path}.{i}" if path else str(i)) for i, v in reversed(list(enumerate(value.list_items)))
            )
        elif isinstance(value, dict):
            stack.extend((v, f"{path}.{k}" if path else str(k)) for k, v in reversed(list(value.items())))
        elif isinstance(value, (list, tuple)):
            stack.extend((v, f"{path}.{i}" if path else str(i)) for i, v in reversed(list(enumerate(value))))
    return found


INSPECTS = {"pickle": inspect_file}
