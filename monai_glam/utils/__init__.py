"""Shared utilities: names (enums), devices, torch.distributed helpers, atomic file output, output folders,
clean stops on signals and background job threads."""

from __future__ import annotations

from monai_glam.utils.atomic import atomic_output_path, atomic_write_text
from monai_glam.utils.device import resolve_device, resolve_process_device
from monai_glam.utils.distributed import (
    destroy_distributed,
    init_distributed_from_env,
    is_main_process,
    rank_and_world_size,
)
from monai_glam.utils.enums import (
    CLASS_NAMES,
    DEFAULT_MASK_KEYS,
    BatchKeys,
    GLAMKeys,
    LossTermKeys,
    MetaKeys,
    TrainingOutputKeys,
    mask_keys_for,
)
from monai_glam.utils.jobs import BackgroundJobs, InlineJobs
from monai_glam.utils.json_files import read_json
from monai_glam.utils.output_folder import (
    StagedFolder,
    check_output_folder,
    check_training_folder,
    staged_output_folder,
)
from monai_glam.utils.precision import PRECISIONS, resolve_precision
from monai_glam.utils.signals import RunInterruptedError, StopRequest, signal_name

__all__ = [
    "CLASS_NAMES",
    "DEFAULT_MASK_KEYS",
    "PRECISIONS",
    "BackgroundJobs",
    "BatchKeys",
    "GLAMKeys",
    "InlineJobs",
    "LossTermKeys",
    "MetaKeys",
    "RunInterruptedError",
    "StagedFolder",
    "StopRequest",
    "TrainingOutputKeys",
    "atomic_output_path",
    "atomic_write_text",
    "check_output_folder",
    "check_training_folder",
    "destroy_distributed",
    "init_distributed_from_env",
    "is_main_process",
    "mask_keys_for",
    "rank_and_world_size",
    "read_json",
    "resolve_device",
    "resolve_precision",
    "resolve_process_device",
    "signal_name",
    "staged_output_folder",
]
