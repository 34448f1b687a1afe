from __future__ import annotations

import pytest
import torch
from monai.data import MetaTensor

from monai_glam.transforms import GLAMTargetsd, glam_transforms, scaled_crop_parameters


def _item(**overrides):
    item = {"image": MetaTensor(torch.rand(1, 8, 6), meta={"filename_or_obj": "a.png"}), "label": [1, 0]}
    item.update(overrides)
    return item


def test_targets_stack_masks_and_flag_availability():
    benign = MetaTensor(torch.zeros(1, 8, 6))
    benign[0, 2:4, 1:3] = 1
    filled = MetaTensor(torch.zeros(1, 8, 6), meta={"mask_missing": True})
    out = GLAMTargetsd()(_item(mask_benign=benign, mask_malignant=filled))
    assert torch.equal(out["label"], torch.tensor([1.0, 0.0]))
    assert out["mask"].shape == (2, 8, 6) and out["mask"][0].sum() == 4 and out["mask"][1].sum() == 0
    assert torch.equal(out["mask_available"], torch.tensor([1.0, 0.0]))


def test_targets_without_any_mask():
    out = GLAMTargetsd()(_item())
    assert torch.equal(out["mask"], torch.zeros(2, 8, 6))
    assert torch.equal(out["mask_available"], torch.zeros(2))


@pytest.mark.parametrize(
    ("overrides", "error", "match"),
    [
        ({"label": None}, KeyError, r"a\.png.*image-level labels are required"),
        ({"label": [1, 0, 1]}, ValueError, "3 entries, expected 2"),
        ({"mask_benign": torch.zeros(1, 4, 6)}, ValueError, r"mask_benign \(a\.png\) is \(4, 6\)"),
    ],
)
def test_targets_reject_bad_items(overrides, error, match):
    with pytest.raises(error, match=match):
        GLAMTargetsd()(_item(**overrides))


@pytest.mark.parametrize(("size", "expected"), [((2944, 1920), (100, 50)), ((256, 160), (9, 4)), ((20, 10), (1, 1))])
def test_scaled_crop_parameters(size, expected):
    assert scaled_crop_parameters(size) == expected


def test_pipeline_on_synthetic_item(tmp_path):
    from monai_glam.data import read_datalist, write_synthetic_dataset

    datalist = write_synthetic_dataset(tmp_path, num=4, size=(256, 160), seed=3, write_dicom=False, progress=False)
    item = read_datalist(datalist, "training")[0]
    out = glam_transforms((256, 160))(item)
    assert out["image"].shape == (1, 256, 160)
    assert abs(float(out["image"].mean())) < 1e-4  # standardised
    assert out["mask"].shape == (2, 256, 160)
    assert torch.equal(out["label"], torch.tensor(item["label"], dtype=torch.float32))
    assert torch.equal(out["mask_available"], torch.ones(2))
    for c in range(2):  # a labelled class has a non-empty mask after cropping and windowing
        assert bool(out["mask"][c].any()) == bool(item["label"][c])
