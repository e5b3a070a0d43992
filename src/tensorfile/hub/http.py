"""The one HTTP backend: a shared client, retries with backoff, errors as one clear line, counters.

Every byte tensorfile fetches from a hub or URL goes through here, so timeouts, retries, the
requests/bytes counters that `--json` reports, and the mapping of 401/403/404/unreachable to a
`HubError` live in one place. httpx2 is huggingface_hub's own HTTP library; the client honours the
usual proxy variables and strips `Authorization` when a redirect leaves the hub's origin.
"""

from __future__ import annotations

import contextlib
import os
import random
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..errors import InputError

if TYPE_CHECKING:
    import httpx2

CONNECT_TIMEOUT = 10.0
READ_TIMEOUT = float(os.environ.get("TENSORFILE_HTTP_TIMEOUT", "30"))
TRIES = 3
_RETRY_STATUS = frozenset({429, 500, 502, 503, 504})


class HubError(InputError):
    """A hub or URL could not give what was asked: not found, not allowed, unreachable."""


class HubAuthError(HubError):
    """401/403: a token is missing or not allowed."""


class HubNotFound(HubError):
    """404: no such repo, revision or file."""


@dataclass
class HttpStats:
    """Requests sent and body bytes received, for `--json` and the benchmarks."""

    requests: int = 0
    bytes: int = 0
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    def add(self, requests: int = 0, nbytes: int = 0) -> None:
        with self._lock:
            self.requests += requests
            self.bytes += nbytes

    def snapshot(self) -> dict[str, int]:
        with self._lock:
            return {"requests": self.requests, "bytes_fetched": self.bytes}


STATS = HttpStats()
_client: httpx2.Client | None = None
_client_lock = threading.Lock()


def client() -> httpx2.Client:
    global _client
    if _client is None:
        with _client_lock:
            if _client is None:
                import httpx2

                _client = httpx2.Client(
                    follow_redirects=True,
                    timeout=httpx2.Timeout(READ_TIMEOUT, connect=CONNECT_TIMEOUT),
                    headers={"user-agent": _user_agent()},
                    limits=httpx2.Limits(max_connections=32, max_keepalive_connections=16),
                )
    return _client


def _user_agent() -> str:
    from .. import __version__

    return f"tensorfile/{__version__}"


def describe_status(status: int, url: str, token_hint: str | None = None) -> HubError:
    """The one-line error for an HTTP failure status."""
    if status in (401, 403):
        hint = f" (set {token_hint} or pass --token)" if token_hint else ""
        word = "authentication required" if status == 401 else "access denied"
        return HubAuthError(f"{word}{hint}", url)
    if status == 404:
        return HubNotFound("not found on the server (404)", url)
    if status == 416:
        return HubError("the server refused the byte range (416): the file changed or is shorter", url)
    return HubError(f"the server answered HTTP {status}", url)


def _network_error(exc: Exception, url: str) -> HubError:
    import httpx2

    if isinstance(exc, httpx2.TimeoutException):
        return HubError(f"no answer within {READ_TIMEOUT:g} s (timeout); is the hub reachable?", url)
    if isinstance(exc, httpx2.ConnectError):
        return HubError(f"cannot connect ({_reason(exc)}); is the hub reachable?", url)
    return HubError(f"connection failed ({_reason(exc)})", url)


def _reason(exc: Exception) -> str:
    text = str(exc) or type(exc).__name__
    return text.splitlines()[0][:200]


def _backoff(attempt: int) -> None:
    time.sleep(min(4.0, 0.25 * 2**attempt) * (0.5 + random.random() / 2))


def request(
    method: str,
    url: str,
    headers: dict[str, str] | None = None,
    token_hint: str | None = None,
    params: dict[str, Any] | None = None,
) -> httpx2.Response:
    """A small request (JSON APIs, HEAD) read whole, with retries; raises HubError on failure."""
    import httpx2

    last: Exception | None = None
    for attempt in range(TRIES):
        try:
            response = client().request(method, url, headers=headers, params=params)
        except httpx2.TransportError as exc:
            STATS.add(requests=1)
            last = exc
            if attempt + 1 < TRIES:
                _backoff(attempt)
                continue
            raise _network_error(exc, url) from None
        STATS.add(requests=1 + len(response.history), nbytes=len(response.content))
        if response.status_code in _RETRY_STATUS and attempt + 1 < TRIES:
            _backoff(attempt)
            continue
        if response.status_code >= 400:
            raise describe_status(response.status_code, url, token_hint)
        return response
    raise _network_error(last or RuntimeError("no response"), url)


def get_range(
    url: str, start: int, end: int, headers: dict[str, str] | None = None, token_hint: str | None = None
) -> tuple[bytes, int | None]:
    """Bytes [start, end) of a remote file and the file's total size when the server said it.

    A server that ignores Range (200) is read as a stream and cut at `end`, so the first blocks of
    a file still work; beyond MAX_UNRANGED_SKIP into such a file, the read is refused rather than
    downloading gigabytes to reach one header.
    """
    import httpx2

    wanted = end - start
    last: Exception | None = None
    for attempt in range(TRIES):
        try:
            return _get_range_once(url, start, end, wanted, headers, token_hint)
        except _Retry as exc:
            last = exc.cause
            if attempt + 1 < TRIES:
                _backoff(attempt)
                continue
        except httpx2.TransportError as exc:
            last = exc
            if attempt + 1 < TRIES:
                _backoff(attempt)
                continue
    if isinstance(last, HubError):
        raise last
    raise _network_error(last or RuntimeError("no response"), url)


MAX_UNRANGED_SKIP = 64 * 1024 * 1024


class _Retry(Exception):
    def __init__(self, cause: Exception) -> None:
        self.cause = cause


def _get_range_once(
    url: str, start: int, end: int, wanted: int, headers: dict[str, str] | None, token_hint: str | None
) -> tuple[bytes, int | None]:
    import httpx2

    hdrs = {**(headers or {}), "Range": f"bytes={start}-{end - 1}", "Accept-Encoding": "identity"}
    with client().stream("GET", url, headers=hdrs) as response:
        STATS.add(requests=1 + len(response.history))  # a hub's 302 to its CDN is a request too
        status = response.status_code
        if status in _RETRY_STATUS:
            raise _Retry(describe_status(status, url, token_hint))
        if status == 416:
            total = _total_from_content_range(response.headers.get("content-range"))
            if total is not None and start >= total:
                return b"", total
        if status >= 400:
            raise describe_status(status, url, token_hint)
        chunks: list[bytes] = []
        got = 0
        if status == 206:
            total = _total_from_content_range(response.headers.get("content-range"))
            first = _first_from_content_range(response.headers.get("content-range"))
            if first is not None and first != start:
                raise HubError(f"the server sent bytes from {first}, not the {start} asked for", url)
            skip = 0
        else:  # 200: Range ignored, the whole body follows
            length = response.headers.get("content-length")
            total = int(length) if length and length.isdigit() else None
            if start > MAX_UNRANGED_SKIP:
                raise HubError(
                    "the server ignores Range requests; reading this header would mean "
                    f"downloading {start:,} bytes first",
                    url,
                )
            skip = start
        try:
            for chunk in response.iter_raw(64 * 1024):
                STATS.add(nbytes=len(chunk))
                if skip:
                    if len(chunk) <= skip:
                        skip -= len(chunk)
                        continue
                    chunk = chunk[skip:]
                    skip = 0
                chunks.append(chunk)
                got += len(chunk)
                if got >= wanted:
                    break
        except httpx2.TransportError as exc:
            raise _Retry(_network_error(exc, url)) from None
        data = b"".join(chunks)[:wanted]
        expected = wanted if total is None else max(0, min(wanted, total - start))
        if len(data) < expected:
            raise _Retry(HubError(f"connection closed after {len(data)} of {expected} bytes", url))
        return data, total


def _total_from_content_range(value: str | None) -> int | None:
    # "bytes 0-99/1234" or "bytes */1234"
    if not value or "/" not in value:
        return None
    total = value.rsplit("/", 1)[1].strip()
    return int(total) if total.isdigit() else None


def _first_from_content_range(value: str | None) -> int | None:
    if not value:
        return None
    spec = value.split(" ", 1)[-1].split("/", 1)[0]
    first = spec.split("-", 1)[0].strip()
    return int(first) if first.isdigit() else None


@contextlib.contextmanager
def stream(
    url: str, start: int = 0, headers: dict[str, str] | None = None, token_hint: str | None = None
) -> Iterator[tuple[httpx2.Response, int]]:
    """A GET from byte `start` for downloads: (response, offset its body starts at: `start` on a
    206, 0 when the server ignored Range). Raises HubError for failure statuses and network errors;
    errors while iterating the body are the caller's (it resumes)."""
    import httpx2

    hdrs = {**(headers or {}), "Accept-Encoding": "identity"}
    if start:
        hdrs["Range"] = f"bytes={start}-"
    try:
        with client().stream("GET", url, headers=hdrs) as response:
            STATS.add(requests=1 + len(response.history))
            if response.status_code >= 400:
                raise describe_status(response.status_code, url, token_hint)
            yield response, (start if response.status_code == 206 else 0)
    except httpx2.TransportError as exc:
        raise _network_error(exc, url) from None


def is_transport_error(exc: BaseException) -> bool:
    import httpx2

    return isinstance(exc, (httpx2.TransportError, httpx2.StreamError))
