"""The newsroom desk's config: workers, public_url, ping tokens, WebSub, desk
auth and the loopback rule, route filters/template/approve/utm, account
approve/utm/budget. Each mistake is one line naming its key."""
from __future__ import annotations

import textwrap
from datetime import timedelta
from decimal import Decimal

import pytest

from bot.config import load
from bot.configtypes import Budget, Filters, Utm, WorkerSettings
from bot.errors import ConfigError
from bot.secret import Secret, mask

BASE = """
feeds: [{name: f, url: "https://news.example/rss"%(feed)s}]
accounts: [{name: c, platform: %(platform)s%(account)s}]
routes: [{feeds: [f], accounts: [c]%(route)s}]
"""
X_CREDS = ', credentials: {consumer_key: k-1, consumer_secret: s-1, access_token: a-1, access_token_secret: t-1}'
ENV = {"PING": "ping-token-0123456789", "DESK": "desk-token-0123456789"}
SCRYPT = "scrypt$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNo"
PBKDF2 = "pbkdf2_sha256$600000$c2FsdA$aGFzaA"


def text(top="", feed="", account="", route="", platform="console") -> str:
    if platform == "twitter":
        account = X_CREDS + account
    return BASE % {"feed": feed, "account": account, "route": route, "platform": platform} + textwrap.dedent(top)


def config(tmp_path, **parts):
    path = tmp_path / "herald.yaml"
    path.write_text(text(**parts))
    return load(path, ENV)


def problems(tmp_path, **parts) -> list[str]:
    with pytest.raises(ConfigError) as info:
        config(tmp_path, **parts)
    return info.value.problems


def test_defaults(tmp_path):
    c = config(tmp_path)
    assert c.workers == WorkerSettings() and c.public_url is None
    assert (c.desk.token, c.desk.user, c.desk.password_hash) == (None, "editor", None)
    feed, account, route = c.feeds[0], c.accounts[0], c.routes[0]
    assert (feed.ping_token, feed.websub) == (None, True)
    assert (account.approve, account.utm, account.budget) == (False, None, None)
    assert (route.filters, route.template, route.approve, route.utm) == (None, None, False, None)


def test_every_new_key_is_read(tmp_path):
    c = config(tmp_path, top="""
        workers: {heartbeat: 2s, takeover_after: 10s}
        public_url: https://herald.example.org/
        http_listen: "0.0.0.0:9108"
        desk: {token: "${DESK}", user: desk, password_hash: "%s"}
        """ % SCRYPT, feed=', ping_token: "${PING}", websub: false',
        account=", approve: true, utm: {source: '{platform}', medium: social}, budget: {posts: 500}",
        route=""", approve: true, template: "{title} {url}", utm: {campaign: "{feed}-{account}"},
                   filters: {include: [Élection], exclude: [sport], categories: [World],
                             exclude_categories: [Opinion], match: "^breaking", not_match: "live"}""",
        platform="twitter")
    assert c.workers == WorkerSettings(timedelta(seconds=2), timedelta(seconds=10))
    assert c.public_url == "https://herald.example.org"
    assert c.desk.token == Secret(ENV["DESK"]) and c.desk.user == "desk" and c.desk.password_hash == SCRYPT
    assert c.feeds[0].ping_token == Secret(ENV["PING"]) and c.feeds[0].websub is False
    account, route = c.accounts[0], c.routes[0]
    assert account.approve and account.utm == Utm(source="{platform}", medium="social")
    assert account.budget == Budget(posts=500)
    assert route.approve and route.template == "{title} {url}" and route.utm == Utm(campaign="{feed}-{account}")
    assert route.filters == Filters(("Élection",), ("sport",), ("World",), ("Opinion",), "^breaking", "live")
    for secret in (ENV["PING"], ENV["DESK"], SCRYPT):   # masked everywhere
        assert secret not in repr(c) and secret not in mask(f"x {secret} y")


def test_a_money_budget_defaults_the_link_price(tmp_path):
    c = config(tmp_path, account=", budget: {amount: 100, price_per_post: 0.01}", platform="twitter")
    assert c.accounts[0].budget == Budget(amount=Decimal(100), price_per_post=Decimal("0.01"),
                                          price_per_link_post=Decimal("0.01"))
    c = config(tmp_path, account=", budget: {amount: '5.50', price_per_post: 0.01, price_per_link_post: 0.2}",
               platform="twitter")
    assert c.accounts[0].budget.price_per_link_post == Decimal("0.2")


@pytest.mark.parametrize("host", ["127.0.0.1", "localhost", "[::1]", "127.3.4.5"])
def test_loopback_needs_no_desk_auth(tmp_path, host):
    assert config(tmp_path, top=f'http_listen: "{host}:9108"\n').http_listen[1] == 9108


@pytest.mark.parametrize("desk", ['desk: {token: "${DESK}"}', f'desk: {{password_hash: "{PBKDF2}"}}'])
def test_beyond_loopback_with_auth_loads(tmp_path, desk):
    assert config(tmp_path, top=f'http_listen: "0.0.0.0:9108"\n{desk}\n').http_listen == ("0.0.0.0", 9108)


def test_beyond_loopback_without_auth_is_refused(tmp_path):
    (line,) = problems(tmp_path, top='http_listen: "192.168.1.5:9108"\ndesk: {user: ed}\n')
    assert line == ("http_listen: '192.168.1.5' binds beyond loopback; set desk.token or desk.password_hash")


PROBLEMS = [
    (dict(top="workers: {heartbeat: 10s, takeover_after: 15s}"), "workers.takeover_after: expected more than twice"),
    (dict(top="workers: {heartbeat: 0s}"), "workers.heartbeat: expected a duration from 1s"),
    (dict(top="workers: {beat: 1s}"), "workers.beat: unknown key"),
    (dict(top="public_url: http://herald.example.org"), "public_url: expected an https URL"),
    (dict(top="public_url: https://h.example/cb?x=1"), "public_url: expected an https URL"),
    (dict(top="desk: {token: short}"), "desk.token: expected a string of at least 16 characters"),
    (dict(top="desk: {password_hash: hunter2}"), "desk.password_hash: expected \"scrypt$"),
    (dict(top="desk: {password_hash: 'pbkdf2_sha256$12$c2FsdA$aGFzaA'}"), "desk.password_hash: expected"),
    (dict(top="desk: {user: 'a:b'}"), "desk.user: expected a user name"),
    (dict(top="desk: {colour: red}"), "desk.colour: unknown key"),
    (dict(feed=", ping_token: '${NOPE}'"), "feeds[0].ping_token: environment variable NOPE is not set"),
    (dict(feed=", ping_token: 42"), "feeds[0].ping_token: expected a string of at least 16"),
    (dict(feed=", websub: maybe"), "feeds[0].websub: expected true or false"),
    (dict(account=", approve: 1"), "accounts[0].approve: expected true or false"),
    (dict(account=", budget: {posts: 10}"), "accounts[0].budget: only X accounts"),
    (dict(account=", budget: {}", platform="twitter"), "accounts[0].budget: expected posts (per month)"),
    (dict(account=", budget: {posts: 1, amount: 2}", platform="twitter"), "accounts[0].budget: expected posts or amount, not both"),
    (dict(account=", budget: {amount: 2}", platform="twitter"), "accounts[0].budget.price_per_post: required"),
    (dict(account=", budget: {amount: -2, price_per_post: 1}", platform="twitter"), "accounts[0].budget.amount: expected an amount above 0"),
    (dict(account=", budget: {amount: .nan, price_per_post: 1}", platform="twitter"), "accounts[0].budget.amount: expected an amount"),
    (dict(account=", budget: {amount: '1e-99999', price_per_post: 1}", platform="twitter"), "accounts[0].budget.amount: expected an amount"),
    (dict(account=", budget: {amount: 1, price_per_post: [1]}", platform="twitter"), "accounts[0].budget.price_per_post: expected an amount"),
    (dict(account=", budget: {posts: 0}", platform="twitter"), "accounts[0].budget.posts: expected a whole number"),
    (dict(account=", budget: {cost: 1}", platform="twitter"), "accounts[0].budget.cost: unknown key"),
    (dict(account=", utm: {source: '{site}'}"), "accounts[0].utm.source: unknown placeholder {site}"),
    (dict(account=", utm: {source: '{'}"), "accounts[0].utm.source: malformed placeholder"),
    (dict(account=", utm: {}"), "accounts[0].utm: expected at least one of source, medium, campaign"),
    (dict(route=", utm: {term: x}"), "routes[0].utm.term: unknown key"),
    (dict(route=", template: '{titel}'"), "routes[0].template: unknown field {titel}"),
    (dict(route=", approve: yes please"), "routes[0].approve: expected true or false"),
    (dict(route=", filters: {match: '(unclosed'}"), "routes[0].filters.match: not a valid regular expression"),
    (dict(route=", filters: {not_match: '[z-a]'}"), "routes[0].filters.not_match: not a valid regular expression"),
    (dict(route=", filters: {include: [' ']}"), "routes[0].filters.include[0]: expected a word or phrase"),
    (dict(route=", filters: {exclude: [\"\\u0301\"]}"), "routes[0].filters.exclude[0]: expected a word or phrase"),
    (dict(route=", filters: {exclude: {a: 1}}"), "routes[0].filters.exclude: expected a list of names"),
    (dict(route=", filters: {keywords: [a]}"), "routes[0].filters.keywords: unknown key"),
    (dict(route=", filters: [a]"), "routes[0].filters: expected a mapping"),
]


@pytest.mark.parametrize("parts, expected", PROBLEMS, ids=[e.split(":")[0] + str(i) for i, (_, e) in enumerate(PROBLEMS)])
def test_each_mistake_is_one_line_naming_its_key(tmp_path, parts, expected):
    lines = problems(tmp_path, **parts)
    assert len(lines) == 1 and lines[0].startswith(expected), lines


def test_a_short_ping_token_is_never_shown(tmp_path):
    lines = problems(tmp_path, feed=", ping_token: 'tiny-secret'")
    assert "tiny-secret" not in " ".join(lines)


def test_a_budget_of_prices_alone_is_refused(tmp_path):
    (line,) = problems(tmp_path, account=", budget: {price_per_post: 0.01}", platform="twitter")
    assert line.startswith("accounts[0].budget: expected posts (per month)")


def test_the_example_documents_the_desk_keys():
    from test_config import ENV as EXAMPLE_ENV, ROOT
    c = load(ROOT / "config" / "example.yaml", EXAMPLE_ENV)
    x = next(a for a in c.accounts if a.platform == "twitter")
    assert x.budget == Budget(posts=500) and x.utm == Utm("{platform}", "social", "{feed}")
    assert c.routes[0].filters.exclude_categories == ("Sponsored",) and c.workers == WorkerSettings()


@pytest.mark.parametrize("template", ["{title} {lead:1}", "{lead:280} {url}", "{lead:5000}"])
def test_a_lead_cap_is_a_template_field(tmp_path, template):
    assert config(tmp_path, route=f", template: '{template}'").routes[0].template == template


@pytest.mark.parametrize("template", ["{lead:0}", "{lead:5001}", "{lead:-3}", "{lead:abc}", "{lead:>10}",
                                      "{title:20}", "{lead!r}", "{lead:１０}"])
def test_a_bad_lead_cap_names_the_template(tmp_path, template):
    for parts in (dict(route=f", template: '{template}'"), dict(account=f", template: '{template}'")):
        (line,) = problems(tmp_path, **parts)
        assert line.split(":")[0] in ("routes[0].template", "accounts[0].template") and "{lead:N}" in line, line
