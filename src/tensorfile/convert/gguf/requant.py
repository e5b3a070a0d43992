"""GGUF → GGUF at another type, as `llama-quantize in.gguf out.gguf TYPE --allow-requantize` does.

The source's keys are copied in their order, then llama-quantize's own: quantization_version and
file_type set (gguf_set_val moves an existing key to the end), split keys removed. Tensors go in
llama-quantize's order with the types its mix chooses; a tensor whose chosen type is its stored
type is copied byte for byte, the others are read back to float32 (ggml's to_float, which
gguf-py's dequantizers equal) and quantized.
"""

from __future__ import annotations

import mmap
import struct
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf

from ...errors import FormatError, UnsupportedError
from ...formats.gguf import SCALAR_FORMATS
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
    keys = read_keys(path)
    arch = keys.get(gguf.Keys.General.ARCHITECTURE)
    if arch is None:
        raise FormatError("GGUF file has no general.architecture", path)
    arch_name = _text(arch.value)
    split = keys.get(gguf.Keys.Split.LLM_KV_SPLIT_COUNT)
    if split is not None and int(split.value) > 1:
        raise UnsupportedError("split GGUF files (…-00001-of-N.gguf) cannot be requantized yet", path)
    writer = _CopyingWriter(None, arch_name)
    kv = writer.kv_data[0]
    kv.clear()  # the constructor adds general.architecture; it is re-added in the source's order
    for key, value in keys.items():
        if key not in _SPLIT_KEYS:
            kv[key] = value

    def number(key: str) -> Any:
        found = keys.get(key.format(arch=arch_name))
        return None if found is None or isinstance(found.value, _Packed) else found.value

    hparams = {
        "arch": arch_name,
        "n_layer": number(gguf.Keys.LLM.BLOCK_COUNT) or 0,
        "n_expert": number(gguf.Keys.LLM.EXPERT_COUNT) or 0,
        "n_head": number(gguf.Keys.Attention.HEAD_COUNT),
        "n_head_kv": number(gguf.Keys.Attention.HEAD_COUNT_KV),
    }
    planned = [
        GGUFTensor(t.name, tuple(t.shape), t.dtype, [Part(t)], type=t.dtype, copy_when_kept=True)
        for t in tensors
    ]
    return writer, planned, hparams


# ---------------------------------------------------------------------------------------------
# The source's keys, copied as bytes: gguf-py's reader builds a numpy view per array item (1.9 s
# for a 32k-token vocabulary, several for 150k); the copy needs only the bytes of each value.


@dataclass(frozen=True)
class _Packed:
    """An array value as the file stores it after its type: item type, count, items."""

    data: bytes


class _CopyingWriter(gguf.GGUFWriter):
    """gguf-py's writer, writing copied array values back as the bytes they were read from."""

    def _pack_val(
        self, val: Any, vtype: gguf.GGUFValueType, add_vtype: bool, sub_type: gguf.GGUFValueType | None = None
    ) -> bytes:
        if isinstance(val, _Packed):
            return (self._pack("I", vtype) if add_vtype else b"") + val.data
        return super()._pack_val(val, vtype, add_vtype, sub_type)


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


def read_keys(path: Path) -> dict[str, gguf.GGUFValue]:
    """Every key of a little-endian GGUF v2/v3 file, in order; strings as bytes, arrays packed."""
    with path.open("rb") as f, mmap.mmap(f.fileno(), 0, access=mmap.ACCESS_READ) as m:
        size = len(m)

        def take(fmt: str, pos: int) -> tuple[Any, int]:
            n = struct.calcsize(fmt)
            if pos + n > size:
                raise FormatError("GGUF keys run past the end of the file", path)
            return struct.unpack_from(fmt, m, pos)[0], pos + n

        def string(pos: int) -> tuple[bytes, int]:
            n, pos = take("<Q", pos)
            if pos + n > size:
                raise FormatError("a GGUF string runs past the end of the file", path)
            return m[pos : pos + n], pos + n

        if m[:4] != b"GGUF":
            raise FormatError("not a GGUF file", path)
        version, _ = take("<I", 4)
        if version not in (2, 3):
            raise UnsupportedError(f"GGUF version {version} (big-endian or v1) cannot be requantized", path)
        n_kv, pos = take("<Q", 16)
        keys: dict[str, gguf.GGUFValue] = {}
        for _ in range(n_kv):
            raw_key, pos = string(pos)
            vtype_raw, pos = take("<I", pos)
            vtype = gguf.GGUFValueType(vtype_raw)
            if vtype == gguf.GGUFValueType.ARRAY:
                start = pos
                sub_raw, pos = take("<I", pos)
                sub = gguf.GGUFValueType(sub_raw)
                count, pos = take("<Q", pos)
                if sub == gguf.GGUFValueType.STRING:
                    for _ in range(count):
                        _, pos = string(pos)
                elif sub in SCALAR_FORMATS:
                    pos += count * struct.calcsize(SCALAR_FORMATS[sub])
                else:
                    raise UnsupportedError(f"GGUF key {raw_key.decode()!r}: arrays of {sub.name}", path)
                if pos > size:
                    raise FormatError("a GGUF array runs past the end of the file", path)
                keys[raw_key.decode("utf-8")] = gguf.GGUFValue(_Packed(m[start:pos]), vtype, sub)
            elif vtype == gguf.GGUFValueType.STRING:
                text, pos = string(pos)
                keys[raw_key.decode("utf-8")] = gguf.GGUFValue(text, vtype)
            else:
                value, pos = take(SCALAR_FORMATS[vtype], pos)
                keys[raw_key.decode("utf-8")] = gguf.GGUFValue(value, vtype)
        return keys
