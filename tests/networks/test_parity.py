"""Parity with the published model's forward pass (reference vectors in ../shared; skipped when absent)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_glam.networks import load_nyu_glam
from monai_glam.utils import GLAMKeys


@pytest.fixture(scope="module")
def reference_run(shared_dir):
    reference = np.load(shared_dir / "reference" / "forward_case_public.npz")
    model = load_nyu_glam(shared_dir / "reference" / "nyu_layout_random.ckpt")
    with torch.no_grad():
        out = model(torch.from_numpy(reference["input"].astype(np.float32)))
    return reference, {key: value.numpy() for key, value in out.items()}


@pytest.mark.parametrize(
    ("ours", "theirs", "atol"),
    [
        (GLAMKeys.PROB_GLOBAL, "y_global", 1e-5),
        (GLAMKeys.PROB_LOCAL, "y_local", 1e-5),
        (GLAMKeys.SALIENCY_A1, "x_layer1", 1e-4),
        (GLAMKeys.SALIENCY_A2, "x_layer2", 1e-4),
        (GLAMKeys.SALIENCY_A3, "x_layer3", 1e-4),
        (GLAMKeys.SALIENCY_GLOBAL, "saliency_global", 1e-4),
        (GLAMKeys.PATCH_SALIENCY, "local_cam", 1e-4),
    ],
)
def test_outputs_match_published_model(reference_run, ours, theirs, atol):
    reference, out = reference_run
    np.testing.assert_allclose(out[ours], reference[theirs], rtol=0, atol=atol)


def test_patch_positions_equal(reference_run):
    reference, out = reference_run
    np.testing.assert_array_equal(out[GLAMKeys.PATCH_BOXES][..., :2], reference["patch_locations"])


def test_fused_map_samples_and_sums(reference_run):
    reference, out = reference_run
    rows, cols = reference["fused_sample_idx"].T
    fused = out[GLAMKeys.SALIENCY]
    np.testing.assert_allclose(fused[:, :, rows, cols], reference["fused_sample"], rtol=0, atol=1e-4)
    np.testing.assert_allclose(fused.astype(np.float64).sum(axis=(2, 3)), reference["fused_sum"], rtol=1e-3)
    # The pasted local map is twice the fused map minus the upsampled global map.
    global_up = np.repeat(np.repeat(out[GLAMKeys.SALIENCY_GLOBAL], 16, axis=2), 16, axis=3)
    local_full = 2.0 * fused.astype(np.float64) - global_up
    np.testing.assert_allclose(local_full.sum(axis=(2, 3)), reference["local_full_sum"], rtol=1e-3)
