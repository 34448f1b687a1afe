from __future__ import annotations

import numpy as np
import pytest
import torch
from monai.metrics import compute_roc_auc

from monai_glam.metrics import aggregate_by_group, bootstrap_roc_auc, compute_roc_auc_ci, roc_auc, roc_curve


@pytest.mark.parametrize(
    ("scores", "labels", "expected"),
    [
        # Pairs (positive, negative): (0.35, 0.1) win, (0.35, 0.4) lose, (0.8, *) win twice -> 3/4.
        ([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1], [0.75]),
        ([0.5, 0.5], [0, 1], [0.5]),  # a tie counts one half
        ([0.9, 0.1, 0.2], [1, 0, 0], [1.0]),
        ([0.9, 0.1, 0.2], [0, 1, 1], [0.0]),
        # Two classes at once; column 1: positives 0.3, 0.3 vs negatives 0.3, 0.1 -> (0.5 + 1) * 2 / 4.
        ([[0.1, 0.3], [0.4, 0.3], [0.35, 0.3], [0.8, 0.1]], [[0, 1], [0, 1], [1, 0], [1, 0]], [0.75, 0.75]),
    ],
)
def test_roc_auc_hand_computed(scores, labels, expected):
    np.testing.assert_allclose(roc_auc(scores, labels), expected)
    np.testing.assert_allclose(roc_auc(torch.tensor(scores), torch.tensor(labels)), expected)


def test_roc_auc_matches_monai():
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, (50, 2))
    scores = np.round(rng.random((50, 2)) + 0.3 * labels, 1)  # rounding creates ties
    expected = compute_roc_auc(torch.tensor(scores), torch.tensor(labels), average="none")
    np.testing.assert_allclose(roc_auc(scores, labels), expected)


def test_single_label_class_has_no_auc():
    results = compute_roc_auc_ci([[0.2, 0.1], [0.7, 0.9]], [[0, 1], [1, 1]], class_names=("benign", "malignant"))
    assert results["benign"].auc == 1.0
    malignant = results["malignant"]
    assert np.isnan(malignant.auc) and np.isnan(malignant.ci_low) and np.isnan(malignant.ci_high)
    assert "all 2 labels are positive" in malignant.note
    assert malignant.num_positive == 2 and malignant.num_negative == 0


@pytest.mark.parametrize("stratified", [True, False])
def test_bootstrap_interval_contains_estimate_and_is_deterministic(stratified):
    rng = np.random.default_rng(1)
    labels = rng.integers(0, 2, (80, 2))
    scores = rng.random((80, 2)) + 0.5 * labels
    first = compute_roc_auc_ci(scores, labels, num_bootstrap=300, seed=7, stratified=stratified)
    again = compute_roc_auc_ci(scores, labels, num_bootstrap=300, seed=7, stratified=stratified)
    other = compute_roc_auc_ci(scores, labels, num_bootstrap=300, seed=8, stratified=stratified)
    for name, result in first.items():
        assert result.ci_low < result.auc < result.ci_high
        assert result.to_dict() == again[name].to_dict()
        assert (result.ci_low, result.ci_high) != (other[name].ci_low, other[name].ci_high)
        assert result.num_bootstrap == 300


def test_bootstrap_replicates():
    # Perfect separation stays perfect in every resample; a stratified resample always has both classes.
    replicates = bootstrap_roc_auc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1], num_bootstrap=50, seed=0)
    assert replicates.shape == (1, 50)
    np.testing.assert_array_equal(replicates, 1.0)
    # Unstratified resamples of 2 images often lack a class: those replicates are NaN and dropped.
    loose = bootstrap_roc_auc([0.1, 0.9], [0, 1], num_bootstrap=200, seed=0, stratified=False)
    assert np.isnan(loose).any() and np.all(loose[~np.isnan(loose)] == 1.0)
    result = compute_roc_auc_ci([0.1, 0.9], [0, 1], num_bootstrap=200, seed=0, stratified=False)["class_0"]
    assert result.num_bootstrap == int((~np.isnan(loose)).sum())


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"scores": [0.1, 0.2], "labels": [0, 1, 1]}, "same shape"),
        ({"scores": [0.1, 0.2], "labels": [0, 2]}, "0 or 1"),
        ({"scores": [0.1, float("nan")], "labels": [0, 1]}, "NaN"),
        ({"scores": [0.1, 0.2], "labels": [0, 1], "confidence": 1.0}, "confidence"),
        ({"scores": [0.1, 0.2], "labels": [0, 1], "num_bootstrap": 0}, "num_bootstrap"),
        ({"scores": [0.1, 0.2], "labels": [0, 1], "class_names": ("a", "b")}, "class_names"),
    ],
)
def test_roc_auc_ci_errors(kwargs, message):
    with pytest.raises(ValueError, match=message):
        compute_roc_auc_ci(**kwargs)


def test_roc_curve_hand_computed():
    # Sorted: 0.9 (+), 0.6 (-), 0.6 (+), 0.2 (-); the tied pair switches together.
    fpr, tpr, thresholds = roc_curve([0.6, 0.2, 0.9, 0.6], [1, 0, 1, 0])
    np.testing.assert_allclose(fpr, [0.0, 0.0, 0.5, 1.0])
    np.testing.assert_allclose(tpr, [0.0, 0.5, 1.0, 1.0])
    np.testing.assert_allclose(thresholds, [np.inf, 0.9, 0.6, 0.2])
    area = float(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))  # trapezoid rule
    assert area == pytest.approx(roc_auc([0.6, 0.2, 0.9, 0.6], [1, 0, 1, 0])[0])
    with pytest.raises(ValueError, match="both"):
        roc_curve([0.1, 0.2], [1, 1])


def test_aggregate_by_group_means_views_per_breast():
    scores = np.array([[0.2, 0.4], [0.4, 0.8], [0.9, 0.1], [0.1, 0.3], [0.3, 0.5]])
    labels = np.array([[0, 1], [0, 1], [1, 0], [0, 0], [0, 0]])
    ids, breast_scores, breast_labels = aggregate_by_group(scores, labels, ["p2_R", "p2_R", "p1_L", "p1_R", "p1_R"])
    assert ids.tolist() == ["p2_R", "p1_L", "p1_R"]  # order of first appearance
    np.testing.assert_allclose(breast_scores, [[0.3, 0.6], [0.9, 0.1], [0.2, 0.4]])
    np.testing.assert_array_equal(breast_labels, [[0, 1], [1, 0], [0, 0]])


def test_aggregate_by_group_errors():
    with pytest.raises(ValueError, match=r"different labels .*\['b'\]"):
        aggregate_by_group([0.1, 0.2, 0.3], [0, 1, 0], ["a", "b", "b"])
    with pytest.raises(ValueError, match="3 group ids for 2 images"):
        aggregate_by_group([0.1, 0.2], [0, 1], [1, 1, 2])
