"""Write everything GLAM predicts for one image, and the run's tables, failures and settings at the end.

Output layout under ``output_dir``::

    predictions.csv, breasts.csv, exams.csv      image scores and their breast/exam means (see tables.py)
    saliency/<id>_<class>.nii.gz | .png          fused saliency map in the original image geometry
    masks/<id>_<class>.nii.gz | .png             thresholded map in the original image geometry
    overlays/<id>.png                            raw image with heat maps, patch boxes, ground-truth contours
    network_frame/{saliency,masks,ground_truth}/ the same in the network frame (optional)
    network_overlays/<id>.png                    the overlay on the network input (optional, with network_frame)
    failures.json                                items that were skipped, and why
    run.json                                     the settings of the run
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
from monai.data import MetaTensor

from monai_glam.data.meta import LATERALITY, SPACING, VIEW
from monai_glam.inferers import threshold_saliency
from monai_glam.transforms.dictionary import mask_was_read
from monai_glam.utils.atomic import atomic_write_text
from monai_glam.utils.enums import CLASS_NAMES, BatchKeys, GLAMKeys, mask_keys_for
from monai_glam.writers.failures import FailureLog
from monai_glam.writers.geometry import OriginalGeometryInverter
from monai_glam.writers.maps import write_class_maps
from monai_glam.writers.overlays import OverlayInputs, box_outline_map, write_original_overlay, write_overlay
from monai_glam.writers.tables import TABLE_FILES, ImagePrediction, write_prediction_tables

if TYPE_CHECKING:
    from monai_glam.writers.dicom import DicomResultWriter

__all__ = [
    "FAILURES_FILE",
    "OUTPUT_FOLDERS",
    "PREDICTION_OUTPUT_KEYS",
    "RUN_FILE",
    "PredictionWriter",
    "UniqueImageIds",
    "field_text",
    "image_id_from_path",
]

#: Sub-folders of an inference output folder.
OUTPUT_FOLDERS: dict[str, str] = {
    "saliency": "saliency",
    "masks": "masks",
    "overlays": "overlays",
    "network_saliency": "network_frame/saliency",
    "network_masks": "network_frame/masks",
    "network_ground_truth": "network_frame/ground_truth",
    "network_overlays": "network_overlays",
    "dicom": "dicom",
}


#: The skipped items and the run's settings and counts, written by :meth:`PredictionWriter.finalize`.
FAILURES_FILE = "failures.json"
RUN_FILE = "run.json"

#: The GLAM outputs :meth:`PredictionWriter.write` uses: both scores, the fused map and the patch boxes.
PREDICTION_OUTPUT_KEYS: tuple[str, ...] = tuple(
    key.value for key in (GLAMKeys.PROB_GLOBAL, GLAMKeys.PROB_LOCAL, GLAMKeys.SALIENCY, GLAMKeys.PATCH_BOXES)
)


def image_id_from_path(path: str | os.PathLike[str]) -> str:
    """A file-name-safe id from an image path: its name without ``.png``/``.dcm``/``.nii.gz``/... suffixes."""
    name = Path(path).name
    for suffix in (".nii.gz", ".nii", ".png", ".dcm", ".dicom", ".tif", ".tiff", ".jpg", ".jpeg"):
        if name.lower().endswith(suffix):
            name = name[: -len(suffix)]
            break
    return re.sub(r"[^A-Za-z0-9._-]+", "_", name).strip("._") or "image"


class UniqueImageIds:
    """Image ids from file names, unique within a run: ``name``, ``name-2``, ``name-3``, ..."""

    def __init__(self) -> None:
        self._used: set[str] = set()

    def __call__(self, path: str | os.PathLike[str]) -> str:
        base = image_id_from_path(path) if str(path) else "image"
        candidate, count = base, 1
        while candidate in self._used:
            count += 1
            candidate = f"{base}-{count}"
        self._used.add(candidate)
        return candidate


def field_text(value: Any) -> str:
    """A datalist or meta field as table text: ``""`` for ``None``, a 1-element tensor as its value."""
    if value is None:
        return ""
    if isinstance(value, torch.Tensor):
        value = value.item() if value.numel() == 1 else value.tolist()
    return str(value)


def _is_dicom(path: Any) -> bool:
    from monai_glam.writers.dicom import is_dicom_file

    return isinstance(path, (str, os.PathLike)) and bool(str(path)) and is_dicom_file(path)


def _absolute(path: Any) -> str:
    """An absolute path, so the tables stay usable from another working folder."""
    return str(Path(path).absolute()) if isinstance(path, (str, os.PathLike)) and str(path) else ""


class PredictionWriter:
    """Writes the outputs of each image as it is predicted and collects its :class:`ImagePrediction`.

    Overlays (``overlays/<id>.png``) show the raw mammogram in its own orientation and size with the saliency
    maps, the patch boxes and the ground-truth contours mapped back onto it (:func:`write_original_overlay`). The
    raw image comes from ``raw_image`` / ``data[raw_image_key]`` (the copy that
    :func:`~monai_glam.engines.build_inference_transforms` makes after loading); without it (e.g. the bundle's
    handler) the preprocessed image is mapped back instead, which shows only the network window's region of the
    raw image (the rest is black) with the window's intensities. With ``network_frame`` the overlay on the network
    input is written too (``network_overlays/<id>.png``).

    For other consumers (e.g. a DICOM Secondary Capture writer), ``keep_original=True`` keeps the last image's
    original-geometry ingredients in :attr:`last_original` (an :class:`OverlayInputs`) after :meth:`write`, and
    :meth:`render_original_overlay` renders them (by default one full-resolution ``(H, W, 3)`` uint8 image with
    every class in its own colour), computing each rendering once per image.

    Args:
        output_dir: the run's folder (created).
        inverter: maps network-frame outputs back to the original geometry.
        thresholds: per-class thresholds of the fused map for the masks.
        class_names: class names in channel order; mask keys are ``mask_<class>``.
        formats: map formats (``"nifti"``, ``"png"``); empty writes no maps or masks.
        network_frame: also write maps, masks, ground-truth masks and the overlay in the network frame.
        overlays: write one overlay PNG per image.
        overlay_size: longest side of each overlay panel, in pixels.
        image_key: key of the preprocessed image.
        raw_image_key: key of the raw image copy in ``data`` (used when :meth:`write` gets no ``raw_image``).
        keep_original: keep :attr:`last_original` after each :meth:`write` (until the next one or
            :meth:`release_original`) for :meth:`render_original_overlay`.
        dicom: for DICOM sources, also write DICOM results under ``dicom/`` (a BINARY and a FRACTIONAL
            Segmentation and an RGB Secondary Capture of the full-resolution overlay, see
            :mod:`monai_glam.writers.dicom`; needs highdicom). Other sources are listed in :attr:`dicom_skipped`.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike[str],
        inverter: OriginalGeometryInverter,
        thresholds: Sequence[float] = (0.5, 0.5),
        class_names: Sequence[str] = CLASS_NAMES,
        formats: Sequence[str] = ("nifti", "png"),
        network_frame: bool = False,
        overlays: bool = True,
        overlay_size: int = 512,
        image_key: str = BatchKeys.IMAGE,
        raw_image_key: str = BatchKeys.RAW_IMAGE,
        keep_original: bool = False,
        dicom: bool = False,
    ) -> None:
        if len(thresholds) != len(class_names):
            raise ValueError(f"thresholds must have one value per class {list(class_names)}, got {list(thresholds)}")
        if int(overlay_size) < 1:
            raise ValueError(f"overlay_size must be positive, got {overlay_size}")
        self.output_dir = Path(output_dir)
        self.inverter = inverter
        self.thresholds = tuple(float(t) for t in thresholds)
        self.class_names = tuple(class_names)
        self.formats = tuple(formats)
        self.network_frame = bool(network_frame)
        self.overlays = bool(overlays)
        self.overlay_size = int(overlay_size)
        self.image_key = image_key
        self.raw_image_key = raw_image_key
        self.keep_original = bool(keep_original)
        #: the last written image's overlay ingredients in the original geometry (only with ``keep_original``).
        self.last_original: OverlayInputs | None = None
        self._renders: dict[tuple[str, int | None, float], np.ndarray] = {}
        self.predictions: list[ImagePrediction] = []
        self._ids = UniqueImageIds()
        self.dicom = bool(dicom)
        #: sources that got no DICOM results because they are not DICOM files (with ``dicom``).
        self.dicom_skipped: list[str] = []
        self._dicom_writer: DicomResultWriter | None = None
        if self.dicom:
            from monai_glam.writers.dicom import DicomResultWriter

            self._dicom_writer = DicomResultWriter(self.folder("dicom"), self.class_names)

    @property
    def mask_keys(self) -> tuple[str, ...]:
        """Item keys of the ground-truth masks, ``mask_<class>``."""
        return mask_keys_for(self.class_names)

    def folder(self, name: str) -> Path:
        """Path of one of :data:`OUTPUT_FOLDERS`."""
        return self.output_dir / OUTPUT_FOLDERS[name]

    def new_image_id(self, path: str | os.PathLike[str]) -> str:
        """An id for ``path`` that no earlier image of this run has (``name``, ``name-2``, ...)."""
        return self._ids(path)

    def _ground_truth(self, data: Mapping[str, Any]) -> torch.Tensor | None:
        """``(C, h, w)`` network-frame masks when every class has a real (not filled-in) mask."""
        masks = [data.get(key) for key in self.mask_keys]
        if not all(mask_was_read(m) for m in masks):
            return None
        return torch.cat([torch.as_tensor(m).reshape(1, *m.shape[-2:]) for m in masks]).float()

    def write(
        self,
        image_id: str,
        item: Mapping[str, Any],
        data: Mapping[str, Any],
        outputs: Mapping[str, torch.Tensor],
        original_saliency: torch.Tensor | None = None,
        raw_image: torch.Tensor | None = None,
    ) -> ImagePrediction:
        """Write the maps, masks and overlays of one image and record its scores.

        :meth:`write_outputs` followed by :meth:`record`; see there for the arguments.

        Returns:
            The image's :class:`ImagePrediction` (also appended to :attr:`predictions`).
        """
        prediction = self.write_outputs(image_id, item, data, outputs, original_saliency, raw_image)
        self.record(prediction, item)
        return prediction

    def record(self, prediction: ImagePrediction, item: Mapping[str, Any]) -> None:
        """Append an image written by :meth:`write_outputs` to :attr:`predictions` (and, with ``dicom``, list a
        source that is not DICOM in :attr:`dicom_skipped`): the tables list the images in the order recorded."""
        self.predictions.append(prediction)
        if self._dicom_writer is not None and not _is_dicom(item.get(self.image_key)):
            self.dicom_skipped.append(str(item.get(self.image_key)))

    def write_outputs(
        self,
        image_id: str,
        item: Mapping[str, Any],
        data: Mapping[str, Any],
        outputs: Mapping[str, torch.Tensor],
        original_saliency: torch.Tensor | None = None,
        raw_image: torch.Tensor | None = None,
    ) -> ImagePrediction:
        """Write the maps, masks and overlays of one image and return its record, without recording it.

        Several threads may call it at once on different images (each gets its own files; without
        ``keep_original``, which keeps the last image in the writer); :meth:`record` then appends the records in
        the run's order. Every network-frame map is mapped back at most once: the fused map (unless
        ``original_saliency`` is given), its thresholded masks (for the mask files) and, in one nearest-neighbour
        pass, the ground truth and the patch-box outlines (for the overlays).

        Args:
            image_id: from :meth:`new_image_id`.
            item: the datalist item (``image``, optional ``label``, ``patient_id``, ``exam_id``, masks).
            data: the preprocessed item: the ``(1, h, w)`` image MetaTensor with its applied operations and,
                when available, the network-frame masks and the ``(1, H, W)`` raw image under ``raw_image_key``.
            outputs: this image's outputs: ``prob_global``/``prob_local`` ``(C,)``, ``saliency`` ``(C, h, w)``,
                optionally ``patch_boxes`` ``(K, 4)``.
            original_saliency: the fused map already mapped back onto the original image (``(C, H, W)``), when
                the caller needs it too; computed here otherwise.
            raw_image: the ``(1, H, W)`` or ``(H, W)`` raw image for the overlays; default
                ``data[raw_image_key]``, else the preprocessed image mapped back (window region only).

        Returns:
            The image's :class:`ImagePrediction`.
        """
        if self.keep_original:
            self.release_original()
        image = data[self.image_key]
        saliency = outputs[GLAMKeys.SALIENCY].detach().float().cpu()
        # uint8 0/1: a quarter of the float masks' bytes to map back; every consumer reads ``mask > 0``.
        mask = threshold_saliency(saliency, self.thresholds, channel_dim=0, dtype=torch.uint8)
        spacing = tuple(image.meta.get(SPACING) or (1.0, 1.0)) if isinstance(image, MetaTensor) else (1.0, 1.0)
        truth = self._ground_truth(data)
        boxes = outputs.get(GLAMKeys.PATCH_BOXES)
        boxes = None if boxes is None else boxes.detach().cpu()
        source = item.get(self.image_key)
        dicom_source = self._dicom_writer is not None and _is_dicom(source)
        wants_original = self.overlays or self.keep_original or dicom_source
        original = original_saliency
        if original is None and (self.formats or wants_original):
            original = self.inverter(saliency, image)
        original_mask = self.inverter(mask, image, nearest=True) if self.formats or dicom_source else None
        if self.formats:
            self._write_maps("saliency", "masks", image_id, original, original_mask, spacing)
        if self.network_frame and self.formats:
            self._write_maps("network_saliency", "network_masks", image_id, saliency, mask, spacing)
            if truth is not None:
                write_class_maps(
                    self.folder("network_ground_truth"), image_id, truth, self.class_names, ("png",), "mask"
                )
        if wants_original:
            raw = raw_image if raw_image is not None else data.get(self.raw_image_key)
            inputs = self._overlay_inputs(image_id, image, original, raw, truth, boxes)
            if self.overlays:
                write_original_overlay(
                    self.folder("overlays") / f"{image_id}.png",
                    inputs.image,
                    inputs.saliency,
                    box_map=inputs.box_map,
                    masks=inputs.masks,
                    max_size=self.overlay_size,
                    layout="panels",
                )
            if self.keep_original:
                self.last_original = inputs
            if dicom_source:
                self._dicom_writer.write(
                    str(source),
                    image_id,
                    masks=original_mask.numpy(),
                    saliency=original.numpy(),
                    overlay=inputs.render(layout="combined", max_size=None),
                )
        del original_mask
        if self.overlays and self.network_frame:
            write_overlay(
                self.folder("network_overlays") / f"{image_id}.png",
                image,
                saliency,
                boxes=boxes,
                masks=truth,
                max_size=self.overlay_size,
            )
        meta = image.meta if isinstance(image, MetaTensor) else {}
        label = item.get("label")
        prediction = ImagePrediction(
            image_id=image_id,
            image=_absolute(item.get(self.image_key)),
            prob_global=tuple(float(v) for v in outputs[GLAMKeys.PROB_GLOBAL].reshape(-1).tolist()),
            prob_local=tuple(float(v) for v in outputs[GLAMKeys.PROB_LOCAL].reshape(-1).tolist()),
            label=None if label is None else tuple(int(v) for v in torch.as_tensor(label).reshape(-1).tolist()),
            laterality=str(meta.get(LATERALITY) or item.get("laterality") or ""),
            view=str(meta.get(VIEW) or item.get("view") or ""),
            patient_id=str(item.get("patient_id") or ""),
            exam_id=str(item.get("exam_id") or ""),
            masks={n: _absolute(item[k]) for n, k in zip(self.class_names, self.mask_keys, strict=True) if item.get(k)},
        )
        return prediction

    def _overlay_inputs(
        self,
        image_id: str,
        image: torch.Tensor,
        original: torch.Tensor,
        raw: torch.Tensor | None,
        truth: torch.Tensor | None,
        boxes: torch.Tensor | None,
    ) -> OverlayInputs:
        """The raw image and the ground truth and patch boxes mapped back (one nearest-neighbour inversion)."""
        shape = tuple(original.shape[1:])
        window_only = raw is None
        if raw is None:
            raw = self._window_image(image)
        else:
            raw = torch.as_tensor(raw.as_tensor() if isinstance(raw, MetaTensor) else raw).detach().cpu()
            raw = raw.reshape(raw.shape[-2:]) if raw.dim() == 3 and raw.shape[0] == 1 else raw
        if tuple(raw.shape) != shape:
            raise ValueError(
                f"the raw image {tuple(raw.shape)} and the saliency mapped back onto it {shape} differ in size"
            )
        # Mapped back as uint8 0/1 (nearest neighbour picks values, so thresholding first changes nothing).
        network_maps = [] if truth is None else [(truth > 0.5).to(torch.uint8)]
        if boxes is not None:
            network_maps.append(box_outline_map(boxes, image.shape[-2:]).to(torch.uint8)[None])
        masks = box_map = None
        if network_maps:
            mapped = self.inverter(torch.cat(network_maps), image, nearest=True) > 0
            masks = None if truth is None else mapped[: truth.shape[0]]
            box_map = None if boxes is None else mapped[-1]
        return OverlayInputs(raw, original, box_map, masks, image_id, window_only)

    def _window_image(self, image: torch.Tensor) -> torch.Tensor:
        """``(H, W)`` raw-frame picture rebuilt from the preprocessed image: the window region, the rest at its
        minimum (black once displayed)."""
        plain = torch.as_tensor(image.as_tensor() if isinstance(image, MetaTensor) else image).detach().float().cpu()
        mapped = self.inverter(torch.cat([plain, torch.ones_like(plain)]), image)
        picture, inside = mapped[0], mapped[1] > 0.5
        if inside.any():
            picture[~inside] = picture[inside].min()
        return picture

    def release_original(self) -> None:
        """Drop :attr:`last_original` and its renderings (:meth:`write` does it before each image)."""
        self.last_original = None
        self._renders.clear()

    def render_original_overlay(
        self, layout: str = "combined", max_size: int | None = None, alpha: float = 0.6
    ) -> np.ndarray:
        """The last written image's overlay in the original geometry, rendered once per image and arguments.

        Needs ``keep_original=True``. With the defaults: one ``(H, W, 3)`` uint8 RGB image at the raw image's full
        resolution, every class blended in its own colour (benign green, malignant red), patch boxes yellow and
        ground-truth contours on top (:func:`~monai_glam.writers.overlays.render_overlay`,
        ``layout="combined"``). The array is shared between calls: copy it before changing it.

        Args:
            layout: ``"combined"`` or ``"panels"``.
            max_size: longest side of the image (of each panel); ``None`` for full resolution.
            alpha: heat-map opacity.

        Raises:
            RuntimeError: no image is kept (``keep_original`` is false, or nothing was written yet).
        """
        if self.last_original is None:
            raise RuntimeError("no original-geometry overlay is kept: build the writer with keep_original=True")
        key = (layout, None if max_size is None else int(max_size), float(alpha))
        if key not in self._renders:
            self._renders[key] = self.last_original.render(layout=layout, max_size=max_size, alpha=alpha)
        return self._renders[key]

    def _write_maps(
        self,
        saliency_folder: str,
        mask_folder: str,
        image_id: str,
        saliency: torch.Tensor,
        mask: torch.Tensor,
        spacing: Sequence[float],
    ) -> None:
        names, formats = self.class_names, self.formats
        write_class_maps(self.folder(saliency_folder), image_id, saliency, names, formats, "saliency", spacing)
        write_class_maps(self.folder(mask_folder), image_id, mask, names, formats, "mask", spacing)

    def merge_shards(self, failures: FailureLog, positions: Sequence[int]) -> None:
        """Gather every ``torch.distributed`` rank's results so that each rank holds the whole run's.

        A collective call: every rank calls it once, after its last :meth:`write`. Afterwards
        :attr:`predictions`, ``failures`` and :attr:`dicom_skipped` hold every rank's records in datalist order,
        each datalist position once (a position written by two ranks, e.g. an item a skipping dataset loaded in
        place of a bad one, counts once), so rank 0's :meth:`finalize` writes what a single-process run writes.

        Args:
            failures: this rank's failures; replaced in place by the merged list.
            positions: the datalist position of each of this rank's :attr:`predictions`, in the same order.

        Raises:
            ValueError: ``positions`` and :attr:`predictions` differ in length.
        """
        if len(positions) != len(self.predictions):
            raise ValueError(f"{len(positions)} positions for {len(self.predictions)} predictions")
        local = (list(zip(positions, self.predictions, strict=True)), list(failures), list(self.dicom_skipped))
        shards: list[Any] = [None] * torch.distributed.get_world_size()
        torch.distributed.all_gather_object(shards, local)
        predictions: dict[int, ImagePrediction] = {}
        merged: dict[int, Any] = {}
        for shard_predictions, shard_failures, _ in shards:  # rank order: the first record of a position is kept
            for position, prediction in shard_predictions:
                predictions.setdefault(position, prediction)
            for failure in shard_failures:
                merged.setdefault(failure.index, failure)
        self.predictions = [predictions[position] for position in sorted(predictions)]
        failures.failures = [merged[index] for index in sorted(merged)]
        self.dicom_skipped = list(dict.fromkeys(source for shard in shards for source in shard[2]))

    def table_paths(self) -> dict[str, Path]:
        """Where :meth:`finalize` writes the tables, ``failures.json`` and ``run.json`` (without writing)."""
        names = {**TABLE_FILES, "failures": FAILURES_FILE, "run": RUN_FILE}
        return {key: self.output_dir / name for key, name in names.items()}

    def finalize(self, failures: FailureLog, settings: Mapping[str, Any] | None = None) -> dict[str, Path]:
        """Write the prediction tables, ``failures.json`` and ``run.json`` (settings and counts).

        Returns:
            ``{"images": ..., "breasts": ..., "exams": ..., "failures": ..., "run": ...}`` paths.
        """
        paths = write_prediction_tables(self.predictions, self.output_dir, self.class_names)
        paths["failures"] = failures.write(self.output_dir / FAILURES_FILE)
        run = {
            **dict(settings or {}),
            "class_names": list(self.class_names),
            "thresholds": list(self.thresholds),
            "formats": list(self.formats),
            "network_frame": self.network_frame,
            "dicom": self.dicom,
            "dicom_skipped": list(self.dicom_skipped),
            "num_images": len(self.predictions),
            "num_failed": len(failures),
        }
        paths["run"] = self.output_dir / RUN_FILE
        atomic_write_text(paths["run"], json.dumps(run, indent=2, default=str) + "\n")
        return paths
