"""Open a model file or folder as a `TensorSet`: every tensor's location, nothing loaded or executed.

Headers come from the same readers `inspect` uses. PyTorch pickles are read by the non-executing
pickle reader and their storages located in the zip (or the legacy stream); a pickle that imports
anything outside the tensor-rebuild allowlist is refused unless the caller trusts it.
"""

from __future__ import annotations

import dataclasses
import zipfile
from pathlib import Path
from typing import Any

import numpy as np

from ..dtypes import lookup
from ..errors import FormatError, UnsupportedError
from ..identification import identify
from ..inspection import inspect
from ..model import Identification, ModelInfo, TensorInfo
from ..scan.findings import rank
from ..source import is_remote_path, resolve_input
from .tensors import SourceTensor, TensorSet

# inspect format id -> the `format` value safetensors metadata carries (what transformers expects).
SAFETENSORS_FORMAT = {
    "pytorch-zip": "pt",
    "pytorch-legacy": "pt",
    "safetensors": "pt",
    "safetensors-sharded": "pt",
    "numpy": "pt",
    "gguf": "pt",
    "flax-msgpack": "flax",
    "keras-h5": "tf",
    "keras-v3": "tf",
}
TORCH_FORMATS = ("pytorch-zip", "pytorch-legacy")
# Top-level keys whose sub-dict is the model's state dict in a training checkpoint.
MODEL_KEYS = ("state_dict", "model_state_dict", "model", "module", "net", "model_state", "params")


def open_tensors(path: str | Path, *, trust: bool = False) -> TensorSet:
    """Describe every tensor of a supported source; raises TensorfileError on anything else."""
    p = resolve_input(path)
    ident = identify(p)
    if not ident.known:
        raise UnsupportedError(f"not a model file: {ident.reason}", p)
    fmt = ident.format
    if fmt not in SAFETENSORS_FORMAT:
        supported = ", ".join(sorted(SAFETENSORS_FORMAT))
        raise UnsupportedError(f"convert does not read {fmt} yet (it reads {supported})", p)
    if fmt in TORCH_FORMATS:
        return _torch(p, ident, trust)
    info = inspect(p)
    tensors = [_from_info(p, t, fmt) for t in info.tensors]
    out = TensorSet(p, fmt, tensors, files=_weight_files(p, info))
    if fmt.startswith("safetensors"):
        out.metadata = _safetensors_metadata(out.files)
        _add_aliases(out)
    if fmt == "flax-msgpack":
        _drop_optimizer(out, info)
    out.notes.extend(info.warnings)
    return out


def _safetensors_metadata(files: list[Path]) -> dict[str, str]:
    """Every shard's `__metadata__` merged: tied-name aliases live in the shard holding the tensor."""
    from ..formats.safetensors import read_file_header

    merged: dict[str, str] = {}
    for f in files:
        meta = read_file_header(f)[0].get("__metadata__")
        if isinstance(meta, dict):
            merged.update((str(k), v) for k, v in meta.items() if isinstance(v, str))
    return merged


def _add_aliases(out: TensorSet) -> None:
    """`__metadata__` entries alias -> stored name (safetensors' save_model) become tensors that
    share the stored one's data, so a re-conversion keeps them and `diff` finds them."""
    by_name = {t.name: t for t in out.tensors}
    for alias, target in list(out.metadata.items()):
        stored = by_name.get(target)
        if stored is None or alias in by_name or alias == "format":
            continue
        stored.storage_key = stored.storage_key or f"tensor:{stored.name}"
        out.tensors.append(dataclasses.replace(stored, name=alias))
        del out.metadata[alias]


def _weight_files(path: Path, info: ModelInfo) -> list[Path]:
    return [_located(path, entry["path"]) for entry in info.files] or [path]


def _located(path: Path, label: str | None) -> Path:
    if label is None:
        return path
    if is_remote_path(path):  # labels are paths in the repo; never a local file of the same name
        return path / label if path.is_dir() else path
    f = Path(label)
    if f.is_absolute() or f.exists():
        return f
    return (path if path.is_dir() else path.parent) / f


def _from_info(path: Path, t: TensorInfo, fmt: str) -> SourceTensor:
    """A located tensor; types that cannot stream (quantized blocks) are refused later, by the plan,
    so that --exclude can leave them out."""
    d = lookup(t.dtype)
    file = _located(path, t.file)
    source = SourceTensor(t.name, d.name, t.shape, t.role, file, t.offset or 0, t.nbytes)
    if t.offset is None and d.block_size == 1 and d.numpy_name is not None:
        source.file = None
        source.loader = _loader(file, t, fmt)
    return source


def _loader(file: Path, t: TensorInfo, fmt: str) -> Any:
    """Data that is not one plain byte run: deflated npz members, chunked HDF5, chunked flax arrays."""
    if fmt == "numpy":
        return lambda: _npz_member(file, t.name)
    if fmt.startswith("keras"):
        return lambda: _h5_dataset(file, t.name)
    if fmt == "flax-msgpack":
        return lambda: _flax_leaf(file, t.name)
    raise FormatError(f"tensor {t.name!r} has no data offset", file)


def _npz_member(file: Path, name: str) -> np.ndarray:
    """A deflated or column-major member, read whole (bounded by that one tensor), never unpickled."""
    with zipfile.ZipFile(file) as zf, zf.open(name + ".npy") as member:
        try:
            return np.lib.format.read_array(member, allow_pickle=False)
        except ValueError as exc:
            raise FormatError(f"array {name!r}: {exc}", file) from None


def _h5_dataset(file: Path, name: str) -> np.ndarray:
    from ..hdf5 import import_h5py

    h5py = import_h5py()  # without the `uname -p` subprocess of a plain import
    with h5py.File(file, "r") as f:
        found = f.get(name)
        if not isinstance(found, h5py.Dataset):
            raise FormatError(f"dataset {name!r} not found", file)
        return np.asarray(found[()])


def _flax_leaf(file: Path, name: str) -> np.ndarray:
    """An array flax split into chunks (over 1 GiB): its pieces joined (bounded by that tensor)."""
    from ..formats.flax import chunk_parts

    parts = chunk_parts(file).get(name)
    if not parts:
        raise FormatError(f"array {name!r} has no data", file)
    data = bytearray(sum(n for _, n in parts))
    at = 0
    with file.open("rb") as f:
        for offset, n in parts:
            f.seek(offset)
            if f.readinto(memoryview(data)[at : at + n]) != n:
                raise FormatError(f"array {name!r} is cut short", file)
            at += n
    return np.frombuffer(data, np.uint8)


def _drop_optimizer(out: TensorSet, info: ModelInfo) -> None:
    """A Flax TrainState: keep `params` (names without the prefix), leave the optimizer state out."""
    if info.checkpoint is None:
        return
    kept = [t for t in out.tensors if t.role != "optimizer"]
    dropped = len(out.tensors) - len(kept)
    if dropped:
        out.notes.append(f"left out {dropped} optimizer-state tensors (the model part is converted)")
    if kept and all(t.name.startswith("params/") for t in kept):
        for t in kept:
            t.name = t.name.removeprefix("params/")
        out.notes.append("took the TrainState's 'params'; names are as in that tree")
    out.tensors = kept


# --- PyTorch -------------------------------------------------------------------------------------


def _torch(path: Path, ident: Identification, trust: bool) -> TensorSet:
    from ..formats.pytorch import layout_legacy, layout_zip

    refusal = None if trust else _refusal(path)
    info, records, storages = (layout_zip if ident.format == "pytorch-zip" else layout_legacy)(path, ident)
    if not trust and refusal is None:
        beyond = [name for name in (info.pickle or {}).get("imports", []) if not _tensor_global(name)]
        if beyond:
            refusal = f"the pickle imports {', '.join(beyond[:3])}, which is not a tensor or container class"
    if refusal:
        raise UnsupportedError(
            f"refusing to convert: {refusal} (nothing was executed; "
            "--trust converts the tensors anyway, still without running the pickle)",
            path,
        )
    tensors: list[SourceTensor] = []
    for rec in records:
        start, size = storages.get(rec.storage_key, (None, None))
        if start is None and rec.numel:
            raise FormatError(
                f"storage {rec.storage_key} of tensor {rec.name!r} is compressed or missing; "
                "torch writes storages uncompressed",
                path,
            )
        tensors.append(
            SourceTensor(
                rec.name,
                rec.dtype,
                rec.shape,
                rec.role,
                path,
                start or 0,
                size,
                rec.storage_offset,
                rec.stride,
                storage_key=rec.storage_key,
            )
        )
    out = TensorSet(path, ident.format, tensors, metadata={}, files=[path])
    out.notes.extend(info.warnings)
    _model_part(out, info)
    return out


# Scan findings that say nothing about what the pickle imports: the converter's own reader
# reports broken or padded pickles itself, with a clearer message.
_NOT_IMPORTS = frozenset({"pickle-trailing-data", "pickle-malformed"})


# What torch.load(weights_only=True) accepts besides torch's own tensor machinery.
_CONTAINERS = frozenset(
    {
        "collections.OrderedDict",
        "builtins.set",
        "builtins.frozenset",
        "builtins.bytearray",
        "builtins.slice",
        "builtins.complex",
        "codecs.encode",  # how protocol 2 pickles bytes
    }
)


def _tensor_global(qualname: str) -> bool:
    """On the tensor-rebuild allowlist: torch rebuilds, storages, dtypes, Size…, plain containers."""
    from ..scan.rules import classify, normalize

    module, _, name = qualname.rpartition(".")
    parts = normalize(module, name)
    if ".".join(parts) in _CONTAINERS:
        return True
    return bool(parts) and parts[0] == "torch" and classify(module, name, "referenced").severity is None


def _refusal(path: Path) -> str | None:
    """The worst scan finding about what the pickle imports or calls, as one line; None when clean."""
    from ..scan.scanner import scan_file

    findings = [f for f in scan_file(path).findings if f.rule not in _NOT_IMPORTS]
    if not findings:
        return None
    finding = max(findings, key=lambda f: rank(f.severity))
    evidence = f" [{finding.evidence}]" if finding.evidence else ""
    return f"scan finding ({finding.severity}) {finding.message}{evidence}"


def _model_part(out: TensorSet, info: ModelInfo) -> None:
    """Keep the model's tensors of a checkpoint, named as in its state dict: the tensors under its
    model key (state_dict, model_state_dict…) when there is one, else everything but optimizer state."""
    checkpoint = info.checkpoint or {}
    total = len(out.tensors)
    model = [t for t in out.tensors if t.role != "optimizer"]
    if checkpoint.get("kind") not in (None, "state-dict", "tensor", "pickled-module"):
        for key in MODEL_KEYS:
            prefix = key + "."
            under = [t for t in model if t.name.startswith(prefix)]
            if key in checkpoint.get("top_level_keys", []) and under:
                for t in under:
                    t.name = t.name[len(prefix) :]
                out.notes.append(f"took the state dict under {key!r}; names are as in that state dict")
                model = under
                break
    dropped = total - len(model)
    if dropped:
        out.notes.append(f"left out {dropped} tensors outside the model's state dict (optimizer state, RNG…)")
    out.tensors = model
