"""Activations a training run keeps for the backward pass, per decoder layer and for all layers
(symbols as in memory.py)."""

from __future__ import annotations

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
    norm = 4 * h + (0 if frozen else residual * h)
    terms["norms"] = 2 * norm
    quant_inputs = frozen and run.weights in INPUT_SAVING_WEIGHTS
    if not frozen:  # inputs of q/k/v, o, gate/up and down projections for their weight gradients
        casts = 3 if residual > c else 1  # autocast casts the fp32 input once per projection
        terms["linear inputs"] = c * (casts * h + a + (2 if residual > c else 1) * h + width)
    elif quant_inputs:  # the distinct inputs of q/k/v, o, gate/up and down
        terms["quantized layer inputs"] = c * (h + a + h + width)
    # attention kernel keeps q, k, v (k, v repeated to all heads) and its output
    terms["attention"] = c * (a + 2 * a + a)
    if not run.flash_attn:  # eager: fp32 softmax output and its 16-bit copy, per head, s × s
        terms["attention scores"] = (4 + c) * spec.heads * seq
    # SwiGLU keeps the gate output (for SiLU), the SiLU output and the up output (for the product);
    # a plain MLP keeps the up output for its activation (the activation's output is the down
    # projection's input, counted with the linear inputs when that layer keeps it)
    terms["mlp"] = c * (3 if spec.gated_mlp else 1) * width
    if run.method in ("lora", "qlora"):
        # per token: each wrapped layer's input, dropped out into a copy (+ its mask) for LoRA A;
        # without dropout LoRA A keeps the layer's own input, already kept by a bitsandbytes layer
        per_token = sum(fan_in * n for fan_in, _, n in spec.lora_modules(run.lora_targets)) / spec.layers
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


def training_activations(
    spec: ModelSpec, run: RunSpec, seq: int, frozen: bool, residual: float
) -> tuple[float, float, str]:
    """(all layers' saved activations at the end of the forward pass, one layer's, formula)."""
    per_layer, formula = layer_activation_bytes(spec, run, seq, frozen, residual)
    if run.grad_ckpt:
        # transformers checkpoints each decoder layer: only its input stays, one layer is recomputed
        kept = spec.layers * residual * run.batch * seq * spec.hidden_size
        return kept + per_layer, per_layer, f"L·b·s·h·{residual:g} (layer inputs) + one layer {formula}"
    return spec.layers * per_layer, per_layer, f"L × {formula}"
