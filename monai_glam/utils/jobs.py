"""Run a callable on queued jobs, either at once on the caller's thread or in order on background threads.

``monai-glam infer``'s pipelined loop and the bundle's :class:`~monai_glam.handlers.PredictionWriterHandler` both
write their outputs through these: the writer threads overlap the encoding and file output of one image with the
forward pass of the next, and the bounded queue holds the forward pass back to the writers' pace (so predicted
images cannot pile up in memory). With several workers the jobs run concurrently and an optional ``commit`` step
sees their results one at a time, in the order the jobs were put, so what it records matches a serial run.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Any, Generic, TypeVar

__all__ = ["BackgroundJobs", "InlineJobs"]

JobT = TypeVar("JobT")


class InlineJobs(Generic[JobT]):
    """Runs ``work(job)`` (then ``commit`` on its result) at once on the calling thread.

    The serial counterpart of :class:`BackgroundJobs`.
    """

    def __init__(self, work: Callable[[JobT], Any], commit: Callable[[Any], None] | None = None) -> None:
        self._work = work
        self._commit = commit

    def put(self, job: JobT) -> None:
        """Run ``work(job)`` and ``commit`` its result now."""
        result = self._work(job)
        if self._commit is not None:
            self._commit(result)

    def close(self, abort: bool = False) -> None:
        """Nothing is pending."""


class BackgroundJobs(Generic[JobT]):
    """Runs ``work(job)`` on ``workers`` background threads, through a queue of ``size``, committing in order.

    :meth:`put` blocks while the queue is full. Each job's result goes to ``commit`` (when given) in the order the
    jobs were put, one at a time, on whichever worker thread completes the sequence, so ``work`` may run
    concurrently while ``commit`` keeps the bookkeeping (tables, counters) of a serial run. With one worker the
    jobs also run in order. An exception raised by ``work`` or ``commit`` stops the processing (the jobs queued
    after it are dropped, those already running on other workers finish but are not committed) and is raised again
    on the calling thread by the next :meth:`put` or by :meth:`close`; errors that should not stop the run must be
    handled inside ``work``.

    Args:
        work: what to do with each job; must be thread-safe when ``workers`` > 1.
        size: jobs that may wait in the queue besides the ones being processed (at least 1).
        name: the threads' name (shown by debuggers and ``py-spy``), numbered when ``workers`` > 1.
        workers: threads running ``work`` (at least 1).
        commit: called with each result of ``work``, in job order.

    Example::

        >>> jobs = BackgroundJobs(str.upper, size=2, workers=2, commit=print)
        >>> jobs.put("first")
        >>> jobs.put("second")
        >>> jobs.close()  # waits for every queued job
        FIRST
        SECOND
    """

    def __init__(
        self,
        work: Callable[[JobT], Any],
        size: int = 2,
        name: str = "monai-glam-jobs",
        workers: int = 1,
        commit: Callable[[Any], None] | None = None,
    ) -> None:
        if int(size) < 1:
            raise ValueError(f"the queue size must be at least 1, got {size!r}.")
        if isinstance(workers, bool) or int(workers) < 1:
            raise ValueError(f"workers must be at least 1, got {workers!r}.")
        self._work = work
        self._commit = commit
        self._queue: queue.Queue[tuple[int, JobT] | None] = queue.Queue(maxsize=int(size))
        self._abort = threading.Event()
        self.error: BaseException | None = None
        self._put_count = 0  # only the calling thread puts
        self._lock = threading.Lock()  # guards the results waiting for their turn, the next turn and ``error``
        self._finished: dict[int, Any] = {}
        self._next_commit = 0
        count = int(workers)
        self._threads = [
            threading.Thread(target=self._run, name=name if count == 1 else f"{name}-{i}", daemon=True)
            for i in range(count)
        ]
        for thread in self._threads:
            thread.start()

    def _fail(self, err: BaseException) -> None:
        with self._lock:
            if self.error is None:  # the first error is the one reported
                self.error = err

    def _run(self) -> None:
        while True:
            entry = self._queue.get()
            if entry is None:
                return
            if self.error is not None or self._abort.is_set():
                continue  # failing or stopping at once: drop the job, but keep draining so that put never hangs
            position, job = entry
            try:
                result = self._work(job)
            except BaseException as err:  # handed to the calling thread, which raises it
                self._fail(err)
                continue
            if self._commit is not None:
                self._commit_in_order(position, result)

    def _commit_in_order(self, position: int, result: Any) -> None:
        """Commit ``result`` and every later result already waiting, as long as the order allows."""
        with self._lock:
            self._finished[position] = result
            while self._next_commit in self._finished and self.error is None and not self._abort.is_set():
                ready = self._finished.pop(self._next_commit)
                self._next_commit += 1
                try:
                    self._commit(ready)
                except BaseException as err:
                    self.error = err

    def _raise_error(self) -> None:
        if self.error is not None:
            raise self.error

    def put(self, job: JobT) -> None:
        """Queue ``job`` (blocks while the queue is full); raises a worker thread's error, if any."""
        self._raise_error()
        self._queue.put((self._put_count, job))
        self._put_count += 1

    def close(self, abort: bool = False) -> None:
        """Wait until the queued jobs are done (``abort``: only those in progress) and end the threads.

        Raises:
            BaseException: the error that stopped the worker threads (not with ``abort``, which is for a caller
                already leaving with an error of its own).
        """
        if abort:
            self._abort.set()
        for _ in self._threads:
            self._queue.put(None)
        for thread in self._threads:
            thread.join()
        if not abort:
            self._raise_error()
