"""Issue 4's acceptance: the demo's accounts pointed at a fake X/Graph server.

`verify` passes, `once` publishes the demo's new articles to both platforms,
`status` shows their platform ids; an auth failure pauses only its account.
"""
from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from fakes import (PAGE_ID, PAGE_TOKEN, X_ACCESS_SECRET, X_ACCESS_TOKEN, X_CONSUMER_KEY,
                   X_CONSUMER_SECRET, X_USERNAME, fake_api)  # noqa: F401  (fixture)

from bot.cli import main

ROOT = Path(__file__).resolve().parents[1]
ACCOUNTS = """
accounts:
  - name: newsroom-x
    platform: twitter
    api_base_url: {url}
    credentials:
      consumer_key: "${{X_CONSUMER_KEY}}"
      consumer_secret: "${{X_CONSUMER_SECRET}}"
      access_token: "${{X_ACCESS_TOKEN}}"
      access_token_secret: "${{X_ACCESS_TOKEN_SECRET}}"
  - name: newsroom-fb
    platform: facebook
    page_id: "{page}"
    graph_base_url: {url}
    credentials: {{page_access_token: "${{FB_PAGE_TOKEN}}"}}
routes:
  - feeds: [example-news]
    accounts: [newsroom-x, newsroom-fb]
"""


@pytest.fixture
def config(tmp_path, fake_api, monkeypatch):
    shutil.copytree(ROOT / "config", tmp_path / "config")
    path = tmp_path / "config" / "demo.yaml"
    demo = path.read_text()
    path.write_text(demo[:demo.index("accounts:")] + ACCOUNTS.format(url=fake_api.url, page=PAGE_ID))
    for name, value in {"X_CONSUMER_KEY": X_CONSUMER_KEY, "X_CONSUMER_SECRET": X_CONSUMER_SECRET,
                        "X_ACCESS_TOKEN": X_ACCESS_TOKEN, "X_ACCESS_TOKEN_SECRET": X_ACCESS_SECRET,
                        "FB_PAGE_TOKEN": PAGE_TOKEN}.items():
        monkeypatch.setenv(name, value)
    return str(path)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_verify_once_and_status_against_the_fake_platforms(config, fake_api, capsys):
    code, out, _ = run(capsys, "--config", config, "verify")
    assert code == 0, out
    assert f"@{X_USERNAME}" in out and "newsroom-fb (facebook): posting as" in out

    code, _, err = run(capsys, "--config", config, "once")
    assert code == 0, err
    posts = fake_api.posts
    assert sorted(p["platform"] for p in posts) == ["facebook", "facebook", "twitter", "twitter"]
    seed_x = next(p for p in posts if p["platform"] == "twitter" and "US Woos Russia" in p["text"])
    assert "Over the past months" in seed_x["text"] and "Connect with us" not in seed_x["text"]
    seed_fb = next(p for p in posts if p["platform"] == "facebook" and "US Woos Russia" in p["text"])
    assert seed_fb["link"] == "https://news.example.org/world/2016/04/us-woos-russia-for-one-call"

    code, out, _ = run(capsys, "--config", config, "status")
    assert "newsroom-x (twitter): sent 2" in out and "newsroom-fb (facebook): sent 2" in out
    for post in posts:
        assert f"id {post['id']}" in out

    run(capsys, "--config", config, "once")
    assert len(fake_api.posts) == 4, "nothing is posted twice"


def test_auth_failure_pauses_one_account_and_the_other_goes_on(config, fake_api, capsys):
    fake_api.script("401", path="/2/tweets")
    code, _, err = run(capsys, "--config", config, "once")
    assert code == 0
    assert "account newsroom-x: paused" in err and "run_bot.py resume newsroom-x" in err
    assert [p["platform"] for p in fake_api.posts] == ["facebook", "facebook"]
    code, out, _ = run(capsys, "--config", config, "status")
    assert "PAUSED" in out and "2 post(s) wait until the account is resumed" in out
    run(capsys, "--config", config, "resume", "newsroom-x")
    run(capsys, "--config", config, "once")
    assert sorted(p["platform"] for p in fake_api.posts) == ["facebook", "facebook", "twitter", "twitter"]


def test_verify_names_the_account_and_the_reason(config, fake_api, capsys):
    fake_api.script("401", path="/2/users/me")
    code, out, _ = run(capsys, "--config", config, "verify")
    assert code == 1 and "FAIL  newsroom-x (twitter): AuthFailed" in out


def test_sigterm_in_the_middle_of_a_post_finishes_it_commits_and_exits_0(config, fake_api):
    import os
    import signal
    import sqlite3
    import subprocess
    import sys
    import time

    fake_api.script("slow-accept", path="/2/tweets", seconds=3)
    proc = subprocess.Popen([sys.executable, str(ROOT / "run_bot.py"), "--config", config, "run"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 30
        while not any(r["path"] == "/2/tweets" for r in fake_api.requests):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        proc.send_signal(signal.SIGTERM)          # the post is in flight for 3 s more
        assert proc.wait(timeout=30) == 0
    finally:
        proc.kill()
    db = Path(config).parent.parent / "data" / "demo.db"
    with sqlite3.connect(db) as conn:
        ids = {row[0] for row in conn.execute(
            "select platform_id from outbox where account = 'newsroom-x' and status = 'sent'")}
    assert ids and ids <= {p["id"] for p in fake_api.posts}, "the post in flight was recorded"
