"""Inference with GLAM: whole-image and sliding-window inferers, and saliency-map post-processing."""

from __future__ import annotations

from monai_glam.inferers.postprocessing import (
    ThresholdSaliency,
    ThresholdSaliencyd,
    ThresholdSelection,
    select_dice_thresholds,
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
    "ThresholdSelection",
    "masked_top_t_pooling",
    "select_dice_thresholds",
    "threshold_saliency",
    "window_starts",
]
