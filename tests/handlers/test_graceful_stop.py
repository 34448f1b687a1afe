from __future__ import annotations

import os
import signal

import pytest
from ignite.engine import Engine, Events

from monai_glam.handlers import GracefulStop


def _engines(signal_at: tuple[str, int] | None, epoch_length: int = 4, validation_length: int = 3):
    """A trainer (validating after every epoch) that sends itself SIGINT at ``(where, iteration)``."""
    calls: list[tuple[int, int]] = []

    def train_step(engine: Engine, batch: int) -> int:
        if signal_at == ("train", engine.state.iteration):
            os.kill(os.getpid(), signal.SIGINT)
        return batch

    def val_step(engine: Engine, batch: int) -> int:
        if signal_at == ("validate", trainer.state.epoch * 100 + engine.state.iteration):
            os.kill(os.getpid(), signal.SIGINT)
        return batch

    trainer, evaluator = Engine(train_step), Engine(val_step)
    validated: list[int] = []
    evaluator.add_event_handler(Events.EPOCH_COMPLETED, lambda e: validated.append(trainer.state.epoch))
    trainer.add_event_handler(Events.EPOCH_COMPLETED, lambda e: evaluator.run(range(validation_length)))
    stop = GracefulStop(checkpoint=lambda e: calls.append((e.state.epoch, e.state.iteration)))
    stop.attach(trainer, evaluator)
    return trainer, stop, calls, validated


@pytest.mark.parametrize(
    "signal_at, stopped_at, validated",
    [
        (("train", 6), (2, 6), [1]),  # mid-epoch: stops after iteration 6, no validation of epoch 2
        (("train", 8), (2, 8), [1, 2]),  # last iteration of epoch 2: the epoch ends (validation) first
        (("validate", 202), (2, 8), [1]),  # during validation of epoch 2: its metrics are dropped
    ],
)
def test_stops_after_the_current_iteration_and_saves(signal_at, stopped_at, validated) -> None:
    before = signal.getsignal(signal.SIGINT)
    trainer, stop, calls, seen = _engines(signal_at)
    trainer.run(range(4), max_epochs=5)
    assert (trainer.state.epoch, trainer.state.iteration) == stopped_at
    assert stop.signum == signal.SIGINT and stop.stopped_at == stopped_at
    assert calls == [stopped_at]
    assert seen == validated
    assert signal.getsignal(signal.SIGINT) is before


def test_a_run_without_signal_is_untouched() -> None:
    before = signal.getsignal(signal.SIGINT)
    trainer, stop, calls, seen = _engines(None)
    trainer.run(range(4), max_epochs=3)
    assert trainer.state.iteration == 12 and stop.signum is None and calls == [] and seen == [1, 2, 3]
    assert signal.getsignal(signal.SIGINT) is before
