"""Inspect a torch.save or TorchScript zip: data.pkl's tensor records on the data/ members."""

from __future__ import annotations

from pathlib import Path

from ...errors import FormatError
from ...model import Identification, ModelInfo
from ...picklevm import read_pickle
from ...probe import FileProbe, stored_member_offset
from ...torchpickle import collect_tensors
from .checkpoint import add_checkpoint
from .detect import MAX_PICKLE_READ, archive_layout
from .tensors import Layout, pickle_summary, to_tensors


def _zip_storages(probe: FileProbe, root: str, folder: str = "data") -> dict[str, tuple[int | None, int]]:
    """Storage key -> (absolute offset of its bytes when stored uncompressed, size) for a torch zip."""
    zf = probe.zip_archive
    storages: dict[str, tuple[int | None, int]] = {}
    if zf is None:
        return storages
    prefix = f"{root}{folder}/"
    for entry in zf.infolist():
        if not entry.filename.startswith(prefix):
            continue
        key = entry.filename[len(prefix) :]
        storages[key] = (stored_member_offset(probe.source, entry), entry.file_size)
    return storages


def inspect_zip(path: Path, ident: Identification) -> ModelInfo:
    return layout_zip(path, ident)[0]


def layout_zip(path: Path, ident: Identification) -> Layout:
    """The inspect result plus the raw tensor records and storage locations (for convert)."""
    probe = FileProbe(path)
    try:
        if probe.zip_error:
            raise FormatError(probe.zip_error, path)
        layout = archive_layout(probe.zip_names)
        if layout is None:
            raise FormatError("zip archive has no PyTorch data.pkl", path)
        fmt, prefix = layout
        root = prefix + "/" if prefix else ""
        result = read_pickle(probe.zip_read(root + "data.pkl", MAX_PICKLE_READ), name=f"{path}:data.pkl")
        info = ModelInfo(str(path), fmt, files=[{"path": str(path), "size_bytes": probe.size}])
        records, unreadable = collect_tensors(result.value)
        storages = _zip_storages(probe, root)
        to_tensors(records, storages, str(path), info)
        if unreadable:
            info.warnings.append(f"{len(unreadable)} tensor records of unsupported kinds: {unreadable[0]}")
        info.pickle = pickle_summary(result)
        info.metadata = {
            "archive_prefix": prefix,
            **{k: v for k, v in ident.details.items() if k in ("serialization_version",)},
        }
        if fmt == "torchscript":
            info.metadata["code_files"] = sorted(
                n for n in probe.zip_names if n.startswith(root + "code/") and n.endswith(".py")
            )
            if root + "constants.pkl" in probe.zip_names:
                constants = read_pickle(probe.zip_read(root + "constants.pkl", MAX_PICKLE_READ))
                const_records, _ = collect_tensors(constants.value)
                info.metadata["constant_tensors"] = len(const_records)
        else:
            add_checkpoint(result.value, info)
        return info, records, storages
    finally:
        probe.close()
