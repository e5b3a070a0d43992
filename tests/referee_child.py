"""The referee's child process: CPython's own C unpickler, with nothing real behind any name.

Run by tests/pickle_referee.py, never imported by the tests. It reads cases from stdin (4-byte
length, then the bytes) and answers each with one JSON line. Mode `pickle`: each case is unpickled
by `pickle.Unpickler` (the C one) whose find_class records the (module, name) it is asked for and
then calls the real C find_class with imports diverted: `builtins.__import__` is replaced for the
call by one that puts an inert stand-in module into sys.modules, so the C code maps Python 2 names
(protocol < 3), imports and walks dotted paths (protocol 4+) exactly as it would, and what it
reaches is recorded as the resolved name. Every object it can reach is a stand-in: a class whose
every attribute (dunders included, so no dotted path can reach a real object) is another stand-in,
whose instances accept any call, item, attribute or state and do nothing. persistent_load and
out-of-band buffers give stand-ins too. So the load runs to its end or to the error CPython itself
raises, and every global on the way is seen.

An audit hook is installed once setup is done and refuses every event except pickle.find_class:
if anything real were ever imported, opened, executed or started, the case would fail with
"blocked". The address space is capped, so a hostile memo index or length fails with MemoryError.

Mode `torch`: each case is a torch file's bytes, loaded with `torch.load(weights_only=True)`
(torch's own restricted unpickler, which refuses any global outside its allowlist); the answer is
whether it accepts the file. The audit hook there refuses process, network and write events (torch
imports codecs and modules of its own lazily, so module code does run there: torch's, not the file's).
"""

from __future__ import annotations

import builtins
import io
import itertools
import json
import pickle
import resource
import struct
import sys
import traceback
import warnings
from typing import Any

# Room left in the address space once the interpreter is up: a memo of 2**24 slots (256 MiB, where
# the reader's CPYTHON_MEMO_LIMIT lies) must not fit.
HEADROOM = 192 << 20


class _Meta(type):
    """The type of stand-in classes: every attribute of a stand-in class is another stand-in."""

    def __getattribute__(cls, name: str) -> Any:
        if not name:
            raise AttributeError(name)
        return _stand_in(
            type.__getattribute__(cls, "_tf_module"), f"{type.__getattribute__(cls, '_tf_path')}.{name}"
        )

    def __setitem__(cls, key: Any, value: Any) -> None:
        pass

    def __repr__(cls) -> str:
        return "<stand-in class>"


class StandIn(metaclass=_Meta):
    """An inert object: takes any arguments, any item, any state; every attribute is a stand-in."""

    _tf_module = ""
    _tf_path = ""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __getattribute__(self, name: str) -> Any:
        if not name:
            raise AttributeError(name)
        return _stand_in("", name)

    def __call__(self, *args: Any, **kwargs: Any) -> StandIn:
        return StandIn()

    def __setitem__(self, key: Any, value: Any) -> None:
        pass

    def __repr__(self) -> str:
        return "<stand-in>"


def _stand_in(module: str, path: str) -> type:
    return _Meta("StandIn", (StandIn,), {"_tf_module": module, "_tf_path": path})


class _FakeModule:
    """What the diverted import returns: attributes are stand-in classes, except names a real
    module cannot have (empty, or dotted: find_class below protocol 4 does a plain getattr)."""

    def __init__(self, name: str) -> None:
        object.__setattr__(self, "_tf_name", name)

    def __getattribute__(self, name: str) -> Any:
        if not name or "." in name:
            raise AttributeError(name)
        return _stand_in(object.__getattribute__(self, "_tf_name"), name)

    def __repr__(self) -> str:
        return "<stand-in module>"


class Recorder(pickle.Unpickler):
    def __init__(self, file: Any, asked: list[Any], resolved: list[Any]) -> None:
        buffers = (bytearray() for _ in itertools.count())
        super().__init__(file, fix_imports=True, encoding="latin1", buffers=buffers)
        self.asked = asked
        self.resolved = resolved

    def find_class(self, module: str, name: str) -> Any:
        self.asked.append([module, name])
        saved: dict[str, Any] = {}
        real_import = builtins.__import__

        def divert(target: str, *args: Any, **kwargs: Any) -> Any:
            if not target:
                raise ValueError("Empty module name")
            saved.setdefault(target, sys.modules.get(target, saved))
            fake = _FakeModule(target)
            sys.modules[target] = fake  # type: ignore[assignment]
            return fake

        builtins.__import__ = divert
        try:
            found = super().find_class(module, name)
        except BaseException:
            self.resolved.append(None)
            raise
        finally:
            builtins.__import__ = real_import
            for target, before in saved.items():
                if before is saved:
                    sys.modules.pop(target, None)
                else:
                    sys.modules[target] = before
        self.resolved.append(
            [type.__getattribute__(found, "_tf_module"), type.__getattribute__(found, "_tf_path")]
        )
        return found

    def persistent_load(self, pid: Any) -> Any:
        return StandIn()


class WholeInput:
    """A stream whose peek() hands over everything left: C then holds the whole input in one buffer
    and reads it as one run, exactly as pickle.loads(bytes) does."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.read = self._data.read
        self.readline = self._data.readline
        self.tell = self._data.tell

    def peek(self, n: int = 0) -> bytes:
        return self._data.getvalue()[self._data.tell() :]


def unpickle(data: bytes, max_streams: int) -> dict[str, Any]:
    """Both ways C reads: as one run (pickle.loads, files with peek) and through its frame buffer
    (a stream without peek, like the io.BytesIO torch.load gives it for a zip record)."""
    return {
        "joined": _unpickle(WholeInput(data), len(data), max_streams),
        "buffered": _unpickle(io.BytesIO(data), len(data), max_streams),
    }


def _unpickle(stream: Any, size: int, max_streams: int) -> list[dict[str, Any]]:
    streams = []
    while len(streams) < max_streams:
        asked: list[Any] = []
        resolved: list[Any] = []
        error = None
        try:
            Recorder(stream, asked, resolved).load()
        except Blocked:
            raise
        except BaseException as exc:  # the load's own error, whatever it is
            error = f"{type(exc).__name__}: {str(exc)[:200]}"
        streams.append({"asked": asked, "resolved": resolved, "error": error})
        if error is not None or stream.tell() >= size:
            break
    return streams


def torch_load(data: bytes) -> dict[str, Any]:
    import torch

    try:
        torch.load(io.BytesIO(data), weights_only=True, map_location="cpu")
    except Blocked:
        raise
    except BaseException as exc:
        text = str(exc)
        if "WeightsUnpickler error:" in text:  # the cause, after torch's long advice
            text = text.split("WeightsUnpickler error:", 1)[1].strip().split("\n\n", 1)[0]
        return {"accepted": False, "error": f"{type(exc).__name__}: {text[:300]}"}
    return {"accepted": True, "error": None}


class Blocked(BaseException):
    pass


_FORBIDDEN_TORCH = ("os.system", "os.exec", "os.spawn", "os.posix_spawn", "os.fork", "subprocess.", "socket.")


def _guard_pickle(event: str, args: tuple[Any, ...]) -> None:
    if event != "pickle.find_class":
        raise Blocked(f"blocked: {event} {args!r:.200}")


def _guard_torch(event: str, args: tuple[Any, ...]) -> None:
    writing = event == "open" and len(args) > 1 and isinstance(args[1], str) and set(args[1]) & set("wax+")
    if event.startswith(_FORBIDDEN_TORCH) or writing:
        raise Blocked(f"blocked: {event} {args!r:.200}")


def main() -> None:
    warnings.simplefilter("ignore")  # showing one would read source files (an \l escape in STRING warns)
    mode = sys.argv[1]
    max_streams = int(sys.argv[2]) if len(sys.argv) > 2 else 8
    read = sys.stdin.buffer.read
    write = sys.stdout.write
    if mode == "torch":
        import torch  # imported before the guard: its import runs code of its own

        warm = io.BytesIO()
        torch.save({"w": torch.zeros(1)}, warm)
        torch_load(warm.getvalue())  # what torch.load imports lazily is imported before the guard
        sys.addaudithook(_guard_torch)
        run = torch_load
    else:
        unpickle(pickle.dumps([1]), max_streams)
        with open("/proc/self/statm") as statm:
            used = int(statm.read().split()[0]) * resource.getpagesize()
        resource.setrlimit(resource.RLIMIT_AS, (used + HEADROOM, used + HEADROOM))
        sys.addaudithook(_guard_pickle)

        def run(data: bytes) -> dict[str, Any]:
            return unpickle(data, max_streams)

    while True:
        head = read(4)
        if len(head) < 4:
            return
        data = read(struct.unpack("<I", head)[0])
        try:
            answer = run(data)
        except Blocked as exc:
            answer = {"blocked": str(exc)}
        except BaseException:
            answer = {"blocked": "referee failure: " + traceback.format_exc(limit=3)}
        write(json.dumps(answer) + "\n")
        sys.stdout.flush()


if __name__ == "__main__":
    main()
