"""PyTorch: torch.save zip archives, TorchScript archives, and the legacy (pre-1.6) pickle stack."""

from __future__ import annotations

import contextlib
import io
import posixpath
import struct
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from ..errors import FormatError
from ..model import (
    CERTAIN,
    STRONG,
    Detection,
    Identification,
    ModelInfo,
    OptimizerState,
    TensorInfo,
    is_plain_number,
    new_checkpoint,
    optimizer_state,
)
from ..picklevm import Call, Global, PersistentRef, PickleResult, read_pickle, read_pickle_stream
from ..probe import FileProbe, stored_member_offset
from ..source import SliceSource
from ..torchpickle import (
    ITEMSIZE,
    OPTIMIZER_KEYS,
    STORAGE_DTYPES,
    TensorRecord,
    collect_tensors,
    storage_dtypes,
)

# torch's legacy magic number 0x1950a86a20f9469cfc6c, pickled first in every legacy file.
LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_LEGACY_MAGIC_P2 = b"\x8a\x0a" + LEGACY_MAGIC_NUMBER.to_bytes(10, "little")
_LEGACY_MAGIC_P0 = b"L" + str(LEGACY_MAGIC_NUMBER).encode() + b"L\n"
_LEGACY_TAR_MEMBERS = {"sys_info", "pickle", "storages", "tensors"}
MAX_PICKLE_READ = 64 * 1024 * 1024

_MODEL_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "model_state", "ema", "params")
_MAX_PLAIN = 32  # top-level plain values reported; a hostile dict may hold millions


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
    counters, _ = plain_values(items)
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


def plain_values(items: dict[Any, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """(numbers, other plain values) at the top of a checkpoint dict: epoch, step, loss; versions, flags."""
    numbers: dict[str, Any] = {}
    others: dict[str, Any] = {}
    for key, value in items.items():
        if len(numbers) + len(others) >= _MAX_PLAIN:
            break
        if is_plain_number(value):
            numbers[str(key)] = value
        elif isinstance(value, bool) or (isinstance(value, str) and len(value) <= 200):
            others[str(key)] = value
    return numbers, others


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
        info.tensors.append(
            TensorInfo(rec.name, rec.dtype, rec.shape, nbytes, file_label, offset, rec.role, rec.quantization)
        )
    if missing:
        raise FormatError(
            f"storage record(s) {', '.join(sorted(missing)[:3])} missing from the file", info.path
        )
    info.quantization = _torch_quantization(info.tensors) or info.quantization


def _torch_quantization(tensors: list[TensorInfo]) -> dict[str, Any] | None:
    """The summary of torch quantized tensors (quantize_per_tensor / per_channel, quantize_dynamic)."""
    quantized = [t for t in tensors if t.quantization is not None]
    if not quantized:
        return None
    params: dict[str, int] = {}
    for t in quantized:
        params[t.dtype] = params.get(t.dtype, 0) + t.numel
    main = max(params, key=lambda d: (params[d], d))  # the dtype most quantized parameters use
    return {
        "method": "torch-quantized",
        "bits": ITEMSIZE[main] * 8,
        "qschemes": sorted({str(t.quantization["qscheme"]) for t in quantized if t.quantization}),
        "quantized_tensors": len(quantized),
    }


def _mapping(value: Any) -> dict[Any, Any] | None:
    """A symbolic dict: a plain dict, or an OrderedDict call's items."""
    if isinstance(value, dict):
        return value
    if isinstance(value, Call) and isinstance(value.func, Global) and value.func.name == "OrderedDict":
        return value.items
    return None


def _optimizer_dicts(value: Any, depth: int = 0) -> list[dict[Any, Any]]:
    """Optimizer state dicts ({state, param_groups}) under an optimizer key: one, a list (Lightning's
    optimizer_states) or a dict of them (several named optimizers)."""
    items = _mapping(value)
    if items is not None and "state" in items and "param_groups" in items:
        return [items]
    if depth >= 3:
        return []
    children = (
        list(items.values()) if items is not None else value if isinstance(value, (list, tuple)) else []
    )
    return [d for child in children[:64] for d in _optimizer_dicts(child, depth + 1)]


def _hyperparameters(group: Any) -> dict[str, Any]:
    """Numbers of a torch param group (lr, betas, eps, weight_decay…); flags and param ids left out."""
    items = _mapping(group) or {}
    out: dict[str, Any] = {}
    for key, value in items.items():
        if key == "params":
            continue
        if is_plain_number(value):
            out[str(key)] = value
        elif isinstance(value, (tuple, list)) and 0 < len(value) <= 8 and all(map(is_plain_number, value)):
            out[str(key)] = list(value)
    return out


def _optimizer(items: dict[Any, Any], tensors: list[TensorInfo]) -> OptimizerState | None:
    """Slots (exp_avg, exp_avg_sq, step…) and hyperparameters read from the symbolic optimizer dicts.

    torch's optimizer state dict does not record the optimizer class, so `name` stays None; the
    slots and hyperparameters say which family it is.
    """
    found = [
        d
        for key, value in items.items()
        if str(key).lower() in OPTIMIZER_KEYS
        for d in _optimizer_dicts(value)
    ]
    if not found and not tensors:
        return None
    slots: list[str] = []
    for opt in found:
        for per_param in list((_mapping(opt["state"]) or {}).values())[:4096]:
            slots.extend(str(k) for k in (_mapping(per_param) or {}))
    groups = found[0]["param_groups"] if found else None
    first = groups[0] if isinstance(groups, (list, tuple)) and groups else None
    return optimizer_state(tensors, slots=slots, hyperparameters=_hyperparameters(first))


def _is_module(value: Any) -> bool:
    """A pickled torch.nn.Module: its __dict__ holds _parameters / _modules."""
    state = value.state if isinstance(value, Call) else None
    return isinstance(state, dict) and ("_parameters" in state or "_modules" in state)


def _checkpoint(value: Any, info: ModelInfo) -> None:
    kind, details = checkpoint_kind(value)
    if kind == "pickled-object" and _is_module(value):
        kind = "pickled-module"
    items = _mapping(value) or {}
    counters, others = plain_values(items)
    optimizer_tensors = [t for t in info.tensors if t.role == "optimizer"]
    optimizer = _optimizer(items, optimizer_tensors)
    extra: dict[str, Any] = {"values": others} if others else {}
    info.checkpoint = new_checkpoint(
        kind,
        "pytorch",
        [t for t in info.tensors if t.role != "optimizer"],
        optimizer,
        counters=counters,
        object_class=details.get("class"),
        top_level_keys=details.get("top_level_keys", []),
        extra=extra,
    )


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


Layout = tuple[ModelInfo, list[TensorRecord], dict[str, tuple[int | None, int]]]


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
        _to_tensors(records, storages, str(path), info)
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
        return info, records, storages
    finally:
        probe.close()


def inspect_legacy(path: Path, ident: Identification) -> ModelInfo:
    return layout_legacy(path, ident)[0]


def layout_legacy(path: Path, ident: Identification) -> Layout:
    if ident.details.get("container") == "tar":
        return layout_legacy_tar(path, ident)
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
        _to_tensors(records, storages, str(path), info)
        if unreadable:
            info.warnings.append(f"{len(unreadable)} tensor records of unsupported kinds: {unreadable[0]}")
        info.pickle = _pickle_summary(data)
        info.metadata = {k: v for k, v in ident.details.items() if k in ("sys_info", "protocol_version")}
        locations = sorted({r.location for r in records if r.location})
        if locations:
            info.metadata["storage_locations"] = locations
        _checkpoint(data.value, info)
        return info, records, storages
    finally:
        probe.close()


# --- legacy tar layout -----------------------------------------------------------------------------
#
# The first torch.save (torch 0.1.x, replaced before 0.4) wrote an uncompressed tar, as read by
# torch/serialization.py `legacy_load`:
#   sys_info  pickle {protocol_version, little_endian, type_sizes}
#   pickle    the object; each tensor or storage is a persistent id str(cdata key), each module
#             class a (class, source file, source) tuple
#   tensors   pickle(count), then per tensor pickle((key, storage key, tensor type)) followed by
#             int32 ndim, 4 pad bytes, int64 sizes[ndim], int64 strides[ndim], int64 storage offset
#   storages  pickle(count), then per root storage pickle((key, location, storage type)) followed by
#             int64 element count and the raw bytes; last, pickle([(view key, root key, offset, numel)])
# Only pickles and the small fixed headers are read; storage bytes are skipped by seeking.

_MAX_TAR_MEMBERS = 64
_MAX_NDIM = 64


def _tar_members(probe: FileProbe) -> dict[str, tuple[int, int]]:
    """Member name -> (absolute data offset, size), from the tar headers alone."""
    members: dict[str, tuple[int, int]] = {}
    try:
        with tarfile.open(fileobj=probe.source.open_stream(), mode="r:") as tar:
            for member in tar:
                if len(members) >= _MAX_TAR_MEMBERS:
                    break
                if member.isfile():
                    members[member.name] = (member.offset_data, member.size)
    except (tarfile.TarError, OSError, EOFError, ValueError) as exc:
        raise FormatError(f"tar headers are unreadable ({exc})", probe.path) from None
    for name, (start, size) in members.items():
        if start + size > probe.size:
            raise FormatError(f"tar member {name!r} runs past the end of the file: truncated", probe.path)
    return members


class _Member:
    """Sequential reads inside one tar member: pickles, fixed-size headers, and skips over raw data."""

    def __init__(self, probe: FileProbe, name: str, start: int, size: int) -> None:
        self.name = name
        self.path = probe.path
        self.start = start
        self.size = size
        label = f"{probe.path}:{name}"
        self.stream: BinaryIO = io.BufferedReader(
            SliceSource(probe.source, start, size, label).open_stream(),  # type: ignore[arg-type]
            1 << 16,
        )

    def pickle(self, what: str) -> Any:
        try:
            return read_pickle_stream(self.stream, name=f"{self.path}:{self.name}").value
        except FormatError as exc:
            message = f"{self.name} member: {what} is unreadable ({exc.message})"
            raise FormatError(message, self.path) from None

    def unpack(self, fmt: str, what: str) -> tuple[Any, ...]:
        size = struct.calcsize(fmt)
        data = self.stream.read(size)
        if len(data) < size:
            raise FormatError(f"{self.name} member ends inside {what}: truncated", self.path)
        return struct.unpack(fmt, data)

    @property
    def pos(self) -> int:
        return self.stream.tell()

    def skip(self, n: int, what: str) -> None:
        if n < 0 or self.pos + n > self.size:
            raise FormatError(f"{what} runs past the end of the {self.name} member", self.path)
        self.stream.seek(n, io.SEEK_CUR)

    def count(self, what: str) -> int:
        n = self.pickle(f"the {what} count")
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise FormatError(f"{self.name} member: {what} count {n!r} is not a count", self.path)
        return n

    def records(self, what: str, fields: str) -> Iterator[tuple[Any, Any, Any]]:
        """A count, then that many 3-tuple pickles, each followed by data the caller reads."""
        for i in range(self.count(what)):
            if self.pos >= self.size:
                raise FormatError(f"{self.name} member ends after {i} {what}s: truncated", self.path)
            record = self.pickle(f"{what} record {i}")
            if not isinstance(record, tuple) or len(record) != 3:
                raise FormatError(f"{what} record {i} is not {fields}", self.path)
            yield record


def _dtype_of(type_global: Any) -> str | None:
    """FloatStorage / FloatTensor (torch 0.1 globals) -> F32."""
    if not isinstance(type_global, Global):
        return None
    return STORAGE_DTYPES.get(type_global.name.replace("Tensor", "Storage"))


def _tar_storages(
    member: _Member,
) -> tuple[dict[str, tuple[str, int, int, str | None]], dict[str, tuple[str, int, int]]]:
    """Root storages key -> (dtype, absolute data offset, element count, location) and
    views key -> (root key, element offset, element count)."""
    roots: dict[str, tuple[str, int, int, str | None]] = {}
    for key, location, storage_type in member.records("storage", "(key, location, type)"):
        dtype = _dtype_of(storage_type)
        if dtype is None:
            raise FormatError(f"storage {key} has unknown storage type {storage_type!r}", member.path)
        (numel,) = member.unpack("<q", f"the element count of storage {key}")
        if numel < 0:
            raise FormatError(f"storage {key} claims {numel} elements", member.path)
        data = member.start + member.pos
        member.skip(numel * ITEMSIZE[dtype], f"storage {key} ({numel} elements)")
        roots[str(key)] = (dtype, data, numel, str(location) if location else None)
    views: dict[str, tuple[str, int, int]] = {}
    listed = member.pickle("the storage view list") if member.pos < member.size else []
    for view in listed if isinstance(listed, list) else []:
        if isinstance(view, tuple) and len(view) == 4 and all(isinstance(v, int) for v in view[2:]):
            views[str(view[0])] = (str(view[1]), view[2], view[3])
    return roots, views


def _tar_tensors(member: _Member) -> dict[str, tuple[str | None, Any, tuple[int, ...], tuple[int, ...], int]]:
    """Tensor key -> (storage key, tensor type, sizes, strides, storage offset)."""
    tensors: dict[str, tuple[str | None, Any, tuple[int, ...], tuple[int, ...], int]] = {}
    for key, storage, tensor_type in member.records("tensor", "(key, storage key, type)"):
        # ndim was written as 8 bytes by the first versions; torch reads the low 4 and skips 4.
        ndim, _pad = member.unpack("<ii", f"the rank of tensor {key}")
        if not 0 <= ndim <= _MAX_NDIM:
            raise FormatError(f"tensor {key} claims rank {ndim}", member.path)
        dims = member.unpack(f"<{2 * ndim + 1}q", f"the shape of tensor {key}")
        sizes, strides, offset = dims[:ndim], dims[ndim : 2 * ndim], dims[-1]
        if any(d < 0 for d in sizes) or offset < 0:
            raise FormatError(f"tensor {key} has a negative size or offset", member.path)
        tensors[str(key)] = (None if storage is None else str(storage), tensor_type, sizes, strides, offset)
    return tensors


def _persistent_leaves(root: Any) -> list[tuple[str, str, str]]:
    """(name, role, key) of every tensor/storage persistent id in the object, named like
    `collect_tensors` names rebuild calls (dict keys and module attributes joined by dots)."""
    found: list[tuple[str, str, str]] = []
    visits: dict[int, int] = {}
    stack: list[tuple[Any, str, str]] = [(root, "", "weight")]

    def join(path: str, key: Any) -> str:
        return f"{path}.{key}" if path else str(key)

    def role_of(key: Any, inherited: str) -> str:
        return "optimizer" if isinstance(key, str) and key.lower() in OPTIMIZER_KEYS else inherited

    while stack:
        value, path, role = stack.pop()
        if isinstance(value, PersistentRef):
            # A tuple pid is a module class with its source, not data.
            if isinstance(value.pid, (str, int)) and not isinstance(value.pid, bool):
                found.append((path, role, str(value.pid)))
            continue
        if not isinstance(value, (dict, list, tuple, Call)):
            continue
        seen = visits.get(id(value), 0)
        if seen >= 64 or path.count(".") > 256:  # shared objects and memo cycles
            continue
        visits[id(value)] = seen + 1
        children: list[tuple[Any, str, str]] = []
        if isinstance(value, dict):
            children = [(v, join(path, k), role_of(k, role)) for k, v in value.items()]
        elif isinstance(value, (list, tuple)):
            children = [(v, join(path, i), role) for i, v in enumerate(value)]
        else:
            # Parameter/Variable(data, requires_grad), or copyreg.__newobj__(Parameter, data) at
            # protocols below 2: the wrapped data is the tensor of this name.
            args = value.args[1:] if value.func_name == "copyreg.__newobj__" else value.args
            if args and isinstance(args[0], PersistentRef):
                children.append((args[0], path, role))
            children += [(v, join(path, k), role_of(k, role)) for k, v in value.items.items()]
            children += [(v, join(path, i), role) for i, v in enumerate(value.list_items)]
            if isinstance(value.state, dict):
                for key, child in value.state.items():
                    items = _mapping(child) if key in ("_parameters", "_buffers", "_modules") else None
                    if items is None:
                        children.append((child, join(path, key), role))
                        continue
                    sub = "buffer" if key == "_buffers" else role
                    children += [(v, join(path, k), sub) for k, v in items.items()]
            elif value.state is not None:
                children.append((value.state, path, role))
        stack.extend(reversed(children))
    return found


def layout_legacy_tar(path: Path, ident: Identification) -> Layout:
    probe = FileProbe(path)
    try:
        members = _tar_members(probe)
        missing = [m for m in ("pickle", "tensors", "storages") if m not in members]
        if missing:
            raise FormatError(f"legacy torch tar has no {', '.join(missing)} member", path)
        info = ModelInfo(str(path), "pytorch-legacy", files=[{"path": str(path), "size_bytes": probe.size}])
        info.metadata = {"container": "tar", "members": sorted(members)}
        if "sys_info" in members:
            sys_info = _Member(probe, "sys_info", *members["sys_info"]).pickle("sys_info")
            if isinstance(sys_info, dict):
                info.metadata["sys_info"] = {str(k): v for k, v in sys_info.items()}
                if sys_info.get("little_endian") is False:
                    info.warnings.append("saved on a big-endian machine: tensor bytes are big-endian")
        roots, views = _tar_storages(_Member(probe, "storages", *members["storages"]))
        tensors = _tar_tensors(_Member(probe, "tensors", *members["tensors"]))
        main = _Member(probe, "pickle", *members["pickle"])
        try:
            result = read_pickle_stream(main.stream, name=f"{path}:pickle")
        except FormatError as exc:
            raise FormatError(f"pickle member is unreadable ({exc.message})", path) from None
        records, unknown = _tar_records(_persistent_leaves(result.value), tensors, roots, views)
        if unknown:
            message = f"persistent id(s) with no tensor or storage record: {', '.join(unknown[:3])}"
            raise FormatError(message, path)
        storages = {key: (start, numel * ITEMSIZE[dtype]) for key, (dtype, start, numel, _) in roots.items()}
        storages[""] = (None, 0)  # tensors saved without a storage (empty ones)
        _to_tensors(records, storages, str(path), info)
        info.pickle = _pickle_summary(result)
        locations = sorted({loc for *_, loc in roots.values() if loc})
        if locations:
            info.metadata["storage_locations"] = locations
        if views:
            info.metadata["storage_views"] = len(views)
        _checkpoint(result.value, info)
        return info, records, storages
    finally:
        probe.close()


def _tar_records(
    leaves: list[tuple[str, str, str]],
    tensors: dict[str, tuple[str | None, Any, tuple[int, ...], tuple[int, ...], int]],
    roots: dict[str, tuple[str, int, int, str | None]],
    views: dict[str, tuple[str, int, int]],
) -> tuple[list[TensorRecord], list[str]]:
    """TensorRecords on root storages (views resolved to root + offset); unknown keys apart."""
    records: list[TensorRecord] = []
    unknown: list[str] = []
    for name, role, key in leaves:
        shape: tuple[int, ...] | None
        if key in tensors:
            storage, tensor_type, shape, stride, offset = tensors[key]
        elif key in roots or key in views:  # a bare storage in the object: its elements as 1-D data
            storage, tensor_type, shape, stride, offset = key, None, None, (1,), 0
        else:
            unknown.append(key)
            continue
        view_offset, view_numel = 0, None
        if storage in views:
            storage, view_offset, view_numel = views[storage]
        root = roots.get(storage) if storage is not None else None
        if storage is not None and root is None:
            unknown.append(f"{key} (its storage {storage} is not in the storages member)")
            continue
        if shape is None:
            shape = (view_numel if view_numel is not None else root[2] if root else 0,)
        records.append(
            TensorRecord(
                name or "<root>",
                root[0] if root else _dtype_of(tensor_type) or "U8",
                tuple(shape),
                tuple(stride),
                storage or "",
                offset + view_offset,
                root[2] if root else None,
                root[3] if root else None,
                role,
            )
        )
    return records, unknown


INSPECTS = {"pytorch-zip": inspect_zip, "torchscript": inspect_zip, "pytorch-legacy": inspect_legacy}
