"""No secret value in any output: logs at DEBUG (urllib3 included), command
output, error messages or the database, through success, failure and auth errors."""
from __future__ import annotations

import os
import re
import sqlite3
import string
import subprocess
import sys
from pathlib import Path

from hypothesis import given, strategies as st

from bot.secret import seal, unseal
from fakes import PAGE_TOKEN, X_ACCESS_SECRET, X_ACCESS_TOKEN, X_CONSUMER_SECRET  # noqa: F401
from fakes import X_CONSUMER_KEY, fake_api  # noqa: F401  (fixture)
from test_platforms_e2e import config  # noqa: F401  (fixture)

ROOT = Path(__file__).resolve().parents[1]
SECRETS = [X_CONSUMER_KEY, X_CONSUMER_SECRET, X_ACCESS_TOKEN, X_ACCESS_SECRET, PAGE_TOKEN]


def herald(config: str, *argv: str) -> str:
    """Run Herald as a real process at DEBUG; return everything it printed."""
    done = subprocess.run([sys.executable, str(ROOT / "run_bot.py"), "--config", config,
                           "--log-level", "DEBUG", *argv], capture_output=True, text=True,
                          timeout=60, env={**os.environ, "PYTHONPATH": str(ROOT)})
    return done.stdout + done.stderr


def database_dump(config: str) -> str:
    db = Path(config).parent.parent / "data" / "demo.db"
    with sqlite3.connect(db) as conn:
        return "\n".join(conn.iterdump())


def test_no_secret_in_logs_output_errors_or_database(config, fake_api):  # noqa: F811
    # Each failure makes its account wait (back-off, pause), so each run
    # meets one answer per account: a rate limit and an auth failure, then
    # after `resume` a server error and a success.
    fake_api.script("429", path="/2/tweets", reset=None)
    fake_api.script("graph-190", path="/feed")
    seen = [herald(config, "verify"), herald(config, "once")]
    fake_api.script("500", path="/2/tweets")
    seen += [herald(config, "resume", "newsroom-x"), herald(config, "resume", "newsroom-fb"),
             herald(config, "once")]
    fake_api.script("graph-190", path="/me")
    seen += [herald(config, "verify"), herald(config, "status")]
    everything = "\n".join(seen) + database_dump(config)
    assert "DEBUG urllib3" in everything, "the test must see urllib3's debug output"
    for path in ("post sent", "failed (", "rate limited until", "rejected its credentials", "FAIL "):
        assert path in everything, f"the run must go through {path!r}"
    for secret in SECRETS:
        assert secret not in everything
        assert secret[4:-4] not in everything, "not even a part of it"


def test_masking_while_other_threads_register_never_raises():
    import threading

    from bot.secret import mask, register

    errors: list[BaseException] = []

    def keep_registering():
        for n in range(3000):
            register(f"race-secret-{n:06d}")

    thread = threading.Thread(target=keep_registering)
    thread.start()
    while thread.is_alive():
        try:
            mask("a line with race-secret-000001 in it")
        except RuntimeError as exc:
            errors.append(exc)
    thread.join()
    assert errors == []
    assert mask("race-secret-002999") == "***"


# -- a feed URL's token in a stored URL ------------------------------------------

_TOKEN = st.text(alphabet=string.ascii_letters + string.digits + "-._~%", min_size=4, max_size=24)


@given(user=st.sampled_from(["", "reader"]), password=_TOKEN, key=_TOKEN, other=_TOKEN,
       path=st.text(alphabet=string.ascii_letters + "/", max_size=12))
def test_a_sealed_url_holds_none_of_its_sources_secrets_and_unseals_exactly(user, password, key,
                                                                            other, path):
    auth = f"{user}:{password}@" if user else ""
    source = f"https://{auth}news.example/feed/{path}?key={key}&page={other}"
    moved = f"https://{auth}news.example/moved/{path}?page={other}&key={key}&v=2"
    sealed = seal(moved, source)
    outside = re.sub(r"\{secret:\d+:\d+\}", "{}", sealed)   # placeholders spell "secret"
    for value in ([password] if user else []) + [key, other]:
        assert value not in outside
    assert unseal(sealed, source) == moved


def test_unseal_refuses_a_placeholder_its_source_cannot_fill():
    assert unseal("https://h/{secret:5:900}", "https://h/feed?k=abcd") is None
    assert unseal("https://h/plain", "https://h/feed") == "https://h/plain"
