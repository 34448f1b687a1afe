from __future__ import annotations

import pytest
import torch

from monai_glam.inferers import GLAMInferer, GLAMSlidingWindowInferer
from monai_glam.networks import GLAM
from monai_glam.utils.precision import autocast, bf16_supported, check_precision, resolve_precision, to_float32
from tests.engines.synthetic_task import TINY_GLAM


@pytest.mark.parametrize(
    "precision, expected", [("fp32", "fp32"), ("bf16", "bf16"), ("auto", "bf16" if bf16_supported("cpu") else "fp32")]
)
def test_resolve(precision: str, expected: str) -> None:
    assert resolve_precision(precision, "cpu") == expected


@pytest.mark.parametrize("bad", ["fp16", "float32", ""])
def test_unknown_precisions_are_named(bad: str) -> None:
    with pytest.raises(ValueError, match=f"precision must be one of fp32, bf16, auto, got {bad!r}"):
        check_precision(bad)
    with pytest.raises(ValueError, match="precision must be one of"):
        GLAMInferer(precision=bad)


def test_autocast_and_float32_outputs() -> None:
    a, b = torch.randn(8, 8), torch.randn(8, 8)
    with autocast("bf16", "cpu"):
        assert (a @ b).dtype == torch.bfloat16
    with autocast("fp32", "cpu"):
        assert (a @ b).dtype == torch.float32
    mixed = {"x": torch.ones(2, dtype=torch.bfloat16), "y": (torch.zeros(1, dtype=torch.int64), [torch.ones(1)])}
    converted = to_float32(mixed)
    assert converted["x"].dtype == torch.float32 and converted["y"][0].dtype == torch.int64
    assert converted["y"][1][0].dtype == torch.float32


@pytest.fixture(scope="module")
def glam() -> GLAM:
    torch.manual_seed(0)
    return GLAM(**TINY_GLAM).eval()


@pytest.mark.parametrize("sliding", [False, True])
def test_bf16_inference_stays_close_to_fp32(glam: GLAM, sliding: bool) -> None:
    torch.manual_seed(1)
    image = torch.randn(1, 1, 256, 160)

    def run(precision: str) -> dict[str, torch.Tensor]:
        if sliding:
            inferer = GLAMSlidingWindowInferer(roi_size=(128, 96), overlap=(0.25, 0.5), precision=precision)
        else:
            inferer = GLAMInferer(precision=precision)
        with torch.inference_mode():
            return inferer(image, glam)

    reference, reduced = run("fp32"), run("bf16")
    assert reference.keys() == reduced.keys()
    for key, value in reduced.items():
        assert value.dtype == reference[key].dtype, key  # floating outputs come back as float32
    # The global module's outputs do not depend on which patches are picked (a random network's near-flat
    # saliency can pick other patches in bfloat16, which changes every patch-level output).
    for key in ("prob_global", "saliency_global", "saliency_a1", "saliency_a2", "saliency_a3"):
        if key in reduced:
            assert (reduced[key] - reference[key]).abs().max() < 0.02, key
