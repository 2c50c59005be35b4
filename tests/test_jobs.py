"""Background jobs: periodic runs, wake-ups, one runner per job across processes."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from hepcore.jobs import Jobs


def test_a_job_does_not_run_until_the_host_starts_jobs(tmp_path: Path) -> None:
    jobs = Jobs(tmp_path)
    ran = threading.Event()
    jobs.every("purge", 0.05, ran.set)
    assert not ran.wait(0.3)
    jobs.start()
    try:
        assert ran.wait(5)
    finally:
        jobs.stop()


def test_wake_runs_a_job_long_before_its_next_tick(tmp_path: Path) -> None:
    jobs = Jobs(tmp_path)
    runs: list[int] = []
    second = threading.Event()

    def job() -> None:
        runs.append(1)
        if len(runs) == 2:
            second.set()

    jobs.every("deliver", 3600, job)
    jobs.start()
    try:
        # The first run comes shortly after start; then the next tick is an hour away.
        deadline = threading.Event()
        while not runs and not deadline.wait(0.05):
            pass
        jobs.wake("deliver")
        assert second.wait(5)
    finally:
        jobs.stop()


def test_a_failing_job_is_logged_and_runs_again(tmp_path: Path,
                                                caplog: pytest.LogCaptureFixture) -> None:
    jobs = Jobs(tmp_path)
    calls: list[int] = []
    again = threading.Event()

    def job() -> None:
        calls.append(1)
        if len(calls) >= 2:
            again.set()
        raise RuntimeError("origin down")

    jobs.every("flaky", 0.05, job)
    jobs.start()
    try:
        assert again.wait(5)
    finally:
        jobs.stop()
    assert "job flaky failed" in caplog.text


def test_run_calls_the_job_now_and_propagates_its_error(tmp_path: Path) -> None:
    jobs = Jobs(tmp_path)
    jobs.every("boom", 60, lambda: (_ for _ in ()).throw(ValueError("bad row")))
    with pytest.raises(ValueError, match="bad row"):
        jobs.run("boom")
    with pytest.raises(KeyError):
        jobs.run("missing")


def test_a_job_name_is_registered_once(tmp_path: Path) -> None:
    jobs = Jobs(tmp_path)
    jobs.every("purge", 60, lambda: None)
    with pytest.raises(ValueError, match="twice"):
        jobs.every("purge", 60, lambda: None)


HOLDER = """
import sys, time
from pathlib import Path
from hepcore.jobs import Jobs
jobs = Jobs(Path(sys.argv[1]))
def hold():
    print("holding", flush=True)
    sys.stdin.readline()
jobs.every("purge", 60, hold)
jobs.run("purge")
"""


def test_a_job_held_by_another_process_is_skipped_here(tmp_path: Path) -> None:
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
        jobs = Jobs(tmp_path)
        ran: list[int] = []
        jobs.every("purge", 60, lambda: ran.append(1))
        jobs._tick(jobs._jobs["purge"])
        assert ran == []
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(10)
    jobs._tick(jobs._jobs["purge"])
    assert ran == [1]


def test_a_wake_while_another_process_runs_the_job_runs_it_here_once_that_ends(
        tmp_path: Path) -> None:
    """Work committed here while another worker delivers is not left for the
    next tick: the woken job runs as soon as the other process lets go."""
    holder = subprocess.Popen([sys.executable, "-c", HOLDER, str(tmp_path)],
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    jobs = Jobs(tmp_path)
    ran = threading.Event()
    jobs.every("purge", 3600, ran.set)
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "holding\n"
        jobs.start()
        jobs.wake("purge")
        assert not ran.wait(1.5)  # held elsewhere: skipped, not queued behind the lock
    finally:
        assert holder.stdin is not None
        holder.stdin.write("\n")
        holder.stdin.close()
        holder.wait(10)
    try:
        assert ran.wait(10)  # long before the hour-long tick
    finally:
        jobs.stop()


def test_a_thread_that_outlives_stop_does_not_run_beside_a_restart(tmp_path: Path) -> None:
    jobs = Jobs(tmp_path)
    runs: list[tuple[float, int]] = []
    first = threading.Event()

    def slow() -> None:
        runs.append((time.monotonic(), threading.get_ident()))
        first.set()
        time.sleep(0.5)

    jobs.every("slow", 0.05, slow)
    jobs.start()
    assert first.wait(5)
    old = [t for t in threading.enumerate() if t.name == "hepcore-job-slow"]
    jobs.stop(timeout=0.05)  # the run in progress outlives the join
    restarted = time.monotonic()
    jobs.start()
    time.sleep(2)
    jobs.stop()
    assert len(old) == 1 and not old[0].is_alive()
    after = {ident for ts, ident in runs if ts >= restarted}
    assert len(after) == 1 and old[0].ident not in after
