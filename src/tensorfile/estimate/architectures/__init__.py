"""Parameter counts from a config.json, as transformers builds the class it names.

    from tensorfile.estimate.architectures import count_parameters
    count = count_parameters(json.load(open("config.json")))   # None: a model type we do not know
    count.total, count.family, count.parts

One counter per architecture lineage (decoders, seq2seq, encoders, multimodal); each reads the type's own
config spellings with transformers' defaults, so the total equals
`sum(p.numel() for p in model.parameters())` of `architectures[0]` built from that config
(tests/test_estimate_param_counts.py checks every type against transformers on the meta device).
"""

from __future__ import annotations

from typing import Any

from .common import DECODER, ENCODER, ENCODER_DECODER, VISION, Config, ParameterCount
from .decoders import COUNTERS as _DECODERS
from .encoders import COUNTERS as _ENCODERS
from .multimodal import COUNTERS as _MULTIMODAL
from .seq2seq import COUNTERS as _SEQ2SEQ

__all__ = [
    "DECODER",
    "ENCODER",
    "ENCODER_DECODER",
    "VISION",
    "ParameterCount",
    "count_parameters",
    "known_types",
]

_COUNTERS = {**_DECODERS, **_SEQ2SEQ, **_ENCODERS, **_MULTIMODAL}


def known_types() -> list[str]:
    return sorted(_COUNTERS)


def count_parameters(config: dict[str, Any]) -> ParameterCount | None:
    """The count for this config's model type, or None when no counter knows the type."""
    counter = _COUNTERS.get(str(config.get("model_type") or ""))
    return counter(Config(config)) if counter else None
