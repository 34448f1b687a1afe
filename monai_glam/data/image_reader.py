"""``load_mammogram``: one entry point for DICOM, PNG (8/16-bit) and NIfTI mammograms.

Every path returns a float32 :class:`~monai.data.MetaTensor` of shape (1, H, W) in natural (rows, columns)
order, with the metadata the preprocessing needs (laterality, view, spacing, bit depth, source path).
"""

from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.data import MetaTensor
from monai.utils import optional_import

from monai_glam.data.dicom import read_dicom_mammogram
from monai_glam.data.errors import MammogramReadError
from monai_glam.data.meta import (
    BITS_STORED,
    FILENAME,
    HORIZONTAL_FLIP,
    LATERALITY,
    SPACING,
    VIEW,
    normalize_laterality,
    normalize_view,
    parse_view_name,
)

nibabel, has_nibabel = optional_import("nibabel")
PILImage, has_pil = optional_import("PIL.Image")

__all__ = ["load_mammogram", "read_image_array"]

_NIFTI_SUFFIXES = (".nii", ".nii.gz")
_DICOM_SUFFIXES = (".dcm", ".dicom", ".dic")
# Pillow modes that are not single-channel grayscale.
_COLOUR_MODES = ("RGB", "RGBA", "RGBX", "P", "PA", "LA", "La", "CMYK", "YCbCr", "LAB", "HSV")
_PIL_MODE_BITS = {"1": 1, "L": 8, "I;16": 16, "I;16L": 16, "I;16B": 16, "I;16N": 16, "I": 32, "F": 32}


def _sniff_format(path: Path) -> str:
    """``"dicom"``, ``"nifti"`` or ``"pil"`` from the file's first bytes, then from its name."""
    with open(path, "rb") as handle:
        head = handle.read(132)
    if not head:
        raise MammogramReadError(path, "empty file (0 bytes)")
    if head[128:132] == b"DICM":
        return "dicom"
    name = path.name.lower()
    if name.endswith(_NIFTI_SUFFIXES):
        return "nifti"
    if name.endswith(_DICOM_SUFFIXES):
        return "dicom"
    return "pil"


def _read_pil(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    if not has_pil:
        raise ImportError("reading PNG needs Pillow: pip install pillow")
    try:
        with PILImage.open(path) as image:
            if getattr(image, "n_frames", 1) != 1:
                raise MammogramReadError(path, f"multi-frame image ({image.n_frames} frames); one 2-D image expected")
            if image.mode in _COLOUR_MODES:
                raise MammogramReadError(path, f"colour image (mode {image.mode}); a grayscale mammogram is expected")
            image.load()
            mode = image.mode
            pixels = np.array(image)
    except MammogramReadError:
        raise
    except PILImage.DecompressionBombError as err:  # not an OSError; raised before any pixel is decoded
        raise MammogramReadError(path, f"refused as a possible decompression bomb ({err})") from err
    except (OSError, SyntaxError, ValueError) as err:  # Pillow's errors for unknown, corrupt or truncated files
        raise MammogramReadError(path, f"corrupt, truncated or unsupported image file ({err})") from err
    bits = _PIL_MODE_BITS.get(mode, pixels.dtype.itemsize * 8)
    return pixels, {BITS_STORED: bits, SPACING: None}


def _read_nifti(path: Path) -> tuple[np.ndarray, dict[str, Any]]:
    if not has_nibabel:
        raise ImportError("reading NIfTI needs nibabel: pip install nibabel")
    try:
        volume = nibabel.load(str(path))
        pixels = np.asanyarray(volume.dataobj)
        zooms = tuple(float(z) for z in volume.header.get_zooms())
    except Exception as err:  # nibabel raises assorted types (ImageFileError, EOFError, zlib.error, ...)
        raise MammogramReadError(path, f"corrupt or truncated NIfTI file ({type(err).__name__}: {err})") from err
    # A 2-D image saved by some tools has trailing singleton dimensions; anything else is a volume.
    while pixels.ndim > 2 and pixels.shape[-1] == 1:
        pixels = pixels[..., 0]
    # Voxel sizes of 0, NaN or Inf (some tools leave pixdim unset) mean the spacing is unknown.
    spacing = zooms[:2] if len(zooms) >= 2 and all(np.isfinite(z) and z > 0 for z in zooms[:2]) else None
    bits = pixels.dtype.itemsize * 8
    return pixels, {BITS_STORED: bits, SPACING: spacing}


def read_image_array(path: str | os.PathLike[str]) -> tuple[np.ndarray, dict[str, Any]]:
    """Read the pixels of a mammogram file without any checks beyond decoding.

    Args:
        path: DICOM, PNG (or another Pillow format) or NIfTI file.

    Returns:
        ``(pixels, meta)``: the array as stored (rows, columns) and what the file says about it.

    Raises:
        FileNotFoundError: the file does not exist.
        MammogramReadError: the path is a directory or not a regular file (a FIFO, ...), or the file cannot be
            decoded (including images larger than Pillow's decompression-bomb limit).
    """
    file_path = Path(path)
    try:
        mode = file_path.stat().st_mode
    except (FileNotFoundError, NotADirectoryError):
        raise FileNotFoundError(f"{file_path}: no such file") from None
    except OSError as err:
        raise MammogramReadError(file_path, f"cannot be read ({err.strerror or type(err).__name__})") from None
    if stat.S_ISDIR(mode):
        raise MammogramReadError(file_path, "is a directory, not an image file")
    if not stat.S_ISREG(mode):  # a FIFO or device would block or never end; a socket cannot be opened
        raise MammogramReadError(file_path, "is not a regular file (a FIFO, socket or device)")
    file_format = _sniff_format(file_path)
    if file_format == "dicom":
        return read_dicom_mammogram(file_path)
    if file_format == "nifti":
        return _read_nifti(file_path)
    return _read_pil(file_path)


def _check_pixels(path: Path, pixels: np.ndarray) -> np.ndarray:
    if pixels.size == 0:
        raise MammogramReadError(path, f"empty image of shape {pixels.shape}")
    if pixels.ndim != 2:
        raise MammogramReadError(path, f"{pixels.ndim}-D image of shape {pixels.shape}; a 2-D mammogram is expected")
    if pixels.dtype.kind not in "biuf":
        raise MammogramReadError(path, f"unsupported pixel type {pixels.dtype}")
    values = pixels.astype(np.float32)
    if not np.isfinite(values).all():
        raise MammogramReadError(path, f"{int((~np.isfinite(values)).sum())} pixels are NaN or infinite")
    return values


def load_mammogram(
    path: str | os.PathLike[str],
    laterality: str | None = None,
    view: str | None = None,
    horizontal_flip: bool = False,
) -> MetaTensor:
    """Load a mammogram as a (1, H, W) float32 MetaTensor in natural (rows, columns) orientation.

    Pixel values are not rescaled: a 12-bit PNG keeps values in ``[0, 4095]``; DICOM values are MONOCHROME2
    (MONOCHROME1 inverted within ``BitsStored``) with the modality rescale applied.

    Laterality and view come from the arguments when given, else from the DICOM tags, else from a file name
    in the NYU convention (``0_L-CC.png``); they are ``""`` when unknown.

    Args:
        path: DICOM, 8/16-bit PNG, or NIfTI (``.nii``/``.nii.gz``; array axis 0 is taken as rows, as MONAI's
            ``NibabelReader`` returns it) file.
        laterality: ``"L"`` or ``"R"``, overrides the file.
        view: view code such as ``"CC"`` or ``"MLO"`` (``"L-CC"`` also accepted), overrides the file.
        horizontal_flip: the exam list's flag that the image is stored mirrored (see ``OrientToRight``).

    Returns:
        MetaTensor (1, H, W), float32. ``meta`` holds ``filename_or_obj``, ``laterality``, ``view``,
        ``spacing`` ((row, col) mm; ``(1.0, 1.0)`` when the file has none), ``bits_stored``,
        ``horizontal_flip``, ``spatial_shape`` and an affine with the spacing on its diagonal.

    Raises:
        FileNotFoundError: no such file.
        MammogramReadError: (a ``ValueError``) the path is a directory or a FIFO, the file is empty, corrupt,
            truncated, colour, 3-D, multi-frame, NaN-filled, not an image, larger than Pillow's decompression-bomb
            limit, or compressed with a codec whose decoder is not installed.
    """
    file_path = Path(path)
    pixels, file_meta = read_image_array(file_path)
    values = _check_pixels(file_path, pixels)

    name_laterality, name_view = parse_view_name(file_path)
    view_text = str(view or "")
    laterality = normalize_laterality(laterality) or normalize_laterality(view_text[:1] if "-" in view_text else "")
    spacing = file_meta.get(SPACING) or (1.0, 1.0)
    meta: dict[str, Any] = {
        **file_meta,
        FILENAME: str(file_path),
        LATERALITY: laterality or file_meta.get(LATERALITY) or name_laterality,
        VIEW: normalize_view(view) or file_meta.get(VIEW) or name_view,
        SPACING: (float(spacing[0]), float(spacing[1])),
        HORIZONTAL_FLIP: bool(horizontal_flip),
        "spatial_shape": np.asarray(values.shape),
        "original_channel_dim": "no_channel",
    }
    affine = torch.diag(torch.tensor([meta[SPACING][0], meta[SPACING][1], 1.0], dtype=torch.float64))
    meta["original_affine"] = affine.clone()
    return MetaTensor(torch.from_numpy(values[None]), affine=affine, meta=meta)
