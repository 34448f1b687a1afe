"""Small helpers that the MONAI bundle in ``bundle/`` references from its configs.

Everything here is reached through fully qualified ``_target_`` strings (or the ``bundle_support`` name the
configs import), so the bundle works from any working directory with only ``monai_glam`` installed:

- network construction from a named preset (:func:`glam_network`, :func:`preset_window`);
- staged training bookkeeping (:func:`previous_stage_checkpoint`, :func:`load_initial_weights`,
  :func:`publish_checkpoint`, :func:`attach_handlers`, :func:`is_main_process`);
- datalists for inference, where labels are optional (:func:`read_inference_items`);
- two ignite handlers: :class:`PredictionWriterHandler` (``inference.json``: tables, maps, masks, overlays) and
  :class:`EvaluationReportWriter` (``evaluate.json``: the evaluation report).
"""

from __future__ import annotations

import logging
import os
import shutil
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.utils import CommonKeys, min_version, optional_import

from monai_glam.data.atomic_io import atomic_output_path
from monai_glam.data.datalist import read_datalist
from monai_glam.engines.stages import TrainingStage
from monai_glam.engines.workflows import CLASS_NAMES, load_glam_weights
from monai_glam.networks import GLAM, GLAMSingleOutput, glam_preset
from monai_glam.utils.distributed import is_main_process
from monai_glam.utils.enums import GLAMKeys

if TYPE_CHECKING:
    from ignite.engine import Engine, Events
else:
    Engine, _ = optional_import("ignite.engine", "0.4.11", min_version, "Engine")
    Events, _ = optional_import("ignite.engine", "0.4.11", min_version, "Events")

__all__ = [
    "EvaluationReportWriter",
    "PredictionWriterHandler",
    "attach_handlers",
    "glam_network",
    "is_main_process",
    "load_initial_weights",
    "preset_window",
    "previous_stage_checkpoint",
    "publish_checkpoint",
    "read_inference_items",
    "stage_checkpoint_name",
]

logger = logging.getLogger(__name__)

#: The stage whose best checkpoint initialises each stage (``global`` starts from scratch).
_PREVIOUS_STAGE = {TrainingStage.LOCAL: TrainingStage.GLOBAL, TrainingStage.JOINT: TrainingStage.LOCAL}


def glam_network(preset: str = "paper", output_key: str | None = None, **glam_kwargs: Any) -> GLAM:
    """A :class:`GLAM` of a named preset (``paper``, ``small``, ``tiny``), with ``glam_kwargs`` overriding it.

    Args:
        preset: see :data:`monai_glam.networks.GLAM_PRESETS`.
        output_key: ``None`` for the dictionary-output GLAM; a :class:`GLAMKeys` name (e.g. ``"saliency"``) for
            :class:`GLAMSingleOutput`, which returns that one tensor (bundle checks, ONNX/TorchScript users that
            need a tensor). Both have the same state dict.
        glam_kwargs: GLAM constructor arguments overriding the preset's.
    """
    kwargs = {**glam_preset(preset)["glam"], **glam_kwargs}
    if output_key is None:
        return GLAM(**kwargs)
    return GLAMSingleOutput(output_key=str(output_key), **kwargs)


def preset_window(preset: str = "paper") -> tuple[int, int]:
    """The network input ``(H, W)`` of a preset (``paper``: 2944 x 1920)."""
    height, width = glam_preset(preset)["window"]
    return int(height), int(width)


def stage_checkpoint_name(stage: str) -> str:
    """File name of a stage's best checkpoint in the bundle's ``models/`` folder: ``model_<stage>.pt``."""
    return f"model_{TrainingStage(stage).value}.pt"


def previous_stage_checkpoint(ckpt_dir: str | os.PathLike[str], stage: str) -> str | None:
    """Where a stage starts from: ``None`` for ``global``, the best ``global`` model for ``local`` and the best
    ``local`` model for ``joint``."""
    previous = _PREVIOUS_STAGE.get(TrainingStage(stage))
    return None if previous is None else os.path.join(os.fspath(ckpt_dir), stage_checkpoint_name(previous))


def load_initial_weights(glam: GLAM, path: str | os.PathLike[str] | None) -> GLAM:
    """Load the weights a stage starts from (``None``: keep the initialisation).

    Raises:
        FileNotFoundError: with a hint to train the previous stage first.
    """
    if path is None or str(path) == "":
        return glam
    if not os.path.isfile(path):
        raise FileNotFoundError(
            f"initial checkpoint not found: {path}. Train the previous stage first, or pass --init_checkpoint "
            "(a GLAM state dict, a training checkpoint, or a published NYU checkpoint converted with "
            "'monai-glam convert-nyu')."
        )
    logger.info("initialising GLAM from %s", path)
    return load_glam_weights(glam, path)


def attach_handlers(engine: Engine, handlers: Iterable[Any]) -> Engine:
    """Attach handlers that reference ``engine`` itself (so they cannot be in its own handler list)."""
    for handler in handlers:
        if handler is not None:
            handler.attach(engine)
    return engine


def publish_checkpoint(source: str | os.PathLike[str], target: str | os.PathLike[str]) -> str | None:
    """Copy a stage's best model to the bundle's default ``models/model.pt`` (main process only, atomically).

    Returns:
        The target path, or ``None`` when nothing was copied (no such source, or not the main process).
    """
    if not is_main_process():
        return None
    if not os.path.isfile(source):
        logger.warning("no checkpoint at %s to publish (was there a validation split?)", source)
        return None
    with atomic_output_path(target) as temp_path:
        shutil.copyfile(source, temp_path)
    logger.info("published %s as %s", source, target)
    return os.fspath(target)


def read_inference_items(datalist: str | os.PathLike[str], split: str = "test") -> list[dict[str, Any]]:
    """Items of one datalist split for inference: :func:`~monai_glam.data.read_datalist` with optional labels.

    Raises:
        FileNotFoundError: no such datalist.
        ValueError: a bad item (the message names the file, split and index) or an empty split.
    """
    items = read_datalist(datalist, split, require_label=False)
    if not items:
        raise ValueError(f"{datalist}: the '{split}' split has no items")
    return items


def _as_numpy(value: Any) -> np.ndarray:
    if isinstance(value, MetaTensor):
        value = value.as_tensor()
    if isinstance(value, torch.Tensor):
        return value.detach().cpu().numpy()
    return np.asarray(value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, torch.Tensor):
        value = value.item() if value.numel() == 1 else value.tolist()
    return str(value)


def _label(value: Any) -> tuple[int, ...] | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        value = [float(torch.as_tensor(v)) for v in value]
    return tuple(int(round(float(v))) for v in np.asarray(_as_numpy(value), dtype=float).reshape(-1))


def _source_path(item: Mapping[str, Any], key: str) -> str:
    """The file an item's value came from: its MetaTensor's ``filename_or_obj`` or the value itself (a path)."""
    value = item.get(key)
    if isinstance(value, MetaTensor):
        source = value.meta.get("filename_or_obj", "")
        return "" if isinstance(source, (list, tuple)) else str(source)
    return value if isinstance(value, str) else ""


class _UniqueIds:
    """Image ids from file names (as ``monai-glam infer`` names them), made unique within a run."""

    def __init__(self) -> None:
        self.seen: dict[str, int] = {}

    def __call__(self, path: str, index: int) -> str:
        from monai_glam.writers import image_id_from_path

        stem = image_id_from_path(path) if path else f"image{index:05d}"
        count = self.seen.get(stem, 0) + 1
        self.seen[stem] = count
        return stem if count == 1 else f"{stem}-{count}"


class _RunHandler:
    """A handler with ``started`` / ``iteration_completed`` / ``completed`` callbacks on an ignite engine."""

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self.started)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self.iteration_completed)
        engine.add_event_handler(Events.COMPLETED, self.completed)

    def started(self, engine: Engine | None) -> None:
        raise NotImplementedError

    def iteration_completed(self, engine: Engine) -> None:
        raise NotImplementedError

    def completed(self, engine: Engine) -> None:
        raise NotImplementedError


class PredictionWriterHandler(_RunHandler):
    """Ignite handler that writes what ``inference.json`` produces through :class:`monai_glam.writers.PredictionWriter`
    (the writer of ``monai-glam infer``, so both write the same layout).

    Per image: ``saliency/<id>_<class>.nii.gz|.png`` and ``masks/<id>_<class>.nii.gz|.png`` in the original image
    geometry (the preprocessing is inverted with MONAI's ``Invertd``), ``overlays/<id>.png``; at the end
    ``predictions.csv``, ``breasts.csv``, ``exams.csv``, ``failures.json`` and ``run.json``. Only the main
    process writes.

    It reads the decollated engine state (keep the evaluator's ``decollate=True``): GLAM's outputs either at the
    top level of each output item (after ``FlattenSubKeysd(keys="pred")``) or under ``pred``, and the batch
    items (the preprocessed image MetaTensor, network-frame ground-truth masks, datalist fields).

    Args:
        output_dir: output folder (created).
        preprocessing: the invertible preprocessing the images went through.
        writer_kwargs: further :class:`monai_glam.writers.PredictionWriter` arguments: ``thresholds``,
            ``class_names``, ``formats``, ``network_frame``, ``overlays``, ``overlay_size``.
    """

    def __init__(self, output_dir: str | os.PathLike[str], preprocessing: Any, **writer_kwargs: Any) -> None:
        from monai_glam.writers import OriginalGeometryInverter

        self.output_dir = output_dir
        self.inverter = OriginalGeometryInverter(preprocessing)
        self.writer_kwargs = writer_kwargs
        self.started(None)  # checks the arguments now

    def started(self, engine: Engine | None) -> None:
        from monai_glam.writers import PredictionWriter

        self.writer = PredictionWriter(self.output_dir, self.inverter, **self.writer_kwargs)

    def iteration_completed(self, engine: Engine) -> None:
        if not is_main_process():
            return
        outputs, batch = engine.state.output, engine.state.batch
        if not isinstance(outputs, list) or not isinstance(batch, list):
            raise ValueError("PredictionWriterHandler needs decollated outputs: keep the evaluator's decollate=True.")
        for output, data in zip(outputs, batch, strict=True):
            image = data[CommonKeys.IMAGE]
            item = {key: _text(data.get(key)) for key in ("patient_id", "exam_id", "laterality", "view")}
            item[CommonKeys.IMAGE] = _source_path(data, CommonKeys.IMAGE)
            item[CommonKeys.LABEL] = _label(data.get(CommonKeys.LABEL))
            for key in self.writer.mask_keys:
                if _mask_was_read(data.get(key)):
                    item[key] = _source_path(data, key)
            pred = output.get(CommonKeys.PRED, output)
            outputs_ = {key: pred[key] for key in GLAM_IMAGE_OUTPUTS if key in pred}
            data_ = {CommonKeys.IMAGE: image, **{key: data[key] for key in self.writer.mask_keys if key in data}}
            self.writer.write(self.writer.new_image_id(item[CommonKeys.IMAGE] or "image"), item, data_, outputs_)

    def completed(self, engine: Engine) -> None:
        if not is_main_process():
            return
        from monai_glam.writers import FailureLog

        paths = self.writer.finalize(FailureLog("bundle inference"), {"source": "monai_glam bundle inference.json"})
        logger.info("wrote %d predictions to %s", len(self.writer.predictions), paths["images"])


#: GLAM outputs the prediction writer uses (scores, fused map, patch boxes).
GLAM_IMAGE_OUTPUTS = tuple(
    key.value for key in (GLAMKeys.PROB_GLOBAL, GLAMKeys.PROB_LOCAL, GLAMKeys.SALIENCY, GLAMKeys.PATCH_BOXES)
)


def _mask_was_read(value: Any) -> bool:
    """Whether a loaded mask came from a file (not filled in with zeros by ``LoadMammogramd``)."""
    from monai_glam.transforms.dictionary import MASK_MISSING

    return isinstance(value, torch.Tensor) and not (isinstance(value, MetaTensor) and value.meta.get(MASK_MISSING))


class EvaluationReportWriter(_RunHandler):
    """Collect scores, labels, maps and masks over an evaluation run and write the GLAM evaluation report.

    At ``COMPLETED`` it calls :func:`~monai_glam.metrics.build_evaluation_report` (image- and breast-level
    ROC-AUC with bootstrap intervals for ``prob_global`` and ``prob_local``; Dice/IoU, pointing game and lesion
    FROC of the fused map) and :func:`~monai_glam.metrics.write_evaluation_report` (``report.json``,
    ``report.md``, ROC and FROC plots), plus ``predictions.csv`` / ``breasts.csv`` / ``exams.csv``.

    Reads the *batched* engine state (use the evaluator with ``decollate=False``): ``output["pred"]`` (GLAM's
    dict) and the batch's ``label``, ``mask`` and ``mask_available`` (from :class:`GLAMTargetsd`).
    Localization metrics use the images whose masks are known for every class: a class mask is known when it was
    read from a file or the image is negative for that class. Maps are kept as float16 on the CPU.

    Args:
        output_dir: report folder (created).
        thresholds: per-class segmentation thresholds for Dice/IoU.
        class_names: class names in channel order.
        num_bootstrap: bootstrap resamples for the AUC intervals.
        seed: bootstrap seed.
        peak_sigma: FROC peak smoothing in pixels of the network frame.
        peak_min_distance: FROC minimum candidate distance in pixels.
        localization: compute the map-based metrics (needs ``mask`` in the batch).
    """

    def __init__(
        self,
        output_dir: str | os.PathLike[str],
        thresholds: float | Sequence[float] = 0.5,
        class_names: Sequence[str] = CLASS_NAMES,
        num_bootstrap: int = 2000,
        seed: int = 0,
        peak_sigma: float = 4.0,
        peak_min_distance: int = 32,
        localization: bool = True,
    ) -> None:
        self.output_dir = Path(output_dir)
        self.thresholds = thresholds
        self.class_names = tuple(class_names)
        self.num_bootstrap = int(num_bootstrap)
        self.seed = int(seed)
        self.peak_sigma = float(peak_sigma)
        self.peak_min_distance = int(peak_min_distance)
        self.localization = bool(localization)
        self.report: dict[str, Any] | None = None
        self.started(None)

    def started(self, engine: Engine | None) -> None:
        self.scores: dict[str, list[np.ndarray]] = {"global": [], "local": []}
        self.labels: list[np.ndarray] = []
        self.maps: list[np.ndarray] = []
        self.masks: list[np.ndarray] = []
        self.predictions: list[Any] = []
        self._ids = _UniqueIds()

    def iteration_completed(self, engine: Engine) -> None:
        from monai_glam.writers.tables import ImagePrediction

        output, batch = engine.state.output, engine.state.batch
        if not isinstance(batch, Mapping) or not isinstance(output, Mapping):
            raise ValueError("EvaluationReportWriter needs batched outputs: set the evaluator's decollate=False.")
        pred = output[CommonKeys.PRED]
        prob_global = _as_numpy(pred[GLAMKeys.PROB_GLOBAL.value]).astype(np.float64)
        prob_local = _as_numpy(pred[GLAMKeys.PROB_LOCAL.value]).astype(np.float64)
        labels = _as_numpy(batch[CommonKeys.LABEL]).astype(np.float64).round().astype(np.int64)
        self.scores["global"].extend(prob_global)
        self.scores["local"].extend(prob_local)
        self.labels.extend(labels)
        if self.localization and "mask" in batch and GLAMKeys.SALIENCY.value in pred:
            saliency = _as_numpy(pred[GLAMKeys.SALIENCY.value]).astype(np.float16)
            masks = _as_numpy(batch["mask"]) > 0
            available = _as_numpy(batch.get("mask_available", np.ones(labels.shape))) > 0
            known = (available | (labels == 0)).all(axis=1)
            self.maps.extend(saliency[known])
            self.masks.extend(masks[known])
        image = batch.get(CommonKeys.IMAGE)
        sources = image.meta.get("filename_or_obj", []) if isinstance(image, MetaTensor) else []
        for i in range(labels.shape[0]):
            path = str(sources[i]) if isinstance(sources, (list, tuple)) and i < len(sources) else ""
            self.predictions.append(
                ImagePrediction(
                    image_id=self._ids(path, len(self.predictions)),
                    image=path,
                    prob_global=tuple(float(v) for v in prob_global[i]),
                    prob_local=tuple(float(v) for v in prob_local[i]),
                    label=tuple(int(v) for v in labels[i]),
                    laterality=_batch_text(batch, "laterality", i),
                    view=_batch_text(batch, "view", i),
                    patient_id=_batch_text(batch, "patient_id", i),
                    exam_id=_batch_text(batch, "exam_id", i),
                )
            )

    def completed(self, engine: Engine) -> None:
        if not is_main_process():
            return
        from monai_glam.metrics import build_evaluation_report, write_evaluation_report
        from monai_glam.writers.tables import write_prediction_tables

        if not self.labels:
            raise ValueError("no image was evaluated: the evaluation split is empty or every item failed")
        localization = {}
        if self.maps:
            localization = {"saliency": np.stack(self.maps).astype(np.float32), "masks": np.stack(self.masks)}
        self.report = build_evaluation_report(
            {name: np.stack(values) for name, values in self.scores.items()},
            np.stack(self.labels),
            breast_ids=[p.breast_id for p in self.predictions],
            thresholds=self.thresholds,
            class_names=self.class_names,
            num_bootstrap=self.num_bootstrap,
            seed=self.seed,
            peak_sigma=self.peak_sigma,
            peak_min_distance=self.peak_min_distance,
            **localization,
        )
        paths = write_evaluation_report(self.report, self.output_dir)
        write_prediction_tables(self.predictions, self.output_dir, self.class_names)
        logger.info("wrote the evaluation report of %d images to %s", len(self.labels), paths["json"])


def _batch_text(batch: Mapping[str, Any], key: str, index: int) -> str:
    """Entry ``index`` of a collated string field (a list), or the image meta of that name, else ``""``."""
    value = batch.get(key)
    if isinstance(value, (list, tuple)) and index < len(value):
        return _text(value[index])
    image = batch.get(CommonKeys.IMAGE)
    if isinstance(image, MetaTensor):
        meta_value = image.meta.get(key)
        if isinstance(meta_value, (list, tuple)) and index < len(meta_value):
            return _text(meta_value[index])
    return ""
