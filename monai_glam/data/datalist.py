"""Datalists in MONAI's JSON convention, converters from CSV and from the published exam lists, and splitting.

A datalist is a JSON object with ``training``, ``validation`` and ``test`` lists of items::

    {"training": [{"image": "images/0_L-CC.png", "label": [0, 1],
                   "mask_benign": "masks/0_L-CC_benign.png", "mask_malignant": "masks/0_L-CC_malignant.png",
                   "laterality": "L", "view": "CC", "patient_id": "p0", "exam_id": "e0"}, ...],
     "validation": [...], "test": [...]}

``label`` is the image-level ``[benign, malignant]`` pair (0/1 each). Paths are stored relative to the JSON
file, so :func:`monai.data.load_decathlon_datalist` reads them back as absolute paths; :func:`read_datalist`
resolves them the same way but reads the file as UTF-8 whatever the locale.
"""

from __future__ import annotations

import csv
import json
import os
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from monai_glam.data.meta import normalize_laterality, normalize_view, parse_horizontal_flip
from monai_glam.data.safe_pickle import restricted_load
from monai_glam.utils.atomic import atomic_write_text
from monai_glam.utils.json_files import read_json

__all__ = [
    "DATALIST_SPLITS",
    "PATH_KEYS",
    "datalist_from_csv",
    "datalist_from_exam_list",
    "read_datalist",
    "split_by_patient",
    "validate_item",
    "write_datalist",
]

DATALIST_SPLITS = ("training", "validation", "test")
# Item fields that hold file paths (stored relative to the datalist file).
PATH_KEYS = ("image", "mask_benign", "mask_malignant", "image_dicom")
_EXAM_LIST_VIEWS = ("L-CC", "R-CC", "L-MLO", "R-MLO")


def _parse_label_value(value: Any, what: str) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{what} must be 0 or 1, got {value!r}") from None
    if number not in (0.0, 1.0):
        raise ValueError(f"{what} must be 0 or 1, got {value!r}")
    return int(number)


def _type_name(value: Any) -> str:
    """The JSON name of ``value``'s type (``object``, ``array``, ``string``, ``number``, ...) for messages."""
    if isinstance(value, Mapping):
        return "an object"
    if isinstance(value, (list, tuple)):
        return "an array"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if value is None:
        return "null"
    return type(value).__name__


def _join_path(base_dir: Path, value: Any, only_existing: bool) -> Any:
    # What MONAI's load_decathlon_datalist does: paths are relative to the datalist's folder; fields that are
    # not known to be paths are joined only when the result exists.
    if isinstance(value, list):
        if not all(isinstance(part, str) for part in value):
            return value
        return [_join_path(base_dir, part, only_existing) for part in value]
    if not isinstance(value, str):
        return value
    joined = os.path.normpath(os.path.join(base_dir, value))
    if only_existing and not os.path.exists(joined):
        return value
    return joined


def validate_item(item: Mapping[str, Any], where: str = "item", require_label: bool = True) -> dict[str, Any]:
    """Check one datalist item and return a normalized copy.

    Args:
        item: a dict with at least ``image`` and (when ``require_label``) ``label`` (``[benign, malignant]``).
        where: how to name the item in errors (e.g. ``"datalist.json training[3]"``).
        require_label: reject items without a label (training, evaluation); inference passes ``False``, and
            a label that is present is still checked.

    Raises:
        ValueError: no image, a missing (when required) or malformed label, or a bad laterality.
    """
    if not isinstance(item, Mapping):
        raise ValueError(f"{where}: expected an object, got {_type_name(item)}")
    if item.get("image") in (None, ""):
        raise ValueError(f"{where}: has no 'image'")
    for key in PATH_KEYS:
        value = item.get(key)
        if value not in (None, "") and not isinstance(value, (str, os.PathLike)):
            raise ValueError(f"{where}: {key!r} must be a file path (a string), got {_type_name(value)} {value!r}")
    normalized = dict(item)
    label = item.get("label")
    if label is None:
        if require_label:
            raise ValueError(f"{where} ({item['image']}): has no 'label' [benign, malignant]")
        normalized.pop("label", None)
    elif isinstance(label, (str, bytes)) or not isinstance(label, Sequence) or len(label) != 2:
        raise ValueError(f"{where} ({item['image']}): 'label' must be [benign, malignant], got {label!r}")
    else:
        normalized["label"] = [_parse_label_value(v, f"{where} label") for v in label]
    if "laterality" in item and item["laterality"] not in (None, ""):
        side = normalize_laterality(item["laterality"])
        if not side:
            raise ValueError(f"{where} ({item['image']}): laterality must be L or R, got {item['laterality']!r}")
        normalized["laterality"] = side
    if "view" in item and item["view"] not in (None, ""):
        normalized["view"] = normalize_view(item["view"])
    return normalized


def _relative_paths(item: Mapping[str, Any], folder: Path) -> dict[str, Any]:
    out = dict(item)
    for key in PATH_KEYS:
        value = out.get(key)
        if value:
            out[key] = Path(os.path.relpath(Path(value).absolute(), folder.absolute())).as_posix()
    return out


def write_datalist(
    path: str | os.PathLike[str],
    splits: Mapping[str, Iterable[Mapping[str, Any]]],
    name: str = "mammography",
    description: str = "",
) -> Path:
    """Write a datalist JSON atomically, with paths relative to its folder.

    Args:
        path: the JSON file to write.
        splits: ``{"training": [...], "validation": [...], "test": [...]}`` (any subset).
        name: dataset name stored in the file.
        description: free text stored in the file.

    Returns:
        The path written.

    Raises:
        ValueError: an unknown split name or an invalid item (the message names it).
    """
    target = Path(path)
    document: dict[str, Any] = {
        "name": name,
        "description": description,
        "labels": {"0": "benign", "1": "malignant"},
    }
    for split, items in splits.items():
        if split not in DATALIST_SPLITS:
            raise ValueError(f"unknown split {split!r}; expected one of {DATALIST_SPLITS}")
        checked = [validate_item(item, f"{split}[{i}]") for i, item in enumerate(items)]
        if checked:  # MONAI's load_decathlon_datalist fails on an empty "test" list: leave empty splits out
            document[split] = [_relative_paths(item, target.parent) for item in checked]
    atomic_write_text(target, json.dumps(document, indent=2) + "\n")
    return target


def read_datalist(
    path: str | os.PathLike[str],
    split: str = "training",
    require_label: bool = True,
    allow_duplicates: bool = False,
) -> list[dict[str, Any]]:
    """Read one split of a datalist (paths resolved like MONAI's ``load_decathlon_datalist``) and validate it.

    The file is read as UTF-8 whatever the locale. ``image``, ``mask_*`` and ``image_dicom`` are resolved
    against the datalist's folder; other string fields only when the resolved path exists (as MONAI does).
    A ``test`` split may also be a list of image paths. ``require_label=False`` accepts unlabelled items
    (inference); see :func:`validate_item`.

    A ``.csv`` file is read as a table in :func:`datalist_from_csv`'s format (``utf-8-sig``, so Excel's "CSV
    UTF-8" works) with a ``split`` column (``training``, ``validation`` or ``test``) saying which split each
    row belongs to; the label columns may be left out when ``require_label`` is ``False``.

    Args:
        path: the datalist JSON file, or a CSV table with a ``split`` column.
        split: ``"training"``, ``"validation"`` or ``"test"``.
        require_label: reject items without a label.
        allow_duplicates: accept the same image listed twice in the split.

    Returns:
        The items with absolute paths; ``[]`` when the file has no such split (:func:`write_datalist` leaves
        empty splits out) or it is ``null``.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not a known split, not UTF-8 or not JSON, a split that is not a list, an invalid item (the
            message names the file, split and index, or the CSV line), or an image listed twice (the message names
            the file, split and path).
    """
    source = Path(path)
    if split not in DATALIST_SPLITS:
        raise ValueError(f"unknown split {split!r} of {source}; expected one of {DATALIST_SPLITS}")
    if source.suffix.lower() == ".csv":
        return _read_csv_split(source, split, require_label, allow_duplicates)
    document = read_json(source, "datalist")  # UTF-8 (a byte-order mark is fine); other encodings: one line
    if not isinstance(document, dict):
        raise ValueError(f"{source}: a datalist is a JSON object with {DATALIST_SPLITS} lists")
    entries = document.get(split)
    if entries is None:
        return []
    if not isinstance(entries, list):
        raise ValueError(f"{source}: split {split!r} must be a list of items, got {_type_name(entries)}")
    base_dir = source.parent
    items: list[dict[str, Any]] = []
    first_index: dict[str, int] = {}
    for index, entry in enumerate(entries):
        where = f"{source} {split}[{index}]"
        if split == "test" and isinstance(entry, str):  # MONAI's plain list of test images
            entry = {"image": entry}
        if not isinstance(entry, Mapping):
            raise ValueError(f"{where}: expected an object, got {_type_name(entry)}")
        resolved = {key: _join_path(base_dir, value, key not in PATH_KEYS) for key, value in entry.items()}
        item = validate_item(resolved, where, require_label)
        image = str(item["image"])
        if not allow_duplicates:
            if image in first_index:
                raise ValueError(
                    f"{source} {split}: image {image} is listed twice ({split}[{first_index[image]}] and "
                    f"{split}[{index}])"
                )
            first_index[image] = index
        items.append(item)
    return items


def datalist_from_csv(path: str | os.PathLike[str], base_dir: str | os.PathLike[str] | None = None) -> list[dict]:
    """Datalist items from a CSV file, one row per image.

    Columns: ``image`` (required); the label as ``benign`` and ``malignant`` columns (0/1) or one ``label``
    column like ``"0,1"``; optional ``mask_benign``, ``mask_malignant``, ``laterality``, ``view``,
    ``patient_id``, ``exam_id``, ``horizontal_flip`` and ``split``. Empty cells are dropped.

    Args:
        path: the CSV file.
        base_dir: folder that relative paths in the CSV are relative to (default: the CSV's folder).

    Returns:
        Items with absolute paths.

    Raises:
        FileNotFoundError: no such file.
        ValueError: missing columns or a bad row (the message names the file and line).
    """
    return [item for _, item in _csv_items(Path(path), base_dir, require_label=True)]


def _csv_items(
    source: Path, base_dir: str | os.PathLike[str] | None, require_label: bool
) -> list[tuple[int, dict[str, Any]]]:
    """``(line number, validated item)`` per row of a CSV datalist table (see :func:`datalist_from_csv`)."""
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such CSV file")
    root = Path(base_dir) if base_dir is not None else source.parent
    # utf-8-sig: Excel's "CSV UTF-8" starts with a byte-order mark, which would otherwise glue onto the first
    # column name.
    try:
        with open(source, newline="", encoding="utf-8-sig") as handle:
            return _parse_csv(source, csv.DictReader(handle), root, require_label)
    except UnicodeDecodeError as err:
        raise ValueError(f"{source}: not a UTF-8 text file ({err.reason} at byte {err.start})") from None
    except csv.Error as err:
        raise ValueError(f"{source}: not a readable CSV table ({err})") from None


def _parse_csv(
    source: Path, reader: csv.DictReader, root: Path, require_label: bool
) -> list[tuple[int, dict[str, Any]]]:
    """Check the columns, then turn each row into a validated item (paths joined to ``root``)."""
    columns = set(reader.fieldnames or ())
    if "image" not in columns:
        raise ValueError(f"{source}: no 'image' column (columns: {sorted(columns)})")
    if require_label and "label" not in columns and not {"benign", "malignant"} <= columns:
        raise ValueError(f"{source}: needs 'benign' and 'malignant' columns or a 'label' column")
    items = []
    for row in reader:
        where = f"{source} line {reader.line_num}"
        item: dict[str, Any] = {k: v.strip() for k, v in row.items() if k and isinstance(v, str) and v.strip() != ""}
        if "label" in item:
            item["label"] = [part.strip() for part in item["label"].strip("[]").split(",")]
        elif "benign" in item and "malignant" in item:
            item["label"] = [item.pop("benign"), item.pop("malignant")]
        for key in PATH_KEYS:
            if key in item:
                item[key] = str(root / item[key])
        if "horizontal_flip" in item:
            item["horizontal_flip"] = parse_horizontal_flip(item["horizontal_flip"])
        items.append((reader.line_num, validate_item(item, where, require_label)))
    return items


def _read_csv_split(source: Path, split: str, require_label: bool, allow_duplicates: bool) -> list[dict[str, Any]]:
    """The rows of a CSV datalist whose ``split`` column is ``split`` (for :func:`read_datalist`)."""
    rows = _csv_items(source, None, require_label)
    if rows and not any("split" in item for _, item in rows):
        raise ValueError(f"{source}: a CSV datalist needs a 'split' column (training, validation or test) for each row")
    items: list[dict[str, Any]] = []
    first_line: dict[str, int] = {}
    for line, item in rows:
        row_split = str(item.pop("split", "")).lower()
        if row_split not in DATALIST_SPLITS:
            raise ValueError(
                f"{source} line {line}: split must be one of {', '.join(DATALIST_SPLITS)}, got {row_split!r}"
            )
        if row_split != split:
            continue
        image = str(item["image"])
        if not allow_duplicates:
            if image in first_line:
                raise ValueError(
                    f"{source} {split}: image {image} is listed twice (lines {first_line[image]} and {line})"
                )
            first_line[image] = line
        items.append(item)
    return items


def datalist_from_exam_list(
    path: str | os.PathLike[str],
    image_dir: str | os.PathLike[str],
    mask_dir: str | os.PathLike[str] | None = None,
    image_suffix: str = ".png",
    skip_missing_images: bool = False,
) -> list[dict[str, Any]]:
    """Datalist items from a published NYU exam list pickle (read with a restricted unpickler).

    Each exam holds image names per view (``"L-CC"``, ``"R-MLO"``, …), a ``cancer_label`` dict with
    ``left_benign``/``left_malignant``/``right_benign``/``right_malignant``, and optionally lesion segmentation
    names (``"L-CC_benign_seg"``, …) and the cropping results (``window_location``, ``best_center``), which are
    carried over. Both views of a breast get that breast's labels. Masks are listed only when their file
    exists; note that NYU masks are in the final 2944x1920 right-facing frame, not the raw one.

    Exam lists carry no patient identifier, so each exam counts as its own patient (``patient_id`` =
    ``exam_id`` = its index) unless the exam has a ``patient_id``.

    Args:
        path: the pickle (e.g. ``exam_list_before_cropping.pkl``); a ``.json`` file with the same structure is
            also accepted.
        image_dir: folder with the images (``<name><image_suffix>``).
        mask_dir: folder with the segmentation masks, if any.
        image_suffix: file name suffix of images and masks.
        skip_missing_images: leave out images whose file does not exist (with a warning that counts them)
            instead of listing them.

    Raises:
        UnsafePickleError: the pickle holds anything but plain data (classes, functions).
        ValueError: not an exam list, or an exam without labels (the message names the exam).
    """
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such exam list")
    exams = read_json(source, "exam list") if source.suffix.lower() == ".json" else restricted_load(source)
    if not isinstance(exams, list):
        raise ValueError(f"{source}: an exam list is a list of exams, got {type(exams).__name__}")
    images, masks = Path(image_dir), Path(mask_dir) if mask_dir is not None else None
    items: list[dict[str, Any]] = []
    skipped: list[str] = []
    for index, exam in enumerate(exams):
        where = f"{source} exam {index}"
        if not isinstance(exam, dict):
            raise ValueError(f"{where}: expected a dict, got {type(exam).__name__}")
        labels = exam.get("cancer_label")
        if not isinstance(labels, dict):
            raise ValueError(f"{where}: has no 'cancer_label'")
        exam_id = str(exam.get("exam_id", index))
        patient_id = str(exam.get("patient_id", exam_id))
        for view_key in _EXAM_LIST_VIEWS:
            side = "left" if view_key[0] == "L" else "right"
            try:
                label = [labels[f"{side}_benign"], labels[f"{side}_malignant"]]
            except KeyError as err:
                raise ValueError(f"{where}: cancer_label has no {err.args[0]!r}") from None
            for position, name in enumerate(exam.get(view_key, [])):
                item: dict[str, Any] = {
                    "image": str(images / f"{name}{image_suffix}"),
                    "label": label,
                    "laterality": view_key[0],
                    "view": view_key[2:],
                    "horizontal_flip": parse_horizontal_flip(exam.get("horizontal_flip", "NO")),
                    "patient_id": patient_id,
                    "exam_id": exam_id,
                }
                for kind in ("benign", "malignant"):
                    names = exam.get(f"{view_key}_{kind}_seg", [])
                    if masks is not None and position < len(names):
                        mask_path = masks / f"{names[position]}{image_suffix}"
                        if mask_path.is_file():
                            item[f"mask_{kind}"] = str(mask_path)
                for field in ("window_location", "best_center"):
                    values = exam.get(field, {}).get(view_key) if isinstance(exam.get(field), dict) else None
                    if values is not None and position < len(values):
                        item[field] = list(values[position])
                if skip_missing_images and not Path(item["image"]).is_file():
                    skipped.append(item["image"])
                    continue
                items.append(validate_item(item, where))
    if skipped:
        warnings.warn(f"{source}: left out {len(skipped)} images that do not exist, e.g. {skipped[0]}", stacklevel=2)
    return items


def _group_of(item: Mapping[str, Any]) -> str:
    for key in ("patient_id", "exam_id", "image"):
        if item.get(key) not in (None, ""):
            return f"{key}:{item[key]}"
    raise ValueError("item has neither patient_id, exam_id nor image")


def split_by_patient(
    items: Sequence[Mapping[str, Any]],
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    seed: int = 0,
) -> dict[str, list[dict[str, Any]]]:
    """Split items into training/validation/test so that no patient appears in two splits.

    Items are grouped by ``patient_id`` (else ``exam_id``, else image path); the sorted patients are shuffled
    with ``seed`` and cut by ``fractions`` (validation and test sizes are rounded, training takes the rest).
    The same items and seed always give the same split; items keep their order within a split.

    Args:
        items: datalist items.
        fractions: (training, validation, test), non-negative, summing to 1.
        seed: shuffling seed.

    Returns:
        ``{"training": [...], "validation": [...], "test": [...]}``.
    """
    shares = [float(f) for f in fractions]
    if len(shares) != 3 or min(shares) < 0 or abs(sum(shares) - 1.0) > 1e-6:
        raise ValueError(f"fractions must be three non-negative numbers summing to 1, got {fractions!r}")
    groups = sorted({_group_of(item) for item in items})
    order = np.random.default_rng(seed).permutation(len(groups))
    n_validation = round(shares[1] * len(groups))
    n_test = min(round(shares[2] * len(groups)), len(groups) - n_validation)
    assignment: dict[str, str] = {}
    for rank, group_index in enumerate(order):
        if rank < n_validation:
            split = "validation"
        elif rank < n_validation + n_test:
            split = "test"
        else:
            split = "training"
        assignment[groups[group_index]] = split
    result: dict[str, list[dict[str, Any]]] = {split: [] for split in DATALIST_SPLITS}
    for item in items:
        result[assignment[_group_of(item)]].append(dict(item))
    return result
