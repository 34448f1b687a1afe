"""ROC-AUC per class with bootstrap confidence intervals, at image level and aggregated to breasts."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import rankdata

from monai_glam.metrics.utils import as_score_matrix, resolve_class_names, to_numpy

__all__ = [
    "AUCResult",
    "aggregate_by_group",
    "bootstrap_roc_auc",
    "compute_roc_auc_ci",
    "roc_auc",
    "roc_curve",
]

#: Bootstrap replicates are computed in chunks of at most this many scores, to bound memory.
_CHUNK_ELEMENTS = 4_000_000


def _auc_from_rows(scores: np.ndarray, positive: np.ndarray) -> np.ndarray:
    """AUC of every row of ``scores`` ``(B, N)`` against boolean ``positive`` ``(B, N)`` (Mann-Whitney U with
    average ranks for ties, so a tied positive/negative pair counts one half). NaN for a row without both
    classes."""
    ranks = rankdata(scores, axis=1)
    num_pos = positive.sum(axis=1)
    num_neg = positive.shape[1] - num_pos
    rank_sum = np.where(positive, ranks, 0.0).sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        auc = (rank_sum - num_pos * (num_pos + 1) / 2.0) / (num_pos * num_neg)
    return np.where((num_pos > 0) & (num_neg > 0), auc, np.nan)


def roc_auc(scores: Any, labels: Any) -> np.ndarray:
    """Area under the ROC curve of each class: ``(N,)`` or ``(N, C)`` scores and 0/1 labels -> ``(C,)``.

    Equal to the probability that a random positive scores above a random negative (ties count one half),
    the same value as ``monai.metrics.compute_roc_auc``. A class whose labels are all 0 or all 1 has no AUC:
    its entry is NaN.

    Example::

        >>> roc_auc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1])
        array([0.75])
    """
    score_matrix, label_matrix = as_score_matrix(scores, labels)
    return _auc_from_rows(score_matrix.T, label_matrix.T)


def bootstrap_roc_auc(
    scores: Any,
    labels: Any,
    num_bootstrap: int = 2000,
    seed: int = 0,
    stratified: bool = True,
) -> np.ndarray:
    """AUC of each class on ``num_bootstrap`` resamples (with replacement) of the images.

    Args:
        scores: ``(N,)`` or ``(N, C)``.
        labels: 0/1, same shape.
        num_bootstrap: number of resamples ``B``.
        seed: seed of the generator; the same seed gives the same replicates.
        stratified: resample positives and negatives separately, keeping their counts (as pROC does by
            default); otherwise resample all images together and drop (NaN) resamples that lack a class.

    Returns:
        ``(C, B)`` replicate AUCs (all NaN for a class without both labels).
    """
    if int(num_bootstrap) < 1:
        raise ValueError(f"num_bootstrap must be positive, got {num_bootstrap!r}.")
    score_matrix, label_matrix = as_score_matrix(scores, labels)
    rng = np.random.default_rng(seed)
    num_images, num_classes = score_matrix.shape
    replicates = np.full((num_classes, int(num_bootstrap)), np.nan)
    chunk = max(1, _CHUNK_ELEMENTS // num_images)
    for c in range(num_classes):
        class_scores, positive = score_matrix[:, c], label_matrix[:, c]
        pos_index, neg_index = np.flatnonzero(positive), np.flatnonzero(~positive)
        if pos_index.size == 0 or neg_index.size == 0:
            continue
        for start in range(0, int(num_bootstrap), chunk):
            rows = min(chunk, int(num_bootstrap) - start)
            if stratified:
                index = np.concatenate(
                    [rng.choice(pos_index, (rows, pos_index.size)), rng.choice(neg_index, (rows, neg_index.size))],
                    axis=1,
                )
            else:
                index = rng.integers(0, num_images, (rows, num_images))
            replicates[c, start : start + rows] = _auc_from_rows(class_scores[index], positive[index])
    return replicates


@dataclass
class AUCResult:
    """ROC-AUC of one class with its bootstrap confidence interval.

    Attributes:
        auc: point estimate on all images (NaN when undefined).
        ci_low: lower bound of the percentile bootstrap interval.
        ci_high: upper bound.
        confidence: interval level, e.g. 0.95.
        num_positive: positive images (or breasts).
        num_negative: negative images (or breasts).
        num_bootstrap: resamples that had both classes (the interval uses only those).
        note: why the AUC is undefined, or an empty string.
    """

    auc: float
    ci_low: float
    ci_high: float
    confidence: float
    num_positive: int
    num_negative: int
    num_bootstrap: int
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        """Plain Python values (NaN stays a float; :func:`monai_glam.metrics.json_safe` turns it into null)."""
        return asdict(self)


def compute_roc_auc_ci(
    scores: Any,
    labels: Any,
    class_names: Sequence[str] | None = None,
    num_bootstrap: int = 2000,
    confidence: float = 0.95,
    seed: int = 0,
    stratified: bool = True,
) -> dict[str, AUCResult]:
    """ROC-AUC per class with a percentile bootstrap confidence interval.

    Args:
        scores: ``(N,)`` or ``(N, C)`` image (or breast) scores.
        labels: 0/1, same shape.
        class_names: names of the classes (default ``class_0, class_1, ...``).
        num_bootstrap: resamples.
        confidence: interval level in ``(0, 1)``.
        seed: generator seed (results are deterministic per seed).
        stratified: see :func:`bootstrap_roc_auc`.

    Returns:
        ``{class name: AUCResult}``. A class whose labels are all equal gets NaN values and a ``note``.

    Raises:
        ValueError: on mismatched shapes, labels other than 0/1, or ``confidence`` outside ``(0, 1)``.
    """
    if not 0.0 < float(confidence) < 1.0:
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}.")
    score_matrix, label_matrix = as_score_matrix(scores, labels)
    names = resolve_class_names(class_names, score_matrix.shape[1])
    point = _auc_from_rows(score_matrix.T, label_matrix.T)
    replicates = bootstrap_roc_auc(score_matrix, label_matrix, num_bootstrap, seed, stratified)
    tail = (1.0 - float(confidence)) / 2.0 * 100.0
    results = {}
    for c, name in enumerate(names):
        num_pos = int(label_matrix[:, c].sum())
        num_neg = int(label_matrix.shape[0] - num_pos)
        valid = replicates[c][~np.isnan(replicates[c])]
        if num_pos == 0 or num_neg == 0:
            only = "positive" if num_neg == 0 else "negative"
            note = f"AUC undefined: all {label_matrix.shape[0]} labels are {only}"
            results[name] = AUCResult(np.nan, np.nan, np.nan, float(confidence), num_pos, num_neg, 0, note)
            continue
        low, high = np.percentile(valid, [tail, 100.0 - tail]) if valid.size else (np.nan, np.nan)
        results[name] = AUCResult(
            float(point[c]), float(low), float(high), float(confidence), num_pos, num_neg, int(valid.size)
        )
    return results


def roc_curve(scores: Any, labels: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC curve of one class: false and true positive rates at every distinct score, from ``(0, 0)``.

    Args:
        scores: ``(N,)`` scores.
        labels: ``(N,)`` 0/1 labels with both values present.

    Returns:
        ``(fpr, tpr, thresholds)``, each ``(K + 1,)`` for ``K`` distinct scores; point ``i > 0`` predicts
        positive for ``score >= thresholds[i]`` (``thresholds[0]`` is ``+inf``).
    """
    score_matrix, label_matrix = as_score_matrix(scores, labels)
    if score_matrix.shape[1] != 1:
        raise ValueError(f"roc_curve takes one class, (N,) scores; got shape {to_numpy(scores).shape}.")
    values, positive = score_matrix[:, 0], label_matrix[:, 0]
    num_pos = int(positive.sum())
    num_neg = positive.size - num_pos
    if num_pos == 0 or num_neg == 0:
        raise ValueError("roc_curve needs both positive and negative labels.")
    order = np.argsort(-values, kind="mergesort")
    sorted_values, sorted_positive = values[order], positive[order]
    # The last index of every run of equal scores: all tied images switch to positive together.
    last = np.flatnonzero(np.append(np.diff(sorted_values) != 0, True))
    true_pos = np.cumsum(sorted_positive)[last]
    false_pos = (last + 1) - true_pos
    fpr = np.concatenate([[0.0], false_pos / num_neg])
    tpr = np.concatenate([[0.0], true_pos / num_pos])
    return fpr, tpr, np.concatenate([[np.inf], sorted_values[last]])


def aggregate_by_group(scores: Any, labels: Any, group_ids: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Mean image scores per group (breast: both views of one side; or exam), with the group's labels.

    Args:
        scores: ``(N,)`` or ``(N, C)`` image scores.
        labels: 0/1 image labels, same shape; all images of a group must share them (GLAM's labels are per
            breast).
        group_ids: ``(N,)`` group identifiers (strings or integers), e.g. ``"patient3_L"``.

    Returns:
        ``(ids, group_scores, group_labels)``: ``(G,)`` ids in order of first appearance, ``(G, C)`` mean
        scores and ``(G, C)`` labels.

    Raises:
        ValueError: when lengths differ or the images of a group have different labels.
    """
    score_matrix, label_matrix = as_score_matrix(scores, labels)
    ids = to_numpy(group_ids, "group_ids").reshape(-1)
    if ids.shape[0] != score_matrix.shape[0]:
        raise ValueError(f"got {ids.shape[0]} group ids for {score_matrix.shape[0]} images.")
    unique, first, inverse = np.unique(ids, return_index=True, return_inverse=True)
    order = np.argsort(first, kind="stable")  # groups in order of first appearance
    rank = np.empty_like(order)
    rank[order] = np.arange(order.size)
    group = rank[inverse.reshape(-1)]
    count = np.bincount(group, minlength=order.size).astype(np.float64)
    sums = np.zeros((order.size, score_matrix.shape[1]))
    np.add.at(sums, group, score_matrix)
    label_min = np.ones((order.size, score_matrix.shape[1]), dtype=bool)
    label_max = np.zeros_like(label_min)
    np.logical_and.at(label_min, group, label_matrix)
    np.logical_or.at(label_max, group, label_matrix)
    conflict = np.flatnonzero((label_min != label_max).any(axis=1))
    if conflict.size:
        bad = [unique[order[g]].item() for g in conflict[:5]]
        raise ValueError(f"images of the same group have different labels for group ids {bad}.")
    return unique[order], sums / count[:, None], label_max.astype(np.int64)
