from __future__ import annotations

import math

import pytest
import torch

from monai_glam.metrics import SaliencyDiceMetric, compute_saliency_dice


def _map(*pixels: tuple[int, int], value: float = 1.0, size: int = 4) -> torch.Tensor:
    out = torch.zeros(size, size)
    for row, col in pixels:
        out[row, col] = value
    return out


TOP_LEFT = ((0, 0), (0, 1), (1, 0), (1, 1))
TOP_ROW = ((0, 0), (0, 1), (0, 2), (0, 3))

# Three images, two classes; hand-computed Dice of (saliency >= 0.5) against the mask:
#   image 0: class 0 predicts the top-left 2x2, mask is the top row -> 2·2/(4+4) = 0.5;
#            class 1 predicts nothing, mask is one pixel -> 0.
#   image 1: class 0 mask empty -> NaN (not counted);
#            class 1 predicts (2,2),(2,3) with 0.5 exactly (counts: >=), mask (2,3),(3,3) -> 2·1/(2+2) = 0.5.
#   image 2: class 0 prediction equals the mask -> 1; class 1 mask empty (prediction present) -> NaN.
SALIENCY = torch.stack(
    [
        torch.stack([_map(*TOP_LEFT, value=0.9), _map((3, 3), value=0.49)]),
        torch.stack([_map(*TOP_ROW, value=0.7), _map((2, 2), (2, 3), value=0.5)]),
        torch.stack([_map((1, 1), (2, 2), value=0.6), _map(*TOP_LEFT, value=1.0)]),
    ]
)
MASK = torch.stack(
    [
        torch.stack([_map(*TOP_ROW), _map((3, 3))]),
        torch.stack([_map(), _map((2, 3), (3, 3))]),
        torch.stack([_map((1, 1), (2, 2)), _map()]),
    ]
)
NAN = float("nan")
PER_IMAGE = torch.tensor([[0.5, 0.0], [NAN, 0.5], [1.0, NAN]])


def _assert_close_nan(actual: torch.Tensor, expected: torch.Tensor) -> None:
    torch.testing.assert_close(actual.float(), expected.float(), equal_nan=True)


def test_compute_saliency_dice_matches_hand_computation():
    _assert_close_nan(compute_saliency_dice(SALIENCY, MASK, threshold=0.5), PER_IMAGE)


def test_threshold_changes_the_binarisation():
    # at 0.8 only image 0 class 0 (0.9) and image 2 class 1 (1.0) predict anything
    expected = torch.tensor([[2 * 2 / (4 + 4), 0.0], [NAN, 0.0], [0.0, NAN]])
    _assert_close_nan(compute_saliency_dice(SALIENCY, MASK, threshold=0.8), expected)


@pytest.mark.parametrize(
    ("reduction", "expected"),
    [
        ("mean_batch", torch.tensor([0.75, 0.25])),  # per class over the counted images
        ("mean", torch.tensor([(0.25 + 0.5 + 1.0) / 3])),  # per-image class means, then over images (MONAI: (1,))
        ("none", PER_IMAGE),
    ],
)
def test_aggregate_reductions_over_two_iterations(reduction, expected):
    metric = SaliencyDiceMetric(threshold=0.5, reduction=reduction)
    metric(SALIENCY[:2], MASK[:2])
    metric(SALIENCY[2:], MASK[2:])
    _assert_close_nan(metric.aggregate(), expected)
    _assert_close_nan(metric.get_buffer(), PER_IMAGE)


@pytest.mark.parametrize(("class_index", "expected"), [(0, [0.75]), (1, [0.25])])
def test_class_index_scores_one_channel(class_index, expected):
    metric = SaliencyDiceMetric(class_index=class_index)
    metric(SALIENCY, MASK)
    assert metric.get_buffer().shape == (3, 1)
    _assert_close_nan(metric.aggregate(), torch.tensor(expected))


def test_class_without_any_counted_image_is_nan_and_get_not_nans_counts():
    mask = MASK.clone()
    mask[:, 1] = 0  # no malignant lesion anywhere (or no malignant masks at all)
    metric = SaliencyDiceMetric(get_not_nans=True)
    metric(SALIENCY, mask)
    scores, not_nans = metric.aggregate()
    assert scores[0].item() == pytest.approx(0.75)
    assert math.isnan(scores[1].item())
    assert not_nans.tolist() == [2.0, 0.0]
    mean, counted_images = metric.aggregate("mean")  # images 0 and 2 have a lesion: (0.5 + 1) / 2
    assert mean.item() == pytest.approx(0.75)
    assert counted_images.item() == 2


def test_all_empty_masks_aggregate_to_nan():
    metric = SaliencyDiceMetric(reduction="mean")
    metric(SALIENCY, torch.zeros_like(MASK))
    assert math.isnan(metric.aggregate().item())


def test_list_of_channel_first_items_equals_the_batch():
    metric = SaliencyDiceMetric()
    metric(list(SALIENCY), list(MASK))
    _assert_close_nan(metric.aggregate(), torch.tensor([0.75, 0.25]))


def test_reset_empties_the_buffer():
    metric = SaliencyDiceMetric()
    metric(SALIENCY, MASK)
    metric.reset()
    with pytest.raises(ValueError, match="aggregate"):
        metric.aggregate()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"threshold": 1.5}, "1.5"),
        ({"threshold": -0.1}, "-0.1"),
        ({"threshold": float("nan")}, "nan"),
        ({"class_index": -1}, "-1"),
        ({"reduction": "median"}, "median"),
    ],
)
def test_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        SaliencyDiceMetric(**kwargs)


def test_rejects_mismatched_shapes_and_out_of_range_class():
    with pytest.raises(ValueError, match=r"\(3, 2, 4, 4\) and \(3, 2, 4, 3\)"):
        SaliencyDiceMetric()(SALIENCY, MASK[..., :3])
    with pytest.raises(ValueError, match="class_index 2"):
        SaliencyDiceMetric(class_index=2)(SALIENCY, MASK)
