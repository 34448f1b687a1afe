"""Geometry of the published NYU/GLAM preprocessing (spec §5) as plain NumPy functions.

Coordinates are (row, col) pixel indices; boxes are ``(top, bottom, left, right)`` with exclusive
``bottom``/``right`` (Python slice convention), the same as the published ``window_location``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np
from scipy import ndimage

__all__ = [
    "best_center",
    "breast_crop_box",
    "breast_region_box",
    "erode_diamond",
    "facing_right_from_image",
    "raw_facing_right",
    "window_box",
]

Box = tuple[int, int, int, int]


def erode_diamond(mask: np.ndarray, radius: int) -> np.ndarray:
    """Binary erosion by an L1 (diamond) ball of ``radius`` pixels; pixels outside the array count as background.

    Equal to ``scipy.ndimage.binary_erosion(mask, iterations=radius)`` (3x3 cross structure, ``border_value=0``),
    which peels one L1 layer per iteration: a pixel survives ``radius`` iterations exactly when no background
    pixel, and no pixel outside the array, lies within L1 distance ``radius``. One chamfer distance transform
    (exact for the taxicab metric) computes that in two passes instead of ``radius`` full-image passes.

    Args:
        mask: (H, W) boolean array.
        radius: number of erosion iterations, >= 0.

    Returns:
        (H, W) boolean array.
    """
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    mask = np.asarray(mask, dtype=bool)
    if radius == 0:
        return mask.copy()
    # A one-pixel background frame makes "outside the array" count as background, like border_value=0.
    framed = np.pad(mask, 1, constant_values=False)
    distance = ndimage.distance_transform_cdt(framed, metric="taxicab")
    return distance[1:-1, 1:-1] > radius


def breast_region_box(image: np.ndarray, erosion_iterations: int = 100) -> Box:
    """Bounding box of the breast: the largest connected foreground region after removing thin structures.

    The published algorithm: mask ``image > 0``; erode ``erosion_iterations`` times (removes thin lines and
    small markers); keep the largest 4-connected component; dilate it ``erosion_iterations`` times; take the
    bounding box. Dilating one component by a diamond grows its bounding box by exactly the radius on every
    side (clipped to the image), so the box is computed without materializing the dilation.

    When nothing survives the erosion (a breast narrower than twice the radius, e.g. a tiny test image), the
    largest component of the un-eroded mask is used instead, with a warning.

    Args:
        image: (H, W) array, background 0.
        erosion_iterations: erosion/dilation radius in pixels (100 in the published pipeline).

    Returns:
        ``(top, bottom, left, right)`` of the breast region, exclusive ends.

    Raises:
        ValueError: the image has no pixel above 0.
    """
    foreground = np.asarray(image) > 0
    if not foreground.any():
        raise ValueError("empty image: no pixel is above 0, there is no breast to crop")
    radius = int(erosion_iterations)
    eroded = erode_diamond(foreground, radius)
    if not eroded.any():
        warnings.warn(
            f"no foreground survives erosion by {radius} pixels (image {foreground.shape}); "
            "using the largest component of the un-eroded mask",
            stacklevel=2,
        )
        eroded, radius = foreground, 0
    labels, count = ndimage.label(eroded)  # default structure: 4-connectivity, as published
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    largest = int(np.argmax(sizes))  # the first of equal sizes, like the published idxmax
    rows, cols = ndimage.find_objects(labels)[largest]
    height, width = foreground.shape
    return (
        max(rows.start - radius, 0),
        min(rows.stop + radius, height),
        max(cols.start - radius, 0),
        min(cols.stop + radius, width),
    )


def breast_crop_box(shape: Sequence[int], region: Box, facing_right: bool, buffer: int = 50) -> Box:
    """The crop window around a breast region: ``buffer`` pixels above and below, and on the nipple side only.

    Args:
        shape: (H, W) of the image.
        region: ``(top, bottom, left, right)`` from :func:`breast_region_box`.
        facing_right: True when the chest wall is on the left (the buffer goes to the right).
        buffer: margin in pixels (50 in the published pipeline).

    Returns:
        ``(top, bottom, left, right)`` within the image (the published ``window_location``).
    """
    height, width = int(shape[0]), int(shape[1])
    top, bottom, left, right = region
    top, bottom = max(top - buffer, 0), min(bottom + buffer, height)
    if facing_right:
        right = min(right + buffer, width)
    else:
        left = max(left - buffer, 0)
    return top, bottom, left, right


def facing_right_from_image(image: np.ndarray) -> bool:
    """Guess whether a breast faces right (chest wall on the left) from where its tissue lies.

    The chest-wall side carries the most tissue across the rows, so the brighter half is the chest-wall side.
    Used only when laterality is unknown.
    """
    values = np.clip(np.asarray(image, dtype=np.float64), 0, None)
    half = values.shape[1] // 2
    return bool(values[:, :half].sum() >= values[:, values.shape[1] - half :].sum())


def raw_facing_right(laterality: str, horizontal_flip: bool, image: np.ndarray | None = None) -> bool:
    """Whether a raw image faces right: raw L views do, raw R views do not; ``horizontal_flip`` inverts this.

    Args:
        laterality: ``"L"``, ``"R"``, or ``""`` when unknown (then ``image`` decides).
        horizontal_flip: the exam list's flag that the image is stored mirrored.
        image: (H, W) array for the fallback.

    Raises:
        ValueError: laterality unknown and no image given.
    """
    if laterality in ("L", "R"):
        return (laterality == "L") != bool(horizontal_flip)
    if image is None:
        raise ValueError(f"laterality {laterality!r} is unknown and no image was given to infer the orientation")
    return facing_right_from_image(image)


def best_center(
    breast: np.ndarray, view: str, window: Sequence[int], rightmost: int, bottommost: int
) -> tuple[int, int]:
    """Center of the window that covers the most breast pixels, anchored at the breast's right (and bottom) edge.

    In the cropped right-facing image: the column is fixed so the window's right side meets the right-most
    breast column; for MLO the row is fixed so its bottom meets the bottom-most breast row; for other views
    (CC) the row maximizes the count of breast pixels inside the window (parts of the window outside the image
    count as empty), ties going to the row nearest the image center. The offsets (``- w//2`` for columns,
    ``- h//2 - 1`` for rows) are those measured on the published pipeline's outputs.

    Args:
        breast: (H, W) boolean array of breast (non-zero) pixels.
        view: ``"MLO"`` anchors the row; anything else searches it.
        window: (h, w) window size.
        rightmost: index of the right-most breast column (inclusive).
        bottommost: index of the bottom-most breast row (inclusive).

    Returns:
        ``(row, col)``; may lie outside the image.
    """
    height, width = breast.shape
    win_h, win_w = int(window[0]), int(window[1])
    col = int(rightmost) - win_w // 2
    if view == "MLO":
        return int(bottommost) - win_h // 2 - 1, col
    # Count breast pixels per row inside the window's column range, then every window's count at once from
    # the cumulative sum (an integral image reduced to one dimension, since the column range is fixed).
    left, right = max(col - win_w // 2, 0), min(col - win_w // 2 + win_w, width)
    per_row = breast[:, left:right].sum(axis=1) if right > left else np.zeros(height, dtype=np.int64)
    cumulative = np.concatenate([[0], np.cumsum(per_row, dtype=np.int64)])
    rows = np.arange(height)
    tops = np.clip(rows - win_h // 2, 0, height)
    bottoms = np.clip(rows - win_h // 2 + win_h, 0, height)
    counts = cumulative[bottoms] - cumulative[tops]
    candidates = rows[counts == counts.max()]
    return int(candidates[np.argmin(np.abs(candidates - height // 2))]), col


def window_box(
    shape: Sequence[int], center: Sequence[int], window: Sequence[int], view: str, offset: Sequence[int] = (0, 0)
) -> Box:
    """Placement of the window around ``center``; parts outside the image are zero-padded by the cropper.

    Along an axis where the image is at least as long as the window, the window is centered at ``center`` and
    shifted back inside the image. Along a shorter axis the whole image is kept and padded: CC rows evenly
    above and below, MLO rows below only, columns on the right only (spec §5.5).

    Args:
        shape: (H, W) of the cropped right-facing image.
        center: (row, col) from :func:`best_center`.
        window: (h, w).
        view: ``"CC"``, ``"MLO"``, ...
        offset: (rows, cols) added to the window position before it is shifted back inside the image
            (the training augmentation's position noise).

    Returns:
        ``(top, bottom, left, right)``; ``top``/``left`` may be negative and ``bottom``/``right`` past the image.
    """
    starts = []
    for axis in (0, 1):
        length, size, middle = int(shape[axis]), int(window[axis]), int(center[axis])
        if length >= size:
            start = min(max(middle - size // 2 + int(offset[axis]), 0), length - size)
        elif axis == 0 and view != "MLO":
            start = -((size - length) // 2) + int(offset[axis])
        else:
            start = int(offset[axis])
        starts.append(start)
    return starts[0], starts[0] + int(window[0]), starts[1], starts[1] + int(window[1])
