"""Keras 3 `.keras` zips: metadata and config JSON, and weights in model.weights.h5 (located inside
the zip when stored) or in model.weights.npz (pickled arrays, read without executing)."""

from __future__ import annotations

import struct
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ...dtypes import UnknownDType, lookup, nbytes
from ...errors import FormatError
from ...model import (
    Identification,
    ModelInfo,
    TensorInfo,
)
from ...probe import MAX_ZIP_MEMBER_READ, load_json, stored_member_offset
from ...source import OpenedSource, SliceSource, open_source
from .h5_weights import read_h5_file
from .model_config import compiled_optimizer_class, config_summary, optimizer_numbers
from .training_state import TRAINING_FACTS, split_training_state, tensor_role

_MAX_JSON = 64 * 1024 * 1024


# --- .keras zip ---------------------------------------------------------------------------------------


def _zip_json(zf: zipfile.ZipFile, name: str, info: ModelInfo) -> Any:
    if name not in zf.namelist():
        return None
    if zf.getinfo(name).file_size > _MAX_JSON:
        info.warnings.append(f"{name} is over {_MAX_JSON} bytes: not read")
        return None
    try:
        return load_json(zf.read(name))
    except ValueError:
        info.warnings.append(f"{name} is not valid JSON")
        return None


def inspect_keras_zip(path: Path, ident: Identification) -> ModelInfo:
    info = ModelInfo(str(path), "keras-v3")
    with open_source(path) as source:
        info.files.append({"path": str(path), "size_bytes": source.size})
        try:
            zf = zipfile.ZipFile(source.open_stream())
        except (zipfile.BadZipFile, OSError, ValueError, EOFError, struct.error) as exc:
            raise FormatError(f"zip central directory is unreadable ({exc})", path) from None
        with zf:
            try:
                meta = _zip_json(zf, "metadata.json", info)
                config = _zip_json(zf, "config.json", info)
                tensors, optimizer_class = _keras_zip_weights(zf, source, path, info, config)
            except (zipfile.BadZipFile, EOFError, NotImplementedError, zlib.error) as exc:
                raise FormatError(f"zip member is unreadable ({exc})", path) from None
    if isinstance(meta, dict):
        for key in ("keras_version", "date_saved"):
            if key in meta:
                info.metadata[key] = meta[key]
    split_training_state(info, tensors, optimizer_class)
    return info


def _keras_zip_weights(
    zf: zipfile.ZipFile, source: OpenedSource, path: Path, info: ModelInfo, config: Any
) -> tuple[list[TensorInfo], str | None]:
    info.metadata["zip_members"] = len(zf.namelist())
    info.metadata.update(config_summary(config))
    optimizer_class = None
    if isinstance(config, dict):
        compile_config = config.get("compile_config")
        info.metadata["compiled"] = isinstance(compile_config, dict)
        if isinstance(compile_config, dict):
            optimizer_class = compiled_optimizer_class(compile_config)
            if optimizer_class:
                info.metadata["optimizer_class"] = optimizer_class
                info.metadata["optimizer_hyperparameters"] = optimizer_numbers(compile_config)
    names = set(zf.namelist())
    if "model.weights.h5" in names:
        member = zf.getinfo("model.weights.h5")
        info.metadata["weights_member"] = member.filename
        start = stored_member_offset(source, member)
        if member.compress_type == zipfile.ZIP_STORED and not member.flag_bits & 0x1:
            if start is None:
                raise FormatError("zip local header of model.weights.h5 is missing", path)
            if start + member.file_size > source.size:
                raise FormatError("model.weights.h5 runs past the end of the zip: truncated", path)
            open_stream = SliceSource(source, start, member.file_size, f"{path}!model.weights.h5").open_stream
            base: int | None = start
        else:
            # Deflated: still readable through zipfile, but seeks cost decompression and
            # the data has no offset in the .keras file.
            def open_stream() -> Any:
                return zf.open(member)

            base = None
            info.warnings.append("model.weights.h5 is compressed inside the zip: offsets are not available")
        tensors, metadata, warnings, _ = read_h5_file(
            open_stream, str(path), base, f"{path}!model.weights.h5", root_attrs=False
        )
        info.warnings.extend(warnings)
        info.metadata.update({k: v for k, v in metadata.items() if k in TRAINING_FACTS})
        return tensors, optimizer_class
    if "model.weights.npz" in names:
        info.metadata["weights_member"] = "model.weights.npz"
        return _npz_weights(zf, source, path, info), optimizer_class
    info.warnings.append("no model.weights.h5 or model.weights.npz: the archive holds no weights")
    return [], optimizer_class


def _npz_weights(zf: zipfile.ZipFile, source: OpenedSource, path: Path, info: ModelInfo) -> list[TensorInfo]:
    """Keras' NpzIOStore: np.savez of {"layers/dense": {"0": arr, …}} — each entry a pickled dict.

    The object arrays are read with the non-executing pickle reader. Their array bytes sit inline in
    the pickle, so this variant cannot be read header-only; members over a cap are reported, not read.
    """
    from ...picklevm import read_pickle
    from ..numpy import has_objects, parse_npy_header

    tensors: list[TensorInfo] = []
    with zf.open("model.weights.npz") as raw, zipfile.ZipFile(raw) as inner:
        for member in inner.infolist():
            key = member.filename[:-4] if member.filename.endswith(".npy") else member.filename
            if member.file_size > MAX_ZIP_MEMBER_READ:
                info.warnings.append(
                    f"model.weights.npz member {member.filename} is too large to read symbolically"
                )
                continue
            data = inner.read(member)
            header = parse_npy_header(data[:65536])
            if header is None:
                info.warnings.append(f"model.weights.npz member {member.filename} is not an .npy array")
                continue
            if not has_objects(header["descr"]):
                try:
                    dtype = lookup(str(header["descr"])).name
                except UnknownDType:
                    info.warnings.append(f"{key}: dtype {header['descr']!r} is not in the dtypes table")
                    continue
                shape = tuple(int(d) for d in header["shape"])
                t = TensorInfo(key, dtype, shape, 0, str(path))
                t.nbytes = nbytes(dtype, t.numel)
                t.role = tensor_role(key)
                tensors.append(t)
                continue
            result = read_pickle(data, name=f"{path}!{member.filename}", offset=header["_data_offset"])
            for name, dtype, shape in _pickled_arrays(result.value, key):
                t = TensorInfo(name, dtype, shape, 0, str(path))
                t.nbytes = nbytes(dtype, t.numel)
                t.role = tensor_role(name)
                tensors.append(t)
    info.warnings.append("weights are pickled numpy arrays (model.weights.npz): offsets are not available")
    return tensors


def _pickled_arrays(value: Any, prefix: str, depth: int = 0) -> Iterator[tuple[str, str, tuple[int, ...]]]:
    """(name, dtype, shape) of each numpy array in a symbolic pickle value (dicts walked by key).

    A pickled ndarray is `_reconstruct(ndarray, (0,), b'b')` with BUILD state
    (version, shape, dtype, fortran, data); its dtype is `dtype('f4', …)` with state (3, '<', …).
    """
    from ...picklevm import Call, Global

    if depth > 32:
        return
    if isinstance(value, dict):
        for k, v in value.items():
            yield from _pickled_arrays(v, f"{prefix}/{k}", depth + 1)
        return
    if not isinstance(value, Call) or not isinstance(value.func, Global) or value.func.name != "_reconstruct":
        return
    state = value.state
    if not isinstance(state, tuple) or len(state) != 5:
        return
    shape, dtype_call, data = state[1], state[2], state[4]
    if isinstance(dtype_call, Call) and dtype_call.args and isinstance(dtype_call.args[0], str):
        code = dtype_call.args[0]
        order = (
            dtype_call.state[1] if isinstance(dtype_call.state, tuple) and len(dtype_call.state) > 1 else "|"
        )
        if code.startswith("O"):  # an object array (Keras wraps its dict in a 0-d one): look inside
            for item in data if isinstance(data, list) else []:
                yield from _pickled_arrays(item, prefix, depth + 1)
            return
        try:
            name = lookup(f"{order if order in '<>|' else '<'}{code}".replace(">", "<")).name
        except UnknownDType:
            return
        if isinstance(shape, tuple) and all(isinstance(d, int) and d >= 0 for d in shape):
            yield prefix, name, shape
