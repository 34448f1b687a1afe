"""Atomically keep one resumable "last" checkpoint per run."""

from __future__ import annotations

import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import torch
from monai.utils import min_version, optional_import

from monai_glam.utils.atomic import atomic_output_path

if TYPE_CHECKING:
    from ignite.engine import Engine, Events
else:
    Engine, _ = optional_import("ignite.engine", "0.4.11", min_version, "Engine")
    Events, _ = optional_import("ignite.engine", "0.4.11", min_version, "Events")

__all__ = ["LastCheckpointSaver"]


class LastCheckpointSaver:
    """Save ``{name: obj.state_dict()}`` for every object in ``save_dict`` to one fixed file, atomically.

    The file has the layout MONAI's ``CheckpointLoader`` reads (include the trainer itself to resume at the
    right epoch and iteration, plus the optimizer and scheduler).

    Args:
        path: the checkpoint file (overwritten each time).
        save_dict: objects with ``state_dict()``, e.g. ``{"network": glam, "optimizer": opt, "trainer": t}``.
        interval: save every ``interval`` epochs (or iterations when ``epoch_level`` is False).
        epoch_level: count epochs rather than iterations.
    """

    def __init__(
        self, path: str | os.PathLike[str], save_dict: Mapping[str, Any], interval: int = 1, epoch_level: bool = True
    ) -> None:
        if interval < 1:
            raise ValueError(f"interval must be >= 1, got {interval!r}.")
        if not save_dict:
            raise ValueError("save_dict must name at least one object to save.")
        self.path = os.fspath(path)
        self.save_dict = dict(save_dict)
        self.interval = int(interval)
        self.epoch_level = bool(epoch_level)

    def attach(self, engine: Engine) -> None:
        event = Events.EPOCH_COMPLETED if self.epoch_level else Events.ITERATION_COMPLETED
        engine.add_event_handler(event(every=self.interval), self)

    def __call__(self, engine: Engine) -> None:
        # Written next to the target and renamed over it: a crash mid-write keeps the previous checkpoint.
        with atomic_output_path(self.path) as tmp_path:
            torch.save({name: obj.state_dict() for name, obj in self.save_dict.items()}, tmp_path)
