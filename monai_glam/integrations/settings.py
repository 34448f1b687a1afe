"""The GLAM server's settings: MONAI Label's ``--conf KEY VALUE`` pairs, checked, with one-line errors.

``monailabel start_server --conf`` hands the app a dictionary of strings. :func:`parse_server_settings` turns it
into :class:`GLAMServerSettings`; a bad value or an unknown key raises ``ValueError`` naming the key, what it
expects and what it got, so the server stops at start-up instead of failing on the first request.

- ``checkpoint``: the weights file (training checkpoint, GLAM state dict or published NYU checkpoint); default
  ``<app>/model/glam/model.pt``;
- ``model_config``: the model config JSON; default ``model_config.json`` beside the checkpoint, else the paper's;
- ``thresholds``: benign and malignant thresholds of the fused map, e.g. ``0.3,0.4``; default the model config's,
  else 0.5 0.5;
- ``window`` (``H,W``), ``erosion_iterations``, ``buffer``: model window and breast-crop parameters; default the
  model config's, else the paper window with crop parameters scaled to it;
- ``sliding_window`` (``true``/``false``), ``overlap`` (0.25), ``sw_batch_size`` (1): run windows of the model
  size over the whole cropped breast, as ``monai-glam infer --sliding-window``;
- ``device``: ``auto`` (default), ``cpu``, ``cuda``, ``cuda:N``;
- ``precision``: ``fp32`` (default), ``bf16`` or ``auto``, as ``monai-glam infer --precision`` (checked when the
  model is loaded);
- ``engine``: ``torch`` (default), ``onnxruntime`` or ``openvino``, as ``monai-glam infer --engine``: the model is
  exported to ONNX when it is loaded (and again when training replaces it) and runs in that runtime on the CPU
  (checked when the model is loaded: the runtime must be installed, whole-image float32 inference only);
- ``label_key``: the image-info key of the image-level labels used for training; default ``glam_label``;
- ``models``: the infer models to serve, ``all`` (default) or a comma-separated subset of
  ``glam,glam_classification``.

Relative paths are taken from the folder the server was started in.
"""

from __future__ import annotations

import json
import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monai_glam.integrations.app_folder import APP_MODEL_DIR, CHECKPOINT_NAME
from monai_glam.utils.device import resolve_device
from monai_glam.utils.enums import CLASS_NAMES

__all__ = [
    "CONF_KEYS",
    "DEFAULT_LABEL_KEY",
    "INFER_MODELS",
    "GLAMServerSettings",
    "parse_bool",
    "parse_numbers",
    "parse_server_settings",
    "parse_thresholds",
]

#: The infer models the app serves: segmentation (labelmap, polygons) and classification (scores).
INFER_MODELS: tuple[str, ...] = ("glam", "glam_classification")
#: Image-info key under which a datastore keeps an image's ``[benign, malignant]`` labels.
DEFAULT_LABEL_KEY = "glam_label"
#: Keys the app reads, with what they expect (for the error of an unknown key).
CONF_KEYS: dict[str, str] = {
    "checkpoint": "a weights file",
    "model_config": "a model config JSON file",
    "thresholds": "two numbers in [0, 1]",
    "window": "two positive integers H,W",
    "erosion_iterations": "an integer >= 0",
    "buffer": "an integer >= 0",
    "sliding_window": "true or false",
    "overlap": "a number in [0, 1)",
    "sw_batch_size": "an integer >= 1",
    "device": "auto, cpu, cuda or cuda:N",
    "precision": "fp32, bf16 or auto",
    "engine": "torch, onnxruntime or openvino",
    "label_key": "an image-info key",
    "models": f"all, or a comma-separated subset of {','.join(INFER_MODELS)}",
}
#: Keys MONAI Label itself reads from ``--conf``; accepted and left to it.
_MONAILABEL_KEYS = ("server_mode",)
_TRUE = ("true", "1", "yes", "on")
_FALSE = ("false", "0", "no", "off")


def _where(key: str) -> str:
    return f"--conf {key}"


def _count_words(count: int | None) -> str:
    if count == 1:
        return "a number"
    return f"{count} numbers separated by commas" if count else "numbers separated by commas"


def parse_bool(value: Any, where: str) -> bool:
    """``true``/``false`` (also ``1``/``0``, ``yes``/``no``, ``on``/``off``, any case) or a bool.

    Raises:
        ValueError: any other value, naming ``where`` (e.g. ``--conf sliding_window``).
    """
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in _TRUE:
        return True
    if text in _FALSE:
        return False
    raise ValueError(f"{where} must be true or false, got {value!r}")


def parse_numbers(value: Any, where: str, count: int | None = None) -> list[float]:
    """A list of finite numbers from a number, a JSON list, ``"a,b"``, ``"a b"`` or a sequence.

    Raises:
        ValueError: not numbers, or not ``count`` of them, naming ``where``.
    """
    items: Any = value
    if isinstance(value, str):
        text = value.strip()
        try:
            items = json.loads(text) if text.startswith("[") else text.replace(",", " ").split()
        except json.JSONDecodeError:
            items = None
    if isinstance(items, (int, float)) and not isinstance(items, bool):
        items = [items]
    try:
        if isinstance(items, (str, bytes)) or not isinstance(items, Sequence):
            raise TypeError
        numbers = [float(item) for item in items if not isinstance(item, bool)]
        if len(numbers) != len(items) or not all(math.isfinite(n) for n in numbers):
            raise TypeError
    except (TypeError, ValueError):
        raise ValueError(f"{where} must be {_count_words(count)}, got {value!r}") from None
    if count is not None and len(numbers) != count:
        raise ValueError(f"{where} must be {_count_words(count)}, got {value!r}")
    return numbers


def parse_thresholds(
    value: Any, where: str = "--conf thresholds", num_classes: int = len(CLASS_NAMES)
) -> tuple[float, ...]:
    """One threshold per class in [0, 1] (``"0.3,0.4"``, ``[0.3, 0.4]``, ...).

    Raises:
        ValueError: not ``num_classes`` numbers in [0, 1], naming ``where``.
    """
    thresholds = parse_numbers(value, where, num_classes)
    if not all(0.0 <= t <= 1.0 for t in thresholds):
        raise ValueError(f"{where} must be {num_classes} numbers in [0, 1], got {value!r}")
    return tuple(thresholds)


def _parse_int(value: Any, key: str, minimum: int) -> int:
    try:
        number = float(str(value).strip())
        if not number.is_integer() or number < minimum:
            raise ValueError
    except ValueError:
        raise ValueError(f"{_where(key)} must be an integer >= {minimum}, got {value!r}") from None
    return int(number)


def _parse_models(value: Any) -> tuple[str, ...]:
    names = [name.strip() for name in str(value).split(",") if name.strip()]
    if names == ["all"]:
        return INFER_MODELS
    unknown = [name for name in names if name not in INFER_MODELS]
    if not names or unknown:
        raise ValueError(
            f"{_where('models')} must be all or a comma-separated subset of {list(INFER_MODELS)}, got {value!r}"
        )
    return tuple(name for name in INFER_MODELS if name in names)


@dataclass(frozen=True)
class GLAMServerSettings:
    """What the server serves and how.

    Attributes:
        app_dir: the MONAI Label app folder.
        checkpoint: the served weights.
        model_config: an explicit model config, or ``None`` (beside the checkpoint, else the paper's).
        device: default torch device name.
        thresholds: per-class thresholds, or ``None`` (the model config's, else 0.5).
        window: model window, or ``None`` (the model config's).
        erosion_iterations: breast-crop erosion, or ``None``.
        buffer: breast-crop margin, or ``None``.
        sliding_window: run windows over the whole cropped breast.
        overlap: sliding-window overlap.
        sw_batch_size: windows per forward pass.
        precision: ``fp32``, ``bf16`` or ``auto``, or ``None`` (the default of inference).
        engine: the forward pass's engine (``torch``, ``onnxruntime``, ``openvino``), or ``None`` (eager torch).
        label_key: image-info key of the image-level labels.
        models: the infer models to serve.
    """

    app_dir: Path
    checkpoint: Path
    model_config: Path | None = None
    device: str = "auto"
    thresholds: tuple[float, ...] | None = None
    window: tuple[int, int] | None = None
    erosion_iterations: int | None = None
    buffer: int | None = None
    sliding_window: bool = False
    overlap: float = 0.25
    sw_batch_size: int = 1
    precision: str | None = None
    engine: str | None = None
    label_key: str = DEFAULT_LABEL_KEY
    models: tuple[str, ...] = field(default=INFER_MODELS)

    @property
    def model_dir(self) -> Path:
        """The app's own model folder, ``<app>/model/glam``, where training publishes."""
        return self.app_dir / APP_MODEL_DIR

    @property
    def serves_app_model(self) -> bool:
        """Whether the served checkpoint (and its config) is the app's own ``model/glam`` pair, which training
        replaces; a checkpoint or model config from elsewhere is served read-only."""
        own_checkpoint = self.checkpoint.resolve() == (self.model_dir / CHECKPOINT_NAME).resolve()
        own_config = self.model_config is None or self.model_config.resolve().parent == self.model_dir.resolve()
        return own_checkpoint and own_config

    def inference_options(self) -> dict[str, Any]:
        """The :func:`~monai_glam.engines.inference_settings` options (``None``: the model config's)."""
        return {
            "window": self.window,
            "erosion_iterations": self.erosion_iterations,
            "buffer": self.buffer,
            "thresholds": self.thresholds,
            "sliding_window": self.sliding_window,
            "overlap": self.overlap,
            "sw_batch_size": self.sw_batch_size,
            "precision": self.precision,
            "engine": self.engine,
        }


def parse_server_settings(conf: Mapping[str, Any] | None, app_dir: str | os.PathLike[str]) -> GLAMServerSettings:
    """Check ``--conf`` pairs and resolve the served files.

    Args:
        conf: MONAI Label's ``--conf`` dictionary (string values).
        app_dir: the app folder (its ``model/glam/model.pt`` is the default checkpoint).

    Raises:
        ValueError: an unknown key or a bad value (one line naming the key).
        FileNotFoundError: the checkpoint or the model config does not exist.
    """
    conf = dict(conf or {})
    unknown = sorted(key for key in conf if key not in CONF_KEYS and key not in _MONAILABEL_KEYS)
    if unknown:
        raise ValueError(f"unknown --conf key(s) {unknown}; the GLAM app reads {sorted(CONF_KEYS)}")
    app = Path(app_dir)
    default_checkpoint = app / APP_MODEL_DIR / CHECKPOINT_NAME
    checkpoint = Path(conf["checkpoint"]).expanduser() if conf.get("checkpoint") else default_checkpoint
    if not checkpoint.is_file():
        hint = "" if conf.get("checkpoint") else " (write the app with: monai-glam monailabel init DIR --checkpoint C)"
        raise FileNotFoundError(f"checkpoint not found: {checkpoint}{hint}")
    model_config = Path(conf["model_config"]).expanduser() if conf.get("model_config") else None
    if model_config is not None and not model_config.is_file():
        raise FileNotFoundError(f"{_where('model_config')}: no such file: {model_config}")
    window = None
    if conf.get("window"):
        sides = parse_numbers(conf["window"], _where("window"), 2)
        if not all(side.is_integer() and side > 0 for side in sides):
            raise ValueError(f"{_where('window')} must be two positive integers H,W, got {conf['window']!r}")
        window = (int(sides[0]), int(sides[1]))
    overlap = float(parse_numbers(conf.get("overlap", 0.25), _where("overlap"), 1)[0])
    if not 0.0 <= overlap < 1.0:
        raise ValueError(f"{_where('overlap')} must be a number in [0, 1), got {conf['overlap']!r}")
    label_key = str(conf.get("label_key", DEFAULT_LABEL_KEY)).strip()
    if not label_key:
        raise ValueError(f"{_where('label_key')} must be a non-empty image-info key")
    device = str(conf.get("device", "auto")).strip() or "auto"
    try:
        resolve_device(device)
    except ValueError as err:
        raise ValueError(f"{_where('device')}: {err}") from None
    return GLAMServerSettings(
        app_dir=app,
        checkpoint=checkpoint.resolve(),
        model_config=model_config.resolve() if model_config is not None else None,
        device=device,
        thresholds=parse_thresholds(conf["thresholds"]) if conf.get("thresholds") else None,
        window=window,
        erosion_iterations=_parse_int(conf["erosion_iterations"], "erosion_iterations", 0)
        if conf.get("erosion_iterations") not in (None, "")
        else None,
        buffer=_parse_int(conf["buffer"], "buffer", 0) if conf.get("buffer") not in (None, "") else None,
        sliding_window=parse_bool(conf.get("sliding_window", False), _where("sliding_window")),
        overlap=overlap,
        sw_batch_size=_parse_int(conf.get("sw_batch_size", 1), "sw_batch_size", 1),
        precision=str(conf["precision"]).strip() if conf.get("precision") else None,
        engine=str(conf["engine"]).strip() if conf.get("engine") else None,
        label_key=label_key,
        models=_parse_models(conf.get("models", "all")),
    )
