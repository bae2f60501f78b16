"""The desk in a real browser: headless Chromium (Debian's ``chromium``)
driven by Playwright, against the desk on the real listener, a real Store on
SQLite and a Publisher whose X account posts to the fake platform server.

Logs in with the token, approves a held post (edited) and sees it reach the
fake X, retries a failed one, and saves a screenshot. Set
HERALD_DESK_SCREENSHOT=docs/desk.png to keep the screenshot where the README
shows it. Skipped, with the reason, where Chromium or Playwright is missing.
"""
from __future__ import annotations

import json
import os
import shutil
from datetime import datetime, timedelta, timezone
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from fakes import fake_api, platforms  # noqa: F401  (fixture)

from bot.cli import build
from bot.compose import measure
from bot.config import load
from bot.configtypes import DeskSettings
from bot.desk import Callbacks, desk_routes
from bot.listener import Listener
from bot.models import Article, Target
from bot.report import gather
from bot.secret import Secret

CHROMIUM = os.environ.get("HERALD_CHROMIUM", "/usr/bin/chromium")
if not Path(CHROMIUM).exists():
    pytest.skip(f"no Chromium at {CHROMIUM} (apt-get install chromium)", allow_module_level=True)
sync_api = pytest.importorskip("playwright.sync_api",
                               reason="Playwright is not installed (pip install playwright)")

TOKEN = "browser-desk-token-SECRET"
ZONE = ZoneInfo("Europe/Berlin")
ACCOUNT = "newsroom-x"


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@pytest.fixture
def app(tmp_path, fake_api, monkeypatch):  # noqa: F811
    """The demo's feed and one X account against the fake server, wired as the CLI wires it."""
    x = platforms()["twitter"]
    for name, value in x.env.items():
        monkeypatch.setenv(name, value)
    account = {"name": ACCOUNT, **x.account(fake_api.url),
               "template": "{title} {url}", "schedule": {"timezone": "Europe/Berlin"}}
    path = tmp_path / "herald.yaml"
    path.write_text(f"version: 1\ntimezone: Europe/Berlin\ndatabase: sqlite:///{tmp_path}/h.db\n"
                    "feeds: [{name: city, url: https://city.example/feed.xml}]\n"
                    f"accounts: [{json.dumps(account)}]\n"
                    f"routes: [{{feeds: [city], accounts: [{ACCOUNT}]}}]\n")
    built = build(load(str(path)), clock=utc_now)
    yield built
    built.store.close()


def story(n: int, title: str) -> Article:
    return Article(feed="city", item_id=f"item-{n}", url=f"https://city.example/{n}", title=title)


def queue(app, n: int, title: str, status: str = "pending") -> int:
    """Ingest one article for the account as ``status`` and return its outbox id."""
    app.store.ingest("city", [story(n, title)], lambda a: [Target(ACCOUNT, 0, status)], backfill=1)
    with app.store.read() as conn:
        return conn.exec_driver_sql(
            "select o.id from outbox o join articles a on a.id = o.article_id where a.title = ?",
            (title,)).scalar_one()


def desk_data(app) -> Callbacks:
    """The desk's data from the store and publisher (what bot.report gives the service)."""
    account = app.accounts[0]

    def doc() -> dict:
        found = gather(app.store, app.publisher, utc_now(), ZONE)
        found["held"] = [{"id": r.id, "account": r.account, "title": r.title, "at": r.queued_at.astimezone(ZONE),
                          "article_url": r.url, "text": r.text or account.text(app.store.article(r.article_id), {})}
                         for r in app.store.held()]
        return found

    def act(action: str, post: int, text: str | None) -> str:
        done = {"approve": lambda: app.store.approve(post, text), "reject": lambda: app.store.reject(post),
                "retry": lambda: app.store.retry(row_id=post), "skip": lambda: app.store.skip(post)}[action]()
        if not done:
            raise ValueError(f"post {post} cannot be changed by {action}")
        return f"post {post}: {action} done"

    def check_text(post: int, text: str) -> str | None:
        length, limit = measure(text, account.limits), account.limits.max_length
        return f"{length} characters; {account.config.platform} takes {limit}" if length > limit else None

    return Callbacks(doc, act, check_text)


@pytest.fixture
def desk(app):
    routes = desk_routes(desk_data(app), DeskSettings(token=Secret(TOKEN)), utc_now)
    listener = Listener("127.0.0.1", 0, routes)
    listener.start()
    yield f"http://127.0.0.1:{listener.port}"
    listener.stop()


@pytest.fixture
def browser():
    with sync_api.sync_playwright() as playwright:
        # --no-sandbox: CI runs as root, where Chromium's sandbox will not start; a container
        # may have a tiny /dev/shm.
        chromium = playwright.chromium.launch(executable_path=CHROMIUM,
                                              args=["--no-sandbox", "--disable-dev-shm-usage"])
        yield chromium
        chromium.close()


def test_an_editor_logs_in_approves_a_held_post_and_retries_a_failed_one(app, desk, browser, fake_api,
                                                                         tmp_path):  # noqa: F811
    sent = queue(app, 1, "Tram line 4 reopens after repairs")
    app.publisher.run()
    failed = queue(app, 2, "Council meets on the <budget> tonight")
    fake_api.script("400", path="/2/tweets")
    app.publisher.run()
    assert app.store.post(failed).status == "failed"
    later = queue(app, 3, "Weekend weather: storms expected")
    app.store.release(later, "rate limited", not_before=utc_now() + timedelta(hours=2), count_attempt=False)
    held = queue(app, 4, "Mayor resigns, deputy to take over", status="held")
    # A live worker and a feed polled a while ago, as the service leaves them.
    app.store.beat("desk-test", "newsroom-1", os.getpid(), utc_now())
    app.store.feed_row("city", "https://city.example/feed.xml")
    app.store.update_feed("city", last_fetch_at=utc_now() - timedelta(minutes=3),
                          last_success_at=utc_now() - timedelta(minutes=3))
    assert [p["id"] for p in fake_api.posts] and app.store.post(sent).status == "sent"

    page = browser.new_page(viewport={"width": 420, "height": 900})
    page.goto(f"{desk}/desk")
    assert page.url.endswith("/desk/login")
    page.fill("#token", TOKEN)
    page.click("text=Log in")
    assert page.url.endswith("/desk") and page.locator("h1").inner_text() == "Herald desk"
    assert "Council meets on the <budget> tonight" in page.locator(f"#post-{failed}").inner_text()
    assert "Europe/Berlin" in page.locator(f"#account-{ACCOUNT}").inner_text()
    assert "service running" in page.locator("header").inner_text()
    assert "city: last poll" in page.locator("#feeds").inner_text()
    shot = tmp_path / "desk.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    if target := os.environ.get("HERALD_DESK_SCREENSHOT"):
        shutil.copyfile(shot, target)

    page.fill(f"#text-{held}", "Mayor resigns; the deputy takes over https://city.example/4")
    page.locator(f"#post-{held}").get_by_role("button", name="Approve").click()
    assert f"post {held}" in page.locator(".notice.ok").inner_text()
    assert page.locator(f"#post-{held}").count() == 0, "no longer held"
    app.publisher.run()
    texts = [p["text"] for p in fake_api.posts]
    assert "Mayor resigns; the deputy takes over https://city.example/4" in texts, "sent as edited"

    page.locator(f"#post-{failed}").get_by_role("button", name="Retry").click()
    assert f"post {failed}" in page.locator(".notice.ok").inner_text()
    assert app.store.post(failed).status == "pending"
    app.publisher.run()
    assert any("Council meets" in t for t in (p["text"] for p in fake_api.posts))
    page.reload()
    recent = page.locator("#recent").inner_text()
    assert "Mayor resigns" in recent and "Council meets" in recent
    assert TOKEN not in page.content()


def test_an_edit_over_the_platforms_limit_is_refused_and_kept(app, desk, browser):
    held = queue(app, 5, "A very long story", status="held")
    page = browser.new_page()
    page.goto(f"{desk}/desk/login")
    page.fill("#token", TOKEN)
    page.click("text=Log in")
    page.fill(f"#text-{held}", "x" * 300)
    page.locator(f"#post-{held}").get_by_role("button", name="Approve").click()
    said = page.locator(".notice.error").inner_text()
    assert "300" in said and "280" in said, said
    assert page.locator(f"#text-{held}").input_value() == "x" * 300
    assert app.store.post(held).status == "held"
