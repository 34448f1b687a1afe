"""MONAI Label infer tasks: ``glam`` (segmentation: a labelmap or one class's map, polygons, scores) and
``glam_classification`` (the image scores as MONAI Label's classification ``prediction``).

Both run :class:`~monai_glam.integrations.GLAMPredictor`, so the preprocessing, the inferer, the mapping back
onto the raw image and the reload of a newly published checkpoint are those of the library. They derive from
MONAI Label's plain ``InferTask`` rather than ``BasicInferTask``: the latter's checkpoint loading
(``torch.load`` and a fixed state-dict key), transform runner and ITK writer (which transposes 2-D arrays and
writes a ``.dcm`` label for a DICOM image) are all replaced by the library's.

Bad requests become ``fastapi.HTTPException``: an unknown image 404, an unreadable, colour, multi-frame or
otherwise unusable image and a bad parameter 422, each with the library's one-line message, instead of
MONAI Label's bare 500.
"""

from __future__ import annotations

import os
import tempfile
import time
from collections.abc import Mapping
from typing import Any

from monai.utils import optional_import

from monai_glam.integrations.outputs import (
    GLAM_OUTPUTS,
    LABEL_EXTENSIONS,
    classification_result,
    fuse_labelmap,
    label_values,
    labelmap_polygons,
    saliency_file_array,
    segmentation_result,
    write_label_file,
)
from monai_glam.integrations.serving import BadImageError, GLAMPrediction, GLAMPredictor
from monai_glam.integrations.settings import GLAMServerSettings, parse_thresholds
from monai_glam.metrics.utils import json_safe
from monai_glam.utils.enums import CLASS_NAMES

InferTask, _ = optional_import("monailabel.interfaces.tasks.infer_v2", name="InferTask")
InferType, _ = optional_import("monailabel.interfaces.tasks.infer_v2", name="InferType")
name_to_device, _ = optional_import("monailabel.utils.others.generic", name="name_to_device")
HTTPException, _ = optional_import("fastapi", name="HTTPException")

__all__ = ["GLAMClassificationTask", "GLAMSegmentationTask", "request_error"]


def request_error(status: int, message: object) -> Exception:
    """A ``fastapi.HTTPException`` whose JSON ``detail`` is one line."""
    return HTTPException(status_code=status, detail=" ".join(str(message).split()))


def _first(value: Any) -> Any:
    """A config value as a request means it: a list of choices (MONAI Label shows them as a menu) is its first."""
    return value[0] if isinstance(value, list) and value else value


class _GLAMInferTask(InferTask):
    """What both GLAM infer tasks share: the request, the device, the prediction and its errors."""

    def __init__(
        self,
        predictor: GLAMPredictor,
        settings: GLAMServerSettings,
        infer_type: Any,
        labels: Any,
        description: str,
        config: Mapping[str, Any] | None = None,
    ) -> None:
        super().__init__(
            type=infer_type, labels=labels, dimension=2, description=description, config=dict(config or {})
        )
        self.predictor = predictor
        self.settings = settings

    def is_valid(self) -> bool:
        return self.predictor.checkpoint.is_file()

    def get_path(self, validate: bool = True) -> str | None:
        """The served checkpoint (MONAI Label's ``GET /model/{model}`` sends it)."""
        path = self.predictor.checkpoint
        return str(path) if path.is_file() or not validate else None

    def info(self) -> dict[str, Any]:
        info = super().info()
        glam: dict[str, Any] = {
            "mammography": True,
            "checkpoint": self.predictor.checkpoint.name,
            "sliding_window": self.settings.sliding_window,
        }
        try:
            current = self.predictor.settings()
            glam.update(window=list(current.window), thresholds=list(current.thresholds), device=current.device)
        except (OSError, ValueError) as err:  # /info must answer even while the model cannot be loaded
            glam["error"] = " ".join(str(err).split())
        info["glam"] = glam
        return json_safe(info)

    def _request(self, request: Mapping[str, Any]) -> dict[str, Any]:
        merged = dict(self.config())
        merged.update(request)
        return merged

    def _device(self, request: Mapping[str, Any]) -> str | None:
        """The request's device (MONAI Label clients may send a GPU's name), else the server's default."""
        device = request.get("device")
        if device in (None, "", []):
            return None
        return str(name_to_device(device))

    def _predict(self, request: Mapping[str, Any], maps: bool) -> GLAMPrediction:
        image = request.get("image")
        if not isinstance(image, str) or not image:
            raise request_error(404, "no image: give an image id of the datastore or upload a file")
        try:
            thresholds = None
            if request.get("thresholds") not in (None, "", []):
                thresholds = parse_thresholds(request["thresholds"], "params.thresholds", len(CLASS_NAMES))
            device = self._device(request)
        except ValueError as err:
            raise request_error(422, err) from None
        try:
            return self.predictor.predict(image, thresholds=thresholds, device=device, maps=maps)
        except FileNotFoundError as err:
            raise request_error(404, err) from None
        except BadImageError as err:
            raise request_error(422, err) from None


class GLAMSegmentationTask(_GLAMInferTask):
    """``glam``: the labelmap in the original image geometry (0 background, 1 benign, 2 malignant; malignant wins
    where both exceed their thresholds), or one class's fused map, plus scores, thresholds and CVAT polygons.

    Request parameters (``params``):

    - ``glam_output``: ``labelmap`` (default), ``saliency_benign`` or ``saliency_malignant`` (the fused map as a
      16-bit PNG ``round(65535 * S)``, float32 in NIfTI/NRRD);
    - ``result_extension``: ``.png`` (default), ``.nrrd``, ``.nii.gz`` or ``.nii``;
    - ``thresholds``: ``[benign, malignant]`` instead of the server's;
    - ``device``: run on this device.
    """

    def __init__(self, predictor: GLAMPredictor, settings: GLAMServerSettings) -> None:
        super().__init__(
            predictor,
            settings,
            InferType.SEGMENTATION,
            label_values(CLASS_NAMES),
            "GLAM: benign and malignant findings of a mammogram, learnt from image-level labels (labelmap, "
            "polygons and image scores)",
            config={"glam_output": list(GLAM_OUTPUTS), "result_extension": list(LABEL_EXTENSIONS)},
        )

    def __call__(self, request: Mapping[str, Any]) -> tuple[str | None, dict[str, Any]]:
        begin = time.time()
        req = self._request(request)
        glam_output = str(_first(req.get("glam_output")) or GLAM_OUTPUTS[0])
        extension = str(_first(req.get("result_extension")) or LABEL_EXTENSIONS[0]).lower()
        extension = extension if extension.startswith(".") else f".{extension}"
        if glam_output not in GLAM_OUTPUTS:
            raise request_error(422, f"params.glam_output must be one of {list(GLAM_OUTPUTS)}, got {glam_output!r}")
        if extension not in LABEL_EXTENSIONS:
            raise request_error(
                422, f"params.result_extension must be one of {list(LABEL_EXTENSIONS)}, got {extension!r}"
            )
        prediction = self._predict(req, maps=True)
        inferred = time.time()
        if prediction.saliency is None:  # a bug, not a bad request: maps were asked for
            raise RuntimeError("GLAMPredictor.predict(maps=True) returned no saliency map")
        saliency = prediction.saliency
        labelmap = fuse_labelmap(saliency, prediction.thresholds)
        polygons = labelmap_polygons(labelmap, CLASS_NAMES)
        if glam_output == GLAM_OUTPUTS[0]:
            array = labelmap
        else:
            channel = GLAM_OUTPUTS.index(glam_output) - 1
            array = saliency_file_array(saliency[channel], extension)
        handle, name = tempfile.mkstemp(prefix="glam-", suffix=extension)
        os.close(handle)
        write_label_file(name, array, prediction.spacing)
        result = segmentation_result(
            prediction.prob_global,
            prediction.prob_local,
            prediction.thresholds,
            polygons,
            CLASS_NAMES,
            glam_output=glam_output,
            image_size=labelmap.shape,
        )
        done = time.time()
        result["latencies"] = {
            "infer": round(inferred - begin, 3),
            "post": round(done - inferred, 3),
            "total": round(done - begin, 3),
        }
        return name, result


class GLAMClassificationTask(_GLAMInferTask):
    """``glam_classification``: the image scores, MONAI Label's classification JSON (``prediction`` with the global
    module's score of each class; both modules' scores under ``scores``); no label file."""

    def __init__(self, predictor: GLAMPredictor, settings: GLAMServerSettings) -> None:
        super().__init__(
            predictor,
            settings,
            InferType.CLASSIFICATION,
            list(CLASS_NAMES),
            "GLAM: benign and malignant scores of a mammogram (global module)",
        )

    def __call__(self, request: Mapping[str, Any]) -> tuple[str | None, dict[str, Any]]:
        begin = time.time()
        prediction = self._predict(self._request(request), maps=False)
        result = classification_result(prediction.prob_global, prediction.prob_local, CLASS_NAMES)
        result["latencies"] = {"total": round(time.time() - begin, 3)}
        return None, result
