from __future__ import annotations

import numpy as np
import pytest

from monai_glam.metrics import compute_lesion_froc, find_saliency_peaks, froc_curve


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
    assert len(raw_coords) > 2  # without smoothing the plateau gives several maxima


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
