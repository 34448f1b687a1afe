from __future__ import annotations

import pytest
import torch

from monai_glam.inferers import GLAMInferer
from monai_glam.networks import GLAM
from monai_glam.utils import GLAMKeys
from tests.networks.small_configs import small


@pytest.fixture(scope="module")
def net() -> GLAM:
    torch.manual_seed(0)
    return GLAM(**small()).eval()


@pytest.fixture(scope="module")
def image_and_reference(net) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    x = torch.randn(2, 1, 256, 160)
    with torch.no_grad():
        return x, net(x)


@pytest.mark.parametrize(
    ("output_keys", "expected_keys"),
    [
        (None, {key.value for key in GLAMKeys}),
        (("prob_global", "saliency"), {"prob_global", "saliency"}),
        ((GLAMKeys.PATCH_BOXES,), {"patch_boxes"}),
    ],
)
def test_returns_the_network_outputs(net, image_and_reference, output_keys, expected_keys):
    x, reference = image_and_reference
    with torch.no_grad():
        out = GLAMInferer(output_keys)(x, net)
    assert set(out) == expected_keys
    for key in out:
        assert torch.equal(out[key], reference[key])


@pytest.mark.parametrize(
    ("output_keys", "message"),
    [((), "non-empty"), (("prob",), "non-empty selection"), (("saliency", "boxes"), "non-empty selection")],
)
def test_bad_output_keys(output_keys, message):
    with pytest.raises(ValueError, match=message):
        GLAMInferer(output_keys)


@pytest.mark.parametrize(
    ("inputs", "network", "message"),
    [
        (torch.zeros(1, 256, 160), lambda x: {}, r"\(N, C, H, W\)"),
        (torch.zeros(1, 1, 8, 8), lambda x: x, "returns a dict"),
    ],
)
def test_bad_inputs(inputs, network, message):
    with pytest.raises(ValueError, match=message):
        GLAMInferer()(inputs, network)


def test_missing_key_is_reported():
    with pytest.raises(ValueError, match="has no"):
        GLAMInferer(("saliency",))(torch.zeros(1, 1, 8, 8), lambda x: {"prob_global": x})
