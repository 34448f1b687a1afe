"""Mammography data: reading DICOM/PNG/NIfTI, datalists, safe exam-list loading and synthetic mammograms."""

from __future__ import annotations

from monai_glam.data.datalist import (
    DATALIST_SPLITS,
    datalist_from_csv,
    datalist_from_exam_list,
    read_datalist,
    split_by_patient,
    validate_item,
    write_datalist,
)
from monai_glam.data.dataset import MammogramDataset
from monai_glam.data.dicom import (
    DIGITAL_MAMMOGRAPHY_FOR_PRESENTATION,
    build_mammogram_dataset,
    read_dicom_mammogram,
    write_dicom_mammogram,
)
from monai_glam.data.errors import MammogramReadError, NoUsableItemsError
from monai_glam.data.image_reader import load_mammogram, read_image_array
from monai_glam.data.image_writer import write_png
from monai_glam.data.meta import parse_view_name
from monai_glam.data.safe_pickle import UnsafePickleError, restricted_load, restricted_loads
from monai_glam.data.synthetic import (
    SyntheticMammogram,
    SyntheticMammogramGenerator,
    power_law_noise,
    write_synthetic_dataset,
)
from monai_glam.utils.atomic import atomic_output_path, atomic_write_text

__all__ = [
    "DATALIST_SPLITS",
    "DIGITAL_MAMMOGRAPHY_FOR_PRESENTATION",
    "MammogramDataset",
    "MammogramReadError",
    "NoUsableItemsError",
    "SyntheticMammogram",
    "SyntheticMammogramGenerator",
    "UnsafePickleError",
    "atomic_output_path",
    "atomic_write_text",
    "build_mammogram_dataset",
    "datalist_from_csv",
    "datalist_from_exam_list",
    "load_mammogram",
    "parse_view_name",
    "power_law_noise",
    "read_datalist",
    "read_dicom_mammogram",
    "read_image_array",
    "restricted_load",
    "restricted_loads",
    "split_by_patient",
    "validate_item",
    "write_datalist",
    "write_dicom_mammogram",
    "write_png",
    "write_synthetic_dataset",
]
