"""GGUF out beside llama.cpp: HF folder → GGUF in one step, and GGUF → GGUF per quant type.

A Llama-shaped bf16 Hugging Face folder (TinyLlama's widths: hidden 2048, MLP 5632, 32 heads,
4 KV heads, vocab 32000; --layers of them, ~2 GB as F32 at the default 8) is written once into
--workdir with numpy + safetensors and the SentencePiece tokenizer of the test fixtures. Then,
side by side in one run, every row a fresh process, median of --runs after one warm-up:

  two-step  llama.cpp's convert_hf_to_gguf.py --outtype auto, then llama-quantize … Q4_K_M
  one-step  tensorfile convert FOLDER out.gguf --quant Q4_K_M
  per type  llama-quantize f32.gguf out.gguf TYPE  vs  tensorfile convert f32.gguf out.gguf --quant TYPE
            (f32.gguf: the converter's --outtype f32 file, which tensorfile writes byte for byte)

llama-quantize runs with its default threads (all cores), tensorfile with its defaults: the
compiled kernel's threads in one process (all cores), or without the kernel one numpy worker
process per core. Peak anonymous memory is sampled from /proc every 5 ms over the whole process tree
(tensorfile's quantizing workers included). Every tensorfile output is checked sha256-equal to
llama.cpp's. Input pages are read through before each run (warm numbers). Needs the referee of
bench/llamacpp.py.

    .venv/bin/python bench/bench_gguf.py [--runs 3] [--layers 8] [--types Q8_0,Q4_K_M] [--workdir DIR]
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
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
sys.path[:0] = [str(ROOT), str(ROOT / "bench")]
from bench_convert import warm  # noqa: E402
from bench_identify import machine_line, total_ram_gib  # noqa: E402
from llamacpp import VERSION, paths  # noqa: E402

sys.path.insert(0, str(ROOT / "tests"))
from gguf_models import llama_config  # noqa: E402

TOKENIZER = ROOT / "tests" / "fixtures" / "gguf_tokenizers" / "llama-spm"
TYPES = ("Q8_0", "Q4_0", "Q5_0", "Q2_K", "Q3_K_M", "Q4_K_M", "Q5_K_M", "Q6_K")
HIDDEN, FF, HEADS, KV_HEADS, VOCAB = 2048, 5632, 32, 4, 32000


def config(layers: int) -> dict[str, object]:
    return llama_config(HIDDEN, FF, HEADS, KV_HEADS, layers, vocab_size=VOCAB)


def build_model(folder: Path, layers: int) -> None:
    """config.json, the tokenizer, and bf16 weights shard by shard (one layer's arrays at a time)."""
    import ml_dtypes
    import numpy as np
    from safetensors.numpy import save_file

    stamp = folder / "bench.json"
    spec = json.dumps(config(layers), sort_keys=True)
    if stamp.exists() and stamp.read_text() == spec:
        return
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    kv = HIDDEN // HEADS * KV_HEADS

    def mat(rows: int, cols: int) -> np.ndarray:
        return (rng.standard_normal((rows, cols), dtype=np.float32) * 0.02).astype(ml_dtypes.bfloat16)

    def norm() -> np.ndarray:
        return (1.0 + rng.standard_normal(HIDDEN, dtype=np.float32) * 0.01).astype(ml_dtypes.bfloat16)

    shards: list[dict[str, np.ndarray]] = [{"model.embed_tokens.weight": mat(VOCAB, HIDDEN)}]
    for i in range(layers):
        p = f"model.layers.{i}."
        shards.append(
            {
                p + "input_layernorm.weight": norm(),
                p + "post_attention_layernorm.weight": norm(),
                p + "self_attn.q_proj.weight": mat(HIDDEN, HIDDEN),
                p + "self_attn.k_proj.weight": mat(kv, HIDDEN),
                p + "self_attn.v_proj.weight": mat(kv, HIDDEN),
                p + "self_attn.o_proj.weight": mat(HIDDEN, HIDDEN),
                p + "mlp.gate_proj.weight": mat(FF, HIDDEN),
                p + "mlp.up_proj.weight": mat(FF, HIDDEN),
                p + "mlp.down_proj.weight": mat(HIDDEN, FF),
            }
        )
    shards.append({"model.norm.weight": norm(), "lm_head.weight": mat(VOCAB, HIDDEN)})
    weight_map: dict[str, str] = {}
    for n, tensors in enumerate(shards, 1):
        name = f"model-{n:05d}-of-{len(shards):05d}.safetensors"
        save_file(tensors, str(folder / name), metadata={"format": "pt"})
        weight_map.update(dict.fromkeys(tensors, name))
    index = {"metadata": {}, "weight_map": weight_map}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index, indent=2))
    (folder / "config.json").write_text(json.dumps(config(layers), indent=2))
    for item in TOKENIZER.iterdir():
        shutil.copy2(item, folder / item.name)
    stamp.write_text(spec)


@dataclass
class Sample:
    wall: float
    peak_anon_mb: float


def _tree(pid: int) -> list[int]:
    """pid and all its descendants (from /proc/PID/task/*/children)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        with contextlib.suppress(OSError):  # the process may end while it is being read
            for task in Path(f"/proc/{p}/task").glob("*/children"):
                todo += [int(c) for c in task.read_text().split()]
    return out


def _anon_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("RssAnon:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def measure(cmds: list[list[str]], env: dict[str, str] | None = None) -> Sample:
    """Run the commands one after another; wall time of all, peak anonymous RSS of any one tree."""
    peak = 0
    start = time.perf_counter()
    for cmd in cmds:
        done = threading.Event()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)

        def watch(pid: int = proc.pid, done: threading.Event = done) -> None:
            nonlocal peak
            while not done.is_set():
                peak = max(peak, sum(_anon_kb(p) for p in _tree(pid)))
                done.wait(0.005)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        _, stderr = proc.communicate()
        done.set()
        watcher.join()
        if proc.returncode != 0:
            raise RuntimeError(f"{' '.join(cmd)} exited {proc.returncode}:\n{stderr.decode()[-3000:]}")
    return Sample(time.perf_counter() - start, peak / 1024)


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 24):
            h.update(chunk)
    return h.hexdigest()


@dataclass
class Row:
    label: str
    cmds: list[list[str]]
    output: Path
    inputs: list[Path]
    env: dict[str, str] | None = None
    samples: list[Sample] = field(default_factory=list)

    def run(self) -> None:
        self.output.unlink(missing_ok=True)
        os.sync()
        warm(self.inputs)
        self.samples.append(measure(self.cmds, self.env))

    @property
    def wall(self) -> float:
        return statistics.median(s.wall for s in self.samples)

    @property
    def anon(self) -> float:
        return max(s.peak_anon_mb for s in self.samples)


def tensorfile_cmd() -> list[str]:
    script = Path(sys.executable).parent / "tensorfile"
    return [str(script)] if script.exists() else [sys.executable, "-m", "tensorfile"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--layers", type=int, default=8)
    ap.add_argument("--types", default=",".join(TYPES))
    ap.add_argument("--workdir", type=Path, default=Path(tempfile.gettempdir()) / "tensorfile-bench-gguf")
    ap.add_argument("--json", type=Path, default=ROOT / "bench" / "results" / "gguf.json")
    args = ap.parse_args()
    p = paths()
    if not (p.built() and p.converter_ready()):
        raise SystemExit("llama.cpp referee missing: run bench/llamacpp.py first")
    work = args.workdir
    work.mkdir(parents=True, exist_ok=True)
    folder = work / "tinyllama-bench"
    print("building the model folder (cached) ...", flush=True)
    build_model(folder, args.layers)
    f32 = work / "f32.gguf"
    if not f32.exists() or f32.stat().st_mtime < (folder / "bench.json").stat().st_mtime:
        make_f32 = [*tensorfile_cmd(), "convert", str(folder), str(f32), "--quant", "F32", "--force"]
        subprocess.run(make_f32, check=True)
    input_bytes = f32.stat().st_size
    auto = work / "auto-llamacpp.gguf"
    converter = [str(p.convert_python), str(p.converter), str(folder), "--outfile", str(auto)]
    converter += ["--outtype", "auto"]
    tf = tensorfile_cmd()
    rows: list[tuple[Row, Row]] = [
        (
            Row(
                "HF folder → Q4_K_M",
                [converter, [str(p.quantize), str(auto), str(work / "ref-one.gguf"), "Q4_K_M"]],
                work / "ref-one.gguf",
                [folder],
                p.converter_env(),
            ),
            Row(
                "HF folder → Q4_K_M",
                [[*tf, "convert", str(folder), str(work / "ours-one.gguf"), "--quant", "Q4_K_M"]],
                work / "ours-one.gguf",
                [folder],
            ),
        )
    ]
    for quant in args.types.split(","):
        ref, ours = work / f"ref-{quant}.gguf", work / f"ours-{quant}.gguf"
        label = f"F32 GGUF → {quant}"
        ref_cmd = [str(p.quantize), str(f32), str(ref), quant]
        ours_cmd = [*tf, "convert", str(f32), str(ours), "--quant", quant]
        rows.append((Row(label, [ref_cmd], ref, [f32], p.env()), Row(label, [ours_cmd], ours, [f32])))
    for round_ in range(args.runs + 1):  # the first round is the warm-up
        for ref, ours in rows:
            for row in (ref, ours):
                row.run()
                if round_ == 0:
                    row.samples.clear()
        print(f"round {round_} done", flush=True)
    results = []
    for ref, ours in rows:
        same = sha256(ref.output) == sha256(ours.output)
        mb = input_bytes / 1e6
        results.append(
            {
                "operation": ref.label,
                "llama_cpp_s": round(ref.wall, 2),
                "tensorfile_s": round(ours.wall, 2),
                "speedup": round(ref.wall / ours.wall, 2),
                "llama_cpp_mb_s": round(mb / ref.wall),
                "tensorfile_mb_s": round(mb / ours.wall),
                "llama_cpp_peak_anon_mb": round(ref.anon),
                "tensorfile_peak_anon_mb": round(ours.anon),
                "sha256_equal": same,
            }
        )
    machine = f"{machine_line()}, {total_ram_gib():.0f} GiB RAM, llama.cpp from llama-cpp-python {VERSION}"
    doc = {
        "machine": machine,
        "input": f"{args.layers}-layer TinyLlama-width bf16 folder; F32 GGUF {input_bytes / 1e9:.2f} GB",
        "runs": args.runs,
        "rows": results,
    }
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(doc, indent=2) + "\n")
    print(machine)
    print(doc["input"])
    print("| operation | llama.cpp | tensorfile | × faster | MB/s of F32 (llama.cpp / ours) |", end="")
    print(" peak anon MB | same bytes |")
    print("|---|---:|---:|---:|---:|---:|---|")
    for r in results:
        print(
            f"| {r['operation']} | {r['llama_cpp_s']} s | {r['tensorfile_s']} s | {r['speedup']}× | "
            f"{r['llama_cpp_mb_s']} / {r['tensorfile_mb_s']} | "
            f"{r['llama_cpp_peak_anon_mb']} / {r['tensorfile_peak_anon_mb']} | "
            f"{'yes' if r['sha256_equal'] else 'NO'} |"
        )


if __name__ == "__main__":
    main()
