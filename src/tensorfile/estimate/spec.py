"""What the memory model needs to know about a model: its shapes and parameter counts.

A `ModelSpec` comes from a model file or folder (parameters and dtypes from `inspect`, shapes from
config.json or GGUF keys), from a config.json alone, or from a bare size like "7B" with optional
shape overrides. Missing shapes are filled from the nearest reference architecture and the
assumption is recorded in `notes`, so every estimate says what it guessed.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from ..errors import TensorfileError

# Decoder shapes of well-known open models (their config.json), used to fill in what a bare size
# like "7B" does not say. Scaled to the requested size by the number of layers.
REFERENCE_SHAPES: dict[str, dict[str, Any]] = {
    "Qwen2.5-0.5B": dict(
        layers=24,
        hidden_size=896,
        intermediate_size=4864,
        heads=14,
        kv_heads=2,
        vocab_size=151936,
        tie_word_embeddings=True,
    ),
    "Llama-3.2-1B": dict(
        layers=16,
        hidden_size=2048,
        intermediate_size=8192,
        heads=32,
        kv_heads=8,
        vocab_size=128256,
        tie_word_embeddings=True,
    ),
    "Llama-3.2-3B": dict(
        layers=28,
        hidden_size=3072,
        intermediate_size=8192,
        heads=24,
        kv_heads=8,
        vocab_size=128256,
        tie_word_embeddings=True,
    ),
    "Llama-2-7B": dict(
        layers=32, hidden_size=4096, intermediate_size=11008, heads=32, kv_heads=32, vocab_size=32000
    ),
    "Llama-3-8B": dict(
        layers=32, hidden_size=4096, intermediate_size=14336, heads=32, kv_heads=8, vocab_size=128256
    ),
    "Llama-2-13B": dict(
        layers=40, hidden_size=5120, intermediate_size=13824, heads=40, kv_heads=40, vocab_size=32000
    ),
    "Qwen2.5-32B": dict(
        layers=64, hidden_size=5120, intermediate_size=27648, heads=40, kv_heads=8, vocab_size=152064
    ),
    "Llama-3-70B": dict(
        layers=80, hidden_size=8192, intermediate_size=28672, heads=64, kv_heads=8, vocab_size=128256
    ),
    "Llama-3.1-405B": dict(
        layers=126, hidden_size=16384, intermediate_size=53248, heads=128, kv_heads=8, vocab_size=128256
    ),
}

# config.json spellings beyond the common ones inspect knows (ChatGLM, Qwen v1, DeepSeek MoE, T5).
_EXTRA_KEYS = {
    "layers": ("num_layers", "n_layers", "num_hidden_layers"),
    "intermediate_size": ("ffn_hidden_size", "d_ff"),
    "kv_heads": ("multi_query_group_num",),
    "head_dim": ("kv_channels",),
    "vocab_size": ("padded_vocab_size",),
    "moe_intermediate_size": ("moe_intermediate_size",),
    "shared_experts": ("n_shared_experts", "num_shared_experts"),
    "shared_expert_intermediate_size": ("shared_expert_intermediate_size",),
    "first_dense_layers": ("first_k_dense_replace",),
    "sliding_window_pattern": ("sliding_window_pattern",),
    "layer_types": ("layer_types",),
    "use_sliding_window": ("use_sliding_window",),
    "qkv_bias": ("attention_bias", "qkv_bias", "add_qkv_bias"),
    "hidden_act": ("hidden_act", "activation_function"),
}

_SIZE = re.compile(r"^\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([kmbt]?)\s*$", re.IGNORECASE)
_SUFFIX = {"": 1, "k": 1e3, "m": 1e6, "b": 1e9, "t": 1e12}


class SpecError(TensorfileError):
    """The model description is incomplete or contradictory."""


@dataclass(frozen=True)
class ModelSpec:
    """Shapes and parameter counts of a decoder-style transformer.

    `params` is the total stored parameter count; the per-part counts below are computed from the
    shapes, and whatever the shapes do not explain (vision towers, biases we do not model) is
    `other_params`, held like the embeddings.
    """

    name: str
    layers: int
    hidden_size: int
    intermediate_size: int
    heads: int
    kv_heads: int
    head_dim: int
    vocab_size: int
    tie_word_embeddings: bool = False
    gated_mlp: bool = True  # SwiGLU/GeGLU: three matrices per MLP; GPT-2 style: two
    experts: int = 0  # routed experts (0 = dense)
    experts_per_token: int = 0
    moe_intermediate_size: int = 0
    shared_experts: int = 0
    shared_expert_width: int = 0  # Qwen-MoE: one shared expert of its own width (0: shared_experts × routed)
    first_dense_layers: int = 0  # DeepSeek: the first k layers keep a dense MLP
    sliding_window: int | None = None
    sliding_layers: int = 0  # how many layers use the sliding window
    qkv_bias: bool = False
    # what kind of model the shapes describe (estimate/architectures): "decoder",
    # "encoder-decoder" (layers, heads, kv are the decoder's; encoder_layers its encoder),
    # "encoder" (no KV cache, no generation) or "vision" (encoder_seq: patches + [CLS])
    family: str = "decoder"
    encoder_layers: int = 0
    encoder_seq: int = 0  # a fixed encoder length (Whisper's frames, ViT's patches); 0: the input's
    head: str = "lm"  # lm | base | classifier | token | qa | pretraining: what sits on top
    params: int = 0  # total parameters as stored (0: computed from the shapes)
    source: str = "shapes"
    shapes_assumed: bool = False  # True when the shapes were filled from a reference model, not read
    notes: tuple[str, ...] = ()

    # --- parameter counts per part -------------------------------------------------------------

    @property
    def embedding_params(self) -> int:
        return self.vocab_size * self.hidden_size

    @property
    def lm_head_params(self) -> int:
        if self.tie_word_embeddings or self.head not in ("lm", "pretraining"):
            return 0
        return self.vocab_size * self.hidden_size

    @property
    def attention_params_per_layer(self) -> int:
        q = self.hidden_size * self.heads * self.head_dim
        kv = 2 * self.hidden_size * self.kv_heads * self.head_dim
        o = self.heads * self.head_dim * self.hidden_size
        bias = (self.heads + 2 * self.kv_heads) * self.head_dim if self.qkv_bias else 0
        return q + kv + o + bias

    def mlp_matrix_params(self, width: int) -> int:
        return (3 if self.gated_mlp else 2) * self.hidden_size * width

    @property
    def moe_layers(self) -> int:
        return max(0, self.layers - self.first_dense_layers) if self.experts else 0

    @property
    def expert_width(self) -> int:
        return self.moe_intermediate_size or self.intermediate_size

    @property
    def encoder_params(self) -> int:
        """An encoder-decoder's encoder blocks (attention and MLP matrices)."""
        h, a = self.hidden_size, self.attn_width
        return self.encoder_layers * (
            2 * h * a + 2 * h * self.kv_width + self.mlp_matrix_params(self.intermediate_size)
        )

    @property
    def cross_attention_params(self) -> int:
        """An encoder-decoder's cross-attention matrices in all decoder layers."""
        if self.family != "encoder-decoder":
            return 0
        return self.layers * (2 * self.hidden_size * self.attn_width + 2 * self.hidden_size * self.kv_width)

    @property
    def shared_width(self) -> int:
        """All shared experts' intermediate width (they run for every token, like one dense MLP)."""
        return self.shared_expert_width or self.shared_experts * self.expert_width

    @property
    def mlp_params_total(self) -> int:
        dense = (self.layers - self.moe_layers) * self.mlp_matrix_params(self.intermediate_size)
        if not self.experts:
            return dense
        per_moe = self.experts * self.mlp_matrix_params(self.expert_width)
        per_moe += self.mlp_matrix_params(self.shared_width) + self.hidden_size * self.experts  # router
        return dense + self.moe_layers * per_moe

    @property
    def norm_params(self) -> int:
        return (2 * self.layers + 2 * self.encoder_layers + 1) * self.hidden_size

    @property
    def shaped_params(self) -> int:
        """Parameters the shapes account for."""
        return self.embedding_params + self.lm_head_params + self.linear_params + self.norm_params

    @property
    def total_params(self) -> int:
        return self.params or self.shaped_params

    @property
    def other_params(self) -> int:
        """Stored parameters the shapes do not explain (positive), e.g. a vision tower."""
        return max(0, self.total_params - self.shaped_params)

    @property
    def linear_params(self) -> int:
        """Parameters in the blocks' linear layers: what weight quantizers (bnb, GPTQ, AWQ) quantize."""
        decoder = self.layers * self.attention_params_per_layer + self.mlp_params_total
        return decoder + self.encoder_params + self.cross_attention_params

    @property
    def active_params(self) -> int:
        """Parameters one token passes through (MoE: routed experts per token only)."""
        if not self.experts:
            return self.total_params
        idle = (
            self.moe_layers
            * (self.experts - self.experts_per_token)
            * self.mlp_matrix_params(self.expert_width)
        )
        return self.total_params - idle

    @property
    def kv_width(self) -> int:
        return self.kv_heads * self.head_dim

    @property
    def attn_width(self) -> int:
        return self.heads * self.head_dim

    @property
    def active_mlp_width(self) -> int:
        """Intermediate width one token's activations pass through in an average layer."""
        if not self.experts:
            return self.intermediate_size
        moe = self.experts_per_token * self.expert_width + self.shared_width
        dense_layers = self.layers - self.moe_layers
        return round((dense_layers * self.intermediate_size + self.moe_layers * moe) / self.layers)

    def linear_shapes(self) -> list[tuple[str, int, int, int]]:
        """(module name, in_features, out_features, count in the model) of every block linear layer."""
        h, a, kv = self.hidden_size, self.attn_width, self.kv_width
        shapes = [
            ("q_proj", h, a, self.layers),
            ("k_proj", h, kv, self.layers),
            ("v_proj", h, kv, self.layers),
        ]
        shapes.append(("o_proj", a, h, self.layers))
        dense = self.layers - self.moe_layers
        mlp = (
            [("gate_proj", h, 1), ("up_proj", h, 1), ("down_proj", 0, 1)]
            if self.gated_mlp
            else [("up_proj", h, 1), ("down_proj", 0, 1)]
        )
        for name, fan_in, _ in mlp:
            for width, count in (
                (self.intermediate_size, dense),
                (self.expert_width, self.moe_layers * self.experts),
                (self.shared_width, self.moe_layers),
            ):
                if count:
                    shapes.append((name, fan_in or width, width if fan_in else h, count))
        if self.family == "encoder-decoder":  # the encoder's blocks and the decoder's cross-attention
            for name, fan_in, out in (
                ("q_proj", h, a),
                ("k_proj", h, kv),
                ("v_proj", h, kv),
                ("o_proj", a, h),
            ):
                shapes.append((f"cross_{name}", fan_in, out, self.layers))
                shapes.append((f"encoder_{name}", fan_in, out, self.encoder_layers))
            inter = self.intermediate_size
            mlp_in = [("encoder_gate_proj", h, inter)] if self.gated_mlp else []
            for name, fan_in, out in (
                *mlp_in,
                ("encoder_up_proj", h, inter),
                ("encoder_down_proj", inter, h),
            ):
                shapes.append((name, fan_in, out, self.encoder_layers))
        return [shape for shape in shapes if shape[3]]

    def lora_modules(self, targets: tuple[str, ...]) -> list[tuple[int, int, int]]:
        """(in, out, count) of the linear layers LoRA wraps for these target names.

        Besides the Llama names, the fused and older spellings are understood: c_attn /
        query_key_value / qkv_proj / Wqkv (one fused q,k,v layer), c_proj (Qwen v1 and GPT-2: the
        attention output and the MLP output), w1/w2 (Qwen v1 gate/up), dense (attention output),
        dense_h_to_4h / fc1 / c_fc, dense_4h_to_h / fc2, out_proj.
        """
        by_name: dict[str, list[tuple[int, int, int]]] = {}
        for name, fan_in, out, count in self.linear_shapes():
            # an encoder-decoder's encoder and cross-attention layers have the same module names
            base = name.removeprefix("cross_").removeprefix("encoder_")
            by_name.setdefault(base, []).append((fan_in, out, count))
        qkv = [(self.hidden_size, self.attn_width + 2 * self.kv_width, self.layers)]
        up_width = 2 if self.gated_mlp else 1
        fused_up = [(fan_in, out * up_width, count) for fan_in, out, count in by_name.get("up_proj", [])]
        aliases: dict[str, list[tuple[int, int, int]]] = {
            **by_name,
            "c_attn": qkv, "query_key_value": qkv, "qkv_proj": qkv, "wqkv": qkv,
            "c_proj": by_name.get("o_proj", []) + by_name.get("down_proj", []),
            "w1": by_name.get("gate_proj", by_name.get("up_proj", [])), "w2": by_name.get("up_proj", []),
            "dense": by_name.get("o_proj", []), "out_proj": by_name.get("o_proj", []),
            "dense_h_to_4h": fused_up, "fc1": by_name.get("up_proj", []), "c_fc": by_name.get("up_proj", []),
            "dense_4h_to_h": by_name.get("down_proj", []), "fc2": by_name.get("down_proj", []),
            "q": by_name.get("q_proj", []), "k": by_name.get("k_proj", []), "v": by_name.get("v_proj", []),
            "o": by_name.get("o_proj", []), "wi": by_name.get("up_proj", []),
            "wo": by_name.get("down_proj", []),
        }  # fmt: skip
        chosen: list[tuple[int, int, int]] = []
        for target in targets:
            chosen.extend(aliases.get(target.lower() if target.lower() == "wqkv" else target, []))
        return chosen

    def with_notes(self, *notes: str) -> ModelSpec:
        return replace(self, notes=(*self.notes, *notes))


# --- building a spec ---------------------------------------------------------------------------


def looks_like_size(text: str) -> bool:
    """Written like a parameter count ('7B', '7e9', '350M'), whether or not a plausible one."""
    return _SIZE.match(str(text)) is not None


def parse_size(text: str) -> int:
    """'7B', '7e9', '1.5b', '350M' -> parameter count."""
    match = _SIZE.match(str(text))
    if not match:
        raise SpecError(f"not a model size: {text!r} (use e.g. 7B, 1.5B, 350M or 7e9)")
    value = float(match.group(1)) * _SUFFIX[match.group(2).lower()]
    if value < 1e5:
        raise SpecError(f"model size {text!r} is too small to be a parameter count")
    if value > 1e15:  # a thousand times the largest models: a typo, not a model
        raise SpecError(f"model size {text!r} is too large to be a parameter count")
    return int(value)


def _shape_params(shape: dict[str, Any]) -> int:
    spec = _from_shapes("x", shape, params=0)
    return spec.shaped_params


def spec_from_size(params: int, overrides: dict[str, Any] | None = None) -> ModelSpec:
    """A spec for a bare parameter count: the nearest reference shapes, layers scaled to the size."""
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    bad = next((k for k, v in overrides.items() if isinstance(v, (int, float)) and v <= 0), None)
    if bad is not None:
        raise SpecError(f"--{bad.removesuffix('_size').replace('_', '-')} must be a positive number")
    if params <= 0:
        raise SpecError("the model has no parameters to estimate")
    name, shape = min(
        REFERENCE_SHAPES.items(), key=lambda item: abs(math.log(_shape_params(item[1]) / params))
    )
    shape = {**shape, **overrides}
    note = f"shapes not given: assumed {name}-like ({', '.join(f'{k}={v}' for k, v in shape.items())})"
    if "layers" not in overrides:
        base = _from_shapes(name, {**shape, "layers": 1}, params=0)
        per_layer = base.shaped_params - base.embedding_params - base.lm_head_params - base.hidden_size
        fixed = base.embedding_params + base.lm_head_params + base.hidden_size
        shape["layers"] = max(1, round((params - fixed) / per_layer))
        note += f"; layers scaled to {shape['layers']} to match {params / 1e9:.3g}B parameters"
    spec = _from_shapes(f"{params / 1e9:.3g}B", shape, params=params, source="size")
    return replace(spec, shapes_assumed=True).with_notes(note)


def _int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)) and value > 0:
        return int(value)
    return None


def _from_shapes(name: str, shape: dict[str, Any], params: int, source: str = "shapes") -> ModelSpec:
    layers = _int(shape.get("layers"))
    hidden = _int(shape.get("hidden_size"))
    heads = _int(shape.get("heads"))
    if not (layers and hidden and heads):
        missing = [k for k in ("layers", "hidden_size", "heads") if not _int(shape.get(k))]
        raise SpecError(
            f"model shapes incomplete: {', '.join(missing)} unknown (give --{missing[0].split('_')[0]})"
        )
    if not _int(shape.get("head_dim")) and hidden % heads:
        raise SpecError(f"hidden size {hidden} is not a multiple of {heads} heads (give --head-dim)")
    head_dim = _int(shape.get("head_dim")) or hidden // heads
    kv_heads = _int(shape.get("kv_heads")) or heads
    if heads % kv_heads:
        raise SpecError(f"{kv_heads} KV heads do not divide {heads} attention heads")
    experts, active = _int(shape.get("experts")) or 0, _int(shape.get("experts_per_token")) or 0
    if experts and active > experts:
        raise SpecError(f"{active} experts per token, but only {experts} experts")
    inter = _int(shape.get("intermediate_size")) or 4 * hidden
    vocab = _int(shape.get("vocab_size")) or (0 if shape.get("family") == "vision" else 32000)
    window = _int(shape.get("sliding_window"))
    sliding_layers = _int(shape.get("sliding_layers"))
    if window and sliding_layers is None:
        sliding_layers = layers
    return ModelSpec(
        name=name,
        layers=layers,
        hidden_size=hidden,
        intermediate_size=inter,
        heads=heads,
        kv_heads=kv_heads,
        head_dim=head_dim,
        vocab_size=vocab,
        tie_word_embeddings=bool(shape.get("tie_word_embeddings", False)),
        gated_mlp=bool(shape["gated_mlp"]) if "gated_mlp" in shape else gated_mlp(shape.get("model_type")),
        experts=experts,
        experts_per_token=active,
        moe_intermediate_size=_int(shape.get("moe_intermediate_size")) or 0,
        shared_experts=_int(shape.get("shared_experts")) or 0,
        shared_expert_width=_int(shape.get("shared_expert_intermediate_size")) or 0,
        first_dense_layers=_int(shape.get("first_dense_layers")) or 0,
        sliding_window=window,
        sliding_layers=sliding_layers or 0 if window else 0,
        qkv_bias=bool(shape.get("qkv_bias", False)),
        family=str(shape.get("family") or "decoder"),
        encoder_layers=_int(shape.get("encoder_layers")) or 0,
        encoder_seq=_int(shape.get("encoder_seq")) or 0,
        head=str(shape.get("head") or "lm"),
        params=params,
        source=source,
    )


# Model types whose MLP is two matrices with a plain activation (GELU/ReLU), not SwiGLU/GeGLU.
_PLAIN_MLP = frozenset(("gpt2", "gpt_bigcode", "starcoder", "gpt_neox", "gptj", "gpt_neo", "opt", "bloom"))
_PLAIN_MLP |= {"falcon", "phi", "bert", "roberta", "t5", "mpt", "starcoder2"}


def gated_mlp(model_type: str | None, act: str | None = None) -> bool:
    """Whether the MLP has a gate (three matrices): SwiGLU/GeGLU models do, GPT-2-style ones do not."""
    if model_type in _PLAIN_MLP:
        return False
    return not str(act or "").lower().startswith("gelu_new")


def shapes_from_config(config: dict[str, Any]) -> dict[str, Any]:
    """Our shape names from a transformers config.json (any of its many spellings)."""
    from ..inspection import architecture_from_config

    shape = dict(architecture_from_config(config))
    source = {**config, **(config.get("text_config") or {})}
    for name, keys in _EXTRA_KEYS.items():
        if name in shape:
            continue
        for key in keys:
            if source.get(key) is not None:
                shape[name] = source[key]
                break
    model_type = str(shape.get("model_type", ""))
    if model_type == "qwen":  # Qwen v1 writes both SwiGLU branches into intermediate_size
        shape["intermediate_size"] = (
            _int(shape.get("intermediate_size", 0)) and shape["intermediate_size"] // 2
        )
    act = str(shape.get("hidden_act", "silu")).lower()
    shape["gated_mlp"] = gated_mlp(model_type, act)
    if model_type == "chatglm" and not source.get("multi_query_attention", True):
        shape["kv_heads"] = shape.get("heads")
    window = _int(shape.get("sliding_window"))
    if window and shape.get("use_sliding_window") is False and model_type.startswith("qwen"):
        window = None  # Qwen2 configs carry a window they do not use
    if window:
        shape["sliding_window"] = window
        layer_types = shape.get("layer_types")
        if isinstance(layer_types, list):
            shape["sliding_layers"] = sum(1 for t in layer_types if "sliding" in str(t))
        elif _int(shape.get("sliding_window_pattern")):
            pattern = int(shape["sliding_window_pattern"])  # Gemma: every pattern-th layer is global
            shape["sliding_layers"] = int(shape["layers"]) - int(shape["layers"]) // pattern
        elif model_type.startswith("gemma2"):
            shape["sliding_layers"] = int(shape["layers"]) // 2
    else:
        shape.pop("sliding_window", None)
    return shape


# the shapes a decoder spec reads from config.json, and what it assumes when one is missing
_ASSUMED = {"kv_heads": "= heads", "intermediate_size": "4 × hidden", "vocab_size": "32000"}
_ASSUMED |= {"head_dim": "hidden ÷ heads"}


def _counted_shape(
    config: dict[str, Any], overrides: dict[str, Any], weights_counted: bool = False
) -> tuple[dict[str, Any], int, list[str]]:
    """(shapes, exact parameter count or 0, notes) from a config.json.

    A model type estimate/architectures knows gives transformers' own count and its family's
    shapes; any other is read as a Llama-style decoder, and the notes say so and which fields
    were missing and assumed. Shape overrides change the model, so the count comes from the shapes.
    weights_counted: the weights beside the config give the count; the shapes only size the run.
    """
    from .architectures import count_parameters

    shape = shapes_from_config(config)
    notes: list[str] = []
    model_type = str(config.get("model_type") or "") or "no model_type"
    why = "not a model type tensorfile counts exactly"
    try:
        count = count_parameters(config)
    except SpecError as exc:  # a known type whose config lacks a size its count needs
        count, why = None, f"{str(exc).split(': ', 1)[-1]}, so not counted as transformers builds it"
    if count is None:
        missing = [f"{k} ({how})" for k, how in _ASSUMED.items() if not _int(shape.get(k))]
        counted = "parameters from the weights; shapes" if weights_counted else "parameters and shapes"
        notes.append(
            f"{model_type}: {why}; {counted} read as a Llama-style decoder (attention, gated MLP, "
            "norms from the config's sizes)" + (f", assumed {', '.join(missing)}" if missing else "")
        )
        if isinstance(config.get("vision_config"), dict) or isinstance(config.get("audio_config"), dict):
            notes.append("the config has a vision or audio tower: its parameters are not counted")
        exact = 0
    else:
        shape.update(count.shapes)
        if count.shapes.get("moe_layers"):  # the type's own MoE layout; only how many are dense matters
            shape["first_dense_layers"] = count.shapes["layers"] - count.shapes["moe_layers"]
            shape["moe_intermediate_size"] = count.shapes["moe_width"]
            shape["shared_expert_intermediate_size"] = count.shapes.get("shared_width", 0)
        shape |= {"family": count.family, "head": _head_name(count.head_class)}
        shape["gated_mlp"] = shape.get("gated_mlp", True) if count.family == "decoder" else _gated(config)
        if count.family == "vision":
            shape["encoder_seq"] = count.shapes.get("patches")
        elif count.shapes.get("encoder_positions"):
            shape["encoder_seq"] = count.shapes["encoder_positions"]
        notes.extend(count.notes)
        exact = count.total
    if overrides:
        shape.update(overrides)
        if exact:
            notes.append("shape overrides given: parameters counted from the shapes, not the config")
        exact = 0
    return shape, exact, notes


def _head_name(class_name: str) -> str:
    from .architectures.common import head_kind

    return head_kind(class_name) or "lm"


def _gated(config: dict[str, Any]) -> bool:
    return str(config.get("feed_forward_proj") or "").startswith("gated-")


def spec_from_config(
    config: dict[str, Any],
    name: str = "config.json",
    params: int = 0,
    overrides: dict[str, Any] | None = None,
) -> ModelSpec:
    """The spec of the model a config.json describes; `params` (stored weights) wins over the count."""
    shape, exact, notes = _counted_shape(
        config, {k: v for k, v in (overrides or {}).items() if v is not None}
    )
    spec = _from_shapes(name, shape, params=params or exact, source="config.json")
    return spec.with_notes(*notes)


def spec_from_path(
    path: str | Path, overrides: dict[str, Any] | None = None
) -> tuple[ModelSpec, dict[str, Any]]:
    """A spec from a model file, a model folder or a config.json; also what inspect found.

    Returns (spec, facts): facts has the stored parameter count, parameters per dtype and the
    quantization inspect reported, which decide the default `--weights`.
    """
    from ..inspection import config_near, inspect
    from ..source import resolve_input

    p = resolve_input(path)
    overrides = {k: v for k, v in (overrides or {}).items() if v is not None}
    if p.is_file() and p.name.endswith(".json"):
        try:
            config = json.loads(p.read_bytes())
        except (OSError, ValueError) as exc:
            raise SpecError(f"cannot read {p.name}: {exc}") from None
        if not isinstance(config, dict):
            raise SpecError(f"{p.name} is not a config object")
        spec = spec_from_config(config, p.parent.name or p.name, overrides=overrides)
        return spec, {"torch_dtype": config.get("torch_dtype") or config.get("dtype")}
    info = inspect(p)
    stored = info.parameter_count
    facts: dict[str, Any] = {
        "format": info.format,
        "stored_parameters": stored,
        "parameters_by_dtype": info.parameters_by_dtype,
        "quantization": info.quantization,
        "torch_dtype": info.architecture.get("torch_dtype"),
    }
    logical = (info.quantization or {}).get("logical_parameter_count") or stored
    shape = dict(info.architecture)
    notes: list[str] = []
    if info.architecture.get("source") == "config.json":
        config = config_near(p)  # inspect kept only the common keys; the spellings here need all of it
        if config:
            shape, _, notes = _counted_shape(config, {}, weights_counted=True)
    shape.update(overrides)
    if not _int(shape.get("layers")) or not _int(shape.get("hidden_size")) or not _int(shape.get("heads")):
        if not logical:
            raise SpecError(f"{p.name} holds no tensors to estimate")
        spec = spec_from_size(int(logical), overrides)
        return replace(spec, name=p.name, source=info.format).with_notes(
            "no config.json or architecture keys next to the weights"
        ), facts
    spec = _from_shapes(
        p.name, shape, params=int(logical), source=f"{info.format} + {shape.get('source', 'flags')}"
    )
    return spec.with_notes(*notes), facts
