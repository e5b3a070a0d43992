"""How the model runs: the settings `tensorfile estimate` takes, checked and defaulted in one place."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from ..errors import TensorfileError
from .weights import normalise

TASKS = ("inference", "train")
METHODS = ("full", "lora", "qlora", "prompt", "prefix")
PRECISIONS = ("amp", "bf16-true", "fp32")
OPTIMIZERS = ("adamw", "adamw-fused", "adamw-8bit", "paged-adamw-8bit", "sgd", "adafactor")
SHARDING = ("none", "ddp", "zero1", "zero2", "zero3", "fsdp")
COUNTERS = ("allocated", "reserved", "nvidia-smi")
# P-tuning: PEFT's PromptEncoder reparameterizes the virtual tokens through an MLP or an LSTM
PROMPT_ENCODERS = ("none", "mlp", "lstm")
KV_DTYPES = {
    "fp32": 4.0,
    "fp16": 2.0,
    "bf16": 2.0,
    "fp8": 1.0,
    "int8": 1.0,
    "q8_0": 34 / 32,
    "int4": 0.5,
    "q4_0": 18 / 32,
}
COMPUTE_DTYPES = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0}
# PEFT's defaults for Llama-style models when no target modules are given.
DEFAULT_LORA_TARGETS = ("q_proj", "v_proj")
ALL_LINEAR = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


class RunError(TensorfileError):
    """A setting that is unknown or contradicts another."""


@dataclass(frozen=True)
class RunSpec:
    """One way of running a model. Defaults are what people usually do with Hugging Face tools."""

    task: str = "inference"
    method: str = "full"
    weights: str = "bf16"
    compute_dtype: str = "bf16"
    precision: str = "amp"  # train only: amp (fp32 master + autocast), bf16-true, fp32
    batch: int = 1
    grad_accum: int = 1  # train: micro-batches whose gradients accumulate before an optimizer step
    seq_len: int = 2048  # prompt tokens (inference) or sequence length (training)
    gen_tokens: int = 256  # inference only
    target_len: int = 0  # training an encoder-decoder: the decoder's (target) length; 0: seq_len
    kv_dtype: str | None = None  # None: the compute dtype
    grad_ckpt: bool = False
    flash_attn: bool = True  # FlashAttention / SDPA memory-efficient kernels (transformers' default)
    optimizer: str = "adamw"
    lora_r: int = 8
    lora_targets: tuple[str, ...] = DEFAULT_LORA_TARGETS
    lora_dropout: bool = True  # a dropout before LoRA keeps its own copy of the input
    virtual_tokens: int = 20
    # method prompt: "mlp" / "lstm" is P-tuning (PEFT's PromptEncoder), "none" plain prompt tuning
    prompt_encoder: str = "none"
    encoder_hidden: int = 0  # the prompt encoder's width; 0: the model's hidden size (PEFT's default)
    gpus: int = 1
    sharding: str = "none"
    offload: str | None = None  # "cpu": optimizer states (and zero3 parameters) in host memory
    # FSDP + PEFT: frozen and trainable weights share a block's flat parameter (use_orig_params=True
    # with per-block wrapping, Lightning Fabric's default), so the frozen ones get gradients too
    fsdp_frozen_grads: bool = False
    counter: str = "nvidia-smi"
    logits: str = "last"  # inference prefill: "last" (transformers ≥ 4.45) or "all" (older ones)
    loss_upcast: bool = True  # transformers computes the loss on fp32 logits; older remote code does not
    cache: str = "dynamic"  # "legacy": tuple caches (transformers < 4.36, remote code) rebuilt every step
    engine: str = "auto"  # transformers | llama.cpp (auto: llama.cpp for gguf weights)
    # gpu: CUDA adds its context, the cuBLAS workspace and the caching allocator's margin;
    # cpu: the memory is plain RAM (a CPU-only runtime, llama.cpp on a laptop or phone), none of those
    device: str = "gpu"
    cuda_context_gib: float = 0.5
    zero3_live_params: float = 1e9  # DeepSpeed stage3_max_live_parameters
    ds_bucket: float = 2e8  # DeepSpeed reduce/allgather bucket size in elements (common configs: 2e8-5e8)

    @property
    def training(self) -> bool:
        return self.task == "train"

    @property
    def compute_bytes(self) -> float:
        return COMPUTE_DTYPES[self.compute_dtype]

    @property
    def kv_bytes(self) -> float:
        return KV_DTYPES[self.kv_dtype] if self.kv_dtype else self.compute_bytes

    @property
    def peft(self) -> bool:
        return self.method in ("lora", "qlora", "prompt", "prefix")

    @property
    def resolved_engine(self) -> str:
        if self.engine != "auto":
            return self.engine
        return "llama.cpp" if self.weights.startswith("gguf:") else "transformers"


def _check(value: Any, allowed: tuple[str, ...] | dict[str, Any], what: str) -> None:
    if value not in allowed:
        raise RunError(f"unknown {what} {value!r}; choose from {', '.join(allowed)}")


def make_run(**settings: Any) -> RunSpec:
    """A checked RunSpec from keyword settings (None means 'use the default')."""
    given = {k: v for k, v in settings.items() if v is not None}
    targets = given.get("lora_targets")
    if isinstance(targets, str):
        targets = tuple(t.strip() for t in targets.split(",") if t.strip())
    if targets is not None:
        targets = tuple(targets)
        if targets in (("all-linear",), ("all",)):
            targets = ALL_LINEAR
        given["lora_targets"] = targets
    method = given.get("method", "full")
    task = given.get("task")
    if task is None:
        task = "train" if method != "full" else "inference"
        given["task"] = task
    if method == "qlora" and "weights" not in given:
        given["weights"] = "nf4"
    if "weights" in given:
        try:
            given["weights"] = normalise(str(given["weights"]))
        except ValueError as exc:
            raise RunError(str(exc)) from None
    if given.get("precision") is None and task == "train":
        weights = given.get("weights", "bf16")
        # A model loaded in 16 bit and trained in full is "pure bf16"; loaded in fp32 it is autocast.
        given["precision"] = "amp" if method != "full" or weights == "fp32" else "bf16-true"
    if task == "train" and method == "full" and "weights" not in given:
        given["weights"] = {"amp": "fp32", "fp32": "fp32"}.get(
            given["precision"], given.get("compute_dtype", "bf16")
        )
    if given.get("precision") == "fp32":
        given["compute_dtype"] = "fp32"
    run = RunSpec(**given)
    _check(run.task, TASKS, "--task")
    _check(run.method, METHODS, "--method")
    _check(run.precision, PRECISIONS, "--precision")
    _check(run.optimizer, OPTIMIZERS, "--optimizer")
    _check(run.sharding, SHARDING, "--sharding")
    _check(run.counter, COUNTERS, "--counter")
    _check(run.prompt_encoder, PROMPT_ENCODERS, "--prompt-encoder")
    _check(run.compute_dtype, tuple(COMPUTE_DTYPES), "--compute-dtype")
    if run.kv_dtype is not None:
        _check(run.kv_dtype, tuple(KV_DTYPES), "--kv-dtype")
    _check(run.logits, ("last", "all"), "--logits")
    _check(run.cache, ("dynamic", "legacy"), "--cache")
    _check(run.engine, ("auto", "transformers", "llama.cpp"), "--engine")
    _check(run.device, ("gpu", "cpu"), "--device")
    if not 0 <= run.cuda_context_gib <= 64:  # also refuses nan
        raise RunError(f"--cuda-context-gib must be between 0 and 64, not {run.cuda_context_gib}")
    if run.device == "cpu" and (run.training or run.gpus > 1):
        raise RunError("--device cpu is for inference on one machine; training is estimated per GPU")
    for name in ("batch", "seq_len", "gpus", "grad_accum"):
        if int(getattr(run, name)) < 1:
            raise RunError(f"--{name.replace('_', '-')} must be at least 1")
    if run.gen_tokens < 0 or run.virtual_tokens < 0 or run.lora_r < 1 or run.target_len < 0:
        raise RunError("--gen-tokens, --target-len and --virtual-tokens must be >= 0, --lora-r >= 1")
    if run.prompt_encoder != "none" and run.method != "prompt":
        raise RunError("--prompt-encoder (P-tuning) goes with --method prompt")
    if run.encoder_hidden < 0:
        raise RunError("encoder_hidden must be >= 0 (0: the model's hidden size)")
    if run.method != "full" and run.task == "inference":
        raise RunError(f"--method {run.method} is a training method; use --task train")
    if run.method == "qlora" and run.weights not in ("nf4", "nf4-dq", "fp4", "int4", "gptq", "awq"):
        raise RunError("--method qlora trains over a 4-bit base: --weights nf4, nf4-dq, fp4, gptq or awq")
    if run.task == "train" and run.method == "full" and run.weights not in ("fp32", "fp16", "bf16"):
        raise RunError(
            "full fine-tuning needs unquantized weights; use --method lora/qlora for quantized bases"
        )
    if run.offload and run.offload != "cpu":
        raise RunError("--offload takes only 'cpu'")
    return run
