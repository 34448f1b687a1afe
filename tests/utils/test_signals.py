from __future__ import annotations

import os
import signal

import pytest

from monai_glam.utils.signals import RunInterruptedError, StopRequest, signal_name


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_first_signal_is_recorded_and_handlers_are_restored(signum: int, status: int) -> None:
    before = signal.getsignal(signum)
    with StopRequest() as stop:
        assert not stop.requested and stop.installed
        os.kill(os.getpid(), signum)
        assert stop.requested and stop.signum == signum
    assert signal.getsignal(signum) is before
    err = RunInterruptedError(stop.signum, "stopped")
    assert err.exit_status == status and str(err) == "stopped"


def test_second_signal_stops_at_once() -> None:
    before = signal.getsignal(signal.SIGINT)
    with pytest.raises(KeyboardInterrupt, match="second SIGINT"), StopRequest():
        os.kill(os.getpid(), signal.SIGINT)
        os.kill(os.getpid(), signal.SIGINT)
    assert signal.getsignal(signal.SIGINT) is before


def test_nothing_is_installed_outside_the_main_thread() -> None:
    import threading

    seen: list[bool] = []
    thread = threading.Thread(target=lambda: seen.append(StopRequest().install().installed))
    thread.start()
    thread.join()
    assert seen == [False]


@pytest.mark.parametrize("signum, name", [(signal.SIGINT, "SIGINT"), (signal.SIGTERM, "SIGTERM"), (999, "signal 999")])
def test_signal_names(signum: int, name: str) -> None:
    assert signal_name(signum) == name
