"""A zoo run at scale: `scan` of a seeded 10,000-file zoo on local disk and on a local S3 stand-in
(moto's server on 127.0.0.1), with --jobs 1, --jobs 2 and --ray (a one-node local Ray, 2 CPUs),
beside picklescan and modelscan on the same local files; then a projection for a cluster.

The zoo is tests/fixtures/make_zoo.py (benign files by the formats' own libraries, hostile
pickles, truncated and huge-declared files). Each run is one fresh process (start-up, listing and
Ray's start included in its wall time) calling `tensorfile.zoo.run.run_zoo`, the function
`tensorfile scan DIR... --out results.jsonl [--jobs N] [--ray]` runs; its summary gives requests
and bytes per file (S3: range requests and bytes fetched, exact; local: read syscalls and bytes
of the reading thread, imports left out, zoo/meter.py). The three
tensorfile configurations must give the same verdict for every file, on disk and on S3.

Peers run on the local files only (they read local paths): picklescan as its library call
`scan_file_path` per file over its CLI's walk and extension filter (bench_scan_load.py's driver:
its CLI stops at the first file that raises), modelscan 0.8.8 with its CLI (`scan -p DIR -r json`),
from a separate venv (--peers-venv, default .bench-zoo-venv: pip install modelscan==0.8.8
picklescan==1.0.5 'numpy<2' — modelscan's npy reader fails on numpy 2). Neither is parallel.

    .venv/bin/python bench/bench_zoo.py [--count 10000] [--runs 3] [--s3-runs 3] [--zoo DIR]

Writes bench/results/zoo.json and prints the docs/BENCHMARKS.md table and projection.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
from tests.fixtures.make_zoo import build_zoo  # noqa: E402
from tests.s3stand import S3Stand  # noqa: E402

from bench_identify import machine_line  # noqa: E402
from bench_scan_load import PICKLESCAN_DRIVER  # noqa: E402

RESULTS = ROOT / "bench" / "results" / "zoo.json"
BUCKET = "zoo"

DRIVER = r"""
import json, sys
from tensorfile.zoo.run import run_zoo
source, out, jobs, ray = sys.argv[1:5]
summary = run_zoo("scan", [source], out, jobs=int(jobs), progress=False, ray=ray or None)
print(json.dumps(summary.to_dict()))
"""

CONFIGS = {"jobs 1": ("1", ""), "jobs 2": ("2", ""), "ray (local, 2 CPUs)": ("2", "local")}

# The projection's assumptions (stated in the output; none is measured here).
PUBLIC_FILES = 30_000_000  # assumption: ~2 M public model repos on the HF hub x ~15 files each
LATENCY_S = 0.030  # assumption: first-byte latency of one ranged GET inside the store's region
NODE_BANDWIDTH = 10e9 / 8  # assumption: 10 Gb/s per node
# assumption: a real multi-GB file costs about what tests/test_zoo.py's 32 MiB S3 objects cost
# (a safetensors and an .npy: 11 ranged GETs, 655 kB, in its commit 6ab9904; the test bounds
# each under 1 MiB), taken as 11 requests and 1 MiB; the zoo's files (~1 KB) fit in one request
LARGE_FILE = {"requests_per_file": 11.0, "bytes_per_file": float(1 << 20)}
CLUSTERS = [(10, 2), (10, 8), (10, 32), (100, 2), (100, 8), (100, 32)]  # (nodes, cores per node)


def timed(cmd: list[str], env: dict[str, str], stdout: Path, timeout: float) -> tuple[int, float]:
    start = time.perf_counter()
    with stdout.open("wb") as out:
        proc = subprocess.run(
            cmd, stdout=out, stderr=subprocess.DEVNULL, env=env, cwd=ROOT, timeout=timeout, check=False
        )
    return proc.returncode, time.perf_counter() - start


def tensorfile_run(source: str, jobs: str, ray: str, env: dict[str, str], tmp: Path) -> dict[str, Any]:
    out, summary = tmp / "results.jsonl", tmp / "summary.json"
    out.unlink(missing_ok=True)
    cmd = [sys.executable, "-c", DRIVER, source, str(out), jobs, ray]
    code, wall = timed(cmd, env, summary, timeout=3600)
    s = json.loads(summary.read_text())
    verdicts = {(r := json.loads(line))["path"]: r["verdict"] for line in out.read_text().splitlines()}
    return {
        "code": code,
        "wall": wall,
        "files": s["files"],
        "files_per_s": s["files"] / wall,
        "requests_per_file": s["requests"] / s["files"],
        "bytes_per_file": s["bytes_read"] / s["files"],
        "verdicts": s["verdicts"],
        "_by_file": verdicts,
    }


def picklescan_run(folder: Path, python: Path, tmp: Path) -> dict[str, Any]:
    out = tmp / "picklescan.jsonl"
    code, wall = timed([str(python), "-c", PICKLESCAN_DRIVER, str(folder)], dict(os.environ), out, 3600)
    outcomes = [json.loads(line)["outcome"] for line in out.read_text().splitlines()]
    tally = {k: outcomes.count(k) for k in sorted(set(outcomes))}
    return {"code": code, "wall": wall, "files": len(outcomes), "outcomes": tally}


def modelscan_run(folder: Path, venv: Path, tmp: Path) -> dict[str, Any]:
    report = tmp / "modelscan.json"
    report.unlink(missing_ok=True)
    cmd = [str(venv / "bin" / "modelscan"), "scan", "-p", str(folder), "-r", "json", "-o", str(report)]
    code, wall = timed([*cmd, "-l", "ERROR"], dict(os.environ), tmp / "modelscan.out", 3600)
    doc = json.loads(report.read_text())
    flagged = {i["source"].split(":", 1)[0] for i in doc.get("issues", [])}
    errors = {e["source"].split(":", 1)[0] for e in doc.get("errors", []) if "source" in e}
    scanned = {s.split(":", 1)[0] for s in doc["summary"].get("scanned", {}).get("scanned_files", [])}
    return {
        "code": code,
        "wall": wall,
        "outcomes": {"read": len(scanned | errors), "flagged": len(flagged), "errors": len(errors)},
    }


def median_of(runs: list[dict[str, Any]], files: int) -> dict[str, Any]:
    best = sorted(runs, key=lambda r: r["wall"])[len(runs) // 2]
    row = {k: v for k, v in best.items() if not k.startswith("_")}
    row["walls"] = [round(r["wall"], 2) for r in runs]
    row["files_per_s"] = files / best["wall"]
    return row


def project(per_file_cpu_s: float, requests_per_file: float, bytes_per_file: float) -> list[dict[str, Any]]:
    """Hours for a cluster to scan PUBLIC_FILES: each core reads its files one after another,
    so a file costs its CPU time plus `requests` round trips; a node is also capped by bandwidth."""
    rows = []
    for nodes, cores in CLUSTERS:
        per_core = 1 / (per_file_cpu_s + requests_per_file * LATENCY_S)
        per_node = min(cores * per_core, NODE_BANDWIDTH / max(bytes_per_file, 1))
        rate = nodes * per_node
        hours = PUBLIC_FILES / rate / 3600
        rows.append({"nodes": nodes, "cores": cores, "files_per_s": rate, "hours": hours})
    return rows


def projection(result: dict[str, Any]) -> dict[str, Any]:
    serial_local, serial_s3 = result["local"]["tensorfile jobs 1"], result["s3"]["tensorfile jobs 1"]
    cpu = 1 / serial_local["files_per_s"]  # start-up included: a little pessimistic
    measured = {k: serial_s3[k] for k in ("requests_per_file", "bytes_per_file")}
    return {
        "assumptions": {
            "public_files": PUBLIC_FILES,
            "files_note": "assumed: ~2 M public model repos on the Hugging Face hub x ~15 files each",
            "latency_s": LATENCY_S,
            "node_bandwidth_bytes_per_s": NODE_BANDWIDTH,
            "per_file_cpu_s": cpu,
        },
        "scenarios": {
            "zoo files (measured on S3)": {**measured, "clusters": project(cpu, **measured)},
            "large files (assumed)": {**LARGE_FILE, "clusters": project(cpu, **LARGE_FILE)},
        },
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--count", type=int, default=10_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--s3-runs", type=int, default=3)
    parser.add_argument("--zoo", type=Path, help="a zoo made by make_zoo.py (made in a temp folder if not)")
    parser.add_argument("--peers-venv", type=Path, default=ROOT / ".bench-zoo-venv")
    parser.add_argument("--out", type=Path, default=RESULTS)
    parser.add_argument("--report", action="store_true", help="recompute the projection of --out, print")
    args = parser.parse_args()
    if args.report:
        result = json.loads(args.out.read_text())
        result["projection"] = projection(result)
        args.out.write_text(json.dumps(result, indent=1) + "\n")
        print_table(result)
        return

    with tempfile.TemporaryDirectory(prefix="bench-zoo-") as tmpdir:
        tmp = Path(tmpdir)
        zoo = args.zoo or tmp / "zoo"
        if not (zoo / "ZOO.json").exists():
            build_zoo(zoo, args.count, seed=18)
        folder = zoo / "files"
        files = sum(1 for p in folder.rglob("*") if p.is_file())
        result: dict[str, Any] = {"machine": machine_line(), "files": files, "local": {}, "s3": {}}
        by_file: dict[str, dict[str, str]] = {}
        env = dict(os.environ)
        for name, (jobs, ray) in CONFIGS.items():
            runs = [tensorfile_run(str(folder), jobs, ray, env, tmp) for _ in range(args.runs)]
            by_file[f"local {name}"] = runs[0]["_by_file"]
            result["local"][f"tensorfile {name}"] = median_of(runs, files)
            print(name, "local", result["local"][f"tensorfile {name}"]["walls"], flush=True)
        python = args.peers_venv / "bin" / "python"
        runs = [picklescan_run(folder, python, tmp) for _ in range(args.runs)]
        result["local"]["picklescan 1.0.5"] = median_of(runs, files)
        runs = [modelscan_run(folder, args.peers_venv, tmp) for _ in range(args.runs)]
        result["local"]["modelscan 0.8.8"] = median_of(runs, files)
        print("peers", {k: v["walls"] for k, v in result["local"].items()}, flush=True)

        with S3Stand() as s3:
            s3.upload(folder, BUCKET)
            s3env = {**os.environ, **s3.env}
            source = f"s3://{BUCKET}"
            for name, (jobs, ray) in CONFIGS.items():
                runs = [tensorfile_run(source, jobs, ray, s3env, tmp) for _ in range(args.s3_runs)]
                prefix = len(source) + 1
                by_file[f"s3 {name}"] = {str(folder / k[prefix:]): v for k, v in runs[0]["_by_file"].items()}
                result["s3"][f"tensorfile {name}"] = median_of(runs, files)
                print(name, "s3", result["s3"][f"tensorfile {name}"]["walls"], flush=True)

    reference = by_file["local jobs 1"]
    result["same_verdicts"] = {k: v == reference for k, v in by_file.items()}
    result["projection"] = projection(result)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1) + "\n")
    print_table(result)


def print_table(result: dict[str, Any]) -> None:
    print(f"\n{result['machine']}; {result['files']:,} files\n")
    print("| store | tool | wall s (median; runs) | files/s | requests/file | bytes read/file |")
    print("|---|---|---|---|---|---|")
    for store in ("local", "s3"):
        for tool, row in result[store].items():
            walls = ", ".join(f"{w:.1f}" for w in row["walls"])
            req = f"{row['requests_per_file']:.1f}" if "requests_per_file" in row else "-"
            nbytes = f"{row['bytes_per_file']:,.0f}" if "bytes_per_file" in row else "-"
            wall = f"{row['wall']:.1f} ({walls})"
            print(f"| {store} | {tool} | {wall} | {row['files_per_s']:,.0f} | {req} | {nbytes} |")
    print("\nsame verdicts as local jobs 1:", result["same_verdicts"])
    p = result["projection"]
    print("\nprojection assumptions:", json.dumps(p["assumptions"]))
    names = list(p["scenarios"])
    for name in names:
        sc = p["scenarios"][name]
        print(f"{name}: {sc['requests_per_file']:.1f} requests, {sc['bytes_per_file']:,.0f} bytes per file")
    print("| nodes | cores/node | " + " | ".join(f"{n}: files/s, hours" for n in names) + " |")
    print("|---|---|" + "---|" * len(names))
    for i, row in enumerate(p["scenarios"][names[0]]["clusters"]):
        cells = [p["scenarios"][n]["clusters"][i] for n in names]
        text = " | ".join(f"{c['files_per_s']:,.0f}, {c['hours']:,.1f} h" for c in cells)
        print(f"| {row['nodes']} | {row['cores']} | {text} |")


if __name__ == "__main__":
    main()
