"""DICOM results: segmentations and a secondary capture that reference a synthetic DICOM mammogram."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("highdicom")
import pydicom

from monai_glam.data import write_synthetic_dataset
from monai_glam.writers.dicom import DicomResultWriter, is_dicom_file, read_segmentation


@pytest.fixture(scope="module")
def sources(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    folder = tmp_path_factory.mktemp("synthetic")
    write_synthetic_dataset(
        folder, num=4, size=(128, 96), seed=2, write_dicom=True, fractions=(1, 0, 0), progress=False
    )
    return sorted((folder / "dicom").glob("*.dcm"))


def _results(source: Path, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rows, columns = int(pydicom.dcmread(source).Rows), int(pydicom.dcmread(source).Columns)
    rng = np.random.default_rng(seed)
    saliency = rng.random((2, rows, columns)).astype(np.float32)
    saliency[1] = 0.0  # an empty class is still a segment (frames are not omitted)
    masks = (saliency >= 0.6).astype(np.uint8)
    overlay = rng.integers(0, 256, (rows, columns, 3), dtype=np.uint8)
    return masks, saliency, overlay


def test_round_trip_of_every_view(sources: list[Path], tmp_path: Path) -> None:
    writer = DicomResultWriter(tmp_path)
    for index, source in enumerate(sources):  # L/R x CC/MLO
        masks, saliency, overlay = _results(source, index)
        paths = writer.write(source, f"img{index}", masks=masks, saliency=saliency, overlay=overlay)
        assert sorted(paths) == ["masks", "overlay", "saliency"]
        original = pydicom.dcmread(source)
        values, labels, reference = read_segmentation(paths["masks"])
        assert labels == ("benign", "malignant") and reference == original.SOPInstanceUID
        np.testing.assert_array_equal(values, masks)  # binary masks exactly
        values, _, reference = read_segmentation(paths["saliency"])
        assert reference == original.SOPInstanceUID
        assert np.abs(values - saliency).max() <= 1 / 255  # stored as round(p * 255)
        capture = pydicom.dcmread(paths["overlay"])
        np.testing.assert_array_equal(capture.pixel_array, overlay)
        for dataset in (capture, pydicom.dcmread(paths["masks"])):
            assert dataset.StudyInstanceUID == original.StudyInstanceUID and dataset.PatientID == original.PatientID
        assert capture.PatientOrientation == original.PatientOrientation
        assert capture.SourceImageSequence[0].ReferencedSOPInstanceUID == original.SOPInstanceUID


@pytest.mark.skipif(shutil.which("dciodvfy") is None, reason="dciodvfy (dicom3tools) is not installed")
def test_dciodvfy_finds_no_errors(sources: list[Path], tmp_path: Path) -> None:
    masks, saliency, overlay = _results(sources[1])
    paths = DicomResultWriter(tmp_path).write(sources[1], "mlo", masks=masks, saliency=saliency, overlay=overlay)
    for path in paths.values():
        report = subprocess.run(["dciodvfy", "-new", str(path)], capture_output=True, text=True, timeout=60)
        errors = [line for line in (report.stdout + report.stderr).splitlines() if line.startswith("Error")]
        assert errors == [], f"{path.name}: {errors}"


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"masks": np.zeros((2, 5, 5), np.uint8)}, r"masks must be \(2, 128, 96\) like the source image"),
        ({"saliency": np.zeros((3, 128, 96), np.float32)}, r"saliency must be \(2, 128, 96\)"),
        ({"overlay": np.zeros((128, 96, 3), np.float32)}, "overlay must be uint8 RGB"),
        ({"overlay": np.zeros((128, 96), np.uint8)}, r"overlay must be \(128, 96, 3\)"),
    ],
)
def test_arrays_must_match_the_source(sources: list[Path], tmp_path: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        DicomResultWriter(tmp_path).write(sources[0], "x", **kwargs)
    assert not list(tmp_path.iterdir())


def test_missing_type2_attributes_are_filled_empty_with_a_warning(sources: list[Path], tmp_path: Path) -> None:
    dataset = pydicom.dcmread(sources[0])
    del dataset.PatientBirthDate, dataset.StudyDate
    incomplete = tmp_path / "incomplete.dcm"
    dataset.save_as(incomplete)
    with pytest.warns(RuntimeWarning, match=f"{incomplete}: the DICOM source lacks PatientBirthDate, StudyDate"):
        paths = DicomResultWriter(tmp_path / "out").write(incomplete, "x", masks=np.zeros((2, 128, 96), np.uint8))
    written = pydicom.dcmread(paths["masks"])
    assert written.PatientBirthDate == "" and written.StudyDate == ""


def test_a_png_source_is_refused_with_its_name(tmp_path: Path) -> None:
    png = tmp_path / "a.png"
    png.write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(200))
    assert not is_dicom_file(png) and not is_dicom_file(tmp_path / "missing.dcm")
    with pytest.raises(ValueError, match=f"{png}: not a DICOM file"):
        DicomResultWriter(tmp_path / "out").write(png, "a", masks=np.zeros((2, 4, 4), np.uint8))


def test_infer_dicom_writes_results_that_highdicom_reads_back(sources: list[Path], tmp_path: Path, capsys) -> None:
    """``monai-glam infer --dicom`` on DICOM and PNG inputs: results for the DICOM files, the PNG listed as skipped."""
    import highdicom as hd

    from monai_glam.apps.cli import main
    from tests.writers.synthetic_run import make_checkpoint

    checkpoint = make_checkpoint(tmp_path / "model")
    png = sorted((sources[0].parent.parent / "images").glob("*.png"))[0]
    out = tmp_path / "out"
    argv = ["infer", "--images", str(sources[0]), str(sources[3]), str(png), "--checkpoint", str(checkpoint)]
    assert main([*argv, "--output", str(out), "--dicom", "--no-progress"]) == 0
    assert "no DICOM results for 1 image(s) that are not DICOM files" in capsys.readouterr().out
    run = __import__("json").loads((out / "run.json").read_text())
    assert run["dicom"] is True and run["dicom_skipped"] == [str(png)]
    for source in (sources[0], sources[3]):
        original = pydicom.dcmread(source)
        stem = source.stem
        masks = hd.seg.segread(out / "dicom" / f"{stem}_masks.seg.dcm")
        pixels = masks.get_pixels_by_source_instance([original.SOPInstanceUID], combine_segments=False)
        assert pixels.shape == (1, original.Rows, original.Columns, 2)
        # The masks are the thresholded maps that infer also writes as PNG, in the same (original) geometry.
        from PIL import Image

        for c, name in enumerate(("benign", "malignant")):
            written = np.asarray(Image.open(out / "masks" / f"{stem}_{name}.png")) > 0
            np.testing.assert_array_equal(pixels[0, :, :, c] > 0, written)
        saliency, _, _ = read_segmentation(out / "dicom" / f"{stem}_saliency.seg.dcm")
        expected = np.stack(
            [np.asarray(Image.open(out / "saliency" / f"{stem}_{n}.png")) / 65535.0 for n in ("benign", "malignant")]
        )
        assert np.abs(saliency - expected).max() <= 1 / 255 + 1e-4
        capture = hd.imread(out / "dicom" / f"{stem}_overlay.sc.dcm")
        assert capture.pixel_array.shape == (original.Rows, original.Columns, 3)
        assert capture.SourceImageSequence[0].ReferencedSOPInstanceUID == original.SOPInstanceUID
        if shutil.which("dciodvfy"):
            for kind in ("masks.seg", "saliency.seg", "overlay.sc"):
                path = out / "dicom" / f"{stem}_{kind}.dcm"
                report = subprocess.run(["dciodvfy", "-new", str(path)], capture_output=True, text=True, timeout=60)
                assert not [line for line in (report.stdout + report.stderr).splitlines() if line.startswith("Error")]
