"""tests/hubserver.py against the official clients: huggingface_hub and modelscope (modelscope_hub).

The clients read their endpoint and cache settings from the environment, huggingface_hub already at
import time, so every client call runs in a child process started with `hub.env(...)` (see
`run_client`). The server itself, faults and the request log stay in this process.
"""

from __future__ import annotations

import hashlib
import http.client
import json
import os
import subprocess
import sys
import textwrap
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from safetensors.numpy import save_file

from tests.hubserver import HubServer

REPO = "acme/tiny"
FILES = ("README.md", "config.json", "model.safetensors", "sub/nested/notes.txt", "sub/vocab.txt")
_CLIENT_ENV = ("HF_", "HUGGINGFACE", "MODELSCOPE", "MS_CACHE", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")

PRELUDE = '''
import json, sys

def catch(fn, *args, **kwargs):
    """The call's result, or what it raised: class name, base classes, HTTP status."""
    try:
        return {"ok": fn(*args, **kwargs)}
    except BaseException as exc:
        resp = getattr(exc, "response", None)
        cause = exc.__cause__
        return {
            "error": type(exc).__name__,
            "mro": [c.__name__ for c in type(exc).__mro__],
            "status": getattr(resp, "status_code", None),
            "message": str(exc)[:800],
            "cause": type(cause).__name__ if cause is not None else None,
        }
'''


def run_client(
    hub: HubServer, tmp_path: Path, code: str, *, token: str | None = None, timeout: float = 120
) -> Any:
    """Run `code` (which sets `result`) in a child Python with the env pointing the clients at `hub`."""
    env = {k: v for k, v in os.environ.items() if not k.upper().startswith(_CLIENT_ENV)}
    env.update(hub.env(cache_dir=tmp_path / "caches", token=token))
    tmp_path.mkdir(parents=True, exist_ok=True)
    script = PRELUDE + textwrap.dedent(code) + "\nprint('@@RESULT@@' + json.dumps(result, default=str))\n"
    proc = subprocess.run(
        [sys.executable, "-c", script], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=timeout
    )
    if proc.returncode != 0 or "@@RESULT@@" not in proc.stdout:
        raise AssertionError(
            f"client process failed ({proc.returncode}):\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
        )
    return json.loads(proc.stdout.rsplit("@@RESULT@@", 1)[1])


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def git_blob_sha1(data: bytes) -> str:
    return hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()


def lfs_pointer_sha1(data: bytes) -> str:
    pointer = f"version https://git-lfs.github.com/spec/v1\noid sha256:{sha256(data)}\nsize {len(data)}\n"
    return git_blob_sha1(pointer.encode())


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hubroot")
    repo = root / "acme" / "tiny"
    (repo / "sub" / "nested").mkdir(parents=True)
    (repo / "config.json").write_text(
        json.dumps({"model_type": "llama", "architectures": ["LlamaForCausalLM"]})
    )
    (repo / "README.md").write_text("# tiny\n\nA test repo.\n")
    (repo / "sub" / "nested" / "notes.txt").write_text("hello from a nested folder\n")
    (repo / "sub" / "vocab.txt").write_text("".join(f"token{i:06d}\n" for i in range(20_000)))  # 240 KB
    tensors = {"w": np.arange(12, dtype=np.float32).reshape(3, 4), "b": np.ones(4, dtype=np.float16)}
    save_file(tensors, str(repo / "model.safetensors"), metadata={"format": "np"})
    return root


@pytest.fixture
def hub(root: Path) -> Iterator[HubServer]:
    with HubServer(root) as server:
        yield server


def content(root: Path, rel: str, repo: str = REPO) -> bytes:
    return (root / repo / rel).read_bytes()


def get(
    url: str, headers: dict[str, str] | None = None, method: str = "GET"
) -> tuple[int, dict[str, str], bytes]:
    req = urllib.request.Request(url, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(req, timeout=10) as resp:
            return resp.status, dict(resp.headers), resp.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


class _NoRedirect(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


def get_no_redirect(url: str, method: str = "GET") -> tuple[int, dict[str, str]]:
    opener = urllib.request.build_opener(_NoRedirect)
    try:
        with opener.open(urllib.request.Request(url, method=method), timeout=10) as resp:
            return resp.status, dict(resp.headers)
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers)


# ---------------------------------------------------------------------------------------- Hugging Face


def test_hf_downloads_are_byte_identical(hub: HubServer, root: Path, tmp_path: Path) -> None:
    out = run_client(
        hub,
        tmp_path,
        """
        from huggingface_hub import hf_hub_download, snapshot_download
        result = {
            "config": hf_hub_download("acme/tiny", "config.json"),
            "weights": hf_hub_download("acme/tiny", "model.safetensors"),
            "nested": hf_hub_download("acme/tiny", "notes.txt", subfolder="sub/nested"),
            "snapshot": snapshot_download("acme/tiny"),
        }
        """,
    )
    commit = hub.commit(REPO)
    assert Path(out["config"]).read_bytes() == content(root, "config.json")
    assert Path(out["weights"]).read_bytes() == content(root, "model.safetensors")
    assert Path(out["nested"]).read_bytes() == content(root, "sub/nested/notes.txt")
    snap = Path(out["snapshot"])
    assert snap.name == commit
    for rel in FILES:
        assert (snap / rel).read_bytes() == content(root, rel), rel
    storage = snap.parent.parent
    assert storage.name == "models--acme--tiny"
    assert (storage / "refs" / "main").read_text() == commit
    blobs = {p.name for p in (storage / "blobs").iterdir()}
    assert sha256(content(root, "model.safetensors")) in blobs  # LFS blobs are named by sha256
    assert git_blob_sha1(content(root, "config.json")) in blobs  # the others by git blob sha1
    # The LFS file came from the CDN (second origin), the others straight from /resolve.
    cdn = [r for r in hub.requests if r["server"] == "cdn"]
    assert cdn and all(r["path"].startswith("/cdn/acme/tiny/") and r["status"] == 200 for r in cdn)
    resolve = [
        r for r in hub.requests if "/resolve/" in r["path"] and r["path"].endswith("model.safetensors")
    ]
    assert {r["status"] for r in resolve} == {302}


def test_hf_metadata(hub: HubServer, root: Path, tmp_path: Path) -> None:
    out = run_client(
        hub,
        tmp_path,
        """
        from huggingface_hub import HfApi
        api = HfApi()
        info = api.model_info("acme/tiny", files_metadata=True)
        plain = api.model_info("acme/tiny", revision="main")
        tree = list(api.list_repo_tree("acme/tiny", recursive=True))
        sub = list(api.list_repo_tree("acme/tiny", path_in_repo="sub"))
        expanded = list(api.list_repo_tree("acme/tiny", recursive=True, expand=True))
        st = api.get_safetensors_metadata("acme/tiny").files_metadata["model.safetensors"]
        refs = api.list_repo_refs("acme/tiny")
        paths = api.get_paths_info("acme/tiny", ["config.json", "sub", "missing.bin"])

        def file_dict(f):
            lfs = getattr(f, "lfs", None)
            return {"size": f.size, "blob_id": getattr(f, "blob_id", None),
                    "sha256": lfs.sha256 if lfs else None, "pointer_size": lfs.pointer_size if lfs else None}

        result = {
            "sha": info.sha,
            "plain_sha": plain.sha,
            "plain_sizes": [s.size for s in plain.siblings],
            "siblings": {s.rfilename: file_dict(s) for s in info.siblings},
            "safetensors": info.safetensors,
            "config": info.config,
            "tree": {f.path: file_dict(f) if hasattr(f, "size") else "dir" for f in tree},
            "sub": sorted(f.path for f in sub),
            "expanded_commit": {f.path: f.last_commit.oid for f in expanded},
            "tensors": {k: [v.dtype, v.shape] for k, v in st.tensors.items()},
            "st_metadata": st.metadata,
            "refs": [(b.name, b.target_commit) for b in refs.branches],
            "paths": sorted(p.path for p in paths),
            "exists": [api.file_exists("acme/tiny", "config.json"), api.file_exists("acme/tiny", "nope.txt")],
        }
        """,
    )
    commit = hub.commit(REPO)
    assert out["sha"] == out["plain_sha"] == commit
    assert out["plain_sizes"] == [None] * len(FILES)  # sizes come only with blobs=true
    assert set(out["siblings"]) == set(FILES)
    for rel in FILES:
        data = content(root, rel)
        sib, entry = out["siblings"][rel], out["tree"][rel]
        assert sib["size"] == entry["size"] == len(data), rel
        if rel.endswith(".safetensors"):
            assert sib["sha256"] == entry["sha256"] == sha256(data)
            assert sib["blob_id"] == entry["blob_id"] == lfs_pointer_sha1(data)
            assert sib["pointer_size"] == 128 + len(str(len(data))) - 3
        else:
            assert sib["sha256"] is entry["sha256"] is None
            assert sib["blob_id"] == entry["blob_id"] == git_blob_sha1(data)
    assert out["tree"]["sub"] == out["tree"]["sub/nested"] == "dir"
    assert out["sub"] == ["sub/nested", "sub/vocab.txt"]
    assert set(out["expanded_commit"].values()) == {commit}
    assert out["tensors"] == {"w": ["F32", [3, 4]], "b": ["F16", [4]]}
    assert out["st_metadata"] == {"format": "np"}
    assert out["safetensors"] == {"parameters": {"F32": 12, "F16": 4}, "total": 16}
    assert "LlamaForCausalLM" in json.dumps(out["config"])
    assert out["refs"] == [["main", commit]]
    assert out["paths"] == ["config.json", "sub"]
    assert out["exists"] == [True, False]
    ranges = [r["range"] for r in hub.requests if r["server"] == "cdn"]
    assert "bytes=0-100000" in ranges  # get_safetensors_metadata reads the header with a Range request


def test_hf_tree_is_paginated_with_link_headers(root: Path, tmp_path: Path) -> None:
    with HubServer(root, tree_page_size=2) as hub:
        out = run_client(
            hub,
            tmp_path,
            """
            from huggingface_hub import HfApi
            result = sorted(f.path for f in HfApi().list_repo_tree("acme/tiny", recursive=True))
            """,
        )
        pages = [r for r in hub.requests if "/tree/" in r["path"]]
    assert out == sorted([*FILES, "sub", "sub/nested"])
    assert len(pages) == 4  # 7 entries, 2 a page
    assert all("cursor=" in r["path"] for r in pages[1:])


def test_hf_not_found_errors(hub: HubServer, tmp_path: Path) -> None:
    out = run_client(
        hub,
        tmp_path,
        """
        from huggingface_hub import HfApi, hf_hub_download, snapshot_download
        api = HfApi()
        result = {
            "info_repo": catch(api.model_info, "acme/nope"),
            "info_rev": catch(api.model_info, "acme/tiny", revision="v9"),
            "master": catch(api.model_info, "acme/tiny", revision="master"),
            "dl_repo": catch(hf_hub_download, "nobody/nothing", "config.json"),
            "dl_rev": catch(hf_hub_download, "acme/tiny", "config.json", revision="nope"),
            "dl_file": catch(hf_hub_download, "acme/tiny", "missing.json"),
            "tree_path": catch(lambda: list(api.list_repo_tree("acme/tiny", path_in_repo="nodir"))),
            "snap_rev": catch(snapshot_download, "acme/tiny", revision="v9"),
            "snap_repo": catch(snapshot_download, "acme/nope"),
        }
        """,
    )
    assert out["info_repo"]["error"] == "RepositoryNotFoundError"
    assert out["info_repo"]["status"] == 401  # like the Hub: 401 without a token
    assert out["info_rev"]["error"] == out["master"]["error"] == "RevisionNotFoundError"
    assert out["dl_repo"]["error"] == "RepositoryNotFoundError"
    assert out["dl_rev"]["error"] == "RevisionNotFoundError"
    assert out["dl_file"]["error"] == "RemoteEntryNotFoundError"
    assert "EntryNotFoundError" in out["dl_file"]["mro"]
    assert out["tree_path"]["error"] == "RemoteEntryNotFoundError"
    assert out["snap_rev"]["error"] == "RevisionNotFoundError"
    assert out["snap_repo"]["error"] == "RepositoryNotFoundError"


# ---------------------------------------------------------------------------------------- ModelScope


def test_modelscope_downloads_and_errors(hub: HubServer, root: Path, tmp_path: Path) -> None:
    commit = hub.commit(REPO)
    out = run_client(
        hub,
        tmp_path,
        f"""
        from modelscope.hub.snapshot_download import snapshot_download
        from modelscope.hub.file_download import model_file_download
        from modelscope.hub.api import HubApi
        from modelscope_hub.api import HubApi as NewHubApi
        files = NewHubApi().list_repo_files("acme/tiny", "model")
        result = {{
            "snapshot": snapshot_download("acme/tiny"),
            "one": model_file_download("acme/tiny", "sub/nested/notes.txt"),
            "by_commit": model_file_download("acme/tiny", "config.json", revision="{commit}"),
            "files": [(f.path, f.size, f.sha256, f.type) for f in files],
            "model": HubApi().get_model("acme/tiny")["Name"],
            "offline": snapshot_download("acme/tiny", local_files_only=True),
            "repo": catch(snapshot_download, "acme/nope"),
            "rev": catch(snapshot_download, "acme/tiny", revision="v9"),
            "main": catch(model_file_download, "acme/tiny", "config.json", revision="main"),
            "file": catch(model_file_download, "acme/tiny", "missing.json"),
            "list_repo": catch(NewHubApi().list_repo_files, "acme/nope", "model"),
        }}
        """,
    )
    snap = Path(out["snapshot"])
    assert snap.parts[-4:] == ("models", "acme--tiny", "snapshots", "master")
    assert snap.parent.parent.parent.parent == tmp_path / "caches" / "modelscope"
    for rel in FILES:
        assert (snap / rel).read_bytes() == content(root, rel), rel
    assert Path(out["one"]).read_bytes() == content(root, "sub/nested/notes.txt")
    assert Path(out["by_commit"]).parts[-3:] == ("snapshots", commit, "config.json")
    assert Path(out["by_commit"]).read_bytes() == content(root, "config.json")
    listed = {path: (size, sha, kind) for path, size, sha, kind in out["files"]}
    for rel in FILES:
        data = content(root, rel)
        assert listed[rel] == (len(data), sha256(data), "blob"), rel
    assert listed["sub"][2] == listed["sub/nested"][2] == "tree"
    assert out["model"] == "tiny"
    assert out["offline"] == out["snapshot"]
    for key in ("repo", "rev", "main", "file"):
        assert out[key]["error"] == "HTTPError", key  # the modelscope wrappers re-raise NotExistError so
        assert out[key]["cause"] == "NotExistError", key
        assert out[key]["status"] == 404, key
    assert out["list_repo"]["error"] == "NotExistError"
    assert {r["status"] for r in hub.requests if "/repo?" in r["path"] and "missing" not in r["path"]} <= {
        200,
        404,
    }


# ---------------------------------------------------------------------------------------- plain HTTP


def test_range_requests_and_headers(hub: HubServer, root: Path) -> None:
    vocab = content(root, "sub/vocab.txt")
    weights = content(root, "model.safetensors")
    commit = hub.commit(REPO)
    hf = f"{hub.url}/acme/tiny/resolve/main/sub/vocab.txt"
    ms = f"{hub.url}/api/v1/models/acme/tiny/repo?Revision=master&FilePath=sub%2Fvocab.txt"
    for url in (hf, ms):
        status, headers, body = get(url, {"Range": "bytes=10-19"})
        assert (status, body, headers["Content-Range"]) == (206, vocab[10:20], f"bytes 10-19/{len(vocab)}")
        assert get(url, {"Range": "bytes=239990-"})[2] == vocab[239990:]
        assert get(url, {"Range": "bytes=-7"})[2] == vocab[-7:]
        assert get(url, {"Range": "bytes=5-999999999"})[2] == vocab[5:]
        status, headers, _ = get(url, {"Range": f"bytes={len(vocab)}-"})
        assert (status, headers["Content-Range"]) == (416, f"bytes */{len(vocab)}")
        assert get(url, {"Range": "bytes=0-1,5-6"})[:1] == (200,)  # several ranges: ignored
        status, headers, body = get(url, method="HEAD")
        assert (status, headers["Content-Length"], headers["Accept-Ranges"], body) == (
            200,
            str(len(vocab)),
            "bytes",
            b"",
        )
    _, headers, _ = get(hf, method="HEAD")
    assert headers["X-Repo-Commit"] == commit
    assert headers["ETag"] == f'"{git_blob_sha1(vocab)}"'
    # LFS: 302 to the CDN with the linked etag and size, HEAD and GET alike.
    for method in ("HEAD", "GET"):
        status, headers = get_no_redirect(f"{hub.url}/acme/tiny/resolve/{commit}/model.safetensors", method)
        assert status == 302
        assert headers["X-Linked-Etag"] == headers["ETag"] == f'"{sha256(weights)}"'
        assert headers["X-Linked-Size"] == str(len(weights))
        assert headers["Location"].startswith(f"{hub.cdn_url}/cdn/acme/tiny/{sha256(weights)}?")
    status, _, body = get(headers["Location"], {"Range": "bytes=0-7"})
    assert (status, body) == (206, weights[:8])
    # Revisions: each hub's default branch name and the commit id, nothing else.
    assert get(f"{hub.url}/acme/tiny/resolve/master/config.json")[1]["X-Error-Code"] == "RevisionNotFound"
    assert get(ms.replace("master", "main"))[0] == 404
    assert get(ms.replace("master", commit))[2] == vocab
    body = json.loads(get(f"{hub.url}/api/v1/models/acme/tiny/repo/files?Revision=master&Root=sub")[2])
    assert sorted(f["Path"] for f in body["Data"]["Files"]) == ["sub/nested", "sub/vocab.txt"]  # one level
    assert body["Code"] == 200 and body["Success"] is True


def test_commit_is_deterministic_and_follows_the_files(tmp_path: Path) -> None:
    repo = tmp_path / "o" / "r"
    repo.mkdir(parents=True)
    (repo / "a.txt").write_text("one")
    (repo / "w.bin").write_bytes(b"\0" * 10)
    first = HubServer(tmp_path)
    second = HubServer(tmp_path)
    try:
        assert first.commit("o/r") == second.commit("o/r")
        assert len(first.commit("o/r")) == 40
        before = first.commit("o/r")
        (repo / "a.txt").write_text("two")
        assert first.commit("o/r") != before
    finally:
        first.stop()
        second.stop()


def test_sha256_overrides_spare_reading_sparse_files(tmp_path: Path) -> None:
    repo = tmp_path / "big" / "model"
    repo.mkdir(parents=True)
    with open(repo / "weights.safetensors", "wb") as f:
        f.truncate(3 << 30)  # 3 GiB, sparse
        f.seek((3 << 30) - 4)
        f.write(b"tail")
    fake = "ab" * 32
    with HubServer(tmp_path, sha256={"big/model/weights.safetensors": fake}) as hub:
        start = time.monotonic()
        status, headers = get_no_redirect(f"{hub.url}/big/model/resolve/main/weights.safetensors", "HEAD")
        listing = json.loads(get(f"{hub.url}/api/v1/models/big/model/repo/files?Revision=master")[2])
        _, _, tail = get(
            f"{hub.url}/api/v1/models/big/model/repo?FilePath=weights.safetensors", {"Range": "bytes=-6"}
        )
        elapsed = time.monotonic() - start
    assert status == 302 and headers["X-Linked-Etag"] == f'"{fake}"'
    assert headers["X-Linked-Size"] == str(3 << 30)
    assert listing["Data"]["Files"][0]["Sha256"] == fake
    assert tail == b"\0\0tail"
    assert elapsed < 2  # nothing hashed 3 GiB


# ---------------------------------------------------------------------------------------- faults


def test_fault_cut_gives_a_short_body(hub: HubServer, root: Path) -> None:
    vocab = content(root, "sub/vocab.txt")
    fault = hub.add_fault("cut", "sub/vocab.txt", after=1000)
    conn = http.client.HTTPConnection("127.0.0.1", int(hub.url.rsplit(":", 1)[1]), timeout=10)
    conn.request("GET", "/acme/tiny/resolve/main/sub/vocab.txt")
    resp = conn.getresponse()
    assert resp.getheader("Content-Length") == str(len(vocab))
    with pytest.raises(http.client.IncompleteRead) as err:
        resp.read()
    assert err.value.partial == vocab[:1000]
    conn.close()
    assert fault.used == 1 and not fault.active
    assert hub.requests[-1]["body_bytes_sent"] == 1000 and hub.requests[-1]["faults"] == ["cut"]
    assert get(f"{hub.url}/acme/tiny/resolve/main/sub/vocab.txt")[2] == vocab  # times=1: used up
    hub.add_fault("cut", "sub/vocab.txt", after=10, reset=True)
    with pytest.raises((ConnectionError, http.client.IncompleteRead, OSError)):
        urllib.request.urlopen(
            f"{hub.url}/api/v1/models/acme/tiny/repo?FilePath=sub/vocab.txt", timeout=10
        ).read()


def test_fault_cut_then_no_range_hf_client_recovers(hub: HubServer, root: Path, tmp_path: Path) -> None:
    hub.add_fault("cut", "model.safetensors", after=50)
    hub.add_fault("cut", "sub/vocab.txt", after=70_000)
    hub.add_fault("no_range", "sub/vocab.txt")
    out = run_client(
        hub,
        tmp_path,
        """
        from huggingface_hub import hf_hub_download
        result = [hf_hub_download("acme/tiny", name) for name in ("model.safetensors", "sub/vocab.txt")]
        """,
    )
    assert Path(out[0]).read_bytes() == content(root, "model.safetensors")
    assert Path(out[1]).read_bytes() == content(root, "sub/vocab.txt")
    cdn = [(r["range"], r["status"], r["faults"]) for r in hub.requests if r["server"] == "cdn"]
    assert cdn[0] == (None, 200, ["cut"]) and len(cdn) == 2  # huggingface_hub 1.x starts the file again
    vocab = [(r["range"], r["status"], r["faults"]) for r in hub.requests if r["path"].endswith("vocab.txt")]
    assert vocab[-2:] == [(None, 200, ["no_range", "cut"]), (None, 200, [])]  # cut, then fetched whole


def test_fault_corrupt(hub: HubServer, root: Path, tmp_path: Path) -> None:
    weights = content(root, "model.safetensors")
    hub.add_fault("corrupt", "model.safetensors")
    out = run_client(
        hub,
        tmp_path,
        """
        from huggingface_hub import hf_hub_download
        result = hf_hub_download("acme/tiny", "model.safetensors")
        """,
    )
    got = Path(out).read_bytes()
    assert len(got) == len(weights)
    assert [i for i in range(len(got)) if got[i] != weights[i]] == [
        len(weights) // 2
    ]  # huggingface_hub checks sizes only
    status, _, body = get(f"{hub.url}/acme/tiny/resolve/main/config.json", {"Range": "bytes=2-11"})
    assert (status, body) == (206, content(root, "config.json")[2:12])  # the fault was used up


def test_faults_against_the_modelscope_client(hub: HubServer, root: Path, tmp_path: Path) -> None:
    hub.add_fault("corrupt", "model.safetensors", times=None)  # every attempt: the hash check must give up
    hub.add_fault("corrupt", "sub/vocab.txt", times=1)  # once: the snapshot's hash check retries
    hub.add_fault("cut", "README.md", after=3)
    hub.add_fault("status", "config.json", code=401)
    hub.add_fault("wrong_hash", "sub/nested/notes.txt", times=None)
    hub.add_fault("status", "acme/tiny/sub/*", code=503)  # once, retried at once
    out = run_client(
        hub,
        tmp_path,
        """
        import modelscope_hub._download as dl
        dl.DOWNLOAD_INTEGRITY_RETRY_BACKOFF = 0.0  # the client waits 1 s, 2 s between integrity retries
        from modelscope.hub.file_download import model_file_download
        from modelscope.hub.snapshot_download import snapshot_download
        result = {
            "corrupt": catch(model_file_download, "acme/tiny", "model.safetensors"),
            "cut": catch(model_file_download, "acme/tiny", "README.md"),
            "auth": catch(model_file_download, "acme/tiny", "config.json"),
            "snapshot": catch(snapshot_download, "acme/tiny", allow_patterns=["sub/*"]),
        }
        """,
    )
    assert out["corrupt"]["error"] == "FileIntegrityError"
    assert "Hash mismatch" in out["corrupt"]["message"]
    assert len([r for r in hub.requests if r["path"].endswith("FilePath=model.safetensors")]) == 3
    assert Path(out["cut"]["ok"]).read_bytes() == content(root, "README.md")
    readme = [(r["range"], r["faults"]) for r in hub.requests if r["path"].endswith("FilePath=README.md")]
    assert readme == [(None, ["cut"]), ("bytes=3-", [])]
    assert out["auth"]["error"] == "HTTPError" and out["auth"]["cause"] == "AuthenticationError"
    assert out["auth"]["status"] == 401
    assert out["snapshot"]["error"] == "FileDownloadError"  # notes.txt never matches its advertised sha256
    assert "1 of 2 file(s) failed" in out["snapshot"]["message"]
    cache = tmp_path / "caches" / "modelscope" / "models" / "acme--tiny" / "snapshots" / "master"
    assert (cache / "sub" / "vocab.txt").read_bytes() == content(root, "sub/vocab.txt")
    assert not (cache / "sub" / "nested" / "notes.txt").exists()
    vocab = [r["faults"] for r in hub.requests if r["path"].endswith("vocab.txt")]
    assert ["corrupt"] in vocab and len(vocab) >= 2


def test_fault_status_maps_to_hf_errors(hub: HubServer, tmp_path: Path) -> None:
    hub.add_fault("status", "config.json", code=401)
    hub.add_fault("status", "README.md", code=403)
    hub.add_fault("status", "sub/nested/notes.txt", code=404)
    hub.add_fault("status", "sub/vocab.txt", code=503)
    hub.add_fault("status", "/api/models/acme/tiny/tree/*", code=500, times=None)
    out = run_client(
        hub,
        tmp_path,
        """
        from huggingface_hub import HfApi, hf_hub_download
        result = {
            "401": catch(hf_hub_download, "acme/tiny", "config.json"),
            "403": catch(hf_hub_download, "acme/tiny", "README.md"),
            "404": catch(hf_hub_download, "acme/tiny", "sub/nested/notes.txt"),
            "503": catch(hf_hub_download, "acme/tiny", "sub/vocab.txt"),
            "api500": catch(lambda: list(HfApi().list_repo_tree("acme/tiny"))),
        }
        """,
    )
    assert out["401"]["error"] == "GatedRepoError" and out["401"]["status"] == 401
    assert out["403"]["error"] == "GatedRepoError" and out["403"]["status"] == 403
    assert out["404"]["error"] == "RemoteEntryNotFoundError"
    assert "ok" in out["503"]  # the client asks again after a 5xx
    vocab = [r["status"] for r in hub.requests if r["path"].endswith("vocab.txt") and r["method"] == "HEAD"]
    assert vocab == [503, 200]
    assert out["api500"]["error"] == "HfHubHTTPError" and out["api500"]["status"] == 500


def test_fault_slow(hub: HubServer) -> None:
    hub.add_fault("slow", "config.json", delay=0.4)
    start = time.monotonic()
    assert get(f"{hub.url}/acme/tiny/resolve/main/config.json", method="HEAD")[0] == 200
    assert time.monotonic() - start >= 0.4
    hub.add_fault("slow", "sub/vocab.txt", delay=0.1, per_chunk=True)  # 240 KB = 4 chunks
    start = time.monotonic()
    assert get(f"{hub.url}/api/v1/models/acme/tiny/repo?FilePath=sub/vocab.txt")[0] == 200
    assert time.monotonic() - start >= 0.35
    start = time.monotonic()
    get(f"{hub.url}/api/v1/models/acme/tiny/repo?FilePath=sub/vocab.txt")
    assert time.monotonic() - start < 0.3  # used up


def test_fault_no_range(hub: HubServer, root: Path) -> None:
    hub.add_fault("no_range", "sub/vocab.txt")
    status, headers, body = get(f"{hub.url}/acme/tiny/resolve/main/sub/vocab.txt", {"Range": "bytes=0-9"})
    assert (status, body, headers.get("Content-Range")) == (200, content(root, "sub/vocab.txt"), None)
    assert get(f"{hub.url}/acme/tiny/resolve/main/sub/vocab.txt", {"Range": "bytes=0-9"})[0] == 206


def test_fault_wrong_hash_hf(hub: HubServer, root: Path, tmp_path: Path) -> None:
    weights = content(root, "model.safetensors")
    hub.add_fault("wrong_hash", "model.safetensors", times=None)
    hub.add_fault("wrong_hash", "config.json", times=None)
    out = run_client(
        hub,
        tmp_path,
        """
        from huggingface_hub import HfApi, hf_hub_download
        info = HfApi().model_info("acme/tiny", files_metadata=True)
        sib = {s.rfilename: s for s in info.siblings}
        path = hf_hub_download("acme/tiny", "model.safetensors")
        import os
        result = {"sha256": sib["model.safetensors"].lfs.sha256, "config_oid": sib["config.json"].blob_id,
                  "path": path, "blob": os.path.basename(os.path.realpath(path))}
        """,
    )
    assert out["sha256"] != sha256(weights) and len(out["sha256"]) == 64
    assert out["config_oid"] != git_blob_sha1(content(root, "config.json"))
    assert out["blob"] == out["sha256"]  # the client stored the bytes under the advertised hash
    assert Path(out["path"]).read_bytes() == weights  # but the bytes are the true ones


def test_require_token(hub: HubServer, root: Path, tmp_path: Path) -> None:
    hub.require_token = "secret"
    code = """
        from huggingface_hub import HfApi, hf_hub_download
        from modelscope.hub.snapshot_download import snapshot_download
        result = {
            "info": catch(HfApi().model_info, "acme/tiny"),
            "file": catch(hf_hub_download, "acme/tiny", "model.safetensors"),
            "ms": catch(snapshot_download, "acme/tiny", allow_patterns=["*.json"]),
        }
        """
    none = run_client(hub, tmp_path / "none", code)
    assert none["info"]["error"] == none["file"]["error"] == "GatedRepoError"
    assert none["info"]["status"] == 401
    assert none["ms"]["error"] == "HTTPError" and none["ms"]["status"] == 401
    wrong = run_client(hub, tmp_path / "wrong", code, token="guess")
    assert wrong["info"]["error"] == "HfHubHTTPError" and wrong["info"]["status"] == 401
    assert "Invalid credentials" in wrong["info"]["message"]
    hub.clear_requests()
    good = run_client(hub, tmp_path / "good", code, token="secret")
    assert Path(good["file"]["ok"]).read_bytes() == content(root, "model.safetensors")
    assert (Path(good["ms"]["ok"]) / "config.json").read_bytes() == content(root, "config.json")
    auth = {
        (r["server"], r["method"], r["path"].split("?")[0].rsplit("/", 1)[-1]): r["authorization"]
        for r in hub.requests
    }
    assert auth[("hub", "HEAD", "model.safetensors")] is True
    assert auth[("cdn", "GET", sha256(content(root, "model.safetensors")))] is False  # not sent off the hub
    assert all(r["status"] in (200, 302) for r in hub.requests)


def test_hand_made_caches_are_found_offline(hub: HubServer, root: Path, tmp_path: Path) -> None:
    """The layouts in the hubserver docstring, written by hand, are what the clients find offline."""
    commit = hub.commit(REPO)
    hf = tmp_path / "caches" / "huggingface" / "hub" / "models--acme--tiny"
    ms = tmp_path / "caches" / "modelscope" / "models" / "acme--tiny" / "snapshots" / "master"
    for rel in FILES:
        for base in (hf / "snapshots" / commit, ms):
            (base / rel).parent.mkdir(parents=True, exist_ok=True)
            (base / rel).write_bytes(content(root, rel))
    (hf / "refs").mkdir()
    (hf / "refs" / "main").write_text(commit)
    hub.stop()  # nothing may be asked of the network
    out = run_client(
        hub,
        tmp_path,
        """
        from huggingface_hub import hf_hub_download, snapshot_download as hf_snapshot
        from modelscope.hub.snapshot_download import snapshot_download as ms_snapshot
        from modelscope.hub.file_download import model_file_download
        result = {
            "hf": hf_snapshot("acme/tiny", revision="main", local_files_only=True),
            "hf_file": hf_hub_download("acme/tiny", "sub/nested/notes.txt", local_files_only=True),
            "ms": ms_snapshot("acme/tiny", local_files_only=True),
            "ms_file": model_file_download("acme/tiny", "sub/vocab.txt", local_files_only=True),
            "hf_missing": catch(hf_snapshot, "acme/other", local_files_only=True),
            "ms_missing": catch(ms_snapshot, "acme/other", local_files_only=True),
        }
        """,
    )
    assert Path(out["hf"]) == hf / "snapshots" / commit
    assert Path(out["hf_file"]) == hf / "snapshots" / commit / "sub" / "nested" / "notes.txt"
    assert Path(out["ms"]) == ms
    assert Path(out["ms_file"]) == ms / "sub" / "vocab.txt"
    assert out["hf_missing"]["error"] == "LocalEntryNotFoundError"
    assert out["ms_missing"]["error"] == "CacheNotFound"
    # A tree listing next to the snapshot makes the HF client check the snapshot is complete.
    (hf / "trees").mkdir()
    listing = {rel: {"size": len(content(root, rel)), "blob_id": "0" * 40} for rel in FILES}
    listing["extra.bin"] = {"size": 1, "blob_id": "0" * 40}
    (hf / "trees" / f"{commit}.json").write_text(json.dumps({"format_version": 1, "files": listing}))
    out = run_client(
        hub,
        tmp_path,
        """
        from huggingface_hub import snapshot_download
        result = catch(snapshot_download, "acme/tiny", local_files_only=True)
        """,
    )
    assert out["error"] == "IncompleteSnapshotError" and "extra.bin" in out["message"]
