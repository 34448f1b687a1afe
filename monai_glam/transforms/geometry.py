"""Geometry of the published NYU/GLAM preprocessing as plain NumPy functions.

The published weights were trained on mammograms prepared in four steps: crop the raw image to the breast
(:func:`breast_crop_geometry`), mirror it so the breast points right, place a fixed-size window anchored at the
breast's right-most point (:func:`best_center`, :func:`window_box`), and standardize it. These functions hold
the geometry of those steps; :mod:`monai_glam.transforms.array` wraps them as MONAI transforms.

Coordinates are (row, col) pixel indices; boxes are ``(top, bottom, left, right)`` with exclusive
``bottom``/``right`` (Python slice convention), the same as the published ``window_location``.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import NamedTuple

import numpy as np
from scipy import ndimage

__all__ = [
    "RIGHTMOST_SEARCH_FROM",
    "BreastCropGeometry",
    "best_center",
    "breast_crop_box",
    "breast_crop_geometry",
    "breast_region_box",
    "erode_diamond",
    "extreme_points",
    "facing_right_from_image",
    "raw_facing_right",
    "window_box",
]

Box = tuple[int, int, int, int]
Point = tuple[int, int]

#: The published cropping looks for the right-most breast point only from this fraction of the crop's height
#: down (``int(crop_height * 1/3)`` and below), so the upper, pectoral part of an MLO view cannot win.
RIGHTMOST_SEARCH_FROM = 1 / 3


class BreastCropGeometry(NamedTuple):
    """What the published breast crop decides for one raw mammogram.

    Attributes:
        window_location: ``(top, bottom, left, right)`` of the crop in the raw image.
        region: ``(top, bottom, left, right)`` of the breast region (the dilated largest component) in the raw
            image.
        rightmost_point: ``(row, col)`` of the published ``rightmost_points`` in the cropped image turned to
            point right (see :func:`extreme_points`): ``row`` is the first row where it is reached.
        bottommost_point: ``(row, col)`` of the published ``bottommost_points`` in the same frame: the last row
            of the breast region and its first column there.
    """

    window_location: Box
    region: Box
    rightmost_point: Point
    bottommost_point: Point


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


def _largest_component(image: np.ndarray, erosion_iterations: int) -> tuple[np.ndarray, int, int, int]:
    """The largest 4-connected component of the eroded foreground, before dilation.

    Args:
        image: (H, W) array, background 0.
        erosion_iterations: erosion radius in pixels.

    Returns:
        ``(component, row, col, radius)``: the component as an (h, w) boolean mask over its bounding box, the
        box's top-left pixel in ``image``, and the radius to dilate it by (0 after the fallback below).

    Raises:
        ValueError: the image has no pixel above 0.
    """
    foreground = np.asarray(image) > 0
    if not foreground.any():
        raise ValueError("empty image: no pixel is above 0, there is no breast to crop")
    radius = int(erosion_iterations)
    if radius < 0:
        raise ValueError(f"erosion_iterations must be >= 0, got {erosion_iterations}")
    eroded = erode_diamond(foreground, radius)
    if not eroded.any():
        warnings.warn(
            f"no foreground survives erosion by {radius} pixels (image {foreground.shape}); "
            "using the largest component of the un-eroded mask",
            stacklevel=3,
        )
        eroded, radius = foreground, 0
    labels, count = ndimage.label(eroded)  # default structure: 4-connectivity, as published
    sizes = np.bincount(labels.ravel(), minlength=count + 1)[1:]
    largest = int(np.argmax(sizes))  # the first of equal sizes, like the published idxmax
    rows, cols = ndimage.find_objects(labels)[largest]
    return labels[rows, cols] == largest + 1, int(rows.start), int(cols.start), radius


def _region_of(component: np.ndarray, row: int, col: int, radius: int, shape: Sequence[int]) -> Box:
    """Bounding box of ``component`` (top-left at ``row, col``) dilated by a diamond of ``radius``, in the image.

    Dilating one component by a diamond grows its bounding box by exactly the radius on every side (clipped to
    the image), so the box needs no dilation.
    """
    height, width = int(shape[0]), int(shape[1])
    return (
        max(row - radius, 0),
        min(row + component.shape[0] + radius, height),
        max(col - radius, 0),
        min(col + component.shape[1] + radius, width),
    )


def breast_region_box(image: np.ndarray, erosion_iterations: int = 100) -> Box:
    """Bounding box of the breast: the largest connected foreground region after removing thin structures.

    The published algorithm: mask ``image > 0``; erode ``erosion_iterations`` times (removes thin lines and
    small markers); keep the largest 4-connected component; dilate it ``erosion_iterations`` times; take the
    bounding box. The box is computed without materializing the dilation.

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
    component, row, col, radius = _largest_component(image, erosion_iterations)
    return _region_of(component, row, col, radius, np.shape(image))


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


def extreme_points(
    mask: np.ndarray, facing_right: bool, search_from: float = RIGHTMOST_SEARCH_FROM
) -> tuple[Point, Point]:
    """The published ``rightmost_points`` and ``bottommost_points`` of a breast mask in its cropped image.

    ``mask`` is in the raw orientation; the points are returned in the frame of the image turned to point
    right, with the published conventions:

    - right-most point: only rows ``int(H * search_from)`` and below are searched. A breast pointing right
      gives its last column there (an inclusive index); a breast pointing left gives ``W - c`` for its first
      column ``c`` there. A true mirror would give ``W - 1 - c``: the published reflection is one column
      larger, so for the same anatomy an R view's value is the L view's plus one.
    - bottom-most point: the mask's last row (inclusive) and its first column in the right-pointing frame:
      ``x`` for a breast pointing right, ``W - x`` (the same reflection) for one pointing left.

    Args:
        mask: (H, W) boolean breast mask of the cropped image, raw orientation (the published pipeline uses the
            dilated largest component).
        facing_right: whether the breast points right in ``mask`` (chest wall on the left).
        search_from: fraction of the height above which the right-most point is not searched, in [0, 1).

    Returns:
        ``((row, col), (row, col))``: the right-most point (``row`` the first row reaching that column) and the
        bottom-most point.

    Raises:
        ValueError: ``search_from`` outside [0, 1), or no mask pixel in the searched rows.
    """
    if not 0.0 <= float(search_from) < 1.0:
        raise ValueError(f"search_from must be in [0, 1), got {search_from}")
    mask = np.asarray(mask, dtype=bool)
    height, width = mask.shape
    start = int(height * search_from)
    searched = mask[start:]
    columns = np.flatnonzero(searched.any(axis=0))
    if columns.size == 0:
        raise ValueError(f"no breast pixel in rows {start} and below (of {height}) to find the right-most point")
    column = int(columns[-1] if facing_right else columns[0])
    row = start + int(np.flatnonzero(searched[:, column])[0])
    rightmost = (row, column if facing_right else width - column)
    last_row = int(np.flatnonzero(mask.any(axis=1))[-1])
    bottom_columns = np.flatnonzero(mask[last_row])
    bottommost = (last_row, int(bottom_columns[0]) if facing_right else width - int(bottom_columns[-1]))
    return rightmost, bottommost


def breast_crop_geometry(
    image: np.ndarray,
    facing_right: bool,
    erosion_iterations: int = 100,
    buffer: int = 50,
    search_from: float = RIGHTMOST_SEARCH_FROM,
) -> BreastCropGeometry:
    """The published breast crop of a raw mammogram: crop box, breast region and the anchor points.

    Mask ``image > 0``, erode ``erosion_iterations`` times, keep the largest 4-connected component, dilate it
    back (together: an opening that drops thin lines and detached markers). Its bounding box plus ``buffer``
    pixels above, below and on the nipple side is the crop. The right-most and bottom-most points are taken
    from the dilated component inside the crop with :func:`extreme_points`.

    The dilation is materialized only inside the breast region, with one taxicab distance transform, which
    equals ``scipy.ndimage.binary_dilation(component, iterations=erosion_iterations)``.

    Args:
        image: (H, W) raw image, background 0.
        facing_right: whether the breast points right in ``image``.
        erosion_iterations: erosion/dilation radius in pixels (published: 100).
        buffer: crop margin in pixels (published: 50).
        search_from: see :func:`extreme_points` (published: 1/3).

    Returns:
        A :class:`BreastCropGeometry`.

    Raises:
        ValueError: the image has no pixel above 0, or a bad argument.
    """
    if int(buffer) < 0:
        raise ValueError(f"buffer must be >= 0, got {buffer}")
    component, row, col, radius = _largest_component(image, erosion_iterations)
    shape = np.shape(image)
    region = _region_of(component, row, col, radius, shape)
    crop = breast_crop_box(shape, region, facing_right, int(buffer))
    top, bottom, left, right = crop
    # Distance to the component for every pixel of the region box; the dilation is what lies within the radius.
    outside = np.ones((region[1] - region[0], region[3] - region[2]), dtype=bool)
    rows = slice(row - region[0], row - region[0] + component.shape[0])
    cols = slice(col - region[2], col - region[2] + component.shape[1])
    outside[rows, cols] &= ~component
    dilated = ndimage.distance_transform_cdt(outside, metric="taxicab") <= radius if radius else ~outside
    in_crop = np.zeros((bottom - top, right - left), dtype=bool)
    in_crop[region[0] - top : region[1] - top, region[2] - left : region[3] - left] = dilated
    rightmost, bottommost = extreme_points(in_crop, facing_right, search_from)
    return BreastCropGeometry(crop, region, rightmost, bottommost)


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
    """The published best center of the window in a cropped, right-pointing image.

    With ``(h, w)`` the window size:

    - column: ``rightmost - w // 2 - 1`` for every view (the published search constrains the column to the
      single candidate ``new_x - 1`` with ``new_x = rightmost - w // 2``);
    - MLO row: ``bottommost - h // 2 - 1`` (the window's bottom meets the breast's bottom-most row);
    - CC (any other view) row: the row whose window holds the most breast pixels (parts of the window outside
      the image count as empty), ties going to the row nearest the image's middle row (the upper one when two
      are equally near).

    Args:
        breast: (H, W) boolean array of breast (non-zero) pixels, right-pointing.
        view: ``"MLO"`` anchors the row; anything else searches it.
        window: (h, w) window size.
        rightmost: column of the published right-most point (:func:`extreme_points`).
        bottommost: row of the published bottom-most point (:func:`extreme_points`).

    Returns:
        ``(row, col)``; may lie outside the image.
    """
    breast = np.asarray(breast, dtype=bool)
    height, width = breast.shape
    win_h, win_w = int(window[0]), int(window[1])
    col = int(rightmost) - win_w // 2 - 1
    if view == "MLO":
        return int(bottommost) - win_h // 2 - 1, col
    # Breast pixels per row inside the window's column range, then every window's count at once from the
    # cumulative sum (an integral image reduced to one dimension, since the column range is fixed).
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
    shifted back inside the image. Along a shorter axis the whole image is kept and padded as published: CC
    rows evenly above and below, MLO rows below only, columns on the right only (the breast keeps touching
    the chest-wall side).

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
