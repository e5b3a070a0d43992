"""The state one Core ML inspection shares across the spec walks, and their varint helpers."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from ...model import ModelInfo, TensorInfo
from ...protowire import LEN, VARINT, Field, MessageReader, decode_varints
from ...source import OpenedSource

MAX_DEPTH = 16  # pipelines of pipelines, branch/loop networks, nested MIL blocks


def bits_bytes(bits: int, numel: int) -> int:
    return -(-numel * bits // 8)


def int64(value: int) -> int:
    return value - (1 << 64) if value >= 1 << 63 else value


def packed_varints(reader: MessageReader, f: Field) -> list[int]:
    if f.wire_type == VARINT:
        return [f.value]
    if f.wire_type != LEN:
        return []
    return decode_varints(reader.payload(f))


@dataclass
class Blob:
    source: OpenedSource
    label: str
    seen: set[int] = field(default_factory=set)  # metadata offsets already reported


@dataclass
class Walk:
    """State shared by one inspection: the report being filled and the weight files opened."""

    info: ModelInfo
    label: str  # the spec file, as tensors name it
    model_dir: Path  # what @model_path means
    package: Path | None  # the .mlpackage root, for file labels
    layer_types: Counter[str] = field(default_factory=Counter)
    op_types: Counter[str] = field(default_factory=Counter)
    quantized: Counter[tuple[str, int]] = field(default_factory=Counter)  # (method, bits) -> weights
    blobs: dict[str, Blob | None] = field(default_factory=dict)
    string_constants: int = 0
    compressed: set[int] = field(default_factory=set)  # tensors that are constexpr_* payloads
    dense_elements: int = 0  # what those payloads decompress to
    shared_blob_references: int = 0

    def warn(self, message: str) -> None:
        if message not in self.info.warnings and len(self.info.warnings) < 100:
            self.info.warnings.append(message)

    def add(self, tensor: TensorInfo) -> None:
        self.info.tensors.append(tensor)

    def close(self) -> None:
        for blob in self.blobs.values():
            if blob is not None:
                blob.source.close()
