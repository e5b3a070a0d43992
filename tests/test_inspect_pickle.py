"""inspect for plain pickles and joblib files: imports and arrays, read without unpickling."""

from __future__ import annotations

import pickle
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from tensorfile.errors import FormatError
from tensorfile.inspection import inspect


@pytest.mark.parametrize("compress", [0, ("zlib", 3), ("gzip", 3), ("bz2", 3), ("lzma", 3), ("xz", 3)])
def test_joblib_arrays_match_joblib(tmp_path: Path, compress: object) -> None:
    import joblib

    data = {
        "w": np.arange(12, dtype=np.float32).reshape(3, 4),
        "ids": np.arange(100, dtype=np.int64),
        "nested": [np.ones((2, 2), np.float16)],
        "label": "model",
    }
    path = tmp_path / "arrays.joblib"
    joblib.dump(data, path, compress=compress)
    info = inspect(path)
    assert {t.name: (t.dtype, t.shape) for t in info.tensors} == {
        "w": ("F32", (3, 4)),
        "ids": ("I64", (100,)),
        "nested.0": ("F16", (2, 2)),
    }
    assert info.parameter_count == 12 + 100 + 4
    assert info.pickle is not None and "joblib.numpy_pickle.NumpyArrayWrapper" in info.pickle["imports"]
    if compress == 0:  # uncompressed: offsets point at the raw array bytes
        w = next(t for t in info.tensors if t.name == "w")
        with path.open("rb") as fh:
            fh.seek(w.offset)
            np.testing.assert_array_equal(
                np.frombuffer(fh.read(w.nbytes), np.float32).reshape(3, 4), data["w"]
            )


def test_sklearn_model_in_joblib(made: Callable[[str], Path]) -> None:
    info = inspect(made("joblib"))
    names = {t.name for t in info.tensors}
    assert {"model.coef_", "model.intercept_", "table"} <= names
    assert info.pickle is not None
    assert "sklearn.linear_model._logistic.LogisticRegression" in info.pickle["imports"]


def test_plain_pickle_with_numpy_arrays(tmp_path: Path) -> None:
    path = tmp_path / "plain.pkl"
    path.write_bytes(pickle.dumps({"emb": np.zeros((5, 3), np.float32), "n": 3}, protocol=4))
    info = inspect(path)
    assert [(t.name, t.dtype, t.shape) for t in info.tensors] == [("emb", "F32", (5, 3))]


def test_object_arrays_in_joblib_are_walked_not_run(tmp_path: Path) -> None:
    import joblib

    path = tmp_path / "objects.joblib"
    joblib.dump({"objs": np.array([{"a": 1}, None], dtype=object), "w": np.ones(3)}, path)
    info = inspect(path)
    assert [t.name for t in info.tensors] == ["w"]
    assert any("object array" in w for w in info.warnings)


def test_joblib_structured_dtype_arrays() -> None:
    """sklearn trees store their nodes as a structured (void) dtype: sized from numpy's own state."""
    import joblib

    path = Path(__file__).resolve().parents[1] / "examples" / "models" / "classifier.joblib"
    info = inspect(path)
    model = joblib.load(path)
    nodes = model.tree_.__getstate__()["nodes"]
    by_name = {t.name.rsplit(".", 1)[-1]: t for t in info.tensors}
    assert by_name["nodes"].dtype == f"V{nodes.dtype.itemsize}"
    assert by_name["nodes"].nbytes == nodes.nbytes
    assert info.parameters_by_dtype[f"V{nodes.dtype.itemsize}"] == nodes.size


def test_dtype_state_without_a_byte_order(tmp_path: Path) -> None:
    # a pickled numpy.dtype whose state holds None where the byte order goes: `None in '<>|='`
    # was a TypeError out of inspect; found by fuzzing (issue 16)
    data = pickle.dumps({"w": np.arange(4, dtype=np.float32)}, protocol=2)
    assert data.count(b"X\x01\x00\x00\x00<") == 1  # the '<' of the dtype's state
    path = tmp_path / "m.pkl"
    path.write_bytes(data.replace(b"X\x01\x00\x00\x00<", b"N"))
    with pytest.raises(FormatError, match="unknown dtype"):
        inspect(path)
