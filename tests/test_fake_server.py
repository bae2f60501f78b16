"""The fake X/Graph server runs standalone for chaos tests."""
from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import requests

from fakes import PAGE_ID, PAGE_TOKEN, fake_api  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parent.parent
AUTH = {"Authorization": f"Bearer {PAGE_TOKEN}"}


@pytest.fixture
def standalone():
    """Start ``python -m tests.fakes.server`` with the given flags; yield its base URL."""
    procs = []

    def start(*flags: str) -> str:
        proc = subprocess.Popen([sys.executable, "-W", "error", "-m", "tests.fakes.server",
                                 "--port", "0", *flags], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        procs.append(proc)
        return f"http://127.0.0.1:{int(proc.stdout.readline())}"
    yield start
    for proc in procs:
        proc.terminate()
        assert proc.wait(timeout=5) == 0
        assert proc.stderr.read() == "", "no warning (runpy's RuntimeWarning was one)"


def test_graph_feed_pages_with_cursors_and_next(standalone):
    url = standalone()
    for n in range(3):
        requests.post(f"{url}/v24.0/{PAGE_ID}/feed", data={"message": f"post {n}"},
                      headers=AUTH, timeout=5)
    page = requests.get(f"{url}/v24.0/{PAGE_ID}/feed", params={"limit": 2, "since": 0},
                        headers=AUTH, timeout=5).json()
    assert [e["message"] for e in page["data"]] == ["post 2", "post 1"]
    assert set(page["paging"]["cursors"]) == {"before", "after"}
    assert page["paging"]["next"].startswith(f"https://graph.facebook.com/v24.0/{PAGE_ID}/feed?")
    query = dict(parse_qsl(urlsplit(page["paging"]["next"]).query))
    last = requests.get(f"{url}/v24.0/{PAGE_ID}/feed", params=query, timeout=5).json()
    assert [e["message"] for e in last["data"]] == ["post 0"] and "next" not in last["paging"]
    future = int(time.time()) + 60
    empty = requests.get(f"{url}/v24.0/{PAGE_ID}/feed", params={"since": future},
                         headers=AUTH, timeout=5).json()
    assert empty == {"data": []}


def test_chaos_5xx_and_the_request_log(standalone, tmp_path):
    log = tmp_path / "fake.jsonl"
    url = standalone("--fail-5xx", "1.0", "--seed", "3", "--log", str(log))
    answer = requests.get(f"{url}/v24.0/me", headers=AUTH, timeout=5)
    assert answer.status_code >= 500
    assert requests.get(f"{url}/_fake/posts", timeout=5).json() == []
    line = json.loads(log.read_text().splitlines()[0])
    assert line["path"] == "/v24.0/me" and line["fault"] in ("500", "502", "503")


def test_slow_accept_records_the_post_before_answering(standalone):
    url = standalone("--slow-accept", "1.0", "--slow-seconds", "0.5",
                     "--page", "200000000000002:second-page-token:Second Page")
    started = time.monotonic()
    with pytest.raises(requests.Timeout):
        requests.post(f"{url}/v24.0/200000000000002/feed", data={"message": "hi"},
                      headers={"Authorization": "OAuth second-page-token"}, timeout=(2, 0.2))
    [post] = requests.get(f"{url}/_fake/posts", timeout=5).json()
    assert (post["platform"], post["account"], post["text"]) == (
        "facebook", "200000000000002", "hi")
    assert time.monotonic() - started < 2


def test_raw_answers_are_sent_as_scripted(fake_api):  # noqa: F811
    fake_api.script("raw", status=418, body=b"teapot", headers={"X-Odd": "1"}, content_type=None)
    answer = requests.get(f"{fake_api.url}/v24.0/me", headers=AUTH, timeout=5)
    assert (answer.status_code, answer.content, answer.headers["x-odd"]) == (418, b"teapot", "1")
    assert "content-type" not in answer.headers
    assert answer.headers["connection"] == "close"


def test_a_cut_answer_announces_more_than_it_sends(fake_api):  # noqa: F811
    fake_api.script("cut", at=10)
    with pytest.raises(requests.exceptions.ChunkedEncodingError):
        requests.get(f"{fake_api.url}/v24.0/me", headers=AUTH, timeout=5)


def test_a_trickled_answer_comes_a_byte_at_a_time_after_the_post_is_kept(fake_api):  # noqa: F811
    fake_api.script("trickle", seconds=0.02)
    started = time.monotonic()
    answer = requests.post(f"{fake_api.url}/v24.0/{PAGE_ID}/feed", data={"message": "hi"},
                           headers=AUTH, timeout=(2, 0.5))
    assert answer.json()["id"] == fake_api.posts[0]["id"]
    assert time.monotonic() - started > 0.02 * len(answer.content) * 0.8
