"""Hugging Face folders: Diffusers pipelines and quantized checkpoints (AWQ, GPTQ, bitsandbytes).

A quantized checkpoint is safetensors (or a torch .bin) plus a `quantization_config`; we trust
it when the config and the tensor names agree, and say so when only one of them speaks.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from ..errors import TensorfileError, UnsupportedError
from ..model import CERTAIN, LIKELY, STRONG, Detection, Identification, ModelInfo, TensorInfo
from ..probe import DirProbe, FileProbe
from . import safetensors as st

QUANT_METHODS = {"awq": "awq", "gptq": "gptq", "bitsandbytes": "bitsandbytes"}
# Tensor names decide the quantization method; headers beyond this are left to `inspect`.
IDENTIFY_HEADER_LIMIT = 16 * 1024 * 1024


def quant_from_names(names: list[str]) -> tuple[str, str] | None:
    """(method, evidence) from tensor names alone."""
    if any(".quant_state.bitsandbytes__" in n for n in names):
        kind = "nf4" if any(n.endswith("bitsandbytes__nf4") for n in names) else "fp4"
        return "bitsandbytes", f"tensor names with quant_state.bitsandbytes__{kind}, absmax, quant_map"
    if any(n.endswith(".SCB") for n in names) and any(n.endswith(".weight_format") for n in names):
        return "bitsandbytes", "tensor names with SCB and weight_format (LLM.int8)"
    if any(n.endswith(".qweight") for n in names) and any(n.endswith(".qzeros") for n in names):
        if any(n.endswith(".g_idx") for n in names):
            return "gptq", "tensor names qweight, qzeros, scales, g_idx (GPTQ packing)"
        return "awq", "tensor names qweight, qzeros, scales without g_idx (AWQ packing)"
    return None


def quant_from_config(config: dict[str, Any] | None) -> tuple[str, dict[str, Any]] | None:
    if not config:
        return None
    qc = config.get("quantization_config")
    if not isinstance(qc, dict):
        return None
    method = str(qc.get("quant_method", "")).lower()
    if method == "bitsandbytes" or qc.get("load_in_4bit") or qc.get("load_in_8bit"):
        return "bitsandbytes", qc
    if method in QUANT_METHODS:
        return QUANT_METHODS[method], qc
    return (method, qc) if method else None


def quant_summary(method: str, qc: dict[str, Any]) -> dict[str, Any]:
    summary: dict[str, Any] = {"method": method}
    for key in (
        "bits",
        "group_size",
        "version",
        "zero_point",
        "desc_act",
        "sym",
        "checkpoint_format",
        "bnb_4bit_quant_type",
        "bnb_4bit_use_double_quant",
        "load_in_4bit",
        "load_in_8bit",
    ):
        if key in qc:
            summary[key] = qc[key]
    return summary


def _tensor_names(folder: Path, files: list[str]) -> list[str]:
    """Tensor names of the folder's safetensors (first shard's header is enough to decide)."""
    for name in files:
        if name.endswith(".safetensors"):
            try:
                probe = FileProbe(folder / name)
            except TensorfileError:  # unreadable shard: decide from the config alone
                continue
            try:
                header = st.read_header(probe, limit=IDENTIFY_HEADER_LIMIT)
            finally:
                probe.close()
            if header:
                return [k for k in header if k != "__metadata__"]
    return []


def detect_quantized_dir(probe: DirProbe) -> Detection | None:
    config = probe.read_json("config.json")
    from_config = quant_from_config(config)
    if from_config is None:
        for side in ("quantize_config.json", "quant_config.json"):  # AutoGPTQ / AutoAWQ side files
            side_cfg = probe.read_json(side)
            if side_cfg:
                method = "gptq" if side == "quantize_config.json" else "awq"
                from_config = (str(side_cfg.get("quant_method", method)).lower(), side_cfg)
                break
    weights = [f for f in probe.files if f.endswith(".safetensors")]
    names = _tensor_names(probe.path, weights)
    from_names = quant_from_names(names)
    if from_config is None and from_names is None:
        return None
    if from_config is not None and from_config[0] not in QUANT_METHODS.values():
        return None  # another method (fp8, compressed-tensors, hqq…): the container detector reports it
    method = from_config[0] if from_config else from_names[0]  # type: ignore[index]
    evidence = []
    details: dict[str, Any] = {"container": "safetensors" if weights else "pytorch"}
    if from_config:
        evidence.append(f"config quantization_config.quant_method = {from_config[0]}")
        details["quantization"] = quant_summary(method, from_config[1])
    if from_names:
        evidence.append(from_names[1])
    warnings = []
    if from_config and from_names and from_names[0] != from_config[0]:
        warnings.append(f"config says {from_config[0]} but tensor names look like {from_names[0]}")
    confidence = CERTAIN if from_config and from_names and not warnings else STRONG
    return Detection(method, confidence, evidence, details, warnings)


def detect_quantized_file(probe: FileProbe) -> Detection | None:
    """A single safetensors file whose tensor names (and sibling config) say it is quantized."""
    if st.header_length(probe.head) is None or probe.head[8:9] != b"{":
        return None
    header = st.read_header(probe, limit=IDENTIFY_HEADER_LIMIT)
    if not header:
        return None
    from_names = quant_from_names([k for k in header if k != "__metadata__"])
    if from_names is None:
        return None
    details: dict[str, Any] = {"container": "safetensors"}
    evidence = ["safetensors header", from_names[1]]
    config = None
    if probe.sibling("config.json"):
        config = DirProbe(probe.path.parent).read_json("config.json")
    from_config = quant_from_config(config)
    if from_config and from_config[0] == from_names[0]:
        evidence.append(f"sibling config.json quant_method = {from_config[0]}")
        details["quantization"] = quant_summary(from_names[0], from_config[1])
        return Detection(from_names[0], CERTAIN, evidence, details)
    return Detection(from_names[0], STRONG, evidence, details)


def detect_diffusers_dir(probe: DirProbe) -> Detection | None:
    index = probe.read_json("model_index.json")
    if index and ("_class_name" in index or "_diffusers_version" in index):
        components = {
            k: v
            for k, v in index.items()
            if not k.startswith("_") and isinstance(v, list) and len(v) == 2 and v[0]
        }
        present = [c for c in components if (probe.path / c).is_dir()]
        details = {
            "pipeline": index.get("_class_name"),
            "diffusers_version": index.get("_diffusers_version"),
            "components": {k: v[1] for k, v in components.items()},
            "components_present": present,
        }
        evidence = [f"model_index.json: {index.get('_class_name')} with {len(components)} components"]
        missing = [c for c in components if c not in present]
        warnings = [f"component folders missing: {', '.join(missing)}"] if missing else []
        return Detection("diffusers", CERTAIN, evidence, details, warnings)
    config = probe.read_json("config.json")
    if config and "_diffusers_version" in config:
        weights = [f for f in probe.files if f.startswith("diffusion_pytorch_model")]
        details = {
            "component_class": config.get("_class_name"),
            "diffusers_version": config["_diffusers_version"],
            "single_component": True,
            "weights": weights,
        }
        evidence = [f"config.json with _diffusers_version, class {config.get('_class_name')}"]
        return Detection("diffusers", CERTAIN if weights else STRONG, evidence, details)
    if index:
        return Detection(
            "diffusers",
            LIKELY,
            ["model_index.json present"],
            {},
            ["model_index.json lacks _class_name/_diffusers_version"],
        )
    return None


# --- inspect --------------------------------------------------------------------------------------

_GPTQ_AUX = (".qzeros", ".scales", ".g_idx", ".bias_zero", ".wf")
_BNB_AUX = (".absmax", ".quant_map", ".nested_absmax", ".nested_quant_map", ".SCB", ".weight_format")


def _weights_files(folder: Path) -> list[Path]:
    """The folder's safetensors in index order (or the single file)."""
    for index in sorted(folder.glob("*.safetensors.index.json")):
        try:
            weight_map = json.loads(index.read_bytes()).get("weight_map", {})
        except (OSError, ValueError, AttributeError):
            continue
        return [folder / name for name in sorted(set(weight_map.values()))]
    return sorted(folder.glob("*.safetensors"))


def _is_aux(name: str, method: str) -> bool:
    if method in ("gptq", "awq"):
        return name.endswith(_GPTQ_AUX)
    return method == "bitsandbytes" and (name.endswith(_BNB_AUX) or ".quant_state." in name)


def _mark_roles_and_logical(info: ModelInfo, method: str, bits: int) -> tuple[int, list[str]]:
    """Tag quantization side tensors and count the original model's parameters."""
    pack = 32 // bits if bits in (2, 3, 4, 8) and 32 % bits == 0 else 8
    logical = 0
    quantized: list[str] = []
    for t in info.tensors:
        if _is_aux(t.name, method):
            t.role = "quant-aux"
        elif method in ("gptq", "awq") and t.name.endswith(".qweight") and len(t.shape) == 2:
            # GPTQ packs along the input dim ([in/pack, out]); AWQ along the output dim ([in, out/pack]).
            logical += t.shape[0] * t.shape[1] * pack
            quantized.append(t.name.removesuffix(".qweight"))
        elif method == "bitsandbytes" and t.dtype == "U8" and t.name.endswith(".weight"):
            logical += t.numel * 2  # two 4-bit values per byte
            quantized.append(t.name.removesuffix(".weight"))
        elif method == "bitsandbytes" and t.dtype == "I8" and t.name.endswith(".weight"):
            logical += t.numel
            quantized.append(t.name.removesuffix(".weight"))
        else:
            logical += t.numel
    return logical, quantized


def inspect_quantized(path: Path, ident: Identification) -> ModelInfo:
    folder = path if path.is_dir() else path.parent
    files = [path] if path.is_file() else _weights_files(folder)
    if not files:
        raise UnsupportedError(
            f"{ident.format} folder without safetensors weights (pickled .bin not read yet)", path
        )
    info = st.inspect_files(folder if path.is_dir() else path, files, ident.format)
    info.path = str(path)
    config = DirProbe(folder).read_json("config.json")
    found = quant_from_config(config)
    qc = found[1] if found else {}
    method = ident.format
    bits = int(qc.get("bits", 4 if method != "bitsandbytes" or qc.get("load_in_4bit") else 8))
    if method == "bitsandbytes":
        bits = (
            4
            if qc.get("load_in_4bit") or any(".quant_state.bitsandbytes__" in t.name for t in info.tensors)
            else 8
        )
    logical, quantized = _mark_roles_and_logical(info, method, bits)
    info.quantization = {
        **quant_summary(method, qc),
        "method": method,
        "bits": bits,
        "group_size": qc.get("group_size", 64 if method == "bitsandbytes" and bits == 4 else None),
        "quantized_layers": len(quantized),
        "quantized_layer_names": quantized[:64],
        "stored_parameter_count": info.parameter_count,
        "logical_parameter_count": logical,
    }
    if method == "bitsandbytes" and bits == 4:
        info.quantization["quant_type"] = qc.get("bnb_4bit_quant_type") or (
            "nf4" if any(t.name.endswith("__nf4") for t in info.tensors) else "fp4"
        )
        info.quantization["double_quant"] = bool(qc.get("bnb_4bit_use_double_quant")) or any(
            t.name.endswith(".nested_absmax") for t in info.tensors
        )
    return info


def inspect_diffusers(path: Path, ident: Identification) -> ModelInfo:
    from ..inspection import inspect

    metadata = dict(ident.details)
    if ident.details.get("single_component"):
        info = _component_weights(path)
        info.path, info.format, info.metadata = str(path), "diffusers", metadata
        return info
    info = ModelInfo(str(path), "diffusers", metadata=metadata)
    for name in ident.details.get("components_present", []):
        folder = path / name
        try:
            # Diffusers' own parts (unet, vae) hold diffusion_pytorch_model*; others (text
            # encoders from transformers) are ordinary model folders.
            is_diffusers_part = "_diffusers_version" in (DirProbe(folder).read_json("config.json") or {})
            part = _component_weights(folder) if is_diffusers_part else inspect(folder)
        except TensorfileError as exc:
            info.warnings.append(f"component {name}: {exc.message}")
            continue
        info.components[name] = part
        info.files.extend({**f, "path": f"{name}/{Path(f['path']).name}"} for f in part.files)
        for t in part.tensors:
            label = f"{name}/{Path(t.file or '').name}"
            info.tensors.append(
                TensorInfo(f"{name}/{t.name}", t.dtype, t.shape, t.nbytes, label, t.offset, t.role)
            )
    return info


def _component_weights(folder: Path) -> ModelInfo:
    files = sorted(folder.glob("diffusion_pytorch_model*.safetensors")) or sorted(
        folder.glob("*.safetensors")
    )
    if not files:
        raise UnsupportedError("component has no safetensors weights", folder)
    return st.inspect_files(folder, files, "safetensors")


INSPECTS = {
    "awq": inspect_quantized,
    "gptq": inspect_quantized,
    "bitsandbytes": inspect_quantized,
    "diffusers": inspect_diffusers,
}
