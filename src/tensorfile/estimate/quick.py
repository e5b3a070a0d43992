"""The seed guide's rules of thumb, computed for a model, to put beside the detailed estimate.

Bytes per parameter for inference (FP32 4, BF16 2, INT8 1, INT4 0.5), Adam training 12–20 B/param,
ZeRO-3 2–4 B/param per GPU, and the fine-tuning table scaled from its 7B examples: full > 100 GB,
LoRA 20–25 GB (params × 2 + LoRA params × 12 + 5–10 GB activations), QLoRA 14–18 GB, prompt
tuning < 5 GB.
"""

from __future__ import annotations

from dataclasses import dataclass

from .memory import estimate
from .run import make_run
from .spec import ModelSpec
from .training_states import trainable_params

SEVEN_B = 7e9


@dataclass(frozen=True)
class QuickRow:
    setting: str
    rule: str
    low: float  # bytes
    high: float
    detailed: int | None  # our estimate for the same setting (nvidia-smi counter), bytes
    detailed_setting: str


def _lora_params(spec: ModelSpec) -> float:
    return trainable_params(spec, make_run(task="train", method="lora"))[0]


def quick_table(
    spec: ModelSpec, seq_len: int = 2048, gen_tokens: int = 256, batch: int = 1
) -> list[QuickRow]:
    p = float(spec.total_params)
    scale = p / SEVEN_B
    lora = _lora_params(spec)

    def ours(**settings: object) -> int:
        run = make_run(batch=batch, seq_len=seq_len, **settings)
        return estimate(spec, run).per_gpu_bytes

    inf = dict(task="inference", gen_tokens=gen_tokens)
    rows = [
        QuickRow(
            "FP32 inference",
            "4 B × params",
            4 * p,
            4 * p,
            ours(weights="fp32", compute_dtype="fp32", **inf),
            f"fp32, prompt {seq_len} + {gen_tokens} tokens",
        ),
        QuickRow(
            "BF16 inference",
            "2 B × params",
            2 * p,
            2 * p,
            ours(weights="bf16", **inf),
            f"bf16, prompt {seq_len} + {gen_tokens} tokens",
        ),
        QuickRow("INT8 inference", "1 B × params", p, p, ours(weights="int8", **inf), "bitsandbytes int8"),
        QuickRow(
            "INT4 inference", "0.5 B × params", 0.5 * p, 0.5 * p, ours(weights="awq", **inf), "AWQ 4-bit"
        ),
        QuickRow(
            "Adam training",
            "12–20 B × params",
            12 * p,
            20 * p,
            ours(task="train", method="full", weights="fp32", precision="amp"),
            "full, AMP, AdamW, 1 GPU",
        ),
        QuickRow(
            "ZeRO-3 (per GPU, 8 GPUs)",
            "2–4 B × params",
            2 * p,
            4 * p,
            ours(task="train", method="full", weights="bf16", gpus=8, sharding="zero3"),
            "full, bf16, AdamW, ZeRO-3 over 8 GPUs",
        ),
        QuickRow(
            "Full fine-tuning",
            "> 100 GB for 7B",
            100e9 * scale,
            100e9 * scale,
            ours(task="train", method="full", weights="fp32", precision="amp"),
            "full, AMP, AdamW",
        ),
        QuickRow(
            "LoRA",
            "params × 2 + LoRA × 12 + 5–10 GB",
            2 * p + 12 * lora + 5e9 * scale,
            2 * p + 12 * lora + 10e9 * scale,
            ours(task="train", method="lora", weights="bf16"),
            "LoRA r8 on q,v, bf16 base",
        ),
        QuickRow(
            "QLoRA",
            "14–18 GB for 7B",
            14e9 * scale,
            18e9 * scale,
            ours(task="train", method="qlora", weights="nf4", optimizer="paged-adamw-8bit", grad_ckpt=True),
            "QLoRA nf4, paged AdamW 8-bit, grad ckpt",
        ),
        QuickRow(
            "Prompt tuning",
            "< 5 GB for 7B",
            0.0,
            5e9 * scale,
            ours(task="train", method="prompt", weights="bf16"),
            "20 virtual tokens, bf16 base",
        ),
    ]
    return rows


def seed_rule(
    spec: ModelSpec, run_task: str, method: str, weights: str, sharding: str, gpus: int
) -> tuple[float, float]:
    """The seed rule's (low, high) bytes for one setting, for comparisons in docs and tests."""
    p = float(spec.total_params)
    scale = p / SEVEN_B
    if run_task == "inference":
        per = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "int8": 1.0}.get(weights, 0.5)
        return per * p, per * p
    if method == "full":
        if sharding == "zero3" and gpus > 1:
            return 2 * p, 4 * p
        return 12 * p, 20 * p
    if method == "lora":
        lora = _lora_params(spec)
        return 2 * p + 12 * lora + 5e9 * scale, 2 * p + 12 * lora + 10e9 * scale
    if method == "qlora":
        return 14e9 * scale, 18e9 * scale
    return 0.0, 5e9 * scale
