"""Command line and wiring: the only module that builds objects and connects them."""
from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

from bot import __version__, desk, listener, logs, metrics, push, report, sdnotify, service
from bot.adapters import REGISTRY
from bot.adapters.console import ConsoleAdapter
from bot.articles import LeadFinder
from bot.config import Config, load
from bot.deskdata import DeskBackend
from bot.errors import ConfigError, FeedError, HeraldError, PublishError
from bot.http import HttpClient
from bot.leases import ONCE, Leases
from bot.lock import InstanceLock
from bot.poll import Poller
from bot.publish import Account, Publisher
from bot.store import Store

log = logging.getLogger("bot")
DEFAULT_CONFIG = os.environ.get("HERALD_CONFIG", "config/herald.yaml")
HEALTHY_BEAT = timedelta(minutes=2)   # a heartbeat older than this: no service running
WEBSUB_BODY = 4_000_000   # bytes a hub's notification may carry (a fat ping: the feed itself)
ONCE_POLLS = 4   # feeds ``once`` polls at the same time (the service's poll threads)
# What a reload does not change in a running service (it says so).
RESTART_KEYS = ("http_listen", "publish_every", "timezone", "log_level", "log_format", "workers",
                "desk", "public_url")


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


# What each command does to the schema: the service and ``once`` bring it up to
# date; the read-only commands never change it (they say "run migrate").
MIGRATE, REQUIRE, IGNORE = "migrate", "require", "ignore"


def build(config: Config, *, dry_run: bool = False, clock: Callable[[], datetime] = utc_now,
          exclusive: bool = True, schema: str = MIGRATE, observer=None,
          store: Store | None = None, client: HttpClient | None = None,
          worker: str | None = None, leases: Leases | None = None,
          fetched: Callable[[str, str | None, str | None], object] | None = None) -> App:
    """Wire the whole service from a validated config. A reload passes the
    running ``store``, ``client`` and ``worker`` so that only the config changes."""
    if store is None:
        store = Store(config.database, clock)
        if schema == MIGRATE:
            store.migrate()
        elif schema == REQUIRE:
            store.require_current()
    client = client or HttpClient(config.http)
    accounts = [Account(a, REGISTRY[a.platform](a.name, a.options, a.credentials, clock=clock,
                                                fetch_media=client.get_media))
                for a in config.accounts]
    targets = {feed.name: config.targets(feed.name) for feed in config.feeds}  # filters compiled once
    poller = Poller(store, client, LeadFinder(client.get_page), targets.__getitem__, clock,
                    observer=observer, fetched=fetched)
    worker = worker or worker_id(clock)
    console = ConsoleAdapter("dry-run", {}, {}) if dry_run else None
    publisher = Publisher(store, accounts, clock, worker, dry_run=console, exclusive=exclusive,
                          style=config.style, observer=observer, leases=leases)
    return App(config, store, client, poller, publisher, accounts)


def worker_id(clock: Callable[[], datetime] = utc_now, prefix: str = "") -> str:
    return f"{prefix}{socket.gethostname()}:{os.getpid()}:{clock().timestamp():.0f}"


class Worker:
    """This process as one of the database's workers: its heartbeat row and
    its leases (bot.leases), written together (the beat keeps the leases)."""

    def __init__(self, store: Store, config: Config, *, prefix: str = "", exclusive: bool = False,
                 takes_work: bool = True):
        self.store, self.config = store, config
        # A dry run posts nothing, so it holds no lease: it must keep no
        # feed or account from the workers that do the work.
        self.takes_work = takes_work
        self.id = worker_id(prefix=prefix)
        self.started = utc_now()
        self.leases = Leases(store, self.id, utc_now, config.workers.takeover_after,
                             exclusive=exclusive, host=socket.gethostname(), pid=os.getpid(),
                             started_at=self.started)

    def beat(self) -> list[str]:
        """Beat; returns the feeds newly taken. A worker that takes work beats
        in its lease refresh (one transaction: a failed refresh is no beat)."""
        if not self.takes_work:
            self.store.beat(self.id, socket.gethostname(), os.getpid(), self.started)
            return []
        taken = self.leases.refresh([f.name for f in self.config.feeds],
                                    [a.name for a in self.config.accounts])
        return [name for kind, name in taken if kind == "feed"]

    @contextmanager
    def beating(self) -> Iterator[None]:
        """Beat now and every heartbeat until the block ends (``once``: its
        polls and sends may take longer than a lease lasts), then end."""
        self.beat()
        done = threading.Event()
        every = self.config.workers.heartbeat.total_seconds()
        thread = threading.Thread(target=self._beat_until, args=(done, every), name="beat",
                                  daemon=True)
        thread.start()
        try:
            yield
        finally:
            done.set()
            thread.join()
            self.end()

    def _beat_until(self, done: threading.Event, every: float) -> None:
        while not done.wait(every):
            try:
                self.beat()
            except HeraldError:   # logged by the store; the leases lapse, nothing is claimed
                pass

    def end(self) -> None:
        self.leases.release_all()
        self.store.end_worker(self.id)


# -- commands -------------------------------------------------------------------

def cmd_check_config(args, config: Config) -> int:
    report.config_summary(config, sys.stdout)
    return 0


def cmd_once(args, config: Config) -> int:
    tally = service.Tally()
    with _locked(config) as exclusive:
        store = Store(config.database, utc_now)
        store.migrate()
        worker = Worker(store, config, prefix=ONCE, exclusive=exclusive,
                        takes_work=not args.dry_run)
        leases = None if args.dry_run else worker.leases
        with worker.beating():
            app = build(config, dry_run=args.dry_run, exclusive=exclusive, observer=tally,
                        store=store, worker=worker.id, leases=leases)
            _once(app, leases)
    # Monitoring reads the exit status: a failed feed or post (for good, or a
    # try that waits for its retry: a platform down for hours must show before
    # the attempts run out), or the database failing (logged once), makes the
    # run a failure.
    counts = tally.reset()
    failed = counts["failed"] or counts["post_failed"] or counts["post_retried"]
    return 1 if app.store.health.problem or failed else 0


def _once(app: App, leases: Leases | None) -> None:
    """Poll every feed and send every due post that no running worker holds
    (a dry run, holding no leases, polls every feed and shows every account)."""
    feeds = [f for f in app.config.feeds if leases is None or leases.holds("feed", f.name)]
    # As many polls at once as the service runs; poll never raises for one
    # feed's trouble, and a fatal database error comes out of list().
    with ThreadPoolExecutor(ONCE_POLLS, thread_name_prefix="poll") as pool:
        list(pool.map(lambda feed: app.poller.poll(feed, force=True), feeds))
    app.store.flush_feeds()
    app.publisher.run(limit=None)
    if leases is None:
        return
    busy = len(app.config.feeds) - len(feeds), len(app.accounts) - len(leases.held("account"))
    if any(busy):
        log.info("%d feed(s) and %d account(s) are held by running workers; they were left "
                 "to them", *busy)


def cmd_run(args, config: Config) -> int:
    with _locked(config) as exclusive:
        return Running(config, args.dry_run, exclusive).run()


class Running:
    """The service's wiring: the app, its metrics and listener, the heartbeat
    row, and the reload that rebuilds the app from the config file on SIGHUP."""

    def __init__(self, config: Config, dry_run: bool, exclusive: bool):
        self.config, self.dry_run, self.exclusive = config, dry_run, exclusive
        self.metrics = metrics.Metrics(lambda: self.gauges(), version=__version__,
                                       feeds=[f.name for f in config.feeds],
                                       accounts=[(a.name, a.platform) for a in config.accounts])
        self.tally = service.Tally(forward=self.metrics)
        store = Store(config.database, utc_now)
        store.migrate()
        # A dry run holds no lease, and its "once/" id keeps the workers from
        # counting it when they share out the work.
        self.worker = Worker(store, config, prefix=ONCE if dry_run else "", exclusive=exclusive,
                             takes_work=not dry_run)
        # Late-bound: the service is made below, and a reload swaps the config.
        self.push = push.build(lambda: self.config, lambda feed: self.service.poll_now(feed),
                               client_post=lambda url, form: self.app.client.post_form(url, form),
                               owns=lambda feed: self.worker.leases.holds("feed", feed))
        self.app = self.build(config, store)
        self.service = service.Service(self.wiring(self.app), config.timezone,
                                       config.publish_every, beat=self.beat,
                                       tally=self.tally, reload=self.reload,
                                       watchdog=sdnotify.watchdog_interval(),
                                       beat_every=config.workers.heartbeat.total_seconds())
        self.listener = None

    def beat(self) -> None:
        # A feed taken from another worker is polled now if it is due, not
        # at this worker's next tick of its job (which may be a whole interval),
        # from its row as the other worker left it.
        # Unchanged polls' times noted since the last beat go first: a feed
        # let go now is then not fetched again at once by the worker taking it.
        self.app.store.flush_feeds()
        taken = self.worker.beat()
        self.app.poller.forget(taken)
        self.service.poll_soon(taken)

    def build(self, config: Config, store: Store, client: HttpClient | None = None) -> App:
        leases = None if self.dry_run else self.worker.leases
        return build(config, dry_run=self.dry_run, exclusive=self.exclusive, observer=self.tally,
                     store=store, client=client, worker=self.worker.id, leases=leases,
                     fetched=self.push.seen)

    def wiring(self, app: App) -> service.Wiring:
        retention, leases = app.config.retention, self.worker.leases
        owns = (lambda feed: True) if self.dry_run else (lambda feed: leases.holds("feed", feed))
        return service.Wiring(app.config.feeds, app.poller.poll, app.publisher.run,
                              stop=app.publisher.stop,
                              prune=lambda: app.store.prune(utc_now() - retention), owns=owns)

    def run(self) -> int:
        if self.config.http_listen:
            host, port = self.config.http_listen
            # A WebSub notification carries the whole feed.
            size = WEBSUB_BODY if self.push.websub is not None else listener.MAX_BODY
            self.listener = listener.Listener(host, port, self.routes(), max_body=size)
            self.listener.start()
            self.push.start()
        try:
            self.beat()   # the first poll jobs run at once: hold their leases first
            return self.service.run()
        finally:
            if self.listener:
                self.push.stop()   # while the listener answers the hub's check of the unsubscribe
                self.listener.stop()
            try:
                self.app.store.flush_feeds()
            finally:   # even a fatal database error lets the leases go
                self.worker.end()

    def routes(self) -> dict[str, listener.Handler]:
        """What the listener serves: health and metrics, and the editors' desk."""
        config = self.config
        backend = DeskBackend(self.app.store, lambda: self.app.publisher, config.timezone, utc_now)
        return (listener.operator_routes(self.health, self.metrics.render)
                | desk_or_off(backend, config) | self.push.routes)

    def health(self) -> tuple[bool, str]:
        if not self.service.running:
            return False, "the scheduler is not running"
        if self.service.stuck():
            return False, "a publish pass is stuck"
        try:
            self.app.store.workers()   # the database answers now, not at the last write
        except HeraldError as exc:
            return False, str(exc)
        problem = self.app.store.health.problem
        return (False, problem) if problem else (True, "ok")

    def gauges(self):
        return metrics.gauges_from_store(self.app.store, [a.name for a in self.app.accounts],
                                         utc_now())

    def reload(self) -> service.Wiring | None:
        try:
            config = load(self.config.path)
        except ConfigError as exc:
            for problem in exc.shown():
                log.error("config reload: %s", problem)
            log.error("config reload: %d problem(s) in %s; still running on the previous config",
                      len(exc.problems), self.config.path)
            return None
        if config.database != self.config.database:
            log.error("config reload: the database changed; restart Herald to use it "
                      "(still running on the previous config)")
            return None
        for key in RESTART_KEYS:
            if getattr(config, key) != getattr(self.config, key):
                log.warning("config reload: %s changed; it takes effect at the next restart", key)
        self.app = self.build(config, self.app.store, self.app.client)
        self.config = self.worker.config = config
        return self.wiring(self.app)


def desk_or_off(backend: DeskBackend, config: Config) -> dict[str, listener.Handler]:
    """The desk's routes when a login is configured; without one, /desk says
    how to turn it on (an open desk would let anyone on the host approve)."""
    if config.desk.token is not None or config.desk.password_hash:
        return desk.desk_routes(backend, config.desk, utc_now)
    off = (b"the desk is off: set desk.token (or desk.password_hash) in the config, "
           b"then restart Herald\n")
    return {"/desk": lambda request: (404, listener.TEXT, off)}


def cmd_status(args, config: Config) -> int:
    app = build(config, exclusive=False, schema=REQUIRE)
    return report.status(app.store, app.publisher, sys.stdout, as_json=args.json,
                         zone=config.timezone)


def cmd_migrate(args, config: Config) -> int:
    before, after = Store(config.database, utc_now).migrate()
    print(f"database is up to date ({after})" if before == after
          else f"database migrated from {before or 'nothing'} to {after}")
    return 0


def cmd_backup(args, config: Config) -> int:
    store = Store(config.database, utc_now)
    store.require_current()
    store.backup(args.path)
    print(f"backed up to {args.path}")
    return 0


def cmd_health(args, config: Config) -> int:
    """Exit 0 when the service answers: its /healthz when it listens, else a
    heartbeat row younger than two minutes."""
    if config.http_listen:
        host, port = config.http_listen
        ok, reason = _probe(host, port)
        print(reason)
        return 0 if ok else 1
    store = Store(config.database, utc_now)
    store.require_current()
    beats = [w for w in store.workers() if utc_now() - w.beat_at < HEALTHY_BEAT]
    print(f"service running ({len(beats)} worker(s))" if beats else "no service running")
    return 0 if beats else 1


def _probe(host: str, port: int) -> tuple[bool, str]:
    """GET /healthz of the running service: (answered 200, its one-line reason)."""
    shown = f"[{host}]" if ":" in host else host
    try:
        with urllib.request.urlopen(f"http://{shown}:{port}/healthz", timeout=5) as answer:
            return True, answer.read(300).decode(errors="replace").strip()
    except urllib.error.HTTPError as exc:
        return False, exc.read(300).decode(errors="replace").strip() or f"HTTP {exc.code}"
    except OSError as exc:
        return False, f"no service answers on {shown}:{port} ({getattr(exc, 'reason', exc)})"


def cmd_verify(args, config: Config) -> int:
    app = build(config, exclusive=False, schema=IGNORE)
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
    # Only the planned times read the database; a preview of feeds needs none.
    app = build(config, exclusive=False, schema=REQUIRE if args.schedule else IGNORE)
    if args.schedule:
        report.schedule_preview(app.publisher, sys.stdout)
        return 0
    previewer = report.Previewer(config, app.client, LeadFinder(app.client.get_page), app.accounts)
    try:
        articles = previewer.articles(source=args.source, html=args.html, url=args.url,
                                      limit=args.limit)
    except (FeedError, OSError) as exc:
        print(f"preview: {getattr(exc, 'reason', exc)}", file=sys.stderr)
        return 1
    previewer.show(articles, sys.stdout, as_json=args.json)
    return 0


def cmd_retry(args, config: Config) -> int:
    if args.post is None and args.account not in {a.name for a in config.accounts}:
        print(f"retry: unknown account {args.account!r}", file=sys.stderr)
        return 2
    app = build(config, exclusive=False, schema=REQUIRE)
    if args.post is None:
        n = app.store.retry(account=args.account)
        print(f"{n} failed post(s) of {args.account} queued again" if n
              else f"{args.account} has no failed posts")
        return 0 if n else 1
    return _change_post(app, args.post, "retry", ("failed", "skipped"),
                        lambda: app.store.retry(row_id=args.post), "queued again")


def cmd_skip(args, config: Config) -> int:
    app = build(config, exclusive=False, schema=REQUIRE)
    return _change_post(app, args.post, "skip", ("pending", "failed"),
                        lambda: app.store.skip(args.post), "skipped")


def _change_post(app: App, post_id: int, verb: str, allowed: tuple[str, ...],
                 change: Callable[[], int], done: str) -> int:
    """Name what ``retry``/``skip`` did to one post, or why it could not."""
    row = app.store.post(post_id)
    if row is None:
        print(f"{verb} {post_id}: no such post (see `status` for post ids)")
        return 1
    if row.status not in allowed or not change():
        print(f"{verb} {post_id}: the post is {row.status}, not {' or '.join(allowed)}")
        return 1
    print(f"post {post_id} ({row.account}) {done}: {row.title}")
    return 0


def cmd_approve(args, config: Config) -> int:
    return _desk_action(config, "approve", args.post, args.text)


def cmd_reject(args, config: Config) -> int:
    return _desk_action(config, "reject", args.post, None)


def _desk_action(config: Config, action: str, post_id: int, text: str | None) -> int:
    """What the desk's buttons do, from the command line."""
    app = build(config, exclusive=False, schema=REQUIRE)
    backend = DeskBackend(app.store, lambda: app.publisher, config.timezone, utc_now)
    try:
        print(backend.act(action, post_id, text))
    except ValueError as exc:
        print(f"{action} {post_id}: {exc}")
        return 1
    return 0


def cmd_resume(args, config: Config) -> int:
    if args.account not in {a.name for a in config.accounts}:
        print(f"resume: unknown account {args.account!r}", file=sys.stderr)
        return 2
    app = build(config, exclusive=False, schema=REQUIRE)
    row = app.store.account_row(args.account)
    held = row and (row.paused_reason or row.paused_until)
    app.store.set_account(args.account, paused_reason=None, paused_until=None,
                          wait_reason=None, auth_failed_fingerprint=None)
    if not held:
        print(f"account {args.account} was not paused or waiting; nothing to resume")
        return 0
    print(f"account {args.account} resumed (it was {_held_for(row)}); its posts go out "
          "at the next publish pass")
    return 0


def _held_for(row) -> str:
    if row.paused_reason and not row.paused_until:
        return f"paused: {row.paused_reason}"
    return f"waiting until {row.paused_until:%Y-%m-%d %H:%M %Z}: {row.wait_reason or row.paused_reason}"


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
    "approve": (cmd_approve, "send a post held for approval (optionally with edited --text)"),
    "reject": (cmd_reject, "drop a post held for approval"),
    "resume": (cmd_resume, "resume an account paused after an auth failure or rate limit"),
    "migrate": (cmd_migrate, "bring the database up to this Herald's schema (the service does it at start)"),
    "backup": (cmd_backup, "copy the database to PATH while the service runs (SQLite)"),
    "health": (cmd_health, "exit 0 when the service is running and healthy (for HEALTHCHECK)"),
}


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="run_bot.py", description="Herald: newsroom feeds to X and "
                                "Facebook Pages. Commands take --help too.")
    p.add_argument("--version", action="version", version=f"Herald {__version__}")
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
    for name in ("approve", "reject"):
        subs[name].add_argument("post", type=int, help="outbox id of the held post (see status)")
    subs["approve"].add_argument("--text", help="the post's text instead of the composed one "
                                 "(checked against the platform's limit)")
    subs["resume"].add_argument("account", help="account name from the config")
    subs["status"].add_argument("--json", action="store_true", help="the same report as one JSON object")
    subs["backup"].add_argument("path", help="where to write the copy (must not exist)")
    return p


def main(argv: Sequence[str] | None = None) -> int:
    args = parser().parse_args(argv)
    command = args.command or "run"
    logs.setup_logging(args.log_level or "INFO")
    try:
        config = load(args.config)
    except ConfigError as exc:
        for problem in exc.shown():
            print(f"config error: {problem}", file=sys.stderr)
        return 2
    logs.setup_logging(args.log_level or config.log_level, config.log_format)
    try:
        return COMMANDS[command][0](args, config)
    except HeraldError as exc:
        if not getattr(exc, "logged", False):
            print(f"herald: {exc}", file=sys.stderr)
        return 1
