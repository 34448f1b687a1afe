"""Writing 8- and 16-bit grayscale PNG files atomically."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image

from monai_glam.utils.atomic import atomic_output_path

__all__ = ["write_png"]


def write_png(path: str | os.PathLike[str], image: np.ndarray) -> None:
    """Write a (H, W) uint8 or uint16 array as a grayscale PNG (8- or 16-bit), via a temporary file.

    Raises:
        ValueError: not a 2-D uint8/uint16 array.
    """
    pixels = np.asarray(image)
    if pixels.ndim != 2 or pixels.dtype not in (np.uint8, np.uint16):
        raise ValueError(f"write_png needs a 2-D uint8 or uint16 array, got {pixels.dtype} of shape {pixels.shape}")
    with atomic_output_path(path) as temp_path:
        Image.fromarray(pixels).save(temp_path, format="PNG")
