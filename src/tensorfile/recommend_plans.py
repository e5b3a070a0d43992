"""The plans `tensorfile recommend` chooses from: for each target, which format to use, the
quantizations it offers (best quality first), why, the commands and the alternatives; and the
general-purpose path for models that are not transformer LLMs.

Data only: recommend.py sizes the options with the estimator and chooses among them.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


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
            "tensorfile convert {gguf_src} {stem}-{arg}.gguf --quant {arg}",
            "# or with llama.cpp's own tools (the same bytes):",
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
NON_LLM_OVERRIDES: dict[str, dict[str, Any]] = {
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
