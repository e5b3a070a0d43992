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

FORMATS: tuple[FormatInfo, ...] = (
    FormatInfo(
        "pytorch-zip", "PyTorch (torch.save zip)", "framework-native",
        (".pt", ".pth", ".bin", ".ckpt", ".tar"), ("PyTorch", "Hugging Face transformers"),
        True, _PICKLE_RISK + " (torch.load without weights_only=True)",
    ),
    FormatInfo(
        "pytorch-legacy", "PyTorch legacy (pre-1.6 pickle stack)", "framework-native",
        (".pt", ".pth", ".bin", ".ckpt", ".tar", ".pkl"), ("PyTorch",),
        True, _PICKLE_RISK,
    ),
    FormatInfo(
        "torchscript", "TorchScript", "inference-optimised",
        (".pt", ".pth", ".torchscript", ".ptl", ".zip"), ("PyTorch", "LibTorch (C++)"),
        True, "pickled constants plus TorchScript code that runs when the module is called",
    ),
    FormatInfo(
        "safetensors", "Safetensors", "framework-native",
        (".safetensors",), ("PyTorch", "TensorFlow", "Flax/JAX", "Hugging Face", "MLX", "candle"),
        False, "none: JSON header and raw tensor bytes only",
    ),
    FormatInfo(
        "safetensors-sharded", "Safetensors, sharded (HF index)", "framework-native",
        (".json", ".safetensors"), ("PyTorch", "TensorFlow", "Flax/JAX", "Hugging Face"),
        False, "none: JSON index plus safetensors shards",
    ),
    FormatInfo(
        "tf-savedmodel", "TensorFlow SavedModel", "framework-native",
        (".pb",), ("TensorFlow", "TF Serving", "Keras 2"),
        True, "the graph can contain file and system ops (ReadFile, WriteFile, PyFunc) that run when called",
    ),
    FormatInfo(
        "keras-h5", "Keras HDF5", "framework-native",
        (".h5", ".hdf5", ".keras"), ("Keras", "TensorFlow"),
        True, "a full-model .h5 may hold Lambda layers (marshalled Python bytecode) run on load",
    ),
    FormatInfo(
        "keras-v3", "Keras 3 (.keras zip)", "framework-native",
        (".keras",), ("Keras 3",),
        True, "config can name arbitrary classes and functions; Lambda layers need safe_mode=False",
    ),
    FormatInfo(
        "flax-msgpack", "JAX/Flax msgpack", "framework-native",
        (".msgpack", ".flax"), ("Flax", "JAX"),
        False, "none: msgpack of nested dicts and arrays",
    ),
    FormatInfo(
        "onnx", "ONNX", "exchange",
        (".onnx", ".ort"), ("ONNX Runtime", "TensorRT", "OpenVINO", "PyTorch (export)", "TensorFlow (tf2onnx)"),
        False, "no code, but custom-op domains load native libraries and external-data paths can escape the folder",
    ),
    FormatInfo(
        "pmml", "PMML", "exchange",
        (".pmml", ".xml"), ("JPMML", "SAS", "KNIME", "Spark"),
        False, "none: XML model description (use an XML parser without external entities)",
    ),
    FormatInfo(
        "tensorrt", "TensorRT engine", "inference-optimised",
        (".engine", ".plan", ".trt"), ("TensorRT", "Triton Inference Server"),
        True, "engines can embed plugin code and are deserialized by native code; only load trusted engines",
    ),
    FormatInfo(
        "openvino-ir", "OpenVINO IR", "inference-optimised",
        (".xml", ".bin"), ("OpenVINO",),
        False, "none: XML graph and raw weights (custom layers need extension libraries)",
    ),
    FormatInfo(
        "tflite", "TensorFlow Lite", "inference-optimised",
        (".tflite", ".lite"), ("TensorFlow Lite", "LiteRT", "MediaPipe"),
        False, "none: flatbuffer graph and constant buffers",
    ),
    FormatInfo(
        "coreml-mlmodel", "Core ML model", "inference-optimised",
        (".mlmodel",), ("Core ML", "coremltools"),
        False, "none: protobuf model specification",
    ),
    FormatInfo(
        "coreml-mlpackage", "Core ML package", "inference-optimised",
        (".mlpackage",), ("Core ML", "coremltools"),
        False, "none: protobuf specification plus weight blobs",
    ),
    FormatInfo(
        "gguf", "GGUF", "quantized",
        (".gguf", ".bin", ".ggml"), ("llama.cpp", "ollama", "LM Studio", "whisper.cpp"),
        False, "no code, but the chat template is a Jinja2 program rendered by some runtimes",
    ),
    FormatInfo(
        "awq", "AWQ (safetensors with quantization metadata)", "quantized",
        (".safetensors",), ("vLLM", "AutoAWQ", "SGLang", "Hugging Face transformers"),
        False, "none when stored as safetensors",
    ),
    FormatInfo(
        "gptq", "GPTQ (safetensors with quantization metadata)", "quantized",
        (".safetensors",), ("vLLM", "AutoGPTQ", "GPTQModel", "SGLang", "ExLlama"),
        False, "none when stored as safetensors",
    ),
    FormatInfo(
        "bitsandbytes", "bitsandbytes-serialized weights", "quantized",
        (".safetensors", ".bin"), ("Hugging Face transformers + accelerate", "bitsandbytes"),
        False, "none when stored as safetensors",
    ),
    FormatInfo(
        "diffusers", "Diffusers pipeline folder", "other",
        (".json",), ("Hugging Face diffusers",),
        False, "none when the components are safetensors",
    ),
    FormatInfo(
        "caffe", "Caffe model", "other",
        (".caffemodel", ".prototxt"), ("Caffe", "OpenCV dnn"),
        False, "none: protobuf network and blobs",
    ),
    FormatInfo(
        "pickle", "Python pickle / joblib", "other",
        (".pkl", ".pickle", ".joblib", ".dat", ".sav", ".gz", ".z", ".xz", ".lzma", ".bz2"),
        ("scikit-learn", "joblib", "Python"),
        True, _PICKLE_RISK,
    ),
    FormatInfo(
        "numpy", "NumPy .npy / .npz", "other",
        (".npy", ".npz"), ("NumPy", "JAX", "any"),
        False, "none unless the file holds object arrays and is loaded with allow_pickle=True",
    ),
)

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
