"""The published crop/best-center geometry, checked against direct (slow) definitions."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from monai_glam.transforms import (
    best_center,
    breast_crop_box,
    breast_crop_geometry,
    breast_region_box,
    erode_diamond,
    extreme_points,
    raw_facing_right,
    window_box,
)


@pytest.mark.parametrize("radius", [0, 1, 3, 7])
@pytest.mark.parametrize("seed", [0, 1])
def test_erode_diamond_equals_iterated_scipy_erosion(radius: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    mask = ndimage.binary_dilation(rng.random((40, 30)) > 0.7, iterations=2)
    mask[:, :5] = True  # foreground touching the border: scipy's border_value=0 erodes it
    expected = ndimage.binary_erosion(mask, iterations=radius) if radius else mask
    np.testing.assert_array_equal(erode_diamond(mask, radius), expected)


def _breast_with_marker() -> np.ndarray:
    image = np.zeros((120, 80), dtype=np.float32)
    rows, cols = np.ogrid[:120, :80]
    image[((rows - 60) / 45.0) ** 2 + (cols / 50.0) ** 2 <= 1] = 1000  # breast at the left edge, facing right
    image[5:9, 70:76] = 4095  # detached marker
    image[110, :] = 30  # a thin line across the image
    return image


def test_breast_region_box_ignores_markers_and_lines() -> None:
    image = _breast_with_marker()
    top, bottom, left, right = breast_region_box(image, erosion_iterations=5)
    # An opening (erode then dilate) recovers the breast's bounding box up to its pointed tips, and leaves the
    # marker (rows 5-8, columns 70-75) and the line (row 110) out.
    rows, cols = np.nonzero(image == 1000)
    assert abs(top - rows.min()) <= 1 and abs(bottom - (rows.max() + 1)) <= 1
    assert left == 0 and abs(right - (cols.max() + 1)) <= 1


def test_breast_region_box_falls_back_when_erosion_removes_everything() -> None:
    image = np.zeros((20, 20))
    image[5:8, 2:12] = 1
    with pytest.warns(UserWarning, match="no foreground survives erosion"):
        assert breast_region_box(image, erosion_iterations=100) == (5, 8, 2, 12)


def test_breast_region_box_rejects_empty_images() -> None:
    with pytest.raises(ValueError, match="empty image"):
        breast_region_box(np.zeros((10, 10)))


@pytest.mark.parametrize(
    ("facing_right", "expected"),
    [(True, (10, 100, 20, 50)), (False, (10, 100, 10, 40))],
)
def test_breast_crop_box_buffers_the_nipple_side(facing_right: bool, expected: tuple) -> None:
    assert breast_crop_box((100, 90), (20, 95, 20, 40), facing_right, buffer=10) == expected


@pytest.mark.parametrize(
    ("laterality", "flip", "expected"),
    [("L", False, True), ("R", False, False), ("L", True, False), ("R", True, True)],
)
def test_raw_facing_right(laterality: str, flip: bool, expected: bool) -> None:
    assert raw_facing_right(laterality, flip) is expected


def test_raw_facing_right_falls_back_to_the_image() -> None:
    image = _breast_with_marker()
    assert raw_facing_right("", False, image) is True
    assert raw_facing_right("", False, image[:, ::-1]) is False
    with pytest.raises(ValueError, match="unknown"):
        raw_facing_right("", False)


def _published_crop_by_scipy(image: np.ndarray, facing_right: bool, radius: int, buffer: int) -> tuple:
    """The published crop written out with plain scipy steps: window location, right-most and bottom-most points."""
    eroded = ndimage.binary_erosion(image > 0, iterations=radius)
    labels, _ = ndimage.label(eroded)
    largest = labels == np.argmax(np.bincount(labels.ravel())[1:]) + 1
    dilated = ndimage.binary_dilation(largest, iterations=radius)
    rows, cols = np.flatnonzero(dilated.any(axis=1)), np.flatnonzero(dilated.any(axis=0))
    top, bottom = max(rows[0] - buffer, 0), min(rows[-1] + 1 + buffer, image.shape[0])
    left, right = cols[0], cols[-1] + 1
    if facing_right:
        right = min(right + buffer, image.shape[1])
    else:
        left = max(left - buffer, 0)
    crop = dilated[top:bottom, left:right]
    searched = crop[int(crop.shape[0] / 3) :]
    found = np.flatnonzero(searched.any(axis=0))
    rightmost_col = found[-1] if facing_right else crop.shape[1] - found[0]
    bottom_cols = np.flatnonzero(dilated[rows[-1]])
    bottommost_col = bottom_cols[0] - left if facing_right else right - bottom_cols[-1]
    return (top, bottom, left, right), rightmost_col, (rows[-1] - top, bottommost_col)


@pytest.mark.parametrize("facing_right", [True, False])
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_breast_crop_geometry_matches_the_published_steps(facing_right: bool, seed: int) -> None:
    rng = np.random.default_rng(seed)
    image = _breast_with_marker()
    image[rng.random(image.shape) > 0.998] = 0  # a few holes: the opening must be computed exactly
    image[60:75, 50:62] = 900  # a bump, so the right-most point depends on the searched rows
    image[20:30, :70] = 900  # a band in the top third reaching further right, which the search must ignore
    if not facing_right:
        image = image[:, ::-1].copy()
    geometry = breast_crop_geometry(image, facing_right, erosion_iterations=4, buffer=3)
    box, rightmost_col, bottommost = _published_crop_by_scipy(image, facing_right, radius=4, buffer=3)
    assert geometry.window_location == box
    assert geometry.region == breast_region_box(image, erosion_iterations=4)
    assert geometry.rightmost_point[1] == rightmost_col
    assert geometry.bottommost_point == bottommost


def test_extreme_points_use_the_published_reflection() -> None:
    mask = np.zeros((9, 12), dtype=bool)
    mask[0:2, :11] = True  # top third (rows 0-2): ignored by the right-most search
    mask[3:8, :7] = True
    mask[8, 2:5] = True
    # Pointing right: the last column of rows 3 and below (inclusive), the bottom row's first column.
    assert extreme_points(mask, facing_right=True) == ((3, 6), (8, 2))
    # The same breast pointing left: W - first column, one more than a true mirror (12 - 1 - 5 = 6).
    assert extreme_points(mask[:, ::-1], facing_right=False) == ((3, 7), (8, 3))
    with pytest.raises(ValueError, match="search_from"):
        extreme_points(mask, True, search_from=1.0)
    with pytest.raises(ValueError, match="right-most point"):
        extreme_points(mask[:3], True, search_from=0.9)  # rows 2 and below: row 2 is empty


def _best_row_by_brute_force(breast: np.ndarray, window: tuple[int, int], col: int) -> int:
    height = breast.shape[0]
    best, best_count = None, -1
    for row in sorted(range(height), key=lambda r: (abs(r - height // 2), r)):
        top, left = row - window[0] // 2, col - window[1] // 2
        count = breast[max(top, 0) : max(top + window[0], 0), max(left, 0) : max(left + window[1], 0)].sum()
        if count > best_count:
            best, best_count = row, count
    return best


@pytest.mark.parametrize("seed", [0, 1, 2])
@pytest.mark.parametrize("window", [(10, 8), (31, 12), (80, 50), (60, 30)])
def test_cc_best_center_matches_brute_force(seed: int, window: tuple[int, int]) -> None:
    breast = np.random.default_rng(seed).random((60, 40)) > 0.6
    rightmost = int(np.flatnonzero(breast.any(axis=0))[-1])
    row, col = best_center(breast, "CC", window, rightmost, bottommost=59)
    assert col == rightmost - window[1] // 2 - 1
    assert row == _best_row_by_brute_force(breast, window, col)


def test_mlo_best_center_is_anchored_bottom_right() -> None:
    # The published values of the reference R-MLO case: right-most 956, bottom-most 2599 -> (1126, -5).
    breast = np.ones((2650, 1006), dtype=bool)
    assert best_center(breast, "MLO", (2944, 1920), rightmost=956, bottommost=2599) == (1126, -5)


@pytest.mark.parametrize(
    ("shape", "center", "view", "offset", "expected"),
    [
        ((2144, 801), (1072, -210), "CC", (0, 0), (-400, 2544, 0, 1920)),  # pad rows evenly, columns right
        ((2650, 1006), (1126, -5), "MLO", (0, 0), (0, 2944, 0, 1920)),  # pad rows below only
        ((3200, 2100), (1500, 1000), "CC", (0, 0), (28, 2972, 40, 1960)),  # centered inside
        ((3200, 2100), (100, 2090), "MLO", (0, 0), (0, 2944, 180, 2100)),  # shifted back inside
        ((3200, 2100), (1500, 1000), "CC", (-50, 30), (0, 2944, 70, 1990)),  # clamped after the offset
        ((100, 50), (50, 25), "CC", (5, -3), (-25, 135, -3, 67)),  # offsets move padded windows too
    ],
)
def test_window_box(shape, center, view, offset, expected) -> None:
    window = (2944, 1920) if shape[0] > 1000 else (160, 70)
    assert window_box(shape, center, window, view, offset) == expected
