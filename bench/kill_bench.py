"""kill -9 at random points, longer than the tests: `tensorfile convert` and `tensorfile download`.

The inputs and checks are the tests' (tests/test_kill_convert.py, tests/test_kill_download.py,
tests/kill_points.py). Three experiments:

- convert points: per case (safetensors → shards, pickle → safetensors, safetensors → npz,
  HF → GGUF Q8_0) and per mode (O_TMPFILE, named parts), --points seeded kill points; after each,
  the destination is absent or the reference bytes, the input unchanged, and the temporary
  outputs left are counted; then the next run must succeed with the same bytes and leave none.
- convert repeated: --repeat kills in a row into the same destination, each mid-write, no run
  completing in between: the disk the temporaries hold after each kill (the issue's "repeated
  kills fill the disk"), then one run to the end. With --old-src (the src/ folder of a checkout
  from before this change, e.g. a `git worktree`) the same for the old code.
- download points: per layout (hf and ms hubs to --local-dir, hf to its cache), --points points
  in pairs (a run from nothing killed, a resuming run killed, then a run to the end), against the
  hub stand-in with the safetensors served at 64 KiB / 4 ms; the next run must fetch exactly the
  bytes the kills did not leave in staging.

    .venv/bin/python bench/kill_bench.py [--points 20] [--repeat 10] [--old-src DIR] [--only convert]
"""

from __future__ import annotations

import argparse
import json
import os
import random
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
from tests import kill_points as kp  # noqa: E402
from tests.hubserver import HubServer  # noqa: E402
from tests.test_kill_convert import CASES, child_env, convert_cmd, make_inputs, output_watch  # noqa: E402
from tests.test_kill_download import KILLS, Layout, _make_repo, _sources  # noqa: E402


def _remove(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)


def _reference(src: Path, ref: Path, args: list[str]) -> Path:
    """The output of an uninterrupted run (made once)."""
    if not ref.exists():
        ref.parent.mkdir(parents=True, exist_ok=True)
        subprocess.run(convert_cmd(src, ref, args), env=child_env(False), check=True, capture_output=True)
    return ref


def _this_run(folder: Path) -> Callable[[int], int]:
    """The output bytes of the run being watched: its unnamed inodes, and the temporary outputs
    in `folder` that earlier runs did not leave."""
    before = set(kp.temps(folder))

    def watch(pid: int) -> int:
        fresh = sum(size for name, size in kp.temps(folder).items() if name not in before)
        return fresh + kp.open_unnamed_bytes(pid, folder)

    return watch


def _phase(point: kp.KillPoint, total: int) -> str:
    if point.bytes == 0:
        return "start-up"
    return "end" if point.bytes >= total else "writing"


def convert_points(inputs: dict[str, Path], work: Path, n: int, seed: int) -> list[dict[str, Any]]:
    rows = []
    for case, (key, name, args, load) in CASES.items():
        src = inputs[key]
        source = kp.tree_digest(src)
        ref = _reference(src, work / case / "ref" / name, args)
        load(ref)
        want = kp.tree_digest(ref)
        total = kp.file_bytes(ref) if ref.is_dir() else ref.stat().st_size
        for named in (False, True):
            out = work / case / ("named" if named else "tmpfile")
            out.mkdir()
            dst = out / name
            tally: Counter[str] = Counter()
            left_max = 0
            for i, point in enumerate(kp.kill_points(f"{seed}-{case}-{named}", n, total)):
                if i % 3 == 0:  # a fresh destination, else a complete one --force replaces
                    _remove(dst)
                run = kp.run_and_kill(convert_cmd(src, dst, args), point, output_watch(out), child_env(named))
                tally["killed" if run.killed else "finished first"] += 1
                tally[f"killed in {_phase(point, total)}"] += run.killed
                bad = run.returncode not in (0, -9)
                if dst.exists():
                    same = kp.tree_digest(dst) == want
                    tally["destination complete" if same else "DESTINATION BAD"] += 1
                    if same:
                        load(dst)
                else:
                    tally["destination absent"] += 1
                tally["INPUT CHANGED"] += kp.tree_digest(src) != source
                left = kp.temps(out)
                tally["temp left by the kill"] += bool(left)
                left_max = max(left_max, sum(left.values()))
                again = subprocess.run(convert_cmd(src, dst, args), env=child_env(named), capture_output=True)
                ok = again.returncode == 0 and kp.tree_digest(dst) == want
                tally["next run ok" if ok and not bad else "NEXT RUN FAILED"] += 1
                tally["TEMP LEFT AFTER THE NEXT RUN"] += bool(kp.temps(out))
            rows.append(
                {
                    "case": case,
                    "mode": "named parts" if named else "O_TMPFILE",
                    "points": n,
                    "output_bytes": total,
                    "largest_temp_left_bytes": left_max,
                    **{k: v for k, v in sorted(tally.items()) if v},
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def convert_repeated(
    inputs: dict[str, Path], work: Path, n: int, seed: int, old_src: Path | None
) -> list[dict[str, Any]]:
    rows = []
    variants: list[tuple[str, dict[str, str]]] = [
        ("new, O_TMPFILE", child_env(False)),
        ("new, named", child_env(True)),
    ]
    if old_src is not None:
        old = {**child_env(True), "PYTHONPATH": str(old_src)}
        variants.append(("before (mkstemp)", old))
    for case, (key, name, args, _load) in CASES.items():
        src = inputs[key]
        ref = _reference(src, work / case / "ref" / name, args)
        total = kp.file_bytes(ref) if ref.is_dir() else ref.stat().st_size
        for label, env in variants:
            out = work / case / f"repeat-{label.replace(' ', '_').replace(',', '')}"
            out.mkdir()
            dst = out / name
            after = []
            rng = random.Random(f"{seed}-{case}-repeat")
            for _ in range(n):
                point = kp.KillPoint(rng.randint(1, total - 1), 0.0)  # mid-write, every time
                kp.run_and_kill(convert_cmd(src, dst, args), point, _this_run(out), env)
                after.append(sum(kp.temps(out).values()))
            final = subprocess.run(convert_cmd(src, dst, args), env=env, capture_output=True)
            rows.append(
                {
                    "case": case,
                    "code": label,
                    "kills": n,
                    "output_bytes": total,
                    "temp_bytes_after_each_kill": after,
                    "next_run_exit": final.returncode,
                    "temp_bytes_after_the_next_run": sum(kp.temps(out).values()),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def download_points(work: Path, n: int, seed: int) -> list[dict[str, Any]]:
    rows = []
    root = work / "hub"
    _make_repo(root)
    with HubServer(root) as hub:
        sources = _sources(hub)
        total = sum(map(len, sources.values()))
        for case in KILLS:
            base = {
                k: v for k, v in os.environ.items() if k not in ("HF_TOKEN", "HF_HUB_CACHE", "TENSORFILE_HUB")
            }
            env = {**base, **hub.env(cache_dir=work / case / "caches")}
            layout = Layout(case, work / case, env, hub)
            hub.clear_faults()
            hub.add_fault("slow", "*.safetensors", times=None, delay=0.004, per_chunk=True)
            tally: Counter[str] = Counter()
            kept = 0
            for i, point in enumerate(kp.kill_points(f"{seed}-{case}", n, total, startup=1.0)):
                if i % 2 == 0:
                    layout.wipe()
                else:
                    point = kp.KillPoint(point.bytes * layout.still_to_fetch(sources) // total, point.delay)
                run = kp.run_and_kill(layout.cmd(), point, layout.watch(), env)
                tally["killed" if run.killed else "finished first"] += 1
                bad = [p for p, data in layout.placed().items() if sources.get(p) != data]
                tally["INCOMPLETE FILE UNDER A REAL NAME"] += bool(bad)
                if i % 2 == 0 and i + 1 < n:
                    continue
                need = layout.still_to_fetch(sources)
                kept += total - need
                again = subprocess.run(layout.cmd(), env=env, capture_output=True, text=True)
                fetched = (
                    json.loads(again.stdout)["totals"]["fetched_bytes"] if again.returncode == 0 else None
                )
                ok = again.returncode == 0 and layout.placed() == sources
                tally["next run ok" if ok else "NEXT RUN FAILED"] += 1
                tally["next run fetched exactly the missing bytes"] += fetched == need
                tally["next run resumed (kept bytes)"] += need < total
                staged = layout.staging.exists() and any(layout.staging.rglob("*"))
                tally["STAGING LEFT AFTER THE NEXT RUN"] += staged
            rows.append(
                {
                    "case": case,
                    "points": n,
                    "repo_bytes": total,
                    "bytes_kept_for_the_next_runs": kept,
                    **dict(tally),
                }
            )
            print(json.dumps(rows[-1]), flush=True)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=20)
    parser.add_argument("--repeat", type=int, default=10)
    parser.add_argument("--seed", type=int, default=16)
    parser.add_argument("--old-src", type=Path, help="src/ of a checkout from before the change")
    parser.add_argument("--only", choices=["convert", "repeated", "download"])
    parser.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "kill.json")
    args = parser.parse_args()
    started = time.monotonic()
    results: dict[str, Any] = {"points": args.points, "repeat": args.repeat, "seed": args.seed}
    with tempfile.TemporaryDirectory(prefix="kill-bench-") as tmp:
        work = Path(tmp)
        if args.only != "download":
            inputs = make_inputs(work / "inputs")
        if args.only in (None, "convert"):
            results["convert_points"] = convert_points(inputs, work / "points", args.points, args.seed)
        if args.only in (None, "convert", "repeated"):
            results["convert_repeated"] = convert_repeated(
                inputs, work / "points", args.repeat, args.seed, args.old_src
            )
        if args.only in (None, "download"):
            results["download_points"] = download_points(work / "download", args.points, args.seed)
    results["seconds"] = round(time.monotonic() - started, 1)
    args.json.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{args.json} ({results['seconds']} s)")


if __name__ == "__main__":
    main()
