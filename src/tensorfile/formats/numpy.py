"""NumPy .npy (magic '\\x93NUMPY' + a Python-literal header) and .npz (a zip of .npy files)."""

from __future__ import annotations

import ast
import struct
from math import prod
from pathlib import Path
from typing import Any

from ..dtypes import lookup, nbytes
from ..errors import FormatError
from ..model import CERTAIN, STRONG, Detection, Identification, ModelInfo, TensorInfo
from ..probe import FileProbe, stored_member_offset

MAGIC = b"\x93NUMPY"


def parse_npy_header(head: bytes) -> dict[str, Any] | None:
    """The header dict of an .npy (descr, fortran_order, shape), read without numpy."""
    if head[:6] != MAGIC or len(head) < 10:
        return None
    major = head[6]
    if major == 1:
        (hlen,) = struct.unpack_from("<H", head, 8)
        start = 10
    elif major in (2, 3) and len(head) >= 12:
        (hlen,) = struct.unpack_from("<I", head, 8)
        start = 12
    else:
        return None
    raw = head[start : start + hlen]
    if len(raw) < hlen:
        return None
    try:
        header = ast.literal_eval(raw.decode("latin1"))
    except (ValueError, SyntaxError, MemoryError, RecursionError):
        return None
    if not isinstance(header, dict) or "descr" not in header or "shape" not in header:
        return None
    header["_version"] = f"{major}.{head[7]}"
    header["_data_offset"] = start + hlen
    return header


def has_objects(descr: Any) -> bool:
    """Whether an array description holds Python objects (loading those needs pickle)."""
    if isinstance(descr, str):
        return "O" in descr
    if isinstance(descr, list):
        return any(
            has_objects(item[1]) for item in descr if isinstance(item, (tuple, list)) and len(item) > 1
        )
    return False


def detect_file(probe: FileProbe) -> Detection | None:
    if probe.head[:6] == MAGIC:
        header = parse_npy_header(probe.head)
        if header is None:
            return Detection(
                "numpy",
                STRONG,
                ["magic '\\x93NUMPY'"],
                {"container": "npy"},
                ["header is unreadable: truncated or corrupt"],
            )
        details = {
            "container": "npy",
            "npy_version": header["_version"],
            "dtype": str(header["descr"]),
            "shape": list(header["shape"]),
            "object_arrays": has_objects(header["descr"]),
        }
        return Detection(
            "numpy",
            CERTAIN,
            [f"magic '\\x93NUMPY' v{header['_version']}, descr {header['descr']!r}"],
            details,
        )
    if probe.is_zip:
        names = probe.zip_names
        if names and all(n.endswith(".npy") for n in names):
            details = {"container": "npz", "arrays": len(names)}
            objects = False
            for name in names[:64]:  # object arrays are what matters for safety; peek at the headers
                try:
                    header = parse_npy_header(probe.zip_read_head(name, 4096))
                except FormatError:
                    header = None
                if header and has_objects(header["descr"]):
                    objects = True
            details["object_arrays"] = objects
            return Detection("numpy", CERTAIN, [f"zip of {len(names)} .npy members (npz)"], details)
    return None


# --- inspect --------------------------------------------------------------------------------------


def _npy_tensor(name: str, header: dict[str, Any], file_label: str, base: int | None) -> TensorInfo | None:
    descr = header["descr"]
    if not isinstance(descr, str):
        return None  # structured dtype: not a tensor
    dtype = lookup(descr)
    shape = tuple(int(d) for d in header["shape"])
    size = nbytes(dtype, prod(shape))
    offset = None if base is None or header.get("fortran_order") else base + header["_data_offset"]
    return TensorInfo(name, dtype.name, shape, size, file_label, offset)


def inspect_file(path: Path, ident: Identification) -> ModelInfo:
    probe = FileProbe(path)
    try:
        info = ModelInfo(str(path), "numpy", files=[{"path": str(path), "size_bytes": probe.size}])
        members = [(path.stem, probe.head, 0)] if ident.details.get("container") == "npy" else []
        if ident.details.get("container") == "npz":
            zf = probe.zip_archive
            if zf is None:
                raise FormatError(probe.zip_error or "unreadable npz", path)
            for entry in zf.infolist():
                head = probe.zip_read_head(entry.filename, 65536)
                # np.savez stores members uncompressed: their array bytes sit in the file itself.
                base = stored_member_offset(probe.source, entry)
                members.append((entry.filename.removesuffix(".npy"), head, base))
            info.metadata["compressed"] = any(e.compress_type != 0 for e in zf.infolist())
        for name, head, base in members:
            header = parse_npy_header(head)
            if header is None:
                raise FormatError(f"array {name!r} has an unreadable .npy header", path)
            if has_objects(header["descr"]):
                info.warnings.append(f"array {name!r} holds Python objects (loading it needs pickle)")
                continue
            try:
                tensor = _npy_tensor(name, header, str(path), base)
            except (KeyError, ValueError):
                info.warnings.append(
                    f"array {name!r} has dtype {header['descr']!r}, which is not a tensor type"
                )
                continue
            if tensor is None:
                info.warnings.append(f"array {name!r} has a structured dtype")
                continue
            if tensor.offset is not None and tensor.offset + tensor.nbytes > probe.size:
                info.warnings.append(f"array {name!r} data runs past the end of the file")
            info.tensors.append(tensor)
        return info
    finally:
        probe.close()


INSPECTS = {"numpy": inspect_file}
