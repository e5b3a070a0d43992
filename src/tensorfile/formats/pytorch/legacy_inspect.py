"""Inspect a legacy (pre-1.6) torch pickle stack: magic, protocol, sys_info, the object, the storage
keys, then each storage's element count and raw bytes; the legacy tar goes to legacy_tar."""

from __future__ import annotations

import struct
from pathlib import Path

from ...errors import FormatError
from ...model import Identification, ModelInfo
from ...probe import FileProbe
from ...torchpickle import ITEMSIZE, collect_tensors, storage_dtypes
from .checkpoint import add_checkpoint
from .detect import read_growing
from .legacy_tar import layout_legacy_tar
from .tensors import Layout, pickle_summary, to_tensors


def inspect_legacy(path: Path, ident: Identification) -> ModelInfo:
    return layout_legacy(path, ident)[0]


def layout_legacy(path: Path, ident: Identification) -> Layout:
    if ident.details.get("container") == "tar":
        return layout_legacy_tar(path, ident)
    probe = FileProbe(path)
    try:
        offset = 0
        for _ in range(3):  # magic number, protocol version, sys_info
            offset += read_growing(probe, offset).end
        data = read_growing(probe, offset)
        offset += data.end
        keys_pickle = read_growing(probe, offset)
        offset += keys_pickle.end
        keys = keys_pickle.value
        if not isinstance(keys, list):
            raise FormatError("legacy storage key list is not a list", path)
        records, unreadable = collect_tensors(data.value)
        # element sizes from the persistent ids, then from the records (_rebuild_tensor_v3's dtype)
        dtype_of = {**storage_dtypes(data.persistent_refs), **{r.storage_key: r.dtype for r in records}}
        storages: dict[str, tuple[int | None, int]] = {}
        for key in map(str, keys):  # each storage: int64 element count, then its raw bytes
            header = probe.read(offset, 8)
            if len(header) < 8:
                raise FormatError(f"legacy storage {key} is cut short: truncated file", path)
            numel = struct.unpack("<q", header)[0]
            size = numel * ITEMSIZE.get(dtype_of.get(key, "U8"), 1)
            if numel < 0 or offset + 8 + size > probe.size:
                raise FormatError(
                    f"legacy storage {key} claims {numel} elements, past the end of the file", path
                )
            storages[key] = (offset + 8, size)
            offset += 8 + size
        info = ModelInfo(str(path), "pytorch-legacy", files=[{"path": str(path), "size_bytes": probe.size}])
        to_tensors(records, storages, str(path), info)
        if unreadable:
            info.warnings.append(f"{len(unreadable)} tensor records of unsupported kinds: {unreadable[0]}")
        info.pickle = pickle_summary(data)
        info.metadata = {k: v for k, v in ident.details.items() if k in ("sys_info", "protocol_version")}
        locations = sorted({r.location for r in records if r.location})
        if locations:
            info.metadata["storage_locations"] = locations
        add_checkpoint(data.value, info)
        return info, records, storages
    finally:
        probe.close()
