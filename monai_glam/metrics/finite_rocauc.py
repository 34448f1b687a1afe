"""A validation ROC-AUC that stays usable when a class has a single label value."""

from __future__ import annotations

import math
import warnings
from collections.abc import Sequence

from monai.metrics import ROCAUCMetric
from monai.utils import Average

__all__ = ["MeanFiniteROCAUCMetric"]


class MeanFiniteROCAUCMetric(ROCAUCMetric):
    """Mean over classes of the ROC-AUC, skipping classes whose AUC is undefined.

    MONAI's macro-averaged ROC-AUC is NaN as soon as one class has a single label value in the split (all
    positive or all negative), which makes a key metric useless for choosing the best epoch (``nan > best`` is
    never true) and for early stopping. This metric averages the finite per-class AUCs instead: equal to the
    macro average when every class has both label values, the AUC of the other classes otherwise, and NaN only
    when no class has both. A class without both label values is named in one warning per metric object
    (instead of MONAI's warning at every evaluation).

    Inputs are those of :class:`monai.metrics.ROCAUCMetric`: scores and binary labels ``(N, C)``.

    Args:
        class_names: names used in the warning (default ``class0``, ``class1``, ...).
    """

    def __init__(self, class_names: Sequence[str] | None = None) -> None:
        super().__init__(average=Average.NONE)
        self.class_names = tuple(class_names) if class_names is not None else None
        self._warned: set[int] = set()

    def aggregate(self, average: Average | str | None = None) -> float:  # type: ignore[override]
        """The mean of the finite per-class AUCs (NaN when none is finite)."""
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="y values can not be all")
            values = super().aggregate(average=Average.NONE)
        per_class = [float(v) for v in (values if isinstance(values, (list, tuple)) else [values])]
        undefined = [c for c, value in enumerate(per_class) if not math.isfinite(value)]
        new = [c for c in undefined if c not in self._warned]
        if new:
            self._warned.update(new)
            names = ", ".join(self._name(c) for c in new)
            then = "the mean is over the other classes" if len(undefined) < len(per_class) else "the mean is NaN"
            warnings.warn(
                f"ROC-AUC of {names} is undefined (a single label value in the split); {then}",
                RuntimeWarning,
                stacklevel=2,
            )
        finite = [value for value in per_class if math.isfinite(value)]
        return sum(finite) / len(finite) if finite else float("nan")

    def _name(self, index: int) -> str:
        if self.class_names is not None and index < len(self.class_names):
            return self.class_names[index]
        return f"class{index}"
