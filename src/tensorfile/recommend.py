"""`recommend`: the seed's one-line format guide (一句话选择指南), made data-driven.

    from tensorfile.recommend import recommend
    rec = recommend("7B", "cpu", memory_gib=8)
    rec.format, rec.quantization, rec.runtime_bytes, rec.commands

For each target the table in recommend_plans.py says which format to use, the quantizations it
offers (best quality first), why, the commands and the alternatives. The logic here only sizes
each option with the estimator and takes the best one that fits the memory given (or assumed, for
phones and GPU servers); without a budget it takes the target's usual default.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import UnsupportedError, UsageError
from .recommend_plans import NON_LLM_OVERRIDES, TARGETS, Option, Plan

GIB = 1024**3

_ONLY = "\0only"  # in _current's commands: the plan's own commands do not apply to this file
# Commands that produce a format the input already has are left out.
_ALREADY = {"onnx": ("torch.onnx.export", "optimum-cli export onnx"), "gguf": ("convert_hf_to_gguf",)}
# Bytes per parameter when the model's shapes are unknown (no config.json): weights only.
_FLAT_BYTES = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5, "awq": 0.5}
_ONNX_DTYPE = {"fp32": "fp32", "fp16": "fp16", "bf16": "fp16"}


@dataclass
class Recommendation:
    """The answer for one model and one target."""

    target: str
    target_label: str
    model: str
    parameters: int | None
    format: str
    extension: str
    runtime: str
    quantization: str
    weights: str | None  # the estimator's --weights for the choice
    disk_bytes: int | None
    runtime_bytes: int | None
    device: str
    memory_bytes: int | None  # given or assumed
    budget_bytes: int | None  # the usable part of it
    memory_assumed: bool
    fits: bool | None
    gpus: int
    reasons: list[str]
    commands: list[str]
    alternatives: list[dict[str, str]]
    candidates: list[dict[str, Any]] = field(default_factory=list)
    breakdown: dict[str, int] = field(default_factory=dict)
    context_tokens: int = 0
    current: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


def recommend(
    model: str | Path, target: str, memory_gib: float | None = None, **settings: Any
) -> Recommendation:
    """Which format and quantization to use for `model` on `target`, sized by the estimator.

    model: a file, folder or config.json, or a size like "7B". memory_gib: memory available on the
    device (RAM for CPUs and phones, per-GPU memory for servers and training). settings: seq_len,
    gen_tokens, batch, kv_dtype and the estimator's shape overrides (layers, hidden_size, ...).
    """
    from .estimate import SHAPE_OPTIONS
    from .estimate.weights import is_quantized

    key = str(target).lower()
    if key not in TARGETS:
        raise UsageError(f"unknown target {target!r}; choose from {', '.join(TARGETS)}")
    if memory_gib is not None and not 0 < memory_gib < 1e9:  # also refuses nan and inf
        raise UsageError(f"--memory must be a positive number of GiB, not {memory_gib}")
    allowed = {"seq_len", "gen_tokens", "batch", "kv_dtype", *SHAPE_OPTIONS}
    unknown = sorted(k for k, v in settings.items() if k not in allowed and v is not None)
    if unknown:
        raise UsageError(f"recommend does not take {', '.join(unknown)}")
    text = str(model)
    source = _Source.read(text, settings)
    plan = TARGETS[key]
    if not source.llm and key in NON_LLM_OVERRIDES:
        plan = replace(plan, **NON_LLM_OVERRIDES[key])
    run = {k: v for k, v in settings.items() if v is not None and k not in SHAPE_OPTIONS}
    run.setdefault("seq_len", plan.seq_len)
    run.setdefault("gen_tokens", plan.gen_tokens)

    memory = memory_gib * GIB if memory_gib is not None else None
    assumed = memory is None and plan.assumed_gib is not None and plan.device != ""
    if assumed:
        memory = plan.assumed_gib * GIB  # type: ignore[operator]
    budget = memory * plan.usable if memory is not None and plan.device else None

    options = list(plan.options)
    keys = [o.key for o in options]
    # never upcast: a quantized checkpoint cannot give back the precision it lost
    start = source.option_key(plan) if plan.cap_at_stored else None
    if start is None and source.stored and is_quantized(source.stored):
        start = next((o.key for o in options if o.settings.get("weights") == source.stored), None)
    if start in keys:
        options = options[keys.index(start) :]
    sized = [_size(plan, o, source, run, gpus=1) for o in options]
    chosen, fits = _choose(plan, options, sized, source, run, budget)
    return _build(plan, key, text, source, chosen, fits, sized, memory, budget, assumed, run)


@dataclass
class _Sized:
    option: Option
    label: str
    weights: str | None
    disk: float | None
    need: float | None
    breakdown: dict[str, int]
    gpus: int = 1


@dataclass
class _Source:
    """What the model is: its spec for the estimator and, for a local path, what the file is now."""

    spec: Any  # ModelSpec, or None when the file holds no tensors
    shaped: bool  # transformer shapes known: the estimator's run-time numbers apply
    llm: bool  # looks like a transformer LLM
    stored: str | None  # the file's own --weights (bf16, awq, gguf:Q8_0, ...)
    params: int | None
    path: Path | None = None
    ident: Any = None
    info: Any = None

    @classmethod
    def read(cls, text: str, settings: dict[str, Any]) -> _Source:
        from .estimate import SHAPE_OPTIONS, default_weights, describe_model

        shape = {k: v for k, v in settings.items() if k in SHAPE_OPTIONS and v is not None}
        from .source import resolve_input

        path = resolve_input(text)
        if not path.exists():
            spec, _ = describe_model(text, **shape)  # a size like 7B, or a clear error
            return cls(spec, True, True, None, spec.total_params)
        if path.is_file() and path.name.endswith(".json"):
            spec, facts = describe_model(path, **shape)
            return cls(spec, True, True, default_weights(facts), spec.total_params, path)
        from .identification import identify
        from .inspection import inspect

        ident = identify(path)
        if not ident.known:
            raise UnsupportedError(f"not a model format tensorfile knows ({ident.reason or 'unknown'})", path)
        info = inspect(path)
        names = " ".join(t.name for t in info.tensors[:2000]).lower()
        llm = bool(info.architecture.get("model_type")) or any(
            k in names for k in ("attn", "attention", "q_proj")
        )
        if not info.parameter_count:  # nothing to size (the estimator needs at least one parameter)
            return cls(None, False, llm, None, 0, path, ident, info)
        spec, facts = describe_model(path, **shape)
        # Without config.json or architecture keys the estimator guesses shapes from the parameter
        # count alone; for small or unusual models that guess is meaningless, so only sizes are used.
        shaped = not (spec.shapes_assumed and spec.source != "size")
        return cls(spec, shaped, llm or shaped, default_weights(facts), spec.total_params, path, ident, info)

    def option_key(self, plan: Plan) -> str:
        """The option matching the file as stored (for targets that never upcast)."""
        if plan.options[0].key == "stored":
            return "stored"
        return _ONNX_DTYPE.get(self.stored or "", "fp16" if self.path is None else "fp32")


def _size(plan: Plan, option: Option, source: _Source, run: dict[str, Any], gpus: int) -> _Sized:
    """Disk bytes and run-time bytes of one option (None where they cannot be known)."""
    from .estimate import estimate_memory
    from .estimate.weights import weight_bytes

    settings = dict(option.settings)
    if option.key == "stored":
        settings["weights"] = source.stored or "bf16"
    weights = settings.get("weights")
    label = option.key
    if option.key == "stored":
        label = (source.stored or ("as stored" if source.path else "bf16")).removeprefix("gguf:")
    if source.spec is None:
        return _Sized(option, label, weights, None, None, {})
    if option.key == "stored" and source.info is not None:  # as it is: the file's own tensor bytes
        return _Sized(option, label, weights, float(source.info.total_bytes), None, {})
    training = settings.get("task") == "train"
    if not source.shaped:
        disk = source.params * (12.0 if training else _flat(weights))  # type: ignore[operator]
        return _Sized(option, label, weights, disk, None, {})
    device = {"counter": "allocated", "device": "cpu"} if plan.device == "RAM" else {"counter": "nvidia-smi"}
    est = estimate_memory(source.spec, **settings, **run, **device, gpus=gpus)
    parts = est.breakdown
    if training:
        states = parts.get("optimizer states", 0)
        # full: the weights and both moments; PEFT: the adapters (fp32) and their two fp32 moments
        disk = parts.get("weights", 0) + states if settings["method"] == "full" else states * 1.5
    else:
        disk = weight_bytes(source.spec, est.run.weights).total
    need = est.per_gpu_bytes  # a RAM plan runs with device cpu: host-kept tensors are in the weights
    return _Sized(option, label, weights, disk, None if not plan.device else need, parts, gpus)


def _flat(weights: str | None) -> float:
    if weights and weights.startswith("gguf:"):
        from .dtypes import lookup
        from .estimate.weights import GGUF_FILE_TYPES

        ftype = weights.split(":", 1)[1]
        return lookup(GGUF_FILE_TYPES.get(ftype, (ftype,))[0]).bits_per_weight / 8
    return _FLAT_BYTES.get(weights or "", 2.0)


def _choose(
    plan: Plan,
    options: list[Option],
    sized: list[_Sized],
    source: _Source,
    run: dict[str, Any],
    budget: float | None,
) -> tuple[_Sized, bool | None]:
    """The best option that fits the budget; fewest GPUs first when the target can use several."""
    if budget is None or source.spec is None:
        default = plan.default if plan.default != "stored" else source.option_key(plan)
        keys = [s.option.key for s in sized]
        return sized[keys.index(default) if default in keys else 0], None

    def need(s: _Sized) -> float:
        return s.need if s.need is not None else (s.disk or 0.0)  # weights alone when shapes are unknown

    for s in sized:
        if need(s) <= budget:
            return s, True
    if plan.multi_gpu and source.shaped:
        for n in (2, 4, 8):
            for option in options:
                s = _size(plan, option, source, run, gpus=n)
                if need(s) <= budget:
                    return s, True
    return sized[-1], False


def _build(
    plan: Plan,
    key: str,
    text: str,
    source: _Source,
    chosen: _Sized,
    fits: bool | None,
    sized: list[_Sized],
    memory: float | None,
    budget: float | None,
    assumed: bool,
    run: dict[str, Any],
) -> Recommendation:
    ctx_tokens = int(run["seq_len"]) + (int(run["gen_tokens"]) if key != "resume-training" else 0)
    reasons = [plan.why]
    notes: list[str] = []
    reasons.append(_choice_reason(plan, chosen, fits, sized, source, memory, budget, ctx_tokens))
    if assumed:
        notes.append(plan.assumption)
    if budget is not None and plan.device:
        notes.append(f"usable: {plan.usable:.0%} of the memory — {plan.usable_why}")
    if source.spec is not None and not source.shaped:
        notes.append(
            "model shapes unknown (no config.json beside the weights): sizes are weights only, no run-time "
            "estimate; put config.json next to the file or give --layers/--hidden/--heads"
        )
    elif source.spec is not None and source.path is None:
        notes.extend(source.spec.notes)
    if source.spec is None and source.path is not None:
        notes.append("the file holds no tensors, so there is nothing to size")
    if source.path is None:
        notes.append("MODEL_DIR stands for the model's Hugging Face folder (or repo id)")

    current, prefix = _current(plan, key, source, reasons)
    names = _names(text, source, chosen, run, ctx_tokens)
    commands = [] if _ONLY in prefix else _commands(plan, chosen, names, source)
    commands = list(dict.fromkeys([*(c for c in prefix if c != _ONLY), *commands]))
    safe_now = source.ident is not None and source.ident.can_execute_code is False
    if safe_now and plan.device and chosen.weights is not None and chosen.weights == source.stored:
        reasons.append(f"It is already {chosen.label}: run it as it is; the commands show how it is made.")
    fmt, ext = plan.format, plan.extension
    if current and current.pop("keep", False):  # already a safe format: it stays as it is
        fmt, ext = source.ident.name, "".join(source.path.suffixes) or "(folder)"  # type: ignore[union-attr]
    return Recommendation(
        target=key,
        target_label=plan.label,
        model=text,
        parameters=source.params,
        format=fmt,
        extension=ext,
        runtime=plan.runtime,
        quantization=chosen.label,
        weights=chosen.weights,
        disk_bytes=_int(chosen.disk),
        runtime_bytes=_int(chosen.need),
        device=plan.device or "none",
        memory_bytes=_int(memory),
        budget_bytes=_int(budget),
        memory_assumed=assumed,
        fits=fits,
        gpus=chosen.gpus,
        reasons=reasons,
        commands=commands,
        alternatives=[{"format": f, "when": w} for f, w in plan.alternatives],
        candidates=[
            {
                "quantization": s.label,
                "disk_bytes": _int(s.disk),
                "runtime_bytes": _int(s.need),
                "fits": None if budget is None or s.need is None else s.need <= budget,
            }
            for s in sized
        ],
        breakdown=chosen.breakdown,
        context_tokens=ctx_tokens if plan.device else 0,
        current=current,
        notes=notes,
    )


def _gib(n: float | None) -> str:
    return "?" if n is None else f"{n / GIB:.1f} GiB"


def _int(n: float | None) -> int | None:
    return None if n is None else round(n)


def _choice_reason(
    plan: Plan,
    chosen: _Sized,
    fits: bool | None,
    sized: list[_Sized],
    source: _Source,
    memory: float | None,
    budget: float | None,
    ctx: int,
) -> str:
    bits = ""
    if chosen.disk and source.params and chosen.option.settings.get("task") != "train":
        bits = f" ({chosen.disk * 8 / source.params:.1f} bits per parameter)"
    why = f"{chosen.label}{bits}: {chosen.option.why}"
    if chosen.need is None or budget is None or memory is None:
        if plan.device and budget is None and len(plan.options) > 1:
            return f"{why} Pass --memory GIB to choose by what fits."
        return why
    parts = chosen.breakdown
    biggest = sorted((p for p in parts.items() if p[1] >= 0.05 * GIB), key=lambda p: -p[1])[:3]
    what = " + ".join(f"{name} {_gib(value)}" for name, value in biggest)
    context = f" for {ctx:,} tokens of context" if "KV cache" in parts else ""
    if fits is False:
        split = " and does not fit even split over 8 GPUs" if plan.multi_gpu and source.shaped else ""
        return (
            f"Nothing fits in {_gib(memory)} ({_gib(budget)} usable): even {chosen.label}, the smallest "
            f"option, needs {_gib(chosen.need)} of {plan.device}{context} ({what}){split}. "
            "Use a smaller model, a shorter context (--seq-len) or a device with more memory."
        )
    where = f"{plan.device} on each of {chosen.gpus} GPUs" if chosen.gpus > 1 else plan.device
    text = (
        f"{why} It needs {_gib(chosen.need)} of {where}{context} ({what}), within the {_gib(budget)} usable"
    )
    text += f" of {_gib(memory)}"
    keys = [s.option.key for s in sized]
    index = keys.index(chosen.option.key)
    if chosen.gpus > 1:
        text += f"; nothing fits on one GPU, so it is split over {chosen.gpus} (tensor parallel)"
    elif index > 0 and sized[index - 1].need is not None:
        text += f"; {sized[index - 1].label} would need {_gib(sized[index - 1].need)}"
    return text + "."


def _current(
    plan: Plan, key: str, source: _Source, reasons: list[str]
) -> tuple[dict[str, Any] | None, list[str]]:
    """What the local file is now, the advice that follows from it, and the commands to do first."""
    if source.path is None:
        return None, []
    path = shlex.quote(str(source.path))
    if source.ident is None:  # a config.json
        return {"path": str(source.path), "format": "config.json", "can_execute_code": False}, []
    ident, info = source.ident, source.info
    current = {
        "path": str(source.path),
        "format": ident.format,
        "name": ident.name,
        "can_execute_code": ident.can_execute_code,
        "parameters": info.parameter_count,
        "stored_as": source.stored,
        "checkpoint": (info.checkpoint or {}).get("kind"),
    }
    if ident.can_execute_code:
        if plan.keeps_pickle and current["checkpoint"] == "training-checkpoint":
            reasons.append(
                f"It is already a training checkpoint ({ident.name}) with its optimizer state: keep it for "
                "resuming, load it with torch.load(weights_only=True) and scan checkpoints you did not write."
            )
            return current, [f"tensorfile scan {path}"]
        reasons.extend(ident.warnings)
        if not info.parameter_count:
            reasons.append(
                f"It is a {ident.name} file with no tensors: a pickle program, not model weights. "
                "Do not load it; scan it to see what it would run."
            )
            return current, [f"tensorfile scan {path}", _ONLY]
        if not _convertible(ident.format):
            reasons.append(
                f"It is a {ident.name} file now: loading it can run code, and tensorfile convert does not "
                "read it; scan it, then re-export it from the library that wrote it."
            )
            return current, [f"tensorfile scan {path}"]
        reasons.append(
            f"It is a {ident.name} file now: loading it can run code. Scan it, convert it to safetensors "
            "first and work from the converted copy."
        )
        safe = shlex.quote(str(_safe_path(source.path)))
        return current, [
            f"tensorfile scan {path}",
            f"tensorfile convert {path} {safe}",
            f"tensorfile scan {safe}",
        ]
    if plan.keeps_safe and ident.can_execute_code is False and ident.format != plan.format.lower():
        reasons.append(f"It is already {ident.name}, which loads without running code: share it as it is.")
        current["keep"] = True
    elif ident.format in (plan.extension.strip("."), plan.format.lower()):
        again = " Re-export it only to change its quantization." if len(plan.options) > 1 else ""
        reasons.append(f"It is already {ident.name}.{again}")
    quant = (info.quantization or {}).get("method")
    if quant:
        reasons.append(
            f"It is already quantized ({quant}): quantizing it again loses more quality; start from the "
            "original 16-bit weights to make another format."
        )
    return current, []


def _safe_path(path: Path) -> Path:
    if path.is_dir():
        return path.with_name(path.name + "-safetensors")
    out = path.with_name(path.name.split(".")[0] + ".safetensors")
    return out if out != path else path.with_name(path.name.split(".")[0] + "-converted.safetensors")


def _convertible(fmt: str) -> bool:
    from .convert.sources import SAFETENSORS_FORMAT

    return fmt in SAFETENSORS_FORMAT


def _names(text: str, source: _Source, chosen: _Sized, run: dict[str, Any], ctx: int) -> dict[str, str]:
    path = source.path
    if path is None:
        src, stem, onnx, safe = "MODEL_DIR", "model", "model.onnx", "model.safetensors"
    else:
        folder = path if path.is_dir() else path.parent
        unsafe = bool(
            source.ident is not None and source.ident.can_execute_code and _convertible(source.ident.format)
        )
        safe_path = _safe_path(path) if unsafe else path
        src = str(safe_path if unsafe and path.is_dir() else folder)
        stem = folder.name if path.is_dir() or path.suffix == ".json" else path.name.split(".")[0]
        onnx = str(path) if source.ident is not None and source.ident.format == "onnx" else f"{stem}.onnx"
        safe = str(safe_path)
    safe_dir = safe if safe.endswith(("-safetensors", "/")) or Path(safe).is_dir() else str(Path(safe).parent)
    n = chosen.gpus
    gguf_in = source.ident is not None and source.ident.format == "gguf"
    return {
        "f16": shlex.quote(str(path)) if gguf_in and path is not None else f"{shlex.quote(stem)}-f16.gguf",
        "gguf_src": shlex.quote(str(path)) if gguf_in and path is not None else shlex.quote(src),
        "requant": " --allow-requantize" if gguf_in and (source.info.quantization or {}) else "",
        "model": shlex.quote(text),
        "src": shlex.quote(src),
        "stem": shlex.quote(stem),
        "onnx": shlex.quote(onnx),
        "safe": shlex.quote(safe),
        "safedir": shlex.quote(safe_dir),
        "arg": chosen.option.arg or chosen.option.key,
        "weights": chosen.weights or "",
        "seq": str(run["seq_len"]),
        "gen": str(run["gen_tokens"]),
        "ctx": str(ctx),
        "tp": f" --tensor-parallel-size {n}" if n > 1 else "",
        "gpus": f" --gpus {n}" if n > 1 else "",
    }


def _commands(plan: Plan, chosen: _Sized, names: dict[str, str], source: _Source) -> list[str]:
    fmt = source.ident.format if source.ident is not None else ""
    # never point a command at a pickle as though it were the safe copy
    unsafe = bool(source.ident is not None and source.ident.can_execute_code and not _convertible(fmt))
    out: list[str] = []
    for template in plan.commands:
        steps = chosen.option.commands if template == "@option" else (template,)
        for step in steps:
            if any(tool in step for tool in _ALREADY.get(fmt, ())) or (unsafe and "{safe" in step):
                continue
            out.append(step.format(**names))
    return out
