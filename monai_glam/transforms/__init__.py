"""MONAI transforms for mammograms: loading and the published NYU/GLAM preprocessing (spec §5)."""

from __future__ import annotations

from monai_glam.transforms.array import (
    BestCenterWindow,
    BreastCrop,
    LoadMammogram,
    OrientToRight,
    RandBestCenterWindow,
    StandardizeIntensity,
)
from monai_glam.transforms.dictionary import (
    BestCenterWindowd,
    BreastCropd,
    LoadMammogramd,
    OrientToRightd,
    RandBestCenterWindowd,
    StandardizeIntensityd,
)
from monai_glam.transforms.geometry import (
    best_center,
    breast_crop_box,
    breast_region_box,
    erode_diamond,
    raw_facing_right,
    window_box,
)
from monai_glam.transforms.nyu import nyu_preprocess, nyu_preprocessing_transforms

__all__ = [
    "BestCenterWindow",
    "BestCenterWindowd",
    "BreastCrop",
    "BreastCropd",
    "LoadMammogram",
    "LoadMammogramd",
    "OrientToRight",
    "OrientToRightd",
    "RandBestCenterWindow",
    "RandBestCenterWindowd",
    "StandardizeIntensity",
    "StandardizeIntensityd",
    "best_center",
    "breast_crop_box",
    "breast_region_box",
    "erode_diamond",
    "nyu_preprocess",
    "nyu_preprocessing_transforms",
    "raw_facing_right",
    "window_box",
]
