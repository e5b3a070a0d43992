"""Plan and write a GGUF file from a Hugging Face model, as convert_hf_to_gguf.py + llama-quantize.

`plan_gguf` decides everything from headers and config files (keys, tensor names, shapes, types,
the file's size) before a byte of weights is read; write.py then streams it into the output the
caller opened atomically.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gguf
import numpy as np

from ...errors import UsageError
from ..tensors import SourceTensor
from . import arch as archs
from .hparams import block_count, load_hparams, rope_parameters
from .layout import GGUFTensor, guess_out_type, plan_tensors, quantize_order

FLOAT_TYPES = ("F32", "F16", "BF16")
QUANT_TYPES = (
    "Q8_0",
    "Q4_0",
    "Q4_1",
    "Q5_0",
    "Q5_1",
    "Q2_K",
    "Q3_K_S",
    "Q3_K_M",
    "Q3_K_L",
    "Q4_K_S",
    "Q4_K_M",
    "Q5_K_S",
    "Q5_K_M",
    "Q6_K",
)
_FLOAT_FILE_TYPE = {
    "F32": gguf.LlamaFileType.ALL_F32,
    "F16": gguf.LlamaFileType.MOSTLY_F16,
    "BF16": gguf.LlamaFileType.MOSTLY_BF16,
}


@dataclass
class GGUFPlan:
    """What will be written: the header (keys and tensor infos) and each tensor's recipe."""

    writer: gguf.GGUFWriter
    tensors: list[GGUFTensor]
    arch: str
    quant: str  # the llama-quantize type name, or F32/F16/BF16
    base_type: str  # the converter's output type the values pass through
    notes: list[str] = field(default_factory=list)

    @property
    def total_bytes(self) -> int:
        return sum(t.nbytes() for t in self.tensors)


def normalise_quant(text: str | None) -> str | None:
    if text is None:
        return None
    key = text.strip().upper().replace("-", "_")
    if key in FLOAT_TYPES or key in QUANT_TYPES:
        return key
    names = ", ".join((*FLOAT_TYPES, *QUANT_TYPES))
    raise UsageError(f"--quant {text!r}: use one of {names}")


def plan_gguf(source: Path, tensors: list[SourceTensor], quant: str | None, source_format: str) -> GGUFPlan:
    """Everything about the output, from headers and config files alone."""
    quant = normalise_quant(quant)
    if source_format == "gguf":
        return _plan_requantize(source, tensors, quant)
    folder = source if source.is_dir() else source.parent
    hparams = load_hparams(folder)
    _, family = archs.family_for(hparams)
    n_layer = block_count(hparams)
    # llama.cpp's path: the converter writes the source's own float type (--outtype auto) unless
    # a float type is asked for; llama-quantize then quantizes from those values.
    base = quant if quant in FLOAT_TYPES else guess_out_type(tensors)
    planned = plan_tensors(family, hparams, tensors, base, n_layer)
    for t in planned:
        t.type = t.base_type
    writer = gguf.GGUFWriter(None, family.name)
    for t in planned:
        _add_info(writer, t)
    _converter_metadata(writer, folder, hparams, family, base)
    final = quant or base
    if final not in FLOAT_TYPES:
        n_expert = hparams.get("num_local_experts") or hparams.get("num_experts") or 0
        mix = {
            "arch": family.name,
            "n_layer": n_layer,
            "n_expert": int(n_expert),
            "n_head": hparams.get("num_attention_heads"),
            "n_head_kv": hparams.get("num_key_value_heads"),
        }
        planned = _quantize_plan(writer, planned, final, mix)
    return GGUFPlan(writer, planned, family.name, final, base)


def _plan_requantize(path: Path, tensors: list[SourceTensor], quant: str | None) -> GGUFPlan:
    from .requant import read_source

    if quant is None:
        raise UsageError("a GGUF source needs --quant: the type to requantize it to")
    writer, planned, mix = read_source(path, tensors)
    planned = _quantize_plan(writer, planned, quant, mix)
    return GGUFPlan(writer, planned, mix["arch"], quant, "source")


def _add_info(writer: gguf.GGUFWriter, t: GGUFTensor) -> None:
    raw = gguf.GGMLQuantizationType[t.type]
    writer.add_tensor_info(t.name, t.shape, np.dtype(np.float32), t.nbytes(), raw_dtype=raw)


def _converter_metadata(
    writer: gguf.GGUFWriter, folder: Path, hparams: dict[str, Any], family: archs.Family, base: str
) -> None:
    """ModelBase.prepare_metadata + TextModel.prepare_metadata, in their order."""
    from .vocab import add_vocab

    total, shared, expert, expert_count = writer.get_total_parameter_count()
    metadata = gguf.Metadata.load(None, folder, None, total)
    if metadata.name is None:
        metadata.name = folder.name
    _generation_config_extras(metadata, folder)
    if metadata.size_label is None and total > 0:
        metadata.size_label = gguf.size_label(total, shared, expert, expert_count)
    writer.add_type(gguf.GGUFType.MODEL)
    metadata.set_gguf_meta_model(writer)
    rope = rope_parameters(hparams)
    archs.base_params(writer, hparams, rope)
    writer.add_file_type(_FLOAT_FILE_TYPE[base])
    family.extra_params(writer, hparams, rope)
    writer.add_quantization_version(gguf.GGML_QUANT_VERSION)
    add_vocab(writer, folder, family.name, hparams)


def _generation_config_extras(metadata: gguf.Metadata, folder: Path) -> None:
    """The converter's gguf-py reads `repetition_penalty` too (newer than the PyPI release)."""
    import json

    path = folder / "generation_config.json"
    if metadata.sampling_penalty_repeat is not None or not path.is_file():
        return
    try:
        value = json.loads(path.read_text(encoding="utf-8")).get("repetition_penalty")
    except (ValueError, OSError, AttributeError):
        return
    if value is not None:
        metadata.sampling_penalty_repeat = value


def _quantize_plan(
    writer: gguf.GGUFWriter, planned: list[GGUFTensor], quant: str, mix: dict[str, Any]
) -> list[GGUFTensor]:
    """llama-quantize on the converter's file: its tensor order, its mix, its two keys moved last."""
    from .mix import TensorSpec, choose_types, file_type

    ordered = quantize_order(planned)
    specs = [TensorSpec(t.name, t.shape) for t in ordered]
    chosen = choose_types(
        mix["arch"],
        specs,
        quant,
        n_layer=int(mix["n_layer"]),
        n_expert=int(mix["n_expert"]),
        n_head=mix["n_head"],
        n_head_kv=mix["n_head_kv"],
        source_types={t.name: t.base_type for t in ordered},
    )
    for t in ordered:
        t.type = chosen[t.name]
    kv = writer.kv_data[0]
    kv.pop(gguf.Keys.General.QUANTIZATION_VERSION, None)
    kv.pop(gguf.Keys.General.FILE_TYPE, None)
    kv[gguf.Keys.General.QUANTIZATION_VERSION] = gguf.GGUFValue(
        gguf.GGML_QUANT_VERSION, gguf.GGUFValueType.UINT32
    )
    kv[gguf.Keys.General.FILE_TYPE] = gguf.GGUFValue(file_type(quant), gguf.GGUFValueType.UINT32)
    writer.tensors = [{}]
    for t in ordered:
        _add_info(writer, t)
    return ordered
