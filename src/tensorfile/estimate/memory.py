"""The memory model: peak GPU bytes per device, as a list of named parts each with its formula.

The peak is found by phases, not by adding everything up: activations are freed while gradients
are made, and the optimizer's temporaries appear only after the backward pass. Each phase lists
what is alive at that moment; the estimate is the largest phase, and its parts are the breakdown.
The phases are laid out in inference.py and training.py (with activations.py and
training_states.py); this module picks the model for the run and adds what the counter shows
beyond the tensors.

Symbols in the formulas: P parameters, b batch, s sequence, h hidden, I intermediate (active)
width, a attention width (heads × head_dim), kv KV width (kv_heads × head_dim), L layers, V vocab,
c bytes of the compute dtype.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from .breakdown import GIB, MIB, Part, Peak
from .encoder_peaks import encoder_peak, family_rule, seq2seq_peak
from .inference import inference_peak, llama_cpp_peak
from .run import RunSpec
from .spec import ModelSpec
from .training import training_peak

# What torch's caching allocator reserves beyond what is allocated: freed blocks of other sizes
# stay cached. A share of the memory that churns (activations, logits, cache growth).
ALLOCATOR_CHURN_SHARE = 0.08
# cuBLAS workspace and small buffers torch allocates on first use.
WORKSPACE_BYTES = 64 * MIB


@dataclass(kw_only=True)
class MemoryEstimate(Peak):
    """Peak GPU memory of one device for one model and one way of running it."""

    model: ModelSpec
    run: RunSpec

    @property
    def per_gpu_bytes(self) -> int:
        return round(sum(p.bytes for p in self.parts))

    @property
    def breakdown(self) -> dict[str, int]:
        return {p.name: round(p.bytes) for p in self.parts}

    def bytes_for(self, counter: str) -> int:
        """The peak as another counter would show it (allocated ⊂ reserved ⊂ nvidia-smi)."""
        return estimate(self.model, replace(self.run, counter=counter)).per_gpu_bytes


_CHURNING = ("activations", "logits", "optimizer step temporaries", "KV cache", "dequantized weights")
_CHURNING += ("encoder output", "output")


def _margin_bytes(parts: list[Part]) -> float:
    churn = sum(p.bytes for p in parts if p.name in _CHURNING)
    return ALLOCATOR_CHURN_SHARE * churn + 2 * MIB


def estimate(spec: ModelSpec, run: RunSpec) -> MemoryEstimate:
    """Peak memory of one GPU."""
    eager_note = None
    if spec.eager_attention and run.flash_attn and run.resolved_engine == "transformers":
        run = replace(run, flash_attn=False)
        eager_note = (
            "transformers runs this model type with eager attention only (no SDPA or FlashAttention "
            "kernel): its attention scores are counted whatever --flash-attn says"
        )
    if run.training:
        peak = training_peak(spec, run)
    elif spec.family in ("encoder", "vision"):
        peak = encoder_peak(spec, run)
    elif spec.family == "encoder-decoder":
        peak = seq2seq_peak(spec, run)
    elif run.resolved_engine == "llama.cpp":
        peak = llama_cpp_peak(spec, run)
    else:
        peak = inference_peak(spec, run)
    if spec.family != "decoder" and run.training:
        peak.notes.insert(0, family_rule(spec, training=True))
    if eager_note:
        peak.notes.append(eager_note)
    result = MemoryEstimate(
        parts=peak.parts,
        phase=peak.phase,
        other_phases=peak.other_phases,
        host_bytes=peak.host_bytes,
        notes=peak.notes,
        model=spec,
        run=run,
    )
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
