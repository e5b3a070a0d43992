"""Write safetensors files: the whole header first (every size is known up front), then the data.

The header matches what the safetensors library writes: `__metadata__` first, `data_offsets`
relative to the end of the header, the header padded with spaces to a multiple of 8 bytes so that
the data starts aligned. Names stored once stand for their tied aliases through `__metadata__`
entries `alias -> stored name`, which is how `safetensors.torch.save_model` records them.
"""

from __future__ import annotations

import json
import struct
from typing import BinaryIO

from ..errors import UnsupportedError
from .stream import OutTensor, Progress, no_progress, write_tensor
from .tensors import FileMaps

# Element types a safetensors header can name (safetensors 0.8's Dtype enum, element-wise ones).
_FLOATS = ("F8_E5M2", "F8_E4M3", "F8_E8M0", "F8_E4M3FNUZ", "F8_E5M2FNUZ", "F16", "BF16", "F32", "F64")
DTYPES = frozenset(("BOOL", "U8", "I8", "I16", "U16", "I32", "U32", "I64", "U64", "C64", *_FLOATS))


def check_dtypes(tensors: list[OutTensor]) -> None:
    for t in tensors:
        if t.dtype not in DTYPES:
            raise UnsupportedError(f"tensor {t.name!r} is {t.dtype}, which safetensors cannot hold")


def header_bytes(tensors: list[OutTensor], metadata: dict[str, str]) -> bytes:
    header: dict[str, object] = {}
    if metadata:
        header["__metadata__"] = dict(metadata)
    offset = 0
    for t in tensors:
        header[t.name] = {
            "dtype": t.dtype,
            "shape": list(t.shape),
            "data_offsets": [offset, offset + t.nbytes],
        }
        offset += t.nbytes
    raw = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode("utf-8")
    raw += b" " * (-(len(raw) + 8) % 8)
    return struct.pack("<Q", len(raw)) + raw


def file_size(tensors: list[OutTensor], metadata: dict[str, str]) -> int:
    return len(header_bytes(tensors, metadata)) + sum(t.nbytes for t in tensors)


def write_safetensors(
    out: BinaryIO,
    tensors: list[OutTensor],
    metadata: dict[str, str],
    maps: FileMaps,
    progress: Progress = no_progress,
) -> None:
    check_dtypes(tensors)
    out.write(header_bytes(tensors, metadata))
    for t in tensors:
        write_tensor(out, t, maps, progress)
