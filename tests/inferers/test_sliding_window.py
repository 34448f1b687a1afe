from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from monai.inferers import sliding_window_inference

from monai_glam.inferers import (
    SPATIAL_OUTPUT_KEYS,
    GLAMInferer,
    GLAMSlidingWindowInferer,
    GLAMSpatialOutputs,
    masked_top_t_pooling,
    window_starts,
)
from monai_glam.networks import GLAM, TopTPooling
from monai_glam.utils import GLAMKeys
from tests.networks.small_configs import small

SW_KEYS = {"prob_global", "prob_local", "saliency", "saliency_global", "saliency_a1", "saliency_a2", "saliency_a3"}


@pytest.fixture(scope="module")
def net() -> GLAM:
    torch.manual_seed(0)
    return GLAM(**small()).eval()


def _run(inferer, x, net):
    with torch.no_grad():
        return inferer(x, net)


@pytest.mark.parametrize(
    ("roi_size", "mode", "sw_batch_size", "wrap"),
    [
        ((256, 160), "constant", 1, False),
        ((-1, -1), "gaussian", 2, False),
        (0, "constant", 4, True),
    ],
)
def test_one_window_equals_whole_image(net, roi_size, mode, sw_batch_size, wrap):
    torch.manual_seed(1)
    x = torch.randn(2, 1, 256, 160)
    whole = _run(GLAMInferer(), x, net)
    network = GLAMSpatialOutputs(net) if wrap else net
    stitched = _run(GLAMSlidingWindowInferer(roi_size, sw_batch_size=sw_batch_size, mode=mode), x, network)
    assert set(stitched) == SW_KEYS
    for key in SW_KEYS:
        assert stitched[key].shape == whole[key].shape, key
        torch.testing.assert_close(stitched[key], whole[key], atol=1e-5, rtol=1e-5, msg=key)


def test_several_windows_shapes_and_ranges(net):
    x = torch.randn(2, 1, 448, 288)
    inferer = GLAMSlidingWindowInferer((256, 160), overlap=(0.25, 0.2), sw_batch_size=3, mode="gaussian")
    out = _run(inferer, x, net)
    assert set(out) == SW_KEYS
    assert out["saliency"].shape == (2, 2, 448, 288)
    for key in ("saliency_global", "saliency_a1", "saliency_a2", "saliency_a3"):
        assert out[key].shape == (2, 2, 28, 18)
    for key in ("prob_global", "prob_local"):
        assert out[key].shape == (2, 2)
    for value in out.values():
        assert torch.isfinite(value).all() and value.min() >= 0 and value.max() <= 1


def _window_outputs(net, x, top, left, height, width):
    with torch.no_grad():
        return net(x[..., top : top + height, left : left + width])


def test_non_overlapping_windows_tile_exactly(net):
    """With overlap 0, each stitched quadrant is GLAM on that quadrant, at every output scale."""
    torch.manual_seed(2)
    x = torch.randn(1, 1, 512, 320)
    out = _run(GLAMSlidingWindowInferer((256, 160), overlap=0.0), x, net)
    local_values = []
    for top in (0, 256):
        for left in (0, 160):
            window = _window_outputs(net, x, top, left, 256, 160)
            torch.testing.assert_close(out["saliency"][..., top : top + 256, left : left + 160], window["saliency"])
            for key in ("saliency_global", "saliency_a1", "saliency_a2", "saliency_a3"):
                coarse = out[key][..., top // 16 : top // 16 + 16, left // 16 : left // 16 + 10]
                torch.testing.assert_close(coarse, window[key])
            local_values.append(window["patch_saliency"][:, 0].flatten(2))  # (1, C, q*q), one patch per window
    # Image scores pooled from the stitched maps, computed by hand from the four windows.
    pool = TopTPooling(0.03)
    by_hand = sum(pool(out[key]) for key in ("saliency_a1", "saliency_a2", "saliency_a3")) / 3.0
    torch.testing.assert_close(out["prob_global"], by_hand)
    patches = torch.cat(local_values, dim=-1)  # (1, C, 4 * q * q)
    torch.testing.assert_close(out["prob_local"], TopTPooling(0.3)(patches))


def test_overlapping_windows_average_on_the_coarse_grid(net):
    """Rows 192..255 are seen by both windows: the stitched maps are the mean of the two, at both scales."""
    torch.manual_seed(3)
    x = torch.randn(1, 1, 448, 160)
    out = _run(GLAMSlidingWindowInferer((256, 160), overlap=0.25), x, net)
    first = _window_outputs(net, x, 0, 0, 256, 160)
    second = _window_outputs(net, x, 192, 0, 256, 160)
    torch.testing.assert_close(out["saliency_a1"][..., :12, :], first["saliency_a1"][..., :12, :])
    torch.testing.assert_close(
        out["saliency_a1"][..., 12:16, :], (first["saliency_a1"][..., 12:, :] + second["saliency_a1"][..., :4, :]) / 2
    )
    torch.testing.assert_close(out["saliency_a1"][..., 16:, :], second["saliency_a1"][..., 4:, :])
    torch.testing.assert_close(
        out["saliency"][..., 192:256, :], (first["saliency"][..., 192:, :] + second["saliency"][..., :64, :]) / 2
    )


@pytest.mark.parametrize(
    ("image", "roi", "overlap", "message"),
    [
        ((448, 288), (256, 160), 0.25, r"window starts \[120\] along spatial dim 1"),
        ((256, 168), (256, 168), 0.25, "roi_size .* multiple of map_stride"),
        ((250, 160), (256, 160), 0.25, "smaller than the window"),
        ((456, 160), (256, 160), 0.25, r"window starts \[200\] along spatial dim 0"),
    ],
)
def test_misaligned_windows_raise(net, image, roi, overlap, message):
    inferer = GLAMSlidingWindowInferer(roi, overlap=overlap)
    with pytest.raises(ValueError, match=message):
        inferer(torch.zeros(1, 1, *image), net)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"sw_batch_size": 0}, "sw_batch_size"),
        ({"overlap": 1.0}, "overlap"),
        ({"map_stride": 0}, "map_stride"),
        ({"global_top_t": 0.0}, "global_top_t"),
        ({"local_top_k": 1.5}, "local_top_k"),
    ],
)
def test_bad_arguments(kwargs, message):
    with pytest.raises(ValueError, match=message):
        GLAMSlidingWindowInferer((256, 160), **kwargs)


def test_wrong_network_or_map_stride(net):
    with pytest.raises(ValueError, match="GLAM or GLAMSpatialOutputs"):
        GLAMSlidingWindowInferer((256, 160))(torch.zeros(1, 1, 256, 160), torch.nn.Identity())
    with pytest.raises(ValueError, match="not map_stride=32"):
        _run(GLAMSlidingWindowInferer((256, 160), map_stride=32), torch.zeros(1, 1, 256, 160), net)


def test_window_starts_match_monai():
    assert window_starts((448, 288), (256, 160), (0.25, 0.2)) == [[0, 192], [0, 128]]
    assert window_starts((256, 160), (256, 160), (0.5, 0.5)) == [[0], [0]]
    assert window_starts((600, 160), (256, 160), (0.5, 0.0)) == [[0, 128, 256, 344], [0]]


def test_spatial_outputs_order_and_content(net):
    torch.manual_seed(4)
    x = torch.randn(2, 1, 256, 160)
    with torch.no_grad():
        maps = dict(zip(SPATIAL_OUTPUT_KEYS, GLAMSpatialOutputs(net)(x), strict=True))
        out = net(x)
    # Decreasing resolution: MONAI 1.6.1 stitches only when no full-resolution output follows a smaller one.
    sizes = [maps[key].shape[-1] for key in SPATIAL_OUTPUT_KEYS]
    assert sizes == sorted(sizes, reverse=True) == [160, 40, 40, 10, 10, 10, 10]
    assert maps["patch_coverage"].shape == (2, 1, 64, 40)
    for n in range(2):
        row, col = (out["patch_boxes"][n, 0, :2] // 4).tolist()
        torch.testing.assert_close(
            maps["saliency_local"][n, :, row : row + 16, col : col + 16], out["patch_saliency"][n, 0]
        )
        assert maps["patch_coverage"][n].sum() == 16 * 16
        assert maps["patch_coverage"][n, 0, row : row + 16, col : col + 16].all()
    torch.testing.assert_close(maps["saliency"], out["saliency"])


def test_spatial_outputs_rebuild_the_fused_map_when_glam_skips_it():
    torch.manual_seed(5)
    with_map = GLAM(**small()).train()
    without_map = GLAM(**small(saliency_in_training=False)).train()
    without_map.load_state_dict(with_map.state_dict())
    x = torch.randn(2, 1, 256, 160)
    with torch.no_grad():
        assert "saliency" not in without_map(x)
        rebuilt = GLAMSpatialOutputs(without_map)(x)[0]
        reference = with_map(x)["saliency"]
    # Training-mode batch norm uses batch statistics only, so both models compute the same maps.
    torch.testing.assert_close(rebuilt, reference)


def test_spatial_outputs_reject_misaligned_window(net):
    with pytest.raises(ValueError, match="multiple of map_stride=16"):
        GLAMSpatialOutputs(net)(torch.zeros(1, 1, 264, 160))
    with pytest.raises(ValueError, match="map_stride"):
        GLAMSpatialOutputs(net, map_stride=0)


def test_monai_ordering_bug_still_needs_the_workaround():
    """Canary: MONAI 1.6.1 fails when a smaller output sorts before a full-resolution one. If this starts
    passing, the output-order workaround in GLAMSpatialOutputs may be dropped."""

    def predictor(x):
        return {"a_small": F.avg_pool2d(x, 4), "b_full": x}

    with pytest.raises(RuntimeError):
        sliding_window_inference(torch.zeros(1, 1, 32, 32), (16, 16), 1, predictor, overlap=0.5)
    full_first = sliding_window_inference(torch.ones(1, 1, 32, 32), (16, 16), 1, lambda x: (x, F.avg_pool2d(x, 4)))
    assert full_first[0].shape == (1, 1, 32, 32) and full_first[1].shape == (1, 1, 8, 8)


@pytest.mark.parametrize(
    ("values", "mask", "fraction", "expected"),
    [
        # 4 covered pixels, round(4 * 0.5) = 2: mean of 0.9 and 0.7; 0.95 is outside the mask.
        ([0.9, 0.1, 0.7, 0.3, 0.95], [1, 1, 1, 1, 0], 0.5, 0.8),
        # round(3 * 0.1) = 0 -> at least one value.
        ([0.2, 0.6, 0.4], [1, 1, 1], 0.1, 0.6),
        ([0.2, 0.6], [0, 0], 0.5, float("nan")),
    ],
)
def test_masked_top_t_pooling(values, mask, fraction, expected):
    result = masked_top_t_pooling(
        torch.tensor(values).reshape(1, 1, 1, -1), torch.tensor(mask, dtype=torch.bool).reshape(1, 1, 1, -1), fraction
    )
    torch.testing.assert_close(result, torch.tensor([[expected]]), equal_nan=True)


def test_masked_top_t_pooling_equals_top_t_pooling_on_full_mask():
    torch.manual_seed(6)
    values = torch.rand(3, 2, 8, 8)
    result = masked_top_t_pooling(values, torch.ones(3, 1, 8, 8, dtype=torch.bool), 0.3)
    torch.testing.assert_close(result, TopTPooling(0.3)(values))
    with pytest.raises(ValueError, match="fraction"):
        masked_top_t_pooling(values, torch.ones(3, 1, 8, 8, dtype=torch.bool), 0.0)


def test_keys_are_glam_keys():
    assert {key.value for key in GLAMKeys} - SW_KEYS == {"patch_boxes", "patch_saliency"}
