"""DICOM reading and writing: photometric interpretations, lateralities, tags, codecs and bad files."""

from __future__ import annotations

import io
import warnings
from pathlib import Path

import numpy as np
import pydicom
import pytest
from PIL import Image, features
from pydicom.uid import JPEG2000Lossless, JPEGLSLossless, RLELossless

from monai_glam.data import (
    DIGITAL_MAMMOGRAPHY_FOR_PRESENTATION,
    MammogramReadError,
    build_mammogram_dataset,
    load_mammogram,
    write_dicom_mammogram,
)
from monai_glam.data.dicom import decoder_status
from tests.data.dicom_edit import set_decimal_string

PIXELS = (np.arange(6 * 4).reshape(6, 4) * 170).astype(np.uint16)  # 12-bit values, 6 rows x 4 columns


@pytest.mark.parametrize("photometric", ["MONOCHROME1", "MONOCHROME2"])
@pytest.mark.parametrize(("laterality", "view"), [("L", "CC"), ("R", "MLO")])
def test_round_trip_as_monochrome2(tmp_path: Path, photometric: str, laterality: str, view: str) -> None:
    path = tmp_path / "image.dcm"
    dataset = build_mammogram_dataset(PIXELS, laterality, view, spacing=(0.07, 0.05), photometric=photometric)
    write_dicom_mammogram(path, dataset)
    image = load_mammogram(path)
    assert image.shape == (1, 6, 4)
    np.testing.assert_array_equal(image[0].numpy(), PIXELS.astype(np.float32))
    meta = image.meta
    assert (meta["laterality"], meta["view"], meta["bits_stored"]) == (laterality, view, 12)
    assert meta["spacing"] == pytest.approx((0.07, 0.05))
    assert meta["photometric_interpretation"] == photometric
    stored = pydicom.dcmread(path)
    assert stored.SOPClassUID == DIGITAL_MAMMOGRAPHY_FOR_PRESENTATION
    assert stored.file_meta.MediaStorageSOPClassUID == DIGITAL_MAMMOGRAPHY_FOR_PRESENTATION
    assert (stored.ImageLaterality, stored.ViewPosition, stored.Modality) == (laterality, view, "MG")
    if photometric == "MONOCHROME1":  # stored inverted within 12 bits
        np.testing.assert_array_equal(stored.pixel_array, 4095 - PIXELS)


def test_series_laterality_and_pixel_spacing_are_fallbacks(tmp_path: Path) -> None:
    dataset = build_mammogram_dataset(PIXELS, "L", "CC", spacing=(0.1, 0.1))
    del dataset.ImageLaterality
    del dataset.ImagerPixelSpacing
    dataset.Laterality = "R"
    dataset.PixelSpacing = [0.2, 0.3]
    path = tmp_path / "image.dcm"
    write_dicom_mammogram(path, dataset)
    meta = load_mammogram(path).meta
    assert meta["laterality"] == "R"
    assert meta["spacing"] == pytest.approx((0.2, 0.3))


def test_missing_tags_fall_back_to_the_file_name(tmp_path: Path) -> None:
    dataset = build_mammogram_dataset(PIXELS, "L", "CC")
    del dataset.ImageLaterality
    del dataset.ViewPosition
    path = tmp_path / "4_R-MLO.dcm"
    write_dicom_mammogram(path, dataset)
    meta = load_mammogram(path).meta
    assert (meta["laterality"], meta["view"]) == ("R", "MLO")


_IMAGER_PIXEL_SPACING = (0x0018, 0x1164)
_PIXEL_SPACING = (0x0028, 0x0030)


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("a\\b", "is 'a\\b', not two numbers (row, column)"),
        ("0.1", "is '0.1', not two numbers (row, column)"),
        ("0.1\\0.1\\0.1", "is '0.1\\0.1\\0.1', not two numbers (row, column)"),
        ("0\\0.1", "is '0\\0.1'; a pixel spacing must be a finite number > 0"),
        ("-0.1\\0.1", "is '-0.1\\0.1'; a pixel spacing must be a finite number > 0"),
        ("nan\\0.1", "is 'nan\\0.1'; a pixel spacing must be a finite number > 0"),
        ("1e999\\0.1", "is '1e999\\0.1'; a pixel spacing must be a finite number > 0"),
    ],
    ids=["letters", "one-value", "three-values", "zero", "negative", "nan", "overflow"],
)
def test_malformed_pixel_spacing_is_ignored_with_a_warning(tmp_path: Path, value: str, problem: str) -> None:
    path = tmp_path / "spacing.dcm"
    write_dicom_mammogram(path, build_mammogram_dataset(PIXELS, "L", "CC", spacing=(0.2, 0.3)))
    path.write_bytes(set_decimal_string(path.read_bytes(), *_IMAGER_PIXEL_SPACING, value))
    with pytest.warns(UserWarning) as caught:
        image = load_mammogram(path)
    assert [str(w.message) for w in caught] == [f"{path}: tag ImagerPixelSpacing {problem}; it is ignored"]
    assert image.meta["spacing"] == pytest.approx((0.2, 0.3))  # PixelSpacing, the fallback
    np.testing.assert_array_equal(image[0].numpy(), PIXELS.astype(np.float32))

    path.write_bytes(set_decimal_string(path.read_bytes(), *_PIXEL_SPACING, value))
    with pytest.warns(UserWarning) as caught:
        image = load_mammogram(path)
    assert [str(w.message) for w in caught] == [
        f"{path}: tag ImagerPixelSpacing {problem}; it is ignored",
        f"{path}: tag PixelSpacing {problem}; it is ignored",
    ]
    assert image.meta["spacing"] == (1.0, 1.0)  # unknown, as for a file without spacing tags
    assert image.affine.diagonal().tolist() == [1.0, 1.0, 1.0]


def test_empty_pixel_spacing_is_no_spacing_without_a_warning(tmp_path: Path) -> None:
    path = tmp_path / "spacing.dcm"
    write_dicom_mammogram(path, build_mammogram_dataset(PIXELS, "L", "CC"))
    raw = set_decimal_string(path.read_bytes(), *_IMAGER_PIXEL_SPACING, "")
    path.write_bytes(set_decimal_string(raw, *_PIXEL_SPACING, ""))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert load_mammogram(path).meta["spacing"] == (1.0, 1.0)


def test_rescale_slope_and_intercept(tmp_path: Path) -> None:
    dataset = build_mammogram_dataset(PIXELS, "L", "CC")
    dataset.RescaleSlope = 2
    dataset.RescaleIntercept = -10
    path = tmp_path / "image.dcm"
    write_dicom_mammogram(path, dataset)
    np.testing.assert_allclose(load_mammogram(path)[0].numpy(), PIXELS * 2.0 - 10)


def test_rle_compressed_is_decoded(tmp_path: Path) -> None:
    dataset = build_mammogram_dataset(PIXELS, "R", "CC", photometric="MONOCHROME1")
    dataset.compress(RLELossless)
    path = tmp_path / "rle.dcm"
    write_dicom_mammogram(path, dataset)
    np.testing.assert_array_equal(load_mammogram(path)[0].numpy(), PIXELS.astype(np.float32))


def _encapsulated(transfer_syntax: str, frame: bytes) -> pydicom.Dataset:
    from pydicom.encaps import encapsulate

    dataset = build_mammogram_dataset(PIXELS, "L", "MLO")
    dataset.file_meta.TransferSyntaxUID = transfer_syntax
    dataset.PixelData = encapsulate([frame])
    dataset["PixelData"].VR = "OB"
    return dataset


@pytest.mark.skipif(not features.check("jpg_2000"), reason="Pillow has no JPEG 2000 codec")
def test_jpeg2000_is_decoded_when_a_decoder_is_installed(tmp_path: Path) -> None:
    if not decoder_status(JPEG2000Lossless)[0]:
        pytest.skip("no JPEG 2000 decoder plugin for pydicom")
    buffer = io.BytesIO()
    Image.fromarray(PIXELS).save(buffer, format="JPEG2000", irreversible=False, no_jp2=True)
    path = tmp_path / "j2k.dcm"
    write_dicom_mammogram(path, _encapsulated(JPEG2000Lossless, buffer.getvalue()))
    np.testing.assert_array_equal(load_mammogram(path)[0].numpy(), PIXELS.astype(np.float32))


def test_missing_decoder_is_named(tmp_path: Path) -> None:
    if decoder_status(JPEGLSLossless)[0]:
        pytest.skip("a JPEG-LS decoder is installed here")
    path = tmp_path / "jpegls.dcm"
    write_dicom_mammogram(path, _encapsulated(JPEGLSLossless, b"\xff\xd8\xff\xd9"))
    with pytest.raises(MammogramReadError, match=r"JPEG-LS.*no decoder.*install one of:.*(pylibjpeg|gdcm)"):
        load_mammogram(path)


def _multi_frame(dataset: pydicom.Dataset) -> None:
    dataset.NumberOfFrames = 2
    dataset.PixelData = np.concatenate([PIXELS, PIXELS]).tobytes()


def _no_pixels(dataset: pydicom.Dataset) -> None:
    for keyword in ("PixelData", "Rows", "Columns", "BitsAllocated", "BitsStored", "HighBit", "SamplesPerPixel"):
        delattr(dataset, keyword)
    dataset.SOPClassUID = "1.2.840.10008.5.1.4.1.1.88.11"  # Basic Text SR


def _rgb(dataset: pydicom.Dataset) -> None:
    dataset.SamplesPerPixel = 3
    dataset.PhotometricInterpretation = "RGB"
    dataset.PlanarConfiguration = 0
    dataset.BitsAllocated = 8
    dataset.BitsStored = 8
    dataset.HighBit = 7
    dataset.PixelData = np.zeros((6, 4, 3), dtype=np.uint8).tobytes()


def _truncated_pixels(dataset: pydicom.Dataset) -> None:
    dataset.PixelData = PIXELS.tobytes()[:10]


@pytest.mark.parametrize(
    ("edit", "problem"),
    [
        (_multi_frame, "multi-frame"),
        (_no_pixels, "no pixel data.*not an image"),
        (_rgb, "colour DICOM"),
        (_truncated_pixels, "cannot decode the pixel data"),
    ],
)
def test_bad_dicom_objects(tmp_path: Path, edit, problem: str) -> None:
    dataset = build_mammogram_dataset(PIXELS, "L", "CC")
    edit(dataset)
    path = tmp_path / "bad.dcm"
    write_dicom_mammogram(path, dataset)
    with pytest.raises(MammogramReadError, match=problem) as info:
        load_mammogram(path)
    assert str(path) in str(info.value)


@pytest.mark.parametrize(
    ("keep_bytes", "problem"),
    [
        (200, "truncated or incomplete"),  # cut inside the file meta
        (600, "truncated or incomplete"),  # cut before the pixel data
        (-10, "cannot decode the pixel data"),  # cut inside the pixel data
    ],
)
def test_truncated_dicom_files(tmp_path: Path, keep_bytes: int, problem: str) -> None:
    path = tmp_path / "cut.dcm"
    write_dicom_mammogram(path, build_mammogram_dataset(np.tile(PIXELS, (8, 8)), "L", "CC"))
    path.write_bytes(path.read_bytes()[:keep_bytes])
    with pytest.raises(MammogramReadError, match=problem) as info:
        load_mammogram(path)
    assert str(path) in str(info.value)


def test_not_a_dicom_file(tmp_path: Path) -> None:
    path = tmp_path / "bad.dcm"
    path.write_bytes(b"not dicom" * 20)
    with pytest.raises(MammogramReadError, match="not a DICOM file"):
        load_mammogram(path)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"laterality": "B"}, "laterality"),
        ({"view": ""}, "view"),
        ({"photometric": "RGB"}, "photometric"),
        ({"bits_stored": 20}, "bits_stored"),
        ({"spacing": (0.0, 0.1)}, "spacing"),
        ({"image": PIXELS * 20}, r"\[0, 4095\]"),
        ({"image": PIXELS[0]}, "2-D"),
    ],
)
def test_writer_validates_arguments(kwargs: dict, message: str) -> None:
    arguments = {"image": PIXELS, "laterality": "L", "view": "CC", **kwargs}
    with pytest.raises(ValueError, match=message):
        build_mammogram_dataset(**arguments)


def test_uids_are_deterministic_with_a_seed() -> None:
    first = build_mammogram_dataset(PIXELS, "L", "CC", uid_seed="x")
    second = build_mammogram_dataset(PIXELS, "L", "CC", uid_seed="x")
    assert first.SOPInstanceUID == second.SOPInstanceUID
    assert first.SOPInstanceUID != build_mammogram_dataset(PIXELS, "L", "CC", uid_seed="y").SOPInstanceUID
