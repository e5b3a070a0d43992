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
from .weights import PLAIN_BYTES, QUANT_METHODS, weight_bytes

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
    if run.device == "cpu":
        # One RAM: what a GPU run keeps on the host (llama.cpp's token embeddings) is counted in it.
        if result.host_bytes:
            weights = next((p for p in result.parts if p.name == "weights"), None)
            if weights is not None:
                weights.bytes += result.host_bytes
                weights.formula += f" + {result.host_bytes / GIB:.2f} GiB kept on the host"
                result.host_bytes = 0.0
        result.notes.append("CPU run: no CUDA context, cuBLAS workspace or caching-allocator margin")
        return
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


# PEFT's modules_to_save names for the embeddings and the output layer
_EMBEDDING_NAMES = frozenset(("wte", "embed_tokens", "word_embeddings"))
_HEAD_NAMES = frozenset(("lm_head", "output"))


def saved_module_params(spec: ModelSpec, run: RunSpec) -> float:
    """Parameters of PEFT's modules_to_save: full trainable copies of the embeddings / output layer."""
    if run.method not in ("lora", "qlora"):
        return 0.0
    saved = set(run.lora_targets)
    count = spec.embedding_params if saved & _EMBEDDING_NAMES else 0
    if saved & _HEAD_NAMES:
        count += spec.lm_head_params or spec.embedding_params
    return float(count)


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
        count += saved_module_params(spec, run)
        return float(count), f"r {run.lora_r} × (in + out) over {', '.join(run.lora_targets)}"
    if run.method == "prompt":
        encoder, how = prompt_encoder_params(spec, run)
        return float(run.virtual_tokens * spec.hidden_size + encoder), "virtual tokens × h" + how
    return float(run.virtual_tokens * spec.layers * 2 * spec.kv_width), "virtual tokens × L × 2 × kv"


def prompt_encoder_params(spec: ModelSpec, run: RunSpec) -> tuple[float, str]:
    """P-tuning's prompt encoder, as PEFT builds it (peft/tuners/p_tuning/model.py, PromptEncoder):
    MLP: Linear(h, e), Linear(e, e), Linear(e, h); LSTM: a 2-layer bidirectional nn.LSTM of width e
    (encoder_num_layers=2, PEFT's default) and a head Linear(2e, 2e), Linear(2e, h); biases
    everywhere. e is encoder_hidden_size, which PEFT sets to the model's hidden size when unset
    (peft/utils/other.py, _prepare_prompt_learning_config). It is built in fp32 and trains."""
    if run.prompt_encoder == "none":
        return 0.0, ""
    h = spec.hidden_size
    e = run.encoder_hidden or h
    if run.prompt_encoder == "mlp":
        return float(h * e + e + e * e + e + e * h + h), f" + MLP encoder h→{e}→{e}→h"
    # torch's LSTM: per direction and layer 4 gates × (input + hidden) weights and two biases
    lstm = 2 * 4 * e * (h + e + 2) + 2 * 4 * e * (2 * e + e + 2)
    head = 2 * e * 2 * e + 2 * e + 2 * e * h + h
    return float(lstm + head), f" + LSTM encoder (2 layers × 2 directions, width {e}) + MLP head"


def _optimizer_bytes(run: RunSpec, trainable: float, state_mem: float, spec: ModelSpec) -> tuple[float, str]:
    """Optimizer state bytes; state_mem is the bytes of one state tensor per trainable parameter,
    summed (torch keeps Adam states in each parameter's own dtype)."""
    opt = run.optimizer
    if opt in ("adamw", "adamw-fused"):
        return 2 * state_mem, f"2 states × {state_mem / max(1.0, trainable):.3g} B × trainable"
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


@dataclass
class _States:
    """One GPU's bytes of weights, gradients and optimizer state, before the phases are laid out."""

    weights: float
    weights_formula: str
    grads: float  # all gradients, once the backward pass has made them
    grads_formula: str
    head_grads: float  # gradients already made at the start of the backward pass (the output layer's)
    optimizer: float
    optimizer_formula: str
    step_tmp: float  # the optimizer step's temporaries
    copies: float  # 16-bit weight copies autocast caches for the forward pass
    residual: float  # bytes per element of the residual stream
    gather_bytes: float  # bytes per parameter of weights gathered by ZeRO-3 / FSDP
    trainable: float
    host: float = 0.0


def _full_states(spec: ModelSpec, run: RunSpec, sharded: bool, deepspeed: bool) -> _States:
    """Full fine-tuning. sharded: ZeRO or FSDP, which keep 16-bit parameters and an fp32 master copy."""
    c, p = run.compute_bytes, float(spec.total_params)
    param_bytes = {"amp": 4.0, "fp32": 4.0, "bf16-true": c}[run.precision]
    if sharded:
        param_bytes = c if run.precision != "fp32" else 4.0
    state_bytes = 4.0 if run.precision != "bf16-true" or sharded else c
    master = p * 4.0 if sharded and run.precision != "fp32" else 0.0
    optimizer, opt_formula = _optimizer_bytes(run, p, p * state_bytes, spec)
    if master:
        opt_formula = "fp32 master copy 4 B × P + " + opt_formula
    step_tmp = p * state_bytes if run.optimizer == "adamw" and not run.offload else 0.0
    if deepspeed:  # fused Adam, but the fp32 gradient partition is built for the step
        step_tmp = p * 4.0 if not run.offload else 0.0
    autocast = run.precision == "amp" and not sharded
    return _States(
        weights=p * param_bytes,
        weights_formula=f"{spec.total_params:,} params × {param_bytes:g} B",
        grads=p * param_bytes,
        grads_formula=f"trainable {int(p):,} (all parameters) × {param_bytes:g} B",
        head_grads=(spec.lm_head_params or spec.embedding_params) * param_bytes,
        optimizer=optimizer + master,
        optimizer_formula=opt_formula,
        step_tmp=step_tmp,
        copies=spec.linear_params * c if autocast else 0.0,
        residual=4.0 if run.precision in ("amp", "fp32") and not sharded else c,
        gather_bytes=param_bytes,
        trainable=p,
    )


def _peft_states(spec: ModelSpec, run: RunSpec, deepspeed: bool) -> _States:
    """A frozen base plus adapters (LoRA, prompt, prefix) and PEFT's modules_to_save copies."""
    c = run.compute_bytes
    trainable, how = trainable_params(spec, run)
    saved = saved_module_params(spec, run)
    adapters = trainable - saved
    w = weight_bytes(spec, run.weights, c)
    unquantized = float(spec.total_params - (spec.linear_params if w.quantized else 0))
    # DeepSpeed's fp16/bf16 engine casts every floating tensor of the module to 16 bit and keeps fp32
    # master copies of the trainable ones with the optimizer (engine._configure_distributed_model).
    ds_cast = deepspeed and run.precision != "fp32"
    if ds_cast:
        plain, adapter_bytes, saved_bytes = unquantized * c, c, c
        master, state_mem, grads = trainable * 4.0, trainable * 4.0, trainable * c
        step_tmp = trainable * 4.0 if not run.offload else 0.0  # the fp32 gradient partition
    else:
        plain = w.plain
        if run.method == "qlora":  # prepare_model_for_kbit_training casts the unquantized rest to fp32
            plain = max(0, spec.total_params - spec.linear_params) * 4.0
        # PEFT keeps adapter weights in fp32 (autocast_adapter_dtype); a modules_to_save copy is a
        # deepcopy of the base module, in the base's dtype; gradients and torch's Adam states follow
        adapter_bytes = 4.0
        saved_bytes = plain / unquantized if unquantized else c
        master, state_mem = 0.0, adapters * adapter_bytes + saved * saved_bytes
        grads = state_mem
        step_tmp = state_mem if run.optimizer == "adamw" and not run.offload else 0.0
    optimizer, opt_formula = _optimizer_bytes(run, trainable, state_mem, spec)
    if master:
        opt_formula = "fp32 master copy 4 B × trainable + " + opt_formula
    weights = w.quantized + plain + adapters * adapter_bytes + saved * saved_bytes
    formula = w.formula + f" + adapters {int(adapters):,} × {adapter_bytes:g} B"
    if saved:
        formula += f" + modules_to_save {int(saved):,} × {saved_bytes:g} B"
    if ds_cast:
        formula += " (DeepSpeed casts the module to 16 bit)"
    return _States(
        weights=weights,
        weights_formula=formula,
        grads=grads,
        grads_formula=f"trainable {int(trainable):,} ({how}) in their own dtype",
        head_grads=0.0,
        optimizer=optimizer + master,
        optimizer_formula=opt_formula,
        step_tmp=step_tmp,
        copies=0.0,
        residual=4.0 if run.weights == "fp32" else c,
        gather_bytes=c if ds_cast else PLAIN_BYTES.get(run.weights, c),
        trainable=trainable,
    )


def _shard_states(st: _States, spec: ModelSpec, run: RunSpec, shard: str) -> tuple[float, list[str]]:
    """Divide the states over the GPUs as the sharding does; return the gathered-parameter bytes."""
    n, notes = run.gpus, []
    if shard == "fsdp" and run.method != "full" and run.fsdp_frozen_grads:
        # FSDP with use_orig_params=True puts a block's frozen and trainable weights in one flat
        # parameter and makes a gradient for all of it: "gradient memory ... equivalent to not
        # freezing those parameters" (torch.distributed.fsdp docs). Embeddings and lm_head sit in
        # the root's flat parameter, frozen as a whole, and get none.
        blocks = spec.total_params - spec.embedding_params - spec.lm_head_params
        st.grads += blocks * st.gather_bytes
        st.grads_formula += (
            f" + frozen block weights {blocks:,} × {st.gather_bytes:g} B (FSDP flat parameters)"
        )
    # FSDP's no_sync() during gradient accumulation keeps unsharded gradients until the step
    no_sync = shard == "fsdp" and run.grad_accum > 1
    if shard in ("zero1", "zero2", "zero3", "fsdp"):
        st.optimizer /= n
        st.step_tmp /= n
    if shard in ("zero2", "zero3", "fsdp") and not no_sync:
        st.grads /= n
        st.head_grads /= n
    if no_sync and n > 1:
        notes.append("FSDP no_sync(): gradients stay unsharded while they accumulate")
    gathered = 0.0
    if shard in ("zero3", "fsdp"):
        st.weights /= n
        if shard == "zero3":  # up to stage3_max_live_parameters (default 1e9) gathered
            gathered = min(spec.total_params, run.zero3_live_params) * st.gather_bytes
        else:  # the block being computed and the prefetched one, and the unsharded root
            layer = (spec.total_params - spec.embedding_params - spec.lm_head_params) / spec.layers
            gathered = (2 * layer + max(spec.embedding_params, spec.lm_head_params)) * st.gather_bytes
    if run.offload == "cpu":
        st.host += st.optimizer + (st.grads if shard in ("zero2", "zero3") else 0.0)
        st.optimizer = 0.0
        st.step_tmp = 0.0
        if shard in ("zero2", "zero3"):
            st.grads /= 4  # gradient partitions stream to the host through small buckets
        if shard == "zero3":
            st.host += st.weights
            st.weights = 0.0
        notes.append(f"offload: {st.host / GIB:.1f} GiB of optimizer state in host memory")
    return gathered, notes


def _largest_param(spec: ModelSpec) -> int:
    """Elements of the model's largest single weight: the embedding, lm_head or a linear layer."""
    linears = [fan_in * out for _, fan_in, out, _ in spec.linear_shapes()]
    return max([spec.embedding_params, spec.lm_head_params, *linears])


def _deepspeed_buckets(st: _States, run: RunSpec, shard: str) -> tuple[float, str]:
    if shard in ("zero1", "zero2"):
        # DeepSpeed's docs: with overlap_comm, 4.5 × (allgather + reduce bucket) of 16-bit elements
        buckets = min(run.ds_bucket * 2 * 2 * 4.5, 2 * st.trainable * 2 * 4.5)
        return buckets, f"{run.ds_bucket:.0e} elements × 2 B × 2 buckets × 4.5 (overlap_comm)"
    # ZeRO-3 allocates its reduce bucket whole at start-up, in the model's dtype, however few
    # parameters train (stage3.py: contiguous_gradients -> __ipg_bucket_flat_buffer)
    return run.ds_bucket * st.gather_bytes, f"reduce bucket {run.ds_bucket:.0e} × {st.gather_bytes:g} B"


def _loss_logits(spec: ModelSpec, run: RunSpec, seq: int, deepspeed: bool) -> tuple[float, str]:
    """Logits and the loss's tensors for one micro-batch.

    16-bit logits, their fp32 copy, the log-softmax and its gradient; without the upcast (older
    remote code) the logits, their shifted copy, the log-softmax and its gradient in 16 bit.
    Autocast runs cross_entropy in fp32 whatever the model code does (torch.amp's fp32 op list);
    DeepSpeed's fp16/bf16 casts the model instead of autocasting.
    """
    c = run.compute_bytes
    autocast = run.precision == "amp" and not deepspeed
    per_logit = 2 * c + 8 if run.loss_upcast or autocast else 4 * c
    logits = run.batch * seq * spec.vocab_size * per_logit
    return logits, f"b·s·V·{per_logit:g} B with s={seq}, V={spec.vocab_size}"


def _train(spec: ModelSpec, run: RunSpec) -> MemoryEstimate:
    c, n = run.compute_bytes, run.gpus
    # DeepSpeed keeps its own mixed-precision layout even on one GPU; DDP/FSDP on one GPU are plain.
    shard = run.sharding if n > 1 or run.sharding.startswith("zero") else "none"
    deepspeed = shard in ("zero1", "zero2", "zero3")
    frozen = run.method != "full"
    seq = run.seq_len + (run.virtual_tokens if run.method == "prompt" else 0)
    if frozen:
        st = _peft_states(spec, run, deepspeed)
    else:
        st = _full_states(spec, run, deepspeed or shard == "fsdp", deepspeed)
    gathered, notes = _shard_states(st, spec, run, shard)
    ddp_buckets = st.grads if shard == "ddp" else 0.0  # a second copy of the gradients
    ds_buckets, ds_formula = _deepspeed_buckets(st, run, shard) if deepspeed else (0.0, "")
    split = f" ÷ {n} GPUs"
    parts_static = [
        Part("weights", st.weights, st.weights_formula + (split if shard in ("zero3", "fsdp") else "")),
        Part(
            "optimizer states",
            st.optimizer,
            st.optimizer_formula + (split if shard not in ("none", "ddp") else ""),
        ),
        Part("DDP gradient buckets", ddp_buckets, "a second copy of the gradients for all-reduce"),
        Part("DeepSpeed buckets", ds_buckets, ds_formula),
        Part("gathered parameters", gathered, "ZeRO-3 live parameters (≤ 1e9) / FSDP: two layers + root"),
    ]
    # FSDP's frozen weights that get gradients keep their inputs like trainable ones; so do frozen
    # linears under ZeRO-3: zero.Init swaps torch.nn.functional.linear for DeepSpeed's
    # LinearFunctionForZeroStage3, whose forward saves its input whatever needs a gradient
    # (zero/linear.py, zero/partition_parameters.py: "This will persist unless manually reset")
    keeps_inputs = (shard == "fsdp" and run.fsdp_frozen_grads) or shard == "zero3"
    acts = _training_activations(spec, run, seq, frozen and not keeps_inputs, st.residual)
    logits = _loss_logits(spec, run, seq, deepspeed)
    dequant = 0.0
    if run.method == "qlora" or (frozen and run.weights in QUANT_METHODS):
        biggest = max(fan_in * out for _, fan_in, out, _ in spec.linear_shapes())
        dequant = 2 * biggest * c  # forward and backward dequantize a matrix into the compute dtype
    phases = _phases(spec, run, st, acts, logits, dequant, deepspeed)
    if shard == "zero3" and run.offload == "cpu":
        # A gather allocates the whole parameter on the GPU, then copies its CPU partition there
        # (`param.ds_tensor.to(device)`, all_gather_coalesced in DeepSpeed's
        # zero/partition_parameters.py). The largest weight, the embedding or lm_head, is gathered
        # at the end of the forward pass, with every activation alive and before the logits.
        copy = _largest_param(spec) / n * st.gather_bytes
        phases["end of forward"] = [
            Part("activations", acts[0], acts[2]),
            Part(
                "gather copy", copy, f"largest weight {_largest_param(spec):,} ÷ {n} × {st.gather_bytes:g} B"
            ),
        ]
    totals = {name: sum(x.bytes for x in ps) for name, ps in phases.items()}
    phase = max(totals, key=lambda k: totals[k])
    static = sum(x.bytes for x in parts_static)
    return MemoryEstimate(
        spec,
        run,
        [*parts_static, *phases[phase]],
        phase,
        {k: v + static for k, v in totals.items()},
        host_bytes=st.host,
        notes=notes,
    )


def _phases(
    spec: ModelSpec,
    run: RunSpec,
    st: _States,
    acts: tuple[float, float, str],
    logits: tuple[float, str],
    dequant: float,
    deepspeed: bool,
) -> dict[str, list[Part]]:
    """What is alive at each candidate moment of the peak, besides the static parts."""
    all_layers, one_layer, act_formula = acts
    copies = Part(
        "weight copies (autocast)",
        st.copies,
        f"{spec.linear_params:,} linear params × {run.compute_bytes:g} B cached by autocast",
    )
    grads = Part("gradients", st.grads, st.grads_formula)
    # Gradient accumulation keeps the gradients of earlier micro-batches through this one's passes.
    if run.grad_accum > 1:
        early = Part("gradients", st.grads, f"{run.grad_accum} micro-batches accumulate: {st.grads_formula}")
    else:
        early = Part("gradients", st.head_grads, "lm_head gradient (first)")
    return {
        # start of backward: all activations, logits and their gradient alive, few gradients yet
        "start of backward": [
            copies,
            Part("activations", all_layers, act_formula),
            Part("logits", *logits),
            early,
            Part(
                "dequantized weights", dequant, "the largest linear layer dequantized, forward and backward"
            ),
        ],
        # end of backward: all gradients, one layer's activations
        "end of backward": [copies, grads, Part("activations", one_layer, "the first layer's activations")],
        # optimizer step: gradients plus the optimizer's temporaries
        "optimizer step": [
            grads,
            Part(
                "optimizer step temporaries",
                st.step_tmp,
                "fp32 gradient partition (DeepSpeed)"
                if deepspeed
                else "torch AdamW (foreach) keeps sqrt(v) per parameter",
            ),
        ],
    }
