"""Write tensors as a NumPy .npz archive, streaming each one so memory does not grow with its size.

The archive is what `np.savez` writes: one uncompressed (ZIP_STORED) member `<name>.npy` per
tensor, each opened with `force_zip64=True` as numpy does (gh-10776), so any member may pass 4 GiB.
Each member starts with the .npy header `np.save` would write for that dtype and shape (format
1.0, 2.0 only for a header too long for 1.0), then the elements in C order, one chunk at a time.

BF16 and FP8 (ml_dtypes types) have no dtype descriptor numpy can read back. `np.save` writes
their `dtype.str`: '<V2' for bfloat16 and '<V1' for most FP8 types, which `np.load` reads as raw
void ('|V2', '|V1') with the right bits; but for float8_e5m2 it writes '<f1', which `np.load`
rejects ("descr is not a valid dtype descriptor"). So for every ml_dtypes type we write
'<V{itemsize}': identical to np.save for bfloat16 and float8_e4m3fn, and loadable for all of
them. `np.load(path)[name]` then returns a void array whose bytes are the values; get the typed
array back with `.view(ml_dtypes.bfloat16)` (or the FP8 type).
"""

from __future__ import annotations

import io
import zipfile
from typing import Any, BinaryIO

import numpy as np
from numpy.lib import format as npy_format

from ..dtypes import to_numpy
from ..errors import UsageError
from .stream import OutTensor, Progress, no_progress, out_chunks
from .tensors import FileMaps


def write_npz(
    out: BinaryIO, tensors: list[OutTensor], maps: FileMaps, progress: Progress = no_progress
) -> None:
    """Write every tensor into `out` as an .npz that `np.load` reads (the caller owns `out`)."""
    seen: set[str] = set()
    for tensor in tensors:
        if tensor.name in seen:
            raise UsageError(f"tensor name {tensor.name!r} appears twice; an .npz member name must be unique")
        seen.add(tensor.name)
    # ZipFile does not close a file object it was given, only finishes the archive in it.
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for tensor in tensors:
            with archive.open(tensor.name + ".npy", "w", force_zip64=True) as member:
                member.write(npy_header(tensor.dtype, tensor.shape))
                for chunk in out_chunks(tensor, maps):
                    # A byte view: ml_dtypes arrays do not export the buffer protocol themselves.
                    member.write(chunk.view(np.uint8))
                    progress(chunk.nbytes)


def npy_header(dtype: str, shape: tuple[int, ...]) -> bytes:
    """The .npy header `np.save` writes for a C-ordered array (void descr for ml_dtypes types)."""
    numpy_dtype = to_numpy(dtype)
    # A user-defined (ml_dtypes) type gets a void descr: see the module docstring.
    user_type = numpy_dtype.num >= 256
    descr: Any = f"<V{numpy_dtype.itemsize}" if user_type else npy_format.dtype_to_descr(numpy_dtype)
    header = {"descr": descr, "fortran_order": False, "shape": tuple(int(d) for d in shape)}
    buffer = io.BytesIO()
    try:
        npy_format.write_array_header_1_0(buffer, header)
    except ValueError:  # header longer than 64 KiB: np.save switches to format 2.0 too
        buffer = io.BytesIO()
        npy_format.write_array_header_2_0(buffer, header)
    return buffer.getvalue()
