"""Fetching over HTTP with the limits a poller of untrusted URLs needs.

``HttpClient.get`` applies a total deadline (body included), a size cap that
also bounds decompression, redirects followed by hand, conditional GET, and an
optional address guard against server-side request forgery. Every failure is a
``FeedError`` with a short reason that never contains the URL (the caller names
the feed; URLs may carry tokens).

Nothing here is global: the session, the clocks and the resolver are passed in,
so one client can serve many feeds polled from several threads.
"""
from __future__ import annotations

import base64
import http.client
import ipaddress
import re
import socket
import ssl
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from email.utils import parsedate_to_datetime
from pathlib import Path
from types import MappingProxyType
from urllib.parse import unquote, urlencode, urljoin, urlsplit

import certifi
import urllib3
from urllib3.exceptions import (ConnectTimeoutError, LocationParseError, LocationValueError,
                                NameResolutionError, NewConnectionError, ReadTimeoutError, SSLError)

from bot.config import HttpSettings
from bot.errors import FeedError

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
DEFAULT_PORTS = {"http": 80, "https": 443}

PERMANENT = (301, 308)
REDIRECTS = (301, 302, 303, 307, 308)
CHUNK = 64 * 1024
# An unread body up to this size is read and dropped so the connection goes
# back to the pool: a 304 or an error page must not cost the next poll a new
# TCP and TLS handshake. A larger one is cheaper to hang up on.
DRAIN_BYTES = 64 * 1024
METADATA = frozenset(ipaddress.ip_address(a) for a in ("169.254.169.254", "fd00:ec2::254"))
HTML_TYPES = ("text/html", "application/xhtml+xml")
PAGE_ACCEPT = "text/html,application/xhtml+xml;q=0.9,*/*;q=0.5"
MEDIA_ACCEPT = "image/*,video/*;q=0.8"
# Hosts whose keep-alive connections are kept (least recently used go first):
# ten thousand feeds mostly live on far fewer hosts.
POOLS = 512
_CHARSET = re.compile(r"""(?:^|;)\s*charset\s*=\s*["']?([^"';\s]+)""", re.I)


@dataclass(frozen=True)
class Response:
    """A fetched answer. ``url`` is the final URL after redirects, without
    credentials (it is the base of the feed's links); ``permanent_url`` is set
    only when every redirect on the way was permanent (301/308), so the caller
    may remember the move (with the feed's own credentials while they still go
    there: the next poll needs them; never with a Location's). A 304 has an
    empty body."""

    url: str
    status: int
    headers: Mapping[str, str]
    body: bytes
    permanent_url: str | None


def new_pools(ca_certs: str | None = None) -> urllib3.PoolManager:
    """Keep-alive connection pools, one per (scheme, address, port, name),
    verifying TLS against certifi's bundle (as requests did) unless told
    another. urllib3 reads no proxy from the environment: a proxy would
    resolve names itself and defeat the guard's pin."""
    return urllib3.PoolManager(num_pools=POOLS, maxsize=4, ca_certs=ca_certs or certifi.where(),
                               retries=False)


class HttpClient:
    """Fetches URLs under ``settings``' limits. Thread-safe (urllib3's pools are)."""

    def __init__(
        self,
        settings: HttpSettings,
        pools: urllib3.PoolManager | None = None,
        *,
        monotonic: Callable[[], float] = time.monotonic,
        resolve: Callable[..., list] = socket.getaddrinfo,
        clock: Callable[[], datetime] = lambda: datetime.now(timezone.utc),
    ):
        self.settings = settings
        self.pools = pools if pools is not None else new_pools()
        self._monotonic = monotonic
        self._resolve = resolve
        self._clock = clock
        self._allow_names, self._allow_nets = _split_allow(settings.allow_hosts)

    # ------------------------------------------------------------ public

    def get(self, url: str, *, etag: str | None = None, last_modified: str | None = None,
            guard: bool = True, accept: str | None = None) -> Response:
        """GET ``url``, following up to ``settings.max_redirects`` redirects.

        Returns the final answer for 2xx and 304 (empty body). Raises FeedError
        for timeouts (including the total deadline), bodies over the size cap,
        too many redirects, refused addresses (``guard=True``), network errors
        and any other status (``retry_after`` from Retry-After on 429/503,
        ``gone=True`` on 410)."""
        start = self._monotonic()
        headers = self._headers(etag, last_modified, accept)
        auth, userinfo = _basic_auth(url), _userinfo(url)
        permanent = True
        for hop in range(self.settings.max_redirects + 1):
            resp = self._send(url, {**headers, **auth}, guard, start)
            if resp.status not in REDIRECTS or "location" not in resp.headers:
                # A move is remembered with the feed's own credentials while
                # they still go to the new address (the next poll needs them).
                moved = _with_userinfo(url, userinfo) if auth else url
                return self._finish(resp, _public(url), moved if hop and permanent else None,
                                    start)
            self._release(resp, start)
            permanent = permanent and resp.status in PERMANENT
            url, auth = _redirected(url, resp.headers["location"], auth)
        raise FeedError("too many redirects")

    def get_page(self, url: str) -> bytes:
        """The HTML of an article page found in a feed (guarded). Raises
        FeedError for failures, non-2xx answers and non-HTML content."""
        def is_html(kind: str, body: bytes) -> bool:
            return kind in HTML_TYPES or (not kind and _looks_like_html(body))
        return self._get_kind(url, PAGE_ACCEPT, is_html, "an HTML page")

    def get_media(self, url: str) -> bytes:
        """An image or video linked from a feed or page (guarded), for adapters
        that upload media. Raises FeedError for failures, non-2xx answers and
        content that is not an image or a video."""
        def is_media(kind: str, _body: bytes) -> bool:
            return kind.startswith(("image/", "video/"))
        return self._get_kind(url, MEDIA_ACCEPT, is_media, "an image or video")

    def _get_kind(self, url: str, accept: str, wanted: Callable[[str, bytes], bool],
                  label: str) -> bytes:
        """A guarded 2xx body whose content type ``wanted`` accepts."""
        resp = self.get(url, guard=True, accept=accept)
        kind = resp.headers.get("content-type", "").split(";")[0].strip().lower()
        if not 200 <= resp.status < 300:
            raise FeedError(f"HTTP {resp.status}")
        if not wanted(kind, resp.body):
            raise FeedError(f"not {label} ({kind or 'no content type'})")
        return resp.body

    def post_form(self, url: str, fields: Mapping[str, str]) -> int:
        """POST ``fields`` as a form to ``url`` and return the answer's status,
        for a WebSub hub. Guarded as a page fetch is (a feed named the URL:
        a hostile one must not make Herald post into the private network),
        and no redirect is followed (a hub that moves gets no secret re-sent
        elsewhere). Raises FeedError for refused addresses and failures."""
        start = self._monotonic()
        headers = {"User-Agent": self.settings.user_agent,
                   "Content-Type": "application/x-www-form-urlencoded"}
        resp = self._send(url, headers, True, start, method="POST",
                          body=urlencode(fields).encode("ascii"))
        self._release(resp, start)
        return resp.status

    def read_local(self, path: str | Path) -> bytes:
        """The bytes of a local file, refused beyond the size cap."""
        cap = self.settings.max_bytes
        try:
            with open(path, "rb") as fh:
                body = fh.read(cap + 1)
        except OSError as exc:
            raise FeedError(f"cannot read file: {exc.strerror or exc}") from exc
        if len(body) > cap:
            raise FeedError(f"file larger than {_size(cap)}")
        return body

    # ------------------------------------------------------------ one hop

    def _headers(self, etag, last_modified, accept) -> dict[str, str]:
        headers = {"User-Agent": self.settings.user_agent,
                   "Accept-Encoding": "gzip, deflate"}
        if accept:
            headers["Accept"] = accept
        if etag:
            headers["If-None-Match"] = etag
        if last_modified:
            headers["If-Modified-Since"] = last_modified
        return headers

    def _send(self, url: str, headers: dict, guard: bool, start: float, *, method: str = "GET",
              body: bytes | None = None) -> urllib3.BaseHTTPResponse:
        """One request on a pooled keep-alive connection. With ``guard`` it
        goes to the address the guard checked, not to a second DNS answer
        (rebinding cannot swap in a private one); TLS still verifies the
        certificate against, and sends SNI for, the host name."""
        self._check_deadline(start)
        parts = _split(url)
        name = _ascii_host(parts.hostname)
        host, extra = name, {}
        if guard:
            host = self._check_host(parts.hostname, parts.port)
            headers = {**headers, "Host": _host_header(name, parts.port)}
            if parts.scheme == "https":
                extra = {"server_hostname": name, "assert_hostname": name}
        target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        timeout = urllib3.Timeout(connect=self.settings.connect_timeout, read=self._read_timeout(start))
        try:
            pool = self.pools.connection_from_host(host, parts.port, parts.scheme, pool_kwargs=extra)
            return pool.urlopen(method, target, body=body, headers=headers, timeout=timeout,
                                redirect=False, retries=False, preload_content=False,
                                assert_same_host=False)
        except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError, ValueError) as exc:
            raise FeedError(self._network_reason(exc, start)) from exc

    def _finish(self, resp: urllib3.BaseHTTPResponse, url: str, moved: str | None,
                start: float) -> Response:
        try:
            self._raise_for_status(resp)
            body = b"" if resp.status == 304 else self._read_body(resp, start)
        finally:
            self._release(resp, start)
        return Response(url=url, status=resp.status,
                        headers=MappingProxyType(resp.headers.copy()), body=body,
                        permanent_url=moved)

    def _release(self, resp: urllib3.BaseHTTPResponse, start: float) -> None:
        """Give the connection back to the pool if what is left of the body is
        small and arrives within the deadline; hang up otherwise."""
        left = DRAIN_BYTES
        try:
            while left > 0 and self._monotonic() - start < self.settings.deadline:
                self._tighten_socket(resp, start)
                chunk = resp.read1(min(CHUNK, left), decode_content=True)
                if not chunk:
                    resp.release_conn()  # read to the end: the connection is reusable
                    return
                left -= len(chunk)
        except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError):
            pass  # a broken connection is closed below, never reused
        resp.close()   # closes the connection too: the pool opens a new one when needed
        resp.release_conn()

    def _raise_for_status(self, resp: urllib3.BaseHTTPResponse) -> None:
        status = resp.status
        if 200 <= status < 300 or status == 304:
            return
        if status == 410:
            raise FeedError("HTTP 410 (gone)", gone=True)
        retry = None
        if status in (429, 503):
            retry = self._retry_after(resp.headers.get("retry-after"), resp.headers.get("date"))
        raise FeedError(f"HTTP {status}", retry_after=retry)

    # ------------------------------------------------------------ the body

    def _read_body(self, resp: urllib3.BaseHTTPResponse, start: float) -> bytes:
        cap = self.settings.max_bytes
        declared = resp.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > cap:
            raise FeedError(f"body larger than {_size(cap)}")
        chunks, total = [], 0
        while True:
            self._check_deadline(start)
            self._tighten_socket(resp, start)
            chunk = self._read_chunk(resp, start)
            if not chunk:
                return b"".join(chunks)
            total += len(chunk)
            if total > cap:
                raise FeedError(f"body larger than {_size(cap)}")
            chunks.append(chunk)

    def _read_chunk(self, resp: urllib3.BaseHTTPResponse, start: float) -> bytes:
        # read1 returns what one socket read gives, so a trickling server is seen
        # chunk by chunk; decoding is bounded by ``CHUNK`` per call (urllib3 2.6+),
        # which keeps a decompression bomb within the cap.
        try:
            return resp.read1(CHUNK, decode_content=True)
        except urllib3.exceptions.DecodeError as exc:
            raise FeedError("body could not be decompressed") from exc
        except (urllib3.exceptions.HTTPError, http.client.HTTPException, OSError) as exc:
            raise FeedError(self._network_reason(exc, start)) from exc

    def _tighten_socket(self, resp: urllib3.BaseHTTPResponse, start: float) -> None:
        # The read timeout alone would let a slow body run past the deadline; every
        # read is therefore bounded by whatever time the deadline has left.
        sock = getattr(getattr(resp, "connection", None), "sock", None)
        if sock is not None:
            sock.settimeout(self._read_timeout(start))

    def _read_timeout(self, start: float) -> float:
        left = self.settings.deadline - (self._monotonic() - start)
        return max(0.01, min(self.settings.read_timeout, left))

    def _check_deadline(self, start: float) -> None:
        if self._monotonic() - start >= self.settings.deadline:
            raise FeedError(f"timed out after {self.settings.deadline:g} s")

    # ------------------------------------------------------------ reasons

    def _network_reason(self, exc: BaseException, start: float) -> str:
        # Reads are bounded by the time left, so a timeout at the end of the
        # deadline is the deadline's (allow for timer granularity).
        if self._monotonic() - start >= self.settings.deadline - 0.05:
            return f"timed out after {self.settings.deadline:g} s"
        if isinstance(exc, ConnectTimeoutError) and not isinstance(exc, NewConnectionError):
            return f"connection timed out after {self.settings.connect_timeout:g} s"
        if isinstance(exc, ReadTimeoutError) or _caused_by(exc, (TimeoutError, socket.timeout)):
            return f"no answer within {self.settings.read_timeout:g} s"
        if isinstance(exc, SSLError) or _caused_by(exc, (ssl.SSLError,)):
            return "TLS error"
        if isinstance(exc, NameResolutionError) or _caused_by(exc, (socket.gaierror,)):
            return "host name not found"
        if _caused_by(exc, (ConnectionRefusedError,)):
            return "connection refused"
        if _caused_by(exc, (http.client.IncompleteRead,)):
            return "body cut short"
        if _caused_by(exc, (http.client.RemoteDisconnected, ConnectionResetError)):
            return "connection closed by the server"
        if isinstance(exc, LocationParseError | LocationValueError | UnicodeError):
            return "invalid URL"
        return f"connection failed ({type(exc).__name__})"

    def _retry_after(self, value: str | None, date: str | None) -> float | None:
        if not value:
            return None
        value = value.strip()
        if value.isdigit():
            return float(value)
        when = _http_date(value)
        if when is None:
            return None
        # Measure against the server's own clock when it sent one: skew cancels out.
        now = _http_date(date) if date else None
        return max(0.0, (when - (now or self._clock())).total_seconds())

    # ------------------------------------------------------------ the guard

    def _check_host(self, host: str | None, port: int | None) -> str:
        """Resolve ``host`` once, refuse non-public addresses, return the one to use."""
        if not host:
            raise FeedError("invalid URL")
        named = host.lower().rstrip(".") in self._allow_names
        addresses = _literal(host) or self._lookup(host, port)
        for address in addresses:
            # Every answer must pass: a resolver may list a public and a private one.
            why = None if named or self._allowed(address) else refusal(address)
            if why:
                raise FeedError(f"refused: {address} is {why}")
        return str(addresses[0])

    def _lookup(self, host: str, port: int | None) -> list[IpAddress]:
        try:
            infos = self._resolve(host, port or 80, type=socket.SOCK_STREAM)
            addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
        except (OSError, UnicodeError, ValueError) as exc:
            raise FeedError("host name not found") from exc
        if not addresses:
            raise FeedError("host name not found")
        return addresses

    def _allowed(self, address: IpAddress) -> bool:
        plain = _unmapped(address)
        return any(plain in net for net in self._allow_nets if net.version == plain.version)


def refusal(address: IpAddress) -> str | None:
    """Why ``address`` must not be fetched from a feed's link, or None if it is public."""
    address = _unmapped(address)
    checks = (
        (address in METADATA, "a cloud metadata address"),
        (address.is_loopback, "a loopback address"),
        (address.is_link_local, "a link-local address"),
        (address.is_multicast, "a multicast address"),
        (address.is_unspecified, "an unspecified address"),
        (address.is_private, "a private address"),
        (address.is_reserved, "a reserved address"),
        (not address.is_global, "not a public address"),
    )
    return next((why for hit, why in checks if hit), None)


# ---------------------------------------------------------------- helpers


def content_charset(headers: Mapping[str, str]) -> str | None:
    """The charset parameter of ``headers``' Content-Type (any key case), or None."""
    kind = next((v for k, v in headers.items() if k.lower() == "content-type"), "")
    match = _CHARSET.search(kind or "")
    return match[1] if match else None




def _unmapped(address: IpAddress) -> IpAddress:
    if isinstance(address, ipaddress.IPv6Address):
        return address.ipv4_mapped or address.sixtofour or address
    return address


def _literal(host: str) -> list[IpAddress]:
    try:
        return [ipaddress.ip_address(host.strip("[]").split("%")[0])]
    except ValueError:
        return []


def _split_allow(entries) -> tuple[frozenset[str], tuple]:
    names, nets = set(), []
    for entry in entries:
        try:
            nets.append(ipaddress.ip_network(entry.strip(), strict=False))
        except ValueError:
            names.add(entry.strip().lower().rstrip("."))
    return frozenset(names), tuple(nets)


def _ascii_host(host: str) -> str:
    """The host as it goes on the wire: an internationalised name in IDNA."""
    try:
        return host.encode("idna").decode("ascii") if not host.isascii() else host
    except UnicodeError as exc:
        raise FeedError("invalid URL") from exc


def _split(url: str):
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 -- raises ValueError for a bad port
    except ValueError as exc:
        raise FeedError("invalid URL") from exc
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise FeedError("invalid URL")
    return parts


def _next_url(current: str, location: str) -> str:
    url = urljoin(current, location.strip())
    _split(url)
    return url


def _redirected(current: str, location: str, auth: dict[str, str]) -> tuple[str, dict[str, str]]:
    """The next hop's URL and Authorization header. Credentials from the feed's
    URL (``https://user:token@host/feed``) go on only to the same host as
    requests' ``should_strip_auth`` decides (same scheme and port, or http to
    https on the default ports); never to another host, never from a Location
    (a hostile server could name any)."""
    url = _public(_next_url(current, location))
    return url, auth if auth and _keeps_auth(urlsplit(current), urlsplit(url)) else {}


def _keeps_auth(old, new) -> bool:
    if old.hostname != new.hostname:
        return False
    if (old.scheme, new.scheme) == ("http", "https"):
        return old.port in (80, None) and new.port in (443, None)
    defaults = (DEFAULT_PORTS.get(old.scheme), None)
    return old.scheme == new.scheme and (old.port == new.port
                                         or (old.port in defaults and new.port in defaults))


def _basic_auth(url: str) -> dict[str, str]:
    """The Authorization header for credentials in ``url``, or none (RFC 7617:
    latin-1 as requests sends it, UTF-8 for what latin-1 cannot hold)."""
    parts = urlsplit(url)
    user, password = unquote(parts.username or ""), unquote(parts.password or "")
    if not (user or password):
        return {}
    pair = f"{user}:{password}"
    try:
        raw = pair.encode("latin-1")
    except UnicodeEncodeError:
        raw = pair.encode("utf-8")
    return {"Authorization": "Basic " + base64.b64encode(raw).decode("ascii")}


def _userinfo(url: str) -> str:
    """The credentials part of ``url`` as written (still percent-encoded), or ""."""
    netloc = urlsplit(url).netloc
    return netloc.rpartition("@")[0] if "@" in netloc else ""


def _with_userinfo(url: str, userinfo: str) -> str:
    if not userinfo:
        return url
    parts = urlsplit(url)
    return parts._replace(netloc=f"{userinfo}@{parts.netloc}").geturl()


def _public(url: str) -> str:
    """``url`` without its credentials: the base of the feed's relative links
    and what is logged or posted must never carry a token."""
    parts = urlsplit(url)
    if "@" not in parts.netloc:
        return url
    return parts._replace(netloc=parts.netloc.rpartition("@")[2]).geturl()


def _host_header(name: str, port: int | None) -> str:
    """The Host header for an ASCII host name or address (IPv6 in brackets)."""
    host = f"[{name}]" if ":" in name else name
    return f"{host}:{port}" if port else host


def _http_date(value: str) -> datetime | None:
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    return when if when.tzinfo else when.replace(tzinfo=timezone.utc)


def _caused_by(exc: BaseException, kinds: tuple) -> bool:
    seen = set()
    while exc is not None and id(exc) not in seen:
        if isinstance(exc, kinds):
            return True
        seen.add(id(exc))
        exc = exc.__cause__ or exc.__context__ or _wrapped(exc)
    return False


def _wrapped(exc: BaseException) -> BaseException | None:
    # urllib3 wraps the lower error as an argument, not always as the cause.
    reason = getattr(exc, "reason", None)
    if isinstance(reason, BaseException):
        return reason
    return next((arg for arg in exc.args if isinstance(arg, BaseException)), None)


def _looks_like_html(body: bytes) -> bool:
    head = body[:1024].lstrip().lower()
    return head.startswith((b"<!doctype html", b"<html"))


def _size(n: int) -> str:
    if n >= 1_000_000:
        return f"{n / 1_000_000:g} MB"
    if n >= 1_000:
        return f"{n / 1_000:g} kB"
    return f"{n} bytes"
