"""GGUF → GGUF at another type, as `llama-quantize in.gguf out.gguf TYPE --allow-requantize` does.

The source's keys are copied in their order, then llama-quantize's own: quantization_version and
file_type set (gguf_set_val moves an existing key to the end), split keys removed. Tensors go in
llama-quantize's order with the types its mix chooses; a tensor whose chosen type is its stored
type is copied byte for byte, the others are read back to float32 (ggml's to_float, which
gguf-py's dequantizers equal) and quantized.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import gguf

from ...errors import FormatError, UnsupportedError
from ..tensors import SourceTensor
from .layout import GGUFTensor, Part

_SPLIT_KEYS = (
    gguf.Keys.Split.LLM_KV_SPLIT_NO,
    gguf.Keys.Split.LLM_KV_SPLIT_COUNT,
    gguf.Keys.Split.LLM_KV_SPLIT_TENSORS_COUNT,
)


def read_source(
    path: Path, tensors: list[SourceTensor]
) -> tuple[gguf.GGUFWriter, list[GGUFTensor], dict[str, Any]]:
    """A writer holding the source's keys, the source's tensors as plan entries, and the hparams
    the mix needs (arch, layer, head and expert counts)."""
    reader = gguf.GGUFReader(str(path))
    arch_field = reader.fields.get(gguf.Keys.General.ARCHITECTURE)
    if arch_field is None:
        raise FormatError("GGUF file has no general.architecture", path)
    arch = str(arch_field.contents())
    writer = gguf.GGUFWriter(None, arch)
    kv = writer.kv_data[0]
    kv.clear()  # the constructor adds general.architecture; it is re-added in the source's order
    for field in reader.fields.values():
        if field.name.startswith("GGUF.") or field.name in _SPLIT_KEYS:
            continue
        main = field.types[0]
        sub = field.types[-1] if main == gguf.GGUFValueType.ARRAY and len(field.types) > 1 else None
        kv[field.name] = gguf.GGUFValue(field.contents(), main, sub)
    if (split := reader.fields.get(gguf.Keys.Split.LLM_KV_SPLIT_COUNT)) is not None and split.contents() > 1:
        raise UnsupportedError("split GGUF files (…-00001-of-N.gguf) cannot be requantized yet", path)

    def value(key: str) -> Any:
        field = reader.fields.get(key.format(arch=arch))
        return None if field is None else field.contents()

    hparams = {
        "arch": arch,
        "n_layer": value(gguf.Keys.LLM.BLOCK_COUNT) or 0,
        "n_expert": value(gguf.Keys.LLM.EXPERT_COUNT) or 0,
        "n_head": value(gguf.Keys.Attention.HEAD_COUNT),
        "n_head_kv": value(gguf.Keys.Attention.HEAD_COUNT_KV),
    }
    planned = [
        GGUFTensor(t.name, tuple(t.shape), t.dtype, [Part(t)], type=t.dtype, copy_when_kept=True)
        for t in tensors
    ]
    return writer, planned, hparams
