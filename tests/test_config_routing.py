"""Config.targets (which accounts an article goes to, and how) and
Config.style (template, hashtags, utm per feed and account)."""
from __future__ import annotations

import textwrap

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config import load
from bot.configtypes import AccountConfig, Filters, RouteConfig, Style, Utm
from bot.filters import decide, router
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


# -- properties of the routing, over drawn routes ----------------------------------

ACCOUNTS = ("a", "b", "c")
ROUTES = st.lists(st.builds(
    RouteConfig, feeds=st.just(("world",)), accounts=st.lists(st.sampled_from(ACCOUNTS), min_size=1,
                                                              unique=True).map(tuple),
    priority=st.integers(-3, 3), approve=st.booleans(),
    filters=st.one_of(st.none(), st.builds(Filters, include=st.lists(st.sampled_from(["vote", "rain"]),
                                                                     max_size=1).map(tuple),
                                           exclude=st.lists(st.sampled_from(["quiz", "rain"]), max_size=1).map(tuple)))),
    max_size=4)


@settings(max_examples=300, deadline=None)
@given(ROUTES, st.sets(st.sampled_from(ACCOUNTS)), st.sampled_from(["vote", "rain", "quiz vote", "calm"]))
def test_each_routed_account_once_with_the_best_decision(routes, approving, title):
    accounts = [AccountConfig(name=n, platform="console", template="{title}", approve=n in approving)
                for n in ACCOUNTS]
    targets = router([r for r in routes if r.takes("world")], accounts)(item(title))
    assert [t.account for t in targets] == sorted({n for r in routes for n in r.accounts})
    for target in targets:
        legs = [r for r in routes if target.account in r.accounts]
        passing = [r for r in legs if decide(r.filters, item(title)) is None]
        free = [r for r in passing if not r.approve and target.account not in approving]
        expected = "pending" if free else "held" if passing else "filtered"
        assert target.status == expected
        assert target.priority == max(r.priority for r in (free or passing or legs))
        assert (target.reason is None) == (expected != "filtered")
