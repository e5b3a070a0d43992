"""GGUF (llama.cpp) and its legacy predecessors GGML, GGMF and GGJT."""

from __future__ import annotations

import struct
from math import prod
from pathlib import Path
from typing import Any

from ..dtypes import from_ggml_type, lookup, nbytes
from ..errors import FormatError, UnsupportedError
from ..model import CERTAIN, STRONG, Detection, Identification, ModelInfo, TensorInfo
from ..probe import FileProbe
from ..source import OpenedSource, open_source, read_exact

# Legacy magics are uint32 little-endian words: 'ggml' is stored as b"lmgg", and so on.
_LEGACY = {b"lmgg": "GGML", b"fmgg": "GGMF", b"tjgg": "GGJT", b"algg": "GGLA"}


def detect_file(probe: FileProbe) -> Detection | None:
    head = probe.head
    if head[:4] == b"GGUF" and len(head) >= 24:
        version_le = struct.unpack_from("<I", head, 4)[0]
        version_be = struct.unpack_from(">I", head, 4)[0]
        if 1 <= version_le <= 3:
            version, endian = version_le, "little"
        elif 1 <= version_be <= 3:
            version, endian = version_be, "big"
        else:
            return Detection(
                "gguf",
                STRONG,
                ["magic 'GGUF'"],
                {"version": version_le},
                [f"unknown GGUF version {version_le}"],
            )
        fmt = "<" if endian == "little" else ">"
        if version == 1:
            n_tensors, n_kv = struct.unpack_from(fmt + "II", head, 8)
        else:
            n_tensors, n_kv = struct.unpack_from(fmt + "QQ", head, 8)
        details = {
            "version": version,
            "endianness": endian,
            "tensor_count": n_tensors,
            "metadata_kv_count": n_kv,
        }
        warnings = []
        if n_tensors > 10_000_000 or n_kv > 10_000_000:
            warnings.append(f"implausible counts ({n_tensors} tensors, {n_kv} keys): corrupt header")
        return Detection(
            "gguf", CERTAIN, [f"magic 'GGUF', version {version} ({endian}-endian)"], details, warnings
        )
    legacy = _LEGACY.get(head[:4])
    if legacy and len(head) >= 8:
        details: dict[str, object] = {"variant": legacy, "legacy": True}
        evidence = [f"legacy magic '{legacy.lower()}' (pre-GGUF llama.cpp/ggml container)"]
        if legacy != "GGML":
            details["version"] = struct.unpack_from("<I", head, 4)[0]
            evidence[0] += f", version {details['version']}"
        return Detection(
            "gguf",
            STRONG,
            evidence,
            details,
            [f"legacy {legacy} file: current llama.cpp only loads GGUF; convert it first"],
        )
    return None


# --- inspect --------------------------------------------------------------------------------------

# GGUF metadata value types.
SCALAR_FORMATS = {  # value type → struct format (little-endian), shared with convert's key copy
    0: "<B",
    1: "<b",
    2: "<H",
    3: "<h",
    4: "<I",
    5: "<i",
    6: "<f",
    7: "<?",
    10: "<Q",
    11: "<q",
    12: "<d",
}
_STRING, _ARRAY = 8, 9
_TYPE_NAMES = {
    0: "u8",
    1: "i8",
    2: "u16",
    3: "i16",
    4: "u32",
    5: "i32",
    6: "f32",
    7: "bool",
    8: "string",
    9: "array",
    10: "u64",
    11: "i64",
    12: "f64",
}
MAX_STRING = 64 * 1024 * 1024
MAX_DIMS = 8
ARRAY_PREVIEW = 8
# general.file_type values (llama.cpp's LLAMA_FTYPE_*), for the quantization summary.
FILE_TYPES = {
    0: "ALL_F32",
    1: "MOSTLY_F16",
    2: "MOSTLY_Q4_0",
    3: "MOSTLY_Q4_1",
    7: "MOSTLY_Q8_0",
    8: "MOSTLY_Q5_0",
    9: "MOSTLY_Q5_1",
    10: "MOSTLY_Q2_K",
    11: "MOSTLY_Q3_K_S",
    12: "MOSTLY_Q3_K_M",
    13: "MOSTLY_Q3_K_L",
    14: "MOSTLY_Q4_K_S",
    15: "MOSTLY_Q4_K_M",
    16: "MOSTLY_Q5_K_S",
    17: "MOSTLY_Q5_K_M",
    18: "MOSTLY_Q6_K",
    19: "MOSTLY_IQ2_XXS",
    20: "MOSTLY_IQ2_XS",
    21: "MOSTLY_Q2_K_S",
    22: "MOSTLY_IQ3_XS",
    23: "MOSTLY_IQ3_XXS",
    24: "MOSTLY_IQ1_S",
    25: "MOSTLY_IQ4_NL",
    26: "MOSTLY_IQ3_S",
    27: "MOSTLY_IQ3_M",
    28: "MOSTLY_IQ2_S",
    29: "MOSTLY_IQ2_M",
    30: "MOSTLY_IQ4_XS",
    31: "MOSTLY_IQ1_M",
    32: "MOSTLY_BF16",
    36: "MOSTLY_TQ1_0",
    37: "MOSTLY_TQ2_0",
    38: "MOSTLY_MXFP4_MOE",
}


class _Reader:
    """Sequential little/big-endian reads through a byte source, in buffered chunks."""

    CHUNK = 1 << 20

    def __init__(self, source: OpenedSource, offset: int, endian: str) -> None:
        self.source = source
        self.pos = offset
        self.endian = endian
        self._buf = b""
        self._buf_start = offset

    def read(self, n: int, what: str) -> bytes:
        end = self.pos + n
        if end > self.source.size:
            raise FormatError(
                f"GGUF {what} at offset {self.pos} runs past the end of the file", self.source.name
            )
        rel = self.pos - self._buf_start
        if rel < 0 or rel + n > len(self._buf):
            self._buf_start = self.pos
            self._buf = self.source.read_at(self.pos, max(n, self.CHUNK))
            rel = 0
        self.pos = end
        return self._buf[rel : rel + n]

    def scalar(self, fmt: str, what: str) -> Any:
        fmt = (">" if self.endian == "big" else "<") + fmt[1:]
        return struct.unpack(fmt, self.read(struct.calcsize(fmt), what))[0]

    def count(self, version: int, what: str) -> int:
        return self.scalar("<I" if version == 1 else "<Q", what)

    def string(self, version: int, what: str) -> str:
        n = self.count(version, what + " length")
        if n > MAX_STRING:
            raise FormatError(f"GGUF {what} claims a {n}-byte string", self.source.name)
        return self.read(n, what).decode("utf-8", "replace")


def _value(reader: _Reader, vtype: int, version: int, key: str) -> Any:
    if vtype in SCALAR_FORMATS:
        return reader.scalar(SCALAR_FORMATS[vtype], key)
    if vtype == _STRING:
        return reader.string(version, key)
    if vtype == _ARRAY:
        item_type = reader.scalar("<I", key + " item type")
        n = reader.count(version, key + " length")
        if item_type == _ARRAY:
            raise FormatError(f"GGUF key {key!r} nests arrays", reader.source.name)
        if item_type in SCALAR_FORMATS:
            size = struct.calcsize(SCALAR_FORMATS[item_type])
            if n * size > reader.source.size:
                raise FormatError(
                    f"GGUF key {key!r} claims {n} items, more than the file holds", reader.source.name
                )
            preview = [reader.scalar(SCALAR_FORMATS[item_type], key) for _ in range(min(n, ARRAY_PREVIEW))]
            reader.read((n - len(preview)) * size, key)
        elif item_type == _STRING:
            if n > reader.source.size // 8:
                raise FormatError(
                    f"GGUF key {key!r} claims {n} strings, more than the file holds", reader.source.name
                )
            preview = []
            for i in range(n):
                text = reader.string(version, key)
                if i < ARRAY_PREVIEW:
                    preview.append(text)
        else:
            raise FormatError(f"GGUF key {key!r} has unknown array item type {item_type}", reader.source.name)
        # Arrays (token lists, merges, scores) are summarised, never dumped.
        return {"type": f"array[{_TYPE_NAMES.get(item_type, item_type)}]", "length": n, "head": preview}
    raise FormatError(f"GGUF key {key!r} has unknown value type {vtype}", reader.source.name)


def read_gguf(path: Path) -> tuple[dict[str, Any], list[TensorInfo], dict[str, Any], list[str]]:
    """(metadata, tensors, header facts, warnings) of a GGUF file, reading only its header."""
    with open_source(path) as source:
        head = read_exact(source, 0, 24, "GGUF header")
        if head[:4] != b"GGUF":
            raise FormatError("not a GGUF file (legacy GGML/GGJT files are not inspected)", path)
        version = struct.unpack_from("<I", head, 4)[0]
        endian = "little"
        if not 1 <= version <= 3:
            version, endian = struct.unpack_from(">I", head, 4)[0], "big"
            if not 1 <= version <= 3:
                raise FormatError(f"unknown GGUF version {struct.unpack_from('<I', head, 4)[0]}", path)
        reader = _Reader(source, 8, endian)
        n_tensors = reader.count(version, "tensor count")
        n_kv = reader.count(version, "key count")
        if n_tensors > source.size // 24 or n_kv > source.size // 12:
            raise FormatError(
                f"GGUF header claims {n_tensors} tensors and {n_kv} keys: more than the file holds", path
            )
        metadata: dict[str, Any] = {}
        for _ in range(n_kv):
            key = reader.string(version, "key")
            vtype = reader.scalar("<I", f"type of {key}")
            metadata[key] = _value(reader, vtype, version, key)
        infos = []
        for _ in range(n_tensors):
            name = reader.string(version, "tensor name")
            n_dims = reader.scalar("<I", f"dims of {name}")
            if n_dims > MAX_DIMS:
                raise FormatError(f"GGUF tensor {name!r} claims {n_dims} dimensions", path)
            dims = [reader.count(version, f"shape of {name}") for _ in range(n_dims)]
            ggml_type = reader.scalar("<I", f"type of {name}")
            offset = reader.scalar("<Q", f"offset of {name}")
            infos.append((name, dims, ggml_type, offset))
        alignment = metadata.get("general.alignment", 32)
        if not isinstance(alignment, int) or alignment <= 0 or alignment & (alignment - 1):
            raise FormatError(f"GGUF general.alignment {alignment!r} is not a power of two", path)
        data_start = -(-reader.pos // alignment) * alignment
        size = source.size
    tensors: list[TensorInfo] = []
    warnings: list[str] = []
    for name, dims, ggml_type, offset in infos:
        try:
            dtype = from_ggml_type(ggml_type)
        except KeyError:
            warnings.append(f"tensor {name!r} has unknown ggml type {ggml_type}")
            continue
        shape = tuple(reversed(dims))  # ggml lists the fastest-moving dimension first
        numel = prod(shape)
        try:
            size_bytes = nbytes(dtype, numel)
        except ValueError:
            warnings.append(f"tensor {name!r}: {numel} elements do not fill whole {dtype.name} blocks")
            size_bytes = 0
        if data_start + offset + size_bytes > size:
            warnings.append(f"tensor {name!r} data runs past the end of the file (truncated download?)")
        tensors.append(TensorInfo(name, dtype.name, shape, size_bytes, str(path), data_start + offset))
    facts = {"version": version, "endianness": endian, "alignment": alignment, "data_offset": data_start}
    return metadata, tensors, facts, warnings


def _architecture(metadata: dict[str, Any]) -> dict[str, Any]:
    arch = metadata.get("general.architecture")
    if not isinstance(arch, str):
        return {}
    keys = {
        "layers": "block_count",
        "hidden_size": "embedding_length",
        "intermediate_size": "feed_forward_length",
        "heads": "attention.head_count",
        "kv_heads": "attention.head_count_kv",
        "context_length": "context_length",
        "experts": "expert_count",
        "experts_per_token": "expert_used_count",
        "sliding_window": "attention.sliding_window",
        "head_dim": "attention.key_length",
    }
    hints: dict[str, Any] = {"model_type": arch, "source": "gguf"}
    for name, key in keys.items():
        value = metadata.get(f"{arch}.{key}")
        if isinstance(value, (int, float)):
            hints[name] = value
    tokens = metadata.get("tokenizer.ggml.tokens")
    if isinstance(tokens, dict):
        hints["vocab_size"] = tokens["length"]
    elif isinstance(metadata.get(f"{arch}.vocab_size"), int):
        hints["vocab_size"] = metadata[f"{arch}.vocab_size"]
    return hints


def inspect_file(path: Path, ident: Identification) -> ModelInfo:
    if ident.details.get("legacy"):
        raise UnsupportedError(
            f"legacy {ident.details.get('variant')} file: convert it to GGUF first (llama.cpp scripts)",
            path,
        )
    metadata, tensors, facts, warnings = read_gguf(path)
    info = ModelInfo(
        str(path),
        "gguf",
        files=[{"path": str(path), "size_bytes": path.stat().st_size}],
        tensors=tensors,
        metadata={"gguf": facts, **metadata},
        warnings=warnings,
    )
    info.architecture = _architecture(metadata)
    by_type = info.parameters_by_dtype
    quant_types = {name: n for name, n in by_type.items() if lookup(name).is_quantized}
    if quant_types:
        dominant = lookup(next(iter(quant_types)))
        file_type = metadata.get("general.file_type")
        info.quantization = {
            "method": "gguf",
            "file_type": FILE_TYPES.get(file_type, file_type) if file_type is not None else None,
            "bits": dominant.bits,
            "bits_per_weight": round(8 * info.total_bytes / max(info.parameter_count, 1), 3),
            "group_size": dominant.block_size,
            "types": by_type,
            "quantized_tensors": sum(1 for t in tensors if lookup(t.dtype).is_quantized),
            "logical_parameter_count": info.parameter_count,
        }
    return info


INSPECTS = {"gguf": inspect_file}
