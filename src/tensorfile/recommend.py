"""`recommend`: the seed's one-line format guide (一句话选择指南), made data-driven.

    from tensorfile.recommend import recommend
    rec = recommend("7B", "cpu", memory_gib=8)
    rec.format, rec.quantization, rec.runtime_bytes, rec.commands

For each target the table below says which format to use, the quantizations it offers (best
quality first), why, the commands and the alternatives. The logic only sizes each option with
the estimator and takes the best one that fits the memory given (or assumed, for phones and GPU
servers); without a budget it takes the target's usual default.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from .errors import UnsupportedError, UsageError

GIB = 1024**3


@dataclass(frozen=True)
class Option:
    """One quantization (or training method) a target offers."""

    key: str  # what the user calls it; also the {arg} in commands unless `arg` is set
    settings: dict[str, Any]  # estimator settings: weights=..., or task/method for training
    why: str
    arg: str = ""  # the spelling the target's tool wants
    commands: tuple[str, ...] = ()  # inserted where the plan's commands say "@option"


@dataclass(frozen=True)
class Plan:
    """What to do for one target."""

    label: str
    format: str
    extension: str
    runtime: str
    why: str
    options: tuple[Option, ...]  # best quality first
    default: str  # the option taken without a memory budget ("stored": as the file is)
    commands: tuple[str, ...]
    alternatives: tuple[tuple[str, str], ...]  # (format, when to prefer it)
    device: str = "RAM"  # what runtime_bytes counts: RAM, GPU memory, or "" (nothing runs)
    usable: float = 0.9  # share of the memory the run may take
    usable_why: str = "10% is left for the OS and the rest of the app"
    seq_len: int = 4096
    gen_tokens: int = 512
    assumed_gib: float | None = None
    assumption: str = ""
    multi_gpu: bool = False  # tensor parallel over 2, 4, 8 GPUs when one is not enough
    cap_at_stored: bool = False  # never upcast: the ladder starts at the file's own dtype
    keeps_pickle: bool = False  # the target's format is itself a pickle (resume training)
    keeps_safe: bool = False  # a file that already loads without running code stays as it is


def _gguf(key: str, why: str) -> Option:
    return Option(key, {"weights": f"gguf:{key}", "engine": "llama.cpp"}, why)


def _w(key: str, why: str, arg: str = "", commands: tuple[str, ...] = (), **settings: Any) -> Option:
    return Option(key, {"weights": key, **settings}, why, arg, commands)


_RAM = {"engine": "llama.cpp"}  # CPU and phone runtimes: weights + whole-context KV cache + buffers

_VLLM_AWQ = (
    'python -c "from awq import AutoAWQForCausalLM; from transformers import AutoTokenizer; '
    "m = AutoAWQForCausalLM.from_pretrained('{src}'); t = AutoTokenizer.from_pretrained('{src}'); "
    "m.quantize(t, quant_config={{'w_bit': 4, 'q_group_size': 128, 'zero_point': True, 'version': 'GEMM'}}); "
    "m.save_quantized('{stem}-awq'); t.save_pretrained('{stem}-awq')\"",
    "tensorfile inspect {stem}-awq",
    "vllm serve {stem}-awq --quantization awq --max-model-len {ctx}{tp}",
)
_COREML = (
    ">>> import coremltools as ct, coremltools.optimize as cto, torch",
    ">>> mlmodel = ct.convert(torch.jit.trace(model.eval(), example_inputs), "
    "inputs=[ct.TensorType(shape=example_inputs.shape)], minimum_deployment_target=ct.target.iOS18)",
)
_ONNX_EXPORT = ">>> torch.onnx.export(model.eval(), example_inputs, '{stem}.onnx', dynamo=True)"

TARGETS: dict[str, Plan] = {
    "phone-android": Plan(
        label="Android phone",
        format="TensorFlow Lite (LiteRT)",
        extension=".tflite",
        runtime="LiteRT via the MediaPipe LLM Inference API (a .task bundle)",
        why="LiteRT (TensorFlow Lite) is Android's on-device runtime with CPU (XNNPACK) and GPU "
        "delegates; ai-edge-torch (litert-torch) converts PyTorch LLMs to it with the KV cache built in.",
        options=(
            _w(
                "int8",
                "dynamic_int8: 8-bit weights, float activations; close to the original and "
                "the converter's default.",
                arg="dynamic_int8",
                **_RAM,
            ),
            _w(
                "int4",
                "dynamic_int4_block32: 4-bit weights in blocks of 32; half the RAM of int8 "
                "for some quality loss.",
                arg="dynamic_int4_block32",
                **_RAM,
            ),
        ),
        default="int8",
        commands=(
            "python ai_edge_torch/generative/examples/<family>/convert_<family>_to_tflite.py "
            "--checkpoint_path {src} --output_path {stem}-tflite/ --quantize {arg} --kv_cache_max_len {ctx}",
            "tensorfile inspect {stem}-tflite/<name>.tflite",
            ">>> from mediapipe.tasks.python.genai import bundler; "
            "bundler.create_bundle(bundler.BundleConfig(tflite_model='{stem}-tflite/<name>.tflite', "
            "tokenizer_model='{src}/tokenizer.model', "
            "start_token='<bos>', stop_tokens=['<eos>'], output_filename='{stem}.task'))",
        ),
        alternatives=(
            (
                "GGUF Q4_0 + llama.cpp (NDK build)",
                "any llama.cpp-supported LLM; Q4_0 gets ARM-repacked kernels",
            ),
            ("ExecuTorch .pte (XNNPACK, 8da4w)", "a PyTorch-native path without leaving torch.export"),
            (
                "ONNX Runtime Mobile (.onnx / .ort)",
                "the model is already ONNX or shared with other platforms",
            ),
        ),
        seq_len=1024,
        gen_tokens=256,
        assumed_gib=4.0,
        assumption="assumed an 8 GB Android phone where one app can count on about 4 GiB "
        "(the OS and background apps keep the rest); pass --memory GIB",
    ),
    "phone-ios": Plan(
        label="iPhone / iPad",
        format="Core ML",
        extension=".mlpackage",
        runtime="Core ML (Neural Engine, GPU, CPU)",
        why="Core ML is Apple's on-device runtime: an .mlpackage runs on the Neural Engine and GPU, and "
        "coremltools converts PyTorch models and compresses their weights in the same step.",
        options=(
            _w(
                "int8",
                "8-bit per-channel linear weights: close to the original, half the size of fp16.",
                commands=(
                    ">>> mlmodel = cto.coreml.linear_quantize_weights(mlmodel, cto.coreml.OptimizationConfig("
                    "global_config=cto.coreml.OpLinearQuantizerConfig(mode='linear_symmetric')))",
                ),
                **_RAM,
            ),
            _w(
                "int4",
                "4-bit linear weights in blocks of 32 (iOS 18+): a quarter of fp16 for some quality loss.",
                commands=(
                    ">>> mlmodel = cto.coreml.linear_quantize_weights(mlmodel, cto.coreml.OptimizationConfig("
                    "global_config=cto.coreml.OpLinearQuantizerConfig(mode='linear_symmetric', "
                    "dtype='int4', granularity='per_block', block_size=32)))",
                ),
                **_RAM,
            ),
        ),
        default="int8",
        commands=(
            *_COREML,
            "@option",
            ">>> mlmodel.save('{stem}.mlpackage')",
            "tensorfile inspect {stem}.mlpackage",
        ),
        alternatives=(
            ("GGUF + llama.cpp (Metal)", "an app embedding llama.cpp; any GGUF model runs on the GPU"),
            ("MLX (mlx-lm, 4-bit)", "Apple-silicon Macs rather than phones"),
            ("ExecuTorch .pte (Core ML / MPS backend)", "a PyTorch-native export shared with Android"),
        ),
        seq_len=1024,
        gen_tokens=256,
        assumed_gib=4.0,
        assumption="assumed an 8 GB iPhone (15 Pro, 16) where iOS ends an app using much more than "
        "about 4 GiB unless it has the increased-memory-limit entitlement; pass --memory GIB",
    ),
    "nvidia-server": Plan(
        label="NVIDIA GPU server",
        format="safetensors",
        extension=".safetensors",
        runtime="vLLM (or SGLang)",
        why="vLLM serves Hugging Face safetensors directly, bf16, FP8 or AWQ/GPTQ 4-bit, with a paged KV "
        "cache and continuous batching; nothing has to be rebuilt when the GPU or the version changes.",
        options=(
            _w(
                "bf16",
                "the weights as trained: no quality loss and vLLM's simplest path.",
                commands=("vllm serve {src} --dtype bfloat16 --max-model-len {ctx}{tp}",),
            ),
            _w(
                "fp8",
                "8-bit floating-point weights (and activations on Ada/Hopper: L4, L40S, RTX 4090, "
                "H100): half of bf16 at nearly the same quality; Ampere runs it weight-only.",
                commands=("vllm serve {src} --quantization fp8 --max-model-len {ctx}{tp}",),
            ),
            _w(
                "awq",
                "AWQ 4-bit weights in groups of 128: about a quarter of bf16's weight memory for a "
                "small quality loss; vLLM runs it with Marlin kernels.",
                commands=_VLLM_AWQ,
            ),
        ),
        default="bf16",
        commands=(
            "@option",
            "tensorfile estimate {model} --weights {weights} --seq-len {seq} --gen-tokens {gen}{gpus}",
        ),
        alternatives=(
            (
                "TensorRT-LLM engine (.engine)",
                "the highest throughput on one fixed GPU type: trtllm-build "
                "--checkpoint_dir ckpt/ --output_dir engine/; rebuild it for every GPU model and version",
            ),
            (
                "GPTQ 4-bit safetensors",
                "a published -GPTQ checkpoint exists: vllm serve ... --quantization gptq",
            ),
            ("SGLang", "the same checkpoints: python -m sglang.launch_server --model-path ..."),
        ),
        device="GPU memory",
        usable=0.9,
        usable_why="vLLM takes 90% of the GPU (--gpu-memory-utilization 0.9) and fills what the weights "
        "leave with KV cache for concurrent requests",
        assumed_gib=80.0,
        assumption="assumed one 80 GB GPU (A100 80GB / H100); pass --memory GIB",
        multi_gpu=True,
    ),
    "cpu": Plan(
        label="CPU only (LLM)",
        format="GGUF",
        extension=".gguf",
        runtime="llama.cpp (llama-cli, llama-server), Ollama, LM Studio",
        why="llama.cpp runs GGUF on plain CPUs with SIMD kernels for every k-quant and memory-maps the "
        "file; one file carries the weights, tokenizer and chat template.",
        options=(
            _gguf(
                "Q8_0",
                "8-bit blocks: practically the same as f16, but twice the RAM and about half "
                "the tokens/s of Q4_K_M on a CPU.",
            ),
            _gguf("Q6_K", "6-bit k-quant: within noise of Q8_0 at three quarters of its size."),
            _gguf(
                "Q5_K_M",
                "5-bit k-quant with 6-bit attn_v/ffn_down on sensitive layers: a small "
                "loss, noticeably better than 4-bit.",
            ),
            _gguf(
                "Q4_K_M",
                "4-bit k-quant with 6-bit attn_v/ffn_down on sensitive layers: llama.cpp's "
                "usual balance of size, speed and quality (the seed's pick for a 7B on CPU).",
            ),
            _gguf("Q3_K_M", "3-bit k-quant: visibly worse; take it only when Q4_K_M does not fit."),
            _gguf("Q2_K", "2-bit k-quant: large quality loss; a smaller model at Q4_K_M is usually better."),
        ),
        default="Q4_K_M",
        commands=(
            "python llama.cpp/convert_hf_to_gguf.py {src} --outtype f16 --outfile {stem}-f16.gguf",
            "llama-quantize{requant} {f16} {stem}-{arg}.gguf {arg}",
            "tensorfile inspect {stem}-{arg}.gguf",
            "tensorfile estimate {model} --weights gguf:{arg} --engine llama.cpp "
            "--seq-len {seq} --gen-tokens {gen}",
            "llama-cli -m {stem}-{arg}.gguf -c {ctx}",
        ),
        alternatives=(
            ("OpenVINO IR int8/int4", "an Intel CPU or iGPU (see --target intel)"),
            ("ONNX + ONNX Runtime (int4 via onnxruntime-genai)", "the app already embeds ONNX Runtime"),
            ("MLX 4-bit", "an Apple-silicon Mac"),
        ),
    ),
    "intel": Plan(
        label="Intel CPU / GPU / NPU",
        format="OpenVINO IR",
        extension=".xml + .bin",
        runtime="OpenVINO (openvino-genai LLMPipeline, optimum-intel OVModelForCausalLM)",
        why="OpenVINO compiles for Intel CPUs (AVX-512, AMX), Arc and integrated GPUs and the Core Ultra "
        "NPU; optimum-cli exports a Hugging Face model with weight compression in one command.",
        options=(
            _w("fp16", "--weight-format fp16: no quality loss, twice the size of int8.", **_RAM),
            _w(
                "int8",
                "--weight-format int8: 8-bit per-channel weights, nearly lossless; optimum-intel's "
                "default for models over 1B parameters.",
                **_RAM,
            ),
            _w(
                "int4",
                "--weight-format int4: group-wise 4-bit (add --awq --dataset wikitext2 for "
                "accuracy); half of int8.",
                **_RAM,
            ),
        ),
        default="int8",
        commands=(
            "optimum-cli export openvino --model {src} --task text-generation-with-past "
            "--weight-format {arg} {stem}-ov-{arg}",
            "tensorfile inspect {stem}-ov-{arg}/openvino_model.xml",
            ">>> import openvino_genai; "
            "pipe = openvino_genai.LLMPipeline('{stem}-ov-{arg}', 'CPU')  # or 'GPU', 'NPU'",
        ),
        alternatives=(
            ("GGUF + llama.cpp", "portability over speed: the same file on any CPU"),
            ("ONNX + ONNX Runtime OpenVINO EP", "the app already embeds ONNX Runtime"),
        ),
    ),
    "cross-framework": Plan(
        label="another framework (e.g. PyTorch → TensorFlow)",
        format="ONNX",
        extension=".onnx",
        runtime="ONNX Runtime, TensorRT, OpenVINO; onnx2tf for TensorFlow / TFLite",
        why="ONNX is the graph format PyTorch exports and every major runtime reads; TensorFlow gets it "
        "through onnx2tf. Models over 2 GiB keep their weights in external data files beside the .onnx.",
        options=(
            _w("fp32", "float32: every runtime and converter accepts it; twice the size of fp16.", **_RAM),
            _w("fp16", "float16: half of fp32; GPU runtimes run it natively, CPUs upcast.", **_RAM),
            _w(
                "int8",
                "dynamic int8 (onnxruntime quantize_dynamic): a quarter of fp32 for CPU inference; "
                "some converters to TensorFlow cannot read it.",
                commands=(
                    ">>> from onnxruntime.quantization import quantize_dynamic, QuantType; "
                    "quantize_dynamic('{stem}-onnx/model.onnx', '{stem}-onnx/model-int8.onnx', "
                    "weight_type=QuantType.QInt8)",
                ),
                **_RAM,
            ),
        ),
        default="stored",
        commands=(
            "optimum-cli export onnx --model {src} --task text-generation-with-past {stem}-onnx/",
            "@option",
            "tensorfile inspect {stem}-onnx/model.onnx",
            "tensorfile scan {stem}-onnx/",
            "onnx2tf -i {stem}-onnx/model.onnx -o {stem}-saved_model/",
        ),
        alternatives=(
            ("safetensors", "both sides only need the weights and have the model code"),
            ("TorchScript / torch.export (.pt2)", "the receiver stays within PyTorch (C++, mobile)"),
        ),
        cap_at_stored=True,
    ),
    "share": Plan(
        label="sharing / safe download",
        format="safetensors",
        extension=".safetensors",
        runtime="anything: transformers, diffusers, vLLM, MLX, candle, llama.cpp's converter",
        why="A safetensors file is a JSON header plus raw tensor bytes: loading it cannot run code, it "
        "memory-maps lazily, and Hugging Face and ModelScope serve it by default.",
        options=(
            Option(
                "stored",
                {},
                "the dtype it was trained and published in: casting down loses "
                "information the receivers cannot get back.",
            ),
        ),
        default="stored",
        commands=(
            "tensorfile scan {safe}",
            "tensorfile inspect {safe}",
            "huggingface-cli upload <user>/<repo> {safedir}",
        ),
        alternatives=(
            ("GGUF", "the receivers run llama.cpp / Ollama: share a Q4_K_M next to the safetensors"),
            ("AWQ / GPTQ safetensors", "the receivers serve with vLLM on small GPUs"),
        ),
        device="",
        cap_at_stored=True,
        keeps_safe=True,
    ),
    "resume-training": Plan(
        label="resumable training",
        format="PyTorch checkpoint",
        extension=".pt",
        runtime="torch.save / torch.load(weights_only=True)",
        why="Resuming needs more than weights: the optimizer's moments, the LR scheduler, the step and "
        "the RNG states; torch.save of one dict keeps them all and torch.load(weights_only=True) reads it "
        "back without running pickled code.",
        options=(
            Option(
                "full",
                {"task": "train", "method": "full", "precision": "amp"},
                "full fine-tuning with AdamW under bf16 autocast: fp32 weights plus two fp32 moments, "
                "12 bytes per parameter on disk.",
            ),
            Option(
                "lora",
                {"task": "train", "method": "lora", "weights": "bf16"},
                "LoRA on a frozen bf16 base: the checkpoint holds only the adapters and their optimizer "
                "state; the base stays as downloaded.",
            ),
            Option(
                "qlora",
                {"task": "train", "method": "qlora"},
                "QLoRA on a 4-bit NF4 base: the same small checkpoint with the least GPU memory.",
            ),
        ),
        default="full",
        commands=(
            ">>> torch.save({{'model': model.state_dict(), 'optimizer': optimizer.state_dict(), "
            "'scheduler': scheduler.state_dict(), 'step': step, "
            "'rng': torch.get_rng_state()}}, 'checkpoint.pt')",
            ">>> ckpt = torch.load('checkpoint.pt', weights_only=True); "
            "model.load_state_dict(ckpt['model']); optimizer.load_state_dict(ckpt['optimizer'])",
            "tensorfile inspect checkpoint.pt",
            "tensorfile estimate {model} --task train --method {arg} --seq-len {seq}",
            "tensorfile convert checkpoint.pt {stem}-final.safetensors",
        ),
        alternatives=(
            (
                "Hugging Face Trainer checkpoints",
                "Trainer(save_strategy='steps'): model.safetensors + "
                "optimizer.pt + scheduler.pt + rng_state.pth per checkpoint-N folder",
            ),
            ("torch.distributed.checkpoint (DCP)", "FSDP / multi-GPU: each rank writes its own shard"),
            ("DeepSpeed / Accelerate save_state", "training already runs under those launchers"),
        ),
        device="GPU memory",
        usable=1.0,
        usable_why="the estimate already counts the CUDA context and the allocator's margin",
        seq_len=2048,
        gen_tokens=0,
        keeps_pickle=True,
    ),
}

# For models that are not transformer LLMs (no attention layers: CNNs, MLPs, classic ML), the targets
# where the LLM tooling does not apply get the general-purpose path instead.
_GENERIC: dict[str, dict[str, Any]] = {
    "cpu": dict(
        label="CPU only",
        format="ONNX",
        extension=".onnx",
        runtime="ONNX Runtime (CPUExecutionProvider)",
        why="For a model that is not an LLM, ONNX Runtime is the fastest general CPU runtime: graph "
        "optimizations, multi-threaded kernels and int8 without a GPU.",
        options=(
            _w("fp32", "float32: exact, the CPU kernels' native type.", **_RAM),
            _w(
                "int8",
                "dynamic int8: a quarter of fp32 and faster matrix products on AVX2/AVX-512 VNNI.",
                commands=(
                    ">>> from onnxruntime.quantization import quantize_dynamic, QuantType; "
                    "quantize_dynamic('{onnx}', '{stem}-int8.onnx', weight_type=QuantType.QInt8)",
                ),
                **_RAM,
            ),
        ),
        default="fp32",
        commands=(
            _ONNX_EXPORT,
            "@option",
            "tensorfile inspect {onnx}",
            ">>> import onnxruntime as ort; session = ort.InferenceSession('{onnx}', "
            "providers=['CPUExecutionProvider'])",
        ),
        alternatives=(("OpenVINO IR", "an Intel CPU (see --target intel)"),),
    ),
    "nvidia-server": dict(
        format="TensorRT engine",
        extension=".engine",
        runtime="TensorRT (Triton Inference Server for serving)",
        why="TensorRT fuses layers and picks the fastest kernels for one GPU: the best latency on "
        "NVIDIA hardware; the engine is built for that GPU model and TensorRT version.",
        options=(
            _w("fp16", "fp16 kernels: no calibration, near-fp32 accuracy.", arg="--fp16"),
            _w(
                "int8",
                "int8 kernels: needs a calibration cache or Q/DQ nodes (TensorRT Model Optimizer).",
                arg="--int8 --fp16",
            ),
        ),
        default="fp16",
        commands=(
            _ONNX_EXPORT,
            "trtexec --onnx={onnx} --saveEngine={stem}.engine {arg}",
            "tensorfile inspect {stem}.engine",
        ),
        alternatives=(
            ("ONNX + ONNX Runtime CUDA/TensorRT EP", "one portable file instead of a per-GPU engine"),
        ),
        usable_why="TensorRT needs workspace and activation memory beyond the weights",
        multi_gpu=False,
    ),
    "phone-android": dict(
        runtime="LiteRT (TensorFlow Lite) Interpreter / CompiledModel",
        why="LiteRT (TensorFlow Lite) is Android's on-device runtime with CPU, GPU and NPU delegates; "
        "ai-edge-torch converts PyTorch models and the TFLite converter TensorFlow ones.",
        options=(
            _w("fp16", "float16 weights: half of fp32, native on the GPU delegate.", **_RAM),
            _w("int8", "dynamic-range int8 (Optimize.DEFAULT): a quarter of fp32, fast on the CPU.", **_RAM),
        ),
        default="int8",
        commands=(
            ">>> import ai_edge_torch; "
            "ai_edge_torch.convert(model.eval(), sample_inputs).export('{stem}.tflite')  # from PyTorch",
            ">>> c = tf.lite.TFLiteConverter.from_saved_model('saved_model'); c.optimizations = "
            "[tf.lite.Optimize.DEFAULT]; open('{stem}.tflite', 'wb').write(c.convert())  # from TensorFlow",
            "tensorfile inspect {stem}.tflite",
        ),
    ),
    "intel": dict(
        why="OpenVINO compiles for Intel CPUs (AVX-512, AMX), Arc and integrated GPUs and the Core Ultra "
        "NPU; ovc converts ONNX, PyTorch and TensorFlow models.",
        options=(
            _w("fp16", "fp16-compressed weights (ovc's default): no visible loss.", **_RAM),
            _w(
                "int8",
                "int8 post-training quantization with nncf.quantize and a few hundred samples.",
                **_RAM,
            ),
        ),
        default="fp16",
        commands=(
            _ONNX_EXPORT,
            "ovc {onnx} --output_model {stem}.xml",
            "tensorfile inspect {stem}.xml",
        ),
    ),
    "cross-framework": dict(
        commands=(
            _ONNX_EXPORT,
            "tensorfile inspect {onnx}",
            "tensorfile scan {onnx}",
            "onnx2tf -i {onnx} -o {stem}-saved_model/",
        ),
        options=(
            _w("fp32", "float32: every runtime and converter accepts it.", **_RAM),
            _w("fp16", "float16: half of fp32; GPU runtimes run it natively, CPUs upcast.", **_RAM),
        ),
    ),
    "resume-training": dict(options=TARGETS["resume-training"].options[:1]),
}

_ONLY = "\0only"  # in _current's commands: the plan's own commands do not apply to this file
# Commands that produce a format the input already has are left out.
_ALREADY = {"onnx": ("torch.onnx.export", "optimum-cli export onnx"), "gguf": ("convert_hf_to_gguf",)}
# Bytes per parameter when the model's shapes are unknown (no config.json): weights only.
_FLAT_BYTES = {"fp32": 4.0, "fp16": 2.0, "bf16": 2.0, "fp8": 1.0, "int8": 1.0, "int4": 0.5, "awq": 0.5}
_ONNX_DTYPE = {"fp32": "fp32", "fp16": "fp16", "bf16": "fp16"}


@dataclass
class Recommendation:
    """The answer for one model and one target."""

    target: str
    target_label: str
    model: str
    parameters: int | None
    format: str
    extension: str
    runtime: str
    quantization: str
    weights: str | None  # the estimator's --weights for the choice
    disk_bytes: int | None
    runtime_bytes: int | None
    device: str
    memory_bytes: int | None  # given or assumed
    budget_bytes: int | None  # the usable part of it
    memory_assumed: bool
    fits: bool | None
    gpus: int
    reasons: list[str]
    commands: list[str]
    alternatives: list[dict[str, str]]
    candidates: list[dict[str, Any]] = field(default_factory=list)
    breakdown: dict[str, int] = field(default_factory=dict)
    context_tokens: int = 0
    current: dict[str, Any] | None = None
    notes: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        from dataclasses import asdict

        return asdict(self)


# --- the logic -----------------------------------------------------------------------------------


def recommend(
    model: str | Path, target: str, memory_gib: float | None = None, **settings: Any
) -> Recommendation:
    """Which format and quantization to use for `model` on `target`, sized by the estimator.

    model: a file, folder or config.json, or a size like "7B". memory_gib: memory available on the
    device (RAM for CPUs and phones, per-GPU memory for servers and training). settings: seq_len,
    gen_tokens, batch, kv_dtype and the estimator's shape overrides (layers, hidden_size, ...).
    """
    from .estimate import SHAPE_OPTIONS
    from .estimate.weights import is_quantized

    key = str(target).lower()
    if key not in TARGETS:
        raise UsageError(f"unknown target {target!r}; choose from {', '.join(TARGETS)}")
    if memory_gib is not None and not memory_gib > 0:
        raise UsageError(f"--memory must be a positive number of GiB, not {memory_gib}")
    allowed = {"seq_len", "gen_tokens", "batch", "kv_dtype", *SHAPE_OPTIONS}
    unknown = sorted(k for k, v in settings.items() if k not in allowed and v is not None)
    if unknown:
        raise UsageError(f"recommend does not take {', '.join(unknown)}")
    text = str(model)
    source = _Source.read(text, settings)
    plan = TARGETS[key]
    if not source.llm and key in _GENERIC:
        plan = replace(plan, **_GENERIC[key])
    run = {k: v for k, v in settings.items() if v is not None and k not in SHAPE_OPTIONS}
    run.setdefault("seq_len", plan.seq_len)
    run.setdefault("gen_tokens", plan.gen_tokens)

    memory = memory_gib * GIB if memory_gib is not None else None
    assumed = memory is None and plan.assumed_gib is not None and plan.device != ""
    if assumed:
        memory = plan.assumed_gib * GIB  # type: ignore[operator]
    budget = memory * plan.usable if memory is not None and plan.device else None

    options = list(plan.options)
    keys = [o.key for o in options]
    # never upcast: a quantized checkpoint cannot give back the precision it lost
    start = source.option_key(plan) if plan.cap_at_stored else None
    if start is None and source.stored and is_quantized(source.stored):
        start = next((o.key for o in options if o.settings.get("weights") == source.stored), None)
    if start in keys:
        options = options[keys.index(start) :]
    sized = [_size(plan, o, source, run, gpus=1) for o in options]
    chosen, fits = _choose(plan, options, sized, source, run, budget)
    return _build(plan, key, text, source, chosen, fits, sized, memory, budget, assumed, run)


@dataclass
class _Sized:
    option: Option
    label: str
    weights: str | None
    disk: float | None
    need: float | None
    breakdown: dict[str, int]
    gpus: int = 1


@dataclass
class _Source:
    """What the model is: its spec for the estimator and, for a local path, what the file is now."""

    spec: Any  # ModelSpec, or None when the file holds no tensors
    shaped: bool  # transformer shapes known: the estimator's run-time numbers apply
    llm: bool  # looks like a transformer LLM
    stored: str | None  # the file's own --weights (bf16, awq, gguf:Q8_0, ...)
    params: int | None
    path: Path | None = None
    ident: Any = None
    info: Any = None

    @classmethod
    def read(cls, text: str, settings: dict[str, Any]) -> _Source:
        from .estimate import SHAPE_OPTIONS, default_weights, describe_model

        shape = {k: v for k, v in settings.items() if k in SHAPE_OPTIONS and v is not None}
        path = Path(text)
        if not path.exists():
            spec, _ = describe_model(text, **shape)  # a size like 7B, or a clear error
            return cls(spec, True, True, None, spec.total_params)
        if path.is_file() and path.name.endswith(".json"):
            spec, facts = describe_model(path, **shape)
            return cls(spec, True, True, default_weights(facts), spec.total_params, path)
        from .identification import identify
        from .inspection import inspect

        ident = identify(path)
        if not ident.known:
            raise UnsupportedError(f"not a model format tensorfile knows ({ident.reason or 'unknown'})", path)
        info = inspect(path)
        names = " ".join(t.name for t in info.tensors[:2000]).lower()
        llm = bool(info.architecture.get("model_type")) or any(
            k in names for k in ("attn", "attention", "q_proj")
        )
        if not info.parameter_count:  # nothing to size (the estimator needs at least one parameter)
            return cls(None, False, llm, None, 0, path, ident, info)
        spec, facts = describe_model(path, **shape)
        # Without config.json or architecture keys the estimator guesses shapes from the parameter
        # count alone; for small or unusual models that guess is meaningless, so only sizes are used.
        shaped = not (spec.shapes_assumed and spec.source != "size")
        return cls(spec, shaped, llm or shaped, default_weights(facts), spec.total_params, path, ident, info)

    def option_key(self, plan: Plan) -> str:
        """The option matching the file as stored (for targets that never upcast)."""
        if plan.options[0].key == "stored":
            return "stored"
        return _ONNX_DTYPE.get(self.stored or "", "fp16" if self.path is None else "fp32")


def _size(plan: Plan, option: Option, source: _Source, run: dict[str, Any], gpus: int) -> _Sized:
    """Disk bytes and run-time bytes of one option (None where they cannot be known)."""
    from .estimate import estimate_memory
    from .estimate.weights import weight_bytes

    settings = dict(option.settings)
    if option.key == "stored":
        settings["weights"] = source.stored or "bf16"
    weights = settings.get("weights")
    label = option.key
    if option.key == "stored":
        label = (source.stored or ("as stored" if source.path else "bf16")).removeprefix("gguf:")
    if source.spec is None:
        return _Sized(option, label, weights, None, None, {})
    if option.key == "stored" and source.info is not None:  # as it is: the file's own tensor bytes
        return _Sized(option, label, weights, float(source.info.total_bytes), None, {})
    training = settings.get("task") == "train"
    if not source.shaped:
        disk = source.params * (12.0 if training else _flat(weights))  # type: ignore[operator]
        return _Sized(option, label, weights, disk, None, {})
    device = {"counter": "allocated", "device": "cpu"} if plan.device == "RAM" else {"counter": "nvidia-smi"}
    est = estimate_memory(source.spec, **settings, **run, **device, gpus=gpus)
    parts = est.breakdown
    if training:
        states = parts.get("optimizer states", 0)
        # full: the weights and both moments; PEFT: the adapters (fp32) and their two fp32 moments
        disk = parts.get("weights", 0) + states if settings["method"] == "full" else states * 1.5
    else:
        disk = weight_bytes(source.spec, est.run.weights).total
    need = est.per_gpu_bytes  # a RAM plan runs with device cpu: host-kept tensors are in the weights
    return _Sized(option, label, weights, disk, None if not plan.device else need, parts, gpus)


def _flat(weights: str | None) -> float:
    if weights and weights.startswith("gguf:"):
        from .dtypes import lookup
        from .estimate.weights import GGUF_FILE_TYPES

        ftype = weights.split(":", 1)[1]
        return lookup(GGUF_FILE_TYPES.get(ftype, (ftype,))[0]).bits_per_weight / 8
    return _FLAT_BYTES.get(weights or "", 2.0)


def _choose(
    plan: Plan,
    options: list[Option],
    sized: list[_Sized],
    source: _Source,
    run: dict[str, Any],
    budget: float | None,
) -> tuple[_Sized, bool | None]:
    """The best option that fits the budget; fewest GPUs first when the target can use several."""
    if budget is None or source.spec is None:
        default = plan.default if plan.default != "stored" else source.option_key(plan)
        keys = [s.option.key for s in sized]
        return sized[keys.index(default) if default in keys else 0], None

    def need(s: _Sized) -> float:
        return s.need if s.need is not None else (s.disk or 0.0)  # weights alone when shapes are unknown

    for s in sized:
        if need(s) <= budget:
            return s, True
    if plan.multi_gpu and source.shaped:
        for n in (2, 4, 8):
            for option in options:
                s = _size(plan, option, source, run, gpus=n)
                if need(s) <= budget:
                    return s, True
    return sized[-1], False


def _build(
    plan: Plan,
    key: str,
    text: str,
    source: _Source,
    chosen: _Sized,
    fits: bool | None,
    sized: list[_Sized],
    memory: float | None,
    budget: float | None,
    assumed: bool,
    run: dict[str, Any],
) -> Recommendation:
    ctx_tokens = int(run["seq_len"]) + (int(run["gen_tokens"]) if key != "resume-training" else 0)
    reasons = [plan.why]
    notes: list[str] = []
    reasons.append(_choice_reason(plan, chosen, fits, sized, source, memory, budget, ctx_tokens))
    if assumed:
        notes.append(plan.assumption)
    if budget is not None and plan.device:
        notes.append(f"usable: {plan.usable:.0%} of the memory — {plan.usable_why}")
    if source.spec is not None and not source.shaped:
        notes.append(
            "model shapes unknown (no config.json beside the weights): sizes are weights only, no run-time "
            "estimate; put config.json next to the file or give --layers/--hidden/--heads"
        )
    elif source.spec is not None and source.path is None:
        notes.extend(source.spec.notes)
    if source.spec is None and source.path is not None:
        notes.append("the file holds no tensors, so there is nothing to size")
    if source.path is None:
        notes.append("MODEL_DIR stands for the model's Hugging Face folder (or repo id)")

    current, prefix = _current(plan, key, source, reasons)
    names = _names(text, source, chosen, run, ctx_tokens)
    commands = [] if _ONLY in prefix else _commands(plan, chosen, names, source)
    commands = list(dict.fromkeys([*(c for c in prefix if c != _ONLY), *commands]))
    safe_now = source.ident is not None and source.ident.can_execute_code is False
    if safe_now and plan.device and chosen.weights is not None and chosen.weights == source.stored:
        reasons.append(f"It is already {chosen.label}: run it as it is; the commands show how it is made.")
    fmt, ext = plan.format, plan.extension
    if current and current.pop("keep", False):  # already a safe format: it stays as it is
        fmt, ext = source.ident.name, "".join(source.path.suffixes) or "(folder)"  # type: ignore[union-attr]
    return Recommendation(
        target=key,
        target_label=plan.label,
        model=text,
        parameters=source.params,
        format=fmt,
        extension=ext,
        runtime=plan.runtime,
        quantization=chosen.label,
        weights=chosen.weights,
        disk_bytes=_int(chosen.disk),
        runtime_bytes=_int(chosen.need),
        device=plan.device or "none",
        memory_bytes=_int(memory),
        budget_bytes=_int(budget),
        memory_assumed=assumed,
        fits=fits,
        gpus=chosen.gpus,
        reasons=reasons,
        commands=commands,
        alternatives=[{"format": f, "when": w} for f, w in plan.alternatives],
        candidates=[
            {
                "quantization": s.label,
                "disk_bytes": _int(s.disk),
                "runtime_bytes": _int(s.need),
                "fits": None if budget is None or s.need is None else s.need <= budget,
            }
            for s in sized
        ],
        breakdown=chosen.breakdown,
        context_tokens=ctx_tokens if plan.device else 0,
        current=current,
        notes=notes,
    )


def _gib(n: float | None) -> str:
    return "?" if n is None else f"{n / GIB:.1f} GiB"


def _int(n: float | None) -> int | None:
    return None if n is None else round(n)


def _choice_reason(
    plan: Plan,
    chosen: _Sized,
    fits: bool | None,
    sized: list[_Sized],
    source: _Source,
    memory: float | None,
    budget: float | None,
    ctx: int,
) -> str:
    bits = ""
    if chosen.disk and source.params and chosen.option.settings.get("task") != "train":
        bits = f" ({chosen.disk * 8 / source.params:.1f} bits per parameter)"
    why = f"{chosen.label}{bits}: {chosen.option.why}"
    if chosen.need is None or budget is None or memory is None:
        if plan.device and budget is None and len(plan.options) > 1:
            return f"{why} Pass --memory GIB to choose by what fits."
        return why
    parts = chosen.breakdown
    biggest = sorted((p for p in parts.items() if p[1] >= 0.05 * GIB), key=lambda p: -p[1])[:3]
    what = " + ".join(f"{name} {_gib(value)}" for name, value in biggest)
    context = f" for {ctx:,} tokens of context" if "KV cache" in parts else ""
    if fits is False:
        split = " and does not fit even split over 8 GPUs" if plan.multi_gpu and source.shaped else ""
        return (
            f"Nothing fits in {_gib(memory)} ({_gib(budget)} usable): even {chosen.label}, the smallest "
            f"option, needs {_gib(chosen.need)} of {plan.device}{context} ({what}){split}. "
            "Use a smaller model, a shorter context (--seq-len) or a device with more memory."
        )
    where = f"{plan.device} on each of {chosen.gpus} GPUs" if chosen.gpus > 1 else plan.device
    text = (
        f"{why} It needs {_gib(chosen.need)} of {where}{context} ({what}), within the {_gib(budget)} usable"
    )
    text += f" of {_gib(memory)}"
    keys = [s.option.key for s in sized]
    index = keys.index(chosen.option.key)
    if chosen.gpus > 1:
        text += f"; nothing fits on one GPU, so it is split over {chosen.gpus} (tensor parallel)"
    elif index > 0 and sized[index - 1].need is not None:
        text += f"; {sized[index - 1].label} would need {_gib(sized[index - 1].need)}"
    return text + "."


def _current(
    plan: Plan, key: str, source: _Source, reasons: list[str]
) -> tuple[dict[str, Any] | None, list[str]]:
    """What the local file is now, the advice that follows from it, and the commands to do first."""
    if source.path is None:
        return None, []
    path = shlex.quote(str(source.path))
    if source.ident is None:  # a config.json
        return {"path": str(source.path), "format": "config.json", "can_execute_code": False}, []
    ident, info = source.ident, source.info
    current = {
        "path": str(source.path),
        "format": ident.format,
        "name": ident.name,
        "can_execute_code": ident.can_execute_code,
        "parameters": info.parameter_count,
        "stored_as": source.stored,
        "checkpoint": (info.checkpoint or {}).get("kind"),
    }
    if ident.can_execute_code:
        if plan.keeps_pickle and current["checkpoint"] == "training-checkpoint":
            reasons.append(
                f"It is already a training checkpoint ({ident.name}) with its optimizer state: keep it for "
                "resuming, load it with torch.load(weights_only=True) and scan checkpoints you did not write."
            )
            return current, [f"tensorfile scan {path}"]
        reasons.extend(ident.warnings)
        if not info.parameter_count:
            reasons.append(
                f"It is a {ident.name} file with no tensors: a pickle program, not model weights. "
                "Do not load it; scan it to see what it would run."
            )
            return current, [f"tensorfile scan {path}", _ONLY]
        if not _convertible(ident.format):
            reasons.append(
                f"It is a {ident.name} file now: loading it can run code, and tensorfile convert does not "
                "read it; scan it, then re-export it from the library that wrote it."
            )
            return current, [f"tensorfile scan {path}"]
        reasons.append(
            f"It is a {ident.name} file now: loading it can run code. Scan it, convert it to safetensors "
            "first and work from the converted copy."
        )
        safe = shlex.quote(str(_safe_path(source.path)))
        return current, [
            f"tensorfile scan {path}",
            f"tensorfile convert {path} {safe}",
            f"tensorfile scan {safe}",
        ]
    if plan.keeps_safe and ident.can_execute_code is False and ident.format != plan.format.lower():
        reasons.append(f"It is already {ident.name}, which loads without running code: share it as it is.")
        current["keep"] = True
    elif ident.format in (plan.extension.strip("."), plan.format.lower()):
        again = " Re-export it only to change its quantization." if len(plan.options) > 1 else ""
        reasons.append(f"It is already {ident.name}.{again}")
    quant = (info.quantization or {}).get("method")
    if quant:
        reasons.append(
            f"It is already quantized ({quant}): quantizing it again loses more quality; start from the "
            "original 16-bit weights to make another format."
        )
    return current, []


def _safe_path(path: Path) -> Path:
    if path.is_dir():
        return path.with_name(path.name + "-safetensors")
    out = path.with_name(path.name.split(".")[0] + ".safetensors")
    return out if out != path else path.with_name(path.name.split(".")[0] + "-converted.safetensors")


def _convertible(fmt: str) -> bool:
    from .convert.sources import SAFETENSORS_FORMAT

    return fmt in SAFETENSORS_FORMAT


def _names(text: str, source: _Source, chosen: _Sized, run: dict[str, Any], ctx: int) -> dict[str, str]:
    path = source.path
    if path is None:
        src, stem, onnx, safe = "MODEL_DIR", "model", "model.onnx", "model.safetensors"
    else:
        folder = path if path.is_dir() else path.parent
        unsafe = bool(
            source.ident is not None and source.ident.can_execute_code and _convertible(source.ident.format)
        )
        safe_path = _safe_path(path) if unsafe else path
        src = str(safe_path if unsafe and path.is_dir() else folder)
        stem = folder.name if path.is_dir() or path.suffix == ".json" else path.name.split(".")[0]
        onnx = str(path) if source.ident is not None and source.ident.format == "onnx" else f"{stem}.onnx"
        safe = str(safe_path)
    safe_dir = safe if safe.endswith(("-safetensors", "/")) or Path(safe).is_dir() else str(Path(safe).parent)
    n = chosen.gpus
    gguf_in = source.ident is not None and source.ident.format == "gguf"
    return {
        "f16": shlex.quote(str(path)) if gguf_in and path is not None else f"{shlex.quote(stem)}-f16.gguf",
        "requant": " --allow-requantize" if gguf_in and (source.info.quantization or {}) else "",
        "model": shlex.quote(text),
        "src": shlex.quote(src),
        "stem": shlex.quote(stem),
        "onnx": shlex.quote(onnx),
        "safe": shlex.quote(safe),
        "safedir": shlex.quote(safe_dir),
        "arg": chosen.option.arg or chosen.option.key,
        "weights": chosen.weights or "",
        "seq": str(run["seq_len"]),
        "gen": str(run["gen_tokens"]),
        "ctx": str(ctx),
        "tp": f" --tensor-parallel-size {n}" if n > 1 else "",
        "gpus": f" --gpus {n}" if n > 1 else "",
    }


def _commands(plan: Plan, chosen: _Sized, names: dict[str, str], source: _Source) -> list[str]:
    fmt = source.ident.format if source.ident is not None else ""
    # never point a command at a pickle as though it were the safe copy
    unsafe = bool(source.ident is not None and source.ident.can_execute_code and not _convertible(fmt))
    out: list[str] = []
    for template in plan.commands:
        steps = chosen.option.commands if template == "@option" else (template,)
        for step in steps:
            if any(tool in step for tool in _ALREADY.get(fmt, ())) or (unsafe and "{safe" in step):
                continue
            out.append(step.format(**names))
    return out
