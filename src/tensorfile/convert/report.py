"""The terminal view of `convert` (progress bar, summary) and `diff` (a table of what differs)."""

from __future__ import annotations

import time
from typing import Any

from .compare import DiffReport
from .run import ConvertResult

_SHOW_AFTER = 1.0  # seconds: short conversions finish without a bar flashing by


class ConvertProgress:
    """A rich progress bar on stderr (bytes, throughput) that appears once a run passes a second."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: Any = None
        self._task: Any = None
        self._total = 0
        self._done = 0
        self._since = 0.0
        self._name = "converting"

    def __enter__(self) -> ConvertProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def start(self, total: int) -> Any:
        self._total, self._done, self._since = total, 0, time.monotonic()
        return self

    def tensor(self, name: str) -> None:
        """The tensor being written now, shown beside the bar (writers that know it call this)."""
        self._name = name
        if self._bar is not None:
            self._bar.update(self._task, description=_short_name(name))

    def __call__(self, n: int) -> None:
        """Another n bytes done (the writers' progress callback)."""
        self._done += n
        if not self.enabled:
            return
        if self._bar is None:
            if time.monotonic() - self._since < _SHOW_AFTER:
                return
            self._open()
        self._bar.update(self._task, completed=self._done)

    def _open(self) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
            TransferSpeedColumn,
        )

        self._bar = Progress(
            TextColumn("{task.description}", markup=False),
            BarColumn(),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeRemainingColumn(),
            console=Console(stderr=True),
            transient=True,
        )
        self._bar.start()
        self._task = self._bar.add_task(_short_name(self._name), total=self._total, completed=self._done)


def _short_name(name: str, width: int = 32) -> str:
    return name if len(name) <= width else "…" + name[-(width - 1) :]


def _size(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return f"{n:.2f} TB"


def render_convert(console: Any, result: ConvertResult) -> None:
    from rich.markup import escape

    cast = f", cast to {result.dtype}" if result.dtype and result.gguf is None else ""
    rate = result.total_bytes / result.seconds if result.seconds > 0 else 0
    console.print(
        f"[bold]{escape(result.destination)}[/]: {result.tensor_count} tensors, {_size(result.total_bytes)} "
        f"as {result.target}{cast} from {result.source_format} in {result.seconds:.2f} s ({_size(rate)}/s)",
        soft_wrap=True,  # one line, however long the path: the terminal wraps, not us
    )
    for f in result.files:
        console.print(f"  {escape(str(f['path']))}  {_size(f['size_bytes'])}")
    if result.copied_files:
        console.print(f"  copied: {escape(', '.join(result.copied_files))}")
    if result.gguf is not None:
        g = result.gguf
        types = " · ".join(f"{name} {count}" for name, count in g["tensors_by_type"].items())
        console.print(
            f"  {g['arch']} {g['quant']}: {g['bits_per_weight']:.2f} bits per weight; tensors {types}"
        )
        if (memory := g.get("run_memory")) is not None:
            # two lines: a long path must not wrap the sentence mid-way
            console.print(
                f"  llama.cpp on a CPU, {memory['context_tokens']}-token context: "
                f"about {_size(memory['bytes'])} of RAM"
            )
            console.print(f"  [dim]{escape(memory['command'])}[/]", soft_wrap=True)
    for note in result.notes:
        console.print(f"  [yellow]note:[/] {escape(note)}")


_STATUS_STYLE = {
    "identical": "green",
    "close": "cyan",
    "different": "bold red",
    "shape": "bold red",
    "missing": "red",
    "extra": "red",
}


def render_diff(console: Any, report: DiffReport, *, show_all: bool = False) -> None:
    from rich.markup import escape
    from rich.table import Table

    rows = [t for t in report.tensors if show_all or t.status != "identical"]
    if rows:
        table = Table(show_edge=False, pad_edge=False)
        for column in ("tensor", "status", "dtype", "shape", "max abs", "max rel", "outside tol"):
            table.add_column(column, justify="right" if column.startswith(("max", "outside")) else "left")
        for t in rows:
            dtype = t.dtype_a if t.dtype_a == t.dtype_b else f"{t.dtype_a or '-'} → {t.dtype_b or '-'}"
            shape_a = list(t.shape_a) if t.shape_a is not None else "-"
            shape_b = list(t.shape_b) if t.shape_b is not None else "-"
            shape = str(shape_a) if t.shape_a == t.shape_b else f"{shape_a} → {shape_b}"
            table.add_row(
                escape(t.name),
                f"[{_STATUS_STYLE[t.status]}]{t.status}[/]",
                escape(str(dtype)),
                escape(shape),
                "" if t.max_abs is None else f"{t.max_abs:.3g}",
                "" if t.max_rel is None else f"{t.max_rel:.3g}",
                str(t.mismatched) if t.mismatched else "",
            )
        console.print(table)
    s = report.summary()
    verdict = "[green]equal[/]" if report.equal else "[bold red]differ[/]"
    tol = f" (atol {report.atol:g}, rtol {report.rtol:g})" if report.atol or report.rtol else ""
    console.print(
        f"{verdict}{tol}: {len(report.tensors)} names — {s['identical']} identical, {s['close']} within "
        f"tolerance, {s['different']} different, {s['shape']} shape changes, {s['missing']} missing in B, "
        f"{s['extra']} extra in B; {s['dtype_changed']} dtype changes"
    )
