"""MONAI Label train task ``glam``: GLAM's stages on the image-level labels kept in the datastore's image info.

MONAI Label runs ``POST /train/glam`` in a subprocess that builds the app again and calls this task with the
request (the body's keys over :meth:`GLAMTrainTask.config`'s defaults). The work is
:func:`~monai_glam.integrations.run_label_training`: the run goes to ``<app>/model/glam/runs/<run_id>/`` (one
folder per stage with checkpoints, ``tensorboard/`` events and configs), the result replaces the served
``model.pt`` and ``model_config.json`` atomically, and the infer tasks of the running server reload it on their
next request. Nothing of MONAI Label's ``BasicTrainTask`` is used: GLAM's stages and its weakly-supervised loss
live in :mod:`monai_glam.engines`.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

from monai.utils import optional_import

from monai_glam.integrations.serving import resolve_image_file
from monai_glam.integrations.settings import GLAMServerSettings
from monai_glam.integrations.training import LabelTrainingOptions, read_train_stats, run_label_training

TrainTask, _ = optional_import("monailabel.interfaces.tasks.train", name="TrainTask")
name_to_device, _ = optional_import("monailabel.utils.others.generic", name="name_to_device")

__all__ = ["GLAMTrainTask"]

logger = logging.getLogger(__name__)


class GLAMTrainTask(TrainTask):
    """Train the served GLAM from its current checkpoint on the datastore's image-level labels.

    Request keys (``POST /train/glam`` body; defaults in ``/info``): ``stage`` (``all`` = global, local, joint in
    turn, or one of them), ``max_epochs`` (per stage), ``train_batch_size``, ``learning_rate``, ``weight_decay``,
    ``val_split``, ``early_stop_patience``, ``augment``, ``seed``, ``device``, ``tracking_uri`` (MLflow,
    ``sqlite:///...``) and ``publish``.

    Args:
        settings: the server's settings (the model folder and the image-info key of the labels).
        defaults: the request defaults.
    """

    def __init__(self, settings: GLAMServerSettings, defaults: LabelTrainingOptions | None = None) -> None:
        super().__init__(
            f"GLAM stages (global -> local -> joint) on the image-level labels in image info '{settings.label_key}'"
        )
        self.settings = settings
        self.defaults = defaults or LabelTrainingOptions()

    def config(self) -> dict[str, Any]:
        return self.defaults.config()

    def stats(self) -> dict[str, Any]:
        """The last run's statistics (strict JSON: ``/info`` fails on NaN)."""
        return read_train_stats(self.settings.model_dir)

    def __call__(self, request: Mapping[str, Any], datastore: Any) -> dict[str, Any]:
        options = LabelTrainingOptions.from_request(request, self.defaults)
        if options.device != "auto":  # MONAI Label clients may send a GPU's name from their device menu
            options = dataclasses.replace(options, device=str(name_to_device(options.device)))
        key = self.settings.label_key
        images = []
        for image_id in datastore.list_images():
            info = datastore.get_image_info(image_id) or {}
            if info.get(key) is None:  # only labelled images are fetched (a DICOMweb store downloads each one)
                continue
            images.append((image_id, str(resolve_image_file(datastore.get_image_uri(image_id))), info))
        logger.info("%d of the datastore's images have labels under %r", len(images), key)
        return run_label_training(images, self.settings.model_dir, options, label_key=key)
