"""A local Google Cloud Storage for tests: gcp-storage-emulator's server on 127.0.0.1 (a free port,
in memory) and the variables that point gcsfs (and so tensorfile's gs:// inputs) at it::

    with GCSStand("zoo") as gcs:
        gcs.upload(folder)                         # every file under folder, keys relative to it
        env = {**os.environ, **gcs.env}            # for a child process
        subprocess.run([sys.executable, "-m", "tensorfile", "scan", "gs://zoo", ...], env=env)

gcsfs reads the endpoint from STORAGE_EMULATOR_HOST (and then needs no credentials).
GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT=false: gcsfs otherwise first asks a bucket's type over gRPC, which
the emulator does not serve (each ask waits 60 s before gcsfs falls back to plain JSON calls).
"""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from .s3stand import free_port


class GCSStand:
    def __init__(self, bucket: str) -> None:
        self.bucket = bucket
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            "STORAGE_EMULATOR_HOST": self.url,
            "GCSFS_EXPERIMENTAL_ZB_HNS_SUPPORT": "false",
            "GOOGLE_CLOUD_PROJECT": "test",
            "NO_PROXY": "127.0.0.1",
            "no_proxy": "127.0.0.1",
        }
        self._server: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> GCSStand:
        command = [sys.executable, "-m", "gcp_storage_emulator", "start", "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--in-memory", "--default-bucket", self.bucket]
        self._server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), 0.2).close()
                return self
            except OSError:
                if time.monotonic() > deadline or self._server.poll() is not None:
                    self.__exit__()
                    raise RuntimeError("gcp-storage-emulator did not start") from None
                time.sleep(0.1)

    def __exit__(self, *exc: object) -> None:
        if self._server is not None:
            self._server.kill()
            self._server.wait()

    def filesystem(self) -> Any:
        # the plain class: gcsfs's package swaps in the gRPC-probing one when imported without the
        # variable above, as in this test process
        from gcsfs.core import GCSFileSystem

        return GCSFileSystem(token="anon", project="test", endpoint_url=self.url, skip_instance_cache=True)

    def upload(self, folder: Path, prefix: str = "") -> int:
        """Every file under `folder`, by the JSON API's media upload: the emulator's multipart
        upload (what gcsfs's pipe uses for small objects) drops a last byte that is a CR."""
        count = 0
        for path in sorted(folder.rglob("*")):
            if path.is_file():
                key = "/".join(p for p in (prefix, path.relative_to(folder).as_posix()) if p)
                query = urllib.parse.urlencode({"uploadType": "media", "name": key})
                url = f"{self.url}/upload/storage/v1/b/{self.bucket}/o?{query}"
                request = urllib.request.Request(url, data=path.read_bytes(), method="POST")
                request.add_header("Content-Type", "application/octet-stream")
                with urllib.request.urlopen(request, timeout=30) as answer:
                    assert answer.status == 200, answer.status
                count += 1
        return count
