"""The standard GLAM data pipeline: published preprocessing, optional augmentation, training targets."""

from __future__ import annotations

from collections.abc import Sequence

from monai.transforms import Compose

from monai_glam.transforms.array import PAPER_WINDOW_SIZE
from monai_glam.transforms.nyu import nyu_preprocessing_transforms
from monai_glam.transforms.targets import GLAMTargetsd
from monai_glam.utils.enums import DEFAULT_MASK_KEYS, BatchKeys

__all__ = ["glam_transforms", "scaled_crop_parameters", "scaled_window_noise"]


def scaled_crop_parameters(spatial_size: Sequence[int]) -> tuple[int, int]:
    """Breast-crop erosion radius and margin scaled from the paper's (100, 50) at a 2944-row window.

    The published values assume full-resolution images; smaller synthetic or downsampled images need
    proportionally smaller ones or the erosion removes the whole breast.
    """
    rows = int(spatial_size[0])
    if rows < 1:
        raise ValueError(f"spatial_size must be positive, got {tuple(spatial_size)}.")
    scale = rows / PAPER_WINDOW_SIZE[0]
    return max(1, round(100 * scale)), max(1, round(50 * scale))


def scaled_window_noise(spatial_size: Sequence[int]) -> tuple[tuple[int, int], int]:
    """The published window position and size noise (100 px each at 2944x1920), scaled to a window.

    The augmentation moves and resizes the window by up to 100 pixels at the paper's size, about 3-5 % of it.
    Applied unscaled to a 256x160 window, the same 100 pixels move it by up to 60 % of its width and cut
    lesions out of images whose label still says they are there, which taught GLAM's global module to fire on
    the chest wall instead of the lesions. Scaling keeps the published fraction of the window at every size.

    Returns:
        ``((row_noise, column_noise), size_noise)`` in pixels (at least 1; ``((100, 100), 100)`` at 2944x1920).
    """
    rows, cols = (int(v) for v in spatial_size)
    if rows < 1 or cols < 1:
        raise ValueError(f"spatial_size must be positive, got {tuple(spatial_size)}.")
    row_scale, col_scale = rows / PAPER_WINDOW_SIZE[0], cols / PAPER_WINDOW_SIZE[1]
    noise = (max(1, round(100 * row_scale)), max(1, round(100 * col_scale)))
    return noise, max(1, round(100 * min(row_scale, col_scale)))


def glam_transforms(
    spatial_size: Sequence[int] = PAPER_WINDOW_SIZE,
    augment: bool = False,
    with_targets: bool = True,
    mask_keys: Sequence[str] = DEFAULT_MASK_KEYS,
    erosion_iterations: int | None = None,
    buffer: int | None = None,
) -> Compose:
    """Datalist item -> GLAM input: load, crop, orient, window, standardise (+ augment) (+ targets).

    Args:
        spatial_size: network input ``(H, W)``.
        augment: add the published window noise (scaled to the window, :func:`scaled_window_noise`) and MONAI
            affine/intensity augmentation (training).
        with_targets: add :class:`GLAMTargetsd` (``label``, ``mask``, ``mask_available``); items then need a
            ``label``. Masks are optional per item (absent ones are filled with zeros and flagged).
        mask_keys: per-class mask keys of the datalist, in channel order.
        erosion_iterations: breast-crop erosion radius; default :func:`scaled_crop_parameters`.
        buffer: breast-crop margin; default :func:`scaled_crop_parameters`.

    Returns:
        A MONAI ``Compose`` whose spatial steps are invertible with ``Invertd``.
    """
    default_erosion, default_buffer = scaled_crop_parameters(spatial_size)
    crop_noise, size_noise = scaled_window_noise(spatial_size)
    chain = nyu_preprocessing_transforms(
        image_key=BatchKeys.IMAGE,
        mask_keys=tuple(mask_keys),
        spatial_size=spatial_size,
        erosion_iterations=default_erosion if erosion_iterations is None else erosion_iterations,
        buffer=default_buffer if buffer is None else buffer,
        fill_missing_masks=True,
        augment=augment,
        max_crop_noise=crop_noise,
        max_crop_size_noise=size_noise,
    )
    if not with_targets:
        return chain
    return Compose([*chain.transforms, GLAMTargetsd(BatchKeys.LABEL, mask_keys=mask_keys, image_key=BatchKeys.IMAGE)])
