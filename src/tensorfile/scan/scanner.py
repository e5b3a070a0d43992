"""Scan files and folders: pick the checks by content, walk archives, never load anything.

Each file is judged by what its bytes are, not its name: a pickle renamed .txt inside a zip is
still scanned as a pickle. A file that cannot be read, or a part that cannot be opened, is
reported as such (fail closed), never as clean.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import BinaryIO

from ..errors import FormatError, TensorfileError, UnsupportedError
from ..formats.keras import hdf5_offset
from ..formats.numpy import MAGIC as NPY_MAGIC
from ..formats.numpy import has_objects, parse_npy_header
from ..formats.pytorch import legacy_magic_at
from ..probe import load_json
from ..source import check_path, read_up_to, resolve_input
from . import archive_sniff, archives, frameworks
from .findings import CONVERT_ADVICE, FileResult, Finding, ScanReport
from .pickles import BUDGET_RULE, looks_like_pickle, scan_pickle

HEAD = 64 * 1024
MAX_DEPTH = 4
_PICKLE_NAMES = (".pkl", ".pickle", ".pt", ".pth", ".bin", ".ckpt", ".joblib", ".dat", ".sav")
_TEMPLATE_SUFFIXES = (".j2", ".jinja", ".jinja2", ".template", ".tmpl", ".yaml", ".yml")
_HDF5 = b"\x89HDF\r\n\x1a\n"
_MAX_JSON = 64 * 1024 * 1024


def scan(
    paths: Iterable[str | os.PathLike[str]], *, fail_on: str = "high", jobs: int | None = None
) -> ScanReport:
    """Scan files and folders (folders recursively). Files are scanned in parallel processes."""
    files: list[Path] = []
    results: list[FileResult] = []
    for raw in paths:
        try:
            path = resolve_input(raw)
        except TensorfileError as exc:
            results.append(FileResult(str(raw), status="error", error=exc.message))
            continue
        if path.is_dir():
            found = sorted(p for p in _walk(path))
            if not found:
                results.append(FileResult(str(path), status="error", error="folder holds no files"))
            files.extend(found)
        else:
            files.append(path)
    workers = jobs if jobs is not None else min(os.cpu_count() or 1, 8)
    if workers > 1 and len(files) >= 4:
        if any(not isinstance(f, Path) for f in files):
            # Remote files wait on the network, not the CPU: threads share one connection pool and cache.
            with ThreadPoolExecutor(8) as threads:
                results.extend(threads.map(scan_file, files))
        else:
            from .pool import scan_files

            results.extend(scan_files(files, workers))
    else:
        results.extend(scan_file(f) for f in files)
    return ScanReport(results, fail_on)


def _walk(folder: Path) -> Iterator[Path]:
    if not isinstance(folder, Path):  # a remote folder: every file of its listing
        yield from folder.walk_files()
        return
    for root, dirs, names in os.walk(folder, followlinks=False):
        dirs[:] = sorted(d for d in dirs if d not in (".git", "__pycache__"))
        for name in names:
            yield Path(root) / name


def scan_file(path: Path) -> FileResult:
    """One file; every failure ends up in the result (status "error"), never as an exception."""
    result = FileResult(str(path))
    try:
        check_path(path)
        with path.open("rb") as f:
            head = f.read(HEAD)
        _scan_top(path, head, result)
        if any(f.rule == BUDGET_RULE for f in result.findings):  # a pickle read only this far
            result.status = "incomplete"
    except TensorfileError as exc:
        result.status = "error"
        result.error = exc.message
    except (OSError, MemoryError, RecursionError) as exc:
        result.status = "error"
        result.error = f"could not be scanned: {exc}"
    except Exception as exc:  # fail closed: a bug in a checker must not read as "clean"
        result.status = "error"
        result.error = f"internal error while scanning ({type(exc).__name__}: {exc})"
    return result


def _scan_top(path: Path, head: bytes, result: FileResult) -> None:
    """Formats that need the whole file (HDF5, protobuf, GGUF, safetensors), then generic content."""
    if head.startswith(b"GGUF"):
        result.format = "gguf"
        _gguf(path, result)
        return
    superblock = _hdf5_superblock(path, head)
    if superblock is not None:
        result.format = "keras-h5"
        for key, config in frameworks.keras_h5_configs(path).items():
            result.findings += frameworks.check_keras_config(config, key)
        result.scanned.append("model_config")
        if superblock == 0:
            return
        # A user block before the superblock is the start of the file for every other reader
        # (torch.load, pickle): it is scanned as content too.
    if _is_safetensors(head):
        result.format = "safetensors"
        result.findings += frameworks.check_safetensors(path)
        result.scanned.append("header")
        return
    if path.suffix.lower() in (".pb", ".onnx", ".pbtxt") or _maybe_protobuf(path, head):
        from ..identification import identify

        ident = identify(path)
        if ident.format == "tf-savedmodel":
            result.format = ident.format
            result.findings += frameworks.check_tf_graph(path)
            result.scanned.append("graph ops")
            return
        if ident.format == "onnx":
            result.format = ident.format
            result.findings += frameworks.check_onnx(ident.details, path)
            result.scanned.append("graph")
            return

    def reopen() -> BinaryIO:
        return path.open("rb")

    _scan_content(path.name, head, reopen, result, depth=0, where="", top=path)


def _scan_content(
    name: str,
    head: bytes,
    open_stream: Callable[[], BinaryIO],
    result: FileResult,
    *,
    depth: int,
    where: str,
    top: Path | None = None,
) -> None:
    """Check one blob (a file, or a member of an archive) by its content."""
    # where: the chain of archive members holding this blob ("" for the file itself)
    label = f"{where} › {name}" if where else (name if depth else "")

    def add(findings: list[Finding]) -> None:
        result.findings.extend(f.within(label) if label else f for f in findings)

    lower = name.lower()
    kind = archive_sniff.archive_kind(head)
    if kind is not None:
        if depth >= MAX_DEPTH:
            add(
                [
                    Finding(
                        "archive-too-deep", "medium", "Archives nested this deep are not opened.", kind, name
                    )
                ]
            )
            result.status = "incomplete"
            return
        _scan_archive(name, kind, open_stream, result, depth=depth, where=label, top=top)
        return
    if head.startswith(NPY_MAGIC):
        result.format = result.format or "numpy"
        _npy(name, head, open_stream, add)
        result.scanned.append(label or name)
        return
    if looks_like_pickle(head) or (lower.endswith(_PICKLE_NAMES) and head[:1] == b"\x80"):
        result.format = result.format or ("pytorch-legacy" if legacy_magic_at(head) is not None else "pickle")
        streams = 5 if legacy_magic_at(head) is not None else 64
        with open_stream() as stream:
            found = scan_pickle(stream, name, max_streams=streams)
        add(found.findings)
        result.scanned.append(label or name)
        return
    if "/code/" in f"/{lower}" and lower.endswith(".py"):
        with open_stream() as stream:
            add(frameworks.check_torchscript_code(name, stream.read(16 << 20)))
        return
    stripped = head.lstrip()
    looks_json = stripped[:1] in (b"{", b"[") and stripped[:2] not in (b"{%", b"{{")
    if not lower.endswith(_TEMPLATE_SUFFIXES) and (lower.endswith(".json") or (looks_json and depth == 0)):
        result.format = result.format or "json"
        _json(name, open_stream, add)
        result.scanned.append(label or name)
        return
    if lower.endswith(_TEMPLATE_SUFFIXES) or _is_text(head):
        from . import templates  # jinja2 is imported only when there is text to check

        if lower.endswith(_TEMPLATE_SUFFIXES) or templates.is_template_text(head):
            result.format = result.format or "text"
            with open_stream() as stream:
                data = read_up_to(stream.read, _MAX_JSON)
            add(templates.scan_text_template(data, name))
            result.scanned.append(label or name)
            return
    if depth == 0:
        result.format = result.format or "other"
        result.findings.append(
            Finding(
                "not-a-code-format",
                "info",
                "Not a pickle, archive or model format that can run code when loaded.",
                _describe(head),
                name,
            )
        )


def _scan_archive(
    name: str,
    kind: str,
    open_stream: Callable[[], BinaryIO],
    result: FileResult,
    *,
    depth: int,
    where: str,
    top: Path | None,
) -> None:
    try:
        if top is not None and depth == 0:
            walker = archives.walk_archive(top, kind)
        else:
            walker = archives.walk_archive_stream(open_stream, kind, where)
        names: list[str] = []
        for item in walker:
            if isinstance(item, Finding):
                located = item.within(where) if where else item
                result.findings.append(located)
                if item.rule in archives.INCOMPLETE_RULES:
                    result.status = "incomplete"
                continue
            names.append(item.name)
            try:
                _scan_content(item.name, item.head, item.open, result, depth=depth + 1, where=where)
            except TensorfileError as exc:  # one bad member: report it, keep scanning the others
                result.findings.append(
                    Finding(
                        "archive-member-unscanned",
                        "high" if item.name.lower().endswith(_PICKLE_NAMES) else "medium",
                        "A member of this archive could not be scanned.",
                        exc.message,
                        f"{where} › {item.name}" if where else item.name,
                    )
                )
                result.status = "incomplete"
        if depth == 0 and not (kind in ("gzip", "bz2", "xz", "lzma", "zlib") and result.format):
            # a compressed single stream is reported as what it holds (a joblib pickle, say)
            result.format = _archive_format(kind, names)
    except FormatError as exc:
        if depth == 0:
            raise
        result.findings.append(
            Finding(
                "archive-corrupt",
                "medium",
                "A nested archive is damaged; it was read as far as possible.",
                exc.message,
                where,
            )
        )
        result.status = "incomplete"
    except UnsupportedError as exc:
        result.findings.append(
            Finding(
                "archive-unsupported",
                "high",
                "This archive could not be opened, so it was not checked.",
                exc.message,
                where,
            )
        )
        result.status = "incomplete"


def _archive_format(kind: str, names: list[str]) -> str:
    """A format id for the report, from the member layout (the checks never depend on it)."""
    if kind == "zip":
        if any(n.endswith("data.pkl") for n in names):
            return "torchscript" if any("/code/" in f"/{n}" for n in names) else "pytorch-zip"
        if "config.json" in names and ("metadata.json" in names or "model.weights.h5" in names):
            return "keras-v3"
        if names and all(n.endswith(".npy") for n in names):
            return "numpy"
    return kind


def _npy(
    name: str, head: bytes, open_stream: Callable[[], BinaryIO], add: Callable[[list[Finding]], None]
) -> None:
    header = parse_npy_header(head)
    if header is None:
        add(
            [
                Finding(
                    "numpy-bad-header",
                    "low",
                    "The .npy header cannot be read; numpy refuses the file.",
                    "",
                    name,
                )
            ]
        )
        return
    if not has_objects(header.get("descr")):
        return
    with open_stream() as stream:
        stream.seek(header["_data_offset"])
        found = scan_pickle(stream, name, max_streams=1)
    add(
        [
            Finding(
                "numpy-object-array",
                "low",
                "An object array: numpy.load(allow_pickle=True) unpickles its elements.",
                str(header.get("descr")),
                name,
                "store numeric arrays only, or " + CONVERT_ADVICE,
            ),
            *[f for f in found.findings if f.rule not in ("pickle-trailing-data",)],
        ]
    )


def _json(name: str, open_stream: Callable[[], BinaryIO], add: Callable[[list[Finding]], None]) -> None:
    from . import templates

    with open_stream() as stream:
        data = read_up_to(stream.read, _MAX_JSON + 1)
    if len(data) > _MAX_JSON:
        add(
            [
                Finding(
                    "json-too-large",
                    "low",
                    "JSON file too large to check for templates.",
                    f">{_MAX_JSON} bytes",
                    name,
                )
            ]
        )
        return
    add(templates.scan_json_config(data, name))
    try:
        config = load_json(data)  # not json.loads: nesting too deep for it is a RecursionError
    except ValueError:
        return
    if isinstance(config, dict) and ("class_name" in config or "module" in config):
        add(frameworks.check_keras_config(config, name))


def _gguf(path: Path, result: FileResult) -> None:
    from ..formats.gguf import read_gguf
    from . import templates

    metadata, _tensors, _facts, _warnings = read_gguf(path)
    for key, value in metadata.items():
        if "chat_template" in key and isinstance(value, str):
            result.findings += templates.check_template(value, f"GGUF {key}")
    result.scanned.append("metadata")


def _hdf5_superblock(path: Path, head: bytes) -> int | None:
    """Where libhdf5 finds the superblock (0 or a power of two from 512), also past the head."""
    if head.startswith(_HDF5):
        return 0
    if len(head) < HEAD:
        return hdf5_offset(head)
    from ..hdf5 import find_superblock
    from ..source import open_source

    with open_source(path) as source:
        return find_superblock(source)


def _is_safetensors(head: bytes) -> bool:
    if len(head) < 10:
        return False
    length = int.from_bytes(head[:8], "little")
    return 2 <= length < (1 << 32) and head[8:9] == b"{"


def _maybe_protobuf(path: Path, head: bytes) -> bool:
    return path.name == "saved_model.pb" or (head[:1] in (b"\x08", b"\x12", b"\x0a") and path.suffix == "")


def _is_text(head: bytes) -> bool:
    sample = head[:4096]
    return (
        bool(sample)
        and b"\x00" not in sample
        and (b"{{" in sample or b"{%" in sample or b"!!python" in sample or b"!python" in sample)
    )


def _describe(head: bytes) -> str:
    if head.startswith(b"\x89PNG"):
        return "PNG image"
    if not head:
        return "empty"
    if all(32 <= b < 127 or b in (9, 10, 13) for b in head[:512]):
        return "text"
    return f"{len(head)}+ bytes of unrecognised binary data"


def scan_result_json(report: ScanReport) -> str:
    return json.dumps(report.to_dict(), indent=2, default=str)
