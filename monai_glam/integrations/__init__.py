"""GLAM served to other tools: what an annotation server returns, and the MONAI Label app.

Everything in this package except :mod:`monai_glam.integrations.monailabel` works without MONAI Label:

- :mod:`~monai_glam.integrations.outputs`: the uint8 labelmap in the original image geometry, per-class contour
  polygons in CVAT's format, the result JSON (strict: no NaN), and the label files (PNG, NIfTI, NRRD);
- :mod:`~monai_glam.integrations.serving`: :class:`GLAMPredictor`, one image in, scores and the fused map in the
  original geometry out, with the model reloaded when its checkpoint changes;
- :mod:`~monai_glam.integrations.settings`: the server's ``--conf`` settings, checked;
- :mod:`~monai_glam.integrations.training`: training on image-level labels kept with the images and publishing
  the new checkpoint atomically;
- :mod:`~monai_glam.integrations.app_folder`: the app folder that ``monai-glam monailabel init`` writes.

:mod:`monai_glam.integrations.monailabel` is the only module that imports ``monailabel`` (an optional dependency:
``pip install "monai_glam[monailabel]"`` in its own virtual environment). It is not imported here.
"""

from __future__ import annotations

from monai_glam.integrations.app_folder import APP_MODEL_DIR, CHECKPOINT_NAME, MAIN_PY, init_label_app
from monai_glam.integrations.outputs import (
    GLAM_OUTPUTS,
    LABEL_EXTENSIONS,
    classification_result,
    fuse_labelmap,
    label_values,
    labelmap_polygons,
    scores_json,
    segmentation_result,
    strict_json_text,
    write_label_file,
)
from monai_glam.integrations.serving import BadImageError, GLAMPrediction, GLAMPredictor, resolve_image_file
from monai_glam.integrations.settings import GLAMServerSettings, parse_server_settings
from monai_glam.integrations.training import (
    TRAIN_STATS_FILE,
    LabelTrainingOptions,
    labelled_datalist,
    parse_image_label,
    publish_checkpoint_pair,
    run_label_training,
)

__all__ = [
    "APP_MODEL_DIR",
    "CHECKPOINT_NAME",
    "GLAM_OUTPUTS",
    "LABEL_EXTENSIONS",
    "MAIN_PY",
    "TRAIN_STATS_FILE",
    "BadImageError",
    "GLAMPrediction",
    "GLAMPredictor",
    "GLAMServerSettings",
    "LabelTrainingOptions",
    "classification_result",
    "fuse_labelmap",
    "init_label_app",
    "label_values",
    "labelled_datalist",
    "labelmap_polygons",
    "parse_image_label",
    "parse_server_settings",
    "publish_checkpoint_pair",
    "resolve_image_file",
    "run_label_training",
    "scores_json",
    "segmentation_result",
    "strict_json_text",
    "write_label_file",
]
