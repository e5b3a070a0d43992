"""A model's hyper-parameters as llama.cpp's converter sees them, without transformers.

convert_hf_to_gguf.py reads `AutoConfig.from_pretrained(dir).to_dict()`: the config.json values
plus every default the transformers config class fills in (`rope_theta`, `rms_norm_eps`,
`max_position_embeddings`, a computed `head_dim`, …), and each of those becomes a GGUF key. So the
defaults matter as much as the file. They come from `hf_config_defaults.json`, generated from the
config classes themselves by tests/fixtures/make_hf_config_defaults.py (the transformers version
is recorded there); the few values a class computes from others are the rules below.
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

from ...errors import FormatError

# Sub-configs that the converter lifts to the top level (load_hparams, TextModel.__init__).
_NESTED = ("llm_config", "lm_config", "thinker_config", "language_config")


@cache
def _defaults_table() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("hf_config_defaults.json").read_text(encoding="utf-8")
    return json.loads(text)


def defaults_for(model_type: str) -> dict[str, Any] | None:
    """transformers' defaults for a model type (None when the table does not know it)."""
    entry = _defaults_table()["model_types"].get(model_type)
    return None if entry is None else dict(entry["defaults"])


def transformers_version() -> str:
    return str(_defaults_table()["transformers"])


def load_hparams(folder: Any) -> dict[str, Any]:
    """config.json with transformers' defaults filled in, as the converter's `self.hparams`."""
    path = folder / "config.json"
    if not path.exists():
        raise FormatError("no config.json: GGUF needs the model's architecture", folder)
    try:
        config = json.loads(path.read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise FormatError(f"config.json is not JSON ({exc})", path) from None
    if not isinstance(config, dict):
        raise FormatError("config.json is not a JSON object", path)
    hparams = complete(config)
    # from_pretrained records where the config came from; the converter reads it as a name hint
    hparams["_name_or_path"] = str(folder)
    for key in _NESTED:
        if key in hparams and isinstance(hparams[key], dict):
            nested = (
                hparams[key].get("text_config", hparams[key]) if key == "thinker_config" else hparams[key]
            )
            hparams["text_config"] = complete(nested)
    if isinstance(hparams.get("text_config"), dict):
        text = dict(hparams["text_config"])
        if "model_type" not in text and (sub := _TEXT_CONFIG_TYPES.get(str(hparams.get("model_type")))):
            text["model_type"] = sub  # the sub-config class the parent builds, as its to_dict names it
        merged = {**hparams, **complete(text)}
        if not merged.get("architectures"):
            # get_model_architecture picks the class from the top level when text_config names none
            merged["architectures"] = hparams.get("architectures")
        hparams = merged
    return hparams


def complete(config: dict[str, Any]) -> dict[str, Any]:
    """One config dict as its transformers class's `to_dict()` would give it."""
    model_type = str(config.get("model_type", ""))
    defaults = defaults_for(model_type) or {}
    out = {**defaults, **config}
    for rule in _DERIVED.get(model_type, ()):
        rule(out, config)
    return out


def _head_dim(out: dict[str, Any], given: dict[str, Any]) -> None:
    if given.get("head_dim") is None and out.get("num_attention_heads"):
        out["head_dim"] = out["hidden_size"] // out["num_attention_heads"]


def _kv_heads(out: dict[str, Any], given: dict[str, Any]) -> None:
    if given.get("num_key_value_heads") is None:
        out["num_key_value_heads"] = out.get("num_attention_heads")


def _rope_type_alias(out: dict[str, Any], given: dict[str, Any]) -> None:
    # transformers' rope validation copies a legacy "type" into "rope_type" and keeps both
    scaling = out.get("rope_scaling")
    if isinstance(scaling, dict) and "type" in scaling and "rope_type" not in scaling:
        out["rope_scaling"] = {**scaling, "rope_type": scaling["type"]}


def _sliding_window_off(out: dict[str, Any], given: dict[str, Any]) -> None:
    # Qwen2/Qwen3 classes drop the window unless use_sliding_window is set
    if not out.get("use_sliding_window", False):
        out["sliding_window"] = None


def _layer_types(out: dict[str, Any], given: dict[str, Any]) -> None:
    # Qwen2/Qwen3: layers from max_window_layers on use the window, when there is one
    if given.get("layer_types") is None and "layer_types" in out:
        window = out.get("sliding_window") is not None
        first = out.get("max_window_layers", 0)
        out["layer_types"] = [
            "sliding_attention" if window and i >= first else "full_attention"
            for i in range(out["num_hidden_layers"])
        ]


def _gemma2_layer_types(out: dict[str, Any], given: dict[str, Any]) -> None:
    # Gemma2: every other layer slides, starting with the first
    if given.get("layer_types") is None:
        out["layer_types"] = [
            "sliding_attention" if (i + 1) % 2 else "full_attention" for i in range(out["num_hidden_layers"])
        ]


def _gemma3_text(out: dict[str, Any], given: dict[str, Any]) -> None:
    # Gemma3TextConfig: a bidirectional (embedding) model halves its window; the pattern (a private
    # attribute, but to_dict keeps it) decides which layers slide when layer_types is not given
    if out.get("use_bidirectional_attention"):
        out["sliding_window"] = out["sliding_window"] // 2 + 1
    pattern = given.get("sliding_window_pattern", 6)
    out["_sliding_window_pattern"] = pattern
    if given.get("layer_types") is None:
        out["layer_types"] = [
            "sliding_attention" if (i + 1) % pattern else "full_attention"
            for i in range(out["num_hidden_layers"])
        ]


def _phi3_rope(out: dict[str, Any], given: dict[str, Any]) -> None:
    # Phi3Config._rope_scaling_adjustment: the old names of longrope are renamed in place
    scaling = out.get("rope_scaling")
    if isinstance(scaling, dict) and scaling.get("type") in ("su", "yarn"):
        out["rope_scaling"] = {**scaling, "type": "longrope"}


# Only Llama and Phi-3 derive kv heads; Mistral, Mixtral and Qwen keep their class defaults
# (e.g. Qwen2's 32 kv heads) when config.json leaves them out, and so does the converter.
_QWEN = (_rope_type_alias, _sliding_window_off, _layer_types)
_DERIVED: dict[str, tuple[Any, ...]] = {
    "llama": (_kv_heads, _head_dim, _rope_type_alias),
    "mistral": (),  # no "type" → "rope_type" copy in these two classes
    "mixtral": (),
    "qwen2": _QWEN,
    "qwen2_moe": _QWEN,
    "qwen3": _QWEN,
    "qwen3_moe": _QWEN,
    "gemma2": (_gemma2_layer_types,),
    "gemma3_text": (_gemma3_text,),
    "phi3": (_kv_heads, _phi3_rope),
}
# Multimodal configs whose text_config is one class: its model_type when the file leaves it out.
_TEXT_CONFIG_TYPES = {"gemma3": "gemma3_text"}


def find(hparams: dict[str, Any], keys: tuple[str, ...]) -> Any:
    """The first of `keys` present (the converter's `find_hparam(..., optional=True)`)."""
    for key in keys:
        if key in hparams:
            return hparams[key]
    return None


def block_count(hparams: dict[str, Any]) -> int:
    value = find(hparams, ("n_layers", "num_hidden_layers", "n_layer", "num_layers"))
    if not isinstance(value, int):
        raise FormatError("config.json gives no layer count (num_hidden_layers)")
    return value


def rope_parameters(hparams: dict[str, Any]) -> dict[str, Any]:
    """TextModel.__init__'s `rope_parameters`: the rope dict with the global values mirrored in."""
    rope = dict(hparams.get("rope_parameters", hparams.get("rope_scaling")) or {})
    theta = find(
        hparams,
        ("global_rope_theta", "rope_global_theta", "rope_theta_global", "rope_theta", "rotary_emb_base"),
    )
    local_theta = find(
        hparams,
        (
            "local_rope_theta",
            "rope_local_theta",
            "rope_theta_local",
            "swa_rope_theta",
            "rope_local_base_freq",
        ),
    )
    partial = find(hparams, ("partial_rotary_factor", "rope_pct", "rope_percent"))
    original = find(hparams, ("original_max_position_embeddings",))
    if "full_attention" not in rope and "sliding_attention" not in rope:
        if local_theta is not None:
            rope["sliding_attention"] = {"rope_theta": local_theta}
        if "rope_theta" not in rope and theta is not None:
            rope["rope_theta"] = theta
        if "rope_type" not in rope and (kind := rope.get("type")) is not None:
            rope["rope_type"] = kind
        if "partial_rotary_factor" not in rope and partial is not None:
            rope["partial_rotary_factor"] = partial
        if "original_max_position_embeddings" not in rope and original is not None:
            rope["original_max_position_embeddings"] = original
    return rope
