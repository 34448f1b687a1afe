"""Pointing game: does the saliency map's maximum fall inside a lesion of its class?"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from monai_glam.metrics.utils import check_maps_and_masks, mean_over_present, resolve_class_names

__all__ = ["PointingGameResult", "pointing_game"]


@dataclass
class PointingGameResult:
    """Pointing-game hits per image and class, and the hit rate per class.

    Attributes:
        hits: ``(N, C)`` 1.0 for a hit, 0.0 for a miss, NaN where image ``n`` has no lesion of class ``c``.
        accuracy: ``(C,)`` hit rate over the images with class ``c`` (NaN if none).
        num_images: ``(C,)`` images with class ``c``.
    """

    hits: np.ndarray
    accuracy: np.ndarray
    num_images: np.ndarray

    def to_dict(self, class_names: Sequence[str] | None = None) -> dict[str, Any]:
        """Per-class summary ``{name: {"accuracy", "num_images"}}``."""
        names = resolve_class_names(class_names, self.accuracy.size)
        return {
            name: {"accuracy": float(self.accuracy[c]), "num_images": int(self.num_images[c])}
            for c, name in enumerate(names)
        }


def pointing_game(saliency: Any, masks: Any) -> PointingGameResult:
    """For each image and class with a lesion, whether the map's arg-max pixel lies inside a lesion mask.

    The arg-max is the first maximum in row-major order (as ``numpy.argmax``), so a flat map points at its
    upper-left corner.

    Args:
        saliency: ``(N, C, H, W)`` or a sequence of ``(C, H, W)`` maps.
        masks: matching lesion masks (non-zero is lesion).

    Returns:
        :class:`PointingGameResult`.

    Example::

        >>> maps = np.array([[[[0.1, 0.9], [0.2, 0.3]]]])
        >>> pointing_game(maps, np.array([[[[0, 1], [0, 0]]]])).accuracy
        array([1.])
    """
    map_list, mask_list = check_maps_and_masks(saliency, masks)
    num_classes = map_list[0].shape[0]
    hits = np.full((len(map_list), num_classes), np.nan)
    for n, (image_maps, image_masks) in enumerate(zip(map_list, mask_list, strict=True)):
        flat_maps = image_maps.reshape(num_classes, -1)
        flat_masks = image_masks.reshape(num_classes, -1)
        peak = flat_maps.argmax(axis=1)
        hit = flat_masks[np.arange(num_classes), peak]
        hits[n] = np.where(flat_masks.any(axis=1), hit.astype(np.float64), np.nan)
    accuracy, counts = mean_over_present(hits)
    return PointingGameResult(hits, accuracy, counts)
