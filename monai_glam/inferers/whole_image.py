"""Whole-image inference with GLAM: the published mode, one forward pass over the preprocessed image."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch
from monai.inferers import Inferer

from monai_glam.utils.enums import GLAMKeys
from monai_glam.utils.precision import autocast, check_precision, to_float32

__all__ = ["GLAMInferer"]


class GLAMInferer(Inferer):
    """Run GLAM once on the whole (already preprocessed) image and return its output dictionary.

    This is how the published model is used: the input is the standardized 2944×1920 window
    (see ``docs/data.md``) and every output of :class:`~monai_glam.networks.nets.GLAM` is returned, keyed by
    :class:`~monai_glam.utils.enums.GLAMKeys`.

    Args:
        output_keys: keep only these keys of the network's dictionary (for example ``("prob_global",
            "saliency")`` to drop the per-scale maps early and save memory); ``None`` keeps all of them.
            Every name must be a :class:`GLAMKeys` value.
        precision: ``fp32`` (default), ``bf16`` (bfloat16 autocast on the input's device, outputs returned as
            float32) or ``auto`` (``bf16`` where the device supports it natively), see
            :mod:`monai_glam.utils.precision`.

    Raises:
        ValueError: when ``output_keys`` is empty or names an unknown key, or ``precision`` is unknown.

    Example::

        >>> net = GLAM(patch_size=64, global_channels=(8, 8, 16, 16, 32), local_channels=(8, 8, 16, 16)).eval()
        >>> with torch.no_grad():
        ...     out = GLAMInferer()(torch.randn(1, 1, 256, 160), net)
        >>> out["saliency"].shape
        torch.Size([1, 2, 256, 160])
    """

    def __init__(self, output_keys: Sequence[str] | None = None, precision: str = "fp32") -> None:
        super().__init__()
        self.output_keys = _check_output_keys(output_keys)
        self.precision = check_precision(precision)

    def __call__(
        self, inputs: torch.Tensor, network: Callable[..., Mapping[str, torch.Tensor]], *args: Any, **kwargs: Any
    ) -> dict[str, torch.Tensor]:
        """Run ``network(inputs, *args, **kwargs)`` and return its dictionary.

        Args:
            inputs: ``(N, C, H, W)`` preprocessed images.
            network: a :class:`GLAM` (or any callable returning a dictionary keyed by :class:`GLAMKeys`).
            args: extra positional arguments for ``network``.
            kwargs: extra keyword arguments for ``network``.

        Returns:
            The network's outputs, restricted to ``output_keys`` when given.

        Raises:
            ValueError: when ``inputs`` is not 4-D, or the network does not return a dictionary holding the
                requested keys.
        """
        if inputs.dim() != 4:
            raise ValueError(f"expected inputs of shape (N, C, H, W), got {list(inputs.shape)}.")
        with autocast(self.precision, inputs.device):
            outputs = network(inputs, *args, **kwargs)
        if not isinstance(outputs, Mapping):
            raise ValueError(f"GLAMInferer needs a network that returns a dict, got {type(outputs).__name__}.")
        if self.output_keys is None:
            return to_float32(dict(outputs))
        missing = [key for key in self.output_keys if key not in outputs]
        if missing:
            raise ValueError(f"the network's output has no {missing}; it has {sorted(outputs)}.")
        return to_float32({key: outputs[key] for key in self.output_keys})


def _check_output_keys(output_keys: Sequence[str] | None) -> tuple[str, ...] | None:
    """Validate a selection of :class:`GLAMKeys` names; ``None`` means all keys."""
    if output_keys is None:
        return None
    keys = tuple(str(key) for key in output_keys)
    known = {key.value for key in GLAMKeys}
    unknown = [key for key in keys if key not in known]
    if not keys or unknown:
        raise ValueError(f"output_keys must be a non-empty selection of {sorted(known)}, got {output_keys!r}.")
    return keys
