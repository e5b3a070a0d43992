"""`tensorfile recommend` in the terminal: the choice, why, what it weighs, the commands, the options."""

from __future__ import annotations

from typing import Any

from .recommend import GIB, Recommendation


def _gib(n: int | None) -> str:
    if n is None:
        return "–"
    return f"{n / GIB:,.2f} GiB" if n >= GIB / 100 else f"{n:,} B"


def render_recommendation(console: Any, rec: Recommendation) -> None:
    from rich.table import Table
    from rich.text import Text

    from .render import human_count

    size = f" ({human_count(rec.parameters)} parameters)" if rec.parameters else ""
    console.print(Text.assemble(("model    ", "bold"), f"{rec.model}{size}"))
    if rec.current:
        now = rec.current
        safety = (
            Text(" — loading it can run code", style="bold red") if now.get("can_execute_code") else Text("")
        )
        console.print(Text.assemble(("now      ", "bold"), str(now.get("name") or now["format"]), safety))
    console.print(Text.assemble(("target   ", "bold"), rec.target_label))
    console.print(
        Text.assemble(
            ("use      ", "bold"),
            (f"{rec.format} ({rec.extension})", "bold cyan"),
            " · ",
            (rec.quantization, "bold cyan"),
            f" · run with {rec.runtime}",
        )
    )
    console.print(Text.assemble(("on disk  ", "bold"), _gib(rec.disk_bytes)))
    if rec.device != "none":
        if rec.runtime_bytes is None:
            line = f"{rec.device}: not estimated (see the notes)"
        else:
            line = f"{_gib(rec.runtime_bytes)} of {rec.device}"
            line += f" on each of {rec.gpus} GPUs" if rec.gpus > 1 else ""
            line += f" for {rec.context_tokens:,} tokens" if rec.breakdown.get("KV cache") else ""
        console.print(Text.assemble(("needs    ", "bold"), line))
    if rec.fits is not None:
        verdict = Text("yes", style="bold green") if rec.fits else Text("NO — nothing fits", style="bold red")
        memory = f" ({_gib(rec.budget_bytes)} usable of {_gib(rec.memory_bytes)}"
        memory += ", assumed)" if rec.memory_assumed else ")"
        console.print(Text.assemble(("fits     ", "bold"), verdict, memory))

    console.print(Text("why", style="bold"))
    for reason in rec.reasons:
        console.print(Text("  • ") + Text(reason))

    if len(rec.candidates) > 1:
        table = Table(title="options, best quality first", title_justify="left", header_style="bold")
        table.add_column("quantization")
        table.add_column("on disk", justify="right")
        device = rec.device if rec.device != "none" else "run time"
        table.add_column(f"{device} (one GPU)" if rec.gpus > 1 else device, justify="right")
        table.add_column("fits", justify="center")
        for row in rec.candidates:
            fits = row["fits"]
            mark = Text("–", "dim") if fits is None else Text("yes", "green") if fits else Text("no", "red")
            chosen = row["quantization"] == rec.quantization
            name = Text(row["quantization"], style="bold cyan" if chosen else "")
            table.add_row(name, _gib(row["disk_bytes"]), _gib(row["runtime_bytes"]), mark)
        console.print(table)

    console.print(Text("commands", style="bold"))
    for command in rec.commands:
        console.print(Text("  " + command, style="green"), soft_wrap=True)

    console.print(Text("alternatives", style="bold"))
    for alt in rec.alternatives:
        console.print(Text.assemble("  • ", (alt["format"], "bold"), f": {alt['when']}"))
    for note in rec.notes:
        console.print(Text(f"note: {note}", style="dim"))
