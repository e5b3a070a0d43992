"""Decoder-only language models: parameters as transformers builds each model type.

Two shapes cover them. The Llama-style block (separate q/k/v/o projections, RMS or layer norms,
gated or plain MLP, optional MoE) is one counter with per-type switches read from the config;
the GPT-2 lineage (GPT-2, BigCode, GPT-NeoX, GPT-J, Falcon, BLOOM, OPT) has fused or biased
layouts and learned positions, one small counter each.
"""

from __future__ import annotations

from typing import Any

from .common import DECODER, Config, ParameterCount, head_kind, layer_norm, linear, unknown_head_note

# --- the Llama-style block ----------------------------------------------------------------------


def _attention(cfg: Config, hidden: int, heads: int, kv_heads: int, head_dim: int) -> int:
    t = cfg.model_type
    bias = cfg.flag("attention_bias")
    qkv_bias = o_bias = bias
    if t in ("qwen2", "qwen2_moe"):
        qkv_bias, o_bias = True, False
    elif t == "stablelm":
        qkv_bias, o_bias = cfg.flag("use_qkv_bias"), False
    elif t == "starcoder2":
        qkv_bias = o_bias = cfg.flag("use_bias", default=True)
    elif t == "phi":
        qkv_bias = o_bias = True
    q, kv = heads * head_dim, kv_heads * head_dim
    count = linear(hidden, q, qkv_bias) + 2 * linear(hidden, kv, qkv_bias) + linear(q, hidden, o_bias)
    if t in ("qwen3", "qwen3_moe", "gemma3_text"):
        count += 2 * head_dim  # q_norm, k_norm over each head
    elif t == "olmo2":
        count += q + kv  # q_norm, k_norm over the whole projection
    elif t == "cohere" and cfg.flag("use_qk_norm"):
        count += q + kv
    elif t == "phi" and cfg.flag("qk_layernorm"):
        count += 2 * layer_norm(head_dim)
    return count


def _mla_attention(cfg: Config, hidden: int, heads: int) -> int:
    """DeepSeek's multi-head latent attention: low-rank q and a shared compressed kv."""
    bias = cfg.flag("attention_bias")
    rope, nope = cfg.int("qk_rope_head_dim", default=64), cfg.int("qk_nope_head_dim", default=128)
    v_dim, kv_rank = cfg.int("v_head_dim", default=128), cfg.int("kv_lora_rank", default=512)
    q_rank = cfg.get("q_lora_rank")
    qk_dim = rope + nope
    if q_rank:
        q = linear(hidden, q_rank, bias) + q_rank + linear(q_rank, heads * qk_dim)
    else:
        q = linear(hidden, heads * qk_dim)
    kv = linear(hidden, kv_rank + rope, bias) + kv_rank + linear(kv_rank, heads * (nope + v_dim))
    return q + kv + linear(heads * v_dim, hidden, bias)


def _mlp(cfg: Config, hidden: int, width: int) -> int:
    t = cfg.model_type
    if t == "starcoder2":
        bias = cfg.flag("use_bias", default=True)
        return linear(hidden, width, bias) + linear(width, hidden, bias)
    if t == "phi":
        return linear(hidden, width, True) + linear(width, hidden, True)
    bias = cfg.flag("mlp_bias")
    return 2 * linear(hidden, width, bias) + linear(width, hidden, bias)


def _moe_layers(cfg: Config, layers: int) -> list[bool]:
    """Which layers route to experts, by the type's own rule."""
    t = cfg.model_type
    if t in ("qwen2_moe", "qwen3_moe"):
        experts = cfg.int("num_experts", default=60 if t == "qwen2_moe" else 128)
        only_dense = set(cfg.get("mlp_only_layers", default=[]) or [])
        step = cfg.int("decoder_sparse_step", default=1) or 1
        return [i not in only_dense and experts > 0 and (i + 1) % step == 0 for i in range(layers)]
    if t == "deepseek_v3":
        first_dense = cfg.int("first_k_dense_replace", default=0)
        return [i >= first_dense for i in range(layers)]
    if t == "mixtral":
        return [True] * layers
    return [False] * layers


def _moe_block(cfg: Config, hidden: int) -> tuple[int, dict[str, Any]]:
    t = cfg.model_type
    if t == "mixtral":
        experts, width = cfg.int("num_local_experts", default=8), cfg.int("intermediate_size")
        return experts * _mlp(cfg, hidden, width) + linear(hidden, experts), _moe_shapes(experts, width, 0)
    if t in ("qwen2_moe", "qwen3_moe"):
        experts = cfg.int("num_experts", default=60 if t == "qwen2_moe" else 128)
        width = cfg.int("moe_intermediate_size")
        count = experts * _mlp(cfg, hidden, width) + linear(hidden, experts)
        shared = cfg.int("shared_expert_intermediate_size", default=0) if t == "qwen2_moe" else 0
        if t == "qwen2_moe":
            count += _mlp(cfg, hidden, shared) + linear(hidden, 1)  # the shared expert and its gate
        return count, _moe_shapes(experts, width, shared)
    # DeepSeek V3: routed experts, a router, and the shared experts as one wider MLP
    experts = cfg.int("n_routed_experts")
    width = cfg.int("moe_intermediate_size")
    shared = cfg.int("n_shared_experts", default=0) * width
    count = experts * _mlp(cfg, hidden, width) + linear(hidden, experts)
    if shared:
        count += _mlp(cfg, hidden, shared)
    return count, _moe_shapes(experts, width, shared)


def _moe_shapes(experts: int, width: int, shared: int) -> dict[str, Any]:
    """The spec's MoE shapes: routed experts, their width, the shared experts' total width."""
    return {"experts": experts, "moe_intermediate_size": width, "shared_expert_intermediate_size": shared}


# norms per block: (how many, with bias); the final norm follows the block's kind
_BLOCK_NORMS = {
    "olmo": (0, False),  # OLMo's layer norms have no parameters
    "gemma2": (4, False),
    "gemma3_text": (4, False),
    "cohere": (1, False),
    "phi": (1, True),
    "starcoder2": (2, True),
}


def _block_norms(cfg: Config, hidden: int) -> tuple[int, int]:
    """(norm parameters per block, final norm parameters)."""
    t = cfg.model_type
    count, bias = _BLOCK_NORMS.get(t, (2, False))
    if t == "stablelm":
        count, bias = (1 if cfg.flag("use_parallel_residual") else 2), True
    if t == "olmo":
        return 0, 0
    return count * layer_norm(hidden, bias), layer_norm(hidden, bias)


LLAMA_STYLE = frozenset(
    {"llama", "mistral", "mixtral", "qwen2", "qwen2_moe", "qwen3", "qwen3_moe", "gemma", "gemma2"}
    | {"gemma3_text", "phi", "phi3", "granite", "olmo2", "cohere", "stablelm", "starcoder2", "deepseek_v3"}
    | {"olmo", "smollm3"}
)
_TIED_BY_DEFAULT = frozenset(("gemma", "gemma2", "gemma3_text", "cohere", "smollm3"))


def llama_style(cfg: Config) -> ParameterCount:
    t = cfg.model_type
    hidden = cfg.int("hidden_size")
    layers = cfg.int("num_hidden_layers")
    heads = cfg.int("num_attention_heads")
    kv_heads = cfg.int("num_key_value_heads", default=heads) or heads
    head_dim = cfg.int("head_dim", default=0) or hidden // heads
    vocab = cfg.int("vocab_size")
    if t == "deepseek_v3":
        attention = _mla_attention(cfg, hidden, heads)
    else:
        attention = _attention(cfg, hidden, heads, kv_heads, head_dim)
    dense_width = cfg.int("intermediate_size")
    moe = _moe_layers(cfg, layers)
    mlp = (layers - sum(moe)) * _mlp(cfg, hidden, dense_width)
    shapes: dict[str, Any] = {"layers": layers, "hidden_size": hidden, "heads": heads}
    shapes |= {"kv_heads": kv_heads, "head_dim": head_dim, "vocab_size": vocab}
    shapes["intermediate_size"] = dense_width
    if any(moe):
        per_layer, moe_shapes = _moe_block(cfg, hidden)
        mlp += sum(moe) * per_layer
        # the type's own MoE layout; for memory only how many layers stay dense matters
        shapes |= moe_shapes | {"first_dense_layers": layers - sum(moe)}
    block_norms, final_norm = _block_norms(cfg, hidden)
    parts = {
        "embeddings": vocab * hidden,
        "attention": layers * attention,
        "mlp": mlp,
        "norms": layers * block_norms + final_norm,
    }
    lm_bias = t == "phi"
    head, notes = _decoder_head(cfg, hidden, vocab, cfg.tied(t in _TIED_BY_DEFAULT), lm_bias)
    parts["head"] = head
    return ParameterCount(t, DECODER, cfg.head_class, parts, shapes, notes)


def _decoder_head(
    cfg: Config, hidden: int, vocab: int, tied: bool, lm_bias: bool = False
) -> tuple[int, tuple[str, ...]]:
    """The part on top of a decoder: an LM head (none when tied), a classifier, or nothing."""
    kind = head_kind(cfg.head_class)
    lm = (0 if tied else vocab * hidden) + (vocab if lm_bias else 0)
    if kind == "lm":
        return lm, ()
    if kind == "base":
        return 0, ()
    if kind == "classifier":
        return linear(hidden, cfg.num_labels), ()  # `score`, without a bias
    if kind == "token":
        return linear(hidden, cfg.num_labels, True), ()
    if kind == "qa":
        return linear(hidden, 2, True), ()
    return lm, unknown_head_note(cfg, "a causal LM")


# --- the GPT-2 lineage --------------------------------------------------------------------------


def _gpt2_block(hidden: int, qkv_out: int, inner: int) -> int:
    return (
        2 * layer_norm(hidden)
        + linear(hidden, qkv_out, True)
        + linear(hidden, hidden, True)
        + linear(hidden, inner, True)
        + linear(inner, hidden, True)
    )


def gpt2(cfg: Config) -> ParameterCount:
    """GPT-2 and GPT-BigCode: learned positions, fused qkv (BigCode: one shared k/v head)."""
    hidden = cfg.int("n_embd", "hidden_size")
    layers, heads = cfg.int("n_layer", "num_hidden_layers"), cfg.int("n_head", "num_attention_heads")
    inner = cfg.int("n_inner", default=0) or 4 * hidden
    qkv = 3 * hidden
    if cfg.model_type == "gpt_bigcode" and cfg.flag("multi_query", default=True):
        qkv = hidden + 2 * (hidden // heads)
    vocab, positions = cfg.int("vocab_size"), cfg.int("n_positions", "max_position_embeddings")
    parts = {
        "embeddings": vocab * hidden,
        "positions": positions * hidden,
        "blocks": layers * _gpt2_block(hidden, qkv, inner),
        "norms": layer_norm(hidden),
    }
    parts["head"], notes = _decoder_head(cfg, hidden, vocab, cfg.tied())
    kv_heads = 1 if qkv < 3 * hidden else heads
    return _gpt_count(cfg, parts, notes, layers, hidden, heads, kv_heads, vocab, inner, positions)


def _gpt_count(
    cfg: Config,
    parts: dict[str, int],
    notes: tuple[str, ...],
    layers: int,
    hidden: int,
    heads: int,
    kv_heads: int,
    vocab: int,
    inner: int,
    max_positions: int = 0,
) -> ParameterCount:
    shapes = {"layers": layers, "hidden_size": hidden, "heads": heads, "kv_heads": kv_heads}
    shapes |= {"head_dim": hidden // heads, "vocab_size": vocab, "intermediate_size": inner}
    shapes["max_positions"] = max_positions  # learned positions (GPT-2, OPT): the longest sequence
    return ParameterCount(cfg.model_type, DECODER, cfg.head_class, parts, shapes, notes)


def gpt_neo(cfg: Config) -> ParameterCount:
    """GPT-Neo: GPT-2's layout with separate q/k/v projections without biases."""
    hidden, layers, heads = cfg.int("hidden_size"), cfg.int("num_layers"), cfg.int("num_heads")
    inner = cfg.int("intermediate_size", default=0) or 4 * hidden
    vocab, positions = cfg.int("vocab_size"), cfg.int("max_position_embeddings")
    block = 2 * layer_norm(hidden) + 3 * linear(hidden, hidden) + linear(hidden, hidden, True)
    block += linear(hidden, inner, True) + linear(inner, hidden, True)
    parts = {
        "embeddings": vocab * hidden,
        "positions": positions * hidden,
        "blocks": layers * block,
        "norms": layer_norm(hidden),
    }
    parts["head"], notes = _decoder_head(cfg, hidden, vocab, cfg.tied())
    return _gpt_count(cfg, parts, notes, layers, hidden, heads, heads, vocab, inner, positions)


def mpt(cfg: Config) -> ParameterCount:
    """MPT as transformers builds it: fused qkv, a 4·d MLP and norms without biases (its
    no_bias and expansion_ratio settings are not read)."""
    hidden, layers, heads = cfg.int("d_model"), cfg.int("n_layers"), cfg.int("n_heads")
    vocab = cfg.int("vocab_size")
    block = 2 * hidden + linear(hidden, 3 * hidden) + linear(hidden, hidden)
    block += linear(hidden, 4 * hidden) + linear(4 * hidden, hidden)
    parts = {"embeddings": vocab * hidden, "blocks": layers * block, "norms": hidden}
    parts["head"], notes = _decoder_head(cfg, hidden, vocab, cfg.tied())
    return _gpt_count(cfg, parts, notes, layers, hidden, heads, heads, vocab, 4 * hidden)


def gpt_neox(cfg: Config) -> ParameterCount:
    hidden, layers = cfg.int("hidden_size"), cfg.int("num_hidden_layers")
    heads, inner, vocab = cfg.int("num_attention_heads"), cfg.int("intermediate_size"), cfg.int("vocab_size")
    bias = cfg.flag("attention_bias", default=True)
    block = 2 * layer_norm(hidden) + linear(hidden, 3 * hidden, bias) + linear(hidden, hidden, bias)
    block += linear(hidden, inner, True) + linear(inner, hidden, True)
    parts = {"embeddings": vocab * hidden, "blocks": layers * block, "norms": layer_norm(hidden)}
    parts["head"], notes = _decoder_head(cfg, hidden, vocab, cfg.tied(False))
    return _gpt_count(cfg, parts, notes, layers, hidden, heads, heads, vocab, inner)


def gptj(cfg: Config) -> ParameterCount:
    hidden, layers = cfg.int("n_embd", "hidden_size"), cfg.int("n_layer", "num_hidden_layers")
    heads, vocab = cfg.int("n_head", "num_attention_heads"), cfg.int("vocab_size")
    inner = cfg.int("n_inner", default=0) or 4 * hidden
    block = (
        layer_norm(hidden)
        + 4 * linear(hidden, hidden)
        + linear(hidden, inner, True)
        + linear(inner, hidden, True)
    )
    parts = {"embeddings": vocab * hidden, "blocks": layers * block, "norms": layer_norm(hidden)}
    parts["head"], notes = _decoder_head(cfg, hidden, vocab, cfg.tied(False), lm_bias=True)
    return _gpt_count(cfg, parts, notes, layers, hidden, heads, heads, vocab, inner)


def falcon(cfg: Config) -> ParameterCount:
    hidden, layers = cfg.int("hidden_size", "n_embed"), cfg.int("num_hidden_layers", "n_layer")
    heads, vocab = cfg.int("num_attention_heads", "n_head"), cfg.int("vocab_size")
    head_dim = hidden // heads
    bias, new_arch = cfg.flag("bias"), cfg.flag("new_decoder_architecture")
    if new_arch:
        kv_heads = cfg.int("num_kv_heads", default=heads) or heads
    else:
        kv_heads = 1 if cfg.flag("multi_query", default=True) else heads
    inner = cfg.int("ffn_hidden_size", default=0) or 4 * hidden
    block = linear(hidden, (heads + 2 * kv_heads) * head_dim, bias) + linear(hidden, hidden, bias)
    block += linear(hidden, inner, bias) + linear(inner, hidden, bias)
    if new_arch:
        norms = 2 if cfg.int("num_ln_in_parallel_attn", default=2) == 2 else 1
    else:
        norms = 1 if cfg.flag("parallel_attn", default=True) else 2
    block += norms * layer_norm(hidden)
    parts = {"embeddings": vocab * hidden, "blocks": layers * block, "norms": layer_norm(hidden)}
    parts["head"], notes = _decoder_head(cfg, hidden, vocab, cfg.tied())
    return _gpt_count(cfg, parts, notes, layers, hidden, heads, kv_heads, vocab, inner)


def bloom(cfg: Config) -> ParameterCount:
    hidden, layers = cfg.int("hidden_size", "n_embed"), cfg.int("n_layer", "num_hidden_layers")
    heads, vocab = cfg.int("n_head", "num_attention_heads"), cfg.int("vocab_size")
    parts = {
        "embeddings": vocab * hidden + layer_norm(hidden),  # with its word_embeddings_layernorm
        "blocks": layers * _gpt2_block(hidden, 3 * hidden, 4 * hidden),
        "norms": layer_norm(hidden),
    }
    parts["head"], notes = _decoder_head(cfg, hidden, vocab, cfg.tied())
    return _gpt_count(cfg, parts, notes, layers, hidden, heads, heads, vocab, 4 * hidden)


def opt(cfg: Config) -> ParameterCount:
    """OPT: learned positions offset by 2, optional projections around a narrower embedding."""
    hidden, layers = cfg.int("hidden_size"), cfg.int("num_hidden_layers")
    heads, vocab, inner = cfg.int("num_attention_heads"), cfg.int("vocab_size"), cfg.int("ffn_dim")
    proj = cfg.int("word_embed_proj_dim", default=hidden) or hidden
    bias = cfg.flag("enable_bias", default=True)
    affine = cfg.flag("layer_norm_elementwise_affine", default=True)
    norm = layer_norm(hidden) if affine else 0
    block = 4 * linear(hidden, hidden, bias) + linear(hidden, inner, bias) + linear(inner, hidden, bias)
    block += 2 * norm
    final_norm = cfg.flag("do_layer_norm_before", default=True) and not cfg.flag("_remove_final_layer_norm")
    parts = {
        "embeddings": vocab * proj + (2 * hidden * proj if proj != hidden else 0),
        "positions": (cfg.int("max_position_embeddings") + 2) * hidden,
        "blocks": layers * block,
        "norms": norm if final_norm else 0,
    }
    parts["head"], notes = _decoder_head(cfg, proj, vocab, cfg.tied())
    return _gpt_count(
        cfg, parts, notes, layers, hidden, heads, heads, vocab, inner, cfg.int("max_position_embeddings")
    )


COUNTERS = {
    **dict.fromkeys(LLAMA_STYLE, llama_style),
    "gpt2": gpt2,
    "gpt_bigcode": gpt2,
    "gpt_neox": gpt_neox,
    "gpt_neo": gpt_neo,
    "mpt": mpt,
    "gptj": gptj,
    "falcon": falcon,
    "bloom": bloom,
    "opt": opt,
}
