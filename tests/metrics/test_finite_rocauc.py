from __future__ import annotations

import math

import pytest
import torch

from monai_glam.metrics import MeanFiniteROCAUCMetric

SCORES = torch.tensor([[0.9, 0.2], [0.1, 0.8], [0.7, 0.6], [0.3, 0.4]])


@pytest.mark.parametrize(
    "labels, expected, warns",
    [
        ([[1, 0], [0, 1], [1, 1], [0, 0]], (1.0 + 1.0) / 2, None),  # both classes defined: the macro average
        ([[1, 0], [0, 0], [1, 0], [0, 0]], 1.0, "ROC-AUC of malignant is undefined"),  # malignant all negative
        ([[1, 1], [1, 1], [1, 1], [1, 1]], math.nan, "every|the mean is NaN"),
    ],
)
def test_mean_of_the_finite_class_aucs(labels, expected, warns) -> None:
    metric = MeanFiniteROCAUCMetric(class_names=("benign", "malignant"))
    metric(SCORES, torch.tensor(labels, dtype=torch.float32))
    if warns is None:
        value = metric.aggregate()
    else:
        with pytest.warns(RuntimeWarning, match=warns):
            value = metric.aggregate()
    assert (math.isnan(value) and math.isnan(expected)) or value == pytest.approx(expected)


def test_warns_once_per_class() -> None:
    metric = MeanFiniteROCAUCMetric()
    labels = torch.tensor([[1, 0], [0, 0], [1, 0], [0, 0]], dtype=torch.float32)
    metric(SCORES, labels)
    with pytest.warns(RuntimeWarning, match="class1"):
        metric.aggregate()
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert metric.aggregate() == pytest.approx(1.0)
