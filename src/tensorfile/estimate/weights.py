"""Bytes the weights take in GPU memory for each `--weights` choice, side tensors included.

Quantizers do not quantize everything: bitsandbytes, GPTQ and AWQ quantize the blocks' linear
layers and keep embeddings, lm_head and norms in the 16-bit compute dtype; llama.cpp's file types
quantize every matrix but give some (output, attn_v, ffn_down) more bits. The side tensors
(scales, zeros, absmax, group indices) are counted from their real layouts.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..dtypes import lookup
from .spec import ModelSpec

PLAIN_BYTES = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "fp8": 1.0}
QUANT_METHODS = ("int8", "int4", "nf4", "nf4-dq", "fp4", "gptq", "gptq-int8", "awq")
WEIGHT_CHOICES = (*PLAIN_BYTES, *QUANT_METHODS, "gguf:<TYPE>")

# llama.cpp file types: (base type, output.weight, attn_v / ffn_down on "more bits" layers, others).
# Mirrors llama_tensor_get_type's defaults for Llama-style models (the common file types).
GGUF_FILE_TYPES: dict[str, tuple[str, str, str]] = {
    "Q2_K": ("Q2_K", "Q6_K", "Q3_K"),
    "Q3_K_S": ("Q3_K", "Q6_K", "Q3_K"),
    "Q3_K_M": ("Q3_K", "Q6_K", "Q4_K"),
    "Q3_K_L": ("Q3_K", "Q6_K", "Q5_K"),
    "Q4_0": ("Q4_0", "Q6_K", "Q4_0"),
    "Q4_1": ("Q4_1", "Q6_K", "Q4_1"),
    "Q4_K_S": ("Q4_K", "Q6_K", "Q4_K"),
    "Q4_K_M": ("Q4_K", "Q6_K", "Q6_K"),
    "Q5_0": ("Q5_0", "Q6_K", "Q5_0"),
    "Q5_K_S": ("Q5_K", "Q6_K", "Q5_K"),
    "Q5_K_M": ("Q5_K", "Q6_K", "Q6_K"),
    "Q6_K": ("Q6_K", "Q6_K", "Q6_K"),
    "Q8_0": ("Q8_0", "Q8_0", "Q8_0"),
    "F16": ("F16", "F16", "F16"),
    "BF16": ("BF16", "BF16", "BF16"),
    "F32": ("F32", "F32", "F32"),
}


@dataclass(frozen=True)
class WeightBytes:
    """GPU bytes of the weights, split the way the breakdown shows them."""

    quantized: float  # quantized matrices incl. their side tensors (0 for plain dtypes)
    plain: float  # everything held at 16/32 bits
    overhead: float  # of `quantized`: scales, zeros, absmax, group indices
    bits_per_weight: float  # average over the quantized matrices
    kept_on_host: float = 0.0  # llama.cpp keeps token embeddings in host memory
    formula: str = ""

    @property
    def total(self) -> float:
        return self.quantized + self.plain


def is_quantized(weights: str) -> bool:
    return weights in QUANT_METHODS or weights.startswith("gguf:")


def normalise(weights: str) -> str:
    w = weights.strip().lower().replace("_", "-")
    aliases = {
        "float32": "fp32",
        "f32": "fp32",
        "float16": "fp16",
        "f16": "fp16",
        "half": "fp16",
        "bfloat16": "bf16",
        "8bit": "int8",
        "int8-bnb": "int8",
        "4bit": "nf4",
        "q4": "int4",
        "nf4dq": "nf4-dq",
        "gptq-int4": "gptq",
        "gptq8": "gptq-int8",
        "awq-int4": "awq",
        "nf4-double": "nf4-dq",
        "f8": "fp8",
        "float8": "fp8",
    }
    w = aliases.get(w, w)
    if w.startswith("gguf:"):
        ftype = weights.split(":", 1)[1].strip().upper()
        if ftype not in GGUF_FILE_TYPES:
            try:
                dtype = lookup(ftype)
            except KeyError:
                raise ValueError(f"unknown GGUF type {ftype!r}") from None
            if dtype.block_size == 1 and dtype.kind != "float":
                raise ValueError(f"{ftype} is not a GGUF weight type")
            ftype = dtype.name
        return f"gguf:{ftype}"
    if w not in PLAIN_BYTES and w not in QUANT_METHODS:
        raise ValueError(f"unknown --weights {weights!r}; choose from {', '.join(WEIGHT_CHOICES)}")
    return w


def _bpw(type_name: str) -> float:
    return lookup(type_name).bits_per_weight


def _more_bits_share(layers: int) -> float:
    # llama.cpp's use_more_bits(i, n): the first and last eighth of the layers and every third between.
    chosen = sum(
        1 for i in range(layers) if i < layers // 8 or i >= 7 * layers // 8 or (i - layers // 8) % 3 == 2
    )
    return chosen / max(1, layers)


def weight_bytes(spec: ModelSpec, weights: str, compute_bytes: float = 2.0) -> WeightBytes:
    """GPU bytes of all stored parameters held as `weights` (normalised name)."""
    total = spec.total_params
    if weights in PLAIN_BYTES:
        b = PLAIN_BYTES[weights]
        return WeightBytes(0.0, total * b, 0.0, b * 8, formula=f"{total:,} params × {b:g} B")
    if weights.startswith("gguf:"):
        return _gguf_bytes(spec, weights.split(":", 1)[1])
    linear = spec.linear_params
    plain = max(0, total - linear) * compute_bytes
    matrices = spec.linear_shapes()
    rows = sum(out * count for _, _, out, count in matrices)  # output rows over all matrices
    cols = sum(fan_in * count for _, fan_in, _, count in matrices)
    if weights == "int8":  # LLM.int8(): int8 weights + one fp32 scale (SCB) per output row
        data, side = linear * 1.0, rows * 4.0
        what = "int8 weights + fp32 row scales"
    elif weights in ("nf4", "fp4"):  # bnb 4-bit: packed pairs + one fp32 absmax per 64 weights
        data, side = linear * 0.5, linear / 64 * 4
        what = "4-bit packed + fp32 absmax per 64"
    elif weights == "nf4-dq":  # double quant: absmax in 8 bit, fp32 absmax-of-absmax per 256 blocks
        data, side = linear * 0.5, linear / 64 * 1 + linear / (64 * 256) * 4
        what = "4-bit packed + int8 absmax per 64 + fp32 per 16384"
    elif weights == "gptq":  # 4-bit, group 128: qweight, fp16 scales, packed 4-bit zeros, int32 g_idx
        data, side = linear * 0.5, linear / 128 * (2 + 0.5) + cols * 4
        what = "4-bit packed + fp16 scale and 4-bit zero per 128 + int32 g_idx per input row"
    elif weights == "gptq-int8":  # 8-bit GPTQ, group 128: same side tensors, 8-bit zeros
        data, side = linear * 1.0, linear / 128 * (2 + 1) + cols * 4
        what = "8-bit + fp16 scale and 8-bit zero per 128 + int32 g_idx per input row"
    else:  # awq / int4: 4-bit, group 128: qweight, fp16 scales, packed 4-bit zeros
        data, side = linear * 0.5, linear / 128 * (2 + 0.5)
        what = "4-bit packed + fp16 scale and 4-bit zero per 128"
    bits = (data + side) * 8 / linear
    formula = f"{linear:,} linear params × {bits:.3f} bits ({what})"
    formula += f" + {total - linear:,} other params × {compute_bytes:g} B"
    return WeightBytes(data + side, plain, side, bits, formula=formula)


def _gguf_bytes(spec: ModelSpec, ftype: str) -> WeightBytes:
    base, output, more = GGUF_FILE_TYPES.get(ftype, (ftype, ftype, ftype))
    share = _more_bits_share(spec.layers) if more != base else 0.0
    per_layer_v = spec.hidden_size * spec.kv_width
    down = sum(
        fan_in * out * count for name, fan_in, out, count in spec.linear_shapes() if name == "down_proj"
    )
    boosted = share * (spec.layers * per_layer_v + down)
    rest = spec.linear_params - boosted
    bytes_blocks = rest * _bpw(base) / 8 + boosted * _bpw(more) / 8
    embed = spec.embedding_params * _bpw(base) / 8
    head = spec.lm_head_params * _bpw(output) / 8 if not spec.tie_word_embeddings else 0.0
    if spec.tie_word_embeddings:  # tied: llama.cpp stores token_embd once and quantizes it like output
        embed = spec.embedding_params * _bpw(output) / 8
    plain = (spec.norm_params + spec.other_params) * 4.0  # norms stay F32
    quantized = bytes_blocks + head + embed
    bits = quantized * 8 / max(1, spec.linear_params + spec.embedding_params + spec.lm_head_params)
    formula = (
        f"llama.cpp {ftype}: blocks {base} ({_bpw(base):.2f} bpw)"
        + (f", attn_v/ffn_down on {share:.0%} of layers {more}" if share else "")
        + f", output {output}, norms F32"
    )
    # llama.cpp keeps token_embd in host memory (it is a row lookup, not a matmul) unless tied.
    host = 0.0 if spec.tie_word_embeddings else embed
    return WeightBytes(quantized, plain, 0.0, bits, kept_on_host=host, formula=formula)
