"""Keras: HDF5 files (Keras 2 full models and weights, Keras 3 `.weights.h5`) and `.keras` zips."""

from __future__ import annotations

import json
from typing import Any

from ..errors import FormatError
from ..model import CERTAIN, STRONG, Detection
from ..probe import FileProbe

HDF5_MAGIC = b"\x89HDF\r\n\x1a\n"
_USERBLOCK_OFFSETS = (0, 512, 1024, 2048, 4096, 8192, 16384, 32768)


def hdf5_offset(head: bytes) -> int | None:
    """Where the HDF5 superblock starts (0 or a power-of-two user-block size), or None."""
    for offset in _USERBLOCK_OFFSETS:
        if head[offset : offset + 8] == HDF5_MAGIC:
            return offset
    return None


def _attr_text(value: Any) -> str:
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    return str(value)


def detect_hdf5(probe: FileProbe) -> Detection | None:
    offset = hdf5_offset(probe.head)
    if offset is None:
        return None
    try:
        import h5py  # lazy: h5py costs ~0.1 s to import
    except ImportError:  # pragma: no cover - h5py is a dependency
        return Detection("unknown", 0.0, ["HDF5 signature"], {"reason": "HDF5 file; h5py is not installed"})
    evidence = ["HDF5 signature" + (f" after a {offset}-byte user block" if offset else "")]
    try:
        with h5py.File(probe.source.open_stream(), "r") as h5:
            attrs = {k: h5.attrs[k] for k in h5.attrs}
            groups = list(h5.keys())
            root = h5
            if "model_weights" in groups and "layer_names" in h5["model_weights"].attrs:
                root = h5["model_weights"]
            layer_names = [_attr_text(n) for n in root.attrs.get("layer_names", [])]
            keras3 = _keras3_layout(h5)
    except FormatError:
        raise
    except Exception as exc:  # h5py raises OSError/KeyError/ValueError subclasses for corrupt files
        reason = str(exc).split("(")[0].strip() or type(exc).__name__
        return Detection("unknown", 0.0, evidence, {"reason": f"HDF5 file that cannot be opened: {reason}"})
    details: dict[str, Any] = {"container": "hdf5"}
    for key in ("keras_version", "backend"):
        if key in attrs:
            details[key] = _attr_text(attrs[key])
    if "model_config" in attrs:
        details["variant"] = "full-model"
        details["has_optimizer_weights"] = "optimizer_weights" in groups
        evidence.append(
            "root attribute model_config" + (" and keras_version" if "keras_version" in attrs else "")
        )
        try:
            config = json.loads(_attr_text(attrs["model_config"]))
            details["model_class"] = config.get("class_name")
            details["lambda_layers"] = _count_lambda(config)
        except (ValueError, AttributeError):
            details["model_class"] = None
        if layer_names:
            details["layer_count"] = len(layer_names)
        return Detection("keras-h5", CERTAIN, evidence, details)
    if layer_names:
        details["variant"] = "weights-only"
        details["layer_count"] = len(layer_names)
        evidence.append(f"layer_names attribute listing {len(layer_names)} layers (Keras 2 save_weights)")
        return Detection("keras-h5", CERTAIN, evidence, details)
    if keras3:
        details["variant"] = "keras3-weights"
        evidence.append(keras3)
        return Detection("keras-h5", STRONG, evidence, details)
    kind = "MATLAB v7.3 MAT-file" if probe.head[:10] == b"MATLAB 7.3" else "generic HDF5 data"
    return Detection(
        "unknown",
        0.0,
        evidence,
        {"reason": f"HDF5 file without Keras markers ({kind}; groups: {', '.join(groups[:5])})"},
    )


def _keras3_layout(h5: Any) -> str | None:
    """Keras 3 H5IOStore layout: layers/<name>/vars/<i> datasets (and optimizer/vars)."""
    layers = h5.get("layers")
    if layers is None or not hasattr(layers, "keys"):
        return None
    for name in list(layers.keys())[:32]:
        group = layers[name]
        if hasattr(group, "keys") and "vars" in group:
            return "Keras 3 layout: layers/<name>/vars datasets"
    return None


def _count_lambda(config: Any) -> int:
    if isinstance(config, dict):
        own = 1 if config.get("class_name") == "Lambda" else 0
        return own + sum(_count_lambda(v) for v in config.values())
    if isinstance(config, list):
        return sum(_count_lambda(v) for v in config)
    return 0


def detect_keras_zip(probe: FileProbe) -> Detection | None:
    names = set(probe.zip_names)
    if not names or "config.json" not in names:
        return None
    weights = [n for n in ("model.weights.h5", "model.weights.npz") if n in names]
    if "metadata.json" not in names and not weights:
        return None
    details: dict[str, Any] = {"container": "zip", "weights_member": weights[0] if weights else None}
    evidence = [
        "zip with config.json"
        + (", metadata.json" if "metadata.json" in names else "")
        + (f", {weights[0]}" if weights else "")
    ]
    if "metadata.json" in names and probe.is_zip:
        try:
            meta = json.loads(probe.zip_read("metadata.json", 1 << 20))
            if isinstance(meta, dict):
                details["keras_version"] = meta.get("keras_version")
                details["saved_at"] = meta.get("date_saved")
        except (FormatError, ValueError):
            pass
    confidence = CERTAIN if "metadata.json" in names and weights else STRONG
    return Detection("keras-v3", confidence, evidence, details)


def detect_file(probe: FileProbe) -> Detection | None:
    if probe.is_zip or probe.zip_error:
        return detect_keras_zip(probe)
    return detect_hdf5(probe)
