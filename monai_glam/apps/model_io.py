"""Model configuration files and checkpoint loading shared by the ``monai-glam`` commands.

A *model config* is a JSON object of :class:`~monai_glam.networks.GLAM` constructor arguments, so a small model
can be rebuilt for its checkpoint. Two optional reserved keys carry what inference must repeat from training::

    {"patch_size": 32, "global_channels": [8, 8, 16, 16, 16], "local_channels": [8, 8, 8, 8],
     "preprocessing": {"spatial_size": [256, 160], "erosion_iterations": 9, "buffer": 4},
     "thresholds": [0.4, 0.5]}

``monai-glam train`` writes ``model_config.json`` next to ``last.pt``/``best.pt``. The commands resolve the
configuration in this order: an explicit ``--model-config`` file, ``model_config.json`` beside the checkpoint,
GLAM's paper defaults.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from monai_glam.data.atomic_io import atomic_write_text
from monai_glam.networks import GLAM, convert_nyu_state_dict

__all__ = [
    "MODEL_CONFIG_NAME",
    "PREPROCESSING_KEYS",
    "ModelConfig",
    "glam_argument_names",
    "is_nyu_state_dict",
    "load_model",
    "read_model_config",
    "resolve_model_config",
    "save_model_config",
]

#: File name of the model config that ``monai-glam train`` writes beside its checkpoints.
MODEL_CONFIG_NAME = "model_config.json"
#: Keys allowed in the ``preprocessing`` section.
PREPROCESSING_KEYS = ("spatial_size", "erosion_iterations", "buffer")
_RESERVED_KEYS = ("preprocessing", "thresholds")
# Key prefixes that only the published checkpoints use (see monai_glam.networks.nyu_checkpoint).
_NYU_PREFIXES = ("global_network.downsampling_branch.", "global_network.postprocess_module.", "detection_network.")


@dataclass(frozen=True)
class ModelConfig:
    """A resolved model configuration.

    Attributes:
        glam: GLAM constructor arguments (sequences as tuples); empty means the paper configuration.
        preprocessing: any of ``spatial_size`` (tuple), ``erosion_iterations``, ``buffer`` (ints).
        thresholds: per-class segmentation thresholds, or ``None``.
        source: the file it was read from, ``None`` for the defaults.
    """

    glam: dict[str, Any] = field(default_factory=dict)
    preprocessing: dict[str, Any] = field(default_factory=dict)
    thresholds: tuple[float, ...] | None = None
    source: Path | None = None

    def to_json(self) -> dict[str, Any]:
        """The JSON object :func:`save_model_config` writes."""
        document: dict[str, Any] = {key: _to_json_value(value) for key, value in self.glam.items()}
        if self.preprocessing:
            document["preprocessing"] = {key: _to_json_value(value) for key, value in self.preprocessing.items()}
        if self.thresholds is not None:
            document["thresholds"] = list(self.thresholds)
        return document


def _to_json_value(value: Any) -> Any:
    return list(value) if isinstance(value, (tuple, list)) else value


def glam_argument_names() -> tuple[str, ...]:
    """Names of the :class:`GLAM` constructor arguments."""
    return tuple(name for name in inspect.signature(GLAM.__init__).parameters if name != "self")


def _check_glam_kwargs(kwargs: Mapping[str, Any], where: str) -> dict[str, Any]:
    known = glam_argument_names()
    unknown = sorted(str(key) for key in kwargs if key not in known)
    if unknown:
        raise ValueError(f"{where}: unknown GLAM argument(s) {unknown}; expected some of {list(known)}")
    return {str(key): tuple(value) if isinstance(value, list) else value for key, value in kwargs.items()}


def _check_preprocessing(section: Any, where: str) -> dict[str, Any]:
    if not isinstance(section, Mapping):
        raise ValueError(f"{where}: 'preprocessing' must be an object, got {section!r}")
    unknown = sorted(str(key) for key in section if key not in PREPROCESSING_KEYS)
    if unknown:
        expected = list(PREPROCESSING_KEYS)
        raise ValueError(f"{where}: unknown preprocessing key(s) {unknown}; expected some of {expected}")
    checked: dict[str, Any] = {}
    if "spatial_size" in section:
        size = section["spatial_size"]
        if not isinstance(size, Sequence) or len(size) != 2 or not all(isinstance(s, int) and s > 0 for s in size):
            raise ValueError(f"{where}: preprocessing spatial_size must be two positive integers, got {size!r}")
        checked["spatial_size"] = (int(size[0]), int(size[1]))
    for key in ("erosion_iterations", "buffer"):
        if key in section:
            value = section[key]
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                raise ValueError(f"{where}: preprocessing {key} must be an integer >= 0, got {value!r}")
            checked[key] = int(value)
    return checked


def _check_thresholds(values: Any, where: str) -> tuple[float, ...]:
    if not isinstance(values, Sequence) or isinstance(values, str) or not values:
        raise ValueError(f"{where}: thresholds must be a list of numbers, got {values!r}")
    try:
        thresholds = tuple(float(v) for v in values)
    except (TypeError, ValueError):
        raise ValueError(f"{where}: thresholds must be a list of numbers, got {values!r}") from None
    if not all(0.0 <= t <= 1.0 for t in thresholds):
        raise ValueError(f"{where}: thresholds must lie in [0, 1], got {list(thresholds)}")
    return thresholds


def _parse_model_config(document: Any, where: str, source: Path | None = None) -> ModelConfig:
    if not isinstance(document, Mapping):
        raise ValueError(f"{where}: a model config is a JSON object of GLAM arguments, got {type(document).__name__}")
    glam = _check_glam_kwargs({k: v for k, v in document.items() if k not in _RESERVED_KEYS}, where)
    preprocessing = _check_preprocessing(document.get("preprocessing", {}), where)
    thresholds = _check_thresholds(document["thresholds"], where) if "thresholds" in document else None
    return ModelConfig(glam, preprocessing, thresholds, source)


def save_model_config(
    path: str | os.PathLike[str],
    kwargs: Mapping[str, Any],
    preprocessing: Mapping[str, Any] | None = None,
    thresholds: Sequence[float] | None = None,
) -> Path:
    """Write a model config JSON atomically.

    Args:
        path: the file to write (``model_config.json`` beside the checkpoints for automatic discovery).
        kwargs: GLAM constructor arguments (only JSON-representable values: numbers, booleans, sequences).
        preprocessing: optional ``spatial_size``/``erosion_iterations``/``buffer`` the model was trained with.
        thresholds: optional per-class segmentation thresholds.

    Returns:
        The path written.

    Raises:
        ValueError: an unknown GLAM argument or preprocessing key, or a bad value (the message names it).
    """
    document: dict[str, Any] = dict(kwargs)
    if preprocessing:
        document["preprocessing"] = dict(preprocessing)
    if thresholds is not None:
        document["thresholds"] = list(thresholds)
    config = _parse_model_config(document, str(path))
    target = Path(path)
    atomic_write_text(target, json.dumps(config.to_json(), indent=2) + "\n")
    return target


def read_model_config(path: str | os.PathLike[str]) -> ModelConfig:
    """Read and check a model config JSON.

    Raises:
        FileNotFoundError: no such file.
        ValueError: not JSON, or an unknown key or bad value (the message names the file and the key).
    """
    source = Path(path)
    if not source.is_file():
        raise FileNotFoundError(f"{source}: no such model config file")
    try:
        document = json.loads(source.read_text(encoding="utf-8"))
    except json.JSONDecodeError as err:
        raise ValueError(f"{source}: not valid JSON ({err})") from err
    return _parse_model_config(document, str(source), source)


def resolve_model_config(
    checkpoint: str | os.PathLike[str] | None = None, model_config: str | os.PathLike[str] | None = None
) -> ModelConfig:
    """The configuration for ``checkpoint``: ``model_config`` if given, else ``model_config.json`` beside the
    checkpoint, else the paper defaults (an empty :class:`ModelConfig`)."""
    if model_config is not None:
        return read_model_config(model_config)
    if checkpoint is not None:
        beside = Path(checkpoint).parent / MODEL_CONFIG_NAME
        if beside.is_file():
            return read_model_config(beside)
    return ModelConfig()


def is_nyu_state_dict(state: Mapping[str, Any]) -> bool:
    """Whether a state dict uses the published checkpoints' key names."""
    return any(str(key).startswith(_NYU_PREFIXES) for key in state)


def _read_state_dict(path: Path) -> Mapping[str, Any]:
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises many types for corrupt, truncated or unsafe files
        raise ValueError(f"cannot read checkpoint {path}: {err}") from err
    # A training checkpoint keeps the weights under "network"; some re-saved copies under "state_dict"/"model".
    for wrapper in ("network", "state_dict", "model"):
        if isinstance(state, Mapping) and isinstance(state.get(wrapper), Mapping):
            state = state[wrapper]
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} holds no GLAM state dict of tensors")
    return state


def load_model(
    checkpoint: str | os.PathLike[str],
    model_config: str | os.PathLike[str] | ModelConfig | None = None,
    device: str | torch.device = "cpu",
) -> GLAM:
    """Build GLAM from its configuration and load a checkpoint into it, in eval mode on ``device``.

    The checkpoint may be a training checkpoint (``last.pt``/``best.pt``, weights under ``"network"``), a bare
    ``GLAM.state_dict()``, or a published NYU checkpoint (``model_sep.ckpt``/``model_joint.ckpt``, detected from
    its key names and converted). Files are read with ``weights_only=True``.

    Args:
        checkpoint: the weights file.
        model_config: a model config file or a :class:`ModelConfig`; ``None`` resolves it with
            :func:`resolve_model_config`.
        device: where to put the model.

    Raises:
        FileNotFoundError: no such checkpoint or model config.
        ValueError: an unreadable checkpoint, or weights that do not fit the configuration (the message says
            which configuration was used).
    """
    path = Path(checkpoint)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    config = model_config if isinstance(model_config, ModelConfig) else resolve_model_config(path, model_config)
    origin = f"model config {config.source}" if config.source is not None else "the paper's GLAM configuration"
    try:
        model = GLAM(**config.glam)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{origin}: {err}") from err
    state = _read_state_dict(path)
    if is_nyu_state_dict(state):
        state = convert_nyu_state_dict(state)
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as err:
        detail = " ".join(str(err).split())
        detail = detail if len(detail) <= 300 else detail[:300] + " ..."
        raise ValueError(
            f"checkpoint {path} does not fit {origin} ({detail}); pass the model config it was trained with"
        ) from err
    return model.to(device).eval()
