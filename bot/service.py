"""The long-running service: APScheduler 3.x drives the poll and publish jobs."""
from __future__ import annotations

import logging
import signal
import threading
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers import SchedulerNotRunningError
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.config import FeedConfig
from bot.errors import StoreError

log = logging.getLogger(__name__)
JOB_DEFAULTS = {
    "coalesce": True,            # a late job runs once, not once per missed run
    "max_instances": 1,          # never two polls of one feed, never two publish passes
    "misfire_grace_time": 300,   # the default of 1 s skips runs after a busy moment
}


def build_scheduler(feeds: Sequence[FeedConfig], poll: Callable[[FeedConfig], object],
                    publish: Callable[[], object], tz: str,
                    publish_every: timedelta) -> BlockingScheduler:
    """A scheduler with one poll job per feed (interval with jitter) and a publish
    job every ``publish_every`` (the account schedules decide what is due)."""
    scheduler = BlockingScheduler(timezone=tz, job_defaults=JOB_DEFAULTS,
                                  executors={"default": ThreadPoolExecutor(4)})
    now = datetime.now(timezone.utc)

    def poll_then_publish(feed: FeedConfig) -> None:
        # New posts go out now rather than at the next publish tick.
        result = poll(feed)
        if getattr(result, "queued", 0):
            scheduler.modify_job("publish", next_run_time=datetime.now(timezone.utc))

    for feed in feeds:
        seconds = feed.every.total_seconds()
        scheduler.add_job(poll_then_publish, IntervalTrigger(seconds=seconds, jitter=min(seconds / 10, 60)),
                          args=[feed], id=f"poll:{feed.name}", name=f"poll {feed.name}",
                          next_run_time=now)
    scheduler.add_job(publish, IntervalTrigger(seconds=publish_every.total_seconds()), id="publish",
                      name="publish", next_run_time=now)
    scheduler.add_listener(_job_failed, EVENT_JOB_ERROR | EVENT_JOB_MISSED)
    return scheduler


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

    def signal(self, signum, _frame) -> None:
        name = signal.Signals(signum).name
        if self.stopping:
            log.info("received %s again; still finishing the post in flight", name)
            return
        log.info("received %s; finishing the post in flight, then stopping", name)
        self.stop(wait=True)

    def fatal(self, error: StoreError) -> None:
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


def run(scheduler: BlockingScheduler, on_stop: Callable[[], object] = lambda: None) -> int:
    """Run until SIGTERM or SIGINT (exit 0) or a fatal database error (exit 1):
    ``on_stop`` tells the jobs to wind down and the post in flight finishes
    and is committed first."""
    stopper = Stopper(scheduler, on_stop)
    signal.signal(signal.SIGTERM, stopper.signal)
    signal.signal(signal.SIGINT, stopper.signal)
    scheduler.add_listener(lambda event: _fatal(event, stopper), EVENT_JOB_ERROR)
    watch = ClockWatch(scheduler)
    log.info("Herald running: %d jobs; stop with SIGTERM or Ctrl-C", len(scheduler.get_jobs()))
    watch.start()
    scheduler.start()
    watch.done.set()
    log.info("Herald stopped")
    return stopper.code


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
