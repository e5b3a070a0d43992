"""The Keras inspect entry points: an HDF5 file (or sharded weights) and a `.keras` zip."""

from __future__ import annotations

from pathlib import Path

from ...model import (
    Identification,
    ModelInfo,
)
from ...source import open_source
from .h5_weights import read_h5_file
from .keras_zip import inspect_keras_zip
from .sharded import inspect_sharded
from .training_state import split_training_state


def inspect_h5(path: Path, ident: Identification) -> ModelInfo:
    if ident.details.get("variant") == "keras3-sharded-weights":
        return inspect_sharded(path, ident)
    info = ModelInfo(str(path), "keras-h5")
    with open_source(path) as source:
        info.files.append({"path": str(path), "size_bytes": source.size})
        tensors, metadata, warnings, optimizer_class = read_h5_file(source.open_stream, str(path), 0, path)
    info.metadata = {"variant": ident.details.get("variant"), **metadata}
    info.warnings.extend(warnings)
    split_training_state(info, tensors, optimizer_class)
    return info


INSPECTS = {"keras-h5": inspect_h5, "keras-v3": inspect_keras_zip}
