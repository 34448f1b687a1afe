"""GLAM training stages and MONAI/Ignite workflows."""

from __future__ import annotations

from monai_glam.engines.stages import GLAMStageNetwork, TrainingStage, loss_for_stage
from monai_glam.engines.workflows import (
    CLASS_NAMES,
    GLAMTrainingRun,
    ScoreSelector,
    create_glam_training,
    create_loader,
    load_glam_weights,
)

__all__ = [
    "CLASS_NAMES",
    "GLAMStageNetwork",
    "GLAMTrainingRun",
    "ScoreSelector",
    "TrainingStage",
    "create_glam_training",
    "create_loader",
    "load_glam_weights",
    "loss_for_stage",
]
