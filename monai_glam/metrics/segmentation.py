"""Dice and IoU of thresholded saliency maps against lesion masks, per class, on images that contain the class."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from monai_glam.metrics.utils import check_maps_and_masks, check_thresholds, mean_over_present, resolve_class_names

__all__ = ["SegmentationScores", "compute_dice_iou", "overlap_counts"]


def overlap_counts(saliency: np.ndarray, mask: np.ndarray, thresholds: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Predicted-pixel counts and intersections of ``saliency >= t`` with ``mask``, for many ``t`` at once.

    Sorting the map once makes every threshold a binary search, so a sweep over ``T`` thresholds costs
    ``O(P log P + T log P)`` for ``P`` pixels instead of ``T`` full passes.

    Args:
        saliency: map of any shape.
        mask: boolean mask of the same shape.
        thresholds: ``(T,)`` thresholds; a pixel is predicted when its value is ``>= t``.

    Returns:
        ``(predicted, intersection)``, two ``(T,)`` integer arrays.
    """
    values = np.sort(saliency.reshape(-1))
    lesion_values = np.sort(saliency[mask])
    predicted = values.size - np.searchsorted(values, thresholds, side="left")
    intersection = lesion_values.size - np.searchsorted(lesion_values, thresholds, side="left")
    return predicted, intersection


@dataclass
class SegmentationScores:
    """Dice and IoU per image and class, and their means over the images that contain each class.

    Attributes:
        dice: ``(N, C)``; NaN where image ``n`` has no lesion of class ``c``.
        iou: ``(N, C)``; NaN likewise.
        mean_dice: ``(C,)`` mean of ``dice`` over the images with class ``c`` (NaN if there are none).
        mean_iou: ``(C,)`` likewise.
        num_images: ``(C,)`` number of images that contain class ``c``.
        thresholds: ``(C,)`` thresholds used.
    """

    dice: np.ndarray
    iou: np.ndarray
    mean_dice: np.ndarray
    mean_iou: np.ndarray
    num_images: np.ndarray
    thresholds: np.ndarray

    def to_dict(self, class_names: Sequence[str] | None = None) -> dict[str, Any]:
        """Per-class summary ``{name: {"dice", "iou", "num_images", "threshold"}}`` (plain Python values)."""
        names = resolve_class_names(class_names, self.mean_dice.size)
        return {
            name: {
                "dice": float(self.mean_dice[c]),
                "iou": float(self.mean_iou[c]),
                "num_images": int(self.num_images[c]),
                "threshold": float(self.thresholds[c]),
            }
            for c, name in enumerate(names)
        }


def compute_dice_iou(saliency: Any, masks: Any, thresholds: float | Sequence[float] | np.ndarray) -> SegmentationScores:
    """Dice and IoU between ``saliency >= threshold_c`` and the lesion mask of class ``c``, per image.

    Following the GLAM evaluation, an image counts for class ``c`` only if its mask has a lesion of that class;
    an empty prediction on such an image scores 0.

    Args:
        saliency: ``(N, C, H, W)`` array/tensor or a sequence of ``(C, H, W)`` maps (sizes may differ between
            images).
        masks: lesion masks matching ``saliency``; any non-zero value is lesion.
        thresholds: one threshold for all classes or one per class.

    Returns:
        :class:`SegmentationScores`.

    Raises:
        ValueError: when shapes or thresholds do not match.

    Example::

        >>> maps = np.array([[[[0.9, 0.8], [0.1, 0.2]]]])     # (1, 1, 2, 2)
        >>> masks = np.array([[[[1, 0], [0, 0]]]])
        >>> compute_dice_iou(maps, masks, 0.5).dice          # 2·1 / (2 + 1)
        array([[0.66666667]])
    """
    map_list, mask_list = check_maps_and_masks(saliency, masks)
    num_classes = map_list[0].shape[0]
    threshold_values = check_thresholds(thresholds, num_classes)
    dice = np.full((len(map_list), num_classes), np.nan)
    iou = np.full_like(dice, np.nan)
    for n, (image_maps, image_masks) in enumerate(zip(map_list, mask_list, strict=True)):
        for c in range(num_classes):
            lesion = int(image_masks[c].sum())
            if lesion == 0:
                continue
            predicted, intersection = overlap_counts(image_maps[c], image_masks[c], threshold_values[c : c + 1])
            dice[n, c] = 2.0 * intersection[0] / (predicted[0] + lesion)
            iou[n, c] = intersection[0] / (predicted[0] + lesion - intersection[0])
    mean_dice, counts = mean_over_present(dice)
    mean_iou, _ = mean_over_present(iou)
    return SegmentationScores(dice, iou, mean_dice, mean_iou, counts, threshold_values)
