"""`recommend`: the seed's one-line format guide, sized by the estimator."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tensorfile.errors import TensorfileError
from tensorfile.estimate import estimate_memory
from tensorfile.estimate.weights import weight_bytes
from tensorfile.recommend import GIB, TARGETS, recommend
from tensorfile.targets import TARGET_NAMES

from .conftest import run_cli

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES = ROOT / "examples" / "models"
HF = ROOT / "tests" / "fixtures" / "hf"

FOUR_BIT_OR_LESS = {"Q4_K_M", "Q4_K_S", "Q4_0", "Q4_1", "Q3_K_L", "Q3_K_M", "Q3_K_S", "Q2_K"}


@pytest.mark.parametrize(
    ("target", "fmt", "ext", "runtime"),
    [
        ("phone-android", "TensorFlow Lite", ".tflite", "LiteRT"),
        ("phone-ios", "Core ML", ".mlpackage", "Core ML"),
        ("nvidia-server", "safetensors", ".safetensors", "vLLM"),
        ("cpu", "GGUF", ".gguf", "llama.cpp"),
        ("intel", "OpenVINO IR", ".xml + .bin", "OpenVINO"),
        ("cross-framework", "ONNX", ".onnx", "ONNX Runtime"),
        ("share", "safetensors", ".safetensors", "transformers"),
        ("resume-training", "PyTorch checkpoint", ".pt", "torch.save"),
    ],
)
def test_each_target_gets_its_format_family_for_a_7b(target: str, fmt: str, ext: str, runtime: str) -> None:
    rec = recommend("7B", target)
    assert rec.format.startswith(fmt)
    assert rec.extension == ext
    assert runtime in rec.runtime
    assert rec.disk_bytes and rec.disk_bytes > 1 * GIB
    assert len(rec.reasons) >= 2 and all(r.endswith(".") for r in rec.reasons)
    assert rec.alternatives and all(a["format"] and a["when"] for a in rec.alternatives)


def test_defaults_without_memory_follow_the_seed_guide() -> None:
    assert recommend("7B", "cpu").quantization == "Q4_K_M"  # 我只有 CPU 想跑 7B 大模型 → GGUF (Q4_K_M)
    cpu = recommend("7B", "cpu")
    assert cpu.fits is None and cpu.memory_bytes is None
    assert any("--memory" in r for r in cpu.reasons)
    assert recommend("7B", "intel").quantization == "int8"
    assert recommend("7B", "share").quantization == "bf16"
    assert recommend("7B", "resume-training").quantization == "full"


def test_cpu_with_8_gib_picks_a_4_bit_or_smaller_gguf_that_fits() -> None:
    rec = recommend("7B", "cpu", memory_gib=8)
    assert rec.quantization in FOUR_BIT_OR_LESS
    assert rec.fits is True
    assert rec.runtime_bytes <= 8 * GIB
    assert rec.runtime_bytes <= rec.budget_bytes == round(0.9 * 8 * GIB)
    # the number is the estimator's CPU run: llama.cpp engine, KV cache for the default context,
    # the host-kept token embeddings in the same RAM, no CUDA context, workspace or allocator margin
    run = dict(weights=rec.weights, engine="llama.cpp", seq_len=4096, gen_tokens=512)
    est = estimate_memory("7B", **run)
    est_ram = estimate_memory("7B", **run, device="cpu")
    assert (
        rec.runtime_bytes
        == round(est_ram.per_gpu_bytes)
        == round(est.per_gpu_bytes + est.host_bytes)
        - (est.breakdown["workspace"] + est.breakdown["allocator margin"] + est.breakdown["CUDA context"])
    )
    assert est_ram.host_bytes == 0 and "workspace" not in est_ram.breakdown
    assert rec.disk_bytes == round(weight_bytes(est_ram.model, rec.weights).total)
    assert rec.breakdown["KV cache"] > 1 * GIB
    # the next better option did not fit, and the reason says so with its number
    options = [c["quantization"] for c in rec.candidates]
    better = rec.candidates[options.index(rec.quantization) - 1]
    assert better["fits"] is False and better["runtime_bytes"] > rec.budget_bytes
    assert f"{better['quantization']} would need" in rec.reasons[1]


def test_cpu_with_64_gib_picks_q8_0() -> None:
    rec = recommend("7B", "cpu", memory_gib=64)
    assert rec.quantization == "Q8_0"
    assert rec.fits is True
    assert "Q8_0" in " ".join(rec.commands)


def test_more_memory_never_picks_a_smaller_quantization() -> None:
    order = [o.key for o in TARGETS["cpu"].options]
    picks = [
        order.index(recommend("7B", "cpu", memory_gib=g).quantization) for g in (6, 7, 8, 10, 12, 16, 64)
    ]
    assert picks == sorted(picks, reverse=True)


def test_nvidia_server_24_gib_7b_is_bf16_or_8_bit_on_one_gpu() -> None:
    rec = recommend("7B", "nvidia-server", memory_gib=24)
    assert rec.quantization in ("bf16", "fp8", "int8")
    assert rec.gpus == 1 and rec.fits is True
    assert rec.runtime_bytes <= 0.9 * 24 * GIB
    assert rec.device == "GPU memory"
    assert any(c.startswith("vllm serve") for c in rec.commands)


def test_nvidia_server_24_gib_70b_is_4_bit_over_several_gpus() -> None:
    rec = recommend("70B", "nvidia-server", memory_gib=24)
    assert rec.quantization == "awq"
    assert rec.gpus >= 2 and rec.fits is True
    assert rec.runtime_bytes <= 0.9 * 24 * GIB  # per GPU
    assert all(not c["fits"] for c in rec.candidates)  # nothing fits on one GPU
    serve = next(c for c in rec.commands if c.startswith("vllm serve"))
    assert "--quantization awq" in serve and f"--tensor-parallel-size {rec.gpus}" in serve
    assert f"--gpus {rec.gpus}" in " ".join(rec.commands)


def test_nvidia_server_assumes_an_80_gb_gpu_and_says_so() -> None:
    rec = recommend("70B", "nvidia-server")
    assert rec.memory_assumed is True and rec.memory_bytes == 80 * GIB
    assert rec.quantization == "fp8" and rec.gpus == 1  # bf16 70B is 130 GiB of weights
    assert any("assumed one 80 GB GPU" in n for n in rec.notes)


@pytest.mark.parametrize(
    ("model", "target", "gib"), [("70B", "cpu", 8), ("405B", "nvidia-server", 24), ("7B", "phone-ios", 2)]
)
def test_nothing_fits_is_said_clearly(model: str, target: str, gib: float) -> None:
    rec = recommend(model, target, memory_gib=gib)
    assert rec.fits is False
    assert rec.quantization == TARGETS[target].options[-1].key  # the smallest option, with its need
    assert rec.reasons[1].startswith(f"Nothing fits in {gib:.1f} GiB")
    assert "smaller model" in rec.reasons[1]
    assert rec.runtime_bytes > rec.budget_bytes


def test_phones_assume_a_budget_and_pick_4_or_8_bit() -> None:
    small = recommend("1B", "phone-android")
    assert small.memory_assumed is True and small.memory_bytes == 4 * GIB
    assert small.quantization == "int8" and small.fits is True
    assert any("assumed an 8 GB Android phone" in n for n in small.notes)
    assert "--quantize dynamic_int8" in " ".join(small.commands)
    mid = recommend("3B", "phone-android", memory_gib=3)
    assert mid.quantization == "int4" and mid.fits is True
    assert "dynamic_int4_block32" in " ".join(mid.commands)
    assert recommend("7B", "phone-android").fits is False  # 7B does not fit 4 GiB even at 4 bit
    ios = recommend("3B", "phone-ios", memory_gib=3)
    assert ios.quantization == "int4"
    assert "block_size=32" in " ".join(ios.commands)


def test_resume_training_picks_a_method_that_fits() -> None:
    rec = recommend("7B", "resume-training", memory_gib=24)
    assert rec.quantization in ("lora", "qlora") and rec.fits is True
    full = recommend("7B", "resume-training")
    assert full.disk_bytes >= 12 * 7e9  # fp32 weights + two fp32 AdamW moments
    assert rec.disk_bytes < full.disk_bytes / 100  # adapters only
    assert f"--method {rec.quantization}" in " ".join(rec.commands)


@pytest.mark.parametrize(
    ("target", "tools"),
    [
        (
            "cpu",
            (
                "tensorfile convert MODEL_DIR model-Q4_K_M.gguf --quant Q4_K_M",
                "convert_hf_to_gguf.py",
                "llama-quantize model-f16.gguf model-Q4_K_M.gguf Q4_K_M",
                "llama-cli",
            ),
        ),
        ("nvidia-server", ("vllm serve", "--dtype bfloat16", "tensorfile estimate")),
        ("intel", ("optimum-cli export openvino", "--weight-format int8", "openvino_genai")),
        ("cross-framework", ("optimum-cli export onnx", "onnx2tf", "tensorfile inspect")),
        ("phone-ios", ("ct.convert", "linear_quantize_weights", ".mlpackage")),
        ("phone-android", ("ai_edge_torch", "--kv_cache_max_len 1280", "bundler")),
        ("share", ("tensorfile scan", "tensorfile inspect", "upload")),
        (
            "resume-training",
            ("torch.save", "'optimizer'", "weights_only=True", "tensorfile inspect checkpoint.pt"),
        ),
    ],
)
def test_commands_use_the_right_tools(target: str, tools: tuple[str, ...]) -> None:
    text = "\n".join(recommend("7B", target).commands)
    for tool in tools:
        assert tool in text, (tool, text)


def test_awq_commands_quantize_then_serve() -> None:
    rec = recommend("13B", "nvidia-server", memory_gib=16)
    assert rec.quantization == "awq"
    text = "\n".join(rec.commands)
    assert "AutoAWQForCausalLM" in text and "vllm serve model-awq --quantization awq" in text


def test_a_pickle_gets_the_convert_to_safetensors_advice() -> None:
    path = EXAMPLES / "pytorch_model.bin"
    rec = recommend(path, "cpu")
    assert rec.current is not None
    assert rec.current["format"] == "pytorch-zip" and rec.current["can_execute_code"] is True
    assert rec.current["parameters"] == 24736 and rec.current["stored_as"] == "bf16"
    assert any("loading it can run code" in r and "convert it to safetensors" in r for r in rec.reasons)
    assert rec.commands[:3] == [
        f"tensorfile scan {path}",
        f"tensorfile convert {path} {EXAMPLES / 'pytorch_model.safetensors'}",
        f"tensorfile scan {EXAMPLES / 'pytorch_model.safetensors'}",
    ]
    assert rec.format == "GGUF"  # tensor names say it is an LLM even without config.json
    assert rec.runtime_bytes is None and any("shapes unknown" in n for n in rec.notes)
    assert rec.disk_bytes is not None and rec.disk_bytes < 40_000  # 24,736 parameters at ~4.5 bits


def test_a_pickle_via_the_cli_text_output() -> None:
    proc = run_cli("recommend", str(EXAMPLES / "pytorch_model.bin"), "--target", "share")
    assert proc.returncode == 0, proc.stderr
    assert "loading it can run code" in proc.stdout
    assert "tensorfile convert" in proc.stdout and "pytorch_model.safetensors" in proc.stdout


def test_a_training_checkpoint_is_kept_for_resuming() -> None:
    rec = recommend(EXAMPLES / "training-checkpoint.ckpt", "resume-training")
    assert rec.current["checkpoint"] == "training-checkpoint"
    assert any("already a training checkpoint" in r for r in rec.reasons)
    assert not any(c.startswith("tensorfile convert examples") for c in rec.commands)
    assert rec.commands[0].startswith("tensorfile scan")


def test_a_pickle_without_tensors_is_only_scanned() -> None:
    rec = recommend(EXAMPLES / "suspicious.safetensors", "cpu")  # a pickle under a .safetensors name
    assert rec.commands == [f"tensorfile scan {EXAMPLES / 'suspicious.safetensors'}"]
    assert any("extension .safetensors" in r for r in rec.reasons)
    assert any("no tensors" in r for r in rec.reasons)
    assert rec.disk_bytes is None and rec.fits is None


def test_a_safe_file_is_shared_as_it_is() -> None:
    rec = recommend(HF / "llama_safetensors", "share")
    assert rec.format == "safetensors" and rec.quantization == "fp16"  # as stored, never cast
    assert not any("convert" in c for c in rec.commands)
    gguf = recommend(EXAMPLES / "tiny-llama-q8_0.gguf", "share")
    assert gguf.format == "GGUF" and gguf.extension == ".gguf"
    assert any("loads without running code" in r for r in gguf.reasons)


def test_a_model_folder_with_config_gets_run_time_numbers() -> None:
    rec = recommend(HF / "llama_safetensors", "cpu", memory_gib=1)
    assert rec.runtime_bytes is not None and rec.fits is True
    assert rec.quantization == "Q8_0"
    folder = HF / "llama_safetensors"
    assert rec.commands[0] == f"tensorfile convert {folder} llama_safetensors-Q8_0.gguf --quant Q8_0"
    assert rec.commands[2] == (
        f"python llama.cpp/convert_hf_to_gguf.py {folder} --outtype f16 --outfile llama_safetensors-f16.gguf"
    )
    onnx = recommend(EXAMPLES / "mlp.onnx", "nvidia-server")  # not an LLM: TensorRT, no re-export
    assert onnx.format == "TensorRT engine"
    assert onnx.commands[0] == f"trtexec --onnx={EXAMPLES / 'mlp.onnx'} --saveEngine=mlp.engine --fp16"


def test_json_document_has_the_keys() -> None:
    proc = run_cli("recommend", "7B", "--target", "cpu", "--memory", "8", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    for key in (
        "target",
        "format",
        "quantization",
        "disk_bytes",
        "runtime_bytes",
        "fits",
        "commands",
        "reasons",
        "alternatives",
    ):
        assert key in doc, key
    assert doc["target"] == "cpu" and doc["format"] == "GGUF" and doc["fits"] is True
    assert doc["quantization"] in FOUR_BIT_OR_LESS
    assert isinstance(doc["disk_bytes"], int) and doc["runtime_bytes"] <= 8 * GIB
    assert doc == json.loads(json.dumps(recommend("7B", "cpu", memory_gib=8).to_dict()))


def test_cli_text_output_for_a_size() -> None:
    proc = run_cli("recommend", "70B", "--target", "nvidia-server", "--memory", "24", "--seq-len", "2048")
    assert proc.returncode == 0, proc.stderr
    assert "awq" in proc.stdout and "tensor-parallel-size" in proc.stdout
    assert "2,560 tokens" in proc.stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("7B", "--target", "toaster"), "'--target': 'toaster' is not one of 'phone-android'"),
        (("no/such/model.bin", "--target", "cpu"), "no such file or folder"),
        (("7B", "--target", "cpu", "--memory", "-4"), "--memory must be a positive"),
        (("7B", "--target", "cpu", "--memory", "inf"), "--memory must be a positive"),
        (("7B", "--target", "cpu", "--memory", "nan"), "--memory must be a positive"),
        ((str(ROOT / "README.md"), "--target", "cpu"), "not a model format"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(args: tuple[str, ...], message: str) -> None:
    proc = run_cli("recommend", *args)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("tensorfile: error:") and message in lines[0]
    assert proc.stdout == ""


def test_the_cli_target_names_are_the_plans() -> None:
    assert tuple(TARGETS) == TARGET_NAMES
    started = subprocess.run(
        [sys.executable, "-c", "import sys, tensorfile.cli; print('tensorfile.recommend' in sys.modules)"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert started.stdout.strip() == "False"  # the plans load only when recommend runs


def test_library_errors_are_tensorfile_errors() -> None:
    with pytest.raises(TensorfileError, match="unknown target"):
        recommend("7B", "toaster")
    with pytest.raises(TensorfileError, match="does not take"):
        recommend("7B", "cpu", temperature=0.7)


def test_a_quantized_checkpoint_is_never_upcast() -> None:
    rec = recommend(HF / "awq_gptqmodel", "nvidia-server")
    assert rec.current["stored_as"] == "awq"
    assert [c["quantization"] for c in rec.candidates] == ["awq"]  # bf16 cannot come back from 4 bit
    assert rec.quantization == "awq"
    assert any("already awq: run it as it is" in r for r in rec.reasons)
    assert any("already quantized" in r for r in rec.reasons)
