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
