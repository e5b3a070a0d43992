"""The GGUF file's tensors, planned from the source's headers before any byte is read.

This follows llama.cpp's two steps exactly. convert_hf_to_gguf.py: tensors in the converter's
order (shards by name, tensors by name inside each), renamed by gguf-py's TensorNameMap, Llama's
q/k rows permuted, per-expert matrices stacked, each given the converter's type (F32 for 1-D
tensors, norms, biases, routers; else the output type). llama-quantize: for a quantized target,
tensors re-ordered as its loader sorts them (non-block tensors, then block by block, by name),
each given the type its mix chooses (mix.py), quantized from the values the converter's file holds.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from math import prod
from pathlib import Path
from typing import Any

import gguf
import numpy as np

from ...errors import FormatError, UnsupportedError
from ..stream import dequantized_rows
from ..tensors import FileMaps, SourceTensor, is_ggml_quantized
from .arch import Family

ROW_CHUNK_BYTES = 16 * 1024 * 1024  # float32 rows in flight per tensor

# The converter's "always F32" tensor kinds (base.py prepare_tensors) that our families can have.
_ALWAYS_F32 = (
    gguf.MODEL_TENSOR.FFN_GATE_INP,
    gguf.MODEL_TENSOR.FFN_GATE_INP_SHEXP,
    gguf.MODEL_TENSOR.POS_EMBD,
    gguf.MODEL_TENSOR.TOKEN_TYPES,
)
_SKIPPED_SUFFIXES = (".attention.masked_bias", ".attention.bias", ".rotary_emb.inv_freq")
# TextModel.filter_tensors: the parts of multimodal checkpoints a text GGUF leaves out
_MULTIMODAL_PREFIXES = (
    "mlp",
    "vit.",
    "vpm.",
    "siglip2.",
    "conformer.",
    "merger.",
    "resampler.",
    "sound_encoder.",
    "sound_projection.",
    "speech_embeddings.",
)
_MULTIMODAL_PARTS = (
    "visual.",
    "vision.",
    "audio.",
    "talker.",
    "vision_",
    "audio_",
    "token2wav.",
    "code2wav.",
    "projector.",
    "pre_mm_projector_norm",
    "image_newline",
    "view_seperator",
    "patch_embed",
    "patch_embedding",
    "patch_merger.",
    "patch_merge_mlp.",
    "model.connector.",
)
# Qwen2MoeModel's transformers-5 layout: all experts of a layer in one tensor
_FUSED_EXPERTS = ("mlp.experts.down_proj", "mlp.experts.gate_up_proj")


@dataclass(eq=False)
class Part:
    """One source tensor feeding (a slice of) an output tensor."""

    source: SourceTensor
    row_order: np.ndarray | None = None  # output row i is source row row_order[i] (q/k permutation)
    rows: int | None = None  # only the first rows (Gemma 3's embedding cut to the vocab)
    shift: float = 0.0  # added to every value, in the converter's arithmetic (Gemma's norm + 1)

    @property
    def shape(self) -> tuple[int, ...]:
        shape = tuple(self.source.shape)
        if self.rows is not None and shape and self.rows < shape[0]:
            shape = (self.rows, *shape[1:])
        return shape


@dataclass(eq=False)
class GGUFTensor:
    """One tensor of the GGUF file: its name, numpy-order shape, type, and where its values come from."""

    name: str
    shape: tuple[int, ...]
    base_type: str  # what the converter writes: F32 / F16 / BF16 / Q8_0
    parts: list[Part] = field(default_factory=list)  # stacked along a new first axis when > 1
    values: np.ndarray | None = None  # generated tensors (rope_freqs, rope_factors_*)
    type: str = ""  # final ggml type (base_type, or the quantizer's choice)
    copy_when_kept: bool = False  # a GGUF source's tensor: copied byte for byte if its type stays

    @property
    def numel(self) -> int:
        return prod(self.shape)

    @property
    def row_length(self) -> int:
        return self.shape[-1] if self.shape else 1

    def nbytes(self) -> int:
        block, size = gguf.GGML_QUANT_SIZES[gguf.GGMLQuantizationType[self.type]]
        return self.numel // block * size


def guess_out_type(tensors: list[SourceTensor]) -> str:
    """`--outtype auto`: the first ≥2-D tensor's float type, BF16 or F16 (F16 otherwise)."""
    for t in tensors:
        if len(t.shape) < 2:
            continue
        if t.dtype == "BF16":
            return "BF16"
        if t.dtype == "F16":
            return "F16"
    return "F16"


def plan_tensors(
    family: Family, hparams: dict[str, Any], tensors: list[SourceTensor], out_type: str, n_layer: int
) -> list[GGUFTensor]:
    """The converter's output tensors, in its order, with its types."""
    name_map = gguf.get_tensor_name_map(family.arch, n_layer)
    planned = list(_rope_tensors(family, hparams))
    experts: dict[int, dict[str, SourceTensor]] = {}
    n_head = hparams.get("num_attention_heads")
    n_head_kv = hparams.get("num_key_value_heads")
    vocab_rows = _vocab_rows(hparams) if family.trim_vocab_rows else None
    for t in tensors:
        name = _filtered_name(family, t.name)
        if name is None or name.endswith(_SKIPPED_SUFFIXES):
            continue
        bid = _block_id(name)
        part = Part(t)
        if family.undo_permute and name.endswith(("q_proj.weight", "q_proj.bias")):
            part.row_order = _permuted_rows(t.shape[0], n_head, n_head)
        elif family.undo_permute and name.endswith(("k_proj.weight", "k_proj.bias")):
            part.row_order = _permuted_rows(t.shape[0], n_head, n_head_kv)
        if vocab_rows is not None and "embed_tokens.weight" in name:
            part.rows = vocab_rows
        if family.norm_shift and name.endswith("norm.weight"):
            part.shift = family.norm_shift
        if family.experts == "qwen" and name.removesuffix(".weight").endswith(_FUSED_EXPERTS):
            raise UnsupportedError(f"fused expert tensors ({name}) are not supported yet")
        if family.experts and _is_expert(family.experts, name):
            if bid is None:
                raise FormatError(f"expert tensor {name!r} outside a layer")
            layer = experts.setdefault(bid, {})
            layer[name] = t
            n_experts = hparams.get("num_local_experts") or hparams.get("num_experts")
            if not isinstance(n_experts, int):
                raise FormatError("config.json gives no expert count")
            if len(layer) >= n_experts * 3:
                planned.extend(_stack_experts(family.experts, name_map, layer, bid, n_experts, out_type))
                del experts[bid]
            continue
        planned.append(_one(name_map, name, [part], out_type, bid))
    if experts:
        left = sorted(n for layer in experts.values() for n in layer)
        raise FormatError(f"incomplete experts: {', '.join(left[:4])}…")
    return planned


def _filtered_name(family: Family, name: str) -> str | None:
    """The converter's filter_tensors chain for the family: the name it keeps, or None."""
    if family.skip_lm_head and name == "lm_head.weight":
        return None
    if family.strip_text_model:
        name = name.replace("text_model.", "")
    if name.startswith(_MULTIMODAL_PREFIXES) or any(part in name for part in _MULTIMODAL_PARTS):
        return None
    if name.endswith("e_score_correction_bias"):
        name = name.replace("e_score_correction_bias", "e_score_correction.bias")
    return name.replace("language_model.", "")


def _rope_tensors(family: Family, hparams: dict[str, Any]) -> Iterator[GGUFTensor]:
    """generate_extra_tensors: the rope tensors the converter writes before the model's own."""
    if family.rope_tensors == "llama3" and (freqs := _llama3_rope_factors(hparams)) is not None:
        yield _generated(gguf.MODEL_TENSOR.ROPE_FREQS, freqs)
    if family.rope_tensors == "longrope":
        yield from _phi3_rope_factors(hparams)


def _generated(kind: gguf.MODEL_TENSOR, values: np.ndarray) -> GGUFTensor:
    tensor = GGUFTensor(gguf.TENSOR_NAMES[kind] + ".weight", values.shape, "F32")
    tensor.values = values
    return tensor


def _phi3_rope_factors(hparams: dict[str, Any]) -> Iterator[GGUFTensor]:
    """Phi-3's long-context rope factors, as float32 (torch.tensor(list, dtype=float32) rounds
    each Python float to nearest, as numpy does)."""
    from .arch import phi3_attn_factor, phi3_rope_dims
    from .hparams import rope_parameters

    rope = rope_parameters(hparams)
    if phi3_attn_factor(hparams, rope) is None:  # also checks the type, as the converter does first
        return
    long, short = rope.get("long_factor"), rope.get("short_factor")
    if long is None or short is None:
        raise FormatError("rope_scaling needs both long_factor and short_factor")
    half = phi3_rope_dims(hparams, rope) / 2
    if len(long) != len(short) or len(long) != half:
        raise FormatError(f"rope long and short factors must have {half:g} entries each")
    yield _generated(gguf.MODEL_TENSOR.ROPE_FACTORS_LONG, np.array(long, dtype=np.float32))
    yield _generated(gguf.MODEL_TENSOR.ROPE_FACTORS_SHORT, np.array(short, dtype=np.float32))


def _vocab_rows(hparams: dict[str, Any]) -> int:
    """Gemma3Model's real vocab size (token_embd rows past it are dropped): the SentencePiece
    vocab as the converter lists it, or tokenizer.json's tokens plus added tokens."""
    folder = Path(hparams.get("_name_or_path", "."))
    if (folder / "tokenizer.model").is_file():
        if size := hparams.get("vocab_size_per_layer_input") or hparams.get("vocab_size"):
            return int(size)
        from .vocab_spm import read_pieces

        return len(read_pieces(folder / "tokenizer.model"))
    from .vocab import read_json

    doc = read_json(folder / "tokenizer.json")
    if not isinstance(doc, dict):
        raise FormatError("no tokenizer.model or tokenizer.json to size the vocab by", folder)
    return len(doc["model"]["vocab"]) + len(doc["added_tokens"])


def _one(
    name_map: gguf.TensorNameMap, hf_name: str, parts: list[Part], out_type: str, bid: int | None
) -> GGUFTensor:
    new_name = name_map.get_name(key=hf_name, try_suffixes=(".weight", ".bias"))
    if new_name is None:
        raise UnsupportedError(f"cannot map tensor {hf_name!r} to a GGUF name")
    shape = parts[0].shape if len(parts) == 1 else (len(parts), *parts[0].shape)
    return GGUFTensor(
        new_name, tuple(shape), _converter_type(name_map, new_name, len(shape), out_type, bid), parts
    )


def _converter_type(
    name_map: gguf.TensorNameMap, name: str, n_dims: int, out_type: str, bid: int | None
) -> str:
    if n_dims <= 1 or name.endswith("_norm.weight") or name[-7:] not in (".weight", ".lora_a", ".lora_b"):
        return "F32"
    for kind in _ALWAYS_F32:
        key = gguf.TENSOR_NAMES[kind]
        if "{bid}" in key:
            if bid is None:
                continue
            key = key.format(bid=bid)
        elif bid is not None:
            continue
        if name == key + ".weight":
            return "F32"
    return out_type


def _block_id(name: str) -> int | None:
    for piece in name.split("."):
        if piece.isdecimal():
            return int(piece)
    return None


def _is_expert(style: str, name: str) -> bool:
    if style == "mixtral":
        return "block_sparse_moe.experts" in name
    return "experts" in name


def _stack_experts(
    style: str,
    name_map: gguf.TensorNameMap,
    layer: dict[str, SourceTensor],
    bid: int,
    n_experts: int,
    out_type: str,
) -> Iterator[GGUFTensor]:
    if style == "mixtral":
        pattern, merged, kinds = (
            "model.layers.{bid}.block_sparse_moe.experts.{x}.{w}.weight",
            "layers.{bid}.feed_forward.experts.{w}.weight",
            ("w1", "w2", "w3"),
        )
    else:
        pattern, merged, kinds = (
            "model.layers.{bid}.mlp.experts.{x}.{w}.weight",
            "model.layers.{bid}.mlp.experts.{w}.weight",
            ("down_proj", "gate_proj", "up_proj"),
        )
    for w in kinds:
        try:
            parts = [Part(layer[pattern.format(bid=bid, x=x, w=w)]) for x in range(n_experts)]
        except KeyError as exc:
            raise FormatError(f"expert tensor {exc.args[0]!r} missing") from None
        if len({p.source.shape for p in parts}) != 1:
            raise FormatError(f"experts of layer {bid} ({w}) differ in shape")
        yield _one(name_map, merged.format(bid=bid, w=w), parts, out_type, bid)


def _permuted_rows(n_rows: int, n_head: int, n_head_kv: int | None) -> np.ndarray:
    """LlamaModel.permute applied to row indices: HF's rotary halves → llama.cpp's interleaved."""
    if n_head_kv is not None and n_head != n_head_kv:
        n_head = n_head_kv
    if n_rows % (n_head * 2):
        raise FormatError(f"{n_rows} rows do not split into {n_head} heads of rotary pairs")
    rows = np.arange(n_rows)
    return rows.reshape(n_head, 2, n_rows // n_head // 2).swapaxes(1, 2).reshape(n_rows)


def _llama3_rope_factors(hparams: dict[str, Any]) -> np.ndarray | None:
    rope = hparams.get("rope_parameters", hparams.get("rope_scaling")) or {}
    rope = rope.get("full_attention", rope)
    if str(rope.get("rope_type", rope.get("type", ""))).lower() != "llama3":
        return None
    base = rope.get("rope_theta", hparams.get("rope_theta", 10000.0))
    dim = hparams.get("head_dim") or hparams["hidden_size"] // hparams["num_attention_heads"]
    # Same float32 steps as the converter's torch code: arange / dim, base ** that, 1 / that.
    exponents = np.arange(0, dim, 2, dtype=np.float32) / np.float32(dim)
    freqs = np.float32(1.0) / (np.float32(base) ** exponents).astype(np.float32)
    factor = rope.get("factor", 8.0)
    low, high = rope.get("low_freq_factor", 1.0), rope.get("high_freq_factor", 4.0)
    old_ctx = rope.get("original_max_position_embeddings", 8192)
    f32 = np.float32
    # torch turns each Python scalar into float32 before it meets a float32 tensor; so do we.
    low_wavelen, high_wavelen = f32(old_ctx / low), f32(old_ctx / high)
    factors: list[Any] = []
    for freq in freqs:
        wavelen = f32(2 * np.pi) / freq
        if wavelen < high_wavelen:
            factors.append(1)
        elif wavelen > low_wavelen:
            factors.append(factor)
        else:
            smooth = (f32(old_ctx) / wavelen - f32(low)) / f32(high - low)
            factors.append(f32(1) / ((f32(1) - smooth) / f32(factor) + smooth))
    return np.array(factors, dtype=np.float32)


def float_rows(tensor: GGUFTensor, maps: FileMaps, max_bytes: int = ROW_CHUNK_BYTES) -> Iterator[np.ndarray]:
    """The tensor's values as float32 rows (n, row_length), in output order, a bounded chunk at a time."""
    if tensor.values is not None:
        yield tensor.values.reshape(-1, tensor.row_length).astype(np.float32)
        return
    for part in tensor.parts:
        if is_ggml_quantized(part.source.dtype):
            yield from dequantized_rows(part.source, maps, max_bytes)
            continue
        array = part.source.array(maps)
        if part.rows is not None:
            array = array[: part.rows]
        rows = array.reshape(-1, array.shape[-1]) if array.ndim > 1 else array.reshape(1, -1)
        step = max(1, max_bytes // max(1, rows.shape[1] * 4))
        for start in range(0, rows.shape[0], step):
            if part.row_order is None:
                chunk = rows[start : start + step]
            else:
                chunk = rows[part.row_order[start : start + step]]
            yield _shifted(chunk, part.shift) if part.shift else widened(chunk)
        src = part.source
        if src.file is not None and src.loader is None:
            maps.release(src.file, src.storage_offset, src.extent_nbytes())


def widened(chunk: np.ndarray) -> np.ndarray:
    """chunk as float32. bfloat16 is widened by a shift of its bits (exact, as ml_dtypes' cast, at
    several times its speed: that cast was a third of an HF folder → GGUF run)."""
    if chunk.dtype.itemsize == 2 and chunk.dtype.name == "bfloat16":
        return (chunk.view(np.uint16).astype(np.uint32) << 16).view(np.float32)
    return np.asarray(chunk, dtype=np.float32)


def exact_in_base(tensor: GGUFTensor) -> bool:
    """True when every value of the tensor is already one of its base type's values, so the
    converter's round trip through that type is the identity (up to NaN payloads, which
    write.encode still sends through it): unshifted float sources no wider than the base."""
    if tensor.values is not None or tensor.base_type not in _HOLDS:
        return False
    return all(not p.shift and p.source.dtype in _HOLDS[tensor.base_type] for p in tensor.parts)


# The source dtypes whose every value a base type holds exactly.
_HOLDS = {"F32": ("F32", "F16", "BF16"), "F16": ("F16",), "BF16": ("BF16",)}


def _shifted(chunk: np.ndarray, shift: float) -> np.ndarray:
    """chunk + shift as the converter computes it: float16 stays float16 (torch's half add rounds
    each sum to half), anything else is float32 first (bf16 → f32, then the add)."""
    if chunk.dtype == np.float16:
        return (chunk + np.float16(shift)).astype(np.float32)
    return widened(chunk) + np.float32(shift)


def quantize_order(tensors: list[GGUFTensor]) -> list[GGUFTensor]:
    """llama-quantize's order: its loader's map sorts by block number (non-block first), then name.
    Its shapes too: ggml writes ggml_n_dims dimensions, so size-1 outer dimensions (numpy's
    leading ones, e.g. Qwen2-MoE's (1, n_embd) shared-expert gate) are dropped."""

    def key(t: GGUFTensor) -> tuple[int, bytes]:
        match = re.match(r"blk\.(\d+)\.", t.name)
        return (int(match.group(1)) if match else -1, t.name.encode())

    for t in tensors:
        t.shape = _ggml_shape(t.shape)
    return sorted(tensors, key=key)


def _ggml_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    first = next((i for i, n in enumerate(shape) if n != 1), len(shape) - 1)
    return tuple(shape[max(0, first) :])
