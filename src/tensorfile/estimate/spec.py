"""What the memory model needs to know about a model: its shapes and parameter counts.

A `ModelSpec` holds a model's shapes (decoder, encoder-decoder, encoder or vision; see `family`)
and its stored parameter count; `spec_from_shapes` builds one from our shape names.
model_source.py makes one from a model file or folder, a config.json or a bare size like "7B",
recording in `notes` whatever it assumed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from typing import Any

from ..errors import TensorfileError

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
    # transformers has no SDPA/FlashAttention path for it (T5's position bias, BLOOM's ALiBi, GPT-J):
    # attention scores are materialised whatever --flash-attn says
    eager_attention: bool = False
    layer_norm: bool = False  # nn.LayerNorm (BERT, GPT-2...): keeps its input only; else RMSNorm-style
    softmax_fp32: bool = True  # eager attention upcasts its softmax to fp32 (Llama, T5; not BERT, BART)
    max_positions: int = 0  # learned absolute positions (BERT, BART, Whisper's decoder): the longest input
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


def positive_int(value: Any) -> int | None:
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, (int, float)) and value > 0:
        return int(value)
    return None


def spec_from_shapes(name: str, shape: dict[str, Any], params: int, source: str = "shapes") -> ModelSpec:
    layers = positive_int(shape.get("layers"))
    hidden = positive_int(shape.get("hidden_size"))
    heads = positive_int(shape.get("heads"))
    if not (layers and hidden and heads):
        missing = [k for k in ("layers", "hidden_size", "heads") if not positive_int(shape.get(k))]
        raise SpecError(
            f"model shapes incomplete: {', '.join(missing)} unknown (give --{missing[0].split('_')[0]})"
        )
    if not positive_int(shape.get("head_dim")) and hidden % heads:
        raise SpecError(f"hidden size {hidden} is not a multiple of {heads} heads (give --head-dim)")
    head_dim = positive_int(shape.get("head_dim")) or hidden // heads
    kv_heads = positive_int(shape.get("kv_heads")) or heads
    if heads % kv_heads:
        raise SpecError(f"{kv_heads} KV heads do not divide {heads} attention heads")
    experts = positive_int(shape.get("experts")) or 0
    active = positive_int(shape.get("experts_per_token")) or 0
    if experts and active > experts:
        raise SpecError(f"{active} experts per token, but only {experts} experts")
    inter = positive_int(shape.get("intermediate_size")) or 4 * hidden
    vocab = positive_int(shape.get("vocab_size")) or (0 if shape.get("family") == "vision" else 32000)
    window = positive_int(shape.get("sliding_window"))
    sliding_layers = positive_int(shape.get("sliding_layers"))
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
        moe_intermediate_size=positive_int(shape.get("moe_intermediate_size")) or 0,
        shared_experts=positive_int(shape.get("shared_experts")) or 0,
        shared_expert_width=positive_int(shape.get("shared_expert_intermediate_size")) or 0,
        first_dense_layers=positive_int(shape.get("first_dense_layers")) or 0,
        sliding_window=window,
        sliding_layers=sliding_layers or 0 if window else 0,
        qkv_bias=bool(shape.get("qkv_bias", False)),
        family=str(shape.get("family") or "decoder"),
        encoder_layers=positive_int(shape.get("encoder_layers")) or 0,
        encoder_seq=positive_int(shape.get("encoder_seq")) or 0,
        head=str(shape.get("head") or "lm"),
        max_positions=positive_int(shape.get("max_positions")) or 0,
        eager_attention=bool(shape.get("eager_attention", False)),
        layer_norm=bool(shape.get("layer_norm", False)),
        softmax_fp32=bool(shape.get("softmax_fp32", True)),
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
