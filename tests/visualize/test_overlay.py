"""Saliency panels: the original call still works, and ground-truth masks are outlined."""

from __future__ import annotations

import pytest
import torch

from monai_glam.visualize import CONTOUR_COLOURS, mask_contours, render_saliency_panel


def test_mask_contours_outline_a_square() -> None:
    masks = torch.zeros(1, 8, 8)
    masks[0, 2:6, 2:6] = 1
    outline = mask_contours(masks, (8, 8))[0]
    expected = torch.zeros(8, 8, dtype=torch.bool)
    expected[2:6, 2:6] = True
    expected[3:5, 3:5] = False
    assert torch.equal(outline, expected)


def test_small_lesions_survive_downscaling() -> None:
    masks = torch.zeros(1, 64, 64)
    masks[0, 31, 31] = 1  # one calcification pixel
    assert mask_contours(masks, (16, 16))[0].sum() == 1
    assert mask_contours(masks, (16, 16), thickness=2)[0].sum() == 9


def test_panel_without_masks_is_unchanged_by_the_new_argument() -> None:
    image, saliency = torch.rand(1, 32, 20), torch.rand(2, 2, 2)
    assert torch.equal(render_saliency_panel(image, saliency), render_saliency_panel(image, saliency, masks=None))


def test_panel_draws_each_class_on_the_image_and_its_own_heat_map() -> None:
    masks = torch.zeros(2, 32, 20)
    masks[0, 4:12, 4:12] = 1
    masks[1, 20:28, 8:16] = 1
    panel = render_saliency_panel(torch.zeros(1, 32, 20), torch.zeros(2, 2, 2), masks=masks)
    assert panel.shape == (3, 32, 60)
    for c, colour in enumerate(CONTOUR_COLOURS):
        hit = (panel - torch.tensor(colour).reshape(3, 1, 1)).abs().amax(dim=0) < 1e-6
        panels = [bool(hit[:, 20 * k : 20 * (k + 1)].any()) for k in range(3)]
        assert panels == [True, c == 0, c == 1]


def test_panel_rejects_masks_of_another_size() -> None:
    with pytest.raises(ValueError, match=r"masks must be \(C, 32, 20\)"):
        render_saliency_panel(torch.zeros(32, 20), torch.zeros(2, 2, 2), masks=torch.zeros(2, 16, 10))
