"""How dangerous is it for a pickle to import `module.name`? Allowlist first, then a denylist.

A pickle can only act through the globals it imports: every call it makes is to something it
named. So each global is judged on its own, by what it is and how the pickle uses it:

- on the allowlist (tensor rebuild functions, storages, numpy reconstruction, plain containers)
  → nothing to report;
- on the denylist (code execution, processes, files, network, nested unpicklers, attribute
  gadgets, and the published picklescan-bypass gadgets) → critical, however it is used;
- anything else is judged by use: a function the pickle *calls* runs at load time (high); a
  class it *constructs* needs that library's code but follows the normal pickle protocol
  (medium; info for well-known ML libraries); a name it only *references* is low.

Dotted names (`torch.os.system`) are checked link by link, so reaching a dangerous object
through an allowed module is still caught.
"""

from __future__ import annotations

from dataclasses import dataclass

# Old or private spellings of the same modules.
_MODULE_ALIASES = {
    "__builtin__": "builtins",
    "exceptions": "builtins",
    "posix": "os",
    "nt": "os",
    "_posixsubprocess": "subprocess",
    "commands": "subprocess",
    "cPickle": "pickle",
    "_pickle": "pickle",
    "copy_reg": "copyreg",
    "_operator": "operator",
    "_io": "io",
    "_socket": "socket",
    "_ssl": "ssl",
    "_thread": "threading",
    "thread": "threading",
    "httplib": "http.client",
    "urllib2": "urllib.request",
    "_functools": "functools",
    "_codecs": "codecs",
    "_collections": "collections",
    "numpy._core": "numpy.core",
}

# Whole modules (and everything under them) whose use in a model file means running code,
# spawning processes, touching files or the network, or unpickling more data.
_DANGEROUS_MODULES: dict[str, str] = {
    "os": "runs operating-system commands or touches files",
    "subprocess": "starts other programs",
    "pty": "spawns a shell",
    "socket": "opens network connections",
    "ssl": "opens network connections",
    "http": "makes network requests",
    "urllib": "makes network requests",
    "urllib3": "makes network requests",
    "requests": "makes network requests",
    "aiohttp": "makes network requests",
    "httpx": "makes network requests",
    "ftplib": "makes network requests",
    "smtplib": "sends mail",
    "telnetlib": "makes network connections",
    "imaplib": "makes network connections or runs commands",
    "poplib": "makes network connections",
    "nntplib": "makes network connections",
    "xmlrpc": "makes network requests",
    "socketserver": "opens a network server",
    "webbrowser": "opens a browser (runs a program)",
    "ctypes": "loads native libraries and calls arbitrary memory",
    "cffi": "loads native libraries",
    "importlib": "imports arbitrary modules",
    "imp": "imports arbitrary modules",
    "pkgutil": "imports arbitrary modules",
    "zipimport": "imports code from archives",
    "runpy": "runs Python code",
    "code": "runs Python code",
    "codeop": "compiles Python code",
    "pdb": "runs Python code in the debugger",
    "bdb": "runs Python code in the debugger",
    "trace": "runs Python code",
    "timeit": "runs Python code",
    "cProfile": "runs Python code",
    "profile": "runs Python code",
    "pydoc": "runs a pager program or imports modules",
    "idlelib": "runs Python code",
    "lib2to3": "loads pickled grammar files or runs code",
    "doctest": "runs Python code",
    "venv": "creates environments and runs programs",
    "ensurepip": "runs pip",
    "pip": "installs packages",
    "setuptools": "builds and runs code",
    "distutils": "writes files and runs programs",
    "multiprocessing": "starts processes",
    "concurrent": "starts processes or threads",
    "asyncio": "starts processes and network connections",
    "threading": "starts threads that run code",
    "signal": "changes signal handling",
    "shutil": "copies, moves or deletes files",
    "tempfile": "creates files",
    "pickle": "unpickles more data (a nested pickle can do anything)",
    "marshal": "loads compiled code",
    "shelve": "unpickles data from files",
    "dill": "rebuilds functions and code objects",
    "cloudpickle": "rebuilds functions and code objects",
    "types": "builds code and function objects",
    "sys": "changes the interpreter (exit, modules, paths)",
    "platform": "runs programs",
    "_aix_support": "runs programs",
    "_osx_support": "runs programs",
    "_pyrepl": "runs a pager program",
    "test": "runs Python scripts",
    "gc": "reaches arbitrary live objects",
    "inspect": "reaches frames and code of live objects",
    "builtins.eval": "evaluates a Python expression",
    "builtins.exec": "executes Python code",
    "builtins.execfile": "executes a Python file",
    "builtins.compile": "compiles Python code",
    "builtins.__import__": "imports any module",
    "builtins.reload": "re-imports a module",
    "builtins.getattr": "reaches any attribute (a way to get at dangerous functions)",
    "builtins.setattr": "changes attributes of live objects",
    "builtins.delattr": "changes attributes of live objects",
    "builtins.globals": "reaches the interpreter's globals",
    "builtins.locals": "reaches the interpreter's locals",
    "builtins.vars": "reaches objects' internals",
    "builtins.open": "opens files",
    "builtins.file": "opens files",
    "builtins.input": "reads from the terminal",
    "builtins.breakpoint": "starts a debugger",
    "builtins.apply": "calls any function",
    "builtins.exit": "exits the interpreter",
    "builtins.quit": "exits the interpreter",
    "operator.attrgetter": "reaches any attribute (a way to get at dangerous functions)",
    "operator.methodcaller": "calls any method",
    "io.open": "opens files",
    "io.open_code": "opens files",
    "io.FileIO": "opens files",
    "codecs.open": "opens files",
    "logging.FileHandler": "creates or truncates files",
    "logging.config": "loads logging configuration (can run code)",
    "logging.handlers": "writes files or sends network traffic",
    "uuid._get_command_stdout": "runs programs",
    "uuid._popen": "runs programs",
    "glob": "lists files",
    "zipfile": "reads or writes archives",
    "tarfile": "reads or writes archives",
    "yaml.load": "loads YAML that can construct Python objects",
    "yaml.unsafe_load": "loads YAML that can construct Python objects",
    "jinja2": "renders templates (sandbox escapes run code)",
    "torch.load": "unpickles a nested file with torch.load",
    "torch.serialization.load": "unpickles a nested file with torch.load",
    "torch.hub": "downloads and runs code",
    "torch._inductor": "compiles and runs generated code",
    "torch._dynamo": "evaluates guard code",
    "torch.fx.experimental": "evaluates expressions",
    "torch.jit.load": "loads a TorchScript program",
    "torch.jit._serialization": "loads a TorchScript program",
    "torch.jit.unsupported_tensor_ops": "executes generated code",
    "torch.jit.frontend": "compiles Python source",
    "torch.jit._script": "compiles Python source",
    "torch.jit.annotations": "evaluates type annotations as code",
    "torch.package": "imports packaged code",
    "torch.utils.cpp_extension": "compiles and loads native code",
    "torch.utils.bottleneck": "runs scripts",
    "torch.utils.collect_env": "runs programs",
    "torch.utils._config_module": "executes configuration code",
    "torch.utils.data.datapipes": "decodes with pickle or runs code",
    "torch.ops.load_library": "loads native code",
    "torch.classes.load_library": "loads native code",
    "torch._C._jit": "compiles or loads code",
    "torch.distributed.rpc": "calls remote functions",
    "numpy.load": "loads files, possibly unpickling them",
    "numpy.f2py": "compiles and runs code",
    "numpy.testing": "runs code",
    "numpy.distutils": "builds and runs code",
    "numpy.ctypeslib": "loads native libraries",
    "numpy.lib.npyio": "loads files, possibly unpickling them",
    "numpy.fromfile": "reads files",
    "numpy.memmap": "opens files",
    "joblib.load": "unpickles a nested file",
    "pandas.read_pickle": "unpickles a nested file",
    "pandas.io": "reads files or URLs",
    "keras.utils.get_file": "downloads files",
    "keras.src.utils.file_utils": "downloads or writes files",
    "tensorflow.io": "reads or writes files",
    "tensorflow.keras.utils.get_file": "downloads files",
    "transformers.pipelines": "downloads and runs models",
    "huggingface_hub": "downloads files",
}

# Loaders of nested data, found by name in any module: they all read more pickles or code.
_LOADER_NAMES = frozenset({"load", "loads", "load_model", "unsafe_load", "full_load", "read_pickle"})

# Known safe for loading models: data constructors and the rebuild functions of tensors/arrays.
_SAFE_GLOBALS = frozenset(
    {
        "collections.OrderedDict",
        "collections.defaultdict",
        "collections.Counter",
        "collections.deque",
        "builtins.set",
        "builtins.frozenset",
        "builtins.slice",
        "builtins.range",
        "builtins.complex",
        "builtins.bytearray",
        "builtins.bytes",
        "builtins.dict",
        "builtins.list",
        "builtins.tuple",
        "builtins.int",
        "builtins.float",
        "builtins.str",
        "builtins.bool",
        "builtins.object",
        "builtins.Ellipsis",
        "builtins.NotImplemented",
        "copyreg._reconstructor",
        "copyreg.__newobj__",
        "copyreg.__newobj_ex__",
        "codecs.encode",
        "argparse.Namespace",
        "datetime.datetime",
        "datetime.date",
        "datetime.time",
        "datetime.timedelta",
        "datetime.timezone",
        "decimal.Decimal",
        "fractions.Fraction",
        "uuid.UUID",
        "pathlib.Path",
        "pathlib.PosixPath",
        "pathlib.WindowsPath",
        "pathlib.PurePath",
        "pathlib.PurePosixPath",
        "pathlib.PureWindowsPath",
        "re._compile",
        "typing.Any",
        "numpy.core.multiarray._reconstruct",
        "numpy.core.multiarray.scalar",
        "numpy.core.numeric._frombuffer",
        "numpy.ndarray",
        "numpy.dtype",
        "numpy.random._pickle.__randomstate_ctor",
        "numpy.random._pickle.__bit_generator_ctor",
        "numpy.random._pickle.__generator_ctor",
        "numpy.random.__RandomState_ctor",
        "joblib.numpy_pickle.NumpyArrayWrapper",
        "joblib.numpy_pickle.NDArrayWrapper",
        "torch.Size",
        "torch.device",
        "torch.dtype",
        "torch.Tensor",
        "torch.nn.parameter.Parameter",
        "torch.nn.parameter.Buffer",
        "torch.storage.TypedStorage",
        "torch.storage.UntypedStorage",
        "torch.storage._TypedStorage",
        "torch.serialization._get_layout",
        "torch._tensor._rebuild_from_type_v2",
    }
)

# torch's dtypes, quantization schemes, layouts and memory formats: values, not callables (calling
# one raises TypeError). torch.load(weights_only=True) allows the dtypes and qschemes by name;
# quantized checkpoints pass them to torch._utils._rebuild_qtensor.
_TORCH_VALUES = frozenset(
    {
        "bfloat16", "bit", "bits16", "bits1x8", "bits2x4", "bits4x2", "bits8", "bool", "cdouble",
        "cfloat", "chalf", "complex128", "complex32", "complex64", "double", "float", "float16",
        "float32", "float4_e2m1fn_x2", "float64", "float8_e4m3fn", "float8_e4m3fnuz", "float8_e5m2",
        "float8_e5m2fnuz", "float8_e8m0fnu", "half", "int", "int1", "int16", "int2", "int3", "int32",
        "int4", "int5", "int6", "int64", "int7", "int8", "long", "short", "uint1", "uint16", "uint2",
        "uint3", "uint32", "uint4", "uint5", "uint6", "uint64", "uint7", "uint8",
        "qint32", "qint8", "quint2x4", "quint4x2", "quint8",
        "per_channel_affine", "per_channel_affine_float_qparams", "per_channel_symmetric",
        "per_tensor_affine", "per_tensor_symmetric",
        "strided", "sparse_coo", "sparse_csr", "sparse_csc", "sparse_bsr", "sparse_bsc", "_mkldnn",
        "jagged", "contiguous_format", "channels_last", "channels_last_3d", "preserve_format",
        "legacy_contiguous_format",
    }
)  # fmt: skip

# Modules whose classes show up in ordinary checkpoints and fitted models.
_ML_LIBRARIES = frozenset(
    {
        "torch", "torchvision", "torchaudio", "torchtext", "numpy", "scipy", "sklearn", "pandas",
        "xgboost", "lightgbm", "catboost", "transformers", "tokenizers", "sentencepiece", "timm",
        "lightning", "pytorch_lightning", "lightning_fabric", "keras", "tensorflow", "jax", "flax",
        "optax", "joblib", "omegaconf", "accelerate", "peft", "diffusers", "safetensors",
        "ml_dtypes", "einops", "collections", "datetime", "typing", "enum", "numbers", "functools",
        "builtins", "copyreg", "codecs",
    }
)  # fmt: skip

# Rebuild helpers by naming convention (Cython's __pyx_unpickle_*, pandas' _unpickle_*/_new_*,
# torch's _rebuild_*, numpy's *_ctor): written for unpickling, so calling them is expected.
_RECONSTRUCTOR_PREFIXES = ("__pyx_unpickle", "_unpickle", "_reconstruct", "_rebuild", "_new_", "__newobj")


@dataclass(frozen=True)
class Verdict:
    severity: str | None  # None: allowed, nothing to report
    rule: str
    reason: str


def normalize(module: str, name: str) -> list[str]:
    """The dotted path `module.name` as parts, with old module spellings mapped to current ones."""
    parts = [p for p in f"{module}.{name}".split(".") if p]
    for width in (2, 1):
        head = ".".join(parts[:width])
        if head in _MODULE_ALIASES:
            return _MODULE_ALIASES[head].split(".") + parts[width:]
    return parts


def _dangerous_reason(parts: list[str]) -> str | None:
    """Why any prefix of the path, or any chain starting inside it, is on the denylist."""
    for start in range(len(parts)):
        chain = normalize(parts[start], ".".join(parts[start + 1 :])) if start else parts
        for end in range(len(chain), 0, -1):
            reason = _DANGEROUS_MODULES.get(".".join(chain[:end]))
            if reason:
                return reason
    return None


def _is_torch_rebuild(parts: list[str]) -> bool:
    if parts[:2] == ["torch", "_utils"] and len(parts) == 3 and parts[2].startswith("_rebuild"):
        return True
    # torch.FloatStorage, torch.cuda.HalfStorage …: storage classes named by persistent ids
    return parts[0] == "torch" and len(parts) <= 3 and parts[-1].endswith("Storage")


def _is_torch_dtype_or_layout(parts: list[str]) -> bool:
    return len(parts) == 2 and parts[0] == "torch" and parts[1][:1].islower() and "_" not in parts[1][:1]


def classify(module: str, name: str, usage: str) -> Verdict:
    """Judge one imported global; `usage` is "called", "constructed" or "referenced"."""
    parts = normalize(module, name)
    if not parts:
        return Verdict("high", "pickle-computed-import", "imports an empty name")
    qualname = ".".join(parts)
    if qualname in _SAFE_GLOBALS or _is_torch_rebuild(parts):
        return Verdict(None, "pickle-allowed-global", "used to rebuild tensors and containers")
    if len(parts) == 2 and parts[0] == "torch" and parts[1] in _TORCH_VALUES:
        return Verdict(None, "pickle-allowed-global", "a torch dtype, qscheme, layout or memory format")
    if parts[0] == "__torch__" or parts[:3] == ["torch", "jit", "_pickle"]:
        # TorchScript: classes compiled from the archive's own code/, and its list/tensor builders
        return Verdict("info", "pickle-torchscript", "a TorchScript class or builder (no Python import)")
    reason = _dangerous_reason(parts)
    if reason:
        return Verdict("critical", "pickle-dangerous-global", reason)
    if parts[-1] in _LOADER_NAMES:
        return Verdict("critical", "pickle-dangerous-global", "loads nested data that can run code")
    dotted = "." in name
    if dotted and parts[0] not in _ML_LIBRARIES:
        # Attribute chains through a module are how denylist gaps are exploited.
        return Verdict("high", "pickle-attribute-chain", "reaches an attribute through a dotted path")
    last = parts[-1]
    known = parts[0] in _ML_LIBRARIES
    looks_like_class = last[:1].isupper()
    if last.startswith(_RECONSTRUCTOR_PREFIXES) or last.endswith("_ctor"):
        return Verdict("info", "pickle-reconstructor", "a rebuild helper written for unpickling")
    if parts[0] == "torch" and _is_torch_dtype_or_layout(parts) and usage != "called":
        return Verdict(None, "pickle-allowed-global", "a torch dtype, layout or memory format")
    if usage == "called" and not looks_like_class:
        if dotted:
            return Verdict("high", "pickle-attribute-chain", "calls a method reached through a dotted path")
        return Verdict("high", "pickle-unknown-call", "calls a function that runs when the file is loaded")
    if usage in ("called", "constructed"):
        if known:
            return Verdict("info", "pickle-known-class", "builds an object of a well-known library class")
        if parts[0] == "__main__":
            return Verdict(
                "medium",
                "pickle-main-class",
                "builds an object of a class from the script that saved it (its code must be present)",
            )
        return Verdict("medium", "pickle-unknown-class", "builds an object of a class outside the allowlist")
    if known:
        return Verdict("info", "pickle-known-reference", "refers to a well-known library object")
    return Verdict("low", "pickle-unknown-reference", "refers to an object outside the allowlist")
