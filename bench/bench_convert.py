"""`tensorfile convert` beside `cp` and the torch ways of making safetensors: time and peak memory.

One ~2 GiB Llama-shaped fp32 checkpoint (165 tensors, written once by torch.save and cached in
--workdir with a safetensors copy of it), and, side by side in one run:
  cp / cp + fsync       the copy baseline (tensorfile fsyncs what it writes, cp does not)
  tensorfile convert    .pt -> .safetensors, .pt -> bf16, one file -> 500 MB shards -> one file
  torch                 torch.load(mmap=True, weights_only=True) [+ .to(bfloat16)] + save_file
  HF convert.py         safetensors' bindings/python/convert.py `convert_file`, checks included
Every row is a fresh process; one warm-up round first, then the median wall time of --runs
rounds. Before each run, outside the timing: the output is removed, dirty pages are synced, and
the run's inputs are read through once so that they are in page cache (warm numbers, as in the
issue's reference; some VMs evict idle page cache within seconds, so a round's earlier reads are
not enough). A watcher thread reads /proc/PID/status every 5 ms: peak RSS (VmHWM) and peak
anonymous RSS (RssAnon). Mapped file pages count in RSS but are page cache; RssAnon is the memory
the process really took.

The tensorfile rows run with torch made unimportable (a sitecustomize meta-path hook that raises
ImportError and logs the attempt); at the end the outputs are compared tensor by tensor, byte
for byte, with the torch ones. Needs the test environment (torch, safetensors).

    .venv/bin/python bench/bench_convert.py [--runs 3] [--workdir DIR] [--keep] [--profile]
"""

from __future__ import annotations

import argparse
import importlib.metadata
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from bench_identify import machine_line, total_ram_gib, use_bytecode  # noqa: E402
from bench_inspect import llama_layer  # noqa: E402

GIB = 1 << 30
VOCAB = 32000

BUILD = r"""
import json, sys, time
import torch
from safetensors.torch import save_file
pt, st, spec = sys.argv[1], sys.argv[2], json.loads(sys.argv[3])
torch.manual_seed(0)
sd = {}
for name, shape in spec:
    t = torch.empty(shape, dtype=torch.float32)
    sd[name] = t.normal_(0.0, 0.02) if len(shape) > 1 else t.fill_(1.0).add_(torch.randn(shape) * 0.01)
torch.save(sd, pt)
save_file(sd, st, metadata={"format": "pt"})
"""

# torch.load(mmap=True) then save_file, optionally cast to bf16 on the way.
TORCH_SAVE = r"""
import json, sys, time
import torch
from safetensors.torch import save_file
src, dst, dtype = sys.argv[1:4]
start = time.perf_counter()
sd = torch.load(src, mmap=True, weights_only=True)
if dtype == "bf16":
    sd = {k: v.to(torch.bfloat16) for k, v in sd.items()}
save_file(sd, dst, metadata={"format": "pt"})
print(json.dumps({"seconds": time.perf_counter() - start}))
"""

# safetensors' bindings/python/convert.py `convert_file`, as the HF conversion Space runs it:
# full load, de-duplication of shared names, contiguous copies, save, size check, reload and compare.
HF_CONVERT = r"""
import json, os, sys, time
from collections import defaultdict
import torch
from safetensors.torch import _find_shared_tensors, _is_complete, load_file, save_file


def _remove_duplicate_names(state_dict, *, preferred_names=None, discard_names=None):
    preferred_names = set(preferred_names or [])
    discard_names = set(discard_names or [])
    shareds = _find_shared_tensors(state_dict)
    to_remove = defaultdict(list)
    for shared in shareds:
        complete_names = set([name for name in shared if _is_complete(state_dict[name])])
        if not complete_names:
            if len(shared) == 1:
                name = list(shared)[0]
                state_dict[name] = state_dict[name].clone()
                complete_names = {name}
            else:
                raise RuntimeError(f"no suitable name to keep amongst {shared}")
        keep_name = sorted(list(complete_names))[0]
        preferred = complete_names.difference(discard_names)
        if preferred:
            keep_name = sorted(list(preferred))[0]
        if preferred_names:
            preferred = preferred_names.intersection(complete_names)
            if preferred:
                keep_name = sorted(list(preferred))[0]
        for name in sorted(shared):
            if name != keep_name:
                to_remove[keep_name].append(name)
    return to_remove


def check_file_size(sf_filename, pt_filename):
    sf_size = os.stat(sf_filename).st_size
    pt_size = os.stat(pt_filename).st_size
    if (sf_size - pt_size) / pt_size > 0.01:
        raise RuntimeError(f"The file size different is more than 1%: {sf_size} vs {pt_size}")


def convert_file(pt_filename, sf_filename, discard_names):
    loaded = torch.load(pt_filename, map_location="cpu", weights_only=True)
    if "state_dict" in loaded:
        loaded = loaded["state_dict"]
    to_removes = _remove_duplicate_names(loaded, discard_names=discard_names)
    metadata = {"format": "pt"}
    for kept_name, to_remove_group in to_removes.items():
        for to_remove in to_remove_group:
            if to_remove not in metadata:
                metadata[to_remove] = kept_name
            del loaded[to_remove]
    loaded = {k: v.contiguous() for k, v in loaded.items()}
    dirname = os.path.dirname(sf_filename)
    os.makedirs(dirname, exist_ok=True)
    save_file(loaded, sf_filename, metadata=metadata)
    check_file_size(sf_filename, pt_filename)
    reloaded = load_file(sf_filename)
    for k in loaded:
        if not torch.equal(loaded[k], reloaded[k]):
            raise RuntimeError(f"The output tensors do not match for key {k}")


start = time.perf_counter()
convert_file(sys.argv[1], sys.argv[2], [])
print(json.dumps({"seconds": time.perf_counter() - start}))
"""

# Put on PYTHONPATH: `import torch` (or any torch.*) raises, and each attempt is logged.
NO_TORCH = r"""
import os, sys


class _NoTorch:
    def find_spec(self, name, path=None, target=None):
        if name == "torch" or name.startswith("torch."):
            log = os.environ.get("BENCH_TORCH_LOG")
            if log:
                with open(log, "a") as fh:
                    fh.write(name + "\n")
            raise ImportError(f"torch is blocked by bench_convert ({name})")
        return None


sys.meta_path.insert(0, _NoTorch())
"""

VERIFY = r"""
import json, sys
from pathlib import Path
import torch
from safetensors import safe_open


def handles(path):
    p = Path(path)
    found = {}
    for f in sorted(p.glob("*.safetensors")) if p.is_dir() else [p]:
        h = safe_open(str(f), framework="pt")
        for k in h.keys():
            found[k] = h
    return found


results = []
for a, b in json.loads(sys.argv[1]):
    ha, hb = handles(a), handles(b)
    problems = []
    if set(ha) != set(hb):
        problems.append(f"names differ: {sorted(set(ha) ^ set(hb))[:5]}")
    same = sorted(set(ha) & set(hb))
    for k in same:
        sa, sb = ha[k].get_slice(k), hb[k].get_slice(k)
        if (sa.get_dtype(), sa.get_shape()) != (sb.get_dtype(), sb.get_shape()):
            problems.append(f"{k}: {sa.get_dtype()}{sa.get_shape()} vs {sb.get_dtype()}{sb.get_shape()}")
            continue
        x, y = ha[k].get_tensor(k), hb[k].get_tensor(k)
        if not torch.equal(x.reshape(-1).view(torch.uint8), y.reshape(-1).view(torch.uint8)):
            problems.append(f"{k}: bytes differ")
    dtypes = sorted({ha[k].get_slice(k).get_dtype() for k in same})
    results.append({"a": a, "b": b, "tensors": len(same), "dtypes": dtypes, "problems": problems[:10]})
print(json.dumps(results))
"""

# cProfile of convert() in-process (torch still blocked), top functions by own and cumulative time.
PROFILE = r"""
import cProfile, pstats, sys, time
from tensorfile.convert.run import convert
src, dst, dtype = sys.argv[1], sys.argv[2], sys.argv[3] or None
prof = cProfile.Profile()
start = time.perf_counter()
prof.runcall(convert, src, dst, dtype=dtype, force=True)
print(f"convert({src!r} -> {dst!r}, dtype={dtype}): {time.perf_counter() - start:.2f} s")
stats = pstats.Stats(prof)
stats.sort_stats("tottime").print_stats(12)
stats.sort_stats("cumulative").print_stats(25)
"""


def llama_shapes(target_bytes: int, layers: int) -> list[tuple[str, tuple[int, ...]]]:
    """Llama-like fp32 names and shapes: `layers` blocks, hidden size picked to total ~target."""

    def build(hidden: int) -> list[tuple[str, tuple[int, ...]]]:
        inter = -(-hidden * 8 // 3 // 256) * 256
        shapes: list[tuple[str, tuple[int, ...]]] = [("model.embed_tokens.weight", (VOCAB, hidden))]
        for i in range(layers):
            shapes += llama_layer(i, hidden, inter)
        return [*shapes, ("model.norm.weight", (hidden,)), ("lm_head.weight", (VOCAB, hidden))]

    def size(shapes: list[tuple[str, tuple[int, ...]]]) -> int:
        total = 0
        for _, shape in shapes:
            n = 4
            for d in shape:
                n *= d
            total += n
        return total

    hidden = min(range(128, 8193, 128), key=lambda h: abs(size(build(h)) - target_bytes))
    return build(hidden)


@dataclass
class Sample:
    wall: float
    peak_rss_mb: float
    peak_anon_mb: float
    inner: float | None  # the operation after imports, as the process itself timed it
    report: dict[str, object] = field(default_factory=dict)


def measure(cmd: list[str], env: dict[str, str] | None = None) -> Sample:
    """Run `cmd`, sampling /proc/PID/status every 5 ms; raises with its stderr if it fails."""
    peak = {"VmHWM": 0, "VmRSS": 0, "RssAnon": 0}
    done = threading.Event()
    with tempfile.TemporaryFile() as out, tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, env=env)
        status = Path(f"/proc/{proc.pid}/status")

        def watch() -> None:
            while not done.is_set():
                try:
                    text = status.read_text()
                except OSError:
                    return
                for line in text.splitlines():
                    key, _, rest = line.partition(":")
                    if key in peak:
                        peak[key] = max(peak[key], int(rest.split()[0]))
                done.wait(0.005)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        code = proc.wait()
        wall = time.perf_counter() - start
        done.set()
        watcher.join()
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    if code != 0:
        raise RuntimeError(f"{' '.join(cmd)} exited {code}:\n{stderr[-3000:]}")
    report: dict[str, object] = {}
    inner = None
    if stdout.strip().startswith("{"):
        report = json.loads(stdout)
        inner = float(report["seconds"])  # type: ignore[arg-type]
    rss = max(peak["VmHWM"], peak["VmRSS"]) / 1024
    return Sample(wall, rss, peak["RssAnon"] / 1024, inner, report)


def fsync_path(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def warm(paths: list[Path]) -> None:
    """Read every file (or every file of a folder) once, so that its pages are in page cache."""
    buf = bytearray(16 << 20)
    for path in paths:
        for f in sorted(path.iterdir()) if path.is_dir() else [path]:
            with f.open("rb", buffering=0) as fh:
                while fh.readinto(buf):
                    pass


def remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()


@dataclass
class Case:
    key: str
    label: str
    cmd: list[str]
    output: Path
    inputs: list[Path]
    tensorfile: bool = False
    fsync_after: bool = False  # cp + fsync: the copy, then fsync of the copy (timed)
    samples: list[Sample] = field(default_factory=list)

    def run(self, env: dict[str, str]) -> Sample:
        remove(self.output)
        os.sync()  # no dirty pages of an earlier run left to write back inside this one
        warm(self.inputs)
        sample = measure(self.cmd, env if self.tensorfile else None)
        if self.fsync_after:
            start = time.perf_counter()
            fsync_path(self.output)
            sample.wall += time.perf_counter() - start
        return sample

    def median(self, attr: str) -> float:
        return statistics.median(getattr(s, attr) for s in self.samples)


def tensorfile_cmd() -> list[str]:
    script = Path(sys.executable).parent / "tensorfile"
    return [str(script)] if script.exists() else [sys.executable, "-m", "tensorfile"]


def build(work: Path, gib: float, layers: int, rebuild: bool) -> tuple[Path, Path, int]:
    shapes = llama_shapes(int(gib * GIB), layers)
    pt, st, stamp = work / "model.pt", work / "model.safetensors", work / "model.json"
    spec = json.dumps(shapes)
    if rebuild or not (pt.exists() and st.exists() and stamp.exists() and stamp.read_text() == spec):
        print(f"building {pt} and {st} ({len(shapes)} tensors) ...", flush=True)
        start = time.perf_counter()
        for p in (pt, st, stamp):
            remove(p)
        subprocess.run([sys.executable, "-c", BUILD, str(pt), str(st), spec], check=True)
        stamp.write_text(spec)
        print(f"built in {time.perf_counter() - start:.0f} s", flush=True)
    else:
        print(f"using cached {pt} and {st}", flush=True)
    return pt, st, len(shapes)


def no_torch_env(work: Path) -> tuple[dict[str, str], Path]:
    hook = work / "no_torch"
    hook.mkdir(exist_ok=True)
    (hook / "sitecustomize.py").write_text(NO_TORCH)
    log = work / "torch_imports.log"
    remove(log)
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(hook), env.get("PYTHONPATH", "")) if p)
    env["BENCH_TORCH_LOG"] = str(log)
    probe = subprocess.run([sys.executable, "-c", "import torch"], env=env, capture_output=True, text=True)
    if probe.returncode == 0 or "blocked by bench_convert" not in probe.stderr:
        raise SystemExit(f"the torch blocker does not work:\n{probe.stderr}")
    remove(log)  # the probe's own attempt
    return env, log


def file_system(path: Path) -> str:
    best, kind = "", "?"
    target = str(path.resolve())
    for line in Path("/proc/mounts").read_text().splitlines():
        device, mount, fstype = line.split()[:3]
        if (target == mount or target.startswith(mount.rstrip("/") + "/")) and len(mount) > len(best):
            best, kind = mount, f"{fstype} ({device})"
    return kind


def full_machine_line(work: Path) -> str:
    versions = ", ".join(
        f"{name} {importlib.metadata.version(name)}" for name in ("torch", "safetensors", "numpy")
    )
    return f"{machine_line()}, {total_ram_gib():.0f} GiB RAM, {versions}, work dir on {file_system(work)}"


def fmt_mb(mb: float) -> str:
    return f"{mb:.0f} MB" if mb < 10_000 else f"{mb / 1024:.1f} GB"


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--gib", type=float, default=2.0, help="checkpoint size (default ~2 GiB)")
    parser.add_argument("--layers", type=int, default=18, help="18 layers: 165 tensors")
    parser.add_argument(
        "--workdir", type=Path, default=Path(tempfile.gettempdir()) / "tensorfile-bench-convert"
    )
    parser.add_argument("--keep", action="store_true", help="keep the checkpoint and the outputs")
    parser.add_argument("--rebuild", action="store_true", help="write the checkpoint anew")
    parser.add_argument("--profile", action="store_true", help="also cProfile convert() in-process")
    parser.add_argument("--shard-size", default="500MB")
    args = parser.parse_args()
    use_bytecode()
    started = time.perf_counter()
    work = args.workdir.resolve()
    work.mkdir(parents=True, exist_ok=True)
    pt, st, count = build(work, args.gib, args.layers, args.rebuild)
    out = work / "out"
    out.mkdir(exist_ok=True)
    env, torch_log = no_torch_env(work)
    tf = tensorfile_cmd()
    py = sys.executable

    def tf_case(key: str, label: str, src: Path, dst: Path, *extra: str) -> Case:
        cmd = [*tf, "convert", str(src), str(dst), *extra, "--force", "--json"]
        return Case(key, label, cmd, dst, [src], tensorfile=True)

    shards = out / "tf-shards"
    cases = [
        Case("cp", "`cp model.pt`", ["cp", str(pt), str(out / "cp.pt")], out / "cp.pt", [pt]),
        Case(
            "cp+fsync",
            "`cp model.pt` + fsync of the copy",
            ["cp", str(pt), str(out / "cp-sync.pt")],
            out / "cp-sync.pt",
            [pt],
            fsync_after=True,
        ),
        tf_case("tf", "tensorfile convert .pt → .safetensors", pt, out / "tf.safetensors"),
        Case(
            "torch",
            "torch.load(mmap) + save_file",
            [py, "-c", TORCH_SAVE, str(pt), str(out / "torch.safetensors"), "none"],
            out / "torch.safetensors",
            [pt],
        ),
        Case(
            "hf",
            "HF convert.py `convert_file` (load, save, reload + compare)",
            [py, "-c", HF_CONVERT, str(pt), str(out / "hf.safetensors")],
            out / "hf.safetensors",
            [pt],
        ),
        tf_case(
            "tf-bf16", "tensorfile convert .pt → bf16", pt, out / "tf-bf16.safetensors", "--dtype", "bf16"
        ),
        Case(
            "torch-bf16",
            "torch.load(mmap) + .to(bfloat16) + save_file",
            [py, "-c", TORCH_SAVE, str(pt), str(out / "torch-bf16.safetensors"), "bf16"],
            out / "torch-bf16.safetensors",
            [pt],
        ),
        tf_case(
            "shard",
            f"tensorfile convert .safetensors → {args.shard_size} shards",
            st,
            shards,
            "--max-shard-size",
            args.shard_size,
        ),
        tf_case(
            "merge", "tensorfile convert shards → one .safetensors", shards, out / "tf-merged.safetensors"
        ),
    ]
    by_key = {c.key: c for c in cases}

    print(f"warm-up round, then {args.runs} measured rounds of {len(cases)} rows ...", flush=True)
    for round_no in range(args.runs + 1):
        for case in cases:
            sample = case.run(env)
            if round_no:
                case.samples.append(sample)
            tag = "warm-up" if round_no == 0 else f"run {round_no}"
            print(
                f"  {tag:8} {case.key:10} {sample.wall:6.2f} s  rss {sample.peak_rss_mb:6.0f} MB  "
                f"anon {sample.peak_anon_mb:6.0f} MB",
                flush=True,
            )

    attempts = torch_log.read_text().split() if torch_log.exists() else []
    verify_pairs = [
        (by_key["tf"].output, by_key["torch"].output),
        (by_key["tf"].output, by_key["hf"].output),
        (by_key["tf"].output, st),
        (by_key["tf-bf16"].output, by_key["torch-bf16"].output),
        (st, shards),
        (st, by_key["merge"].output),
    ]
    check = subprocess.run(
        [py, "-c", VERIFY, json.dumps([[str(a), str(b)] for a, b in verify_pairs])],
        capture_output=True,
        text=True,
        check=True,
    )
    verified = json.loads(check.stdout)
    shard_files: list[dict[str, object]] = by_key["shard"].samples[-1].report.get("files", [])  # type: ignore[assignment]

    if args.profile:
        for src, dst, dtype in (
            (pt, out / "prof.safetensors", ""),
            (pt, out / "prof-bf16.safetensors", "bf16"),
            (shards, out / "prof-merged.safetensors", ""),
        ):
            remove(dst)
            os.sync()
            warm([src])
            print(f"\n--- cProfile: {src.name} -> {dst.name} {dtype}", flush=True)
            prof = subprocess.run([py, "-c", PROFILE, str(src), str(dst), dtype], env=env, text=True)
            if prof.returncode:
                raise SystemExit("profile run failed")
            remove(dst)

    cp, cps = by_key["cp"].median("wall"), by_key["cp+fsync"].median("wall")
    size = pt.stat().st_size
    print(
        f"\nMachine: {full_machine_line(work)}; checkpoint {size / GIB:.2f} GiB fp32, {count} tensors; "
        f"warm page cache, median of {args.runs} runs after one warm-up, each a fresh process.\n"
    )
    print(
        "| operation | wall (median) | best | × cp | × cp+fsync | after imports | peak RSS | peak anon RSS "
        "| fsyncs output | torch importable |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|---:|---|---|")
    for c in cases:
        inner = [s.inner for s in c.samples if s.inner is not None]
        cells = [
            c.label,
            f"{c.median('wall'):.2f} s",
            f"{min(s.wall for s in c.samples):.2f} s",
            f"{c.median('wall') / cp:.2f}×",
            f"{c.median('wall') / cps:.2f}×",
            f"{statistics.median(inner):.2f} s" if inner else "-",
            fmt_mb(c.median("peak_rss_mb")),
            fmt_mb(c.median("peak_anon_mb")),
            "yes" if c.tensorfile or c.fsync_after else "no",
            "no (blocked)" if c.tensorfile else "yes",
        ]
        print("| " + " | ".join(cells) + " |")

    def verdict(key: str, bound: float) -> str:
        wall = by_key[key].median("wall")
        a, b = wall / cp, wall / cps
        return (
            f"{key}: {a:.2f}× cp {'PASS' if a <= bound else 'FAIL'}, "
            f"{b:.2f}× cp+fsync {'PASS' if b <= bound else 'FAIL'}"
        )

    print("\nGoals (against plain cp, and against cp + fsync since tensorfile fsyncs its output):")
    print(f"- pickle → safetensors within 1.5× of cp: {verdict('tf', 1.5)}")
    worst = max((c for c in cases if c.tensorfile), key=lambda c: max(s.peak_anon_mb for s in c.samples))
    worst_anon = max(s.peak_anon_mb for s in worst.samples)
    print(
        f"- peak anonymous RSS ≤ 300 MB (every tensorfile run): worst {worst_anon:.0f} MB ({worst.key}) "
        f"{'PASS' if worst_anon <= 300 else 'FAIL'}"
    )
    print(f"- shard within 1.5× of cp: {verdict('shard', 1.5)}")
    print(f"- merge within 1.5× of cp: {verdict('merge', 1.5)}")
    print(f"- bf16 cast within 2× of cp: {verdict('tf-bf16', 2.0)}")
    print(
        f"\nWithout torch: every tensorfile run had torch blocked; import attempts logged: {len(attempts)}"
        + (f" ({sorted(set(attempts))})" if attempts else "")
    )
    print(f"Shards written: {len(shard_files)} files ({', '.join(str(f['path']) for f in shard_files)})")
    print("Outputs compared (names, dtypes, shapes, every tensor's bytes):")
    for v in verified:
        state = "identical" if not v["problems"] else f"DIFFER: {v['problems']}"
        print(f"- {Path(v['a']).name} vs {Path(v['b']).name}: {v['tensors']} tensors {v['dtypes']}, {state}")
    if not args.keep:
        shutil.rmtree(out, ignore_errors=True)
        for p in (pt, st, work / "model.json", torch_log):
            remove(p)
        shutil.rmtree(work / "no_torch", ignore_errors=True)
        with_content = any(work.iterdir())
        if not with_content:
            work.rmdir()
    print(f"\n(bench took {time.perf_counter() - started:.0f} s)")
    if attempts or any(v["problems"] for v in verified):
        raise SystemExit(1)


if __name__ == "__main__":
    main()
