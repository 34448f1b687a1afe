"""Clean stops on SIGINT (Ctrl-C) and SIGTERM (``kill``, job schedulers).

Long jobs do not die in the middle of a write when interrupted: :class:`StopRequest` turns the first SIGINT or
SIGTERM into a flag that the job checks at a safe point (after a training iteration, after an image), where it
saves what it has and raises :class:`RunInterruptedError`. The command line reports that as one line and exits with the
shell's status for the signal (130 for SIGINT, 143 for SIGTERM). A second signal while the job is finishing
stops it at once (``KeyboardInterrupt``).
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Sequence
from types import FrameType, TracebackType
from typing import Any

__all__ = ["RunInterruptedError", "StopRequest", "signal_name"]

logger = logging.getLogger(__name__)

_DEFAULT_SIGNALS = (signal.SIGINT, signal.SIGTERM)


def signal_name(signum: int) -> str:
    """``SIGINT``, ``SIGTERM``, ... (``signal <n>`` for numbers Python does not name)."""
    try:
        return signal.Signals(signum).name
    except ValueError:
        return f"signal {signum}"


class RunInterruptedError(Exception):
    """A job stopped cleanly after a signal; ``str(err)`` says what was kept and how to continue.

    Attributes:
        signum: the signal that stopped the job.
        exit_status: ``128 + signum``, the status a shell reports for a job killed by that signal.
    """

    def __init__(self, signum: int, message: str) -> None:
        super().__init__(message)
        self.signum = int(signum)
        self.exit_status = 128 + self.signum


class StopRequest:
    """Record SIGINT/SIGTERM instead of dying, so the job can stop at a safe point.

    Use as a context manager (or :meth:`install` / :meth:`uninstall`): while installed, the first signal sets
    :attr:`signum` and logs that the job will stop; the job polls :attr:`requested`. A second signal restores
    the previous handlers and raises ``KeyboardInterrupt`` for an immediate stop. Outside the main thread,
    where Python cannot install signal handlers, nothing is installed and :attr:`requested` stays false.

    Args:
        signals: the signals to catch.
        what: how the log message calls the safe point (``"the current iteration"``).
    """

    def __init__(self, signals: Sequence[int] = _DEFAULT_SIGNALS, what: str = "the current step") -> None:
        self.signals = tuple(int(s) for s in signals)
        self.what = what
        self.signum: int | None = None
        self._previous: dict[int, Any] = {}

    @property
    def requested(self) -> bool:
        """Whether a signal asked the job to stop."""
        return self.signum is not None

    @property
    def installed(self) -> bool:
        return bool(self._previous)

    def install(self) -> StopRequest:
        """Catch the signals (no-op outside the main thread or when already installed)."""
        if self._previous or threading.current_thread() is not threading.main_thread():
            return self
        for signum in self.signals:
            self._previous[signum] = signal.getsignal(signum)
            signal.signal(signum, self._handle)
        return self

    def uninstall(self) -> None:
        """Restore the handlers that were in place before :meth:`install`."""
        previous, self._previous = self._previous, {}
        for signum, handler in previous.items():
            signal.signal(signum, handler if handler is not None else signal.SIG_DFL)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        if self.signum is not None:
            self.uninstall()
            raise KeyboardInterrupt(f"second {signal_name(signum)}: stopping now")
        self.signum = signum
        logger.warning("%s received: stopping after %s (send it again to stop at once)", signal_name(signum), self.what)

    def __enter__(self) -> StopRequest:
        return self.install()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.uninstall()
