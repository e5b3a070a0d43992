"""Keras model and compile configs: model class, layers, Lambda layers, the compiled optimizer."""

from __future__ import annotations

from typing import Any

from ...model import (
    is_plain_number,
)


def count_lambda(config: Any) -> int:
    if isinstance(config, dict):
        own = 1 if config.get("class_name") == "Lambda" else 0
        return own + sum(count_lambda(v) for v in config.values())
    if isinstance(config, list):
        return sum(count_lambda(v) for v in config)
    return 0


def config_summary(config: Any) -> dict[str, Any]:
    """Model class, name, layer count and names from a Keras model config (2 or 3)."""
    out: dict[str, Any] = {}
    if not isinstance(config, dict):
        return out
    out["model_class"] = config.get("class_name")
    inner = config.get("config")
    if isinstance(inner, dict):
        if inner.get("name") is not None:
            out["model_name"] = inner.get("name")
        layers = inner.get("layers")
        if isinstance(layers, list):
            # InputLayer entries are placeholders, not layers with weights: counted apart.
            real = [
                layer
                for layer in layers
                if isinstance(layer, dict)
                and isinstance(layer.get("config", {}), dict)
                and layer.get("class_name") != "InputLayer"
            ]
            out["layer_count"] = len(real)
            out["input_layers"] = len(layers) - len(real)
            out["layer_names"] = [layer.get("config", {}).get("name") or layer.get("name") for layer in real][
                :256
            ]
    out["lambda_layers"] = count_lambda(config)
    return out


def compiled_optimizer_class(training_config: Any) -> str | None:
    if not isinstance(training_config, dict):
        return None
    opt = training_config.get("optimizer_config") or training_config.get("optimizer")
    if isinstance(opt, dict):
        return opt.get("class_name") or opt.get("registered_name")
    return opt if isinstance(opt, str) else None


def optimizer_numbers(training_config: Any) -> dict[str, Any]:
    """Numeric settings of the compiled optimizer (learning_rate, beta_1, epsilon…)."""
    opt = training_config.get("optimizer_config") or training_config.get("optimizer")
    config = opt.get("config") if isinstance(opt, dict) else None
    if not isinstance(config, dict):
        return {}
    return {str(k): v for k, v in list(config.items())[:64] if is_plain_number(v)}
