"""The Core ML inspect entry points: an `.mlmodel` file, or an `.mlpackage` folder's root model."""

from __future__ import annotations

from pathlib import Path

from ...errors import FormatError
from ...model import Identification, ModelInfo
from ...protowire import MessageReader
from ...source import CachedSource, open_source
from .spec import read_model
from .walk import Walk

_MAX_FILES_LISTED = 1000


def inspect_spec(info: ModelInfo, spec: Path, label: str, package: Path | None) -> ModelInfo:
    walk = Walk(info, label, spec.parent, package)
    try:
        with open_source(spec) as source:
            if not package:
                info.files.append({"path": label, "size_bytes": source.size})
            summary = read_model(MessageReader(CachedSource(source)), walk, "", 0)
    finally:
        walk.close()
    if walk.string_constants:
        summary["string_constants"] = walk.string_constants
    if walk.shared_blob_references:
        summary["shared_blob_references"] = walk.shared_blob_references
    first = ("specification_version", "model_type", "is_updatable")
    info.metadata = {
        **{k: summary[k] for k in first if k in summary},
        **{k: v for k, v in summary.items() if k not in first},
        **info.metadata,
    }
    user = summary.get("metadata", {}).get("userDefined", {})
    if "com.github.apple.coremltools.version" in user:
        info.metadata["coremltools_version"] = user["com.github.apple.coremltools.version"]
    if walk.quantized:
        (method, bits), _ = walk.quantized.most_common(1)[0]
        plain = sum(
            t.numel for i, t in enumerate(info.tensors) if t.role != "quant-aux" and i not in walk.compressed
        )
        info.quantization = {
            "method": f"coreml {method}",
            "bits": bits or None,
            "group_size": None,
            "quantized_tensors": sum(walk.quantized.values()),
            "logical_parameter_count": plain + walk.dense_elements,
        }
    return info


def inspect_mlmodel(path: Path, ident: Identification) -> ModelInfo:
    return inspect_spec(ModelInfo(str(path), "coreml-mlmodel"), path, str(path), None)


def inspect_mlpackage(path: Path, ident: Identification) -> ModelInfo:
    info = ModelInfo(str(path), "coreml-mlpackage")
    root = ident.details.get("root_model")
    spec = path / "Data" / str(root) if root else None
    if spec is None or not spec.is_file():
        raise FormatError(f"root model Data/{root} named by Manifest.json is missing", path)
    listed = 0
    for file in sorted(path.rglob("*")):
        if file.is_file() and listed < _MAX_FILES_LISTED:
            info.files.append({"path": str(file.relative_to(path)), "size_bytes": file.stat().st_size})
            listed += 1
    info.metadata["root_model"] = f"Data/{root}"
    return inspect_spec(info, spec, f"Data/{root}", path)


INSPECTS = {"coreml-mlmodel": inspect_mlmodel, "coreml-mlpackage": inspect_mlpackage}
