"""Write everything GLAM predicts for one image, and the run's tables, failures and settings at the end.

Output layout under ``output_dir``::

    predictions.csv, breasts.csv, exams.csv      image scores and their breast/exam means (see tables.py)
    saliency/<id>_<class>.nii.gz | .png          fused saliency map in the original image geometry
    masks/<id>_<class>.nii.gz | .png             thresholded map in the original image geometry
    overlays/<id>.png                            network input, patch boxes, heat maps, ground-truth contours
    network_frame/{saliency,masks,ground_truth}/ the same in the network frame (optional)
    failures.json                                items that were skipped, and why
    run.json                                     the settings of the run
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

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
from monai_glam.writers.overlays import write_overlay
from monai_glam.writers.tables import ImagePrediction, write_prediction_tables

__all__ = [
    "OUTPUT_FOLDERS",
    "PREDICTION_OUTPUT_KEYS",
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
}


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


def _absolute(path: Any) -> str:
    """An absolute path, so the tables stay usable from another working folder."""
    return str(Path(path).absolute()) if isinstance(path, (str, os.PathLike)) and str(path) else ""


class PredictionWriter:
    """Writes the outputs of each image as it is predicted and collects its :class:`ImagePrediction`.

    Args:
        output_dir: the run's folder (created).
        inverter: maps network-frame outputs back to the original geometry.
        thresholds: per-class thresholds of the fused map for the masks.
        class_names: class names in channel order; mask keys are ``mask_<class>``.
        formats: map formats (``"nifti"``, ``"png"``); empty writes no maps or masks.
        network_frame: also write maps, masks and ground-truth masks in the network frame.
        overlays: write one overlay PNG per image.
        overlay_size: longest side of each overlay panel, in pixels.
        image_key: key of the preprocessed image.
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
        self.predictions: list[ImagePrediction] = []
        self._ids = UniqueImageIds()

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
    ) -> ImagePrediction:
        """Write the maps, masks and overlay of one image and record its scores.

        Args:
            image_id: from :meth:`new_image_id`.
            item: the datalist item (``image``, optional ``label``, ``patient_id``, ``exam_id``, masks).
            data: the preprocessed item: the ``(1, h, w)`` image MetaTensor with its applied operations and,
                when available, the network-frame masks.
            outputs: this image's outputs: ``prob_global``/``prob_local`` ``(C,)``, ``saliency`` ``(C, h, w)``,
                optionally ``patch_boxes`` ``(K, 4)``.
            original_saliency: the fused map already mapped back onto the original image (``(C, H, W)``), when
                the caller needs it too; computed here otherwise.

        Returns:
            The image's :class:`ImagePrediction` (also appended to :attr:`predictions`).
        """
        image = data[self.image_key]
        saliency = outputs[GLAMKeys.SALIENCY].detach().float().cpu()
        mask = threshold_saliency(saliency, self.thresholds, channel_dim=0)
        spacing = tuple(image.meta.get(SPACING) or (1.0, 1.0)) if isinstance(image, MetaTensor) else (1.0, 1.0)
        if self.formats:
            original = self.inverter(saliency, image) if original_saliency is None else original_saliency
            original_mask = self.inverter(mask, image, nearest=True)
            self._write_maps("saliency", "masks", image_id, original, original_mask, spacing)
        truth = self._ground_truth(data)
        if self.network_frame and self.formats:
            self._write_maps("network_saliency", "network_masks", image_id, saliency, mask, spacing)
            if truth is not None:
                write_class_maps(
                    self.folder("network_ground_truth"), image_id, truth, self.class_names, ("png",), "mask"
                )
        if self.overlays:
            boxes = outputs.get(GLAMKeys.PATCH_BOXES)
            write_overlay(
                self.folder("overlays") / f"{image_id}.png",
                image,
                saliency,
                boxes=None if boxes is None else boxes.detach().cpu(),
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
        self.predictions.append(prediction)
        return prediction

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

    def finalize(self, failures: FailureLog, settings: Mapping[str, Any] | None = None) -> dict[str, Path]:
        """Write the prediction tables, ``failures.json`` and ``run.json`` (settings and counts).

        Returns:
            ``{"images": ..., "breasts": ..., "exams": ..., "failures": ..., "run": ...}`` paths.
        """
        paths = write_prediction_tables(self.predictions, self.output_dir, self.class_names)
        paths["failures"] = failures.write(self.output_dir / "failures.json")
        run = {
            **dict(settings or {}),
            "class_names": list(self.class_names),
            "thresholds": list(self.thresholds),
            "formats": list(self.formats),
            "network_frame": self.network_frame,
            "num_images": len(self.predictions),
            "num_failed": len(failures),
        }
        paths["run"] = self.output_dir / "run.json"
        atomic_write_text(paths["run"], json.dumps(run, indent=2, default=str) + "\n")
        return paths
