"""GLAM for a server: one image in, image scores and the fused map in the original geometry out.

:class:`GLAMPredictor` runs the path of ``monai-glam infer`` for one image at a time: the model and its settings
come from :func:`~monai_glam.engines.load_inference_model`, the preprocessing from
:func:`~monai_glam.engines.build_inference_transforms`, GLAM runs under :class:`~monai_glam.inferers.GLAMInferer`
(or :class:`~monai_glam.inferers.GLAMSlidingWindowInferer`), and the fused map goes back onto the raw image with
:class:`~monai_glam.writers.OriginalGeometryInverter`. It writes nothing; a server turns the result into files and
JSON (:mod:`monai_glam.integrations.outputs`).

The model is cached per device and reloaded when the checkpoint or its model config changes on disk (size or
modification time), so a server picks up a newly published checkpoint without a restart. Publishers replace the
files with :func:`os.replace` (:mod:`monai_glam.utils.atomic`), so a reader sees either the old or the new file.
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from monai_glam.data.errors import MammogramReadError
from monai_glam.engines import (
    InferenceSettings,
    build_inference_transforms,
    build_inferer,
    load_inference_model,
)
from monai_glam.networks import GLAM
from monai_glam.networks.io import MODEL_CONFIG_NAME
from monai_glam.utils.device import resolve_device
from monai_glam.utils.enums import BatchKeys, GLAMKeys, MetaKeys
from monai_glam.writers import ITEM_ERRORS, OriginalGeometryInverter, describe_error

__all__ = ["BadImageError", "GLAMPrediction", "GLAMPredictor", "resolve_image_file"]

logger = logging.getLogger(__name__)

_OUTPUT_KEYS = (GLAMKeys.PROB_GLOBAL, GLAMKeys.PROB_LOCAL, GLAMKeys.SALIENCY)


class BadImageError(ValueError):
    """An image the model cannot be run on: unreadable, colour, multi-frame, not a mammogram, ...

    The message is one line, ``<file name>: <problem>``, without the server's folders.

    Args:
        image: the image file (or folder).
        problem: what is wrong with it, in words.
    """

    def __init__(self, image: str | os.PathLike[str], problem: str) -> None:
        self.image = os.fspath(image)
        self.problem = problem
        super().__init__(f"{Path(self.image).name or self.image}: {problem}")


def _problem(error: BaseException) -> str:
    """The problem of a preprocessing error in words: a reader error's own text, else ``Type: message``."""
    while isinstance(error, RuntimeError) and error.__cause__ is not None:  # MONAI's transform wrappers
        error = error.__cause__
    if isinstance(error, MammogramReadError):
        return error.problem
    return describe_error(error)


def resolve_image_file(path: str | os.PathLike[str]) -> Path:
    """The image file behind a datastore's image URI: the file itself, or the only file of a series folder.

    A DICOMweb datastore without NIfTI conversion hands over the folder of a downloaded series; a 2-D mammogram
    is one instance in it.

    Raises:
        FileNotFoundError: no such file or folder.
        BadImageError: an empty folder, or a series of several instances (one 2-D mammogram is expected).
    """
    source = Path(path)
    if source.is_file():
        return source
    if not source.exists():
        raise FileNotFoundError(f"{source.name or source}: no such image")
    if not source.is_dir():
        raise BadImageError(source, "is not a regular file")
    files = sorted(p for p in source.iterdir() if p.is_file() and not p.name.startswith("."))
    if len(files) != 1:
        what = "no image file" if not files else f"{len(files)} instances"
        raise BadImageError(source, f"series folder with {what}; one single-frame 2-D mammogram is expected")
    return files[0]


@dataclass(frozen=True)
class GLAMPrediction:
    """GLAM's answer for one image.

    Attributes:
        prob_global: ``(C,)`` image scores of the global module, ŷ_g.
        prob_local: ``(C,)`` image scores of the local module, ŷ_l.
        saliency: ``(C, H, W)`` float32 fused map on the raw image (0 outside the network window), or ``None``
            when maps were not asked for.
        thresholds: the per-class thresholds in force (the request's, else the server's).
        spacing: (row, col) pixel size of the image in mm (``(1, 1)`` when the file has none).
        image: the file that was read.
    """

    prob_global: np.ndarray
    prob_local: np.ndarray
    saliency: np.ndarray | None
    thresholds: tuple[float, ...]
    spacing: tuple[float, float]
    image: Path


@dataclass
class _LoadedModel:
    """A model on one device with everything that was built for it, and the file stamps it was loaded from."""

    model: GLAM
    settings: InferenceSettings
    chain: Any
    inferer: Any
    inverter: OriginalGeometryInverter
    stamp: tuple[Any, ...]


class GLAMPredictor:
    """Run GLAM on single images, reloading the model when its files change.

    Args:
        checkpoint: the weights (any layout :func:`~monai_glam.networks.io.read_glam_state_dict` reads).
        model_config: the model config file; default ``model_config.json`` beside the checkpoint, else the paper's
            GLAM.
        device: default device (``auto``, ``cpu``, ``cuda``, ``cuda:N``).
        inference_options: :func:`~monai_glam.engines.inference_settings` options (``window``,
            ``erosion_iterations``, ``buffer``, ``thresholds``, ``sliding_window``, ``overlap``,
            ``sw_batch_size``, ``precision``); ``None`` values are left to the model config and the defaults.

    Example::

        >>> predictor = GLAMPredictor("app/model/glam/model.pt", device="cpu")
        >>> answer = predictor.predict("0_L-CC.png")
        >>> answer.prob_global, answer.saliency.shape   # (2,), (2, H, W) of the raw image
    """

    def __init__(
        self,
        checkpoint: str | os.PathLike[str],
        model_config: str | os.PathLike[str] | None = None,
        device: str = "auto",
        **inference_options: Any,
    ) -> None:
        self.checkpoint = Path(checkpoint)
        self.model_config = Path(model_config) if model_config is not None else None
        self.device = str(device)
        self.inference_options = {key: value for key, value in inference_options.items() if value is not None}
        self._models: dict[str, _LoadedModel] = {}
        self._lock = threading.Lock()

    # ------------------------------------------------------------------------------------------------------
    # loading

    def config_path(self) -> Path | None:
        """The model config file in use: the given one, else ``model_config.json`` beside the checkpoint, else
        ``None`` (the paper's GLAM)."""
        if self.model_config is not None:
            return self.model_config
        beside = self.checkpoint.parent / MODEL_CONFIG_NAME
        return beside if beside.is_file() else None

    def _stamp(self) -> tuple[Any, ...]:
        """What identifies the files on disk: path, size and modification time of the checkpoint and config."""
        stamp: list[Any] = []
        for path in (self.checkpoint, self.config_path()):
            if path is None:
                stamp.append(None)
                continue
            try:
                info = path.stat()
            except FileNotFoundError:
                raise FileNotFoundError(f"{path}: no such file (the served checkpoint or model config)") from None
            stamp.append((str(path), info.st_size, info.st_mtime_ns))
        return tuple(stamp)

    def _resolve(self, device: str | None) -> str:
        return str(resolve_device(device if device not in (None, "") else self.device))

    def load(self, device: str | None = None) -> _LoadedModel:
        """The model for ``device``, loaded again when its files changed since the last call.

        Raises:
            FileNotFoundError: the checkpoint or model config is gone.
            ValueError: an unreadable checkpoint or config, bad settings, or weights that do not fit.
        """
        name = self._resolve(device)
        with self._lock:
            stamp = self._stamp()
            loaded = self._models.get(name)
            if loaded is not None and loaded.stamp == stamp:
                return loaded
            if loaded is not None:
                logger.info("%s changed on disk: reloading the model on %s", self.checkpoint, name)
            model, settings, _ = load_inference_model(
                self.checkpoint,
                self.config_path(),
                device=name,
                formats=(),
                overlays=False,
                progress=False,
                **self.inference_options,
            )
            chain = build_inference_transforms(
                settings.window,
                settings.erosion_iterations,
                settings.buffer,
                settings.sliding_window,
                mask_keys=(),
                raw_image_key=None,
            )
            inferer = build_inferer(settings, output_keys=_OUTPUT_KEYS)  # the one run_inference uses
            loaded = _LoadedModel(model, settings, chain, inferer, OriginalGeometryInverter(chain), stamp)
            self._models[name] = loaded
            return loaded

    def settings(self, device: str | None = None) -> InferenceSettings:
        """The checked settings of the current model (window, crop parameters, thresholds, ...)."""
        return self.load(device).settings

    # ------------------------------------------------------------------------------------------------------
    # prediction

    def predict(
        self,
        image: str | os.PathLike[str],
        thresholds: Sequence[float] | None = None,
        device: str | None = None,
        maps: bool = True,
    ) -> GLAMPrediction:
        """Scores and (with ``maps``) the fused map on the raw image of one mammogram.

        Args:
            image: a PNG, DICOM or NIfTI file, or a series folder holding one such file.
            thresholds: per-class thresholds to report instead of the server's (checked by the caller).
            device: run on this device instead of the default.
            maps: also map the fused map back onto the raw image (skip it for scores only).

        Raises:
            FileNotFoundError: no such image.
            BadImageError: the image cannot be read or preprocessed (the message is one line).
        """
        source = resolve_image_file(image)
        loaded = self.load(device)
        try:
            data = loaded.chain({BatchKeys.IMAGE.value: str(source)})
        except FileNotFoundError:
            raise
        except ITEM_ERRORS as err:
            raise BadImageError(source, _problem(err)) from err
        preprocessed = data[BatchKeys.IMAGE]
        with torch.inference_mode():
            batch = preprocessed.as_tensor()[None].to(loaded.settings.device)
            outputs = loaded.inferer(batch, loaded.model)
        prob_global = outputs[GLAMKeys.PROB_GLOBAL][0].detach().float().cpu().numpy()
        prob_local = outputs[GLAMKeys.PROB_LOCAL][0].detach().float().cpu().numpy()
        saliency = None
        if maps:
            network_map = outputs[GLAMKeys.SALIENCY][0].detach().float().cpu()
            saliency = loaded.inverter(network_map, preprocessed).numpy().astype(np.float32, copy=False)
        spacing = preprocessed.meta.get(MetaKeys.SPACING)
        spacing = (1.0, 1.0) if spacing is None else np.asarray(spacing, dtype=np.float64).reshape(-1)[:2]
        return GLAMPrediction(
            prob_global=prob_global,
            prob_local=prob_local,
            saliency=saliency,
            thresholds=tuple(float(t) for t in (thresholds or loaded.settings.thresholds)),
            spacing=(float(spacing[0]), float(spacing[1])),
            image=source,
        )
