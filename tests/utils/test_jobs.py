"""BackgroundJobs / InlineJobs: order, bounded queue, errors handed back to the caller."""

from __future__ import annotations

import threading
import time

import pytest

from monai_glam.utils import BackgroundJobs, InlineJobs


@pytest.mark.parametrize("jobs_type", [InlineJobs, BackgroundJobs])
def test_jobs_run_in_the_order_they_are_put(jobs_type):
    done: list[int] = []
    jobs = jobs_type(done.append)
    for value in range(20):
        jobs.put(value)
    jobs.close()
    assert done == list(range(20))


def test_background_jobs_run_on_another_thread_and_the_queue_is_bounded():
    release = threading.Event()
    threads: list[str] = []

    def work(job: int) -> None:
        threads.append(threading.current_thread().name)
        release.wait(5)

    jobs = BackgroundJobs(work, size=1, name="test-writer")
    jobs.put(0)  # taken by the thread, which then waits
    while jobs._queue.qsize():  # wait until the thread has taken job 0 (it then waits for the release)
        time.sleep(0.01)
    jobs.put(1)  # waits in the queue (size 1)
    blocked = threading.Thread(target=jobs.put, args=(2,))
    blocked.start()
    blocked.join(0.2)
    assert blocked.is_alive()  # a full queue holds the caller back
    release.set()
    blocked.join(5)
    jobs.close()
    assert threads == ["test-writer"] * 3


def test_background_error_is_raised_on_the_calling_thread_and_later_jobs_are_dropped():
    done: list[int] = []

    def work(job: int) -> None:
        if job == 1:
            raise OSError("disk full")
        done.append(job)

    jobs = BackgroundJobs(work, size=4)
    for value in range(4):
        jobs.put(value)
    with pytest.raises(OSError, match="disk full"):
        jobs.close()
    assert done == [0]


def test_background_close_with_abort_finishes_the_current_job_and_drops_the_queue():
    started, release = threading.Event(), threading.Event()
    done: list[int] = []

    def work(job: int) -> None:
        started.set()
        release.wait(5)
        done.append(job)

    jobs = BackgroundJobs(work, size=3)
    for value in range(3):
        jobs.put(value)
    started.wait(5)  # job 0 is in progress
    closer = threading.Thread(target=jobs.close, kwargs={"abort": True})
    closer.start()
    jobs._abort.wait(5)  # the abort is requested while job 0 is in progress
    release.set()
    closer.join(5)
    assert not closer.is_alive() and done == [0]


@pytest.mark.parametrize("size", [0, -1])
def test_background_queue_size_must_be_positive(size):
    with pytest.raises(ValueError, match="queue size"):
        BackgroundJobs(print, size=size)


def test_several_workers_run_jobs_at_once_and_commit_in_the_order_put():
    committed: list[tuple[int, str]] = []
    running, overlap = set(), threading.Event()
    lock = threading.Lock()

    def work(job: int) -> tuple[int, str]:
        with lock:
            running.add(job)
            if len(running) > 1:
                overlap.set()
        time.sleep(0.05 if job % 3 == 0 else 0.005)  # every third job finishes after the ones put after it
        with lock:
            running.discard(job)
        return job, threading.current_thread().name

    jobs = BackgroundJobs(work, size=2, name="test-writer", workers=3, commit=committed.append)
    for value in range(12):
        jobs.put(value)
    jobs.close()
    assert [job for job, _ in committed] == list(range(12))
    assert overlap.is_set()  # jobs ran concurrently
    assert {name for _, name in committed} <= {"test-writer-0", "test-writer-1", "test-writer-2"}
    assert len({name for _, name in committed}) > 1


@pytest.mark.parametrize("jobs_type", [InlineJobs, BackgroundJobs])
def test_commit_sees_each_result(jobs_type):
    committed: list[int] = []
    jobs = jobs_type(lambda job: job * 10, commit=committed.append)
    for value in range(5):
        jobs.put(value)
    jobs.close()
    assert committed == [0, 10, 20, 30, 40]


@pytest.mark.parametrize("failing", ["work", "commit"])
def test_an_error_with_several_workers_stops_the_commits_and_reaches_the_caller(failing: str):
    committed: list[int] = []

    def work(job: int) -> int:
        if failing == "work" and job == 2:
            raise OSError("disk full")
        time.sleep(0.01)
        return job

    def commit(job: int) -> None:
        if failing == "commit" and job == 2:
            raise OSError("disk full")
        committed.append(job)

    jobs = BackgroundJobs(work, size=8, workers=2, commit=commit)
    for value in range(6):
        jobs.put(value)
    with pytest.raises(OSError, match="disk full"):
        jobs.close()
    # Commits stop at the first error: at most the jobs before the failed one, in order (how many of them made it
    # depends on the threads' timing).
    assert committed == list(range(len(committed))) and len(committed) <= 2
    assert not [t for t in threading.enumerate() if t.name.startswith("monai-glam-jobs")]


@pytest.mark.parametrize("workers", [0, -2, True])
def test_bad_worker_count(workers):
    with pytest.raises(ValueError, match="workers must be at least 1"):
        BackgroundJobs(print, workers=workers)
