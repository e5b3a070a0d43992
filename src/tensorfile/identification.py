"""`identify`: which model format a file or folder really is, judged by content.

Data flow: path -> probe (bytes/listing) -> every detector's claim -> the best claim, enriched
with the catalogue's facts and a warning when the extension says otherwise.
"""

from __future__ import annotations

import glob
import os
import re
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from . import catalog
from .errors import FormatError, InputError, TensorfileError
from .formats.registry import DIR_DETECTORS, FILE_DETECTORS
from .formats.signatures import describe
from .hub.refs import is_remote
from .model import CERTAIN, Detection, Identification
from .probe import DirProbe, FileProbe
from .source import check_path, resolve_input

# Files in a model folder that are never the weights themselves.
_SIDE_SUFFIXES = (
    ".json",
    ".txt",
    ".md",
    ".py",
    ".model",
    ".tiktoken",
    ".yaml",
    ".yml",
    ".gitattributes",
    ".jinja",
    ".png",
    ".jpg",
    ".csv",
    ".prototxt",
    ".pbtxt",
    ".lock",
    ".sha256",
    ".cfg",
    ".ini",
)
_MAX_FOLDER_CANDIDATES = 64


def identify(path: str | os.PathLike[str]) -> Identification:
    """Identify one file or folder. Raises InputError when the path cannot be read at all."""
    return _identify(resolve_input(path), walking=False)


def _identify(p: Path, walking: bool) -> Identification:
    st = check_path(p)
    if stat.S_ISDIR(st.st_mode):
        return _identify_dir(DirProbe(p), walking)
    probe = FileProbe(p)
    try:
        return _identify_file(probe)
    finally:
        probe.close()


def _run_file_detectors(probe: FileProbe) -> tuple[list[Detection], list[Detection]]:
    """(format claims, 'unknown' hints with a reason), stopping at the first certain claim."""
    found: list[Detection] = []
    hints: list[Detection] = []
    if probe.size == 0:
        return found, hints
    for detector in FILE_DETECTORS:
        try:
            result = detector(probe)
        except InputError:
            raise
        except FormatError as exc:
            hints.append(Detection("unknown", 0.0, [], {"reason": exc.message}))
            continue
        except (ValueError, LookupError, ArithmeticError, OSError, RecursionError, MemoryError) as exc:
            # Hostile bytes that slipped past a detector's checks: report, never crash.
            where = detector.__module__.rsplit(".", 1)[-1]
            hints.append(Detection("unknown", 0.0, [], {"reason": f"corrupt {where} data ({exc})"}))
            continue
        if result is None:
            continue
        if result.format == "unknown":
            hints.append(result)
            continue
        found.append(result)
        if result.confidence >= CERTAIN:
            break
    return found, hints


def _best(found: list[Detection], ext: str) -> Detection:
    """Highest confidence wins; the extension only breaks ties."""
    return max(found, key=lambda d: (d.confidence, ext in _extensions(d.format)))


def _extensions(format_id: str) -> tuple[str, ...]:
    info = catalog.get(format_id)
    return info.extensions if info else ()


def _identify_file(probe: FileProbe) -> Identification:
    found, hints = _run_file_detectors(probe)
    if not found:
        reason = hints[0].details["reason"] if hints else describe(probe)
        evidence = hints[0].evidence if hints else []
        result = _unknown(probe.path, "file", probe.size, reason, evidence)
    else:
        best = _best(found, probe.ext)
        result = _known(probe.path, "file", probe.size, best)
        result.alternatives = [
            {"format": d.format, "confidence": round(d.confidence, 2)} for d in found if d is not best
        ]
    warning = extension_warning(probe.ext, result)
    if warning:
        result.warnings.insert(0, warning)
    return result


def _identify_dir(probe: DirProbe, walking: bool) -> Identification:
    for detector in DIR_DETECTORS:
        try:
            result = detector(probe)
        except FormatError:
            continue
        if result is not None and result.format != "unknown":
            return _known(probe.path, "directory", probe.total_size, result)
    delegated = _identify_by_weights(probe, walking)
    if delegated is not None:
        return delegated
    n = len(probe.files) + len(probe.dirs)
    reason = (
        "empty directory"
        if n == 0
        else (
            f"directory is not a model folder ({len(probe.files)} files, {len(probe.dirs)} folders); "
            "use -r to identify the files inside"
        )
    )
    return _unknown(probe.path, "directory", probe.total_size, reason, [])


def _identify_by_weights(probe: DirProbe, walking: bool) -> Identification | None:
    """A folder holding one model's files (HF repo with pytorch_model.bin, tf_model.h5, shards…).

    While walking with -r, a plain folder with one model file is descended into instead, so the
    file itself is listed; a folder given by name is answered as a whole.
    """
    candidates = [f for f in probe.files if not f.lower().endswith(_SIDE_SUFFIXES) and not f.startswith(".")]
    if not candidates or len(candidates) > _MAX_FOLDER_CANDIDATES:
        return None
    single_file_folder = len(candidates) == 1 and not probe.dirs and not walking
    if not single_file_folder and not _one_model(probe, candidates):
        return None
    results: list[Identification] = []
    for name in candidates:
        try:
            results.append(identify(probe.path / name))
        except TensorfileError:
            return None
    formats = {r.format for r in results}
    if len(formats) != 1 or "unknown" in formats:
        return None
    first = max(results, key=lambda r: r.confidence)  # the graph of an IR pair, not its raw .bin
    files = [Path(r.path).name for r in results]
    shown = ", ".join(files[:4]) + ("…" if len(files) > 4 else "")
    detection = Detection(
        first.format,
        first.confidence,
        [f"folder of {len(files)} {first.format} file(s): {shown}", *first.evidence],
        {"weights_files": files, **{k: v for k, v in first.details.items() if k != "weights_files"}},
        [w for r in results for w in r.warnings][:8],
    )
    return _known(probe.path, "directory", probe.total_size, detection)


_SHARD_NAME = re.compile(r"-\d{5}-of-\d{5}\.[a-z0-9]+$")


def _one_model(probe: DirProbe, candidates: list[str]) -> bool:
    """Whether several weight files are parts of one model: shards, an IR pair, or an HF repo."""
    if probe.has("config.json") or all(_SHARD_NAME.search(c) for c in candidates):
        return True
    if len(candidates) == 1:
        return False
    stems = {Path(c).stem for c in candidates}
    return len(stems) == 1  # model.xml + model.bin, model.caffemodel beside model.prototxt…


def _known(path: Path, kind: str, size: int, detection: Detection) -> Identification:
    info = catalog.get(detection.format)
    details = dict(detection.details)
    can_exec = details.pop("can_execute_code", info.can_execute_code if info else None)
    risk = details.pop("execution_risk", info.execution_risk if info else None)
    can_exec, risk = _refine_risk(detection.format, details, can_exec, risk)
    return Identification(
        path=str(path),
        kind=kind,
        format=detection.format,
        confidence=detection.confidence,
        family=info.family if info else None,
        name=info.name if info else None,
        frameworks=list(info.frameworks) if info else [],
        can_execute_code=can_exec,
        execution_risk=risk,
        evidence=list(detection.evidence),
        details=details,
        warnings=list(detection.warnings),
        size_bytes=size,
    )


def _refine_risk(fmt: str, details: dict[str, Any], can_exec: Any, risk: Any) -> tuple[Any, Any]:
    """Per-file facts that change the catalogue's general answer."""
    if fmt == "numpy":
        if details.get("object_arrays"):
            return True, "holds object arrays: loading needs allow_pickle=True, which unpickles (runs code)"
        return False, "none: plain numeric arrays (np.load with allow_pickle=False)"
    if fmt == "keras-h5":
        if details.get("variant") in ("weights-only", "keras3-weights"):
            return False, "none: weights only (arrays read by h5py)"
        if details.get("lambda_layers"):
            return (
                True,
                f"{details['lambda_layers']} Lambda layer(s): marshalled Python bytecode runs on load",
            )
        return False, "no Lambda layers in model_config (custom classes still import registered code)"
    if fmt in ("awq", "gptq", "bitsandbytes") and details.get("container") == "pytorch":
        return True, "weights are pickled .bin files: torch.load without weights_only=True runs code"
    return can_exec, risk


def _unknown(path: Path, kind: str, size: int, reason: str, evidence: list[str]) -> Identification:
    return Identification(
        path=str(path),
        kind=kind,
        format="unknown",
        confidence=0.0,
        family=None,
        name=None,
        frameworks=[],
        can_execute_code=None,
        execution_risk=None,
        evidence=evidence,
        details={},
        warnings=[],
        size_bytes=size,
        reason=reason,
    )


def extension_warning(ext: str, result: Identification) -> str | None:
    """A warning when the file's extension belongs to other formats than its content."""
    if not ext or result.kind != "file":
        return None
    claimed = catalog.formats_suggested_by(ext)
    if not claimed or result.format in claimed:
        return None
    suggested = catalog.BY_ID[claimed[0]].name.split(" (")[0]  # catalogue order: the usual owner first
    if result.format == "unknown":
        return f"extension {ext} suggests {suggested}, but {result.reason}"
    danger = " — loading it can execute code" if result.can_execute_code else ""
    return f"extension {ext} suggests {suggested}, but the content is {result.name}{danger}"


# --- many paths -------------------------------------------------------------------------------


def _has_magic(text: str) -> bool:
    return any(c in text for c in "*?[")


def expand(
    inputs: list[str], recursive: bool = False
) -> Iterator[tuple[str, Identification | TensorfileError]]:
    """Identify every input (files, folders, globs) in order; errors are yielded, not raised."""
    for raw in inputs:
        if _has_magic(raw) and not is_remote(raw) and not os.path.lexists(raw):
            matches = sorted(glob.glob(raw, recursive=recursive))
            if not matches:
                yield raw, InputError("no file matches this pattern", raw)
                continue
            for match in matches:
                yield from _expand_one(match, recursive)
        else:
            yield from _expand_one(raw, recursive)


def _expand_one(raw: str, recursive: bool) -> Iterator[tuple[str, Identification | TensorfileError]]:
    try:
        result = identify(raw)
    except TensorfileError as exc:
        yield raw, exc
        return
    if result.kind == "directory" and not result.known and recursive:
        yield from _walk(resolve_input(raw))
        return
    yield raw, result


def _children(folder: Path) -> list[tuple[Path, bool]]:
    """(path, is a folder not reached through a symlink) for each entry, sorted by name."""
    if not isinstance(folder, Path):  # a remote folder
        return [(child, child.is_dir()) for child in folder.iterdir()]
    children = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        try:
            is_dir = entry.is_dir(follow_symlinks=False)
        except OSError:
            is_dir = False
        children.append((Path(entry.path), is_dir))
    return children


def _walk(folder: Path) -> Iterator[tuple[str, Identification | TensorfileError]]:
    try:
        entries = _children(folder)
    except OSError as exc:
        yield str(folder), InputError(f"cannot list directory ({exc.strerror})", folder)
        return
    for path, is_dir in entries:
        if is_dir:
            try:
                result = _identify(path, walking=True)
            except TensorfileError as exc:
                yield str(path), exc
                continue
            if result.known:
                yield str(path), result
            else:
                yield from _walk(path)
        else:
            try:
                yield str(path), identify(path)
            except TensorfileError as exc:
                yield str(path), exc
