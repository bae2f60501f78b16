"""The long-running service: APScheduler 3.x drives the poll and publish jobs."""
from __future__ import annotations

import logging
import signal
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta, timezone

from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_MISSED, JobExecutionEvent
from apscheduler.executors.pool import ThreadPoolExecutor
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.interval import IntervalTrigger

from bot.config import FeedConfig

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


def run(scheduler: BlockingScheduler, on_stop: Callable[[], object] = lambda: None) -> int:
    """Run until SIGTERM or SIGINT: ``on_stop`` tells the jobs to wind down, the
    post in flight finishes and is committed, then exit 0."""
    def stop(signum, _frame):
        log.info("received %s; finishing the post in flight, then stopping",
                 signal.Signals(signum).name)
        on_stop()
        scheduler.shutdown(wait=True)

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    log.info("Herald running: %d jobs; stop with SIGTERM or Ctrl-C", len(scheduler.get_jobs()))
    scheduler.start()
    log.info("Herald stopped")
    return 0


def _job_failed(event: JobExecutionEvent) -> None:
    if event.exception is not None:
        log.error("job %s failed: %s", event.job_id, event.exception,
                  exc_info=(type(event.exception), event.exception, event.exception.__traceback__))
    else:
        log.warning("job %s missed its run time", event.job_id)
