"""Whatever the platform answers, an adapter returns a receipt with an id or raises
one of Herald's publish errors: generated statuses, bodies and headers, sent to
both adapters through the fake server."""
from __future__ import annotations

import json
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from bot.errors import PublishError, RateLimited, Suspended
from bot.models import Receipt
from fakes import FakeApi
from test_adapter_contract import FACEBOOK, NOW, POST, SINCE, TWITTER

EXAMPLES = settings(max_examples=120, deadline=None, derandomize=True, database=None,
                    suppress_health_check=[HealthCheck.function_scoped_fixture,
                                           HealthCheck.too_slow])
STATUSES = st.sampled_from([200, 201, 202, 204, 301, 302, 304, 400, 401, 402, 403, 404, 409,
                            413, 429, 500, 502, 503, 504]) | st.integers(200, 599)
IDS = st.one_of(st.none(), st.booleans(), st.integers(), st.just(""), st.just("  "),
                st.text(max_size=6), st.lists(st.integers(), max_size=2),
                st.just("1860000000000000042"))
WORDS = st.text(max_size=20)
PROBLEMS = st.sampled_from(["about:blank", "https://api.x.com/2/problems/credits",
                            "https://api.x.com/2/problems/usage-capped",
                            "https://api.twitter.com/2/problems/client-forbidden",
                            "https://api.twitter.com/2/problems/invalid-request", ""]) | WORDS
GRAPH_CODES = st.sampled_from([1, 2, 3, 4, 10, 17, 32, 100, 102, 190, 200, 341, 368, 506,
                               613, 80001]) | st.integers() | st.text(max_size=4) | st.none()
JSON = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | WORDS,
                    lambda inner: st.lists(inner, max_size=3)
                    | st.dictionaries(WORDS, inner, max_size=3), max_leaves=8)

X_BODIES = st.one_of(
    st.fixed_dictionaries({"data": st.fixed_dictionaries({"id": IDS, "text": WORDS})}),
    st.fixed_dictionaries({"data": JSON}),
    st.fixed_dictionaries({"title": WORDS, "detail": JSON, "type": PROBLEMS, "status": JSON},
                          optional={"reason": WORDS, "errors": JSON}),
    st.fixed_dictionaries({"errors": st.lists(st.fixed_dictionaries({"message": JSON}))}),
)
GRAPH_BODIES = st.one_of(
    st.fixed_dictionaries({"id": IDS}, optional={"post_id": IDS}),
    st.fixed_dictionaries({"error": st.fixed_dictionaries(
        {"code": GRAPH_CODES, "message": JSON},
        optional={"error_subcode": GRAPH_CODES, "is_transient": JSON, "type": WORDS})}),
    st.fixed_dictionaries({"error": JSON}),
)
HEADER_NAMES = st.sampled_from([
    "Retry-After", "x-rate-limit-reset", "x-rate-limit-remaining", "x-user-limit-24hour-reset",
    "x-user-limit-24hour-remaining", "x-app-limit-24hour-reset", "x-app-limit-24hour-remaining",
    "X-App-Usage", "X-Page-Usage", "X-Business-Use-Case-Usage"])
HEADER_VALUES = st.one_of(
    st.integers(-10 ** 12, 10 ** 20).map(str),
    st.just("0"), st.just("Wed, 21 Oct 2026 07:28:00 GMT"),
    st.just("Thu, 01 Jan 9999 00:00:00 GMT"),
    st.text(st.characters(min_codepoint=32, max_codepoint=126), max_size=12),
    st.dictionaries(st.sampled_from(["call_count", "total_time", "100000000000001"]),
                    st.integers(0, 10 ** 9) | st.floats(allow_nan=False)
                    | st.lists(st.fixed_dictionaries(
                        {"estimated_time_to_regain_access": st.integers(-5, 10 ** 12)
                         | st.floats()})), max_size=2).map(json.dumps),
)
CONTENT_TYPES = st.sampled_from(["application/json", "application/json; charset=UTF-8",
                                 "text/html", "text/plain", None])


def answers(bodies):
    """Scripted raw answers: a status, a body (shaped, any JSON, bytes, or cut), headers."""
    body = st.one_of(bodies, bodies, JSON, st.binary(max_size=30),
                     st.just("<html><body>Bad Gateway</body></html>"), st.just(b""))
    return st.fixed_dictionaries({
        "status": STATUSES,
        "body": body,
        "headers": st.dictionaries(HEADER_NAMES, HEADER_VALUES, max_size=3),
        "content_type": CONTENT_TYPES,
        "cut": st.none() | st.none() | st.integers(0, 40),
        "length": st.booleans(),
    })


@pytest.fixture(scope="module")
def fake():
    with FakeApi(hang_seconds=1.0) as api:
        yield api


def outcome(call):
    """What ``call`` gave: a value, or the publish error it raised (anything else escapes)."""
    try:
        return call()
    except PublishError as exc:
        return exc


def ids_in(body) -> set[str]:
    """Every string or integer an ``id`` or ``post_id`` key holds, anywhere in ``body``."""
    if isinstance(body, list):
        return set().union(*map(ids_in, body))
    if not isinstance(body, dict):
        return set()
    found = {str(v).strip() for k, v in body.items() if k in ("id", "post_id")
             and isinstance(v, (str, int)) and not isinstance(v, bool)}
    return found.union(*map(ids_in, body.values()))


def assert_in_vocabulary(result, answer: dict) -> None:
    if isinstance(result, Receipt):
        assert isinstance(result.platform_id, str) and result.platform_id.strip()
        assert 200 <= answer["status"] < 300, "sent only on a success"
        assert result.platform_id in ids_in(answer["body"]), "the id is the platform's"
        return
    assert isinstance(result, PublishError), f"not in the vocabulary: {result!r}"
    if isinstance(result, RateLimited):
        assert NOW < result.until <= NOW + timedelta(days=32)
    if isinstance(result, Suspended):
        assert "resume acct" in result.action


def send(fake, adapter, answer: dict, call):
    fake.script("raw", **answer)
    result = outcome(call)
    assert fake.next_fault("/") is None, "the scripted answer was used"
    assert_in_vocabulary(result, answer)
    return result


@pytest.mark.parametrize("case, bodies", [(TWITTER, X_BODIES), (FACEBOOK, GRAPH_BODIES)],
                         ids=["twitter", "facebook"])
@EXAMPLES
@given(data=st.data())
def test_publish_gives_a_receipt_with_an_id_or_a_publish_error(fake, case, bodies, data):
    adapter = case.make(fake.url, deadline=2.0)
    send(fake, adapter, data.draw(answers(bodies)), lambda: adapter.publish(POST))


@pytest.mark.parametrize("case, bodies", [(TWITTER, X_BODIES), (FACEBOOK, GRAPH_BODIES)],
                         ids=["twitter", "facebook"])
@EXAMPLES
@given(data=st.data())
def test_find_recent_never_says_absent_from_an_answer_it_could_not_read(fake, case, bodies,
                                                                         data):
    adapter = case.make(fake.url, deadline=2.0)
    if case is TWITTER:
        adapter._user_id = "1500000000000000001"     # no /2/users/me to script around
    answer = data.draw(answers(bodies))
    result = send(fake, adapter, answer, lambda: adapter.find_recent(POST, SINCE))
    if result is None:       # "not there" needs a whole, well-formed page
        body = answer["body"]
        assert 200 <= answer["status"] < 300 and answer["cut"] is None
        assert isinstance(body, dict)
        assert "result_count" in (body.get("meta") or {}) if case is TWITTER \
            else isinstance(body.get("data"), list)


@pytest.mark.parametrize("case, bodies", [(TWITTER, X_BODIES), (FACEBOOK, GRAPH_BODIES)],
                         ids=["twitter", "facebook"])
@settings(EXAMPLES, max_examples=60)
@given(data=st.data())
def test_verify_names_an_account_or_raises_a_publish_error(fake, case, bodies, data):
    adapter = case.make(fake.url, deadline=2.0)
    answer = data.draw(answers(bodies))
    fake.script("raw", **answer)
    result = outcome(adapter.verify)
    assert isinstance(result, (str, PublishError)), f"not in the vocabulary: {result!r}"
