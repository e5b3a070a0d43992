"""PyTorch: torch.save zip archives, TorchScript archives, and the legacy (pre-1.6) pickle stack."""

from __future__ import annotations

import contextlib
import posixpath
import struct
import tarfile
from pathlib import Path
from typing import Any

from ..errors import FormatError, UnsupportedError
from ..model import CERTAIN, STRONG, Detection, Identification, ModelInfo, TensorInfo
from ..picklevm import Call, Global, PickleResult, read_pickle
from ..probe import FileProbe, stored_member_offset
from ..torchpickle import ITEMSIZE, OPTIMIZER_KEYS, TensorRecord, collect_tensors

# torch's legacy magic number 0x1950a86a20f9469cfc6c, pickled first in every legacy file.
LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_LEGACY_MAGIC_P2 = b"\x8a\x0a" + LEGACY_MAGIC_NUMBER.to_bytes(10, "little")
_LEGACY_MAGIC_P0 = b"L" + str(LEGACY_MAGIC_NUMBER).encode() + b"L\n"
_LEGACY_TAR_MEMBERS = {"sys_info", "pickle", "storages", "tensors"}
MAX_PICKLE_READ = 64 * 1024 * 1024

_MODEL_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "model_state", "ema", "params")
_COUNTER_KEYS = (
    "epoch",
    "step",
    "global_step",
    "iteration",
    "iter",
    "best_acc",
    "loss",
    "lr_scheduler",
    "scheduler",
    "scaler",
    "amp",
)


def archive_layout(names: list[str]) -> tuple[str, str] | None:
    """('torchscript' | 'pytorch-zip', record prefix) for a torch zip listing, else None."""
    pkl = [n for n in names if n == "data.pkl" or n.endswith("/data.pkl")]
    if not pkl:
        return None
    prefix = posixpath.dirname(min(pkl, key=len))
    root = prefix + "/" if prefix else ""
    has_version = any(n in (root + "version", root + ".data/version") for n in names)
    has_data = any(n.startswith(root + "data/") for n in names)
    if any(n.startswith(root + "code/") for n in names) or root + "constants.pkl" in names:
        return "torchscript", prefix
    if has_version or has_data or root + "byteorder" in names:
        return "pytorch-zip", prefix
    return None


def is_tensor_rebuild(value: Any) -> bool:
    return (
        isinstance(value, Call)
        and isinstance(value.func, Global)
        and (
            value.func.module in ("torch._utils", "torch._tensor") and value.func.name.startswith("_rebuild")
        )
    )


def checkpoint_kind(value: Any) -> tuple[str, dict[str, Any]]:
    """What a torch pickle holds: a state dict, a training checkpoint, a whole pickled module…"""
    items: dict[Any, Any] | None = None
    if isinstance(value, dict):
        items = value
    elif (
        isinstance(value, Call)
        and isinstance(value.func, Global)
        and value.func.qualname in ("collections.OrderedDict", "torch.nn.modules.module._IncompatibleKeys")
    ):
        items = value.items
    if items is None:
        if is_tensor_rebuild(value):
            return "tensor", {}
        if isinstance(value, Call) and isinstance(value.func, Global):
            return "pickled-object", {"class": value.func.qualname}
        return "other", {"python_type": type(value).__name__}
    keys = [str(k) for k in items]
    info: dict[str, Any] = {"top_level_keys": keys[:32]}
    if items and all(is_tensor_rebuild(v) for v in items.values()):
        return "state-dict", info
    lowered = {k.lower(): k for k in keys}
    if "pytorch-lightning_version" in lowered:
        return "lightning-checkpoint", info
    optimizer = [lowered[k] for k in OPTIMIZER_KEYS if k in lowered]
    counters = {
        lowered[k]: items[lowered[k]]
        for k in _COUNTER_KEYS
        if k in lowered and isinstance(items[lowered[k]], (int, float))
    }
    if counters:
        info["counters"] = counters
    if optimizer:
        info["optimizer_keys"] = optimizer
        return "training-checkpoint", info
    if any(k in lowered for k in _MODEL_KEYS):
        return "checkpoint", info
    if any(is_tensor_rebuild(v) for v in items.values()):
        return "state-dict", info
    return "dict", info


def _kind_details(result: PickleResult) -> dict[str, Any]:
    kind, info = checkpoint_kind(result.value)
    details: dict[str, Any] = {"checkpoint_kind": kind, **info}
    details["tensor_records"] = sum(1 for c in result.calls if is_tensor_rebuild(c))
    foreign = sorted(
        {g.qualname for g in result.globals if not g.module.startswith(("torch", "collections"))}
    )
    if foreign:
        details["imports_outside_torch"] = foreign[:16]
    return details


def detect_zip(probe: FileProbe) -> Detection | None:
    names = probe.zip_names
    layout = archive_layout(names) if names else None
    if layout is None:
        return None
    fmt, prefix = layout
    root = prefix + "/" if prefix else ""
    evidence = [f"zip archive with {root}data.pkl"]
    warnings: list[str] = []
    if probe.zip_error:
        warnings.append(probe.zip_error + "; entries read from local headers")
        return Detection(fmt, STRONG, evidence, {"container": "zip", "archive_prefix": prefix}, warnings)
    details: dict[str, Any] = {"container": "zip", "archive_prefix": prefix}
    if fmt == "torchscript":
        code = [n for n in names if n.startswith(root + "code/") and n.endswith(".py")]
        evidence.append(f"{len(code)} TorchScript code files under {root}code/")
        if root + "constants.pkl" in names:
            evidence.append(f"{root}constants.pkl")
        return Detection(fmt, CERTAIN, evidence, details)
    version_name = next((n for n in (root + ".data/version", root + "version") if n in names), None)
    if version_name:
        with contextlib.suppress(FormatError, UnicodeDecodeError):
            details["serialization_version"] = probe.zip_read(version_name, 64).decode().strip()
        evidence.append(f"{version_name} record")
    details["storages"] = sum(1 for n in names if n.startswith(root + "data/"))
    try:
        result = read_pickle(
            probe.zip_read(root + "data.pkl", MAX_PICKLE_READ), name=f"{probe.path}:data.pkl"
        )
        details.update(_kind_details(result))
    except FormatError as exc:
        warnings.append(f"data.pkl could not be read: {exc.message}")
    return Detection(fmt, CERTAIN, evidence, details, warnings)


def legacy_magic_at(head: bytes) -> int | None:
    """Offset just after the pickled legacy magic number, or None."""
    if head[:1] == b"\x80" and head[2:14] == _LEGACY_MAGIC_P2:
        return 14 + (1 if head[14:15] == b"." else 0)
    if head.startswith(_LEGACY_MAGIC_P0):
        return len(_LEGACY_MAGIC_P0) + (
            1 if head[len(_LEGACY_MAGIC_P0) : len(_LEGACY_MAGIC_P0) + 1] == b"." else 0
        )
    return None


def detect_legacy(probe: FileProbe) -> Detection | None:
    if legacy_magic_at(probe.head) is None:
        return None
    evidence = [f"pickled magic number {LEGACY_MAGIC_NUMBER:#x} (torch legacy serialization)"]
    details: dict[str, Any] = {"container": "pickle-stack"}
    warnings: list[str] = []
    try:
        offset = 0
        results = []
        for _ in range(3):  # magic number, protocol version, sys_info; the fourth is the object
            res = _read_growing(probe, offset)
            results.append(res)
            offset += res.end
        data_pickle = _read_growing(probe, offset)
        details["data_pickle_end"] = offset + data_pickle.end
        details["protocol_version"] = results[1].value
        if isinstance(results[2].value, dict):
            details["sys_info"] = {str(k): v for k, v in results[2].value.items()}
        details.update(_kind_details(data_pickle))
        locations = sorted(
            {
                str(r.pid[3])
                for r in data_pickle.persistent_refs
                if isinstance(r.pid, tuple) and len(r.pid) > 3
            }
        )
        if locations:
            details["storage_locations"] = locations
    except FormatError as exc:
        warnings.append(f"pickle stack could not be read fully: {exc.message}")
    return Detection("pytorch-legacy", CERTAIN, evidence, details, warnings)


def _read_growing(probe: FileProbe, offset: int) -> PickleResult:
    """Read one pickle at `offset`, fetching more bytes only while it is cut short."""
    size = 1 << 20
    while True:
        data = probe.read(offset, size)
        try:
            return read_pickle(data, name=str(probe.path))
        except FormatError:
            if len(data) < size or size >= MAX_PICKLE_READ:
                raise
            size *= 4


def detect_legacy_tar(probe: FileProbe) -> Detection | None:
    if probe.head[257:262] != b"ustar":
        return None
    try:
        with tarfile.open(fileobj=probe.source.open_stream(), mode="r:") as tar:
            names = []
            for member in tar:
                names.append(member.name)
                if len(names) > 16:
                    break
    except (tarfile.TarError, OSError, EOFError):
        return None
    if not set(names) >= _LEGACY_TAR_MEMBERS:
        return None
    return Detection(
        "pytorch-legacy",
        CERTAIN,
        ["tar archive with sys_info, pickle, storages and tensors members (torch legacy tar)"],
        {"container": "tar", "members": names},
    )


def detect_file(probe: FileProbe) -> Detection | None:
    return detect_zip(probe) or detect_legacy(probe) or detect_legacy_tar(probe)


# --- inspect --------------------------------------------------------------------------------------


def _pickle_summary(result: PickleResult) -> dict[str, Any]:
    imports = sorted({g.qualname for g in result.globals})
    return {
        "protocol": result.protocol,
        "imports": imports,
        "calls": len(result.calls),
        "opcodes": result.opcode_count,
    }


def _to_tensors(
    records: list[TensorRecord], storages: dict[str, tuple[int | None, int]], file_label: str, info: ModelInfo
) -> None:
    """TensorInfo from pickle records; `storages` maps key -> (absolute data offset or None, byte size)."""
    missing: set[str] = set()
    for rec in records:
        itemsize = ITEMSIZE[rec.dtype]
        nbytes = rec.numel * itemsize
        located = storages.get(rec.storage_key)
        offset = None
        if located is None:
            missing.add(rec.storage_key)
        else:
            start, size = located
            extent = (
                rec.storage_offset + sum((d - 1) * s for d, s in zip(rec.shape, rec.stride, strict=False)) + 1
            )
            if rec.numel and extent * itemsize > size:
                info.warnings.append(
                    f"tensor {rec.name!r} reaches past the end of its storage {rec.storage_key}"
                )
            if start is not None and rec.contiguous:
                offset = start + rec.storage_offset * itemsize
        info.tensors.append(TensorInfo(rec.name, rec.dtype, rec.shape, nbytes, file_label, offset, rec.role))
    if missing:
        raise FormatError(
            f"storage record(s) {', '.join(sorted(missing)[:3])} missing from the file", info.path
        )


def _checkpoint(value: Any, info: ModelInfo) -> None:
    kind, details = checkpoint_kind(value)
    roles = info.parameters_by_role
    info.checkpoint = {
        "kind": kind,
        "counters": details.get("counters", {}),
        "top_level_keys": details.get("top_level_keys"),
        "model_parameters": roles.get("weight", 0) + roles.get("buffer", 0),
        "optimizer_parameters": roles.get("optimizer", 0),
        "optimizer_tensors": sum(1 for t in info.tensors if t.role == "optimizer"),
    }
    if kind == "pickled-object":
        info.checkpoint["class"] = details.get("class")


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
        _to_tensors(records, _zip_storages(probe, root), str(path), info)
        if unreadable:
            info.warnings.append(f"{len(unreadable)} tensor records of unsupported kinds: {unreadable[0]}")
        info.pickle = _pickle_summary(result)
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
            _checkpoint(result.value, info)
        return info
    finally:
        probe.close()


def inspect_legacy(path: Path, ident: Identification) -> ModelInfo:
    if ident.details.get("container") == "tar":
        raise UnsupportedError("the pre-1.0 tar layout of torch.save is not inspected yet", path)
    probe = FileProbe(path)
    try:
        offset = 0
        for _ in range(3):  # magic number, protocol version, sys_info
            offset += _read_growing(probe, offset).end
        data = _read_growing(probe, offset)
        offset += data.end
        keys_pickle = _read_growing(probe, offset)
        offset += keys_pickle.end
        keys = keys_pickle.value
        if not isinstance(keys, list):
            raise FormatError("legacy storage key list is not a list", path)
        records, unreadable = collect_tensors(data.value)
        dtype_of = {r.storage_key: r.dtype for r in records}
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
        _to_tensors(records, storages, str(path), info)
        if unreadable:
            info.warnings.append(f"{len(unreadable)} tensor records of unsupported kinds: {unreadable[0]}")
        info.pickle = _pickle_summary(data)
        info.metadata = {k: v for k, v in ident.details.items() if k in ("sys_info", "protocol_version")}
        locations = sorted({r.location for r in records if r.location})
        if locations:
            info.metadata["storage_locations"] = locations
        _checkpoint(data.value, info)
        return info
    finally:
        probe.close()


INSPECTS = {"pytorch-zip": inspect_zip, "torchscript": inspect_zip, "pytorch-legacy": inspect_legacy}
