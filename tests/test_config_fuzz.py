"""Property-based config checks (issue 15).

Valid configs drawn from the schema always load. Mutations of the shipped
configs (types changed, keys deleted, deep nesting, huge numbers, aliases,
garbage bytes, containers swapped) end in a Config or a ConfigError whose every
line starts with a key path or a file position: never another exception, and
each within 2 s."""
from __future__ import annotations

import re
import time
from decimal import Decimal
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.config import Config, load
from bot.errors import ConfigError
from test_config import ENV, ROOT

FAST = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
SHIPPED = {name: (ROOT / "config" / name).read_text() for name in ("example.yaml", "demo.yaml")}
SEGMENT = r"""(?:[\w-]+|'[^'\n]*'|"[^"\n]*")"""
KEY_PATH = re.compile(rf"{SEGMENT}(?:\[\d+\]|\.{SEGMENT})*: \S")


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def outcome(folder: Path, text: str | bytes) -> Config | list[str]:
    """Load ``text`` as a config; the Config, or the problem lines checked for shape."""
    path = folder / "herald.yaml"
    path.write_bytes(text if isinstance(text, bytes) else text.encode("utf-8", "surrogatepass"))
    started = time.process_time()  # CPU, so a loaded CI machine does not fail it
    try:
        return load(path, {**ENV, "FEED_TOKEN": "feedtok-0001", "PING_TOKEN": "ping-token-0123456789",
                           "DESK_TOKEN": "desk-token-0123456789"})
    except ConfigError as exc:
        for line in exc.problems:
            assert "\n" not in line and (line.startswith(f"{path}, line ") or line.startswith(f"{path}: ")
                                         or KEY_PATH.match(line)), line
        return exc.problems
    finally:
        assert time.process_time() - started < 2


# -- valid configs, from the schema ------------------------------------------------

def duration(low: int, high: int):
    return st.integers(low, high).map(lambda s: "".join(
        f"{n}{u}" for n, u in ((s // 86400, "d"), (s % 86400 // 3600, "h"), (s % 3600 // 60, "m"),
                               (s % 60, "s")) if n) or "0s")


NAMES = st.lists(st.from_regex(r"[a-z][a-z0-9-]{0,8}", fullmatch=True), min_size=1, max_size=4, unique=True)
CLOCK = st.builds("{:02d}:{:02d}".format, st.integers(0, 23), st.integers(0, 59))
WINDOW = st.builds("{} {}-{}".format, st.sampled_from(["mon-fri", "sat,sun", "daily", "fri-mon", "tue"]),
                   CLOCK, CLOCK)


def optional(**fields):
    return st.fixed_dictionaries({}, optional=fields)


SCHEDULE = optional(min_gap=duration(0, 7 * 86400), jitter=duration(0, 86400),
                    max_per_hour=st.integers(1, 3600), max_per_day=st.integers(1, 86400),
                    windows=st.lists(WINDOW, max_size=3), order=st.sampled_from(["newest", "oldest"]),
                    expire_after=duration(60, 365 * 86400),
                    timezone=st.sampled_from(["UTC", "Europe/Berlin", "America/New_York"]))
COMMON = dict(template=st.sampled_from(["{title} {url}", "{{live}} {title}: {lead} {hashtags}"]),
              max_hashtags=st.integers(0, 30), max_attempts=st.integers(1, 100),
              retry_backoff=duration(1, 86400), schedule=SCHEDULE,
              hashtags=st.dictionaries(st.text("abc ", min_size=1, max_size=5), st.just("#Tag"), max_size=2))
UTM = st.fixed_dictionaries({"source": st.sampled_from(["{platform}", "herald", "{account}-{feed}"])},
                            optional={"medium": st.just("social"), "campaign": st.text("abc{}", max_size=8).filter(
                                lambda t: "{" not in t and "}" not in t)})
COMMON |= dict(approve=st.booleans(), utm=UTM)
PRICE = st.decimals(Decimal("0.0001"), Decimal(10), places=4).map(float)   # as a person writes one
BUDGET = st.one_of(st.fixed_dictionaries({"posts": st.integers(1, 10_000_000)}),
                   st.fixed_dictionaries({"amount": st.decimals(Decimal("0.01"), Decimal(10**6), places=2).map(str),
                                          "price_per_post": PRICE},
                                         optional={"price_per_link_post": PRICE}))
FILTERS = optional(include=st.lists(st.text(min_size=1, max_size=10).filter(str.strip), max_size=3),
                   exclude=st.lists(st.sampled_from(["sport", "Élection", "東京", "live blog"]), max_size=3),
                   categories=st.lists(st.sampled_from(["World", "Opinion"]), max_size=2),
                   exclude_categories=st.lists(st.sampled_from(["Sport", "Ads"]), max_size=2),
                   match=st.sampled_from([r"^breaking\b", r"(?i)élection|vote", r"\d{4}"]),
                   not_match=st.sampled_from([r"live", r"^\[ad\]"]))
PLATFORMS = {
    "console": st.fixed_dictionaries({}, optional=COMMON),
    "twitter": st.fixed_dictionaries({"credentials": st.just({
        key: f"literal-{key}" for key in ("consumer_key", "consumer_secret", "access_token", "access_token_secret")})},
        optional={**COMMON, "budget": BUDGET, "api_base_url": st.just("https://proxy.example/x?key=abcdef"),
                  "connect_timeout": st.floats(0.1, 600), "attach_image": st.booleans()}),
    "facebook": st.fixed_dictionaries({"page_id": st.from_regex(r"[0-9]{3,12}", fullmatch=True),
                                       "credentials": st.just({"page_access_token": "${FB_PAGE_TOKEN}"})},
                                      optional={**COMMON, "graph_version": st.just("v24.0")}),
}


@st.composite
def valid_configs(draw) -> dict:
    feeds = [draw(optional(every=duration(5, 7 * 86400), backfill=st.integers(0, 1000),
                           fetch_article=st.sampled_from(["auto", "always", "never"]),
                           max_age=duration(60, 3650 * 86400), websub=st.booleans(),
                           ping_token=st.sampled_from(["${PING_TOKEN}", "literal-token-0123456789"]))) | {
        "name": name, "url": draw(st.sampled_from(["https://example.org/rss.xml", "feeds/local.xml",
                                                   "https://example.org/f?token=${FEED_TOKEN}"]))}
        for name in draw(NAMES)]
    accounts = []
    for name in draw(NAMES):
        platform = draw(st.sampled_from(sorted(PLATFORMS)))
        accounts.append({"name": name, "platform": platform, **draw(PLATFORMS[platform])})
    routes = [{"feeds": draw(st.lists(st.sampled_from([f["name"] for f in feeds]), min_size=1)),
               "accounts": draw(st.lists(st.sampled_from([a["name"] for a in accounts]), min_size=1)),
               **draw(optional(priority=st.integers(-1000, 1000), filters=FILTERS, approve=st.booleans(),
                               template=st.sampled_from(["{title} {url}", "{title}: {lead:80} {url}"]),
                               utm=UTM))} for _ in range(draw(st.integers(0, 3)))]
    top = draw(optional(timezone=st.just("Europe/Berlin"), publish_every=duration(1, 3600),
                        log_level=st.sampled_from(["DEBUG", "info"]),
                        http=optional(connect_timeout=st.floats(0.1, 300), max_bytes=st.integers(1000, 10**9),
                                      max_redirects=st.integers(0, 30), allow_hosts=st.just(["10.0.0.0/8"])),
                        workers=optional(heartbeat=duration(1, 9), takeover_after=duration(20, 3600)),
                        public_url=st.sampled_from(["https://herald.example.org", "http://127.0.0.1:8080/hub"]),
                        http_listen=st.sampled_from(["127.0.0.1:9108", "0.0.0.0:9108"]),
                        desk=st.fixed_dictionaries({"token": st.just("${DESK_TOKEN}")},
                                                   optional={"user": st.just("editor"), "password_hash": st.just(
                                                       "pbkdf2_sha256$600000$c2FsdA$aGFzaA")})))
    if top.get("http_listen", "").startswith("0.0.0.0"):   # beyond loopback: the desk needs a lock
        top.setdefault("desk", {"token": "${DESK_TOKEN}"})
    return {"version": 1, **top, "feeds": feeds, "accounts": accounts, "routes": routes}


@FAST
@given(valid_configs())
def test_every_config_drawn_from_the_schema_loads(folder, raw):
    env_text = yaml.safe_dump(raw, sort_keys=False, allow_unicode=True)
    assert isinstance(outcome(folder, env_text), Config), env_text


# -- mutations of the shipped configs ------------------------------------------------

def nest(depth: int) -> object:
    value: object = "x"
    for _ in range(depth):
        value = [value]
    return value


JUNK = st.one_of(st.none(), st.booleans(), st.integers(-10**30, 10**30), st.sampled_from([10**400, -1, 0]),
                 st.floats(), st.text(max_size=30), st.sampled_from(["0s", "1s", "99999999999999d", "yes", "${NOPE}"]),
                 st.lists(st.integers(), max_size=3), st.dictionaries(st.text("ab", max_size=3), st.integers(), max_size=2),
                 st.integers(20, 60).map(nest))


def places(node, path=()) -> list[tuple]:
    """Every path into ``node``: the root, each key and each list item."""
    found = [path]
    children = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in children:
        found += places(child, path + (key,))
    return found


def mutate(data, node, path: tuple):
    """One mutation of ``node`` at ``path`` (drawn with hypothesis' ``data``)."""
    if not path:
        return data.draw(JUNK) if data.draw(st.integers(0, 9)) == 0 else node
    parent = node
    for key in path[:-1]:
        parent = parent[key]
    key, target = path[-1], parent[path[-1]]
    choice = data.draw(st.sampled_from(["junk", "delete", "swap", "extra"]))
    if choice == "delete":
        del parent[key]
    elif choice == "swap":   # the same values in the other kind of container
        parent[key] = list(target.values()) if isinstance(target, dict) else (
            dict(enumerate(target)) if isinstance(target, list) else [target])
    elif choice == "extra" and isinstance(target, dict):
        target[data.draw(st.text("xyz_", min_size=1, max_size=4))] = data.draw(JUNK)
    else:
        parent[key] = data.draw(JUNK)
    return node


@FAST
@given(st.sampled_from(sorted(SHIPPED)), st.data())
def test_mutated_shipped_configs_load_or_say_where(folder, name, data):
    node = yaml.safe_load(SHIPPED[name])
    for _ in range(data.draw(st.integers(1, 3))):
        node = mutate(data, node, data.draw(st.sampled_from(places(node))))
    outcome(folder, yaml.safe_dump(node, sort_keys=False, allow_unicode=True))


BOMB = "\nbomb0: &b0 [daily 07:00-22:00]\n" + "".join(
    f"bomb{i}: &b{i} [{', '.join([f'*b{i - 1}'] * 9)}]\n" for i in range(1, 10))
TEXT_EDITS = st.one_of(
    st.binary(min_size=1, max_size=8).map(lambda junk: ("insert", junk)),
    st.just(("append", BOMB.encode())),
    st.just(("append", b"\nwindows: " + b"[" * 500 + b"]" * 500)),
    st.just(("append", b"\nalias: *undefined\n")),
    st.just(("truncate", b"")),
    st.sampled_from([b"\t", b"&a ", b"*a ", b"? ", b"- ", b": ", b"!!binary ", b"'", b"{", b"%YAML 1.1\n"]).map(
        lambda token: ("insert", token)))


@FAST
@given(st.sampled_from(sorted(SHIPPED)), TEXT_EDITS, st.floats(0, 1))
def test_garbled_shipped_configs_load_or_say_where(folder, name, edit, where):
    text = SHIPPED[name].encode()
    at = int(len(text) * where)
    kind, chunk = edit
    garbled = {"insert": text[:at] + chunk + text[at:], "append": text + chunk, "truncate": text[:at]}[kind]
    outcome(folder, garbled)


def test_a_bomb_in_windows_is_refused_quickly(folder):
    text = SHIPPED["example.yaml"].replace('windows: ["mon-fri 07:00-22:00", "sat,sun 09:00-20:00"]',
                                           "windows: *b9")
    (line,) = outcome(folder, BOMB + text)
    assert "more than 500000 values (aliases expanded)" in line
