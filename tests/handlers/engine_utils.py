"""A dummy ignite engine that replays hand-made ``engine.state.output`` values, one per iteration."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from ignite.engine import Engine
from monai.engines.utils import IterationEvents


def replay_engine(outputs: Sequence[Any], fire_loss_completed: bool = False) -> Engine:
    """An engine whose iteration ``i`` of every epoch sets ``engine.state.output = outputs[i]``.

    Run it with ``engine.run(range(len(outputs)), max_epochs=...)``. With ``fire_loss_completed`` the output is
    set and MONAI's ``IterationEvents.LOSS_COMPLETED`` fired inside the iteration, as ``SupervisedTrainer`` does.
    """

    def process(engine: Engine, index: int) -> Any:
        engine.state.output = outputs[index]
        if fire_loss_completed:
            engine.fire_event(IterationEvents.LOSS_COMPLETED)
        return outputs[index]

    engine = Engine(process)
    engine.register_events(*IterationEvents)
    return engine
