from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_glam.inferers import ThresholdSaliency, ThresholdSaliencyd, threshold_saliency
from monai_glam.metrics import select_dice_thresholds

MAP = np.array([[[0.2, 0.5], [0.7, 0.9]], [[0.2, 0.5], [0.7, 0.9]]], dtype=np.float32)  # (2, 2, 2)


@pytest.mark.parametrize(
    ("thresholds", "expected"),
    [
        (0.5, [[[0, 1], [1, 1]], [[0, 1], [1, 1]]]),  # >= like MONAI's AsDiscrete
        ((0.6, 0.8), [[[0, 0], [1, 1]], [[0, 0], [0, 1]]]),
        ([0.0, 1.0], [[[1, 1], [1, 1]], [[0, 0], [0, 0]]]),
    ],
)
@pytest.mark.parametrize("as_tensor", [False, True])
def test_threshold_saliency(thresholds, expected, as_tensor):
    image = torch.as_tensor(MAP) if as_tensor else MAP
    mask = ThresholdSaliency(thresholds)(image)
    assert isinstance(mask, torch.Tensor) == as_tensor
    np.testing.assert_array_equal(np.asarray(mask), np.asarray(expected, dtype=np.float32))


def test_threshold_saliency_batched_channel_dim():
    batch = torch.as_tensor(np.stack([MAP, 1 - MAP]))  # (2, 2, 2, 2)
    mask = threshold_saliency(batch, (0.6, 0.8), channel_dim=1, dtype=torch.bool)
    assert mask.dtype == torch.bool
    assert mask[0, 1].tolist() == [[False, False], [False, True]]
    assert mask[1, 0].tolist() == [[True, False], [False, False]]


@pytest.mark.parametrize(
    ("thresholds", "channel_dim", "message"),
    [((0.1, 0.2, 0.3), 0, "thresholds"), (float("nan"), 0, "thresholds"), (0.5, 3, "channel_dim")],
)
def test_threshold_saliency_errors(thresholds, channel_dim, message):
    with pytest.raises(ValueError, match=message):
        threshold_saliency(MAP, thresholds, channel_dim=channel_dim)


@pytest.mark.parametrize(("postfix", "mask_key"), [("mask", "saliency_mask"), (None, "saliency")])
def test_dictionary_transform(postfix, mask_key):
    data = {"saliency": torch.as_tensor(MAP), "image": torch.zeros(1, 2, 2)}
    out = ThresholdSaliencyd(thresholds=(0.6, 0.8), output_postfix=postfix)(data)
    assert out[mask_key].tolist() == [[[0, 0], [1, 1]], [[0, 0], [0, 1]]]
    if postfix is not None:
        assert torch.equal(out["saliency"], data["saliency"])
    with pytest.raises(ValueError, match="output_postfix"):
        ThresholdSaliencyd(output_postfix="")


def test_select_dice_thresholds_hand_computed():
    # Class 0: the lesion is the two highest pixels (0.9, 0.7); any threshold in (0.4, 0.7] gives Dice 1 and the
    # smallest candidate there, 0.41, wins. Class 1 has lesions in two images:
    #   image 0 map [0.8, 0.6, 0.3, 0.1], lesion {0.8};  image 1 map [0.5, 0.5, 0.2, 0.0], lesion {0.5, 0.5}.
    #   t in (0.6, 0.8]: Dice 1 and 0      -> mean 0.5
    #   t in (0.5, 0.6]: Dice 2/3 and 0    -> mean 1/3
    #   t in (0.3, 0.5]: Dice 2/3 and 1    -> mean 5/6  (best; smallest candidate 0.31)
    maps = np.array(
        [
            [[[0.9, 0.7], [0.4, 0.2]], [[0.8, 0.6], [0.3, 0.1]]],
            [[[0.9, 0.9], [0.9, 0.9]], [[0.5, 0.5], [0.2, 0.0]]],
        ]
    )
    masks = np.array(
        [
            [[[1, 1], [0, 0]], [[255, 0], [0, 0]]],
            [[[0, 0], [0, 0]], [[1, 1], [0, 0]]],
        ]
    )
    selection = select_dice_thresholds(maps, masks)
    np.testing.assert_allclose(selection.thresholds, [0.41, 0.31])
    np.testing.assert_allclose(selection.dice, [1.0, 5 / 6])
    assert selection.mean_dice.shape == (2, 99)
    coarse = select_dice_thresholds(list(torch.as_tensor(maps)), list(masks), candidates=[0.65, 0.55, 0.45])
    np.testing.assert_allclose(coarse.thresholds, [0.45, 0.45])
    np.testing.assert_allclose(coarse.mean_dice[1], [5 / 6, 1 / 3, 0.5])


def test_select_dice_thresholds_class_without_lesions_warns():
    maps = np.random.default_rng(0).random((2, 2, 4, 4))
    masks = np.zeros_like(maps)
    masks[:, 0, :2, :2] = 1
    with pytest.warns(UserWarning, match="class 1"):
        selection = select_dice_thresholds(maps, masks, default_threshold=0.3)
    assert selection.thresholds[1] == 0.3 and np.isnan(selection.dice[1])


@pytest.mark.parametrize(
    ("maps", "masks", "candidates", "message"),
    [
        (np.zeros((1, 2, 4, 4)), np.zeros((1, 2, 4, 5)), None, "same"),
        (np.zeros((2, 2, 4, 4)), np.zeros((1, 2, 4, 4)), None, "2 saliency maps but 1 masks"),
        (np.zeros((1, 2, 4, 4)), np.zeros((1, 2, 4, 4)), [], "candidates"),
        (np.zeros((2, 4, 4)), np.zeros((2, 4, 4)), None, r"\(N, C, H, W\)"),
    ],
)
def test_select_dice_thresholds_errors(maps, masks, candidates, message):
    with pytest.raises(ValueError, match=message):
        select_dice_thresholds(maps, masks, candidates)
