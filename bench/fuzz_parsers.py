"""Fuzz every parser: identify, inspect and scan over damaged real files of every format (issue 16).

Seeds are files of each format the project reads, written by that format's own library: the test
makers in tests/conftest.py (torch zip and legacy, TorchScript, safetensors, GGUF, ONNX, numpy,
pickle, joblib and its compressed forms, HF quantized and Diffusers folders), the committed
tests/fixtures/heavy (Caffe, TF SavedModel and frozen graph, Keras 2/3 h5 and .keras, TFLite,
Core ML, OpenVINO, PMML, Flax msgpack, ONNX external data) and tests/fixtures/hf, examples/models,
archives of them (zip, tar, tar.gz/bz2/xz, 7z, gz, bz2, xz, nested), and the real files of
../shared/corpus/formats (read as bytes; skipped when absent). Cases, in order:

- baseline: each seed as it is (must read cleanly; also warms the workers up);
- synthetic: hand-built hostile files (bench/fuzz_mutations.synthetic_cases: deep nesting, 1 TB
  declared lengths in 100-byte files, loops, compression bombs, XML entity expansion);
- sweep: every seed cut at each structural boundary (and one byte before it);
- random: a seeded stream of one mutation each (fuzz_mutations.KINDS) until the time is up.

Each case runs in a worker process: identify, inspect and scan_file, each rendered as the CLI
renders it (JSON and table), and on an HDF5 file the HDF5 reader on its own (every object,
attribute and dataset; hdf5_seeds adds every .h5 of tests/fixtures and ../shared/corpus as
family "hdf5"), each under its own alarm (TIME_LIMIT) with its memory measured
(tracemalloc peak and the process's peak RSS, reset before each call). The parent kills a worker
that stops answering (a hang in C code the alarm cannot interrupt). Every CLI_EVERY-th case also
goes through `python -m tensorfile` in a fresh process. Outcomes:

    ok, error          a report, or a TensorfileError (a clean refusal): both pass
    traceback          any other exception; scan's "internal error"; a CLI traceback, or an error
                       that is not one line with exit code 2
    swallowed          identify's fallback turning a detector's ValueError/IndexError/… into
                       "corrupt X data": clean for the user, but a bug in the detector
    hang               over TIME_LIMIT seconds (alarm), or a worker that stopped answering
    memory             over MEMORY_LIMIT + the file's size allocated (Python or RSS)

    .venv/bin/python bench/fuzz_parsers.py --minutes 25 --jobs 2      # the long run
    .venv/bin/python bench/fuzz_parsers.py --cases 300 --family gguf   # one format, quickly
    .venv/bin/python bench/fuzz_parsers.py --replay r:1234             # one case, with its traceback
"""

from __future__ import annotations

import argparse
import io
import itertools
import json
import random
import re
import resource
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import tracemalloc
import zipfile
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from bench.fuzz_mutations import (  # noqa: E402
    KINDS,
    MANY,
    Layout,
    compressed_inner,
    hdf5_start,
    layout,
    mutate,
    synthetic_cases,
    tar_bytes,
    truncations,
    zip_bytes,
)

TIME_LIMIT = 5.0  # seconds per entry point per case (untraced), plus SECONDS_PER_MB of its size
SECONDS_PER_MB = 1.0
TRACED_SLOWDOWN = 4  # tracemalloc makes allocation-heavy parsers 3-7x slower (a 2.5 MB Core ML
# tree ensemble of 76,000 nodes: 1.3 s bare, 5 s traced); a traced timeout is run again untraced
MEMORY_LIMIT = 64 << 20  # bytes per entry point per case, on top of the case's size
ENTRIES = ("identify", "inspect", "scan")
HEAVY = ROOT / "tests" / "fixtures" / "heavy"
HF = ROOT / "tests" / "fixtures" / "hf"
EXAMPLES = ROOT / "examples" / "models"
CORPUS = ROOT.parent / "shared" / "corpus"
MAX_SEED_FILE = 4 << 20  # bigger files are carried along unmutated, never chosen as targets

# --- seeds -------------------------------------------------------------------------------------


@dataclass
class Seed:
    """A file or folder to damage: `files` are copied for each case, one of `targets` mutated."""

    family: str
    name: str
    files: dict[str, Path | bytes]  # relative path -> where its bytes come from
    entry: str  # the relative path identify/inspect/scan are given
    targets: list[str]
    _layouts: dict[str, Layout] = field(default_factory=dict, repr=False)

    def data(self, target: str) -> bytes:
        src = self.files[target]
        return src if isinstance(src, bytes) else src.read_bytes()

    def layout(self, target: str) -> Layout:
        if target not in self._layouts:
            self._layouts[target] = layout(self.data(target))
        return self._layouts[target]

    @property
    def size(self) -> int:
        return sum(len(s) if isinstance(s, bytes) else s.stat().st_size for s in self.files.values())


def path_seed(family: str, path: Path, name: str | None = None) -> Seed:
    """A seed of one file, or of a folder with every small file in it as a target."""
    if path.is_dir():
        files: dict[str, Path | bytes] = {
            f"{path.name}/{p.relative_to(path)}": p for p in sorted(path.rglob("*")) if p.is_file()
        }
        entry = path.name
    else:
        files, entry = {path.name: path}, path.name
    targets = [k for k, v in files.items() if isinstance(v, Path) and 0 < v.stat().st_size <= MAX_SEED_FILE]
    return Seed(family, name or path.name, files, entry, targets or list(files)[:1])


def sibling_seed(family: str, path: Path, name: str) -> Seed:
    """A file run on its own but with the files beside it (ONNX external data, an HF repo's .bin)."""
    seed = path_seed(family, path.parent, name)
    seed.entry = f"{path.parent.name}/{path.name}"
    return seed


def fixture_seeds() -> list[Seed]:
    """The committed heavy and HF fixtures (families from their MANIFEST) and examples/models."""
    seeds = []
    for folder in (HEAVY, HF):
        manifest = json.loads((folder / "MANIFEST.json").read_text())
        for item in manifest["fixtures"]:
            seeds.append(path_seed(item["format"], folder / item["path"]))
    for path in sorted(EXAMPLES.iterdir()):
        seeds.append(path_seed("example-" + path.suffix.lstrip("."), path, f"examples/{path.name}"))
    return seeds


def maker_seeds(folder: Path, names: Iterable[str] | None = None) -> list[Seed]:
    """Files written by each format's own library: the makers of tests/conftest.py."""
    from tests.conftest import _MAKERS

    seeds = []
    for name in names or sorted(_MAKERS):
        where = folder / name
        where.mkdir(parents=True, exist_ok=True)
        path = _MAKERS[name](where)
        seeds.append(seed_from_made(name, path))
    return seeds


def seed_from_made(name: str, path: Path) -> Seed:
    """A seed from a maker's output: beside its sibling files when the maker wrote several."""
    alone = path.is_dir() or len(list(path.parent.iterdir())) == 1
    family = name.split("_")[0] if name.startswith(("joblib", "pickle")) else name
    return path_seed(family, path, name) if alone else sibling_seed(family, path, name)


def corpus_seeds(security: bool = False) -> list[Seed]:
    """Real files of ../shared/corpus/formats (and, with `security`, the scanners' samples), by bytes."""
    seeds = []
    formats = CORPUS / "formats" / "manifest.json"
    if formats.exists():
        for item in json.loads(formats.read_text()):
            seeds.append(path_seed("corpus-" + item["format"], formats.parent / item["path"]))
    samples = CORPUS / "security" / "manifest.json"
    if security and samples.exists():
        for item in json.loads(samples.read_text()):
            path = samples.parent / item["path"]
            if path.is_file():
                seeds.append(path_seed(f"security-{item['label']}", path, item["path"]))
    return seeds


def hdf5_seeds() -> list[Seed]:
    """Every HDF5 file of tests/fixtures and ../shared/corpus (formats and the scanners' samples),
    as family "hdf5": the pure-Python reader (tensorfile.hdf5) gets a family of its own in the
    random stream, beside the keras-h5 seeds (corpus files are skipped when absent)."""
    found: dict[bytes, Path] = {}
    for folder in (ROOT / "tests" / "fixtures", CORPUS):
        if folder.is_dir():
            for path in sorted(folder.rglob("*")):
                if (
                    path.suffix in (".h5", ".hdf5")
                    and path.is_file()
                    and path.stat().st_size <= MAX_SEED_FILE
                ):
                    found.setdefault(path.read_bytes(), path)  # the same bytes once
    return [path_seed("hdf5", path, f"hdf5/{path.name}") for path in found.values()]


def archive_seeds(seeds: list[Seed], folder: Path) -> list[Seed]:
    """The files of a few seeds packed the ways models travel: zip, tar (+gz/bz2/xz), 7z, gz, nested."""
    by_name = {s.name: s for s in seeds}
    wanted = ("pytorch_state_dict", "pickle", "npy", "safetensors", "joblib")
    members = [(f"model/{n}{Path(s.entry).suffix}", s.data(s.entry)) for n in wanted if (s := by_name.get(n))]
    if not members:
        return []
    folder.mkdir(parents=True, exist_ok=True)
    built: dict[str, bytes] = {
        "bundle.zip": zip_bytes(members, zipfile.ZIP_DEFLATED),
        "stored.zip": zip_bytes(members, zipfile.ZIP_STORED),
        "bundle.tar": tar_bytes(members, "w"),
        "bundle.tar.gz": tar_bytes(members, "w:gz"),
        "bundle.tar.bz2": tar_bytes(members, "w:bz2"),
        "bundle.tar.xz": tar_bytes(members, "w:xz"),
        "model.pkl.gz": _compress("gzip", members[0][1]),
        "model.pkl.bz2": _compress("bz2", members[0][1]),
        "model.pkl.xz": _compress("lzma", members[0][1]),
    }
    built["nested.tar.gz"] = tar_bytes([("inner/stored.zip", built["stored.zip"])], "w:gz")
    built["nested.zip"] = zip_bytes([("inner/bundle.tar", built["bundle.tar"])], zipfile.ZIP_STORED)
    try:
        import py7zr

        out = io.BytesIO()
        with py7zr.SevenZipFile(out, "w") as sz:
            for name, data in members:
                sz.writestr(data, name)
        built["bundle.7z"] = out.getvalue()
    except ImportError:
        pass
    return [Seed("archive-" + _archive_family(n), n, {n: d}, n, [n]) for n, d in built.items()]


def _archive_family(name: str) -> str:
    return "nested" if name.startswith("nested") else name.split(".", 1)[1]


def _compress(kind: str, data: bytes) -> bytes:
    import bz2
    import gzip
    import lzma

    return {"gzip": gzip, "bz2": bz2, "lzma": lzma}[kind].compress(data)  # type: ignore[attr-defined]


def all_seeds(folder: Path, security: bool = False) -> list[Seed]:
    made = maker_seeds(folder / "made")
    archives = archive_seeds(made, folder / "archives")
    return [*fixture_seeds(), *made, *archives, *hdf5_seeds(), *corpus_seeds(security)]


# --- cases -------------------------------------------------------------------------------------


@dataclass
class Case:
    id: str  # b:SEED / s:NAME / t:SEED:TARGET:CUT / r:INDEX — enough to make it again
    family: str
    kind: str
    files: dict[str, Path | bytes]
    entry: str

    @property
    def size(self) -> int:
        return sum(len(s) if isinstance(s, bytes) else s.stat().st_size for s in self.files.values())

    def write(self, folder: Path) -> Path:
        """The case's files under `folder` (emptied first); the path to run the entry points on."""
        if folder.exists():
            shutil.rmtree(folder)
        for rel, src in self.files.items():
            dst = folder / rel
            dst.parent.mkdir(parents=True, exist_ok=True)
            if isinstance(src, bytes):
                dst.write_bytes(src)
            else:
                shutil.copyfile(src, dst)
        return folder / self.entry


def _with(seed: Seed, target: str, data: bytes) -> dict[str, Path | bytes]:
    return {**seed.files, target: data}


def baseline_cases(seeds: list[Seed]) -> Iterator[Case]:
    for seed in seeds:
        yield Case(f"b:{seed.name}", seed.family, "baseline", seed.files, seed.entry)


def synthetic(bomb_bytes: int, many: int = MANY) -> Iterator[Case]:
    for name, files, entry in synthetic_cases(bomb_bytes, many):
        yield Case(f"s:{name}", "synthetic", "synthetic", dict(files), entry)


def sweep_cases(seeds: list[Seed], most: int) -> Iterator[Case]:
    """Each seed cut at its targets' structural boundaries: `most` cuts per seed, shared among
    a folder's files (at least 4 each)."""
    for seed in seeds:
        per_target = max(4, most // len(seed.targets))
        for target in seed.targets:
            data = seed.data(target)
            for cut in truncations(seed.layout(target), len(data), per_target):
                files = _with(seed, target, data[:cut])
                yield Case(f"t:{seed.name}:{target}:{cut}", seed.family, "truncate-sweep", files, seed.entry)


def random_case(seeds: list[Seed], master: int, index: int) -> Case:
    """Case `index` of the random stream: a family, a seed of it, a target and one mutation."""
    rng = random.Random(f"{master}:{index}")
    families = sorted({s.family for s in seeds})
    family = rng.choice(families)
    seed = rng.choice([s for s in seeds if s.family == family])
    target = rng.choice(seed.targets)
    data = seed.data(target)
    inner = compressed_inner(data) if rng.random() < 0.5 else None
    kind = rng.choice(KINDS)
    if inner is not None:  # damage what a compressed stream holds, then compress it again
        content, recompress = inner
        data = recompress(mutate(content, layout(content), rng, kind))
        kind = f"inner-{kind}"
    else:
        data = mutate(data, seed.layout(target), rng, kind)
    return Case(f"r:{index}", family, kind, _with(seed, target, data), seed.entry)


def random_cases(seeds: list[Seed], master: int, start: int = 0) -> Iterator[Case]:
    for index in itertools.count(start):
        yield random_case(seeds, master, index)


def find_case(case_id: str, seeds: list[Seed], master: int, bomb_bytes: int) -> Case:
    """Make the case `case_id` again (see Case.id)."""
    kind, _, rest = case_id.partition(":")
    if kind == "r":
        return random_case(seeds, master, int(rest))
    pool: Iterable[Case] = {"b": baseline_cases(seeds), "s": synthetic(bomb_bytes)}.get(kind) or sweep_cases(
        seeds, 1 << 30
    )
    for case in pool:
        if case.id == case_id:
            return case
    raise SystemExit(f"no case {case_id}")


# --- the worker: one process that runs the entry points ----------------------------------------


class CaseTimeout(BaseException):
    """Raised by the alarm; a BaseException, so the parsers' `except Exception` cannot hide it."""


_CAPTURED: list[str] = []  # tracebacks of errors the library itself turned into a report


def _status_kb(key: str) -> int:
    match = re.search(rf"^{key}:\s+(\d+)", Path("/proc/self/status").read_text(), re.M)
    return int(match.group(1)) if match else 0


def _reset_peak_rss() -> bool:
    try:
        Path("/proc/self/clear_refs").write_text("5")
        return True
    except OSError:
        return False


def _where(tb: BaseException) -> str:
    """The innermost frame in tensorfile's own code (else the innermost frame)."""
    frames = traceback.extract_tb(tb.__traceback__)
    own = [f for f in frames if "/tensorfile/" in f.filename] or frames
    if not own:
        return "?"
    f = own[-1]
    return f"{f.filename.split('/src/')[-1]}:{f.lineno} {f.name}"


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {str(exc)[:300]} @ {_where(exc)}"


_LZMA_DECODERS = [0]  # lzma decoders made so far in this worker


def _count_lzma_decoders() -> None:
    """Count the lzma decoders made: liblzma allocates the dictionary a stream's header declares
    (up to the memlimit the caller gives), which tracemalloc sees while RSS does not."""
    import lzma

    made = lzma.LZMADecompressor

    def counted(*args: Any, **kwargs: Any) -> Any:
        _LZMA_DECODERS[0] += 1
        return made(*args, **kwargs)

    lzma.LZMADecompressor = counted  # type: ignore[misc,assignment]


def _install_capture() -> None:
    """Record the tracebacks that identify's fallback and scan's fail-closed catch would hide."""
    from tensorfile import identification
    from tensorfile.errors import TensorfileError
    from tensorfile.scan import scanner

    def wrap(fn: Callable[..., Any]) -> Callable[..., Any]:
        def recorded(*args: Any, **kwargs: Any) -> Any:
            try:
                return fn(*args, **kwargs)
            except TensorfileError:
                raise
            except Exception as exc:
                _CAPTURED.append(_describe(exc))
                raise

        recorded.__module__ = fn.__module__
        return recorded

    identification.FILE_DETECTORS = tuple(wrap(d) for d in identification.FILE_DETECTORS)
    scanner._scan_top = wrap(scanner._scan_top)


def _run_identify(path: Path) -> tuple[str, str]:
    from tensorfile.identification import identify
    from tensorfile.render import identify_table

    result = identify(path)
    _render_json(result.to_dict())
    identify_table(_console(), [result], verbose=True)
    return "ok", result.format


def _run_inspect(path: Path) -> tuple[str, str]:
    from tensorfile.inspection import inspect, select_tensors
    from tensorfile.render import inspect_report

    info = inspect(path)
    _render_json(info.to_dict(select_tensors(info.tensors)))
    inspect_report(_console(), info, select_tensors(info.tensors), 40)
    return "ok", f"{info.format}, {info.tensor_count} tensors"


def _run_scan(path: Path) -> tuple[str, str]:
    from tensorfile.scan import ScanReport
    from tensorfile.scan.report import render_report
    from tensorfile.scan.scanner import scan, scan_file

    report = scan([path], jobs=1) if path.is_dir() else ScanReport([scan_file(path)])
    _render_json(report.to_dict())
    render_report(_console(), report, verbose=True)
    errors = [r.error or "" for r in report.results if r.status == "error"]
    for error in errors:
        if error.startswith(
            ("internal error", "could not be scanned: Memory", "could not be scanned: maximum")
        ):
            return "traceback", error
    return ("error" if errors else "ok"), (errors[0] if errors else report.results[0].status)


def _run_hdf5(path: Path) -> tuple[str, str]:
    """The HDF5 reader on its own, further than the Keras handlers go: every object through hard
    links, every attribute value, each dataset's layout and ds[()] (a FormatError of one value is
    counted and the walk goes on)."""
    from tensorfile import hdf5
    from tensorfile.errors import TensorfileError
    from tensorfile.source import open_source

    counts = Counter[str]()

    def values(obj: Any) -> None:
        for key in obj.attrs:
            try:
                obj.attrs[key]
                counts["attributes"] += 1
            except TensorfileError:
                counts["refused"] += 1

    def visit(name: str, obj: Any) -> None:
        counts["objects"] += 1
        values(obj)
        if isinstance(obj, hdf5.Dataset):
            _ = (obj.dtype, obj.shape, obj.chunks, obj.is_virtual, obj.external)
            _ = (obj.id.get_offset(), obj.id.get_storage_size())
            try:
                obj[()]
                counts["values"] += 1
            except TensorfileError:
                counts["refused"] += 1

    with open_source(path) as source, hdf5.File(source, str(path)) as h5:
        values(h5)
        h5.visititems(visit)
    return "ok", ", ".join(f"{n} {k}" for k, n in sorted(counts.items()))


RUNNERS = {"identify": _run_identify, "inspect": _run_inspect, "scan": _run_scan, "hdf5": _run_hdf5}


def entries_for(path: Path) -> tuple[str, ...]:
    """The entry points a case runs: identify, inspect, scan, and the HDF5 reader on HDF5 files."""
    if path.is_file():
        with path.open("rb") as f:
            head = f.read(1 << 16)
        if hdf5_start(head) is not None:
            return (*ENTRIES, "hdf5")
    return ENTRIES


def _console() -> Any:
    from rich.console import Console

    return Console(file=io.StringIO(), width=120, force_terminal=False)


def _render_json(data: Any) -> None:
    """What the CLI's --json does (tensorfile.cli.common._print_json: streamed to a stdout that
    escapes lone surrogates); a small document must also read back as JSON."""
    from tensorfile.cli.common import _print_json

    sink = io.BytesIO()
    stdout = sys.stdout
    sys.stdout = io.TextIOWrapper(sink, encoding="utf-8", errors="backslashreplace")
    try:
        _print_json(data)
        sys.stdout.flush()
    finally:
        sys.stdout.detach()
        sys.stdout = stdout
    if sink.tell() < 1 << 20:
        json.loads(sink.getvalue().decode("utf-8"))


def _call(name: str, path: Path, time_limit: float) -> tuple[str, str, float]:
    """(outcome, detail, seconds) of one entry point under an alarm."""
    from tensorfile.errors import TensorfileError

    _CAPTURED.clear()
    signal.setitimer(signal.ITIMER_REAL, time_limit)
    start = time.perf_counter()
    try:
        outcome, detail = RUNNERS[name](path)
    except CaseTimeout as exc:
        outcome, detail = "hang", f"over {time_limit:g} s @ {_where(exc)}"
    except TensorfileError as exc:
        outcome, detail = "error", str(exc)[:300]
    except MemoryError as exc:
        outcome, detail = "memory", _describe(exc)
    except Exception as exc:
        outcome, detail = "traceback", _describe(exc)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    if outcome in ("ok", "error") and _CAPTURED:
        outcome, detail = ("traceback" if name == "scan" else "swallowed"), _CAPTURED[0]
    return outcome, detail, time.perf_counter() - start


def run_entry(name: str, path: Path, size: int, time_limit: float = TIME_LIMIT) -> dict[str, Any]:
    """One entry point on one case: outcome, detail, seconds, and memory peaks in MB.

    It runs traced (tracemalloc) with TRACED_SLOWDOWN times the limit; one that runs out of
    time then runs again untraced with the plain limit, and only a timeout there is a hang.
    """
    exact_rss = _reset_peak_rss()
    rss0 = _status_kb("VmRSS") if exact_rss else _status_kb("VmHWM")
    traced = tracemalloc.is_tracing()
    lzma_before = _LZMA_DECODERS[0]
    tracemalloc.reset_peak()
    py0 = tracemalloc.get_traced_memory()[0]
    outcome, detail, seconds = _call(name, path, time_limit * (TRACED_SLOWDOWN if traced else 1))
    py_peak = max(0, tracemalloc.get_traced_memory()[1] - py0) if traced else 0
    rss_peak = max(0, _status_kb("VmHWM") - rss0) << 10
    if outcome == "hang" and traced:
        tracemalloc.stop()
        try:
            outcome, detail, seconds = _call(name, path, time_limit)
        finally:
            tracemalloc.start(1)
    if outcome in ("ok", "error", "swallowed") and max(py_peak, rss_peak) > MEMORY_LIMIT + size:
        if rss_peak <= MEMORY_LIMIT + size and _LZMA_DECODERS[0] > lzma_before:
            detail = f"{LZMA_DICTIONARY}; {detail}"
        outcome, detail = "memory", f"{max(py_peak, rss_peak) >> 20} MB for a {size}-byte case; {detail}"
    return {
        "outcome": outcome,
        "detail": detail,
        "seconds": round(seconds, 4),
        "py_mb": round(py_peak / 2**20, 2),
        "rss_mb": round(rss_peak / 2**20, 2),
    }


def _on_alarm(signum: int, frame: Any) -> None:
    raise CaseTimeout()


def worker_setup(address_space: int = 6 << 30, trace: bool = True) -> None:
    """Alarm handler, tracemalloc (unless not `trace`: then the peak RSS alone bounds memory),
    capture hooks, and an address-space cap so that a runaway allocation fails with MemoryError
    instead of taking the machine down."""
    signal.signal(signal.SIGALRM, _on_alarm)
    vm = _status_kb("VmSize") << 10
    if vm:
        resource.setrlimit(resource.RLIMIT_AS, (vm + address_space, resource.RLIM_INFINITY))
    if trace:
        tracemalloc.start(1)
    _install_capture()
    _count_lzma_decoders()


def worker_main(trace: bool) -> None:
    """Answers one JSON line per request line on stdin: {"path", "size", "entries"}."""
    worker_setup(trace=trace)
    baseline = _status_kb("VmRSS")
    out = sys.stdout
    sys.stdout = sys.stderr  # nothing a parser prints may corrupt the answers
    for line in sys.stdin:
        request = json.loads(line)
        answers = {
            name: run_entry(name, Path(request["path"]), request["size"], request["time_limit"])
            for name in request["entries"]
        }
        out.write(json.dumps(answers) + "\n")
        out.flush()
        if any(a["outcome"] == "hang" for a in answers.values()) or _status_kb("VmRSS") > baseline + (
            512 << 10
        ):
            return  # the parent starts a fresh worker: this one was interrupted mid-parse, or grew


class Worker:
    """The parent's handle on one worker process."""

    def __init__(self, log: Path, trace: bool = True) -> None:
        self.trace = trace
        self.proc: subprocess.Popen[str] | None = None
        self.log = log  # the worker's stderr, for what it said before it died
        self.died: int | None = None  # exit status of a worker that died on the last request

    def ask(self, request: dict[str, Any], timeout: float) -> dict[str, Any]:
        """The answers; a worker that dies is asked once more (a fresh one), one that does not
        answer in time is killed: {"worker": crash or hang}."""
        answers = self._ask(request, timeout)
        if answers is None and self.died is not None:
            answers = self._ask(request, timeout)
        if answers is not None:
            return answers
        said = self.last_words()
        said = f"; it said: {said}" if said else ""
        if self.died is not None:
            return {"worker": {"outcome": "crash", "detail": f"the worker died (exit {self.died}){said}"}}
        return {"worker": {"outcome": "hang", "detail": f"the worker stopped answering (killed){said}"}}

    def _ask(self, request: dict[str, Any], timeout: float) -> dict[str, Any] | None:
        self.died = None
        if self.proc is None or self.proc.poll() is not None:
            self.proc = subprocess.Popen(
                [
                    sys.executable,
                    "-m",
                    "bench.fuzz_parsers",
                    "--worker",
                    *([] if self.trace else ["--no-trace"]),
                ],
                cwd=ROOT,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=self.log.open("a"),
                text=True,
            )
        assert self.proc.stdin is not None and self.proc.stdout is not None
        answer: list[str] = []
        reader = threading.Thread(target=lambda: answer.append(self.proc.stdout.readline()), daemon=True)  # type: ignore[union-attr]
        try:
            self.proc.stdin.write(json.dumps(request) + "\n")
            self.proc.stdin.flush()
        except OSError:
            self.close()
            return None
        reader.start()
        reader.join(timeout)
        if not answer or not answer[0]:
            self.died = self.proc.poll()
            self.close()
            return None
        answers = json.loads(answer[0])
        if any(a["outcome"] == "hang" for a in answers.values()):
            self.close()  # it exits after a hang (see worker_main): start a fresh one next time
        return answers

    def last_words(self) -> str:
        try:
            lines = self.log.read_text(errors="replace").strip().splitlines()
        except OSError:
            return ""
        return lines[-1][:300] if lines else ""

    def close(self) -> None:
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.wait()
            self.proc = None


# --- the CLI sample ----------------------------------------------------------------------------

CLI_VARIANTS = (
    ("identify",),
    ("inspect", "--json"),
    ("scan",),
    ("identify", "--json"),
    ("inspect",),
    ("scan", "--json"),
)


def run_cli_case(path: Path, variant: tuple[str, ...], timeout: float) -> dict[str, Any]:
    """`python -m tensorfile VERB [--json] PATH`: exit code 0/1/2, no traceback, one-line errors."""
    start = time.perf_counter()
    try:
        proc = subprocess.run(
            [sys.executable, "-m", "tensorfile", *variant, str(path)],
            capture_output=True,
            text=True,
            errors="replace",
            timeout=timeout,
            cwd=ROOT,
        )
    except subprocess.TimeoutExpired:
        return {"outcome": "hang", "detail": f"CLI over {timeout:g} s", "seconds": timeout}
    seconds = round(time.perf_counter() - start, 3)
    lines = proc.stderr.strip().splitlines()
    problem = None
    if "Traceback" in proc.stderr:
        problem = "traceback: " + (lines[-1] if lines else "")
    elif proc.returncode not in (0, 1, 2):
        problem = f"exit code {proc.returncode}"
    elif len(lines) > 1 or (lines and not lines[0].startswith("tensorfile: ")):
        problem = f"stderr not one tensorfile line: {proc.stderr[:300]!r}"
    elif proc.returncode == 2 and variant[0] != "scan" and len(lines) != 1:
        problem = "exit code 2 without a one-line error"
    elif "--json" in variant and (proc.returncode != 2 or proc.stdout.strip()):
        try:
            json.loads(proc.stdout)
        except ValueError:
            problem = f"--json output is not JSON: {proc.stdout[:200]!r}"
    if problem:
        return {"outcome": "traceback", "detail": problem, "seconds": seconds}
    return {
        "outcome": "error" if proc.returncode == 2 else "ok",
        "detail": f"exit {proc.returncode}",
        "seconds": seconds,
    }


# --- the campaign ------------------------------------------------------------------------------

FAILURES = ("traceback", "swallowed", "hang", "memory", "crash")

# Failures in files this fuzzing session does not own, reported to their owners (with
# reproducers) and left open: (entry, text in the failure's detail) -> what is wrong. They are
# counted as "known", not as failures, so that they do not hide new ones.
LZMA_DICTIONARY = "traced only, with an lzma decoder"
_LZMA_NOTE = (
    "an xz/lzma stream (or bytes sniffed as one) gets the dictionary its header declares, up to "
    "LZMA_MEMLIMIT (320 MB, scan/archive_context.py): liblzma allocates it, tracemalloc counts "
    "it, but only what is decoded is touched (peak RSS stays under the limit); a real xz -9 stream "
    "needs 64 MB, so a lower cap would refuse genuine files"
)
KNOWN_OPEN: dict[tuple[str, str], str] = {(entry, LZMA_DICTIONARY): _LZMA_NOTE for entry in ENTRIES}


# Cases known to fail for a reason outside these files: (case id prefix, entry) -> what is wrong.
_NOP_PICKLE = (
    "the pickle reader (picklevm) reads 2-6 M opcodes/s (its floor in pure Python) and compressed "
    "data may expand 1000x: a 16 KB .pkl.gz or torch zip holding 16.7 M NONE/POP opcodes takes "
    "~5-8 s of CPU to inspect or scan; only the 50 M-opcode budget (picklevm.MAX_OPCODES) bounds it"
)
KNOWN_CASES = {("s:nop-pickle-", entry): _NOP_PICKLE for entry in (*ENTRIES, "worker")}


def known_open(entry: str, answer: dict[str, Any], case_id: str = "") -> str | None:
    """The note of a known open failure this answer is, if any."""
    if answer["outcome"] in FAILURES:
        for (prefix, where), note in KNOWN_CASES.items():
            if case_id.startswith(prefix) and entry == where:
                return note
    for (where, text), note in KNOWN_OPEN.items():
        if entry == where and answer["outcome"] in FAILURES and text in answer["detail"]:
            return note
    return None


@dataclass
class Tally:
    """Counts and failures of a run; thread-safe `add`."""

    cases: Counter[str] = field(default_factory=Counter)  # per family
    kinds: Counter[str] = field(default_factory=Counter)  # per mutation kind
    outcomes: dict[str, Counter[str]] = field(
        default_factory=lambda: defaultdict(Counter)
    )  # entry -> outcome
    failures: list[dict[str, Any]] = field(default_factory=list)
    known: list[dict[str, Any]] = field(default_factory=list)  # failures in KNOWN_OPEN
    slowest: dict[str, tuple[float, str]] = field(default_factory=dict)
    largest: dict[str, tuple[float, str]] = field(default_factory=dict)
    cli_cases: int = 0
    # (family, entry) -> calls, each outcome's count, seconds (summed), peak RSS and traced MB (max)
    grid: dict[tuple[str, str], Counter[str]] = field(default_factory=lambda: defaultdict(Counter))
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, case: Case, answers: dict[str, dict[str, Any]], size: int) -> None:
        with self._lock:
            self.cases[case.family] += 1
            self.kinds[case.kind] += 1
            for entry, answer in answers.items():
                note = known_open(entry, answer, case.id)
                if note:
                    self.known.append({"case": case.id, "entry": entry, "note": note, **answer})
                    answer = {**answer, "outcome": "known"}
                self.outcomes[entry][answer["outcome"]] += 1
                if entry.startswith("cli"):
                    self.cli_cases += 1
                if answer["outcome"] in FAILURES:
                    self.failures.append(
                        {
                            "case": case.id,
                            "family": case.family,
                            "kind": case.kind,
                            "entry": entry,
                            "size": size,
                            **answer,
                        }
                    )
                seconds = answer.get("seconds", 0.0)
                if seconds > self.slowest.get(entry, (0.0, ""))[0]:
                    self.slowest[entry] = (seconds, case.id)
                mb = max(answer.get("py_mb", 0.0), answer.get("rss_mb", 0.0))
                if mb > self.largest.get(entry, (0.0, ""))[0]:
                    self.largest[entry] = (mb, case.id)
                cell = self.grid[case.family, "cli" if entry.startswith("cli") else entry]
                cell["calls"] += 1
                cell[answer["outcome"]] += 1
                cell["seconds"] += seconds  # type: ignore[assignment]
                cell["rss_mb"] = max(cell["rss_mb"], answer.get("rss_mb", 0.0))  # type: ignore[type-var]
                cell["py_mb"] = max(cell["py_mb"], answer.get("py_mb", 0.0))  # type: ignore[type-var]

    @property
    def total(self) -> int:
        return sum(self.cases.values())

    def signatures(self) -> dict[str, list[dict[str, Any]]]:
        """Failures grouped by (entry, outcome, where): one bug, however many cases hit it."""
        groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for f in self.failures:
            if f["outcome"] == "memory" and " @ " not in f["detail"]:
                where = f"{f['family']}: " + f["detail"].split("; ", 1)[-1][:60]
            else:
                where = f["detail"].rsplit(" @ ", 1)[-1] if " @ " in f["detail"] else f["detail"][:80]
            groups[f"{f['entry']} {f['outcome']} {where}"].append(f)
        return groups


def run_campaign(
    cases: Iterable[Case],
    *,
    jobs: int = 2,
    deadline: float | None = None,
    cli_every: int = 0,
    time_limit: float = TIME_LIMIT,
    workdir: Path | None = None,
    keep_failures: Path | None = None,
    progress: Callable[[Tally], None] | None = None,
    trace: bool = True,
) -> Tally:
    """Run `cases` on `jobs` worker processes until they run out or `deadline` (time.monotonic)."""
    tally = Tally()
    source = iter(cases)
    lock = threading.Lock()
    counter = itertools.count()
    root = Path(tempfile.mkdtemp(prefix="fuzz-", dir=workdir))

    def next_case() -> tuple[int, Case] | None:
        with lock:
            if deadline is not None and time.monotonic() > deadline:
                return None
            case = next(source, None)
            return None if case is None else (next(counter), case)

    def loop(slot: int) -> None:
        worker = Worker(root / f"w{slot}.log", trace)
        folder = root / f"w{slot}"
        try:
            while (item := next_case()) is not None:
                number, case = item
                path = case.write(folder)
                size = case.size
                limit = time_limit + SECONDS_PER_MB * size / 2**20
                entries = entries_for(path)
                request = {"path": str(path), "size": size, "entries": entries, "time_limit": limit}
                answers = worker.ask(request, timeout=len(entries) * limit * 2 + 20)
                if answers is None:
                    answers = {
                        "worker": {"outcome": "hang", "detail": "the worker stopped answering (killed)"}
                    }
                if cli_every and number % cli_every == 0:
                    variant = CLI_VARIANTS[(number // cli_every) % len(CLI_VARIANTS)]
                    answers["cli " + " ".join(variant)] = run_cli_case(path, variant, 3 * limit + 20)
                tally.add(case, answers, size)
                if keep_failures and any(a["outcome"] in FAILURES for a in answers.values()):
                    dst = keep_failures / case.id.replace("/", "_").replace(":", "_")
                    shutil.rmtree(dst, ignore_errors=True)
                    shutil.copytree(folder, dst)
                if progress and number % 200 == 0:
                    progress(tally)
        finally:
            worker.close()

    threads = [threading.Thread(target=loop, args=(i,)) for i in range(jobs)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    shutil.rmtree(root, ignore_errors=True)
    return tally


# --- report ------------------------------------------------------------------------------------


def summary(tally: Tally, seconds: float) -> dict[str, Any]:
    return {
        "cases": tally.total,
        "seconds": round(seconds, 1),
        "cases_per_family": dict(sorted(tally.cases.items())),
        "cases_per_kind": dict(sorted(tally.kinds.items())),
        "outcomes": {entry: dict(c) for entry, c in sorted(tally.outcomes.items())},
        "cli_cases": tally.cli_cases,
        "slowest": {k: {"seconds": v[0], "case": v[1]} for k, v in tally.slowest.items()},
        "largest_mb": {k: {"mb": v[0], "case": v[1]} for k, v in tally.largest.items()},
        "known_open": dict(Counter(k["note"] for k in tally.known)),
        "per_family_entry": {
            family: {
                entry: {k: round(v, 2) if isinstance(v, float) else v for k, v in sorted(cell.items())}
                for (f, entry), cell in sorted(tally.grid.items())
                if f == family
            }
            for family in sorted({f for f, _ in tally.grid})
        },
        "failures": {
            sig: {"count": len(items), "examples": items[:3]}
            for sig, items in sorted(tally.signatures().items())
        },
    }


def print_summary(doc: dict[str, Any]) -> None:
    print(f"{doc['cases']} cases in {doc['seconds']} s ({doc['cli_cases']} through the CLI)")
    print("per family: " + ", ".join(f"{k} {v}" for k, v in doc["cases_per_family"].items()))
    print("per kind:   " + ", ".join(f"{k} {v}" for k, v in doc["cases_per_kind"].items()))
    for entry, counts in doc["outcomes"].items():
        print(f"  {entry:24} " + ", ".join(f"{k} {v}" for k, v in sorted(counts.items())))
    for entry, slow in doc["slowest"].items():
        big = doc["largest_mb"].get(entry, {})
        mb, where = big.get("mb", 0), big.get("case")
        print(f"  {entry:24} slowest {slow['seconds']:.2f} s ({slow['case']}), most memory {mb} MB ({where})")
    for note, count in doc["known_open"].items():
        print(f"known open x{count}: {note}")
    if not doc["failures"]:
        print("no failures")
    for sig, group in doc["failures"].items():
        first = group["examples"][0]
        print(f"FAIL x{group['count']}: {sig}")
        print(f"    {first['case']} [{first['family']}/{first['kind']}] {first['detail'][:400]}")


def run_context() -> dict[str, str]:
    """The machine line and versions a run is recorded with."""
    sys.path.insert(0, str(ROOT / "bench"))
    import tensorfile
    from bench_identify import machine_line

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    return {
        "machine": machine_line(),
        "versions": f"tensorfile {tensorfile.__version__} ({commit.stdout.strip()})",
    }


def markdown(doc: dict[str, Any]) -> str:
    """The tables for docs/BENCHMARKS.md: per entry point, then per family (seed format)."""
    grid: dict[str, dict[str, dict[str, Any]]] = doc["per_family_entry"]
    head = "tracebacks | hangs | over memory | known open | max RSS added | seconds |"

    def tail(cells: list[dict[str, Any]]) -> tuple[Counter[str], str]:
        total = Counter[str]()
        for c in cells:
            total.update({k: v for k, v in c.items() if k not in ("rss_mb", "py_mb")})
        rss = max(c.get("rss_mb", 0) for c in cells)
        failed = total["traceback"] + total["swallowed"] + total["crash"]
        counts = (failed, total["hang"], total["memory"], total["known"])
        return total, " | ".join(map(str, counts)) + f" | {rss:.1f} MB | {total['seconds']:.0f} |"

    rows = [f"| entry point | calls | ok | clean error | {head}", "|---|" + "---:|" * 9]
    entries = sorted({e for cells in grid.values() for e in cells}, key=lambda e: (e not in RUNNERS, e))
    for entry in entries:
        total, rest = tail([c[entry] for c in grid.values() if entry in c])
        rows.append(f"| {entry} | {total['calls']} | {total['ok']} | {total['error']} | {rest}")
    rows += ["", f"| family (seed format) | cases | {head}", "|---|" + "---:|" * 7]
    for family, cells in grid.items():
        _, rest = tail(list(cells.values()))
        rows.append(f"| {family} | {doc['cases_per_family'].get(family, 0)} | {rest}")
    return "\n".join(rows)


def replay(case: Case, time_limit: float) -> None:
    """Run one case in this process and print each entry's outcome (with tracebacks)."""
    worker_setup()
    folder = Path(tempfile.mkdtemp(prefix="fuzz-replay-"))
    path = case.write(folder / "case")
    print(f"{case.id} [{case.family}/{case.kind}] {path} ({case.size} bytes)")
    limit = time_limit + SECONDS_PER_MB * case.size / 2**20
    for name in entries_for(path):
        print(f"{name}: {run_entry(name, path, case.size, limit)}")
    print(f"files kept in {folder}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument(
        "--no-trace", action="store_true", help="no tracemalloc (faster): the peak RSS alone bounds memory"
    )
    parser.add_argument("--minutes", type=float, default=25.0, help="stop the random cases after this long")
    parser.add_argument("--cases", type=int, default=None, help="random cases (instead of --minutes)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--family", default=None, help="only seeds whose family contains this")
    parser.add_argument("--sweep", type=int, default=64, help="truncation points per target (0: none)")
    parser.add_argument("--bomb-mb", type=int, default=1024, help="size the compression bombs expand to")
    parser.add_argument(
        "--cli-every", type=int, default=50, help="every Nth case also through the CLI (0: never)"
    )
    parser.add_argument("--security", action="store_true", help="also seed with ../shared/corpus/security")
    parser.add_argument("--time-limit", type=float, default=TIME_LIMIT)
    parser.add_argument("--replay", default=None, metavar="CASE_ID")
    parser.add_argument("--table", type=Path, default=None, help="print the tables of a results file")
    parser.add_argument("--keep", type=Path, default=None, help="copy failing cases into this folder")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "fuzz_parsers.json")
    args = parser.parse_args()
    if args.worker:
        worker_main(not args.no_trace)
        return
    if args.table:
        print(markdown(json.loads(args.table.read_text())))
        return
    start = time.monotonic()
    scratch = Path(tempfile.mkdtemp(prefix="fuzz-seeds-"))
    try:
        seeds = all_seeds(scratch, args.security)
        if args.family:
            seeds = [s for s in seeds if args.family in s.family]
        if args.replay:
            replay(find_case(args.replay, seeds, args.seed, args.bomb_mb << 20), args.time_limit)
            return
        families = len({s.family for s in seeds})
        print(f"{len(seeds)} seeds in {families} families ({time.monotonic() - start:.0f} s)")
        fixed = itertools.chain(
            baseline_cases(seeds),
            synthetic(args.bomb_mb << 20) if not args.family else (),
            sweep_cases(seeds, args.sweep) if args.sweep else (),
        )
        randoms = random_cases(seeds, args.seed)
        stream = itertools.chain(
            fixed, itertools.islice(randoms, args.cases) if args.cases is not None else randoms
        )
        deadline = None if args.cases is not None else start + args.minutes * 60

        def progress(t: Tally) -> None:
            print(
                f"  {t.total} cases, {len(t.failures)} failures, {time.monotonic() - start:.0f} s", flush=True
            )

        tally = run_campaign(
            stream,
            jobs=args.jobs,
            deadline=deadline,
            cli_every=args.cli_every,
            time_limit=args.time_limit,
            keep_failures=args.keep,
            trace=not args.no_trace,
            progress=progress,
        )
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    doc = summary(tally, time.monotonic() - start)
    doc["settings"] = {k: str(v) for k, v in vars(args).items() if k not in ("worker", "out", "replay")}
    doc["seeds"] = len(seeds)
    doc.update(run_context())
    print_summary(doc)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(doc, indent=1, default=str) + "\n")
    print(f"written to {args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out}")


if __name__ == "__main__":
    main()
