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
from monai_glam.transforms.pipeline import glam_transforms, scaled_crop_parameters
from monai_glam.transforms.targets import DEFAULT_MASK_KEYS, GLAMTargetsd

__all__ = [
    "DEFAULT_MASK_KEYS",
    "BestCenterWindow",
    "BestCenterWindowd",
    "BreastCrop",
    "BreastCropd",
    "GLAMTargetsd",
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
    "glam_transforms",
    "nyu_preprocess",
    "nyu_preprocessing_transforms",
    "raw_facing_right",
    "scaled_crop_parameters",
    "window_box",
]
