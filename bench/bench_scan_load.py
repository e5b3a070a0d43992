"""`scan` under load: a seeded zoo of 10,000 small files of mixed formats, tensorfile with
--jobs 1 and --jobs 2 beside picklescan and modelaudit, on the same files.

The zoo is tests/fixtures/make_zoo.py (benign files written by the formats' own libraries,
hostile pickles from the pickle assembler, truncated and huge-declared files). Each run is one
fresh process over the whole folder: wall time (start-up included), files per second over all
the zoo's files, and the peak RSS of its process tree (`wait4`). tensorfile's runs also say the
parent's and the largest worker's peak apart, and must give the same per-file verdicts with
--jobs 1 and --jobs 2.

What each peer reads: picklescan looks at files by extension only (zip, pickle and torch
names) and its CLI stops at the first file that raises, so it runs here as its own library call
`scan_file_path` per file (its CLI's walk and filter, one process, errors counted per file).
modelaudit scans the folder with its CLI (`scan --format json`); it is slow on pickles (seconds
each), so `--modelaudit-runs` defaults to 1, with its own scan time limit (3600 s by default,
which ends the run about half-way through the zoo) raised to --timeout. Neither has a parallel
mode.

    .venv/bin/python bench/bench_scan_load.py [--count 10000] [--runs 3] [--peers /tmp/peers/bin]
        [--tools tensorfile-j1,tensorfile-j2,picklescan,modelaudit] [--zoo DIR]

Results are merged into bench/results/scan_load.json (so one tool can be re-run alone) and the
table for docs/BENCHMARKS.md is printed from it. `--sample N` runs the tools on a seeded sample
of N of the zoo's files instead (hard links, the same bytes), for a peer too slow for the whole
zoo; those runs are kept apart, under "subsets" (their files/s are over the sample's files).
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
from tests.fixtures.make_zoo import MEASURED_CLI, build_zoo  # noqa: E402

from bench_identify import machine_line, use_bytecode  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "scan_load.json"
GROUPS = ("hostile", "benign", "truncated", "huge")
NO_TELEMETRY = {"PROMPTFOO_DISABLE_TELEMETRY": "1", "NO_ANALYTICS": "1", "DO_NOT_TRACK": "1"}

# picklescan's CLI directory walk (same extension filter), one `scan_file_path` per file, so a
# file that makes it raise is counted as an error instead of ending the run. One JSON line a file.
PICKLESCAN_DRIVER = r"""
import json, os, sys
from picklescan import scanner
read = scanner._zip_file_extensions | scanner._pickle_file_extensions | scanner._pytorch_file_extensions
for base, dirs, names in os.walk(sys.argv[1]):
    dirs.sort()
    for name in sorted(names):
        path = os.path.join(base, name)
        if os.path.splitext(name)[1] not in read:
            print(json.dumps({"path": path, "outcome": "not read"}))
            continue
        try:
            result = scanner.scan_file_path(path)
        except Exception as exc:
            print(json.dumps({"path": path, "outcome": "error", "error": type(exc).__name__}))
            continue
        outcome = "error" if result.scan_err else "flagged" if result.infected_files else "clean"
        print(json.dumps({"path": path, "outcome": outcome}))
"""


# The measured process is started by this small launcher (`python -S`, a few MB), not by the
# bench itself: Linux counts the memory of the process image exec replaced in the peak RSS that
# getrusage and wait4 report, so a child forked from the bench (tens of MB once the zoo is built)
# would report at least the bench's size. The launcher forks, execs the tool, waits for it and
# writes the tool tree's wait4 figures as JSON to its first argument.
LAUNCHER = r"""
import json, os, sys
stats, cmd = sys.argv[1], sys.argv[2:]
pid = os.fork()
if pid == 0:
    try:
        os.execvp(cmd[0], cmd)
    finally:
        os._exit(127)
_pid, status, usage = os.wait4(pid, 0)
with open(stats, "w") as f:
    json.dump({"code": os.waitstatus_to_exitcode(status), "maxrss_kb": usage.ru_maxrss}, f)
"""


def run(cmd: list[str], out: Path, *, env: dict[str, str] | None = None, timeout: float) -> dict[str, Any]:
    """One fresh process, stdout to `out`: exit code, wall seconds, peak RSS of its process tree."""
    stats = out.with_suffix(".wait4")
    start = time.perf_counter()
    with out.open("wb") as stdout:
        proc = subprocess.Popen(
            [sys.executable, "-S", "-c", LAUNCHER, str(stats), *cmd],
            stdout=stdout,
            stderr=subprocess.DEVNULL,
            cwd=ROOT,
            env={**os.environ, **(env or {})},
            start_new_session=True,  # a timeout kills the launcher and the tool's whole tree
        )
        timer = threading.Timer(timeout, os.killpg, (proc.pid, 9))
        timer.start()
        proc.wait()
        timer.cancel()
    wall = time.perf_counter() - start
    if not stats.exists():
        return {"code": -9, "wall": wall, "tree_rss_mb": 0.0}
    got = json.loads(stats.read_text())
    return {"code": got["code"], "wall": wall, "tree_rss_mb": got["maxrss_kb"] / 1024}


def outcomes_tensorfile(out: Path) -> dict[str, str]:
    return {
        f["path"]: {"unsafe": "flagged"}.get(f["verdict"], f["verdict"])
        for f in json.loads(out.read_bytes())["files"]
    }


def outcomes_picklescan(out: Path) -> dict[str, str]:
    return {(r := json.loads(line))["path"]: r["outcome"] for line in out.read_text().splitlines()}


def outcomes_modelaudit(out: Path, files: list[str]) -> dict[str, str]:
    """A file is flagged when an issue or failed check at WARNING/CRITICAL is located in it (the
    findings behind modelaudit's exit code 1), "clean" when it is among the files it read."""
    doc = json.loads(out.read_bytes())
    outcome = dict.fromkeys(files, "not read")
    for path in [*(a["path"] for a in doc.get("assets", [])), *doc.get("file_metadata", {})]:
        outcome[path] = "clean"
    records = [*doc.get("issues", []), *(c for c in doc.get("checks", []) if c.get("status") == "failed")]
    for record in records:
        if str(record.get("severity", "")).lower() not in ("warning", "critical"):
            continue
        path = re.split(r":| \(", str(record.get("location") or ""), maxsplit=1)[0]
        if path in outcome:
            outcome[path] = "flagged"
    return outcome


def tally(outcomes: dict[str, str], groups: dict[str, str]) -> dict[str, dict[str, int]]:
    """Per zoo group: how many files got each outcome."""
    counts: dict[str, Counter[str]] = {g: Counter() for g in GROUPS}
    for path, outcome in outcomes.items():
        if path in groups:
            counts[groups[path]][outcome] += 1
    return {g: dict(c) for g, c in counts.items()}


def versions(peers: Path) -> dict[str, str]:
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, cwd=ROOT)
    found = {"tensorfile": f"{_version(sys.executable, 'tensorfile')} ({commit.stdout.strip()})"}
    for name in ("picklescan", "modelaudit"):
        if (peers / "python").exists():
            found[name] = _version(str(peers / "python"), name)
    return found


def _version(python: str, dist: str) -> str:
    code = f"import importlib.metadata as m; print(m.version({dist!r}))"
    out = subprocess.run([python, "-c", code], capture_output=True, text=True, check=False)
    return out.stdout.strip() or "absent"


def bench_tool(name: str, zoo: Path, args: argparse.Namespace, tmp: Path) -> dict[str, Any] | None:
    files = zoo / "files"
    peers: Path = args.peers
    runs = args.modelaudit_runs if name == "modelaudit" else args.runs
    samples = []
    outcomes: dict[str, str] = {}
    all_files = sorted(str(Path(r) / n) for r, _d, ns in os.walk(files) for n in ns)
    for i in range(runs):
        out = tmp / f"{name}-{i}.out"
        if name.startswith("tensorfile"):
            stats = tmp / f"{name}-{i}.stats"
            jobs = name.removeprefix("tensorfile-j")
            cmd = [
                sys.executable,
                "-c",
                MEASURED_CLI,
                str(stats),
                "scan",
                "--json",
                "--jobs",
                jobs,
                str(files),
            ]
            sample = run(cmd, out, timeout=args.timeout)
            split = json.loads(stats.read_text())
            sample.update(
                code=split["code"],
                parent_rss_mb=split["parent"] / (1 << 20),
                worker_rss_mb=split["workers"] / (1 << 20),
            )
            got = outcomes_tensorfile(out)
        elif name == "picklescan":
            if not (peers / "picklescan").exists():
                return None
            sample = run(
                [str(peers / "python"), "-c", PICKLESCAN_DRIVER, str(files)], out, timeout=args.timeout
            )
            got = outcomes_picklescan(out)
        else:
            if not (peers / "modelaudit").exists():
                return None
            # its own time limit (default 3600 s) would end the run after about half the zoo
            limit = str(int(args.timeout))
            cmd = [
                str(peers / "modelaudit"),
                "scan",
                "--no-cache",
                "--format",
                "json",
                "--timeout",
                limit,
                str(files),
            ]
            sample = run(cmd, out, env=NO_TELEMETRY, timeout=args.timeout)
            got = outcomes_modelaudit(out, all_files)
        if outcomes and got != outcomes:
            raise SystemExit(f"{name}: run {i + 1} gave other per-file outcomes than run 1")
        outcomes = got
        samples.append(sample)
        print(f"  {name} run {i + 1}: {sample['wall']:.1f} s, exit {sample['code']}", flush=True)
    lost = [f for f in all_files if f not in outcomes]
    return {"samples": samples, "outcomes": outcomes, "lost": len(lost)}


def picklescan_cli_note(zoo: Path, peers: Path, tmp: Path) -> str:
    """What picklescan's own CLI does on the zoo folder: how far it gets before it stops."""
    out = tmp / "picklescan-cli.out"
    sample = run([str(peers / "picklescan"), "-p", str(zoo / "files")], out, timeout=600)
    text = out.read_text(errors="replace")
    return (
        f"`picklescan -p` on the folder: exit {sample['code']} after {sample['wall']:.2f} s, "
        f"{'stopped by an unhandled exception' if 'Traceback' in text else 'ran to the end'}"
    )


def table(doc: dict[str, Any]) -> str:
    zoo = doc["zoo"]
    rows = [
        f"Zoo: {zoo['count']} files (seed {zoo['seed']}): "
        + ", ".join(f"{zoo['groups'][g]} {g}" for g in GROUPS)
        + f", {zoo['megabytes']:.0f} MB. Machine: {doc['machine']}.",
        f"Versions: {', '.join(f'{k} {v}' for k, v in doc['versions'].items())}.",
        "",
        "| tool | runs | wall (median) | files/s | peak RSS (tree) | exit | files read | hostile flagged"
        " | benign flagged | truncated flagged | huge flagged | not scanned (error) |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for name, res in doc["tools"].items():
        samples = res["samples"]
        wall = statistics.median(s["wall"] for s in samples)
        rss = statistics.median(s["tree_rss_mb"] for s in samples)
        t = res["tally"]
        read = sum(n for g in GROUPS for o, n in t[g].items() if o != "not read")

        def share(group: str, t: dict[str, dict[str, int]] = t) -> str:
            return f"{t[group].get('flagged', 0)}/{zoo['groups'][group]}"

        errors = sum(t[g].get("error", 0) for g in GROUPS)
        shares = " | ".join(share(g) for g in GROUPS)
        rows.append(
            f"| {name} | {len(samples)} | {wall:.1f} s | {zoo['count'] / wall:.0f} | {rss:.0f} MB | "
            f"{samples[0]['code']} | {read} | {shares} | {errors} |"
        )
    for name, res in doc["tools"].items():
        if "parent_rss_mb" in res["samples"][0]:
            s = res["samples"]
            rows.append(
                f"\n{name}: parent {statistics.median(x['parent_rss_mb'] for x in s):.0f} MB, largest worker "
                f"{statistics.median(x['worker_rss_mb'] for x in s):.0f} MB, files lost {res['lost']}."
            )
    rows += [f"\n{name}: load average (1/5/15 min) {res['load']}." for name, res in doc["tools"].items()]
    rows += [f"\n{note}" for note in doc["notes"].values()]
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--modelaudit-runs", type=int, default=1)
    parser.add_argument("--peers", type=Path, default=ROOT / ".bench-venv" / "bin")
    parser.add_argument("--tools", default="tensorfile-j1,tensorfile-j2,picklescan,modelaudit")
    parser.add_argument("--zoo", type=Path, help="build the zoo here (or reuse it) instead of a temp folder")
    parser.add_argument("--timeout", type=float, default=6 * 3600)
    parser.add_argument("--sample", type=int, default=0, help="run on a seeded sample of this many files")
    parser.add_argument("--sample-seed", type=int, default=16)
    args = parser.parse_args()
    use_bytecode()
    verdicts: dict[str, dict[str, str]] = {}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        zoo = args.zoo or tmp / "zoo"
        manifest_path = zoo / "ZOO.json"
        if manifest_path.exists() and len(json.loads(manifest_path.read_text())) == args.count:
            manifest = json.loads(manifest_path.read_text())
        else:
            manifest = build_zoo(zoo, args.count, args.seed)
        subset = None
        if args.sample:
            manifest, zoo = sample_zoo(manifest, zoo, tmp / "sample", args.sample, args.sample_seed)
            subset = f"{args.sample} of {args.count}, seed {args.sample_seed}"
        groups = {str(zoo / rel): e["group"] for rel, e in manifest.items()}
        size = sum((zoo / rel).stat().st_size for rel in manifest)
        zoo_doc = {
            "count": len(manifest),
            "seed": args.seed,
            "groups": dict(Counter(groups.values())),
            "megabytes": size / 1e6,
        }
        if subset:
            zoo_doc["sample"] = subset
        for name in args.tools.split(","):
            print(f"{name} …", flush=True)
            load = " / ".join(f"{x:.1f}" for x in os.getloadavg())
            res = bench_tool(name, zoo, args, tmp)
            if res is None:
                print(f"  {name}: not installed in {args.peers}, skipped")
                continue
            verdicts[name] = res.pop("outcomes")
            res["tally"] = tally(verdicts[name], groups)
            res["load"] = f"{load} before, " + " / ".join(f"{x:.1f}" for x in os.getloadavg()) + " after"
            note = picklescan_cli_note(zoo, args.peers, tmp) if name == "picklescan" else None
            save(name, res, zoo_doc, args.peers, note, subset)
    if "tensorfile-j1" in verdicts and "tensorfile-j2" in verdicts:
        if verdicts["tensorfile-j1"] != verdicts["tensorfile-j2"]:
            raise SystemExit("tensorfile --jobs 2 gave other verdicts than --jobs 1")
        print("tensorfile --jobs 1 and --jobs 2: the same verdict for every file")
    print()
    doc = json.loads(RESULTS.read_text())
    print(table(doc))
    for part in doc.get("subsets", {}).values():
        print(f"\nSeeded sample ({part['zoo']['sample']}):\n")
        print(table({**doc, **part}))


def sample_zoo(
    manifest: dict[str, dict[str, str]], zoo: Path, folder: Path, count: int, seed: int
) -> tuple[dict[str, dict[str, str]], Path]:
    """`count` of the zoo's files chosen by `random.Random(seed)`, hard-linked under `folder`."""
    chosen = sorted(random.Random(seed).sample(sorted(manifest), count))
    for rel in chosen:
        (folder / rel).parent.mkdir(parents=True, exist_ok=True)
        os.link(zoo / rel, folder / rel)
    return {rel: manifest[rel] for rel in chosen}, folder


def save(
    name: str, res: dict[str, Any], zoo: dict[str, Any], peers: Path, note: str | None, subset: str | None
) -> None:
    """Merge one tool's runs into RESULTS, read again just before (another run may have written);
    a sample's runs go under "subsets", beside the whole zoo's."""
    whole = json.loads(RESULTS.read_text()) if RESULTS.exists() else {}
    doc = whole.setdefault("subsets", {}).setdefault(subset, {}) if subset else whole
    if doc.get("zoo") != zoo:
        doc.clear()  # another zoo: the old runs do not compare
        doc.update(tools={}, notes={})
    doc.update(zoo=zoo, machine=machine_line())
    doc["versions"] = {**doc.get("versions", {}), **versions(peers)}
    doc["tools"][name] = res
    if note:
        doc["notes"][name] = note
    RESULTS.write_text(json.dumps(whole, indent=2) + "\n")


if __name__ == "__main__":
    main()
