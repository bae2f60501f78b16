"""`once` end to end on feeds with hostile fields beside healthy ones: each bad
field or item costs itself alone, is named once in the log, and the healthy
items are posted (issue 15)."""
from __future__ import annotations

import json

from bot.cli import main

LEAD = "The lead sentence of this story is long enough to be used for a post here."
RSS_ITEMS = [("Good story one", "https://news.example/one"), ("Bad link", "http://[::1"),
             ("Bad host", "https://[host/"), ("NUL&#0; title", "https://news.example/nul"),
             ("Bidi \u202e title", "https://news.example/bidi")]
JSON_ITEMS = [("Early date", "0001-01-01T00:00:00+01:00"), ("Late date", "9999-12-31T23:59:59-01:00"),
              ("Fine item", "2026-11-30T10:00:00Z")]


def write_feeds(folder) -> None:
    (folder / "bad.xml").write_text("<rss version='2.0'><channel><title>t</title>" + "".join(
        f"<item><title>{t}</title><link>{u}</link><guid>{u}</guid><description>{LEAD}"
        f"</description><enclosure url='http://[bad' type='image/jpeg'/></item>"
        for t, u in RSS_ITEMS) + "</channel></rss>")
    (folder / "deep.json").write_text('{"version": "https://jsonfeed.org/version/1.1", "items": '
                                      + "[" * 100_000 + "]" * 100_000 + "}")
    (folder / "dates.json").write_text(json.dumps({
        "version": "https://jsonfeed.org/version/1.1", "title": "j",
        "items": [{"id": str(n), "url": f"https://news.example/j{n}", "title": t,
                   "content_text": LEAD, "date_published": d}
                  for n, (t, d) in enumerate(JSON_ITEMS)]}))
    names = ["bad", "deep", "dates"]
    (folder / "herald.yaml").write_text(
        "database: sqlite:///h.db\nfeeds:\n" + "".join(
            f"  - {{name: {n}, url: {n}.{'xml' if n == 'bad' else 'json'}, fetch_article: never, "
            f"backfill: 10}}\n" for n in names)
        + f"accounts: [{{name: c, platform: console}}]\nroutes: [{{feeds: {names}, accounts: [c]}}]\n")


def test_hostile_fields_cost_only_themselves(tmp_path, capsys):
    write_feeds(tmp_path)
    code = main(["--config", str(tmp_path / "herald.yaml"), "once"])
    out, err = capsys.readouterr()
    # the feed nested too deeply failed, so the run says so; the others went out
    assert code == 1 and err.count("feed deep: not a feed") == 1, err
    assert "Traceback" not in err
    for title in ("Good story one", "NUL title", "Bidi title", "Early date", "Late date", "Fine item"):
        assert f"{title}: {LEAD}" in out, title
    assert "\u202e" not in out and "\x00" not in out
    assert "[::1" not in out and "[host" not in out
    for bad in ("'http://[::1'", "'https://[host/'", "'0001-01-01T00:00:00+01:00'",
                "'9999-12-31T23:59:59-01:00'"):
        assert err.count(f"skipped item {bad}") + err.count(f"ignored date_published {bad}") == 1, bad
    assert err.count("feed deep: not a feed: JSON nested too deeply") == 1
