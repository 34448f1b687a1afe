"""Writers for GLAM predictions: score tables, maps and masks in the original geometry, overlays, failures."""

from __future__ import annotations

from monai_glam.writers.failures import ITEM_ERRORS, FailureLog, ItemFailure, describe_error
from monai_glam.writers.geometry import OriginalGeometryInverter
from monai_glam.writers.maps import MAP_FORMATS, map_from_uint16, map_to_uint16, write_class_maps, write_nifti
from monai_glam.writers.overlays import (
    BOX_COLOUR,
    COMBINED_COLOURS,
    DISPLAY_PERCENTILES,
    OVERLAY_LAYOUTS,
    OverlayInputs,
    box_outline_map,
    display_window,
    panel_to_uint8,
    render_overlay,
    write_original_overlay,
    write_overlay,
    write_rgb_png,
)
from monai_glam.writers.prediction_writer import (
    FAILURES_FILE,
    OUTPUT_FOLDERS,
    PREDICTION_OUTPUT_KEYS,
    RUN_FILE,
    PredictionWriter,
    UniqueImageIds,
    field_text,
    image_id_from_path,
)
from monai_glam.writers.tables import (
    CLASS_NAMES,
    TABLE_FILES,
    ImagePrediction,
    aggregate_predictions,
    prediction_columns,
    read_predictions,
    write_prediction_tables,
)

__all__ = [
    "BOX_COLOUR",
    "CLASS_NAMES",
    "COMBINED_COLOURS",
    "DISPLAY_PERCENTILES",
    "FAILURES_FILE",
    "ITEM_ERRORS",
    "MAP_FORMATS",
    "OUTPUT_FOLDERS",
    "OVERLAY_LAYOUTS",
    "PREDICTION_OUTPUT_KEYS",
    "RUN_FILE",
    "TABLE_FILES",
    "FailureLog",
    "ImagePrediction",
    "ItemFailure",
    "OriginalGeometryInverter",
    "OverlayInputs",
    "PredictionWriter",
    "UniqueImageIds",
    "aggregate_predictions",
    "box_outline_map",
    "describe_error",
    "display_window",
    "field_text",
    "image_id_from_path",
    "map_from_uint16",
    "map_to_uint16",
    "panel_to_uint8",
    "prediction_columns",
    "read_predictions",
    "render_overlay",
    "write_class_maps",
    "write_nifti",
    "write_original_overlay",
    "write_overlay",
    "write_prediction_tables",
    "write_rgb_png",
]
