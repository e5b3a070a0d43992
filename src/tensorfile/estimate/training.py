"""The training peak: what is alive at the start and end of the backward pass and at the optimizer
step, besides the weights and optimizer states, and which of these moments is the largest."""

from __future__ import annotations

from dataclasses import replace

from .activations import training_activations
from .breakdown import Part, Peak
from .lengths import encoder_length, target_length
from .run import RunSpec
from .spec import ModelSpec
from .training_states import TrainingStates, full_states, peft_states, shard_states
from .weights import QUANT_METHODS


def _largest_param(spec: ModelSpec) -> int:
    """Elements of the model's largest single weight: the embedding, lm_head or a linear layer."""
    linears = [fan_in * out for _, fan_in, out, _ in spec.linear_shapes()]
    return max([spec.embedding_params, spec.lm_head_params, *linears])


def _deepspeed_buckets(st: TrainingStates, run: RunSpec, shard: str) -> tuple[float, str]:
    if shard in ("zero1", "zero2"):
        # DeepSpeed's docs: with overlap_comm, 4.5 × (allgather + reduce bucket) of 16-bit elements
        buckets = min(run.ds_bucket * 2 * 2 * 4.5, 2 * st.trainable * 2 * 4.5)
        return buckets, f"{run.ds_bucket:.0e} elements × 2 B × 2 buckets × 4.5 (overlap_comm)"
    # ZeRO-3 allocates its reduce bucket whole at start-up, in the model's dtype, however few
    # parameters train (stage3.py: contiguous_gradients -> __ipg_bucket_flat_buffer)
    return run.ds_bucket * st.gather_bytes, f"reduce bucket {run.ds_bucket:.0e} × {st.gather_bytes:g} B"


def loss_logits(spec: ModelSpec, run: RunSpec, seq: int, deepspeed: bool) -> tuple[float, str]:
    """Logits and the loss's tensors for one micro-batch.

    16-bit logits, their fp32 copy, the log-softmax and its gradient; without the upcast (older
    remote code) the logits, their shifted copy, the log-softmax and its gradient in 16 bit.
    Autocast runs cross_entropy in fp32 whatever the model code does (torch.amp's fp32 op list);
    DeepSpeed's fp16/bf16 casts the model instead of autocasting.
    """
    c = run.compute_bytes
    if spec.head not in ("lm", "pretraining") or not spec.vocab_size:
        return 0.0, "a classification head: b × labels logits, negligible"
    if spec.family == "encoder-decoder":
        seq = target_length(spec, run)  # the decoder's tokens carry the loss
    elif spec.family == "encoder":
        seq = encoder_length(spec, replace(run, seq_len=seq))  # masked-LM logits for every token
    autocast = run.precision == "amp" and not deepspeed
    per_logit = 2 * c + 8 if run.loss_upcast or autocast else 4 * c
    logits = run.batch * seq * spec.vocab_size * per_logit
    return logits, f"b·s·V·{per_logit:g} B with s={seq}, V={spec.vocab_size}"


def training_peak(spec: ModelSpec, run: RunSpec) -> Peak:
    c, n = run.compute_bytes, run.gpus
    # DeepSpeed keeps its own mixed-precision layout even on one GPU; DDP/FSDP on one GPU are plain.
    shard = run.sharding if n > 1 or run.sharding.startswith("zero") else "none"
    deepspeed = shard in ("zero1", "zero2", "zero3")
    frozen = run.method != "full"
    seq = run.seq_len + (run.virtual_tokens if run.method == "prompt" else 0)
    if frozen:
        st = peft_states(spec, run, deepspeed)
    else:
        st = full_states(spec, run, deepspeed or shard == "fsdp", deepspeed)
    gathered, notes = shard_states(st, spec, run, shard)
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
    acts = training_activations(spec, run, seq, frozen and not keeps_inputs, st.residual)
    logits = loss_logits(spec, run, seq, deepspeed)
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
        largest = _largest_param(spec)
        copy = largest / n * st.gather_bytes
        phases["end of forward"] = [
            Part("activations", acts[0], acts[2]),
            Part("gather copy", copy, f"largest weight {largest:,} ÷ {n} × {st.gather_bytes:g} B"),
        ]
    totals = {name: sum(x.bytes for x in ps) for name, ps in phases.items()}
    phase = max(totals, key=lambda k: totals[k])
    static = sum(x.bytes for x in parts_static)
    return Peak(
        [*parts_static, *phases[phase]],
        phase,
        {k: v + static for k, v in totals.items()},
        host_bytes=st.host,
        notes=notes,
    )


def _phases(
    spec: ModelSpec,
    run: RunSpec,
    st: TrainingStates,
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
