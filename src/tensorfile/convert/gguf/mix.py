"""llama-quantize's per-tensor type choice, ported rule for rule.

Source: src/llama-quant.cpp of the llama.cpp vendored in llama-cpp-python 0.3.36 (commit 0c1e570):
`tensor_allows_quantization`, `llama_tensor_get_type` / `llama_tensor_get_type_impl`,
`tensor_type_fallback`, `llama_ftype_get_default_type`, `init_quantize_state_counters` and the
imatrix check of `llama_model_quantize_impl`, for llama-quantize's default options (no
--pure, --tensor-type, --output-tensor-type, --token-embedding-type, --leave-output-tensor,
--prune-layers; COPY is not a target here). tests/test_gguf_mix.py checks every decision
against the real binary.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass

import gguf

__all__ = ["QUANTS", "TensorSpec", "choose_types", "file_type", "quantize_order"]


@dataclass(frozen=True)
class TensorSpec:
    name: str  # GGUF tensor name, e.g. "blk.0.attn_v.weight"
    shape: tuple[int, ...]  # numpy order (row length LAST), as gguf-py's writer takes it


# llama-quantize's names → (llama_ftype, the type of llama_ftype_get_default_type)
_FTYPES: dict[str, tuple[int, str]] = {
    "F32": (0, "F32"), "F16": (1, "F16"), "BF16": (32, "BF16"),
    "Q4_0": (2, "Q4_0"), "Q4_1": (3, "Q4_1"), "Q8_0": (7, "Q8_0"), "Q5_0": (8, "Q5_0"), "Q5_1": (9, "Q5_1"),
    "Q2_K": (10, "Q2_K"), "Q2_K_S": (21, "Q2_K"),
    "Q3_K_S": (11, "Q3_K"), "Q3_K_M": (12, "Q3_K"), "Q3_K_L": (13, "Q3_K"),
    "Q4_K_S": (14, "Q4_K"), "Q4_K_M": (15, "Q4_K"), "Q5_K_S": (16, "Q5_K"), "Q5_K_M": (17, "Q5_K"),
    "Q6_K": (18, "Q6_K"),
    "IQ2_XXS": (19, "IQ2_XXS"), "IQ2_XS": (20, "IQ2_XS"), "IQ2_S": (28, "IQ2_XS"), "IQ2_M": (29, "IQ2_S"),
    "IQ3_XS": (22, "IQ3_S"), "IQ3_XXS": (23, "IQ3_XXS"), "IQ3_S": (26, "IQ3_S"), "IQ3_M": (27, "IQ3_S"),
    "IQ1_S": (24, "IQ1_S"), "IQ1_M": (31, "IQ1_M"), "IQ4_NL": (25, "IQ4_NL"), "IQ4_XS": (30, "IQ4_XS"),
    "TQ1_0": (36, "TQ1_0"), "TQ2_0": (37, "TQ2_0"), "MXFP4_MOE": (38, "MXFP4"), "Q1_0": (40, "Q1_0"),
}  # fmt: skip
_ALIASES = {"Q3_K": "Q3_K_M", "Q4_K": "Q4_K_M", "Q5_K": "Q5_K_M"}  # llama-quantize's own aliases
QUANTS = tuple(_FTYPES)
_FLOAT = frozenset({"F32", "F16", "BF16"})  # ggml_is_quantized is false: no mix, no fallback

# the ftype groups the rules test, named after llama-quant.cpp's conditions
_IQ_LOW = frozenset({"IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ2_S", "IQ2_M", "IQ1_M"})
_IQ_OUTPUT_Q5K = _IQ_LOW | {"IQ3_XXS"}
_IQ2SM = frozenset({"IQ2_S", "IQ2_M"})
_MOE8_ATTN_OUT_Q5K = frozenset({
    "Q2_K", "IQ3_XS", "IQ3_XXS", "Q3_K_S", "Q3_K_M", "IQ4_NL", "Q4_K_S", "Q4_K_M", "IQ3_S", "IQ3_M", "IQ4_XS"
})  # fmt: skip
# token_embd's own rule (when not tied to the output)
_TOKEN_EMBD = {
    **dict.fromkeys(("IQ2_XXS", "IQ2_XS", "IQ1_S", "IQ1_M"), "Q2_K"),
    **dict.fromkeys(("IQ2_S", "IQ2_M", "IQ3_XXS"), "IQ3_S"),
    **dict.fromkeys(("TQ1_0", "TQ2_0", "Q2_0"), "Q4_K"),
}
# tensor_type_fallback's table: a smaller block of about the same bits
_FALLBACK = {
    **dict.fromkeys(("IQ1_S", "IQ1_M", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ3_XXS", "IQ3_S", "IQ4_XS"), "IQ4_NL"),
    **dict.fromkeys(("Q2_0", "Q2_K", "Q3_K", "TQ1_0", "TQ2_0"), "Q4_0"),
    "Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0",
}  # fmt: skip
_NEEDS_IMATRIX = frozenset({"IQ3_XXS", "IQ2_XXS", "IQ2_XS", "IQ2_S", "IQ1_M", "IQ1_S"})

# tensor_allows_quantization: substrings that keep a tensor as stored (it also needs >= 2 dims
# and a name ending in "weight")
_KEEP = (
    "_norm.weight", "ffn_gate_inp.weight", "ffn_gate_tid2eid.weight", "altup", "laurel",
    "per_layer_model_proj", "ssm_conv1d", "shortconv.conv.weight", "indexer.k_proj.weight",
    "indexer.q_proj.weight", "attn_rel_b.weight", ".position_embd", "sam.pos_embd", "sam.neck.",
    "sam.net_", ".rel_pos", ".patch_embd", ".patch_merger", "a.rvq.codebook", "mm.a.code_embd",
    *(f"time_mix_{s}.weight" for s in (
        "first", "w0", "w1", "w2", "v0", "v1", "v2", "a0", "a1", "a2", "g1", "g2", "decay_w1", "decay_w2",
        "lerp_fused")),
)  # fmt: skip
_KEEP_GLM5_NEXT = (
    "hc_", "indexer.attn_q_b", "indexer.attn_k", "indexer.proj", "indexer_compressor_gate",
    "indexer_compressor_ape", "ssm_f_a.weight", "ssm_f_b.weight", "ssm_g_a.weight", "ssm_g_b.weight",
    "ssm_beta.weight", "attn_kv_a_mqa.weight", "attn_k_b.weight", "attn_v_b.weight",
)  # fmt: skip
# block sizes; Q2_0 has no gguf-py entry but the fallback names it
_BLOCK = {t.name: size[0] for t, size in gguf.GGML_QUANT_SIZES.items()} | {"Q2_0": 64}
_BLK = re.compile(r"blk\.\s*([+-]?\d+)")  # sscanf(name, "blk.%d.", &i): the trailing "." is not checked


def _layer(name: str) -> int | None:
    match = _BLK.match(name)
    return int(match.group(1)) if match else None


def quantize_order(names: Sequence[str]) -> list[str]:
    """llama-quantize's tensor order: llama_model_loader's weights_map is a std::map sorted by the
    block number ("blk.N.", -1 for the rest), then by the name's bytes."""

    def key(name: str) -> tuple[int, bytes]:
        layer = _layer(name)
        return (-1 if layer is None else layer, name.encode())

    return sorted(names, key=key)


def _normalise(quant: str) -> str:
    key = quant.upper()
    key = _ALIASES.get(key, key)
    if key not in _FTYPES:
        raise ValueError(f"unknown llama-quantize type {quant!r}; use one of {', '.join(QUANTS)}")
    return key


def file_type(quant: str) -> int:
    """The general.file_type llama-quantize writes: the llama_ftype of the target (gguf.LlamaFileType)."""
    return _FTYPES[_normalise(quant)][0]


def _category(name: str) -> str:
    """tensor_get_category: the first matching rule wins (substring tests, like the C++)."""
    if name == "output.weight":
        return "output"
    if name in ("token_embd.weight", "per_layer_token_embd.weight"):
        return "token_embd"
    for part, cat in (
        ("attn_qkv.weight", "attn_qkv"), ("attn_kv_b.weight", "attn_kv_b"), ("attn_v.weight", "attn_v"),
        ("attn_k.weight", "attn_k"), ("attn_q.weight", "attn_q"), ("attn_output.weight", "attn_output"),
        ("ffn_up", "ffn_up"), ("ffn_gate", "ffn_gate"), ("ffn_down", "ffn_down"),
    ):  # fmt: skip
        if part in name:
            return cat
    return "other"


_ATTN_V_LIKE = frozenset({"attn_v", "attn_qkv", "attn_kv_b"})  # category_is_attn_v


def _allows_quantization(arch: str, name: str, shape: tuple[int, ...]) -> bool:
    # ggml_n_dims ignores trailing size-1 dimensions of ne, i.e. leading ones of the numpy shape
    n_dims = next((len(shape) - i for i, n in enumerate(shape) if n > 1), 1)
    # name.rfind("weight") == name.size() - 6: also true for 5-character names (npos == size_t(-1))
    if n_dims < 2 or not (name.endswith("weight") or len(name) == 5):
        return False
    if name in ("position_embd.weight", "token_types.weight"):  # BERT's, by LLM_TN for every arch
        return False
    keep = _KEEP + _KEEP_GLM5_NEXT if arch == "glm5-next" else _KEEP
    return not any(part in name for part in keep)


def _use_more_bits(i_layer: int, n_layers: int) -> bool:
    return i_layer < n_layers // 8 or i_layer >= 7 * n_layers // 8 or (i_layer - n_layers // 8) % 3 == 2


@dataclass
class _State:
    """quantize_state_impl plus the hparams the rules read."""

    arch: str
    n_layer: int  # n_ffn_down = n_ffn_gate = n_ffn_up = hparams.n_layer_all, not a tensor count
    n_expert: int
    n_gqa: int
    is_70b: bool
    tied: bool  # no tensor named output.weight: token_embd gets the output's rule
    has_imatrix: bool
    n_attention_wv: int = 0
    i_attention_wv: int = 0
    i_ffn_down: int = 0
    i_ffn_gate: int = 0
    i_ffn_up: int = 0

    def layer_info(self, counter: int, name: str) -> tuple[int, int]:
        # with experts the counter is not a layer index (Mixtral's experts are not consecutive)
        if max(1, self.n_expert) > 1:
            layer = _layer(name)
            if layer is None:
                raise ValueError(f"Failed to determine layer for tensor {name}")
            if not 0 <= layer < self.n_layer:
                raise ValueError(f"Bad layer {layer} for tensor {name}. Must be in [0, {self.n_layer})")
            return layer, self.n_layer
        return counter, self.n_layer


def _mix(qs: _State, new: str, name: str, shape: tuple[int, ...], ft: str, cat: str) -> str:
    """llama_tensor_get_type_impl: the ftype's mixture, by category, layer and arch."""
    arch, n_expert, gqa4 = qs.arch, qs.n_expert, qs.n_gqa >= 4
    falcon = arch == "falcon"
    if arch == "glm5-next" and any(p in name for p in ("attn_q_a", "attn_q_b", "nextn.eh_proj")):
        return "Q8_0"  # new is always a quantized type here
    if cat == "output" or (qs.tied and cat == "token_embd"):
        if ft == "MXFP4_MOE" or falcon or shape[-1] % _BLOCK[new] != 0:
            return "Q8_0"
        if ft in _IQ_OUTPUT_Q5K:
            return "Q5_K"
        return new if new == "Q8_0" else "Q6_K"
    if ft == "MXFP4_MOE":
        expert_role = cat in ("ffn_up", "ffn_gate", "ffn_down")
        n_mat = shape[-3] if len(shape) >= 3 else 1
        return "MXFP4" if n_mat > 1 and (arch != "bailingmoe3" or expert_role) else "Q8_0"
    if cat == "token_embd":
        return _TOKEN_EMBD.get(ft, new)
    if ft in _IQ_LOW:
        if cat in _ATTN_V_LIKE:
            new = "Q4_K" if gqa4 or n_expert >= 4 else ("IQ3_S" if ft in _IQ2SM else "Q2_K")
            qs.i_attention_wv += 1
        elif n_expert == 8 and cat == "attn_k":
            new = "Q4_K"
        elif cat == "ffn_down":
            if qs.i_ffn_down < qs.n_layer // 8:
                new = "IQ3_S" if ft in _IQ2SM else "Q2_K"
            qs.i_ffn_down += 1
        elif cat == "attn_output":
            if n_expert == 8:
                new = "Q5_K"
            elif ft in ("IQ1_S", "IQ1_M"):
                new = "IQ2_XXS"
            elif ft in _IQ2SM:
                new = "IQ3_S"
        return new
    if cat in _ATTN_V_LIKE:  # attn_qkv lands here too: the C++ attn_qkv branch further down is dead
        i, n = qs.i_attention_wv, qs.n_attention_wv
        if ft == "Q2_K":
            new = "Q4_K" if gqa4 else "Q3_K"
        elif ft == "Q2_K_S" and gqa4:
            new = "Q4_K"
        elif ft == "IQ3_XXS":
            new = "Q4_K" if gqa4 else ("IQ3_XXS" if qs.has_imatrix else "IQ3_S")
        elif (ft in ("IQ3_XS", "IQ3_S") and gqa4) or ft == "IQ3_M":
            new = "Q4_K"
        elif ft == "Q3_K_M":
            new = "Q5_K" if i < 2 else "Q4_K"
        elif ft == "Q3_K_L" or (ft in ("IQ4_NL", "IQ4_XS") and gqa4):
            new = "Q5_K"
        elif ft in ("Q4_K_M", "Q5_K_M") and _use_more_bits(i, n):
            new = "Q6_K"
        elif ft == "Q4_K_S" and i < 4:
            new = "Q5_K"
        if qs.is_70b and new in ("Q3_K", "Q4_K"):  # 8 heads share attn_v: more bits are cheap
            new = "Q5_K"
        if n_expert == 8:
            new = "Q8_0"
        qs.i_attention_wv += 1
        return new
    if cat in ("attn_k", "attn_q"):
        if cat == "attn_k" and n_expert == 8:
            return "Q8_0"
        return {"IQ3_XS": "IQ3_XXS", "IQ3_XXS": "IQ2_S"}.get(ft, new)
    if cat == "ffn_down":
        i, n = qs.layer_info(qs.i_ffn_down, name)
        more = _use_more_bits(i, n)
        if ft == "Q2_K":
            new = "Q3_K"
        elif ft == "Q2_K_S":
            new = "Q4_K" if i < n // 8 else new
        elif ft == "IQ3_XXS" and not qs.has_imatrix:
            new = "Q4_K" if i < n // 8 else "Q3_K"
        elif ft == "Q3_K_M":
            new = "Q5_K" if i < n // 16 else ("Q4_K" if not falcon or more else "Q3_K")
        elif ft == "IQ3_M" and (i < n // 8 or (n_expert == 8 and more)):
            new = "Q4_K"
        elif ft == "Q3_K_L":
            new = "Q4_K" if falcon else "Q5_K"
        elif ft == "Q4_K_M":
            if falcon:
                new = "Q6_K" if i < n // 16 else ("Q5_K" if more else "Q4_K")
            elif more:
                new = "Q6_K"
        elif i < n // 8 and ft in ("IQ4_NL", "IQ4_XS") and not qs.has_imatrix:
            new = "Q5_K"
        elif ft == "Q5_K_M" and more:
            new = "Q6_K"
        elif ft == "Q4_K_S" and not falcon and i < n // 8:
            new = "Q5_K"
        elif ft in ("Q4_0", "Q5_0") and qs.has_imatrix and i < n // 8:
            new = "Q4_1" if ft == "Q4_0" else "Q5_1"  # only with an imatrix, so old mixes stay reproducible
        qs.i_ffn_down += 1
        return new
    if cat == "attn_output":
        if falcon:
            return "Q4_K" if ft == "Q3_K_L" else new
        if n_expert == 8:
            return "Q5_K" if ft in _MOE8_ATTN_OUT_Q5K else new
        table = {"Q2_K": "Q3_K", "IQ3_XXS": "IQ3_S", "Q3_K_M": "Q4_K", "Q3_K_L": "Q5_K", "IQ3_M": "Q4_K"}
        return table.get(ft, new)
    if cat in ("ffn_gate", "ffn_up"):
        counter = "i_ffn_gate" if cat == "ffn_gate" else "i_ffn_up"
        i, n = qs.layer_info(getattr(qs, counter), name)
        if ft == "IQ3_XS" and n // 8 <= i < 7 * n // 8:
            new = "IQ3_XXS"
        setattr(qs, counter, getattr(qs, counter) + 1)
    return new


def _fallback(new: str, ncols: int) -> str:
    """tensor_type_fallback: a row length the type's block does not divide gets a smaller block."""
    if ncols % _BLOCK[new] == 0:
        return new
    out = _FALLBACK.get(new, new)
    if out == new and _BLOCK[new] > 32:  # a 32-block type stays, and the check below makes it F16
        raise ValueError(f"no tensor type fallback is defined for type {new}")
    return out if ncols % _BLOCK[out] == 0 else "F16"  # "must use F16 due to unusual shape"


def _is_70b(arch: str, n_layer: int, n_expert: int, n_head: int, n_head_kv: int) -> bool:
    """LLM_TYPE_70B, the only llm_type the rules read, as the arch's load_arch_hparams sets it."""
    if arch in ("llama", "llama-embed"):
        return n_expert != 8 and n_layer == 80 and n_head != n_head_kv
    return n_layer == {"qwen2": 80, "deci": 80, "olmo": 80, "jais2": 68}.get(arch, -1)


def _first(value: int | Sequence[int] | None) -> int | None:
    # per-layer arrays (head_count as an array): llama.cpp's n_gqa() reads layer 0
    value = (value[0] if len(value) else None) if isinstance(value, Sequence) else value
    return None if value is None else int(value)


def choose_types(
    arch: str,
    specs: list[TensorSpec],
    quant: str,
    *,
    n_layer: int,
    n_expert: int = 0,
    n_head: int | None = None,
    n_head_kv: int | None = None,
    source_types: dict[str, str] | None = None,
    has_imatrix: bool = False,
) -> dict[str, str]:
    """For each tensor name, the ggml type name ("F32", "F16", "BF16", "Q8_0", "Q4_K", "Q6_K", …)
    llama-quantize gives it, given the tensors and their source types (default F32).

    `specs` may come in any order, e.g. the input file's: llama-quantize processes tensors in its
    loader's sorted order (`quantize_order`), whatever the file's, and its counters (attn_v,
    ffn_down/gate/up) advance in that order, so this sorts them the same way first.
    Tensors it does not quantize (fewer than 2 dims, norms, biases, expert routers, …) keep their
    source type; F32/F16/BF16 targets apply to every other tensor, with no mix and no fallback.
    `n_layer` is the block_count key; n_head/n_head_kv the attention head counts (layer 0's when
    per layer; n_head_kv defaults to n_head). `has_imatrix`: llama-quantize got --imatrix; without
    one, a mix that needs it (IQ1/IQ2/IQ3_XXS tensors, Q2_K_S) raises ValueError as it fails.
    """
    ft = _normalise(quant)
    default = _FTYPES[ft][1]
    sources = source_types or {}
    head = _first(n_head) or 0
    head_kv = _first(n_head_kv)
    head_kv = head if head_kv is None else head_kv
    by_name = {s.name: s for s in specs}
    names = quantize_order(list(by_name))
    cats = {name: _category(name) for name in names}
    qs = _State(
        arch=arch,
        n_layer=n_layer,
        n_expert=n_expert,
        n_gqa=head // head_kv if head_kv else 0,
        is_70b=_is_70b(arch, n_layer, n_expert, head, head_kv),
        tied="output" not in cats.values(),
        has_imatrix=has_imatrix,
        n_attention_wv=sum(cat in _ATTN_V_LIKE for cat in cats.values()),
    )
    out: dict[str, str] = {}
    for name in names:
        shape = tuple(by_name[name].shape)
        source = sources.get(name, "F32")
        if not _allows_quantization(arch, name, shape):
            out[name] = source
            continue
        new = default
        if default not in _FLOAT:
            new = _fallback(_mix(qs, new, name, shape, ft, cats[name]), shape[-1])
        needs = new in _NEEDS_IMATRIX or (new == "Q2_K" and ft == "Q2_K_S")
        if needs and not has_imatrix and cats[name] not in ("token_embd", "output"):
            raise ValueError(f"this quantization requires an imatrix (tensor {name}, type {new})")
        out[name] = new
    return out
