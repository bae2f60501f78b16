"""The long-running service: APScheduler 3.x drives the poll and publish jobs."""
from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from functools import cached_property

from apscheduler.events import (EVENT_JOB_ERROR, EVENT_JOB_MISSED, EVENT_SCHEDULER_STARTED,
                               JobExecutionEvent)
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot import sdnotify
from bot.configtypes import FeedConfig
from bot.errors import StoreError

log = logging.getLogger(__name__)
JOB_DEFAULTS = {
    "coalesce": True,            # a late job runs once, not once per missed run
    "max_instances": 1,          # never two polls of one feed, never two publish passes
    "misfire_grace_time": 300,   # the default of 1 s skips runs after a busy moment
}
BEAT_EVERY = 15.0        # seconds between heartbeats (the row, systemd's watchdog)
PRUNE_EVERY = 3600.0     # seconds between retention passes
STUCK_AFTER = 900.0      # a publish pass longer than this is stuck: the watchdog may restart us


@dataclass(frozen=True)
class Wiring:
    """What the jobs call, built from one config; a reload swaps it whole."""
    feeds: Sequence[FeedConfig]
    poll: Callable[..., object]                   # poll(feed, force=False)
    publish: Callable[[], object]
    owns: Callable[[str], bool] = lambda feed: True   # this worker holds the feed's lease
    stop: Callable[[], object] = lambda: None     # tells a publish pass to wind down
    prune: Callable[[], int] = lambda: 0          # deletes settled rows past retention

    @cached_property
    def _by_name(self) -> dict[str, FeedConfig]:
        return {f.name: f for f in self.feeds}

    def feed(self, name: str) -> FeedConfig | None:
        """The feed named ``name``: one dict look-up, not a scan of 10,000."""
        return self._by_name.get(name)


POST_COUNTS = {"sent": "sent", "failed": "post_failed", "retried": "post_retried"}


class Tally:
    """Counts polls between two summary lines; an observer (see bot.metrics)
    that forwards every event to ``forward``."""

    def __init__(self, forward=None):
        self.forward = forward
        self.lock = threading.Lock()
        self.reset()

    def reset(self) -> dict[str, int]:
        with self.lock:
            counts, self.counts = getattr(self, "counts", {}), dict.fromkeys(
                ("polls", "unchanged", "changed", "new", "failed", "sent", "post_failed",
                 "post_retried"), 0)
        return counts

    def polled(self, feed: str, ok: bool, new: int) -> None:
        with self.lock:
            self.counts["polls"] += 1
            key = "failed" if not ok else "changed" if new else "unchanged"
            self.counts[key] += 1
            self.counts["new"] += new
        if self.forward:
            self.forward.polled(feed, ok, new)

    def settled(self, account: str, platform: str, outcome: str, first_seen) -> None:
        with self.lock:
            if key := POST_COUNTS.get(outcome):
                self.counts[key] += 1
        if self.forward:
            self.forward.settled(account, platform, outcome, first_seen)

    def summary(self) -> str | None:
        c = self.reset()
        if not any(c.get(key) for key in ("polls", *POST_COUNTS.values())):
            return None
        return (f"{c['polls']} polls ({c['unchanged']} unchanged, {c['changed']} with "
                f"{c['new']} new items, {c['failed']} failed); {c['sent']} posts sent, "
                f"{c['post_failed']} failed" + (f", {c['post_retried']} to retry"
                                                 if c["post_retried"] else ""))


class Stopper:
    """What SIGTERM, SIGINT and a fatal database error do: tell the jobs to
    wind down, let the post in flight finish and be recorded, stop. A second
    signal while stopping changes nothing (the post in flight must not be
    left ``sending``); ``code`` is the exit status."""

    def __init__(self, scheduler: BlockingScheduler, on_stop: Callable[[], object]):
        self.scheduler = scheduler
        self.on_stop = on_stop
        self.code = 0
        # Re-entrant: a second signal can arrive inside stop(), on the same thread.
        self.lock = threading.RLock()
        self.stopping = False
        self.thread: threading.Thread | None = None

    def signal(self, signum, _frame) -> None:
        name = signal.Signals(signum).name
        if self.stopping or self.thread:
            log.info("received %s again; still finishing the post in flight", name)
            return
        log.info("received %s; finishing the post in flight, then stopping", name)
        # Not in the handler itself: the signal may have interrupted the
        # scheduler while it holds its job-store lock, and a job finishing
        # (modify_job) needs that lock before shutdown(wait=True) can return.
        self.thread = threading.Thread(target=self.stop, kwargs={"wait": True}, name="stop")
        self.thread.start()

    def join(self) -> None:
        """Wait until a stop begun by a signal is complete (the post in flight recorded)."""
        if self.thread:
            self.thread.join()

    def fatal(self, error: StoreError) -> None:
        if self.stopping:   # two jobs met the same fatal error: one line
            return
        log.error("stopping: %s", error)
        self.code = 1
        # Called from a job's thread: shutting down with wait=True there would
        # wait for that very thread.
        self.stop(wait=False)

    def stop(self, *, wait: bool) -> None:
        with self.lock:
            if self.stopping:
                return
            self.stopping = True
        self.on_stop()
        try:
            self.scheduler.shutdown(wait=wait)
        except SchedulerNotRunningError:  # a signal landed inside the first stop
            pass


class ClockWatch(threading.Thread):
    """APScheduler 3 plans runs on the wall clock: when it steps back an hour
    (a bad NTP sync, a VM restored), every job would wait an hour. This thread
    compares the wall clock with the monotonic one and, on a step back, makes
    every job due now."""

    def __init__(self, scheduler: BlockingScheduler, every: float = 5.0, tolerance: float = 30.0,
                 wall: Callable[[], float] = time.time, mono: Callable[[], float] = time.monotonic):
        super().__init__(name="clock-watch", daemon=True)
        self.scheduler, self.every, self.tolerance = scheduler, every, tolerance
        self.wall, self.mono = wall, mono
        self.offset = wall() - mono()
        self.done = threading.Event()

    def run(self) -> None:
        while not self.done.wait(self.every):
            self.check()

    def check(self) -> bool:
        """True when the wall clock stepped back and the jobs were made due."""
        offset = self.wall() - self.mono()
        stepped = self.offset - offset
        self.offset = offset
        if stepped < self.tolerance:
            return False
        log.warning("the wall clock stepped back %ds; every job runs now", stepped)
        now = datetime.now(timezone.utc)
        for job in self.scheduler.get_jobs():
            job.modify(next_run_time=now)
        self.scheduler.wakeup()
        return True


class Service:
    """The scheduler's jobs for one wiring, and what keeps them honest: a heartbeat
    (the database row and systemd's watchdog), retention, a summary line per
    cycle, and SIGHUP, which swaps in a new wiring without a restart."""

    def __init__(self, wiring: Wiring, tz: str, publish_every: timedelta, *,
                 beat: Callable[[], object] = lambda: None, tally: Tally | None = None,
                 reload: Callable[[], Wiring | None] = lambda: None,
                 notify: Callable[..., bool] = sdnotify.notify,
                 watchdog: float | None = None, beat_every: float = BEAT_EVERY):
        self.wiring, self.tally, self.notify, self._reload = wiring, tally or Tally(), notify, reload
        self.beat_fn = beat
        self.beat_every = min(beat_every, watchdog / 3) if watchdog else beat_every
        self.scheduler = BlockingScheduler(timezone=tz, job_defaults=JOB_DEFAULTS, executors={
            "default": ThreadPoolExecutor(4),
            # Its own thread: a heartbeat queued behind four slow polls is no heartbeat.
            "beat": ThreadPoolExecutor(1)})
        self.publish_started: float | None = None
        self.running = self.finished = False
        self.reloads = threading.Event()
        self.nudges = threading.Event()
        self.asked: set[str] = set()     # feeds to poll now (a ping, a WebSub notification)
        self.soon: set[str] = set()      # feeds whose job runs now, due or not (a lease taken)
        self.asked_lock = threading.Lock()
        self._jobs(publish_every)

    # -- jobs -----------------------------------------------------------------

    def _jobs(self, publish_every: timedelta) -> None:
        now = datetime.now(timezone.utc)
        add = self.scheduler.add_job
        self.sync_feeds(self.wiring.feeds)
        add(self._publish, IntervalTrigger(seconds=publish_every.total_seconds()), id="publish",
            name="publish", next_run_time=now)
        add(self._beat, IntervalTrigger(seconds=self.beat_every), id="beat", name="heartbeat",
            executor="beat", next_run_time=now)
        add(self._prune, IntervalTrigger(seconds=PRUNE_EVERY), id="prune", name="retention",
            next_run_time=now + timedelta(minutes=1))
        add(self._summary, IntervalTrigger(seconds=self.summary_every(self.wiring.feeds)),
            id="summary", name="summary", executor="beat")
        self.scheduler.add_listener(_job_failed, EVENT_JOB_ERROR | EVENT_JOB_MISSED)
        self.scheduler.add_listener(self._started, EVENT_SCHEDULER_STARTED)

    @staticmethod
    def summary_every(feeds: Sequence[FeedConfig]) -> float:
        """One summary per poll cycle: the shortest feed interval, at least a minute."""
        return max(60.0, min((f.every.total_seconds() for f in feeds), default=300.0))

    def sync_feeds(self, feeds: Sequence[FeedConfig]) -> tuple[int, int, int]:
        """Make the poll jobs match ``feeds``: new ones start now, removed ones
        stop, a changed interval reschedules. Returns (added, removed, changed)."""
        now = datetime.now(timezone.utc)
        jobs = {job.id: job for job in self.scheduler.get_jobs() if job.id.startswith("poll:")}
        wanted = {f"poll:{feed.name}": feed for feed in feeds}
        for job_id in jobs.keys() - wanted.keys():
            self.scheduler.remove_job(job_id)
        changed = 0
        for job_id, feed in wanted.items():
            seconds = feed.every.total_seconds()
            trigger = IntervalTrigger(seconds=seconds, jitter=min(seconds / 10, 60))
            if job_id not in jobs:
                self.scheduler.add_job(self._poll, trigger, args=[feed.name], id=job_id,
                                       name=f"poll {feed.name}", next_run_time=now)
            elif jobs[job_id].trigger.interval.total_seconds() != seconds:
                self.scheduler.reschedule_job(job_id, trigger=trigger)
                changed += 1
        return len(wanted.keys() - jobs.keys()), len(jobs.keys() - wanted.keys()), changed

    def _poll(self, name: str) -> None:
        wiring = self.wiring   # read once: a reload may swap it meanwhile
        feed = wiring.feed(name)
        if feed is None:        # removed by a reload after this run was queued
            return
        asked = self._take_asked(name)
        # A feed another worker holds is its to poll, unless someone told this
        # worker it changed: then it polls at once (dedupe makes that safe).
        if not asked and not wiring.owns(name):
            return
        while True:
            result = wiring.poll(feed, force=asked)
            if getattr(result, "queued", 0):   # new posts go out now, not at the next tick
                self.nudges.set()
            # A ping during this poll could not start another run of this job
            # (one at a time): it is answered here.
            if not self._take_asked(name):
                return
            asked = True

    def _take_asked(self, name: str) -> bool:
        with self.asked_lock:
            asked = name in self.asked
            self.asked.discard(name)
        return asked

    def poll_now(self, name: str) -> bool:
        """Poll feed ``name`` as soon as a thread is free, whoever holds it;
        False when no such feed is configured. Safe from any thread."""
        if self.wiring.feed(name) is None:
            return False
        with self.asked_lock:
            self.asked.add(name)
        self.nudges.set()
        return True

    def poll_soon(self, names: Sequence[str]) -> None:
        """Run these feeds' poll jobs now instead of at their next tick: this
        worker just took their leases, and the job of the worker that held
        them ran on its own clock. The poll itself still skips a feed
        fetched less than half its interval ago, so nothing is polled twice."""
        if not names:   # most heartbeats take nothing: no nudge, publishing keeps its pace
            return
        with self.asked_lock:
            self.soon.update(names)
        self.nudges.set()

    def _nudged(self) -> list[str]:
        """The jobs the nudger makes due now: asked and taken feeds, and publishing."""
        with self.asked_lock:
            names, self.soon = self.asked | self.soon, set()
        return [f"poll:{name}" for name in sorted(names)] + ["publish"]

    def _nudger(self) -> None:
        # A job must not call the scheduler: shutdown(wait=True) holds the job
        # store lock while it waits for the jobs, so modify_job from a job
        # would wait for ever. This thread makes the jobs due instead.
        while True:
            self.nudges.wait()
            self.nudges.clear()
            if self.finished:
                return
            now = datetime.now(timezone.utc)
            try:
                for job_id in self._nudged():
                    self._due_now(job_id, now)
            except SchedulerNotRunningError:
                return

    def _due_now(self, job_id: str, now: datetime) -> None:
        try:
            self.scheduler.modify_job(job_id, next_run_time=now)
        except JobLookupError:   # a feed removed by a reload meanwhile
            pass

    def _publish(self) -> None:
        self.publish_started = time.monotonic()
        try:
            self.wiring.publish()
        finally:
            self.publish_started = None

    def _beat(self) -> None:
        if self.stuck():
            log.error("a publish pass has run for %ds; not telling the watchdog all is well",
                      time.monotonic() - self.publish_started)
        else:
            self.notify("WATCHDOG=1")
        self.beat_fn()

    def stuck(self) -> bool:
        started = self.publish_started
        return started is not None and time.monotonic() - started > STUCK_AFTER

    def _prune(self) -> None:
        deleted = self.wiring.prune()
        if deleted:
            log.info("retention: deleted %d rows (settled posts and their stories)", deleted)

    def _summary(self) -> None:
        line = self.tally.summary()
        if line:
            log.info("last %s: %s", _human_seconds(self.summary_every(self.wiring.feeds)), line)

    def _started(self, _event) -> None:
        self.running = True
        # Here, not before start(): a stop asked while the scheduler is not yet
        # running would be lost. Until now SIGTERM's default ends the process,
        # which is right: nothing is in flight yet.
        signal.signal(signal.SIGTERM, self.stopper.signal)
        signal.signal(signal.SIGINT, self.stopper.signal)
        self.notify("READY=1", f"STATUS=polling {len(self.wiring.feeds)} feeds")

    # -- reload -----------------------------------------------------------------

    def hangup(self, _signum, _frame) -> None:
        # A signal handler must not take the scheduler's locks: the reload
        # thread does the work.
        self.reloads.set()

    def _reloader(self) -> None:
        while True:
            self.reloads.wait()
            self.reloads.clear()
            if self.finished:
                return
            try:
                self.reload()
            except Exception:   # a reload that breaks must not end reloading for good
                log.exception("config reload failed; still running on the previous config")

    def reload(self) -> bool:
        """Load the config again; apply it when valid (True), keep the old one otherwise."""
        began = time.monotonic()
        self.notify("RELOADING=1")
        try:
            wiring = self._reload()
            if wiring is None:
                return False
            old, self.wiring = self.wiring, wiring
            old.stop()   # a pass in flight ends after its current post
            added, removed, changed = self.sync_feeds(wiring.feeds)
            self.scheduler.reschedule_job(
                "summary", trigger=IntervalTrigger(seconds=self.summary_every(wiring.feeds)))
            log.info("config reloaded in %.2fs: %d feeds (%d added, %d removed, %d rescheduled)",
                     time.monotonic() - began, len(wiring.feeds), added, removed, changed)
            return True
        finally:
            self.notify("READY=1")

    # -- run --------------------------------------------------------------------

    def run(self) -> int:
        """Run until SIGTERM or SIGINT (exit 0) or a fatal database error (exit 1).
        The post in flight finishes and is committed first."""
        self.stopper = stopper = Stopper(self.scheduler, lambda: self._stopping())
        signal.signal(signal.SIGHUP, self.hangup)   # handled once the reload thread runs
        self.scheduler.add_listener(lambda event: _fatal(event, stopper), EVENT_JOB_ERROR)
        watch = ClockWatch(self.scheduler)
        reloader = threading.Thread(target=self._reloader, name="reload", daemon=True)
        nudger = threading.Thread(target=self._nudger, name="nudge", daemon=True)
        log.info("Herald running: %d jobs; stop with SIGTERM or Ctrl-C, reload with SIGHUP",
                 len(self.scheduler.get_jobs()))
        watch.start()
        reloader.start()
        nudger.start()
        self.scheduler.start()
        stopper.join()
        self.running, self.finished = False, True
        self.reloads.set()
        self.nudges.set()
        watch.done.set()
        log.info("Herald stopped")
        return stopper.code

    def _stopping(self) -> None:
        self.notify("STOPPING=1")
        self.wiring.stop()


def _human_seconds(seconds: float) -> str:
    seconds = int(seconds)
    return f"{seconds // 60}m" if seconds % 60 == 0 else f"{seconds}s"


def _fatal(event: JobExecutionEvent, stopper: Stopper) -> None:
    if isinstance(event.exception, StoreError) and event.exception.fatal:
        stopper.fatal(event.exception)


def _job_failed(event: JobExecutionEvent) -> None:
    if isinstance(event.exception, StoreError):
        return  # one line, logged by the store; _fatal stops the service when it must
    if event.exception is not None:
        log.error("job %s failed: %s", event.job_id, event.exception,
                  exc_info=(type(event.exception), event.exception, event.exception.__traceback__))
    else:
        log.warning("job %s missed its run time", event.job_id)
