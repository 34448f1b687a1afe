from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_glam.metrics import compute_dice_iou, overlap_counts, pointing_game


def _maps_and_masks() -> tuple[np.ndarray, np.ndarray]:
    """Two 1×4 images, two classes.

    Image 0, class 0: prediction {0, 1} at 0.5, lesion {1, 2} -> Dice 2·1/4 = 0.5, IoU 1/3.
    Image 0, class 1: no lesion (excluded).
    Image 1, class 0: prediction {3}, lesion {3} -> Dice 1, IoU 1.
    Image 1, class 1: prediction empty, lesion {0} -> Dice 0, IoU 0.
    """
    maps = np.array(
        [
            [[[0.9, 0.6, 0.1, 0.2]], [[0.9, 0.9, 0.9, 0.9]]],
            [[[0.1, 0.2, 0.3, 0.8]], [[0.4, 0.1, 0.1, 0.1]]],
        ]
    )
    masks = np.array(
        [
            [[[0, 1, 1, 0]], [[0, 0, 0, 0]]],
            [[[0, 0, 0, 255]], [[1, 0, 0, 0]]],
        ]
    )
    return maps, masks


@pytest.mark.parametrize("as_tensor", [False, True])
def test_dice_iou_hand_computed(as_tensor):
    maps, masks = _maps_and_masks()
    if as_tensor:
        maps, masks = torch.as_tensor(maps), torch.as_tensor(masks)
    scores = compute_dice_iou(maps, masks, 0.5)
    np.testing.assert_allclose(scores.dice, [[0.5, np.nan], [1.0, 0.0]])
    np.testing.assert_allclose(scores.iou, [[1 / 3, np.nan], [1.0, 0.0]])
    np.testing.assert_allclose(scores.mean_dice, [0.75, 0.0])
    np.testing.assert_allclose(scores.mean_iou, [2 / 3, 0.0])
    np.testing.assert_array_equal(scores.num_images, [2, 1])
    summary = scores.to_dict(("benign", "malignant"))
    assert summary["benign"] == {"dice": 0.75, "iou": pytest.approx(2 / 3), "num_images": 2, "threshold": 0.5}


def test_dice_per_class_thresholds_and_lists():
    maps, masks = _maps_and_masks()
    # Class 1 at 0.35 now predicts {0} in image 1 -> Dice 1; class 0 at 0.7 predicts {0} in image 0 -> Dice 0.
    scores = compute_dice_iou(list(maps), list(masks), (0.7, 0.35))
    np.testing.assert_allclose(scores.dice, [[0.0, np.nan], [1.0, 1.0]])
    np.testing.assert_allclose(scores.thresholds, [0.7, 0.35])


def test_dice_on_images_of_different_sizes_and_no_lesions():
    maps = [np.ones((1, 2, 2)), np.zeros((1, 3, 5))]
    masks = [np.ones((1, 2, 2)), np.zeros((1, 3, 5))]
    scores = compute_dice_iou(maps, masks, 0.5)
    np.testing.assert_allclose(scores.dice, [[1.0], [np.nan]])
    empty = compute_dice_iou(maps[1:], masks[1:], 0.5)
    assert np.isnan(empty.mean_dice[0]) and empty.num_images[0] == 0


def test_overlap_counts_sweep():
    saliency = np.array([0.1, 0.5, 0.5, 0.9])
    mask = np.array([False, True, False, True])
    predicted, intersection = overlap_counts(saliency, mask, np.array([0.0, 0.5, 0.6, 1.0]))
    np.testing.assert_array_equal(predicted, [4, 3, 1, 0])
    np.testing.assert_array_equal(intersection, [2, 2, 1, 0])


@pytest.mark.parametrize(
    ("maps", "masks", "thresholds", "message"),
    [
        (np.zeros((1, 2, 4, 4)), np.zeros((1, 2, 4, 4)), (0.1, 0.2, 0.3), "thresholds"),
        (np.zeros((1, 2, 4, 4)), np.zeros((1, 1, 4, 4)), 0.5, "same"),
        ([np.zeros((2, 4, 4)), np.zeros((3, 4, 4))], [np.zeros((2, 4, 4)), np.zeros((3, 4, 4))], 0.5, "C = 2"),
        ("maps", "masks", 0.5, "sequence"),
        ([], [], 0.5, "no saliency maps"),
    ],
)
def test_dice_errors(maps, masks, thresholds, message):
    with pytest.raises(ValueError, match=message):
        compute_dice_iou(maps, masks, thresholds)


def test_pointing_game_hand_computed():
    maps, masks = _maps_and_masks()
    # Arg-max pixels: image 0 class 0 -> 0 (not in {1, 2}: miss); image 1 class 0 -> 3 (hit); image 1 class 1
    # -> 0 (hit); image 0 class 1 has no lesion. A flat map points at its first pixel.
    result = pointing_game(maps, masks)
    np.testing.assert_allclose(result.hits, [[0.0, np.nan], [1.0, 1.0]])
    np.testing.assert_allclose(result.accuracy, [0.5, 1.0])
    np.testing.assert_array_equal(result.num_images, [2, 1])
    assert result.to_dict(("benign", "malignant"))["malignant"] == {"accuracy": 1.0, "num_images": 1}
