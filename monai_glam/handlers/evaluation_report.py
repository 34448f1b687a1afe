"""Ignite handler that builds the GLAM evaluation report of an evaluator run (the bundle's ``evaluate.json``)."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from monai.data import MetaTensor
from monai.utils import convert_to_numpy, min_version, optional_import

from monai_glam.metrics.evaluation import EvaluationCollector
from monai_glam.metrics.utils import check_thresholds
from monai_glam.utils.distributed import is_main_process
from monai_glam.utils.enums import CLASS_NAMES, BatchKeys, GLAMKeys, MetaKeys
from monai_glam.utils.output_folder import check_output_folder
from monai_glam.writers import UniqueImageIds, field_text

if TYPE_CHECKING:
    from ignite.engine import Engine, Events
else:
    Engine, _ = optional_import("ignite.engine", "0.4.11", min_version, "Engine")
    Events, _ = optional_import("ignite.engine", "0.4.11", min_version, "Events")

__all__ = ["EvaluationReportWriter"]

logger = logging.getLogger(__name__)


def _entry(batch: Mapping[str, Any], image: Any, key: str, index: int) -> str:
    """Entry ``index`` of a collated string field (a list), or the image meta of that name, else ``""``."""
    value = batch.get(key) if isinstance(batch, Mapping) else None
    if isinstance(value, (list, tuple)) and index < len(value):
        return field_text(value[index])
    if isinstance(image, MetaTensor):
        meta_value = image.meta.get(key)
        if isinstance(meta_value, (list, tuple)) and index < len(meta_value):
            return field_text(meta_value[index])
    return ""


class EvaluationReportWriter:
    """Collect every image of an evaluation run and write the GLAM evaluation report when it completes.

    It feeds an :class:`~monai_glam.metrics.EvaluationCollector` in the network frame, so the report, and the
    rule for which images count for localization (ground truth known for every class: mask read from a file,
    or a negative label), are those of ``monai-glam evaluate --frame network``. At ``COMPLETED`` it writes
    ``report.json``, ``report.md``, the ROC/FROC plots and ``predictions.csv`` / ``breasts.csv`` / ``exams.csv``.

    Reads the batched engine output (evaluator with ``decollate=False`` and
    :class:`~monai_glam.engines.GLAMPrepareBatch`): ``output["pred"]`` (GLAM's dict) and ``output["label"]``
    (labels, masks and their availability); identifiers (patient, exam) from the batch when it has them.

    Args:
        output_dir: report folder (created).
        thresholds: per-class segmentation thresholds for Dice/IoU.
        class_names: class names in channel order.
        num_bootstrap: bootstrap resamples for the AUC intervals.
        seed: bootstrap seed.
        peak_sigma: FROC peak smoothing in pixels of the network frame; default 4 scaled from 2944 rows to
            ``window_rows`` (as ``monai-glam evaluate`` does).
        peak_min_distance: FROC minimum candidate distance in pixels; default 32, scaled the same way.
        localization: compute the map-based metrics.
        window_rows: height of the network window, for the default FROC settings.
        overwrite: write into an ``output_dir`` that already holds results (files are replaced in place); without
            it such a folder is refused when the handler is built.

    Raises:
        ValueError: bad thresholds, or ``output_dir`` holds results and ``overwrite`` is false.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike[str],
        thresholds: float | Sequence[float] = 0.5,
        class_names: Sequence[str] = CLASS_NAMES,
        num_bootstrap: int = 2000,
        seed: int = 0,
        peak_sigma: float | None = None,
        peak_min_distance: int | None = None,
        localization: bool = True,
        window_rows: int = 2944,
        overwrite: bool = False,
    ) -> None:
        if is_main_process():
            check_output_folder(output_dir, overwrite, option="output_dir", how="--overwrite true")
        self.output_dir = Path(output_dir)
        self.class_names = tuple(class_names)
        values = check_thresholds(thresholds, len(self.class_names))
        if not all(0.0 <= float(t) <= 1.0 for t in values):
            raise ValueError(f"thresholds must be one number in [0, 1] per class {self.class_names}, got {thresholds}")
        self.thresholds = tuple(float(t) for t in values)
        self.num_bootstrap = int(num_bootstrap)
        self.seed = int(seed)
        self.peak_sigma = None if peak_sigma is None else float(peak_sigma)
        self.peak_min_distance = None if peak_min_distance is None else int(peak_min_distance)
        self.window_rows = int(window_rows)
        self.localization = bool(localization)
        self.report: dict[str, Any] | None = None
        self.started(None)

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self.started)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)
        engine.add_event_handler(Events.COMPLETED, self.completed)

    def started(self, engine: Engine | None) -> None:
        self.collector = EvaluationCollector(self.class_names, frame="network")
        self._ids = UniqueImageIds()

    def __call__(self, engine: Engine) -> None:
        from monai_glam.writers import ImagePrediction

        output = engine.state.output
        if not isinstance(output, Mapping):
            raise ValueError("EvaluationReportWriter needs batched outputs: set the evaluator's decollate=False.")
        pred, target = output[BatchKeys.PRED], output[BatchKeys.LABEL]
        target = target if isinstance(target, Mapping) else {BatchKeys.LABEL.value: target}
        labels = np.rint(convert_to_numpy(target[BatchKeys.LABEL], dtype=np.float64)).astype(np.int64)
        prob_global = convert_to_numpy(pred[GLAMKeys.PROB_GLOBAL], dtype=np.float64)
        prob_local = convert_to_numpy(pred[GLAMKeys.PROB_LOCAL], dtype=np.float64)
        saliency = pred.get(GLAMKeys.SALIENCY) if self.localization else None
        masks = target.get(BatchKeys.MASK)
        available = target.get(BatchKeys.MASK_AVAILABLE)
        image = output.get(BatchKeys.IMAGE)
        batch = engine.state.batch if isinstance(engine.state.batch, Mapping) else {}
        sources = image.meta.get(MetaKeys.FILENAME, []) if isinstance(image, MetaTensor) else []
        for i in range(labels.shape[0]):
            path = str(sources[i]) if isinstance(sources, (list, tuple)) and i < len(sources) else ""
            prediction = ImagePrediction(
                image_id=self._ids(path or f"image{len(self.collector):05d}"),
                image=path,
                prob_global=tuple(float(v) for v in prob_global[i]),
                prob_local=tuple(float(v) for v in prob_local[i]),
                label=tuple(int(v) for v in labels[i]),
                laterality=_entry(batch, image, MetaKeys.LATERALITY, i),
                view=_entry(batch, image, MetaKeys.VIEW, i),
                patient_id=_entry(batch, image, BatchKeys.PATIENT_ID, i),
                exam_id=_entry(batch, image, BatchKeys.EXAM_ID, i),
            )
            if saliency is None or masks is None:
                self.collector.add(prediction, None, [])
                continue
            image_masks = convert_to_numpy(masks[i])
            flags = np.ones(len(self.class_names)) if available is None else convert_to_numpy(available[i])
            per_class = [image_masks[c] if flags[c] > 0 else None for c in range(len(self.class_names))]
            self.collector.add(prediction, saliency[i], per_class)

    def completed(self, engine: Engine) -> None:
        if not is_main_process():
            return
        from monai_glam.metrics import write_evaluation_report
        from monai_glam.writers import write_prediction_tables

        self.report = self.collector.report(
            thresholds=self.thresholds,
            num_bootstrap=self.num_bootstrap,
            seed=self.seed,
            peak_sigma=self.peak_sigma,
            peak_min_distance=self.peak_min_distance,
            window_rows=self.window_rows,
        )
        paths = write_evaluation_report(self.report, self.output_dir)
        write_prediction_tables(self.collector.predictions, self.output_dir, self.class_names)
        logger.info("wrote the evaluation report of %d images to %s", len(self.collector), paths["json"])
