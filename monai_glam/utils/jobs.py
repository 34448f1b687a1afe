"""Run a callable on queued jobs, either at once on the caller's thread or in order on one background thread.

``monai-glam infer``'s pipelined loop and the bundle's :class:`~monai_glam.handlers.PredictionWriterHandler` both
write their outputs through these: the writer thread overlaps the encoding and file output of one image with the
forward pass of the next, and the bounded queue holds the forward pass back to the writer's pace (so predicted
images cannot pile up in memory).
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

__all__ = ["BackgroundJobs", "InlineJobs"]

JobT = TypeVar("JobT")


class InlineJobs(Generic[JobT]):
    """Runs ``work(job)`` at once on the calling thread (the serial counterpart of :class:`BackgroundJobs`)."""

    def __init__(self, work: Callable[[JobT], None]) -> None:
        self._work = work

    def put(self, job: JobT) -> None:
        """Run ``work(job)`` now."""
        self._work(job)

    def close(self, abort: bool = False) -> None:
        """Nothing is pending."""


class BackgroundJobs(Generic[JobT]):
    """Runs ``work(job)`` on one background thread, in the order the jobs are put, through a queue of ``size``.

    :meth:`put` blocks while the queue is full. An exception raised by ``work`` stops the processing (the jobs
    queued after it are dropped) and is raised again on the calling thread by the next :meth:`put` or by
    :meth:`close`; errors that should not stop the run must be handled inside ``work``.

    Args:
        work: what to do with each job.
        size: jobs that may wait in the queue besides the one being processed (at least 1).
        name: the thread's name (shown by debuggers and ``py-spy``).

    Example::

        >>> jobs = BackgroundJobs(print, size=2)
        >>> jobs.put("first")
        >>> jobs.close()  # waits for every queued job
        first
    """

    def __init__(self, work: Callable[[JobT], None], size: int = 2, name: str = "monai-glam-jobs") -> None:
        if int(size) < 1:
            raise ValueError(f"the queue size must be at least 1, got {size!r}.")
        self._work = work
        self._queue: queue.Queue[tuple[JobT] | None] = queue.Queue(maxsize=int(size))
        self._abort = threading.Event()
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        while True:
            entry = self._queue.get()
            if entry is None:
                return
            if self.error is not None or self._abort.is_set():
                continue  # failing or stopping at once: drop the job, but keep draining so that put never hangs
            try:
                self._work(entry[0])
            except BaseException as err:  # handed to the calling thread, which raises it
                self.error = err

    def _raise_error(self) -> None:
        if self.error is not None:
            raise self.error

    def put(self, job: JobT) -> None:
        """Queue ``job`` (blocks while the queue is full); raises the worker thread's error, if any."""
        self._raise_error()
        self._queue.put((job,))

    def close(self, abort: bool = False) -> None:
        """Wait until the queued jobs are done (``abort``: only the one in progress) and end the thread.

        Raises:
            BaseException: the error that stopped the worker thread (not with ``abort``, which is for a caller
                already leaving with an error of its own).
        """
        if abort:
            self._abort.set()
        self._queue.put(None)
        self._thread.join()
        if not abort:
            self._raise_error()
