"""`convert`: read a source's tensor locations, plan the output, check the disk, stream, rename.

Nothing appears under the destination name until everything is written and fsynced: a single
file goes through `atomic_output` (an unnamed O_TMPFILE inode where it can), a folder through
`atomic_folder`, built under a locked part name beside it and renamed into place at the end (with
--force, swapped with the old one in one renameat2 exchange where Linux allows, the old one removed
after). Parts that killed runs left in the
destination folder are removed before the free space is checked.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

from ..atomic import atomic_folder, atomic_output, clear_stale_parts, is_empty_folder
from ..errors import InputError, UsageError
from ..source import check_path
from .cast import target_dtype
from .plan import Plan, Selection, make_plan, parse_size, shard, shard_names
from .sources import SAFETENSORS_FORMAT, open_tensors
from .stream import OutTensor, Progress
from .tensors import FileMaps, TensorSet

TARGETS = ("safetensors", "npz", "flax", "gguf")
_EXTENSIONS = {".safetensors": "safetensors", ".npz": "npz", ".msgpack": "flax", ".gguf": "gguf"}
_FOLDER_FILE = {"npz": "model.npz", "flax": "flax_model.msgpack"}
DEFAULT_SHARD = "5GB"
# Files in a model folder that are weights in some format: never copied into the converted folder.
_WEIGHT_SUFFIXES = (
    ".safetensors",
    ".bin",
    ".pt",
    ".pth",
    ".ckpt",
    ".msgpack",
    ".h5",
    ".gguf",
    ".npz",
    ".onnx",
)
_SPACE_MARGIN = 64 * 1024 * 1024


@dataclass
class ConvertResult:
    """What a conversion wrote, for the summary line and `--json`."""

    source: str
    source_format: str
    destination: str
    target: str
    dtype: str | None
    files: list[dict[str, Any]] = field(default_factory=list)  # path, size_bytes, tensors
    tensor_count: int = 0
    total_bytes: int = 0
    aliases: dict[str, str] = field(default_factory=dict)
    copied_files: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    seconds: float = 0.0
    gguf: dict[str, Any] | None = None  # arch, quant, tensors per type, bits per weight

    def to_dict(self) -> dict[str, Any]:
        return {
            "source": self.source,
            "source_format": self.source_format,
            "destination": self.destination,
            "target": self.target,
            "dtype": self.dtype,
            "tensor_count": self.tensor_count,
            "total_bytes": self.total_bytes,
            "files": self.files,
            "aliases": self.aliases,
            "copied_files": self.copied_files,
            "notes": self.notes,
            "seconds": round(self.seconds, 3),
            **({"gguf": self.gguf} if self.gguf is not None else {}),
        }


def convert(
    source: str | os.PathLike[str],
    destination: str | os.PathLike[str],
    *,
    to: str | None = None,
    dtype: str | None = None,
    include: list[str] | tuple[str, ...] = (),
    exclude: list[str] | tuple[str, ...] = (),
    rename: list[str] | tuple[str, ...] = (),
    max_shard_size: str | None = None,
    force: bool = False,
    trust: bool = False,
    quant: str | None = None,
    progress: Callable[[int], Progress] | None = None,
) -> ConvertResult:
    """Convert a model file or folder; see `tensorfile convert --help` for the options.

    `progress`, when given, is called once with the total byte count and returns the per-chunk
    callback (the CLI passes a rich progress bar).
    """
    started = time.perf_counter()
    from ..hub.refs import is_remote

    for given in (source, destination):
        if isinstance(given, str) and is_remote(given):
            raise UsageError(
                f"convert works on local files; get {given} first with `tensorfile download {given}` "
                "(inspect, scan and diff read it where it is)"
            )
    src, dst = Path(source), Path(destination)
    check_path(src)
    _check_destination(src, dst, force)
    target, as_folder = _target(dst, to)
    cast = target_dtype(dtype) if dtype else None
    if max_shard_size and not (as_folder and target == "safetensors"):
        raise UsageError("--max-shard-size needs a folder destination written as safetensors")
    shard_limit = (
        parse_size(max_shard_size or DEFAULT_SHARD) if as_folder and target == "safetensors" else None
    )

    if target == "gguf" or quant is not None:
        return _convert_gguf(
            src,
            dst,
            target,
            as_folder,
            quant,
            dtype,
            (include, exclude, rename, max_shard_size),
            trust,
            progress,
            started,
        )
    tensors = _open_source(src, trust)
    selection = Selection.from_options(list(include), list(exclude), list(rename))
    plan = make_plan(tensors.tensors, selection, cast, dedupe=target == "safetensors")
    result = ConvertResult(str(src), tensors.format, str(dst), target, cast, notes=list(tensors.notes))
    _describe_plan(plan, target, result)
    metadata = _metadata(tensors, plan) if target == "safetensors" else {}
    copies = _folder_copies(src) if as_folder and src.is_dir() else []
    need = plan.total_bytes + sum(f.stat().st_size for f in copies)
    _check_space(dst, need, result)

    report = progress(plan.total_bytes) if progress else _ignore
    with FileMaps() as maps:
        if as_folder:
            stem = _stem(tensors.files[0] if src.is_dir() else src)
            with atomic_folder(dst, replace=force) as folder:
                _write_folder(folder, plan, target, metadata, shard_limit, stem, maps, report, result)
                for f in copies:
                    shutil.copy2(f, folder / f.name)
                    result.copied_files.append(f.name)
        else:
            with atomic_output(dst) as out:
                _write_one(out, plan.tensors, target, metadata, maps, report)
            result.files.append(
                {"path": str(dst), "size_bytes": dst.stat().st_size, "tensors": len(plan.tensors)}
            )
    result.seconds = time.perf_counter() - started
    return result


def _ignore(_: int) -> None:
    return None


def _convert_gguf(
    src: Path,
    dst: Path,
    target: str,
    as_folder: bool,
    quant: str | None,
    dtype: str | None,
    unsupported: tuple[Any, ...],
    trust: bool,
    progress: Callable[[int], Progress] | None,
    started: float,
) -> ConvertResult:
    """A Hugging Face model (folder, or weights file with its config.json) → one GGUF file."""
    from .gguf.build import plan_gguf
    from .gguf.write import write_gguf

    if target != "gguf" or as_folder:
        raise UsageError("--quant writes GGUF: give a destination ending in .gguf")
    if dtype is not None:
        raise UsageError("GGUF output takes --quant (F16, BF16, Q8_0, Q4_K_M, …), not --dtype")
    if any(unsupported):
        raise UsageError("--include/--exclude/--rename/--max-shard-size do not apply to GGUF output")
    tensors = _open_source(src, trust)
    plan = plan_gguf(src, tensors.tensors, quant, tensors.format)
    result = ConvertResult(str(src), tensors.format, str(dst), "gguf", plan.quant, notes=list(tensors.notes))
    result.tensor_count = len(plan.tensors)
    result.total_bytes = plan.total_bytes
    _check_space(dst, plan.total_bytes, result)
    values = sum(t.numel * 4 for t in plan.tensors)
    report = progress(values) if progress else _ignore
    with FileMaps() as maps, atomic_output(dst) as out:
        write_gguf(out, plan.tensors, plan.writer, maps, report)
    result.files.append({"path": str(dst), "size_bytes": dst.stat().st_size, "tensors": len(plan.tensors)})
    by_type: dict[str, int] = {}
    for t in plan.tensors:
        by_type[t.type] = by_type.get(t.type, 0) + 1
    result.gguf = {
        "arch": plan.arch,
        "quant": plan.quant,
        "via": plan.base_type,
        "tensors_by_type": dict(sorted(by_type.items())),
        "bits_per_weight": round(8 * plan.total_bytes / max(1, sum(t.numel for t in plan.tensors)), 3),
        "run_memory": _llama_cpp_memory(dst, plan.quant),
    }
    result.seconds = time.perf_counter() - started
    return result


def _llama_cpp_memory(path: Path, quant: str) -> dict[str, Any] | None:
    """`tensorfile estimate` on the file just written: llama.cpp on a CPU, default context."""
    from ..errors import TensorfileError
    from ..estimate.memory import estimate
    from ..estimate.model_source import spec_from_path
    from ..estimate.run import RunSpec

    try:
        spec, _ = spec_from_path(path)
        run = RunSpec(weights=f"gguf:{quant}", device="cpu")
        peak = estimate(spec, run)
    except TensorfileError:
        return None
    return {
        "engine": "llama.cpp",
        "device": "cpu",
        "context_tokens": run.seq_len + run.gen_tokens,
        "bytes": peak.per_gpu_bytes,
        "command": f"tensorfile estimate {path}",
    }


def _target(dst: Path, to: str | None) -> tuple[str, bool]:
    """(target format, destination is a folder)."""
    if to is not None:
        key = to.lower().removeprefix(".")
        key = {"msgpack": "flax", "st": "safetensors"}.get(key, key)
        if key not in TARGETS:
            raise UsageError(f"--to {to!r}: use one of {', '.join(TARGETS)}")
    from_ext = _EXTENSIONS.get(dst.suffix.lower())
    if from_ext is None and dst.suffix.lower() in _WEIGHT_SUFFIXES and not dst.is_dir():
        raise UsageError(
            f"cannot write {dst.suffix} files; write .safetensors, .npz, .msgpack, .gguf or a folder"
        )
    as_folder = dst.is_dir() or from_ext is None
    if to is None:
        return from_ext or "safetensors", as_folder
    if from_ext is not None and from_ext != key:
        raise UsageError(f"--to {key} does not match the destination's extension {dst.suffix!r}")
    return key, as_folder


def _check_destination(src: Path, dst: Path, force: bool) -> None:
    if dst.resolve() == src.resolve() or (src.is_dir() and src.resolve() in dst.resolve().parents):
        raise UsageError("the destination is (inside) the source; write the conversion somewhere else")
    if src.is_dir() and dst.resolve() in src.resolve().parents:
        raise UsageError("the destination contains the source; write the conversion somewhere else")
    if (dst.exists() or dst.is_symlink()) and not force and not is_empty_folder(dst):
        raise UsageError(f"{dst} already exists (--force replaces it)")
    parent = dst.parent if str(dst.parent) else Path(".")
    if not parent.is_dir():
        raise InputError("destination folder does not exist", parent)


def _open_source(src: Path, trust: bool) -> TensorSet:
    """One TensorSet; a folder of pickled shards is opened shard by shard (each one checked)."""
    if not src.is_dir():
        return open_tensors(src, trust=trust)
    from ..formats.hf import choose_weights

    weights = choose_weights(src)
    if weights is None or weights.container == "safetensors":
        return open_tensors(src, trust=trust)
    merged: TensorSet | None = None
    names: set[str] = set()
    for name in weights.files:
        part = open_tensors(src / name, trust=trust)
        for t in part.tensors:
            if t.name in names:
                raise UsageError(f"tensor {t.name!r} is in more than one shard of {src}")
            names.add(t.name)
        if merged is None:
            merged = TensorSet(src, part.format, [], part.metadata, [], [])
        merged.tensors.extend(part.tensors)
        merged.notes.extend(f"{name}: {n}" for n in part.notes)
        merged.files.append(src / name)
    if merged is None:
        raise InputError("no weight files found", src)
    return merged


def _describe_plan(plan: Plan, target: str, result: ConvertResult) -> None:
    result.tensor_count = len(plan.tensors)
    result.total_bytes = plan.total_bytes
    result.aliases = dict(plan.aliases)
    if plan.aliases:
        result.notes.append(
            f"{len(plan.aliases)} tied names share one stored tensor; recorded as aliases in __metadata__"
        )
    strided = sum(1 for t in plan.tensors if not t.source.contiguous)
    if strided:
        result.notes.append(f"{strided} non-contiguous tensors (transposed or strided) written contiguous")
    if plan.copied_views:
        shared = "tensors share storage with other tensors but are different views"
        result.notes.append(f"{plan.copied_views} {shared}: each is written as its own contiguous copy")
    if plan.tied_copies:
        result.notes.append(
            f"{plan.tied_copies} tied names are written as separate copies ({target} cannot share data)"
        )
    if plan.skipped:
        result.notes.append(f"{plan.skipped} tensors left out by --include/--exclude")


def _metadata(tensors: TensorSet, plan: Plan) -> dict[str, str]:
    """Source metadata (minus stale alias entries) + format + our aliases."""
    source_names = {t.name for t in tensors.tensors}
    metadata = {k: v for k, v in tensors.metadata.items() if k not in source_names}
    metadata.setdefault("format", SAFETENSORS_FORMAT.get(tensors.format, "pt"))
    metadata.update(plan.aliases)
    return metadata


def _stem(weights: Path) -> str:
    """The weights' base name in a folder: transformers' `model`, diffusers' own stem kept."""
    return "diffusion_pytorch_model" if weights.name.startswith("diffusion_pytorch_model") else "model"


def _folder_copies(src: Path) -> list[Path]:
    """Config, tokenizer and other small files of a model folder (top level, not weights)."""
    copies = []
    for entry in sorted(src.iterdir()):
        if not entry.is_file() or entry.name.startswith("."):
            continue
        lowered = entry.name.lower()
        if lowered.endswith(_WEIGHT_SUFFIXES) or (".index" in lowered and lowered.endswith(".json")):
            continue
        copies.append(entry)
    return copies


def _check_space(dst: Path, need: int, result: ConvertResult) -> None:
    """Enough room for the output, once the parts of killed runs in its folder are gone."""
    parent = dst.parent if str(dst.parent) else Path(".")
    freed = clear_stale_parts(parent)
    if freed:
        result.notes.append(f"removed what killed runs left here ({freed / 1e6:.2f} MB of partial output)")
    try:
        stat = os.statvfs(parent)
    except OSError:
        return
    free = stat.f_bavail * stat.f_frsize
    if need + _SPACE_MARGIN > free:
        raise InputError(
            f"not enough free space: the output needs {need / 1e9:.2f} GB, {free / 1e9:.2f} GB free", parent
        )


def _write_one(
    out: BinaryIO,
    tensors: list[OutTensor],
    target: str,
    metadata: dict[str, str],
    maps: FileMaps,
    report: Progress,
) -> None:
    if target == "safetensors":
        from .safetensors_out import write_safetensors

        write_safetensors(out, tensors, metadata, maps, report)
    elif target == "npz":
        from .npz_out import write_npz

        write_npz(out, tensors, maps, report)
    else:
        from .flax_out import write_flax_msgpack

        write_flax_msgpack(out, tensors, maps, report)


def _write_folder(
    folder: Path,
    plan: Plan,
    target: str,
    metadata: dict[str, str],
    shard_limit: int | None,
    stem: str,
    maps: FileMaps,
    report: Progress,
    result: ConvertResult,
) -> None:
    if target != "safetensors":
        name = _FOLDER_FILE[target]
        with (folder / name).open("wb") as out:
            _write_one(out, plan.tensors, target, metadata, maps, report)
            _sync(out)
        result.files.append(
            {"path": name, "size_bytes": (folder / name).stat().st_size, "tensors": len(plan.tensors)}
        )
        return
    from .safetensors_out import check_dtypes, write_safetensors

    check_dtypes(plan.tensors)
    shards = shard(plan.tensors, shard_limit)
    names = shard_names(stem, len(shards))
    weight_map: dict[str, str] = {}
    for name, part in zip(names, shards, strict=True):
        stored = {t.name for t in part}
        own_meta = {k: v for k, v in metadata.items() if k not in plan.aliases or v in stored}
        with (folder / name).open("wb") as out:
            write_safetensors(out, part, own_meta, maps, report)
            _sync(out)
        weight_map.update((t.name, name) for t in part)
        result.files.append(
            {"path": name, "size_bytes": (folder / name).stat().st_size, "tensors": len(part)}
        )
    if len(shards) > 1:
        index = {"metadata": {"total_size": plan.total_bytes}, "weight_map": dict(sorted(weight_map.items()))}
        index_name = f"{stem}.safetensors.index.json"
        (folder / index_name).write_text(json.dumps(index, indent=2) + "\n", encoding="utf-8")
        result.files.append(
            {"path": index_name, "size_bytes": (folder / index_name).stat().st_size, "tensors": 0}
        )


def _sync(out: BinaryIO) -> None:
    out.flush()
    os.fsync(out.fileno())
