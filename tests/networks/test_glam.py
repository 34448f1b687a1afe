from __future__ import annotations

import io

import pytest
import torch
import torch.nn.functional as F

from monai_glam.networks import GLAM, GlobalNetwork, LocalNetwork
from monai_glam.utils import GLAMKeys
from tests.networks.small_configs import small


def _model(seed: int = 0, **overrides) -> GLAM:
    torch.manual_seed(seed)
    return GLAM(**small(**overrides))


@pytest.mark.parametrize(
    ("overrides", "input_shape", "num_patches", "num_classes", "patch"),
    [
        ({}, (1, 1, 256, 160), 1, 2, (64, 64)),
        ({"num_patches": 3}, (2, 1, 320, 192), 3, 2, (64, 64)),
        ({"patch_size": (64, 32), "num_classes": 3}, (1, 1, 256, 160), 1, 3, (64, 32)),
        ({"in_channels": 3, "num_patches": 2}, (1, 3, 256, 256), 2, 2, (64, 64)),
    ],
)
def test_output_keys_and_shapes(overrides, input_shape, num_patches, num_classes, patch):
    net = _model(**overrides).eval()
    n, _, height, width = input_shape
    with torch.no_grad():
        out = net(torch.randn(input_shape))
    h, w = height // 16, width // 16
    expected = {
        GLAMKeys.PROB_GLOBAL: (n, num_classes),
        GLAMKeys.PROB_LOCAL: (n, num_classes),
        GLAMKeys.SALIENCY_GLOBAL: (n, num_classes, h, w),
        GLAMKeys.SALIENCY_A1: (n, num_classes, h, w),
        GLAMKeys.SALIENCY_A2: (n, num_classes, h, w),
        GLAMKeys.SALIENCY_A3: (n, num_classes, h, w),
        GLAMKeys.PATCH_BOXES: (n, num_patches, 4),
        GLAMKeys.PATCH_SALIENCY: (n, num_patches, num_classes, patch[0] // 4, patch[1] // 4),
        GLAMKeys.SALIENCY: (n, num_classes, height, width),
    }
    assert set(out) == {str(key) for key in expected}
    for key, shape in expected.items():
        assert tuple(out[key].shape) == shape, key
    boxes = out[GLAMKeys.PATCH_BOXES]
    assert boxes.dtype == torch.int64
    assert torch.equal(boxes[..., 2] - boxes[..., 0], torch.full_like(boxes[..., 0], patch[0]))
    assert torch.equal(boxes[..., 3] - boxes[..., 1], torch.full_like(boxes[..., 0], patch[1]))
    for key in (GLAMKeys.PROB_GLOBAL, GLAMKeys.PROB_LOCAL, GLAMKeys.SALIENCY):
        assert float(out[key].min()) >= 0.0 and float(out[key].max()) <= 1.0


def test_published_configuration_sizes():
    net = GLAM()
    assert sum(p.numel() for p in net.local_network.parameters()) == 21_285_696
    # The published count (2,800,444) includes an unused 6->2 convolution (12 weights) that GLAM omits.
    assert sum(p.numel() for p in net.global_network.parameters()) == 2_800_444 - 12
    assert net.patch_size == (512, 512)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"global_top_t": 0.0}, "fraction"),
        ({"global_top_t": 1.5}, "fraction"),
        ({"local_top_k": -0.3}, "fraction"),
        ({"num_patches": 0}, "num_patches"),
        ({"patch_size": -4}, "patch_size"),
        ({"scale_weights": (0.5, 0.5)}, "scale_weights"),
        ({"global_channels": (8, 16)}, "at least 3 stages"),
        ({"global_blocks": (1, 1)}, "global_blocks|blocks"),
        ({"local_channels": (8, 0, 16, 16)}, "channels"),
        ({"in_channels": 0}, "in_channels"),
        ({"num_classes": 0}, "num_classes"),
        ({"in_channels": 2}, "local_in_channels"),
        ({"global_padding_mode": "circular"}, "padding_mode"),
        ({"patch_selection": "max"}, "selection"),
        ({"fusion": "max"}, "fusion"),
        ({"local_pooling": "mean"}, "local_pooling"),
        ({"patch_jitter": -0.1}, "patch_jitter"),
        ({"patch_jitter": 0.6}, "patch_jitter"),
        ({"local_padding_mode": "circular"}, "padding_mode"),
    ],
)
def test_constructor_rejects_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        GLAM(**small(**kwargs))


@pytest.mark.parametrize(
    ("shape", "match"),
    [
        ((1, 3, 256, 160), "expected input of shape"),
        ((1, 256, 160), "expected input of shape"),
        ((1, 1, 48, 160), "larger than the input"),
    ],
)
def test_forward_rejects_bad_inputs(shape, match):
    with pytest.raises(ValueError, match=match):
        _model().eval()(torch.randn(shape))


def test_every_parameter_gets_a_gradient():
    net = _model(num_patches=2).train()
    out = net(torch.randn(2, 1, 256, 160))
    loss = out[GLAMKeys.PROB_GLOBAL].sum() + out[GLAMKeys.PROB_LOCAL].sum() + out[GLAMKeys.SALIENCY].mean()
    loss.backward()
    without = [name for name, p in net.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert without == []


def test_saliency_in_training_switch():
    x = torch.randn(1, 1, 256, 160)
    assert GLAMKeys.SALIENCY not in _model(saliency_in_training=False).train()(x)
    assert GLAMKeys.SALIENCY in _model(saliency_in_training=False).eval()(x)
    assert _model().train()(x)[GLAMKeys.SALIENCY].requires_grad


@pytest.mark.parametrize(
    ("fusion", "outside", "inside"),
    [
        ("mean", lambda g: g / 2, lambda g, s: (s + g) / 2),  # published
        ("local", lambda g: g, lambda g, s: s),  # the local map replaces the global one in the patch
    ],
)
def test_fused_map_composition(fusion, outside, inside):
    net = _model(fusion=fusion).eval()
    with torch.no_grad():
        out = net(torch.randn(1, 1, 256, 160))
    global_up = F.interpolate(out[GLAMKeys.SALIENCY_GLOBAL], size=(256, 160), mode="nearest")
    r0, c0, r1, c1 = out[GLAMKeys.PATCH_BOXES][0, 0].tolist()
    local_up = F.interpolate(out[GLAMKeys.PATCH_SALIENCY][:, 0], scale_factor=4, mode="nearest")
    expected = outside(global_up)
    expected[..., r0:r1, c0:c1] = inside(global_up[..., r0:r1, c0:c1], local_up)
    assert torch.allclose(out[GLAMKeys.SALIENCY], expected, atol=1e-7)


def test_prob_local_is_top_k_mean_over_all_patches():
    net = _model(num_patches=2, local_top_k=0.25).eval()
    with torch.no_grad():
        out = net(torch.randn(1, 1, 256, 160))
    maps = out[GLAMKeys.PATCH_SALIENCY][0]  # (K, C, 16, 16)
    for c in range(2):
        values = maps[:, c].flatten().sort(descending=True).values
        assert torch.allclose(out[GLAMKeys.PROB_LOCAL][0, c], values[: round(values.numel() * 0.25)].mean())


def test_prob_local_max_patch_is_the_largest_per_patch_top_k_mean():
    net = _model(num_patches=2, local_top_k=0.25, local_pooling="max_patch").eval()
    with torch.no_grad():
        out = net(torch.randn(1, 1, 256, 160))
    maps = out[GLAMKeys.PATCH_SALIENCY][0]  # (K, C, 16, 16)
    for c in range(2):
        per_patch = [maps[k, c].flatten().sort(descending=True).values[:64].mean() for k in range(2)]
        assert torch.allclose(out[GLAMKeys.PROB_LOCAL][0, c], max(per_patch))


@pytest.mark.parametrize(("num_patches", "same"), [(1, True), (2, False)])
def test_local_poolings_agree_for_one_patch_only(num_patches, same):
    x = torch.randn(2, 1, 256, 160)
    with torch.no_grad():
        joint, maxed = (
            _model(num_patches=num_patches, local_pooling=pooling).eval()(x) for pooling in ("all_patches", "max_patch")
        )
    for key in joint:  # the pooling changes ŷ_l only
        if key != GLAMKeys.PROB_LOCAL:
            assert torch.equal(joint[key], maxed[key]), key
    assert torch.allclose(joint[GLAMKeys.PROB_LOCAL], maxed[GLAMKeys.PROB_LOCAL]) is same


def test_max_patch_pooling_trains_the_local_module():
    net = _model(num_patches=2, local_pooling="max_patch").train()
    net(torch.randn(2, 1, 256, 160))[GLAMKeys.PROB_LOCAL].sum().backward()
    without = [name for name, p in net.local_network.named_parameters() if p.grad is None or not p.grad.any()]
    assert without == []


def test_patch_jitter_moves_training_patches_only():
    x = torch.randn(4, 1, 256, 160)
    plain, jittered = _model(num_patches=2).eval(), _model(num_patches=2, patch_jitter=0.25).eval()
    with torch.no_grad():
        # Eval mode: the selected patches.
        assert torch.equal(jittered(x)[GLAMKeys.PATCH_BOXES], plain(x)[GLAMKeys.PATCH_BOXES])
        # Training mode (batch statistics in both networks, so the same selection): the selection moved.
        selected = plain.train()(x)[GLAMKeys.PATCH_BOXES]
        torch.manual_seed(1)
        moved = jittered.train()(x)[GLAMKeys.PATCH_BOXES]
    shift = moved - selected
    assert shift.abs().amax() <= 16 and shift.abs().amax() > 0  # up to 0.25 x the 64-px patch
    assert torch.equal(moved[..., 2:] - moved[..., :2], selected[..., 2:] - selected[..., :2])  # same sizes
    assert moved[..., :2].amin() >= 0 and moved[..., 2].amax() <= 256 and moved[..., 3].amax() <= 160


def test_jitter_boxes_clamp_to_the_image():
    net = _model(patch_jitter=0.5)
    corner = torch.tensor([[[0, 96, 64, 160]]]).expand(64, 1, 4)  # a patch in the top-right corner
    torch.manual_seed(0)
    moved = net.jitter_boxes(corner, [256, 160])
    assert moved[..., 0].amin() == 0 and moved[..., 1].amax() == 96 and moved[..., 1].amin() >= 64
    assert moved[..., 0].amax() <= 32 and (moved[..., 0] > 0).any()


def test_prob_global_is_mean_of_per_scale_pools():
    net = _model().eval()
    with torch.no_grad():
        out = net(torch.randn(1, 1, 256, 160))
    k = round(16 * 10 * 0.03)
    scales = ("saliency_a1", "saliency_a2", "saliency_a3")
    pooled = [out[key].flatten(2).topk(k, dim=-1).values.mean(-1) for key in scales]
    assert torch.allclose(out[GLAMKeys.PROB_GLOBAL], sum(pooled) / 3)
    weighted = 0.2 * out["saliency_a1"] + 0.6 * out["saliency_a2"] + 0.2 * out["saliency_a3"]
    assert torch.allclose(out[GLAMKeys.SALIENCY_GLOBAL], weighted)


def test_seeded_determinism():
    x = torch.randn(1, 1, 256, 160)
    first, second = _model(seed=3).eval()(x), _model(seed=3).eval()(x)
    for key in first:
        assert torch.equal(first[key], second[key]), key


def test_batch_of_two_equals_two_batches_of_one():
    net = _model(num_patches=2).eval()
    x = torch.randn(2, 1, 256, 160)
    with torch.no_grad():
        both = net(x)
        singles = [net(x[i : i + 1]) for i in range(2)]
    for key in both:
        stacked = torch.cat([s[key] for s in singles])
        if key == GLAMKeys.PATCH_BOXES:
            assert torch.equal(both[key], stacked)
        else:
            assert torch.allclose(both[key], stacked, atol=1e-6), key


def test_channels_last_and_float64_match():
    net = _model().eval()
    x = torch.randn(1, 1, 256, 160)
    with torch.no_grad():
        reference = net(x)
        fast = net.to(memory_format=torch.channels_last)(x.contiguous(memory_format=torch.channels_last))
        double = _model().double().eval()(x.double())
    assert double[GLAMKeys.SALIENCY].dtype == torch.float64
    for key in reference:
        assert torch.allclose(fast[key].double(), reference[key].double(), atol=1e-5), key
        assert torch.allclose(double[key].double(), reference[key].double(), atol=1e-5), key


def test_bfloat16_autocast_runs_close_to_float32():
    net = _model().eval()
    x = torch.randn(1, 1, 256, 160)
    with torch.no_grad():
        reference = net(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            low = net(x)
    assert torch.allclose(low[GLAMKeys.PROB_GLOBAL].float(), reference[GLAMKeys.PROB_GLOBAL], atol=0.05)


@pytest.mark.filterwarnings("ignore::torch.jit.TracerWarning")
@pytest.mark.parametrize(
    ("mode", "local_pooling"), [("script", "all_patches"), ("trace", "all_patches"), ("script", "max_patch")]
)
def test_export_round_trip(mode, local_pooling):
    net = _model(num_patches=2, local_pooling=local_pooling, patch_jitter=0.1).eval()
    x = torch.randn(2, 1, 256, 160)
    with torch.no_grad():
        if mode == "script":
            exported = torch.jit.script(net)
        else:
            exported = torch.jit.trace(net, x, strict=False, check_trace=False)
    buffer = io.BytesIO()
    torch.jit.save(exported, buffer)
    buffer.seek(0)
    loaded = torch.jit.load(buffer)
    with torch.no_grad():
        eager, restored = net(x), loaded(x)
    assert set(eager) == set(restored)
    for key in eager:
        assert torch.allclose(eager[key].double(), restored[key].double(), atol=1e-6), key


def test_forward_stores_nothing_on_modules():
    net = _model().eval()
    before = {name: set(vars(module)) for name, module in net.named_modules()}
    with torch.no_grad():
        net(torch.randn(1, 1, 256, 160))
    assert {name: set(vars(module)) for name, module in net.named_modules()} == before


def test_local_network_folds_single_channel_input():
    torch.manual_seed(0)
    local = LocalNetwork(channels=(8, 8, 16, 16), blocks=(1, 1, 1, 1)).eval()
    patch = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(local(patch), local(patch.repeat(1, 3, 1, 1)), atol=1e-6)
    with pytest.raises(ValueError, match="input channels"):
        local(torch.randn(1, 2, 32, 32))


def test_global_network_standalone_outputs():
    net = GlobalNetwork(channels=(8, 8, 16, 16, 32), blocks=(1, 1, 1, 1, 1)).eval()
    with torch.no_grad():
        out = net(torch.randn(1, 1, 256, 160))
    assert set(out) == {"saliency_a1", "saliency_a2", "saliency_a3", "saliency_global", "prob_global"}


def test_gradient_checkpointing_matches_plain_training_step():
    x = torch.randn(2, 1, 256, 160)
    results = []
    for checkpointing in (False, True):
        net = _model(num_patches=2, gradient_checkpointing=checkpointing).train()
        out = net(x)
        (out[GLAMKeys.PROB_LOCAL].sum() + out[GLAMKeys.SALIENCY].mean()).backward()
        grads = {name: p.grad.clone() for name, p in net.named_parameters()}
        results.append((grads, {k: v.clone() for k, v in net.state_dict().items()}))
    (plain_grads, plain_state), (ckpt_grads, ckpt_state) = results
    for name, grad in plain_grads.items():
        assert torch.allclose(grad, ckpt_grads[name], atol=1e-6), name
    # Running statistics (and the batch counters) are updated exactly once per step, as without checkpointing.
    for key, value in plain_state.items():
        assert torch.allclose(value.double(), ckpt_state[key].double(), atol=1e-7), key


@pytest.mark.parametrize(("key", "shape"), [("saliency", (2, 2, 256, 160)), ("prob_global", (2, 2))])
def test_single_output_variant_shares_weights_and_scripts(key, shape):
    from monai_glam.networks import GLAMSingleOutput

    net = _model().eval()
    torch.manual_seed(1)
    single = GLAMSingleOutput(output_key=key, **small()).eval()
    single.load_state_dict(net.state_dict())  # identical state-dict layout
    x = torch.randn(2, 1, 256, 160)
    with torch.no_grad():
        out = single(x)
        assert out.shape == shape
        assert torch.equal(out, net(x)[key])
        assert torch.equal(torch.jit.script(single)(x), out)
    with pytest.raises(ValueError, match="output_key"):
        GLAMSingleOutput(output_key="logits")


@pytest.mark.parametrize("mode", ["replicate", "reflect"])
def test_local_padding_mode_changes_only_the_border(mode):
    """The local module's ``replicate``/``reflect`` padding keeps the parameters; a constant patch gives constant maps
    (no frame), and away from the border the maps equal zero padding's."""
    torch.manual_seed(0)
    zeros = GLAM(**small()).eval()
    other = GLAM(**small(local_padding_mode=mode)).eval()
    other.load_state_dict(zeros.state_dict())  # the same parameters
    assert zeros.local_network.stem.padding_mode == "zeros"  # the published default
    flat = torch.full((2, 1, 128, 128), -1.0)
    with torch.no_grad():
        maps_zeros, maps_other = zeros.local_network(flat), other.local_network(flat)
        varied = torch.randn(2, 1, 128, 128)
        inner_zeros, inner_other = zeros.local_network(varied), other.local_network(varied)
    assert torch.allclose(maps_other, maps_other[..., :1, :1].expand_as(maps_other), atol=1e-5)
    assert not torch.allclose(maps_zeros, maps_zeros[..., :1, :1].expand_as(maps_zeros), atol=1e-4)
    # Eight 3x3 layers at stride 4 (and the stem) reach 9 map cells into the 32x32 maps: the centre agrees.
    torch.testing.assert_close(inner_zeros[..., 10:-10, 10:-10], inner_other[..., 10:-10, 10:-10])
    net = GLAM(**small(local_padding_mode=mode)).train()
    net(torch.randn(2, 1, 256, 160))[GLAMKeys.PROB_LOCAL].sum().backward()
    assert all(p.grad is not None for p in net.local_network.parameters())


def test_global_padding_mode_changes_only_the_border():
    """``replicate`` padding keeps the weights and the published ``zeros`` default; only the border differs."""
    torch.manual_seed(0)
    zeros = GLAM(**small()).eval()
    replicate = GLAM(**small(global_padding_mode="replicate")).eval()
    assert GLAM(**small()).global_network.backbone.stem.padding_mode == "zeros"  # the published default
    replicate.load_state_dict(zeros.state_dict())  # the same parameters
    # A constant image: replicate padding sees no edge, so the first stage's features are constant too.
    flat = torch.full((1, 1, 256, 160), -1.0)
    stem_zeros = zeros.global_network.backbone.stem(flat)
    stem_replicate = replicate.global_network.backbone.stem(flat)
    assert torch.allclose(stem_replicate, stem_replicate[..., :1, :1].expand_as(stem_replicate), atol=1e-5)
    assert not torch.allclose(stem_zeros, stem_zeros[..., :1, :1].expand_as(stem_zeros), atol=1e-3)
    # Away from the border the two agree.
    torch.testing.assert_close(stem_zeros[..., 8:-8, 8:-8], stem_replicate[..., 8:-8, 8:-8])
    out = replicate(torch.randn(1, 1, 256, 160))
    assert out[GLAMKeys.SALIENCY].shape == (1, 2, 256, 160)
