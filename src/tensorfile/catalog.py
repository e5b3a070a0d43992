"""The format catalogue: one row per format id, the seed's tables as data.

Detectors say *which* format a file is; everything that follows from the format (family,
frameworks, whether its usual loader can run code, canonical extensions) lives here once.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

FAMILIES = {
    "framework-native": "Native save format of a training framework",
    "exchange": "Cross-framework exchange format",
    "inference-optimised": "Compiled or optimised for an inference runtime",
    "quantized": "Quantized weights for low-memory deployment",
    "other": "Other containers for weights and models",
}


@dataclass(frozen=True)
class FormatInfo:
    id: str
    name: str
    family: str
    extensions: tuple[str, ...]
    frameworks: tuple[str, ...]
    can_execute_code: bool
    execution_risk: str
    features: str = ""
    strengths: str = ""
    weaknesses: str = ""
    typical_use: str = ""
    produced_by: tuple[str, ...] = field(default_factory=tuple)
    consumed_by: tuple[str, ...] = field(default_factory=tuple)

    @property
    def safe_to_load(self) -> bool:
        return not self.can_execute_code

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["safe_to_load"] = self.safe_to_load
        for key in ("extensions", "frameworks", "produced_by", "consumed_by"):
            data[key] = list(data[key])
        return data


_PICKLE_RISK = "pickle: unpickling can import and call any Python function"

# Rows keep the compact shape of the seed's tables: identity first, then the prose columns.
# fmt: off
FORMATS: tuple[FormatInfo, ...] = (
    FormatInfo(
        "pytorch-zip", "PyTorch (torch.save zip)", "framework-native",
        (".pt", ".pth", ".bin", ".ckpt", ".tar"), ("PyTorch", "Hugging Face transformers"),
        True, _PICKLE_RISK + " (torch.load without weights_only=True)",
        features="Pickle-serialized object graph (data.pkl) in a zip archive, with one raw file per tensor "
        "storage (PyTorch >= 1.6).",
        strengths="Saves anything Python can pickle, so one file keeps the full training state (model, "
        "optimizer, scheduler, epoch) for exact resumption.",
        weaknesses="Loading unpickles, which can run arbitrary code unless torch.load(weights_only=True) is "
        "used, and the file depends on PyTorch and on the classes it references.",
        typical_use="Local training checkpoints and older Hugging Face pytorch_model.bin weights.",
        produced_by=("torch.save", "transformers save_pretrained(safe_serialization=False)",
                     "PyTorch Lightning Trainer.save_checkpoint", "accelerate save_state (optimizer.bin)"),
        consumed_by=("torch.load", "transformers from_pretrained", "PyTorch Lightning load_from_checkpoint"),
    ),
    FormatInfo(
        "pytorch-legacy", "PyTorch legacy (pre-1.6 pickle stack)", "framework-native",
        (".pt", ".pth", ".bin", ".ckpt", ".tar", ".pkl"), ("PyTorch",),
        True, _PICKLE_RISK,
        features="Pickle-serialized stream of consecutive pickles (magic number, protocol, system info, "
        "object graph, storage keys) followed by the raw storage bytes.",
        strengths="Current torch.load still reads it, so checkpoints from before 2020 remain usable.",
        weaknesses="Same arbitrary-code risk as any pickle, no random access to single tensors, and "
        "superseded by the zip layout since PyTorch 1.6.",
        typical_use="Checkpoints saved with PyTorch < 1.6 or with _use_new_zipfile_serialization=False.",
        produced_by=("torch.save (PyTorch < 1.6)", "torch.save(_use_new_zipfile_serialization=False)"),
        consumed_by=("torch.load",),
    ),
    FormatInfo(
        "torchscript", "TorchScript", "inference-optimised",
        (".pt", ".pth", ".torchscript", ".ptl", ".zip"), ("PyTorch", "LibTorch (C++)"),
        True, "pickled constants plus TorchScript code that runs when the module is called",
        features="PyTorch graph frozen as TorchScript: a zip with the compiled code (code/), pickled "
        "constants and tensor data.",
        strengths="Runs without the model's Python classes, from C++ through LibTorch and on mobile through "
        "the lite interpreter.",
        weaknesses="Loading runs the embedded TorchScript, tracing silently drops data-dependent control "
        "flow, and TorchScript is in maintenance mode in favour of torch.export.",
        typical_use="Deploying PyTorch models in C++ (LibTorch), PyTorch Mobile or Triton's PyTorch backend.",
        produced_by=("torch.jit.script / torch.jit.trace + torch.jit.save",
                     "_save_for_lite_interpreter (.ptl)"),
        consumed_by=("torch.jit.load", "LibTorch torch::jit::load", "Triton PyTorch (LibTorch) backend",
                     "PyTorch Mobile"),
    ),
    FormatInfo(
        "safetensors", "Safetensors", "framework-native",
        (".safetensors",), ("PyTorch", "TensorFlow", "Flax/JAX", "Hugging Face", "MLX", "candle"),
        False, "none: JSON header and raw tensor bytes only",
        features="Pure tensor binary + JSON header: an 8-byte header length, a JSON table of name, dtype, "
        "shape and byte offsets, then raw little-endian tensor bytes.",
        strengths="Safe (no code execution), memory-mappable for lazy zero-copy loading (often 20-50% "
        "faster), and read by PyTorch, TensorFlow, Flax, MLX and Rust alike.",
        weaknesses="Holds only tensors and string metadata: the architecture needs a separate config.json, "
        "and optimizer state or Python objects cannot be stored directly.",
        typical_use="The Hugging Face default for distributing weights, and the format to prefer when "
        "downloading.",
        produced_by=("safetensors.torch.save_file", "safetensors.numpy.save_file",
                     "transformers / diffusers save_pretrained", "mlx.core.save_safetensors"),
        consumed_by=("safetensors safe_open / load_file", "transformers / diffusers from_pretrained", "vLLM",
                     "SGLang", "llama.cpp convert_hf_to_gguf.py", "candle", "MLX"),
    ),
    FormatInfo(
        "safetensors-sharded", "Safetensors, sharded (HF index)", "framework-native",
        (".json", ".safetensors"), ("PyTorch", "TensorFlow", "Flax/JAX", "Hugging Face"),
        False, "none: JSON index plus safetensors shards",
        features="Safetensors shards (model-00001-of-0000N.safetensors) plus model.safetensors.index.json "
        "mapping every tensor name to its shard.",
        strengths="Keeps the safety and mmap speed of safetensors while splitting huge models into files "
        "that download and load in parallel.",
        weaknesses="Shards are useless alone: a missing shard or a stale index breaks loading.",
        typical_use="Distributing models of billions of parameters on Hugging Face and ModelScope.",
        produced_by=("transformers save_pretrained(max_shard_size=...)",
                     "huggingface_hub save_torch_state_dict", "accelerate save_model"),
        consumed_by=("transformers from_pretrained", "vLLM", "SGLang", "Text Generation Inference",
                     "llama.cpp convert_hf_to_gguf.py"),
    ),
    FormatInfo(
        "tf-savedmodel", "TensorFlow SavedModel", "framework-native",
        (".pb",), ("TensorFlow", "TF Serving", "Keras 2"),
        True, "the graph can contain file and system ops (ReadFile, WriteFile, PyFunc) that run when called",
        features="Full computation graph + weights: a directory with saved_model.pb (graph and signatures) "
        "and a variables/ checkpoint, plus assets/.",
        strengths="Self-contained and deployment-friendly: served natively by TF Serving and convertible to "
        "TFLite, TF.js and ONNX.",
        weaknesses="Large, with a complex multi-file directory layout, and tied to TensorFlow.",
        typical_use="Production serving of TensorFlow models (TF Serving, Vertex AI, SageMaker).",
        produced_by=("tf.saved_model.save", "keras Model.export",
                     "tf.keras Model.save (TF 2.x, path without extension)"),
        consumed_by=("tf.saved_model.load", "TF Serving", "tf.lite.TFLiteConverter.from_saved_model",
                     "tf2onnx", "tensorflowjs_converter", "openvino.convert_model"),
    ),
    FormatInfo(
        "keras-h5", "Keras HDF5", "framework-native",
        (".h5", ".hdf5", ".keras"), ("Keras", "TensorFlow"),
        True, "a full-model .h5 may hold Lambda layers (marshalled Python bytecode) run on load",
        features="HDF5 file storing the layer weights and, for a full model, the JSON architecture and "
        "training config as attributes.",
        strengths="One file with human-readable metadata (browsable with h5py or HDFView), natively "
        "supported by Keras.",
        weaknesses="Keras-only, slow to load for large models, and treated as a legacy format by Keras 3.",
        typical_use="Quick saves in Keras projects and older Keras/TensorFlow model zoos.",
        produced_by=("keras Model.save('model.h5')", "keras Model.save_weights('*.weights.h5')"),
        consumed_by=("keras.models.load_model", "keras Model.load_weights", "h5py",
                     "tensorflowjs_converter"),
    ),
    FormatInfo(
        "keras-v3", "Keras 3 (.keras zip)", "framework-native",
        (".keras",), ("Keras 3",),
        True, "config can name arbitrary classes and functions; Lambda layers need safe_mode=False",
        features="Zip archive with config.json (architecture), metadata.json and model.weights.h5; the "
        "native format of Keras 3, also written by recent tf.keras.",
        strengths="One backend-agnostic file (TensorFlow, JAX or PyTorch backend) whose loader refuses "
        "Lambda deserialization by default (safe_mode).",
        weaknesses="Custom layers must be importable and registered to load, and Keras 2 before the format "
        "existed cannot read it.",
        typical_use="Saving and sharing whole Keras 3 models, e.g. on Kaggle Models and the Hugging Face "
        "Hub.",
        produced_by=("keras Model.save('model.keras')", "keras.saving.save_model"),
        consumed_by=("keras.saving.load_model", "KerasHub presets"),
    ),
    FormatInfo(
        "flax-msgpack", "JAX/Flax msgpack", "framework-native",
        (".msgpack", ".flax"), ("Flax", "JAX"),
        False, "none: msgpack of nested dicts and arrays",
        features="Flax native serialization: a msgpack map of the nested parameter tree, arrays stored as "
        "msgpack extension records.",
        strengths="Deeply integrated with JAX: any parameter pytree round-trips through "
        "flax.serialization without code execution.",
        weaknesses="Small community and tooling, no lazy or partial loading, and new JAX projects "
        "increasingly checkpoint with Orbax instead.",
        typical_use="JAX/Flax projects and the flax_model.msgpack weights of Hugging Face Flax models.",
        produced_by=("flax.serialization.to_bytes", "flax.serialization.msgpack_serialize",
                     "transformers Flax save_pretrained"),
        consumed_by=("flax.serialization.from_bytes", "flax.serialization.msgpack_restore",
                     "transformers Flax from_pretrained"),
    ),
    FormatInfo(
        "onnx", "ONNX", "exchange",
        (".onnx", ".ort"),
        ("ONNX Runtime", "TensorRT", "OpenVINO", "PyTorch (export)", "TensorFlow (tf2onnx)"),
        False,
        "no code, but custom-op domains load native libraries and external-data paths can escape the folder",
        features="Framework-neutral protobuf graph of standard, opset-versioned operators, with weights "
        "inline or in external data files.",
        strengths="Framework-independent (PyTorch, TensorFlow, MXNet, scikit-learn -> ONNX) with a mature "
        "toolchain of runtimes, optimizers and converters.",
        weaknesses="Operator compatibility must be verified per opset, dynamic shapes must be declared at "
        "export, and one protobuf is capped at 2 GB (larger models need external data).",
        typical_use="Moving models between frameworks and serving them with ONNX Runtime, TensorRT or "
        "OpenVINO.",
        produced_by=("torch.onnx.export", "tf2onnx", "skl2onnx", "optimum-cli export onnx", "onnx.save"),
        consumed_by=("ONNX Runtime", "TensorRT (trtexec --onnx)", "OpenVINO", "onnx2tf", "Netron"),
    ),
    FormatInfo(
        "pmml", "PMML", "exchange",
        (".pmml", ".xml"), ("JPMML", "SAS", "KNIME", "Spark"),
        False, "none: XML model description (use an XML parser without external entities)",
        features="XML document (DMG standard) describing a classic ML model: data dictionary, "
        "preprocessing, and regression, tree, ensemble or scorecard models.",
        strengths="Vendor-neutral, human-readable exchange of traditional ML models (scikit-learn, XGBoost, "
        "Spark) into enterprise scoring engines.",
        weaknesses="Weak deep-learning support, verbose for large models, and gradually replaced by ONNX.",
        typical_use="Deploying scikit-learn, XGBoost or Spark ML models into Java and enterprise analytics "
        "platforms.",
        produced_by=("sklearn2pmml", "jpmml-sparkml", "R pmml / r2pmml", "KNIME", "SAS Enterprise Miner"),
        consumed_by=("JPMML-Evaluator", "pypmml", "KNIME", "SAS"),
    ),
    FormatInfo(
        "tensorrt", "TensorRT engine", "inference-optimised",
        (".engine", ".plan", ".trt"), ("TensorRT", "Triton Inference Server"),
        True, "engines can embed plugin code and are deserialized by native code; only load trusted engines",
        features="Serialized engine compiled for one NVIDIA GPU architecture and TensorRT version, with "
        "fused kernels and FP16/INT8/FP8 precision chosen at build time.",
        strengths="Top inference latency and throughput on NVIDIA GPUs.",
        weaknesses="Not portable: tied to the GPU architecture and TensorRT/CUDA version it was built with, "
        "and must be rebuilt for every target.",
        typical_use="High-performance inference on NVIDIA GPU servers, Jetson devices and Triton.",
        produced_by=("trtexec --saveEngine", "TensorRT IBuilder.build_serialized_network",
                     "TensorRT-LLM trtllm-build", "Torch-TensorRT"),
        consumed_by=("TensorRT IRuntime.deserialize_cuda_engine", "Triton Inference Server", "TensorRT-LLM",
                     "trtexec --loadEngine"),
    ),
    FormatInfo(
        "openvino-ir", "OpenVINO IR", "inference-optimised",
        (".xml", ".bin"), ("OpenVINO",),
        False, "none: XML graph and raw weights (custom layers need extension libraries)",
        features="Intel's intermediate representation: an XML graph of operations (.xml) plus a flat "
        "weights blob (.bin).",
        strengths="Optimised for Intel CPUs, GPUs and NPUs, with INT8/INT4 weight compression via NNCF.",
        weaknesses="Two files that must travel together, and the best performance is on Intel hardware "
        "only.",
        typical_use="Inference on Intel CPUs, integrated GPUs, NPUs and edge devices.",
        produced_by=("openvino.convert_model + openvino.save_model", "ovc", "optimum-cli export openvino",
                     "Model Optimizer mo (legacy)"),
        consumed_by=("OpenVINO Runtime (Core.read_model)", "OpenVINO Model Server", "optimum-intel"),
    ),
    FormatInfo(
        "tflite", "TensorFlow Lite", "inference-optimised",
        (".tflite", ".lite"), ("TensorFlow Lite", "LiteRT", "MediaPipe"),
        False, "none: flatbuffer graph and constant buffers",
        features="Lightweight flatbuffer of the operator graph and constant buffers, often quantized to "
        "INT8 or FP16, usable without unpacking.",
        strengths="Small and fast to load, runs on Android, iOS, Raspberry Pi and microcontrollers with "
        "hardware delegates (GPU, NNAPI, Core ML, Edge TPU).",
        weaknesses="Limited operator set (others need Select TF ops or custom ops), conversion can fail or "
        "lose accuracy, and it is built for inference rather than training.",
        typical_use="On-device inference on mobile and embedded hardware.",
        produced_by=("tf.lite.TFLiteConverter", "ai-edge-torch", "MediaPipe Model Maker", "onnx2tf"),
        consumed_by=("TensorFlow Lite / LiteRT Interpreter", "MediaPipe", "TensorFlow Lite Micro", "Netron"),
    ),
    FormatInfo(
        "coreml-mlmodel", "Core ML model", "inference-optimised",
        (".mlmodel",), ("Core ML", "coremltools"),
        False, "none: protobuf model specification",
        features="Single protobuf Model specification (neural network, pipeline or classic model) with the "
        "weights inline.",
        strengths="Optimised for the whole Apple ecosystem, running on the CPU, GPU and Neural Engine of "
        "iOS and macOS devices.",
        weaknesses="Apple platforms only, and ML-program models cannot keep their weights in it (they need "
        ".mlpackage).",
        typical_use="Shipping models inside iOS and macOS apps through Xcode.",
        produced_by=("coremltools.convert(convert_to='neuralnetwork')", "coremltools MLModel.save",
                     "Create ML"),
        consumed_by=("Core ML (MLModel)", "Xcode", "coremltools"),
    ),
    FormatInfo(
        "coreml-mlpackage", "Core ML package", "inference-optimised",
        (".mlpackage",), ("Core ML", "coremltools"),
        False, "none: protobuf specification plus weight blobs",
        features="Directory bundle with Manifest.json, the model specification and separate weight files "
        "(Data/com.apple.CoreML/weights).",
        strengths="The default for ML programs since iOS 15/macOS 12: large weights live outside the "
        "protobuf and can be FP16, palettized or pruned.",
        weaknesses="Apple platforms only, requires iOS 15/macOS 12 or later, and is a folder rather than "
        "one file.",
        typical_use="Modern Core ML models, including on-device LLMs and Stable Diffusion on Apple silicon.",
        produced_by=("coremltools.convert(convert_to='mlprogram')", "Create ML",
                     "apple/ml-stable-diffusion torch2coreml"),
        consumed_by=("Core ML (MLModel)", "Xcode", "coremltools"),
    ),
    FormatInfo(
        "gguf", "GGUF", "quantized",
        (".gguf", ".bin", ".ggml"), ("llama.cpp", "ollama", "LM Studio", "whisper.cpp"),
        False, "no code, but the chat template is a Jinja2 program rendered by some runtimes",
        features="CPU-friendly single file: typed key-value metadata (architecture, tokenizer, chat "
        "template) then aligned tensors in ggml types, with INT4/5/8 and other block quantizations.",
        strengths="Self-contained and memory-mappable, runs LLMs on CPUs and modest GPUs with little memory, "
        "and offers many size/quality levels (Q4_K_M is the usual balance).",
        weaknesses="Tied to the ggml ecosystem, needs the architecture to be implemented in llama.cpp, and "
        "low-bit quantization costs accuracy.",
        typical_use="Running LLMs locally on CPU or consumer hardware (llama.cpp, Ollama, LM Studio).",
        produced_by=("llama.cpp convert_hf_to_gguf.py", "llama-quantize", "gguf-py GGUFWriter",
                     "Unsloth save_pretrained_gguf"),
        consumed_by=("llama.cpp", "Ollama", "LM Studio", "llama-cpp-python", "gguf-py GGUFReader",
                     "transformers from_pretrained(gguf_file=...) (dequantizes)"),
    ),
    FormatInfo(
        "awq", "AWQ (safetensors with quantization metadata)", "quantized",
        (".safetensors",), ("vLLM", "AutoAWQ", "SGLang", "Hugging Face transformers"),
        False, "none when stored as safetensors",
        features="Activation-aware 4-bit weight quantization: qweight/qzeros packed eight per I32 with F16 "
        "scales per group (usually 128), in safetensors with quantization_config in config.json.",
        strengths="GPU-friendly 4-bit weights that keep accuracy by protecting salient channels, with fast "
        "kernels natively supported by vLLM and SGLang.",
        weaknesses="Producing it needs calibration data and a GPU, it runs only where matching kernels exist "
        "(mostly NVIDIA/AMD GPUs), and AutoAWQ itself is deprecated in favour of llm-compressor.",
        typical_use="Serving 4-bit quantized LLMs on GPU servers.",
        produced_by=("AutoAWQ (quantize + save_quantized)", "llm-compressor (AWQModifier)"),
        consumed_by=("vLLM", "SGLang", "transformers (AwqConfig)", "Text Generation Inference", "AutoAWQ"),
    ),
    FormatInfo(
        "gptq", "GPTQ (safetensors with quantization metadata)", "quantized",
        (".safetensors",), ("vLLM", "AutoGPTQ", "GPTQModel", "SGLang", "ExLlama"),
        False, "none when stored as safetensors",
        features="Post-training 2/3/4/8-bit quantization by second-order error correction: qweight/qzeros "
        "packed in I32 with F16 scales and g_idx, in safetensors with quantization_config.",
        strengths="GPU-friendly 4-bit weights with good accuracy from a one-shot calibration pass, supported "
        "by vLLM, SGLang, ExLlama and transformers.",
        weaknesses="Producing it needs calibration data and a GPU, kernels differ by packing options "
        "(act-order, group size, symmetric), and AutoGPTQ is unmaintained in favour of GPTQModel.",
        typical_use="Serving 4-bit quantized LLMs on GPU servers.",
        produced_by=("GPTQModel", "AutoGPTQ", "transformers GPTQConfig + optimum",
                     "llm-compressor (GPTQModifier)"),
        consumed_by=("vLLM", "SGLang", "ExLlamaV2", "transformers + optimum", "Text Generation Inference"),
    ),
    FormatInfo(
        "bitsandbytes", "bitsandbytes-serialized weights", "quantized",
        (".safetensors", ".bin"), ("Hugging Face transformers + accelerate", "bitsandbytes"),
        False, "none when stored as safetensors",
        features="In-framework quantization: LLM.int8 (I8) or 4-bit NF4/FP4 weights packed in U8 with "
        "quant_state companion tensors, saved through transformers.",
        strengths="Quantizes at load time without calibration data and enables 4/8-bit training such as "
        "QLoRA in transformers + accelerate.",
        weaknesses="Mainly CUDA, slower inference than AWQ/GPTQ kernels, and serialized checkpoints load "
        "only through transformers + bitsandbytes.",
        typical_use="QLoRA fine-tuning and low-memory loading of LLMs on a single GPU.",
        produced_by=("transformers BitsAndBytesConfig + save_pretrained",
                     "bitsandbytes Linear8bitLt / Linear4bit"),
        consumed_by=("transformers from_pretrained", "bitsandbytes", "PEFT (QLoRA)",
                     "vLLM (bitsandbytes quantization)"),
    ),
    FormatInfo(
        "diffusers", "Diffusers pipeline folder", "other",
        (".json",), ("Hugging Face diffusers",),
        False, "none when the components are safetensors",
        features="Pipeline folder: model_index.json names the components, each in its own subfolder (unet "
        "or transformer, vae, text_encoder, scheduler) with a config and safetensors weights, large ones "
        "sharded with an index.",
        strengths="Components can be swapped, shared and loaded separately, and weights are safetensors by "
        "default.",
        weaknesses="Many files to keep consistent, and UIs such as ComfyUI or AUTOMATIC1111 expect "
        "single-file checkpoints instead.",
        typical_use="Stable Diffusion, SDXL, Flux and other diffusion pipelines on the Hugging Face Hub.",
        produced_by=("diffusers DiffusionPipeline.save_pretrained", "diffusers scripts/convert_*"),
        consumed_by=("diffusers DiffusionPipeline.from_pretrained", "optimum", "InvokeAI"),
    ),
    FormatInfo(
        "caffe", "Caffe model", "other",
        (".caffemodel", ".prototxt"), ("Caffe", "OpenCV dnn"),
        False, "none in the files: protobuf network and blobs (a prototxt 'Python' layer makes pycaffe "
        "import a named module)",
        features="Two protobuf files: a text .prototxt network definition and a binary .caffemodel holding "
        "the trained blobs.",
        strengths="Simple, documented protobuf that OpenCV dnn and converters can still read.",
        weaknesses="Historical: Caffe is no longer developed, lacks modern layers, and few new models ship "
        "in it.",
        typical_use="Legacy computer-vision models (classic CNNs, SSD face detectors, OpenPose) run through "
        "OpenCV dnn.",
        produced_by=("Caffe (caffe train, Net.save)", "pycaffe"),
        consumed_by=("Caffe / pycaffe", "OpenCV cv2.dnn.readNetFromCaffe", "MMdnn"),
    ),
    FormatInfo(
        "pickle", "Python pickle / joblib", "other",
        (".pkl", ".pickle", ".joblib", ".dat", ".sav", ".gz", ".z", ".xz", ".lzma", ".bz2"),
        ("scikit-learn", "joblib", "Python"),
        True, _PICKLE_RISK,
        features="Generic Python pickle, optionally joblib-compressed, of any object such as a fitted "
        "scikit-learn estimator.",
        strengths="Serializes almost any Python object in one call, which makes it the default for "
        "scikit-learn and classic ML.",
        weaknesses="Unpickling can run arbitrary code, and files often break across library or Python "
        "versions.",
        typical_use="Saving scikit-learn and other classic ML models or arbitrary Python objects.",
        produced_by=("pickle.dump", "joblib.dump", "cloudpickle", "pandas.to_pickle"),
        consumed_by=("pickle.load", "joblib.load", "pandas.read_pickle"),
    ),
    FormatInfo(
        "numpy", "NumPy .npy / .npz", "other",
        (".npy", ".npz"), ("NumPy", "JAX", "any"),
        False, "none unless the file holds object arrays and is loaded with allow_pickle=True",
        features="Magic \\x93NUMPY, a small header (dtype, order, shape) and raw array bytes; .npz is a zip "
        "of .npy members.",
        strengths="Trivial to read, memory-mappable (np.load mmap_mode) and understood by nearly every "
        "numerical tool.",
        weaknesses="One bare array per .npy with no model structure, and object arrays fall back to pickle.",
        typical_use="Exchanging raw arrays, embeddings and simple weight dumps.",
        produced_by=("numpy.save", "numpy.savez / savez_compressed", "jax.numpy.save"),
        consumed_by=("numpy.load", "jax.numpy.load"),
    ),
)
# fmt: on


@dataclass(frozen=True)
class Recommendation:
    """One row of the seed's selection guide: a need, the formats to choose, and why."""

    id: str
    need: str
    format_ids: tuple[str, ...]
    choice: str  # the pick as the guide words it, with the variant where it names one
    reason: str

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["format_ids"] = list(self.format_ids)
        return data


# The seed's 核心对比总结 and 一句话选择指南 merged into one list (most common needs first).
SELECTION_GUIDE: tuple[Recommendation, ...] = (
    Recommendation(
        "safe-download",
        "Download an open model safely",
        ("safetensors", "safetensors-sharded"),
        ".safetensors",
        "No pickle, so nothing runs on load, and Hugging Face ships it by default for new models.",
    ),
    Recommendation(
        "resume-training",
        "Save local training to resume later",
        ("pytorch-zip",),
        ".pt with the optimizer state (torch.save)",
        "One checkpoint holds model, optimizer and epoch, so training resumes exactly where it stopped.",
    ),
    Recommendation(
        "cross-framework",
        "Hand a PyTorch model to TensorFlow or another framework",
        ("onnx",),
        ".onnx",
        "Framework-neutral graph with a mature export, conversion and runtime toolchain.",
    ),
    Recommendation(
        "nvidia-deploy",
        "Deploy on an NVIDIA GPU server",
        ("tensorrt", "awq"),
        "TensorRT .engine, or AWQ + vLLM for LLMs",
        "TensorRT gives the best performance on NVIDIA GPUs; for LLMs, AWQ 4-bit weights served by vLLM "
        "are the simpler fast path.",
    ),
    Recommendation(
        "cpu-llm",
        "Run a 7B LLM with only a CPU",
        ("gguf",),
        "GGUF (Q4_K_M)",
        "llama.cpp runs GGUF on CPUs with little memory; Q4_K_M (~4.8 bits per weight) fits a 7B model "
        "in about 4-5 GB with small quality loss.",
    ),
    Recommendation(
        "quantized-llm-deploy",
        "Deploy a quantized LLM at scale",
        ("awq", "gptq"),
        "AWQ or GPTQ in .safetensors",
        "vLLM and SGLang support them natively, and the safetensors carrier keeps them safe to load.",
    ),
    Recommendation(
        "mobile",
        "Run a model on a phone",
        ("tflite", "coreml-mlpackage", "coreml-mlmodel"),
        "TFLite (Android) / Core ML (iOS)",
        "Lightweight formats built for on-device inference with the phone's GPU/NPU accelerators.",
    ),
)

SELECTION_BY_ID: dict[str, Recommendation] = {r.id: r for r in SELECTION_GUIDE}


BY_ID: dict[str, FormatInfo] = {f.id: f for f in FORMATS}


def get(format_id: str) -> FormatInfo | None:
    return BY_ID.get(format_id)


# Extensions too generic to suggest a format on their own: no mismatch warning is built on them.
GENERIC_EXTENSIONS = frozenset({".json", ".xml", ".zip", ".tar", ".gz", ".z", ".xz", ".bz2", ".lzma", ".dat"})


def formats_for_extension(ext: str) -> list[str]:
    """Format ids that list `ext` (lower case, with dot) as one of their extensions."""
    ext = ext.lower()
    return [f.id for f in FORMATS if ext in f.extensions]


def formats_suggested_by(ext: str) -> list[str]:
    """Format ids a user would expect from this extension (none for generic ones like .json)."""
    return [] if ext.lower() in GENERIC_EXTENSIONS else formats_for_extension(ext)
