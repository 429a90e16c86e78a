"""The long-running worker: poll the mailbox, write the daily spreadsheet, send reminders.

The schedule is data: `job_specs(config)` turns `[schedule]` into a list of
`JobSpec`s, and `run_worker` hands them to an APScheduler 3 BlockingScheduler
(timezone from `[campaign] timezone`, coalesce, max_instances=1, a misfire
grace time).  Each job opens its own `Context` from the factory and calls one
library function, exactly what the matching CLI command calls.  A file lock on
`<data_dir>/worker.lock` keeps a second worker off the same data dir; SIGTERM and
SIGINT stop the scheduler after the running job reaches a safe point.  With `[schedule] idle`
an IMAP IDLE watcher (inbound/idle.py) runs the poll job the moment mail arrives.
"""

from __future__ import annotations

import logging
import os
import signal
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from datetime import datetime, tzinfo
from pathlib import Path

import psutil
from apscheduler.events import EVENT_JOB_ERROR, EVENT_JOB_EXECUTED, EVENT_JOB_MAX_INSTANCES, JobEvent
from apscheduler.jobstores.base import JobLookupError
from apscheduler.schedulers.base import STATE_RUNNING
from apscheduler.schedulers.blocking import BlockingScheduler
from apscheduler.triggers.base import BaseTrigger
from apscheduler.triggers.cron import CronTrigger
from apscheduler.triggers.interval import IntervalTrigger
from filelock import FileLock, Timeout

from pipeline.config import Config
from pipeline.context import Context, ensure_data_dir
from pipeline.errors import ConfigError, IntakeError, WorkerLockedError
from pipeline.inbound.idle import IdleWatcher
from pipeline.inbound.imap import poll_once
from pipeline.logfmt import logfmt
from pipeline.outbound.digest import digest_done, send_digest
from pipeline.outbound.receipts import send_receipts
from pipeline.outbound.reminders import run_reminders
from pipeline.outputs.workbook import build_workbook
from storage.rawstore import RawStore

log = logging.getLogger(__name__)

JobFunc = Callable[[Context, datetime, threading.Event], None]


@dataclass(frozen=True)
class JobSpec:
    """One scheduled job: when it runs and which library function it calls."""

    id: str
    trigger: BaseTrigger
    func: JobFunc
    misfire_grace_s: int
    run_at_start: bool = False


def job_specs(config: Config) -> list[JobSpec]:
    """The worker's jobs, from `[schedule]`."""
    tz = config.campaign.timezone
    sched = config.schedule
    if sched.poll_minutes < 1:
        raise ConfigError("[schedule] poll_minutes（收取间隔分钟数）至少为 1")
    return [
        JobSpec("poll", IntervalTrigger(minutes=sched.poll_minutes, timezone=tz), poll_job,
                misfire_grace_s=sched.poll_minutes * 60, run_at_start=True),
        JobSpec("report", CronTrigger(hour=sched.report_at.hour, minute=sched.report_at.minute, timezone=tz),
                report_job, misfire_grace_s=3 * 3600),
        JobSpec("remind", CronTrigger(hour=sched.remind_at.hour, minute=sched.remind_at.minute, timezone=tz),
                remind_job, misfire_grace_s=3 * 3600),
    ]  # fmt: skip


def poll_job(ctx: Context, now: datetime, stop: threading.Event) -> None:
    """Poll the mailbox, then acknowledge new reports and log status changes."""
    try:
        summary = poll_once(ctx, stop=stop)  # logs its own summary line and records status changes
    except WorkerLockedError:
        log.info(logfmt("poll_skipped", reason="another poll is running on this data dir"))
        return
    receipts = send_receipts(ctx, now)
    log.info(logfmt("after_poll", receipts=receipts, status_changes=summary.status_changes))


def report_job(ctx: Context, now: datetime, stop: threading.Event) -> None:
    """Write the daily workbook into the reports folder and mail the digest (once per day)."""
    path = build_workbook(ctx, now)
    log.info(logfmt("report_written", path=path))
    if digest_done(ctx, now):
        log.info(logfmt("digest_skipped", reason="already sent for this day"))
        return
    result = send_digest(ctx, now, path)
    log.info(logfmt("digest_done", result=result))


def remind_job(ctx: Context, now: datetime, stop: threading.Event) -> None:
    result = run_reminders(ctx, now)
    log.info(logfmt("reminders_done", result=result))


def run_worker(ctx_factory: Callable[[], Context], config: Config) -> None:
    """Run the scheduler until SIGTERM/SIGINT.  Raises WorkerLockedError when another worker runs."""
    specs = job_specs(config)
    tz = config.campaign.timezone
    with worker_lock(config.data_dir):
        RawStore(config.data_dir).sweep_temp()  # temp files a killed writer left behind
        stop = threading.Event()
        scheduler = BlockingScheduler(timezone=tz, job_defaults={"coalesce": True, "max_instances": 1})
        for spec in specs:
            extra = {"next_run_time": datetime.now(tz)} if spec.run_at_start else {}
            scheduler.add_job(_run_job, spec.trigger, args=(spec, ctx_factory, stop, tz), id=spec.id,
                              name=spec.id, misfire_grace_time=spec.misfire_grace_s, **extra)  # fmt: skip
        watcher = _poll_on_arrival(config, scheduler, stop) if config.schedule.idle else None
        stopper: list[threading.Thread] = []

        def on_signal(signum: int, _frame: object) -> None:
            # Only set flags here; the actual shutdown waits for the running job, so do it off the handler.
            if stopper:
                return
            log.info(logfmt("worker_stopping", signal=signal.Signals(signum).name))
            stop.set()
            stopper.append(threading.Thread(target=_shutdown, args=(scheduler,), name="intake-shutdown"))
            stopper[0].start()

        previous = {s: signal.signal(s, on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
        try:
            log.info(logfmt("worker_start", pid=os.getpid(), data_dir=config.data_dir, timezone=tz.key,
                            jobs=",".join(f"{s.id}:{s.trigger}" for s in specs)))  # fmt: skip
            if watcher is not None:
                watcher.start()
            scheduler.start()
            if stopper:
                stopper[0].join()
        finally:
            stop.set()
            if watcher is not None:
                watcher.join(timeout=5)
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        log.info(logfmt("worker_stopped", pid=os.getpid()))


def _poll_on_arrival(config: Config, scheduler: BlockingScheduler, stop: threading.Event) -> IdleWatcher:
    """An IMAP IDLE watcher that runs the poll job at once when mail arrives.

    A wake-up while the poll is already running would be dropped by max_instances=1 (the
    running pass may have searched before the mail arrived): it is remembered and the poll
    runs once more when the current one ends.
    """
    tz = config.campaign.timezone
    again = threading.Event()

    def wake() -> None:
        if stop.is_set():
            return
        with suppress(JobLookupError):
            scheduler.modify_job("poll", next_run_time=datetime.now(tz))

    def on_event(event: JobEvent) -> None:
        if event.job_id != "poll":
            return
        if event.code == EVENT_JOB_MAX_INSTANCES:
            again.set()
        elif again.is_set():  # the running poll ended: run once more for the mail it may have missed
            again.clear()
            wake()

    scheduler.add_listener(on_event, EVENT_JOB_MAX_INSTANCES | EVENT_JOB_EXECUTED | EVENT_JOB_ERROR)
    return IdleWatcher(config.mailbox, wake, stop)


def _shutdown(scheduler: BlockingScheduler) -> None:
    # A signal can arrive before start() has set the scheduler running; wait for it briefly.
    for _ in range(200):
        if scheduler.state == STATE_RUNNING:
            break
        threading.Event().wait(0.05)
    if scheduler.running:
        scheduler.shutdown(wait=True)


def _run_job(spec: JobSpec, ctx_factory: Callable[[], Context], stop: threading.Event, tz: tzinfo) -> None:
    if stop.is_set():
        return
    started = datetime.now(tz)
    log.info(logfmt("job_start", job=spec.id))
    try:
        ctx = ctx_factory()
        try:
            spec.func(ctx, started, stop)
        finally:
            ctx.close()
    except IntakeError as err:
        log.error(logfmt("job_failed", job=spec.id, error=str(err)))
    except Exception:
        log.exception(logfmt("job_crashed", job=spec.id))
    else:
        log.info(
            logfmt("job_done", job=spec.id, seconds=f"{(datetime.now(tz) - started).total_seconds():.3f}")
        )


@contextmanager
def worker_lock(data_dir: Path) -> Iterator[None]:
    """Hold `<data_dir>/worker.lock` (released by the kernel even if the process is killed)."""
    ensure_data_dir(data_dir)
    lock = FileLock(data_dir / "worker.lock", timeout=0)
    pid_file = data_dir / "worker.pid"
    try:
        lock.acquire()
    except Timeout as err:
        holder = _holder(pid_file)
        raise WorkerLockedError(
            f"另一个 worker{holder}正在使用数据目录 {data_dir}，同一数据目录不能同时运行两个 worker。"
        ) from err
    try:
        pid_file.write_text(f"{os.getpid()}\n", encoding="ascii")
        yield
    finally:
        pid_file.unlink(missing_ok=True)
        lock.release()


def _holder(pid_file: Path) -> str:
    try:
        pid = int(pid_file.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return ""
    return f"（进程 {pid}）" if psutil.pid_exists(pid) else ""
