"""Keras HDF5 weights: every numeric dataset in Keras' order, with offsets, and the root attributes
(versions, model config, training config), read by tensorfile.hdf5 without h5py."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ... import hdf5
from ...dtypes import UnknownDType, lookup, nbytes
from ...errors import FormatError
from ...model import (
    ModelInfo,
    TensorInfo,
    natural_key,
)
from ...probe import load_json
from .hdf5_basics import attr_text, guarded
from .model_config import compiled_optimizer_class, config_summary, optimizer_numbers
from .training_state import tensor_role


def _attr_list(group: Any, name: str) -> list[str]:
    """A string-list attribute, also in the chunked form Keras uses past HDF5's 64 KB header limit."""
    if name in group.attrs:
        return [attr_text(v) for v in group.attrs[name]]
    out: list[str] = []
    chunk = 0
    while f"{name}{chunk}" in group.attrs:
        out.extend(attr_text(v) for v in group.attrs[f"{name}{chunk}"])
        chunk += 1
    return out


def _h5_dtype(ds: Any) -> str | None:
    """Canonical dtype of a dataset, or None for strings, objects and compound types."""
    if attr_text(ds.attrs.get("dtype", "")) == "bfloat16":  # Keras 3 stores bfloat16 as 2-byte opaque
        return "BF16"
    text = ds.dtype.str
    if text[:1] == ">":  # big-endian storage: same element type, a reader converts on read
        text = "<" + text[1:]
    try:
        return lookup(text).name
    except UnknownDType:
        return None


def _dataset_tensor(
    ds: Any, name: str, label: str, base: int | None, warnings: list[str]
) -> TensorInfo | None:
    dtype = _h5_dtype(ds)
    if dtype is None:
        warnings.append(f"dataset {name!r} holds {ds.dtype} values, not a tensor type: skipped")
        return None
    shape = tuple(int(d) for d in ds.shape) if ds.shape is not None else ()
    tensor = TensorInfo(name, dtype, shape, 0, label)
    try:
        tensor.nbytes = nbytes(dtype, tensor.numel)
    except ValueError:
        tensor.nbytes = int(ds.id.get_storage_size())
    offset = None
    if base is not None and ds.chunks is None and not ds.is_virtual and not ds.external:
        offset = ds.id.get_offset()  # absolute in the HDF5 file (user block included); None if chunked
        if offset is not None and ds.id.get_storage_size() == 0:
            warnings.append(f"dataset {name!r} has no storage allocated: it reads as its fill value")
            offset = None
    tensor.offset = None if offset is None else base + offset  # type: ignore[operator]
    return tensor


def _ordered_datasets(h5: Any) -> list[tuple[str, Any]]:
    """Every dataset, in Keras' own order where the file records it (layer_names / weight_names)."""
    found: dict[str, Any] = {}

    def collect(name: str, obj: Any) -> None:  # visititems stops at the first non-None return
        if isinstance(obj, hdf5.Dataset):
            found[name] = obj

    h5.visititems(collect)
    ordered: list[str] = []
    roots = (
        [("model_weights/", h5["model_weights"])] if isinstance(h5.get("model_weights"), hdf5.Group) else []
    )
    if not roots and ("layer_names" in h5.attrs or "layer_names0" in h5.attrs):
        roots = [("", h5)]
    for prefix, root in roots:
        for layer in _attr_list(root, "layer_names"):
            group = root.get(layer)
            if isinstance(group, hdf5.Group):
                ordered.extend(f"{prefix}{layer}/{w}" for w in _attr_list(group, "weight_names"))
    opt = h5.get("optimizer_weights")
    if isinstance(opt, hdf5.Group):
        ordered.extend(f"optimizer_weights/{w}" for w in _attr_list(opt, "weight_names"))
    seen: set[str] = set()
    out: list[tuple[str, Any]] = []
    for name in ordered:
        if name in found and name not in seen:
            seen.add(name)
            out.append((name, found[name]))
    # Keras 3 numbers its variables: vars/2 before vars/10
    out.extend((n, found[n]) for n in sorted(set(found) - seen, key=natural_key))
    return out


def _read_h5(h5: Any, label: str, base: int | None, info: ModelInfo) -> list[TensorInfo]:
    """All numeric datasets as TensorInfo with a role; the iteration counter and the current learning
    rate (a few bytes each) go to the training facts."""
    import numpy as np

    tensors: list[TensorInfo] = []
    for name, ds in _ordered_datasets(h5):
        tensor = _dataset_tensor(ds, name, label, base, info.warnings)
        if tensor is None:
            continue
        tensor.role = tensor_role(name)
        if tensor.role == "optimizer" and tensor.numel == 1:
            leaf = name.rsplit("/", 1)[-1].split(":")[0]
            # Keras 3 numbers its optimizer variables: iterations first, then the learning rate
            # (unless it is a schedule, and then vars/1 is a slot, which a scalar rarely is).
            if tensor.dtype in ("I64", "I32") and (
                leaf in ("iteration", "iterations", "iter") or name == "optimizer/vars/0"
            ):
                info.metadata["optimizer_iterations"] = int(np.asarray(ds[()]).reshape(-1)[0])
            elif tensor.dtype in ("F32", "F64", "F16") and (
                leaf in ("learning_rate", "lr") or name == "optimizer/vars/1"
            ):
                info.metadata["optimizer_learning_rate"] = float(np.asarray(ds[()]).reshape(-1)[0])
        tensors.append(tensor)
    opt_vars = h5.get("optimizer/vars")
    if opt_vars is not None and "name" in opt_vars.attrs:  # Keras 3.x: the optimizer's own name, "adam"
        info.metadata["optimizer_var_name"] = attr_text(opt_vars.attrs["name"])
    return tensors


def _json_attr(h5: Any, name: str, info: ModelInfo) -> Any:
    if name not in h5.attrs:
        return None
    try:
        return load_json(attr_text(h5.attrs[name]))
    except ValueError:
        info.warnings.append(f"root attribute {name} is not valid JSON")
        return None


def _h5_metadata(h5: Any, info: ModelInfo) -> str | None:
    """Root attributes: versions, model config summary, training config. Returns the optimizer class."""
    for key in ("keras_version", "backend"):
        if key in h5.attrs:
            info.metadata[key] = attr_text(h5.attrs[key])
    info.metadata.update(config_summary(_json_attr(h5, "model_config", info)))
    weights_root = h5.get("model_weights", h5)
    layer_names = _attr_list(weights_root, "layer_names")
    if layer_names:
        info.metadata["weight_layer_count"] = len(layer_names)
        info.metadata.setdefault("layer_names", layer_names[:256])
    training = _json_attr(h5, "training_config", info)
    if isinstance(training, dict):
        info.metadata["optimizer_class"] = compiled_optimizer_class(training)
        info.metadata["optimizer_hyperparameters"] = optimizer_numbers(training)
        if training.get("loss") is not None:
            info.metadata["loss"] = training.get("loss")
    return info.metadata.get("optimizer_class")


def _h5_payload(
    open_stream: Callable[[], Any], label: str, base: int | None, root_attrs: bool
) -> dict[str, Any]:
    """Metadata, warnings and tensor dicts of one HDF5 file, as JSON-able data (runs isolated)."""
    try:
        h5 = hdf5.File(open_stream(), label)
    except FormatError as exc:
        return {"error": f"HDF5 file cannot be opened ({exc.message}): truncated or corrupt"}
    scratch = ModelInfo(label, "keras-h5")
    with h5:
        optimizer_class = _h5_metadata(h5, scratch) if root_attrs else None
        tensors = _read_h5(h5, label, base, scratch)
    return {
        "metadata": scratch.metadata,
        "warnings": scratch.warnings,
        "optimizer_class": optimizer_class,
        "tensors": [t.to_dict() for t in tensors],
    }


def read_h5_file(
    open_stream: Callable[[], Any], label: str, base: int | None, name: str | Path, root_attrs: bool = True
) -> tuple[list[TensorInfo], dict[str, Any], list[str], str | None]:
    payload = guarded(lambda: _h5_payload(open_stream, label, base, root_attrs))
    if "error" in payload:
        raise FormatError(payload["error"], name)
    tensors = [
        TensorInfo(d["name"], d["dtype"], tuple(d["shape"]), d["nbytes"], d["file"], d["offset"], d["role"])
        for d in payload["tensors"]
    ]
    return tensors, payload["metadata"], payload["warnings"], payload["optimizer_class"]
