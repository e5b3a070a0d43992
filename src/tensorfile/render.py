"""Rich rendering for the CLI: tables only, no computation."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Console
from rich.markup import escape
from rich.table import Table
from rich.text import Text

from .model import Identification


def _safety(result: Identification) -> Text:
    if result.can_execute_code is None:
        return Text("-", style="dim")
    if result.can_execute_code:
        return Text("can run code", style="bold red")
    return Text("no code", style="green")


def _notes(result: Identification, verbose: bool) -> Text:
    parts: list[str] = []
    if not result.known and result.reason:
        parts.append(result.reason)
    kind = (
        result.details.get("checkpoint_kind") or result.details.get("variant") or result.details.get("kind")
    )
    if kind:
        parts.append(str(kind))
    if result.details.get("producer"):
        parts.append(str(result.details["producer"]))
    if result.details.get("compression"):
        parts.append(f"{result.details['compression']}-compressed")
    if verbose:
        parts.append(f"family: {result.family}" if result.family else "")
        parts.extend(f"· {e}" for e in result.evidence)
    return Text("\n".join(p for p in parts if p))


def identify_table(console: Console, results: Sequence[Identification], verbose: bool = False) -> None:
    """One row per input; warnings follow the table, where long sentences stay readable."""
    table = Table(show_lines=verbose, header_style="bold")
    table.add_column("path", overflow="fold", ratio=3)
    table.add_column("format", no_wrap=True)
    table.add_column("conf", justify="right", no_wrap=True)
    table.add_column("loading", no_wrap=True)
    table.add_column("notes", overflow="fold", ratio=2)
    for r in results:
        fmt = Text(r.format, style="bold" if r.known else "dim")
        if r.warnings:
            fmt.append(" ⚠", style="yellow")
        table.add_row(r.path, fmt, f"{r.confidence:.2f}" if r.known else "-", _safety(r), _notes(r, verbose))
    console.print(table)
    for r in results:
        for w in r.warnings:
            console.print(Text("⚠ ", style="yellow") + Text(f"{r.path}: ", style="bold") + Text(w))


def formats_table(console: Console, rows: Sequence[Any]) -> None:
    table = Table(show_lines=True, header_style="bold")
    for col in ("format", "extensions", "family", "safe", "strengths", "weaknesses", "typical use", "tools"):
        table.add_column(col, overflow="fold")
    for f in rows:
        safe = Text("yes", style="green") if f.safe_to_load else Text("NO", style="bold red")
        tools = "write: " + ", ".join(f.produced_by[:3]) + "\nread: " + ", ".join(f.consumed_by[:3])
        table.add_row(
            f"{f.name}\n[dim]{f.id}[/dim]",
            " ".join(f.extensions),
            f.family,
            safe,
            f.strengths,
            f.weaknesses,
            f.typical_use,
            tools,
        )
    console.print(table)


def dtypes_table(console: Console, rows: Sequence[Any]) -> None:
    table = Table(header_style="bold")
    for col in ("type", "kind", "bits/weight", "block", "bytes/block", "meaning"):
        table.add_column(col, overflow="fold")
    for d in rows:
        table.add_row(
            d.name, d.kind, f"{d.bits_per_weight:g}", str(d.block_size), str(d.type_size), d.description
        )
    console.print(table)


def explain_table(console: Console, line: str, parts: Sequence[dict[str, Any]]) -> None:
    table = Table(title=f"tensor types {line}", header_style="bold")
    for col in ("type", "meaning", "role"):
        table.add_column(col, overflow="fold")
    for p in parts:
        table.add_row(str(p.get("name")), str(p.get("description", "")), str(p.get("role", "")))
    console.print(table)


def human_count(n: int) -> str:
    for unit, size in (("T", 10**12), ("B", 10**9), ("M", 10**6), ("K", 10**3)):
        if n >= size:
            return f"{n / size:.2f}{unit}"
    return str(n)


def human_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{value:.0f} {unit}" if unit == "B" else f"{value:.2f} {unit}"
        value /= 1024
    return f"{n} B"


def _short(value: Any, width: int = 90) -> str:
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= width else text[: width - 1] + "…"


def _checkpoint_line(checkpoint: dict[str, Any]) -> str:
    """kind; model part; optimizer part with its slots; counters (the shared Checkpoint shape)."""
    head = f"{checkpoint['kind']} ({checkpoint['framework']})"
    if checkpoint.get("class"):
        head += f" {checkpoint['class']}"
    model = checkpoint["model"]
    parts = [head, f"model {model['tensor_count']} tensors, {human_count(model['parameter_count'])} params"]
    opt = checkpoint.get("optimizer")
    if opt:
        text = f"optimizer{' ' + opt['name'] if opt.get('name') else ''} {opt['tensor_count']} tensors, "
        text += f"{human_count(opt['parameter_count'])} params"
        if opt.get("slots"):
            text += f" ({', '.join(opt['slots'][:8])})"
        hyper = opt.get("hyperparameters") or {}
        rate = hyper.get("lr", hyper.get("learning_rate"))
        if rate is not None:
            text += f" lr={rate:g}" if isinstance(rate, (int, float)) else f" lr={rate}"
        parts.append(text)
    counters = checkpoint.get("counters") or {}
    if counters:
        parts.append(", ".join(f"{k}={v}" for k, v in list(counters.items())[:8]))
    return escape("; ".join(parts))  # names from the file must not read as rich markup


def _file_label(model: str, file: str | None) -> str:
    """A tensor's file as the table shows it: relative to the inspected folder, or the file's name."""
    if not file:
        return "-"
    prefix = model.rstrip("/") + "/"
    if file == model:
        file = file.replace("\\", "/").rsplit("/", 1)[-1]
    elif file.startswith(prefix):
        file = file[len(prefix) :]
    return escape(file)


def inspect_report(console: Console, info: Any, tensors: Sequence[Any], limit: int | None) -> None:
    """Summary, structure, quantization, checkpoint, metadata, then the tensor table."""
    from .inspection import collapse_layer_names, group_layers

    summary = Table.grid(padding=(0, 2))
    summary.add_column(style="bold")
    summary.add_column()
    size = sum(int(f.get("size_bytes", 0)) for f in info.files)
    summary.add_row("path", info.path)
    summary.add_row("format", info.format)
    summary.add_row("files", f"{len(info.files)} ({human_bytes(size)})")
    summary.add_row("tensors", f"{info.tensor_count:,}")
    summary.add_row("parameters", f"{info.parameter_count:,} ({human_count(info.parameter_count)})")
    summary.add_row("tensor types", info.tensor_types or "-")
    by_dtype = ", ".join(f"{k} {human_count(v)}" for k, v in info.parameters_by_dtype.items())
    summary.add_row("by dtype", by_dtype or "-")
    roles = info.parameters_by_role
    if set(roles) - {"weight"}:
        summary.add_row("by role", ", ".join(f"{k} {human_count(v)}" for k, v in roles.items()))
    summary.add_row("tensor bytes", human_bytes(info.total_bytes))
    if info.architecture:
        summary.add_row(
            "architecture", ", ".join(f"{k}={v}" for k, v in info.architecture.items() if k != "source")
        )
    groups = group_layers([t.name for t in info.tensors])
    if groups:
        summary.add_row("blocks", ", ".join(f"{name} ×{n}" for name, n in groups[:6]))
    if info.quantization:
        q = info.quantization
        fields = {k: v for k, v in q.items() if k != "types"}
        if isinstance(fields.get("quantized_layer_names"), list):
            fields["quantized_layer_names"] = collapse_layer_names(fields["quantized_layer_names"])
        summary.add_row("quantization", escape(", ".join(f"{k}={v}" for k, v in fields.items())))
    if info.checkpoint:
        summary.add_row("checkpoint", _checkpoint_line(info.checkpoint))
    if info.pickle:
        imports = info.pickle.get("imports", [])
        summary.add_row("pickle imports", _short(", ".join(imports)) if imports else "none")
    for key, value in list(info.metadata.items())[:24]:
        summary.add_row(f"· {key}", _short(value))
    if len(info.metadata) > 24:
        summary.add_row("·", f"… {len(info.metadata) - 24} more metadata keys (--json shows all)")
    console.print(summary)
    for name, part in info.components.items():
        console.print(
            f"  component [bold]{name}[/bold]: {part.format}, {part.tensor_count} tensors, "
            f"{human_count(part.parameter_count)} parameters, {part.tensor_types}"
        )
    if tensors:
        shown = tensors if limit is None or limit == 0 else tensors[:limit]
        table = Table(header_style="bold", show_edge=False)
        many_files = len({t.file for t in tensors}) > 1  # then an offset alone does not say where
        columns = [("name", "left"), ("dtype", "left"), ("shape", "left"), ("params", "right")]
        columns += [("bytes", "right"), *([("file", "left")] if many_files else []), ("offset", "right")]
        for col, justify in columns:
            table.add_column(col, justify=justify, overflow="fold")  # type: ignore[arg-type]
        for t in shown:
            offset = "-" if t.offset is None else f"{t.offset:,}"
            where = [_file_label(str(info.path), t.file)] if many_files else []
            table.add_row(
                t.name,
                t.dtype,
                "×".join(map(str, t.shape)) or "scalar",
                f"{t.numel:,}",
                human_bytes(t.nbytes),
                *where,
                offset,
            )
        console.print(table)
        if len(shown) < len(tensors):
            console.print(
                f"[dim]… {len(tensors) - len(shown)} more tensors (--all, --limit N, --filter GLOB)[/dim]"
            )
    for w in info.warnings:
        console.print(Text("⚠ ", style="yellow") + Text(w))
