"""Remote inspect of sharded multi-GB hub repos: tensorfile beside huggingface_hub and hf-mem.

The hub is tests/hubserver.py on 127.0.0.1 (Hugging Face and ModelScope protocols, LFS files behind
a 302 to a CDN on a second port, Range -> 206), serving Llama-3-shaped repos built here: BF16
safetensors shards with model.safetensors.index.json, config.json, generation_config.json and
tokenizer files. The shards are sparse -- the real safetensors header is written, the data region is
a hole (`truncate`) -- so 16 GB (8B, 4 shards) and 141 GB (70B, 30 shards) cost no disk.

Tools, all asked for the same thing (every tensor's name, dtype and shape, without the weights):
  tensorfile (library)   tensorfile.inspect(open_remote("hf://owner/name")) in a warm process
  tensorfile (CLI)       `tensorfile inspect hf://owner/name --json`, a fresh process per run
  get_safetensors_metadata   huggingface_hub.get_safetensors_metadata(repo_id), HF_ENDPOINT set;
                         in a warm process, and a fresh process per run (imports included)
  hf-mem                 hf_mem.run.arun as bench/peer_estimates.py calls it (worker_hf_mem: its
                         httpx2 client gets a transport that sends https://huggingface.co/... to
                         127.0.0.1), in .bench-estimate-venv; warm process and fresh process
  tensorfile on ms://    the same repo through the ModelScope endpoints (no peer reads ModelScope)
Two networks: loopback, and every response (API, resolve, CDN) held --latency-ms (20) by the
server's `slow` fault, a stand-in for the round trip to a real hub. The wrapped handler sets
TCP_NODELAY as real front ends do (see Timed). Requests and bytes are counted at the server (every
request on both ports: method, status, body bytes, start/end time), by that handler; tensorfile's
own `http` counters are recorded beside them. Each warm-process tool gets one warm-up call (kept as
"first call") and then --runs timed calls; tools take turns within each round so the machine's
noise spreads evenly.
Checks: every tool reports the same tensors (name, dtype, shape) and parameter count, tensorfile's
remote answer equals a local inspect of the same folder (files and offsets included), and it
fetched under 0.1 % of the repo's bytes.

    .venv/bin/python bench/bench_remote.py [--runs 7] [--models llama3-8b,llama3-70b] [--latency-ms 20]
        [--out PATH]

(`make bench-remote`; builds .bench-estimate-venv through bench/peer_estimates.py when missing.)
Worker mode (internal): bench_remote.py --worker KIND TARGET [PORT] [--once].
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import shutil
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT / "bench"
if str(BENCH) not in sys.path:
    sys.path.insert(0, str(BENCH))
from bench_identify import machine_line, total_ram_gib, use_bytecode  # noqa: E402  (stdlib only)

DEFAULT_OUT = BENCH / "results" / "remote_inspect.json"
OWNER = "tfbench"
SHARD_LIMIT = 5 * 10**9  # transformers' max_shard_size="5GB": 4 shards for 8B, 30 for 70B
MAX_FETCHED_SHARE = 0.001  # tensorfile must fetch under 0.1 % of the repo

MODELS: dict[str, dict[str, Any]] = {
    "llama3-8b": {
        "repo": "Llama-3-8B-shaped",
        "layers": 32,
        "hidden": 4096,
        "intermediate": 14336,
        "heads": 32,
        "kv_heads": 8,
        "vocab": 128256,
        "shards": 4,
    },
    "llama3-70b": {
        "repo": "Llama-3-70B-shaped",
        "layers": 80,
        "hidden": 8192,
        "intermediate": 28672,
        "heads": 64,
        "kv_heads": 8,
        "vocab": 128256,
        "shards": 30,
    },
}


# ----------------------------------------------------------------------------------------------
# the repos
# ----------------------------------------------------------------------------------------------


def llama_tensors(m: dict[str, Any]) -> list[tuple[str, list[int]]]:
    """Llama's state dict in module order (embed, layers, norm, lm_head), as transformers saves it."""
    h, inter, kv = m["hidden"], m["intermediate"], m["kv_heads"] * (m["hidden"] // m["heads"])
    out: list[tuple[str, list[int]]] = [("model.embed_tokens.weight", [m["vocab"], h])]
    for i in range(m["layers"]):
        p = f"model.layers.{i}."
        out += [
            (p + "self_attn.q_proj.weight", [h, h]),
            (p + "self_attn.k_proj.weight", [kv, h]),
            (p + "self_attn.v_proj.weight", [kv, h]),
            (p + "self_attn.o_proj.weight", [h, h]),
            (p + "mlp.gate_proj.weight", [inter, h]),
            (p + "mlp.up_proj.weight", [inter, h]),
            (p + "mlp.down_proj.weight", [h, inter]),
            (p + "input_layernorm.weight", [h]),
            (p + "post_attention_layernorm.weight", [h]),
        ]
    out += [("model.norm.weight", [h]), ("lm_head.weight", [m["vocab"], h])]
    return out


def split_shards(tensors: list[tuple[str, list[int]]]) -> list[list[tuple[str, list[int]]]]:
    """transformers' greedy split: a new shard when the next tensor would pass the limit."""
    shards: list[list[tuple[str, list[int]]]] = [[]]
    size = 0
    for name, shape in tensors:
        n = math.prod(shape) * 2
        if shards[-1] and size + n > SHARD_LIMIT:
            shards.append([])
            size = 0
        shards[-1].append((name, shape))
        size += n
    return shards


def write_sparse_shard(path: Path, tensors: list[tuple[str, list[int]]]) -> tuple[int, str]:
    """A BF16 safetensors file: the real header (keys sorted, data in key order, padded to 8 bytes
    with spaces as the safetensors library does), then a hole as large as the data. Returns
    (file size, a stand-in sha256 so the server never hashes the hole)."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, shape in sorted(tensors):
        n = math.prod(shape) * 2
        header[name] = {"dtype": "BF16", "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    size = 8 + len(raw) + offset
    with path.open("wb") as fh:
        fh.write(struct.pack("<Q", len(raw)) + raw)
        fh.truncate(size)
    return size, hashlib.sha256(raw + str(size).encode()).hexdigest()


def tokenizer_json(vocab: int) -> bytes:
    """A byte-level BPE tokenizer.json of Llama 3's size (128,000 tokens + 256 specials, ~280k
    merges): what a real repo carries beside the weights, several MB that no tool here needs."""
    base = vocab - 256
    alphabet = "abcdefghijklmnopqrstuvwxyzĠ"
    toks = []
    for i in range(base):
        s, n = "", i
        while True:
            s += alphabet[n % len(alphabet)]
            n //= len(alphabet)
            if not n:
                break
        toks.append(s)
    merges = [f"{toks[i % base]} {toks[(i * 7) % base]}" for i in range(280_000)]
    added = [
        {"id": base + k, "content": f"<|reserved_special_token_{k}|>", "special": True} for k in range(256)
    ]
    doc = {
        "version": "1.0",
        "added_tokens": added,
        "normalizer": None,
        "pre_tokenizer": {"type": "ByteLevel", "add_prefix_space": False},
        "decoder": {"type": "ByteLevel"},
        "model": {"type": "BPE", "vocab": {t: i for i, t in enumerate(toks)}, "merges": merges},
    }
    return json.dumps(doc, ensure_ascii=False).encode()


def build_repo(root: Path, key: str) -> dict[str, Any]:
    """Write tfbench/<repo> under root; return its description and the stand-in sha256 digests."""
    m = MODELS[key]
    folder = root / OWNER / m["repo"]
    folder.mkdir(parents=True)
    tensors = llama_tensors(m)
    shards = split_shards(tensors)
    if len(shards) != m["shards"]:
        raise SystemExit(f"{key}: {len(shards)} shards, expected {m['shards']}")
    weight_map: dict[str, str] = {}
    sha256: dict[str, str] = {}
    files: dict[str, int] = {}
    total = 0
    for i, part in enumerate(shards, 1):
        name = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        size, digest = write_sparse_shard(folder / name, part)
        sha256[f"{OWNER}/{m['repo']}/{name}"] = digest
        files[name] = size
        total += sum(math.prod(s) * 2 for _, s in part)
        weight_map.update(dict.fromkeys((n for n, _ in part), name))
    index = {"metadata": {"total_size": total}, "weight_map": weight_map}
    config = {
        "architectures": ["LlamaForCausalLM"],
        "attention_bias": False,
        "attention_dropout": 0.0,
        "bos_token_id": 128000,
        "eos_token_id": 128001,
        "hidden_act": "silu",
        "hidden_size": m["hidden"],
        "initializer_range": 0.02,
        "intermediate_size": m["intermediate"],
        "max_position_embeddings": 8192,
        "model_type": "llama",
        "num_attention_heads": m["heads"],
        "num_hidden_layers": m["layers"],
        "num_key_value_heads": m["kv_heads"],
        "pretraining_tp": 1,
        "rms_norm_eps": 1e-05,
        "rope_scaling": None,
        "rope_theta": 500000.0,
        "tie_word_embeddings": False,
        "torch_dtype": "bfloat16",
        "transformers_version": "4.40.0.dev0",
        "use_cache": True,
        "vocab_size": m["vocab"],
    }
    small = {
        "model.safetensors.index.json": json.dumps(index, indent=2).encode(),
        "config.json": json.dumps(config, indent=2).encode(),
        "generation_config.json": json.dumps(
            {"bos_token_id": 128000, "eos_token_id": 128001, "transformers_version": "4.40.0.dev0"}
        ).encode(),
        "tokenizer.json": tokenizer_json(m["vocab"]),
        "tokenizer_config.json": json.dumps(
            {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>", "model_max_length": 10**30}
        ).encode(),
        "special_tokens_map.json": json.dumps(
            {"bos_token": "<|begin_of_text|>", "eos_token": "<|end_of_text|>"}
        ).encode(),
        "README.md": f"# {m['repo']}\n\nA sparse stand-in for the benchmarks.\n".encode(),
    }
    for name, data in small.items():
        (folder / name).write_bytes(data)
        files[name] = len(data)
    params = sum(math.prod(s) for _, s in tensors)
    return {
        "repo_id": f"{OWNER}/{m['repo']}",
        "folder": folder,
        "sha256": sha256,
        "shape": {k: v for k, v in m.items() if k != "repo"},
        "tensors": len(tensors),
        "params": params,
        "size_bytes": sum(files.values()),
        "weights_bytes": total,
        "files": dict(sorted(files.items())),
        "disk_bytes": sum(os.stat(folder / f).st_blocks * 512 for f in files),
    }


# ----------------------------------------------------------------------------------------------
# the hub, counted
# ----------------------------------------------------------------------------------------------


def counting_hub(root: Path, sha256: dict[str, str]) -> Any:
    """tests.hubserver.HubServer whose handlers also log every request with its timing."""
    sys.path.insert(0, str(ROOT))
    from tests.hubserver import HubServer

    class Timed:
        """Mixin over hubserver's handler: one log entry per request, after it was answered.

        Also sets TCP_NODELAY on the server's sockets, as a real hub's or CDN's front end does:
        socketserver leaves Nagle's algorithm on, and hubserver sends the headers and the body of
        a response in separate writes, so every small body waits for the client's delayed ACK
        (measured here: 105 ms instead of 19 ms for tensorfile's 11 serial requests on the 8B repo,
        less for clients that overlap requests). That stall would be the server's, not the tools'.
        """

        disable_nagle_algorithm = True
        hub: Any
        role: str

        def _handle(self, method: str) -> None:
            self.hub.enter()
            t0 = time.perf_counter()
            try:
                super()._handle(method)  # type: ignore[misc]
            finally:
                self.hub.leave(
                    {
                        "method": method,
                        "path": self.path,  # type: ignore[attr-defined]
                        "range": self.headers.get("Range"),  # type: ignore[attr-defined]
                        "status": getattr(self, "_status", 0),
                        "bytes": getattr(self, "_sent", 0),
                        "server": self.role,
                        "t0": t0,
                        "t1": time.perf_counter(),
                    }
                )

    class CountingHub(HubServer):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            self.log: list[dict[str, Any]] = []
            self.inflight = 0
            self.cond = threading.Condition()
            super().__init__(*args, **kwargs)

        def _make_server(self, port: int, role: str) -> Any:
            httpd = super()._make_server(port, role)
            base = httpd.RequestHandlerClass
            httpd.RequestHandlerClass = type(base.__name__, (Timed, base), {})
            return httpd

        def enter(self) -> None:
            with self.cond:
                self.inflight += 1

        def leave(self, record: dict[str, Any]) -> None:
            with self.cond:
                self.log.append(record)
                self.inflight -= 1
                self.cond.notify_all()

        def take(self) -> list[dict[str, Any]]:
            """The requests since the last take, once every request under way has been logged."""
            with self.cond:
                self.cond.wait_for(lambda: self.inflight == 0, timeout=5)
                out, self.log = self.log, []
            self.requests.clear()  # hubserver's own log; ours has the timings
            return out

    return CountingHub(root, sha256=sha256)


def file_of(record: dict[str, Any]) -> str | None:
    """The repo file a content request read (HF resolve, CDN, ModelScope repo?FilePath=)."""
    split = urlsplit(record["path"])
    query = parse_qs(split.query)
    if record["server"] == "cdn":
        return query.get("file", [None])[0]
    if "/resolve/" in split.path:
        return unquote(split.path.split("/resolve/", 1)[1].split("/", 1)[1])
    if split.path.endswith("/repo") and "FilePath" in query:
        return query["FilePath"][0]
    return None


def server_summary(log: list[dict[str, Any]]) -> dict[str, Any]:
    """Requests and body bytes by kind, per safetensors shard, and how many ran at once."""
    kinds = {"api": [0, 0], "head": [0, 0], "redirect": [0, 0], "content": [0, 0]}
    shards: dict[str, list[int]] = {}
    other: dict[str, list[int]] = {}
    for r in log:
        f = file_of(r)
        if f is None:
            kind = "api"
        elif r["method"] == "HEAD":
            kind = "head"
        else:
            kind = "redirect" if r["status"] in (301, 302, 307) else "content"
        kinds[kind][0] += 1
        kinds[kind][1] += r["bytes"]
        if kind == "content" and f is not None:
            bucket = shards if f.endswith(".safetensors") else other
            bucket.setdefault(f, [0, 0])
            bucket[f][0] += 1
            bucket[f][1] += r["bytes"]
    # overlap of file-content responses only: a 302 and the CDN request it sends the client to
    # overlap by an instant at the server even for a strictly serial client
    content = [
        r
        for r in log
        if file_of(r) is not None and r["method"] == "GET" and r["status"] not in (301, 302, 307)
    ]
    events = sorted([(r["t0"], 1) for r in content] + [(r["t1"], -1) for r in content])
    now = peak = 0
    for _, step in events:
        now += step
        peak = max(peak, now)
    return {
        "requests": len(log),
        "bytes": sum(r["bytes"] for r in log),
        "by_kind": {k: {"requests": v[0], "bytes": v[1]} for k, v in kinds.items()},
        "shard_content": {
            "files": len(shards),
            "requests": sum(v[0] for v in shards.values()),
            "bytes": sum(v[1] for v in shards.values()),
            "requests_per_shard": sorted({v[0] for v in shards.values()}),
            "bytes_per_shard": sorted({v[1] for v in shards.values()}),
        },
        "other_files_read": {k: {"requests": v[0], "bytes": v[1]} for k, v in sorted(other.items())},
        "max_concurrent_content_requests": peak,
        "server_seconds": sum(r["t1"] - r["t0"] for r in log),
        "lines": [
            f"{r['server']} {r['method']} {r['path'][:120]} {r['range'] or ''} -> {r['status']} {r['bytes']}"
            for r in sorted(log, key=lambda r: r["t0"])
        ],
    }


# ----------------------------------------------------------------------------------------------
# workers: each tool in its own process (its venv, its env), one line per run on a private fd
# ----------------------------------------------------------------------------------------------


def digest(rows: list[tuple[Any, ...]]) -> str:
    return hashlib.sha256(json.dumps(sorted(rows), separators=(",", ":")).encode()).hexdigest()


def tf_answer(info: Any) -> dict[str, Any]:
    return {
        "tensors": info.tensor_count,
        "params": info.parameter_count,
        "digest": digest([(t.name, t.dtype.upper(), list(t.shape)) for t in info.tensors]),
        "full_digest": digest(
            [(t.name, t.dtype, list(t.shape), t.file, t.offset, t.nbytes) for t in info.tensors]
        ),
    }


def make_worker(kind: str, target: str, port: int) -> Any:
    """A function running the tool once and returning its answer (imports happen here)."""
    if kind == "tf-lib":
        import tensorfile
        from tensorfile.hub import http
        from tensorfile.hub.remote import open_remote

        def run_tf() -> dict[str, Any]:
            before = http.STATS.snapshot()
            t0 = time.perf_counter()
            # open_remote, not open_remote_cached: a fresh listing and cache each run, as the first
            # call in a process gets (tensorfile.inspect("hf://...") caches the repo per process)
            info = tensorfile.inspect(open_remote(target))
            seconds = time.perf_counter() - t0
            after = http.STATS.snapshot()
            self_http = {k: after[k] - before[k] for k in after}
            return {"seconds": seconds, "self_http": self_http, **tf_answer(info)}

        return run_tf
    if kind == "hf-gsm":
        from huggingface_hub import constants, get_safetensors_metadata

        def run_gsm() -> dict[str, Any]:
            shutil.rmtree(constants.HF_HUB_CACHE, ignore_errors=True)  # the index is downloaded anew
            t0 = time.perf_counter()
            meta = get_safetensors_metadata(target)
            seconds = time.perf_counter() - t0
            rows = [
                (name, t.dtype.upper(), list(t.shape))
                for fm in meta.files_metadata.values()
                for name, t in fm.tensors.items()
            ]
            return {
                "seconds": seconds,
                "tensors": len(rows),
                "params": sum(meta.parameter_count.values()),
                "digest": digest(rows),
            }

        return run_gsm
    if kind == "hf-mem":
        import importlib

        import peer_estimates

        hf_run = importlib.import_module("hf_mem.run")
        seen: dict[str, Any] = {}
        parse = hf_run.parse_safetensors_metadata

        def spy(raw_metadata: dict[str, Any]) -> Any:  # what hf-mem parsed, for the agreement check
            seen["raw"] = raw_metadata
            return parse(raw_metadata=raw_metadata)

        hf_run.parse_safetensors_metadata = spy
        job = {"id": target, "repo": target, "max_model_len": 8192, "batch_size": 1, "kv_cache_dtype": "auto"}

        def run_hf_mem() -> dict[str, Any]:
            t0 = time.perf_counter()
            answer = peer_estimates.worker_hf_mem([job], port)[target]
            seconds = time.perf_counter() - t0
            if "error" in answer:
                raise RuntimeError(answer["error"])
            rows = [
                (name, v["dtype"].upper(), list(v["shape"]))
                for comp in seen["raw"].values()
                for name, v in comp.items()
                if name != "__metadata__"
            ]
            return {
                "seconds": seconds,
                "tensors": len(rows),
                "params": sum(math.prod(r[2]) for r in rows),
                "weights_bytes": answer["json_output"]["memory"],
                "digest": digest(rows),
            }

        return run_hf_mem
    raise SystemExit(f"unknown worker kind {kind}")


def worker_main(argv: list[str]) -> None:
    ap = argparse.ArgumentParser(prog="bench_remote.py --worker")
    ap.add_argument("kind")
    ap.add_argument("target")
    ap.add_argument("port", type=int, nargs="?", default=0)
    ap.add_argument("--once", action="store_true")
    args = ap.parse_args(argv)
    out = os.fdopen(os.dup(1), "w", buffering=1)  # answers only; whatever the tools print -> stderr
    os.dup2(2, 1)
    run = make_worker(args.kind, args.target, args.port)

    def answer() -> None:
        try:
            result = run()
        except Exception as exc:
            result = {"error": f"{type(exc).__name__}: {exc}"[:2000]}
        out.write(json.dumps(result) + "\n")

    if args.once:
        answer()
        return
    out.write(json.dumps({"ready": True}) + "\n")
    for line in sys.stdin:
        if line.strip() != "run":
            break
        answer()


class Warm:
    """A worker process kept alive: one timed call per `run()`."""

    def __init__(self, cmd: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
        )
        self.errors: list[str] = []
        threading.Thread(target=self._drain, daemon=True).start()
        first = self._line()
        if not first.get("ready"):
            raise RuntimeError(f"worker did not start: {first} {''.join(self.errors)[-2000:]}")

    def _drain(self) -> None:
        assert self.proc.stderr is not None
        for line in self.proc.stderr:
            self.errors.append(line)
            del self.errors[:-200]

    def _line(self) -> dict[str, Any]:
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            tail = "".join(self.errors)[-2000:]
            return {"error": f"worker died (exit {self.proc.returncode}): {tail}"}
        return json.loads(line)

    def run(self) -> dict[str, Any]:
        assert self.proc.stdin is not None
        self.proc.stdin.write("run\n")
        self.proc.stdin.flush()
        return self._line()

    def close(self) -> None:
        if self.proc.stdin:
            self.proc.stdin.close()
        try:
            self.proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()


def fresh(cmd: list[str], env: dict[str, str], parse: Any) -> dict[str, Any]:
    """One run in a new process, timed from spawn to exit."""
    t0 = time.perf_counter()
    done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False, timeout=600)
    seconds = time.perf_counter() - t0
    if done.returncode != 0:
        return {"error": f"exit {done.returncode}: {done.stderr[-2000:]}", "seconds": seconds}
    return {**parse(done.stdout), "seconds": seconds}


def parse_cli(stdout: str) -> dict[str, Any]:
    data = json.loads(stdout)
    rows = [(t["name"], t["dtype"].upper(), t["shape"]) for t in data["tensors"]]
    full = [(t["name"], t["dtype"], t["shape"], t["file"], t["offset"], t["nbytes"]) for t in data["tensors"]]
    return {
        "tensors": data["tensor_count"],
        "params": data["parameter_count"],
        "digest": digest(rows),
        "full_digest": digest(full),
        "self_http": data.get("http"),
    }


def parse_once(stdout: str) -> dict[str, Any]:
    result = json.loads(stdout.strip().splitlines()[-1])
    result.pop("seconds", None)  # the whole process is what this row times
    return result


# ----------------------------------------------------------------------------------------------
# the peers' venv
# ----------------------------------------------------------------------------------------------


def peers_python() -> Path:
    """.bench-estimate-venv's python, built by bench/peer_estimates.py's own bootstrap when missing."""
    import peer_estimates

    py = peer_estimates.VENV / "bin" / "python"
    want = hashlib.sha256(peer_estimates.REQS.read_bytes()).hexdigest()
    stamp = peer_estimates.VENV / ".requirements.sha256"
    if not py.exists() or not stamp.exists() or stamp.read_text().strip() != want:
        code = (
            "import sys; sys.path.insert(0, sys.argv[1]); import peer_estimates as p\n"
            "p.os.execv = lambda *a: sys.exit(0)  # install only: do not go on to run the estimates\n"
            "p.ensure_venv()\n"
        )
        subprocess.run([os.environ.get("PYTHON", "python3"), "-c", code, str(BENCH)], check=True)
    return py


def versions(peers_py: Path) -> dict[str, str]:
    from importlib.metadata import version

    import tensorfile

    out = {"tensorfile": tensorfile.__version__}
    for name in ("huggingface_hub", "httpx2", "modelscope_hub"):
        out[name] = version(name)
    code = (
        "import json; from importlib.metadata import version as v\n"
        "print(json.dumps({n: v(n) for n in ('hf-mem', 'httpx2', 'h2')}))"
    )
    peer = json.loads(subprocess.run([str(peers_py), "-c", code], capture_output=True, text=True).stdout)
    out["hf-mem"] = peer["hf-mem"]
    out["httpx2 (hf-mem venv)"] = peer["httpx2"]
    return out


# ----------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------

TOOLS = (
    # key, label, mode ("warm": in-process call timed in a long-lived process; "fresh": whole process)
    ("tf_lib", "tensorfile library", "warm"),
    ("gsm", "huggingface_hub get_safetensors_metadata", "warm"),
    ("hf_mem", "hf-mem (hf_mem.run.arun)", "warm"),
    ("tf_cli", "tensorfile CLI `inspect --json`", "fresh"),
    ("gsm_proc", "get_safetensors_metadata", "fresh"),
    ("hf_mem_proc", "hf-mem", "fresh"),
    ("tf_lib_ms", "tensorfile library, ms://", "warm"),
    ("tf_cli_ms", "tensorfile CLI `inspect --json`, ms://", "fresh"),
)
BASELINE = {"warm": "tf_lib", "fresh": "tf_cli"}  # what each peer row's ratios divide by
TF_KEYS = ("tf_lib", "tf_cli", "tf_lib_ms", "tf_cli_ms")


def child_env(hub: Any, caches: Path) -> dict[str, str]:
    env = dict(os.environ)
    for var in (
        "HF_TOKEN",
        "HUGGING_FACE_HUB_TOKEN",
        "HF_HUB_OFFLINE",
        "MODELSCOPE_API_TOKEN",
        "HF_HUB_CACHE",
    ):
        env.pop(var, None)
    env.update(hub.env(cache_dir=caches))
    env["PYTHONPATH"] = str(BENCH)
    return env


def median(values: list[float]) -> float:
    return statistics.median(values) if values else float("nan")


def run_tools(hub: Any, repo: dict[str, Any], runs: int, peers_py: Path, caches: Path) -> dict[str, Any]:
    """Every tool on one repo: a warm-up round, then `runs` rounds, tools taking turns."""
    rid = repo["repo_id"]
    port = int(hub.url.rsplit(":", 1)[1])
    me = str(Path(__file__).resolve())
    tf_bin = str(Path(sys.executable).parent / "tensorfile")
    env = {k: child_env(hub, caches / k) for k, *_ in TOOLS}

    def worker(kind: str, target: str, key: str, py: str = sys.executable) -> Warm:
        return Warm([py, me, "--worker", kind, target, str(port)], env[key])

    def once(kind: str, target: str, key: str, py: str = sys.executable) -> Any:
        return lambda: fresh([py, me, "--worker", kind, target, str(port), "--once"], env[key], parse_once)

    def cli(url: str, key: str) -> Any:
        return lambda: fresh([tf_bin, "inspect", url, "--json"], env[key], parse_cli)

    warm = {
        "tf_lib": worker("tf-lib", f"hf://{rid}", "tf_lib"),
        "gsm": worker("hf-gsm", rid, "gsm"),
        "hf_mem": worker("hf-mem", rid, "hf_mem", str(peers_py)),
        "tf_lib_ms": worker("tf-lib", f"ms://{rid}", "tf_lib_ms"),
    }
    calls = {
        **{k: w.run for k, w in warm.items()},
        "tf_cli": cli(f"hf://{rid}", "tf_cli"),
        "gsm_proc": once("hf-gsm", rid, "gsm_proc"),
        "hf_mem_proc": once("hf-mem", rid, "hf_mem_proc", str(peers_py)),
        "tf_cli_ms": cli(f"ms://{rid}", "tf_cli_ms"),
    }
    hub.take()  # worker start-up asks nothing of the hub; start each run from an empty log
    results: dict[str, list[dict[str, Any]]] = {k: [] for k, *_ in TOOLS}
    try:
        for _ in range(runs + 1):  # the first round is the warm-up ("first call")
            for key, *_ in TOOLS:
                result = calls[key]()
                result["server"] = server_summary(hub.take())
                results[key].append(result)
    finally:
        for w in warm.values():
            w.close()

    tools: dict[str, Any] = {}
    for key, label, mode in TOOLS:
        first, timed = results[key][0], [r for r in results[key][1:] if "error" not in r]
        entry: dict[str, Any] = {
            "label": label,
            "mode": "warm process: the call alone" if mode == "warm" else "fresh process: start-up included",
            "runs": len(timed),
            "errors": [r["error"] for r in results[key] if "error" in r][:3],
        }
        if timed:
            last = timed[-1]
            entry.update(
                {
                    "median_s": median([r["seconds"] for r in timed]),
                    "min_s": min(r["seconds"] for r in timed),
                    "max_s": max(r["seconds"] for r in timed),
                    "seconds": [round(r["seconds"], 5) for r in timed],
                    "first_call_s": first.get("seconds"),
                    "requests": median([r["server"]["requests"] for r in timed]),
                    "bytes": median([r["server"]["bytes"] for r in timed]),
                    "tensors": last["tensors"],
                    "params": last["params"],
                    "digest": last["digest"],
                    "same_answer_every_run": len({(r["tensors"], r["params"], r["digest"]) for r in timed})
                    == 1,
                    "server": last["server"],
                }
            )
            for extra in ("full_digest", "self_http", "weights_bytes"):
                if extra in last:
                    entry[extra] = last[extra]
        tools[key] = entry
    return tools


def agreement(repo: dict[str, Any], local: dict[str, Any], scenarios: dict[str, Any]) -> dict[str, Any]:
    """Every tool's tensors (name, dtype, shape) and parameter count against the local inspect;
    tensorfile's remote answers against the local one in full (files and offsets); its bytes."""
    out: dict[str, Any] = {
        "expected": {"tensors": repo["tensors"], "params": repo["params"]},
        "local_inspect": {k: local[k] for k in ("tensors", "params")},
        "local_matches_expected": (local["tensors"], local["params"]) == (repo["tensors"], repo["params"]),
    }
    ok = out["local_matches_expected"]
    for name, sc in scenarios.items():
        tools = sc["tools"]
        matches = {
            k: t.get("same_answer_every_run") is True
            and (t["tensors"], t["params"], t["digest"])
            == (local["tensors"], local["params"], local["digest"])
            if "digest" in t
            else False
            for k, t in tools.items()
        }
        full = {k: tools[k].get("full_digest") == local["full_digest"] for k in TF_KEYS}
        share = {k: tools[k]["bytes"] / repo["size_bytes"] if "bytes" in tools[k] else None for k in TF_KEYS}
        out[name] = {
            "each_tool_matches_local": matches,
            "tensorfile_remote_equals_local_in_full": full,
            "tensorfile_fetched_share_of_repo": share,
        }
        ok = ok and all(matches.values()) and all(full.values())
        ok = ok and all(v is not None and v < MAX_FETCHED_SHARE for v in share.values())
    out["all_agree"] = ok
    return out


def run_model(hub: Any, repo: dict[str, Any], args: argparse.Namespace, peers_py: Path, tmp: Path) -> dict:
    import tensorfile

    local_times = []
    for _ in range(args.runs):
        t0 = time.perf_counter()
        local = tensorfile.inspect(repo["folder"])
        local_times.append(time.perf_counter() - t0)
    local_answer = tf_answer(local)
    scenarios: dict[str, Any] = {}
    for name, latency in (("loopback", 0.0), (f"latency {args.latency_ms:g} ms", args.latency_ms / 1000)):
        print(f"  {name} ...", file=sys.stderr)
        hub.clear_faults()
        if latency:
            # the server's own fault: every response on both ports (API, resolve, CDN) waits this long
            hub.add_fault("slow", "/*", times=None, delay=latency)
        caches = tmp / "caches" / repo["repo_id"].replace("/", "--") / name.replace(" ", "-")
        scenarios[name] = {
            "added_latency_s": latency,
            "tools": run_tools(hub, repo, args.runs, peers_py, caches),
        }
        hub.clear_faults()
    return {
        "repo_id": repo["repo_id"],
        "shape": repo["shape"],
        "tensors": repo["tensors"],
        "params": repo["params"],
        "size_bytes": repo["size_bytes"],
        "weights_bytes": repo["weights_bytes"],
        "disk_bytes": repo["disk_bytes"],
        "files": repo["files"],
        "local_inspect_median_s": median(local_times),
        "scenarios": scenarios,
        "agreement": agreement(repo, local_answer, scenarios),
    }


def fmt_s(s: float) -> str:
    return f"{s * 1000:.0f} ms" if s >= 0.0995 else f"{s * 1000:.1f} ms"


def fmt_b(n: float) -> str:
    if n >= 1 << 20:
        return f"{n / (1 << 20):.2f} MiB"
    if n >= 1 << 10:
        return f"{n / (1 << 10):.0f} KiB"
    return f"{n:.0f} B"


def ratio(a: float, b: float) -> str:
    return f"{a / b:.2f}×" if b else "-"


def table(result: dict[str, Any]) -> str:
    """docs/BENCHMARKS.md's tables: per repo and network, tensorfile's rows and each peer's with
    peer / tensorfile ratios (above 1: tensorfile is faster, or asks or fetches less), then the
    ModelScope rows."""
    head = [
        "| repo | network | tool | how | median time | requests | bytes fetched "
        "| time ratio | requests ratio | bytes ratio |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    main_rows, ms_rows = (
        list(head),
        [
            "| repo | network | tool | how | median time | requests | bytes fetched |",
            "|---|---|---|---|---:|---:|---:|",
        ],
    )
    for m in result["models"].values():
        shards = len([f for f in m["files"] if f.endswith(".safetensors")])
        size = f"{m['size_bytes'] / 1e9:.0f} GB"
        repo = f"{m['shape']['layers']}-layer {m['params'] / 1e9:.1f}B, {shards} shards, {size}"
        for net, sc in m["scenarios"].items():
            for key, label, mode in TOOLS:
                t = sc["tools"][key]
                how = "in process" if mode == "warm" else "fresh process"
                if "median_s" not in t:
                    (ms_rows if key.endswith("_ms") else main_rows).append(
                        f"| {repo} | {net} | {label} | failed |"
                    )
                    continue
                numbers = f"{fmt_s(t['median_s'])} | {t['requests']:.0f} | {fmt_b(t['bytes'])}"
                cells = f"| {repo} | {net} | {label} | {how} | {numbers} |"
                if key.endswith("_ms"):
                    ms_rows.append(cells)
                    continue
                ref = sc["tools"][BASELINE[mode]]
                if key in BASELINE.values() or "median_s" not in ref:
                    main_rows.append(cells + " | | |")
                else:
                    main_rows.append(
                        cells
                        + f" {ratio(t['median_s'], ref['median_s'])} |"
                        + f" {ratio(t['requests'], ref['requests'])} |"
                        + f" {ratio(t['bytes'], ref['bytes'])} |"
                    )
    return "\n".join(main_rows) + "\n\n" + "\n".join(ms_rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=int, default=7)
    ap.add_argument("--models", default=",".join(MODELS))
    ap.add_argument("--latency-ms", type=float, default=20.0, help="added to every response (second network)")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args()
    if args.runs < 5:
        raise SystemExit("--runs must be at least 5")
    keys = [k.strip() for k in args.models.split(",") if k.strip()]
    unknown = [k for k in keys if k not in MODELS]
    if unknown:
        raise SystemExit(f"unknown model {unknown[0]}; choose from {', '.join(MODELS)}")
    peers_py = peers_python()
    use_bytecode()
    models: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-remote-") as tmp_name:
        tmp = Path(tmp_name)
        repos = {k: build_repo(tmp / "hub", k) for k in keys}
        sha256 = {k: v for r in repos.values() for k, v in r["sha256"].items()}
        with counting_hub(tmp / "hub", sha256) as hub:
            for key in keys:
                print(f"{key}: {repos[key]['repo_id']}", file=sys.stderr)
                models[key] = run_model(hub, repos[key], args, peers_py, tmp)
    result = {
        "machine": f"{machine_line()}, {total_ram_gib():.1f} GiB RAM",
        "versions": versions(peers_py),
        "runs": args.runs,
        "method": (
            "median of --runs timed runs after one warm-up run per tool (first_call_s); tools take turns "
            "within each round. 'in process' rows time the call alone in a long-lived process of that tool "
            "(tensorfile: inspect(open_remote(url)), a fresh listing and cache each call); 'fresh process' "
            "rows time a whole new process (interpreter start, imports, the call, exit). requests and bytes "
            "are counted at the server (tests/hubserver.py, both ports; response body bytes), medians over "
            "the timed runs. Ratios: peer / tensorfile, the library for in-process rows, the CLI for "
            "fresh-process rows. 'latency' adds a fixed delay to every response (the server's slow fault)."
        ),
        "models": models,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, ensure_ascii=False) + "\n")
    print(f"Machine: {result['machine']}; median of {args.runs} runs.\n")
    print(table(result))
    for key, m in models.items():
        a = m["agreement"]
        shares = [v for sc in m["scenarios"] for v in a[sc]["tensorfile_fetched_share_of_repo"].values() if v]
        print(
            f"\n{key}: {m['tensors']} tensors, {m['params']:,} parameters; "
            f"all tools agree: {a['all_agree']}; tensorfile fetched at most {max(shares):.5%} "
            f"of the repo's {m['size_bytes']:,} bytes"
        )
    shown = args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out
    print(f"wrote {shown}")
    if not all(m["agreement"]["all_agree"] for m in models.values()):
        raise SystemExit("the tools disagree (see agreement in the results JSON)")


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2:])
    else:
        main()
