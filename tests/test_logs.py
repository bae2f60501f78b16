"""bot.logs: text and JSON lines, secrets masked in both, APScheduler's skipped-run warning dropped."""
from __future__ import annotations

import io
import json
import logging
import re
import threading
import time
from datetime import datetime, timedelta, timezone

import pytest
from apscheduler.schedulers.background import BackgroundScheduler
from hypothesis import given, settings, strategies as st

from bot.logs import JsonFormatter, setup_logging
from bot.secret import MaskingFilter, Secret, mask

TOKEN = Secret("tok-3f9a1c77e2b04d")   # registered for masking as it is created
LIBRARIES = ("trafilatura", "htmldate", "courlan", "alembic", "apscheduler", "apscheduler.executors")


@pytest.fixture
def logs():
    """setup_logging into a buffer; the root logger and library levels restored after."""
    root = logging.getLogger()
    saved = root.handlers[:], root.level, {name: logging.getLogger(name).level for name in LIBRARIES}
    buffer = io.StringIO()

    def setup(fmt: str, level: str = "INFO") -> io.StringIO:
        setup_logging(level, fmt, stream=buffer)
        return buffer

    yield setup
    root.handlers[:], level, libraries = saved
    root.setLevel(level)
    for name, lib_level in libraries.items():
        logging.getLogger(name).setLevel(lib_level)


def json_lines(buffer: io.StringIO) -> list[dict]:
    return [json.loads(line) for line in buffer.getvalue().splitlines()]


def test_text_lines_are_as_before(logs):
    out = logs("text")
    logging.getLogger("bot.poll").info("feed %s: polled, %d new", "news", 3)
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d INFO bot\.poll: feed news: polled, 3 new\n",
                        out.getvalue())


def test_json_is_one_object_per_line_with_time_level_logger_message(logs):
    out = logs("json")
    before = datetime.now(timezone.utc)
    logging.getLogger("bot.publish").warning("account %s: rate limited", "newsroom")
    logging.getLogger("bot.poll").info("two\nlines")
    first, second = json_lines(out)
    assert set(first) == {"time", "level", "logger", "message"}
    assert (first["level"], first["logger"], first["message"]) == ("WARNING", "bot.publish",
                                                                   "account newsroom: rate limited")
    assert first["time"].endswith("Z")
    stamp = datetime.fromisoformat(first["time"].replace("Z", "+00:00"))
    assert stamp.utcoffset() == timedelta(0) and abs(stamp - before) < timedelta(seconds=5)
    assert second["message"] == "two\nlines" and len(out.getvalue().splitlines()) == 2


def test_json_carries_the_context_fields_a_record_has(logs):
    out = logs("json")
    log = logging.getLogger("bot.publish")
    log.info("post sent", extra={"feed": "news", "account": "newsroom-x", "post": 42, "platform": "x"})
    log.info("no context", extra={"unrelated": "kept out"})
    sent, plain = json_lines(out)
    assert {k: sent[k] for k in ("feed", "account", "post", "platform")} == {
        "feed": "news", "account": "newsroom-x", "post": 42, "platform": "x"}
    assert "unrelated" not in plain and "feed" not in plain


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_secret_in_the_message_or_an_extra_never_reaches_the_output(logs, fmt):
    out = logs(fmt, level="DEBUG")
    log = logging.getLogger("urllib3.connectionpool")
    log.debug("GET /feed?access_token=%s", TOKEN.reveal())
    log.info("inline tok-3f9a1c77e2b04d too")
    log.info("extra", extra={"account": f"acct {TOKEN.reveal()}", "feed": TOKEN})
    text = out.getvalue()
    assert TOKEN.reveal() not in text
    # text lines show no extras; JSON shows both, masked
    assert text.count("***") == (2 if fmt == "text" else 4)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_a_secret_inside_a_traceback_is_masked(logs, fmt):
    out = logs(fmt)
    try:
        raise RuntimeError(f"auth failed for {TOKEN.reveal()}")
    except RuntimeError:
        logging.getLogger("bot.publish").exception("account %s: unexpected error", "newsroom")
    assert TOKEN.reveal() not in out.getvalue()
    assert "RuntimeError: auth failed for ***" in out.getvalue()


def test_an_exception_is_one_json_line_with_the_traceback_as_a_field(logs):
    out = logs("json")
    try:
        1 / 0
    except ZeroDivisionError:
        logging.getLogger("bot.service").exception("job poll:news failed")
    assert len(out.getvalue().splitlines()) == 1
    (line,) = json_lines(out)
    assert line["message"] == "job poll:news failed" and line["level"] == "ERROR"
    assert line["exc"].startswith("Traceback (most recent call last):")
    assert line["exc"].rstrip().endswith("ZeroDivisionError: division by zero")


@settings(max_examples=200, deadline=None)
@given(st.text())
def test_any_message_survives_the_json_round_trip_on_one_line(message):
    # Its own handler on its own logger: hypothesis runs many examples in one test.
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(JsonFormatter())
    handler.addFilter(MaskingFilter())
    logger = logging.getLogger("herald.test.roundtrip")
    logger.addHandler(handler)
    logger.propagate = False
    try:
        logger.warning("%s", message)
    finally:
        logger.removeHandler(handler)
    assert len(buffer.getvalue().splitlines()) == 1
    assert json.loads(buffer.getvalue())["message"] == mask(message)


def test_library_levels_are_as_before(logs):
    logs("text", level="DEBUG")
    assert logging.getLogger("trafilatura").level == logging.INFO
    assert logging.getLogger("apscheduler").level == logging.WARNING
    assert logging.getLogger("apscheduler.executors").level == logging.CRITICAL
    assert logging.getLogger().level == logging.DEBUG


def test_an_unknown_format_is_refused():
    with pytest.raises(ValueError, match="expected one of text, json"):
        setup_logging("INFO", "xml")


class Seen(logging.Handler):
    """What reached the root logger before any filter of ours."""

    def __init__(self):
        super().__init__()
        self.records: list[logging.LogRecord] = []

    def emit(self, record):
        self.records.append(record)


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_apschedulers_skipped_run_warning_is_dropped_and_its_other_warnings_kept(logs, fmt):
    out = logs(fmt)
    seen = Seen()
    logging.getLogger().addHandler(seen)
    release = threading.Event()
    scheduler = BackgroundScheduler(timezone="UTC")
    # A job that runs longer than its interval: APScheduler warns at every missed turn.
    scheduler.add_job(release.wait, "interval", seconds=0.05, max_instances=1, id="slow")
    scheduler.start()
    try:
        deadline = time.monotonic() + 5
        while not any("maximum number of running instances" in r.getMessage() for r in seen.records):
            assert time.monotonic() < deadline, "APScheduler never reported the skipped run"
            time.sleep(0.02)
    finally:
        release.set()
        scheduler.shutdown(wait=True)
        logging.getLogger().removeHandler(seen)
    logging.getLogger("apscheduler.scheduler").warning("Run time of job %s was missed by %s", "slow", "0:00:03")
    assert "maximum number of running instances" not in out.getvalue()
    assert "Run time of job slow was missed by 0:00:03" in out.getvalue()
