"""Activations a training run keeps for the backward pass, per decoder layer and for all layers
(symbols as in memory.py)."""

from __future__ import annotations

from .lengths import target_length
from .run import RunSpec
from .spec import ModelSpec

# bitsandbytes' 4-bit and 8-bit matmuls keep their input for the backward pass whenever it needs a
# gradient, even though the frozen weight never gets one (bitsandbytes/autograd/_functions.py,
# MatMul4Bit / MatMul8bitLt.forward: `if any(ctx.needs_input_grad[:2]): ctx.tensors = (A, B)`).
# A frozen nn.Linear keeps nothing: its input is only needed for the weight gradient.
INPUT_SAVING_WEIGHTS = ("nf4", "nf4-dq", "fp4", "int8")


def layer_activation_bytes(
    spec: ModelSpec, run: RunSpec, seq: int, frozen: bool, residual: float
) -> tuple[float, str]:
    """Bytes one decoder layer keeps for the backward pass (Korthikanti et al. 2022, redone for
    Llama-style blocks as transformers implements them: RMSNorm upcasts to fp32, SwiGLU keeps gate,
    activation and up outputs, SDPA keeps q, k, v and its output; no dropout).

    frozen: base weights do not train, so linear layers do not keep their inputs (LoRA adds its own).
    residual: bytes of the residual stream (4 under autocast over an fp32 model, else c).
    """
    b, c = run.batch, run.compute_bytes
    h, a, width = spec.hidden_size, spec.attn_width, spec.active_mlp_width
    terms: dict[str, float] = {}
    # RMSNorm keeps its input in fp32 (4 B); a trainable norm weight also keeps the normalised value.
    # nn.LayerNorm keeps only its input (with per-token mean and rstd): its output is the next
    # layer's input, counted there.
    norm = residual * h if spec.layer_norm else 4 * h + (0 if frozen else residual * h)
    terms["norms"] = 2 * norm
    quant_inputs = frozen and run.weights in INPUT_SAVING_WEIGHTS
    if not frozen:  # inputs of q/k/v, o, gate/up and down projections for their weight gradients
        casts = 3 if residual > c else 1  # autocast casts the fp32 input once per projection
        terms["linear inputs"] = c * (casts * h + a + (2 if residual > c else 1) * h + width)
    elif quant_inputs:  # the distinct inputs of q/k/v, o, gate/up and down
        terms["quantized layer inputs"] = c * (h + a + h + width)
    # attention kernel keeps q, k, v (k, v repeated to all heads) and its output
    terms["attention"] = c * (a + 2 * a + a)
    if not run.flash_attn:  # eager: the softmax output per head, s × s: fp32 and its 16-bit copy
        # where the model upcasts (Llama, T5), one tensor in the compute dtype where it does not
        # (BERT, BART, Whisper, ViT; measured: tests/data/family_memory.json)
        per_score = 4 + c if spec.softmax_fp32 else c
        terms["attention scores"] = per_score * spec.heads * seq
    # SwiGLU keeps the gate output (for SiLU), the SiLU output and the up output (for the product);
    # a plain MLP keeps the up output for its activation (the activation's output is the down
    # projection's input, counted with the linear inputs when that layer keeps it)
    terms["mlp"] = c * (3 if spec.gated_mlp else 1) * width
    if run.method in ("lora", "qlora"):
        # per token: each wrapped layer's input, dropped out into a copy (+ its mask) for LoRA A;
        # without dropout LoRA A keeps the layer's own input, already kept by a bitsandbytes layer
        blocks = spec.layers + spec.encoder_layers  # an encoder-decoder's LoRA layers spread over both
        per_token = sum(fan_in * n for fan_in, _, n in spec.lora_modules(run.lora_targets)) / blocks
        kept = c + 1 if run.lora_dropout else (0 if quant_inputs else c)
        terms["lora inputs"] = kept * per_token
    total = b * seq * sum(terms.values())
    formula = "b·s·(" + " + ".join(f"{k} {v / max(1, h):.2g}h" for k, v in terms.items() if v) + ")"
    if run.method == "prefix" and run.virtual_tokens:
        # Prefix tuning hands every layer past_key_values of vt positions (peft/peft_model.py,
        # get_prompt); the layer concatenates its own k, v to them, so the attention kernel keeps
        # k and v (repeated to all heads) for vt more positions.
        total += b * run.virtual_tokens * c * 2 * a
        formula += f" + b·vt·2a·c (prefix k, v; vt={run.virtual_tokens})"
    return total, formula


def _cross_attention_bytes(
    spec: ModelSpec, run: RunSpec, s_dec: int, s_enc: int, frozen: bool, residual: float
) -> float:
    """What one decoder layer's cross-attention keeps: its norm's input, q and the output for the
    decoder's tokens (and, trained, the q/o inputs), k and v of the encoder output; eager
    attention also its s_dec × s_enc scores."""
    b, c, h, a = run.batch, run.compute_bytes, spec.hidden_size, spec.attn_width
    per_token = 4 * h + c * 2 * a + (0 if frozen else residual * h + c * (h + a))
    kept = b * (s_dec * per_token + s_enc * c * 2 * spec.kv_width)
    if not run.flash_attn:
        kept += b * (4 + c) * spec.heads * s_dec * s_enc
    return kept


def _stacks(
    spec: ModelSpec, run: RunSpec, seq: int, frozen: bool, residual: float
) -> list[tuple[str, int, int, float, str]]:
    """(stack, layers, sequence, bytes per layer, formula) for each stack the model trains through."""
    if spec.family == "decoder":
        per_layer, formula = layer_activation_bytes(spec, run, seq, frozen, residual)
        return [("decoder", spec.layers, seq, per_layer, formula)]
    s_enc = spec.encoder_seq or (min(seq, spec.max_positions) if spec.max_positions else seq)
    if spec.family in ("encoder", "vision"):
        per_layer, formula = layer_activation_bytes(spec, run, s_enc, frozen, residual)
        return [("encoder", spec.layers, s_enc, per_layer, formula)]
    s_dec = target_length(spec, run)
    enc, enc_formula = layer_activation_bytes(spec, run, s_enc, frozen, residual)
    dec, dec_formula = layer_activation_bytes(spec, run, s_dec, frozen, residual)
    dec += _cross_attention_bytes(spec, run, s_dec, s_enc, frozen, residual)
    return [
        ("encoder", spec.encoder_layers, s_enc, enc, enc_formula),
        (
            "decoder",
            spec.layers,
            s_dec,
            dec,
            dec_formula + " + cross-attention (norm input, q, output, k/v of the encoder output)",
        ),
    ]


def training_activations(
    spec: ModelSpec, run: RunSpec, seq: int, frozen: bool, residual: float
) -> tuple[float, float, str]:
    """(all layers' saved activations at the end of the forward pass, one layer's, formula)."""
    stacks = _stacks(spec, run, seq, frozen, residual)
    if len(stacks) > 1 or stacks[0][0] != "decoder":  # encoders, encoder-decoders: per stack
        return _stacked_activations(stacks, spec, run, residual)
    per_layer, formula = stacks[0][3], stacks[0][4]
    if run.grad_ckpt:
        # transformers checkpoints each decoder layer: only its input stays, one layer is recomputed
        kept = spec.layers * residual * run.batch * seq * spec.hidden_size
        return kept + per_layer, per_layer, f"L·b·s·h·{residual:g} (layer inputs) + one layer {formula}"
    return spec.layers * per_layer, per_layer, f"L × {formula}"


def _stacked_activations(
    stacks: list[tuple[str, int, int, float, str]], spec: ModelSpec, run: RunSpec, residual: float
) -> tuple[float, float, str]:
    one_layer = max(per_layer for _, layers, _, per_layer, _ in stacks if layers)
    if run.grad_ckpt:
        kept = sum(layers * residual * run.batch * s * spec.hidden_size for _, layers, s, _, _ in stacks)
        what = " + ".join(
            f"{name} {layers}·b·{s}·h·{residual:g}" for name, layers, s, _, _ in stacks if layers
        )
        return kept + one_layer, one_layer, f"layer inputs ({what}) + the largest layer recomputed"
    total = sum(layers * per_layer for _, layers, _, per_layer, _ in stacks)
    what = "; ".join(
        f"{name}: {layers} × (s={s}) {formula}" for name, layers, s, _, formula in stacks if layers
    )
    return total, one_layer, what
