"""The published NYU/GLAM preprocessing in one call, and the equivalent dictionary-transform chain.

``nyu_preprocess`` reproduces the inputs the published GLAM weights were trained on: crop the raw mammogram to
the breast, mirror it to face right, cut the best-center window (2944x1920 in the paper), standardize. It runs
the same array transforms that ``nyu_preprocessing_transforms`` chains for datasets, so the two cannot drift
apart.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
from monai.data import MetaTensor
from monai.transforms import (
    Compose,
    RandAffined,
    RandGaussianNoised,
    RandScaleIntensityd,
    RandShiftIntensityd,
)
from monai.utils import convert_to_numpy, ensure_tuple

from monai_glam.data.meta import normalize_laterality, normalize_view
from monai_glam.data.meta import parse_horizontal_flip as _parse_flip
from monai_glam.transforms.array import (
    BEST_CENTER,
    CROPPED_SHAPE,
    FLIPPED,
    PAPER_WINDOW_SIZE,
    WINDOW_LOCATION,
    BestCenterWindow,
    BreastCrop,
    OrientToRight,
    StandardizeIntensity,
)
from monai_glam.transforms.dictionary import (
    BestCenterWindowd,
    BreastCropd,
    LoadMammogramd,
    OrientToRightd,
    RandBestCenterWindowd,
    StandardizeIntensityd,
)
from monai_glam.utils.enums import BatchKeys, MetaKeys

__all__ = ["nyu_preprocess", "nyu_preprocessing_transforms"]


def _split_view(view: str, laterality: str | None) -> tuple[str, str]:
    """``"R-MLO"`` -> ``("R", "MLO")``; a bare ``"MLO"`` takes its laterality from the argument."""
    text = str(view).strip().upper()
    side = normalize_laterality(laterality) or (normalize_laterality(text[0]) if "-" in text else "")
    code = normalize_view(text)
    if not code:
        raise ValueError(f"view must look like 'L-CC', 'R-MLO' or 'CC', got {view!r}")
    return side, code


def nyu_preprocess(
    image: np.ndarray,
    view: str,
    horizontal_flip: bool | str = False,
    laterality: str | None = None,
    spatial_size: Sequence[int] = PAPER_WINDOW_SIZE,
    erosion_iterations: int = 100,
    buffer: int = 50,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Preprocess one raw mammogram exactly as the published GLAM pipeline did.

    Args:
        image: (H, W) raw image, 12-bit values as read from the 16-bit PNG (not rescaled), raw orientation.
        view: ``"L-CC"``, ``"R-MLO"``, …; a bare ``"CC"``/``"MLO"`` needs ``laterality`` (else the orientation
            is inferred from the image).
        horizontal_flip: the exam list's flag (``"YES"``/``"NO"`` or a bool).
        laterality: ``"L"``/``"R"`` when ``view`` has no prefix.
        spatial_size: (h, w) of the output window (paper: 2944x1920).
        erosion_iterations: crop erosion/dilation radius (paper: 100).
        buffer: crop margin (paper: 50).

    Returns:
        ``(window, info)``: the standardized float32 window of shape ``spatial_size`` and a dict with
        ``window_location`` (top, bottom, left, right of the crop in the raw image), ``best_center`` (row, col in
        the cropped right-facing image; may lie outside it), ``cropped_shape`` and ``flipped``.

    Raises:
        ValueError: not a 2-D finite non-empty image, no breast (all zero), or a bad argument.
    """
    pixels = np.asarray(image)
    if pixels.ndim != 2 or pixels.size == 0:
        raise ValueError(f"image must be a non-empty 2-D (H, W) array, got shape {pixels.shape}")
    values = pixels.astype(np.float32)
    if not np.isfinite(values).all():
        raise ValueError("image contains NaN or infinite values")
    side, code = _split_view(view, laterality)
    meta = {
        MetaKeys.LATERALITY.value: side,
        MetaKeys.VIEW.value: code,
        MetaKeys.HORIZONTAL_FLIP.value: _parse_flip(horizontal_flip),
    }
    current = MetaTensor(values[None], meta=meta)
    for transform in (
        BreastCrop(erosion_iterations, buffer),
        OrientToRight(),
        BestCenterWindow(spatial_size),
    ):
        current = transform(current)
    info = {
        WINDOW_LOCATION: tuple(current.meta[WINDOW_LOCATION]),
        BEST_CENTER: tuple(current.meta[BEST_CENTER]),
        CROPPED_SHAPE: tuple(current.meta[CROPPED_SHAPE]),
        FLIPPED: bool(current.meta[FLIPPED]),
    }
    window = StandardizeIntensity()(current)
    return convert_to_numpy(window[0], dtype=np.float32), info


def nyu_preprocessing_transforms(
    image_key: str = BatchKeys.IMAGE,
    mask_keys: Sequence[str] | str = (),
    spatial_size: Sequence[int] = PAPER_WINDOW_SIZE,
    erosion_iterations: int = 100,
    buffer: int = 50,
    load: bool = True,
    fill_missing_masks: bool = False,
    augment: bool = False,
    max_crop_noise: Sequence[int] = (100, 100),
    max_crop_size_noise: int = 100,
    affine_prob: float = 0.5,
    intensity_prob: float = 0.5,
) -> Compose:
    """The published preprocessing as a MONAI dictionary-transform chain (optionally with training augmentation).

    ``LoadMammogramd`` → ``BreastCropd`` → ``OrientToRightd`` → ``BestCenterWindowd`` (or
    ``RandBestCenterWindowd`` and ``RandAffined`` when ``augment``) → ``StandardizeIntensityd`` (→ MONAI
    intensity augmentations when ``augment``). Masks in ``mask_keys`` must be in the raw image's geometry; they
    receive every spatial operation the image receives (nearest-neighbour where interpolated). The spatial
    steps are invertible: ``monai.transforms.Invertd(keys="pred", transform=chain, orig_keys=image_key)`` maps a
    prediction on the window back onto the raw image.

    Args:
        image_key: key of the mammogram.
        mask_keys: keys of lesion masks in the raw geometry (e.g. ``("mask_benign", "mask_malignant")``).
        spatial_size: (h, w) of the output (paper: 2944x1920).
        erosion_iterations: crop erosion/dilation radius (paper: 100).
        buffer: crop margin (paper: 50).
        load: start with ``LoadMammogramd`` (items hold paths); ``False`` when items already hold MetaTensors.
        fill_missing_masks: absent masks become all-zero masks (see ``LoadMammogramd``).
        augment: training augmentation: the published window position/size noise, a small random affine,
            Gaussian noise and intensity scale/shift.
        max_crop_noise: window position noise (rows, cols) in pixels (published: 100, 100).
        max_crop_size_noise: window size noise in pixels (published: 100); for a window whose smaller side is not
            larger than it, half that side is used.
        affine_prob: probability of the random affine (rotation ±5°, scale ±5%) when ``augment``.
        intensity_prob: probability of each intensity augmentation when ``augment``.

    Returns:
        A :class:`monai.transforms.Compose`.
    """
    masks = tuple(ensure_tuple(mask_keys))
    keys = (image_key, *masks)
    for name, probability in (("affine_prob", affine_prob), ("intensity_prob", intensity_prob)):
        if not 0.0 <= probability <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {probability}")
    transforms: list[Any] = []
    if load:
        transforms.append(LoadMammogramd(keys, mask_keys=masks, fill_missing_masks=fill_missing_masks))
    transforms += [
        BreastCropd(keys, source_key=image_key, erosion_iterations=erosion_iterations, buffer=buffer),
        OrientToRightd(keys, source_key=image_key),
    ]
    if augment:
        modes = ["bilinear"] + ["nearest"] * len(masks)
        # The published 100-pixel size noise cannot apply to a window side of 100 pixels or less: halve that side
        # there instead of refusing to train (larger windows, the presets' included, keep the published value).
        smallest = min(int(v) for v in ensure_tuple(spatial_size))
        size_noise = max_crop_size_noise if max_crop_size_noise < smallest else smallest // 2
        transforms += [
            RandBestCenterWindowd(
                keys,
                source_key=image_key,
                spatial_size=spatial_size,
                max_crop_noise=max_crop_noise,
                max_crop_size_noise=size_noise,
                mode=modes,
            ),
            RandAffined(
                keys,
                prob=affine_prob,
                rotate_range=np.deg2rad(5.0),
                scale_range=(0.05, 0.05),
                mode=modes,
                padding_mode="zeros",
            ),
        ]
    else:
        transforms.append(BestCenterWindowd(keys, source_key=image_key, spatial_size=spatial_size))
    transforms.append(StandardizeIntensityd(image_key))
    if augment:
        transforms += [
            RandGaussianNoised(image_key, prob=intensity_prob, std=0.05),
            RandScaleIntensityd(image_key, factors=0.1, prob=intensity_prob),
            RandShiftIntensityd(image_key, offsets=0.1, prob=intensity_prob),
        ]
    return Compose(transforms)
