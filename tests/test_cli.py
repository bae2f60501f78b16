"""Every command of run_bot.py, end to end on local feeds with the console platform."""
from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from bot.cli import main
from bot.lock import InstanceLock

ROOT = Path(__file__).resolve().parents[1]
SEED_SENTENCE = "Over the past months, the United States and Russia appeared to be in rift"
FURNITURE = ["Connect with us", "Video:", "Also Read", "About Jereco", "To Top"]


@pytest.fixture
def demo(tmp_path) -> Path:
    """A copy of the bundled demo config, its feed and a database in tmp_path."""
    shutil.copytree(ROOT / "config", tmp_path / "config")
    return tmp_path / "config" / "demo.yaml"


def run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_once_on_the_demo_posts_the_seed_article_then_nothing(demo, capsys):
    code, out, err = run(capsys, "--config", str(demo), "once")
    assert code == 0, err
    (post,) = [p for p in out.split("--- ") if "US Woos Russia" in p]
    assert post.splitlines()[1].startswith(f"US Woos Russia For ‘One Call’: {SEED_SENTENCE}")
    assert "https://news.example.org/world/2016/04/us-woos-russia-for-one-call" in post
    assert not any(f in out for f in FURNITURE)
    assert "first sight" in err
    code, out, err = run(capsys, "--config", str(demo), "once")
    assert code == 0 and out == "", "a second run posts nothing new"


def test_first_sight_of_a_20_item_feed_posts_nothing(tmp_path, capsys):
    items = "".join(f"<item><title>Item {n}</title><link>https://e.example/{n}</link>"
                    f"<description>Body of item {n}.</description></item>" for n in range(20))
    (tmp_path / "feed.xml").write_text(f"<rss version='2.0'><channel><title>t</title>{items}</channel></rss>")
    (tmp_path / "herald.yaml").write_text(
        "feeds: [{name: big, url: feed.xml, fetch_article: never}]\n"
        "accounts: [{name: c, platform: console}]\nroutes: [{feeds: [big], accounts: [c]}]\n")
    code, out, err = run(capsys, "--config", str(tmp_path / "herald.yaml"), "once")
    assert code == 0 and out == ""
    assert "first sight, 20 items recorded as seen, 0 queued" in err


def test_broken_config_prints_one_line_per_problem_and_exits_2(tmp_path, capsys):
    (tmp_path / "herald.yaml").write_text(
        "feeds: [{name: a, url: a.xml, every: often}]\n"
        "accounts: [{name: c, platform: myspace}]\nroutes: [{feeds: [b], accounts: [c]}]\n")
    code, out, err = run(capsys, "--config", str(tmp_path / "herald.yaml"), "once")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 3
    assert all(line.startswith("config error: ") for line in lines)
    assert not (tmp_path / "data").exists(), "nothing is created for a broken config"


def test_check_config_prints_a_summary(demo, capsys):
    code, out, _ = run(capsys, "--config", str(demo), "check-config")
    assert code == 0 and "example-news" in out and "newsroom-x: console" in out


def test_status_shows_feeds_counts_and_recent_posts(demo, capsys):
    run(capsys, "--config", str(demo), "once")
    code, out, _ = run(capsys, "--config", str(demo), "status")
    assert code == 1 and out.startswith("no service running"), "once is not a running service"
    assert "example-news: last fetch" in out and "ok" in out
    assert "newsroom-x (console): sent 2" in out
    assert "recent posts:" in out and "id console-" in out


def test_preview_shows_length_and_limit_and_records_nothing(demo, capsys):
    code, out, _ = run(capsys, "--config", str(demo), "preview", "--limit", "1")
    assert code == 0 and "=== US Woos Russia" in out
    assert "--- newsroom-x (" in out and "/280)" in out
    code, out, _ = run(capsys, "--config", str(demo), "once")
    assert "US Woos Russia" in out, "preview recorded nothing, so the post is still made"


def test_preview_json_of_a_feed_file(demo, capsys):
    code, out, _ = run(capsys, "--config", str(demo), "preview", "--json",
                       str(demo.parent / "demo" / "feed.xml"))
    first = json.loads(out.splitlines()[0])
    assert first["title"] == "US Woos Russia For ‘One Call’"
    assert first["lead"].startswith(SEED_SENTENCE)
    assert first["posts"]["newsroom-x"]["length"] <= 280


def test_dry_run_prints_but_leaves_posts_pending(demo, capsys):
    code, out, _ = run(capsys, "--config", str(demo), "--dry-run", "once")
    assert code == 0 and "US Woos Russia" in out
    code, out, _ = run(capsys, "--config", str(demo), "status")
    assert "newsroom-x (console): pending 2" in out


def test_retry_skip_and_resume(demo, capsys):
    run(capsys, "--config", str(demo), "--dry-run", "once")
    code, out, _ = run(capsys, "--config", str(demo), "skip", "1")
    assert code == 0 and "post 1 (newsroom-x) skipped: " in out
    code, out, _ = run(capsys, "--config", str(demo), "retry", "1")
    assert code == 0 and "post 1 (newsroom-x) queued again: " in out
    code, out, _ = run(capsys, "--config", str(demo), "retry", "--account", "newsroom-x")
    assert code == 1 and "newsroom-x has no failed posts" in out
    code, out, _ = run(capsys, "--config", str(demo), "resume", "newsroom-x")
    assert code == 0
    code, _, err = run(capsys, "--config", str(demo), "resume", "nobody")
    assert code == 2 and "unknown account" in err


def test_verify_console_account(demo, capsys):
    code, out, _ = run(capsys, "--config", str(demo), "verify")
    assert code == 0 and out.startswith("ok    newsroom-x")


def test_a_second_herald_on_the_same_database_refuses_to_start(demo, capsys):
    lock = InstanceLock(f"sqlite:///{demo.parent.parent / 'data' / 'demo.db'}")
    lock.acquire()
    try:
        code, out, err = run(capsys, "--config", str(demo), "once")
    finally:
        lock.release()
    assert code == 1 and out == ""
    assert "demo.db is in use by another Herald (pid" in err


def test_help_everywhere(capsys):
    for command in ([], ["run"], ["once"], ["preview"], ["status"], ["retry"], ["verify"]):
        with pytest.raises(SystemExit) as info:
            main([*command, "--help"])
        assert info.value.code == 0
    assert "check-config" in capsys.readouterr().out


def test_service_stops_cleanly_on_sigterm(demo):
    proc = subprocess.Popen([sys.executable, str(ROOT / "run_bot.py"), "--config", str(demo), "run"],
                            cwd=demo.parent.parent, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, env={**os.environ, "PYTHONPATH": str(ROOT)})
    try:
        deadline = time.monotonic() + 30
        seen = ""
        while "post sent" not in seen and time.monotonic() < deadline:
            seen += proc.stderr.readline()
        assert "post sent" in seen, seen
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=30) == 0
        assert "Herald stopped" in proc.stderr.read()
    finally:
        proc.kill()


def test_preview_runs_the_whole_pipeline_on_a_saved_page(demo, capsys):
    page = ROOT / "tests" / "data" / "pages" / "news-en.html"
    code, out, _ = run(capsys, "--config", str(demo), "preview", "--json", "--html", str(page),
                       "--url", "https://news.example.org/saved")
    article = json.loads(out)
    assert code == 0 and article["title"] and len(article["lead"].split()) >= 8
    post = article["posts"]["newsroom-x"]
    assert post["length"] <= post["limit"] == 280 and article["url"] in post["text"]


def test_preview_schedule_lists_the_next_24_hours(demo, capsys):
    run(capsys, "--config", str(demo), "--dry-run", "once")
    code, out, _ = run(capsys, "--config", str(demo), "preview", "--schedule")
    assert code == 0 and out.startswith("newsroom-x: 2 post(s) in the next 24 h")


def test_check_config_masks_tokens_and_passwords_in_urls(tmp_path, capsys):
    (tmp_path / "herald.yaml").write_text(
        "database: postgresql+psycopg://herald:hunter2-secret@db.example/herald\n"
        "feeds: [{name: f, url: 'https://news.example/rss?token=abc123secret&x=1'}]\n"
        "accounts: [{name: c, platform: console}]\nroutes: [{feeds: [f], accounts: [c]}]\n")
    code, out, err = run(capsys, "--config", str(tmp_path / "herald.yaml"), "check-config")
    assert code == 0, err
    assert "abc123secret" not in out + err and "hunter2-secret" not in out + err
    assert "https://news.example/rss?token=***" in out
