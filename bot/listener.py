"""A small HTTP listener for operators: ``/healthz``, ``/metrics`` and what
later issues add, served from a daemon thread with the standard library.

Routes are a dict from a key to a handler. A key is a path (``/metrics``,
answering GET and HEAD) or a method and a path (``POST /ping/<feed>``); a
``<name>`` segment matches one path segment and reaches the handler in
``request.params``. A handler takes a ``Request`` and returns
``(status, content_type, body)`` or ``(status, content_type, body, headers)``
(``Set-Cookie``, ``Location``...). Request headers, cookies and bodies are
never logged (they carry credentials) and a body is refused beyond
``max_body`` bytes.
"""
from __future__ import annotations

import logging
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, unquote, urlsplit

from bot.errors import ConfigError

log = logging.getLogger(__name__)
MAX_BODY = 64 * 1024
TIMEOUT = 10.0  # seconds a client may take to send its request: no thread is held forever
TEXT = "text/plain; charset=utf-8"
MAX_FIELDS = 100  # form fields per body; more and the body reads as no form at all
# Headers the listener writes itself; a handler's own are added after them.
OWN_HEADERS = frozenset({"content-type", "content-length"})


@dataclass(frozen=True)
class Request:
    """One HTTP request as a handler sees it."""

    method: str
    path: str
    query: Mapping[str, list[str]] = field(default_factory=dict)
    headers: Mapping[str, str] = field(default_factory=dict, repr=False)
    body: bytes = field(default=b"", repr=False)
    params: Mapping[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        """A request header by name, whatever its case; None when absent."""
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)

    @property
    def cookies(self) -> Mapping[str, str]:
        """The cookies of the ``Cookie`` header, by name (the first of a name
        wins). Parsed by hand: http.cookies drops every cookie after one it
        dislikes, and browsers send what other sites on the host set too."""
        found: dict[str, str] = {}
        for part in (self.header("Cookie") or "").split(";"):
            name, sep, value = part.strip().partition("=")
            if sep and name and name not in found:
                found[name] = value.strip().strip('"')
        return found

    def form(self) -> dict[str, str]:
        """The fields of an ``application/x-www-form-urlencoded`` body (the
        first value of each name, blanks kept); {} for any other body."""
        kind = (self.header("Content-Type") or "").split(";")[0].strip().lower()
        if kind != "application/x-www-form-urlencoded":
            return {}
        text = self.body.decode("utf-8", "replace")
        try:
            fields = parse_qs(text, keep_blank_values=True, max_num_fields=MAX_FIELDS)
        except ValueError:   # too many fields: nobody's form
            return {}
        return {name: values[0] for name, values in fields.items()}


Response = tuple[int, str, bytes] | tuple[int, str, bytes, Mapping[str, str]]
Handler = Callable[[Request], Response]


@dataclass(frozen=True)
class Route:
    methods: frozenset[str]
    segments: tuple[str, ...]
    handler: Handler

    @classmethod
    def parse(cls, key: str, handler: Handler) -> Route:
        method, _, path = key.rpartition(" ")
        methods = frozenset({method.upper()} if method else {"GET", "HEAD"})
        if method.upper() == "GET":
            methods |= {"HEAD"}
        return cls(methods, _segments(path), handler)

    def match(self, segments: tuple[str, ...]) -> dict[str, str] | None:
        if len(segments) != len(self.segments):
            return None
        params = {}
        for pattern, part in zip(self.segments, segments):
            if pattern.startswith("<") and pattern.endswith(">") and part:
                params[pattern[1:-1]] = part
            elif pattern != part:
                return None
        return params


def _segments(path: str) -> tuple[str, ...]:
    return tuple(unquote(s) for s in path.strip("/").split("/")) if path.strip("/") else ()


class Listener:
    """Serves ``routes`` on ``host``:``port`` (port 0: any free port, read
    ``.port`` after ``start()``) until ``stop()``."""

    def __init__(self, host: str = "127.0.0.1", port: int = 0,
                 routes: Mapping[str, Handler] | None = None, *, max_body: int = MAX_BODY):
        self.host, self.port = host, port
        self.routes = [Route.parse(key, handler) for key, handler in (routes or {}).items()]
        self.max_body = max_body
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    def start(self) -> None:
        """Bind and serve in a daemon thread. Raises ConfigError when the
        address cannot be had (in use, not ours, unknown host)."""
        try:
            self._server = _Server((self.host, self.port), _handler_class(self))
        except OSError as exc:
            raise ConfigError(f"http_listen: cannot listen on {self.host}:{self.port} "
                              f"({exc.strerror or exc})") from None
        self.port = self._server.server_address[1]
        # A short poll interval: stop() (SIGTERM, SIGHUP changing the address) waits for it.
        self._thread = threading.Thread(target=self._server.serve_forever, args=(0.1,),
                                        name="herald-http", daemon=True)
        self._thread.start()
        log.info("listening on http://%s:%d (/healthz, /metrics)", _shown_host(self.host), self.port)

    def stop(self) -> None:
        """Stop serving and close the socket; a request in flight may finish."""
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)
        self._server = self._thread = None

    def dispatch(self, request: Request) -> Response:
        """The answer to ``request``: its route's, else 404 or 405."""
        segments = _segments(request.path)
        for route in self.routes:
            params = route.match(segments)
            if params is not None and request.method in route.methods:
                return route.handler(replace(request, params=params))
        if allowed := self.allowed(request.path):
            return 405, TEXT, f"method not allowed; use {allowed}\n".encode()
        return 404, TEXT, b"not found\n"

    def allowed(self, path: str) -> str:
        """The methods ``path`` answers, as an Allow header says them ("" if none)."""
        segments = _segments(path)
        methods = set().union(*(r.methods for r in self.routes if r.match(segments) is not None))
        return ", ".join(sorted(methods))


class _Server(ThreadingHTTPServer):
    daemon_threads = True  # a stuck client never blocks shutdown

    def __init__(self, address, handler):
        # The family follows the host, so "::1" and "localhost" work as well.
        self.address_family = socket.getaddrinfo(address[0], address[1], type=socket.SOCK_STREAM)[0][0]
        super().__init__(address, handler)

    def handle_error(self, request, client_address) -> None:
        # A client that hung up or timed out: not worth a traceback on stderr.
        log.debug("http: connection from a client ended with an error", exc_info=True)


def _handler_class(listener: Listener) -> type[BaseHTTPRequestHandler]:
    class _Handler(_RequestHandler):
        pass
    _Handler.listener = listener
    return _Handler


class _RequestHandler(BaseHTTPRequestHandler):
    listener: Listener
    server_version = "Herald"
    sys_version = ""
    timeout = TIMEOUT
    # Malformed requests get the library's error page: plain, short, no HTML.
    error_message_format = "%(code)d %(message)s\n"
    error_content_type = TEXT

    def do_GET(self) -> None:
        self._answer()

    do_HEAD = do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = do_GET

    def _answer(self) -> None:
        body = self._body()
        if isinstance(body, tuple):
            self._send(*body)
            return
        url = urlsplit(self.path)
        request = Request(self.command, url.path, parse_qs(url.query), dict(self.headers.items()), body)
        try:
            answer = self.listener.dispatch(request)
            headers = _checked_headers(answer[3] if len(answer) == 4 else {})
        except Exception:
            log.exception("http %s %s: handler failed", self.command, url.path)
            answer, headers = (500, TEXT, b"internal error\n"), {}
        self._send(*answer[:3], headers)

    def _body(self) -> bytes | Response:
        """The request body, or the error answer when it is refused."""
        if "Transfer-Encoding" in self.headers:
            return 411, TEXT, b"send a Content-Length\n"
        length = self.headers.get("Content-Length", "0")
        if not length.isdigit():
            return 400, TEXT, b"bad Content-Length\n"
        if int(length) > self.listener.max_body:
            return 413, TEXT, b"request body too large\n"
        return self.rfile.read(int(length)) if int(length) else b""

    def _send(self, status: int, content_type: str, body: bytes,
              headers: Mapping[str, str] | None = None) -> None:
        extra = dict(headers or {})
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for name, default in (("Cache-Control", "no-store"), ("X-Content-Type-Options", "nosniff")):
            self.send_header(name, extra.pop(name, default))
        if status == 405:
            self.send_header("Allow", self.listener.allowed(urlsplit(self.path).path))
        for name, value in extra.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(body)

    def log_request(self, code="-", size="-") -> None:
        # The path only: no query string, no header is ever written to the log.
        # A malformed request has no path: its error answer is logged too.
        path = urlsplit(getattr(self, "path", "") or "").path[:200]
        log.debug("http %s %s -> %s", self.command or "-", path or "-", code)

    def log_message(self, format: str, *args) -> None:
        # Only malformed requests get here (send_error); their raw request
        # line may hold anything, so it is not written.
        log.debug("http: a malformed request was refused")


def _checked_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """A handler's extra headers; one that would split the answer (a line
    break, from a value built from a request) raises instead of being sent."""
    checked = {}
    for name, value in headers.items():
        if any(c in f"{name}{value}" for c in "\r\n\0") or not name or ":" in name:
            raise ValueError("a response header with a line break or a bad name")
        if name.lower() not in OWN_HEADERS:
            checked[name] = value
    return checked


def _shown_host(host: str) -> str:
    return f"[{host}]" if ":" in host else host


def operator_routes(health: Callable[[], tuple[bool, str]],
                    render: Callable[[], tuple[bytes, str]]) -> dict[str, Handler]:
    """The routes of issue 10: ``/healthz`` and ``/metrics``."""
    return {"/healthz": health_route(health), "/metrics": metrics_route(render)}


def health_route(health: Callable[[], tuple[bool, str]]) -> Handler:
    """``/healthz``: 200 "ok" while ``health()`` says so, else 503 and its
    reason on one line. A health check that raises is a 503 too."""
    def handle(request: Request) -> Response:
        try:
            ok, reason = health()
        except Exception as exc:
            ok, reason = False, f"health check failed: {type(exc).__name__}"
        if ok:
            return 200, TEXT, b"ok\n"
        line = " ".join(str(reason or "unhealthy").split())[:300]
        return 503, TEXT, (line + "\n").encode("utf-8", "replace")
    return handle


def metrics_route(render: Callable[[], tuple[bytes, str]]) -> Handler:
    """``/metrics``: whatever ``render()`` gives (Metrics.render)."""
    def handle(request: Request) -> Response:
        body, content_type = render()
        return 200, content_type, body
    return handle
