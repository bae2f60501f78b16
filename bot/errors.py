"""Herald's error tree. Everything Herald raises on purpose is one of these:

    HeraldError
    ├── ConfigError        the YAML file is wrong; carries one line per problem
    ├── FeedError          one feed could not be fetched or parsed; the others go on
    ├── StoreError         the database cannot be used now (full disk, read-only,
    │                      not a database); ``fatal`` when waiting cannot help
    └── PublishError       one post could not be published; raised by adapters only
        ├── AuthFailed     credentials rejected: pause the account until the user acts
        ├── Suspended      the account cannot post until a person acts (X credits
        │                  depleted): pause it, lift with `resume`
        ├── RateLimited    the platform said "not before `until`": that account waits
        ├── Transient      5xx, timeout, connection error: retry with back-off
        ├── Rejected       the platform refused this post for good: fail it
        └── AlreadyPosted  the platform says it has this post: record it as sent

Adapters translate their library's exceptions into these at the boundary
(``raise RateLimited(until) from exc``); nothing above an adapter sees a tweepy,
facebook or requests exception. Messages never contain secret values.
"""
from __future__ import annotations

from datetime import datetime


class HeraldError(Exception):
    """Base of every error Herald raises on purpose."""


class ConfigError(HeraldError):
    """The configuration is invalid. ``problems`` holds one line per problem,
    each starting with the key path (``accounts[1].schedule.min_gap: ...``)."""

    SHOWN = 50   # lines printed or logged: thousands of them would bury the first

    def __init__(self, problems: list[str] | str):
        self.problems = [problems] if isinstance(problems, str) else list(problems)
        super().__init__("\n".join(self.shown()))

    def shown(self) -> list[str]:
        """The problems to print: the first SHOWN, then how many more there are
        (a route naming thousands of unknown feeds is one mistake, not a log)."""
        more = len(self.problems) - self.SHOWN
        if more <= 0:
            return self.problems
        return [*self.problems[:self.SHOWN], f"... and {more} more problem(s) like these"]


class FeedError(HeraldError):
    """A feed could not be fetched or parsed.

    ``retry_after`` (seconds) is set when the server said when to come back;
    ``gone`` is True when the feed is permanently gone (HTTP 410)."""

    def __init__(self, reason: str, *, retry_after: float | None = None, gone: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after
        self.gone = gone


class StoreError(HeraldError):
    """The database failed for a reason outside Herald: a full disk, a read-only
    file or folder, a file that is not a database, a server that is down. The
    message is one line naming the database and what to do. ``fatal`` is True
    when the service must stop (the file was deleted or replaced under it);
    otherwise the next job tries again and goes on when the cause has passed."""

    def __init__(self, message: str, *, fatal: bool = False):
        super().__init__(message)
        self.fatal = fatal
        self.logged = False  # set once the store has logged it: say it once


class PublishError(HeraldError):
    """An adapter could not publish a post. ``message`` is the platform's own words
    when it gave any."""

    def __init__(self, message: str = ""):
        super().__init__(message)
        self.message = message


class AuthFailed(PublishError):
    """The platform rejected the account's credentials or permissions."""


class Suspended(PublishError):
    """The account may not post until a person acts on the platform's side
    (X's 402 CreditsDepleted: top up). ``action`` says what to do, in a line."""

    def __init__(self, message: str = "", action: str = ""):
        super().__init__(message)
        self.action = action


class RateLimited(PublishError):
    """The platform asked us to wait; ``until`` is an aware UTC datetime.
    ``reason`` names the kind of limit in a few words (default "rate limited")."""

    def __init__(self, until: datetime, message: str = "", *, reason: str = "rate limited"):
        super().__init__(message or f"{reason} until {until.isoformat()}")
        self.until = until
        self.reason = reason  # what kind of wait, for status: "monthly usage cap reached"


class Transient(PublishError):
    """A failure that may pass: server error, timeout, connection error."""


class Stopped(Transient):
    """Herald stopped a call before it started (``Adapter.gated``): that call
    sent nothing, but an earlier one of the same publish may have, unless
    ``first`` (no call of the block had started)."""

    first = False


class Rejected(PublishError):
    """The platform refused this post; retrying it unchanged will not help."""


class AlreadyPosted(PublishError):
    """The platform already has this post. ``platform_id`` (and its permalink
    ``url``) are set when known."""

    def __init__(self, message: str = "", platform_id: str | None = None,
                 url: str | None = None):
        super().__init__(message)
        self.platform_id = platform_id
        self.url = url
