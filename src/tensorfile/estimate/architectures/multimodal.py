"""Vision-language models (Gemma 3, LLaVA, PaliGemma): a vision tower, a projector into the
language model's width, and the language model itself, counted by its own type's counter.

The language model generates, so the family is its (decoder); the tower and projector are parts
of their own, held like embeddings by the memory model, and images lengthen the prompt by their
tokens (the notes say how many per image).
"""

from __future__ import annotations

from typing import Any

from .common import Config, ParameterCount, head_kind, layer_norm, linear
from .decoders import COUNTERS as DECODERS


def _vision_layer(hidden: int, inner: int) -> int:
    """A CLIP/SigLIP encoder layer: biased q/k/v/o, two layer norms, a two-matrix MLP."""
    return (
        4 * linear(hidden, hidden, True)
        + 2 * layer_norm(hidden)
        + linear(hidden, inner, True)
        + linear(inner, hidden, True)
    )


def vision_tower(doc: dict[str, Any]) -> tuple[int, int]:
    """(parameters, patches) of a clip_vision_model or siglip_vision_model config."""
    cfg = Config(doc)
    hidden, inner = cfg.int("hidden_size", default=768), cfg.int("intermediate_size", default=3072)
    layers = cfg.int("num_hidden_layers", default=12)
    image, patch = cfg.int("image_size", default=224), cfg.int("patch_size", default=16)
    channels = cfg.int("num_channels", default=3)
    patches = (image // patch) ** 2
    count = layers * _vision_layer(hidden, inner) + layer_norm(hidden)  # + post_layernorm
    if cfg.model_type == "clip_vision_model":  # [CLS], unbiased patch conv, pre-norm
        count += hidden + channels * patch * patch * hidden + (patches + 1) * hidden + layer_norm(hidden)
    else:  # SigLIP: biased patch conv, a position per patch, optionally the attention-pooling head
        count += linear(channels * patch * patch, hidden, True) + patches * hidden
        if cfg.flag("vision_use_head", default=True):
            count += hidden + linear(hidden, 3 * hidden, True) + linear(hidden, hidden, True)
            count += layer_norm(hidden) + linear(hidden, inner, True) + linear(inner, hidden, True)
    return count, patches


_TEXT_DEFAULTS = {"gemma3": "gemma3_text", "llava": "llama", "paligemma": "gemma"}
_TEXT_CLASSES = {"gemma3_text": "Gemma3ForCausalLM", "llama": "LlamaForCausalLM", "gemma": "GemmaForCausalLM"}
_VISION_DEFAULTS = {
    "gemma3": "siglip_vision_model",
    "llava": "clip_vision_model",
    "paligemma": "siglip_vision_model",
}


def vision_language(cfg: Config) -> ParameterCount:
    text_doc = dict(cfg.get("text_config", default={}) or {})
    text_type = str(text_doc.get("model_type") or _TEXT_DEFAULTS[cfg.model_type])
    text_doc["model_type"] = text_type
    text_doc["architectures"] = [_TEXT_CLASSES.get(text_type, "ForCausalLM")]
    counter = DECODERS.get(text_type)
    if counter is None:
        from ..spec import SpecError

        raise SpecError(f"{cfg.model_type} config: language model type {text_type!r} not counted")
    text = counter(Config(text_doc))
    vision_doc = dict(cfg.get("vision_config", default={}) or {})
    vision_doc.setdefault("model_type", _VISION_DEFAULTS[cfg.model_type])
    tower, patches = vision_tower(vision_doc)
    v_hidden = Config(vision_doc).int("hidden_size", default=768)
    t_hidden = text.shapes["hidden_size"]
    if cfg.model_type == "gemma3":  # a projection matrix and an RMS norm over the tower's output
        projector = v_hidden * t_hidden + v_hidden
        image_tokens = cfg.int("mm_tokens_per_image", default=256)
    elif cfg.model_type == "paligemma":
        projector = linear(v_hidden, Config(vision_doc).int("projection_dim", default=2048), True)
        image_tokens = patches
    else:  # LLaVA: two linear layers over one or several of the tower's layers
        layers = cfg.get("vision_feature_layer", default=-2)
        width = v_hidden * (len(layers) if isinstance(layers, list) else 1)
        bias = cfg.flag("multimodal_projector_bias", default=True)
        projector = linear(width, t_hidden, bias) + linear(t_hidden, t_hidden, bias)
        image_tokens = cfg.int("image_seq_length", default=patches)
    parts = {**text.parts, "vision tower": tower, "projector": projector}
    if head_kind(cfg.head_class) == "base":  # Gemma3Model, LlavaModel: no LM head
        parts["head"] = 0
    notes = (*text.notes, f"each image adds {image_tokens} tokens to the prompt")
    return ParameterCount(cfg.model_type, text.family, cfg.head_class, parts, text.shapes, notes)


COUNTERS = {"gemma3": vision_language, "llava": vision_language, "paligemma": vision_language}
