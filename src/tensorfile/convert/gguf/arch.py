"""Hugging Face architectures → GGUF: the arch name, its keys, and how its tensors are renamed.

Each family mirrors the converter class llama.cpp registers for the `architectures` name in
config.json (conversion/*.py in llama.cpp): the keys of `TextModel.set_gguf_parameters` plus the
family's own, written in the same order, and the tensor rules (Llama's q/k permutation, experts
stacked into one 3-D tensor per layer, tensors dropped). Tensor names come from gguf-py's
TensorNameMap, the table llama.cpp itself uses.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import gguf

from ...errors import FormatError, UnsupportedError
from .hparams import block_count, find
from .vocab import read_json

ParamWriter = Callable[[gguf.GGUFWriter, dict[str, Any], dict[str, Any]], None]


@dataclass(frozen=True)
class Family:
    """One converter class: which GGUF arch, which extra keys, which tensor rules."""

    arch: gguf.MODEL_ARCH
    extra_params: ParamWriter  # the class's own keys, after TextModel's and general.file_type
    text_params: bool = True  # False: its set_gguf_parameters does not call TextModel's
    undo_permute: bool = False  # Llama's rotary layout: q/k rows permuted per head
    experts: str | None = None  # per-expert tensor naming to stack: "mixtral" | "qwen"
    rope_tensors: str | None = None  # generated first: "llama3" rope_freqs | "longrope" (Phi-3)
    norm_shift: float = 0.0  # added to every *norm.weight (Gemma stores RMSNorm weights as w - 1)
    skip_lm_head: bool = False  # Gemma 2 drops lm_head.weight (the embedding is tied)
    trim_vocab_rows: bool = False  # Gemma 3 cuts token_embd to the tokenizer's size
    strip_text_model: bool = False  # Llama also strips "text_model." (SmolVLM)
    refuse: Callable[[dict[str, Any]], None] | None = None  # raises for variants not supported

    @property
    def name(self) -> str:
        return gguf.MODEL_ARCH_NAMES[self.arch]


def base_params(writer: gguf.GGUFWriter, hp: dict[str, Any], rope: dict[str, Any]) -> None:
    """TextModel.set_gguf_parameters, for the keys the supported families can carry (nothing for a
    family whose converter class writes its own set instead)."""
    if family_for(hp)[1].text_params:
        _text_params(writer, hp, rope)


def _text_params(writer: gguf.GGUFWriter, hp: dict[str, Any], rope: dict[str, Any]) -> None:
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


def _qwen2_params(writer: gguf.GGUFWriter, hp: dict[str, Any], rope: dict[str, Any]) -> None:
    _pooling_type(writer, hp)  # Qwen2Model's, which Qwen3Model inherits


def _refuse_qwen3_reranker(hp: dict[str, Any]) -> None:
    if _is_qwen3_reranker(hp):
        # the converter turns lm_head into a yes/no classifier with transformers' tokenizer
        raise UnsupportedError("Qwen3 reranker models are not supported yet")


def _qwen_moe_params(writer: gguf.GGUFWriter, hp: dict[str, Any], rope: dict[str, Any]) -> None:
    if (moe_ff := hp.get("moe_intermediate_size")) is not None:
        writer.add_expert_feed_forward_length(moe_ff)
    if (shared_ff := hp.get("shared_expert_intermediate_size")) is not None:
        writer.add_expert_shared_feed_forward_length(shared_ff)


def _gemma2_params(writer: gguf.GGUFWriter, hp: dict[str, Any], rope: dict[str, Any]) -> None:
    """Gemma2Model.set_gguf_parameters: its own keys (TextModel's are not written)."""
    _require(hp, ("max_position_embeddings", "hidden_size", "intermediate_size", "num_attention_heads"))
    _require(hp, ("rms_norm_eps", "head_dim", "attn_logit_softcapping", "final_logit_softcapping"))
    _require(hp, ("sliding_window",))
    writer.add_context_length(hp["max_position_embeddings"])
    writer.add_embedding_length(hp["hidden_size"])
    writer.add_block_count(block_count(hp))
    writer.add_feed_forward_length(hp["intermediate_size"])
    writer.add_head_count(hp["num_attention_heads"])
    writer.add_head_count_kv(hp.get("num_key_value_heads", hp["num_attention_heads"]))
    writer.add_layer_norm_rms_eps(hp["rms_norm_eps"])
    writer.add_key_length(hp["head_dim"])
    writer.add_value_length(hp["head_dim"])
    _file_type_here(writer)
    writer.add_attn_logit_softcapping(hp["attn_logit_softcapping"])
    writer.add_final_logit_softcapping(hp["final_logit_softcapping"])
    writer.add_sliding_window(hp["sliding_window"])


def _gemma3_params(writer: gguf.GGUFWriter, hp: dict[str, Any], rope: dict[str, Any]) -> None:
    """Gemma3Model.set_gguf_parameters: after TextModel's keys, some again (their values replaced
    where they stand, as gguf-py's writer does) with the class's own defaults."""
    with _overwriting():
        writer.add_context_length(hp.get("max_position_embeddings", 131072))
        writer.add_head_count(hp.get("num_attention_heads", 8))
        writer.add_layer_norm_rms_eps(hp.get("rms_norm_eps", 1e-6))
        writer.add_key_length(hp.get("head_dim", 256))
        writer.add_value_length(hp.get("head_dim", 256))
        writer.add_rope_freq_base(rope.get("full_attention", rope).get("rope_theta", 1_000_000.0))
    if hp.get("attn_logit_softcapping") is not None:  # the converter asserts it is gone
        raise FormatError("Gemma 3 has no attn_logit_softcapping, but config.json sets one")
    if final_softcap := hp.get("final_logit_softcapping"):
        writer.add_final_logit_softcapping(final_softcap)
    if hp.get("sliding_window_pattern") != 1:
        _require(hp, ("sliding_window",))
        writer.add_sliding_window(hp["sliding_window"])
    with _overwriting():
        writer.add_head_count_kv(hp.get("num_key_value_heads", 4))


@contextmanager
def _overwriting() -> Iterator[None]:
    """Rewriting a key on purpose: gguf-py's writer would log a "Duplicated key name" warning."""
    log = logging.getLogger("gguf.gguf_writer")
    level = log.level
    log.setLevel(logging.ERROR)
    try:
        yield
    finally:
        log.setLevel(level)


def _phi3_params(writer: gguf.GGUFWriter, hp: dict[str, Any], rope: dict[str, Any]) -> None:
    """Phi3MiniModel.set_gguf_parameters (its own keys), and the longrope attention factor its
    generate_extra_tensors writes while the tensors are made, i.e. before every other key."""
    n_embd, n_head = _need(hp, ("hidden_size", "n_embd")), _need(hp, ("num_attention_heads", "n_head"))
    n_ctx, orig_ctx = _need(hp, ("n_positions", "max_position_embeddings")), _original_ctx(rope)
    writer.add_context_length(n_ctx)
    writer.add_rope_scaling_orig_ctx_len(orig_ctx)
    writer.add_embedding_length(n_embd)
    writer.add_feed_forward_length(_need(hp, ("intermediate_size",)))
    writer.add_block_count(block_count(hp))
    writer.add_head_count(n_head)
    writer.add_head_count_kv(_need(hp, ("num_key_value_heads", "n_head_kv")))
    writer.add_layer_norm_rms_eps(_need(hp, ("rms_norm_eps",)))
    writer.add_rope_dimension_count(phi3_rope_dims(hp, rope))
    theta = rope.get("full_attention", rope).get("rope_theta")
    if theta is None:
        raise FormatError("config.json gives no rope_theta")
    writer.add_rope_freq_base(theta)
    _file_type_here(writer)
    sliding_window = hp.get("sliding_window")
    writer.add_sliding_window(0 if sliding_window is None else sliding_window)  # 0: not Phi-4
    if (attn_factor := phi3_attn_factor(hp, rope)) is not None:
        writer.add_rope_scaling_attn_factors(attn_factor)
        _move_after(
            writer, gguf.Keys.General.ARCHITECTURE, gguf.Keys.Rope.SCALING_ATTN_FACTOR.format(arch="phi3")
        )


def phi3_rope_dims(hp: dict[str, Any], rope: dict[str, Any]) -> int:
    """Phi-3's rotary width: int(partial_rotary_factor * n_embd) // n_head."""
    n_embd, n_head = _need(hp, ("hidden_size", "n_embd")), _need(hp, ("num_attention_heads", "n_head"))
    return int(rope.get("partial_rotary_factor", 1.0) * n_embd) // n_head


def phi3_attn_factor(hp: dict[str, Any], rope: dict[str, Any]) -> float | None:
    """Phi3MiniModel.generate_extra_tensors' attention factor (None: no long_factor, no tensors)."""
    if not rope.get("long_factor"):
        return None
    scale = _need(hp, ("n_positions", "max_position_embeddings")) / _original_ctx(rope)
    kind = str(rope.get("rope_type", "")).lower()
    if not kind:
        raise FormatError("rope_scaling has long factors but no type")
    if kind in ("su", "longrope"):
        return math.sqrt(1 + math.log(scale) / math.log(_original_ctx(rope))) if scale > 1.0 else 1.0
    if kind == "yarn":
        return 0.1 * math.log(scale) + 1.0 if scale > 1.0 else 1.0
    raise UnsupportedError(f"Phi-3 rope scaling type {kind!r} is not supported")


def _original_ctx(rope: dict[str, Any]) -> int:
    if (orig := rope.get("original_max_position_embeddings")) is None:
        raise FormatError("config.json gives no original_max_position_embeddings (Phi-3 needs it)")
    return int(orig)


def _file_type_here(writer: gguf.GGUFWriter) -> None:
    """build.py writes general.file_type before the family's own keys, where TextModel writes it;
    a class with its own set_gguf_parameters writes it among them, so it moves to this point."""
    _move_after(writer, None, gguf.Keys.General.FILE_TYPE)


def _move_after(writer: gguf.GGUFWriter, anchor: str | None, key: str) -> None:
    """Move `key` (already written) right after `anchor`, or to the end when anchor is None."""
    kv = writer.kv_data[0]
    value = kv.pop(key)
    if anchor is None:
        kv[key] = value
        return
    items = list(kv.items())
    at = next(i for i, (k, _) in enumerate(items) if k == anchor) + 1
    kv.clear()
    kv.update([*items[:at], (key, value), *items[at:]])


def _need(hp: dict[str, Any], keys: tuple[str, ...]) -> Any:
    """The converter's find_hparam without optional=True: missing is an error."""
    if (value := find(hp, keys)) is None:
        raise FormatError(f"config.json gives none of {', '.join(keys)}")
    return value


def _require(hp: dict[str, Any], keys: tuple[str, ...]) -> None:
    for key in keys:
        if hp.get(key) is None:
            raise FormatError(f"config.json gives no {key}")


def _pooling_type(writer: gguf.GGUFWriter, hp: dict[str, Any]) -> None:
    """TextModel._try_set_pooling_type: a sentence-transformers Pooling module's mode (embedding
    models such as Qwen3-Embedding), and a classifier's pooling."""
    folder = Path(hp.get("_name_or_path", "."))
    modules = read_json(folder / "modules.json")
    path = next((m["path"] for m in modules or [] if str(m.get("type", "")).endswith("Pooling")), None)
    modes = {"mean": gguf.PoolingType.MEAN, "cls": gguf.PoolingType.CLS, "lasttoken": gguf.PoolingType.LAST}
    if path is not None:
        pooling = read_json(folder / path / "config.json") or {}
        if pooling.get("pooling_mode_mean_tokens"):
            kind = gguf.PoolingType.MEAN
        elif pooling.get("pooling_mode_cls_token"):
            kind = gguf.PoolingType.CLS
        elif pooling.get("pooling_mode_lasttoken"):
            kind = gguf.PoolingType.LAST
        elif pooling.get("pooling_mode") in modes:
            kind = modes[pooling["pooling_mode"]]
        else:
            raise UnsupportedError("only MEAN, CLS and LAST pooling are supported", folder / path)
        writer.add_pooling_type(kind)
    if (classifier := hp.get("classifier_pooling")) is not None:
        if classifier not in ("cls", "mean"):
            raise UnsupportedError(f"classifier_pooling {classifier!r} is not supported")
        # the vendored writer's add_classifier_pooling_type (newer than the PyPI gguf)
        writer.add_uint32(f"{writer.arch}.classifier.pooling_type", modes[classifier].value)


def _is_qwen3_reranker(hp: dict[str, Any]) -> bool:
    """Qwen3Model._is_qwen3_reranker: a README title, a name hint, or a classification head."""
    folder = Path(hp.get("_name_or_path", "."))
    readme = folder / "README.md"
    text = readme.read_text(encoding="utf-8").lower() if readme.is_file() else ""
    if "# qwen3-reranker" in text or "# qwen3-vl-reranker" in text:
        return True
    arch = (hp.get("architectures") or [None])[0] or ""
    hints = [folder.name, str(hp.get("_name_or_path", "")), str(hp.get("model_type", "")), str(arch)]
    if any("qwen3-reranker" in h.lower() or "qwen3-vl-reranker" in h.lower() for h in hints if h):
        return True
    return "sequenceclassification" in str(arch).lower()


_LLAMA = Family(
    gguf.MODEL_ARCH.LLAMA,
    _llama_params,
    undo_permute=True,
    experts="mixtral",
    rope_tensors="llama3",
    strip_text_model=True,
)
_GEMMA3 = Family(gguf.MODEL_ARCH.GEMMA3, _gemma3_params, norm_shift=1.0, trim_vocab_rows=True)
FAMILIES: dict[str, Family] = {
    "LlamaForCausalLM": _LLAMA,
    "LLaMAForCausalLM": _LLAMA,
    "MistralForCausalLM": _LLAMA,
    "MixtralForCausalLM": _LLAMA,
    "Qwen2ForCausalLM": Family(gguf.MODEL_ARCH.QWEN2, _qwen2_params),
    "Qwen3ForCausalLM": Family(gguf.MODEL_ARCH.QWEN3, _qwen2_params, refuse=_refuse_qwen3_reranker),
    "Qwen2MoeForCausalLM": Family(gguf.MODEL_ARCH.QWEN2MOE, _qwen_moe_params, experts="qwen"),
    "Qwen3MoeForCausalLM": Family(gguf.MODEL_ARCH.QWEN3MOE, _qwen_moe_params, experts="qwen"),
    "Gemma2ForCausalLM": Family(
        gguf.MODEL_ARCH.GEMMA2, _gemma2_params, text_params=False, norm_shift=1.0, skip_lm_head=True
    ),
    "Gemma3ForCausalLM": _GEMMA3,
    "Gemma3ForConditionalGeneration": _GEMMA3,  # its text model; the vision tower is skipped
    "Phi3ForCausalLM": Family(gguf.MODEL_ARCH.PHI3, _phi3_params, text_params=False, rope_tensors="longrope"),
}


def family_for(hparams: dict[str, Any]) -> tuple[str, Family]:
    """The converter family for config.json's `architectures` (one clear error if none)."""
    names = hparams.get("architectures") or []
    for name in names:
        if name in FAMILIES:
            if (refuse := FAMILIES[name].refuse) is not None:
                refuse(hparams)
            return name, FAMILIES[name]
    shown = ", ".join(map(str, names)) or f"model_type {hparams.get('model_type')!r}"
    supported = ", ".join(sorted(FAMILIES))
    raise UnsupportedError(f"cannot write GGUF for {shown} yet (supported: {supported})")
