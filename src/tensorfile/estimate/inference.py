"""Inference peaks: transformers' prefill or decode phase, and llama.cpp's whole-context buffers."""

from __future__ import annotations

from dataclasses import replace

from .breakdown import Part, Peak
from .run import RunSpec
from .spec import ModelSpec
from .weights import QUANT_METHODS, weight_bytes


def _kv_cache(spec: ModelSpec, run: RunSpec, tokens: int) -> tuple[float, str]:
    kvb = run.kv_bytes
    full_layers = spec.layers - spec.sliding_layers
    per_token_layer = 2 * spec.kv_width * kvb * run.batch
    total = full_layers * per_token_layer * tokens
    formula = f"2 × {full_layers} layers × kv {spec.kv_width} × {tokens} tokens × b {run.batch} × {kvb:g} B"
    if spec.sliding_layers and spec.sliding_window:
        window = min(tokens, spec.sliding_window)
        total += spec.sliding_layers * per_token_layer * window
        formula += f" + {spec.sliding_layers} sliding layers × {window} tokens"
    return total, formula


def forward_transients(spec: ModelSpec, run: RunSpec, s: int) -> tuple[float, str]:
    """One layer's transient tensors in a forward pass over s tokens (no autograd, freed per layer)."""
    b, c = run.batch, run.compute_bytes
    h, a, width = spec.hidden_size, spec.attn_width, spec.active_mlp_width
    attn = b * s * c * (h + 3 * a + 2 * a)  # normed input, q/k/v (k, v repeated), output
    if not run.flash_attn:
        attn += b * spec.heads * s * s * (4 + c)  # scores, fp32 softmax
    mlp_mats = 3 if spec.gated_mlp else 2
    mlp = b * s * c * (mlp_mats * width + h)
    residual = 2 * b * s * h * c
    scores = "" if run.flash_attn else " + b·heads·s²·(4+c)"
    formula = (
        f"one layer at a time: 2·b·s·h·c + max(attention b·s·c·(h+5a){scores}, "
        f"MLP b·s·c·({mlp_mats}I+h)) with b={b}, s={s}, h={h}, a={a}, I={width}, c={c:g}"
    )
    return residual + max(attn, mlp), formula


def _split(value: float, run: RunSpec) -> float:
    return value / run.gpus


def weights_part(spec: ModelSpec, run: RunSpec) -> Part:
    """The weights of a transformers run, split evenly over the GPUs."""
    w = weight_bytes(spec, run.weights, run.compute_bytes)
    split = f", split over {run.gpus} GPUs" if run.gpus > 1 else ""
    return Part("weights", _split(w.total, run), w.formula + split)


def inference_peak(spec: ModelSpec, run: RunSpec) -> Peak:
    c, b, s = run.compute_bytes, run.batch, run.seq_len
    weights = weights_part(spec, run)
    tokens = s + run.gen_tokens
    kv_full, kv_formula = _kv_cache(spec, run, tokens)
    kv_prompt, _ = _kv_cache(spec, run, s)
    act_prefill, act_formula = forward_transients(spec, run, s)
    logit_tokens = s if run.logits == "all" else 1
    logits_prefill = b * logit_tokens * spec.vocab_size * (c + 4)  # logits, then their fp32 copy
    dequant = 0.0
    if run.weights in QUANT_METHODS:
        biggest = max(fan_in * out for _, fan_in, out, _ in spec.linear_shapes())
        dequant = biggest * c  # kernels dequantize one matrix at a time for prompt processing
    prefill = kv_prompt + act_prefill + logits_prefill + dequant
    # Decoding: the cache at full length plus one layer's cache copied when it grows (torch.cat).
    # A legacy tuple cache is rebuilt by torch.cat each step while the caller still holds the old
    # one: two full caches at the end of a step. DynamicCache replaces one layer at a time.
    # The first new token comes from the prompt pass; decoding steps start with the second.
    if run.gen_tokens <= 1:
        growth = 0.0
    elif run.cache == "legacy":
        growth = kv_full
    else:
        growth = kv_full / spec.layers
    logits_decode = b * spec.vocab_size * (c + 4 + 4) if run.gen_tokens > 1 else 0.0
    decode = kv_full + growth + logits_decode if run.gen_tokens > 1 else 0.0
    parts = [weights]
    if prefill >= decode:
        phase = "prompt processing (prefill)"
        parts += [
            Part("KV cache", _split(kv_prompt, run), kv_formula.replace(f"{tokens} tokens", f"{s} tokens")),
            Part("activations", _split(act_prefill, run), act_formula),
            Part(
                "logits",
                logits_prefill,
                f"b·{'s' if run.logits == 'all' else '1'}·V·(c+4) with V={spec.vocab_size}",
            ),
            Part("dequantized weights", dequant, "the largest linear layer dequantized to the compute dtype"),
        ]
    else:
        phase = "generation (decode)"
        parts += [
            Part(
                "KV cache",
                _split(kv_full + growth, run),
                kv_formula
                + (
                    " × 2 (old and new tuple cache)"
                    if run.cache == "legacy"
                    else " (+ one layer while it grows)"
                ),
            ),
            Part("logits", logits_decode, "b·V·(c+4+4): last-token logits, fp32 copy, softmax for sampling"),
        ]
    other = {"prefill": prefill + weights.bytes, "decode": decode + weights.bytes}
    notes = []
    if run.gpus > 1:
        notes.append("weights and KV cache split evenly over the GPUs (pipeline or tensor parallel)")
    return Peak(parts, phase, other, host_bytes=0.0, notes=notes)


def llama_cpp_peak(spec: ModelSpec, run: RunSpec) -> Peak:
    w = weight_bytes(spec, run.weights, 2.0)
    tokens = run.seq_len + run.gen_tokens
    kv_run = run if run.kv_dtype else replace(run, kv_dtype="fp16")  # llama.cpp's default cache type
    kv, kv_formula = _kv_cache(spec, kv_run, tokens)
    ubatch = min(512, run.seq_len)
    # llama.cpp's compute buffer: logits for a micro-batch, K·Q scores without flash attention
    compute = 4 * ubatch * (spec.vocab_size + 4 * spec.hidden_size + 2 * spec.active_mlp_width)
    if not run.flash_attn:
        compute += 4 * ubatch * tokens * spec.heads
    parts = [
        Part(
            "weights", _split(w.total - w.kept_on_host, run), w.formula + "; token_embd stays in host memory"
        ),
        Part("KV cache", _split(kv, run), kv_formula + " (allocated for the whole context up front)"),
        Part("activations", compute, f"compute buffer for a {ubatch}-token micro-batch"),
    ]
    return Peak(parts, "whole context", host_bytes=w.kept_on_host)
