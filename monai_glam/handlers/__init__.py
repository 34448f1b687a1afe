"""Ignite / MONAI handlers for GLAM training and validation."""

from __future__ import annotations

from monai_glam.handlers.best_checkpoint import BestCheckpointSaver
from monai_glam.handlers.evaluation_report import EvaluationReportWriter
from monai_glam.handlers.finite_rocauc import MeanFiniteROCAUC
from monai_glam.handlers.graceful_stop import GracefulStop
from monai_glam.handlers.last_checkpoint import LastCheckpointSaver
from monai_glam.handlers.loss_terms import LossTermsHandler, training_scalars
from monai_glam.handlers.prediction_writer import PredictionWriterHandler
from monai_glam.handlers.saliency_dice import SaliencyDice, SaliencyMaskSelector, dice_per_image
from monai_glam.handlers.tensorboard_saliency import TensorBoardSaliencyHandler

__all__ = [
    "BestCheckpointSaver",
    "EvaluationReportWriter",
    "GracefulStop",
    "LastCheckpointSaver",
    "LossTermsHandler",
    "MeanFiniteROCAUC",
    "PredictionWriterHandler",
    "SaliencyDice",
    "SaliencyMaskSelector",
    "TensorBoardSaliencyHandler",
    "dice_per_image",
    "training_scalars",
]
