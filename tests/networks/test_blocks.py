from __future__ import annotations

import pytest
import torch

from monai_glam.networks.blocks import (
    FUSION_RULES,
    BasicBlock,
    ConvBatchNorm,
    PreActBasicBlock,
    RegionProposal,
    TopTPooling,
    crop_patches,
    fuse_patch_maps,
    paste_patch_maps,
    rescale_index,
    top_t_count,
)


@pytest.mark.parametrize(
    ("num_values", "fraction", "expected"),
    [(22080, 0.03, 662), (16384, 0.3, 4915), (10, 0.01, 1), (10, 1.0, 10), (5, 0.5, 2)],  # 2.5 -> 2 (half even)
)
def test_top_t_count(num_values, fraction, expected):
    assert top_t_count(num_values, fraction) == expected


def test_top_t_pooling_values():
    x = torch.tensor([[[[1.0, 5.0], [3.0, 2.0]], [[0.0, 0.0], [0.0, 4.0]]]])  # (1, 2, 2, 2)
    assert torch.allclose(TopTPooling(0.5)(x), torch.tensor([[4.0, 2.0]]))
    assert torch.allclose(TopTPooling(1.0)(x), x.mean(dim=(2, 3)))
    # Pooling from dim 1 on: over classes and pixels together.
    assert torch.allclose(TopTPooling(0.25, start_dim=1)(x), torch.tensor([4.5]))


@pytest.mark.parametrize("fraction", [0.0, -0.1, 1.5])
def test_top_t_pooling_rejects_fraction(fraction):
    with pytest.raises(ValueError, match="fraction"):
        TopTPooling(fraction)


@pytest.mark.parametrize(("src", "dst"), [(184, 2944), (120, 1920), (16, 256), (7, 10), (3, 5), (9, 4)])
def test_rescale_index_matches_round_half_even(src, dst):
    index = torch.arange(src + 1)
    expected = torch.tensor([round(i / src * dst) for i in range(src + 1)])
    assert torch.equal(rescale_index(index, src, dst), expected)


def _map_with_peaks(peaks: list[tuple[int, int, float]], size=(16, 10)) -> torch.Tensor:
    saliency = torch.zeros(1, 2, *size)
    saliency[0, :, 0, 0] = 1e-3  # a faint bump in the corner
    for row, col, value in peaks:
        saliency[0, :, row, col] = value
    return saliency


def test_region_proposal_greedy_picks_and_zeroes():
    # Peaks at (10, 6) and (2, 1); a 64-pixel patch on a 256x160 image is a 4x4 window on a 16x10 map.
    saliency = _map_with_peaks([(10, 6, 1.0), (2, 1, 0.5)])
    boxes = RegionProposal(num_patches=2, patch_size=64)(saliency, [256, 160])
    # First arg-max of the 4x4 average: the earliest window containing (10, 6) is corner (7, 3).
    assert boxes.dtype == torch.int64
    assert boxes.tolist() == [[[7 * 16, 3 * 16, 7 * 16 + 64, 3 * 16 + 64], [0, 0, 64, 64]]]


def test_region_proposal_second_pick_avoids_first_window():
    saliency = _map_with_peaks([(10, 6, 1.0)])
    boxes = RegionProposal(num_patches=2, patch_size=64)(saliency, [256, 160])
    first, second = boxes[0].tolist()
    assert first[:2] == [112, 48]
    # The peak is zeroed after the first pick, so the second window is elsewhere (the tiny corner bump).
    assert second[:2] == [0, 0]


def test_region_proposal_per_class_gives_each_class_a_window():
    """``summed`` sends both windows where the classes' sum is high; ``per_class`` picks window k on class k."""
    saliency = torch.zeros(1, 2, 16, 10)
    saliency[0, 0, 2, 2] = 1.0  # the benign peak
    saliency[0, 1, 12, 7] = 1.0  # the malignant peak ...
    saliency[0, 0, 12, 7] = 0.9  # ... where the benign map is high too: the summed map's maximum
    summed = RegionProposal(num_patches=2, patch_size=64)(saliency, [256, 160])[0].tolist()
    per_class = RegionProposal(num_patches=2, patch_size=64, selection="per_class")(saliency, [256, 160])[0].tolist()
    assert summed[0][:2] == [144, 64]  # the window around (12, 7) first
    assert per_class[0][:2] == [0, 0] and per_class[1][:2] == [144, 64]  # benign window first, then malignant
    assert "selection='per_class'" in repr(RegionProposal(2, 64, "per_class"))


def test_region_proposal_is_batched():
    a = _map_with_peaks([(10, 6, 1.0)])
    b = _map_with_peaks([(3, 2, 1.0)])
    proposal = RegionProposal(num_patches=1, patch_size=64)
    both = proposal(torch.cat([a, b]), [256, 160])
    assert torch.equal(both, torch.cat([proposal(a, [256, 160]), proposal(b, [256, 160])]))


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"num_patches": 0}, "num_patches"),
        ({"patch_size": 0}, "patch_size"),
        ({"patch_size": (1, 2, 3)}, "patch_size"),
        ({"selection": "max"}, "selection"),
    ],
)
def test_region_proposal_rejects_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        RegionProposal(**kwargs)


def test_region_proposal_rejects_patch_larger_than_image():
    with pytest.raises(ValueError, match="larger than the input"):
        RegionProposal(patch_size=300)(torch.rand(1, 2, 16, 10), [256, 160])


def test_crop_patches_values_and_out_of_bounds_fill():
    image = torch.arange(2 * 1 * 6 * 5, dtype=torch.float32).reshape(2, 1, 6, 5) + 10
    boxes = torch.tensor([[[1, 2, 4, 5]], [[4, 3, 7, 6]]])  # second box hangs over the bottom-right corner
    patches = crop_patches(image, boxes, [3, 3])
    assert patches.shape == (2, 1, 1, 3, 3)
    assert torch.equal(patches[0, 0, 0], image[0, 0, 1:4, 2:5])
    expected = torch.full((3, 3), float(image[1].min()))
    expected[:2, :2] = image[1, 0, 4:6, 3:5]
    assert torch.equal(patches[1, 0, 0], expected)


def test_paste_patch_maps_later_patch_wins_and_upsamples():
    maps = torch.stack([torch.full((1, 2, 2), 1.0), torch.full((1, 2, 2), 2.0)]).unsqueeze(0)  # (1, 2, 1, 2, 2)
    maps[0, 0, 0, 0, 0] = 5.0  # top-left cell of the first patch: covers 2x2 output pixels
    boxes = torch.tensor([[[0, 0, 4, 4], [2, 2, 6, 6]]])
    full = paste_patch_maps(maps, boxes, [5, 7], [4, 4])
    expected = torch.zeros(5, 7)
    expected[0:4, 0:4] = 1.0
    expected[0:2, 0:2] = 5.0
    expected[2:5, 2:6] = 2.0  # the later patch overwrites, and its part past row 4 is dropped
    assert torch.equal(full[0, 0], expected)


def test_paste_patch_maps_gradient_reaches_visible_cells_only():
    maps = torch.rand(1, 2, 1, 2, 2, requires_grad=True)
    boxes = torch.tensor([[[0, 0, 4, 4], [0, 0, 4, 4]]])  # the second patch hides the first completely
    paste_patch_maps(maps, boxes, [4, 4], [4, 4]).sum().backward()
    assert torch.equal(maps.grad[0, 0], torch.zeros(1, 2, 2))
    assert torch.equal(maps.grad[0, 1], torch.full((1, 2, 2), 4.0))


def _fusion_reference(rule, saliency_global, patch_maps, boxes, size, patch):
    """Each rule written out with whole-map tensors: the pasted local map, its coverage, the upsampled S_g."""
    pasted = paste_patch_maps(patch_maps, boxes, size, patch)
    covered = paste_patch_maps(torch.ones_like(patch_maps), boxes, size, patch) > 0
    global_up = torch.nn.functional.interpolate(saliency_global, size=size, mode="nearest")
    if rule == "mean":
        return (pasted + global_up) * 0.5  # published
    return torch.where(covered, pasted, global_up)


@pytest.mark.parametrize("rule", FUSION_RULES)
@pytest.mark.parametrize(
    "boxes",
    [
        [[[0, 0, 16, 12], [40, 30, 56, 42]]],  # apart
        [[[4, 4, 20, 16], [10, 8, 26, 20]]],  # overlapping: the later patch wins
        [[[-6, -4, 10, 8], [56, 40, 72, 52]]],  # partly outside the image
        [[[8, 8, 24, 20], [8, 8, 24, 20]]],  # the later patch hides the earlier one
    ],
)
def test_fuse_patch_maps_equals_its_formula(rule, boxes):
    torch.manual_seed(0)
    saliency_global = torch.rand(1, 2, 8, 6, requires_grad=True)
    patch_maps = torch.rand(1, 2, 2, 4, 3, requires_grad=True)
    boxes = torch.tensor(boxes)
    size, patch = [64, 48], [16, 12]
    reference = _fusion_reference(rule, saliency_global, patch_maps, boxes, size, patch)
    fused = fuse_patch_maps(saliency_global, patch_maps, boxes, size, patch, rule)
    assert torch.equal(fused, reference)  # bit for bit: halving is exact
    weights = torch.rand_like(reference)
    expected = torch.autograd.grad((reference * weights).sum(), [saliency_global, patch_maps])
    got = torch.autograd.grad((fused * weights).sum(), [saliency_global, patch_maps])
    for a, b in zip(expected, got, strict=True):
        assert torch.allclose(a, b, atol=1e-6)


def test_fuse_patch_maps_rejects_unknown_rule():
    with pytest.raises(ValueError, match="rule must be one of"):
        boxes = torch.zeros(1, 1, 4, dtype=torch.long)
        fuse_patch_maps(torch.rand(1, 2, 4, 4), torch.rand(1, 1, 2, 2, 2), boxes, [8, 8], [4, 4], "max")


@pytest.mark.parametrize("training", [True, False])
@pytest.mark.parametrize(
    "make",
    [
        lambda: PreActBasicBlock(4, 8, stride=2, projection=True),
        lambda: PreActBasicBlock(4, 4),
        lambda: BasicBlock(4, 8, stride=2),
        lambda: BasicBlock(4, 4),
    ],
)
def test_in_place_residual_sum_keeps_values_and_gradients(make, training):
    """The blocks add the shortcut in place; the result and every gradient equal the out-of-place formula."""
    torch.manual_seed(0)
    block = make().train(training)
    x = torch.randn(2, 4, 9, 7, requires_grad=True)
    if isinstance(block, PreActBasicBlock):
        activated = torch.relu(block.norm1(x))
        shortcut = x if block.shortcut is None else block.shortcut(activated)
        reference = block.conv2(torch.relu(block.norm2(block.conv1(activated)))) + shortcut
    else:
        shortcut = x if block.shortcut is None else block.shortcut(x)
        reference = torch.relu(block.conv2(torch.relu(block.conv1(x))) + shortcut)
    weights = torch.rand_like(reference)
    parameters = [x, *block.parameters()]
    expected = torch.autograd.grad((reference * weights).sum(), parameters)
    out = block(x)
    assert torch.allclose(out, reference, atol=1e-5)
    got = torch.autograd.grad((out * weights).sum(), parameters)
    for a, b in zip(expected, got, strict=True):
        assert torch.allclose(a, b, atol=1e-5)


@pytest.mark.parametrize("training", [True, False])
def test_conv_batch_norm_matches_unfolded(training):
    torch.manual_seed(0)
    block = ConvBatchNorm(4, 6, 3, stride=2, padding=1)
    block.norm.running_mean.uniform_(-1, 1)
    block.norm.running_var.uniform_(0.5, 2)
    block.norm.weight.data.uniform_(0.5, 2)
    block.norm.bias.data.uniform_(-1, 1)
    block.train(training)
    x = torch.randn(2, 4, 9, 7)
    reference = block.norm(block.conv(x))
    assert torch.allclose(block(x), reference, atol=1e-5)


@pytest.mark.parametrize(
    ("block", "in_shape", "out_shape"),
    [
        (PreActBasicBlock(8, 16, stride=2, projection=True), (1, 8, 9, 7), (1, 16, 5, 4)),
        (PreActBasicBlock(8, 8), (1, 8, 9, 7), (1, 8, 9, 7)),
        (BasicBlock(8, 16), (1, 8, 9, 7), (1, 16, 9, 7)),
        (BasicBlock(8, 8, stride=2), (1, 8, 9, 7), (1, 8, 5, 4)),
    ],
)
def test_block_shapes(block, in_shape, out_shape):
    assert block(torch.randn(in_shape)).shape == out_shape


def test_pre_act_block_rejects_identity_with_shape_change():
    with pytest.raises(ValueError, match="identity shortcut"):
        PreActBasicBlock(8, 16)


class TestErasure:
    @pytest.mark.parametrize("cell_size", [1, 4, 16, 100])
    def test_smooth_background_keeps_a_constant_image_and_the_cell_means(self, cell_size):
        from monai_glam.networks.blocks import smooth_background

        flat = torch.full((2, 1, 16, 12), 0.7)
        torch.testing.assert_close(smooth_background(flat, cell_size), flat)
        image = torch.randn(1, 1, 16, 12)
        background = smooth_background(image, cell_size)
        assert background.shape == image.shape
        if cell_size == 1:
            torch.testing.assert_close(background, image)
        if cell_size >= 16:  # one cell: the image mean everywhere
            torch.testing.assert_close(background, image.mean().expand_as(image))

    def test_erase_salient_erases_one_copy_per_class_where_its_map_marks(self):
        from monai_glam.networks.blocks import erase_salient, smooth_background

        image = torch.zeros(1, 1, 32, 32)
        image[..., 8:12, 8:12] = 5.0  # a bright "lesion" in the top-left cell of a 2 x 2 map
        saliency = torch.zeros(1, 2, 2, 2, requires_grad=True)
        with torch.no_grad():
            saliency[0, 1, 0, 0] = 1.0  # only the second class's map marks it
        erased = erase_salient(image, saliency, 32)
        assert erased.shape == (1, 2, 1, 32, 32)
        torch.testing.assert_close(erased[:, 0], image)  # the first class's map marks nothing
        # bilinear upsampling (align_corners=False) of a 2 x 2 map to 32 x 32: pixel 9 lies 0.09375 cells past the
        # centre of cell 0 in both directions, so the mask there is (1 - 0.09375)^2
        mask = (1 - 0.09375) ** 2
        background = smooth_background(image, 32)
        assert background[0, 0, 9, 9].item() == pytest.approx(16 * 5.0 / 1024)  # one cell: the image mean
        assert erased[0, 1, 0, 9, 9].item() == pytest.approx(5.0 * (1 - mask) + background[0, 0, 9, 9].item() * mask)
        torch.testing.assert_close(erased[0, 1, :, 24:, 24:], image[0, :, 24:, 24:])  # unmarked cell untouched
        erased[:, 1, :, 8:12, 8:12].sum().backward()
        assert saliency.grad[0, 1, 0, 0] < 0  # marking the lesion more lowers its brightness in its class's copy
        assert saliency.grad[0, 0].abs().sum() == 0  # the other class's map does not take part

    @pytest.mark.parametrize(
        ("image", "saliency", "cell", "message"),
        [
            (torch.zeros(1, 16, 16), torch.zeros(1, 1, 2, 2), 4, "expected"),
            (torch.zeros(2, 1, 16, 16), torch.zeros(1, 1, 2, 2), 4, "batch sizes"),
            (torch.zeros(1, 1, 16, 16), torch.zeros(1, 1, 2, 2), 0, "cell_size"),
        ],
    )
    def test_erase_salient_rejects_bad_arguments(self, image, saliency, cell, message):
        from monai_glam.networks.blocks import erase_salient

        with pytest.raises(ValueError, match=message):
            erase_salient(image, saliency, cell)
