"""inspect beside each format's own reader on multi-GB files: time and peak memory.

Peers, each in a fresh process, measured the same way (median wall time of the operation after
imports, and the process's peak RSS):
  GGUF         gguf-py GGUFReader (tensor infos + metadata)
  safetensors  safetensors.safe_open, keys with dtype and shape
  PyTorch .bin torch.load(mmap=True, weights_only=True), names/dtypes/shapes
  ONNX         onnx.load(load_external_data=False), initializers
Big safetensors/GGUF files are sparse (real headers, holes for data); the torch and ONNX files
are real. Needs the test environment (`make test` installs the peers).

    .venv/bin/python bench/bench_inspect.py [--runs 5] [--gb 2]
"""

from __future__ import annotations

import argparse
import json
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "bench"))
from bench_identify import machine_line, use_bytecode  # noqa: E402

RUNNER = r"""
import json, sys, time
kind, path = sys.argv[1], sys.argv[2]
if kind == "tensorfile":
    from tensorfile.inspection import inspect
    def work():
        info = inspect(path)
        return info.tensor_count
elif kind == "gguf":
    from gguf import GGUFReader
    def work():
        r = GGUFReader(path)
        return len(r.tensors)
elif kind == "safetensors":
    from safetensors import safe_open
    def work():
        with safe_open(path, "np") as f:
            return len([(k, f.get_slice(k).get_dtype(), f.get_slice(k).get_shape()) for k in f.keys()])
elif kind == "torch":
    import torch
    def work():
        sd = torch.load(path, mmap=True, weights_only=True)
        return len([(k, v.dtype, tuple(v.shape)) for k, v in sd.items()])
elif kind == "python-floor":
    # Not a reader: the least any Python reader of a torch zip must do (the zip directory,
    # data.pkl through CPython's C unpickler with inert stand-ins, each storage's local header),
    # to show how close to torch.load the operation can get at all without native code.
    import io, os, pickle, struct, zipfile
    class Call:
        def __init__(self, args): self.args = args
    class Stand:
        def __init__(self, module, name): self.module, self.name = module, name
        def __call__(self, *args): return Call(args)
    class Reader(pickle.Unpickler):
        def find_class(self, module, name): return Stand(module, name)
        def persistent_load(self, pid): return pid
    def work():
        zf = zipfile.ZipFile(path)
        pkl = next(n for n in zf.namelist() if n.endswith("/data.pkl"))
        state = Reader(io.BytesIO(zf.read(pkl))).load()
        fd = os.open(path, os.O_RDONLY)
        offsets = []
        for info in zf.infolist():
            if "/data/" in info.filename:
                n, e = struct.unpack_from("<HH", os.pread(fd, 30, info.header_offset), 26)
                offsets.append(info.header_offset + 30 + n + e)
        os.close(fd)
        return len([(k, v.args[0][1], v.args[2]) for k, v in state.items()])
elif kind == "onnx":
    import onnx
    def work():
        m = onnx.load(path, load_external_data=False)
        return len(m.graph.initializer)
start = time.perf_counter()
n = work()
elapsed = time.perf_counter() - start
# VmHWM, not ru_maxrss: Linux carries ru_maxrss over exec from the (large) benchmark parent.
hwm = next(int(line.split()[1]) for line in open("/proc/self/status") if line.startswith("VmHWM"))
print(json.dumps({"seconds": elapsed, "tensors": n, "peak_rss_mb": hwm / 1024}))
"""


PEERS = {
    "safetensors": "safetensors.safe_open",
    "gguf": "gguf-py GGUFReader",
    "torch": "torch.load(mmap=True)",
    "onnx": "onnx.load(no external data)",
}


def llama_shapes(target_bytes: int, itemsize: int = 2) -> list[tuple[str, tuple[int, ...]]]:
    """Llama-like tensor names and shapes adding up to about `target_bytes`."""
    hidden, inter, vocab = 2048, 5632, 32000
    shapes: list[tuple[str, tuple[int, ...]]] = [("model.embed_tokens.weight", (vocab, hidden))]
    per_layer = (4 * hidden * hidden + 3 * hidden * inter + 2 * hidden) * itemsize
    layers = max(1, (target_bytes - 2 * vocab * hidden * itemsize) // per_layer)
    for i in range(layers):
        shapes += llama_layer(i, hidden, inter)
    shapes += [("model.norm.weight", (hidden,)), ("lm_head.weight", (vocab, hidden))]
    return shapes


def llama_layer(i: int, hidden: int, inter: int) -> list[tuple[str, tuple[int, ...]]]:
    """One decoder block's tensor names and shapes, as transformers names Llama's."""
    p = f"model.layers.{i}"
    return [
        *(
            (f"{p}.self_attn.{proj}.weight", (hidden, hidden))
            for proj in ("q_proj", "k_proj", "v_proj", "o_proj")
        ),
        (f"{p}.mlp.gate_proj.weight", (inter, hidden)),
        (f"{p}.mlp.up_proj.weight", (inter, hidden)),
        (f"{p}.mlp.down_proj.weight", (hidden, inter)),
        (f"{p}.input_layernorm.weight", (hidden,)),
        (f"{p}.post_attention_layernorm.weight", (hidden,)),
    ]


def numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def make_safetensors(path: Path, shapes: list[tuple[str, tuple[int, ...]]]) -> None:
    header, offset = {}, 0
    for name, shape in shapes:
        size = numel(shape) * 2
        header[name] = {"dtype": "F16", "shape": list(shape), "data_offsets": [offset, offset + size]}
        offset += size
    raw = json.dumps(header).encode()
    raw += b" " * (-len(raw) % 8)
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", len(raw)) + raw)
        fh.truncate(8 + len(raw) + offset)


def make_gguf(path: Path, shapes: list[tuple[str, tuple[int, ...]]]) -> None:
    import gguf
    import numpy as np

    w = gguf.GGUFWriter(str(path), "llama")
    w.add_block_count(sum(1 for n, _ in shapes if n.endswith("input_layernorm.weight")))
    w.add_token_list([f"<tok{i}>" for i in range(32000)])
    w.add_token_scores([0.0] * 32000)
    for name, shape in shapes:
        w.add_tensor_info(
            name, shape, np.dtype(np.float16), numel(shape) * 2, raw_dtype=gguf.GGMLQuantizationType.F16
        )
    w.write_header_to_file()
    w.write_kv_data_to_file()
    w.write_ti_data_to_file()
    data_start = w.fout[0].tell() if isinstance(w.fout, list) else w.fout.tell()
    total = sum(-(-numel(s) * 2 // 32) * 32 for _, s in shapes)
    w.close()
    with path.open("r+b") as fh:
        fh.truncate(-(-data_start // 32) * 32 + total)


def make_torch(path: Path, shapes: list[tuple[str, tuple[int, ...]]]) -> None:
    import torch

    torch.save({name: torch.empty(shape, dtype=torch.float16) for name, shape in shapes}, path)


def make_onnx(path: Path, shapes: list[tuple[str, tuple[int, ...]]]) -> None:
    import numpy as np
    import onnx
    from onnx import TensorProto, helper

    inits = [
        helper.make_tensor(n, TensorProto.FLOAT16, s, np.zeros(numel(s), np.float16).tobytes(), raw=True)
        for n, s in shapes
    ]
    graph = helper.make_graph(
        [],
        "big",
        [],
        [helper.make_tensor_value_info(shapes[0][0], TensorProto.FLOAT16, list(shapes[0][1]))],
        inits,
    )
    onnx.save_model(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]), path)


def measure(kind: str, path: Path, runs: int) -> dict[str, float]:
    samples = []
    for _ in range(runs):
        start = time.perf_counter()
        out = subprocess.run(
            [sys.executable, "-c", RUNNER, kind, str(path)], capture_output=True, text=True, check=True
        )
        samples.append({**json.loads(out.stdout), "wall": time.perf_counter() - start})
    return {
        "seconds": statistics.median(s["seconds"] for s in samples),
        "wall": statistics.median(s["wall"] for s in samples),
        "peak_rss_mb": statistics.median(s["peak_rss_mb"] for s in samples),
        "tensors": samples[0]["tensors"],
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--gb", type=float, default=2.0)
    args = parser.parse_args()
    use_bytecode()
    target = int(args.gb * (1 << 30))
    shapes = llama_shapes(target)
    rows = []
    floor: dict[str, float] | None = None
    with tempfile.TemporaryDirectory() as tmp:
        cases = [
            ("safetensors", "model.safetensors", make_safetensors, shapes),
            ("gguf", "model.gguf", make_gguf, shapes),
            ("torch", "pytorch_model.bin", make_torch, shapes),
            ("onnx", "model.onnx", make_onnx, llama_shapes(min(target, int(1.5 * (1 << 30))))),
        ]
        for peer, name, make, case_shapes in cases:
            path = Path(tmp) / name
            make(path, case_shapes)
            ours = measure("tensorfile", path, args.runs)
            theirs = measure(peer, path, args.runs)
            assert ours["tensors"] == theirs["tensors"], (peer, ours, theirs)
            rows.append((peer, path.stat().st_size, ours, theirs))
            if peer == "torch":
                floor = measure("python-floor", path, args.runs)
                assert floor["tensors"] == theirs["tensors"], (floor, theirs)
            path.unlink()
    print(
        f"Machine: {machine_line()}; median of {args.runs} runs, each a fresh process; time is the operation "
        "after imports.\n"
    )
    print(
        "| file | size | tensors | tensorfile | peer | peer time | speed-up | whole process (ours / peer) "
        "| peak RSS (ours / peer) |"
    )
    print("|---|---:|---:|---:|---|---:|---:|---:|---:|")
    for peer, size, ours, theirs in rows:
        cells = [
            peer,
            f"{size / (1 << 30):.2f} GiB",
            str(ours["tensors"]),
            f"{ours['seconds'] * 1000:.0f} ms",
            PEERS[peer],
            f"{theirs['seconds'] * 1000:.0f} ms",
            f"{theirs['seconds'] / ours['seconds']:.1f}×",
            f"{ours['wall'] * 1000:.0f} / {theirs['wall'] * 1000:.0f} ms",
            f"{ours['peak_rss_mb']:.0f} / {theirs['peak_rss_mb']:.0f} MB",
        ]
        print("| " + " | ".join(cells) + " |")
    if floor is not None:
        torch_row = next(r for r in rows if r[0] == "torch")
        print(
            f"\nPython floor for the torch zip (zip directory + C unpickler with stand-ins + local "
            f"headers, nothing else): {floor['seconds'] * 1000:.1f} ms, "
            f"{torch_row[3]['seconds'] / floor['seconds']:.1f}× faster than torch.load(mmap=True)."
        )


if __name__ == "__main__":
    main()
