"""Train GLAM from an annotation server's images and image-level labels, then publish the new checkpoint.

No MONAI Label import: the server hands over ``(image id, image file, image info)`` triples, and the labels are
the ``[benign, malignant]`` values kept in each image's info (key ``glam_label`` by default; MONAI Label's
``PUT /datastore/image/info``). :func:`run_label_training`:

1. builds a datalist of the labelled images (:func:`labelled_datalist`: a seeded share goes to validation) and
   writes it into ``<model_dir>/runs/<run_id>/datalist.json``;
2. runs the project's stages with :func:`~monai_glam.engines.run_training` (``global``, ``local``, ``joint``, or
   ``all`` of them in that order), each in ``runs/<run_id>/<stage>/`` (checkpoints, TensorBoard events,
   ``model_config.json``, ``training_config.json``), the first from the served checkpoint and each next one from
   the previous stage's best checkpoint (its last when it has none), with the served model's GLAM arguments
   and window;
3. publishes the result as the served pair (:func:`publish_checkpoint_pair`): ``model_config.json`` first, then
   ``model.pt``, each replaced atomically, so a server reloading on change (``GLAMPredictor``) picks it up;
4. writes ``<model_dir>/train_stats.json`` (strict JSON: undefined metrics are ``null``).
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from monai_glam.data import validate_item, write_datalist
from monai_glam.engines import BEST_CHECKPOINT, LAST_CHECKPOINT, TrainingStage, publish_checkpoint, run_training
from monai_glam.integrations.app_folder import CHECKPOINT_NAME
from monai_glam.integrations.outputs import strict_json_text
from monai_glam.integrations.settings import DEFAULT_LABEL_KEY, parse_bool, parse_numbers
from monai_glam.networks.io import MODEL_CONFIG_NAME, read_model_config, resolve_model_config, save_model_config
from monai_glam.transforms.array import PAPER_WINDOW_SIZE
from monai_glam.utils.atomic import atomic_write_text
from monai_glam.utils.json_files import read_json

__all__ = [
    "ALL_STAGES",
    "RUNS_DIR",
    "STAGE_CHOICES",
    "TRAIN_STATS_FILE",
    "LabelTrainingOptions",
    "labelled_datalist",
    "parse_image_label",
    "publish_checkpoint_pair",
    "read_train_stats",
    "run_label_training",
]

logger = logging.getLogger(__name__)

#: Where each training run goes, inside the model folder.
RUNS_DIR = "runs"
#: The statistics of the last run, inside the model folder.
TRAIN_STATS_FILE = "train_stats.json"
#: ``stage`` values: ``all`` runs global, local and joint in turn.
ALL_STAGES = "all"
STAGE_CHOICES: tuple[str, ...] = (ALL_STAGES, *(stage.value for stage in TrainingStage))


def parse_image_label(value: Any, where: str) -> list[int]:
    """An image-level label ``[benign, malignant]`` (0/1 each) as a datalist item has it.

    Accepts a list or a JSON list in a string (image info set from a form often holds text).

    Raises:
        ValueError: anything else, naming ``where``.
    """
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            raise ValueError(f"{where}: 'label' must be [benign, malignant], got {value!r}") from None
    return list(validate_item({"image": where, "label": value}, where)["label"])


def labelled_datalist(
    images: Iterable[tuple[str, str, Mapping[str, Any]]],
    label_key: str = DEFAULT_LABEL_KEY,
    val_split: float = 0.2,
    seed: int = 0,
) -> dict[str, list[dict[str, Any]]]:
    """The training and validation splits of the images whose info holds a label.

    Images are sorted by id and shuffled with ``seed``; ``round(val_split * n)`` of them (at most ``n - 1``, so
    training keeps one) go to validation. ``laterality`` and ``view`` of the info are carried into the items (the
    reader otherwise takes them from DICOM tags or NYU-style names).

    Args:
        images: ``(image id, image file, image info)`` triples.
        label_key: the info key of the ``[benign, malignant]`` label.
        val_split: share of the labelled images used for validation, in [0, 1).
        seed: seeds the split.

    Returns:
        ``{"training": [...], "validation": [...]}`` datalist items (``image``, ``label``, ``image_id``, ...).

    Raises:
        ValueError: no labelled image, a malformed label (naming the image), or a bad ``val_split``.
    """
    if not 0.0 <= float(val_split) < 1.0:
        raise ValueError(f"val_split must be in [0, 1), got {val_split}")
    items = []
    for image_id, path, info in sorted(images, key=lambda entry: str(entry[0])):
        if info.get(label_key) is None:
            continue
        where = f"image {image_id!r} ({label_key})"
        item = {"image": str(path), "label": parse_image_label(info[label_key], where), "image_id": str(image_id)}
        for key in ("laterality", "view"):
            if info.get(key) not in (None, ""):
                item[key] = info[key]
        items.append(validate_item(item, where))
    if not items:
        raise ValueError(
            f"no image has an image-level label under {label_key!r}; set [benign, malignant] labels with "
            f'PUT /datastore/image/info?image=<id> and info={{"{label_key}": [0, 1]}}'
        )
    order = np.random.default_rng(int(seed)).permutation(len(items))
    num_val = min(int(round(float(val_split) * len(items))), len(items) - 1)
    validation = sorted(order[:num_val].tolist())
    training = sorted(order[num_val:].tolist())
    return {"training": [items[i] for i in training], "validation": [items[i] for i in validation]}


@dataclass(frozen=True)
class LabelTrainingOptions:
    """How a server trains (MONAI Label's train request keys).

    Attributes:
        stage: ``all`` (global, local, joint in turn), ``global``, ``local`` or ``joint``.
        max_epochs: epochs of each stage.
        train_batch_size: images per step.
        learning_rate: Adam learning rate.
        weight_decay: Adam weight decay.
        val_split: share of the labelled images used for validation.
        early_stop_patience: stop a stage after this many validations without AUC improvement (0: never).
        augment: training augmentation.
        seed: seeds the split, the data order and the augmentation.
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        tracking_uri: also track with MLflow (``sqlite:///...``); empty for none.
        publish: replace the served checkpoint with the result.
    """

    stage: str = ALL_STAGES
    max_epochs: int = 10
    train_batch_size: int = 2
    learning_rate: float = 1e-4
    weight_decay: float = 1e-5
    val_split: float = 0.2
    early_stop_patience: int = 0
    augment: bool = True
    seed: int = 0
    device: str = "auto"
    tracking_uri: str = ""
    publish: bool = True

    def config(self) -> dict[str, Any]:
        """The options as a server shows them; ``stage`` lists its choices, the default first."""
        values = asdict(self)
        values["stage"] = [self.stage, *(choice for choice in STAGE_CHOICES if choice != self.stage)]
        return values

    @classmethod
    def from_request(
        cls, request: Mapping[str, Any], defaults: LabelTrainingOptions | None = None
    ) -> LabelTrainingOptions:
        """Options from a request's keys (strings or JSON values); absent keys keep ``defaults``.

        A list value (a client echoing the choices of :meth:`config`) means its first entry.

        Raises:
            ValueError: a bad value, naming the key.
        """
        base = asdict(defaults or cls())
        values: dict[str, Any] = {}
        for key, default in base.items():
            value = request.get(key, default)
            if isinstance(value, list) and not isinstance(default, list):
                value = value[0] if value else default
            values[key] = _convert(key, value, default)
        if values["stage"] not in STAGE_CHOICES:
            raise ValueError(f"stage must be one of {list(STAGE_CHOICES)}, got {values['stage']!r}")
        for key, minimum in (("max_epochs", 1), ("train_batch_size", 1), ("early_stop_patience", 0)):
            if values[key] < minimum:
                raise ValueError(f"{key} must be an integer >= {minimum}, got {values[key]}")
        if not values["learning_rate"] > 0 or values["weight_decay"] < 0:
            raise ValueError("learning_rate must be > 0 and weight_decay >= 0")
        if not 0.0 <= values["val_split"] < 1.0:
            raise ValueError(f"val_split must be in [0, 1), got {values['val_split']}")
        return cls(**values)


def _convert(key: str, value: Any, default: Any) -> Any:
    """``value`` as the type of ``default`` (strings from forms and ``--conf`` included)."""
    if isinstance(default, bool):
        return parse_bool(value, key)
    if isinstance(default, int):
        number = parse_numbers(value, key, 1)[0]
        if not number.is_integer():
            raise ValueError(f"{key} must be an integer, got {value!r}")
        return int(number)
    if isinstance(default, float):
        return float(parse_numbers(value, key, 1)[0])
    return "" if value is None else str(value).strip()


def publish_checkpoint_pair(
    checkpoint: str | os.PathLike[str],
    model_config: str | os.PathLike[str],
    model_dir: str | os.PathLike[str],
    thresholds: Sequence[float] | None = None,
) -> dict[str, Path]:
    """Make a trained checkpoint the served one: ``model_dir/model_config.json`` first, then ``model_dir/model.pt``.

    Each file is replaced atomically (the checkpoint by :func:`~monai_glam.engines.publish_checkpoint`), so a
    reader sees the old or the new file, never a partial one; the checkpoint goes last because a server reloads
    when it changes. The two files are not replaced together: a reader in between sees the new config with the
    old weights, which fit (training keeps the GLAM arguments).

    Args:
        checkpoint: the trained weights (``best.pt`` / ``last.pt``).
        model_config: the run's ``model_config.json``.
        model_dir: the served model folder.
        thresholds: thresholds to keep in the published config (the served ones); ``None`` keeps the run's.

    Raises:
        FileNotFoundError: no such checkpoint or model config.
    """
    target = Path(model_dir)
    if not Path(checkpoint).is_file():
        raise FileNotFoundError(f"checkpoint not found: {checkpoint} (nothing to publish)")
    config = read_model_config(model_config)
    chosen = tuple(thresholds) if thresholds is not None else config.thresholds
    paths = {"model_config": target / MODEL_CONFIG_NAME, "checkpoint": target / CHECKPOINT_NAME}
    save_model_config(paths["model_config"], config.glam, config.preprocessing or None, chosen)
    publish_checkpoint(checkpoint, paths["checkpoint"])
    return paths


def read_train_stats(model_dir: str | os.PathLike[str]) -> dict[str, Any]:
    """The statistics of the last run in ``model_dir`` (``{}`` before the first one or when unreadable)."""
    path = Path(model_dir) / TRAIN_STATS_FILE
    if not path.is_file():
        return {}
    try:
        stats = read_json(path, "training statistics")
    except (OSError, ValueError) as err:
        logger.warning("cannot read %s: %s", path, err)
        return {}
    return json.loads(strict_json_text(stats)) if isinstance(stats, dict) else {}


def run_label_training(
    images: Iterable[tuple[str, str, Mapping[str, Any]]],
    model_dir: str | os.PathLike[str],
    options: LabelTrainingOptions | None = None,
    label_key: str = DEFAULT_LABEL_KEY,
    run_id: str | None = None,
) -> dict[str, Any]:
    """Train the served GLAM on labelled images and publish the result (see the module docstring).

    Args:
        images: ``(image id, image file, image info)`` triples of the datastore.
        model_dir: the served model folder (``model.pt`` and its ``model_config.json``).
        options: stages, epochs and optimisation.
        label_key: the info key of the labels.
        run_id: the run's folder name under ``runs/``; default the start time ``YYYYmmdd_HHMMSS``.

    Returns:
        The statistics also written to ``train_stats.json``.

    Raises:
        ValueError: no labelled image, a malformed label, or a bad option.
        FileNotFoundError: no served checkpoint.
    """
    options = options or LabelTrainingOptions()
    folder = Path(model_dir)
    checkpoint = folder / CHECKPOINT_NAME
    if not checkpoint.is_file():
        raise FileNotFoundError(f"checkpoint not found: {checkpoint} (the served model that training starts from)")
    config = resolve_model_config(checkpoint)
    window = tuple(config.preprocessing.get("spatial_size", PAPER_WINDOW_SIZE))
    splits = labelled_datalist(images, label_key, options.val_split, options.seed)
    started = time.time()
    run_id = run_id or datetime.now().strftime("%Y%m%d_%H%M%S")
    run_dir = folder / RUNS_DIR / run_id
    datalist = write_datalist(run_dir / "datalist.json", splits, name="monai-label", description=f"labels: {label_key}")
    stages = [stage.value for stage in TrainingStage] if options.stage == ALL_STAGES else [options.stage]
    logger.info(
        "training GLAM (%s) on %d images, validating on %d, in %s",
        " -> ".join(stages),
        len(splits["training"]),
        len(splits["validation"]),
        run_dir,
    )
    initial = checkpoint
    stage_stats = []
    for stage in stages:
        stage_dir = run_dir / stage
        metrics = run_training(
            datalist,
            stage_dir,
            stage=stage,
            preset="paper",  # the served config's GLAM arguments replace the paper's (empty) ones
            glam_kwargs=config.glam,
            window=window,
            epochs=options.max_epochs,
            batch_size=options.train_batch_size,
            learning_rate=options.learning_rate,
            weight_decay=options.weight_decay,
            init_checkpoint=initial,
            augment=options.augment,
            seed=options.seed,
            device=options.device,
            early_stop_patience=options.early_stop_patience,
            mlflow_tracking_uri=options.tracking_uri or None,
            show_progress=False,
        )
        best = stage_dir / BEST_CHECKPOINT
        initial = best if best.is_file() else stage_dir / LAST_CHECKPOINT
        stage_stats.append({"stage": stage, "metrics": metrics, "checkpoint": str(initial)})
    published = None
    if options.publish:
        paths = publish_checkpoint_pair(initial, run_dir / stages[-1] / MODEL_CONFIG_NAME, folder, config.thresholds)
        published = str(paths["checkpoint"])
    stats = {
        "run_id": run_id,
        "run_dir": str(run_dir),
        "tensorboard": [str(run_dir / stage / "tensorboard") for stage in stages],
        "stages": stage_stats,
        "num_training": len(splits["training"]),
        "num_validation": len(splits["validation"]),
        "label_key": label_key,
        "options": asdict(options),
        "published": published,
        "start_ts": datetime.fromtimestamp(started).strftime("%Y-%m-%d %H:%M:%S"),
        "total_time_s": round(time.time() - started, 2),
    }
    atomic_write_text(folder / TRAIN_STATS_FILE, strict_json_text(stats, indent=2) + "\n")
    return json.loads(strict_json_text(stats))
