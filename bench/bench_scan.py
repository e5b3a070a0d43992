"""`tensorfile scan` beside picklescan and modelaudit: detection on the public samples, and speed.

Detection: every file of ../shared/corpus/security (the test samples of picklescan, modelscan and
modelaudit, labelled malicious/benign). A file counts as *flagged* when the tool's exit code
says "unsafe" (1), as an *error* when it says it could not scan (2 for all three tools, or a
crash/timeout). Speed: a 1 GiB torch.save zip and a 1 GiB raw pickle of numpy arrays, each tool
in a fresh process, wall time and peak RSS, median of several runs.

The peers live in their own venv (they pull in hundreds of MB):
    make bench-scan        # creates .bench-venv from bench/requirements-peers.txt, then runs this
    .venv/bin/python bench/bench_scan.py [--peers .bench-venv/bin] [--runs 3] [--skip-speed]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
CORPUS = ROOT.parent / "shared" / "corpus" / "security"
sys.path.insert(0, str(ROOT / "bench"))
from bench_identify import machine_line, use_bytecode  # noqa: E402

TIMEOUT = 300

# Runs a command and prints its exit code, wall time and the peak RSS of its process tree.
WRAPPER = r"""
import json, resource, subprocess, sys, time
start = time.perf_counter()
try:
    quiet = subprocess.DEVNULL
    code = subprocess.run(sys.argv[2:], stdout=quiet, stderr=quiet, timeout=float(sys.argv[1])).returncode
except subprocess.TimeoutExpired:
    code = "timeout"
wall = time.perf_counter() - start
rss = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
print(json.dumps({"code": code, "wall": wall, "rss_mb": rss}))
"""


def run(cmd: list[str]) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-c", WRAPPER, str(TIMEOUT), *cmd], capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def tools(peers: Path) -> dict[str, list[str]]:
    found = {"tensorfile": [str(ROOT / ".venv" / "bin" / "tensorfile"), "scan", "--jobs", "1"]}
    if (peers / "picklescan").exists():
        found["picklescan"] = [str(peers / "picklescan"), "-p"]
    if (peers / "modelaudit").exists():
        found["modelaudit"] = [str(peers / "modelaudit"), "scan", "--no-cache", "--format", "json"]
    return found


def detection(commands: dict[str, list[str]]) -> None:
    manifest = json.loads((CORPUS / "manifest.json").read_text())
    rows = []
    for name, cmd in commands.items():
        tally = {"malicious": [0, 0], "benign": [0, 0]}  # [flagged, total]
        errors = 0
        missed: list[str] = []
        false_pos: list[str] = []
        for entry in manifest:
            result = run([*cmd, str(CORPUS / entry["path"])])
            flagged = result["code"] == 1
            if result["code"] not in (0, 1):
                errors += 1
            tally[entry["label"]][0] += flagged
            tally[entry["label"]][1] += 1
            if entry["label"] == "malicious" and not flagged:
                missed.append(entry["path"].split("/")[-1])
            if entry["label"] == "benign" and flagged:
                false_pos.append(entry["path"].split("/")[-1])
        mal, ben = tally["malicious"], tally["benign"]
        rows.append(
            f"| {name} | {mal[0]}/{mal[1]} ({100 * mal[0] / mal[1]:.1f} %) | "
            f"{ben[0]}/{ben[1]} ({100 * ben[0] / ben[1]:.1f} %) | {errors} |"
        )
        print(f"{name}: missed {missed[:12]}{' …' if len(missed) > 12 else ''}; false positives {false_pos}")
    print("\n| tool | malicious flagged | benign flagged | errors (exit 2 / crash) |")
    print("|---|---:|---:|---:|")
    print("\n".join(rows))


def make_big_files(folder: Path, gib: float) -> dict[str, Path]:
    import pickle

    import numpy as np

    size = int(gib * (1 << 30))
    files = {}
    torch_path = folder / "big_torch.pt"
    raw_path = folder / "big_raw.pkl"
    arrays = {f"layer{i}.weight": np.ones(size // 8 // 4, dtype=np.float32) for i in range(8)}
    with raw_path.open("wb") as f:
        pickle.dump(arrays, f, protocol=4)
    files["raw pickle"] = raw_path
    try:
        import torch

        torch.save({k: torch.from_numpy(v) for k, v in arrays.items()}, torch_path)
        files["torch zip"] = torch_path
    except ImportError:
        print("torch missing: torch zip skipped")
    return files


def speed(commands: dict[str, list[str]], runs: int, gib: float) -> None:
    with tempfile.TemporaryDirectory(dir=ROOT) as tmp:
        files = make_big_files(Path(tmp), gib)
        print(f"\nMachine: {machine_line()}; median of {runs} runs, each a fresh process.\n")
        print("| file | size | tool | wall | peak RSS | exit |")
        print("|---|---:|---|---:|---:|---:|")
        for label, path in files.items():
            size = os.path.getsize(path) / (1 << 30)
            for name, cmd in commands.items():
                results = [run([*cmd, str(path)]) for _ in range(runs)]
                wall = statistics.median(float(r["wall"]) for r in results)
                rss = statistics.median(float(r["rss_mb"]) for r in results)
                code = results[0]["code"]
                print(f"| {label} | {size:.2f} GiB | {name} | {wall:.2f} s | {rss:.0f} MB | {code} |")


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--peers", type=Path, default=ROOT / ".bench-venv" / "bin")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--gib", type=float, default=1.0)
    parser.add_argument("--skip-speed", action="store_true")
    parser.add_argument("--skip-detection", action="store_true")
    args = parser.parse_args()
    use_bytecode()
    commands = tools(args.peers)
    started = time.perf_counter()
    if not args.skip_detection:
        if CORPUS.is_dir():
            detection(commands)
        else:
            print(f"{CORPUS} is absent: detection skipped")
    if not args.skip_speed:
        speed(commands, args.runs, args.gib)
    print(f"\n(bench took {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
