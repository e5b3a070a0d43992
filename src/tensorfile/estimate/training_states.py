"""One GPU's weights, gradients and optimizer states when training: what trains, in which dtypes,
and how ZeRO, FSDP and CPU offload divide it."""

from __future__ import annotations

from dataclasses import dataclass

from .breakdown import GIB
from .run import RunSpec
from .spec import ModelSpec
from .weights import PLAIN_BYTES, weight_bytes

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
class TrainingStates:
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


def full_states(spec: ModelSpec, run: RunSpec, sharded: bool, deepspeed: bool) -> TrainingStates:
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
    return TrainingStates(
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


def peft_states(spec: ModelSpec, run: RunSpec, deepspeed: bool) -> TrainingStates:
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
    return TrainingStates(
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


def shard_states(st: TrainingStates, spec: ModelSpec, run: RunSpec, shard: str) -> tuple[float, list[str]]:
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
