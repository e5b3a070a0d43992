"""Run the real peer memory estimators on every memory-validation row; record what they predict.

Peers (pinned in bench/requirements-estimate-peers.txt, installed into .bench-estimate-venv):
  accelerate estimate-memory (accelerate 1.15.0)  weights' size per dtype, and its Adam training figure
  hf-mem (0.5.6)                                  weights from the safetensors/GGUF headers + KV cache
  DeepSpeed (0.19.8)                              estimate_zero{2,3}_model_states_mem_needs_all_cold
Rows: tests/data/memory_inference.json and tests/data/memory_training.json (schema in
tests/data/MEMORY_VALIDATION.md); missing files are skipped. Output: bench/results/peer_estimates.json
and a short table on stdout.

Offline: no machine here reaches the Hugging Face hub, so the script serves a small fake hub on
127.0.0.1 (a thread of this process) and points the peers at it. For each row it builds the model's
config.json from the row's `arch`: transformers' own config class for the row's model_type (llama,
mistral, qwen2/3, gemma, phi, mixtral, bert, t5, bloom, gpt_bigcode...), the in-library config of
the same layout for remote-code families (qwen, chatglm -> qwen2, with the repo's auto_map), else
a Llama (Mixtral for MoE) stand-in; with the row's params known, the closest candidate wins and, if
none is within 1%, the intermediate size is solved so the parameter count matches (the peers see
only parameter counts, tensor shapes and the attention shape). The served files are that model's
safetensors headers (sharded at 5 GB, with an index) in the row's storage dtype -- or, for
gptq/gptq-int8/awq/int8/nf4/fp4 rows, the tensors those quantizers store -- and, for gguf:* rows, a
GGUF header with llama.cpp's per-tensor type mix. Only headers are real; data regions are zeros
produced on demand for Range requests. accelerate (huggingface_hub) reads HF_ENDPOINT; hf-mem
hard-codes https://huggingface.co, so its httpx2 client gets a transport that sends the same
requests (paths, Range headers) to the local server instead. Each peer runs in its own process.

Numbers taken (each row's "what" says exactly which, and why):
  accelerate  inference: "Total Size" for the row's dtype; full training: "Training using Adam"
  hf-mem      inference: total_memory (weights + KV cache for max_model_len = seq_len + gen_tokens)
  deepspeed   ZeRO-2/3 rows: the per-GPU figure of the line matching the row's offload
"bytes" is null with the reason when the peer cannot express the row's setting (LoRA and other
methods, optimizers other than Adam, sharding/offload, per-GPU splits, KV dtypes it lacks, no
equivalent model); "raw" then still holds whatever the peer answered.

Run (creates/updates the venv itself, then re-runs inside it; the Makefile target calls this):

    python3 bench/peer_estimates.py [--rows FILE ...] [--only ROW_ID ...] [--out PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import struct
import subprocess
import sys
import tempfile
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import unquote, urlsplit

from bench_identify import machine_line, total_ram_gib  # stdlib-only: importable inside the peers' venv

ROOT = Path(__file__).resolve().parents[1]
VENV = ROOT / ".bench-estimate-venv"
REQS = ROOT / "bench" / "requirements-estimate-peers.txt"
DEFAULT_ROWS = [
    ROOT / "tests" / "data" / "memory_inference.json",
    ROOT / "tests" / "data" / "memory_training.json",
]
DEFAULT_OUT = ROOT / "bench" / "results" / "peer_estimates.json"
PEERS = ("accelerate", "hf_mem", "deepspeed")
GIB = 1 << 30
SHARD_BYTES = 5 * 10**9  # transformers' classic max_shard_size="5GB"
NAMESPACE = "tfbench"
MAX_PARAMS_GAP = 0.02  # a served stand-in further than this from the row's params is not "equivalent"


# ----------------------------------------------------------------------------------------------
# venv bootstrap (stdlib only)
# ----------------------------------------------------------------------------------------------


def ensure_venv() -> None:
    """Create/refresh .bench-estimate-venv from the requirements file, then re-exec inside it."""
    if Path(sys.prefix).resolve() == VENV.resolve():
        return
    py = VENV / "bin" / "python"
    stamp = VENV / ".requirements.sha256"
    want = hashlib.sha256(REQS.read_bytes()).hexdigest()
    if not py.exists():
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    if not stamp.exists() or stamp.read_text().strip() != want:
        env = dict(os.environ, DS_BUILD_OPS="0", DS_SKIP_CUDA_CHECK="1")
        pip = [str(py), "-m", "pip", "--disable-pip-version-check", "-q", "install"]
        # torch first, alone and exact: the local CPU wheel; nothing after it may replace it.
        subprocess.run([*pip, "torch==2.13.0"], check=True, env=env)
        subprocess.run([*pip, "-r", str(REQS)], check=True, env=env)
        stamp.write_text(want + "\n")
    os.execv(str(py), [str(py), str(Path(__file__).resolve()), *sys.argv[1:]])


# ----------------------------------------------------------------------------------------------
# machine line and versions
# ----------------------------------------------------------------------------------------------


def machine() -> str:
    return f"{machine_line()}, {total_ram_gib():.1f} GiB RAM"


def versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    out = {}
    for name in ("accelerate", "hf-mem", "deepspeed", "transformers", "torch", "huggingface_hub", "httpx2"):
        try:
            out[name] = version(name)
        except PackageNotFoundError:
            out[name] = "not installed"
    return out


# ----------------------------------------------------------------------------------------------
# rows
# ----------------------------------------------------------------------------------------------


def load_rows(paths: list[Path]) -> tuple[list[dict], list[str]]:
    rows, used = [], []
    for path in paths:
        if not path.exists():
            continue
        data = json.loads(path.read_text())
        rows.extend(data.get("rows", []))
        used.append(str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path))
    return rows, used


def repo_name(row_id: str) -> str:
    """A valid hub repo name for the row (huggingface_hub validates repo ids)."""
    name = re.sub(r"[^\w.-]", "-", row_id)
    name = re.sub(r"-{2,}", "-", re.sub(r"\.{2,}", ".", name)).strip("-.") or "row"
    if name != row_id or len(name) > 96:
        name = f"{name[:80].strip('-.')}-{hashlib.sha1(row_id.encode()).hexdigest()[:8]}"
    return f"{NAMESPACE}/{name}"


def setting(row: dict, key: str, default: Any = None) -> Any:
    value = (row.get("setting") or {}).get(key)
    return default if value is None else value


def weights_of(row: dict) -> str:
    return str(setting(row, "weights", "bf16")).lower()


def is_train(row: dict) -> bool:
    return str(setting(row, "task", "inference")).lower() in {"train", "training", "finetune", "fine-tune"}


# ----------------------------------------------------------------------------------------------
# config.json from the row's arch
# ----------------------------------------------------------------------------------------------

NATIVE_DENSE = {"llama", "mistral", "qwen2", "qwen3", "gemma", "gemma2", "phi3", "starcoder2", "phi"}
# remote-code families (no transformers class) and the in-library config they are served as
REMOTE_CODE = {"qwen": "qwen2", "chatglm": "qwen2"}
TORCH_DTYPE = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}


def storage_dtype(weights: str) -> str:
    """torch_dtype of the non-quantized tensors (and of config.json) for a weights setting."""
    if weights in TORCH_DTYPE:
        return TORCH_DTYPE[weights]
    if weights in {"gptq", "gptq-int8", "awq", "int8"}:
        return "float16"  # GPTQ/AWQ scales are fp16; LLM.int8 runs in fp16
    return "bfloat16"  # nf4 / nf4-dq / fp4 / int4 (bnb compute dtype) and gguf (irrelevant)


def config_kwargs(arch: dict, model_type: str, moe: bool, intermediate: int | None = None) -> dict:
    """Keyword arguments of the transformers config class of `model_type` for the row's arch."""
    heads = int(arch["heads"])
    hidden = int(arch["hidden_size"])
    layers = int(arch["layers"])
    inter = int(intermediate or arch["intermediate_size"])
    kv = int(arch.get("kv_heads") or heads)
    vocab = int(arch["vocab_size"])
    head_dim = int(arch.get("head_dim") or hidden // heads)
    tie = arch.get("tie_word_embeddings")
    kw: dict[str, Any]
    if model_type == "bert":
        kw = {"hidden_size": hidden, "num_hidden_layers": layers, "num_attention_heads": heads}
        kw |= {"intermediate_size": inter, "vocab_size": vocab}
    elif model_type == "t5":
        kw = {"d_model": hidden, "d_ff": inter, "d_kv": head_dim, "num_layers": layers, "num_heads": heads}
        kw |= {"vocab_size": vocab}
    elif model_type == "bloom":
        kw = {"hidden_size": hidden, "n_layer": layers, "n_head": heads, "vocab_size": vocab}
    elif model_type == "gpt_bigcode":
        kw = {"n_embd": hidden, "n_layer": layers, "n_head": heads, "n_inner": inter, "vocab_size": vocab}
        kw |= {"multi_query": kv == 1}
    else:
        kw = {
            "hidden_size": hidden,
            "intermediate_size": inter,
            "num_hidden_layers": layers,
            "num_attention_heads": heads,
            "num_key_value_heads": kv,
            "vocab_size": vocab,
        }
        if head_dim != hidden // heads or model_type in {"qwen3", "gemma", "gemma2"}:
            kw["head_dim"] = head_dim
        if arch.get("sliding_window"):
            kw["sliding_window"] = int(arch["sliding_window"])
            if model_type == "qwen2":
                kw["use_sliding_window"] = True
        if moe:
            kw["num_local_experts"] = int(arch["experts"])
            kw["num_experts_per_tok"] = int(arch.get("experts_per_token") or 2)
    if tie is not None:
        kw["tie_word_embeddings"] = bool(tie)
    return kw


def model_class_for(config: Any) -> Any:
    """The Auto class a hub user would load: causal LM, else seq2seq LM (T5), else the base model."""
    import transformers
    from transformers.models.auto import modeling_auto as ma

    if config.model_type in ma.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return transformers.AutoModelForCausalLM, ma.MODEL_FOR_CAUSAL_LM_MAPPING_NAMES[config.model_type]
    if config.model_type in ma.MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES:
        name = ma.MODEL_FOR_SEQ_TO_SEQ_CAUSAL_LM_MAPPING_NAMES[config.model_type]
        return transformers.AutoModelForSeq2SeqLM, name
    return transformers.AutoModel, ma.MODEL_MAPPING_NAMES[config.model_type]


def meta_model(config: Any) -> Any:
    import torch

    with torch.device("meta"):
        return model_class_for(config)[0].from_config(config)


def unique_params(model: Any) -> int:
    seen: dict[int, int] = {}
    for p in model.parameters():
        seen[id(p)] = p.numel()
    return sum(seen.values())


def build_config(row: dict) -> tuple[Any, Any, dict]:
    """(transformers config, meta model, notes) for the row's arch.

    Tries the row's own model_type when transformers has it (remote-code families: the in-library
    config with the same layout), then a Llama (Mixtral for MoE) stand-in. With the row's params
    known, the candidate closest to them wins; if none is within 1%, the stand-in's intermediate
    size is solved so its parameter count matches (the peers see only parameter counts, tensor
    shapes and the attention shape, which stay the row's).
    """
    from transformers import AutoConfig

    arch = row["arch"]
    model_type = str(arch.get("model_type") or "llama").lower()
    moe = bool(arch.get("experts"))
    want = arch.get("params")
    inter0 = int(arch["intermediate_size"])
    candidates: list[tuple[str, int, dict]] = []
    if moe:
        if model_type == "mixtral":
            candidates.append(("mixtral", inter0, {}))
    elif model_type == "t5":  # v1.0 (ReLU, 2 matrices) or v1.1 / lm-adapt (gated GELU, 3 matrices)
        candidates.append(("t5", inter0, {}))
        candidates.append(("t5", inter0, {"feed_forward_proj": "gated-gelu"}))
    elif model_type in NATIVE_DENSE or model_type in {"bert", "bloom", "gpt_bigcode"}:
        candidates.append((model_type, inter0, {}))
    elif model_type in REMOTE_CODE:
        candidates.append((REMOTE_CODE[model_type], inter0, {}))
        if model_type == "qwen":  # Qwen(1) config.json states twice the width its MLP matrices have
            candidates.append((REMOTE_CODE[model_type], inter0 // 2, {}))
    fallback = "mixtral" if moe else "llama"
    candidates.append((fallback, inter0, {}))
    if moe and model_type != "mixtral" and not want:
        raise RuntimeError(
            f"MoE model_type {model_type}: the row gives neither the experts' width nor the total "
            "parameters, so no equivalent model can be served"
        )
    tried: list[dict] = []
    done: dict[str, tuple | None] = {}
    best = None

    def attempt(mt: str, inter: int, extra: dict) -> tuple | None:
        key = json.dumps([mt, inter, extra], sort_keys=True)
        if key in done:
            return done[key]
        label = {"model_type": mt, "intermediate_size": inter, **extra}
        try:
            cfg = AutoConfig.for_model(mt, **config_kwargs(arch, mt, moe, inter), **extra)
            model = meta_model(cfg)
        except Exception as exc:  # an arch the class cannot take: the next candidate
            tried.append({**label, "error": f"{type(exc).__name__}: {exc}"[:300]})
            done[key] = None
            return None
        n = unique_params(model)
        if arch.get("tie_word_embeddings") is False and getattr(cfg, "tie_word_embeddings", False):
            # the config class forces tied embeddings (transformers 5 does for T5): the row's separate
            # lm_head is what a checkpoint of that config has besides, so compare with it counted
            n += int(arch["vocab_size"]) * int(arch["hidden_size"])
            label["forced_tie_lm_head_counted"] = True
        tried.append({**label, "params": n})
        done[key] = (cfg, model, mt, abs(n - want) / want if want else 0.0, n, inter)
        return done[key]

    for mt, inter, extra in candidates:
        got = attempt(mt, inter, extra)
        if got and (best is None or got[3] < best[3] - 1e-9):
            best = got
        if best and best[3] <= 0.01:
            break
    adjusted = False
    if want and (best is None or best[3] > 0.01):
        # solve the intermediate size (parameters are linear in it) on the first candidate, else the stand-in
        for mt, _, extra in (candidates[0], (fallback, inter0, {})):
            base, step = attempt(mt, inter0, extra), attempt(mt, inter0 + 1, extra)
            if not (base and step) or step[4] == base[4]:
                continue
            inter = max(1, inter0 + round((want - base[4]) / (step[4] - base[4])))
            got = attempt(mt, inter, extra)
            if got and (best is None or got[3] < best[3]):
                best, adjusted = got, True
            if best and best[3] <= 0.01:
                break
    if best is None:
        raise RuntimeError(f"no transformers config could be built for {model_type}: {tried}")
    cfg, model, mt, _, n, inter = best
    served_as = mt if mt != model_type else None
    notes = {
        "row_model_type": model_type,
        "served_model_type": mt,
        "mapped": served_as is not None,
        "remote_code": model_type in REMOTE_CODE,
        "params_row": want,
        "params_served": n,
        "params_gap": None if not want else round((n - want) / want, 5),
        "intermediate_size_served": inter if inter != inter0 else None,
        "params_adjusted": adjusted,
        "configs_tried": tried,
    }
    return cfg, model, notes


# PretrainedConfig's generic fields that transformers 5 writes but model repos' config.json do not carry
GENERIC_CONFIG_KEYS = (
    "id2label",
    "label2id",
    "return_dict",
    "output_attentions",
    "output_hidden_states",
    "problem_type",
    "chunk_size_feed_forward",
    "is_encoder_decoder",
)


def config_json(cfg: Any, row: dict, quant: dict | None) -> dict:
    data = cfg.to_dict()
    for key in ("transformers_version", "_name_or_path", "dtype", "torch_dtype", *GENERIC_CONFIG_KEYS):
        data.pop(key, None)
    if data.get("head_dim") is None:  # hub configs omit it when it is hidden/heads (hf-mem reads .get)
        data.pop("head_dim", None)
    data["architectures"] = [arch_name(cfg)]
    data["torch_dtype"] = storage_dtype(weights_of(row))
    need = int(setting(row, "seq_len", 0)) + int(setting(row, "gen_tokens", 0))
    if need > int(data.get("max_position_embeddings") or 0):
        data["max_position_embeddings"] = need
    if quant:
        data["quantization_config"] = quant
    return data


def arch_name(cfg: Any) -> str:
    return model_class_for(cfg)[1]


# ----------------------------------------------------------------------------------------------
# tensors the hub checkpoint holds
# ----------------------------------------------------------------------------------------------


def hub_tensors(model: Any, cfg: Any) -> list[tuple[str, list[int], bool]]:
    """(name, shape, quantizable linear?) per checkpoint tensor, hub naming, fused experts split."""
    import torch

    linear = {name for name, mod in model.named_modules() if isinstance(mod, torch.nn.Linear)}
    out = []
    for name, p in model.named_parameters():  # tied parameters appear once
        shape = list(p.shape)
        owner = name.rsplit(".", 1)[0]
        in_layers = re.search(r"\.(layers|layer|h|block)\.\d+\.", name) is not None
        if p.dim() == 3 and ".experts." in name:
            stem, what = name.rsplit(".experts.", 1)
            experts = shape[0]
            mixtral = cfg.model_type == "mixtral"
            for e in range(experts):
                base = f"{stem.replace('.mlp', '.block_sparse_moe') if mixtral else stem}.experts.{e}"
                if what == "gate_up_proj":
                    half = shape[1] // 2
                    names = ("w1", "w3") if mixtral else ("gate_proj", "up_proj")
                    out.append((f"{base}.{names[0]}.weight", [half, shape[2]], True))
                    out.append((f"{base}.{names[1]}.weight", [half, shape[2]], True))
                elif what == "down_proj":
                    out.append((f"{base}.{'w2' if mixtral else 'down_proj'}.weight", shape[1:], True))
                else:
                    out.append((f"{base}.{what}", shape[1:], p.dim() - 1 == 2))
            continue
        if cfg.model_type == "mixtral" and ".mlp.gate." in name:
            name = name.replace(".mlp.gate.", ".block_sparse_moe.gate.")
        quantizable = in_layers and owner in linear and name.endswith(".weight") and p.dim() == 2
        out.append((name, shape, quantizable))
    return out


def largest_layer_params(model: Any) -> tuple[int, str, int]:
    """DeepSpeed's model_to_params() largest layer (stage3.py), with fused experts counted per expert."""
    best, where, fused = 0, "", 0
    for name, mod in model.named_modules():
        own = list(mod.named_parameters(recurse=False))
        n = sum(p.numel() for _, p in own)
        if own and all(p.dim() == 3 for _, p in own) and name.endswith("experts"):
            # transformers 5 fuses all experts of a layer into one module; DeepSpeed would see one
            # Linear per expert matrix (as in transformers 4 and the hub checkpoints): count that.
            fused = max(fused, n)
            n = max(p.numel() // p.shape[0] // (2 if k == "gate_up_proj" else 1) for k, p in own)
            name = f"{name}.<one expert matrix>"
        if n > best:
            best, where = n, name
    return best, where, fused


# ----------------------------------------------------------------------------------------------
# safetensors files (quantized layouts included)
# ----------------------------------------------------------------------------------------------

ST_BYTES = {"F32": 4, "F16": 2, "BF16": 2, "I32": 4, "I8": 1, "U8": 1}
ST_DTYPE = {"float32": "F32", "float16": "F16", "bfloat16": "BF16"}
GPTQ_GROUP = 128
BNB_BLOCK = 64


def quant_config(weights: str) -> dict | None:
    if weights in {"gptq", "gptq-int8"}:
        bits = 8 if weights == "gptq-int8" else 4
        return {
            "quant_method": "gptq",
            "bits": bits,
            "group_size": GPTQ_GROUP,
            "desc_act": False,
            "sym": True,
        }
    if weights == "awq":
        return {
            "quant_method": "awq",
            "bits": 4,
            "group_size": GPTQ_GROUP,
            "zero_point": True,
            "version": "gemm",
        }
    if weights == "int8":
        return {"quant_method": "bitsandbytes", "load_in_8bit": True, "load_in_4bit": False}
    if weights in {"nf4", "nf4-dq", "fp4", "int4"}:
        return {
            "quant_method": "bitsandbytes",
            "load_in_4bit": True,
            "load_in_8bit": False,
            "bnb_4bit_quant_type": "nf4" if weights.startswith("nf4") else "fp4",
            "bnb_4bit_use_double_quant": weights == "nf4-dq",
            "bnb_4bit_compute_dtype": "bfloat16",
            "bnb_4bit_quant_storage": "uint8",
        }
    return None


def quantized_entries(
    name: str, shape: list[int], weights: str, half: str
) -> list[tuple[str, str, list[int]]]:
    """The tensors a quantizer stores for one Linear weight [out, in] (name ends with .weight)."""
    out_f, in_f = shape
    stem = name[: -len(".weight")]
    groups = -(-in_f // GPTQ_GROUP)
    if weights in {"gptq", "gptq-int8"}:  # AutoGPTQ / optimum QuantLinear (group 128, act-order off)
        per_int32 = 4 if weights == "gptq-int8" else 8
        return [
            (f"{stem}.qweight", "I32", [in_f // per_int32, out_f]),
            (f"{stem}.qzeros", "I32", [groups, out_f // per_int32]),
            (f"{stem}.scales", "F16", [groups, out_f]),
            (f"{stem}.g_idx", "I32", [in_f]),
        ]
    if weights == "awq":  # AutoAWQ WQLinear_GEMM
        return [
            (f"{stem}.qweight", "I32", [in_f, out_f // 8]),
            (f"{stem}.qzeros", "I32", [groups, out_f // 8]),
            (f"{stem}.scales", "F16", [groups, out_f]),
        ]
    if weights == "int8":  # bitsandbytes Int8Params as transformers saves them
        return [(name, "I8", [out_f, in_f]), (f"{stem}.SCB", "F32", [out_f])]
    # bitsandbytes Params4bit: packed uint8 data + QuantState.as_dict(packed=True)
    n = out_f * in_f
    blocks = -(-n // BNB_BLOCK)
    qtype = "nf4" if weights.startswith("nf4") else "fp4"
    state = {"quant_type": qtype, "blocksize": BNB_BLOCK, "dtype": half, "shape": [out_f, in_f]}
    entries = [(name, "U8", [(n + 1) // 2, 1])]
    if weights == "nf4-dq":
        state.update({"nested_blocksize": 256, "nested_dtype": "float32", "nested_offset": 0.0})
        entries += [
            (f"{name}.absmax", "U8", [blocks]),
            (f"{name}.nested_absmax", "F32", [-(-blocks // 256)]),
            (f"{name}.nested_quant_map", "F32", [256]),
        ]
    else:
        entries.append((f"{name}.absmax", "F32", [blocks]))
    entries.append((f"{name}.quant_map", "F32", [16]))
    packed = len(json.dumps(state).encode())
    entries.append((f"{name}.quant_state.bitsandbytes__{qtype}", "U8", [packed]))
    return entries


FORMAT_NOTE = {
    "gptq": "GPTQ 4-bit as AutoGPTQ/optimum store it: per Linear qweight I32 [in/8,out], qzeros I32 "
    "[in/128,out/8], scales F16 [in/128,out], g_idx I32 [in]; embeddings, lm_head, norms, router F16",
    "gptq-int8": "GPTQ 8-bit as AutoGPTQ/optimum store it: per Linear qweight I32 [in/4,out], qzeros I32 "
    "[in/128,out/4], scales F16 [in/128,out], g_idx I32 [in]; embeddings, lm_head, norms, router F16",
    "awq": "AWQ 4-bit GEMM as AutoAWQ stores it: per Linear qweight I32 [in,out/8], qzeros I32 "
    "[in/128,out/8], scales F16 [in/128,out]; embeddings, lm_head, norms, router F16",
    "int8": "bitsandbytes LLM.int8 as transformers saves it: per Linear weight I8 [out,in] + SCB F32 [out]; "
    "the rest F16",
    "nf4": "bitsandbytes NF4 as transformers saves it: per Linear weight U8 [n/2,1], absmax F32 [n/64], "
    "quant_map F32 [16], quant_state.bitsandbytes__nf4 U8; the rest BF16",
    "nf4-dq": "bitsandbytes NF4 + double quant as transformers saves it: per Linear weight U8 [n/2,1], "
    "absmax U8 [n/64], nested_absmax F32, nested_quant_map F32 [256], quant_map F32 [16], quant_state U8; "
    "the rest BF16",
    "fp4": "bitsandbytes FP4 as transformers saves it (weight U8 [n/2,1], absmax F32, quant_map, "
    "quant_state); the rest BF16",
    "int4": "generic int4 served as bitsandbytes FP4 (load_in_4bit's default quant type): weight U8 [n/2,1], "
    "absmax F32, quant_map, quant_state; the rest BF16",
}


def safetensors_entries(tensors: list, weights: str) -> list[tuple[str, str, list[int]]]:
    half = storage_dtype(weights)
    base = ST_DTYPE[half]
    quantized = quant_config(weights) is not None
    out = []
    for name, shape, quantizable in tensors:
        if quantized and quantizable:
            out.extend(quantized_entries(name, shape, weights, half))
        else:
            out.append((name, base, shape))
    return out


class VFile:
    """A file served from memory: real head bytes, then zeros up to `size`."""

    def __init__(self, head: bytes, size: int | None = None) -> None:
        self.head = head
        self.size = len(head) if size is None else size
        self.etag = hashlib.sha256(head + str(self.size).encode()).hexdigest()

    def read(self, start: int, end: int) -> bytes:  # inclusive end
        end = min(end, self.size - 1)
        chunk = self.head[start : end + 1]
        return chunk + b"\0" * (end + 1 - start - len(chunk))


def safetensors_file(entries: list[tuple[str, str, list[int]]]) -> VFile:
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for name, dtype, shape in entries:
        n = ST_BYTES[dtype]
        for d in shape:
            n *= d
        header[name] = {"dtype": dtype, "shape": shape, "data_offsets": [offset, offset + n]}
        offset += n
    raw = json.dumps(header, separators=(",", ":")).encode()
    raw += b" " * (-len(raw) % 8)
    head = struct.pack("<Q", len(raw)) + raw
    return VFile(head, len(head) + offset)


def entry_bytes(entry: tuple[str, str, list[int]]) -> int:
    n = ST_BYTES[entry[1]]
    for d in entry[2]:
        n *= d
    return n


def safetensors_repo(entries: list[tuple[str, str, list[int]]]) -> dict[str, VFile]:
    shards: list[list] = [[]]
    size = 0
    for e in entries:
        b = entry_bytes(e)
        if shards[-1] and size + b > SHARD_BYTES:
            shards.append([])
            size = 0
        shards[-1].append(e)
        size += b
    if len(shards) == 1:
        return {"model.safetensors": safetensors_file(shards[0])}
    files: dict[str, VFile] = {}
    weight_map = {}
    total = 0
    for i, shard in enumerate(shards, 1):
        fname = f"model-{i:05d}-of-{len(shards):05d}.safetensors"
        files[fname] = safetensors_file(shard)
        total += sum(entry_bytes(e) for e in shard)
        weight_map.update({e[0]: fname for e in shard})
    index = {"metadata": {"total_size": total}, "weight_map": dict(sorted(weight_map.items()))}
    files["model.safetensors.index.json"] = VFile(json.dumps(index, indent=2).encode())
    return files


# ----------------------------------------------------------------------------------------------
# GGUF file with llama.cpp's quantization mix (src/llama-quant.cpp, llama_tensor_get_type_impl)
# ----------------------------------------------------------------------------------------------

GGML = {"F32": 0, "F16": 1, "Q4_0": 2, "Q5_0": 6, "Q5_1": 7, "Q8_0": 8, "Q4_K": 12, "Q5_K": 13, "Q6_K": 14}
GGML["BF16"] = 30
# (block elements, block bytes) per ggml type
GGML_BLOCK = {
    "F32": (1, 4),
    "F16": (1, 2),
    "BF16": (1, 2),
    "Q4_0": (32, 18),
    "Q5_0": (32, 22),
    "Q5_1": (32, 24),
    "Q8_0": (32, 34),
    "Q4_K": (256, 144),
    "Q5_K": (256, 176),
    "Q6_K": (256, 210),
}
# llama_ftype: (file_type number, default ggml type)
GGUF_FTYPES = {
    "F32": (0, "F32"),
    "F16": (1, "F16"),
    "BF16": (32, "BF16"),
    "Q4_0": (2, "Q4_0"),
    "Q8_0": (7, "Q8_0"),
    "Q4_K_S": (14, "Q4_K"),
    "Q4_K_M": (15, "Q4_K"),
    "Q5_K_S": (16, "Q5_K"),
    "Q5_K_M": (17, "Q5_K"),
    "Q6_K": (18, "Q6_K"),
}
GGUF_ARCH = {"llama": "llama", "mistral": "llama", "mixtral": "llama", "qwen2": "qwen2", "qwen3": "qwen3"}
HF_TO_GGUF = [
    (r"^model\.embed_tokens\.weight$", "token_embd.weight"),
    (r"^model\.norm\.weight$", "output_norm.weight"),
    (r"^lm_head\.weight$", "output.weight"),
    (r"^model\.layers\.(\d+)\.input_layernorm\.weight$", r"blk.\1.attn_norm.weight"),
    (r"^model\.layers\.(\d+)\.post_attention_layernorm\.weight$", r"blk.\1.ffn_norm.weight"),
    (r"^model\.layers\.(\d+)\.self_attn\.([qkv])_proj\.(weight|bias)$", r"blk.\1.attn_\2.\3"),
    (r"^model\.layers\.(\d+)\.self_attn\.o_proj\.weight$", r"blk.\1.attn_output.weight"),
    (r"^model\.layers\.(\d+)\.self_attn\.qkv_proj\.weight$", r"blk.\1.attn_qkv.weight"),
    (r"^model\.layers\.(\d+)\.self_attn\.([qk])_norm\.weight$", r"blk.\1.attn_\2_norm.weight"),
    (r"^model\.layers\.(\d+)\.mlp\.gate_proj\.weight$", r"blk.\1.ffn_gate.weight"),
    (r"^model\.layers\.(\d+)\.mlp\.up_proj\.weight$", r"blk.\1.ffn_up.weight"),
    (r"^model\.layers\.(\d+)\.mlp\.gate_up_proj\.weight$", r"blk.\1.ffn_up.weight"),
    (r"^model\.layers\.(\d+)\.mlp\.down_proj\.weight$", r"blk.\1.ffn_down.weight"),
    (r"^model\.layers\.(\d+)\.mlp\.gate\.weight$", r"blk.\1.ffn_gate_inp.weight"),
    (r"^model\.layers\.(\d+)\.mlp\.experts\.gate_up_proj$", r"blk.\1.ffn_gate_up_exps.weight"),
    (r"^model\.layers\.(\d+)\.mlp\.experts\.down_proj$", r"blk.\1.ffn_down_exps.weight"),
    (r"^model\.layers\.(\d+)\.(.+)$", r"blk.\1.\2"),
]


def gguf_name(hf: str) -> str:
    for pattern, repl in HF_TO_GGUF:
        if re.match(pattern, hf):
            return re.sub(pattern, repl, hf)
    return hf


def use_more_bits(i: int, n: int) -> bool:
    return i < n // 8 or i >= 7 * n // 8 or (i - n // 8) % 3 == 2


def gguf_tensor_types(tensors: list[tuple[str, list[int]]], ftype: str, info: dict) -> list[str]:
    """llama_tensor_get_type_impl for the ftypes in GGUF_FTYPES (dense and Mixtral-style MoE)."""
    _, default = GGUF_FTYPES[ftype]
    quantized = default not in {"F32", "F16", "BF16"}
    n_layer, n_expert = info["n_layer"], info["n_expert"]
    tied = not any(name == "output.weight" for name, _ in tensors)
    is_70b = info["arch"] == "llama" and n_layer == 80 and info["n_gqa"] > 1
    types = []
    i_wv = 0
    for name, shape in tensors:
        quantizable = (
            len(shape) >= 2
            and name.endswith("weight")
            and "_norm.weight" not in name
            and "ffn_gate_inp.weight" not in name
        )
        if not quantizable:
            types.append("F32" if len(shape) < 2 or "ffn_gate_inp" in name else default)
            continue
        t = default
        if not quantized:
            types.append(t)
            continue
        layer = int(name.split(".")[1]) if name.startswith("blk.") else -1
        if name == "output.weight" or (tied and name == "token_embd.weight"):
            t = "Q8_0" if shape[-1] % 256 else ("Q6_K" if t != "Q8_0" else t)
        elif name == "token_embd.weight":
            pass
        elif "attn_v.weight" in name or "attn_qkv.weight" in name:
            if "attn_qkv.weight" in name and ftype in {"Q4_K_M", "Q5_K_M"}:
                t = "Q5_K" if ftype == "Q4_K_M" else "Q6_K"
            elif ftype in {"Q4_K_M", "Q5_K_M"} and use_more_bits(i_wv, n_layer):
                t = "Q6_K"
            elif ftype == "Q4_K_S" and i_wv < 4:
                t = "Q5_K"
            if is_70b and t in {"Q3_K", "Q4_K"}:
                t = "Q5_K"
            if n_expert == 8:
                t = "Q8_0"
            i_wv += 1
        elif "attn_k.weight" in name:
            if n_expert == 8:
                t = "Q8_0"
        elif "ffn_down" in name:
            if (ftype == "Q4_K_M" or ftype == "Q5_K_M") and use_more_bits(layer, n_layer):
                t = "Q6_K"
            elif ftype == "Q4_K_S" and layer < n_layer // 8:
                t = "Q5_K"
        elif "attn_output.weight" in name and n_expert == 8 and ftype in {"Q4_K_S", "Q4_K_M"}:
            t = "Q5_K"
        # tensor_type_fallback: rows not a multiple of the block size
        block = GGML_BLOCK[t][0]
        if shape[-1] % block:
            t = {"Q4_K": "Q5_0", "Q5_K": "Q5_1", "Q6_K": "Q8_0"}.get(t, t)
            if shape[-1] % GGML_BLOCK[t][0]:
                t = "F16"
        types.append(t)
    return types


def gguf_string(s: str) -> bytes:
    b = s.encode()
    return struct.pack("<Q", len(b)) + b


def gguf_file(model_tensors: list[tuple[str, list[int]]], cfg: Any, ftype: str, max_len: int) -> tuple:
    arch = GGUF_ARCH.get(cfg.model_type, cfg.model_type)
    heads = cfg.num_attention_heads
    kv = getattr(cfg, "num_key_value_heads", None) or heads
    n_expert = int(getattr(cfg, "num_local_experts", 0) or 0)
    tensors: list[tuple[str, list[int]]] = []
    for hf, shape in model_tensors:
        name = gguf_name(hf)
        if name.endswith("ffn_gate_up_exps.weight"):  # llama.cpp keeps gate and up experts apart
            half = [shape[0], shape[1] // 2, shape[2]]
            tensors.append((name.replace("gate_up_exps", "gate_exps"), half))
            tensors.append((name.replace("gate_up_exps", "up_exps"), half))
        else:
            tensors.append((name, shape))
    info = {"n_layer": cfg.num_hidden_layers, "n_expert": n_expert, "arch": arch, "n_gqa": heads // kv}
    types = gguf_tensor_types(tensors, ftype, info)
    kvs: list[tuple[str, int, bytes]] = [
        ("general.architecture", 8, gguf_string(arch)),
        ("general.name", 8, gguf_string("tfbench")),
        ("general.file_type", 4, struct.pack("<I", GGUF_FTYPES[ftype][0])),
        (f"{arch}.context_length", 4, struct.pack("<I", max(max_len, cfg.max_position_embeddings or 0))),
        (f"{arch}.embedding_length", 4, struct.pack("<I", cfg.hidden_size)),
        (f"{arch}.block_count", 4, struct.pack("<I", cfg.num_hidden_layers)),
        (f"{arch}.feed_forward_length", 4, struct.pack("<I", cfg.intermediate_size)),
        (f"{arch}.attention.head_count", 4, struct.pack("<I", heads)),
        (f"{arch}.attention.head_count_kv", 4, struct.pack("<I", kv)),
    ]
    head_dim = getattr(cfg, "head_dim", None)
    if head_dim and head_dim != cfg.hidden_size // heads:
        kvs.append((f"{arch}.attention.key_length", 4, struct.pack("<I", head_dim)))
        kvs.append((f"{arch}.attention.value_length", 4, struct.pack("<I", head_dim)))
    if n_expert:
        kvs.append((f"{arch}.expert_count", 4, struct.pack("<I", n_expert)))
        kvs.append((f"{arch}.expert_used_count", 4, struct.pack("<I", int(cfg.num_experts_per_tok))))
    head = b"GGUF" + struct.pack("<IQQ", 3, len(tensors), len(kvs))
    for key, vtype, value in kvs:
        head += gguf_string(key) + struct.pack("<I", vtype) + value
    offset = 0
    mix: dict[str, int] = {}
    for (name, shape), t in zip(tensors, types, strict=True):
        dims = list(reversed(shape))  # ggml ne[0] is the row length
        head += (
            gguf_string(name) + struct.pack("<I", len(dims)) + b"".join(struct.pack("<Q", d) for d in dims)
        )
        head += struct.pack("<IQ", GGML[t], offset)
        elems = 1
        for d in shape:
            elems *= d
        per, nbytes = GGML_BLOCK[t]
        size = elems // per * nbytes
        offset += size + (-size % 32)
        mix[t] = mix.get(t, 0) + 1
    head += b"\0" * (-len(head) % 32)
    return VFile(head, len(head) + offset), dict(sorted(mix.items()))


# ----------------------------------------------------------------------------------------------
# per-row plan: what is served and what each peer is asked
# ----------------------------------------------------------------------------------------------

ACC_DTYPE = {"fp32": "float32", "fp16": "float16", "bf16": "float16", "int8": "int8", "gptq-int8": "int8"}
ACC_INT4 = {"int4", "nf4", "nf4-dq", "fp4", "gptq", "awq"}


def accelerate_plan(row: dict) -> dict:
    w = weights_of(row)
    sharding = str(setting(row, "sharding", "none")).lower()
    gpus = int(setting(row, "gpus", 1))
    why_null = None
    if is_train(row):
        precision = str(setting(row, "precision", "") or "").lower()
        dtype = "float32" if precision == "fp32" or (not precision and w == "fp32") else "float16"
        method = str(setting(row, "method", "full")).lower()
        optimizer = str(setting(row, "optimizer", "adamw") or "adamw").lower()
        if method != "full":
            why_null = f"method {method}: accelerate estimate-memory only models full-parameter Adam training"
        elif optimizer not in {"adamw", "adam"}:
            why_null = f"optimizer {optimizer}: accelerate's training figure assumes Adam/AdamW fp32 states"
        elif sharding not in {"none", "ddp"}:
            why_null = f"sharding {sharding}: accelerate estimate-memory has no sharding/ZeRO/FSDP notion"
        elif setting(row, "offload"):
            why_null = "offload: accelerate estimate-memory has no offload notion"
        elif w not in {"fp32", "fp16", "bf16"}:
            why_null = f"weights {w}: no full training of quantized weights in accelerate's model"
        return {"dtype": dtype, "column": "Training using Adam", "why_null": why_null}
    if w.startswith("gguf:"):
        q = w.split(":", 1)[1].upper()
        dtype = "int8" if q.startswith("Q8") else "int4" if q.startswith("Q4") else None
        if dtype is None:
            why_null = f"weights {w}: no accelerate dtype (float32/float16/int8/int4) matches this GGUF type"
    elif w in ACC_INT4:
        dtype = "int4"
    else:
        dtype = ACC_DTYPE.get(w)
        if dtype is None:
            why_null = f"weights {w}: no accelerate dtype (float32/float16/int8/int4) matches"
    if gpus > 1 and not why_null:
        why_null = f"{gpus} GPUs: accelerate gives the whole model's size, not a per-GPU split"
    if setting(row, "offload") and not why_null:
        why_null = "offload: accelerate estimate-memory has no offload notion"
    return {"dtype": dtype or "int4", "column": "Total Size", "why_null": why_null}


def hf_mem_plan(row: dict, cfg: Any) -> dict:
    if is_train(row):
        return {"why_null": "hf-mem estimates inference only (weights + KV cache); this is a training row"}
    w = weights_of(row)
    kv = str(setting(row, "kv_dtype", "") or "").lower()
    gguf = w.startswith("gguf:")
    why_null = None
    if gguf:
        mapping = {"": "auto", "fp16": "F16", "f16": "F16", "bf16": "BF16", "q8_0": "Q8_0", "q4_0": "Q4_0"}
        kv_arg = mapping.get(kv)
        if kv_arg is None:
            kv_arg = "auto"
            why_null = f"kv_dtype {kv}: no matching --kv-cache-dtype for GGUF"
    else:
        if kv in {"", "auto"}:
            # 'auto' reads torch_dtype from config.json; it raises on gptq/awq/bitsandbytes configs, so
            # quantized rows get the 2-byte 'bfloat16' (same size as fp16, the KV dtype those run with).
            kv_arg = "auto" if w in TORCH_DTYPE else "bfloat16"
        elif kv in {"fp16", "float16", "bf16", "bfloat16"}:
            kv_arg = "bfloat16"
        elif kv.startswith("fp8") or kv in {"int8", "q8_0", "float8"}:
            kv_arg = "fp8"
        elif kv in {"fp32", "float32"} and w == "fp32":
            kv_arg = "auto"
        else:
            kv_arg = "fp8"
            why_null = f"kv_dtype {kv}: hf-mem's --kv-cache-dtype has no such size (raw holds the fp8 answer)"
    gpus = int(setting(row, "gpus", 1))
    if gpus > 1 and not why_null:
        why_null = f"{gpus} GPUs: hf-mem gives the whole model's memory, not a per-GPU split"
    if setting(row, "offload") and not why_null:
        why_null = "offload: hf-mem has no offload notion"
    max_len = int(setting(row, "seq_len", 0)) + int(setting(row, "gen_tokens", 0))
    return {
        "why_null": why_null,
        "max_model_len": max_len or None,
        "batch_size": int(setting(row, "batch", 1)),
        "kv_cache_dtype": kv_arg,
        "gguf": gguf,
    }


def deepspeed_plan(row: dict, total_params: int, largest: int) -> dict:
    sharding = str(setting(row, "sharding", "none")).lower()
    if sharding not in {"zero1", "zero2", "zero3"}:
        return {"why_null": f"sharding {sharding}: DeepSpeed's ZeRO estimators apply to ZeRO rows only"}
    why_null = None
    method = str(setting(row, "method", "full")).lower()
    precision = str(setting(row, "precision", "") or "").lower()
    if sharding == "zero1":
        why_null = "ZeRO-1: DeepSpeed ships model-state estimators for ZeRO-2 and ZeRO-3 only (raw: ZeRO-2's)"
    elif method != "full":
        why_null = (
            f"method {method}: the estimators assume every parameter is trained (16-bit params + 18 bytes "
            "of grads/fp32 master/Adam states per parameter); raw holds that answer"
        )
    elif precision == "fp32":
        why_null = "fp32 training: the estimators assume 16-bit mixed precision (raw holds that answer)"
    offload = str(setting(row, "offload", "") or "").lower() == "cpu"
    return {
        "why_null": why_null,
        "stage": 3 if sharding == "zero3" else 2,
        "total_params": total_params,
        "largest_layer_params": largest,
        "num_gpus_per_node": int(setting(row, "gpus", 1)),
        "num_nodes": 1,
        "offload": offload,
    }


def plan_row(row: dict) -> tuple[dict, dict]:
    """(served files for the row's repo, per-peer plans + notes)."""
    cfg, model, notes = build_config(row)
    w = weights_of(row)
    quant = quant_config(w)
    cfg_json = config_json(cfg, row, quant)
    files: dict[str, VFile] = {"config.json": VFile(json.dumps(cfg_json, indent=2, sort_keys=True).encode())}
    tensors = hub_tensors(model, cfg)
    served: dict[str, Any] = {
        "config": {k: cfg_json[k] for k in sorted(cfg_json) if k != "quantization_config"}
    }
    if quant:
        served["quantization_config"] = quant
    max_len = int(setting(row, "seq_len", 0)) + int(setting(row, "gen_tokens", 0))
    gguf_path = None
    if w.startswith("gguf:"):
        ftype = w.split(":", 1)[1].upper()
        if ftype in GGUF_FTYPES:
            raw = [(n, list(p.shape)) for n, p in model.named_parameters()]
            f, mix = gguf_file(raw, cfg, ftype, max_len)
            gguf_path = f"model-{ftype}.gguf"
            files[gguf_path] = f
            served["gguf"] = {"file": gguf_path, "tensor_types": mix, "size": f.size}
        else:
            served["gguf"] = {"error": f"{ftype}: llama.cpp's mix for this type is not reproduced here"}
    else:
        entries = safetensors_entries(tensors, w)
        files.update(safetensors_repo(entries))
        shards = sorted(k for k in files if k.endswith(".safetensors"))
        served["safetensors"] = {
            "format": FORMAT_NOTE.get(w, f"{storage_dtype(w)} tensors"),
            "files": shards[0]
            if len(shards) == 1
            else f"{len(shards)} shards + model.safetensors.index.json",
            "tensors": len(entries),
            "weight_bytes": sum(entry_bytes(e) for e in entries),
        }
    total = int(row["arch"].get("params") or notes["params_served"])
    largest, where, fused = largest_layer_params(model)
    notes["largest_layer"] = {"params": largest, "module": where}
    if fused:
        notes["largest_layer"]["fused_experts_module_params"] = fused
    plans = {
        "accelerate": accelerate_plan(row),
        "hf_mem": hf_mem_plan(row, cfg),
        "deepspeed": deepspeed_plan(row, total, largest),
    }
    if plans["hf_mem"].get("gguf"):
        plans["hf_mem"]["gguf_file"] = gguf_path
        if gguf_path is None:
            plans["hf_mem"]["why_null"] = served["gguf"]["error"]
            plans["hf_mem"]["skip"] = True
    return files, {"plans": plans, "notes": notes, "served": served}


# ----------------------------------------------------------------------------------------------
# the local fake hub
# ----------------------------------------------------------------------------------------------


class Hub:
    def __init__(self) -> None:
        self.repos: dict[str, dict[str, VFile]] = {}
        self.log: dict[str, set[str]] = {}
        self.meta: dict[str, dict] = {}
        self.lock = threading.Lock()

    def add(self, repo: str, files: dict[str, VFile], api_config: dict) -> None:
        """api_config: the `config` summary the hub's /api/models answer carries (accelerate reads it)."""
        self.repos[repo] = files
        self.meta[repo] = api_config

    def sha(self, repo: str) -> str:
        return hashlib.sha1(repo.encode()).hexdigest()

    def record(self, repo: str, agent: str, line: str) -> None:
        peer = "hf_mem" if agent.startswith("hf-mem") else "accelerate"
        with self.lock:
            self.log.setdefault(f"{repo}|{peer}", set()).add(line)

    def info(self, repo: str) -> dict:
        files = self.repos[repo]
        meta = self.meta[repo]
        return {
            "_id": self.sha(repo)[:24],
            "id": repo,
            "modelId": repo,
            "author": repo.split("/")[0],
            "sha": self.sha(repo),
            "private": False,
            "disabled": False,
            "gated": False,
            "downloads": 0,
            "likes": 0,
            "library_name": "transformers",
            "pipeline_tag": "text-generation",
            "tags": ["transformers", "safetensors", meta["model_type"], "text-generation"],
            "config": meta,
            "siblings": [{"rfilename": p} for p in sorted(files)],
            "createdAt": "2024-01-01T00:00:00.000Z",
            "lastModified": "2024-01-01T00:00:00.000Z",
        }

    def tree(self, repo: str) -> list[dict]:
        return [
            {"type": "file", "oid": f.etag[:40], "size": f.size, "path": p}
            for p, f in sorted(self.repos[repo].items())
        ]


def make_handler(hub: Hub) -> type:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args: Any) -> None:  # quiet
            pass

        def _send(self, code: int, body: bytes, headers: dict[str, str], head_only: bool = False) -> None:
            self.send_response(code)
            for k, v in headers.items():
                self.send_header(k, v)
            if "Content-Length" not in headers:
                self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if not head_only:
                self.wfile.write(body)

        def _json(self, obj: Any, head_only: bool = False) -> None:
            body = json.dumps(obj).encode()
            self._send(200, body, {"Content-Type": "application/json"}, head_only)

        def _missing(self, head_only: bool = False) -> None:
            body = b'{"error":"Entry not found"}'
            self._send(
                404, body, {"Content-Type": "application/json", "X-Error-Code": "EntryNotFound"}, head_only
            )

        def _route(self, head_only: bool) -> None:
            url = urlsplit(self.path)
            path = unquote(url.path)
            agent = self.headers.get("User-Agent", "")
            m = re.match(r"^/api/models/([^/]+/[^/]+?)(?:/revision/[^/]+)?/?$", path)
            if m and m.group(1) in hub.repos:
                hub.record(m.group(1), agent, f"{self.command} /api/models/<repo>")
                return self._json(hub.info(m.group(1)), head_only)
            m = re.match(r"^/api/models/([^/]+/[^/]+)/tree/[^/]+/?$", path)
            if m and m.group(1) in hub.repos:
                hub.record(m.group(1), agent, f"{self.command} /api/models/<repo>/tree/main")
                return self._json(hub.tree(m.group(1)), head_only)
            m = re.match(r"^/([^/]+/[^/]+)/resolve/[^/]+/(.+)$", path)
            if not m or m.group(1) not in hub.repos or m.group(2) not in hub.repos[m.group(1)]:
                if m and m.group(1) in hub.repos:
                    hub.record(m.group(1), agent, f"{self.command} /<repo>/resolve/main/{m.group(2)} -> 404")
                return self._missing(head_only)
            repo, fname = m.group(1), m.group(2)
            f = hub.repos[repo][fname]
            base = {
                "X-Repo-Commit": hub.sha(repo),
                "ETag": f'"{f.etag}"',
                "Accept-Ranges": "bytes",
                "Content-Type": "application/octet-stream",
            }
            rng = self.headers.get("Range")
            if rng:
                rm = re.match(r"bytes=(\d+)-(\d*)", rng)
                if not rm:
                    return self._send(416, b"", base, head_only)
                start = int(rm.group(1))
                end = int(rm.group(2)) if rm.group(2) else f.size - 1
                end = min(end, f.size - 1)
                hub.record(repo, agent, f"{self.command} /<repo>/resolve/main/{fname} Range")
                body = b"" if head_only else f.read(start, end)
                hdr = dict(base, **{"Content-Range": f"bytes {start}-{end}/{f.size}"})
                hdr["Content-Length"] = str(end - start + 1)
                return self._send(206, body, hdr, head_only)
            hub.record(repo, agent, f"{self.command} /<repo>/resolve/main/{fname}")
            if head_only:
                return self._send(200, b"", dict(base, **{"Content-Length": str(f.size)}), True)
            if f.size > 64 << 20:  # the peers only ever need headers of weight files
                return self._send(403, b"whole-file download refused by the bench hub", {}, False)
            return self._send(200, f.read(0, f.size - 1), base, False)

        def do_GET(self) -> None:
            self._route(False)

        def do_HEAD(self) -> None:
            self._route(True)

    return Handler


# ----------------------------------------------------------------------------------------------
# peer workers (each its own process, all rows)
# ----------------------------------------------------------------------------------------------


def worker_accelerate(jobs: list[dict]) -> dict:
    import contextlib
    import io

    from accelerate.commands.estimate import estimate_command, gather_data

    out = {}
    for job in jobs:
        args = argparse.Namespace(
            model_name=job["repo"], library_name=None, dtypes=[job["dtype"]], trust_remote_code=False
        )
        try:
            data = gather_data(args)
            dtype, largest, total, training = data[0]
            printed = io.StringIO()
            with contextlib.redirect_stdout(printed):
                estimate_command(
                    argparse.Namespace(
                        model_name=job["repo"],
                        library_name=None,
                        dtypes=[job["dtype"]],
                        trust_remote_code=False,
                    )
                )
            peak = max(training.values())
            out[job["id"]] = {
                "dtype": dtype,
                "largest_layer_bytes": int(largest),
                "total_size_bytes": int(total),
                "training_components_bytes": {k: int(v) for k, v in training.items()},
                "training_adam_bytes": None if peak == -1 else int(peak),
                "printed": printed.getvalue(),
            }
        except Exception as exc:
            out[job["id"]] = {"error": f"{type(exc).__name__}: {exc}"[:1000]}
    return out


def worker_hf_mem(jobs: list[dict], port: int) -> dict:
    import asyncio
    import importlib

    import httpx2

    hf_run = importlib.import_module("hf_mem.run")  # the module (hf_mem.run the attribute is a function)

    class ToLocalHub(httpx2.AsyncBaseTransport):
        """Sends hf-mem's https://huggingface.co/... requests, unchanged otherwise, to the local hub."""

        def __init__(self) -> None:
            self.inner = httpx2.AsyncHTTPTransport()

        async def handle_async_request(self, request: Any) -> Any:
            request.url = request.url.copy_with(scheme="http", host="127.0.0.1", port=port)
            return await self.inner.handle_async_request(request)

        async def aclose(self) -> None:
            await self.inner.aclose()

    base_client = httpx2.AsyncClient

    class LocalClient(base_client):  # type: ignore[misc,valid-type]
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            kwargs["mounts"] = {"https://huggingface.co": ToLocalHub()}
            kwargs["trust_env"] = False
            super().__init__(*args, **kwargs)

    shim = type(sys)("httpx2_shim")
    shim.AsyncClient, shim.Limits, shim.Timeout = LocalClient, httpx2.Limits, httpx2.Timeout
    hf_run.httpx2 = shim  # only hf_mem.run builds the client; its fetch helpers just use it
    out = {}
    for job in jobs:
        try:
            result = asyncio.run(
                hf_run.arun(
                    model_id=job["repo"],
                    experimental=True,
                    max_model_len=job["max_model_len"],
                    batch_size=job["batch_size"],
                    kv_cache_dtype=job["kv_cache_dtype"],
                    gguf_file=job.get("gguf_file"),
                )
            )
            out[job["id"]] = {
                "args": {
                    "--experimental": True,
                    "--max-model-len": job["max_model_len"],
                    "--batch-size": job["batch_size"],
                    "--kv-cache-dtype": job["kv_cache_dtype"],
                    **({"--gguf-file": job["gguf_file"]} if job.get("gguf_file") else {}),
                },
                "json_output": result.to_json(),
                "kv_cache_dtype_resolved": getattr(result.kv_cache_metadata, "cache_dtype", None)
                or (
                    result.gguf_files[result.filename].kv_cache.cache_dtype
                    if result.gguf_files and result.filename and result.gguf_files[result.filename].kv_cache
                    else None
                ),
            }
        except Exception as exc:
            out[job["id"]] = {"error": f"{type(exc).__name__}: {exc}"[:1000]}
    return out


def worker_deepspeed(jobs: list[dict]) -> dict:
    import contextlib
    import io
    import logging

    logging.disable(logging.WARNING)
    from deepspeed.runtime.zero.stage3 import (
        estimate_zero3_model_states_mem_needs,
        estimate_zero3_model_states_mem_needs_all_cold,
    )
    from deepspeed.runtime.zero.stage_1_and_2 import (
        estimate_zero2_model_states_mem_needs,
        estimate_zero2_model_states_mem_needs_all_cold,
    )

    out = {}
    for job in jobs:
        common = {"num_gpus_per_node": job["num_gpus_per_node"], "num_nodes": job["num_nodes"]}
        printed = io.StringIO()
        options = []
        try:
            if job["stage"] == 2:
                with contextlib.redirect_stdout(printed):
                    estimate_zero2_model_states_mem_needs_all_cold(total_params=job["total_params"], **common)
                for off in (True, False):
                    cpu, gpu = estimate_zero2_model_states_mem_needs(
                        job["total_params"], cpu_offload=off, **common
                    )
                    options.append(
                        {"offload_optimizer": "cpu" if off else "none", "per_cpu": cpu, "per_gpu": gpu}
                    )
            else:
                with contextlib.redirect_stdout(printed):
                    estimate_zero3_model_states_mem_needs_all_cold(
                        total_params=job["total_params"],
                        largest_layer_params=job["largest_layer_params"],
                        **common,
                    )
                for off in (True, False):
                    for off_p in (True, False):
                        if not off and off_p:
                            continue
                        for zi in (True, False):
                            cpu, gpu, _ = estimate_zero3_model_states_mem_needs(
                                job["total_params"],
                                job["largest_layer_params"],
                                cpu_offload=off,
                                cpu_offload_params=off_p,
                                zero_init=zi,
                                **common,
                            )
                            options.append(
                                {
                                    "offload_param": "cpu" if off_p else "none",
                                    "offload_optimizer": "cpu" if off else "none",
                                    "zero_init": int(zi),
                                    "per_cpu": cpu,
                                    "per_gpu": gpu,
                                }
                            )
            out[job["id"]] = {"printed": printed.getvalue(), "options": options}
        except Exception as exc:
            out[job["id"]] = {"error": f"{type(exc).__name__}: {exc}"[:1000]}
    return out


def worker_main(kind: str, jobs_path: Path, result_path: Path, port: int) -> None:
    jobs = json.loads(jobs_path.read_text())
    if kind == "accelerate":
        res = worker_accelerate(jobs)
    elif kind == "hf_mem":
        res = worker_hf_mem(jobs, port)
    else:
        res = worker_deepspeed(jobs)
    result_path.write_text(json.dumps(res))


# ----------------------------------------------------------------------------------------------
# turning peer answers into the recorded entries
# ----------------------------------------------------------------------------------------------

ACC_TRAIN_NOTE = (
    "accelerate 1.15.0 estimate_training_usage(): for float32 it lists model 4P, gradients 4P, optimizer 8P, "
    "step 16P bytes; for float16 (mixed precision) model 4P, gradients 6P, optimizer 8P, step 8P; the "
    "'Training using Adam' column is max() of those (not their sum), P = parameters of AutoModel"
)


def entry_accelerate(row: dict, plan: dict, ans: dict | None, repo: str) -> dict:
    base_what = (
        f"`accelerate estimate-memory {repo} --dtypes {plan['dtype']}` (python entry point "
        "accelerate.commands.estimate.gather_data/estimate_command). It builds AutoModel.from_config on the "
        "meta device -- the base model WITHOUT the lm_head unless config has an auto_map -- and sums "
        "parameters+buffers at fp32, then divides by 2/4/8 for float16/int8/int4. "
    )
    if str(row["arch"].get("model_type") or "").lower() in REMOTE_CODE:
        base_what += (
            "This remote-code family's repo carries an auto_map with AutoModelForCausalLM, so accelerate "
            "builds the whole LM, head included (on the real hub it also needs --trust_remote_code). "
        )
    if ans is None or "error" in ans:
        return {"bytes": None, "what": base_what + "peer failed", "raw": ans}
    raw = dict(ans)
    if plan["column"] == "Training using Adam":
        value = ans["training_adam_bytes"]
        what = base_what + f"Took 'Training using Adam' for dtype {plan['dtype']}: " + ACC_TRAIN_NOTE + "."
        if plan["dtype"] == "float16":
            what += " (bf16/amp rows use accelerate's float16 line: it has no bfloat16 choice; same sizes.)"
    else:
        value = ans["total_size_bytes"]
        what = (
            base_what
            + f"Took 'Total Size' for dtype {plan['dtype']}: weights only (no KV cache/activations)."
        )
        if weights_of(row) in ACC_INT4 | {"int8", "gptq-int8"} or weights_of(row).startswith("gguf:"):
            what += f" Row weights {weights_of(row)} mapped to accelerate's nearest dtype {plan['dtype']}."
        if weights_of(row) == "bf16":
            what += " (bf16 uses the float16 line: same 2 bytes.)"
        if weights_of(row).startswith("gguf:"):
            what += " A GGUF-only repo has no config.json; accelerate was served the base model's config."
    if plan["why_null"]:
        return {"bytes": None, "what": f"null: {plan['why_null']}. Its figure is in raw. " + what, "raw": raw}
    return {"bytes": value, "what": what, "raw": raw}


def entry_hf_mem(row: dict, plan: dict, ans: dict | None, repo: str) -> dict:
    if plan.get("why_null") and ans is None:
        return {"bytes": None, "what": f"null: {plan['why_null']}", "raw": None}
    if ans is None or "error" in ans:
        return {"bytes": None, "what": "hf-mem failed on the served repo", "raw": ans}
    j = ans["json_output"]
    kv = ans.get("kv_cache_dtype_resolved") or "n/a"
    what = (
        f"`hf-mem --model-id {repo} --experimental --max-model-len {plan['max_model_len']} "
        f"--batch-size {plan['batch_size']} --kv-cache-dtype {plan['kv_cache_dtype']}"
        + (f" --gguf-file {plan['gguf_file']}" if plan.get("gguf_file") else "")
        + " --json-output` (hf_mem.run.arun). Took total_memory = memory (bytes of every tensor listed "
        f"in the served {'GGUF' if plan.get('gguf_file') else 'safetensors'} headers) + kv_cache (2 x layers "
        f"x kv_heads x head_dim x max_model_len x batch x bytes of {kv}); max_model_len = seq_len + "
        "gen_tokens. No activations, CUDA context or allocator overhead."
    )
    w = weights_of(row)
    if w.startswith("gguf:"):
        what += (
            f" Served GGUF: {w.split(':', 1)[1]} with llama.cpp's per-tensor type mix "
            "(llama_tensor_get_type_impl in src/llama-quant.cpp), no tokenizer arrays in the header."
        )
    elif w in FORMAT_NOTE:
        what += f" Served as a pre-quantized checkpoint: {FORMAT_NOTE[w]}."
    if j.get("kv_cache") is None:
        what += (
            " hf-mem computed no KV cache for this config.json (it needs hidden_size, num_hidden_layers and "
            "num_attention_heads keys), so total_memory is the weights alone."
        )
    kv_row = str(setting(row, "kv_dtype", "") or "").lower()
    if plan["kv_cache_dtype"] == "fp8" and not kv_row.startswith("fp8"):
        what += f" Row kv_dtype {kv_row} given as --kv-cache-dtype fp8 (hf-mem's 1-byte choice)."
    if plan["kv_cache_dtype"] == "bfloat16" and w not in TORCH_DTYPE:
        what += (
            " --kv-cache-dtype bfloat16 because 'auto' raises on gptq/awq/bitsandbytes configs and hf-mem "
            "has no float16 choice (same 2 bytes)."
        )
    if plan.get("why_null"):
        return {"bytes": None, "what": f"null: {plan['why_null']}. " + what, "raw": ans}
    return {"bytes": j.get("total_memory"), "what": what, "raw": ans}


def entry_deepspeed(row: dict, plan: dict, ans: dict | None) -> dict:
    if "stage" not in plan:
        return {"bytes": None, "what": f"null: {plan['why_null']}", "raw": None}
    if ans is None or "error" in ans:
        return {"bytes": None, "what": "DeepSpeed estimator failed", "raw": ans}
    stage = plan["stage"]
    off = "cpu" if plan["offload"] else "none"
    if stage == 2:
        pick = next(o for o in ans["options"] if o["offload_optimizer"] == off)
        label = f"offload_optimizer={off}"
        fn = "estimate_zero2_model_states_mem_needs_all_cold (deepspeed/runtime/zero/stage_1_and_2.py)"
        formula = (
            "per GPU = 2P + 18P/gpus (no offload) or 2P (optimizer offloaded): 16-bit params, plus "
            "partitioned 16-bit grads, fp32 grads, fp32 master params and Adam moments"
        )
    else:
        pick = next(
            o
            for o in ans["options"]
            if o["offload_optimizer"] == off and o["offload_param"] == off and o["zero_init"] == 1
        )
        label = f"offload_param={off}, offload_optimizer={off}, zero_init=1"
        fn = "estimate_zero3_model_states_mem_needs_all_cold (deepspeed/runtime/zero/stage3.py)"
        formula = (
            "per GPU = 4 x largest_layer_params + 18P/gpus (no offload) or 4 x largest_layer_params (both "
            "offloaded); GPU figures do not depend on zero_init"
        )
    what = (
        f"{fn}(total_params={plan['total_params']}, "
        + (f"largest_layer_params={plan['largest_layer_params']}, " if stage == 3 else "")
        + f"num_gpus_per_node={plan['num_gpus_per_node']}, num_nodes=1). Took the 'per GPU' figure of the "
        f"line {label} (exact bytes from the function it prints: "
        f"estimate_zero{stage}_model_states_mem_needs). "
        f"{formula}. Model states only: no activations, buffers, CUDA context or fragmentation. "
        "total_params = the row's arch.params (else the served model's count)."
    )
    if stage == 3:
        what += (
            " largest_layer_params: DeepSpeed's model_to_params() rule on the served model (fused MoE "
            "experts counted per expert matrix)."
        )
        if plan["offload"]:
            what += (
                " Row offload=cpu read as both params and optimizer offloaded; the other lines are in raw."
            )
    if plan["why_null"]:
        return {"bytes": None, "what": f"null: {plan['why_null']}. " + what, "raw": ans}
    return {"bytes": int(pick["per_gpu"]), "what": what, "raw": ans}


# ----------------------------------------------------------------------------------------------
# main
# ----------------------------------------------------------------------------------------------


def run_workers(plans: dict[str, dict], repos: dict[str, str], port: int, tmp: Path) -> dict[str, dict]:
    jobs: dict[str, list] = {p: [] for p in PEERS}
    for rid, info in plans.items():
        pl = info["plans"]
        jobs["accelerate"].append({"id": rid, "repo": repos[rid], "dtype": pl["accelerate"]["dtype"]})
        hp = pl["hf_mem"]
        if "max_model_len" in hp and not hp.get("skip"):
            jobs["hf_mem"].append(
                {
                    "id": rid,
                    "repo": repos[rid],
                    "max_model_len": hp["max_model_len"],
                    "batch_size": hp["batch_size"],
                    "kv_cache_dtype": hp["kv_cache_dtype"],
                    "gguf_file": hp.get("gguf_file"),
                }
            )
        dp = pl["deepspeed"]
        if "stage" in dp:
            jobs["deepspeed"].append({"id": rid, **{k: v for k, v in dp.items() if k != "why_null"}})
    env = dict(os.environ)
    env.update(
        {
            "HF_ENDPOINT": f"http://127.0.0.1:{port}",
            "HF_HOME": str(tmp / "hf-home"),
            "HF_HUB_DISABLE_TELEMETRY": "1",
            "HF_HUB_DISABLE_XET": "1",
            "HF_HUB_ETAG_TIMEOUT": "30",
            "NO_PROXY": "127.0.0.1,localhost",
            "no_proxy": "127.0.0.1,localhost",
            "TRANSFORMERS_VERBOSITY": "error",
            "TOKENIZERS_PARALLELISM": "false",
            "DS_ACCELERATOR": "cpu",
        }
    )
    for var in ("HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"):
        env.pop(var, None)
    procs = {}
    for peer in PEERS:
        if not jobs[peer]:
            continue
        jp, rp = tmp / f"jobs-{peer}.json", tmp / f"result-{peer}.json"
        jp.write_text(json.dumps(jobs[peer]))
        cmd = [sys.executable, str(Path(__file__).resolve()), "--worker", peer, str(jp), str(rp), str(port)]
        log = (tmp / f"{peer}.log").open("w")
        procs[peer] = (subprocess.Popen(cmd, env=env, stdout=log, stderr=subprocess.STDOUT), rp, log)
    results: dict[str, dict] = {}
    for peer, (proc, rp, log) in procs.items():
        try:
            proc.wait(timeout=900)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        if rp.exists():
            results[peer] = json.loads(rp.read_text())
        else:
            tail = (tmp / f"{peer}.log").read_text()[-2000:]
            results[peer] = {
                j["id"]: {"error": f"worker died (exit {proc.returncode}): {tail}"} for j in jobs[peer]
            }
    return results


def measured_str(row: dict) -> str:
    m = row.get("measured") or {}
    return f"{m.get('value')} {m.get('unit', '')}".strip()


def gib(b: int | None) -> str:
    return "-" if b is None else f"{b / GIB:.2f}"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--rows", type=Path, action="append", help="row file(s); default: tests/data/memory_*.json"
    )
    ap.add_argument("--only", action="append", help="run only these row ids")
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    ap.add_argument("--no-venv", action="store_true", help="run in the current interpreter")
    args = ap.parse_args()
    if not args.no_venv:
        ensure_venv()

    os.environ.setdefault("TRANSFORMERS_VERBOSITY", "error")  # meta models are built here too
    rows, used = load_rows(args.rows or DEFAULT_ROWS)
    if args.only:
        rows = [r for r in rows if r.get("id") in set(args.only)]
    ids = [r["id"] for r in rows]
    if len(set(ids)) != len(ids):
        raise SystemExit("duplicate row ids")

    hub = Hub()
    plans: dict[str, dict] = {}
    repos: dict[str, str] = {}
    failed: dict[str, str] = {}
    for row in rows:
        rid = row["id"]
        try:
            files, info = plan_row(row)
        except Exception as exc:
            failed[rid] = f"{type(exc).__name__}: {exc}"[:1000]
            continue
        repo = repo_name(rid)
        repos[rid] = repo
        cfgj = json.loads(files["config.json"].head)
        api_config = {"architectures": cfgj["architectures"], "model_type": cfgj["model_type"]}
        if info["notes"]["remote_code"]:
            # the real repo's auto_map names its own AutoModelForCausalLM class; accelerate then builds
            # the whole LM (with its head) instead of AutoModel -- keep that choice for the stand-in
            api_config["auto_map"] = {
                "AutoModelForCausalLM": f"modeling_{info['notes']['row_model_type']}.Model"
            }
        hub.add(repo, files, api_config)
        plans[rid] = info

    server = ThreadingHTTPServer(("127.0.0.1", 0), make_handler(hub))
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        with tempfile.TemporaryDirectory(prefix="peer-estimates-") as tmp:
            answers = run_workers(plans, repos, server.server_address[1], Path(tmp))
    finally:
        server.shutdown()
        server.server_close()

    out_rows: dict[str, Any] = {}
    for row in rows:
        rid = row["id"]
        if rid in failed:
            err = {"bytes": None, "what": f"could not build the served model: {failed[rid]}", "raw": None}
            out_rows[rid] = {
                "measured": row.get("measured"),
                "accelerate": err,
                "hf_mem": err,
                "deepspeed": err,
            }
            continue
        info, repo = plans[rid], repos[rid]
        pl = info["plans"]
        acc = entry_accelerate(row, pl["accelerate"], answers.get("accelerate", {}).get(rid), repo)
        hfm = entry_hf_mem(row, pl["hf_mem"], answers.get("hf_mem", {}).get(rid), repo)
        ds = entry_deepspeed(row, pl["deepspeed"], answers.get("deepspeed", {}).get(rid))
        for name, entry in (("accelerate", acc), ("hf_mem", hfm)):
            reqs = sorted(hub.log.get(f"{repo}|{name}", ()))
            if reqs and isinstance(entry.get("raw"), dict):
                entry["raw"]["hub_requests"] = reqs
        notes = dict(info["notes"])
        gap = notes["params_gap"]
        if gap is not None and abs(gap) > MAX_PARAMS_GAP:
            for entry in (acc, hfm):
                if entry["bytes"] is not None:
                    entry["bytes"] = None
                    entry["what"] = (
                        "null: no equivalent model could be served (the stand-in has "
                        f"{notes['params_served']} parameters, the row {notes['params_row']}: {gap:+.1%}); "
                        "raw holds the stand-in's answer. " + entry["what"]
                    )
        if notes["mapped"]:
            notes["mapping"] = (
                f"model_type {notes['row_model_type']} served as an equivalent {notes['served_model_type']} "
                "config (same layers/hidden/heads/kv_heads/head_dim/vocab/tie"
                + (
                    f"; intermediate_size {notes['intermediate_size_served']} instead of the row's "
                    f"{row['arch']['intermediate_size']} so the parameter count matches"
                    if notes["intermediate_size_served"]
                    else "/intermediate"
                )
                + ")"
                + (
                    "; a remote-code model (trust_remote_code on the real hub): its api config carries an "
                    "AutoModelForCausalLM auto_map as the real repo's does"
                    if notes["remote_code"]
                    else ""
                )
            )
        out_rows[rid] = {
            "measured": row.get("measured"),
            "unit_basis": row.get("unit_basis"),
            "served": {"repo": repo, **info["served"], "model": notes},
            "accelerate": acc,
            "hf_mem": hfm,
            "deepspeed": ds,
        }

    result = {
        "machine": machine(),
        "versions": versions(),
        "row_files": used,
        "deepspeed_source": "real package (deepspeed 0.19.8 installed with DS_BUILD_OPS=0, CPU accelerator)",
        "rows": out_rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=1, sort_keys=True, ensure_ascii=False) + "\n")

    print(f"{'row':<48} {'measured':>14} {'accelerate':>11} {'hf-mem':>8} {'deepspeed':>10}  (GiB)")
    for rid, r in out_rows.items():
        acc, hfm, ds = (gib(r[p]["bytes"]) for p in PEERS)
        print(f"{rid[:48]:<48} {measured_str(r):>14} {acc:>11} {hfm:>8} {ds:>10}")
    shown = args.out.relative_to(ROOT) if args.out.is_relative_to(ROOT) else args.out
    print(f"wrote {shown} ({len(out_rows)} rows)")


if __name__ == "__main__":
    if len(sys.argv) >= 6 and sys.argv[1] == "--worker":
        worker_main(sys.argv[2], Path(sys.argv[3]), Path(sys.argv[4]), int(sys.argv[5]))
    else:
        main()
