"""Config.targets (which accounts an article goes to, and how) and
Config.style (template, hashtags, utm per feed and account)."""
from __future__ import annotations

import textwrap

import pytest

from bot.config import load
from bot.configtypes import Style, Utm
from bot.models import Article, Target

CONFIG = """
feeds:
  - {name: world, url: "https://n.example/world"}
  - {name: sport, url: "https://n.example/sport"}
accounts:
  - {name: a, platform: console, template: "{title} {url}", hashtags: {vote: "#Vote", rain: "#Rain"},
     utm: {source: "{platform}"}}
  - {name: b, platform: console, approve: true}
  - {name: c, platform: console}
routes:
  - {feeds: [world], accounts: [a, b], priority: 1, filters: {exclude: [quiz]}}
  - {feeds: [world, sport], accounts: [a, c], priority: 5, hashtags: {vote: "#Election"},
     template: "{title}: {lead:100} {url}", filters: {include: [goal, vote]}}
  - {feeds: [world], accounts: [c], approve: true, priority: 9, utm: {campaign: world}, hashtags: {rain: "#Wet"}}
"""


@pytest.fixture
def config(tmp_path):
    path = tmp_path / "herald.yaml"
    path.write_text(textwrap.dedent(CONFIG))
    return load(path, {})


def item(title: str) -> Article:
    return Article(feed="world", item_id=title, url="https://n.example/" + title, title=title)


@pytest.mark.parametrize("title, expected", [
    ("A vote today", [Target("a", 5), Target("b", 1, "held"), Target("c", 5)]),   # pending beats held
    ("Weather", [Target("a", 1), Target("b", 1, "held"),                          # route 2 filters it out
                 Target("c", 9, "held")]),
    ("The vote quiz", [Target("a", 5), Target("b", 0 + 1, "filtered", 'excluded keyword "quiz"'),
                       Target("c", 5)]),
    ("A quiz", [Target("a", 5, "filtered", "no included keyword (goal, vote)"),   # both filter: highest priority's reason
                Target("b", 1, "filtered", 'excluded keyword "quiz"'), Target("c", 9, "held")]),
])
def test_targets_give_each_routed_account_its_best_decision(config, title, expected):
    assert config.targets("world")(item(title)) == expected


def test_targets_of_a_feed_with_one_route_and_of_an_unrouted_one(config):
    assert config.targets("sport")(item("Late goal")) == [Target("a", 5), Target("c", 5)]
    assert config.targets("sport")(item("Rain")) == [
        Target("a", 5, "filtered", "no included keyword (goal, vote)"),
        Target("c", 5, "filtered", "no included keyword (goal, vote)")]
    assert config.targets("nowhere")(item("x")) == []


def test_style_takes_the_route_over_the_account(config):
    assert config.style("world", "a") == Style("{title}: {lead:100} {url}", {"vote": "#Election", "rain": "#Rain"},
                                              Utm(source="{platform}"))
    assert config.style("world", "c") == Style("{title}: {lead:100} {url}", {"vote": "#Election", "rain": "#Wet"},
                                              Utm(campaign="world"))
    b = config.style("world", "b")
    assert b.hashtags == {} and b.utm is None and b.template == config.accounts[1].template
    assert config.style("sport", "c").utm is None


def test_style_of_an_unknown_account_is_a_key_error(config):
    with pytest.raises(KeyError):
        config.style("world", "zz")
