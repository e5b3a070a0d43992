"""Inference peaks of the models that are not decoder-only (symbols as in memory.py).

- encoder-only (BERT, RoBERTa, DistilBERT, T5EncoderModel) and vision encoders (ViT): one forward
  pass, no KV cache, nothing generated. A vision model's sequence is its patches plus [CLS],
  whatever --seq-len says.
- encoder-decoder (T5, BART, Whisper): the encoder runs once over the input and its output stays
  (generate keeps `encoder_outputs`); every decoder layer then caches the cross-attention keys and
  values of that output once, and self-attention keys and values for each generated token.
"""

from __future__ import annotations

from .breakdown import Part, Peak
from .inference import forward_transients, weights_part
from .lengths import encoder_length, length_notes
from .run import RunSpec
from .spec import ModelSpec

FAMILY_RULES = {
    "decoder": "decoder-only: a prompt pass over s tokens, then generation with a KV cache of "
    "L layers × kv width per token",
    "encoder-decoder": "encoder-decoder: the encoder runs once over the s-token input and its output "
    "stays; the decoder generates with a self-attention cache (generated tokens) and a "
    "cross-attention cache (encoder length) in each of its layers",
    "encoder": "encoder-only: one forward pass over s tokens; no KV cache, nothing generated",
    "vision": "vision encoder: one forward pass over its patches ((image ÷ patch)² + [CLS]); "
    "no KV cache, nothing generated",
}


TRAINING_RULES = {
    "encoder-decoder": "encoder-decoder training: the encoder's layers over the input (--seq-len), the "
    "decoder's over the target (--target-len) with cross-attention to the encoder output; the loss "
    "on the target's logits",
    "encoder": "encoder-only training: every layer over s tokens; masked-LM heads take logits for "
    "every token, classification heads next to none",
    "decoder": "decoder-only training: every layer over s tokens, the loss on all their logits",
    "vision": "vision training: every layer over the patches; a classification head's logits are negligible",
}


def family_rule(spec: ModelSpec, training: bool = False) -> str:
    """Which family's memory rule applies (what --explain and the JSON's family_rule say)."""
    rules = TRAINING_RULES if training else FAMILY_RULES
    return rules.get(spec.family, rules["decoder"])


def encoder_peak(spec: ModelSpec, run: RunSpec) -> Peak:
    """One forward pass of an encoder-only or vision model."""
    b, c, s = run.batch, run.compute_bytes, encoder_length(spec, run)
    acts, formula = forward_transients(spec, run, s)
    parts = [weights_part(spec, run), Part("activations", acts / run.gpus, formula)]
    if spec.head in ("lm", "pretraining") and spec.vocab_size:  # masked-LM logits for every token
        parts.append(Part("logits", b * s * spec.vocab_size * c, f"b·s·V·c with s={s}, V={spec.vocab_size}"))
    else:
        parts.append(Part("output", b * s * spec.hidden_size * c, f"last hidden state b·s·h·c with s={s}"))
    notes = [family_rule(spec), *length_notes(spec, run, s)]
    if run.gen_tokens:
        notes.append(f"--gen-tokens {run.gen_tokens} does not apply: an encoder generates nothing")
    return Peak(parts, "forward pass", notes=notes)


def cross_cache(spec: ModelSpec, run: RunSpec, enc_len: int) -> tuple[float, str]:
    """Cross-attention keys and values of the encoder output, in every decoder layer."""
    total = 2 * spec.layers * spec.kv_width * enc_len * run.batch * run.kv_bytes
    formula = f"2 × {spec.layers} layers × kv {spec.kv_width} × {enc_len} encoder positions × b {run.batch}"
    return total, formula + f" × {run.kv_bytes:g} B"


def seq2seq_peak(spec: ModelSpec, run: RunSpec) -> Peak:
    """Encode once, then generate: whichever moment holds more is the peak."""
    b, c = run.batch, run.compute_bytes
    enc_len, gen = encoder_length(spec, run), max(1, run.gen_tokens)
    notes = [family_rule(spec), *length_notes(spec, run, enc_len)]
    if spec.max_positions and gen > spec.max_positions:  # the decoder's learned positions end there
        notes.append(f"the decoder has {spec.max_positions} positions: {spec.max_positions} tokens generated")
        gen = spec.max_positions
    weights = weights_part(spec, run)
    encoder_out = b * enc_len * spec.hidden_size * c
    out_formula = f"b·s·h·c with s={enc_len} encoder positions (kept for the whole generation)"
    acts, act_formula = forward_transients(spec, run, enc_len)
    cross, cross_formula = cross_cache(spec, run, enc_len)
    per_token = 2 * spec.layers * spec.kv_width * b * run.kv_bytes
    self_cache = per_token * gen
    growth = self_cache / max(1, spec.layers) if run.gen_tokens > 1 else 0.0
    logits = b * spec.vocab_size * (c + 4 + 4)
    encode = [
        weights,
        Part("encoder output", encoder_out / run.gpus, out_formula),
        Part("activations", acts / run.gpus, "encoder, " + act_formula),
    ]
    decode = [
        weights,
        Part("encoder output", encoder_out / run.gpus, out_formula),
        Part(
            "KV cache",
            (cross + self_cache + growth) / run.gpus,
            f"cross-attention {cross_formula} + self-attention 2 × {spec.layers} layers × kv "
            f"{spec.kv_width} × {gen} generated tokens × b {b} (+ one layer while it grows)",
        ),
        Part("logits", logits, "b·V·(c+4+4): last-token logits, fp32 copy, softmax for sampling"),
    ]
    totals = {
        "encoder pass": sum(p.bytes for p in encode),
        "generation (decode)": sum(p.bytes for p in decode),
    }
    phase = max(totals, key=lambda k: totals[k])
    return Peak(encode if phase == "encoder pass" else decode, phase, totals, notes=notes)
