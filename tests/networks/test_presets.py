"""Named GLAM presets: networks and input windows."""

from __future__ import annotations

import pytest
import torch

from monai_glam.networks import (
    GLAM,
    GLAM_PRESETS,
    GLAMSingleOutput,
    glam_network,
    glam_preset,
    preset_flip_consistency,
    preset_loss_weights,
    preset_window,
)


@pytest.mark.parametrize("name", sorted(GLAM_PRESETS))
def test_preset_window_is_a_pair_of_ints(name: str) -> None:
    window = preset_window(name)
    assert window == tuple(glam_preset(name)["window"]) and all(type(size) is int for size in window)


def test_glam_network_builds_the_preset_with_overrides() -> None:
    net = glam_network("tiny", patch_size=32)
    assert type(net) is GLAM and tuple(net.patch_size) == (32, 32)
    assert net.state_dict().keys() == GLAM(**glam_preset("tiny")["glam"]).state_dict().keys()
    single = glam_network("tiny", output_key="prob_global").eval()
    assert isinstance(single, GLAMSingleOutput)
    single.load_state_dict(glam_network("tiny").state_dict())  # the same state dict
    with torch.no_grad():
        assert single(torch.randn(1, 1, *preset_window("tiny"))).shape == (1, 2)
    with pytest.raises(ValueError, match="unknown GLAM preset 'huge'"):
        preset_window("huge")
    with pytest.raises(ValueError, match="output_key must be one of"):
        glam_network("tiny", output_key="nope")


@pytest.mark.parametrize(
    ("name", "weight", "patches", "jitter"),
    [
        ("paper", 0.0, (1, "summed"), 0.0),
        ("small", 1.0, (2, "per_class"), 0.25),
        ("tiny", 1.0, (2, "per_class"), 0.25),
    ],
)
def test_presets_trained_from_scratch_differ_from_the_paper_where_measured(name, weight, patches, jitter) -> None:
    assert preset_flip_consistency(name) == weight
    assert preset_loss_weights(name) == {
        "flip_consistency_weight": weight,
        "erasure_weight": weight,
        "local_erasure_weight": weight,
    }
    glam = glam_preset(name)["glam"]
    assert (glam.get("num_patches", 1), glam.get("patch_selection", "summed")) == patches
    assert glam.get("patch_jitter", 0.0) == jitter
    assert glam.get("local_padding_mode", "zeros") == ("zeros" if name == "paper" else "replicate")
    if name == "tiny":
        net = glam_network(name)
        assert (net.region_proposal.num_patches, net.region_proposal.selection) == patches
        assert net.patch_jitter == jitter
    with pytest.raises(ValueError, match="unknown GLAM preset"):
        preset_flip_consistency("huge")
    with pytest.raises(ValueError, match="unknown GLAM preset"):
        preset_loss_weights("huge")
