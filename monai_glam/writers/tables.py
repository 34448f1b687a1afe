"""Prediction tables: one CSV row per image, and breast-level and exam-level aggregates (mean over views).

``predictions.csv`` columns: ``image_id, image, patient_id, exam_id, breast_id, laterality, view``, then per class
``label_<class>`` (empty when unknown), ``prob_global_<class>`` (global module, ŷ_g), ``prob_local_<class>``
(local module, ŷ_l), and ``mask_<class>`` (the ground-truth mask path, empty when absent). ``breasts.csv`` and
``exams.csv`` hold the mean scores over the views of each breast (exam and laterality) and of each exam; their
label is the largest label of their images.
"""

from __future__ import annotations

import csv
import io
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from monai_glam.utils.atomic import atomic_write_text
from monai_glam.utils.enums import CLASS_NAMES, GLAMKeys

__all__ = [
    "CLASS_NAMES",
    "TABLE_FILES",
    "ImagePrediction",
    "aggregate_predictions",
    "prediction_columns",
    "read_predictions",
    "write_prediction_tables",
]

#: The tables :func:`write_prediction_tables` writes, by key: one row per image, per breast and per exam.
TABLE_FILES: dict[str, str] = {"images": "predictions.csv", "breasts": "breasts.csv", "exams": "exams.csv"}

_ID_COLUMNS = ("image_id", "image", "patient_id", "exam_id", "breast_id", "laterality", "view")
_SCORE_SETS = (GLAMKeys.PROB_GLOBAL.value, GLAMKeys.PROB_LOCAL.value)


@dataclass
class ImagePrediction:
    """The image-level outputs of one image and what is known about it.

    Attributes:
        image_id: unique name of the image in this run (output files are named after it).
        image: source path.
        prob_global: per-class score of the global module.
        prob_local: per-class score of the local module.
        label: per-class 0/1 labels, ``None`` when unknown.
        laterality: ``"L"``, ``"R"`` or ``""``.
        view: ``"CC"``, ``"MLO"``, ... or ``""``.
        patient_id: patient identifier or ``""``.
        exam_id: exam identifier or ``""``.
        masks: ground-truth mask path per class name (only the classes that have one).
    """

    image_id: str
    image: str
    prob_global: tuple[float, ...]
    prob_local: tuple[float, ...]
    label: tuple[int, ...] | None = None
    laterality: str = ""
    view: str = ""
    patient_id: str = ""
    exam_id: str = ""
    masks: dict[str, str] = field(default_factory=dict)

    @property
    def exam_key(self) -> str:
        """The exam this image belongs to: ``exam_id``, else ``patient_id``, else the image itself."""
        return self.exam_id or self.patient_id or self.image_id

    @property
    def breast_id(self) -> str:
        """``<exam>_<laterality>``; the image id when the exam or laterality is unknown."""
        if (self.exam_id or self.patient_id) and self.laterality:
            return f"{self.exam_key}_{self.laterality}"
        return self.image_id


def prediction_columns(class_names: Sequence[str] = CLASS_NAMES) -> list[str]:
    """Column names of ``predictions.csv``."""
    columns = list(_ID_COLUMNS)
    columns += [f"label_{name}" for name in class_names]
    columns += [f"{score}_{name}" for score in _SCORE_SETS for name in class_names]
    columns += [f"mask_{name}" for name in class_names]
    return columns


def _number(value: float) -> str:
    return f"{float(value):.8g}"


def _label_cells(label: Sequence[int] | None, class_names: Sequence[str]) -> dict[str, str]:
    return {f"label_{name}": ("" if label is None else str(int(label[c]))) for c, name in enumerate(class_names)}


def _score_cells(global_scores: Sequence[float], local_scores: Sequence[float], class_names: Sequence[str]):
    cells = {f"prob_global_{name}": _number(global_scores[c]) for c, name in enumerate(class_names)}
    cells.update({f"prob_local_{name}": _number(local_scores[c]) for c, name in enumerate(class_names)})
    return cells


def _csv_text(columns: Sequence[str], rows: Sequence[Mapping[str, str]]) -> str:
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=list(columns), lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def aggregate_predictions(
    predictions: Sequence[ImagePrediction], level: str = "breast", class_names: Sequence[str] = CLASS_NAMES
) -> list[dict[str, str]]:
    """Mean scores over the views of each breast or exam, as CSV rows (groups in order of first appearance).

    Args:
        predictions: per-image predictions.
        level: ``"breast"`` (exam and laterality) or ``"exam"``.
        class_names: class names in channel order.

    Returns:
        Rows with ``<level>_id``, ``patient_id``, ``exam_id``, ``num_views``, ``views``, ``label_<class>`` (the
        largest label of the group, empty when any is unknown) and the mean ``prob_global_<class>`` /
        ``prob_local_<class>``.

    Raises:
        ValueError: an unknown ``level``.
    """
    if level not in ("breast", "exam"):
        raise ValueError(f"level must be 'breast' or 'exam', got {level!r}")
    groups: dict[str, list[ImagePrediction]] = {}
    for prediction in predictions:
        key = prediction.breast_id if level == "breast" else prediction.exam_key
        groups.setdefault(key, []).append(prediction)
    rows = []
    for key, members in groups.items():
        labels = [m.label for m in members]
        label = None if any(lab is None for lab in labels) else np.max(np.asarray(labels), axis=0).tolist()
        views = [f"{m.laterality}-{m.view}".strip("-") if level == "exam" else m.view for m in members]
        row = {
            f"{level}_id": key,
            "patient_id": members[0].patient_id,
            "exam_id": members[0].exam_id,
            "num_views": str(len(members)),
            "views": ";".join(v or "?" for v in views),
        }
        row.update(_label_cells(label, class_names))
        mean_global = np.mean([m.prob_global for m in members], axis=0)
        mean_local = np.mean([m.prob_local for m in members], axis=0)
        row.update(_score_cells(mean_global, mean_local, class_names))
        rows.append(row)
    return rows


def write_prediction_tables(
    predictions: Sequence[ImagePrediction], output_dir: str | os.PathLike[str], class_names: Sequence[str] = CLASS_NAMES
) -> dict[str, Path]:
    """Write ``predictions.csv``, ``breasts.csv`` and ``exams.csv`` into ``output_dir``, each atomically.

    Returns:
        ``{"images": path, "breasts": path, "exams": path}``.
    """
    folder = Path(output_dir)
    image_rows = []
    for p in predictions:
        row = {column: str(getattr(p, column)) for column in _ID_COLUMNS}
        row.update(_label_cells(p.label, class_names))
        row.update(_score_cells(p.prob_global, p.prob_local, class_names))
        row.update({f"mask_{name}": p.masks.get(name, "") for name in class_names})
        image_rows.append(row)
    paths = {key: folder / name for key, name in TABLE_FILES.items()}
    atomic_write_text(paths["images"], _csv_text(prediction_columns(class_names), image_rows))
    for level, name in (("breast", "breasts"), ("exam", "exams")):
        rows = aggregate_predictions(predictions, level, class_names)
        columns = list(rows[0]) if rows else [f"{level}_id"]
        atomic_write_text(paths[name], _csv_text(columns, rows))
    return paths


def read_predictions(path: str | os.PathLike[str]) -> tuple[list[ImagePrediction], tuple[str, ...]]:
    """Read a ``predictions.csv`` written by :func:`write_prediction_tables`.

    Returns:
        ``(predictions, class_names)``; class names come from the ``prob_global_<class>`` columns.

    Raises:
        FileNotFoundError: no such file.
        ValueError: missing columns or a malformed value (the message names the file and line).
    """
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such predictions file")
    with open(source, newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        columns = list(reader.fieldnames or ())
        names = tuple(c[len("prob_global_") :] for c in columns if c.startswith("prob_global_"))
        required = prediction_columns(names) if names else ["prob_global_<class>"]
        missing = [c for c in required if c not in columns]
        if missing:
            raise ValueError(f"{source}: not a predictions table, it has no column(s) {missing}")
        predictions = []
        for row in reader:
            where = f"{source} line {reader.line_num}"
            try:
                global_scores = tuple(float(row[f"prob_global_{n}"]) for n in names)
                local_scores = tuple(float(row[f"prob_local_{n}"]) for n in names)
                labels = [row[f"label_{n}"] for n in names]
                label = None if any(v == "" for v in labels) else tuple(int(float(v)) for v in labels)
            except (TypeError, ValueError) as err:
                raise ValueError(f"{where}: {err}") from None
            predictions.append(
                ImagePrediction(
                    image_id=row["image_id"],
                    image=row["image"],
                    prob_global=global_scores,
                    prob_local=local_scores,
                    label=label,
                    laterality=row["laterality"],
                    view=row["view"],
                    patient_id=row["patient_id"],
                    exam_id=row["exam_id"],
                    masks={n: row[f"mask_{n}"] for n in names if row[f"mask_{n}"]},
                )
            )
    return predictions, names
