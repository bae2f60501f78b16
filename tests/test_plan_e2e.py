"""Issue 6's acceptance: a burst of 30 items on the demo config, planned by the rules."""
from __future__ import annotations

import io
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

from bot import report
from bot.cli import build
from bot.config import load
from tests.helpers import Clock

ROOT = Path(__file__).resolve().parents[1]
SCHEDULE = """
    schedule:
      min_gap: 10m
      max_per_day: 17
      windows: [mon-sun 07:00-22:00]
"""


def burst_feed(n: int) -> str:
    items = "".join(f"<item><title>Burst story {i}</title><link>https://e.example/b{i}</link>"
                    f"<description>Burst story {i} has a lead sentence that is long enough to post.</description>"
                    f"<pubDate>Fri, 27 Nov 2026 05:{i:02d}:00 +0000</pubDate></item>" for i in range(n))
    return f"<rss version='2.0'><channel><title>t</title>{items}</channel></rss>"


def test_burst_of_30_respects_gap_cap_and_window_and_status_explains(tmp_path):
    shutil.copytree(ROOT / "config", tmp_path / "config")
    path = tmp_path / "config" / "demo.yaml"
    text = path.read_text().replace("    max_hashtags: 2\n", "    max_hashtags: 2\n" + SCHEDULE.lstrip("\n"))
    path.write_text(text.replace("backfill: 2", "backfill: 0"))
    feed = tmp_path / "config" / "demo" / "feed.xml"
    clock = Clock(datetime(2026, 11, 27, 5, 30, tzinfo=timezone.utc))  # 06:30 in Berlin
    app = build(load(path, {}), clock=clock)
    feed.write_text(burst_feed(0))
    app.poller.poll(app.config.feeds[0], force=True)       # first sight: empty
    feed.write_text(burst_feed(30))
    assert app.poller.poll(app.config.feeds[0], force=True).queued == 30

    slots, _ = app.publisher.plan(app.accounts[0])
    times = [s.at for s in slots if s.at]
    berlin = ZoneInfo("Europe/Berlin")
    assert times and all(7 <= t.astimezone(berlin).hour < 22 for t in times)
    assert all(b - a >= timedelta(minutes=10) for a, b in zip(times, times[1:]))
    assert all(sum(1 for u in times if t - timedelta(days=1) < u <= t) <= 17 for t in times)
    assert sum(1 for t in times if t < clock() + timedelta(days=1)) == 17
    first_day = [t for t in times if t.astimezone(berlin).date() == clock().date()]
    assert first_day[-1].astimezone(berlin).hour >= 20, "spread over the window, not done by noon"

    out = io.StringIO()
    report.status(app.store, app.publisher, out)
    status = out.getvalue()
    assert "(window)" in status and "(pacing)" in status
    assert "pending 30" in status

    assert app.publisher.run() == 0, "06:30 Berlin is outside the window"
    clock.advance(minutes=30)
    assert app.publisher.run() == 1
    clock.advance(minutes=5)
    assert app.publisher.run() == 0, "the gap holds"
