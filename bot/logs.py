"""Where log lines go and how they look: text for people, or one JSON object per line for
a log shipper. Called once by cli; modules only ever use ``logging.getLogger(__name__)``.
Known secret values are masked in both formats, extras and tracebacks included."""
from __future__ import annotations

import json
import logging
import sys
from datetime import datetime, timezone
from typing import TextIO

from bot.secret import MaskingFilter, mask

# The fields a record may carry (``log.info(..., extra={"feed": name})``) that say what
# the line is about; JSON lines give them their own keys so they can be searched.
CONTEXT = ("feed", "account", "post", "platform")
FORMATS = ("text", "json")


def setup_logging(level: str, fmt: str = "text", stream: TextIO | None = None) -> None:
    """Send every record to ``stream`` (stderr) as ``fmt`` ("text" or "json") from
    ``level`` up, known secrets masked; replaces whatever handlers the root logger had."""
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r}: expected one of {', '.join(FORMATS)}")
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.setFormatter(JsonFormatter() if fmt == "json" else _text_formatter())
    handler.addFilter(SkippedRunFilter())
    handler.addFilter(MaskingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    _quiet_libraries(level)


def _text_formatter() -> logging.Formatter:
    return logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s", "%Y-%m-%d %H:%M:%S")


def _quiet_libraries(level: str) -> None:
    # urllib3 and oauthlib log URLs and headers at DEBUG: they pass, like every
    # record, through the mask filter. The extractors only make noise.
    floor = logging.getLevelName(level)
    for noisy in ("trafilatura", "htmldate", "courlan"):
        logging.getLogger(noisy).setLevel(max(floor, logging.INFO))
    for chatty in ("alembic", "apscheduler"):  # a line per job run is not an event
        logging.getLogger(chatty).setLevel(max(floor, logging.WARNING))
    # A job's error is logged by service._job_failed (a traceback for a bug, one
    # line for the database): APScheduler's own copy would repeat it.
    logging.getLogger("apscheduler.executors").setLevel(logging.CRITICAL)


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (ISO 8601, UTC), level, logger, message, the
    record's CONTEXT fields when it has them, and ``exc`` (the traceback) after an
    exception. Runs after MaskingFilter; extras are masked here, as that filter sees
    only the message and the traceback."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, object] = {
            "time": _iso_utc(record.created),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key in CONTEXT:
            if hasattr(record, key):
                line[key] = _plain(getattr(record, key))
        if record.exc_info and not record.exc_text:
            record.exc_text = mask(self.formatException(record.exc_info))
        if record.exc_text:
            line["exc"] = record.exc_text
        if record.stack_info:
            line["stack"] = mask(self.formatStack(record.stack_info))
        # ASCII only: U+2028 or U+0085 left raw would split the line for some readers
        return json.dumps(line, default=str)


def _iso_utc(created: float) -> str:
    moment = datetime.fromtimestamp(created, timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _plain(value: object) -> object:
    """Whole numbers (a post id) stay numbers; anything else becomes its masked text."""
    if value is None or type(value) is int:
        return value
    return mask(str(value))


class SkippedRunFilter(logging.Filter):
    """Drops APScheduler's "skipped: maximum number of running instances reached"
    warning: a poll still running when its next turn comes is routine for a slow feed
    (the next turn simply waits), not something for the operator to act on."""

    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.name.startswith("apscheduler")
                    and "skipped: maximum number of running instances" in str(record.msg))
