"""Periodic background jobs of a host (purging expired pastes, delivering webhooks).

Services register jobs in ``Service.start()`` with :meth:`Jobs.every`. Nothing
runs until the server host calls :meth:`Jobs.start` (``hepcore serve`` and the
example host do; tests and the CLI do not, and call :meth:`Jobs.run` when they
want a job done now). Every server worker process starts the same jobs; a file
lock per job makes sure at most one process runs a given job at a time, so a
job never needs to guard against itself.
"""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

log = logging.getLogger("hepcore.jobs")
RETRY_SECONDS = 0.2  # how soon a woken job tries again while another process runs it


@dataclass
class Job:
    name: str
    seconds: float
    fn: Callable[[], object]
    wake_event: threading.Event = field(default_factory=threading.Event)
    thread: threading.Thread | None = None


class Jobs:
    """The jobs of one host; lock files live in ``lock_dir``."""

    def __init__(self, lock_dir: Path) -> None:
        self.lock_dir = Path(lock_dir)
        self._jobs: dict[str, Job] = {}
        # One event per start(): threads of an earlier start that outlive
        # stop() see their own event set and end, never run next to new ones.
        self._stopping = threading.Event()
        self._started = False
        self._mutex = threading.Lock()

    def every(self, name: str, seconds: float, fn: Callable[[], object]) -> None:
        """Run ``fn()`` every ``seconds`` once started (also soon after start-up).

        Registering a name twice is an error: job names are per host.
        """
        if seconds <= 0:
            raise ValueError("a job's interval must be positive")
        with self._mutex:
            if name in self._jobs:
                raise ValueError(f"job {name!r} is registered twice")
            job = Job(name, float(seconds), fn)
            self._jobs[name] = job
            if self._started:
                self._launch(job)

    @property
    def names(self) -> list[str]:
        return sorted(self._jobs)

    def wake(self, name: str) -> None:
        """Ask for ``name`` to run soon instead of at its next tick (no-op if not
        started). If another process is running it, this process runs it as soon
        as that run ends, so work committed meanwhile is not left for the next tick."""
        job = self._jobs.get(name)
        if job is not None:
            job.wake_event.set()

    def run(self, name: str) -> None:
        """Run ``name`` now in this thread, waiting for another process running it.

        Raises :class:`KeyError` for an unknown job; the job's own exception
        propagates (the CLI reports it).
        """
        job = self._jobs[name]
        with self._lock(job.name, blocking=True):
            job.fn()

    def start(self) -> None:
        """Start one daemon thread per job (idempotent)."""
        with self._mutex:
            if self._started:
                return
            self._started = True
            self._stopping = threading.Event()
            for job in self._jobs.values():
                self._launch(job)

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the threads after their current run."""
        with self._mutex:
            self._started = False
            self._stopping.set()
            threads = [job.thread for job in self._jobs.values() if job.thread]
            for job in self._jobs.values():
                job.wake_event.set()
                job.thread = None
        for thread in threads:
            thread.join(timeout)
            if thread.is_alive():
                log.warning("job thread %s still running after %.0f s; it ends after this run",
                            thread.name, timeout)

    def _launch(self, job: Job) -> None:
        job.wake_event = threading.Event()
        job.thread = threading.Thread(
            target=self._loop, args=(job, self._stopping, job.wake_event), daemon=True,
            name=f"hepcore-job-{job.name}")
        job.thread.start()

    def _loop(self, job: Job, stopping: threading.Event, wake: threading.Event) -> None:
        # A short first delay lets every worker finish starting before the first run.
        delay = min(job.seconds, 1.0)
        pending = False
        while not stopping.is_set():
            pending = wake.wait(delay) or pending
            wake.clear()
            if stopping.is_set():
                return
            ran = self._tick(job)
            # A wake-up that found the job running in another process (which
            # may have looked before this process's new work was committed)
            # tries again shortly instead of at the next tick.
            pending = pending and not ran
            delay = min(job.seconds, RETRY_SECONDS) if pending else job.seconds

    def _tick(self, job: Job) -> bool:
        """Run the job unless another process is running it; whether it ran here."""
        try:
            with self._lock(job.name, blocking=False) as held:
                if held:
                    job.fn()
                return held
        except Exception:
            log.exception("job %s failed; it runs again in %.0f s", job.name, job.seconds)
            return True

    @contextmanager
    def _lock(self, name: str, *, blocking: bool) -> Iterator[bool]:
        self.lock_dir.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.lock_dir / f"job-{name}.lock", os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | (0 if blocking else fcntl.LOCK_NB))
            except BlockingIOError:
                yield False
                return
            yield True
        finally:
            os.close(fd)
