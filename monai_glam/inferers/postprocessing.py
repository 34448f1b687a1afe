"""Segmentation masks from GLAM's fused saliency map: per-class thresholds (chosen with
:func:`monai_glam.metrics.select_dice_thresholds`)."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence

import numpy as np
import torch
from monai.config import DtypeLike, KeysCollection, NdarrayOrTensor
from monai.transforms import MapTransform, Transform
from monai.utils import convert_to_dst_type

from monai_glam.metrics.utils import check_thresholds
from monai_glam.utils.enums import GLAMKeys

__all__ = [
    "ThresholdSaliency",
    "ThresholdSaliencyd",
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
