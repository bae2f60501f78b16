"""A secret value that cannot leak by accident: its str, repr and format are masked."""
from __future__ import annotations

import logging
from urllib.parse import quote


class Secret:
    """Wraps a credential. Call ``reveal()`` at the one place the value is sent."""

    __slots__ = ("_value",)

    def __init__(self, value: str):
        self._value = value
        # the value as written, and as it appears inside a URL or a form body
        _known.update({value, quote(value, safe=""), quote(value, safe="").replace("%20", "+")})

    def reveal(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('***')"

    __str__ = __format__ = lambda self, *_: "***"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(("Secret", self._value))

    def __bool__(self) -> bool:
        return bool(self._value)


# Every secret value created in this process, so the log filter can mask it even
# when a library formats it into a message we never see (urllib3 URLs, tracebacks).
_known: set[str] = set()


def mask(text: str) -> str:
    """Replace every known secret value (4+ characters) in ``text`` by ***."""
    for value in _known:
        if len(value) >= 4 and value in text:
            text = text.replace(value, "***")
    return text


class MaskingFilter(logging.Filter):
    """Logging filter that masks known secret values in the final message."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        masked = mask(message)
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text)
        if masked != message:
            record.msg, record.args = masked, None
        return True
