"""The desk's controls against the fake platform server (issue 14): a route's
filter and tracking parameters on every platform, and an X account whose
posts wait for approval, through `once`, `status` and `approve`."""
from __future__ import annotations

import json

import pytest
from fakes import fake_api  # noqa: F401  (fixture)

from bot.cli import main
from tests.test_platforms_e2e import PLATFORMS, accounts_for, demo_config

UTM = {"source": "{platform}", "medium": "social", "campaign": "{feed}"}


@pytest.fixture
def config(tmp_path, fake_api, monkeypatch):
    accounts = accounts_for(fake_api.url)
    for account in accounts:
        account["approve"] = account["platform"] == "twitter"
    route = {"feeds": ["example-news"], "accounts": [a["name"] for a in accounts],
             "filters": {"exclude": ["bike"]}, "utm": UTM}
    return demo_config(tmp_path, monkeypatch, accounts, route)


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_filters_tracking_and_approval_on_every_platform(config, fake_api, capsys):
    code, _, err = run(capsys, "--config", config, "once")
    assert code == 0, err
    posts = fake_api.posts
    others = sorted(name for name in PLATFORMS if name != "twitter")
    assert sorted(p["platform"] for p in posts) == others, "bike lanes filtered, X held"
    assert all("US Woos Russia" in p["text"] for p in posts)
    facebook = next(p for p in posts if p["platform"] == "facebook")
    assert facebook["link"] == ("https://news.example.org/world/2016/04/us-woos-russia-for-one-call"
                                "?utm_source=facebook&utm_medium=social&utm_campaign=example-news")

    doc = json.loads(run(capsys, "--config", config, "status", "--json")[1])
    assert {p["title"][:12] for p in doc["filtered_posts"]} == {"City council"}
    (held,) = doc["held_posts"]
    assert held["account"] == "newsroom-x" and held["title"].startswith("US Woos Russia")

    assert run(capsys, "--config", config, "approve", str(held["id"]))[0] == 0
    assert run(capsys, "--config", config, "once")[0] == 0
    (x_post,) = [p for p in fake_api.posts if p["platform"] == "twitter"]
    assert "us-woos-russia-for-one-call?utm_source=twitter&utm_medium=social" in x_post["text"]


def test_an_x_budget_stops_sending_at_the_fake_x_until_the_month_resets(tmp_path, fake_api,
                                                                         monkeypatch, capsys):
    (x,) = accounts_for(fake_api.url, {"twitter": PLATFORMS["twitter"]})
    path = demo_config(tmp_path, monkeypatch, [{**x, "budget": {"posts": 1}}])
    assert run(capsys, "--config", str(path), "once")[0] == 0
    assert len(fake_api.posts) == 1, "the month's one post, and no more"
    (account,) = json.loads(run(capsys, "--config", str(path), "status", "--json")[1])["accounts"]
    assert account["budget"]["spent"] == 1 and account["budget"]["left"] == 0
    assert [p["reason"] for p in account["queue"]] == ["budget"]
