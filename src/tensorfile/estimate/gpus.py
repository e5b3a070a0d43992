"""Which GPUs hold an estimate, how many are needed, and the largest batch or context that fits."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

from ..errors import TensorfileError
from .breakdown import GIB, MIB
from .memory import estimate
from .run import RunSpec
from .spec import ModelSpec


@dataclass(frozen=True)
class GPU:
    name: str
    memory_bytes: int  # what the device reports (nvidia-smi "total"; Apple: the GPU working-set limit)
    kind: str  # consumer | datacenter | apple
    note: str = ""


def _mib(n: int) -> int:
    return n * MIB


# Totals as nvidia-smi / rocm-smi print them; a "24 GB" card is 24564 MiB, not 24 GiB.
GPUS: tuple[GPU, ...] = (
    GPU("RTX 3060 12GB", _mib(12288), "consumer"),
    GPU("RTX 3070 8GB", _mib(8192), "consumer"),
    GPU("RTX 3080 10GB", _mib(10240), "consumer"),
    GPU("RTX 3090 24GB", _mib(24576), "consumer"),
    GPU("RTX 4060 Ti 16GB", _mib(16380), "consumer"),
    GPU("RTX 4070 12GB", _mib(12282), "consumer"),
    GPU("RTX 4080 16GB", _mib(16376), "consumer"),
    GPU("RTX 4090 24GB", _mib(24564), "consumer"),
    GPU("RTX 5090 32GB", _mib(32607), "consumer"),
    GPU("T4 16GB", _mib(15360), "datacenter"),
    GPU("V100 32GB", _mib(32768), "datacenter"),
    GPU("A10 24GB", _mib(23028), "datacenter"),
    GPU("L4 24GB", _mib(23034), "datacenter"),
    GPU("L40S 48GB", _mib(46068), "datacenter"),
    GPU("A100 40GB", _mib(40960), "datacenter"),
    GPU("A100 80GB", _mib(81920), "datacenter"),
    GPU("H100 80GB", _mib(81559), "datacenter"),
    GPU("H200 141GB", _mib(143771), "datacenter"),
    GPU("MI300X 192GB", _mib(196592), "datacenter"),
    # macOS lets the GPU wire about 2/3 of unified memory up to 36 GB and 3/4 above.
    GPU("Apple 16GB", int(16 * GIB * 2 / 3), "apple", "2/3 of 16 GB unified memory"),
    GPU("Apple 32GB", int(32 * GIB * 2 / 3), "apple", "2/3 of 32 GB unified memory"),
    GPU("Apple 64GB", int(64 * GIB * 3 / 4), "apple", "3/4 of 64 GB unified memory"),
    GPU("Apple 128GB", int(128 * GIB * 3 / 4), "apple", "3/4 of 128 GB unified memory"),
    GPU("Apple 192GB", int(192 * GIB * 3 / 4), "apple", "3/4 of 192 GB unified memory"),
)

MAX_GPUS = 64


class GPUError(TensorfileError):
    pass


def find_gpu(name: str) -> GPU:
    """A GPU by (part of) its name, case and spaces ignored: 'a100-80', '4090', 'h100'."""
    key = name.lower().replace(" ", "").replace("-", "").replace("_", "")
    matches = [g for g in GPUS if key in g.name.lower().replace(" ", "")]
    exact = [g for g in matches if g.name.lower().replace(" ", "").startswith(key)]
    chosen = exact or matches
    if len(chosen) == 1:
        return chosen[0]
    if not chosen:
        raise GPUError(f"unknown GPU {name!r}; known: {', '.join(g.name for g in GPUS)}")
    raise GPUError(f"GPU {name!r} is ambiguous: {', '.join(g.name for g in chosen)}")


def _need(spec: ModelSpec, run: RunSpec) -> int:
    # Fitting is judged on the whole process footprint, whatever counter the user compares with.
    return estimate(spec, replace(run, counter="nvidia-smi")).per_gpu_bytes


def _split_run(run: RunSpec, gpus: int) -> RunSpec:
    if run.training and run.sharding in ("none", "ddp"):
        return replace(run, gpus=gpus, sharding="zero3")  # only sharding makes more GPUs hold less
    return replace(run, gpus=gpus)


def gpus_needed(spec: ModelSpec, run: RunSpec, gpu: GPU) -> int | None:
    """The fewest GPUs of this kind that hold the run (None: not even MAX_GPUS)."""
    if _need(spec, run) <= gpu.memory_bytes:
        return run.gpus
    n = 1
    while n < MAX_GPUS:
        n *= 2
        if _need(spec, _split_run(run, n)) <= gpu.memory_bytes:
            low = n // 2  # the first power of two that fits; search the counts below it
            while low + 1 < n:
                mid = (low + n) // 2
                if _need(spec, _split_run(run, mid)) <= gpu.memory_bytes:
                    n = mid
                else:
                    low = mid
            return n
    return None


def fits(spec: ModelSpec, run: RunSpec) -> dict[str, dict[str, object]]:
    """For every GPU in the table: does the run fit as given, and how many would it take."""
    table: dict[str, dict[str, object]] = {}
    need = _need(spec, run)
    for gpu in GPUS:
        count = gpus_needed(spec, run, gpu)
        table[gpu.name] = {
            "memory_bytes": gpu.memory_bytes,
            "fits": need <= gpu.memory_bytes,
            "gpus_needed": count,
            "headroom_bytes": gpu.memory_bytes - need,
        }
    return table


def _largest(fits_at: Callable[[int], bool], start: int, limit: int) -> int:
    """The largest n in [start, limit] with fits_at(n), for a monotone predicate; 0 if none."""
    if not fits_at(start):
        return 0
    low, high = start, start
    while high < limit and fits_at(min(high * 2, limit)):
        low = high = min(high * 2, limit)
    if high == limit:
        return limit
    high = min(high * 2, limit)
    while low + 1 < high:
        mid = (low + high) // 2
        if fits_at(mid):
            low = mid
        else:
            high = mid
    return low


def max_batch(spec: ModelSpec, run: RunSpec, gpu: GPU) -> int:
    return _largest(lambda b: _need(spec, replace(run, batch=b)) <= gpu.memory_bytes, 1, 1 << 16)


def max_context(spec: ModelSpec, run: RunSpec, gpu: GPU) -> int:
    """Largest prompt (inference: prompt + generated tokens) or training sequence that fits."""
    if run.training:
        return _largest(lambda s: _need(spec, replace(run, seq_len=s)) <= gpu.memory_bytes, 1, 1 << 24)
    gen = run.gen_tokens
    total = _largest(
        lambda t: _need(spec, replace(run, seq_len=max(1, t - gen))) <= gpu.memory_bytes, gen + 1, 1 << 24
    )
    return total
