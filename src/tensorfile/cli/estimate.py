"""`tensorfile estimate`: the CLI face of tensorfile.estimate (options, report)."""

from __future__ import annotations

from typing import Any

import click

from .common import _choice, _console, _fail, _print_json, json_option


@click.command()
@click.argument("model")
@click.option(
    "--task", type=_choice("inference", "train"), help="Default: train for PEFT methods, else inference."
)
@click.option(
    "--method", type=_choice("full", "lora", "qlora", "prompt", "prefix"), default="full", show_default=True
)
@click.option(
    "--weights",
    help="fp32|fp16|bf16|fp8|int8|int4|nf4|nf4-dq|fp4|gptq|awq|gguf:<TYPE> (default: as stored, else bf16).",
)
@click.option("--compute-dtype", type=_choice("bf16", "fp16", "fp32"), default="bf16", show_default=True)
@click.option(
    "--precision", type=_choice("amp", "bf16-true", "fp32"), help="Training math (default from --weights)."
)
@click.option("--batch", type=int, default=1, show_default=True)
@click.option(
    "--grad-accum",
    type=int,
    default=1,
    show_default=True,
    help="Training: micro-batches whose gradients accumulate before each optimizer step.",
)
@click.option(
    "--seq-len", type=int, default=2048, show_default=True, help="Prompt or training sequence length."
)
@click.option("--gen-tokens", type=int, default=256, show_default=True, help="Tokens generated (inference).")
@click.option(
    "--target-len",
    type=int,
    help="Training an encoder-decoder: the target (decoder) length (default --seq-len).",
)
@click.option(
    "--kv-dtype", help="KV cache dtype: fp16|bf16|fp8|int8|int4|q8_0|q4_0 (default: compute dtype)."
)
@click.option("--grad-ckpt/--no-grad-ckpt", default=False, show_default=True, help="Gradient checkpointing.")
@click.option(
    "--flash-attn/--no-flash-attn", default=True, show_default=True, help="Memory-efficient attention."
)
@click.option(
    "--optimizer",
    type=_choice("adamw", "adamw-fused", "adamw-8bit", "paged-adamw-8bit", "sgd", "adafactor"),
    default="adamw",
    show_default=True,
)
@click.option("--lora-r", type=int, default=8, show_default=True)
@click.option("--lora-targets", help="Comma-separated module names or all-linear (default q_proj,v_proj).")
@click.option(
    "--virtual-tokens", type=int, default=20, show_default=True, help="Prompt/prefix tuning tokens."
)
@click.option(
    "--prompt-encoder", type=_choice("none", "mlp", "lstm"), help="P-tuning (--method prompt): the encoder."
)
@click.option("--gpus", type=int, default=1, show_default=True)
@click.option("--sharding", type=_choice("none", "ddp", "zero1", "zero2", "zero3", "fsdp"), default="none")
@click.option(
    "--fsdp-frozen-grads/--no-fsdp-frozen-grads",
    default=False,
    show_default=True,
    help="FSDP + PEFT: frozen weights share flat parameters with the adapters and get gradients "
    "(use_orig_params with per-block wrapping, e.g. Lightning Fabric / LitGPT).",
)
@click.option(
    "--offload", type=_choice("cpu"), help="Keep optimizer states (zero3: also parameters) in CPU memory."
)
@click.option(
    "--counter",
    type=_choice("allocated", "reserved", "nvidia-smi"),
    default="nvidia-smi",
    show_default=True,
    help="Which number you will compare with: torch's max allocated / reserved, or nvidia-smi.",
)
@click.option(
    "--cuda-context-gib",
    type=float,
    default=0.5,
    show_default=True,
    help="The CUDA context and kernels in the nvidia-smi view (older CUDA without lazy loading: 1-2).",
)
@click.option(
    "--logits", type=_choice("last", "all"), default="last", help="Prefill logits (all: transformers < 4.45)."
)
@click.option("--engine", type=_choice("auto", "transformers", "llama.cpp"), default="auto")
@click.option(
    "--device",
    type=_choice("gpu", "cpu"),
    default="gpu",
    show_default=True,
    help="cpu: the RAM of a CPU-only run (no CUDA context, workspace or allocator margin).",
)
@click.option("--layers", type=int)
@click.option("--hidden", "hidden_size", type=int)
@click.option("--heads", type=int)
@click.option("--kv-heads", type=int)
@click.option("--head-dim", type=int)
@click.option("--vocab", "vocab_size", type=int)
@click.option("--intermediate", "intermediate_size", type=int)
@click.option("--experts", type=int, help="MoE: routed experts.")
@click.option("--experts-per-token", type=int, help="MoE: active experts per token.")
@click.option("--sliding-window", type=int)
@click.option(
    "--gpu", "gpu_name", help="A GPU from the table for --max-batch / --max-context (e.g. 4090, a100-80)."
)
@click.option("--max-batch", is_flag=True, help="Largest batch that fits on one --gpu.")
@click.option("--max-context", is_flag=True, help="Longest context that fits on one --gpu.")
@click.option("--explain", is_flag=True, help="Show the formula of every line.")
@json_option
def estimate(
    model: str,
    gpu_name: str | None,
    max_batch: bool,
    max_context: bool,
    explain: bool,
    as_json: bool,
    **settings: Any,
) -> None:
    """How much GPU memory MODEL needs to run or fine-tune, and which GPUs hold it.

    MODEL is a model file or folder, a config.json, or a size like 7B (shapes then assumed from a
    similar open model unless --layers/--hidden/... say otherwise).
    """
    from ..estimate import estimate_memory
    from ..estimate.gpus import find_gpu
    from ..estimate.report import build_report, render_estimate

    if (max_batch or max_context) and not gpu_name:
        raise _fail("--max-batch and --max-context need --gpu NAME")
    gpu = find_gpu(gpu_name) if gpu_name else None
    settings = {k: (v.lower() if isinstance(v, str) and k != "weights" else v) for k, v in settings.items()}
    training = settings.get("task") == "train" or settings.get("method") != "full"
    if training and settings.get("gpus", 1) > 1 and settings.get("sharding") == "none":
        settings["sharding"] = "ddp"  # several GPUs training without sharding: data parallel
    est = estimate_memory(model, **settings)
    report = build_report(est, gpu, max_batch, max_context)
    if as_json:
        _print_json(report.to_dict())
    else:
        render_estimate(_console(), report, explain=explain)
