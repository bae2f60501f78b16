"""The service as an operator runs it: a real ``run`` process, reloaded with
SIGHUP, talking sd_notify to a socket we hold, heartbeating into the database,
scraped over its HTTP listener; and the exit codes of ``once`` and ``health``."""
from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import requests
from prometheus_client.parser import text_string_to_metric_families

from bot.cli import main

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc:
    """``run_bot.py run`` in a subprocess; its stderr lines collected by a thread."""

    def __init__(self, config: Path, env: dict | None = None):
        self.lines: list[str] = []
        self.proc = subprocess.Popen(
            [sys.executable, "-X", "faulthandler", str(ROOT / "run_bot.py"), "--config", str(config), "run"],
            cwd=config.parent.parent, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
            env={**os.environ, "PYTHONPATH": str(ROOT), **(env or {})})
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stderr:
            self.lines.append(line)

    def wait_for(self, text: str, timeout: float = 90, after: int = 0) -> int:
        """Index of the first line from ``after`` on that contains ``text``."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            for i, line in enumerate(self.lines[after:], after):
                if text in line:
                    return i
            time.sleep(0.05)
        raise AssertionError(f"no {text!r} in:\n{''.join(self.lines)}")

    def stop(self) -> int:
        self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGABRT)   # faulthandler prints every thread
            self.proc.wait(timeout=10)
            raise AssertionError("no exit after SIGTERM:\n" + "".join(self.lines)) from None

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()


@pytest.fixture
def demo(tmp_path) -> Path:
    shutil.copytree(ROOT / "config", tmp_path / "config")
    config = tmp_path / "config" / "demo.yaml"
    config.write_text(config.read_text().replace("every: 5m", "every: 5s") + "publish_every: 2s\n")
    return config


def second_feed(config: Path) -> str:
    text = config.read_text()
    return text.replace("feeds:\n", "feeds:\n  - name: second\n    url: demo/feed.xml\n"
                                    "    every: 5s\n    fetch_article: never\n", 1)


def test_sighup_applies_a_good_config_and_keeps_running_on_a_broken_one(demo):
    proc = Proc(demo)
    try:
        proc.wait_for("post sent")
        demo.write_text(second_feed(demo))
        began = time.monotonic()
        proc.proc.send_signal(signal.SIGHUP)
        at = proc.wait_for("config reloaded")
        took = time.monotonic() - began
        assert "2 feeds (1 added, 0 removed, 0 rescheduled)" in proc.lines[at], proc.lines[at]
        proc.wait_for("feed second: first sight", after=at)
        print(f"reload took {took:.2f}s from SIGHUP to the log line")

        demo.write_text(demo.read_text().replace("every: 5s", "every: never", 1)
                        + "unknown_key: 1\n")
        proc.proc.send_signal(signal.SIGHUP)
        at = proc.wait_for("still running on the previous config", after=at)
        problems = [line for line in proc.lines[:at] if "config reload:" in line]
        assert any("every" in line for line in problems), problems
        assert any("unknown_key" in line for line in problems), problems
        assert proc.proc.poll() is None, "a broken config must not stop the service"
        assert proc.stop() == 0
        assert "Traceback" not in "".join(proc.lines)
    finally:
        proc.kill()


def test_systemd_hears_ready_watchdog_reloading_and_stopping(demo, tmp_path):
    path = tmp_path / "notify.sock"
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(str(path))
    sock.settimeout(90)
    heard: list[str] = []

    def read() -> None:   # like systemd, never stop reading: a full queue drops datagrams
        try:
            while True:
                heard.append(sock.recv(4096).decode())
        except OSError:
            pass

    def hear(state: str) -> None:
        deadline = time.monotonic() + 90
        while not any(state in message for message in heard):
            assert time.monotonic() < deadline, f"no {state} in {heard}"
            time.sleep(0.05)

    threading.Thread(target=read, daemon=True).start()
    proc = Proc(demo, {"NOTIFY_SOCKET": str(path), "WATCHDOG_USEC": "3000000"})
    try:
        hear("READY=1")
        hear("WATCHDOG=1")
        proc.proc.send_signal(signal.SIGHUP)
        hear("RELOADING=1")
        assert proc.stop() == 0
        hear("STOPPING=1")
        assert heard.index(next(m for m in heard if "READY=1" in m)) < heard.index(
            next(m for m in heard if "STOPPING=1" in m))
    finally:
        proc.kill()
        sock.close()


def test_healthz_metrics_heartbeat_and_health_command(demo):
    port = free_port()
    demo.write_text(demo.read_text() + f'http_listen: "127.0.0.1:{port}"\n')
    proc = Proc(demo)
    try:
        proc.wait_for("post sent")
        proc.wait_for("listening on")
        health = requests.get(f"http://127.0.0.1:{port}/healthz", timeout=5)
        assert health.status_code == 200, health.text
        text = requests.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
        families = {f.name: f for f in text_string_to_metric_families(text)}
        sent = [s for s in families["herald_posts_sent"].samples
                if s.name == "herald_posts_sent_total"]
        assert sent and sent[0].labels == {"account": "newsroom-x", "platform": "console"}
        assert sent[0].value >= 1
        assert "herald_polls" in families and "herald_build_info" in families
        assert main(["--config", str(demo), "health"]) == 0
        assert main(["--config", str(demo), "status"]) in (0, 1)
        assert proc.stop() == 0
        assert main(["--config", str(demo), "health"]) == 1
    finally:
        proc.kill()


def test_health_without_a_listener_reads_the_heartbeat(demo, capsys):
    assert main(["--config", str(demo), "migrate"]) == 0
    assert main(["--config", str(demo), "health"]) == 1
    assert "no service running" in capsys.readouterr().out
    proc = Proc(demo)
    try:
        proc.wait_for("post sent")
        assert main(["--config", str(demo), "health"]) == 0
    finally:
        proc.stop()
        proc.kill()


def test_once_exits_1_when_a_feed_failed(demo, capsys):
    assert main(["--config", str(demo), "once"]) == 0
    broken = demo.read_text().replace("feeds:\n", "feeds:\n  - name: gone\n    url: demo/missing.xml\n"
                                                  "    fetch_article: never\n", 1)
    demo.write_text(broken)
    assert main(["--config", str(demo), "once"]) == 1


def test_read_only_commands_leave_a_new_database_alone(demo, capsys):
    db = demo.parent.parent / "data" / "demo.db"
    assert main(["--config", str(demo), "status"]) == 1
    assert "migrate" in capsys.readouterr().err
    assert not db.exists() or db.stat().st_size == 0
    assert main(["--config", str(demo), "migrate"]) == 0
    assert "migrated" in capsys.readouterr().out
    assert main(["--config", str(demo), "migrate"]) == 0
    assert "up to date" in capsys.readouterr().out


def test_backup_copies_a_database_that_opens(demo, tmp_path, capsys):
    import sqlite3
    assert main(["--config", str(demo), "once"]) == 0
    target = tmp_path / "copy.db"
    assert main(["--config", str(demo), "backup", str(target)]) == 0
    with sqlite3.connect(target) as conn:
        assert conn.execute("select count(*) from outbox").fetchone()[0] >= 1


def test_version():
    with pytest.raises(SystemExit) as exit_:
        main(["--version"])
    assert exit_.value.code == 0


def test_sync_feeds_adds_removes_and_reschedules():
    from datetime import timedelta

    from bot.configtypes import FeedConfig
    from bot.service import Service, Wiring

    def feed(name, minutes):
        return FeedConfig(name=name, url=f"https://news.example/{name}", every=timedelta(minutes=minutes))

    svc = Service(Wiring([feed("a", 5), feed("b", 5)], lambda f: None, lambda: None), "UTC",
                  timedelta(seconds=15), notify=lambda *s: True)
    assert svc.sync_feeds([feed("a", 10), feed("c", 5)]) == (1, 1, 1)
    jobs = {j.id: j for j in svc.scheduler.get_jobs()}
    assert {"poll:a", "poll:c", "publish", "beat", "prune", "summary"} == set(jobs)
    assert jobs["poll:a"].trigger.interval == timedelta(minutes=10)
    assert svc.sync_feeds([feed("a", 10), feed("c", 5)]) == (0, 0, 0)


def test_a_reload_that_fails_keeps_the_wiring_and_says_ready():
    from datetime import timedelta

    from bot.service import Service, Wiring

    said: list[str] = []
    old = Wiring([], lambda f: None, lambda: None)
    svc = Service(old, "UTC", timedelta(seconds=15), reload=lambda: None,
                  notify=lambda *states: said.extend(states) or True)
    assert svc.reload() is False and svc.wiring is old
    assert said == ["RELOADING=1", "READY=1"]


def test_the_tally_summarises_a_cycle_and_forwards():
    from bot.service import Tally

    seen = []

    class Forward:
        def polled(self, *args):
            seen.append(args)

        def settled(self, *args):
            seen.append(args)

    tally = Tally(forward=Forward())
    assert tally.summary() is None, "a quiet cycle says nothing"
    tally.polled("a", True, 0)
    tally.polled("b", True, 3)
    tally.polled("c", False, 0)
    tally.settled("x", "console", "sent", None)
    assert tally.summary() == ("3 polls (1 unchanged, 1 with 3 new items, 1 failed); "
                               "1 posts sent, 0 failed")
    assert len(seen) == 4 and tally.summary() is None


def test_retry_and_skip_name_what_they_did_or_why_not(demo, capsys):
    assert main(["--config", str(demo), "once"]) == 0
    capsys.readouterr()
    assert main(["--config", str(demo), "retry", "9999"]) == 1
    assert "retry 9999: no such post" in capsys.readouterr().out
    assert main(["--config", str(demo), "retry", "1"]) == 1
    assert "retry 1: the post is sent, not failed or skipped" in capsys.readouterr().out
    assert main(["--config", str(demo), "skip", "1"]) == 1
    assert "the post is sent" in capsys.readouterr().out
    assert main(["--config", str(demo), "retry", "--account", "newsroom-x"]) == 1
    assert "newsroom-x has no failed posts" in capsys.readouterr().out
    assert main(["--config", str(demo), "retry", "--account", "nobody"]) == 2
    assert main(["--config", str(demo), "resume", "newsroom-x"]) == 0
    assert "was not paused" in capsys.readouterr().out


def test_a_dotenv_that_is_not_utf8_is_a_config_error(demo, capsys):
    (demo.parent / ".env").write_bytes(b"TOKEN=\xff\xfe\n")
    assert main(["--config", str(demo), "check-config"]) == 2
    assert ".env: cannot read it (not UTF-8 text)" in capsys.readouterr().err


def test_a_reload_that_raises_leaves_reloading_working(caplog):
    from datetime import timedelta

    from bot.service import Service, Wiring

    calls = []

    def reload():
        calls.append(1)
        if len(calls) == 1:
            raise RuntimeError("something nobody foresaw")
        return None

    svc = Service(Wiring([], lambda f: None, lambda: None), "UTC", timedelta(seconds=15),
                  reload=reload, notify=lambda *s: True)
    thread = threading.Thread(target=svc._reloader, daemon=True)
    thread.start()
    for _ in range(2):
        svc.reloads.set()
        deadline = time.monotonic() + 10
        while len(calls) < _ + 1 and time.monotonic() < deadline:
            time.sleep(0.01)
    assert len(calls) == 2 and thread.is_alive()
    assert "config reload failed" in caplog.text
    svc.finished = True
    svc.reloads.set()
    thread.join(5)
    assert not thread.is_alive()
