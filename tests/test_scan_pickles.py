"""The pickle scanner against reproductions of published techniques, built opcode by opcode."""

from __future__ import annotations

import base64
import io
import pickle
from collections import OrderedDict

import pytest

from tensorfile.scan.findings import rank
from tensorfile.scan.pickles import scan_pickle
from tensorfile.scan.rules import classify

from .pickle_asm import Asm


def worst(data: bytes) -> str | None:
    findings = scan_pickle(io.BytesIO(data)).findings
    return max((f.severity for f in findings), key=rank, default=None)


def rules_of(data: bytes) -> set[str]:
    return {f.rule for f in scan_pickle(io.BytesIO(data)).findings}


@pytest.mark.parametrize("protocol", [None, 2, 3, 4, 5])
def test_os_system_every_protocol(protocol: int | None) -> None:
    data = Asm(protocol).call("os", "system", "echo hi").stop().build_bytes()
    assert worst(data) == "critical"


@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("posix", "system"),
        ("nt", "system"),
        ("subprocess", "Popen"),
        ("__builtin__", "eval"),
        ("builtins", "exec"),
        ("builtins", "getattr"),
        ("builtins", "__import__"),
        ("runpy", "_run_code"),
        ("pip", "main"),
        ("pty", "spawn"),
        ("socket", "create_connection"),
        ("webbrowser", "open"),
        ("ctypes", "CDLL"),
        ("importlib", "import_module"),
        ("pkgutil", "resolve_name"),
        ("code", "InteractiveInterpreter"),
        ("pdb", "run"),
        ("bdb", "Bdb"),
        ("timeit", "timeit"),
        ("cProfile", "run"),
        ("profile", "Profile"),
        ("operator", "attrgetter"),
        ("_operator", "methodcaller"),
        ("types", "CodeType"),
        ("types", "FunctionType"),
        ("torch", "load"),
        ("torch.serialization", "load"),
        ("torch._inductor.codecache", "compile_file"),
        ("numpy.testing._private.utils", "runstring"),
        ("pydoc", "pipepager"),
        ("venv", "create"),
        ("_pickle", "loads"),
        ("cPickle", "loads"),
        ("dill._dill", "_create_code"),
        ("idlelib.pyshell", "ModifiedInterpreter.runcode"),
        ("logging", "FileHandler"),
        ("_io", "FileIO"),
    ],
)
def test_denylisted_calls_are_critical(module: str, name: str) -> None:
    data = Asm(4).call(module, name, "x").stop().build_bytes()
    assert worst(data) == "critical", (module, name)


def test_dotted_chain_through_an_allowed_module() -> None:
    # protocol 4 resolves "os.system" as an attribute chain under torch: torch.os.system
    data = Asm(4).str_("torch").str_("os.system").stack_global().mark().str_("id").tuple_().reduce().stop()
    assert worst(data.build_bytes()) == "critical"


def test_stack_global_from_memo() -> None:
    data = (
        Asm(4)
        .str_("posix")
        .put(0)
        .pop()
        .str_("system")
        .put(1)
        .pop()
        .get(0)
        .get(1)
        .stack_global()
        .mark()
        .str_("id")
        .tuple_()
        .reduce()
        .stop()
    )
    assert worst(data.build_bytes()) == "critical"


def test_inst_and_obj_and_newobj() -> None:
    inst = Asm(None).mark().text_string("print(1)").inst("__builtin__", "exec").stop()
    assert worst(inst.build_bytes()) == "critical"
    obj = Asm(2).mark().global_("subprocess", "Popen").str_("id").obj().stop()
    assert worst(obj.build_bytes()) == "critical"
    newobj = Asm(2).global_("subprocess", "Popen").mark().str_("id").tuple_().newobj().stop()
    assert worst(newobj.build_bytes()) == "critical"


def test_functools_partial_over_a_dangerous_target() -> None:
    data = Asm(4).global_("functools", "partial").mark().global_("torch", "load").tuple_().reduce().stop()
    assert worst(data.build_bytes()) == "critical"


def test_partial_over_unknown_function_is_high() -> None:
    data = (
        Asm(4).global_("functools", "partial").mark().global_("somepkg.mod", "run").tuple_().reduce().stop()
    )
    found = scan_pickle(io.BytesIO(data.build_bytes())).findings
    assert any(f.evidence == "somepkg.mod.run" and f.severity == "high" for f in found)


def test_build_on_imported_object_is_flagged() -> None:
    # BUILD on torch._utils with a state dict that swaps in eval (picklescan sys_module_override)
    data = (
        Asm(4)
        .global_("torch", "_utils")
        .empty_dict()
        .str_("_rebuild_tensor")
        .global_("builtins", "eval")
        .setitem()
        .build()
        .stop()
    )
    assert {"pickle-build-on-import", "pickle-dangerous-global"} <= rules_of(data.build_bytes())


def test_unknown_function_called_is_high_and_unknown_class_medium() -> None:
    called = Asm(4).call("evilpkg.helpers", "run_thing", "x").stop().build_bytes()
    assert worst(called) == "high"
    constructed = Asm(4).global_("mylib.models", "Net").empty_tuple().newobj().stop().build_bytes()
    assert worst(constructed) == "medium"


def test_computed_stack_global_and_ext_codes() -> None:
    data = Asm(4).int_(42).str_("system").stack_global().pop().ext1(7).pop().none().stop()
    found = rules_of(data.build_bytes())
    assert "pickle-computed-import" in found
    assert "pickle-extension-code" in found


def test_payload_in_second_stream() -> None:
    benign = Asm(4).empty_dict().stop().build_bytes()
    evil = Asm(4).call("builtins", "eval", "1+1").stop().build_bytes()
    found = scan_pickle(io.BytesIO(benign + evil)).findings
    assert any(f.severity == "critical" and "stream 2" in f.location for f in found)


def test_payload_before_a_deliberately_broken_stream() -> None:
    data = Asm(4).call("builtins", "exec", "x=1").raw(b"\xff\xfe garbage").build_bytes()
    found = rules_of(data)
    assert "pickle-dangerous-global" in found
    assert "pickle-malformed" in found


def test_memo_key_error_evasion() -> None:
    data = Asm(4).call("os", "system", "id").get(99).stop().build_bytes()
    assert worst(data) == "critical"


@pytest.mark.parametrize("encoding", ["raw", "base64", "hex", "base64-of-hex"])
def test_embedded_pickles(encoding: str) -> None:
    inner = Asm(4).call("os", "system", "id").stop().build_bytes()
    if encoding == "raw":
        outer = Asm(4).empty_dict().str_("blob").bytes_(inner).setitem().stop()
    else:
        text = {
            "base64": base64.b64encode(inner).decode(),
            "hex": inner.hex(),
            "base64-of-hex": base64.b64encode(inner.hex().encode()).decode(),
        }[encoding]
        outer = Asm(4).empty_dict().str_("blob").str_(text).setitem().stop()
    found = scan_pickle(io.BytesIO(outer.build_bytes())).findings
    assert any(f.severity == "critical" and "embedded pickle" in f.location for f in found)


def test_large_values_are_skipped_not_read() -> None:
    big = b"\x00" * (2 << 20)
    data = Asm(4).empty_dict().str_("w").raw(b"\x8e" + len(big).to_bytes(8, "little") + big).setitem().stop()
    scanned = scan_pickle(io.BytesIO(data.build_bytes()))
    assert not [f for f in scanned.findings if rank(f.severity) >= rank("medium")]


def test_benign_pickles_stay_quiet() -> None:
    import argparse

    import numpy as np

    values = [
        {"a": 1, "b": [1.0, 2.0], "c": ("x", b"y")},
        OrderedDict(w=np.zeros((2, 3), dtype=np.float32)),
        {"args": argparse.Namespace(lr=0.1, epochs=3), "step": 5},
        np.array([(1, 2), (3, 4)], dtype=object),
    ]
    for value in values:
        for protocol in (2, 4, 5):
            data = pickle.dumps(value, protocol=protocol)
            assert worst(data) in (None, "info", "low"), (value, protocol)


def test_torch_whole_module_pickle_is_not_critical(tmp_path) -> None:
    torch = pytest.importorskip("torch")
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.LayerNorm(3))
    path = tmp_path / "model.pt"
    torch.save(model, path, _use_new_zipfile_serialization=False)
    with path.open("rb") as f:
        scanned = scan_pickle(f, max_streams=5)
    assert max((f.severity for f in scanned.findings), key=rank, default="info") in ("info", "low")


@pytest.mark.parametrize(
    ("module", "name", "usage", "severity"),
    [
        ("torch._utils", "_rebuild_tensor_v2", "called", None),
        ("collections", "OrderedDict", "called", None),
        ("torch", "FloatStorage", "referenced", None),
        ("torch", "bfloat16", "referenced", None),
        ("numpy.core.multiarray", "_reconstruct", "called", None),
        ("sklearn.tree._tree", "Tree", "called", "info"),
        ("pandas._libs.internals", "_unpickle_block", "called", "info"),
        ("__main__", "MyModel", "constructed", "medium"),
        ("torch.nn.modules.linear", "Linear", "constructed", "info"),
        ("torch", "os.system", "referenced", "critical"),
        ("builtins", "print", "called", "high"),
    ],
)
def test_rule_table(module: str, name: str, usage: str, severity: str | None) -> None:
    assert classify(module, name, usage).severity == severity


def test_newobj_ex_with_non_dict_kwargs() -> None:
    # NEWOBJ_EX pops whatever is on the stack as kwargs; a string there must not break the scan
    data = Asm(4).global_("evilpkg", "Thing").empty_tuple().global_("os", "system").raw(b"\x92").stop()
    assert worst(data.build_bytes()) == "critical"
