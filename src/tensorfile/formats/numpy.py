"""NumPy .npy (magic '\\x93NUMPY' + a Python-literal header) and .npz (a zip of .npy files)."""

from __future__ import annotations

import ast
import struct
from typing import Any

from ..errors import FormatError
from ..model import CERTAIN, STRONG, Detection
from ..probe import FileProbe

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
