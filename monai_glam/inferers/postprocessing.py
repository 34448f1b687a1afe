"""Segmentation masks from GLAM's fused saliency map: per-class thresholds and Dice-optimal threshold choice."""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Mapping, Sequence
from typing import Any, NamedTuple

import numpy as np
import torch
from monai.config import DtypeLike, KeysCollection, NdarrayOrTensor
from monai.transforms import MapTransform, Transform
from monai.utils import convert_to_dst_type

from monai_glam.metrics.segmentation import overlap_counts
from monai_glam.metrics.utils import check_maps_and_masks, check_thresholds, to_numpy
from monai_glam.utils.enums import GLAMKeys

__all__ = [
    "ThresholdSaliency",
    "ThresholdSaliencyd",
    "ThresholdSelection",
    "select_dice_thresholds",
    "threshold_saliency",
]


def threshold_saliency(
    saliency: NdarrayOrTensor,
    thresholds: float | Sequence[float],
    channel_dim: int = 0,
    dtype: DtypeLike | torch.dtype = torch.float32,
) -> NdarrayOrTensor:
    """Binary masks ``saliency[c] >= thresholds[c]``, in the input's container type (array or tensor).

    ``>=`` matches MONAI's ``AsDiscrete(threshold=...)``.

    Args:
        saliency: maps with one channel per class along ``channel_dim``, e.g. ``(C, H, W)`` with
            ``channel_dim=0`` or ``(N, C, H, W)`` with ``channel_dim=1``.
        thresholds: one threshold for every class or one per class.
        channel_dim: the class dimension.
        dtype: output dtype (0/1 values).

    Raises:
        ValueError: when ``channel_dim`` is out of range or the thresholds do not match the class count.
    """
    ndim = saliency.ndim
    if not -ndim <= channel_dim < ndim:
        raise ValueError(f"channel_dim {channel_dim} is out of range for a {ndim}-D input.")
    num_classes = saliency.shape[channel_dim]
    values = check_thresholds(thresholds, num_classes)
    shape = [1] * ndim
    shape[channel_dim] = num_classes
    if isinstance(saliency, torch.Tensor):
        limit = torch.as_tensor(values, dtype=saliency.dtype, device=saliency.device).reshape(shape)
    else:
        limit = values.reshape(shape)
    mask = saliency >= limit
    return convert_to_dst_type(mask, saliency, dtype=dtype)[0]


class ThresholdSaliency(Transform):
    """Array transform: channel-first saliency ``(C, H, W)`` to 0/1 masks with one threshold per class.

    Args:
        thresholds: one threshold for every class or one per class (benign, malignant).
        dtype: output dtype.

    Example::

        >>> ThresholdSaliency((0.3, 0.6))(torch.tensor([[[0.5]], [[0.5]]]))
        tensor([[[1.]],
        <BLANKLINE>
                [[0.]]])
    """

    def __init__(
        self, thresholds: float | Sequence[float] = 0.5, dtype: DtypeLike | torch.dtype = torch.float32
    ) -> None:
        self.thresholds = check_thresholds(thresholds, np.size(thresholds))
        self.dtype = dtype

    def __call__(self, img: NdarrayOrTensor) -> NdarrayOrTensor:
        """Threshold ``img`` of shape ``(C, ...)``."""
        return threshold_saliency(img, self.thresholds, channel_dim=0, dtype=self.dtype)


class ThresholdSaliencyd(MapTransform):
    """Dictionary wrapper of :class:`ThresholdSaliency`.

    Args:
        keys: keys of the saliency maps (default GLAM's fused map, ``"saliency"``).
        thresholds: one threshold for every class or one per class.
        output_postfix: the mask is stored under ``f"{key}_{output_postfix}"`` so the map is kept; ``None``
            replaces the map in place.
        dtype: output dtype.
        allow_missing_keys: do not raise for absent keys.
    """

    def __init__(
        self,
        keys: KeysCollection = GLAMKeys.SALIENCY.value,
        thresholds: float | Sequence[float] = 0.5,
        output_postfix: str | None = "mask",
        dtype: DtypeLike | torch.dtype = torch.float32,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        if output_postfix is not None and not str(output_postfix):
            raise ValueError("output_postfix must be a non-empty string or None.")
        self.output_postfix = output_postfix
        self.threshold = ThresholdSaliency(thresholds, dtype)

    def __call__(self, data: Mapping[Hashable, NdarrayOrTensor]) -> dict[Hashable, NdarrayOrTensor]:
        """Add (or replace with) the masks of every key."""
        d = dict(data)
        for key in self.key_iterator(d):
            out_key = key if self.output_postfix is None else f"{key}_{self.output_postfix}"
            d[out_key] = self.threshold(d[key])
        return d


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
