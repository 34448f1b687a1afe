"""Ignite handler that writes what the bundle's ``inference.json`` predicts, with ``monai-glam infer``'s writer."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.utils import CommonKeys, convert_to_numpy, min_version, optional_import

from monai_glam.transforms.dictionary import mask_was_read
from monai_glam.utils.distributed import is_main_process
from monai_glam.utils.enums import MetaKeys
from monai_glam.utils.output_folder import check_output_folder
from monai_glam.writers import PREDICTION_OUTPUT_KEYS, field_text

if TYPE_CHECKING:
    from ignite.engine import Engine, Events
else:
    Engine, _ = optional_import("ignite.engine", "0.4.11", min_version, "Engine")
    Events, _ = optional_import("ignite.engine", "0.4.11", min_version, "Events")

__all__ = ["PredictionWriterHandler"]

logger = logging.getLogger(__name__)


def _label(value: Any) -> tuple[int, ...] | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        value = [float(torch.as_tensor(v)) for v in value]
    return tuple(int(round(float(v))) for v in np.asarray(convert_to_numpy(value), dtype=np.float64).reshape(-1))


def _source_path(item: Mapping[str, Any], key: str) -> str:
    """The file an item's value came from: its MetaTensor's ``filename_or_obj`` or the value itself (a path)."""
    value = item.get(key)
    if isinstance(value, MetaTensor):
        source = value.meta.get(MetaKeys.FILENAME, "")
        return "" if isinstance(source, (list, tuple)) else str(source)
    return value if isinstance(value, str) else ""


class PredictionWriterHandler:
    """Ignite handler that writes what ``inference.json`` produces through :class:`monai_glam.writers.PredictionWriter`
    (the writer of ``monai-glam infer``, so both write the same layout).

    Per image: ``saliency/<id>_<class>.nii.gz|.png`` and ``masks/<id>_<class>.nii.gz|.png`` in the original image
    geometry (the preprocessing is inverted with MONAI's ``Invertd``), ``overlays/<id>.png`` (in the original
    geometry; without the raw image in the batch it shows the network window's region only); at the end
    ``predictions.csv``, ``breasts.csv``, ``exams.csv``, ``failures.json`` and ``run.json``. Only the main
    process writes.

    It reads the decollated engine state (keep the evaluator's ``decollate=True``): GLAM's outputs either at the
    top level of each output item (after ``FlattenSubKeysd(keys="pred")``) or under ``pred``, and the batch
    items (the preprocessed image MetaTensor, network-frame ground-truth masks, datalist fields).

    Args:
        output_dir: output folder (created).
        preprocessing: the invertible preprocessing the images went through.
        overwrite: write into an ``output_dir`` that already holds results (files are replaced in place); without
            it such a folder is refused when the handler is built, before any image is read.
        writer_kwargs: further :class:`monai_glam.writers.PredictionWriter` arguments: ``thresholds``,
            ``class_names``, ``formats``, ``network_frame``, ``overlays``, ``overlay_size``.

    Raises:
        ValueError: ``output_dir`` holds results and ``overwrite`` is false.
    """

    def __init__(
        self, output_dir: str | os.PathLike[str], preprocessing: Any, overwrite: bool = False, **writer_kwargs: Any
    ) -> None:
        from monai_glam.writers import OriginalGeometryInverter

        if is_main_process():
            check_output_folder(output_dir, overwrite, option="output_dir", how="--overwrite true")
        self.output_dir = output_dir
        self.inverter = OriginalGeometryInverter(preprocessing)
        self.writer_kwargs = writer_kwargs
        self.started(None)  # checks the arguments now

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self.started)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)
        engine.add_event_handler(Events.COMPLETED, self.completed)

    def started(self, engine: Engine | None) -> None:
        from monai_glam.writers import PredictionWriter

        self.writer = PredictionWriter(self.output_dir, self.inverter, **self.writer_kwargs)

    def __call__(self, engine: Engine) -> None:
        if not is_main_process():
            return
        outputs, batch = engine.state.output, engine.state.batch
        if not isinstance(outputs, list) or not isinstance(batch, list):
            raise ValueError("PredictionWriterHandler needs decollated outputs: keep the evaluator's decollate=True.")
        for output, data in zip(outputs, batch, strict=True):
            image = data[CommonKeys.IMAGE]
            item = {key: field_text(data.get(key)) for key in ("patient_id", "exam_id", "laterality", "view")}
            item[CommonKeys.IMAGE] = _source_path(data, CommonKeys.IMAGE)
            item[CommonKeys.LABEL] = _label(data.get(CommonKeys.LABEL))
            for key in self.writer.mask_keys:
                if mask_was_read(data.get(key)):
                    item[key] = _source_path(data, key)
            pred = output.get(CommonKeys.PRED, output)
            outputs_ = {key: pred[key] for key in PREDICTION_OUTPUT_KEYS if key in pred}
            data_ = {CommonKeys.IMAGE: image, **{key: data[key] for key in self.writer.mask_keys if key in data}}
            self.writer.write(self.writer.new_image_id(item[CommonKeys.IMAGE] or "image"), item, data_, outputs_)

    def completed(self, engine: Engine) -> None:
        if not is_main_process():
            return
        from monai_glam.writers import FailureLog

        paths = self.writer.finalize(FailureLog("bundle inference"), {"source": "monai_glam bundle inference.json"})
        logger.info("wrote %d predictions to %s", len(self.writer.predictions), paths["images"])
