"""Map network-frame outputs (saliency maps, masks) back onto the original mammogram with MONAI's ``Invertd``."""

from __future__ import annotations

import contextlib
import threading

import torch
from monai.data import MetaTensor
from monai.transforms import Invertd, InvertibleTransform

__all__ = ["OriginalGeometryInverter"]

_PRED_KEY = "_monai_glam_pred"


class OriginalGeometryInverter:
    """Undo the spatial preprocessing (window, crop padding, flip, breast crop) of a network-frame output.

    The preprocessed image carries the spatial operations it went through (``applied_operations``);
    :class:`monai.transforms.Invertd` replays their inverses on the output. Non-invertible steps of the chain
    (loading, intensity standardization) are skipped by MONAI. Pixels outside the window come back as 0.

    Args:
        transform: the preprocessing chain the image went through (e.g. ``nyu_preprocessing_transforms(...)``).
        orig_key: the image key of that chain.
        lock: held while inverting. MONAI's ``Invertd`` switches ``allow_missing_keys`` on every transform of
            ``transform`` for the duration of the inversion, so a thread that runs the same chain forward at that
            moment (a pipelined :func:`~monai_glam.engines.run_inference` preprocessing the next image) must hold
            the same lock. ``None``: no locking (one thread uses the chain).

    Example::

        >>> chain = nyu_preprocessing_transforms(spatial_size=(256, 160), erosion_iterations=9, buffer=4)
        >>> item = chain({"image": "0_L-CC.png"})
        >>> raw_map = OriginalGeometryInverter(chain)(saliency, item["image"])   # (C, H_raw, W_raw)
    """

    def __init__(
        self, transform: InvertibleTransform, orig_key: str = "image", lock: threading.Lock | None = None
    ) -> None:
        if not isinstance(transform, InvertibleTransform):
            raise ValueError(f"transform must be an InvertibleTransform (e.g. a Compose), got {type(transform)!r}")
        self.orig_key = orig_key
        self.lock = lock
        self._inverters = {
            nearest: Invertd(_PRED_KEY, transform, orig_keys=orig_key, nearest_interp=nearest)
            for nearest in (False, True)
        }

    def __call__(self, data: torch.Tensor, reference: torch.Tensor, nearest: bool = False) -> torch.Tensor:
        """Map ``data`` from ``reference``'s frame back to the original image.

        Args:
            data: ``(C, h, w)`` output on the preprocessed image.
            reference: the preprocessed ``(1, h, w)`` image, a MetaTensor with its ``applied_operations``.
            nearest: nearest-neighbour interpolation where an inverse interpolates (masks); crop, pad and flip
                do not interpolate.

        Returns:
            ``(C, H, W)`` plain tensor in the original geometry.

        Raises:
            ValueError: ``reference`` is not a MetaTensor with recorded operations, or the shapes differ.
        """
        if not isinstance(reference, MetaTensor) or not reference.applied_operations:
            raise ValueError("reference must be the preprocessed MetaTensor with its applied_operations")
        if data.ndim != 3 or tuple(data.shape[1:]) != tuple(reference.shape[1:]):
            raise ValueError(
                f"data must be (C, {reference.shape[1]}, {reference.shape[2]}) like the reference, "
                f"got {tuple(data.shape)}"
            )
        # Invertd only replays the reference's operations on a MetaTensor prediction.
        tensor = MetaTensor((data.as_tensor() if isinstance(data, MetaTensor) else data).detach().cpu())
        with self.lock if self.lock is not None else contextlib.nullcontext():
            result = self._inverters[bool(nearest)]({_PRED_KEY: tensor, self.orig_key: reference})
        out = result[_PRED_KEY]
        return out.as_tensor() if isinstance(out, MetaTensor) else torch.as_tensor(out)
