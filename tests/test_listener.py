"""The operator's HTTP listener, served for real on 127.0.0.1 and asked with
an HTTP client: routes, health, methods, limits, and what it never logs."""
from __future__ import annotations

import logging
import socket

import pytest
import requests

from bot.errors import ConfigError
from bot.listener import TEXT, Listener, Request, health_route, operator_routes

SECRET = "Bearer hunter2-SECRET"


@pytest.fixture
def serve():
    """serve(routes, **options) -> base URL of a started listener."""
    started: list[Listener] = []

    def start(routes, **options) -> str:
        listener = Listener("127.0.0.1", 0, routes, **options)
        listener.start()
        started.append(listener)
        return f"http://127.0.0.1:{listener.port}"
    yield start
    for listener in started:
        listener.stop()


def render():
    return b"herald_up 1\n", "text/plain; version=0.0.4; charset=utf-8"


def test_healthz_is_200_ok_while_healthy(serve):
    base = serve(operator_routes(lambda: (True, "scheduler running"), render))
    answer = requests.get(f"{base}/healthz", timeout=5)
    assert (answer.status_code, answer.text) == (200, "ok\n")


def test_healthz_is_503_with_a_one_line_reason(serve):
    base = serve(operator_routes(lambda: (False, "database: disk full\nretrying"), render))
    answer = requests.get(f"{base}/healthz", timeout=5)
    assert (answer.status_code, answer.text) == (503, "database: disk full retrying\n")


def test_a_health_check_that_raises_is_a_503_without_its_message(serve):
    def health():
        raise RuntimeError(f"connect failed: password={SECRET}")
    answer = requests.get(f"{serve(operator_routes(health, render))}/healthz", timeout=5)
    assert answer.status_code == 503
    assert answer.text == "health check failed: RuntimeError\n"


def test_metrics_route_serves_the_render(serve):
    answer = requests.get(f"{serve(operator_routes(lambda: (True, ''), render))}/metrics", timeout=5)
    assert answer.status_code == 200
    assert answer.text == "herald_up 1\n"
    assert answer.headers["Content-Type"] == "text/plain; version=0.0.4; charset=utf-8"


def test_unknown_path_is_404_and_wrong_method_is_405_with_allow(serve):
    base = serve(operator_routes(lambda: (True, ""), render))
    assert requests.get(f"{base}/nope", timeout=5).status_code == 404
    assert requests.get(f"{base}/metrics/extra", timeout=5).status_code == 404
    answer = requests.post(f"{base}/metrics", data=b"x", timeout=5)
    assert answer.status_code == 405 and answer.headers["Allow"] == "GET, HEAD"


def test_head_answers_headers_without_a_body(serve):
    answer = requests.head(f"{serve(operator_routes(lambda: (True, ''), render))}/metrics", timeout=5)
    assert answer.status_code == 200 and answer.content == b""
    assert answer.headers["Content-Length"] == str(len(b"herald_up 1\n"))


def test_a_route_with_a_method_and_a_parameter(serve):
    seen: list[Request] = []

    def ping(request: Request):
        seen.append(request)
        return 202, "text/plain", b"pinged " + request.params["feed"].encode()
    base = serve({"POST /ping/<feed>": ping})
    answer = requests.post(f"{base}/ping/le%20monde?x=1", data=b"hello", timeout=5)
    assert (answer.status_code, answer.text) == (202, "pinged le monde")
    (request,) = seen
    assert (request.method, request.body, request.query) == ("POST", b"hello", {"x": ["1"]})
    assert requests.get(f"{base}/ping/le-monde", timeout=5).status_code == 405
    assert requests.post(f"{base}/ping/", timeout=5).status_code == 404, "a parameter is never empty"


def test_a_body_over_the_cap_is_refused_unread(serve):
    calls = []
    base = serve({"POST /in": lambda r: calls.append(r) or (200, "text/plain", b"")}, max_body=100)
    assert requests.post(f"{base}/in", data=b"x" * 101, timeout=5).status_code == 413
    assert requests.post(f"{base}/in", data=b"x" * 100, timeout=5).status_code == 200
    chunked = requests.post(f"{base}/in", data=iter([b"x"]), timeout=5)  # no Content-Length
    assert chunked.status_code == 411
    assert len(calls) == 1


def test_a_failing_handler_is_a_500_and_the_listener_goes_on(serve, caplog):
    def boom(request):
        raise ValueError("bug")
    base = serve({"/boom": boom, **operator_routes(lambda: (True, ""), render)})
    assert requests.get(f"{base}/boom", timeout=5).status_code == 500
    assert requests.get(f"{base}/healthz", timeout=5).status_code == 200
    assert "handler failed" in caplog.text


def test_request_headers_and_query_never_reach_the_log(serve, caplog):
    caplog.set_level(logging.DEBUG, logger="bot.listener")
    base = serve(operator_routes(lambda: (True, ""), render))
    for path in ("/metrics", "/nope", "/metrics"):
        requests.get(f"{base}{path}?token={SECRET}", headers={"Authorization": SECRET}, timeout=5)
    with socket.create_connection(("127.0.0.1", int(base.rsplit(":", 1)[1])), timeout=5) as raw:
        raw.sendall(f"BROKEN /{SECRET} NONSENSE\r\n\r\n".encode())  # a malformed request line
        answer = b"".join(iter(lambda: raw.recv(1000), b""))
    assert answer.startswith(b"400 Bad request"), "answered (HTTP/0.9 style: no version was given)"
    assert "http GET /metrics -> 200" in caplog.text, "requests are logged, by path"
    ours = "\n".join(r.getMessage() for r in caplog.records if r.name.startswith("bot"))
    assert "hunter2" not in ours  # (the test's own HTTP client, urllib3, may log its URL)


def test_port_zero_picks_a_free_port_and_stop_frees_it():
    listener = Listener(routes=operator_routes(lambda: (True, ""), render))
    assert listener.host == "127.0.0.1", "loopback unless told otherwise"
    listener.start()
    port = listener.port
    assert port > 0
    assert requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5).status_code == 200
    listener.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
    listener.stop()  # twice is harmless


def test_a_port_in_use_is_a_config_error_naming_the_address():
    first = Listener(routes={})
    first.start()
    try:
        with pytest.raises(ConfigError, match=rf"http_listen: cannot listen on 127.0.0.1:{first.port}"):
            Listener("127.0.0.1", first.port, {}).start()
    finally:
        first.stop()


def test_request_repr_hides_headers_and_body():
    request = Request("GET", "/x", headers={"Authorization": SECRET}, body=SECRET.encode())
    assert "hunter2" not in repr(request)


def test_health_route_as_a_plain_function():
    assert health_route(lambda: (False, ""))(Request("GET", "/healthz"))[:2] == (503, "text/plain; charset=utf-8")


def test_a_handler_sets_headers_and_redirects(serve):
    def login(request: Request):
        return 303, "text/plain", b"", {"Location": "/desk", "Set-Cookie": "s=1; HttpOnly",
                                        "Cache-Control": "private, no-store"}
    base = serve({"POST /login": login})
    answer = requests.post(f"{base}/login", allow_redirects=False, timeout=5)
    assert answer.status_code == 303 and answer.headers["Location"] == "/desk"
    assert answer.headers["Set-Cookie"] == "s=1; HttpOnly"
    assert answer.headers["Cache-Control"] == "private, no-store", "a handler's own replaces the default"
    assert answer.headers["X-Content-Type-Options"] == "nosniff"


def test_a_header_with_a_line_break_is_never_sent(serve, caplog):
    base = serve({"/split": lambda r: (302, TEXT, b"", {"Location": "/x\r\nSet-Cookie: evil=1"})})
    answer = requests.get(f"{base}/split", allow_redirects=False, timeout=5)
    assert answer.status_code == 500 and "evil" not in str(answer.headers)


def test_cookies_and_form_fields_reach_the_handler(serve):
    seen: list[Request] = []
    base = serve({"POST /form": lambda r: seen.append(r) or (204, TEXT, b"")})
    requests.post(f"{base}/form", data={"text": "Été & co=1", "empty": "", "csrf": "abc"},
                  headers={"Cookie": 'a=1; broken; b="two"; a=again; ='}, timeout=5)
    (request,) = seen
    assert request.cookies == {"a": "1", "b": "two"}
    assert request.form() == {"text": "Été & co=1", "empty": "", "csrf": "abc"}
    assert "Été" not in repr(request) and "a=1" not in repr(request)


def test_a_body_that_is_not_a_form_has_no_fields():
    json_body = Request("POST", "/x", headers={"content-type": "application/json"}, body=b"a=1")
    assert json_body.form() == {}
    crowded = Request("POST", "/x", headers={"Content-Type": "application/x-www-form-urlencoded"},
                      body=b"&".join(b"f%d=1" % i for i in range(500)))
    assert crowded.form() == {}, "too many fields: none"
    assert Request("GET", "/x").cookies == {}
