"""The memory model: peak GPU bytes per device, as a list of named parts each with its formula.

The peak is found by phases, not by adding everything up: activations are freed while gradients
are made, and the optimizer's temporaries appear only after the backward pass. Each phase lists
what is alive at that moment; the estimate is the largest phase, and its parts are the breakdown.

Symbols in the formulas: P parameters, b batch, s sequence, h hidden, I intermediate (active)
width, a attention width (heads × head_dim), kv KV width (kv_heads × head_dim), L layers, V vocab,
c bytes of the compute dtype.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from .run import RunSpec
from .spec import ModelSpec
from .weights import QUANT_METHODS, weight_bytes

GIB = 1024**3
MIB = 1024**2

# What torch's caching allocator reserves beyond what is allocated: freed blocks of other sizes
# stay cached. A share of the memory that churns (activations, logits, cache growth).
ALLOCATOR_CHURN_SHARE = 0.08
# cuBLAS workspace and small buffers torch allocates on first use.
WORKSPACE_BYTES = 64 * MIB


@dataclass
class Part:
    name: str
    bytes: float
    formula: str

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "bytes": round(self.bytes), "formula": self.formula}


@dataclass
class MemoryEstimate:
    """Peak GPU memory of one device for one model and one way of running it."""

    model: ModelSpec
    run: RunSpec
    parts: list[Part]
    phase: str  # the moment of the peak
    other_phases: dict[str, float] = field(default_factory=dict)
    host_bytes: float = 0.0  # CPU memory the run keeps (offloaded optimizer, llama.cpp embeddings)
    notes: list[str] = field(default_factory=list)

    @property
    def per_gpu_bytes(self) -> int:
        return round(sum(p.bytes for p in self.parts))

    @property
    def breakdown(self) -> dict[str, int]:
        return {p.name: round(p.bytes) for p in self.parts}

    def bytes_for(self, counter: str) -> int:
        """The peak as another counter would show it (allocated ⊂ reserved ⊂ nvidia-smi)."""
        return estimate(self.model, replace(self.run, counter=counter)).per_gpu_bytes


def _margin_bytes(parts: list[Part]) -> float:
    churn = sum(
        p.bytes
        for p in parts
        if p.name
        in ("activations", "logits", "optimizer step temporaries", "KV cache", "dequantized weights")
    )
    return ALLOCATOR_CHURN_SHARE * churn + 2 * MIB


# --- activations ---------------------------------------------------------------------------------


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
    if not frozen:  # inputs of q/k/v, o, gate/up and down projections for their weight gradients
        casts = 3 if residual > c else 1  # autocast casts the fp32 input once per projection
        terms["linear inputs"] = c * (casts * h + a + (2 if residual > c else 1) * h + width)
    # attention kernel keeps q, k, v (k, v repeated to all heads) and its output
    terms["attention"] = c * (a + 2 * a + a)
    if not run.flash_attn:  # eager: fp32 softmax output and its 16-bit copy, per head, s × s
        terms["attention scores"] = (4 + c) * spec.heads * seq
    # SwiGLU keeps the gate output (for SiLU), the SiLU output and the up output (for the product)
    terms["mlp"] = c * (3 if spec.gated_mlp else 2) * width
    if run.method in ("lora", "qlora"):
        # per token: each wrapped layer's input, dropped out into a copy (+ its mask) for LoRA A
        per_token = sum(fan_in * n for fan_in, _, n in spec.lora_modules(run.lora_targets)) / spec.layers
        terms["lora inputs"] = (c + 1 if run.lora_dropout else c) * per_token
    total = b * seq * sum(terms.values())
    formula = "b·s·(" + " + ".join(f"{k} {v / max(1, h):.2g}h" for k, v in terms.items()) + ")"
    return total, formula


def _training_activations(
    spec: ModelSpec, run: RunSpec, seq: int, frozen: bool, residual: float
) -> tuple[float, float, str]:
    """(all layers' saved activations at the end of the forward pass, one layer's, formula)."""
    per_layer, formula = layer_activation_bytes(spec, run, seq, frozen, residual)
    if run.grad_ckpt:
        # transformers checkpoints each decoder layer: only its input stays, one layer is recomputed
        kept = spec.layers * residual * run.batch * seq * spec.hidden_size
        return kept + per_layer, per_layer, f"L·b·s·h·{residual:g} (layer inputs) + one layer {formula}"
    return spec.layers * per_layer, per_layer, f"L × {formula}"


# --- the estimate --------------------------------------------------------------------------------


def estimate(spec: ModelSpec, run: RunSpec) -> MemoryEstimate:
    """Peak memory of one GPU."""
    if run.training:
        result = _train(spec, run)
    elif run.resolved_engine == "llama.cpp":
        result = _llama_cpp(spec, run)
    else:
        result = _inference(spec, run)
    _finish(result)
    return result


def _finish(result: MemoryEstimate) -> None:
    run = result.run
    result.parts = [p for p in result.parts if p.bytes > 0]
    result.parts.append(Part("workspace", WORKSPACE_BYTES, "cuBLAS workspace and small buffers: 64 MiB"))
    if run.counter in ("reserved", "nvidia-smi"):
        margin = _margin_bytes(result.parts)
        result.parts.append(
            Part("allocator margin", margin, f"{ALLOCATOR_CHURN_SHARE:.0%} of the memory that churns + 2 MiB")
        )
    if run.counter == "nvidia-smi":
        result.parts.append(
            Part(
                "CUDA context",
                run.cuda_context_gib * GIB,
                f"driver context and kernels: {run.cuda_context_gib} GiB",
            )
        )


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


def _split(value: float, run: RunSpec) -> float:
    return value / run.gpus


def _inference(spec: ModelSpec, run: RunSpec) -> MemoryEstimate:
    c, b, s = run.compute_bytes, run.batch, run.seq_len
    w = weight_bytes(spec, run.weights, c)
    weights = Part(
        "weights", _split(w.total, run), w.formula + (f", split over {run.gpus} GPUs" if run.gpus > 1 else "")
    )
    tokens = s + run.gen_tokens
    kv_full, kv_formula = _kv_cache(spec, run, tokens)
    kv_prompt, _ = _kv_cache(spec, run, s)
    # Prefill: one layer's transient tensors for the whole prompt (no autograd, freed per layer).
    h, a, width = spec.hidden_size, spec.attn_width, spec.active_mlp_width
    attn = b * s * c * (h + 3 * a + 2 * a)  # normed input, q/k/v (k, v repeated), output
    if not run.flash_attn:
        attn += b * spec.heads * s * s * (4 + c)  # scores, fp32 softmax
    mlp = b * s * c * ((3 if spec.gated_mlp else 2) * width + h)
    residual = 2 * b * s * h * c
    act_prefill = residual + max(attn, mlp)
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
        scores = "" if run.flash_attn else " + b·heads·s²·(4+c)"
        mlp_mats = 3 if spec.gated_mlp else 2
        parts += [
            Part("KV cache", _split(kv_prompt, run), kv_formula.replace(f"{tokens} tokens", f"{s} tokens")),
            Part(
                "activations",
                _split(act_prefill, run),
                f"one layer at a time: 2·b·s·h·c + max(attention b·s·c·(h+5a){scores}, "
                f"MLP b·s·c·({mlp_mats}I+h)) with b={b}, s={s}, h={h}, a={a}, I={width}, c={c:g}",
            ),
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
    return MemoryEstimate(spec, run, parts, phase, other, host_bytes=0.0, notes=notes)


def _llama_cpp(spec: ModelSpec, run: RunSpec) -> MemoryEstimate:
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
    return MemoryEstimate(spec, run, parts, "whole context", host_bytes=w.kept_on_host)


def trainable_params(spec: ModelSpec, run: RunSpec) -> tuple[float, str]:
    """(parameters the method trains, how they were counted)."""
    if run.method == "full":
        return float(spec.total_params), "all parameters"
    if run.method in ("lora", "qlora"):
        modules = spec.lora_modules(run.lora_targets)
        if not modules:
            from .run import RunError

            names = sorted({name for name, *_ in spec.linear_shapes()})
            raise RunError(f"--lora-targets match no layer; this model has {', '.join(names)}")
        count = sum(run.lora_r * (fan_in + out) * n for fan_in, out, n in modules)
        # PEFT's modules_to_save: a full trainable copy of the embeddings / output layer
        saved = set(run.lora_targets) & {"wte", "embed_tokens", "word_embeddings", "lm_head", "output"}
        if saved & {"wte", "embed_tokens", "word_embeddings"}:
            count += spec.embedding_params
        if saved & {"lm_head", "output"}:
            count += spec.lm_head_params or spec.embedding_params
        return float(count), f"r {run.lora_r} × (in + out) over {', '.join(run.lora_targets)}"
    if run.method == "prompt":
        return float(run.virtual_tokens * spec.hidden_size), "virtual tokens × h"
    return float(run.virtual_tokens * spec.layers * 2 * spec.kv_width), "virtual tokens × L × 2 × kv"


def _optimizer_bytes(
    run: RunSpec, trainable: float, state_bytes: float, spec: ModelSpec
) -> tuple[float, str]:
    opt = run.optimizer
    if opt in ("adamw", "adamw-fused"):
        return 2 * state_bytes * trainable, f"2 states × {state_bytes:g} B × trainable"
    if opt in ("adamw-8bit", "paged-adamw-8bit"):
        return 2 * trainable * (1 + 4 / 2048), "2 states × 1 B (+ fp32 scale per 2048) × trainable"
    if opt == "sgd":
        return 0.0, "plain SGD keeps no state (momentum would add one state)"
    # Adafactor: factored second moment (rows + cols per matrix), no first moment
    if run.method == "full":
        factored = sum((fan_in + out) * n for _, fan_in, out, n in spec.linear_shapes()) * 4
        rest = (spec.total_params - spec.linear_params) * 4.0
        return factored + rest, "(rows + cols) × 4 B per matrix + 4 B per other parameter"
    return trainable * 4.0, "4 B per trainable parameter (adapters are small)"


def _train(spec: ModelSpec, run: RunSpec) -> MemoryEstimate:
    c, b = run.compute_bytes, run.batch
    n = run.gpus
    # DeepSpeed keeps its own mixed-precision layout even on one GPU; DDP/FSDP on one GPU are plain.
    shard = run.sharding if n > 1 or run.sharding.startswith("zero") else "none"
    trainable, trainable_formula = trainable_params(spec, run)
    frozen = run.method != "full"
    seq = run.seq_len + (run.virtual_tokens if run.method == "prompt" else 0)
    notes: list[str] = []
    deepspeed = shard in ("zero1", "zero2", "zero3")

    # weights, their 16-bit copies, gradients and optimizer states
    if run.method == "full":
        param_bytes = {"amp": 4.0, "fp32": 4.0, "bf16-true": c}[run.precision]
        if deepspeed or shard == "fsdp":
            # ZeRO/FSDP mixed precision: 16-bit parameters, fp32 master copy kept with the optimizer
            param_bytes = c if run.precision != "fp32" else 4.0
        grad_bytes = param_bytes
        state_bytes = 4.0 if run.precision != "bf16-true" or deepspeed or shard == "fsdp" else c
        weights = spec.total_params * param_bytes
        residual = 4.0 if run.precision in ("amp", "fp32") and not (deepspeed or shard == "fsdp") else c
        copies = (
            spec.linear_params * c if run.precision == "amp" and not (deepspeed or shard == "fsdp") else 0.0
        )
        master = (
            spec.total_params * 4.0 if (deepspeed or shard == "fsdp") and run.precision != "fp32" else 0.0
        )
        weights_formula = f"{spec.total_params:,} params × {param_bytes:g} B"
    else:
        w = weight_bytes(spec, run.weights, c)
        plain = w.plain
        if run.method == "qlora":  # prepare_model_for_kbit_training casts the unquantized rest to fp32
            plain = max(0, spec.total_params - spec.linear_params) * 4.0
        weights = w.quantized + plain + trainable * 4.0  # adapters in fp32 (PEFT's autocast_adapter_dtype)
        weights_formula = w.formula + f" + adapters {int(trainable):,} × 4 B"
        param_bytes = grad_bytes = state_bytes = 4.0
        residual = 4.0 if run.weights == "fp32" else c
        copies = master = 0.0
    grads = trainable * grad_bytes
    optimizer, optimizer_formula = _optimizer_bytes(run, trainable, state_bytes, spec)
    optimizer += master
    if master:
        optimizer_formula = "fp32 master copy 4 B × P + " + optimizer_formula

    # sharding: what each GPU keeps
    if shard in ("zero1", "zero2", "zero3", "fsdp"):
        optimizer /= n
    if shard in ("zero2", "zero3", "fsdp"):
        grads /= n
    gathered = 0.0
    if shard in ("zero3", "fsdp"):
        weights /= n
        # parameters gathered for the layers being computed (current + prefetched)
        # ZeRO-3 keeps up to stage3_max_live_parameters (default 1e9) gathered; FSDP two layers
        layer = (spec.total_params - spec.embedding_params - spec.lm_head_params) / spec.layers
        if shard == "zero3":
            gathered = min(spec.total_params, run.zero3_live_params) * param_bytes
        else:
            gathered = 2 * layer * param_bytes + max(spec.embedding_params, spec.lm_head_params) * param_bytes
    host = 0.0
    if run.offload == "cpu":
        host += optimizer + (grads if shard in ("zero2", "zero3") else 0.0)
        optimizer = 0.0
        if shard in ("zero2", "zero3"):
            grads = grads / 4  # gradient partitions stream to the host through small buckets
        if shard == "zero3":
            host += weights
            weights = 0.0
        notes.append(f"offload: {host / GIB:.1f} GiB of optimizer state in host memory")
    ddp_buckets = trainable * grad_bytes if shard == "ddp" else 0.0
    ds_buckets = 0.0
    if deepspeed:
        # DeepSpeed's docs: with overlap_comm, 4.5 × (allgather + reduce bucket) of 16-bit elements
        factor = 2 * 2 * 4.5 if shard in ("zero1", "zero2") else 2 * 2
        ds_buckets = min(run.ds_bucket * factor, 2 * trainable * 2 * 4.5)

    # activations and logits for one micro-batch
    acts, one_layer, act_formula = _training_activations(spec, run, seq, frozen, residual)
    # 16-bit logits, their fp32 copy, the log-softmax and its gradient; without the upcast (older
    # remote code) the logits, their shifted copy, the log-softmax and its gradient in 16 bit.
    logit_bytes = 2 * c + 8 if run.loss_upcast else 4 * c
    logits = b * seq * spec.vocab_size * logit_bytes
    dequant = 0.0
    if run.method == "qlora" or (frozen and run.weights in QUANT_METHODS):
        biggest = max(fan_in * out for _, fan_in, out, _ in spec.linear_shapes())
        dequant = 2 * biggest * c  # forward and backward dequantize a matrix into the compute dtype

    copies_part = Part(
        "weight copies (autocast)",
        copies,
        f"{spec.linear_params:,} linear params × {c:g} B cached by autocast",
    )
    parts_static = [
        Part("weights", weights, weights_formula + (f" ÷ {n} GPUs" if shard in ("zero3", "fsdp") else "")),
        Part(
            "optimizer states",
            optimizer,
            optimizer_formula + (f" ÷ {n} GPUs" if shard not in ("none", "ddp") else ""),
        ),
    ]
    if ddp_buckets:
        parts_static.append(
            Part("DDP gradient buckets", ddp_buckets, "a second copy of the gradients for all-reduce")
        )
    if ds_buckets:
        parts_static.append(
            Part(
                "DeepSpeed buckets",
                ds_buckets,
                f"{run.ds_bucket:.0e} elements × 2 B × 2 buckets × 4.5 (overlap_comm)",
            )
        )
    if gathered:
        parts_static.append(
            Part(
                "gathered parameters",
                gathered,
                "ZeRO-3 live parameters (≤ 1e9) / FSDP: two layers + embeddings",
            )
        )
    # Phase 1: start of backward — all activations, logits and their gradient alive, few gradients yet.
    head_grads = (
        (spec.lm_head_params or spec.embedding_params) * grad_bytes * (trainable == spec.total_params)
    )
    backward = [
        copies_part,
        Part("activations", acts, act_formula),
        Part("logits", logits, f"b·s·V·{logit_bytes:g} B with s={seq}, V={spec.vocab_size}"),
        Part(
            "gradients",
            head_grads / (n if shard in ("zero2", "zero3", "fsdp") else 1),
            "lm_head gradient (first)",
        ),
        Part("dequantized weights", dequant, "the largest linear layer dequantized, forward and backward"),
    ]
    # Phase 2: end of backward — all gradients, one layer's activations.
    late = [
        copies_part,
        Part("gradients", grads, f"trainable {int(trainable):,} ({trainable_formula}) × {grad_bytes:g} B"),
        Part("activations", one_layer, "the first layer's activations"),
    ]
    # Phase 3: optimizer step — gradients plus the foreach implementation's temporary.
    step_tmp = trainable * state_bytes if run.optimizer == "adamw" and not run.offload else 0.0
    if (
        deepspeed and run.method == "full"
    ):  # fused Adam, but the fp32 gradient partition is built for the step
        step_tmp = trainable * 4.0 if not run.offload else 0.0
    if shard in ("zero1", "zero2", "zero3", "fsdp"):
        step_tmp /= n
    step = [
        Part("gradients", grads, f"trainable {int(trainable):,} × {grad_bytes:g} B"),
        Part(
            "optimizer step temporaries",
            step_tmp,
            "fp32 gradient partition (DeepSpeed)"
            if deepspeed
            else "torch AdamW (foreach) keeps sqrt(v) per parameter",
        ),
    ]
    phases = {"start of backward": backward, "end of backward": late, "optimizer step": step}
    totals = {name: sum(x.bytes for x in ps) for name, ps in phases.items()}
    phase = max(totals, key=lambda k: totals[k])
    static = sum(x.bytes for x in parts_static)
    result = MemoryEstimate(
        spec,
        run,
        [*parts_static, *phases[phase]],
        phase,
        {k: v + static for k, v in totals.items()},
        host_bytes=host,
        notes=notes,
    )
    return result
