"""Keras detection: an HDF5 file with Keras markers (full model, Keras 2 weights, Keras 3 weights)
or a `.keras` zip."""

from __future__ import annotations

from typing import Any

from ... import hdf5
from ...errors import FormatError
from ...model import (
    CERTAIN,
    STRONG,
    Detection,
)
from ...probe import FileProbe, load_json
from ...source import OpenedSource
from .hdf5_basics import attr_text, guarded, superblock_offset
from .model_config import count_lambda


def detect_hdf5(probe: FileProbe) -> Detection | None:
    offset = superblock_offset(probe)
    if offset is None:
        return None
    evidence = ["HDF5 signature" + (f" after a {offset}-byte user block" if offset else "")]
    facts = guarded(lambda: _detect_facts(probe.source))
    if "error" in facts:
        return Detection(
            "unknown", 0.0, evidence, {"reason": f"HDF5 file that cannot be opened: {facts['error']}"}
        )
    attrs, groups, layer_names, keras3 = (
        facts["attrs"],
        facts["groups"],
        facts["layer_names"],
        facts["keras3"],
    )
    details: dict[str, Any] = {"container": "hdf5"}
    for key in ("keras_version", "backend"):
        if key in attrs:
            details[key] = attr_text(attrs[key])
    if "model_config" in attrs:
        details["variant"] = "full-model"
        details["has_optimizer_weights"] = "optimizer_weights" in groups
        evidence.append(
            "root attribute model_config" + (" and keras_version" if "keras_version" in attrs else "")
        )
        try:
            config = load_json(attr_text(attrs["model_config"]))
            details["model_class"] = config.get("class_name")
            details["lambda_layers"] = count_lambda(config)
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


def _detect_facts(source: OpenedSource) -> dict[str, Any]:
    """What the detector needs from an HDF5 file, as plain JSON-able data."""
    try:
        h5 = hdf5.File(source, source.name)
    except FormatError as exc:
        return {"error": exc.message}
    with h5:
        attrs = {
            k: attr_text(h5.attrs[k]) for k in h5.attrs if k in ("keras_version", "backend", "model_config")
        }
        groups = list(h5.keys())
        root = h5
        if "model_weights" in groups and "layer_names" in h5["model_weights"].attrs:
            root = h5["model_weights"]
        layer_names = [attr_text(n) for n in root.attrs.get("layer_names", [])]
        return {"attrs": attrs, "groups": groups, "layer_names": layer_names, "keras3": _keras3_layout(h5)}


def _keras3_layout(h5: Any) -> str | None:
    """Keras 3 H5IOStore layout: layers/<name>/vars/<i> datasets (and optimizer/vars)."""
    layers = h5.get("layers")
    if layers is not None and hasattr(layers, "keys"):
        for name in list(layers.keys())[:32]:
            group = layers[name]
            if hasattr(group, "keys") and "vars" in group:
                return "Keras 3 layout: layers/<name>/vars datasets"
    optimizer = h5.get("optimizer")
    if optimizer is not None and hasattr(optimizer, "keys") and "vars" in optimizer:
        # A later shard of sharded weights may hold only the optimizer's variables.
        return "Keras 3 layout: optimizer/vars datasets"
    return None


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
            meta = load_json(probe.zip_read("metadata.json", 1 << 20))
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
