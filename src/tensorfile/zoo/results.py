"""The results file: one JSON line per file, appended as each file finishes.

Each line goes out in one `write` to a file opened O_APPEND, so lines never interleave; a run
killed mid-line leaves a torn last line, which the next `--resume` cuts off before it appends.
Reopened with `--resume`, the file says which (path, size, ETag) are done. `--out x.parquet`
keeps the same journal beside it (`x.parquet.journal.jsonl`) and writes the Parquet file
atomically when the run ends (pyarrow, the `parquet` extra).
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from ..errors import InputError, UsageError

Key = tuple[str, int, str | None]


def key_of(record: dict[str, Any]) -> Key:
    return (record["path"], int(record["size"]), record.get("etag"))


class Results:
    """Appends records to `out` (a .jsonl file, or the journal of a .parquet one)."""

    def __init__(self, out: str | os.PathLike[str], resume: bool) -> None:
        self.out = Path(out)
        self.parquet = self.out.suffix.lower() == ".parquet"
        self.journal = self.out.with_name(self.out.name + ".journal.jsonl") if self.parquet else self.out
        self.previous: list[dict[str, Any]] = []  # records of the runs before this one
        exists = self.out.exists() or (self.parquet and self.journal.exists())
        if exists and not resume:
            raise UsageError(f"{self.out} exists: pass --resume to continue it, or remove it")
        if self.parquet:
            _parquet_module()  # fail before any work when pyarrow is missing
            if self.out.exists():
                self.previous.extend(read_parquet(self.out))
        if self.journal.exists():
            self.previous.extend(_repaired(self.journal))
        self._created = not self.journal.exists()
        self._appended = 0
        try:
            self._fd = os.open(self.journal, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        except OSError as exc:
            raise InputError(f"cannot write results ({exc.strerror})", self.journal) from None
        self.done = {key_of(r) for r in self.previous}

    def append(self, record: dict[str, Any]) -> None:
        text = json.dumps(record, ensure_ascii=False, default=str) + "\n"
        line = text.encode("utf-8", "backslashreplace")
        view = memoryview(line)
        self._appended += 1
        while view:
            written = os.write(self._fd, view)
            view = view[written:]

    def close(self) -> None:
        if self._fd < 0:
            return
        os.fsync(self._fd)
        os.close(self._fd)
        self._fd = -1
        if self._created and not self._appended and not self.previous:
            self.journal.unlink()  # nothing ran (the inputs could not be listed): leave nothing
            return
        if self.parquet:
            records = [*self.previous, *_read_lines(self.journal)]
            write_parquet(self.out, records)
            self.journal.unlink()


def check_verb(out: str | os.PathLike[str], verb: str) -> None:
    """A results file that another verb wrote is not resumed: its records would mix with these
    (UsageError naming the verb it holds). Only its first record is read."""
    out = Path(out)
    record = _first_record(out)
    if record is not None and record.get("verb") != verb:
        raise UsageError(
            f"{out} holds results of {record.get('verb')!r}, not {verb!r}: resume it with that "
            "command or choose another --out"
        )


def _first_record(out: Path) -> dict[str, Any] | None:
    parquet = out.suffix.lower() == ".parquet"
    journal = out.with_name(out.name + ".journal.jsonl") if parquet else out
    if parquet and out.exists():
        pa = _parquet_module()
        try:
            first = pa.parquet.ParquetFile(out).read_row_group(0, columns=["record"]).slice(0, 1)
            return json.loads(first.column("record")[0].as_py())
        except Exception:  # not a results file: Results says so when it reads it
            return None
    try:
        with journal.open("rb") as f:
            line = f.readline()
        record = json.loads(line)
    except (OSError, ValueError):
        return None
    return record if isinstance(record, dict) else None


def _repaired(path: Path) -> list[dict[str, Any]]:
    """The records of a journal; a torn last line (a run killed mid-write) is cut off first."""
    with path.open("rb") as f:
        data = f.read()
    end = data.rfind(b"\n") + 1
    if end < len(data):
        with path.open("r+b") as f:
            f.truncate(end)
    return list(_parse(data[:end], path))


def _read_lines(path: Path) -> list[dict[str, Any]]:
    return list(_parse(path.read_bytes(), path))


def _parse(data: bytes, path: Path) -> Iterator[dict[str, Any]]:
    for number, line in enumerate(data.splitlines(), 1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            key_of(record)
        except (ValueError, KeyError, TypeError):
            raise InputError(f"line {number} is not a result record: not a results file?", path) from None
        yield record


_COLUMNS = ("path", "size", "etag", "kind", "verb", "verdict", "format", "error")


def _parquet_module() -> Any:
    try:
        import pyarrow
        import pyarrow.parquet
    except ImportError:
        raise UsageError("--out *.parquet needs pyarrow: pip install 'tensorfile[parquet]'") from None
    return pyarrow


def write_parquet(out: Path, records: list[dict[str, Any]]) -> None:
    """Flat columns for filtering (path … error, requests, bytes) and the whole record as JSON."""
    pa = _parquet_module()
    from ..atomic import atomic_output

    columns: dict[str, list[Any]] = {name: [r.get(name) for r in records] for name in _COLUMNS}
    columns["requests"] = [r.get("io", {}).get("requests") for r in records]
    columns["bytes"] = [r.get("io", {}).get("bytes") for r in records]
    columns["record"] = [json.dumps(r, ensure_ascii=False, default=str) for r in records]
    schema = pa.schema(
        [(n, pa.int64() if n in ("size", "requests", "bytes") else pa.string()) for n in columns]
    )
    table = pa.table(columns, schema=schema)
    with atomic_output(out) as f:
        pa.parquet.write_table(table, f)


def read_parquet(path: Path) -> list[dict[str, Any]]:
    pa = _parquet_module()
    try:
        column = pa.parquet.read_table(path, columns=["record"]).column("record").to_pylist()
    except Exception as exc:
        raise InputError(f"not a results file ({exc})", path) from None
    return [json.loads(text) for text in column]
