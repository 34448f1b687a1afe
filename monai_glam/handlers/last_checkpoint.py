"""Atomically keep one resumable "last" checkpoint per run."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from monai.utils import min_version, optional_import

from monai_glam.utils.atomic import atomic_output_path, remove_stale_temporaries

if TYPE_CHECKING:
    from ignite.engine import Engine, Events
else:
    Engine, _ = optional_import("ignite.engine", "0.4.11", min_version, "Engine")
    Events, _ = optional_import("ignite.engine", "0.4.11", min_version, "Events")

__all__ = ["LastCheckpointSaver", "write_checkpoint"]

_MAX_CAUSE_CHARS = 200


def _write_failure_cause(err: BaseException) -> str:
    """A one-line cause of a failed checkpoint write (``File too large``, ``No space left on device``, ...)."""
    if isinstance(err, OSError) and err.strerror:
        return err.strerror
    # torch's C++ writer reports failed writes as RuntimeError("[enforce fail at ...] ... file write failed").
    text = " ".join(str(err).split()) or type(err).__name__
    if "] " in text and text.startswith("[enforce fail"):
        text = text.split("] ", 1)[1].lstrip(". ")
    return text if len(text) <= _MAX_CAUSE_CHARS else text[: _MAX_CAUSE_CHARS - 3] + "..."


def write_checkpoint(payload: Any, path: str | os.PathLike[str]) -> Path:
    """``torch.save(payload)`` to ``path`` atomically: a temporary file beside it, fsync, then ``os.replace``.

    Build ``payload`` (call the ``state_dict()`` methods) before calling this, so errors of the objects being
    saved are not reported as write errors.

    Args:
        payload: what to save (tensors and plain containers, so ``torch.load(..., weights_only=True)`` reads it).
        path: the checkpoint file; its folder is created when missing.

    Returns:
        ``path``.

    Raises:
        OSError: ``cannot write checkpoint <path>: <cause>`` (disk full, file size limit, permissions, ...); the
            previous file at ``path``, if any, is left as it was and no temporary file remains.
    """
    target = Path(path)
    try:
        with atomic_output_path(target) as temp_path:
            torch.save(payload, temp_path)
    except (OSError, RuntimeError) as err:
        raise OSError(f"cannot write checkpoint {target}: {_write_failure_cause(err)}") from err
    return target


class LastCheckpointSaver:
    """Save ``{name: obj.state_dict()}`` for every object in ``save_dict`` to one fixed file, atomically.

    The file has the layout MONAI's ``CheckpointLoader`` reads (include the trainer itself to resume at the
    right epoch and iteration, plus the optimizer and scheduler). It is written through
    :func:`write_checkpoint`: a crash or a failed write keeps the previous checkpoint. Temporary files of this
    checkpoint left by a killed run (``.<name>.*.tmp*``) are deleted when the saver is attached.

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
        """Remove stale temporaries of the checkpoint and save every ``interval`` epochs (or iterations)."""
        remove_stale_temporaries(self.path)
        event = Events.EPOCH_COMPLETED if self.epoch_level else Events.ITERATION_COMPLETED
        engine.add_event_handler(event(every=self.interval), self)

    def __call__(self, engine: Engine) -> None:
        """Write the checkpoint.

        Raises:
            OSError: ``cannot write checkpoint <path>: <cause>``; the previous checkpoint is kept.
        """
        payload = {name: obj.state_dict() for name, obj in self.save_dict.items()}
        write_checkpoint(payload, self.path)
