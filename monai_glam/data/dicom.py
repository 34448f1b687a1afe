"""Reading and writing DICOM mammograms with pydicom (2.4 and 3.x).

The reader returns pixel values in the MONOCHROME2 sense (bright = dense), with the modality rescale applied,
in natural (rows, columns) order. It does not go through MONAI's ``PydicomReader`` on purpose: that reader
returns (columns, rows), does not invert MONOCHROME1 and ignores ``ImagerPixelSpacing``.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
from monai.utils import optional_import

from monai_glam.data.errors import MammogramReadError
from monai_glam.data.meta import (
    BITS_STORED,
    LATERALITY,
    SPACING,
    VIEW,
    normalize_laterality,
    normalize_view,
)
from monai_glam.utils.atomic import atomic_output_path

pydicom, has_pydicom = optional_import("pydicom")

__all__ = [
    "DIGITAL_MAMMOGRAPHY_FOR_PRESENTATION",
    "build_mammogram_dataset",
    "decoder_status",
    "read_dicom_mammogram",
    "write_dicom_mammogram",
]

# SOP class "Digital Mammography X-Ray Image Storage - For Presentation".
DIGITAL_MAMMOGRAPHY_FOR_PRESENTATION = "1.2.840.10008.5.1.4.1.1.1.2"

_PIXEL_DATA_KEYWORDS = ("PixelData", "FloatPixelData", "DoubleFloatPixelData")

# Patient orientation (row direction, column direction) of raw mammograms whose breast points away from the
# chest wall along the rows: left breasts point to the image right (anterior), right breasts to the left.
_PATIENT_ORIENTATION = {
    ("L", "CC"): ["A", "R"],
    ("R", "CC"): ["P", "L"],
    ("L", "MLO"): ["A", "FR"],
    ("R", "MLO"): ["P", "FL"],
}


def _pydicom_major_version() -> int:
    return int(str(pydicom.__version__).split(".")[0])


def _require_pydicom() -> None:
    if not has_pydicom:
        raise ImportError("reading and writing DICOM needs pydicom: pip install pydicom")


def decoder_status(transfer_syntax: Any) -> tuple[bool, str]:
    """Whether pydicom can decode ``transfer_syntax`` here, and if not, which packages would let it.

    Args:
        transfer_syntax: a ``pydicom.uid.UID`` (or its string).

    Returns:
        ``(available, missing)``; ``missing`` lists the installable decoders when none is available.
    """
    _require_pydicom()
    transfer_syntax = pydicom.uid.UID(str(transfer_syntax))
    if not transfer_syntax.is_compressed:
        return True, ""
    try:
        from pydicom.pixels import get_decoder  # pydicom >= 3
    except ImportError:  # pydicom 2.4: ask each pixel data handler
        handlers = pydicom.config.pixel_data_handlers
        if any(h.is_available() and h.supports_transfer_syntax(transfer_syntax) for h in handlers):
            return True, ""
        return False, "pylibjpeg with pylibjpeg-libjpeg / pylibjpeg-openjpeg / pylibjpeg-rle, or python-gdcm"
    try:
        decoder = get_decoder(transfer_syntax)
    except NotImplementedError:
        return False, "nothing: pydicom has no decoder for this transfer syntax"
    return bool(decoder.is_available), "; ".join(decoder.missing_dependencies)


def _require_decoder(path: str, transfer_syntax: Any) -> None:
    """Fail early, naming the packages to install, when compressed pixel data has no decoder here."""
    available, missing = decoder_status(transfer_syntax)
    if not available:
        raise MammogramReadError(
            path,
            f"pixel data is compressed as {transfer_syntax.name} ({transfer_syntax}) and no decoder for it is "
            f"installed; install one of: {missing}",
        )


def _spacing_values(dataset: Any, keyword: str) -> tuple[tuple[float, float] | None, str]:
    """``((row, col), "")`` from a spacing tag, or ``(None, why)``: why is ``""`` when the tag is absent or empty."""
    try:
        value = dataset.get(keyword)
    except Exception as err:  # pydicom converts DS values on access and may reject them
        return None, f"cannot be read ({type(err).__name__}: {err})"
    if value is None or value == "":
        return None, ""
    parts = list(value) if isinstance(value, Sequence) and not isinstance(value, (str, bytes)) else [value]
    text = "'" + "\\".join(str(part) for part in parts) + "'"
    try:
        spacing = tuple(float(part) for part in parts)
    except (TypeError, ValueError):
        return None, f"is {text}, not two numbers (row, column)"
    if len(spacing) != 2:
        return None, f"is {text}, not two numbers (row, column)"
    if not all(math.isfinite(v) and v > 0 for v in spacing):
        return None, f"is {text}; a pixel spacing must be a finite number > 0"
    return (spacing[0], spacing[1]), ""


def _spacing_of(path: str, dataset: Any) -> tuple[float, float] | None:
    """The (row, col) pixel spacing in mm, or ``None`` when the file has no usable one.

    Mammograms carry the detector spacing in ImagerPixelSpacing; PixelSpacing is the general image tag and the
    fallback. The spacing only sets the voxel size of written maps (1 mm when unknown), so a malformed tag is
    ignored with a warning naming the file and the tag instead of making the image unreadable.
    """
    for keyword in ("ImagerPixelSpacing", "PixelSpacing"):
        spacing, problem = _spacing_values(dataset, keyword)
        if spacing is not None:
            return spacing
        if problem:
            warnings.warn(f"{path}: tag {keyword} {problem}; it is ignored", stacklevel=2)
    return None


def _number_tag(path: str, dataset: Any, keyword: str, kind: type[int] | type[float] = int) -> Any:
    """The value of ``keyword`` as ``kind`` (``None`` when absent or empty); a malformed value is a one-line error."""
    try:
        value = dataset.get(keyword)
    except Exception as err:  # pydicom converts the value on access and may reject it
        raise MammogramReadError(path, f"tag {keyword} cannot be read ({type(err).__name__}: {err})") from err
    if value is None or value == "":
        return None
    try:
        return kind(value)
    except (TypeError, ValueError):
        expected = "an integer" if kind is int else "a number"
        raise MammogramReadError(path, f"tag {keyword} is not {expected}: {str(value)!r}") from None


def _int_tag(path: str, dataset: Any, keyword: str, default: int) -> int:
    """The integer value of ``keyword`` (``default`` when absent or empty)."""
    value = _number_tag(path, dataset, keyword, int)
    return default if value is None else int(value)


def read_dicom_mammogram(path: str | os.PathLike[str]) -> tuple[np.ndarray, dict[str, Any]]:
    """Read a single-frame grayscale DICOM image as MONOCHROME2 values.

    MONOCHROME1 images are inverted within the stored bit range (``BitsStored``), then ``RescaleSlope`` and
    ``RescaleIntercept`` are applied.

    Args:
        path: the DICOM file.

    Returns:
        ``(pixels, meta)``: a float32 array of shape (H, W) and a dict with ``laterality`` (``"L"``, ``"R"`` or
        ``""``), ``view`` (``"CC"``, ``"MLO"``, … or ``""``), ``spacing`` ((row, col) mm, or ``None`` when the file
        has none, or only malformed ones such as ``'a\\b'``, one value or a spacing <= 0, which are ignored
        with a warning), ``bits_stored`` and a few identifying tags.

    Raises:
        MammogramReadError: the file is not DICOM, has no image, is multi-frame or colour, its compressed pixel
            data has no installed decoder, the pixel data is truncated or corrupt, or an image tag such as
            ``NumberOfFrames`` holds no valid number (the message names the tag).
    """
    _require_pydicom()
    name = os.fspath(path)
    try:
        dataset = pydicom.dcmread(name)
    except pydicom.errors.InvalidDicomError as err:
        raise MammogramReadError(name, f"not a DICOM file ({err})") from err
    except (OSError, EOFError, ValueError, KeyError, TypeError) as err:
        raise MammogramReadError(name, f"corrupt or truncated DICOM file ({type(err).__name__}: {err})") from err

    sop_class = str(dataset.get("SOPClassUID", "unknown SOP class"))
    if not any(keyword in dataset for keyword in _PIXEL_DATA_KEYWORDS):
        # pydicom stops quietly at the end of a cut file: image attributes without pixel data (or no data set
        # at all after the file meta) mean truncation, anything else is a non-image object such as a report.
        sop_name = str(getattr(dataset.get("SOPClassUID"), "name", sop_class))
        if "Rows" in dataset or "SOPClassUID" not in dataset or "Image Storage" in sop_name:
            raise MammogramReadError(name, "truncated or incomplete DICOM file: it ends before the pixel data")
        raise MammogramReadError(name, f"DICOM object has no pixel data ({sop_name}); it is not an image")
    frames = _int_tag(name, dataset, "NumberOfFrames", 1)
    if frames != 1:
        raise MammogramReadError(name, f"multi-frame DICOM ({frames} frames); a single 2-D mammogram is expected")
    photometric = str(dataset.get("PhotometricInterpretation", "MONOCHROME2")).upper()
    samples = _int_tag(name, dataset, "SamplesPerPixel", 1)
    if samples != 1 or photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise MammogramReadError(
            name, f"colour DICOM image ({photometric}, {samples} samples per pixel); a grayscale mammogram is expected"
        )

    file_meta = getattr(dataset, "file_meta", None)
    transfer_syntax = getattr(file_meta, "TransferSyntaxUID", None) if file_meta is not None else None
    if transfer_syntax is not None:
        _require_decoder(name, transfer_syntax)
    try:
        pixels = np.asarray(dataset.pixel_array)
    except Exception as err:  # decoder plugins raise assorted exception types for bad data
        raise MammogramReadError(name, f"cannot decode the pixel data ({type(err).__name__}: {err})") from err
    if pixels.ndim != 2:
        raise MammogramReadError(name, f"pixel data has shape {pixels.shape}; a 2-D image is expected")

    bits_stored = _int_tag(name, dataset, "BitsStored", 0) or pixels.dtype.itemsize * 8
    values = pixels.astype(np.float64)
    if photometric == "MONOCHROME1":
        # Invert within the range the stored bits can hold, so 0 stays 0 after inverting twice.
        if _int_tag(name, dataset, "PixelRepresentation", 0) == 1:
            low, high = -(2 ** (bits_stored - 1)), 2 ** (bits_stored - 1) - 1
        else:
            low, high = 0, 2**bits_stored - 1
        values = (low + high) - values
    slope = _number_tag(name, dataset, "RescaleSlope", float)
    intercept = _number_tag(name, dataset, "RescaleIntercept", float)
    if slope is not None or intercept is not None:
        values = values * (1.0 if slope is None else slope) + (0.0 if intercept is None else intercept)

    laterality = normalize_laterality(dataset.get("ImageLaterality")) or normalize_laterality(dataset.get("Laterality"))
    meta: dict[str, Any] = {
        LATERALITY: laterality,
        VIEW: normalize_view(dataset.get("ViewPosition")),
        SPACING: _spacing_of(name, dataset),
        BITS_STORED: bits_stored,
        "photometric_interpretation": photometric,
        "sop_class_uid": sop_class,
        "patient_id": str(dataset.get("PatientID", "")),
        "modality": str(dataset.get("Modality", "")),
    }
    return values.astype(np.float32), meta


def build_mammogram_dataset(
    image: np.ndarray,
    laterality: str,
    view: str,
    spacing: Sequence[float] = (0.1, 0.1),
    photometric: str = "MONOCHROME2",
    bits_stored: int = 12,
    patient_id: str = "ANONYMOUS",
    uid_seed: str | None = None,
) -> Any:
    """A "Digital Mammography X-Ray Image - For Presentation" dataset holding ``image``.

    Args:
        image: (H, W) integer array, MONOCHROME2 values in ``[0, 2**bits_stored - 1]``.
        laterality: ``"L"`` or ``"R"`` (written to ImageLaterality).
        view: ``"CC"``, ``"MLO"``, … (written to ViewPosition).
        spacing: (row, col) pixel spacing in mm (written to ImagerPixelSpacing and PixelSpacing).
        photometric: ``"MONOCHROME2"`` or ``"MONOCHROME1"``; for MONOCHROME1 the values are stored inverted.
        bits_stored: significant bits of the stored values (8 to 16).
        patient_id: PatientID.
        uid_seed: makes the generated UIDs deterministic when given.

    Returns:
        A ``pydicom.dataset.FileDataset`` ready for ``save_as``, explicit VR little endian.

    Raises:
        ValueError: for a bad argument (the message names it).
    """
    _require_pydicom()
    from pydicom.dataset import FileDataset, FileMetaDataset
    from pydicom.uid import PYDICOM_IMPLEMENTATION_UID, ExplicitVRLittleEndian, generate_uid

    pixels = np.asarray(image)
    if pixels.ndim != 2 or pixels.size == 0:
        raise ValueError(f"image must be a non-empty 2-D array, got shape {pixels.shape}")
    if not 8 <= bits_stored <= 16:
        raise ValueError(f"bits_stored must be in 8..16, got {bits_stored}")
    if pixels.min() < 0 or pixels.max() > 2**bits_stored - 1:
        raise ValueError(f"image values must lie in [0, {2**bits_stored - 1}] for bits_stored={bits_stored}")
    laterality = normalize_laterality(laterality)
    if not laterality:
        raise ValueError("laterality must be 'L' or 'R'")
    view = normalize_view(view)
    if not view:
        raise ValueError("view must be a view code such as 'CC' or 'MLO'")
    photometric = photometric.upper()
    if photometric not in ("MONOCHROME1", "MONOCHROME2"):
        raise ValueError(f"photometric must be MONOCHROME1 or MONOCHROME2, got {photometric!r}")
    if len(spacing) != 2 or min(spacing) <= 0:
        raise ValueError(f"spacing must be two positive numbers (row, col) in mm, got {spacing!r}")

    def uid(part: str) -> str:
        return generate_uid(entropy_srcs=[uid_seed, part]) if uid_seed is not None else generate_uid()

    stored = pixels.astype(np.uint16)
    if photometric == "MONOCHROME1":
        stored = (2**bits_stored - 1 - stored).astype(np.uint16)

    file_meta = FileMetaDataset()
    file_meta.MediaStorageSOPClassUID = DIGITAL_MAMMOGRAPHY_FOR_PRESENTATION
    file_meta.MediaStorageSOPInstanceUID = uid("sop")
    file_meta.TransferSyntaxUID = ExplicitVRLittleEndian
    file_meta.ImplementationClassUID = PYDICOM_IMPLEMENTATION_UID
    dataset = FileDataset("", {}, file_meta=file_meta, preamble=b"\0" * 128)
    if _pydicom_major_version() < 3:  # pydicom 2.4 reads the encoding from the dataset itself
        dataset.is_little_endian = True
        dataset.is_implicit_VR = False
    dataset.SOPClassUID = DIGITAL_MAMMOGRAPHY_FOR_PRESENTATION
    dataset.SOPInstanceUID = file_meta.MediaStorageSOPInstanceUID
    dataset.StudyInstanceUID = uid("study")
    dataset.SeriesInstanceUID = uid("series")
    dataset.Modality = "MG"
    dataset.PresentationIntentType = "FOR PRESENTATION"
    dataset.PatientID = patient_id
    dataset.PatientName = patient_id
    dataset.BodyPartExamined = "BREAST"
    dataset.ImageLaterality = laterality
    dataset.ViewPosition = view
    if (laterality, view) in _PATIENT_ORIENTATION:
        dataset.PatientOrientation = _PATIENT_ORIENTATION[(laterality, view)]
    dataset.ImagerPixelSpacing = [float(spacing[0]), float(spacing[1])]
    dataset.PixelSpacing = [float(spacing[0]), float(spacing[1])]
    dataset.SamplesPerPixel = 1
    dataset.PhotometricInterpretation = photometric
    dataset.Rows, dataset.Columns = int(stored.shape[0]), int(stored.shape[1])
    dataset.BitsAllocated = 16
    dataset.BitsStored = bits_stored
    dataset.HighBit = bits_stored - 1
    dataset.PixelRepresentation = 0
    dataset.PixelData = stored.tobytes()
    return dataset


def write_dicom_mammogram(path: str | os.PathLike[str], dataset: Any) -> None:
    """Save a pydicom dataset (e.g. from :func:`build_mammogram_dataset`) as a DICOM file, atomically.

    The file gets the 128-byte preamble and file meta information (a conformant DICOM file), written to a
    temporary file in the same folder first and moved into place.
    """
    with atomic_output_path(path) as temp_path:
        if _pydicom_major_version() >= 3:
            dataset.save_as(temp_path, enforce_file_format=True)
        else:
            dataset.save_as(temp_path, write_like_original=False)
