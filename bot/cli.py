"""Command line and wiring: the only module that builds objects and connects them."""
from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from bot import report, service
from bot.adapters import REGISTRY
from bot.adapters.console import ConsoleAdapter
from bot.articles import LeadFinder
from bot.config import Config, load
from bot.errors import ConfigError, FeedError, HeraldError, PublishError
from bot.http import HttpClient
from bot.lock import InstanceLock
from bot.poll import Poller
from bot.publish import Account, Publisher
from bot.secret import MaskingFilter
from bot.store import Store

log = logging.getLogger("bot")
DEFAULT_CONFIG = os.environ.get("HERALD_CONFIG", "config/herald.yaml")


def utc_now() -> datetime:
    return datetime.now(timezone.utc)


@dataclass
class App:
    config: Config
    store: Store
    client: HttpClient
    poller: Poller
    publisher: Publisher
    accounts: list[Account]


def build(config: Config, *, dry_run: bool = False, clock: Callable[[], datetime] = utc_now,
          exclusive: bool = True) -> App:
    """Wire the whole service from a validated config."""
    store = Store(config.database, clock)
    store.migrate()
    client = HttpClient(config.http)
    accounts = [Account(a, REGISTRY[a.platform](a.name, a.options, a.credentials, clock=clock,
                                                fetch_media=client.get_media))
                for a in config.accounts]
    poller = Poller(store, client, LeadFinder(client.get_page),
                    lambda feed: accounts_for(config, feed), clock)
    worker = f"{socket.gethostname()}:{os.getpid()}:{clock().timestamp():.0f}"
    console = ConsoleAdapter("dry-run", {}, {}) if dry_run else None
    publisher = Publisher(store, accounts, clock, worker, dry_run=console, exclusive=exclusive,
                          hashtags=lambda feed, account: hashtags_for(config, feed, account))
    return App(config, store, client, poller, publisher, accounts)


def accounts_for(config: Config, feed: str) -> list[tuple[str, int]]:
    """(account, priority) pairs routed from ``feed``; the highest priority wins."""
    found: dict[str, int] = {}
    for route in config.routes:
        if feed in route.feeds:
            for name in route.accounts:
                found[name] = max(found.get(name, route.priority), route.priority)
    return sorted(found.items())


def hashtags_for(config: Config, feed: str, account: str) -> dict[str, str]:
    merged = dict(next(a.hashtags for a in config.accounts if a.name == account))
    for route in config.routes:
        if feed in route.feeds and account in route.accounts:
            merged.update(route.hashtags)
    return merged


# -- commands -------------------------------------------------------------------

def cmd_check_config(args, config: Config) -> int:
    report.config_summary(config, sys.stdout)
    return 0


def cmd_once(args, config: Config) -> int:
    with _locked(config) as exclusive:
        app = build(config, dry_run=args.dry_run, exclusive=exclusive)
        for feed in config.feeds:
            app.poller.poll(feed, force=True)   # never raises for one feed's trouble
        app.publisher.run()
    # The database failing is logged once; the run still says it did not go well.
    return 1 if app.store.health.problem else 0


def cmd_run(args, config: Config) -> int:
    with _locked(config) as exclusive:
        app = build(config, dry_run=args.dry_run, exclusive=exclusive)
        scheduler = service.build_scheduler(config.feeds, app.poller.poll, app.publisher.run,
                                            config.timezone, config.publish_every)
        return service.run(scheduler, on_stop=app.publisher.stop)


def cmd_status(args, config: Config) -> int:
    app = build(config, exclusive=False)
    report.status(app.store, app.publisher, sys.stdout)
    return 0


def cmd_verify(args, config: Config) -> int:
    app = build(config, exclusive=False)
    failures = 0
    for account in app.accounts:
        try:
            who = account.adapter.verify()
            print(f"ok    {account.name} ({account.config.platform}): posting as {who}")
        except PublishError as exc:
            failures += 1
            print(f"FAIL  {account.name} ({account.config.platform}): {type(exc).__name__}: "
                  f"{exc.message or 'no details'}")
    return 1 if failures else 0


def cmd_preview(args, config: Config) -> int:
    app = build(config, exclusive=False)
    if args.schedule:
        report.schedule_preview(app.publisher, sys.stdout)
        return 0
    previewer = report.Previewer(config, app.client, LeadFinder(app.client.get_page), app.accounts,
                                 lambda feed, account: hashtags_for(config, feed, account),
                                 lambda feed: accounts_for(config, feed))
    try:
        articles = previewer.articles(source=args.source, html=args.html, url=args.url,
                                      limit=args.limit)
    except (FeedError, OSError) as exc:
        print(f"preview: {getattr(exc, 'reason', exc)}", file=sys.stderr)
        return 1
    previewer.show(articles, sys.stdout, as_json=args.json)
    return 0


def cmd_retry(args, config: Config) -> int:
    app = build(config, exclusive=False)
    n = app.store.retry(row_id=args.post, account=args.account)
    print(f"{n} post(s) queued again")
    return 0 if n else 1


def cmd_skip(args, config: Config) -> int:
    app = build(config, exclusive=False)
    n = app.store.skip(args.post)
    print(f"{n} post(s) skipped" if n else f"post {args.post} is not pending or failed")
    return 0 if n else 1


def cmd_resume(args, config: Config) -> int:
    if args.account not in {a.name for a in config.accounts}:
        print(f"resume: unknown account {args.account!r}", file=sys.stderr)
        return 2
    app = build(config, exclusive=False)
    app.store.set_account(args.account, paused_reason=None, paused_until=None,
                          wait_reason=None, auth_failed_fingerprint=None)
    print(f"account {args.account} resumed")
    return 0


class _locked:
    """Hold the instance lock while the service or ``once`` runs; yields whether
    this process is the database's only Herald."""

    def __init__(self, config: Config):
        self.lock = InstanceLock(config.database)

    def __enter__(self) -> bool:
        self.lock.acquire()
        return self.lock.exclusive

    def __exit__(self, *exc) -> None:
        self.lock.release()


# -- argument parsing -----------------------------------------------------------

COMMANDS = {
    "run": (cmd_run, "run the service: poll feeds and publish on schedule (default)"),
    "once": (cmd_once, "poll every feed once and run one publish pass, then exit"),
    "check-config": (cmd_check_config, "validate the config and print a summary (exit 0 or 2)"),
    "preview": (cmd_preview, "print the posts that would be made, recording nothing"),
    "status": (cmd_status, "feeds, outbox counts, queues with planned times, failed and recent posts"),
    "verify": (cmd_verify, "check each account's credentials against its platform"),
    "retry": (cmd_retry, "queue a failed post again, or all failed posts of an account"),
    "skip": (cmd_skip, "drop a pending or failed post for good"),
    "resume": (cmd_resume, "resume an account paused after an auth failure or rate limit"),
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="run_bot.py", description="Herald: newsroom feeds to X and "
                                "Facebook Pages. Commands take --help too.")
    p.add_argument("--config", default=DEFAULT_CONFIG,
                   help=f"YAML config file (default: $HERALD_CONFIG or {DEFAULT_CONFIG})")
    p.add_argument("--log-level", choices=["DEBUG", "INFO", "WARNING", "ERROR"],
                   help="overrides log_level from the config")
    p.add_argument("--dry-run", action="store_true",
                   help="every account prints to the console; nothing reaches a platform")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")
    subs = {name: sub.add_parser(name, help=text, description=text)
            for name, (_, text) in COMMANDS.items()}
    pv = subs["preview"]
    pv.add_argument("source", nargs="?", help="a feed URL or file instead of the configured feeds")
    pv.add_argument("--html", help="a saved article page to run the whole pipeline on (with --url)")
    pv.add_argument("--url", help="the page's URL, for --html")
    pv.add_argument("--limit", type=int, default=5, help="items per feed (default 5)")
    pv.add_argument("--json", action="store_true", help="one JSON object per article")
    pv.add_argument("--schedule", action="store_true", help="the next 24 hours of planned posts")
    rt = subs["retry"]
    group = rt.add_mutually_exclusive_group(required=True)
    group.add_argument("post", nargs="?", type=int, help="outbox id of the post (see status)")
    group.add_argument("--account", help="re-queue every failed post of this account")
    subs["skip"].add_argument("post", type=int, help="outbox id of the post (see status)")
    subs["resume"].add_argument("account", help="account name from the config")
    return p


def setup_logging(level: str) -> None:
    """Logs go to stderr, one line per event; known secret values are masked."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s",
                                           "%Y-%m-%d %H:%M:%S"))
    handler.addFilter(MaskingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # urllib3 and oauthlib log URLs and headers at DEBUG: they pass, like every
    # record, through the mask filter above. The extractors only make noise.
    for noisy in ("trafilatura", "htmldate", "courlan"):
        logging.getLogger(noisy).setLevel(max(logging.getLevelName(level), logging.INFO))
    for chatty in ("alembic", "apscheduler"):  # a line per job run is not an event
        logging.getLogger(chatty).setLevel(max(logging.getLevelName(level), logging.WARNING))
    # A job's error is logged by service._job_failed (a traceback for a bug, one
    # line for the database): APScheduler's own copy would repeat it.
    logging.getLogger("apscheduler.executors").setLevel(logging.CRITICAL)


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    command = args.command or "run"
    setup_logging(args.log_level or "INFO")
    try:
        config = load(args.config)
    except ConfigError as exc:
        for problem in exc.problems:
            print(f"config error: {problem}", file=sys.stderr)
        return 2
    setup_logging(args.log_level or config.log_level)
    try:
        return COMMANDS[command][0](args, config)
    except HeraldError as exc:
        if not getattr(exc, "logged", False):
            print(f"herald: {exc}", file=sys.stderr)
        return 1
