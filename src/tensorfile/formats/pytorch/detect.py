"""Detection: a torch.save / TorchScript zip (by its data.pkl layout), the legacy pickle stack (by
its pickled magic number) and the legacy tar (by its members)."""

from __future__ import annotations

import contextlib
import posixpath
import tarfile
from typing import Any

from ...errors import FormatError
from ...model import CERTAIN, STRONG, Detection
from ...picklevm import PickleResult, read_pickle
from ...probe import FileProbe
from .kind import kind_details

# torch's legacy magic number 0x1950a86a20f9469cfc6c, pickled first in every legacy file.
LEGACY_MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
_LEGACY_MAGIC_P2 = b"\x8a\x0a" + LEGACY_MAGIC_NUMBER.to_bytes(10, "little")
_LEGACY_MAGIC_P0 = b"L" + str(LEGACY_MAGIC_NUMBER).encode() + b"L\n"
_LEGACY_TAR_MEMBERS = {"sys_info", "pickle", "storages", "tensors"}
MAX_PICKLE_READ = 64 * 1024 * 1024


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
        details.update(kind_details(result))
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
            res = read_growing(probe, offset)
            results.append(res)
            offset += res.end
        data_pickle = read_growing(probe, offset)
        details["data_pickle_end"] = offset + data_pickle.end
        details["protocol_version"] = results[1].value
        if isinstance(results[2].value, dict):
            details["sys_info"] = {str(k): v for k, v in results[2].value.items()}
        details.update(kind_details(data_pickle))
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


def read_growing(probe: FileProbe, offset: int) -> PickleResult:
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
