from __future__ import annotations

import math

import pytest
import torch

from monai_glam.engines import GLAMStageNetwork, TrainingStage, create_glam_training, create_loader, loss_for_stage
from monai_glam.networks import GLAM
from tests.engines.synthetic_task import TINY_GLAM, make_dataset


def _snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize(
    ("stage", "changed", "frozen"),
    [
        ("global", ["global_network"], ["local_network"]),
        ("local", ["local_network"], ["global_network"]),
        ("joint", ["global_network", "local_network"], []),
    ],
)
def test_stage_changes_exactly_its_modules(tmp_path, stage, changed, frozen):
    torch.manual_seed(0)
    glam = GLAM(**TINY_GLAM)
    before = {name: _snapshot(getattr(glam, name)) for name in ("global_network", "local_network")}
    loader = create_loader(make_dataset(8), batch_size=4)
    run = create_glam_training(glam, loader, tmp_path, stage=stage, max_epochs=1, learning_rate=1e-2, tensorboard=False)
    run.run()
    for name in changed:
        after = getattr(glam, name).state_dict()
        moved = [k for k, v in before[name].items() if not torch.equal(v, after[k])]
        params = [k for k, _ in getattr(glam, name).named_parameters()]
        assert set(params) <= set(moved), f"{stage}: parameters of {name} that did not change"
    for name in frozen:
        after = getattr(glam, name).state_dict()
        assert all(torch.equal(v, after[k]) for k, v in before[name].items()), f"{stage}: {name} moved"


def test_frozen_module_stays_in_eval_mode_and_without_gradients():
    glam = GLAM(**TINY_GLAM)
    net = GLAMStageNetwork(glam, "local").train()
    assert not glam.global_network.training and glam.local_network.training
    assert not any(p.requires_grad for p in glam.global_network.parameters())
    assert {id(p) for p in net.trainable_parameters()} == {id(p) for p in glam.local_network.parameters()}


def test_global_stage_outputs_global_maps_and_eval_saliency():
    glam = GLAM(**TINY_GLAM)
    net = GLAMStageNetwork(glam, TrainingStage.GLOBAL)
    x = torch.randn(2, 1, 128, 96)
    assert "prob_local" not in net.train()(x)
    with torch.no_grad():
        out = net.eval()(x)
    assert out["saliency"].shape == (2, 2, 128, 96)
    assert torch.equal(out["saliency"][..., ::16, ::16], out["saliency_global"])


def test_rejects_unknown_stage():
    with pytest.raises(ValueError, match="stage must be one of"):
        GLAMStageNetwork(GLAM(**TINY_GLAM), "warmup")


@pytest.mark.parametrize(
    ("stage", "terms"),
    [
        ("global", {"bce_global", "sparsity_global"}),
        ("local", {"bce_local", "sparsity_local"}),
        ("joint", {"bce_global", "sparsity_global", "bce_local", "sparsity_local"}),
    ],
)
def test_loss_for_stage(stage, terms):
    loss = loss_for_stage(stage, global_sparsity_weight=0.5)
    active = {name for name, weight in loss.weights.items() if weight > 0}
    assert active == terms
    flip = loss_for_stage(stage, flip_consistency_weight=1.0, local_flip_consistency_weight=1.0)
    assert flip.uses_flipped_global_map == (stage != "local")  # the local stage does not train the global module
    assert flip.uses_flipped_patch_maps == (stage != "global")
    erasure = loss_for_stage(stage, erasure_weight=1.0, local_erasure_weight=1.0)
    assert erasure.uses_erased_global_score == (stage != "local")
    assert erasure.uses_erased_local_score == (stage != "global")
    if stage != "local":
        assert loss.weights["sparsity_global"] == 0.5


@pytest.mark.parametrize("stage", ["global", "joint"])
def test_flip_consistency_adds_the_flipped_global_map_in_training_only(stage):
    torch.manual_seed(0)
    glam = GLAM(**TINY_GLAM)
    net = GLAMStageNetwork(glam, stage, flip_consistency=True).train()
    x = torch.randn(2, 1, 128, 96)
    with torch.no_grad():
        out = net(x)
        expected = glam.global_network(x.flip(-2, -1))["saliency_global"].flip(-2, -1)
        assert "saliency_global_flipped" not in net.eval()(x)
    assert out["saliency_global_flipped"].shape == out["saliency_global"].shape == (2, 2, 8, 6)
    torch.testing.assert_close(out["saliency_global_flipped"], expected)
    assert not torch.allclose(out["saliency_global_flipped"], out["saliency_global"])  # a random net is not symmetric
    with pytest.raises(ValueError, match="keeps frozen"):
        GLAMStageNetwork(glam, "local", flip_consistency=True)


def test_training_with_a_flip_consistency_loss_runs_the_flipped_pass(tmp_path):
    torch.manual_seed(0)
    glam = GLAM(**TINY_GLAM)
    loader = create_loader(make_dataset(4), batch_size=4)
    loss = loss_for_stage("global", flip_consistency_weight=1.0)
    run = create_glam_training(glam, loader, tmp_path, stage="global", max_epochs=1, loss=loss, tensorboard=False)
    assert run.trainer.network.flip_consistency
    run.run()
    output = run.trainer.state.output
    assert "saliency_global_flipped" in output["pred"]
    assert math.isfinite(output["loss"].item())


@pytest.mark.parametrize("stage", ["local", "joint"])
def test_local_flip_consistency_adds_the_flipped_patch_maps_in_training_only(stage):
    from monai_glam.networks.blocks.patch_ops import crop_patches

    torch.manual_seed(0)
    glam = GLAM(**TINY_GLAM)
    net = GLAMStageNetwork(glam, stage, local_flip_consistency=True).train()
    x = torch.randn(2, 1, 128, 96)
    with torch.no_grad():
        out = net(x)
        patches = crop_patches(x, out["patch_boxes"], list(glam.patch_size)).flatten(0, 1)
        if stage == "local":  # the local module's batch-norm statistics are those of this batch of patches again
            expected = glam.local_network(patches.flip(-2, -1)).flip(-2, -1)
            torch.testing.assert_close(out["patch_saliency_flipped"].flatten(0, 1), expected)
        assert "patch_saliency_flipped" not in net.eval()(x)
    assert out["patch_saliency_flipped"].shape == out["patch_saliency"].shape
    assert "saliency_global_flipped" not in out
    with pytest.raises(ValueError, match="keeps frozen"):
        GLAMStageNetwork(glam, "global", local_flip_consistency=True)


@pytest.mark.parametrize("stage", ["global", "joint"])
def test_erasure_adds_the_erased_global_score_in_training_only(stage):
    from monai_glam.networks.blocks import erase_salient

    torch.manual_seed(0)
    glam = GLAM(**TINY_GLAM)
    net = GLAMStageNetwork(glam, stage, erasure=True).train()
    x = torch.randn(2, 1, 128, 96)
    buffers = {k: v.clone() for k, v in glam.global_network.named_buffers()}
    out = net(x)
    assert out["prob_global_erased"].shape == out["prob_global"].shape == (2, 2)
    assert "prob_global_erased" not in net.eval()(x)
    net.train()
    # the erased pass is the global module on the erased copies ...
    erased = erase_salient(x, out["saliency_global"].detach(), net.erasure_cell_size)  # (2, 2 copies, 1, H, W)
    after_first_pass = {k: v.clone() for k, v in glam.global_network.named_buffers()}
    with torch.no_grad():
        scores = glam.global_network.eval()(erased.flatten(0, 1))["prob_global"].reshape(2, 2, 2)
    # class c's score of the copy erased by class c's map
    expected = torch.stack([scores[:, 0, 0], scores[:, 1, 1]], dim=1)
    torch.testing.assert_close(out["prob_global_erased"].detach(), expected)
    # ... in eval mode (running statistics): it leaves them as the ordinary pass left them, one update
    for name, value in after_first_pass.items():
        if name.endswith("num_batches_tracked"):
            assert value.item() == buffers[name].item() + 1
    assert net.glam.global_network.training is False and net.train().glam.global_network.training
    # its gradient reaches the parameters only through the map that did the erasing
    gradient = torch.autograd.grad(out["prob_global_erased"].sum(), out["saliency_global"], retain_graph=True)[0]
    assert gradient.abs().sum() > 0
    with pytest.raises(ValueError, match="keeps frozen"):
        GLAMStageNetwork(glam, "local", erasure=True)


def test_erased_pass_gives_no_parameter_gradient_of_its_own():
    torch.manual_seed(0)
    glam = GLAM(**TINY_GLAM)
    net = GLAMStageNetwork(glam, "global", erasure=True).train()
    out = net(torch.randn(2, 1, 128, 96))
    head = [p for p in glam.global_network.parameters() if p.requires_grad]
    # with the map held fixed, the erased score depends on no parameter
    from monai_glam.engines.stages import _detached_call
    from monai_glam.networks.blocks import erase_salient

    erased = erase_salient(torch.randn(2, 1, 128, 96), out["saliency_global"].detach(), net.erasure_cell_size)
    prob = _detached_call(glam.global_network, erased.flatten(0, 1))["prob_global"]
    assert not prob.requires_grad
    assert all(p.grad is None for p in head)


@pytest.mark.parametrize("stage", ["local", "joint"])
def test_local_erasure_adds_the_erased_local_score_in_training_only(stage):
    torch.manual_seed(0)
    glam = GLAM(**TINY_GLAM)
    net = GLAMStageNetwork(glam, stage, local_erasure=True).train()
    x = torch.randn(2, 1, 128, 96)
    out = net(x)
    assert out["prob_local_erased"].shape == out["prob_local"].shape == (2, 2)
    assert not torch.allclose(out["prob_local_erased"], out["prob_local"])
    gradient = torch.autograd.grad(out["prob_local_erased"][:, 0].sum(), out["patch_saliency"])[0]
    assert gradient[:, :, 0].abs().sum() > 0
    assert gradient[:, :, 1].abs().sum() == 0  # the benign term moves the benign maps only
    assert "prob_local_erased" not in net.eval()(x)
    with pytest.raises(ValueError, match="keeps frozen"):
        GLAMStageNetwork(glam, "global", local_erasure=True)


def test_training_with_erasure_losses_runs_the_erased_passes(tmp_path):
    torch.manual_seed(0)
    glam = GLAM(**TINY_GLAM)
    loader = create_loader(make_dataset(4), batch_size=4)
    loss = loss_for_stage("joint", erasure_weight=1.0, local_erasure_weight=1.0)
    run = create_glam_training(glam, loader, tmp_path, stage="joint", max_epochs=1, loss=loss, tensorboard=False)
    assert run.trainer.network.erasure and run.trainer.network.local_erasure
    run.run()
    output = run.trainer.state.output
    assert {"prob_global_erased", "prob_local_erased"} <= set(output["pred"])
    assert math.isfinite(output["loss"].item())
