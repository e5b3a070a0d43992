"""A `ModelSpec` from what the user has: a model file or folder (parameters and dtypes from
`inspect`, shapes from config.json or GGUF keys), a config.json alone (counted exactly by
estimate/architectures when the model type is known), or a bare size like "7B" with optional
shape overrides. Missing shapes are filled from the nearest reference architecture and the
assumption is recorded in `notes`, so every estimate says what it guessed.
"""

from __future__ import annotations

import json
import math
from dataclasses import replace
from pathlib import Path
from typing import Any

from .architectures import count_parameters
from .architectures.common import head_kind
from .spec import ModelSpec, SpecError, gated_mlp, positive_int, spec_from_shapes

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


def _shape_params(shape: dict[str, Any]) -> int:
    spec = spec_from_shapes("x", shape, params=0)
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
        base = spec_from_shapes(name, {**shape, "layers": 1}, params=0)
        per_layer = base.shaped_params - base.embedding_params - base.lm_head_params - base.hidden_size
        fixed = base.embedding_params + base.lm_head_params + base.hidden_size
        shape["layers"] = max(1, round((params - fixed) / per_layer))
        note += f"; layers scaled to {shape['layers']} to match {params / 1e9:.3g}B parameters"
    spec = spec_from_shapes(f"{params / 1e9:.3g}B", shape, params=params, source="size")
    return replace(spec, shapes_assumed=True).with_notes(note)


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
            positive_int(shape.get("intermediate_size", 0)) and shape["intermediate_size"] // 2
        )
    act = str(shape.get("hidden_act", "silu")).lower()
    shape["gated_mlp"] = gated_mlp(model_type, act)
    if model_type == "chatglm" and not source.get("multi_query_attention", True):
        shape["kv_heads"] = shape.get("heads")
    window = positive_int(shape.get("sliding_window"))
    if window and shape.get("use_sliding_window") is False and model_type.startswith("qwen"):
        window = None  # Qwen2 configs carry a window they do not use
    if window:
        shape["sliding_window"] = window
        layer_types = shape.get("layer_types")
        if isinstance(layer_types, list):
            shape["sliding_layers"] = sum(1 for t in layer_types if "sliding" in str(t))
        elif positive_int(shape.get("sliding_window_pattern")):
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
    shape = shapes_from_config(config)
    notes: list[str] = []
    model_type = str(config.get("model_type") or "") or "no model_type"
    why = "not a model type tensorfile counts exactly"
    try:
        count = count_parameters(config)
    except SpecError as exc:  # a known type whose config lacks a size its count needs
        count, why = None, f"{str(exc).split(': ', 1)[-1]}, so not counted as transformers builds it"
    if count is None:
        missing = [f"{k} ({how})" for k, how in _ASSUMED.items() if not positive_int(shape.get(k))]
        counted = "parameters from the weights; shapes" if weights_counted else "parameters and shapes"
        notes.append(
            f"{model_type}: {why}; {counted} read as a Llama-style decoder (attention, gated MLP, "
            "norms from the config's sizes)" + (f", assumed {', '.join(missing)}" if missing else "")
        )
        if isinstance(config.get("vision_config"), dict) or isinstance(config.get("audio_config"), dict):
            notes.append("the config has a vision or audio tower: its parameters are not counted")
        exact = 0
    else:
        shape |= count.shapes | {"family": count.family, "head": _head_name(count.head_class)}
        notes.extend(count.notes)
        exact = count.total
    if overrides:
        shape.update(overrides)
        if exact:
            notes.append("shape overrides given: parameters counted from the shapes, not the config")
        exact = 0
    return shape, exact, notes


def _head_name(class_name: str) -> str:
    return head_kind(class_name) or "lm"


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
    spec = spec_from_shapes(name, shape, params=params or exact, source="config.json")
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
    if not all(positive_int(shape.get(k)) for k in ("layers", "hidden_size", "heads")):
        if not logical:
            raise SpecError(f"{p.name} holds no tensors to estimate")
        spec = spec_from_size(int(logical), overrides)
        return replace(spec, name=p.name, source=info.format).with_notes(
            "no config.json or architecture keys next to the weights"
        ), facts
    spec = spec_from_shapes(
        p.name, shape, params=int(logical), source=f"{info.format} + {shape.get('source', 'flags')}"
    )
    return spec.with_notes(*notes), facts
