"""Hugging Face folders: Diffusers pipelines and quantized checkpoints (AWQ, GPTQ, bitsandbytes).

A quantized checkpoint is safetensors (or pickled .bin files) plus a `quantization_config`; we trust
it when the config and the tensor names agree, and say so when only one of them speaks.

What the writers put on disk (checked against folders written by transformers 4.57/5.24 with
bitsandbytes 0.50, GPTQModel 7.3 and diffusers 0.42; see tests/fixtures/hf/):

- bitsandbytes 4-bit: `<layer>.weight` holds two 4-bit codes per byte of its storage dtype (U8 by
  default, BF16/F16/F32 with `bnb_4bit_quant_storage`), beside `weight.absmax` (one per block; U8
  when double-quantized), `weight.quant_map`, `weight.nested_absmax`, `weight.nested_quant_map` and
  `weight.quant_state.bitsandbytes__nf4|fp4` (a packed JSON of the original shape).
- bitsandbytes 8-bit: `<layer>.weight` I8, `<layer>.SCB` F32 row scales, `<layer>.weight_format`.
- GPTQ / AWQ: `qweight` (codes packed into int32), `qzeros`, `scales`, and `g_idx` for GPTQ only.
- Diffusers: `model_index.json`, one folder per component; weights may come in variants
  (`diffusion_pytorch_model.fp16.safetensors` beside the fp32 file), of which one is counted.
"""

from __future__ import annotations

import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ..errors import TensorfileError, UnsupportedError
from ..model import CERTAIN, LIKELY, STRONG, Detection, Identification, ModelInfo, TensorInfo, natural_key
from ..probe import DirProbe, FileProbe, load_json
from . import pytorch
from . import safetensors as st

QUANT_METHODS = {"awq": "awq", "gptq": "gptq", "bitsandbytes": "bitsandbytes"}
# Tensor names decide the quantization method; headers beyond this are left to `inspect`.
IDENTIFY_HEADER_LIMIT = 16 * 1024 * 1024
# The weight file stems transformers and diffusers write; only these take a `.variant` tag, and
# only these count as weights when pickled (training_args.bin, optimizer.bin… are not weights).
_HF_STEMS = ("model", "pytorch_model", "diffusion_pytorch_model", "adapter_model")
_SHARD_SUFFIX = re.compile(r"-\d{5}-of-\d{5}$")
_INDEX = re.compile(r"^(?P<stem>.+)\.(?P<ext>safetensors|bin)\.index(?:\.(?P<variant>[^.]+))?\.json$")


# --- weight files and their variants ----------------------------------------------------------------


@dataclass
class WeightSet:
    """The weight files a loader would pick in one folder: one container, one variant."""

    container: str  # "safetensors" or "pytorch"
    variant: str | None  # None for the default weights, else e.g. "fp16"
    files: list[str]
    index: str | None = None
    other_variants: list[str] = field(default_factory=list)  # variants present but not counted


def _file_variant(name: str) -> tuple[str, str, str | None] | None:
    """(container, stem, variant) of a weights file name, None for anything else.

    `model.safetensors` -> ("safetensors", "model", None);
    `diffusion_pytorch_model.fp16-00001-of-00002.safetensors` -> (…, "diffusion_pytorch_model", "fp16").
    """
    if name.endswith(".safetensors"):
        container, base = "safetensors", name[: -len(".safetensors")]
    elif name.endswith(".bin"):
        container, base = "pytorch", name[: -len(".bin")]
    else:
        return None
    base = _SHARD_SUFFIX.sub("", base)
    stem, _, variant = base.partition(".")
    if stem not in _HF_STEMS:  # e.g. sd_xl_base_1.0.safetensors: the dot is part of the name
        return (container, base, None) if container == "safetensors" else None
    return container, stem, variant or None


def choose_weights(folder: Path, files: list[str] | None = None) -> WeightSet | None:
    """Which files hold the folder's weights: safetensors before pickles, the default variant first.

    An index (`*.safetensors.index[.variant].json`) names the shards when there is one.
    """
    names = files if files is not None else DirProbe(folder).files
    groups: dict[tuple[str, str | None], list[str]] = {}
    for name in names:
        parsed = _file_variant(name)
        if parsed:
            groups.setdefault((parsed[0], parsed[2]), []).append(name)
    indexes: dict[tuple[str, str | None], str] = {}
    for name in names:
        match = _INDEX.match(name)
        if match:
            container = "safetensors" if match["ext"] == "safetensors" else "pytorch"
            indexes.setdefault((container, match["variant"]), name)
    if not groups:
        return None
    order = {"safetensors": 0, "pytorch": 1}
    key = min(groups, key=lambda k: (order[k[0]], k[1] is not None, k[1] or ""))
    chosen = sorted(groups[key])
    index = indexes.get(key)
    if index:
        listed = _index_files(folder / index)
        if listed:
            chosen = listed
    others = sorted({v or "default" for c, v in groups if (c, v) != key and c == key[0]})
    return WeightSet(key[0], key[1], chosen, index, others)


def _index_files(index: Path) -> list[str]:
    try:
        weight_map = load_json(index.read_bytes()).get("weight_map", {})
    except (OSError, ValueError, AttributeError):
        return []
    if not isinstance(weight_map, dict):
        return []
    # Plain names only: a hostile index must not point the reader outside the folder.
    return sorted({str(v) for v in weight_map.values() if Path(str(v)).name == str(v) != ".."})


# --- identify -------------------------------------------------------------------------------------


def quant_from_names(names: list[str]) -> tuple[str, str] | None:
    """(method, evidence) from tensor names alone."""
    if any(".quant_state.bitsandbytes__" in n for n in names):
        kind = "nf4" if any(n.endswith("bitsandbytes__nf4") for n in names) else "fp4"
        return "bitsandbytes", f"tensor names with quant_state.bitsandbytes__{kind}, absmax, quant_map"
    if any(n.endswith(".SCB") for n in names):
        return "bitsandbytes", "tensor names with SCB row scales (LLM.int8)"
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


# Config keys worth showing per method; bitsandbytes writes every 4-bit and 8-bit field whichever
# mode is on, so only the active mode's fields are kept.
_SUMMARY_KEYS = {
    "gptq": ("bits", "group_size", "desc_act", "sym", "checkpoint_format", "format", "pack_dtype", "lm_head"),
    "awq": ("bits", "group_size", "version", "zero_point", "desc_act", "checkpoint_format", "format"),
    "bnb4": (
        "load_in_4bit",
        "bnb_4bit_quant_type",
        "bnb_4bit_use_double_quant",
        "bnb_4bit_compute_dtype",
        "bnb_4bit_quant_storage",
        "llm_int8_skip_modules",
    ),
    "bnb8": ("load_in_8bit", "llm_int8_threshold", "llm_int8_has_fp16_weight", "llm_int8_skip_modules"),
}


def _bnb_mode(qc: dict[str, Any]) -> str | None:
    if qc.get("load_in_4bit") or qc.get("_load_in_4bit"):
        return "bnb4"
    if qc.get("load_in_8bit") or qc.get("_load_in_8bit"):
        return "bnb8"
    return None


def quant_summary(method: str, qc: dict[str, Any]) -> dict[str, Any]:
    if method == "bitsandbytes":
        mode = _bnb_mode(qc)
        keys = _SUMMARY_KEYS[mode] if mode else _SUMMARY_KEYS["bnb4"] + _SUMMARY_KEYS["bnb8"]
    else:
        keys = _SUMMARY_KEYS.get(method, _SUMMARY_KEYS["gptq"] + _SUMMARY_KEYS["awq"])
    summary: dict[str, Any] = {"method": method}
    for key in dict.fromkeys(keys):
        if key in qc and qc[key] is not None:
            summary[key] = qc[key]
    return summary


def _tensor_names(folder: Path, weights: WeightSet | None, configured: bool) -> list[str]:
    """Tensor names of the first weights file whose names show a quantization method.

    When the config already says quantized, safetensors shards are read in turn (a first shard may
    hold only the unquantized embeddings) and a pickle's data.pkl is walked for its keys. Otherwise
    only the first safetensors header is asked: every HF folder passes through here, and plain
    pickled folders are read once, by the PyTorch detector.
    """
    if weights is None or (weights.container == "pytorch" and not configured):
        return []
    names: list[str] = []
    many = configured and weights.container == "safetensors"
    for name in weights.files if many else weights.files[:1]:
        try:
            probe = FileProbe(folder / name)
        except TensorfileError:  # unreadable shard: decide from the config alone
            continue
        try:
            if weights.container == "safetensors":
                header = st.read_header(probe, limit=IDENTIFY_HEADER_LIMIT)
                found = [k for k in header or {} if k != "__metadata__"]
            else:
                found = _pickle_keys(probe)
        finally:
            probe.close()
        names.extend(found)
        if quant_from_names(found):
            break
    return names


def _pickle_keys(probe: FileProbe) -> list[str]:
    """Top-level keys of a pickled state dict, from the PyTorch detector's reading of data.pkl."""
    try:
        detection = pytorch.detect_file(probe)
    except (TensorfileError, ValueError, LookupError, ArithmeticError, OSError, RecursionError):
        return []  # hostile or cut pickle: the config alone decides
    keys = detection.details.get("top_level_keys") if detection else None
    return [str(k) for k in keys] if isinstance(keys, list) else []


def folder_quant_config(probe: DirProbe) -> tuple[str, dict[str, Any]] | None:
    """(method, config) from config.json's quantization_config, else AutoGPTQ / AutoAWQ side files."""
    found = quant_from_config(probe.read_json("config.json"))
    if found is None:
        for side in ("quantize_config.json", "quant_config.json"):
            side_cfg = probe.read_json(side)
            if side_cfg:
                method = "gptq" if side == "quantize_config.json" else "awq"
                return str(side_cfg.get("quant_method", method)).lower(), side_cfg
    return found


def detect_quantized_dir(probe: DirProbe) -> Detection | None:
    from_config = folder_quant_config(probe)
    if from_config is not None and from_config[0] not in QUANT_METHODS.values():
        return None  # another method (fp8, compressed-tensors, hqq…): the container detector reports it
    weights = choose_weights(probe.path, probe.files)
    from_names = quant_from_names(_tensor_names(probe.path, weights, configured=from_config is not None))
    if from_config is None and from_names is None:
        return None
    method = from_config[0] if from_config else from_names[0]  # type: ignore[index]
    evidence = []
    details: dict[str, Any] = {"container": weights.container if weights else None}
    if weights:
        details["weights_files"] = weights.files
    if from_config:
        evidence.append(f"config quantization_config.quant_method = {from_config[0]}")
        details["quantization"] = quant_summary(method, from_config[1])
    if from_names:
        evidence.append(from_names[1])
    warnings = []
    if weights is None:
        warnings.append("no weights files (*.safetensors, pytorch_model*.bin) in the folder")
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


def _components(index: dict[str, Any]) -> dict[str, list[Any]]:
    """model_index.json entries that name a component: {name: [library, class]}, set ones only."""
    return {
        k: v
        for k, v in index.items()
        if not k.startswith("_")
        and isinstance(v, list)
        and len(v) == 2
        and v[0]
        and Path(k).name == k != ".."  # a folder inside the pipeline, not a path out of it
    }


def detect_diffusers_dir(probe: DirProbe) -> Detection | None:
    index = probe.read_json("model_index.json")
    if index and ("_class_name" in index or "_diffusers_version" in index):
        components = _components(index)
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
        weights = choose_weights(probe.path, probe.files)
        details = {
            "component_class": config.get("_class_name"),
            "diffusers_version": config["_diffusers_version"],
            "single_component": True,
            "weights": weights.files if weights else [],
        }
        if weights and weights.variant:
            details["variant"] = weights.variant
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


def _is_aux(name: str, method: str) -> bool:
    if method in ("gptq", "awq"):
        return name.endswith(_GPTQ_AUX)
    return method == "bitsandbytes" and (name.endswith(_BNB_AUX) or ".quant_state." in name)


def read_weights(folder: Path, weights: WeightSet, fmt: str | None = None) -> ModelInfo:
    """One ModelInfo over a folder's chosen weight files (safetensors headers or pickles).

    `fmt` names the result; by default the container's own format id.
    """
    paths = [folder / name for name in weights.files]
    missing = [p.name for p in paths if not p.is_file()]
    if missing:
        raise UnsupportedError(f"weights file(s) missing: {', '.join(missing[:3])}", folder)
    if weights.container == "safetensors":
        info = st.inspect_files(folder, paths, fmt or "safetensors")
    else:
        info = _read_pickles(folder, paths, fmt)
    if weights.variant:
        info.metadata["variant"] = weights.variant
    if weights.other_variants:
        info.metadata["variants_not_counted"] = weights.other_variants
    return info


def _read_pickles(folder: Path, paths: list[Path], fmt: str | None) -> ModelInfo:
    """Pickled .bin state dicts, each read by the PyTorch inspector (non-executing)."""
    from ..inspection import inspect

    info = ModelInfo(str(folder), fmt or "")
    imports: set[str] = set()
    for path in paths:
        part = inspect(path)
        if part.format not in pytorch.INSPECTS:
            raise UnsupportedError(f"{path.name} is {part.format}, not a PyTorch pickle", folder)
        info.format = info.format or part.format
        info.files.append({"path": path.name, "size_bytes": path.stat().st_size})
        info.tensors.extend(
            TensorInfo(t.name, t.dtype, t.shape, t.nbytes, path.name, t.offset, t.role) for t in part.tensors
        )
        info.warnings.extend(part.warnings)
        imports.update((part.pickle or {}).get("imports", []))
    info.pickle = {"imports": sorted(imports), "files": len(paths)}
    return info


@dataclass
class _Quantized:
    logical: int = 0
    layers: list[str] = field(default_factory=list)
    block_sizes: Counter[int] = field(default_factory=Counter)
    storage: Counter[str] = field(default_factory=Counter)
    tied: list[str] = field(default_factory=list)


def _mark_roles_and_logical(info: ModelInfo, method: str, bits: int) -> _Quantized:
    """Tag quantization side tensors and count the original model's parameters.

    A layer is quantized when its side tensors say so (absmax / quant_state / SCB beside a weight,
    qweight for GPTQ/AWQ), not by its dtype: bitsandbytes may store 4-bit codes in BF16 elements.
    """
    by_name = {t.name: t for t in info.tensors}
    found = _Quantized()
    seen: dict[tuple[Any, ...], str] = {}
    for t in info.tensors:
        if _is_aux(t.name, method):
            t.role = "quant-aux"
            continue
        # Tied weights pickled twice share one storage: the original model has them once.
        if t.offset is not None and t.nbytes:
            key = (t.file, t.offset, t.dtype, t.shape)
            if key in seen:
                found.tied.append(t.name)
                continue
            seen[key] = t.name
        if method in ("gptq", "awq") and t.name.endswith(".qweight"):
            # bits codes packed into whole words, whatever the pack dtype and direction.
            found.logical += t.nbytes * 8 // bits
            found.layers.append(t.name.removesuffix(".qweight"))
        elif method == "bitsandbytes" and f"{t.name}.absmax" in by_name:
            n = t.nbytes * 2  # two 4-bit codes per byte of whatever storage dtype
            found.logical += n
            found.layers.append(t.name.removesuffix(".weight"))
            found.storage[t.dtype] += 1
            blocks = by_name[f"{t.name}.absmax"].numel
            if blocks:
                found.block_sizes[1 << max(0, (-(-n // blocks) - 1).bit_length())] += 1
        elif method == "bitsandbytes" and t.name.endswith(".weight") and f"{t.name[:-7]}.SCB" in by_name:
            found.logical += t.numel
            found.layers.append(t.name.removesuffix(".weight"))
            found.storage[t.dtype] += 1
        else:
            found.logical += t.numel
    return found


def _config_bits(qc: dict[str, Any]) -> int:
    """GPTQ/AWQ code width from the config; 4 (their usual) when missing or not a sane width."""
    bits = qc.get("bits")
    return bits if isinstance(bits, int) and not isinstance(bits, bool) and 1 <= bits <= 16 else 4


def inspect_quantized(path: Path, ident: Identification) -> ModelInfo:
    folder = path if path.is_dir() else path.parent
    if path.is_file():  # one safetensors file named on the command line
        info = st.inspect_files(path, [path], ident.format)
    else:
        weights = choose_weights(folder)
        if weights is None:
            raise UnsupportedError(f"{ident.format} folder without weights files", path)
        info = read_weights(folder, weights, ident.format)
    info.path = str(path)
    found_config = folder_quant_config(DirProbe(folder))
    qc = found_config[1] if found_config else {}
    method = ident.format
    names = [t.name for t in info.tensors]
    if method == "bitsandbytes":
        four_bit = _bnb_mode(qc) == "bnb4" or any(".quant_state.bitsandbytes__" in n for n in names)
        bits = 4 if four_bit else 8
    else:
        bits = _config_bits(qc)
    found = _mark_roles_and_logical(info, method, bits)
    q: dict[str, Any] = {
        **quant_summary(method, qc),
        "method": method,
        "bits": bits,
        "group_size": qc.get("group_size"),
        "quantized_layers": len(found.layers),
        # all of them, in layer order (layers.2 before layers.10); the terminal report collapses the list
        "quantized_layer_names": sorted(found.layers, key=natural_key),
        "stored_parameter_count": info.parameter_count,
        "logical_parameter_count": found.logical,
    }
    if method == "bitsandbytes" and bits == 4:
        # The block size bitsandbytes used: codes per absmax, read from the shapes.
        q["group_size"] = found.block_sizes.most_common(1)[0][0] if found.block_sizes else 64
        q["quant_type"] = qc.get("bnb_4bit_quant_type") or (
            "nf4" if any(n.endswith("__nf4") for n in names) else "fp4"
        )
        q["double_quant"] = bool(qc.get("bnb_4bit_use_double_quant")) or any(
            n.endswith(".nested_absmax") for n in names
        )
    if method == "bitsandbytes" and found.storage:
        q["storage_dtype"] = found.storage.most_common(1)[0][0]
    if found.tied:
        q["tied_tensors"] = found.tied[:16]
    info.quantization = q
    return info


def inspect_diffusers(path: Path, ident: Identification) -> ModelInfo:
    from ..inspection import inspect

    metadata = dict(ident.details)
    if ident.details.get("single_component"):
        info = _component_weights(path)
        info.path, info.format = str(path), "diffusers"
        info.metadata = {**metadata, **info.metadata}
        return info
    info = ModelInfo(str(path), "diffusers", metadata=metadata)
    without_weights: list[str] = []
    variants: set[str] = set()
    for name in ident.details.get("components_present", []):
        folder = path / name
        try:
            if choose_weights(folder) is not None:
                part = _component_weights(folder)
            elif DirProbe(folder).has("config.json"):
                # A model part whose weights are in a form we do not pick (e.g. .pt): ask inspect.
                part = inspect(folder)
            else:
                without_weights.append(name)  # scheduler, tokenizer, feature extractor
                continue
        except TensorfileError as exc:
            info.warnings.append(f"component {name}: {exc.message}")
            continue
        variants.update(part.metadata.get("variants_not_counted", []))
        info.components[name] = part
        info.files.extend({**f, "path": f"{name}/{Path(f['path']).name}"} for f in part.files)
        for t in part.tensors:
            label = f"{name}/{Path(t.file or '').name}"
            info.tensors.append(
                TensorInfo(f"{name}/{t.name}", t.dtype, t.shape, t.nbytes, label, t.offset, t.role)
            )
    info.metadata["components_without_weights"] = without_weights
    if variants:
        info.metadata["variants_not_counted"] = sorted(variants)
    return info


def _component_weights(folder: Path) -> ModelInfo:
    """A component's weights: Diffusers' own parts and transformers models (text encoders) alike."""
    weights = choose_weights(folder)
    if weights is None:
        raise UnsupportedError("component has no weights files", folder)
    return read_weights(folder, weights)


INSPECTS = {
    "awq": inspect_quantized,
    "gptq": inspect_quantized,
    "bitsandbytes": inspect_quantized,
    "diffusers": inspect_diffusers,
}
