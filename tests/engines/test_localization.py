from __future__ import annotations

import numpy as np
import pytest
import torch

from monai_glam.data import read_datalist, read_image_array, write_synthetic_dataset
from monai_glam.engines.localization import GLAM_MAP_METHODS, collect_localization, glam_localization_predictor
from monai_glam.networks import GLAM
from tests.engines.synthetic_task import TINY_GLAM

WINDOW = (128, 96)


@pytest.fixture(scope="module")
def items(tmp_path_factory):
    folder = tmp_path_factory.mktemp("localization")
    datalist = write_synthetic_dataset(
        folder, num=8, size=(160, 112), seed=3, write_dicom=False, fractions=(0.0, 0.0, 1.0), progress=False
    )
    return read_datalist(datalist, "test")


def test_glam_maps_on_the_original_images(items):
    torch.manual_seed(0)
    model = GLAM(**TINY_GLAM).eval()
    splits = collect_localization(items, glam_localization_predictor(model), WINDOW, map_dtype=np.float32)
    assert tuple(splits) == GLAM_MAP_METHODS
    fused, global_only, local_only = (splits[m] for m in GLAM_MAP_METHODS)
    assert len(fused) == len(items) and fused.image_ids == global_only.image_ids
    raw_shape = read_image_array(items[0]["image"])[0].shape[-2:]
    assert fused.maps[0].shape == (2, *raw_shape)  # the raw image's geometry, not the window's
    for f, g, loc in zip(fused.maps, global_only.maps, local_only.maps, strict=True):
        # every inverse step is linear, so the published fusion rule holds on the original image too
        np.testing.assert_allclose(f, (g + loc) / 2, atol=1e-5)
        assert (loc == 0).mean() > 0.5  # the local map is zero outside its one patch
    # the fused and the global map are scored by ŷ_g, the local maps by ŷ_l
    np.testing.assert_array_equal(np.stack(fused.scores), np.stack(global_only.scores))
    assert not np.allclose(np.stack(fused.scores), np.stack(local_only.scores))
    labels = np.stack(fused.labels)
    np.testing.assert_array_equal(labels, [item["label"] for item in items])


def test_items_need_labels(items):
    model = GLAM(**TINY_GLAM).eval()
    unlabelled = [{k: v for k, v in items[0].items() if k != "label"}]
    with pytest.raises(ValueError, match="no label"):
        collect_localization(unlabelled, glam_localization_predictor(model), WINDOW)
