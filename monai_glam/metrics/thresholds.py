"""Threshold calibration: the per-class threshold of the fused saliency map that maximises Dice on validation data."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from monai_glam.metrics.segmentation import overlap_counts
from monai_glam.metrics.utils import check_maps_and_masks, to_numpy

__all__ = ["ThresholdSelection", "select_dice_thresholds"]


class ThresholdSelection(NamedTuple):
    """Result of :func:`select_dice_thresholds`.

    Attributes:
        thresholds: ``(C,)`` chosen thresholds.
        dice: ``(C,)`` mean Dice at the chosen thresholds (NaN for a class with no positive image).
        candidates: ``(T,)`` thresholds tried.
        mean_dice: ``(C, T)`` mean Dice of every candidate.
    """

    thresholds: np.ndarray
    dice: np.ndarray
    candidates: np.ndarray
    mean_dice: np.ndarray


def select_dice_thresholds(
    saliency: Any,
    masks: Any,
    candidates: Sequence[float] | np.ndarray | None = None,
    default_threshold: float = 0.5,
) -> ThresholdSelection:
    """Pick, for each class, the threshold that maximises the mean Dice on a validation set.

    The Dice of class ``c`` is averaged over the images that contain a lesion of class ``c`` (the GLAM
    evaluation protocol, :func:`monai_glam.metrics.compute_dice_iou`). Ties go to the smallest threshold.

    Args:
        saliency: ``(N, C, H, W)`` maps or a sequence of ``(C, H, W)`` maps (fused GLAM maps in [0, 1]).
        masks: matching lesion masks (non-zero is lesion).
        candidates: thresholds to try; default ``0.01, 0.02, ..., 0.99``.
        default_threshold: used (with a warning) for a class that no image contains.

    Returns:
        :class:`ThresholdSelection`.

    Raises:
        ValueError: when shapes do not match or ``candidates`` is empty or not finite.
    """
    map_list, mask_list = check_maps_and_masks(saliency, masks)
    grid = np.round(np.arange(1, 100) / 100.0, 2) if candidates is None else to_numpy(candidates, "candidates")
    grid = np.unique(grid.astype(np.float64).reshape(-1))
    if grid.size == 0 or not np.all(np.isfinite(grid)):
        raise ValueError(f"candidates must be a non-empty sequence of finite thresholds, got {candidates!r}.")
    num_classes = map_list[0].shape[0]
    dice_sum = np.zeros((num_classes, grid.size))
    counts = np.zeros(num_classes, dtype=np.int64)
    for image_maps, image_masks in zip(map_list, mask_list, strict=True):
        for c in range(num_classes):
            lesion = int(image_masks[c].sum())
            if lesion == 0:
                continue
            predicted, intersection = overlap_counts(image_maps[c], image_masks[c], grid)
            dice_sum[c] += 2.0 * intersection / (predicted + lesion)
            counts[c] += 1
    with np.errstate(invalid="ignore", divide="ignore"):
        mean_dice = dice_sum / counts[:, None]
    thresholds = np.full(num_classes, float(default_threshold))
    best = np.full(num_classes, np.nan)
    for c in range(num_classes):
        if counts[c] == 0:
            warnings.warn(
                f"no validation image contains class {c}; its threshold stays {default_threshold}.", stacklevel=2
            )
            continue
        index = int(np.argmax(mean_dice[c]))  # first maximum = smallest threshold among ties
        thresholds[c], best[c] = grid[index], mean_dice[c, index]
    return ThresholdSelection(thresholds, best, grid, mean_dice)
