"""``GLAMLabelApp``: the MONAI Label app serving GLAM (``main.py`` of an app folder imports it).

MONAI Label takes the class of ``<app>/main.py`` whose *direct* base is named ``MONAILabelApp``; an imported class
qualifies, so the app folder holds no code of its own and is written by ``monai-glam monailabel init``.

What the app adds to MONAI Label's defaults:

- ``--conf`` settings checked at start-up (:func:`~monai_glam.integrations.parse_server_settings`), and the
  served checkpoint loaded then, so a bad setting or checkpoint stops the server with one line;
- a local image folder lists ``*.png``, ``*.dcm``, ``*.dicom``, ``*.nii`` and ``*.nii.gz`` files unless
  ``MONAI_LABEL_DATASTORE_FILE_EXT`` is set (MONAI Label's default list has no DICOM);
- an unknown image id is a 404 with a JSON ``detail`` (MONAI Label passes an empty path on, which ends in a 500);
- a DICOMweb datastore starts offline: dcmqi (which only saving labels to the DICOMweb server needs) is not
  downloaded from GitHub; ``pip install dcmqi`` puts it on ``PATH``.
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from monai.utils import optional_import

from monai_glam import __version__
from monai_glam.integrations.monailabel.infer import GLAMClassificationTask, GLAMSegmentationTask, request_error
from monai_glam.integrations.monailabel.train import GLAMTrainTask
from monai_glam.integrations.serving import GLAMPredictor
from monai_glam.integrations.settings import parse_server_settings

MONAILabelApp, _ = optional_import("monailabel.interfaces.app", name="MONAILabelApp")
LocalDatastore, _ = optional_import("monailabel.datastore.local", name="LocalDatastore")
settings, _ = optional_import("monailabel.config", name="settings")
Settings, _ = optional_import("monailabel.config", name="Settings")

__all__ = ["GLAM_FILE_EXTENSIONS", "GLAMLabelApp"]

logger = logging.getLogger(__name__)

#: Image files a local GLAM datastore lists when ``MONAI_LABEL_DATASTORE_FILE_EXT`` is left at its default.
GLAM_FILE_EXTENSIONS: tuple[str, ...] = ("*.png", "*.dcm", "*.dicom", "*.nii", "*.nii.gz")
_DCMQI_TOOL = "itkimage2segimage"


class GLAMLabelApp(MONAILabelApp):
    """GLAM served to MONAI Label clients (3D Slicer, CVAT, plain HTTP).

    Infer models: ``glam`` (segmentation: labelmap or one class's map, polygons, scores) and
    ``glam_classification`` (scores). Train task: ``glam`` (image-level labels in image info), registered when the
    served checkpoint is the app's own ``model/glam/model.pt``, which training replaces.

    Args:
        app_dir: the app folder.
        studies: a local image folder or a DICOMweb URL.
        conf: ``--conf`` pairs (see :mod:`monai_glam.integrations.settings`).

    Raises:
        ValueError: a bad ``--conf`` value, or a checkpoint that cannot be loaded (one line).
        FileNotFoundError: the checkpoint or model config does not exist.
    """

    def __init__(self, app_dir: str, studies: str, conf: Mapping[str, Any] | None) -> None:
        self.glam_settings = parse_server_settings(conf, app_dir)
        glam = self.glam_settings
        self.predictor = GLAMPredictor(glam.checkpoint, glam.model_config, glam.device, **glam.inference_options())
        loaded = self.predictor.load()  # fail at start-up, not on the first request
        logger.info(
            "GLAM: serving %s on %s (window %s, thresholds %s%s)",
            glam.checkpoint,
            loaded.settings.device,
            "x".join(str(v) for v in loaded.settings.window),
            list(loaded.settings.thresholds),
            ", sliding window" if loaded.settings.sliding_window else "",
        )
        super().__init__(
            app_dir=app_dir,
            studies=studies,
            conf=dict(conf or {}),
            name="GLAM mammography",
            description="GLAM: weakly-supervised high-resolution segmentation of mammograms (monai_glam)",
            version=__version__,
        )

    def init_datastore(self) -> Any:
        studies = str(self.studies)
        if studies.startswith(("http://", "https://")):
            return super().init_datastore()
        default = Settings.model_fields["MONAI_LABEL_DATASTORE_FILE_EXT"].default
        extensions = settings.MONAI_LABEL_DATASTORE_FILE_EXT
        if list(extensions) == list(default):
            extensions = list(GLAM_FILE_EXTENSIONS)
        logger.info("GLAM: local datastore %s lists %s", studies, extensions)
        return LocalDatastore(
            studies,
            extensions=extensions,
            auto_reload=settings.MONAI_LABEL_DATASTORE_AUTO_RELOAD,
            read_only=settings.MONAI_LABEL_DATASTORE_READ_ONLY,
        )

    def init_infers(self) -> dict[str, Any]:
        tasks = {
            "glam": GLAMSegmentationTask(self.predictor, self.glam_settings),
            "glam_classification": GLAMClassificationTask(self.predictor, self.glam_settings),
        }
        return {name: task for name, task in tasks.items() if name in self.glam_settings.models}

    def init_trainers(self) -> dict[str, Any]:
        if not self.glam_settings.serves_app_model:
            logger.warning(
                "GLAM: no train task: --conf checkpoint/model_config serve files from outside %s, which training "
                "would replace; serve the app's own model (monai-glam monailabel init) to train",
                self.glam_settings.model_dir,
            )
            return {}
        return {"glam": GLAMTrainTask(self.glam_settings)}

    def init_scoring_methods(self) -> dict[str, Any]:
        return {}

    def infer(self, request: Mapping[str, Any], datastore: Any = None) -> Any:
        """MONAI Label's infer, with an unknown image id answered by a 404 instead of a 500."""
        image = request.get("image")
        if isinstance(image, str) and image and not os.path.exists(image):
            store = datastore if datastore is not None else self.datastore()
            if isinstance(store, LocalDatastore) and not store.get_image_uri(image):
                raise request_error(404, f"unknown image id {image!r}: not in the datastore (see GET /datastore/)")
        return super().infer(request, datastore)

    def _download_dcmqi_tools(self) -> None:
        """Never download dcmqi at start-up (the server may be offline): GLAM's inference does not need it."""
        local = Path(self.app_dir) / "bin" / _DCMQI_TOOL
        if shutil.which(_DCMQI_TOOL) is None and not local.exists():
            logger.warning(
                "GLAM: dcmqi (%s) is not installed: saving labels to the DICOMweb server will fail; pip install dcmqi",
                _DCMQI_TOOL,
            )
