"""`tensorfile view` in a real browser: Debian's chromium driven by Playwright (never a downloaded browser).

On a generated 10,000-tensor GGUF served by the local server, and on the --html export of real files of
several formats opened from file:// with every network request failed: the counts shown are those of
`inspect --json`, search / sort / dtype filter give what `inspect --filter` gives, charts are drawn,
the console stays clean, a traversal URL gets 404, the keys work and a phone-width window does not
scroll sideways. `make chromium` installs the browser; without it (or Playwright) these tests skip.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tensorfile.view.documents import build_documents
from tensorfile.view.html import export_html
from tensorfile.view.server import ViewServer

from .conftest import HEAVY, ROOT, run_cli

CHROMIUM = "/usr/bin/chromium"
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
if not os.access(CHROMIUM, os.X_OK):
    pytest.skip(
        f"{CHROMIUM} is missing: `make chromium` installs it (apt-get, as root)", allow_module_level=True
    )
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is missing: pip install -e '.[test]'"
)

EXAMPLES = ROOT / "examples" / "models"


def inspect_json(path: Path | str, *extra: str) -> dict[str, Any]:
    proc = run_cli("inspect", str(path), "--json", *extra)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        yield b
        b.close()


class Page:
    """A page with its console watched: every error or failed request is kept for the test to see."""

    def __init__(self, browser: Any, width: int = 1280, scheme: str = "light", offline: bool = False) -> None:
        self.context = browser.new_context(viewport={"width": width, "height": 800}, color_scheme=scheme)
        self.page = self.context.new_page()
        self.errors: list[str] = []
        self.requests: list[str] = []
        self.page.on(
            "console", lambda m: self.errors.append(m.text) if m.type in ("error", "warning") else None
        )
        self.page.on("pageerror", lambda e: self.errors.append(str(e)))
        if offline:  # the export must need nothing: any request but its own file fails, and is recorded
            self.context.route("**/*", self._only_file)

    def _only_file(self, route: Any) -> None:
        url = route.request.url
        if url.startswith("file://"):
            route.continue_()
        else:
            self.requests.append(url)
            route.abort()

    def open(self, url: str) -> Any:
        self.page.goto(url)
        self.page.wait_for_selector("html[data-ready='1']", timeout=20_000)
        return self.page

    def close(self) -> None:
        self.context.close()


@pytest.fixture
def new_page(browser: Any) -> Iterator[Callable[..., Page]]:
    pages: list[Page] = []

    def make(**kw: Any) -> Page:
        pages.append(Page(browser, **kw))
        return pages[-1]

    yield make
    for p in pages:
        p.close()


# ------------------------------------------------------------------ the 10,000-tensor GGUF, served


def write_big_gguf(path: Path, blocks: int = 1000) -> Path:
    """blocks × 10 tensors (and 2 more): F32, F16 and Q8_0, named like llama.cpp's (blk.N.…), by gguf-py."""
    import gguf
    import numpy as np

    writer = gguf.GGUFWriter(str(path), "llama")
    writer.add_block_count(blocks)
    writer.add_string("tokenizer.chat_template", "{% for m in messages %}{{ m['content'] }}{% endfor %}")
    writer.add_array("tokenizer.ggml.tokens", [f"tok{i}" for i in range(300)])
    writer.add_tensor("token_embd.weight", np.zeros((16, 64), np.float32))
    rng = np.random.default_rng(0)
    for b in range(blocks):
        for k in range(6):
            rows = 1 + (b + k) % 7  # parameter counts differ, so sorting by them means something
            dtype = np.float16 if k % 2 else np.float32
            writer.add_tensor(f"blk.{b}.attn_{k}.weight", rng.standard_normal((rows, 8)).astype(dtype))
        for k in range(4):
            q = gguf.quants.quantize(np.zeros((2, 32), np.float32), gguf.GGMLQuantizationType.Q8_0)
            writer.add_tensor(f"blk.{b}.ffn_{k}.weight", q, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
    writer.add_tensor("output_norm.weight", np.ones(64, np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    return path


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[ViewServer, dict[str, Any], Path]]:
    path = write_big_gguf(tmp_path_factory.mktemp("view") / "big.gguf")
    expected = inspect_json(path)
    assert expected["tensor_count"] == 10_002  # 1000 blocks × 10, the embedding and the norm
    srv = ViewServer(build_documents(str(path)))
    srv.start_background()
    yield srv, expected, path
    srv.shutdown()
    srv.server_close()


def shown(page: Any) -> int:
    return int(page.get_attribute("#tf-count", "data-shown"))


def wait_shown(page: Any, n: int) -> None:
    # a function, not a string: the page's CSP forbids eval, which a string predicate would need
    page.wait_for_function("n => document.querySelector('#tf-count').dataset.shown == n", arg=n)


def visible_names(page: Any) -> list[str]:
    return page.eval_on_selector_all(
        "#panel-tensors .vt-row:not([hidden])",
        "rows => rows.sort((a, b) => a.dataset.index - b.dataset.index)"
        ".map(r => r.querySelector('.name span').textContent)",
    )


def test_big_gguf_counts_search_sort_filter(
    big: tuple[ViewServer, dict[str, Any], Path], new_page: Any
) -> None:
    srv, expected, path = big
    tab = new_page()
    page = tab.open(srv.url)
    assert page.text_content("[data-count=parameter_count]") == f"{expected['parameter_count']:,}"
    assert page.text_content("[data-count=tensor_count]") == f"{expected['tensor_count']:,}"
    assert page.text_content("[data-count=tensor_types]") == expected["tensor_types"]
    dtype_bars = page.eval_on_selector_all(
        "svg[data-chart=dtypes] rect", "rs => rs.map(r => +r.getAttribute('width'))"
    )
    assert len(dtype_bars) == 2 * len(expected["parameters_by_dtype"]) and min(dtype_bars) > 0

    page.keyboard.press("2")
    page.wait_for_selector("#panel-tensors:not([hidden]) .vt-row")
    assert shown(page) == expected["tensor_count"]
    rows_in_dom = page.eval_on_selector_all("#panel-tensors .vt-row", "rs => rs.length")
    assert rows_in_dom < 100  # virtualised: only what is in view
    assert visible_names(page)[:3] == [t["name"] for t in expected["tensors"][:3]]

    # glob: the same tensors as inspect --filter
    page.keyboard.press("/")
    assert page.evaluate("document.activeElement.id") == "tf-search"
    page.keyboard.type("blk.1?.attn_*")
    filtered = inspect_json(path, "--filter", "blk.1?.attn_*")
    wait_shown(page, len(filtered["tensors"]))
    assert int(page.get_attribute("#tf-count", "data-params")) == sum(t["numel"] for t in filtered["tensors"])
    # plain text: a case-insensitive substring
    page.fill("#tf-search", "FFN_2")
    n_ffn2 = sum(1 for t in expected["tensors"] if "ffn_2" in t["name"])
    wait_shown(page, n_ffn2)
    page.fill("#tf-search", "")
    wait_shown(page, expected["tensor_count"])

    # dtype filter
    page.select_option("#tf-dtype", "F16")
    f16 = [t for t in expected["tensors"] if t["dtype"] == "F16"]
    assert shown(page) == len(f16)
    assert int(page.get_attribute("#tf-count", "data-params")) == expected["parameters_by_dtype"]["F16"]
    assert {
        page.text_content(f"#panel-tensors .vt-row[data-index='{i}'] .vt-cell:nth-child(3)") for i in range(5)
    } == {"F16"}
    page.select_option("#tf-dtype", "")

    # sort by params (largest first), then by name (numbers as numbers: blk.2 before blk.10)
    page.click("#panel-tensors .vt-head button[data-key=numel]")
    by_size = sorted(expected["tensors"], key=lambda t: -t["numel"])
    assert visible_names(page)[0] == by_size[0]["name"]
    assert page.get_attribute("#panel-tensors .vt-head button[data-key=numel]", "aria-sort") == "descending"
    page.click("#panel-tensors .vt-head button[data-key=name]")
    names = visible_names(page)
    assert names[:2] == ["blk.0.attn_0.weight", "blk.0.attn_1.weight"]
    assert names.index("blk.1.attn_0.weight") < len(names)  # blk.1 right after blk.0's nine, not blk.10
    # scrolling far renders the rows there, and j/k move the selection
    page.eval_on_selector("#panel-tensors .vt", "el => { el.scrollTop = el.scrollHeight; }")
    page.wait_for_function(
        "name => [...document.querySelectorAll('#panel-tensors .vt-row:not([hidden])')]"
        ".some(r => r.querySelector('.name span').textContent === name)",
        arg="token_embd.weight",
    )
    page.eval_on_selector("#panel-tensors .vt", "el => { el.scrollTop = 0; }")
    page.click("#panel-tensors .vt-head")  # focus leaves the search box
    page.keyboard.press("j")
    page.keyboard.press("j")
    page.keyboard.press("k")
    assert page.get_attribute("#panel-tensors .vt-row[aria-selected=true]", "data-index") == "0"

    # layer tree: 1000 numbered blocks folded into one row with a bar per block
    page.keyboard.press("3")
    page.wait_for_selector("#tf-tree")
    assert "blk.{0..999} 1000 blocks" in page.text_content("#tf-tree")
    assert page.eval_on_selector_all("#tf-tree svg.blockbars rect", "rs => rs.length") == 1000

    # memory chart and GPU table
    page.keyboard.press("4")
    page.wait_for_selector("svg[data-chart=memory] rect")
    widths = page.eval_on_selector_all(
        "svg[data-chart=memory] rect", "rs => rs.map(r => +r.getAttribute('width'))"
    )
    assert len(widths) >= 10 and min(widths) > 0
    assert page.eval_on_selector_all("#tf-fits tbody tr", "rs => rs.length") >= 20

    # metadata: the chat template as text, token arrays summarised
    page.keyboard.press("6")
    assert "{% for m in messages %}" in page.text_content("#tf-chat-template")
    assert "array[string] × 300" in page.text_content("#tf-metadata")

    page.keyboard.press("t")
    assert page.evaluate("document.documentElement.dataset.theme") == "dark"
    assert tab.errors == []
    first_paint = page.evaluate("+document.documentElement.dataset.painted")
    print(f"first paint of {expected['tensor_count']} tensors: {first_paint} ms after navigation start")


def test_traversal_urls_get_404_in_the_browser(
    big: tuple[ViewServer, dict[str, Any], Path], new_page: Any
) -> None:
    srv, _, _ = big
    page = new_page().page
    for tail in ("../../../../etc/passwd", "%2e%2e/%2e%2e/etc/passwd", "static/..%2f..%2fpyproject.toml"):
        resp = page.request.get(srv.url + tail)
        assert resp.status == 404, tail
    resp = page.goto(f"http://127.0.0.1:{srv.port}/etc/passwd")
    assert resp is not None and resp.status == 404


# ------------------------------------------------------------------ real files, as --html exports offline

REAL_FILES = [
    EXAMPLES / "tiny-llama-q8_0.gguf",
    EXAMPLES / "tiny-llama.safetensors",
    EXAMPLES / "pytorch_model.bin",
    EXAMPLES / "training-checkpoint.ckpt",
    EXAMPLES / "mlp.onnx",
    EXAMPLES / "classifier.joblib",
    HEAVY / "keras3_dense.keras",
    HEAVY / "dense.tflite",
    HEAVY / "openvino_dense_fp16",
    HEAVY / "coreml_dense.mlmodel",
    HEAVY / "flax_trainstate.msgpack",
    ROOT / "tests" / "fixtures" / "hf" / "gptq_gptqmodel",
    ROOT / "tests" / "fixtures" / "hf" / "diffusers_sd_pipeline",
]
TABS = ("summary", "tensors", "layers", "memory", "security", "metadata")


@pytest.mark.parametrize("path", REAL_FILES, ids=lambda p: p.name)
def test_real_file_export_offline(path: Path, new_page: Any, tmp_path: Path) -> None:
    expected = inspect_json(path)
    out = tmp_path / "report.html"
    out.write_text(export_html(build_documents(str(path))))
    tab = new_page(offline=True)
    page = tab.open(out.as_uri())
    assert page.text_content("[data-count=tensor_count]") == f"{expected['tensor_count']:,}"
    assert page.text_content("[data-count=parameter_count]") == f"{expected['parameter_count']:,}"
    assert page.text_content("[data-count=tensor_types]") == (expected["tensor_types"] or "—")
    for i, name in enumerate(TABS, start=1):
        page.keyboard.press(str(i))
        assert page.get_attribute(f"#tab-{name}", "aria-selected") == "true"
        assert "could not be drawn" not in page.text_content(f"#panel-{name}")
    page.keyboard.press("2")
    assert shown(page) == expected["tensor_count"]
    if expected["tensor_count"]:
        assert page.eval_on_selector_all("svg[data-chart=dtypes] rect", "rs => rs.length") > 0
    assert tab.requests == []  # nothing was fetched
    assert tab.errors == []


def test_diff_view_and_phone_width(new_page: Any, tmp_path: Path) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    a, b = tmp_path / "a.safetensors", tmp_path / "b.safetensors"
    same, changed = np.arange(6, dtype=np.float32), np.ones((2, 3), np.float32)
    save_file({"same": same, "changed": changed, "reshaped": same, "gone": same}, str(a))
    save_file({"same": same, "changed": changed * 2, "reshaped": same.reshape(2, 3), "new": same}, str(b))
    proc = run_cli("diff", str(a), str(b), "--json")
    assert proc.returncode == 1, proc.stderr
    expected = json.loads(proc.stdout)
    out = tmp_path / "diff.html"
    out.write_text(export_html(build_documents(str(a), str(b))))
    tab = new_page(offline=True, width=390, scheme="dark")
    page = tab.open(out.as_uri() + "#diff")
    for status, n in expected["summary"].items():
        if status != "dtype_changed":
            assert page.text_content(f"[data-diff={status}]") == f"{n:,}"
    assert [expected["summary"][k] for k in ("identical", "different", "shape", "missing", "extra")] == [
        1
    ] * 5
    assert int(page.get_attribute("#tf-diff-count", "data-shown")) == 4  # changed, missing and extra
    page.select_option("#tf-diff-status", "")
    assert int(page.get_attribute("#tf-diff-count", "data-shown")) == len(expected["tensors"])
    for name in TABS:  # nothing on any section makes a phone-width window scroll sideways
        page.click(f"#tab-{name}")
        assert page.evaluate("document.documentElement.scrollWidth") <= 390, name
        if name == "tensors":  # nor the table inside it: on a phone its columns fit the window
            assert page.eval_on_selector("#panel-tensors .vt", "el => el.scrollWidth <= el.clientWidth")
    page.click("#tab-diff")
    assert page.eval_on_selector("#panel-diff .vt", "el => el.scrollWidth <= el.clientWidth")
    assert tab.requests == [] and tab.errors == []


def test_scan_findings_are_shown_with_evidence_and_advice(new_page: Any, tmp_path: Path) -> None:
    import pickle

    class Payload:
        def __reduce__(self) -> tuple[Any, tuple[str]]:
            return (os.system, ("echo never run",))

    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps({"w": Payload()}))  # written, never loaded
    proc = run_cli("scan", str(path), "--json")
    assert proc.returncode == 1, proc.stderr
    finding = json.loads(proc.stdout)["files"][0]["findings"][0]
    out = tmp_path / "evil.html"
    out.write_text(export_html(build_documents(str(path))))
    tab = new_page(offline=True)
    page = tab.open(out.as_uri() + "#security")
    assert page.text_content("#tf-scan-verdict").startswith("unsafe")
    box = page.query_selector(f".finding[data-severity={finding['severity']}]")
    assert box is not None
    text = box.text_content()
    assert finding["message"] in text and finding["evidence"] in text and finding["advice"] in text
    page.click("#tab-summary")
    assert page.text_content("#tf-verdict").startswith("unsafe")
    assert tab.requests == [] and tab.errors == []
