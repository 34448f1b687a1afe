"""Turn a preprocessed datalist item into GLAM's training and validation targets."""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, ClassVar

import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import MapTransform
from monai.utils import TransformBackends, convert_to_tensor

from monai_glam.transforms.dictionary import mask_was_read
from monai_glam.utils.enums import DEFAULT_MASK_KEYS, BatchKeys, MetaKeys

__all__ = ["DEFAULT_MASK_KEYS", "GLAMTargetsD", "GLAMTargetsDict", "GLAMTargetsd"]


class GLAMTargetsd(MapTransform):
    """Build ``label`` ``(C,)``, ``mask`` ``(C, H, W)`` and ``mask_available`` ``(C,)`` from an item.

    ``DEFAULT_MASK_KEYS`` (re-exported here from :mod:`monai_glam.utils.enums`) are the datalist's per-class mask
    keys in channel order, ``("mask_benign", "mask_malignant")``.

    - ``label``: the datalist's ``[benign, malignant]`` list as a float tensor (required: weak supervision
      needs image-level labels).
    - ``mask``: the per-class masks stacked in channel order; a class without a mask is all zeros.
    - ``mask_available``: 1 where the class's mask was read from a file (not filled in by
      ``LoadMammogramd(fill_missing_masks=True)``), so validation Dice only counts real annotations.

    Args:
        keys: the label key.
        mask_keys: per-class mask keys in channel order (``None`` or absent entries mean "no mask").
        image_key: the image, whose spatial size absent masks take.
        mask_key: output key of the stacked masks.
        mask_available_key: output key of the availability flags.

    Raises:
        KeyError: when an item has no label.
        ValueError: when the label has the wrong length or a mask's size differs from the image's.
    """

    backend: ClassVar[list[TransformBackends]] = [TransformBackends.TORCH]

    def __init__(
        self,
        keys: KeysCollection = BatchKeys.LABEL,
        mask_keys: Sequence[str] = DEFAULT_MASK_KEYS,
        image_key: str = BatchKeys.IMAGE,
        mask_key: str = BatchKeys.MASK,
        mask_available_key: str = BatchKeys.MASK_AVAILABLE,
    ) -> None:
        super().__init__(keys)
        self.mask_keys = tuple(mask_keys)
        self.image_key = image_key
        self.mask_key = mask_key
        self.mask_available_key = mask_available_key

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        image = d[self.image_key]
        source = image.meta.get(MetaKeys.FILENAME) if isinstance(image, MetaTensor) else None
        where = f" ({source})" if source else ""
        for key in self.keys:
            if d.get(key) is None:
                raise KeyError(f"item{where} has no {str(key)!r}: image-level labels are required.")
            label = convert_to_tensor(d[key], dtype=torch.float32, track_meta=False, wrap_sequence=True).reshape(-1)
            if label.numel() != len(self.mask_keys):
                raise ValueError(f"{key}{where} has {label.numel()} entries, expected {len(self.mask_keys)}.")
            d[key] = label
        spatial = tuple(image.shape[-2:])
        masks, available = [], []
        for key in self.mask_keys:
            mask = d.get(key)
            if not isinstance(mask, torch.Tensor):
                masks.append(torch.zeros(spatial))
                available.append(0.0)
                continue
            if tuple(mask.shape[-2:]) != spatial:
                raise ValueError(f"{key}{where} is {tuple(mask.shape[-2:])}, the image is {spatial}.")
            masks.append(torch.as_tensor(mask).reshape(spatial).float())
            available.append(1.0 if mask_was_read(mask) else 0.0)
        d[self.mask_key] = torch.stack(masks)
        d[self.mask_available_key] = torch.tensor(available)
        return d


GLAMTargetsD = GLAMTargetsDict = GLAMTargetsd
