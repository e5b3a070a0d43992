"""The estimate as one JSON document and as a terminal report (bar chart, seed rules, GPU fit)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from .breakdown import GIB
from .encoder_peaks import family_rule
from .gpus import GPU, fits, max_batch, max_context
from .memory import MemoryEstimate
from .quick import QuickRow, quick_table
from .run import RunError


@dataclass
class EstimateReport:
    estimate: MemoryEstimate
    fits: dict[str, dict[str, Any]]
    quick: list[QuickRow]
    gpu: GPU | None = None
    max_batch: int | None = None
    max_context: int | None = None
    facts: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        est = self.estimate
        spec = est.model
        model = {k: v for k, v in asdict(spec).items() if k != "notes"}
        model.update(
            total_params=spec.total_params,
            active_params=spec.active_params,
            notes=list(spec.notes),
        )
        run = asdict(est.run)
        run["lora_targets"] = list(est.run.lora_targets)
        data: dict[str, Any] = {
            "model": model,
            "setting": run,
            "counter": est.run.counter,
            "phase": est.phase,
            "per_gpu_bytes": est.per_gpu_bytes,
            "per_gpu_gib": round(est.per_gpu_bytes / GIB, 3),
            "gpus": est.run.gpus,
            "total_bytes": est.per_gpu_bytes * est.run.gpus,
            "breakdown": est.breakdown,
            "formulas": {p.name: p.formula for p in est.parts},
            "other_phases": {k: int(v) for k, v in est.other_phases.items()},
            "host_bytes": int(est.host_bytes),
            "fits": self.fits,
            "quick": [asdict(r) | {"low": int(r.low), "high": int(r.high)} for r in self.quick],
            "notes": [*spec.notes, *est.notes],
            "family_rule": family_rule(spec, est.run.training),
        }
        if self.facts:
            data["file"] = {k: v for k, v in self.facts.items() if k != "quantization"}
        if self.gpu is not None:
            data["gpu"] = self.gpu.name
            if self.max_batch is not None:
                data["max_batch"] = self.max_batch
            if self.max_context is not None:
                data["max_context"] = self.max_context
        return data


def build_report(
    est: MemoryEstimate,
    gpu: GPU | None = None,
    want_batch: bool = False,
    want_context: bool = False,
    facts: dict[str, Any] | None = None,
) -> EstimateReport:
    run = est.run
    quick = quick_table(est.model, seq_len=run.seq_len, gen_tokens=run.gen_tokens, batch=run.batch)
    if run.device == "cpu" and gpu is not None:
        raise RunError("--gpu, --max-batch and --max-context are for GPU runs, not --device cpu")
    table = {} if run.device == "cpu" else fits(est.model, run)
    report = EstimateReport(est, table, quick, gpu=gpu, facts=facts or {})
    if gpu is not None and want_batch:
        report.max_batch = max_batch(est.model, run, gpu)
    if gpu is not None and want_context:
        report.max_context = max_context(est.model, run, gpu)
    return report


def _gib(n: float) -> str:
    return f"{n / GIB:,.2f} GiB"


def render_estimate(console: Any, report: EstimateReport, explain: bool = False) -> None:
    from rich.table import Table
    from rich.text import Text

    from ..render import human_count

    est = report.estimate
    spec, run = est.model, est.run
    shape = (
        f"{spec.layers} layers, hidden {spec.hidden_size}, {spec.heads} heads ({spec.kv_heads} KV), "
        f"vocab {spec.vocab_size}, MLP {spec.intermediate_size}"
    )
    if spec.experts:
        shape += f", {spec.experts} experts ({spec.experts_per_token} active)"
    console.print(
        Text.assemble(
            ("model  ", "bold"), f"{spec.name}: {human_count(spec.total_params)} parameters; {shape}"
        )
    )
    what = f"{run.task}, {run.method}, weights {run.weights}"
    if run.training:
        what += f", {run.precision}, {run.optimizer}"
        if run.grad_ckpt:
            what += ", grad ckpt"
    what += f", batch {run.batch}, seq {run.seq_len}"
    if not run.training:
        what += f" + {run.gen_tokens} generated"
    if run.gpus > 1:
        what += f", {run.gpus} GPUs ({run.sharding})"
    console.print(Text.assemble(("run    ", "bold"), what))
    console.print(
        Text.assemble(
            ("peak   ", "bold"),
            (_gib(est.per_gpu_bytes), "bold cyan"),
            " of RAM" if run.device == "cpu" else f" per GPU ({run.counter} counter)",
            f", at {est.phase}",
        )
    )
    total = max(1, est.per_gpu_bytes)
    width = 36
    table = Table(box=None, show_header=False, pad_edge=False)
    table.add_column("part")
    table.add_column("bar")
    table.add_column("GiB", justify="right")
    table.add_column("%", justify="right")
    for part in est.parts:
        cells = part.bytes / total * width
        bar = "█" * int(cells) + ("▌" if cells - int(cells) >= 0.5 else "")
        table.add_row(
            part.name, Text(bar or "·", style="cyan"), f"{part.bytes / GIB:.2f}", f"{part.bytes / total:.0%}"
        )
    console.print(table)
    if explain:
        console.print(Text.assemble(("family ", "bold"), family_rule(spec, run.training)))
        console.print(Text("formulas", style="bold"))
        for part in est.parts:
            console.print(f"  {part.name}: {part.formula}")
        for name, value in est.other_phases.items():
            console.print(f"  phase {name}: {_gib(value)} before workspace, margin and context")
    if est.host_bytes:
        console.print(f"host memory: {_gib(est.host_bytes)}")
    for note in [*spec.notes, *est.notes]:
        if not (explain and note == family_rule(spec, run.training)):  # printed above as "family"
            console.print(Text(f"note: {note}", style="dim"))

    quick = Table(title="seed rules beside the detailed estimate", title_justify="left")
    quick.add_column("setting")
    quick.add_column("rule")
    quick.add_column("rule says", justify="right")
    quick.add_column("estimate", justify="right")
    quick.add_column("for")
    for row in report.quick:
        says = _gib(row.low) if row.low == row.high else f"{row.low / GIB:,.1f}–{row.high / GIB:,.1f} GiB"
        quick.add_row(row.setting, row.rule, says, _gib(row.detailed or 0), row.detailed_setting)
    console.print(quick)

    if not report.fits:  # a CPU run: no GPU table
        return
    fit = Table(title="GPUs (whole process, nvidia-smi view)", title_justify="left")
    fit.add_column("GPU")
    fit.add_column("memory", justify="right")
    fit.add_column("fits", justify="center")
    fit.add_column("GPUs needed", justify="right")
    for name, row in report.fits.items():
        needed = row["gpus_needed"]
        fit.add_row(
            name,
            f"{row['memory_bytes'] / GIB:.1f} GiB",
            Text("yes", style="green") if row["fits"] else Text("no", style="red"),
            "–" if needed is None else str(needed),
        )
    console.print(fit)
    if report.gpu is not None:
        if report.max_batch is not None:
            console.print(f"largest batch on one {report.gpu.name}: {report.max_batch or 'none fits'}")
        if report.max_context is not None:
            console.print(
                f"longest context on one {report.gpu.name}: {report.max_context or 'none fits'} tokens"
            )
