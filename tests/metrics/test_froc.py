from __future__ import annotations

import numpy as np
import pytest

from monai_glam.metrics import compute_lesion_froc, find_saliency_peaks, froc_curve, lesion_diameters


def _constructed() -> tuple[np.ndarray, np.ndarray]:
    """Two 48×48 single-class images with single-pixel peaks on a zero background.

    Image 0: lesions A (rows 8-12, cols 8-12) and B (rows 8-12, cols 36-40); peaks 0.9 in A, 0.8 outside,
    0.7 in B and 0.6 in A again (a second hit on A counts as neither TP nor FP).
    Image 1: no lesion, one peak 0.85.
    Sweeping down: 0.9 TP(A) -> (0 FP, 1/2); 0.85 FP -> (0.5, 1/2); 0.8 FP -> (1, 1/2); 0.7 TP(B) -> (1, 1);
    0.6 ignored.
    """
    maps = np.zeros((2, 1, 48, 48))
    masks = np.zeros((2, 1, 48, 48), dtype=np.uint8)
    masks[0, 0, 8:13, 8:13] = 255
    masks[0, 0, 8:13, 36:41] = 255
    maps[0, 0, 10, 10] = 0.9
    maps[0, 0, 30, 30] = 0.8
    maps[0, 0, 10, 38] = 0.7
    maps[0, 0, 12, 12] = 0.6
    maps[1, 0, 20, 20] = 0.85
    return maps, masks


def test_froc_hand_computed():
    maps, masks = _constructed()
    result = compute_lesion_froc(maps, masks, sigma=0.0, min_distance=1, class_names=("malignant",))["malignant"]
    np.testing.assert_allclose(result.curve_fps, [0.0, 0.5, 1.0])
    np.testing.assert_allclose(result.curve_sensitivity, [0.5, 0.5, 1.0])
    np.testing.assert_allclose(result.sensitivity, [0.5, 0.5, 1.0, 1.0, 1.0, 1.0])
    assert result.mean_sensitivity == pytest.approx(5 / 6)
    assert (result.num_lesions, result.num_images, result.num_candidates) == (2, 2, 5)
    summary = result.to_dict()
    assert summary["sensitivity"]["0.25"] == 0.5 and summary["curve"]["fps_per_image"] == [0.0, 0.5, 1.0]


def test_froc_interpolates_between_operating_points():
    maps, masks = _constructed()
    # At 0.75 FP/image the curve is between (0.5, 0.5) and (1, 1): linear interpolation gives 0.75.
    result = compute_lesion_froc(maps, masks, fp_rates=(0.75,), sigma=0.0, min_distance=1)["class_0"]
    np.testing.assert_allclose(result.sensitivity, [0.75])
    # Fewer candidates: keep only the best peak per image -> image 0 gives only 0.9 (TP on A).
    top1 = compute_lesion_froc(maps, masks, fp_rates=(0.5,), sigma=0.0, min_distance=1, max_peaks_per_image=1)
    np.testing.assert_allclose(top1["class_0"].curve_fps, [0.0, 0.5])
    np.testing.assert_allclose(top1["class_0"].curve_sensitivity, [0.5, 0.5])


def test_class_without_lesions_is_undefined():
    maps, masks = _constructed()
    result = compute_lesion_froc(maps, np.zeros_like(masks), sigma=0.0, min_distance=1)["class_0"]
    assert np.isnan(result.mean_sensitivity) and np.all(np.isnan(result.sensitivity))
    assert "no lesion" in result.note and result.num_lesions == 0


def test_smoothing_turns_a_plateau_into_one_candidate():
    saliency = np.zeros((64, 64))
    saliency[8:24, 8:24] = 0.6  # 16×16 blocks, like the fused map's upsampled global cells
    saliency[40:56, 40:56] = 0.3
    coords, scores = find_saliency_peaks(saliency, sigma=3.0, min_distance=8)
    assert len(coords) == 2
    assert np.all(np.abs(coords[0] - 15.5) <= 1) and np.all(np.abs(coords[1] - 47.5) <= 1)
    assert scores[0] > scores[1] > 0
    raw_coords, _ = find_saliency_peaks(saliency, sigma=0.0, min_distance=2)
    # without smoothing each plateau is still one candidate, at its centre
    np.testing.assert_array_equal(raw_coords, [[15, 15], [47, 47]])


def test_froc_curve_counts():
    fps, sens = froc_curve(np.array([0.9, 0.5, 0.5]), np.array([False, True, True]), np.array([0.9, -np.inf]), 4)
    np.testing.assert_allclose(fps, [0.0, 0.5])
    np.testing.assert_allclose(sens, [0.5, 0.5])


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"fp_rates": ()}, "fp_rates"),
        ({"fp_rates": (0.0, 1.0)}, "fp_rates"),
        ({"connectivity": 3}, "connectivity"),
        ({"sigma": -1.0}, "sigma"),
        ({"min_distance": 0}, "min_distance"),
        ({"max_peaks_per_image": 0}, "max_peaks"),
    ],
)
def test_froc_errors(kwargs, message):
    maps, masks = _constructed()
    with pytest.raises(ValueError, match=message):
        compute_lesion_froc(maps, masks, **kwargs)


def test_find_peaks_needs_a_2d_map():
    with pytest.raises(ValueError, match=r"\(H, W\)"):
        find_saliency_peaks(np.zeros((1, 4, 4)))


def _two_lesion_case() -> tuple[np.ndarray, np.ndarray]:
    """One image, one class: a small lesion (3x3) and a large one (9x9), a peak on each and one false peak."""
    masks = np.zeros((1, 1, 64, 64), dtype=np.uint8)
    masks[0, 0, 5:8, 5:8] = 1
    masks[0, 0, 30:39, 30:39] = 1
    maps = np.zeros((1, 1, 64, 64), dtype=np.float32)
    maps[0, 0, 6, 6] = 0.9  # small lesion
    maps[0, 0, 34, 34] = 0.5  # large lesion
    maps[0, 0, 55, 10] = 0.7  # false positive
    return maps, masks


@pytest.mark.parametrize(
    "diameter_range, lesions, sensitivity_at_1fp",
    [
        (None, 2, 1.0),
        ((0.0, 5.0), 1, 1.0),  # only the small lesion counts; the large one's peak is not a false positive
        ((5.0, 100.0), 1, 1.0),
        ((50.0, 100.0), 0, np.nan),
    ],
)
def test_froc_diameter_range(diameter_range, lesions, sensitivity_at_1fp):
    maps, masks = _two_lesion_case()
    result = compute_lesion_froc(
        maps, masks, fp_rates=(0.5, 1.0), sigma=0, min_distance=1, diameter_range=diameter_range
    )
    froc = result["class_0"]
    assert froc.num_lesions == lesions
    np.testing.assert_allclose(froc.sensitivity[-1], sensitivity_at_1fp)


def test_froc_diameter_range_drops_peaks_on_other_lesions():
    maps, masks = _two_lesion_case()
    # Large lesions only: its peak (0.5) ranks below the false positive (0.7), and the small lesion's peak
    # (0.9) is neither a hit nor a false positive: the lesion is found only after one false positive.
    froc = compute_lesion_froc(maps, masks, fp_rates=(1.0,), sigma=0, min_distance=1, diameter_range=(5.0, 100.0))
    assert froc["class_0"].num_candidates == 2
    np.testing.assert_allclose(froc["class_0"].curve_fps, [0.0, 1.0])
    np.testing.assert_allclose(froc["class_0"].curve_sensitivity, [0.0, 1.0])


@pytest.mark.parametrize("bad", [(5.0, 5.0), (-1.0, 2.0), (3.0, 1.0)])
def test_froc_diameter_range_rejects_bad_ranges(bad):
    maps, masks = _two_lesion_case()
    with pytest.raises(ValueError, match="diameter_range"):
        compute_lesion_froc(maps, masks, diameter_range=bad)


def test_lesion_diameters():
    _, masks = _two_lesion_case()
    diameters = lesion_diameters(masks)
    assert len(diameters) == 1
    np.testing.assert_allclose(sorted(diameters[0]), [3.0, 9.0])
    assert lesion_diameters(np.zeros((2, 3, 8, 8)))[2].size == 0


def test_merge_distance_makes_a_cluster_one_lesion():
    masks = np.zeros((1, 1, 40, 40), dtype=np.uint8)
    for row, col in ((10, 10), (10, 14), (14, 12)):  # three specks 4 px apart: one cluster
        masks[0, 0, row, col] = 1
    masks[0, 0, 35, 35] = 1  # a speck far away: its own lesion
    np.testing.assert_allclose(sorted(lesion_diameters(masks)[0]), [1, 1, 1, 1])
    np.testing.assert_allclose(sorted(lesion_diameters(masks, merge_distance=2)[0]), [1, 5])
    maps = np.zeros((1, 1, 40, 40), dtype=np.float32)
    maps[0, 0, 12, 12] = 1.0  # between the specks: a hit on the cluster once they are merged
    apart = compute_lesion_froc(maps, masks, fp_rates=(1.0,), sigma=0, min_distance=1)["class_0"]
    merged = compute_lesion_froc(maps, masks, fp_rates=(1.0,), sigma=0, min_distance=1, merge_distance=2)["class_0"]
    assert (apart.num_lesions, merged.num_lesions) == (4, 2)
    np.testing.assert_allclose(merged.sensitivity, [0.5])
    with pytest.raises(ValueError, match="merge_distance"):
        compute_lesion_froc(maps, masks, merge_distance=-1)
