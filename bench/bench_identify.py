"""identify's cost: start-up, and whether cost grows with file size. Peer: file(1) (libmagic).

Runs each command several times in fresh processes and reports the median wall time, plus the
bytes tensorfile actually read from each file (counted by wrapping its byte source). Big files
are sparse (safetensors, GGUF) or real (a 1 GB torch.save zip, when torch is installed).

    .venv/bin/python bench/bench_identify.py [--runs 9]   (prints a Markdown table)
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "models"
TF = [sys.executable, "-m", "tensorfile"]
GB = 1 << 30


def use_bytecode() -> None:
    """Time start-up as an installed package starts: from compiled bytecode.

    pip compiles a package to .pyc when it installs it; a shell with PYTHONDONTWRITEBYTECODE set
    (some CI images and sandboxes) would otherwise make every run compile all of tensorfile's
    sources again, which costs more than the work measured. Every child process inherits this.
    """
    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    subprocess.run([sys.executable, "-m", "compileall", "-q", str(ROOT / "src" / "tensorfile")], check=True)


def median_seconds(cmd: list[str], runs: int) -> float:
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def bytes_read(path: Path) -> int:
    """Bytes tensorfile reads to identify `path`, counted in a fresh interpreter."""
    code = (
        "import sys, tensorfile.source as s\n"
        "n = [0]\n"
        "orig = s.FileSource.read_at\n"
        "def counted(self, offset, length):\n"
        "    data = orig(self, offset, length); n[0] += len(data); return data\n"
        "s.FileSource.read_at = counted\n"
        "import tensorfile\n"
        "tensorfile.identify(sys.argv[1])\n"
        "print(n[0])\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, check=True)
    return int(out.stdout.strip())


def sparse_safetensors(path: Path, size: int) -> None:
    n = (size - 1024) // 4
    header = json.dumps({"huge": {"dtype": "F32", "shape": [n], "data_offsets": [0, n * 4]}}).encode()
    header += b" " * (-len(header) % 8)
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", len(header)) + header)
        fh.truncate(8 + len(header) + n * 4)


def sparse_gguf(path: Path, size: int) -> None:
    shutil.copyfile(EXAMPLES / "tiny-llama-q8_0.gguf", path)
    with path.open("r+b") as fh:
        fh.truncate(size)


def big_torch_zip(path: Path, size: int) -> bool:
    try:
        import torch
    except ImportError:
        return False
    torch.save({"weight": torch.zeros(size // 4, dtype=torch.float32)}, path)
    return True


def machine_line() -> str:
    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return (
        f"{platform.machine()}, {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}, "
        f"{platform.system()} {platform.release()}"
    )


def total_ram_gib() -> float:
    """Installed memory from /proc/meminfo (0.0 where there is none)."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                return int(line.split()[1]) / (1 << 20)
    except OSError:
        pass
    return 0.0


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=9)
    args = parser.parse_args()
    use_bytecode()
    rows: list[tuple[str, str, float | None, float | None, int | None]] = []
    small = EXAMPLES / "tiny-llama.safetensors"
    rows.append(("`tensorfile --help`", "-", median_seconds([*TF, "--help"], args.runs), None, None))
    with tempfile.TemporaryDirectory() as tmp:
        files: list[tuple[str, Path]] = [
            ("safetensors, 51 KB", small),
            ("pytorch-zip, 57 KB", EXAMPLES / "pytorch_model.bin"),
            ("gguf, 28 KB", EXAMPLES / "tiny-llama-q8_0.gguf"),
        ]
        big_st = Path(tmp) / "huge.safetensors"
        sparse_safetensors(big_st, 10 * GB)
        files.append(("safetensors, 10 GB (sparse)", big_st))
        big_gguf = Path(tmp) / "huge.gguf"
        sparse_gguf(big_gguf, 10 * GB)
        files.append(("gguf, 10 GB (sparse)", big_gguf))
        big_pt = Path(tmp) / "big.pt"
        if big_torch_zip(big_pt, GB):
            files.append(("pytorch-zip, 1 GB (torch.save)", big_pt))
        for label, path in files:
            ours = median_seconds([*TF, "identify", str(path)], args.runs)
            peer = median_seconds(["file", str(path)], args.runs) if shutil.which("file") else None
            rows.append((f"`identify` {label}", label, ours, peer, bytes_read(path)))
    print(f"Machine: {machine_line()}; median of {args.runs} runs, each a fresh process.\n")
    print("| command | tensorfile | file(1) | ratio | bytes tensorfile read |")
    print("|---|---:|---:|---:|---:|")
    for name, _label, ours, peer, nread in rows:
        ratio = f"{ours / peer:.1f}×" if ours and peer else "-"
        print(
            f"| {name} | {ours * 1000:.0f} ms | {f'{peer * 1000:.0f} ms' if peer else '-'} | {ratio} | "
            f"{nread if nread is not None else '-'} |"
        )
    if shutil.which("file"):
        accuracy_table()


def accuracy_table() -> None:
    """What each tool says about the bundled samples and the committed fixtures."""
    heavy = ROOT / "tests" / "fixtures" / "heavy"
    paths = sorted(EXAMPLES.iterdir()) + sorted(p for p in heavy.iterdir() if not p.name.endswith(".json"))
    sys.path.insert(0, str(ROOT / "src"))
    import tensorfile

    print("\n| sample | tensorfile | file(1) says |")
    print("|---|---|---|")
    for path in paths:
        ours = tensorfile.identify(path).format
        if path.is_dir():
            theirs = "directory"
        else:
            out = subprocess.run(["file", "-b", str(path)], capture_output=True, text=True, check=False)
            theirs = out.stdout.strip()[:60]
        print(f"| {path.relative_to(ROOT)} | {ours} | {theirs} |")


if __name__ == "__main__":
    main()
