"""data_tools' one HTTP client (retry, timeout, pace per host); imports requests and urllib3 only.

``PoliteSession`` is a ``requests.Session``; ``data_tools.crawl`` and ``data_tools.gaon`` make
every request through one, and nothing of the project is imported here.

    session = PoliteSession(attempts=3, intervals={"musicbrainz.org": 1.0})
    try:
        response = session.get(url)  # 429/5xx, broken connections, timeouts: already retried
    except requests.RequestException as exc:
        raise CrawlError(session.explain(exc)) from exc  # "gave up on H after 3 attempts (...)"

- Retries are urllib3's ``Retry``, on GET and HEAD: ``attempts`` tries in all for a 429, 500,
  502, 503 or 504 answer, a connection that fails or breaks, or a read timeout; between tries
  an exponential backoff (none before the second try, then ``backoff`` x 2, x 4, ... s), or the
  server's ``Retry-After`` where it sends one, obeyed up to ``max_retry_after`` seconds. Other
  answers (200, 404, ...) come back as responses.
- Every request without a ``timeout`` of its own gets the session's.
- Politeness: the project's User-Agent, and at most one request per ``intervals[host]`` seconds to
  each host (``host[:port]`` as the URL names it; ``default_interval`` for hosts not listed), kept
  by every thread that shares the session; redirects are paced for the host they go to. The tries
  of one request are spaced by the backoff and ``Retry-After`` instead.
- When it gives up, ``explain(exc)`` says why in one line for a person, and ``reason(exc)`` says
  it in a few words that a crawl counts per reason.
"""

from __future__ import annotations

import re
import threading
import time
from urllib.parse import urlsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.exceptions import (
    ConnectTimeoutError,
    MaxRetryError,
    NewConnectionError,
    ReadTimeoutError,
)
from urllib3.util.retry import Retry

USER_AGENT = "albumgan/0.1 (K-pop album-art DC-GAN research; https://pypi.org/project/albumgan)"
RETRY_STATUS = (429, 500, 502, 503, 504)
RETRY_METHODS = ("GET", "HEAD")
ATTEMPTS = 3
BACKOFF = 0.5  # seconds: the third try waits 1 s, the fourth 2 s, ...
TIMEOUT = 10.0
MAX_RETRY_AFTER = 60.0  # a server asking for longer waits this long, then is asked again


def host_of(url: str) -> str:
    """The host a request to ``url`` goes to, as ``host[:port]``, lower case, without userinfo."""
    return urlsplit(url).netloc.rpartition("@")[2].lower()


class HostPacer:
    """At most one request per interval to each host, for any number of threads.

    A thread books the host's next free slot under the lock and sleeps outside it, so requests to
    one host never wait for another's.
    """

    def __init__(self, intervals: dict[str, float] | None = None, default: float = 0.0) -> None:
        """
        Args:
            intervals: host (``host_of``) -> seconds between the starts of two requests.
            default: seconds for hosts not in ``intervals``.
        """
        self.intervals = {host.lower(): seconds for host, seconds in (intervals or {}).items()}
        self.default = default
        self._lock = threading.Lock()
        self._next: dict[str, float] = {}  # host -> when (time.monotonic) its next slot opens

    def wait(self, host: str) -> float:
        """Sleep until ``host`` may be asked again; returns the seconds slept."""
        interval = self.intervals.get(host, self.default)
        if interval <= 0:
            return 0.0
        with self._lock:
            now = time.monotonic()
            start = max(now, self._next.get(host, now))
            self._next[host] = start + interval
        if start > now:
            time.sleep(start - now)
        return start - now


class _Retry(Retry):
    """urllib3's ``Retry`` with a ceiling on the waits a ``Retry-After`` header asks for (urllib3
    before 2.6 has none)."""

    def __init__(self, *args, max_retry_after: float = MAX_RETRY_AFTER, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.max_retry_after = max_retry_after

    def new(self, **kwargs) -> _Retry:
        return super().new(max_retry_after=self.max_retry_after, **kwargs)

    def get_retry_after(self, response) -> float | None:
        seconds = super().get_retry_after(response)
        return None if seconds is None else min(seconds, self.max_retry_after)


class PoliteSession(requests.Session):
    """A ``requests.Session`` with retries, a default timeout and per-host pacing (module doc)."""

    def __init__(
        self,
        attempts: int = ATTEMPTS,
        backoff: float = BACKOFF,
        timeout: float = TIMEOUT,
        intervals: dict[str, float] | None = None,
        default_interval: float = 0.0,
        max_retry_after: float = MAX_RETRY_AFTER,
        user_agent: str = USER_AGENT,
    ) -> None:
        """
        Args:
            attempts: tries per request in all (1: no retries).
            backoff: urllib3's ``backoff_factor`` in seconds.
            timeout: seconds to connect and, separately, to wait for data, for each try.
            intervals: host (``host_of``) -> least seconds between two requests to it.
            default_interval: the same for hosts not in ``intervals``.
            max_retry_after: the longest wait a ``Retry-After`` header gets, in seconds.
            user_agent: the ``User-Agent`` header of every request.
        """
        if attempts < 1 or backoff < 0 or timeout <= 0 or max_retry_after < 0:
            raise ValueError(
                "expected attempts >= 1, backoff >= 0, timeout > 0, max_retry_after >= 0; got "
                f"{attempts=}, {backoff=}, {timeout=}, {max_retry_after=}"
            )
        super().__init__()
        self.attempts = attempts
        self.timeout = timeout
        self.pacer = HostPacer(intervals, default_interval)
        self.headers["User-Agent"] = user_agent
        retry = _Retry(
            total=attempts - 1,
            backoff_factor=backoff,
            status_forcelist=RETRY_STATUS,
            allowed_methods=RETRY_METHODS,
            respect_retry_after_header=True,
            raise_on_status=True,  # given up on a status: RetryError, not the last answer
            max_retry_after=max_retry_after,
        )
        adapter = HTTPAdapter(max_retries=retry)
        self.mount("http://", adapter)
        self.mount("https://", adapter)

    def send(self, request: requests.PreparedRequest, **kwargs) -> requests.Response:
        # Session.request and each redirect come through here: one pacing per host asked.
        if kwargs.get("timeout") is None:
            kwargs["timeout"] = self.timeout
        self.pacer.wait(host_of(request.url or ""))
        return super().send(request, **kwargs)

    def reason(self, exc: requests.RequestException) -> str:
        """Why a request failed, in a few words: ``HTTP 503 after 3 attempts``, ``timeout``,
        ``network error (cannot connect)``, ``network error (ProtocolError)``."""
        kind, detail = _failure(exc)
        if kind == "status":
            return f"{detail} after {self._attempts()}"
        if kind == "timeout":
            return "timeout"
        return f"network error ({'cannot connect' if kind == 'unreachable' else detail})"

    def explain(self, exc: requests.RequestException) -> str:
        """Why a request failed, as one line for a person: ``gave up on HOST after 3 attempts
        (HTTP 503)``, ``cannot reach HOST after 3 attempts (offline?)``."""
        kind, detail = _failure(exc)
        request = getattr(exc, "request", None)
        host = host_of(request.url) if request is not None and request.url else "the server"
        if kind == "unreachable":
            return f"cannot reach {host} after {self._attempts()} (offline?)"
        return f"gave up on {host} after {self._attempts()} ({detail})"

    def _attempts(self) -> str:
        # Retry counts every failure against one total: a request given up on used them all.
        return f"{self.attempts} attempt" + ("s" if self.attempts != 1 else "")


def _failure(exc: requests.RequestException) -> tuple[str, str]:
    """(kind, detail): ``status`` ("HTTP 503"), ``timeout``, ``unreachable`` (no connection
    could be made) or ``network`` (the urllib3 error's type, e.g. "ProtocolError")."""
    cause = exc.args[0] if exc.args else None
    inner = cause.reason if isinstance(cause, MaxRetryError) else cause
    if isinstance(exc, requests.exceptions.RetryError):
        status = re.search(r"too many (\d+) error responses", str(inner))
        return "status", f"HTTP {status.group(1)}" if status else "too many error responses"
    if isinstance(inner, NewConnectionError | ConnectTimeoutError) or isinstance(
        exc, requests.ConnectTimeout
    ):
        return "unreachable", "cannot connect"
    if isinstance(inner, ReadTimeoutError) or isinstance(exc, requests.Timeout):
        return "timeout", "timeout"
    return "network", type(inner or exc).__name__


# --- one file: a deadline, a size cap, and no fetching of this machine's own network -----------
MAX_FILE_BYTES = 50 * 2**20  # a cover is a few MB; a larger body is refused, never buffered
FILE_DEADLINE = 60.0  # seconds for one file in all (a host that drips a byte a second)


class DownloadRefused(Exception):
    """A file not fetched, or given up on while fetching; the message is the reason a crawl
    counts (``over the 50 MB cap``, ``over the 60 s deadline``, ``a local address``)."""


def fetch_file(
    session: requests.Session,
    url: str,
    timeout: float | None = None,
    max_bytes: int = MAX_FILE_BYTES,
    deadline: float = FILE_DEADLINE,
    allow_local: bool = False,
) -> tuple[requests.Response, bytes]:
    """GET one file: (response, body) with the body at most ``max_bytes``, read within
    ``deadline`` seconds in all (the read timeout alone never trips on a host that sends a byte
    every second), from a public address unless ``allow_local``.

    Raises:
        DownloadRefused: a local or private address, a declared or actual body over the cap,
            the deadline passed.
        requests.RequestException: the request failed (the session has retried).
    """
    if not allow_local and is_local_address(url):
        raise DownloadRefused("a local or private address (allow_local / --allow-local)")
    start = time.monotonic()
    response = session.get(url, timeout=timeout, stream=True)
    try:
        declared = response.headers.get("Content-Length", "")
        if declared.isdigit() and int(declared) > max_bytes:
            raise DownloadRefused(f"over the {max_bytes // 2**20} MB cap")
        body = bytearray()
        if response.status_code == 200:
            while chunk := response.raw.read1(64 * 1024, decode_content=True):
                body += chunk  # read1: what one read of the socket gives, never a full 64 KB
                if len(body) > max_bytes:
                    raise DownloadRefused(f"over the {max_bytes // 2**20} MB cap")
                if time.monotonic() - start > deadline:
                    raise DownloadRefused(f"over the {deadline:g} s deadline")
        return response, bytes(body)
    finally:
        response.close()


def is_local_address(url: str) -> bool:
    """Whether ``url``'s host is this machine or its private network (loopback, private,
    link-local, unspecified): a search result pointing there is not a cover to fetch. A host
    that does not resolve is not local (its request fails on its own)."""
    import ipaddress
    import socket

    host = urlsplit(url).hostname or ""
    try:
        addresses = [ipaddress.ip_address(host)]
    except ValueError:
        try:
            infos = socket.getaddrinfo(host, None)
        except (OSError, UnicodeError):
            return False
        addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    return any(
        a.is_loopback or a.is_private or a.is_link_local or a.is_unspecified or a.is_reserved
        for a in addresses
    )
