"""The newsroom desk's controls end to end through the commands: a route's
filters, approval, tracking parameters and template, from `once` to `status`,
`approve` and `reject` (the page over the same verbs: tests/test_desk*.py)."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from bot.cli import main

ROOT = Path(__file__).resolve().parents[1]
CONFIG = """
version: 1
timezone: Europe/Berlin
database: sqlite:///../data/desk.db
feeds:
  - name: example-news
    url: demo/feed.xml
    backfill: 4
    fetch_article: never
accounts:
  - name: newsroom-x
    platform: console
    template: "{title}: {lead:40} {url}"
    utm: {source: "{platform}", medium: social, campaign: "{feed}"}
routes:
  - feeds: [example-news]
    accounts: [newsroom-x]
    approve: true
    filters:
      exclude: [russia]
"""


@pytest.fixture
def desk_config(tmp_path) -> Path:
    shutil.copytree(ROOT / "config" / "demo", tmp_path / "config" / "demo")
    path = tmp_path / "config" / "desk.yaml"
    path.write_text(CONFIG)
    return path


def status(config: Path, capsys) -> dict:
    capsys.readouterr()
    main(["--config", str(config), "status", "--json"])
    return json.loads(capsys.readouterr().out)


def test_filtered_items_are_recorded_with_why_and_the_rest_wait_for_an_editor(desk_config, capsys):
    assert main(["--config", str(desk_config), "once"]) == 0
    out = capsys.readouterr().out
    assert "---" not in out, "nothing is sent before an editor approves it"
    doc = status(desk_config, capsys)
    (kept_out,) = doc["filtered_posts"]
    assert kept_out["title"].startswith("US Woos Russia") and "russia" in kept_out["error"]
    assert len(doc["held_posts"]) == 3
    assert doc["accounts"][0]["counts"] == {"held": 3, "filtered": 1}


def test_an_approved_post_goes_out_with_tracking_and_the_capped_lead(desk_config, capsys):
    main(["--config", str(desk_config), "once"])
    held = status(desk_config, capsys)["held_posts"]
    first, second, third = (p["id"] for p in held)
    assert main(["--config", str(desk_config), "approve", str(first)]) == 0
    assert main(["--config", str(desk_config), "approve", str(second), "--text",
                 "Edited by the desk"]) == 0
    assert main(["--config", str(desk_config), "reject", str(third)]) == 0
    assert "rejected" in capsys.readouterr().out
    assert main(["--config", str(desk_config), "once"]) == 0
    sent = capsys.readouterr().out
    assert "utm_source=console&utm_medium=social&utm_campaign=example-news" in sent, sent
    assert "Edited by the desk" in sent
    composed = next(line for line in sent.splitlines() if line.startswith("City council"))
    lead = composed.split(": ", 1)[1].split(" https://")[0]
    assert lead.endswith("…") and len(lead) <= 40, lead
    assert "[link] https://news.example.org/weather/2016/04/storm-warning-north-coast?utm_source" \
        in sent, "the edited post's link carries the tracking too"
    doc = status(desk_config, capsys)
    assert doc["accounts"][0]["counts"] == {"sent": 2, "rejected": 1, "filtered": 1}


def test_approve_refuses_a_post_that_is_not_held(desk_config, capsys):
    main(["--config", str(desk_config), "once"])
    post = status(desk_config, capsys)["filtered_posts"][0]["id"]
    assert main(["--config", str(desk_config), "approve", str(post)]) == 1
    assert f"approve {post}: post {post} is filtered, not held" in capsys.readouterr().out


def test_preview_shows_what_the_filters_and_approval_decide_and_the_tracked_link(desk_config, capsys):
    assert main(["--config", str(desk_config), "preview"]) == 0
    out = capsys.readouterr().out
    assert '[filtered out: excluded keyword "russia"]' in out
    assert out.count("[held for approval]") == 3
    assert "bike-lanes-approved?utm_source=console&utm_medium=social&utm_campaign=example-news" in out
    assert main(["--config", str(desk_config), "preview", "--json"]) == 0
    docs = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    decided = {d["title"][:8]: d["posts"]["newsroom-x"]["status"] for d in docs}
    assert decided["US Woos "] == "filtered" and decided["City cou"] == "held"
