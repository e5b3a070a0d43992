"""Encoder-decoder models (T5, mT5, BART, Whisper): both stacks, the decoder's cross-attention,
and the head of the class the config names.

The memory model needs each stack's depth and widths: `shapes` carries the decoder's
(layers, heads, head_dim: its self- and cross-attention caches) and the encoder's
(encoder_layers, encoder_hidden_size) separately.
"""

from __future__ import annotations

from .common import (
    ENCODER,
    ENCODER_DECODER,
    Config,
    ParameterCount,
    head_kind,
    layer_norm,
    linear,
    unknown_head_note,
)


def t5(cfg: Config) -> ParameterCount:
    """T5 and mT5: no biases, RMS norms, relative position buckets in each stack's first block."""
    d, d_ff, d_kv = cfg.int("d_model"), cfg.int("d_ff"), cfg.int("d_kv")
    heads, vocab = cfg.int("num_heads"), cfg.int("vocab_size")
    enc_layers = cfg.int("num_layers")
    dec_layers = cfg.int("num_decoder_layers", default=enc_layers)
    gated = str(cfg.get("feed_forward_proj", default="relu")).startswith("gated-")
    inner = heads * d_kv
    attention = 3 * linear(d, inner) + linear(inner, d)
    ff = (2 if gated else 1) * linear(d, d_ff) + linear(d_ff, d)
    position_buckets = cfg.int("relative_attention_num_buckets", default=32) * heads
    encoder = enc_layers * (attention + ff + 2 * d) + position_buckets + d
    decoder = dec_layers * (2 * attention + ff + 3 * d) + position_buckets + d
    kind, notes = head_kind(cfg.head_class), ()
    tied = cfg.tied(cfg.model_type == "t5")
    parts = {"embeddings": vocab * d, "encoder": encoder, "decoder": decoder, "head": 0}
    if kind == "base" and cfg.head_class.endswith("EncoderModel"):
        parts["decoder"] = 0
    elif kind == "lm":
        parts["head"] = 0 if tied else vocab * d
    elif kind != "base":
        parts["head"] = 0 if tied else vocab * d
        notes = unknown_head_note(cfg, "T5ForConditionalGeneration")
    if not parts["decoder"]:  # T5EncoderModel (text encoders of diffusion models): an encoder-only model
        shapes = _shapes(enc_layers, d, heads, d_kv, vocab, d_ff, 0, gated)
        return ParameterCount(cfg.model_type, ENCODER, cfg.head_class, parts, shapes, notes)
    shapes = _shapes(dec_layers, d, heads, d_kv, vocab, d_ff, enc_layers, gated)
    return ParameterCount(cfg.model_type, ENCODER_DECODER, cfg.head_class, parts, shapes, notes)


def _shapes(
    layers: int,
    hidden: int,
    heads: int,
    head_dim: int,
    vocab: int,
    inner: int,
    enc_layers: int,
    gated: bool = False,
) -> dict[str, int | bool]:
    """The spec's shapes: the decoder's (its caches), the encoder's depth; both stacks share widths."""
    return {
        "layers": layers,
        "hidden_size": hidden,
        "heads": heads,
        "kv_heads": heads,
        "head_dim": head_dim,
        "vocab_size": vocab,
        "intermediate_size": inner,
        "encoder_layers": enc_layers,
        "gated_mlp": gated,
    }


def _bart_layer(d: int, ffn: int, cross: bool, k_bias: bool = True) -> int:
    """One BART/Whisper block: self-attention (+ cross-attention), each with its layer norm, and
    the MLP with its own. Whisper's k_proj has no bias."""
    attention = linear(d, d, k_bias) + 3 * linear(d, d, True) + layer_norm(d)
    return (2 if cross else 1) * attention + linear(d, ffn, True) + linear(ffn, d, True) + layer_norm(d)


def bart(cfg: Config) -> ParameterCount:
    d, vocab = cfg.int("d_model"), cfg.int("vocab_size")
    enc_layers, dec_layers = cfg.int("encoder_layers"), cfg.int("decoder_layers")
    positions = (cfg.int("max_position_embeddings") + 2) * d  # BART's learned positions start at 2
    encoder = positions + enc_layers * _bart_layer(d, cfg.int("encoder_ffn_dim"), False) + layer_norm(d)
    decoder = positions + dec_layers * _bart_layer(d, cfg.int("decoder_ffn_dim"), True) + layer_norm(d)
    tied = cfg.tied()
    kind, notes = head_kind(cfg.head_class), ()
    head = 0
    if kind == "classifier":
        head = linear(d, d, True) + linear(d, cfg.num_labels, True)
    elif kind != "base":
        head = 0 if tied else vocab * d
        if kind != "lm":
            notes = unknown_head_note(cfg, "BartForConditionalGeneration")
    heads = cfg.int("decoder_attention_heads")
    parts = {"embeddings": vocab * d, "encoder": encoder, "decoder": decoder, "head": head}
    shapes = _shapes(dec_layers, d, heads, d // heads, vocab, cfg.int("decoder_ffn_dim"), enc_layers)
    shapes["max_positions"] = cfg.int("max_position_embeddings")
    return ParameterCount(cfg.model_type, ENCODER_DECODER, cfg.head_class, parts, shapes, notes)


def whisper(cfg: Config) -> ParameterCount:
    """Whisper: a convolutional front end over mel bins, then BART-like stacks without k biases."""
    d, vocab = cfg.int("d_model"), cfg.int("vocab_size")
    enc_layers, dec_layers = cfg.int("encoder_layers"), cfg.int("decoder_layers")
    mels = cfg.int("num_mel_bins", default=80)
    front = (mels * d * 3 + d) + (d * d * 3 + d)  # conv1, conv2 (kernel 3)
    encoder = front + cfg.int("max_source_positions", default=1500) * d
    encoder += enc_layers * _bart_layer(d, cfg.int("encoder_ffn_dim"), False, k_bias=False) + layer_norm(d)
    decoder = cfg.int("max_target_positions", default=448) * d
    decoder += dec_layers * _bart_layer(d, cfg.int("decoder_ffn_dim"), True, k_bias=False) + layer_norm(d)
    kind, notes = head_kind(cfg.head_class), ()
    head = 0
    if kind == "lm" and not cfg.tied():
        head = vocab * d
    elif kind not in ("lm", "base"):
        notes = unknown_head_note(cfg, "WhisperForConditionalGeneration")
    heads = cfg.int("decoder_attention_heads")
    parts = {"embeddings": vocab * d, "encoder": encoder, "decoder": decoder, "head": head}
    shapes = _shapes(dec_layers, d, heads, d // heads, vocab, cfg.int("decoder_ffn_dim"), enc_layers)
    shapes["encoder_seq"] = cfg.int("max_source_positions", default=1500)  # its fixed frames
    shapes["max_positions"] = cfg.int("max_target_positions", default=448)  # the decoder's
    return ParameterCount(cfg.model_type, ENCODER_DECODER, cfg.head_class, parts, shapes, notes)


COUNTERS = {"t5": t5, "mt5": t5, "bart": bart, "whisper": whisper}
