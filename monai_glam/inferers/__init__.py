"""Inference with GLAM: whole-image and sliding-window inferers, and saliency-map thresholding."""

from __future__ import annotations

from monai_glam.inferers.postprocessing import (
    ThresholdSaliency,
    ThresholdSaliencyd,
    threshold_saliency,
)
from monai_glam.inferers.sliding_window import GLAMSlidingWindowInferer, masked_top_t_pooling, window_starts
from monai_glam.inferers.spatial_outputs import SPATIAL_OUTPUT_KEYS, GLAMSpatialOutputs
from monai_glam.inferers.whole_image import GLAMInferer

__all__ = [
    "SPATIAL_OUTPUT_KEYS",
    "GLAMInferer",
    "GLAMSlidingWindowInferer",
    "GLAMSpatialOutputs",
    "ThresholdSaliency",
    "ThresholdSaliencyd",
    "masked_top_t_pooling",
    "threshold_saliency",
    "window_starts",
]
