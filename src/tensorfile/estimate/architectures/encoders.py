"""Encoder-only models (BERT, RoBERTa, XLM-RoBERTa, DistilBERT) and the Vision Transformer.

They have no KV cache and do not generate; their heads differ by class: a pooler on the base
model and the sentence classifiers, a masked-LM transform whose decoder weight is tied to the
token embeddings, a classifier on the [CLS] token for ViT.
"""

from __future__ import annotations

from .common import ENCODER, VISION, Config, ParameterCount, head_kind, layer_norm, linear, unknown_head_note


def _encoder_layer(hidden: int, inner: int, qkv_bias: bool = True) -> int:
    attention = 3 * linear(hidden, hidden, qkv_bias) + linear(hidden, hidden, True)
    return attention + linear(hidden, inner, True) + linear(inner, hidden, True) + 2 * layer_norm(hidden)


def _shapes(layers: int, hidden: int, heads: int, vocab: int, inner: int) -> dict[str, int]:
    return {
        "layers": layers,
        "hidden_size": hidden,
        "heads": heads,
        "kv_heads": heads,
        "head_dim": hidden // heads,
        "vocab_size": vocab,
        "intermediate_size": inner,
        "gated_mlp": False,
    }


def _mlm_transform(hidden: int, vocab: int, tied: bool) -> int:
    """dense + layer norm + the output bias; the output weight is the embeddings' unless untied."""
    return linear(hidden, hidden, True) + layer_norm(hidden) + vocab + (0 if tied else vocab * hidden)


def bert(cfg: Config) -> ParameterCount:
    """BERT and RoBERTa (same body; RoBERTa's classifier is its own two-layer head)."""
    hidden, layers = cfg.int("hidden_size"), cfg.int("num_hidden_layers")
    heads, inner, vocab = cfg.int("num_attention_heads"), cfg.int("intermediate_size"), cfg.int("vocab_size")
    embeddings = vocab * hidden + cfg.int("type_vocab_size", default=2) * hidden + layer_norm(hidden)
    positions = cfg.int("max_position_embeddings") * hidden
    roberta = cfg.model_type in ("roberta", "xlm-roberta")
    # RoBERTa's positions start after the padding index: two fewer usable
    max_positions = cfg.int("max_position_embeddings") - (
        cfg.int("pad_token_id", default=1) + 1 if roberta else 0
    )
    pooler = linear(hidden, hidden, True)
    kind, notes, labels = head_kind(cfg.head_class), (), cfg.num_labels
    tied = cfg.tied()
    if kind == "base":
        head = pooler
    elif kind == "lm":
        head = _mlm_transform(hidden, vocab, tied)
    elif kind == "pretraining":  # masked LM + next-sentence prediction on the pooled output
        head = _mlm_transform(hidden, vocab, tied) + pooler + linear(hidden, 2, True)
    elif kind == "classifier":
        head = (
            linear(hidden, hidden, True) + linear(hidden, labels, True)
            if roberta
            else pooler + linear(hidden, labels, True)
        )
    elif kind == "token":
        head = linear(hidden, labels, True)
    elif kind == "qa":
        head = linear(hidden, 2, True)
    else:
        head = _mlm_transform(hidden, vocab, tied)
        notes = unknown_head_note(cfg, "a masked LM")
    parts = {
        "embeddings": embeddings,
        "positions": positions,
        "blocks": layers * _encoder_layer(hidden, inner),
        "head": head,
    }
    shapes = _shapes(layers, hidden, heads, vocab, inner) | {"max_positions": max_positions}
    return ParameterCount(cfg.model_type, ENCODER, cfg.head_class, parts, shapes, notes)


def distilbert(cfg: Config) -> ParameterCount:
    hidden, layers = cfg.int("dim", "hidden_size"), cfg.int("n_layers", "num_hidden_layers")
    heads, vocab = cfg.int("n_heads", "num_attention_heads"), cfg.int("vocab_size")
    inner = cfg.int("hidden_dim", "intermediate_size")
    kind, notes, labels = head_kind(cfg.head_class), (), cfg.num_labels
    max_positions = cfg.int("max_position_embeddings")
    if kind == "base":
        head = 0
    elif kind == "classifier":  # pre_classifier + classifier
        head = linear(hidden, hidden, True) + linear(hidden, labels, True)
    elif kind == "token":
        head = linear(hidden, labels, True)
    elif kind == "qa":
        head = linear(hidden, 2, True)
    else:
        head = _mlm_transform(hidden, vocab, cfg.tied())
        if kind != "lm":
            notes = unknown_head_note(cfg, "DistilBertForMaskedLM")
    parts = {
        "embeddings": vocab * hidden + layer_norm(hidden),
        "positions": cfg.int("max_position_embeddings") * hidden,
        "blocks": layers * _encoder_layer(hidden, inner),
        "head": head,
    }
    shapes = _shapes(layers, hidden, heads, vocab, inner) | {"max_positions": max_positions}
    return ParameterCount(cfg.model_type, ENCODER, cfg.head_class, parts, shapes, notes)


def vit(cfg: Config) -> ParameterCount:
    """ViT: patches projected by a convolution, a [CLS] token, learned positions per patch."""
    hidden, layers = cfg.int("hidden_size"), cfg.int("num_hidden_layers")
    heads, inner = cfg.int("num_attention_heads"), cfg.int("intermediate_size")
    image, patch = cfg.int("image_size", default=224), cfg.int("patch_size", default=16)
    channels = cfg.int("num_channels", default=3)
    patches = (image // patch) ** 2
    kind, notes = head_kind(cfg.head_class), ()
    if kind == "base":
        head = linear(hidden, hidden, True)  # the pooler
    elif kind == "classifier":
        head = linear(hidden, cfg.num_labels, True)
    else:
        head = linear(hidden, cfg.num_labels, True)
        notes = unknown_head_note(cfg, "ViTForImageClassification")
    parts = {
        "embeddings": hidden + linear(channels * patch * patch, hidden, True),  # [CLS] + projection
        "positions": (patches + 1) * hidden,
        "blocks": layers * _encoder_layer(hidden, inner, cfg.flag("qkv_bias", default=True)),
        "norms": layer_norm(hidden),
        "head": head,
    }
    shapes = _shapes(layers, hidden, heads, 0, inner) | {"encoder_seq": patches + 1}  # patches + [CLS]
    return ParameterCount(cfg.model_type, VISION, cfg.head_class, parts, shapes, notes)


COUNTERS = {"bert": bert, "roberta": bert, "xlm-roberta": bert, "distilbert": distilbert, "vit": vit}
