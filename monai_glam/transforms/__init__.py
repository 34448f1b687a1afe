"""MONAI transforms for mammograms: loading and the published NYU/GLAM preprocessing.

The published weights were trained on raw mammograms cropped to the breast, mirrored so the breast points right,
cut to a fixed window anchored at the breast's right-most point, and standardized. Every step is an array
transform with a dictionary version (``Foo`` / ``Food``, with MONAI's ``FooD`` and ``FooDict`` aliases).
"""

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
    BestCenterWindowD,
    BestCenterWindowd,
    BestCenterWindowDict,
    BreastCropD,
    BreastCropd,
    BreastCropDict,
    LoadMammogramD,
    LoadMammogramd,
    LoadMammogramDict,
    OrientToRightD,
    OrientToRightd,
    OrientToRightDict,
    RandBestCenterWindowD,
    RandBestCenterWindowd,
    RandBestCenterWindowDict,
    StandardizeIntensityD,
    StandardizeIntensityd,
    StandardizeIntensityDict,
)
from monai_glam.transforms.geometry import (
    BreastCropGeometry,
    best_center,
    breast_crop_box,
    breast_crop_geometry,
    breast_region_box,
    erode_diamond,
    extreme_points,
    raw_facing_right,
    window_box,
)
from monai_glam.transforms.nyu import nyu_preprocess, nyu_preprocessing_transforms
from monai_glam.transforms.pipeline import glam_transforms, scaled_crop_parameters, scaled_window_noise
from monai_glam.transforms.targets import DEFAULT_MASK_KEYS, GLAMTargetsD, GLAMTargetsd, GLAMTargetsDict

__all__ = [
    "DEFAULT_MASK_KEYS",
    "BestCenterWindow",
    "BestCenterWindowD",
    "BestCenterWindowDict",
    "BestCenterWindowd",
    "BreastCrop",
    "BreastCropD",
    "BreastCropDict",
    "BreastCropGeometry",
    "BreastCropd",
    "GLAMTargetsD",
    "GLAMTargetsDict",
    "GLAMTargetsd",
    "LoadMammogram",
    "LoadMammogramD",
    "LoadMammogramDict",
    "LoadMammogramd",
    "OrientToRight",
    "OrientToRightD",
    "OrientToRightDict",
    "OrientToRightd",
    "RandBestCenterWindow",
    "RandBestCenterWindowD",
    "RandBestCenterWindowDict",
    "RandBestCenterWindowd",
    "StandardizeIntensity",
    "StandardizeIntensityD",
    "StandardizeIntensityDict",
    "StandardizeIntensityd",
    "best_center",
    "breast_crop_box",
    "breast_crop_geometry",
    "breast_region_box",
    "erode_diamond",
    "extreme_points",
    "glam_transforms",
    "nyu_preprocess",
    "nyu_preprocessing_transforms",
    "raw_facing_right",
    "scaled_crop_parameters",
    "scaled_window_noise",
    "window_box",
]
