"""Atomically keep the checkpoint of the best validation key metric, with a defined fallback for NaN metrics."""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from monai.utils import min_version, optional_import

from monai_glam.handlers.last_checkpoint import write_checkpoint
from monai_glam.utils.atomic import remove_stale_temporaries

if TYPE_CHECKING:
    from ignite.engine import Engine, Events
else:
    Engine, _ = optional_import("ignite.engine", "0.4.11", min_version, "Engine")
    Events, _ = optional_import("ignite.engine", "0.4.11", min_version, "Events")

__all__ = ["BestCheckpointSaver"]


def _as_float(value: Any) -> float | None:
    """``value`` as a float, or ``None`` when it is not one number."""
    if isinstance(value, bool):
        return None
    if isinstance(value, torch.Tensor):
        if value.numel() != 1:
            return None
        value = value.item()
    try:
        return float(value)
    except (TypeError, ValueError):
        return None


def _state_dict(obj: Any) -> Any:
    """``obj.state_dict()``, unwrapping ``DataParallel``/``DistributedDataParallel`` as ignite's Checkpoint does."""
    if isinstance(obj, (torch.nn.DataParallel, torch.nn.parallel.DistributedDataParallel)):
        obj = obj.module
    return obj.state_dict()


class BestCheckpointSaver:
    """Save the model to one fixed file whenever the evaluator's key metric improves, atomically.

    Attach it to the evaluator: at every ``EPOCH_COMPLETED`` it reads ``engine.state.metrics[key_metric_name]``
    and, when the score beats the best so far (strictly), writes the checkpoint through
    :func:`~monai_glam.handlers.last_checkpoint.write_checkpoint` (temporary file, fsync, ``os.replace``): a
    crash or a failed write keeps the previous file, and a failed write raises ``OSError("cannot write
    checkpoint <path>: <cause>")``.

    The file content is the one MONAI's ``CheckpointSaver`` writes: with a single object in ``save_dict`` (e.g.
    ``{"network": glam}``) its ``state_dict()`` itself, otherwise ``{name: obj.state_dict()}``.

    **NaN key metric.** A mean ROC-AUC is NaN when a validation class has a single label value (all positive or
    all negative), and ``nan > best`` is never true, so a plain saver would keep the first epoch's model for
    ever. This saver then warns once (naming the metric and the likely reason) and scores the epoch by the
    **mean of the finite per-class metrics** ``<key_metric_name>_<class>`` found in ``engine.state.metrics``
    (e.g. ``val_auc_malignant`` when ``val_auc_benign`` is NaN). When no such finite metric exists, the epoch
    has no score and the **latest model is saved**, so the best checkpoint is never silently stuck.
    The score of the last evaluation is kept in :attr:`last_score`.

    Args:
        path: the checkpoint file (e.g. ``output_dir/best.pt``).
        save_dict: the objects to save, e.g. ``{"network": glam}``.
        key_metric_name: the metric to maximise (or minimise with ``greater_is_better=False``).
        greater_is_better: whether larger scores are better.

    Attributes:
        best_score: the best score so far (``None`` before the first save or after a save without a score).
        best_epoch: the evaluator epoch of the saved checkpoint.
        last_score: the score of the last evaluation (``None``: none, or no finite metric).
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        save_dict: Mapping[str, Any],
        key_metric_name: str = "val_auc",
        greater_is_better: bool = True,
    ) -> None:
        if not save_dict:
            raise ValueError("save_dict must name at least one object to save.")
        if not key_metric_name:
            raise ValueError("key_metric_name must name a metric of the evaluator.")
        self.path = Path(path)
        self.save_dict = dict(save_dict)
        self.key_metric_name = str(key_metric_name)
        self.greater_is_better = bool(greater_is_better)
        self.best_score: float | None = None
        self.best_epoch: int | None = None
        self.last_score: float | None = None
        self._warned = False

    def attach(self, engine: Engine) -> None:
        """Remove stale temporaries of the checkpoint and check the key metric after every evaluation."""
        remove_stale_temporaries(self.path)
        if not engine.has_event_handler(self, Events.EPOCH_COMPLETED):
            engine.add_event_handler(Events.EPOCH_COMPLETED, self)

    def _payload(self) -> Any:
        if len(self.save_dict) == 1:
            return _state_dict(next(iter(self.save_dict.values())))
        return {name: _state_dict(obj) for name, obj in self.save_dict.items()}

    def _fallback_score(self, metrics: Mapping[str, Any]) -> float | None:
        prefix = f"{self.key_metric_name}_"
        values = [_as_float(value) for name, value in metrics.items() if str(name).startswith(prefix)]
        finite = [value for value in values if value is not None and math.isfinite(value)]
        return sum(finite) / len(finite) if finite else None

    def score(self, engine: Engine) -> float | None:
        """The epoch's score: the key metric, or the NaN fallback (see the class docstring); ``None``: no score.

        Raises:
            KeyError: the evaluator has no metric ``key_metric_name``.
        """
        metrics = engine.state.metrics
        if self.key_metric_name not in metrics:
            raise KeyError(
                f"best checkpoint {self.path}: the evaluator has no metric {self.key_metric_name!r}; "
                f"it has {sorted(metrics)}"
            )
        value = _as_float(metrics[self.key_metric_name])
        if value is not None and math.isfinite(value):
            return value
        fallback = self._fallback_score(metrics)
        if not self._warned:
            self._warned = True
            then = (
                f"choosing {self.path.name} by the mean of the finite per-class metrics {self.key_metric_name}_*"
                if fallback is not None
                else f"no finite per-class metric {self.key_metric_name}_* either, so {self.path.name} is the latest "
                "model"
            )
            warnings.warn(
                f"validation key metric {self.key_metric_name} is {metrics[self.key_metric_name]!r}, not comparable "
                "(e.g. a validation class has a single label value, so its ROC-AUC is undefined); "
                f"{then} while this lasts",
                RuntimeWarning,
                stacklevel=2,
            )
        return fallback

    def _improves(self, score: float | None) -> bool:
        if score is None or self.best_score is None:
            return True
        return score > self.best_score if self.greater_is_better else score < self.best_score

    def __call__(self, engine: Engine) -> None:
        """Save the checkpoint when the epoch's score improves on the best (or has no score).

        Raises:
            OSError: ``cannot write checkpoint <path>: <cause>``; the previous checkpoint is kept, and so is the
                best score, so the next improvement tries again.
        """
        score = self.last_score = self.score(engine)
        if not self._improves(score):
            return
        write_checkpoint(self._payload(), self.path)
        self.best_score = score
        self.best_epoch = int(engine.state.epoch)

    def state_dict(self) -> dict[str, Any]:
        """The best score and its epoch, so a resumed run keeps comparing against them."""
        return {"best_score": self.best_score, "best_epoch": self.best_epoch}

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restore :meth:`state_dict` (missing entries leave the saver as if no epoch had been validated)."""
        score = state.get("best_score")
        epoch = state.get("best_epoch")
        self.best_score = None if score is None else float(score)
        self.best_epoch = None if epoch is None else int(epoch)
