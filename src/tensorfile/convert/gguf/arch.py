"""Hugging Face architectures → GGUF: the arch name, its keys, and how its tensors are renamed.

Each family mirrors the converter class llama.cpp registers for the `architectures` name in
config.json (conversion/*.py in llama.cpp): the keys of `TextModel.set_gguf_parameters` plus the
family's own, written in the same order, and the tensor rules (Llama's q/k permutation, experts
stacked into one 3-D tensor per layer, tensors dropped). Tensor names come from gguf-py's
TensorNameMap, the table llama.cpp itself uses.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import gguf

from ...errors import UnsupportedError
from .hparams import find

ParamWriter = Callable[[gguf.GGUFWriter, dict[str, Any], dict[str, Any]], None]


@dataclass(frozen=True)
class Family:
    """One converter class: which GGUF arch, which extra keys, which tensor rules."""

    arch: gguf.MODEL_ARCH
    extra_params: ParamWriter
    undo_permute: bool = False  # Llama's rotary layout: q/k rows permuted per head
    experts: str | None = None  # per-expert tensor naming to stack: "mixtral" | "qwen"
    rope_freqs: bool = False  # Llama 3 rope scaling becomes a rope_freqs tensor

    @property
    def name(self) -> str:
        return gguf.MODEL_ARCH_NAMES[self.arch]


def base_params(writer: gguf.GGUFWriter, hp: dict[str, Any], rope: dict[str, Any]) -> None:
    """TextModel.set_gguf_parameters, for the keys the supported families can carry."""
    writer.add_block_count(find(hp, ("n_layers", "num_hidden_layers", "n_layer", "num_layers")))
    ctx_keys = (
        "max_position_embeddings",
        "n_ctx",
        "n_positions",
        "max_length",
        "max_sequence_length",
        "model_max_length",
    )
    if (n_ctx := find(hp, ctx_keys)) is not None:
        writer.add_context_length(n_ctx)
    if (n_embd := find(hp, ("hidden_size", "n_embd", "dim"))) is not None:
        writer.add_embedding_length(n_embd)
    ff_keys = (
        "prefix_dense_intermediate_size",
        "dense_intermediate_size",
        "intermediate_size",
        "n_inner",
        "hidden_dim",
    )
    if (n_ff := find(hp, ff_keys)) is not None:
        writer.add_feed_forward_length(n_ff)
    if (n_head := find(hp, ("num_attention_heads", "n_head", "n_heads"))) is not None:
        writer.add_head_count(n_head)
    if (n_head_kv := find(hp, ("num_key_value_heads", "n_kv_heads"))) is not None:
        writer.add_head_count_kv(n_head_kv)
    if hp.get("is_causal") is False:
        writer.add_causal_attention(False)
    _rope_scaling(writer, rope.get("full_attention", rope))
    full = rope.get("full_attention", rope)
    if (theta := full.get("rope_theta")) is not None:
        writer.add_rope_freq_base(theta)
    if (local_theta := rope.get("sliding_attention", {}).get("rope_theta")) is not None:
        writer.add_rope_freq_base_swa(local_theta)
    if (rms_eps := find(hp, ("rms_norm_eps", "norm_eps"))) is not None:
        writer.add_layer_norm_rms_eps(rms_eps)
    if (norm_eps := find(hp, ("layer_norm_eps", "layer_norm_epsilon", "norm_epsilon"))) is not None:
        writer.add_layer_norm_eps(norm_eps)
    if (n_experts := find(hp, ("num_local_experts", "num_experts", "n_routed_experts"))) is not None:
        writer.add_expert_count(n_experts)
    if (n_used := find(hp, ("num_experts_per_tok", "num_experts_per_token", "top_k_experts"))) is not None:
        writer.add_expert_used_count(n_used)
    if hp.get("n_group") is not None or hp.get("topk_group") is not None:
        raise UnsupportedError("grouped expert routing (n_group/topk_group) is not supported yet")
    score_keys = (
        "score_function",
        "scoring_func",
        "score_func",
        "moe_router_activation",
        "moe_router_activation_func",
        "expert_selection_fn",
    )
    if (score := find(hp, score_keys)) is not None:
        gating = {"sigmoid": gguf.ExpertGatingFuncType.SIGMOID, "softmax": gguf.ExpertGatingFuncType.SOFTMAX}
        if score not in gating:
            raise UnsupportedError(f"expert gating function {score!r} is not supported")
        writer.add_expert_gating_func(gating[score])
    if (head_dim := hp.get("head_dim")) is not None:
        writer.add_key_length(head_dim)
        writer.add_value_length(head_dim)


def _rope_scaling(writer: gguf.GGUFWriter, rope: dict[str, Any]) -> None:
    kind = rope.get("rope_type")
    if kind is None:
        return
    factor = rope.get("factor")
    if kind == "linear" and factor is not None:
        writer.add_rope_scaling_type(gguf.RopeScalingType.LINEAR)
        writer.add_rope_scaling_factor(factor)
    elif kind == "yarn" and factor is not None:
        writer.add_rope_scaling_type(gguf.RopeScalingType.YARN)
        writer.add_rope_scaling_factor(factor)
        writer.add_rope_scaling_orig_ctx_len(rope["original_max_position_embeddings"])
        if (ext := rope.get("extrapolation_factor")) is not None:
            writer.add_rope_scaling_yarn_ext_factor(ext)
        if (attn := rope.get("attention_factor", rope.get("attn_factor"))) is not None:
            writer.add_rope_scaling_yarn_attn_factor(attn)
        if (fast := rope.get("beta_fast")) is not None:
            writer.add_rope_scaling_yarn_beta_fast(fast)
        if (slow := rope.get("beta_slow")) is not None:
            writer.add_rope_scaling_yarn_beta_slow(slow)
    elif kind in ("su", "longrope"):
        writer.add_rope_scaling_type(gguf.RopeScalingType.LONGROPE)
    elif kind in ("dynamic", "llama3", "default"):
        pass  # llama3: a rope_freqs tensor instead (see Family.rope_freqs)
    else:
        raise UnsupportedError(f"rope scaling type {kind!r} is not supported")


def _llama_params(writer: gguf.GGUFWriter, hp: dict[str, Any], rope: dict[str, Any]) -> None:
    writer.add_vocab_size(hp["vocab_size"])
    rope_dim = hp.get("head_dim")
    if rope_dim is None:
        rope_dim = hp["hidden_size"] // hp["num_attention_heads"]
    writer.add_rope_dimension_count(rope_dim)


def _no_params(writer: gguf.GGUFWriter, hp: dict[str, Any], rope: dict[str, Any]) -> None:
    return None


def _qwen_moe_params(writer: gguf.GGUFWriter, hp: dict[str, Any], rope: dict[str, Any]) -> None:
    if (moe_ff := hp.get("moe_intermediate_size")) is not None:
        writer.add_expert_feed_forward_length(moe_ff)
    if (shared_ff := hp.get("shared_expert_intermediate_size")) is not None:
        writer.add_expert_shared_feed_forward_length(shared_ff)


_LLAMA = Family(gguf.MODEL_ARCH.LLAMA, _llama_params, undo_permute=True, experts="mixtral", rope_freqs=True)
FAMILIES: dict[str, Family] = {
    "LlamaForCausalLM": _LLAMA,
    "LLaMAForCausalLM": _LLAMA,
    "MistralForCausalLM": _LLAMA,
    "MixtralForCausalLM": _LLAMA,
    "Qwen2ForCausalLM": Family(gguf.MODEL_ARCH.QWEN2, _no_params),
    "Qwen3ForCausalLM": Family(gguf.MODEL_ARCH.QWEN3, _no_params),
    "Qwen2MoeForCausalLM": Family(gguf.MODEL_ARCH.QWEN2MOE, _qwen_moe_params, experts="qwen"),
    "Qwen3MoeForCausalLM": Family(gguf.MODEL_ARCH.QWEN3MOE, _qwen_moe_params, experts="qwen"),
}


def family_for(hparams: dict[str, Any]) -> tuple[str, Family]:
    """The converter family for config.json's `architectures` (one clear error if none)."""
    names = hparams.get("architectures") or []
    for name in names:
        if name in FAMILIES:
            return name, FAMILIES[name]
    shown = ", ".join(map(str, names)) or f"model_type {hparams.get('model_type')!r}"
    supported = ", ".join(sorted(FAMILIES))
    raise UnsupportedError(f"cannot write GGUF for {shown} yet (supported: {supported})")
