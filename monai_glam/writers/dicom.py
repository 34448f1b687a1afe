"""DICOM result objects for a DICOM mammogram: segmentations and a secondary-capture overlay (``dicom`` extra).

For one source image (a DICOM mammogram), GLAM's outputs in the **original image geometry** become:

- a BINARY Segmentation (``<id>_masks.seg.dcm``): one segment per class, the thresholded fused map;
- a FRACTIONAL Segmentation of type PROBABILITY (``<id>_saliency.seg.dcm``): the fused map itself, stored as
  ``round(p * 255)``, so a reader gets it back within 1/510;
- an RGB Secondary Capture (``<id>_overlay.sc.dcm``): the overlay a reader sees (mammogram, heat maps, patch
  boxes), for any PACS viewer.

All three reference the source's patient and study, and the segmentations reference the source image itself
(``SourceImageSequence``), so viewers such as OHIF or 3D Slicer show them on top of it. Parametric maps are not
written: highdicom cannot build them for mammograms, which have no frame of reference.

Type 2 attributes that a source lacks (a patient's birth date, the study date, ...) are required by these IODs;
they are copied as empty values, with one warning naming the file. The objects are built with ``highdicom``
(``pip install monai_glam[dicom]``) and written atomically.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from monai.utils import optional_import

from monai_glam.utils.atomic import atomic_output_path
from monai_glam.utils.enums import CLASS_NAMES

if TYPE_CHECKING:
    import highdicom as hd
    import pydicom
else:
    hd, _ = optional_import("highdicom")
    pydicom, _ = optional_import("pydicom")

__all__ = [
    "DICOM_RESULT_SUFFIXES",
    "DicomResultWriter",
    "is_dicom_file",
    "read_segmentation",
]

#: File-name endings of the objects :class:`DicomResultWriter` writes, by kind.
DICOM_RESULT_SUFFIXES: dict[str, str] = {
    "masks": "_masks.seg.dcm",
    "saliency": "_saliency.seg.dcm",
    "overlay": "_overlay.sc.dcm",
}
#: Type 2 attributes of the Patient and General Study modules the result IODs need from their source.
_REQUIRED_TYPE2 = (
    "PatientName",
    "PatientID",
    "PatientBirthDate",
    "PatientSex",
    "StudyDate",
    "StudyTime",
    "ReferringPhysicianName",
    "StudyID",
    "AccessionNumber",
)
#: SNOMED CT morphologies of the two GLAM classes (the segment types); other classes are "Lesion".
_CLASS_CODES = {
    "benign": ("3898006", "Neoplasm, benign"),
    "malignant": ("86049000", "Malignant neoplasm, primary"),
}
#: Display colours of the segments (CIELab is what DICOM stores; highdicom converts from RGB).
_CLASS_COLOURS = {"benign": (0, 200, 0), "malignant": (220, 0, 0)}
#: Series numbers of the result series, far from the acquisition's.
_SERIES_NUMBERS = {"masks": 9001, "saliency": 9002, "overlay": 9003}


def _require_highdicom() -> None:
    if not optional_import("highdicom")[1]:
        raise ImportError("DICOM results need highdicom: pip install 'monai_glam[dicom]'")


def is_dicom_file(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is a DICOM Part 10 file (the ``DICM`` marker after the 128-byte preamble)."""
    try:
        with open(path, "rb") as handle:
            handle.seek(128)
            return handle.read(4) == b"DICM"
    except OSError:
        return False


def _complete_source(source: Any, path: str) -> Any:
    """A copy of ``source`` with empty values for missing Type 2 patient/study attributes (warned once)."""
    missing = [keyword for keyword in _REQUIRED_TYPE2 if keyword not in source]
    if not missing:
        return source
    warnings.warn(
        f"{path}: the DICOM source lacks {', '.join(missing)}; the results carry them empty", RuntimeWarning, 2
    )
    completed = pydicom.Dataset(source)  # shallow copy: the caller's dataset stays as read
    completed.file_meta = source.file_meta
    for keyword in missing:
        setattr(completed, keyword, "")
    return completed


class DicomResultWriter:
    """Write GLAM's results for DICOM mammograms as DICOM objects that reference them.

    Args:
        output_dir: where the objects go (created).
        class_names: class names in channel order (segment labels).
        manufacturer: the General Equipment ``Manufacturer`` of the results.
        software_version: ``SoftwareVersions`` (default: the package version).

    Raises:
        ImportError: highdicom is not installed (the ``dicom`` extra).
    """

    def __init__(
        self,
        output_dir: str | os.PathLike[str],
        class_names: Sequence[str] = CLASS_NAMES,
        manufacturer: str = "monai_glam",
        software_version: str | None = None,
    ) -> None:
        _require_highdicom()
        from monai_glam import __version__

        self.output_dir = Path(output_dir)
        self.class_names = tuple(class_names)
        self.equipment = {
            "manufacturer": manufacturer,
            "manufacturer_model_name": "GLAM",
            "software_versions": software_version or __version__,
            "device_serial_number": "0",
        }
        self.algorithm = hd.AlgorithmIdentificationSequence(
            name="GLAM",
            family=hd.sr.CodedConcept("123110", "DCM", "Artificial Intelligence"),
            version=software_version or __version__,
        )

    def _segments(self) -> list[Any]:
        category = hd.sr.CodedConcept("49755003", "SCT", "Morphologically Abnormal Structure")
        breast = hd.sr.CodedConcept("76752008", "SCT", "Breast")
        segments = []
        for number, name in enumerate(self.class_names, start=1):
            value, meaning = _CLASS_CODES.get(name, ("52988006", "Lesion"))
            colour = _CLASS_COLOURS.get(name)
            segments.append(
                hd.seg.SegmentDescription(
                    segment_number=number,
                    segment_label=name,
                    segmented_property_category=category,
                    segmented_property_type=hd.sr.CodedConcept(value, "SCT", meaning),
                    algorithm_type=hd.seg.SegmentAlgorithmTypeValues.AUTOMATIC,
                    algorithm_identification=self.algorithm,
                    anatomic_regions=[breast],
                    display_color=None if colour is None else hd.color.CIELabColor.from_rgb(*colour),
                )
            )
        return segments

    def _check(self, name: str, array: np.ndarray, source: Any, channels: bool = True) -> None:
        shape = (int(source.Rows), int(source.Columns))
        if channels and (array.ndim != 3 or array.shape[0] != len(self.class_names) or array.shape[1:] != shape):
            raise ValueError(
                f"{name} must be ({len(self.class_names)}, {shape[0]}, {shape[1]}) like the source image, got "
                f"{tuple(array.shape)}"
            )
        if not channels and (array.ndim != 3 or array.shape[:2] != shape or array.shape[2] != 3):
            raise ValueError(f"{name} must be ({shape[0]}, {shape[1]}, 3) like the source image, got {array.shape}")

    def _segmentation(self, source: Any, pixels: np.ndarray, kind: str) -> Any:
        fractional = kind == "saliency"
        segmentation = hd.seg.Segmentation(
            source_images=[source],
            pixel_array=np.moveaxis(pixels, 0, -1)[None],  # (1, H, W, segments)
            segmentation_type=(
                hd.seg.SegmentationTypeValues.FRACTIONAL if fractional else hd.seg.SegmentationTypeValues.BINARY
            ),
            segment_descriptions=self._segments(),
            series_instance_uid=hd.UID(),
            series_number=_SERIES_NUMBERS[kind],
            sop_instance_uid=hd.UID(),
            instance_number=1,
            fractional_type=hd.seg.SegmentationFractionalTypeValues.PROBABILITY if fractional else None,
            max_fractional_value=255,
            content_label="GLAM_SALIENCY" if fractional else "GLAM_MASKS",
            content_description="GLAM fused saliency" if fractional else "GLAM thresholded saliency",
            omit_empty_frames=False,
            **self.equipment,
        )
        if "FrameOfReferenceUID" not in source and "PatientOrientation" in source:
            segmentation.PatientOrientation = source.PatientOrientation  # Type 2C without a frame of reference
        # highdicom reads a Segmentation back only when its pixel measures carry a SliceThickness (Type 1C), which
        # a projection image does not have: use the compressed breast thickness when the source states it.
        thickness = source.get("BodyPartThickness") or 1
        segmentation.SharedFunctionalGroupsSequence[0].PixelMeasuresSequence[0].SliceThickness = thickness
        return segmentation

    def _secondary_capture(self, source: Any, rgb: np.ndarray) -> Any:
        orientation = list(source.get("PatientOrientation") or [])
        laterality = source.get("ImageLaterality") or source.get("Laterality") or None
        spacing = source.get("PixelSpacing") or source.get("ImagerPixelSpacing")
        capture = hd.sc.SCImage.from_ref_dataset(
            ref_dataset=source,
            pixel_array=rgb,
            photometric_interpretation=hd.PhotometricInterpretationValues.RGB,
            bits_allocated=8,
            coordinate_system=hd.CoordinateSystemNames.PATIENT,
            series_instance_uid=hd.UID(),
            series_number=_SERIES_NUMBERS["overlay"],
            sop_instance_uid=hd.UID(),
            instance_number=1,
            manufacturer=self.equipment["manufacturer"],
            pixel_spacing=None if spacing is None else [float(v) for v in spacing],
            laterality=laterality if laterality in ("L", "R") else None,
            # highdicom's enum knows single letters only ("FR" of an MLO is refused): set the source's afterwards.
            patient_orientation=[value[:1] for value in orientation] if len(orientation) == 2 else None,
        )
        if len(orientation) == 2:
            capture.PatientOrientation = source.PatientOrientation
        capture.BurnedInAnnotation = "YES"
        capture.SeriesDescription = "GLAM overlay"
        reference = pydicom.Dataset()
        reference.ReferencedSOPClassUID = source.SOPClassUID
        reference.ReferencedSOPInstanceUID = source.SOPInstanceUID
        capture.SourceImageSequence = [reference]
        return capture

    def write(
        self,
        source_path: str | os.PathLike[str],
        image_id: str,
        masks: np.ndarray | None = None,
        saliency: np.ndarray | None = None,
        overlay: np.ndarray | None = None,
    ) -> dict[str, Path]:
        """Write the objects of one image (each one whose data is given).

        Args:
            source_path: the DICOM mammogram the results belong to.
            image_id: the file-name stem (the image id of ``predictions.csv``).
            masks: ``(C, H, W)`` binary masks in the source's pixel grid.
            saliency: ``(C, H, W)`` maps in [0, 1] in the source's pixel grid.
            overlay: ``(H, W, 3)`` uint8 RGB overlay in the source's pixel grid.

        Returns:
            ``{"masks": path, "saliency": path, "overlay": path}`` for the objects written.

        Raises:
            ValueError: ``source_path`` is not a DICOM file, or an array does not match its size.
        """
        path = os.fspath(source_path)
        if not is_dicom_file(path):
            raise ValueError(f"{path}: not a DICOM file, so no DICOM results are written for it")
        source = _complete_source(pydicom.dcmread(path, stop_before_pixels=True), path)
        with warnings.catch_warnings():
            # highdicom's advice on the source's patient-name format is about the source, not the results.
            warnings.filterwarnings("ignore", message=".*unlikely to represent the intended person name")
            objects = self._build(source, masks, saliency, overlay)
        self.output_dir.mkdir(parents=True, exist_ok=True)
        paths: dict[str, Path] = {}
        for kind, dataset in objects.items():
            target = self.output_dir / f"{image_id}{DICOM_RESULT_SUFFIXES[kind]}"
            with atomic_output_path(target) as temp_path:
                dataset.save_as(temp_path, enforce_file_format=True)
            paths[kind] = target
        return paths

    def _build(
        self, source: Any, masks: np.ndarray | None, saliency: np.ndarray | None, overlay: np.ndarray | None
    ) -> dict[str, Any]:
        objects: dict[str, Any] = {}
        if masks is not None:
            binary = (np.asarray(masks) > 0).astype(np.uint8)
            self._check("masks", binary, source)
            objects["masks"] = self._segmentation(source, binary, "masks")
        if saliency is not None:
            maps = np.clip(np.asarray(saliency, dtype=np.float32), 0.0, 1.0)
            self._check("saliency", maps, source)
            objects["saliency"] = self._segmentation(source, maps, "saliency")
        if overlay is not None:
            rgb = np.asarray(overlay)
            if rgb.dtype != np.uint8:
                raise ValueError(f"overlay must be uint8 RGB, got {rgb.dtype}")
            self._check("overlay", rgb, source, channels=False)
            objects["overlay"] = self._secondary_capture(source, rgb)
        return objects


def read_segmentation(path: str | os.PathLike[str]) -> tuple[np.ndarray, tuple[str, ...], str]:
    """Read a Segmentation written by :class:`DicomResultWriter` back into ``(C, H, W)`` arrays.

    Returns:
        ``(values, segment_labels, referenced_sop_instance_uid)``: binary masks as uint8, or fractional maps as
        float32 in [0, 1] (stored value / ``MaximumFractionalValue``).
    """
    dataset = pydicom.dcmread(os.fspath(path))
    frames = dataset.pixel_array
    frames = frames[None] if frames.ndim == 2 else frames
    labels = tuple(str(segment.SegmentLabel) for segment in dataset.SegmentSequence)
    values = np.zeros((len(labels), *frames.shape[1:]), dtype=np.float32)
    for frame, group in zip(frames, dataset.PerFrameFunctionalGroupsSequence, strict=True):
        number = int(group.SegmentIdentificationSequence[0].ReferencedSegmentNumber)
        values[number - 1] = frame
    if dataset.SegmentationType == "FRACTIONAL":
        values = values / float(dataset.MaximumFractionalValue)
    else:
        values = values.astype(np.uint8)
    reference = dataset.SourceImageSequence if "SourceImageSequence" in dataset else None
    if reference is None:
        reference = dataset.PerFrameFunctionalGroupsSequence[0].DerivationImageSequence[0].SourceImageSequence
    return values, labels, str(reference[0].ReferencedSOPInstanceUID)
