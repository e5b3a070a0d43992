"""Inspect the first torch.save format (torch 0.1.x): an uncompressed tar of pickles and raw storages."""

from __future__ import annotations

import io
import struct
import tarfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from ...errors import FormatError
from ...model import Identification, ModelInfo
from ...picklevm import Call, Global, PersistentRef, read_pickle_stream
from ...probe import FileProbe
from ...source import SliceSource
from ...torchpickle import ITEMSIZE, OPTIMIZER_KEYS, STORAGE_DTYPES, TensorRecord
from .checkpoint import add_checkpoint
from .kind import mapping
from .tensors import Layout, pickle_summary, to_tensors

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
                    items = mapping(child) if key in ("_parameters", "_buffers", "_modules") else None
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
        to_tensors(records, storages, str(path), info)
        info.pickle = pickle_summary(result)
        locations = sorted({loc for *_, loc in roots.values() if loc})
        if locations:
            info.metadata["storage_locations"] = locations
        if views:
            info.metadata["storage_views"] = len(views)
        add_checkpoint(result.value, info)
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
