"""TensorInfo from torch tensor records and storage locations, the torch quantization summary, and
the pickle summary every torch inspect reports."""

from __future__ import annotations

from typing import Any

from ...errors import FormatError
from ...model import ModelInfo, TensorInfo
from ...picklevm import PickleResult
from ...torchpickle import ITEMSIZE, TensorRecord

# What each layout_* returns: the inspect result, the raw tensor records and, per storage key,
# (absolute data offset or None, byte size); convert reads tensors through them.
Layout = tuple[ModelInfo, list[TensorRecord], dict[str, tuple[int | None, int]]]


def pickle_summary(result: PickleResult) -> dict[str, Any]:
    imports = sorted({g.qualname for g in result.globals})
    return {
        "protocol": result.protocol,
        "imports": imports,
        "calls": len(result.calls),
        "opcodes": result.opcode_count,
    }


def to_tensors(
    records: list[TensorRecord], storages: dict[str, tuple[int | None, int]], file_label: str, info: ModelInfo
) -> None:
    """TensorInfo from pickle records; `storages` maps key -> (absolute data offset or None, byte size)."""
    missing: set[str] = set()
    for rec in records:
        itemsize = ITEMSIZE[rec.dtype]
        nbytes = rec.numel * itemsize
        located = storages.get(rec.storage_key)
        offset = None
        if located is None:
            missing.add(rec.storage_key)
        else:
            start, size = located
            extent = (
                rec.storage_offset + sum((d - 1) * s for d, s in zip(rec.shape, rec.stride, strict=False)) + 1
            )
            if rec.numel and extent * itemsize > size:
                info.warnings.append(
                    f"tensor {rec.name!r} reaches past the end of its storage {rec.storage_key}"
                )
            if start is not None and rec.contiguous:
                offset = start + rec.storage_offset * itemsize
        info.tensors.append(
            TensorInfo(rec.name, rec.dtype, rec.shape, nbytes, file_label, offset, rec.role, rec.quantization)
        )
    if missing:
        raise FormatError(
            f"storage record(s) {', '.join(sorted(missing)[:3])} missing from the file", info.path
        )
    info.quantization = _torch_quantization(info.tensors) or info.quantization


def _torch_quantization(tensors: list[TensorInfo]) -> dict[str, Any] | None:
    """The summary of torch quantized tensors (quantize_per_tensor / per_channel, quantize_dynamic)."""
    quantized = [t for t in tensors if t.quantization is not None]
    if not quantized:
        return None
    params: dict[str, int] = {}
    for t in quantized:
        params[t.dtype] = params.get(t.dtype, 0) + t.numel
    main = max(params, key=lambda d: (params[d], d))  # the dtype most quantized parameters use
    return {
        "method": "torch-quantized",
        "bits": ITEMSIZE[main] * 8,
        "qschemes": sorted({str(t.quantization["qscheme"]) for t in quantized if t.quantization}),
        "quantized_tensors": len(quantized),
    }
