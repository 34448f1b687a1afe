"""The package's one checkpoint reader, and model configuration files.

**Checkpoints.** :func:`read_glam_state_dict` is the only function of monai_glam that reads a weights file. It
accepts every layout the package meets and returns a ``GLAM.state_dict()``-named dict of tensors:

- a training checkpoint, weights under ``"network"`` (``last.pt``/``best.pt`` as MONAI's ``CheckpointSaver``
  and :class:`~monai_glam.handlers.last_checkpoint.LastCheckpointSaver` write them, next to ``"optimizer"``,
  ``"trainer"``, ...);
- a bare ``GLAM.state_dict()``, or one wrapped under ``"state_dict"`` or ``"model"`` by a re-saved copy;
- a published NYU checkpoint (``model_sep.ckpt``/``model_joint.ckpt``), detected from its key names and renamed
  with :func:`~monai_glam.networks.nyu_checkpoint.convert_nyu_state_dict`.

Files are read with ``torch.load(..., weights_only=True)``: a file that needs anything but tensors and plain
containers is refused, and so are weights holding NaN or Inf (a diverged run; ``allow_non_finite=True`` reads
them anyway). :func:`load_glam_weights` loads the result into an existing GLAM (``train --init``,
staged training) and :func:`load_model` builds GLAM from a model config first (inference).

**Model configs.** A *model config* is a JSON object of :class:`~monai_glam.networks.GLAM` constructor
arguments, so a small model can be rebuilt for its checkpoint. Two optional reserved keys carry what inference
must repeat from training::

    {"patch_size": 32, "global_channels": [8, 8, 16, 16, 16], "local_channels": [8, 8, 8, 8],
     "preprocessing": {"spatial_size": [256, 160], "erosion_iterations": 9, "buffer": 4},
     "thresholds": [0.4, 0.5]}

Every GLAM argument is checked against the constructor's annotations (integers must be integers, not
booleans or strings; sequences lists of the right length), and errors read ``<file>: <key> must be <type>, got
<value>``. ``monai-glam train`` writes ``model_config.json`` next to ``last.pt``/``best.pt``. The commands resolve the
configuration in this order: an explicit ``--model-config`` file, ``model_config.json`` beside the checkpoint,
GLAM's paper defaults.
"""

from __future__ import annotations

import inspect
import json
import math
import os
import re
import typing
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from monai_glam.networks.nets.glam import GLAM
from monai_glam.networks.nyu_checkpoint import convert_nyu_state_dict, is_nyu_state_dict
from monai_glam.utils.atomic import atomic_write_text
from monai_glam.utils.json_files import read_json

__all__ = [
    "MODEL_CONFIG_NAME",
    "PREPROCESSING_KEYS",
    "ModelConfig",
    "glam_argument_names",
    "is_nyu_state_dict",
    "load_glam_weights",
    "load_model",
    "read_glam_state_dict",
    "read_model_config",
    "resolve_model_config",
    "save_model_config",
]

#: File name of the model config that ``monai-glam train`` writes beside its checkpoints.
MODEL_CONFIG_NAME = "model_config.json"
#: Keys allowed in the ``preprocessing`` section.
PREPROCESSING_KEYS = ("spatial_size", "erosion_iterations", "buffer")
_RESERVED_KEYS = ("preprocessing", "thresholds")
#: Entries under which checkpoints keep the weights, looked for in this order (nested wrappers are unwrapped).
_WRAPPER_KEYS = ("network", "state_dict", "model")
#: At most this many key names are quoted when weights do not fit a GLAM.
_MAX_EXAMPLES = 5
_MAX_REASON_CHARS = 200


# ----------------------------------------------------------------------------------------------------------------
# Model configs
# ----------------------------------------------------------------------------------------------------------------


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


#: Sequence arguments of GLAM with a fixed length.
_FIXED_LENGTHS = {"patch_size": 2, "scale_weights": 3}
#: Sequence arguments whose length must match another argument's (given or default) length.
_MATCHING_LENGTHS = {
    "global_blocks": "global_channels",
    "global_strides": "global_channels",
    "local_blocks": "local_channels",
}


def _glam_parameters() -> dict[str, inspect.Parameter]:
    """GLAM's constructor parameters with their annotations resolved to types."""
    signature = inspect.signature(GLAM.__init__, eval_str=True)
    return {name: parameter for name, parameter in signature.parameters.items() if name != "self"}


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _is_sequence(annotation: Any) -> bool:
    origin = typing.get_origin(annotation)
    return origin is not None and isinstance(origin, type) and issubclass(origin, Sequence)


def _check_typed(value: Any, annotation: Any, length: int | None) -> tuple[bool, str]:
    """Whether ``value`` fits ``annotation`` (a JSON-like value), and the expected type in words."""
    if annotation is bool:
        return isinstance(value, bool), "true or false"
    if annotation is int:
        return _is_int(value), "an integer"
    if annotation is float:
        return _is_number(value), "a finite number"
    if _is_sequence(annotation):
        (item,) = typing.get_args(annotation) or (Any,)
        check, noun = (_is_int, "integers") if item is int else (_is_number, "finite numbers")
        words = f"a list of {length} {noun}" if length is not None else f"a non-empty list of {noun}"
        fits = (
            isinstance(value, (list, tuple))
            and len(value) == (length if length is not None else max(len(value), 1))
            and all(check(entry) for entry in value)
        )
        return fits, words
    options = typing.get_args(annotation)
    if options:  # a union such as int | Sequence[int]
        results = [_check_typed(value, option, length) for option in options if option is not type(None)]
        return any(fits for fits, _ in results), " or ".join(words for _, words in results)
    return True, "any value"


def _check_glam_kwargs(kwargs: Mapping[str, Any], where: str) -> dict[str, Any]:
    known = glam_argument_names()
    unknown = sorted(str(key) for key in kwargs if key not in known)
    if unknown:
        raise ValueError(f"{where}: unknown GLAM argument(s) {unknown}; expected some of {list(known)}")
    parameters = _glam_parameters()
    for key, value in kwargs.items():
        parameter = parameters[key]
        length = _FIXED_LENGTHS.get(key)
        if key in _MATCHING_LENGTHS:
            other = _MATCHING_LENGTHS[key]
            reference = kwargs.get(other, parameters[other].default)
            length = len(reference) if isinstance(reference, (list, tuple)) else None
        fits, expected = _check_typed(value, parameter.annotation, length)
        if not fits:
            if key in _MATCHING_LENGTHS and length is not None:
                expected += f" (one per {_MATCHING_LENGTHS[key]} entry)"
            raise ValueError(f"{where}: {key} must be {expected}, got {json.dumps(value, default=repr)}")
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


def _check_thresholds(values: Any, where: str, num_classes: Any = None) -> tuple[float, ...]:
    if isinstance(values, (str, bytes)) or not isinstance(values, Sequence) or not values:
        raise ValueError(f"{where}: thresholds must be a list of numbers, got {json.dumps(values, default=repr)}")
    if not all(_is_number(v) for v in values):
        raise ValueError(f"{where}: thresholds must be a list of numbers, got {json.dumps(values, default=repr)}")
    thresholds = tuple(float(v) for v in values)
    if not all(0.0 <= t <= 1.0 for t in thresholds):
        raise ValueError(f"{where}: thresholds must lie in [0, 1], got {list(thresholds)}")
    if _is_int(num_classes) and len(thresholds) != num_classes:
        raise ValueError(f"{where}: thresholds must be {num_classes} numbers (one per class), got {list(thresholds)}")
    return thresholds


def _parse_model_config(document: Any, where: str, source: Path | None = None) -> ModelConfig:
    if not isinstance(document, Mapping):
        raise ValueError(f"{where}: a model config is a JSON object of GLAM arguments, got {type(document).__name__}")
    glam = _check_glam_kwargs({k: v for k, v in document.items() if k not in _RESERVED_KEYS}, where)
    preprocessing = _check_preprocessing(document.get("preprocessing", {}), where)
    num_classes = glam.get("num_classes", _glam_parameters()["num_classes"].default)
    thresholds = _check_thresholds(document["thresholds"], where, num_classes) if "thresholds" in document else None
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
    return _parse_model_config(read_json(source, "model config"), str(source), source)


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


# ----------------------------------------------------------------------------------------------------------------
# Checkpoints
# ----------------------------------------------------------------------------------------------------------------


def _one_line(text: str, limit: int = _MAX_REASON_CHARS) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


#: How much of a raw pickle :func:`_referenced_global` scans for the code it references.
_PICKLE_SCAN_BYTES = 1 << 20


def _referenced_global(source: Path) -> str | None:
    """The first ``module.name`` a raw (non-zip) pickle file references, read from its opcodes without running it.

    torch's safe loader names the offending global only for some pickle protocols; this finds it for all of them
    (``GLOBAL`` carries ``"module name"``, ``STACK_GLOBAL`` takes the two strings pushed before it).
    """
    import pickletools
    import zipfile

    if zipfile.is_zipfile(source):
        return None
    with open(source, "rb") as handle:
        data = handle.read(_PICKLE_SCAN_BYTES)
    strings: list[str] = []
    try:
        for opcode, arg, _ in pickletools.genops(data):
            if opcode.name == "GLOBAL" and isinstance(arg, str):
                return ".".join(arg.split(" ", 1))
            if opcode.name == "STACK_GLOBAL" and len(strings) >= 2:
                return f"{strings[-2]}.{strings[-1]}"
            if isinstance(arg, str):
                strings.append(arg)
    except Exception:  # truncated or not a pickle: nothing more to learn from it
        return None
    return None


def _load_failure_reason(err: BaseException, source: Path) -> str:
    """A one-line reason for a failed ``torch.load``, without torch's advice to drop ``weights_only``."""
    text = str(err)
    if isinstance(err, EOFError):
        return "truncated file (the data ends early)"
    if "weights only load failed" in text.lower() or "weights_only" in text:
        found = re.search(r"GLOBAL\s+([\w.]+)", text)
        name = found.group(1) if found is not None else _referenced_global(source)
        if name is not None:
            return (
                f"refused: it references {name}, and only tensors and plain containers are loaded "
                "(the file may run code when unpickled)"
            )
        return "not a PyTorch checkpoint of tensors (its pickle data cannot be loaded safely)"
    first = _one_line(re.split(r"(?<=\.)\s", text.strip(), maxsplit=1)[0]) or type(err).__name__
    # torch's zip reader seeks before the start of a cut archive: "[Errno 22] Invalid argument".
    if any(word in text.lower() for word in ("eof", "zip archive", "corrupt", "invalid argument")):
        return f"corrupt or truncated file ({first})"
    return f"{type(err).__name__}: {first}"


def _unwrap(loaded: Any) -> Any:
    """The weights inside a checkpoint: descend through ``network``/``state_dict``/``model`` entries."""
    state = loaded
    for _ in range(len(_WRAPPER_KEYS)):
        if not isinstance(state, Mapping) or all(isinstance(value, torch.Tensor) for value in state.values()):
            break
        inner = next((state[key] for key in _WRAPPER_KEYS if isinstance(state.get(key), Mapping)), None)
        if inner is None:
            break
        state = inner
    return state


def _check_state_dict(state: Any, source: Path) -> dict[str, torch.Tensor]:
    where = f"checkpoint {source}"
    if not isinstance(state, Mapping):
        raise ValueError(f"{where} holds a {type(state).__name__}, not a GLAM state dict of tensors")
    if not state:
        raise ValueError(f"{where} holds an empty state dict")
    for key, value in state.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            wrappers = ", ".join(repr(name) for name in _WRAPPER_KEYS)
            raise ValueError(
                f"{where} holds no GLAM state dict of tensors: entry {_one_line(repr(key), 60)} is a "
                f"{type(value).__name__} (expected tensors, or the weights under {wrappers})"
            )
    return dict(state)


def _check_finite(state: Mapping[str, torch.Tensor], source: Path) -> None:
    """Refuse weights holding NaN or Inf (what a diverged run leaves), naming the first such key."""
    for key, value in state.items():
        if (value.is_floating_point() or value.is_complex()) and not bool(torch.isfinite(value).all()):
            kind = "NaN" if bool(torch.isnan(value).any()) else "Inf"
            raise ValueError(
                f"checkpoint {source} holds non-finite weights ({kind} in {key}); the run that wrote it probably "
                "diverged"
            )


def read_glam_state_dict(
    path: str | os.PathLike[str], map_location: str | torch.device = "cpu", allow_non_finite: bool = False
) -> dict[str, torch.Tensor]:
    """Read GLAM weights from any checkpoint layout the package meets (see the module docstring).

    The file is read with ``torch.load(..., weights_only=True)``; published NYU layouts come back renamed to
    :class:`GLAM`'s parameter names.

    Args:
        path: the weights file.
        map_location: where to put the tensors.
        allow_non_finite: accept weights holding NaN or Inf (refused by default).

    Returns:
        A ``GLAM.state_dict()``-named dict of tensors.

    Raises:
        FileNotFoundError: no such file.
        ValueError: a one-line reason naming the file: empty, truncated or corrupt, refused as unsafe (it
            references code), holding no state dict of tensors, a published layout with unknown keys, or
            weights holding NaN/Inf (the first such key is named) unless ``allow_non_finite``.
    """
    source = Path(path)
    if source.is_dir():
        raise ValueError(f"cannot read checkpoint {source}: it is a directory, not a file")
    if not source.is_file():
        raise FileNotFoundError(f"checkpoint not found: {source} (no such checkpoint file)")
    if source.stat().st_size == 0:
        raise ValueError(f"cannot read checkpoint {source}: empty file")
    try:
        with warnings.catch_warnings():
            # Raw pickles of a newer protocol make torch warn before it (safely) reads or refuses them.
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            loaded = torch.load(source, map_location=map_location, weights_only=True)
    except Exception as err:  # torch raises many types for corrupt, truncated or unsafe files
        # ``from None``: torch's own message advises reloading with weights_only=False, which would run the code.
        raise ValueError(f"cannot read checkpoint {source}: {_load_failure_reason(err, source)}") from None
    state = _check_state_dict(_unwrap(loaded), source)
    if is_nyu_state_dict(state):
        try:
            state = convert_nyu_state_dict(state)
        except ValueError as err:
            raise ValueError(f"checkpoint {source} (published layout): {_one_line(str(err), 300)}") from err
    if not allow_non_finite:
        _check_finite(state, source)
    return state


def _examples(keys: Sequence[str], budget: int) -> str:
    shown = ", ".join(keys[:budget])
    return shown + (f", ... (+{len(keys) - budget} more)" if len(keys) > budget else "")


def _fit_problems(expected: Mapping[str, torch.Tensor], state: Mapping[str, torch.Tensor], strict: bool) -> str:
    """``""`` when ``state`` fits ``expected``; else counts per kind with at most :data:`_MAX_EXAMPLES` names."""
    groups: list[tuple[str, list[str]]] = [
        (
            "mis-shaped",
            [
                f"{key} {tuple(state[key].shape)} != {tuple(value.shape)}"
                for key, value in expected.items()
                if key in state and state[key].shape != value.shape
            ],
        )
    ]
    if strict:
        groups.insert(0, ("missing", [key for key in expected if key not in state]))
        groups.insert(1, ("unexpected", [key for key in state if key not in expected]))
    groups = [(kind, keys) for kind, keys in groups if keys]
    if not groups:
        return ""
    # Share the example budget between the kinds, in order (the first kinds get the remainder).
    share, extra = divmod(_MAX_EXAMPLES, len(groups))
    return "; ".join(
        f"{kind} {len(keys)} key(s): {_examples(keys, share + (i < extra))}" for i, (kind, keys) in enumerate(groups)
    )


def _load_state(
    glam: GLAM, state: Mapping[str, torch.Tensor], source: Path, strict: bool, origin: str, hint: str
) -> GLAM:
    expected = glam.state_dict()
    problems = _fit_problems(expected, state, strict)
    if problems:
        raise ValueError(f"checkpoint {source} does not fit {origin} ({problems}); {hint}")
    glam.load_state_dict({key: value for key, value in state.items() if key in expected}, strict=strict)
    return glam


def load_glam_weights(
    glam: GLAM, path: str | os.PathLike[str], strict: bool = True, allow_non_finite: bool = False
) -> GLAM:
    """Load the weights of any checkpoint layout (:func:`read_glam_state_dict`) into an existing GLAM.

    Used to start a training stage from another stage's checkpoint or from a published NYU checkpoint
    (``monai-glam train --init``). The module keeps its device and its train/eval mode.

    Args:
        glam: the model (a :class:`GLAM` or :class:`~monai_glam.networks.GLAMSingleOutput`).
        path: the weights file.
        strict: require exactly GLAM's keys; ``False`` loads the keys both have (shapes must still match).
        allow_non_finite: accept weights holding NaN or Inf (refused by default).

    Returns:
        ``glam``, with the weights loaded.

    Raises:
        FileNotFoundError: no such file.
        ValueError: an unreadable file (see :func:`read_glam_state_dict`), or weights that do not fit ``glam``:
            counts of missing, unexpected and mis-shaped keys with a few examples.
    """
    source = Path(path)
    hint = "build GLAM with the model config (model_config.json) or preset it was trained with"
    state = read_glam_state_dict(source, allow_non_finite=allow_non_finite)
    return _load_state(glam, state, source, strict, "this GLAM configuration", hint)


def load_model(
    checkpoint: str | os.PathLike[str],
    model_config: str | os.PathLike[str] | ModelConfig | None = None,
    device: str | torch.device = "cpu",
) -> GLAM:
    """Build GLAM from its configuration and load a checkpoint into it, in eval mode on ``device``.

    The checkpoint may be in any layout :func:`read_glam_state_dict` reads: a training checkpoint
    (``last.pt``/``best.pt``), a bare or wrapped ``GLAM.state_dict()``, or a published NYU checkpoint
    (``model_sep.ckpt``/``model_joint.ckpt``). Files are read with ``weights_only=True``.

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
        raise FileNotFoundError(f"checkpoint not found: {path} (no such checkpoint file)")
    config = model_config if isinstance(model_config, ModelConfig) else resolve_model_config(path, model_config)
    origin = f"model config {config.source}" if config.source is not None else "the paper's GLAM configuration"
    try:
        model = GLAM(**config.glam)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{origin}: {err}") from err
    hint = "pass the model config it was trained with"
    _load_state(model, read_glam_state_dict(path), path, True, origin, hint)
    return model.to(device).eval()
