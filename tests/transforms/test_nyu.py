"""nyu_preprocess: parity with the published pipeline's outputs, symmetry, and bad input."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from monai_glam.data import SyntheticMammogramGenerator
from monai_glam.transforms import nyu_preprocess

SMALL = {"spatial_size": (160, 96), "erosion_iterations": 8, "buffer": 5}
CASES = {
    "0_R-CC": ("data", "nyu_sample", "images", "0_R-CC.png"),
    "0_R-MLO": ("data", "nyu_sample", "images", "0_R-MLO.png"),
    "padded_R-MLO": ("reference", "padded_R-MLO.png"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_parity_with_the_published_preprocessing(shared_dir: Path, case: str) -> None:
    reference_dir = shared_dir / "reference"
    image_path = shared_dir.joinpath(*CASES[case])
    if not (reference_dir / "preprocess_cases.npz").is_file() or not image_path.is_file():
        pytest.skip("preprocessing reference vectors are absent")
    expected = json.loads((reference_dir / "preprocess_cases.json").read_text())[case]
    reference = np.load(reference_dir / "preprocess_cases.npz")[case].astype(np.float32)
    window, info = nyu_preprocess(np.array(Image.open(image_path)), expected["view"], expected["horizontal_flip"])
    assert window.shape == (2944, 1920) and window.dtype == np.float32
    assert list(info["window_location"]) == expected["window_location"]
    assert list(info["best_center"]) == expected["best_center"]
    assert list(info["cropped_shape"]) == expected["cropped_shape"]
    close = np.abs(window - reference) <= 2e-3 + 1e-3 * np.abs(reference)  # the reference is float16
    assert close.mean() >= 0.999


@pytest.mark.parametrize("view", ["CC", "MLO"])
def test_mirrored_left_and_right_views_differ_by_the_published_column(view: str) -> None:
    raw = SyntheticMammogramGenerator(size=(192, 128), seed=1).image(0 if view == "CC" else 1).image  # an L view
    left, left_info = nyu_preprocess(raw, f"L-{view}", **SMALL)
    right, right_info = nyu_preprocess(raw[:, ::-1], f"R-{view}", **SMALL)
    assert (left_info["flipped"], right_info["flipped"]) == (False, True)
    # The published right-most column of a breast pointing left is W - first column, one more than a true
    # mirror, so the R view's center is one column right of the L view's; the rows agree.
    assert right_info["best_center"] == (left_info["best_center"][0], left_info["best_center"][1] + 1)
    # The crop is narrower than the window: both start at column 0 and pad on the right, so the windows agree.
    assert left_info["cropped_shape"] == right_info["cropped_shape"] and left_info["cropped_shape"][1] < 96
    np.testing.assert_allclose(left, right, atol=1e-5)
    flagged, flagged_info = nyu_preprocess(raw[:, ::-1], f"L-{view}", horizontal_flip="YES", **SMALL)
    assert flagged_info["best_center"] == right_info["best_center"]  # stored mirrored: treated as pointing left
    np.testing.assert_allclose(flagged, left, atol=1e-5)


def _hand_derived_rightmost_column(image: np.ndarray) -> int:
    """The published right-most column of a raw L view (breast pointing right), with plain scipy steps."""
    eroded = ndimage.binary_erosion(image > 0, iterations=100)
    labels, _ = ndimage.label(eroded)
    largest = labels == np.argmax(np.bincount(labels.ravel())[1:]) + 1
    dilated = ndimage.binary_dilation(largest, iterations=100)
    rows, cols = np.flatnonzero(dilated.any(axis=1)), np.flatnonzero(dilated.any(axis=0))
    top, bottom = max(rows[0] - 50, 0), min(rows[-1] + 1 + 50, image.shape[0])
    left, right = cols[0], min(cols[-1] + 1 + 50, image.shape[1])  # the buffer goes on the nipple side only
    crop = dilated[top:bottom, left:right]
    searched = crop[int(crop.shape[0] * 1 / 3) :]
    return int(np.flatnonzero(searched.any(axis=0))[-1])


@pytest.mark.parametrize("view", ["L-CC", "L-MLO"])
def test_left_views_follow_the_published_best_center_rule(shared_dir: Path, view: str) -> None:
    sample_dir = shared_dir / "data" / "nyu_sample"
    image_path = sample_dir / "images" / f"0_{view}.png"
    if not image_path.is_file() or not (sample_dir / "exam_list.json").is_file():
        pytest.skip("the NYU sample exam is absent")
    exam = json.loads((sample_dir / "exam_list.json").read_text())[0]
    assert exam["horizontal_flip"] == "NO"  # so the raw L views point right and are not mirrored
    image = np.array(Image.open(image_path))
    _, info = nyu_preprocess(image, view, exam["horizontal_flip"])
    assert info["flipped"] is False
    # The center column is the right-most column minus half the window minus one (the published search leaves
    # the single candidate new_x - 1 with new_x = rightmost_x - 1920 // 2).
    assert info["best_center"][1] == _hand_derived_rightmost_column(image) - 1920 // 2 - 1


def test_output_is_standardized() -> None:
    raw = SyntheticMammogramGenerator(size=(192, 128), seed=2).image(3).image
    window, _ = nyu_preprocess(raw, "R-MLO", **SMALL)
    assert window.shape == (160, 96)
    assert float(window.mean()) == pytest.approx(0.0, abs=1e-5)
    assert float(window.std()) == pytest.approx(1.0, abs=1e-4)


@pytest.mark.parametrize(
    ("image", "view", "problem"),
    [
        (np.zeros((4, 4, 3)), "L-CC", "2-D"),
        (np.zeros((0, 4)), "L-CC", "2-D"),
        (np.full((40, 30), np.nan), "L-CC", "NaN"),
        (np.zeros((40, 30)), "L-CC", "empty image"),
        (np.ones((40, 30)), "", "view"),
    ],
)
def test_bad_input(image: np.ndarray, view: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        nyu_preprocess(image, view, **SMALL)
