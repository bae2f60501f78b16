"""bot/http.py against servers on 127.0.0.1: conditional GET, redirects,
status handling, back-off hints and the address guard."""
from __future__ import annotations

import base64
import ipaddress
import shutil
import ssl
import subprocess
import threading
from datetime import datetime, timedelta, timezone
from email.utils import format_datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from werkzeug import Response

from bot.config import HttpSettings
from bot.errors import FeedError
from bot.http import HttpClient, _host_header, content_charset, new_pools, refusal
from feed_servers import fake_resolver

RSS = b'<rss version="2.0"><channel><title>t</title></channel></rss>'
LOOPBACK = ("127.0.0.0/8",)


def client(**settings) -> HttpClient:
    return HttpClient(HttpSettings(**settings))


# ---------------------------------------------------------------- basics


def test_sends_user_agent_accept_and_returns_body(httpserver):
    httpserver.expect_request(
        "/feed", headers={"User-Agent": HttpSettings().user_agent, "Accept": "x/y"}
    ).respond_with_data(RSS, content_type="application/rss+xml")
    resp = client().get(httpserver.url_for("/feed"), guard=False, accept="x/y")
    assert (resp.status, resp.body, resp.permanent_url) == (200, RSS, None)
    assert resp.headers["content-type"] == "application/rss+xml"
    assert resp.url == httpserver.url_for("/feed")


def test_etag_and_last_modified_round_trip_to_304(httpserver):
    lm = "Wed, 25 Nov 2026 10:00:00 GMT"
    httpserver.expect_ordered_request("/feed").respond_with_data(
        RSS, headers={"ETag": '"v1"', "Last-Modified": lm})
    httpserver.expect_ordered_request(
        "/feed", headers={"If-None-Match": '"v1"', "If-Modified-Since": lm}
    ).respond_with_data(b"", status=304)
    http = client()
    first = http.get(httpserver.url_for("/feed"), guard=False)
    second = http.get(httpserver.url_for("/feed"), guard=False,
                      etag=first.headers["etag"], last_modified=first.headers["last-modified"])
    assert (second.status, second.body) == (304, b"")
    httpserver.check_assertions()


def test_gzip_body_is_decoded(httpserver):
    import gzip
    httpserver.expect_request("/feed").respond_with_data(
        gzip.compress(RSS), headers={"Content-Encoding": "gzip"})
    assert client().get(httpserver.url_for("/feed"), guard=False).body == RSS


# ---------------------------------------------------------------- redirects


def redirect(httpserver, path, target, status):
    httpserver.expect_request(path).respond_with_data(
        b"", status=status, headers={"Location": target})


@pytest.mark.parametrize("status", [301, 308])
def test_permanent_redirect_is_remembered(httpserver, status):
    redirect(httpserver, "/old", "/mid", status)
    redirect(httpserver, "/mid", httpserver.url_for("/new"), 301)
    httpserver.expect_request("/new").respond_with_data(RSS)
    resp = client().get(httpserver.url_for("/old"), guard=False)
    assert resp.body == RSS
    assert resp.url == resp.permanent_url == httpserver.url_for("/new")


@pytest.mark.parametrize("status", [302, 303, 307])
def test_temporary_redirect_is_followed_not_remembered(httpserver, status):
    redirect(httpserver, "/old", "/new", status)
    httpserver.expect_request("/new").respond_with_data(RSS)
    resp = client().get(httpserver.url_for("/old"), guard=False)
    assert (resp.body, resp.url, resp.permanent_url) == (RSS, httpserver.url_for("/new"), None)


def test_mixed_chain_is_not_remembered(httpserver):
    redirect(httpserver, "/a", "/b", 301)
    redirect(httpserver, "/b", "/c", 302)
    httpserver.expect_request("/c").respond_with_data(RSS)
    assert client().get(httpserver.url_for("/a"), guard=False).permanent_url is None


def test_redirect_limit_is_counted(httpserver):
    for i in range(3):
        redirect(httpserver, f"/r{i}", f"/r{i + 1}", 302)
    httpserver.expect_request("/r3").respond_with_data(RSS)
    assert client(max_redirects=3).get(httpserver.url_for("/r0"), guard=False).body == RSS
    with pytest.raises(FeedError, match="^too many redirects$"):
        client(max_redirects=2).get(httpserver.url_for("/r0"), guard=False)


# ---------------------------------------------------------------- status codes


def test_410_is_gone(httpserver):
    httpserver.expect_request("/feed").respond_with_data(b"bye", status=410)
    with pytest.raises(FeedError) as info:
        client().get(httpserver.url_for("/feed"), guard=False)
    assert info.value.gone and info.value.reason == "HTTP 410 (gone)"


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_seconds(httpserver, status):
    httpserver.expect_request("/feed").respond_with_data(
        b"", status=status, headers={"Retry-After": "120"})
    with pytest.raises(FeedError) as info:
        client().get(httpserver.url_for("/feed"), guard=False)
    assert (info.value.reason, info.value.retry_after, info.value.gone) == (
        f"HTTP {status}", 120.0, False)


@pytest.mark.parametrize("status", [429, 503])
def test_retry_after_date_is_measured_against_server_date(httpserver, status):
    # The werkzeug server stamps its own Date; our clock is set a day off to
    # show that the server's Date, not ours, is the reference.
    later = format_datetime(datetime.now(timezone.utc) + timedelta(seconds=300), usegmt=True)
    httpserver.expect_request("/feed").respond_with_data(
        b"", status=status, headers={"Retry-After": later})
    skewed = HttpClient(HttpSettings(), clock=lambda: datetime.now(timezone.utc) - timedelta(days=1))
    with pytest.raises(FeedError) as info:
        skewed.get(httpserver.url_for("/feed"), guard=False)
    assert 298 <= info.value.retry_after <= 300


def test_retry_after_date_without_server_date_uses_the_clock():
    http = HttpClient(HttpSettings(), clock=lambda: datetime(2026, 11, 26, 12, tzinfo=timezone.utc))
    assert http._retry_after("Thu, 26 Nov 2026 12:01:30 GMT", None) == 90.0
    assert http._retry_after("Thu, 26 Nov 2026 11:00:00 GMT", None) == 0.0
    assert http._retry_after("soon", None) is None


def test_500_has_no_retry_hint(httpserver):
    httpserver.expect_request("/feed").respond_with_data(b"oops", status=500)
    with pytest.raises(FeedError) as info:
        client().get(httpserver.url_for("/feed"), guard=False)
    assert (info.value.reason, info.value.retry_after) == ("HTTP 500", None)


def test_reasons_never_carry_the_url(httpserver):
    httpserver.expect_request("/feed").respond_with_data(b"", status=404)
    with pytest.raises(FeedError) as info:
        client().get(httpserver.url_for("/feed") + "?token=s3cret", guard=False)
    assert "s3cret" not in str(info.value) and "127.0.0.1" not in str(info.value)


def test_connection_refused_is_a_feed_error():
    with pytest.raises(FeedError, match="^connection refused$"):
        client().get("http://127.0.0.1:1/feed?token=s3cret", guard=False)


# ---------------------------------------------------------------- get_page, read_local


def test_get_page_wants_html(httpserver):
    httpserver.expect_request("/a").respond_with_data(b"<html></html>", content_type="text/html")
    httpserver.expect_request("/img").respond_with_data(b"\x89PNG", content_type="image/png")
    http = HttpClient(HttpSettings(allow_hosts=LOOPBACK))
    assert http.get_page(httpserver.url_for("/a")) == b"<html></html>"
    with pytest.raises(FeedError, match=r"^not an HTML page \(image/png\)$"):
        http.get_page(httpserver.url_for("/img"))


def test_get_media_wants_images(httpserver):
    httpserver.expect_request("/img").respond_with_data(b"\x89PNG", content_type="image/png")
    httpserver.expect_request("/a").respond_with_data(b"<html></html>", content_type="text/html")
    http = HttpClient(HttpSettings(allow_hosts=LOOPBACK))
    assert http.get_media(httpserver.url_for("/img")) == b"\x89PNG"
    with pytest.raises(FeedError, match=r"^not an image or video \(text/html\)$"):
        http.get_media(httpserver.url_for("/a"))
    with pytest.raises(FeedError, match="loopback"):
        client().get_media(httpserver.url_for("/img"))


def test_get_page_is_guarded(httpserver):
    with pytest.raises(FeedError, match="loopback"):
        client().get_page(httpserver.url_for("/a"))


def test_read_local_caps_size(tmp_path):
    small, big = tmp_path / "small.xml", tmp_path / "big.xml"
    small.write_bytes(RSS)
    big.write_bytes(b"x" * 2001)
    http = client(max_bytes=2000)
    assert http.read_local(small) == RSS
    with pytest.raises(FeedError, match="^file larger than 2 kB$"):
        http.read_local(big)
    with pytest.raises(FeedError, match="^cannot read file: No such file"):
        http.read_local(tmp_path / "missing.xml")


# ---------------------------------------------------------------- the address guard


@pytest.mark.parametrize("address, why", [
    ("127.0.0.1", "a loopback address"),
    ("::1", "a loopback address"),
    ("10.0.0.5", "a private address"),
    ("192.168.1.1", "a private address"),
    ("172.16.0.1", "a private address"),
    ("fd12::1", "a private address"),
    ("169.254.169.254", "a cloud metadata address"),
    ("fd00:ec2::254", "a cloud metadata address"),
    ("169.254.10.10", "a link-local address"),
    ("fe80::1", "a link-local address"),
    ("224.0.0.1", "a multicast address"),
    ("0.0.0.0", "an unspecified address"),
    ("240.0.0.1", "a private address"),  # Python counts 240/4 as private (reserved)
    ("100.64.0.1", "not a public address"),
    ("::ffff:10.0.0.5", "a private address"),
    ("93.184.216.34", None),
    ("2606:2800:220:1:248:1893:25c8:1946", None),
])
def test_refusal_table(address, why):
    assert refusal(ipaddress.ip_address(address)) == why


@pytest.mark.parametrize("url, table, reason", [
    ("http://127.0.0.1:8/x", {}, "refused: 127.0.0.1 is a loopback address"),
    ("http://[::1]:8/x", {}, "refused: ::1 is a loopback address"),
    ("http://169.254.169.254/latest/meta-data/", {}, "refused: 169.254.169.254 is a cloud metadata address"),
    ("http://intranet.test/x", {"intranet.test": "10.0.0.5"}, "refused: 10.0.0.5 is a private address"),
    ("http://meta.test/x", {"meta.test": "fd00:ec2::254"}, "refused: fd00:ec2::254 is a cloud metadata address"),
    ("http://ll.test/x", {"ll.test": "169.254.1.1"}, "refused: 169.254.1.1 is a link-local address"),
    ("http://nowhere.test/x", {}, "host name not found"),
])
def test_guard_refuses_before_connecting(url, table, reason):
    http = HttpClient(HttpSettings(), resolve=fake_resolver(table))
    with pytest.raises(FeedError) as info:
        http.get(url)
    assert info.value.reason == reason


def test_guard_refuses_if_any_answer_is_private():
    def resolve(host, port, **kw):
        return [(2, 1, 6, "", ("93.184.216.34", port)), (2, 1, 6, "", ("10.1.2.3", port))]
    with pytest.raises(FeedError, match="10.1.2.3 is a private"):
        HttpClient(HttpSettings(), resolve=resolve).get("http://mixed.test/")


def test_guard_off_fetches_loopback(httpserver):
    httpserver.expect_request("/feed").respond_with_data(RSS)
    assert client().get(httpserver.url_for("/feed"), guard=False).body == RSS


@pytest.mark.parametrize("target", [
    "http://169.254.169.254/latest/meta-data/",
    "http://intranet.test/admin",
    "http://[::1]/x",
])
def test_guard_checks_every_redirect(httpserver, target):
    # The first hop is allowed (allow_hosts), the redirect target is not.
    redirect(httpserver, "/go", target, 302)
    http = HttpClient(HttpSettings(allow_hosts=("127.0.0.1",)),
                      resolve=fake_resolver({"localhost": "127.0.0.1", "intranet.test": "10.0.0.5"}))
    with pytest.raises(FeedError, match="^refused: "):
        http.get(httpserver.url_for("/go"))


def test_allow_hosts_by_cidr_and_name(httpserver):
    httpserver.expect_request("/feed").respond_with_data(RSS)
    by_net = HttpClient(HttpSettings(allow_hosts=("127.0.0.0/8",)))
    assert by_net.get(httpserver.url_for("/feed")).body == RSS
    by_name = HttpClient(HttpSettings(allow_hosts=("Intranet.Test",)),
                         resolve=fake_resolver({"intranet.test": "127.0.0.1"}))
    assert by_name.get(f"http://intranet.test:{httpserver.port}/feed").body == RSS
    other = HttpClient(HttpSettings(allow_hosts=("intranet.test",)),
                       resolve=fake_resolver({"other.test": "127.0.0.1"}))
    with pytest.raises(FeedError, match="loopback"):
        other.get(f"http://other.test:{httpserver.port}/feed")


def test_guarded_fetch_connects_to_the_checked_address(httpserver):
    # news.test exists only in our resolver: the request can only arrive if the
    # client connects to the address it checked instead of resolving again.
    httpserver.expect_request("/feed", headers={"Host": f"news.test:{httpserver.port}"}
                              ).respond_with_data(RSS)
    http = HttpClient(HttpSettings(allow_hosts=LOOPBACK),
                      resolve=fake_resolver({"news.test": "127.0.0.1"}))
    resp = http.get(f"http://news.test:{httpserver.port}/feed")
    assert (resp.body, resp.url) == (RSS, f"http://news.test:{httpserver.port}/feed")


def test_guarded_fetch_sends_an_international_name_as_idna(httpserver):
    httpserver.expect_request("/feed", headers={"Host": f"xn--bcher-kva.test:{httpserver.port}"}
                              ).respond_with_data(RSS)
    http = HttpClient(HttpSettings(allow_hosts=LOOPBACK),
                      resolve=fake_resolver({"bücher.test": "127.0.0.1"}))
    assert http.get(f"http://Bücher.test:{httpserver.port}/feed").body == RSS


def test_host_header_brackets_an_ipv6_address():
    assert _host_header("::1", 8080) == "[::1]:8080"
    assert _host_header("news.test", None) == "news.test"


def _recording(seen: list, name: str, location: str | None = None):
    def handler(request):
        seen.append((name, request.headers.get("Authorization")))
        if location:
            return Response("", status=302, headers={"Location": location})
        return Response(RSS)
    return handler


@pytest.mark.parametrize("guard", [False, True])
def test_credentials_in_the_url_go_as_basic_auth_to_that_host_only(httpserver, guard):
    port, seen = httpserver.port, []
    httpserver.expect_request("/a").respond_with_handler(_recording(seen, "a", "/b"))
    httpserver.expect_request("/b").respond_with_handler(
        _recording(seen, "b", f"http://127.0.0.1:{port}/c"))
    httpserver.expect_request("/c").respond_with_handler(_recording(seen, "c"))
    http = HttpClient(HttpSettings(allow_hosts=LOOPBACK),
                      resolve=fake_resolver({"localhost": "127.0.0.1"}))
    resp = http.get(f"http://ed%40desk:s3cr%3At@localhost:{port}/a", guard=guard)
    token = "Basic " + base64.b64encode(b"ed@desk:s3cr:t").decode()
    assert resp.body == RSS
    assert seen == [("a", token), ("b", token), ("c", None)]


def test_the_answer_s_url_carries_no_credentials(httpserver):
    # It is the base of the feed's relative links, which are posted.
    httpserver.expect_request("/a").respond_with_handler(_recording([], "a", "/b"))
    httpserver.expect_request("/b").respond_with_data(RSS)
    resp = client().get(f"http://ed:s3cret@localhost:{httpserver.port}/a", guard=False)
    assert resp.url == f"http://localhost:{httpserver.port}/b"


@pytest.mark.parametrize("location", ["http://%FF@localhost:{port}/b",
                                      "http://mallory:x@localhost:{port}/b"])
def test_credentials_in_a_location_are_never_sent(httpserver, location):
    seen = []
    httpserver.expect_request("/a").respond_with_handler(
        _recording(seen, "a", location.format(port=httpserver.port)))
    httpserver.expect_request("/b").respond_with_handler(_recording(seen, "b"))
    assert client().get(httpserver.url_for("/a"), guard=False).body == RSS
    assert seen == [("a", None), ("b", None)]


@pytest.mark.parametrize("before, after, kept", [
    ("https://h/feed", "https://h:443/new", True),
    ("http://h/feed", "https://h/new", True),
    ("http://h:8080/feed", "https://h:8080/new", False),
    ("https://h/feed", "http://h/new", False),
    ("https://h/feed", "https://h:8443/new", False),
    ("https://h/feed", "https://other/new", False),
])
def test_credentials_follow_a_redirect_as_requests_decides(before, after, kept):
    from bot.http import _redirected
    auth = {"Authorization": "Basic eDp5"}
    assert _redirected(before, after, auth) == (after, auth if kept else {})


def test_empty_credentials_send_no_header():
    from bot.http import _basic_auth
    assert _basic_auth("https://@h/feed") == {} and _basic_auth("https://:@h/feed") == {}
    assert _basic_auth("https://r%C3%A9dac:%E2%82%AC@h/") == {
        "Authorization": "Basic " + base64.b64encode("rédac:€".encode()).decode()}


def test_rebinding_resolver_gets_one_question(httpserver):
    httpserver.expect_request("/feed").respond_with_data(RSS)
    answers = iter(["127.0.0.1", "10.9.9.9"])
    asked = []

    def rebinding(host, port, **kw):
        asked.append(host)
        return [(2, 1, 6, "", (next(answers), port))]
    http = HttpClient(HttpSettings(allow_hosts=LOOPBACK), resolve=rebinding)
    assert http.get(f"http://rebind.test:{httpserver.port}/feed").body == RSS
    assert asked == ["rebind.test"]


def test_unsupported_scheme_is_refused():
    with pytest.raises(FeedError, match="^invalid URL$"):
        client().get("ftp://example.org/feed", guard=False)


# ---------------------------------------------------------------- TLS with a pinned address


@pytest.fixture
def tls_server(tmp_path):
    """An HTTPS server on 127.0.0.1 whose certificate names only news.test."""
    if not shutil.which("openssl"):
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
                    "-subj", "/CN=news.test", "-addext", "subjectAltName=DNS:news.test",
                    "-keyout", str(key), "-out", str(cert)], check=True, capture_output=True)

    class Echo(BaseHTTPRequestHandler):
        def do_GET(self):
            body = self.headers["Host"].encode()
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Echo)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1], str(cert)
    server.shutdown()
    server.server_close()


def test_pinned_https_verifies_the_host_name(tls_server):
    port, cert = tls_server
    http = HttpClient(HttpSettings(allow_hosts=LOOPBACK), new_pools(ca_certs=cert),
                      resolve=fake_resolver({"news.test": "127.0.0.1", "evil.test": "127.0.0.1"}))
    assert http.get(f"https://news.test:{port}/a").body == f"news.test:{port}".encode()
    with pytest.raises(FeedError, match="^TLS error$"):
        http.get(f"https://evil.test:{port}/a")  # same address, certificate not for this name


def test_deadline_uses_the_injected_monotonic_clock(httpserver):
    # Each look at the clock moves it 10 s: the deadline of 30 s is passed while
    # reading, without the test waiting for it.
    httpserver.expect_request("/feed").respond_with_data(RSS * 100)
    ticks = iter(range(0, 10_000, 10))
    http = HttpClient(HttpSettings(deadline=30), monotonic=lambda: next(ticks))
    with pytest.raises(FeedError, match=r"^timed out after 30 s$"):
        http.get(httpserver.url_for("/feed"), guard=False)


@pytest.mark.parametrize("headers, expected", [
    ({"Content-Type": "application/rss+xml; charset=EUC-KR"}, "EUC-KR"),
    ({"content-type": 'text/xml;charset="utf-8"'}, "utf-8"),
    ({"CONTENT-TYPE": "text/xml; Charset=windows-1252; format=flowed"}, "windows-1252"),
    ({"Content-Type": "application/xml"}, None),
    ({"Content-Type": ""}, None),
    ({}, None),
])
def test_content_charset(headers, expected):
    assert content_charset(headers) == expected


def test_response_headers_give_the_charset(httpserver):
    httpserver.expect_request("/feed").respond_with_data(
        RSS, content_type="application/rss+xml; charset=EUC-KR")
    resp = client().get(httpserver.url_for("/feed"), guard=False)
    assert content_charset(resp.headers) == "EUC-KR"


# ---------------------------------------------------------------- keep-alive


class _Counting(ThreadingHTTPServer):
    """A keep-alive HTTP/1.1 server that counts the TCP connections it accepted."""

    daemon_threads = True

    def __init__(self, handler):
        super().__init__(("127.0.0.1", 0), handler)
        self.connections = 0

    def process_request(self, request, client_address):
        self.connections += 1
        super().process_request(request, client_address)

    def handle_error(self, request, client_address):
        pass  # the client hanging up on a large body is what some tests want


def _handler(status_for, body=b"", extra=()):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802 -- the stdlib's name
            status = status_for(self)
            self.send_response(status)
            for key, value in extra:
                self.send_header(key, value)
            sent = b"" if status == 304 else body
            self.send_header("ETag", '"v1"')
            if status != 304:
                self.send_header("Content-Length", str(len(sent)))
            self.end_headers()
            self.wfile.write(sent)

        def log_message(self, *args):
            pass
    return Handler


@pytest.fixture
def counting():
    servers = []

    def start(status_for, body=b"", extra=()):
        server = _Counting(_handler(status_for, body, extra))
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server, f"http://127.0.0.1:{server.server_address[1]}/feed"
    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def test_conditional_polls_answered_304_share_one_connection(counting):
    def status(handler):
        return 304 if handler.headers.get("If-None-Match") == '"v1"' else 200
    server, url = counting(status, RSS)
    http = client()
    first = http.get(url, guard=False)
    answers = [http.get(url, guard=False, etag=first.headers["etag"]).status for _ in range(20)]
    assert answers == [304] * 20
    assert server.connections == 1


def test_full_bodies_and_small_error_pages_keep_the_connection(counting):
    calls = iter([200, 500, 200, 404, 304, 200])
    server, url = counting(lambda _h: next(calls), RSS * 10)
    http = client()
    outcomes = []
    for _ in range(6):
        try:
            outcomes.append(http.get(url, guard=False).status)
        except FeedError as exc:
            outcomes.append(exc.reason)
    assert outcomes == [200, "HTTP 500", 200, "HTTP 404", 304, 200]
    assert server.connections == 1


def test_a_large_unread_error_body_closes_the_connection(counting):
    server, url = counting(lambda _h: 500, b"x" * (1024 * 1024))
    http = client()
    for _ in range(3):
        with pytest.raises(FeedError, match="^HTTP 500$"):
            http.get(url, guard=False)
    assert server.connections == 3


def test_a_body_over_the_cap_closes_the_connection(counting):
    server, url = counting(lambda _h: 200, b"x" * 200_000)
    http = client(max_bytes=100_000)
    for _ in range(2):
        with pytest.raises(FeedError, match="^body larger than"):
            http.get(url, guard=False)
    assert server.connections == 2


def test_redirect_hops_reuse_the_connection(counting):
    def status(handler):
        return 302 if handler.path == "/feed" else 200
    server, url = counting(status, RSS, extra=(("Location", "/final"),))
    http = client()
    for _ in range(3):
        assert http.get(url, guard=False).body == RSS
    assert server.connections == 1


@pytest.mark.parametrize("location, remembered", [
    ("http://localhost:{port}/new", "http://ed:s3cret@localhost:{port}/new"),
    ("http://mallory:x@localhost:{port}/new", "http://ed:s3cret@localhost:{port}/new"),
    ("/new", "http://ed:s3cret@localhost:{port}/new"),
    ("http://127.0.0.1:{port}/new", "http://127.0.0.1:{port}/new"),
])
def test_a_permanent_move_is_remembered_with_the_feed_s_own_credentials_only(
        httpserver, location, remembered):
    port = httpserver.port
    httpserver.expect_request("/old").respond_with_response(
        Response("", status=301, headers={"Location": location.format(port=port)}))
    httpserver.expect_request("/new").respond_with_data(RSS)
    resp = client().get(f"http://ed:s3cret@localhost:{port}/old", guard=False)
    assert resp.permanent_url == remembered.format(port=port)
    assert "@" not in resp.url
