"""The synthetic DICOM files are valid Digital Mammography X-Ray Images (For Presentation).

``dciodvfy`` (dicom3tools) checks the IOD, highdicom accepts the files as segmentation sources, and the
project's reader still gets the PNG twin's pixels, laterality, view and spacing from them.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pydicom
import pytest

from monai_glam.data import load_mammogram, read_datalist
from monai_glam.data.dicom import DIGITAL_MAMMOGRAPHY_FOR_PRESENTATION
from monai_glam.data.synthetic import SyntheticMammogramGenerator, synthetic_dicom_dataset, write_synthetic_dataset

SIZE = (128, 96)
#: Each view's code in CID 4014 "View for Mammography" (PS3.16).
VIEW_CODES = {"CC": ("399162004", "SCT", "cranio-caudal"), "MLO": ("399368009", "SCT", "medio-lateral oblique")}
#: Patient Orientation (row direction, column direction) of raw views: L views face right, R views left.
ORIENTATION = {("L", "CC"): ["A", "R"], ("R", "CC"): ["P", "L"], ("L", "MLO"): ["A", "FR"], ("R", "MLO"): ["P", "FL"]}
#: The four views of exam 0 are image indices 0-3: L-CC and R-CC are MONOCHROME2, L-MLO and R-MLO MONOCHROME1.
NAMES = ("0_L-CC", "0_L-MLO", "0_R-CC", "0_R-MLO")


def _code(item: pydicom.Dataset) -> tuple[str, str, str]:
    return item.CodeValue, item.CodingSchemeDesignator, item.CodeMeaning


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[dict]]:
    """Two exams (eight views) written by the data set writer, with their datalist items."""
    root = tmp_path_factory.mktemp("synthetic_dicom")
    datalist = write_synthetic_dataset(root, num=8, size=SIZE, seed=3, progress=False)
    items = [item for split in ("training", "validation", "test") for item in read_datalist(datalist, split)]
    return root, items


@pytest.mark.parametrize("name", NAMES)
def test_dciodvfy_reports_no_errors(synthetic: tuple[Path, list[dict]], name: str) -> None:
    dciodvfy = shutil.which("dciodvfy")
    if dciodvfy is None:
        pytest.skip("dciodvfy (dicom3tools) is not installed")
    path = synthetic[0] / "dicom" / f"{name}.dcm"
    result = subprocess.run([dciodvfy, str(path)], capture_output=True, text=True, timeout=60, check=False)
    report = result.stdout + result.stderr
    assert "MammographyImageForPresentation" in report, report  # it recognised the IOD it checks
    errors = [line for line in report.splitlines() if line.startswith("Error")]
    assert not errors, f"dciodvfy {path}:\n{report}"


def test_views_of_an_exam_share_patient_and_study(synthetic: tuple[Path, list[dict]]) -> None:
    root, _ = synthetic
    exams = {
        exam: [pydicom.dcmread(root / "dicom" / f"{exam}_{view}.dcm") for view in ("L-CC", "L-MLO", "R-CC", "R-MLO")]
        for exam in (0, 1)
    }
    shared = (
        "PatientID",
        "PatientName",
        "PatientBirthDate",
        "PatientSex",
        "StudyInstanceUID",
        "StudyDate",
        "StudyTime",
        "StudyID",
        "AccessionNumber",
    )
    for views in exams.values():
        for keyword in shared:
            assert len({str(view.get(keyword)) for view in views}) == 1, keyword
    assert exams[0][0].StudyInstanceUID != exams[1][0].StudyInstanceUID
    assert exams[0][0].PatientID != exams[1][0].PatientID
    every = [view for views in exams.values() for view in views]
    for keyword in ("SOPInstanceUID", "SeriesInstanceUID"):
        assert len({view.get(keyword) for view in every}) == len(every), keyword
    for view in every:
        assert view.SOPClassUID == DIGITAL_MAMMOGRAPHY_FOR_PRESENTATION == view.file_meta.MediaStorageSOPClassUID
        assert view.SOPInstanceUID == view.file_meta.MediaStorageSOPInstanceUID


@pytest.mark.parametrize("name", NAMES)
def test_mammography_attributes(synthetic: tuple[Path, list[dict]], name: str) -> None:
    dataset = pydicom.dcmread(synthetic[0] / "dicom" / f"{name}.dcm")
    laterality, view = name.split("_")[1].split("-")
    assert (dataset.ImageLaterality, dataset.ViewPosition) == (laterality, view)
    assert list(dataset.PatientOrientation) == ORIENTATION[(laterality, view)]
    assert _code(dataset.ViewCodeSequence[0]) == VIEW_CODES[view]
    assert len(dataset.ViewCodeSequence[0].ViewModifierCodeSequence) == 0
    assert _code(dataset.AnatomicRegionSequence[0]) == ("76752008", "SCT", "Breast")
    assert list(dataset.ImageType) == ["ORIGINAL", "PRIMARY", ""]
    assert dataset.OrganExposed == "BREAST" and dataset.PositionerType == "MAMMOGRAPHIC"
    assert dataset.BurnedInAnnotation == "NO" and dataset.LossyImageCompression == "00"
    assert (dataset.RescaleSlope, dataset.RescaleIntercept, dataset.RescaleType) == (1, 0, "US")
    # PS3.3 C.8.11.3: IDENTITY goes with MONOCHROME2, INVERSE with MONOCHROME1.
    inverse = dataset.PhotometricInterpretation == "MONOCHROME1"
    assert dataset.PresentationLUTShape == ("INVERSE" if inverse else "IDENTITY")
    assert list(dataset.ImagerPixelSpacing) == list(dataset.PixelSpacing) == pytest.approx([270.0 / SIZE[0]] * 2)


def test_highdicom_accepts_the_file_as_a_source(synthetic: tuple[Path, list[dict]]) -> None:
    hd = pytest.importorskip("highdicom")
    root, items = synthetic
    item = next(item for item in items if Path(item["image_dicom"]).stem == "0_R-MLO")
    source = pydicom.dcmread(item["image_dicom"])
    before = set(source.keys())
    mask = load_mammogram(item["image"]).numpy()[0] > 2000  # any non-empty mask of the image's shape
    assert mask.any() and not mask.all()
    segment = hd.seg.SegmentDescription(
        segment_number=1,
        segment_label="dense",
        segmented_property_category=hd.sr.CodedConcept("91723000", "SCT", "Anatomical Structure"),
        segmented_property_type=hd.sr.CodedConcept("76752008", "SCT", "Breast"),
        algorithm_type=hd.seg.SegmentAlgorithmTypeValues.MANUAL,
    )
    segmentation = hd.seg.Segmentation(
        source_images=[source],
        pixel_array=mask[None].astype(np.uint8),
        segmentation_type=hd.seg.SegmentationTypeValues.BINARY,
        segment_descriptions=[segment],
        series_instance_uid=hd.UID(),
        series_number=100,
        sop_instance_uid=hd.UID(),
        instance_number=1,
        manufacturer="monai_glam tests",
        manufacturer_model_name="test",
        software_versions="0",
        device_serial_number="0",
    )
    assert set(source.keys()) == before  # nothing was added to the source
    for keyword in ("PatientID", "PatientBirthDate", "PatientSex", "StudyInstanceUID", "StudyDate", "AccessionNumber"):
        assert segmentation.get(keyword) == source.get(keyword), keyword
    assert segmentation.SourceImageSequence[0].ReferencedSOPInstanceUID == source.SOPInstanceUID
    np.testing.assert_array_equal(np.asarray(segmentation.pixel_array).reshape(mask.shape), mask.astype(np.uint8))
    path = root / "0_R-MLO.seg.dcm"
    segmentation.save_as(path)
    assert pydicom.dcmread(path).Modality == "SEG"


def test_reader_gets_what_the_png_twin_has(synthetic: tuple[Path, list[dict]]) -> None:
    _, items = synthetic
    assert len(items) == 8
    for item in items:
        png = load_mammogram(item["image"])
        dicom = load_mammogram(item["image_dicom"])
        np.testing.assert_array_equal(dicom.numpy(), png.numpy())
        assert (dicom.meta["laterality"], dicom.meta["view"]) == (item["laterality"], item["view"])
        assert dicom.meta["spacing"] == pytest.approx((270.0 / SIZE[0], 270.0 / SIZE[0]))
        assert dicom.meta["bits_stored"] == 12 and dicom.meta["patient_id"] == item["patient_id"]
        assert dicom.meta["sop_class_uid"] == DIGITAL_MAMMOGRAPHY_FOR_PRESENTATION


def test_dataset_is_deterministic_and_follows_the_generator_settings() -> None:
    generator = SyntheticMammogramGenerator(size=SIZE, seed=3)
    sample = generator.image(1)
    first, again = synthetic_dicom_dataset(sample, generator), synthetic_dicom_dataset(sample, generator)
    for keyword in ("SOPInstanceUID", "SeriesInstanceUID", "StudyInstanceUID", "StudyDate", "PatientBirthDate"):
        assert first.get(keyword) == again.get(keyword), keyword
    assert first.PhotometricInterpretation == "MONOCHROME1"  # odd image indices, as the data set writer does
    assert synthetic_dicom_dataset(sample, generator, photometric="MONOCHROME2").PresentationLUTShape == "IDENTITY"
    # Other pixels (another size) are other objects, so they get other UIDs.
    resized = SyntheticMammogramGenerator(size=(160, 96), seed=3)
    other = synthetic_dicom_dataset(resized.image(1), resized)
    assert other.SOPInstanceUID != first.SOPInstanceUID and other.StudyInstanceUID != first.StudyInstanceUID
