"""Writers for GLAM predictions: score tables, maps and masks in the original geometry, overlays, failures."""

from __future__ import annotations

from monai_glam.writers.failures import ITEM_ERRORS, FailureLog, ItemFailure, describe_error
from monai_glam.writers.geometry import OriginalGeometryInverter
from monai_glam.writers.maps import MAP_FORMATS, map_from_uint16, map_to_uint16, write_class_maps, write_nifti
from monai_glam.writers.overlays import panel_to_uint8, write_overlay
from monai_glam.writers.prediction_writer import (
    OUTPUT_FOLDERS,
    PREDICTION_OUTPUT_KEYS,
    PredictionWriter,
    UniqueImageIds,
    field_text,
    image_id_from_path,
)
from monai_glam.writers.tables import (
    CLASS_NAMES,
    ImagePrediction,
    aggregate_predictions,
    prediction_columns,
    read_predictions,
    write_prediction_tables,
)

__all__ = [
    "CLASS_NAMES",
    "ITEM_ERRORS",
    "MAP_FORMATS",
    "OUTPUT_FOLDERS",
    "PREDICTION_OUTPUT_KEYS",
    "FailureLog",
    "ImagePrediction",
    "ItemFailure",
    "OriginalGeometryInverter",
    "PredictionWriter",
    "UniqueImageIds",
    "aggregate_predictions",
    "describe_error",
    "field_text",
    "image_id_from_path",
    "map_from_uint16",
    "map_to_uint16",
    "panel_to_uint8",
    "prediction_columns",
    "read_predictions",
    "write_class_maps",
    "write_nifti",
    "write_overlay",
    "write_prediction_tables",
]
