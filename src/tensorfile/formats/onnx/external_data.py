"""ONNX external data: the files initializers name, whether a location stays in the model's folder
(by onnx's own rule, links resolved), and the one-line warning for one that does not."""

from __future__ import annotations

import os
import posixpath
import re
from pathlib import Path
from typing import Any

from ...protowire import LEN, VARINT
from .field_scan import Message

_GRAPH_INITIALIZER = 5
_TENSOR_NAME, _TENSOR_EXTERNAL_DATA, _TENSOR_DATA_LOCATION = 8, 13, 14
MAX_INITIALIZERS_WALKED = 100_000


def external_locations(graph: Message) -> dict[str, list[str]]:
    """Files named by initializers stored outside the model (data_location = EXTERNAL), each with the
    names of the initializers it holds."""
    locations: dict[str, list[str]] = {}
    walked = 0
    for number, wire, offset, length in graph.fields():
        if number != _GRAPH_INITIALIZER or wire != LEN:
            continue
        walked += 1
        if walked > MAX_INITIALIZERS_WALKED:
            break
        tensor = graph.sub(offset, length)
        location = None
        external = False
        name = ""
        for t_number, t_wire, t_offset, t_value in tensor.fields():
            if t_number == _TENSOR_DATA_LOCATION and t_wire == VARINT:
                external = t_value == 1
            elif t_number == _TENSOR_NAME and t_wire == LEN:
                name = tensor.text(t_offset, t_value, limit=256)
            elif t_number == _TENSOR_EXTERNAL_DATA and t_wire == LEN:
                entry = tensor.sub(t_offset, t_value)
                kv = {e[0]: entry.text(e[2], e[3]) for e in entry.fields() if e[1] == LEN and e[0] in (1, 2)}
                if kv.get(1) == "location":
                    location = kv.get(2)
        if external and location:
            locations.setdefault(location, []).append(name)
    return locations


def escapes(location: str) -> bool:
    """Whether an external-data location leaves the model's folder, by onnx's own rule (absolute, or
    climbing out with `..` once normalised); Windows separators and drive letters count too, since the
    same model may be loaded there."""
    text = location.replace("\\", "/")
    if text.startswith("/") or re.match(r"[A-Za-z]:", text):
        return True
    normal = posixpath.normpath(text)
    return normal == ".." or normal.startswith("../")


def data_file(folder: Path | Any, location: str) -> tuple[Path | Any | None, str | None]:
    """(the data file, None), or (None, "outside" | "link" | "missing"). A location outside the folder,
    also through a symbolic link ("link"), is never followed: not even its size is asked."""
    if escapes(location):
        return None, "outside"
    target = folder / location
    try:
        if isinstance(target, Path):  # local: resolve links before touching the target
            base = os.path.realpath(folder)
            if os.path.commonpath([base, os.path.realpath(target)]) != base:
                return None, "link"
        return (target, None) if target.is_file() else (None, "missing")
    except (OSError, ValueError):  # an unreadable folder, a NUL byte in the location
        return None, "missing"


_PROBLEMS = {
    "outside": "points outside the model folder, not followed",
    "link": "is a symbolic link to outside the model folder, not followed",
    "missing": "is missing",
}


def external_problem(location: str, problem: str, tensors: list[str]) -> str:
    """One line naming the data file, what is wrong with it and the tensors whose data it holds."""
    names = ", ".join(repr(n) for n in tensors[:3]) + (
        f" and {len(tensors) - 3} more" if len(tensors) > 3 else ""
    )
    what = f"tensor {names}" if len(tensors) == 1 else f"{len(tensors)} tensors ({names})"
    return f"external data {location!r} {_PROBLEMS.get(problem, problem)}: no data for {what}"
