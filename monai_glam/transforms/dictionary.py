"""Dictionary versions of the mammogram transforms (MONAI's ``...d`` convention, with ``...D``/``...Dict`` aliases).

The spatial ones compute their parameters once from ``source_key`` (the mammogram) and apply exactly the same
crop, flip or window to every key, so lesion masks stay aligned with the image; each key records the
operation, so ``inverse`` and MONAI's ``Invertd`` map predictions back onto the raw image.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any, ClassVar

import torch
from monai.config import KeysCollection
from monai.data import MetaTensor
from monai.transforms import InvertibleTransform, MapTransform, RandomizableTransform
from monai.utils import TransformBackends, ensure_tuple, ensure_tuple_rep

from monai_glam.data.errors import MammogramReadError
from monai_glam.data.image_reader import load_mammogram
from monai_glam.data.meta import parse_horizontal_flip
from monai_glam.transforms.array import (
    PAPER_WINDOW_SIZE,
    BestCenterWindow,
    BreastCrop,
    OrientToRight,
    RandBestCenterWindow,
    StandardizeIntensity,
)
from monai_glam.utils.enums import BatchKeys, MetaKeys

__all__ = [
    "MASK_MISSING",
    "BestCenterWindowD",
    "BestCenterWindowDict",
    "BestCenterWindowd",
    "BreastCropD",
    "BreastCropDict",
    "BreastCropd",
    "LoadMammogramD",
    "LoadMammogramDict",
    "LoadMammogramd",
    "OrientToRightD",
    "OrientToRightDict",
    "OrientToRightd",
    "RandBestCenterWindowD",
    "RandBestCenterWindowDict",
    "RandBestCenterWindowd",
    "StandardizeIntensityD",
    "StandardizeIntensityDict",
    "StandardizeIntensityd",
    "mask_was_read",
]

#: Alias of :attr:`MetaKeys.MASK_MISSING` (a plain ``str``), kept for existing imports.
MASK_MISSING: str = MetaKeys.MASK_MISSING.value


def mask_was_read(value: Any) -> bool:
    """Whether an item's mask is a loaded tensor that came from a file, not one :class:`LoadMammogramd` filled in
    (an all-zero mask flagged ``mask_missing`` for an absent file)."""
    return isinstance(value, torch.Tensor) and not (isinstance(value, MetaTensor) and value.meta.get(MASK_MISSING))


class LoadMammogramd(MapTransform):
    """Load the files named by ``keys`` with :func:`~monai_glam.data.load_mammogram`.

    The item's ``laterality``, ``view`` and ``horizontal_flip`` fields (when present) override what the files say.
    Keys listed in ``mask_keys`` are lesion masks: they are binarized to {0, 1} and must have the image's shape.

    Args:
        keys: keys of the files to load (images and masks).
        mask_keys: which of ``keys`` are masks.
        laterality_key: item field with the laterality.
        view_key: item field with the view.
        horizontal_flip_key: item field with the exam list's ``horizontal_flip`` flag.
        fill_missing_masks: a mask key that is absent, ``None`` or ``""`` becomes an all-zero mask (its meta has
            ``mask_missing=True``) instead of an error.
        allow_missing_keys: skip absent image keys instead of raising ``KeyError``.

    Raises:
        MammogramReadError: unreadable file, or a mask whose shape differs from the image's.
    """

    backend: ClassVar[list[TransformBackends]] = [TransformBackends.TORCH]

    def __init__(
        self,
        keys: KeysCollection,
        mask_keys: KeysCollection = (),
        laterality_key: str = MetaKeys.LATERALITY,
        view_key: str = MetaKeys.VIEW,
        horizontal_flip_key: str = MetaKeys.HORIZONTAL_FLIP,
        fill_missing_masks: bool = False,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.mask_keys = tuple(ensure_tuple(mask_keys))
        unknown = [key for key in self.mask_keys if key not in self.keys]
        if unknown:
            raise ValueError(f"mask_keys {unknown} are not among keys {list(self.keys)}")
        self.laterality_key = laterality_key
        self.view_key = view_key
        self.horizontal_flip_key = horizontal_flip_key
        self.fill_missing_masks = fill_missing_masks

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        laterality = d.get(self.laterality_key)
        view = d.get(self.view_key)
        mirrored = parse_horizontal_flip(d.get(self.horizontal_flip_key))
        missing_masks = []
        for key in self.keys:
            value = d.get(key)
            if isinstance(value, torch.Tensor):  # already loaded (e.g. a cached item)
                continue
            if value is None or value == "":
                if key in self.mask_keys and self.fill_missing_masks:
                    missing_masks.append(key)
                elif not self.allow_missing_keys:
                    raise KeyError(f"item has no {str(key)!r} (item keys: {sorted(map(str, d))})")
                continue
            image = load_mammogram(value, laterality=laterality, view=view, horizontal_flip=mirrored)
            d[key] = (image > 0).to(torch.float32) if key in self.mask_keys else image
        images = [d[k] for k in self.keys if k not in self.mask_keys and isinstance(d.get(k), MetaTensor)]
        reference = images[0] if images else None
        for key in self.mask_keys:
            mask = d.get(key)
            if key in missing_masks:
                if reference is None:
                    raise ValueError(f"cannot create an empty {str(key)!r}: the item has no loaded image")
                empty = MetaTensor(torch.zeros_like(reference.as_tensor()))
                empty.copy_meta_from(reference)
                empty.meta[MASK_MISSING] = True
                d[key] = empty
            elif isinstance(mask, MetaTensor) and reference is not None and mask.shape != reference.shape:
                raise MammogramReadError(
                    mask.meta.get(MetaKeys.FILENAME, key),
                    f"mask shape {tuple(mask.shape[1:])} differs from the image's {tuple(reference.shape[1:])}"
                    f" ({reference.meta.get(MetaKeys.FILENAME, 'image')})",
                )
        return d


class _SourceMapTransform(MapTransform, InvertibleTransform):
    """Shared inverse for the dictionary transforms that wrap one invertible array transform in ``self.inner``."""

    inner: InvertibleTransform
    backend: ClassVar[list[TransformBackends]] = [TransformBackends.TORCH]

    def __init__(self, keys: KeysCollection, source_key: str, allow_missing_keys: bool) -> None:
        MapTransform.__init__(self, keys, allow_missing_keys)
        self.source_key = source_key

    def _source(self, d: Mapping[Hashable, Any]) -> Any:
        if self.source_key not in d:
            raise KeyError(f"source_key {str(self.source_key)!r} is not in the item (keys: {sorted(map(str, d))})")
        return d[self.source_key]

    def inverse(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.inner.inverse(d[key])
        return d


class BreastCropd(_SourceMapTransform):
    """Dictionary version of :class:`~monai_glam.transforms.BreastCrop`: the box comes from ``source_key``.

    Args:
        keys: keys to crop (image and masks in the raw frame).
        source_key: the mammogram the box is computed from.
        erosion_iterations: erosion/dilation radius in pixels (published: 100).
        buffer: margin in pixels (published: 50).
        laterality: overrides the meta's laterality.
        horizontal_flip: overrides the meta's ``horizontal_flip``.
        allow_missing_keys: skip absent keys.
    """

    def __init__(
        self,
        keys: KeysCollection,
        source_key: str = BatchKeys.IMAGE,
        erosion_iterations: int = 100,
        buffer: int = 50,
        laterality: str | None = None,
        horizontal_flip: bool | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, source_key, allow_missing_keys)
        self.inner = self.cropper = BreastCrop(erosion_iterations, buffer, laterality, horizontal_flip)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        geometry, facing_right = self.cropper.compute_geometry(self._source(d))
        for key in self.key_iterator(d):
            d[key] = self.cropper.crop(d[key], geometry, facing_right)
        return d


class OrientToRightd(_SourceMapTransform):
    """Dictionary version of :class:`~monai_glam.transforms.OrientToRight`: ``source_key`` decides the flip.

    Args:
        keys: keys to mirror together.
        source_key: the mammogram whose orientation decides.
        laterality: overrides the meta's laterality.
        horizontal_flip: overrides the meta's ``horizontal_flip``.
        allow_missing_keys: skip absent keys.
    """

    def __init__(
        self,
        keys: KeysCollection,
        source_key: str = BatchKeys.IMAGE,
        laterality: str | None = None,
        horizontal_flip: bool | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, source_key, allow_missing_keys)
        self.inner = self.orienter = OrientToRight(laterality, horizontal_flip)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        do_flip = self.orienter.needs_flip(self._source(d))
        for key in self.key_iterator(d):
            d[key] = self.orienter.orient(d[key], do_flip)
        return d


class BestCenterWindowd(_SourceMapTransform):
    """Dictionary version of :class:`~monai_glam.transforms.BestCenterWindow`: the window comes from ``source_key``.

    Args:
        keys: keys to cut.
        source_key: the mammogram the window is computed from.
        spatial_size: (h, w) of the window (paper: 2944x1920).
        view: overrides the meta's view.
        allow_missing_keys: skip absent keys.
    """

    def __init__(
        self,
        keys: KeysCollection,
        source_key: str = BatchKeys.IMAGE,
        spatial_size: Sequence[int] = PAPER_WINDOW_SIZE,
        view: str | None = None,
        allow_missing_keys: bool = False,
    ) -> None:
        super().__init__(keys, source_key, allow_missing_keys)
        self.inner = self.windower = BestCenterWindow(spatial_size, view)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        center, box = self.windower.compute_window(self._source(d))
        for key in self.key_iterator(d):
            d[key] = self.windower.cut(d[key], box, center)
        return d


class RandBestCenterWindowd(RandomizableTransform, _SourceMapTransform):
    """Dictionary version of :class:`~monai_glam.transforms.RandBestCenterWindow` (published window noise).

    Args:
        keys: keys to cut.
        source_key: the mammogram the window is computed from.
        spatial_size: (h, w) of the output.
        max_crop_noise: largest shift (rows, cols) in pixels (published: 100, 100).
        max_crop_size_noise: largest window size change in pixels (published: 100).
        mode: interpolation per key for the resize back to ``spatial_size`` (``"bilinear"`` for images,
            ``"nearest"`` for masks).
        view: overrides the meta's view.
        prob: probability of adding noise.
        allow_missing_keys: skip absent keys.
    """

    def __init__(
        self,
        keys: KeysCollection,
        source_key: str = BatchKeys.IMAGE,
        spatial_size: Sequence[int] = PAPER_WINDOW_SIZE,
        max_crop_noise: Sequence[int] = (100, 100),
        max_crop_size_noise: int = 100,
        mode: Sequence[str] | str = "bilinear",
        view: str | None = None,
        prob: float = 1.0,
        allow_missing_keys: bool = False,
    ) -> None:
        RandomizableTransform.__init__(self, prob)
        _SourceMapTransform.__init__(self, keys, source_key, allow_missing_keys)
        self.inner = self.windower = RandBestCenterWindow(
            spatial_size, max_crop_noise, max_crop_size_noise, view, prob=1.0
        )
        self.mode = ensure_tuple_rep(mode, len(self.keys))

    def set_random_state(self, seed: int | None = None, state: Any = None) -> RandBestCenterWindowd:
        super().set_random_state(seed, state)
        self.windower.set_random_state(seed, state)
        return self

    def randomize(self, data: Any = None) -> None:
        super().randomize(None)
        if self._do_transform:
            self.windower.randomize()
        else:
            self.windower.offset, self.windower.size_noise = (0, 0), 0

    def __call__(self, data: Mapping[Hashable, Any], randomize: bool = True) -> dict[Hashable, Any]:
        d = dict(data)
        if randomize:
            self.randomize()
        center, box = self.windower.cropper.compute_window(
            self._source(d), self.windower.noisy_size(), self.windower.offset
        )
        for key, mode in self.key_iterator(d, self.mode):
            d[key] = self.windower.cut(d[key], box, center, mode=mode)
        return d


class StandardizeIntensityd(MapTransform):
    """Dictionary version of :class:`~monai_glam.transforms.StandardizeIntensity` (apply it to images only).

    Args:
        keys: image keys.
        eps: lower bound of the divisor (published: 1e-5).
        channel_wise: standardize each channel on its own.
        allow_missing_keys: skip absent keys.
    """

    backend: ClassVar[list[TransformBackends]] = StandardizeIntensity.backend

    def __init__(
        self, keys: KeysCollection, eps: float = 1e-5, channel_wise: bool = False, allow_missing_keys: bool = False
    ) -> None:
        super().__init__(keys, allow_missing_keys)
        self.standardizer = StandardizeIntensity(eps, channel_wise)

    def __call__(self, data: Mapping[Hashable, Any]) -> dict[Hashable, Any]:
        d = dict(data)
        for key in self.key_iterator(d):
            d[key] = self.standardizer(d[key])
        return d


LoadMammogramD = LoadMammogramDict = LoadMammogramd
BreastCropD = BreastCropDict = BreastCropd
OrientToRightD = OrientToRightDict = OrientToRightd
BestCenterWindowD = BestCenterWindowDict = BestCenterWindowd
RandBestCenterWindowD = RandBestCenterWindowDict = RandBestCenterWindowd
StandardizeIntensityD = StandardizeIntensityDict = StandardizeIntensityd
