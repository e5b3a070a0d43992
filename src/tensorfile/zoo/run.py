"""A zoo run: list the inputs, skip what the results file already holds, process the rest
(serially or on our local worker pool) and append each record as it arrives."""

from __future__ import annotations

import itertools
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from .items import WorkItem, expand
from .results import Results, check_verb
from .work import error_record, process

POOL_HANDLER = "tensorfile.zoo.work:handle"


@dataclass
class Summary:
    """What the results file holds at the end (this run and the ones it resumed)."""

    verb: str
    out: str
    files: int = 0
    skipped: int = 0  # already in the results file (--resume)
    processed: int = 0
    seconds: float = 0.0
    requests: int = 0
    bytes_read: int = 0
    findings: int = 0
    table: dict[str, dict[str, int]] = field(default_factory=dict)  # format -> verdict -> files

    def add(self, record: dict[str, Any]) -> None:
        self.files += 1
        row = self.table.setdefault(record.get("format") or "-", {})
        row[record["verdict"]] = row.get(record["verdict"], 0) + 1
        self.findings += len(record.get("findings") or ())

    def verdicts(self) -> dict[str, int]:
        tally: dict[str, int] = {}
        for row in self.table.values():
            for verdict, n in row.items():
                tally[verdict] = tally.get(verdict, 0) + n
        return tally

    @property
    def exit_code(self) -> int:
        """2 if any file could not be read; else 1 if any is unsafe (scan) or unknown (identify)."""
        verdicts = self.verdicts()
        if verdicts.get("error"):
            return 2
        return 1 if verdicts.get("unsafe") or verdicts.get("unknown") else 0

    def to_dict(self) -> dict[str, Any]:
        return {
            "verb": self.verb,
            "out": self.out,
            "files": self.files,
            "skipped": self.skipped,
            "processed": self.processed,
            "seconds": round(self.seconds, 3),
            "requests": self.requests,
            "bytes_read": self.bytes_read,
            "findings": self.findings,
            "verdicts": self.verdicts(),
            "by_format": self.table,
            "exit_code": self.exit_code,
        }


def run_zoo(
    verb: str,
    inputs: list[str],
    out: str,
    *,
    resume: bool = False,
    jobs: int | None = None,
    options: dict[str, Any] | None = None,
    progress: bool | None = None,
    ray: str | None = None,
) -> Summary:
    """`ray`: None runs serially or on our local pool (`jobs`); "local" starts a one-node Ray on
    this machine (`jobs` CPUs, default its cores); any other text is a Ray cluster's address.
    A results file another verb wrote is refused (UsageError) before anything is listed."""
    check_verb(out, verb)  # here, not in the CLI: the library's callers resume files too
    if ray is not None:
        from .ray_runner import check

        check(ray)  # no Ray or no cluster there: a one-line error (exit 2) before anything is listed
    options = options or {}
    results = Results(out, resume)
    summary = Summary(verb, out)
    try:
        for record in results.previous:
            summary.add(record)
        items = [i for i in expand(inputs) if i.key() not in results.done]
        summary.skipped = len(results.done)
        show = _Progress(len(items)) if (progress if progress is not None else sys.stderr.isatty()) else None
        start = time.monotonic()
        unlisted = [process(verb, i, options) for i in items if i.error is not None]  # no reading
        readable = [i for i in items if i.error is None]
        for record in itertools.chain(unlisted, _records(verb, readable, options, jobs, ray)):
            results.append(record)
            summary.add(record)
            summary.processed += 1
            summary.requests += record["io"]["requests"]
            summary.bytes_read += record["io"]["bytes"]
            if show is not None:
                show.update(summary)
        summary.seconds = time.monotonic() - start
        if show is not None:
            show.done()
    finally:
        results.close()
    return summary


def _records(
    verb: str, items: list[WorkItem], options: dict[str, Any], jobs: int | None, ray: str | None = None
) -> Iterator[dict[str, Any]]:
    if ray is not None:
        from .ray_runner import run_ray

        yield from run_ray(verb, items, options, ray, jobs)
        return
    workers = jobs if jobs is not None else min(os.cpu_count() or 1, 8)
    if workers <= 1 or len(items) < 4:
        for item in items:
            yield process(verb, item, options)
        return
    from ..scan.pool import TRIES, run_pool

    def lost(request: dict[str, Any], how: str) -> dict[str, Any]:
        return error_record(verb, request["item"], f"the process reading it stopped ({how}), {TRIES} times")

    requests = ({"verb": verb, "item": i.to_wire(), "options": options} for i in items)
    for _index, record in run_pool(requests, workers, POOL_HANDLER, lost):
        record.setdefault("io", {})
        record["io"].setdefault("requests", 0)
        record["io"].setdefault("bytes", 0)
        yield record


class _Progress:
    """One line on stderr, redrawn at most 4 times a second: files, files/s, bytes, findings."""

    def __init__(self, total: int) -> None:
        self.total = total
        self.start = time.monotonic()
        self.last = 0.0

    def update(self, summary: Summary, force: bool = False) -> None:
        now = time.monotonic()
        if not force and now - self.last < 0.25:
            return
        self.last = now
        rate = summary.processed / max(now - self.start, 1e-9)
        sys.stderr.write(
            f"\r{summary.processed:,}/{self.total:,} files, {rate:,.1f} files/s, "
            f"{summary.bytes_read / 1e6:,.1f} MB read, {summary.findings:,} findings "
        )
        sys.stderr.flush()

    def done(self) -> None:
        sys.stderr.write("\n")
