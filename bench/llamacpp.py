"""The llama.cpp referee, built once and cached outside the repo.

    python bench/llamacpp.py            # fetch the sdist, build, make the converter venv; print paths
    python bench/llamacpp.py --check    # exit 0 when everything is already there

PyPI ships llama.cpp's whole source inside the llama-cpp-python sdist (vendor/llama.cpp). From it
this builds `llama-quantize`, `llama-completion` and libggml-base (the ctypes referee of
bench/ggml_ref.py) with cmake, and a venv in which llama.cpp's own `convert_hf_to_gguf.py` runs
with the versions its requirements file pins (torch is this machine's CPU build 2.13.0 instead of
2.11.0, the only one installable here; the converter uses it for loading tensors only).

Tests marked `llamacpp` and the GGUF benches find everything through `paths()`; the cache folder
is `$TENSORFILE_LLAMACPP_CACHE` or ~/.cache/tensorfile-llamacpp.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tarfile
from dataclasses import dataclass
from pathlib import Path

VERSION = "0.3.36"  # llama-cpp-python; its vendor/llama.cpp is the referee
CONVERT_REQUIREMENTS = (
    "torch==2.13.0",
    "transformers==4.57.6",
    "numpy~=2.2.6",
    "sentencepiece>=0.1.98,<0.3.0",
    "protobuf>=4.21.0,<5.0.0",
    "safetensors",
    "pyyaml",
    "requests",
    "tqdm",
    # llama-cpp-python's own ctypes bindings (from the same sdist, over the libllama built here)
    # drive the decode check of tests/test_gguf_decode.py
    "diskcache",
    "jinja2",
)
TARGETS = ("llama-quantize", "llama-completion", "ggml-base")


@dataclass(frozen=True)
class Paths:
    cache: Path
    source: Path  # vendor/llama.cpp
    bin: Path  # build/bin: executables and shared libraries
    convert_python: Path  # the converter venv's python

    @property
    def quantize(self) -> Path:
        return self.bin / "llama-quantize"

    @property
    def completion(self) -> Path:
        return self.bin / "llama-completion"

    @property
    def converter(self) -> Path:
        return self.source / "convert_hf_to_gguf.py"

    def env(self) -> dict[str, str]:
        """Environment for running the binaries (their shared libraries sit beside them)."""
        env = dict(os.environ)
        env["LD_LIBRARY_PATH"] = f"{self.bin}:{env.get('LD_LIBRARY_PATH', '')}"
        return env

    def converter_env(self) -> dict[str, str]:
        """The converter imports the gguf-py shipped beside it, not the PyPI release."""
        env = dict(os.environ)
        env["PYTHONPATH"] = str(self.source / "gguf-py")
        env["HF_HUB_OFFLINE"] = "1"
        env["TRANSFORMERS_OFFLINE"] = "1"
        env.pop("PYTHONHOME", None)
        return env

    def bindings_env(self) -> dict[str, str]:
        """The converter venv running llama-cpp-python's Python package over this build's libllama."""
        env = self.converter_env()
        env["PYTHONPATH"] = f"{self.source.parent.parent}:{env['PYTHONPATH']}"
        env["LLAMA_CPP_LIB_PATH"] = str(self.bin)
        env["LD_LIBRARY_PATH"] = f"{self.bin}:{env.get('LD_LIBRARY_PATH', '')}"
        return env

    def built(self) -> bool:
        return (
            self.quantize.is_file() and self.completion.is_file() and (self.bin / "libggml-base.so").exists()
        )

    def converter_ready(self) -> bool:
        ready = self.cache / "convert-venv" / ".ready"
        return self.convert_python.is_file() and ready.is_file() and ready.read_text() == _ready_text()


def paths() -> Paths:
    cache = Path(os.environ.get("TENSORFILE_LLAMACPP_CACHE", Path.home() / ".cache" / "tensorfile-llamacpp"))
    source = cache / f"llama_cpp_python-{VERSION}" / "vendor" / "llama.cpp"
    return Paths(cache, source, source / "build" / "bin", cache / "convert-venv" / "bin" / "python")


def _run(cmd: list[str], **kwargs: object) -> None:
    print("+", " ".join(map(str, cmd)), flush=True)
    subprocess.run(cmd, check=True, **kwargs)  # type: ignore[call-overload]


def fetch_source(p: Paths) -> None:
    if p.source.is_dir():
        return
    p.cache.mkdir(parents=True, exist_ok=True)
    sdist = p.cache / f"llama_cpp_python-{VERSION}.tar.gz"
    if not sdist.is_file():
        pip = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:"]
        _run([*pip, "-d", str(p.cache), f"llama-cpp-python=={VERSION}"])
    with tarfile.open(sdist) as tar:
        tar.extractall(p.cache, filter="data")


def build(p: Paths) -> None:
    if p.built():
        return
    build_dir = p.source / "build"
    _run(
        ["cmake", "-B", str(build_dir), "-DCMAKE_BUILD_TYPE=Release", "-DLLAMA_CURL=OFF"],
        cwd=p.source,
    )
    jobs = str(os.cpu_count() or 2)
    _run(["cmake", "--build", str(build_dir), "-j", jobs, "--target", *TARGETS], cwd=p.source)


def make_converter_venv(p: Paths) -> None:
    if p.converter_ready():
        return
    venv = p.cache / "convert-venv"
    if not p.convert_python.is_file():
        _run([sys.executable, "-m", "venv", str(venv)])
    _run([str(p.convert_python), "-m", "pip", "install", "-q", *CONVERT_REQUIREMENTS])
    (venv / ".ready").write_text(_ready_text(), encoding="utf-8")


def _ready_text() -> str:
    return "\n".join(CONVERT_REQUIREMENTS) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only report whether the referee is ready")
    args = parser.parse_args()
    p = paths()
    if args.check:
        ready = p.built() and p.converter_ready()
        state = {True: "yes", False: "no"}
        print(f"binaries: {state[p.built()]}; converter venv: {state[p.converter_ready()]}")
        return 0 if ready else 1
    fetch_source(p)
    build(p)
    make_converter_venv(p)
    print(f"llama.cpp {p.source}\nbinaries {p.bin}\nconverter python {p.convert_python}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
