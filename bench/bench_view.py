"""`tensorfile view` speed in a real browser (Debian's chromium through Playwright).

    .venv/bin/python bench/bench_view.py [--runs 5]

For GGUF files of 10,000 and 100,000 tensors (written by gguf-py in a temporary folder):
- first paint: from the server's first response byte (Navigation Timing responseStart) to the page
  having drawn its summary (it sets data-painted to performance.now() then), median of --runs loads;
- scrolling the tensor table: 400 animation frames each moving the table by 900 px (~30 rows: a fast
  fling), and 200 frames each jumping to a random place; the time between frames (median, p95,
  max, share over 20 ms), measured in the page with requestAnimationFrame, beside the same loop
  with nothing scrolled (what the headless browser's frame clock gives on this machine), and beside
  30,000 such rows as plain HTML, all in the DOM (what the table would cost without virtualising);
- sort by params, sort by name, and the dtype filter over every row: milliseconds of the synchronous
  work in the page (filter, sort, render of the rows in view).
The peer, Netron (the viewer people use today; pinned below, in its own venv outside the repository,
built when missing), opens the same 10,000-tensor file in the same browser, side by side: the wall
time from the click on its consent button (it loads the model only then) to the first graph node
drawn, against ours from the navigation to the summary drawn, both polled every 25 ms. Netron shows
no totals or tensor table, so only this first view is compared.
Results print as JSON and are recorded by hand in docs/BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.test_view_browser import ARGS, CHROMIUM, write_big_gguf  # noqa: E402

from tensorfile.view.documents import build_documents  # noqa: E402
from tensorfile.view.server import ViewServer  # noqa: E402

SCROLL = """async ([frames, step, jump]) => {
  const el = document.querySelector('#panel-tensors .vt');
  el.scrollTop = 0;
  await new Promise(r => requestAnimationFrame(r));
  const times = [];
  let last = performance.now();
  let seed = 1;
  const rand = () => (seed = (seed * 16807) % 2147483647) / 2147483647;
  for (let i = 0; i < frames; i++) {
    if (jump) el.scrollTop = rand() * (el.scrollHeight - el.clientHeight);
    else el.scrollTop = (el.scrollTop + step) % (el.scrollHeight - el.clientHeight);
    await new Promise(r => requestAnimationFrame(r));
    const now = performance.now();
    times.push(now - last);
    last = now;
  }
  return times;
}"""

TIMED = """([selector, value]) => {
  const t = performance.now();
  if (value === null) document.querySelector(selector).click();
  else {
    const box = document.querySelector(selector);
    box.value = value;
    box.dispatchEvent(new Event('change'));
  }
  return performance.now() - t;
}"""


def frame_stats(times: list[float]) -> dict[str, float]:
    ordered = sorted(times)
    return {
        "frames": len(times),
        "median_ms": round(statistics.median(times), 2),
        "p95_ms": round(ordered[int(0.95 * (len(ordered) - 1))], 2),
        "max_ms": round(ordered[-1], 2),
        "over_20ms_pct": round(100 * sum(t > 20 for t in times) / len(times), 1),
    }


def bench_file(browser, path: Path, runs: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    docs = build_documents(str(path))
    srv = ViewServer(docs)
    srv.start_background()
    paints = []
    try:
        for _ in range(runs):
            page = browser.new_page(viewport={"width": 1280, "height": 800})
            page.goto(srv.url)
            page.wait_for_selector("html[data-painted]")
            paints.append(
                page.evaluate(
                    "+document.documentElement.dataset.painted - "
                    "performance.getEntriesByType('navigation')[0].responseStart"
                )
            )
            page.close()
        page = browser.new_page(viewport={"width": 1280, "height": 800})
        page.goto(srv.url + "#tensors")
        page.wait_for_selector("html[data-ready='1']")
        page.wait_for_selector("#panel-tensors .vt-row")
        idle = frame_stats(page.evaluate(SCROLL, [200, 0, False]))  # the same loop, nothing scrolls
        fling = frame_stats(page.evaluate(SCROLL, [400, 900, False]))
        jumps = frame_stats(page.evaluate(SCROLL, [200, 0, True]))
        sort_params = page.evaluate(TIMED, ["#panel-tensors .vt-head button[data-key=numel]", None])
        sort_name = page.evaluate(TIMED, ["#panel-tensors .vt-head button[data-key=name]", None])
        dtype_filter = page.evaluate(TIMED, ["#tf-dtype", "F16"])
        shown = page.get_attribute("#tf-count", "data-shown")
        page.close()
    finally:
        srv.shutdown()
        srv.server_close()
    return {
        "tensors": docs["inspect"]["tensor_count"],
        "inspect_json_bytes": len(json.dumps(docs["inspect"])),
        "first_paint_ms": {
            "median": round(statistics.median(paints), 1),
            "runs": [round(p, 1) for p in paints],
        },
        "idle_frames": idle,
        "scroll_fling": fling,
        "scroll_jumps": jumps,
        "sort_params_ms": round(sort_params, 1),
        "sort_name_ms": round(sort_name, 1),
        "dtype_filter_ms": round(dtype_filter, 1),
        "rows_after_filter": int(shown or 0),
    }


def static_baseline(browser, tmp: Path, rows: int = 30_000) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """The same scroll loop over the same kind of rows as plain HTML, all in the DOM (no virtualising)."""
    cells = "<span>{i}</span><span>model.layers.{i}.self_attn.q_proj.weight</span><span>BF16</span>"
    cells += "<span>[4096, 4096]</span><span>16,777,216</span><span>32.0 MiB</span><span>weight</span>"
    body = "".join(f"<div class=r>{cells.format(i=i)}</div>" for i in range(rows))
    style = (
        ".r{display:grid;grid-template-columns:64px 4fr 1fr 1fr 1fr 1fr 1fr;height:30px;"
        "border-bottom:1px solid #eee;font:13px sans-serif}.vt{height:570px;overflow:auto;contain:strict}"
    )
    page_file = tmp / "static.html"
    page_file.write_text(f"<style>{style}</style><div id=panel-tensors><div class=vt>{body}</div></div>")
    page = browser.new_page(viewport={"width": 1280, "height": 800})
    page.goto(page_file.as_uri())
    page.wait_for_timeout(500)
    result = {
        "rows_in_dom": rows,
        "idle_frames": frame_stats(page.evaluate(SCROLL, [200, 0, False])),
        "scroll_fling": frame_stats(page.evaluate(SCROLL, [400, 900, False])),
        "scroll_jumps": frame_stats(page.evaluate(SCROLL, [200, 0, True])),
    }
    page.close()
    return result


NETRON = "netron==9.3.3"
NETRON_VENV = Path(tempfile.gettempdir()) / "tensorfile-bench-netron-venv"


def netron_bin() -> Path:
    exe = NETRON_VENV / "bin" / "netron"
    if not exe.exists():
        subprocess.run([sys.executable, "-m", "venv", str(NETRON_VENV)], check=True)
        subprocess.run([str(NETRON_VENV / "bin" / "pip"), "install", "-q", NETRON], check=True)
    return exe


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def poll(page, selector: str, start: float, limit: float = 120.0) -> float:  # type: ignore[no-untyped-def]
    while time.perf_counter() - start < limit:
        if page.query_selector(selector):  # no page script: Netron refuses string evaluation
            return (time.perf_counter() - start) * 1000
        time.sleep(0.025)
    raise TimeoutError(selector)


def side_by_side(browser, path: Path, runs: int) -> dict[str, object]:  # type: ignore[no-untyped-def]
    port = free_port()
    proc = subprocess.Popen([str(netron_bin()), str(path), "-p", str(port), "--verbosity", "quiet"])
    srv = ViewServer(build_documents(str(path)))
    srv.start_background()
    ours, theirs = [], []
    try:
        time.sleep(2)
        for _ in range(runs):
            context = browser.new_context(viewport={"width": 1280, "height": 800})
            context.route("**/*", lambda r: r.continue_() if "127.0.0.1" in r.request.url else r.abort())
            page = context.new_page()
            start = time.perf_counter()
            page.goto(srv.url)
            ours.append(poll(page, "html[data-painted]", start))
            page.goto(f"http://127.0.0.1:{port}/")
            page.wait_for_selector("text=Accept")
            start = time.perf_counter()
            page.click("text=Accept")
            theirs.append(poll(page, "svg g.node", start))
            context.close()
    finally:
        srv.shutdown()
        srv.server_close()
        proc.terminate()
        proc.wait(10)
    return {
        "file": path.name,
        "tensorfile_view_ms": {"median": round(statistics.median(ours)), "runs": [round(x) for x in ours]},
        "netron_ms": {"median": round(statistics.median(theirs)), "runs": [round(x) for x in theirs]},
        "netron": NETRON,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--no-peer", action="store_true", help="Skip Netron.")
    args = parser.parse_args()
    from playwright.sync_api import sync_playwright

    results = {}
    with tempfile.TemporaryDirectory() as tmp, sync_playwright() as p:
        browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
        for blocks in (1000, 10_000):
            path = write_big_gguf(Path(tmp) / f"blocks{blocks}.gguf", blocks=blocks)
            results[path.name] = bench_file(browser, path, args.runs)
            if blocks == 1000 and not args.no_peer:
                results["side_by_side"] = side_by_side(browser, path, args.runs)
        results["static_html_30000_rows"] = static_baseline(browser, Path(tmp))
        browser.close()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
