"""``monai-glam infer --engine onnxruntime|openvino``: the exported model in the inference pipeline."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from monai_glam.apps.cli import main
from monai_glam.engines import ENGINES, inference_settings
from tests.writers.synthetic_run import make_checkpoint, make_dataset


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"engine": "tensorrt"}, "--engine must be one of"),
        ({"engine": "onnxruntime", "sliding_window": True}, "does not combine with --sliding-window"),
        ({"engine": "openvino", "precision": "bf16"}, "runs in float32"),
    ],
)
def test_settings_reject_engine_combinations(kwargs, message):
    with pytest.raises(ValueError, match=message):
        inference_settings(device="cpu", **kwargs)


def test_settings_name_missing_engine_packages(monkeypatch):
    import monai_glam.engines.inference as inference

    monkeypatch.setattr(inference, "missing_packages", lambda runtime: [runtime])
    with pytest.raises(ValueError, match="--engine openvino needs openvino: pip install openvino"):
        inference_settings(device="cpu", engine="openvino")


@pytest.mark.parametrize("engine", ENGINES[1:])
def test_onnx_engine_settings_run_float32_on_the_cpu(engine):
    settings = inference_settings(device="auto", precision="auto", engine=engine)
    assert (settings.device, settings.precision, settings.engine) == ("cpu", "fp32", engine)
    assert settings.to_json()["engine"] == engine


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.fixture(scope="module")
def torch_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("engine")
    datalist = make_dataset(folder / "data", num=4)
    checkpoint = make_checkpoint(folder / "model")
    common = ["--datalist", str(datalist), "--split", "training", "--checkpoint", str(checkpoint), "--no-progress"]
    common += ["--formats", "png", "--no-overlays"]
    assert main(["infer", *common, "--output", str(folder / "torch")]) == 0
    return folder, common


# OpenVINO's parity with eager is covered by tests/networks/test_export.py; its end-to-end run is the slow variant.
@pytest.mark.parametrize("engine", ["onnxruntime", pytest.param("openvino", marks=pytest.mark.slow)])
def test_onnx_engine_gives_the_torch_engine_results(torch_run, engine):
    pytest.importorskip("onnxscript")
    pytest.importorskip(engine)
    folder, common = torch_run
    output = folder / engine
    assert main(["infer", *common, "--engine", engine, "--output", str(output)]) == 0
    expected, got = _rows(folder / "torch" / "predictions.csv"), _rows(output / "predictions.csv")
    assert [row["image_id"] for row in got] == [row["image_id"] for row in expected]
    for want, have in zip(expected, got, strict=True):
        for column, value in want.items():
            try:
                assert float(have[column]) == pytest.approx(float(value), abs=1e-5), column
            except ValueError:  # text columns
                assert have[column] == value, column
    maps = sorted(p.relative_to(output) for p in (output / "saliency").rglob("*.png"))
    assert maps == sorted(p.relative_to(folder / "torch") for p in (folder / "torch" / "saliency").rglob("*.png"))
    assert '"engine": "' + engine + '"' in (output / "run.json").read_text()
