"""The pipelined ``run_inference`` (reader and writer threads around the forward pass) against a serial run.

A pipelined run must write the same files with the same contents as a serial one (``pipelined=False``), list the
same rows and failures in the same order, record a failure of the writer thread for its own item and go on, and
stop after the current image on SIGINT with tables that list exactly the images whose outputs exist.
"""

from __future__ import annotations

import csv
import json
import os
import signal
import threading
from pathlib import Path
from typing import Any

import pytest
import torch

from monai_glam.data import read_datalist, write_synthetic_dataset
from monai_glam.engines import build_inference_transforms, inference_settings, run_inference
from monai_glam.engines.inference import STAGES, InferenceSummary
from monai_glam.metrics import EvaluationCollector
from monai_glam.networks import GLAM
from monai_glam.utils.signals import RunInterruptedError
from monai_glam.writers import OriginalGeometryInverter, prediction_writer
from tests.writers.synthetic_run import TINY_GLAM, TINY_PREPROCESSING

BROKEN = 3  # index of the unreadable item


@pytest.fixture(scope="module")
def items(tmp_path_factory: pytest.TempPathFactory) -> list[dict[str, Any]]:
    """Eight 256x160 mammograms (every other one read as DICOM) and an unreadable file at index 3."""
    folder = tmp_path_factory.mktemp("pipeline")
    datalist = write_synthetic_dataset(
        folder / "data", num=8, size=(256, 160), seed=5, fractions=(0.0, 0.0, 1.0), progress=False
    )
    loaded = read_datalist(datalist, "test")
    for i, item in enumerate(loaded):
        if i % 2:
            item["image"] = item["image_dicom"]
    broken = folder / "broken.png"
    broken.write_bytes(b"not a png")
    loaded.insert(BROKEN, {"image": str(broken), "label": [0, 0]})
    return loaded


@pytest.fixture(scope="module")
def model() -> GLAM:
    torch.manual_seed(0)
    return GLAM(**TINY_GLAM).eval()


def _settings(pipelined: bool, **overrides: Any):
    options = {
        "window": TINY_PREPROCESSING["spatial_size"],
        "erosion_iterations": TINY_PREPROCESSING["erosion_iterations"],
        "buffer": TINY_PREPROCESSING["buffer"],
        "device": "cpu",
        "progress": False,
        "network_frame": True,
        "thresholds": (0.3, 0.3),
    }
    return inference_settings(**{**options, **overrides}, pipelined=pipelined)


def _contents(folder: Path) -> dict[str, bytes]:
    """Every file under ``folder`` by relative path (``.nii.gz`` files carry no time stamp: comparable as is)."""
    return {str(path.relative_to(folder)): path.read_bytes() for path in sorted(folder.rglob("*")) if path.is_file()}


def _run(items, model, folder: Path, pipelined: bool, **overrides: Any) -> InferenceSummary:
    return run_inference(items, model, folder, _settings(pipelined, **overrides))


@pytest.mark.parametrize("write_workers", [1, 3])
def test_pipelined_run_writes_what_a_serial_run_writes(items, model, tmp_path: Path, write_workers: int) -> None:
    collectors = {mode: EvaluationCollector(frame="original") for mode in (False, True)}
    summaries = {
        mode: run_inference(
            items,
            model,
            tmp_path / str(mode),
            _settings(mode, write_workers=write_workers if mode else 1),
            collector=collectors[mode],
        )
        for mode in (False, True)
    }
    serial, pipelined = _contents(tmp_path / "False"), _contents(tmp_path / "True")
    assert len(serial) > 60  # maps, masks, network-frame outputs, overlays, tables
    assert sorted(pipelined) == sorted(serial)
    assert [name for name in serial if pipelined[name] != serial[name]] == []
    assert [p.image_id for p in summaries[True].predictions] == [p.image_id for p in summaries[False].predictions]
    assert [(f.index, f.stage) for f in summaries[True].failures] == [(BROKEN, "read")]
    # The evaluation records come in datalist order, with the same maps.
    ids = [[p.image_id for p in collectors[mode].predictions] for mode in (False, True)]
    assert ids[0] == ids[1] == [p.image_id for p in summaries[False].predictions]
    maps = [collectors[mode].localization_data()[0] for mode in (False, True)]
    assert len(maps[0]) == len(maps[1]) > 0
    assert all((a == b).all() for a, b in zip(*maps, strict=True))
    timings = summaries[True].timings
    assert set(timings) == {*STAGES, "wall"}
    assert all(timings[stage] > 0 for stage in ("read", "preprocess", "forward", "write", "evaluate"))
    assert timings["wall"] >= timings["forward"]


def _fail_overlay_of(image_id: str, error: BaseException, monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the writer raise ``error`` when it writes ``image_id``'s overlay."""
    original = prediction_writer.write_original_overlay

    def failing(path: Path, *args: Any, **kwargs: Any) -> Path:
        if Path(path).stem == image_id:
            raise error
        return original(path, *args, **kwargs)

    monkeypatch.setattr(prediction_writer, "write_original_overlay", failing)


@pytest.mark.parametrize(("pipelined", "write_workers"), [(False, 1), (True, 1), (True, 2)])
def test_a_writer_failure_is_recorded_for_its_item_and_the_run_goes_on(
    items, model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, pipelined: bool, write_workers: int
) -> None:
    victim = Path(items[2]["image"]).stem  # index 2: before the unreadable item 3, written after it is read
    _fail_overlay_of(victim, OSError("No space left on device"), monkeypatch)
    summary = _run(items, model, tmp_path / "out", pipelined, network_frame=False, write_workers=write_workers)
    failures = [(f.index, f.stage, f.error) for f in summary.failures]
    assert failures == [(2, "write", "OSError: No space left on device"), (BROKEN, "read", failures[1][2])]
    with open(tmp_path / "out" / "predictions.csv", newline="") as handle:
        rows = [row["image_id"] for row in csv.DictReader(handle)]
    assert victim not in rows and len(rows) == len(items) - 2
    assert [p.image_id for p in summary.predictions] == rows
    failed = json.loads((tmp_path / "out" / "failures.json").read_text())
    assert [f["index"] for f in failed] == [2, BROKEN]
    assert sorted(p.stem for p in (tmp_path / "out" / "overlays").iterdir()) == sorted(rows)


@pytest.mark.parametrize("write_workers", [1, 2])
def test_an_unexpected_writer_error_stops_the_run_as_in_a_serial_run(
    items, model, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write_workers: int
) -> None:
    _fail_overlay_of(Path(items[1]["image"]).stem, TypeError("a bug"), monkeypatch)
    with pytest.raises(TypeError, match="a bug"):
        _run(items, model, tmp_path / "out", True, network_frame=False, write_workers=write_workers)
    assert not [t for t in threading.enumerate() if t.name.startswith("monai-glam-")]  # no thread left behind


class _SignalOnForward(torch.nn.Module):
    """Wraps GLAM; sends SIGINT to this process during its ``at``-th forward pass."""

    def __init__(self, model: GLAM, at: int) -> None:
        super().__init__()
        self.model, self.at, self.calls = model, at, 0

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        self.calls += 1
        if self.calls == self.at:
            os.kill(os.getpid(), signal.SIGINT)
        return self.model(*args, **kwargs)


@pytest.mark.parametrize("pipelined", [False, True])
def test_sigint_stops_after_the_current_image_with_consistent_tables(
    items, model, tmp_path: Path, pipelined: bool
) -> None:
    output = tmp_path / "out"
    with pytest.raises(RunInterruptedError, match="after 3 of 9 images"):
        _run(items, _SignalOnForward(model, at=3), output, pipelined, network_frame=False)
    with open(output / "predictions.csv", newline="") as handle:
        rows = [row["image_id"] for row in csv.DictReader(handle)]
    assert rows == [Path(items[i]["image"]).stem for i in range(3)]  # the third forward's image is written too
    assert sorted(p.stem for p in (output / "overlays").iterdir()) == sorted(rows)  # and nothing beyond it
    assert json.loads((output / "failures.json").read_text()) == []  # the unreadable item 3 was not reached
    run = json.loads((output / "run.json").read_text())
    assert run["interrupted"] == "SIGINT" and run["num_images"] == 3
    assert not [p for p in output.rglob(".*") if p.is_file()]  # no temporary file left


@pytest.mark.parametrize("write_workers", [0, -1])
def test_settings_reject_a_bad_writer_count(write_workers: int) -> None:
    with pytest.raises(ValueError, match="--write-workers must be >= 1"):
        _settings(True, write_workers=write_workers)


def test_the_inverter_waits_for_the_chain_lock(items) -> None:
    chain = build_inference_transforms(
        TINY_PREPROCESSING["spatial_size"], TINY_PREPROCESSING["erosion_iterations"], TINY_PREPROCESSING["buffer"]
    )
    lock = threading.Lock()
    inverter = OriginalGeometryInverter(chain, lock=lock)
    image = chain(dict(items[0]))["image"]
    result: list[torch.Tensor] = []
    with lock:  # e.g. the reader thread preprocessing the next image
        worker = threading.Thread(target=lambda: result.append(inverter(torch.ones(2, *image.shape[1:]), image)))
        worker.start()
        worker.join(timeout=0.5)
        assert worker.is_alive() and not result
    worker.join(timeout=30)
    assert result and result[0].shape[1:] == (256, 160)
