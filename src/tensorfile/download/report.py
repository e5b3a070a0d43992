"""The terminal view of `download`: a progress display on stderr (total bytes, speed, ETA, one line
per file in flight) and the table of files chosen and skipped with the summary."""

from __future__ import annotations

import threading
from typing import Any

from .run import DownloadReport

_STATUS_STYLE = {
    "downloaded": "green",
    "present": "green",
    "planned": "cyan",
    "skipped": "dim",
    "quarantined": "bold red",
    "failed": "bold magenta",
}


class DownloadProgress:
    """rich progress on stderr: one bar for the total and one per file while it downloads."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._bar: Any = None
        self._total_task: Any = None
        self._tasks: dict[str, Any] = {}
        self._lock = threading.Lock()
        self._sizes: dict[str, int] = {}

    def __enter__(self) -> DownloadProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self._bar is not None:
            self._bar.stop()

    def sizes(self, sizes: dict[str, int]) -> None:
        self._sizes = sizes

    def start(self, total: int, files: int) -> None:
        if not self.enabled or not files:
            return
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
        self._total_task = self._bar.add_task(f"{files} file(s)", total=total)

    def advance(self, path: str, n: int) -> None:
        if self._bar is None:
            return
        with self._lock:
            task = self._tasks.get(path)
            if task is None:
                task = self._bar.add_task(_short(path), total=self._sizes.get(path))
                self._tasks[path] = task
            self._bar.advance(task, n)
            self._bar.advance(self._total_task, n)
            done = self._bar.tasks[task]
            if done.total is not None and done.completed >= done.total:
                self._bar.remove_task(task)
                self._tasks.pop(path, None)


def _short(path: str, width: int = 40) -> str:
    return path if len(path) <= width else "…" + path[-(width - 1) :]


def size_text(n: float) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1000 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.2f} {unit}"
        n /= 1000
    return f"{n:.2f} TB"


def render_download(console: Any, report: DownloadReport, *, quiet: bool = False) -> None:
    from rich.markup import escape
    from rich.table import Table

    totals = report.totals()
    if not quiet:
        table = Table(show_edge=False, pad_edge=False, header_style="bold")
        for column in ("file", "size", "status", "why"):
            table.add_column(column, justify="right" if column == "size" else "left")
        for o in report.outcomes:
            style = _STATUS_STYLE.get(o.status, "")
            why = o.error or o.choice.reason
            if o.scan and o.scan["verdict"] != "clean":
                why = f"scan: {o.scan['verdict']} ({o.scan.get('worst_severity') or o.scan.get('error')})"
            table.add_row(
                escape(o.choice.file.path),
                size_text(o.choice.file.size),
                f"[{style}]{o.status}[/]" if style else o.status,
                escape(why),
            )
        console.print(table)
    head = f"{report.ref.scheme}://{report.ref.repo_id}@{report.ref.revision_or_default}"
    if report.commit:
        head += f" ({report.commit[:12]})"
    console.print(f"[bold]{escape(head)}[/] → {escape(report.destination)}")
    verb = "would download" if report.dry_run else "files"
    line = f"{verb}: {totals['files']} ({size_text(totals['bytes'])})"
    if not report.dry_run:
        line += (
            f"; fetched {size_text(totals['fetched_bytes'])}, {totals['present_files']} already present, "
            f"{totals['verified_files']} verified"
        )
    if totals["skipped_files"]:
        line += f"; skipped {totals['skipped_files']} ({size_text(totals['skipped_bytes'])} saved)"
    console.print(line)
    if not report.dry_run:
        console.print(f"scan: {report.scan_verdict()} (fail level {report.fail_on})")
    model = report.model
    if model:
        params = model.get("parameter_count", 0)
        text = f"model: {model.get('format')}, {params:,} parameters, {model.get('tensor_types')}"
        if model.get("memory_to_run_bytes"):
            text += f"; about {model['memory_to_run_bytes'] / 2**30:.1f} GiB of GPU memory to run as stored"
        console.print(escape(text))
    for note in report.notes:
        console.print(f"[yellow]note:[/] {escape(note)}")
    if report.quarantine:
        console.print(f"[bold red]quarantined in[/] {escape(report.quarantine)}")
