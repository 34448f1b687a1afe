"""Ignite handler of :class:`~monai_glam.metrics.MeanFiniteROCAUCMetric`, the key metric of GLAM validation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from monai.handlers import IgniteMetricHandler

from monai_glam.metrics.finite_rocauc import MeanFiniteROCAUCMetric

__all__ = ["MeanFiniteROCAUC"]


class MeanFiniteROCAUC(IgniteMetricHandler):
    """Mean ROC-AUC over the classes whose AUC is defined (see :class:`~monai_glam.metrics.MeanFiniteROCAUCMetric`).

    A drop-in for ``monai.handlers.ROCAUC`` as an evaluator's key metric: it does not turn NaN for a whole run when
    a validation class has a single label value, so the best checkpoint and early stopping keep working.

    Args:
        output_transform: maps ``engine.state.output`` to ``(y_pred, y)``, scores and labels ``(N, C)``.
        class_names: class names for the warning about undefined classes.
    """

    def __init__(
        self, output_transform: Callable[[Any], Any] = lambda x: x, class_names: Sequence[str] | None = None
    ) -> None:
        super().__init__(
            metric_fn=MeanFiniteROCAUCMetric(class_names), output_transform=output_transform, save_details=False
        )
