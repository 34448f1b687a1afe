"""Evaluation metrics for GLAM: ROC-AUC with bootstrap intervals, Dice/IoU, pointing game, lesion FROC, reports."""

from __future__ import annotations

from monai_glam.metrics.evaluation import (
    FRAMES,
    EvaluationCollector,
    ScoredImage,
    downsample_maps,
    froc_peak_settings,
    ground_truth_known,
    localization_truth,
)
from monai_glam.metrics.finite_rocauc import MeanFiniteROCAUCMetric
from monai_glam.metrics.froc import (
    DEFAULT_FP_RATES,
    FROCResult,
    compute_lesion_froc,
    find_saliency_peaks,
    froc_curve,
    lesion_diameters,
)
from monai_glam.metrics.localization import (
    LOCALIZATION_COLUMNS,
    LocalizationSplit,
    compare_localization,
    localization_markdown,
)
from monai_glam.metrics.pointing_game import PointingGameResult, pointing_game
from monai_glam.metrics.report import (
    build_evaluation_report,
    plot_froc_curves,
    plot_roc_curves,
    render_markdown,
    write_evaluation_report,
)
from monai_glam.metrics.roc import (
    AUCResult,
    aggregate_by_group,
    bootstrap_roc_auc,
    compute_roc_auc_ci,
    roc_auc,
    roc_curve,
)
from monai_glam.metrics.saliency_dice import SaliencyDiceMetric, compute_saliency_dice
from monai_glam.metrics.segmentation import SegmentationScores, compute_dice_iou, overlap_counts
from monai_glam.metrics.thresholds import ThresholdSelection, select_dice_thresholds
from monai_glam.metrics.utils import json_safe

__all__ = [
    "DEFAULT_FP_RATES",
    "FRAMES",
    "LOCALIZATION_COLUMNS",
    "AUCResult",
    "EvaluationCollector",
    "FROCResult",
    "LocalizationSplit",
    "MeanFiniteROCAUCMetric",
    "PointingGameResult",
    "SaliencyDiceMetric",
    "ScoredImage",
    "SegmentationScores",
    "ThresholdSelection",
    "aggregate_by_group",
    "bootstrap_roc_auc",
    "build_evaluation_report",
    "compare_localization",
    "compute_dice_iou",
    "compute_lesion_froc",
    "compute_roc_auc_ci",
    "compute_saliency_dice",
    "downsample_maps",
    "find_saliency_peaks",
    "froc_curve",
    "froc_peak_settings",
    "ground_truth_known",
    "json_safe",
    "lesion_diameters",
    "localization_markdown",
    "localization_truth",
    "overlap_counts",
    "plot_froc_curves",
    "plot_roc_curves",
    "pointing_game",
    "render_markdown",
    "roc_auc",
    "roc_curve",
    "select_dice_thresholds",
    "write_evaluation_report",
]
