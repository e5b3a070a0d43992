"""What every architecture counter shares: reading config.json, the count it returns, and the
building blocks (linear layers, norms, task heads) whose sizes transformers' modules have.

Sizes follow transformers' own modules: `nn.Linear(i, o, bias)` holds i·o (+o) parameters,
`nn.LayerNorm(d)` 2·d (d without bias), an RMSNorm d. A weight tied to another one
(`tie_word_embeddings`) is one parameter, as `model.parameters()` counts it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from ..spec import SpecError

# model types transformers runs with eager attention only (no SDPA or FlashAttention support)
EAGER_ATTENTION = frozenset(("t5", "mt5", "bloom", "gptj"))
# model types whose norms are nn.LayerNorm (the rest: RMSNorm-style, upcast to fp32)
LAYER_NORM = frozenset(("bert", "roberta", "xlm-roberta", "distilbert", "vit", "bart", "whisper", "gpt2"))
LAYER_NORM |= {"gpt_bigcode", "gpt_neox", "gptj", "falcon", "bloom", "opt", "phi", "stablelm", "starcoder2"}
LAYER_NORM |= {"gpt_neo", "mpt", "olmo"}
# model types whose eager attention takes the softmax in the compute dtype (no fp32 upcast)
SOFTMAX_IN_DTYPE = frozenset(("bert", "roberta", "xlm-roberta", "distilbert", "vit", "bart", "whisper"))

DECODER = "decoder"
ENCODER_DECODER = "encoder-decoder"
ENCODER = "encoder"
VISION = "vision"


@dataclass(frozen=True)
class ParameterCount:
    """Parameters of the class a config.json names, by part, and what the memory model needs.

    `parts` adds up to `total`. `shapes` are the sizes the memory model reads, in the spec's own
    names (layers, hidden_size, heads...; encoder_layers for an encoder-decoder, encoder_seq for a
    length the model fixes, the MoE layout, gated_mlp where the config decides it).
    """

    model_type: str
    family: str
    head_class: str
    parts: dict[str, int]
    shapes: dict[str, Any] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.model_type in EAGER_ATTENTION:
            self.shapes["eager_attention"] = True
        if self.model_type in LAYER_NORM:
            self.shapes["layer_norm"] = True
        if self.model_type in SOFTMAX_IN_DTYPE:
            self.shapes["softmax_fp32"] = False

    @property
    def total(self) -> int:
        return sum(self.parts.values())


class Config:
    """config.json values by any of their spellings, with transformers' defaults behind them."""

    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc
        self.model_type = str(doc.get("model_type") or "")

    def get(self, *keys: str, default: Any = None) -> Any:
        for key in keys:
            value = self.doc.get(key)
            if value is not None:
                return value
        return default

    def int(self, *keys: str, default: int | None = None) -> int:
        value = self.get(*keys, default=default)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value < 0:
            if default is None:
                raise SpecError(f"{self.model_type} config: {keys[0]} missing or not a number")
            return default
        return int(value)

    def flag(self, *keys: str, default: bool = False) -> bool:
        return bool(self.get(*keys, default=default))

    @property
    def head_class(self) -> str:
        archs = self.doc.get("architectures")
        return str(archs[0]) if isinstance(archs, list) and archs else ""

    @property
    def num_labels(self) -> int:
        labels = self.doc.get("id2label")
        if isinstance(labels, dict) and labels:
            return len(labels)
        return self.int("num_labels", default=2)

    def tied(self, default: bool = True) -> bool:
        return self.flag("tie_word_embeddings", default=default)


def linear(fan_in: int, fan_out: int, bias: bool = False) -> int:
    return fan_in * fan_out + (fan_out if bias else 0)


def layer_norm(width: int, bias: bool = True) -> int:
    return 2 * width if bias else width


# How a class name ends → what sits on top of the base model. Checked longest suffix first.
LM_SUFFIXES = ("ForCausalLM", "LMHeadModel", "ForConditionalGeneration", "ForMaskedLM", "WithLMHead")
CLASSIFIER_SUFFIXES = ("ForSequenceClassification", "ForImageClassification", "ForAudioClassification")


def head_kind(class_name: str) -> str:
    """'lm', 'classifier', 'token', 'qa', 'pretraining', 'base' or '' (not a class we know)."""
    if class_name.endswith("ForPreTraining"):
        return "pretraining"
    if class_name.endswith(LM_SUFFIXES):
        return "lm"
    if class_name.endswith(CLASSIFIER_SUFFIXES):
        return "classifier"
    if class_name.endswith("ForTokenClassification"):
        return "token"
    if class_name.endswith("ForQuestionAnswering"):
        return "qa"
    if class_name.endswith(("Model", "EncoderModel")) and "For" not in class_name:
        return "base"
    return ""


def unknown_head_note(cfg: Config, assumed: str) -> tuple[str, ...]:
    if not cfg.head_class:
        return (f"no architectures entry in the config: counted as {assumed}",)
    return (f"{cfg.head_class}: a head we do not count; counted as {assumed}",)
