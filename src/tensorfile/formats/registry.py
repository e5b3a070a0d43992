"""The detection and inspection tables: every format handler, in the order detection asks them.

Each module owns one format family and offers `detect_file(FileProbe)` and/or
`detect_dir(DirProbe)` returning a `Detection` or None. Cheap magic-number checks come first;
the protobuf formats, which have no magic and need a walk of the top-level fields, come last.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..model import Detection, Identification, ModelInfo
from ..probe import DirProbe, FileProbe
from . import (
    caffe,
    coreml,
    flax,
    gguf,
    hf,
    keras,
    numpy,
    onnx,
    openvino,
    pickle,
    pmml,
    pytorch,
    safetensors,
    savedmodel,
    tensorrt,
    tflite,
)

FileDetector = Callable[[FileProbe], "Detection | None"]
DirDetector = Callable[[DirProbe], "Detection | None"]
# inspect(path, identification) -> ModelInfo; each format module declares its own in INSPECTS.
Inspector = Callable[[Path, Identification], ModelInfo]

FILE_DETECTORS: tuple[FileDetector, ...] = (
    tflite.detect_file,  # before zip: some .tflite files carry an appended zip
    gguf.detect_file,
    tensorrt.detect_file,
    hf.detect_quantized_file,
    safetensors.detect_file,
    safetensors.detect_index,
    keras.detect_sharded_index,
    numpy.detect_file,
    pytorch.detect_file,
    keras.detect_file,
    flax.detect_file,
    pickle.detect_file,
    pmml.detect_file,
    openvino.detect_file,
    openvino.detect_weights_bin,
    onnx.detect_file,
    caffe.detect_file,
    caffe.detect_prototxt,
    coreml.detect_file,
    savedmodel.detect_file,
)

# Folders are hierarchical (a Diffusers pipeline holds safetensors), so the first match wins.
DIR_DETECTORS: tuple[DirDetector, ...] = (
    coreml.detect_dir,
    savedmodel.detect_dir,
    hf.detect_diffusers_dir,
    hf.detect_quantized_dir,
    safetensors.detect_dir,
    keras.detect_dir,
    onnx.detect_dir,  # after the HF folders: a repo with safetensors and an ONNX export is theirs
)


_PACKAGE = __name__.rpartition(".")[0]
_FORMAT_MODULES = tuple(
    m for m in globals().values() if getattr(m, "__name__", "").startswith(_PACKAGE + ".") and m is not None
)


def _collect_inspectors() -> dict[str, Inspector]:
    """format id -> inspector, from every module's `INSPECTS` table."""
    table: dict[str, Inspector] = {}
    for module in _FORMAT_MODULES:
        for format_id, inspector in getattr(module, "INSPECTS", {}).items():
            if format_id in table:
                raise RuntimeError(f"two inspectors claim {format_id}")
            table[format_id] = inspector
    return table


INSPECTORS: dict[str, Inspector] = _collect_inspectors()
