"""What an annotation server returns for one mammogram: a labelmap, polygons, the result JSON and label files.

No MONAI Label import: these functions take numpy arrays and plain values, so they are tested in the main
environment and usable by any server.

- :func:`fuse_labelmap`: the per-class masks of the fused map (``saliency[c] >= thresholds[c]``, as
  :func:`~monai_glam.inferers.threshold_saliency`) painted into one uint8 labelmap, ``0`` background and ``c + 1``
  for class ``c`` (benign 1, malignant 2). Classes are painted in channel order, so where several classes exceed
  their thresholds the later one wins: **malignant wins over benign**.
- :func:`labelmap_polygons`: the outer contour of every region of each class of the labelmap
  (:func:`skimage.measure.find_contours`), as CVAT's polygon elements ``{"label": name, "contours": [[[x, y],
  ...], ...]}`` in the original image's pixel coordinates (``x`` = column, ``y`` = row).
- :func:`segmentation_result` / :func:`classification_result`: the JSON of a segmentation and of a
  classification answer; :func:`strict_json_text` writes any of them as strict JSON (NaN and infinities are
  ``null``).
- :func:`write_label_file`: a labelmap or map as PNG, NIfTI or NRRD, chosen by the file name.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.utils import convert_to_numpy, optional_import

from monai_glam.data.image_writer import write_png
from monai_glam.inferers import threshold_saliency
from monai_glam.metrics.utils import json_safe
from monai_glam.utils.enums import CLASS_NAMES
from monai_glam.writers.maps import map_to_uint16, write_nifti

__all__ = [
    "GLAM_OUTPUTS",
    "LABEL_EXTENSIONS",
    "classification_result",
    "fuse_labelmap",
    "label_values",
    "labelmap_polygons",
    "saliency_file_array",
    "saliency_output_name",
    "scores_json",
    "segmentation_result",
    "strict_json_text",
    "write_label_file",
]

#: File name endings :func:`write_label_file` writes (the first is the default of a server).
LABEL_EXTENSIONS: tuple[str, ...] = (".png", ".nrrd", ".nii.gz", ".nii")
#: What a segmentation request may ask for: the labelmap, or one class's fused map.
GLAM_OUTPUTS: tuple[str, ...] = ("labelmap", *(f"saliency_{name}" for name in CLASS_NAMES))
#: Largest number of classes a uint8 labelmap can hold besides the background.
_MAX_CLASSES = 255


def label_values(class_names: Sequence[str] = CLASS_NAMES) -> dict[str, int]:
    """The labelmap value of each class: ``{"benign": 1, "malignant": 2}`` (0 is the background)."""
    return {str(name): index + 1 for index, name in enumerate(class_names)}


def saliency_output_name(class_name: str) -> str:
    """The ``glam_output`` value that asks for a class's fused map: ``saliency_<class>``."""
    return f"saliency_{class_name}"


def _as_maps(saliency: np.ndarray | torch.Tensor) -> np.ndarray:
    maps = np.asarray(convert_to_numpy(saliency))
    if maps.ndim != 3 or maps.shape[0] < 1 or maps.shape[0] > _MAX_CLASSES:
        raise ValueError(f"saliency must be (C, H, W) with 1 <= C <= {_MAX_CLASSES}, got shape {maps.shape}")
    return maps


def fuse_labelmap(saliency: np.ndarray | torch.Tensor, thresholds: float | Sequence[float]) -> np.ndarray:
    """One uint8 labelmap from per-class maps: 0 background, ``c + 1`` where ``saliency[c] >= thresholds[c]``.

    Classes are painted in channel order, so a later class wins where several exceed their thresholds (with
    GLAM's channels, malignant (2) wins over benign (1)): a reader should see the more serious finding.

    Args:
        saliency: ``(C, H, W)`` fused maps in [0, 1] (any geometry; the original image's for a server).
        thresholds: one threshold for every class, or one per class.

    Returns:
        ``(H, W)`` uint8 labelmap.

    Raises:
        ValueError: not a ``(C, H, W)`` map, or thresholds that do not match the classes.
    """
    maps = _as_maps(saliency)
    masks = np.asarray(threshold_saliency(maps, thresholds, channel_dim=0, dtype=bool))
    labelmap = np.zeros(maps.shape[1:], dtype=np.uint8)
    for channel, mask in enumerate(masks):
        labelmap[mask] = channel + 1
    return labelmap


def _signed_area(contour: np.ndarray) -> float:
    """Shoelace area of a closed ``(K, 2)`` (row, col) contour; its sign is the winding direction."""
    rows, cols = contour[:, 0], contour[:, 1]
    return 0.5 * float(np.dot(rows, np.roll(cols, -1)) - np.dot(cols, np.roll(rows, -1)))


def labelmap_polygons(
    labelmap: np.ndarray | torch.Tensor,
    class_names: Sequence[str] = CLASS_NAMES,
    tolerance: float = 1.0,
    decimals: int = 1,
) -> list[dict[str, Any]]:
    """The outer contours of each class's regions of a labelmap, as CVAT polygon elements.

    Each class's region (``labelmap == c + 1``) is padded by one background pixel, so regions touching the
    border get closed contours, and traced at level 0.5 with :func:`skimage.measure.find_contours`
    (8-connected regions, the lesion definition of the FROC). Holes are left out: CVAT's polygons cannot have
    them, so a ring-shaped region comes back as its outer outline. Each contour is simplified with
    :func:`skimage.measure.approximate_polygon` (``tolerance`` pixels; 0 keeps every point; a region too small to
    simplify keeps its exact outline) and given without its repeated closing point.

    Args:
        labelmap: ``(H, W)`` labelmap (0 background, ``c + 1`` class ``c``).
        class_names: class names in channel order.
        tolerance: largest distance in pixels between a contour and its simplified polygon.
        decimals: coordinates are rounded to this many decimals (the contours lie on half pixels).

    Returns:
        ``[{"label": name, "contours": [[[x, y], ...], ...]}, ...]`` for the classes that have a region, in
        channel order; ``x`` is the column and ``y`` the row in the labelmap's pixel coordinates.

    Raises:
        ValueError: not a 2-D labelmap, or a negative tolerance.
    """
    from skimage.measure import approximate_polygon, find_contours

    values = np.asarray(convert_to_numpy(labelmap))
    if values.ndim != 2:
        raise ValueError(f"labelmap must be (H, W), got shape {values.shape}")
    if tolerance < 0:
        raise ValueError(f"tolerance must be >= 0 pixels, got {tolerance}")
    elements = []
    for value, name in enumerate(class_names, start=1):
        region = np.pad(values == value, 1).astype(np.float32)
        if not region.any():
            continue
        polygons = []
        # positive_orientation="high": outer boundaries wind one way around the region and holes the other way.
        for contour in find_contours(region, 0.5, fully_connected="high", positive_orientation="high"):
            if len(contour) < 4 or _signed_area(contour) <= 0:  # a hole, or a degenerate trace
                continue
            if tolerance > 0:
                simplified = approximate_polygon(contour, tolerance=tolerance)
                # A region a few pixels wide would collapse to a line: keep its exact outline instead.
                contour = simplified if len(simplified) >= 4 else contour
            points = contour[:-1] - 1.0  # drop the repeated closing point; undo the padding
            polygons.append([[round(float(col), decimals), round(float(row), decimals)] for row, col in points])
        if polygons:
            elements.append({"label": str(name), "contours": polygons})
    return elements


def _per_class(values: np.ndarray | torch.Tensor | Sequence[float], class_names: Sequence[str]) -> dict[str, Any]:
    array = np.asarray(convert_to_numpy(values), dtype=np.float64).reshape(-1)
    if array.size != len(class_names):
        raise ValueError(f"expected {len(class_names)} values (one per class {list(class_names)}), got {array.size}")
    return {str(name): float(value) for name, value in zip(class_names, array, strict=True)}


def scores_json(
    prob_global: np.ndarray | torch.Tensor | Sequence[float],
    prob_local: np.ndarray | torch.Tensor | Sequence[float] | None,
    class_names: Sequence[str] = CLASS_NAMES,
) -> dict[str, dict[str, float | None]]:
    """GLAM's image scores by module and class: ``{"prob_global": {"benign": ..}, "prob_local": {...}}``.

    Args:
        prob_global: ``(C,)`` scores of the global module, ŷ_g.
        prob_local: ``(C,)`` scores of the local module, ŷ_l (``None`` leaves the entry out).
        class_names: class names in channel order.
    """
    scores = {"prob_global": _per_class(prob_global, class_names)}
    if prob_local is not None:
        scores["prob_local"] = _per_class(prob_local, class_names)
    return json_safe(scores)


def segmentation_result(
    prob_global: np.ndarray | torch.Tensor | Sequence[float],
    prob_local: np.ndarray | torch.Tensor | Sequence[float] | None,
    thresholds: Sequence[float],
    polygons: Sequence[Mapping[str, Any]],
    class_names: Sequence[str] = CLASS_NAMES,
    glam_output: str = "labelmap",
    image_size: Sequence[int] | None = None,
) -> dict[str, Any]:
    """The JSON of a segmentation answer (strict: undefined numbers are ``null``).

    It deliberately has no ``prediction`` entry: MONAI Label's CVAT function shows only a whole-image rectangle
    when it finds one, and the polygons are the point of this answer (ask the classification model for tags).

    Args:
        prob_global: ``(C,)`` global-module scores.
        prob_local: ``(C,)`` local-module scores, or ``None``.
        thresholds: the per-class thresholds the labelmap and the polygons used.
        polygons: :func:`labelmap_polygons` elements.
        class_names: class names in channel order.
        glam_output: what the label file holds (``labelmap`` or ``saliency_<class>``).
        image_size: ``(H, W)`` of the image (and of the label file).

    Returns:
        ``{"scores", "thresholds", "label_names", "annotations", "glam_output"[, "image_size"]}``.
    """
    result: dict[str, Any] = {
        "scores": scores_json(prob_global, prob_local, class_names),
        "thresholds": _per_class(thresholds, class_names),
        "label_names": label_values(class_names),
        "annotations": [{"annotation": {"elements": [dict(element) for element in polygons]}}],
        "glam_output": str(glam_output),
    }
    if image_size is not None:
        result["image_size"] = [int(v) for v in image_size]
    return json_safe(result)


def classification_result(
    prob_global: np.ndarray | torch.Tensor | Sequence[float],
    prob_local: np.ndarray | torch.Tensor | Sequence[float] | None = None,
    class_names: Sequence[str] = CLASS_NAMES,
) -> dict[str, Any]:
    """The JSON of a classification answer: MONAI Label's ``prediction`` list, with the global module's scores.

    Returns:
        ``{"prediction": [{"idx": 0, "label": "benign", "score": ŷ_g[0]}, ...], "scores": {...}}``.
    """
    global_scores = _per_class(prob_global, class_names)
    prediction = [
        {"idx": index, "label": name, "score": global_scores[name]} for index, name in enumerate(global_scores)
    ]
    return json_safe({"prediction": prediction, "scores": scores_json(prob_global, prob_local, class_names)})


def strict_json_text(value: Any, indent: int | None = None) -> str:
    """``value`` as strict JSON text: arrays become lists, NaN and infinities ``null``.

    Raises:
        TypeError: a value JSON cannot represent (other than numbers and arrays).
    """
    return json.dumps(json_safe(value), indent=indent, allow_nan=False)


def _label_extension(path: Path) -> str:
    name = path.name.lower()
    for extension in sorted(LABEL_EXTENSIONS, key=len, reverse=True):  # ``.nii.gz`` before ``.nii``
        if name.endswith(extension):
            return extension
    raise ValueError(f"a label file must end in one of {list(LABEL_EXTENSIONS)}, got {path.name!r}")


def write_label_file(
    path: str | os.PathLike[str],
    array: np.ndarray | torch.Tensor,
    spacing: Sequence[float] = (1.0, 1.0),
) -> Path:
    """Write a 2-D labelmap or map as PNG, NIfTI or NRRD, chosen by the name's ending.

    - ``.png``: 8-bit (uint8) or 16-bit (uint16) grayscale, rows as rows; no spacing.
    - ``.nii`` / ``.nii.gz``: :func:`~monai_glam.writers.write_nifti`, array axis 0 = rows (as ``load_mammogram``
      reads NIfTI), voxel size = ``spacing``.
    - ``.nrrd``: raw-encoded 2-D NRRD with the columns as the first (fastest) axis, as ITK, 3D Slicer and
      MONAI Label's writer lay out 2-D images, and ``spacings`` = (column, row) spacing. Needs ``pynrrd``.

    A float map is written as float32 (NIfTI, NRRD); PNG needs uint8 or uint16 (see
    :func:`~monai_glam.writers.map_to_uint16`).

    Args:
        path: the file to write.
        array: ``(H, W)`` values.
        spacing: (row, col) pixel size in mm.

    Returns:
        The path written.

    Raises:
        ValueError: an unknown ending, not a 2-D array, or a dtype PNG cannot store.
        ImportError: ``.nrrd`` without ``pynrrd``.
    """
    target = Path(path)
    extension = _label_extension(target)
    values = np.asarray(convert_to_numpy(array))
    if values.ndim != 2:
        raise ValueError(f"a label file holds a 2-D (H, W) array, got shape {values.shape}")
    if values.dtype.kind == "f":
        values = values.astype(np.float32)
    if extension == ".png":
        write_png(target, values)
    elif extension in (".nii", ".nii.gz"):
        write_nifti(target, values, spacing)
    else:
        nrrd, has_nrrd = optional_import("nrrd")
        if not has_nrrd:
            raise ImportError("writing NRRD label files needs pynrrd: pip install pynrrd")
        header = {"spacings": [float(spacing[1]), float(spacing[0])]}
        # index_order="C": the (H, W) array is written with the column index varying fastest (NRRD axis 0 = x).
        nrrd.write(str(target), np.ascontiguousarray(values), header=header, index_order="C")
    return target


def saliency_file_array(saliency: np.ndarray | torch.Tensor, extension: str) -> np.ndarray:
    """One class's fused map as a label file stores it: uint16 ``round(65535 * s)`` for PNG (as
    :func:`~monai_glam.writers.write_class_maps` does), float32 for NIfTI and NRRD."""
    if extension == ".png":
        return map_to_uint16(saliency)
    return np.asarray(convert_to_numpy(saliency), dtype=np.float32)
