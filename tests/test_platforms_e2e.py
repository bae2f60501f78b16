"""Issue 4's acceptance: the demo's accounts pointed at the fake platform server.

One account per platform whose fake declares ``account`` (X and Facebook, and
each platform added since), from the fake server's registry.
`verify` passes, `once` publishes the demo's new articles to every platform,
`status` shows their platform ids; an auth failure pauses only its account.
"""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fakes import X_USERNAME, fake_api, platforms  # noqa: F401  (fixture)

from bot.adapters import UnavailablePlatform, adapter_class
from bot.cli import main

ROOT = Path(__file__).resolve().parents[1]
NAMES = {"twitter": "newsroom-x", "facebook": "newsroom-fb"}


def available(name: str) -> bool:
    try:
        adapter_class(name)
    except UnavailablePlatform:
        return False   # a platform being written right now
    return True


# Every platform whose fake says how to configure an account against it.
PLATFORMS = {name: p for name, p in sorted(platforms().items()) if p.account and available(name)}


def accounts_for(url: str, platforms=PLATFORMS) -> list[dict]:
    """One account per platform against the fake server at ``url``."""
    return [{"name": NAMES.get(name, f"newsroom-{name}"), **p.account(url)}
            for name, p in platforms.items()]


def demo_config(tmp_path, monkeypatch, accounts: list[dict], route: dict | None = None) -> str:
    """The demo config with ``accounts`` (JSON is YAML) and ``route`` (default:
    the demo feed to all of them), the platforms' credentials in the environment."""
    shutil.copytree(ROOT / "config", tmp_path / "config")
    path = tmp_path / "config" / "demo.yaml"
    demo = path.read_text()
    route = route or {"feeds": ["example-news"], "accounts": [a["name"] for a in accounts]}
    path.write_text(demo[:demo.index("accounts:")]
                    + f"accounts: {json.dumps(accounts)}\nroutes: [{json.dumps(route)}]\n")
    for p in PLATFORMS.values():
        for name, value in p.env.items():
            monkeypatch.setenv(name, value)
    return str(path)


@pytest.fixture
def config(tmp_path, fake_api, monkeypatch):
    return demo_config(tmp_path, monkeypatch, accounts_for(fake_api.url))


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_verify_once_and_status_against_the_fake_platforms(config, fake_api, capsys):
    code, out, _ = run(capsys, "--config", config, "verify")
    assert code == 0, out
    assert f"@{X_USERNAME}" in out and "newsroom-fb (facebook): posting as" in out
    for name, p in PLATFORMS.items():
        assert p.contract is None or p.contract.verify_names in out, name

    code, _, err = run(capsys, "--config", config, "once")
    assert code == 0, err
    posts = fake_api.posts
    assert sorted(p["platform"] for p in posts) == sorted([*PLATFORMS] * 2)
    seed_x = next(p for p in posts if p["platform"] == "twitter" and "US Woos Russia" in p["text"])
    assert "Over the past months" in seed_x["text"] and "Connect with us" not in seed_x["text"]
    seed_fb = next(p for p in posts if p["platform"] == "facebook" and "US Woos Russia" in p["text"])
    assert seed_fb["link"] == "https://news.example.org/world/2016/04/us-woos-russia-for-one-call"

    code, out, _ = run(capsys, "--config", config, "status")
    for name in PLATFORMS:
        assert f"{NAMES.get(name, f'newsroom-{name}')} ({name}): sent 2" in out
    for post in posts:
        assert f"id {post['id']}" in out

    run(capsys, "--config", config, "once")
    assert len(fake_api.posts) == 2 * len(PLATFORMS), "nothing is posted twice"


def test_auth_failure_pauses_one_account_and_the_other_goes_on(config, fake_api, capsys):
    fake_api.script("401", path="/2/tweets")
    code, _, err = run(capsys, "--config", config, "once")
    assert code == 0
    assert "account newsroom-x: paused" in err and "run_bot.py resume newsroom-x" in err
    assert sorted(p["platform"] for p in fake_api.posts) == sorted(
        [n for n in PLATFORMS if n != "twitter"] * 2)
    code, out, _ = run(capsys, "--config", config, "status")
    assert "PAUSED" in out and "2 post(s) wait until the account is resumed" in out
    run(capsys, "--config", config, "resume", "newsroom-x")
    run(capsys, "--config", config, "once")
    assert sorted(p["platform"] for p in fake_api.posts) == sorted([*PLATFORMS] * 2)


def test_a_try_that_waits_for_its_retry_fails_the_once_run(config, fake_api, capsys):
    fake_api.script("503", path="/2/tweets")
    code, _, err = run(capsys, "--config", config, "once")
    assert code == 1, "monitoring sees a platform failing before the attempts run out"
    assert "account newsroom-x: post" in err and "retry 1 of" in err
    assert sorted(p["platform"] for p in fake_api.posts) == sorted(
        [n for n in PLATFORMS if n != "twitter"] * 2), "the X account backs off, the others post"


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
