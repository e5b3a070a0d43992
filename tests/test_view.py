"""`tensorfile view`: its documents are the CLI's --json, its server answers only from its table (no
traversal, token, Host check), its --html export is one self-contained file, its CLI fails cleanly."""

from __future__ import annotations

import http.client
import json
import os
import re
import shlex
import signal
import socket
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tensorfile.view.documents import build_documents
from tensorfile.view.html import export_html
from tensorfile.view.server import ViewServer

from .conftest import ROOT, foreground_signals, run_cli

EXAMPLES = ROOT / "examples" / "models"


def _json(*args: str) -> Any:
    proc = run_cli(*args)
    assert proc.returncode in (0, 1), proc.stderr
    return json.loads(proc.stdout)


def _embedded(html: str) -> dict[str, Any]:
    match = re.search(r'<script type="application/json" id="tf-data">(.*?)</script>', html, flags=re.S)
    assert match, "no embedded data"
    return json.loads(match.group(1))


# ------------------------------------------------------------------ documents = the CLI's --json


def test_documents_are_what_the_cli_prints() -> None:
    gguf = str(EXAMPLES / "tiny-llama-q8_0.gguf")
    docs = build_documents(gguf)
    assert docs["inspect"] == _json("inspect", gguf, "--json")
    assert docs["scan"] == _json("scan", gguf, "--json")
    est = docs["estimate"]
    assert est["stored_weights"] == "gguf:Q8_0"
    by_label = {r["label"]: r for r in est["rows"]}
    assert set(by_label) >= {"as stored (gguf:Q8_0)", "FP32", "INT8 (bitsandbytes)", "GGUF Q4_K_M"}
    assert {r["group"] for r in est["rows"]} == {"inference", "fine-tuning"}
    # every row says the command that prints it; two of them (default and QLoRA) are run here
    for label in ("as stored (gguf:Q8_0)", "QLoRA nf4 (paged AdamW 8-bit, grad ckpt)"):
        row = by_label[label]
        printed = _json(*shlex.split(row["command"])[1:])
        assert row["report"] == {k: v for k, v in printed.items() if k not in ("model", "quick")}
        assert est["model"] == printed["model"] and est["quick"] == printed["quick"]
    fits = by_label["FP32"]["report"]["fits"]
    assert "RTX 4090 24GB" in fits and fits["RTX 4090 24GB"]["fits"] is True


def test_two_inputs_add_the_diff() -> None:
    a, b = str(EXAMPLES / "pytorch_model.bin"), str(EXAMPLES / "tiny-llama.safetensors")
    docs = build_documents(a, b)
    assert docs["inspect_b"] == _json("inspect", b, "--json")
    assert docs["diff"] == _json("diff", a, b, "--json")
    assert [f["path"] for f in docs["scan"]["files"]] == [a, b]


def test_a_section_that_cannot_be_built_says_why(made: Callable[[str], Path]) -> None:
    # a joblib classifier has no transformer shapes: inspect and scan work, the estimate explains itself
    docs = build_documents(str(EXAMPLES / "classifier.joblib"), str(EXAMPLES / "mlp.onnx"))
    assert docs["inspect"]["tensor_count"] == 3
    assert "error" in docs["diff"] and docs["diff"]["error"]
    assert "summary" in docs["scan"]


# ------------------------------------------------------------------ the server


@pytest.fixture(scope="module")
def server() -> Iterator[ViewServer]:
    srv = ViewServer(build_documents(str(EXAMPLES / "tiny-llama.safetensors")))
    srv.start_background()
    yield srv
    srv.shutdown()
    srv.server_close()


def _get(
    srv: ViewServer, path: str, host: str | None = "default", method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    conn = http.client.HTTPConnection("127.0.0.1", srv.port, timeout=10)
    conn.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
    if host is not None:
        conn.putheader("Host", f"127.0.0.1:{srv.port}" if host == "default" else host)
    conn.endheaders()
    resp = conn.getresponse()
    body = resp.read()
    conn.close()
    return resp.status, {k.lower(): v for k, v in resp.getheaders()}, body


def test_server_binds_loopback_and_serves_page_assets_documents(server: ViewServer) -> None:
    assert server.server_address[0] == "127.0.0.1"
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+/[A-Za-z0-9_-]{32}/", server.url)
    token = server.token
    status, headers, body = _get(server, f"/{token}/")
    assert status == 200 and headers["content-type"].startswith("text/html")
    assert b'id="tf-manifest"' in body and b'src="static/app.js"' in body
    assert "default-src 'none'" in headers["content-security-policy"]
    assert headers["x-content-type-options"] == "nosniff"
    assert headers["cache-control"] == "no-store"
    for asset, kind in (("app.js", "text/javascript"), ("app.css", "text/css")):
        status, headers, body = _get(server, f"/{token}/static/{asset}")
        assert status == 200 and headers["content-type"].startswith(kind) and len(body) > 1000
    status, _, body = _get(server, f"/{token}/doc/inspect.json")
    assert status == 200
    assert json.loads(body) == _json("inspect", str(EXAMPLES / "tiny-llama.safetensors"), "--json")
    status, _, body = _get(server, f"/{token}/doc/inspect.json?x=1")  # a query does not change the key
    assert status == 200
    status, headers, body = _get(server, f"/{token}/", method="HEAD")
    assert status == 200 and body == b"" and int(headers["content-length"]) > 0


@pytest.mark.parametrize(
    "path",
    [
        "/",
        "/{token}",  # the folder without its slash
        "/{bad}/",
        "/{token}/../../../../etc/passwd",
        "/{token}/static/../doc/inspect.json",
        "/{token}/%2e%2e/%2e%2e/etc/passwd",
        "/{token}/static/%2e%2e%2fapp.js",
        "/{token}/static/..%2f..%2f..%2fetc%2fpasswd",
        "/{token}/static/%2fetc%2fpasswd",
        "/{token}/doc/inspect.json/",
        "/{token}/doc/../../pyproject.toml",
        "/{token}/static/app.js%00.png",
        "/{token}/static/" + str(ROOT / "pyproject.toml"),
        "/{token}//etc/passwd",
        "//etc/passwd",
        "/etc/passwd",
        str(ROOT / "pyproject.toml"),
        "/{token}/static/app.js/..",
        "/{token}/STATIC/app.js",
        "http://127.0.0.1/etc/passwd",
    ],
)
def test_anything_not_in_the_table_is_404(server: ViewServer, path: str) -> None:
    wrong = server.token[:-1] + ("A" if server.token[-1] != "A" else "B")
    status, _, body = _get(server, path.format(token=server.token, bad=wrong))
    assert status == 404
    assert b"root:" not in body and b"[project]" not in body


@pytest.mark.parametrize(
    "host",
    [
        "evil.example",
        "evil.example:{port}",
        "127.0.0.1",
        "127.0.0.1:1",
        "localhost",
        "[::1]:{port}",
        "",
        None,
    ],
)
def test_host_header_must_name_this_server(server: ViewServer, host: str | None) -> None:
    # a DNS-rebinding page reaches 127.0.0.1 with its own host name in Host: refused
    status, _, body = _get(
        server, f"/{server.token}/doc/inspect.json", host=host and host.format(port=server.port)
    )
    assert status == 403 and b"tensors" not in body


def test_localhost_name_is_accepted_and_other_methods_refused(server: ViewServer) -> None:
    assert _get(server, f"/{server.token}/", host=f"localhost:{server.port}")[0] == 200
    for method in ("POST", "PUT", "DELETE", "OPTIONS"):
        assert _get(server, f"/{server.token}/", method=method)[0] == 405


def test_each_server_has_its_own_token() -> None:
    docs = {"about": {}, "inspect": {"tensors": []}}
    a, b = ViewServer(docs), ViewServer(docs)
    try:
        assert a.token != b.token and a.port != b.port
    finally:
        a.server_close()
        b.server_close()


# ------------------------------------------------------------------ the HTML export


def test_html_export_is_self_contained(tmp_path: Path) -> None:
    out = tmp_path / "report.html"
    model = str(EXAMPLES / "tiny-llama-q8_0.gguf")
    proc = run_cli("view", model, "--html", str(out))
    assert proc.returncode == 0, proc.stderr
    html = out.read_text()
    # nothing to fetch: no external script, style, font, image or link; the CSP allows no source
    assert not re.search(r"""(src|href)\s*=\s*["'](?!data:|#)""", html)
    assert "@import" not in html and "url(" not in html
    assert "default-src 'none'" in html and "connect-src" not in html
    assert html.count("<script") == 2  # the data and the page script, both inline
    data = _embedded(html)
    assert data["inspect"] == _json("inspect", model, "--json")
    assert set(data) == {"about", "inspect", "scan", "estimate"}
    assert [p.name for p in tmp_path.iterdir()] == ["report.html"]  # no part file left behind


def test_html_export_keeps_hostile_names_as_data(tmp_path: Path) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    evil = "</script><script>alert(1)</script><!--"
    path = tmp_path / "evil.safetensors"
    save_file({evil: np.zeros(2, np.float32), "ok\u2028line": np.ones(1, np.float32)}, str(path), {"x": evil})
    docs = build_documents(str(path))
    html = export_html(docs)
    assert html.count("<script") == 2 and html.count("</script>") == 2
    assert _embedded(html)["inspect"]["tensors"][0]["name"] in (evil, "ok\u2028line")
    assert {t["name"] for t in _embedded(html)["inspect"]["tensors"]} == {evil, "ok\u2028line"}


# ------------------------------------------------------------------ the CLI


def test_bad_input_is_one_line_exit_2(tmp_path: Path) -> None:
    for args in (
        ["view", str(tmp_path / "missing.safetensors"), "--no-browser"],
        ["view", str(ROOT / "README.md"), "--html", str(tmp_path / "x.html")],
        ["view", str(EXAMPLES / "mlp.onnx"), "--html", str(tmp_path / "no" / "such" / "dir" / "x.html")],
        ["view", str(EXAMPLES / "mlp.onnx"), "--port", "70000"],
    ):
        proc = run_cli(*args)
        assert proc.returncode == 2, (args, proc.stderr)
        assert len(proc.stderr.strip().splitlines()) == 1 and "Traceback" not in proc.stderr, proc.stderr
    assert not (tmp_path / "x.html").exists()


def test_port_in_use_is_one_line_exit_2() -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        proc = run_cli(
            "view", str(EXAMPLES / "mlp.onnx"), "--no-browser", "--port", str(busy.getsockname()[1])
        )
    assert proc.returncode == 2
    assert (
        proc.stderr.startswith("tensorfile: error: cannot listen on 127.0.0.1:")
        and "Traceback" not in proc.stderr
    )


def test_ctrl_c_stops_the_server_cleanly() -> None:
    env = {**os.environ, "BROWSER": "true"}  # never a real browser, even if --no-browser were ignored
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tensorfile",
            "view",
            str(EXAMPLES / "tiny-llama.safetensors"),
            "--no-browser",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        preexec_fn=foreground_signals,
        cwd=ROOT,
        env=env,
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:(\d+)(/[^/ ]+/)", line)
        assert url, line
        conn = http.client.HTTPConnection("127.0.0.1", int(url.group(1)), timeout=10)
        conn.request("GET", url.group(2) + "doc/about.json")
        assert conn.getresponse().status == 200
        conn.close()
        proc.send_signal(signal.SIGINT)
        _, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    assert "Traceback" not in err and "stopped" in err
    # the same --port again at once (its old connection in TIME_WAIT) is free to use
    again = ViewServer({"about": {}}, int(url.group(1)))
    again.server_close()


def test_readme_example_runs(tmp_path: Path) -> None:
    readme = (ROOT / "README.md").read_text()
    command = next(
        line for line in readme.splitlines() if line.startswith("tensorfile view ") and "--html" in line
    )
    args = shlex.split(command)[1:]
    out = args[args.index("--html") + 1]
    args[args.index("--html") + 1] = str(tmp_path / out)
    proc = run_cli(*args)
    assert proc.returncode == 0, proc.stderr
    data = _embedded((tmp_path / out).read_text())
    assert data["inspect"]["path"] == args[1]


def test_remote_input_through_the_hub(tmp_path: Path) -> None:
    """hf:// (and so ms://, https://) works as for inspect: the page's documents equal the local ones."""
    import shutil

    from .hubserver import HubServer

    root = tmp_path / "hub"
    repo = root / "org" / "tiny"
    repo.mkdir(parents=True)
    shutil.copy(EXAMPLES / "tiny-llama.safetensors", repo / "model.safetensors")
    (repo / "config.json").write_text(json.dumps({"model_type": "llama", "num_hidden_layers": 2}))
    drop = ("HF_TOKEN", "MODELSCOPE_API_TOKEN", "TENSORFILE_HUB", "HF_HUB_CACHE")
    with HubServer(root) as hub:
        env = {k: v for k, v in os.environ.items() if k not in drop} | hub.env(cache_dir=tmp_path / "caches")
        out = tmp_path / "remote.html"
        proc = run_cli("view", "hf://org/tiny", "--html", str(out), env=env)
        assert proc.returncode == 0, proc.stderr
        remote = _embedded(out.read_text())
        local = json.loads(run_cli("inspect", str(repo), "--json").stdout)
    keys = ("format", "tensor_count", "parameter_count", "parameters_by_dtype", "tensor_types", "total_bytes")
    for key in keys:
        assert remote["inspect"][key] == local[key], key
    assert [t["name"] for t in remote["inspect"]["tensors"]] == [t["name"] for t in local["tensors"]]
    assert remote["scan"]["summary"]["files"] >= 1 and "error" not in remote["scan"]
    assert remote["estimate"]["rows"][0]["report"]["per_gpu_bytes"] > 0
