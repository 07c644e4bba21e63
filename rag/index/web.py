"""Fetching web pages safely: the only way newsbot talks to the internet.

Every request goes through `Fetcher.fetch`, which enforces, per hop of a redirect chain:

* http and https only (no file:, ftp:, data: ... URLs);
* no private, loopback, link-local, multicast or otherwise non-global address, checked on the
  address the socket actually connects to (so a DNS answer that changes between a check and the
  connection cannot smuggle a request into the operator's network), unless
  NEWSBOT_FETCH_ALLOW_PRIVATE=true;
* robots.txt of the origin (RFC 9309: a missing robots.txt allows everything, an unreachable one
  forbids everything);
* a timeout per network operation and a total time per page, a size cap on the decoded body,
  and a bounded number of redirects;
* a User-Agent that names newsbot.

Failures raise FetchError with one message that names the URL.
"""

from __future__ import annotations

import ipaddress
import logging
import re
import socket
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urljoin, urlsplit
from urllib.robotparser import RobotFileParser

import httpcore
import httpx

from rag.errors import UserError

logger = logging.getLogger(__name__)

# The product token robots.txt rules are matched against, and the User-Agent sent with it.
ROBOTS_AGENT = "newsbot"
USER_AGENT = "newsbot/0.1 (news question-answering bot; respects robots.txt)"
# RFC 9309 asks crawlers to read at least 500 KiB of robots.txt; more is ignored.
ROBOTS_MAX_BYTES = 512 * 1024
# A page may take at most this many per-operation timeouts in all: a server that drips one byte
# just inside every read timeout must not hold a refresh forever.
TOTAL_TIME_FACTOR = 3.0
# Read size of the streamed body; the size cap is checked after each piece.
READ_CHUNK = 64 * 1024
ALLOWED_SCHEMES = ("http", "https")
ACCEPT = "text/html,application/xhtml+xml,application/rss+xml,application/atom+xml,application/xml;q=0.9,*/*;q=0.5"


class FetchError(UserError):
    """One URL could not be fetched; the message names it and says why."""

    def __init__(self, url: str, reason: str) -> None:
        super().__init__(f"{url}: {reason}")
        self.url = url
        self.reason = reason


class AddressRefused(Exception):
    """Raised from inside the connection: the host resolves to an address newsbot must not reach."""


@dataclass
class FetchResult:
    url: str  # as requested
    final_url: str  # after redirects
    status: int  # 200 or 304
    body: bytes
    content_type: str
    etag: str | None
    last_modified: str | None

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def charset(self) -> str | None:
        for part in self.content_type.split(";")[1:]:
            key, _, value = part.partition("=")
            if key.strip().lower() == "charset" and value.strip():
                return value.strip().strip("\"'")
        return None


def check_address(ip_text: str, allow_private: bool) -> None:
    """Refuse non-global addresses (private, loopback, link-local, CGNAT, multicast, reserved)."""
    ip = ipaddress.ip_address(ip_text.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
        ip = ip.ipv4_mapped
    if allow_private or ip.is_global:
        return
    kind = ("loopback" if ip.is_loopback else "link-local" if ip.is_link_local else
            "private" if ip.is_private else "non-public")
    raise AddressRefused(f"refused: resolves to the {kind} address {ip} (set NEWSBOT_FETCH_ALLOW_PRIVATE=true "
                         f"to allow fetching from private networks)")


class GuardedBackend(httpcore.SyncBackend):
    """httpcore's socket backend, resolving the host itself and connecting only to checked addresses.

    TLS still verifies the certificate against the host name: httpcore passes the request's host
    to start_tls separately from the address connected to."""

    def __init__(self, allow_private: bool) -> None:
        self.allow_private = allow_private

    def connect_tcp(self, host: str, port: int, timeout: float | None = None, local_address: str | None = None,
                    socket_options: Any = None) -> httpcore.NetworkStream:
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except socket.gaierror as exc:
            raise httpcore.ConnectError(f"cannot resolve host {host!r} ({exc.strerror})") from None
        addresses = list(dict.fromkeys(str(info[4][0]) for info in infos))
        for address in addresses:  # one non-public answer refuses the host: no picking among them
            check_address(address, self.allow_private)
        last: Exception | None = None
        for address in addresses:
            try:
                return super().connect_tcp(address, port, timeout, local_address, socket_options)
            except httpcore.ConnectError as exc:
                last = exc
        raise last or httpcore.ConnectError(f"no address for {host!r}")


def normalise_url(url: str) -> str:
    """Lower-case scheme and host, no fragment, no default port: one spelling per page."""
    parts = urlsplit(url.strip())
    scheme = parts.scheme.lower()
    host = (parts.hostname or "").lower()
    port = parts.port
    netloc = host if port is None or (scheme, port) in (("http", 80), ("https", 443)) else f"{host}:{port}"
    if ":" in host and not host.startswith("["):
        netloc = f"[{host}]" + netloc[len(host):]
    path = parts.path or "/"
    return f"{scheme}://{netloc}{path}" + (f"?{parts.query}" if parts.query else "")


_SCHEME = re.compile(r"^[a-zA-Z][a-zA-Z0-9+.-]+:")  # two letters at least: "C:\\x" stays a path


def is_url(text: str) -> bool:
    """What `newsbot ingest` treats as a URL rather than a path: anything with a scheme (so
    ftp:// or file:// get a clear refusal instead of "no such file")."""
    return bool(_SCHEME.match(text)) and not text[:2].endswith(":")


class Fetcher:
    """One HTTP client with all guards; robots.txt is read once per origin and fetcher."""

    def __init__(self, *, timeout_s: float = 10.0, max_bytes: int = 5 * 2**20, max_redirects: int = 5,
                 allow_private: bool = False, user_agent: str = USER_AGENT) -> None:
        self.timeout_s = timeout_s
        self.max_bytes = max_bytes
        self.max_redirects = max_redirects
        self.allow_private = allow_private
        transport = httpx.HTTPTransport(retries=0)
        pool = getattr(transport, "_pool", None)
        if not isinstance(pool, httpcore.ConnectionPool) or not hasattr(pool, "_network_backend"):
            raise RuntimeError("this httpx version hides its connection pool; the address guard cannot be installed")
        pool._network_backend = GuardedBackend(allow_private)
        # trust_env=False: no proxy from the environment, which would connect elsewhere than checked
        self.client = httpx.Client(transport=transport, timeout=httpx.Timeout(timeout_s), follow_redirects=False,
                                   trust_env=False, headers={"User-Agent": user_agent, "Accept-Language": "de,en;q=0.5"})
        self._robots: dict[str, RobotFileParser | str] = {}

    @classmethod
    def from_settings(cls, settings: Any) -> Fetcher:
        return cls(timeout_s=settings.fetch_timeout_s, max_bytes=settings.fetch_max_bytes,
                   max_redirects=settings.fetch_max_redirects, allow_private=settings.fetch_allow_private)

    def close(self) -> None:
        self.client.close()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- the one entry point ------------------------------------------------------------------
    def fetch(self, url: str, *, etag: str | None = None, last_modified: str | None = None) -> FetchResult:
        """GET url (conditionally when etag/last_modified are given) with every guard applied."""
        current = url
        for _hop in range(self.max_redirects + 1):
            self._check_scheme(url, current)
            self._check_robots(url, current)
            headers = {"Accept": ACCEPT}
            if etag:
                headers["If-None-Match"] = etag
            if last_modified:
                headers["If-Modified-Since"] = last_modified
            status, response_headers, body = self._get(url, current, headers, self.max_bytes)
            if status in (301, 302, 303, 307, 308):
                location = response_headers.get("location")
                if not location:
                    raise FetchError(url, f"redirect (HTTP {status}) without a Location header")
                current = urljoin(current, location)
                continue
            if status == 304:
                return FetchResult(url, current, 304, b"", "", etag, last_modified)
            if status != 200:
                where = "" if current == url else f" (redirected to {current})"
                raise FetchError(url, f"HTTP {status}{where}")
            return FetchResult(url, current, 200, body, response_headers.get("content-type", ""),
                               response_headers.get("etag"), response_headers.get("last-modified"))
        raise FetchError(url, f"more than {self.max_redirects} redirects (NEWSBOT_FETCH_MAX_REDIRECTS); last: {current}")

    # ---- guards -------------------------------------------------------------------------------
    @staticmethod
    def _check_scheme(url: str, current: str) -> None:
        parts = urlsplit(current)
        if parts.scheme.lower() not in ALLOWED_SCHEMES:
            via = "" if current == url else f" (redirected to {current})"
            raise FetchError(url, f"only http and https URLs are fetched, not {parts.scheme or 'a relative'!s}:{via}")
        if not parts.hostname:
            raise FetchError(url, "the URL has no host name")

    def _check_robots(self, url: str, current: str) -> None:
        parts = urlsplit(current)
        origin = f"{parts.scheme.lower()}://{parts.netloc.lower()}"
        rules = self._robots.get(origin)
        if rules is None:
            rules = self._read_robots(url, origin)
            self._robots[origin] = rules
        if isinstance(rules, str):
            raise FetchError(url, rules)
        if not rules.can_fetch(ROBOTS_AGENT, current):
            raise FetchError(url, f"robots.txt of {origin} disallows {ROBOTS_AGENT} from fetching this page")

    def _read_robots(self, url: str, origin: str) -> RobotFileParser | str:
        """The parsed rules, or the reason (str) why nothing on the origin may be fetched."""
        parser = RobotFileParser()
        robots_url = f"{origin}/robots.txt"
        try:
            current = robots_url
            status, headers, body = self._get(url, current, {"Accept": "text/plain"}, ROBOTS_MAX_BYTES, truncate=True)
            hops = 0
            while status in (301, 302, 303, 307, 308) and hops < self.max_redirects:  # RFC 9309: follow >= 5 hops
                hops += 1
                current = urljoin(current, headers.get("location", "/robots.txt"))
                self._check_scheme(url, current)
                status, headers, body = self._get(url, current, {"Accept": "text/plain"}, ROBOTS_MAX_BYTES, truncate=True)
        except FetchError as exc:
            if "refused:" in exc.reason:
                raise
            return f"robots.txt of {origin} could not be read ({exc.reason}), so nothing there is fetched"
        if 400 <= status < 500:
            parser.allow_all = True
        elif status != 200:
            return f"robots.txt of {origin} answered HTTP {status}, so nothing there is fetched (RFC 9309)"
        else:
            parser.parse(body.decode("utf-8", "replace").splitlines())
        return parser

    def _get(self, url: str, current: str, headers: dict[str, str], cap: int, *,
             truncate: bool = False) -> tuple[int, httpx.Headers, bytes]:
        """One request, no redirects followed; the body is read up to `cap` decoded bytes."""
        deadline = time.monotonic() + self.timeout_s * TOTAL_TIME_FACTOR
        where = "" if current == url else f" (fetching {current})"
        try:
            with self.client.stream("GET", current, headers=headers) as response:
                if response.status_code != 200:
                    return response.status_code, response.headers, b""
                declared = response.headers.get("content-length", "")
                if declared.isdigit() and int(declared) > cap and not truncate:
                    raise FetchError(url, f"page is {int(declared):,} bytes, over the {cap:,}-byte limit "
                                          f"(NEWSBOT_FETCH_MAX_BYTES){where}")
                pieces: list[bytes] = []
                size = 0
                for piece in response.iter_bytes(READ_CHUNK):
                    pieces.append(piece)
                    size += len(piece)
                    if size > cap:
                        if truncate:
                            break
                        raise FetchError(url, f"page is over the {cap:,}-byte limit (NEWSBOT_FETCH_MAX_BYTES){where}")
                    if time.monotonic() > deadline:
                        raise FetchError(url, f"page took longer than {self.timeout_s * TOTAL_TIME_FACTOR:g} s "
                                              f"to arrive{where}")
                return response.status_code, response.headers, b"".join(pieces)[:cap]
        except AddressRefused as exc:
            raise FetchError(url, f"{exc}{where}") from None
        except httpx.TimeoutException:
            raise FetchError(url, f"no answer within {self.timeout_s:g} s (NEWSBOT_FETCH_TIMEOUT_S){where}") from None
        except httpx.HTTPError as exc:
            detail = " ".join(str(exc).split())[:160] or type(exc).__name__
            raise FetchError(url, f"cannot fetch ({detail}){where}") from None
