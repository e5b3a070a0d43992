"""A local S3 for tests: moto's ThreadedMotoServer on 127.0.0.1 (a free port) and the variables
that point boto3 / s3fs (and so tensorfile's s3:// inputs) at it::

    with S3Stand() as s3:
        s3.upload(folder, "zoo")                       # every file under folder, keys relative to it
        env = {**os.environ, **s3.env}                 # for a child process
        subprocess.run([sys.executable, "-m", "tensorfile", "scan", "s3://zoo", ...], env=env)

tensorfile reads the endpoint where boto3 does: AWS_ENDPOINT_URL (botocore ≥ 1.31; s3fs passes no
endpoint of its own, so botocore's resolution applies), with the usual AWS_ACCESS_KEY_ID,
AWS_SECRET_ACCESS_KEY and AWS_DEFAULT_REGION. In this process the s3 filesystem is made once
(tensorfile.hub.objectstore._FS, s3fs's instance cache): `forget_filesystems()` after changing them.
"""

from __future__ import annotations

import logging
import socket
from pathlib import Path
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def forget_filesystems() -> None:
    from tensorfile.hub import objectstore

    objectstore._FS.clear()
    import s3fs

    s3fs.S3FileSystem.clear_instance_cache()


class S3Stand:
    def __init__(self) -> None:
        from moto.server import ThreadedMotoServer

        logging.getLogger("werkzeug").setLevel(logging.ERROR)  # one line per request otherwise
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self._server = ThreadedMotoServer(ip_address="127.0.0.1", port=self.port, verbose=False)
        self.env = {
            "AWS_ENDPOINT_URL": self.url,
            "AWS_ACCESS_KEY_ID": "testing",
            "AWS_SECRET_ACCESS_KEY": "testing",
            "AWS_DEFAULT_REGION": "us-east-1",
            "NO_PROXY": "127.0.0.1",
            "no_proxy": "127.0.0.1",
        }

    def client(self) -> Any:
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=self.url,
            region_name="us-east-1",
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )

    def upload(self, folder: Path, bucket: str) -> dict[str, int]:
        """A new bucket holding every file under `folder` (key: its path relative to folder);
        returns key -> size."""
        client = self.client()
        client.create_bucket(Bucket=bucket)
        keys: dict[str, int] = {}
        for file in sorted(p for p in folder.rglob("*") if p.is_file()):
            key = file.relative_to(folder).as_posix()
            client.upload_file(str(file), bucket, key)
            keys[key] = file.stat().st_size
        return keys

    def __enter__(self) -> S3Stand:
        self._server.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.stop()
