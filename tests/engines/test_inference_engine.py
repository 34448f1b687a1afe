"""The forward model of ``monai-glam infer``: ``--engine onnxruntime|openvino`` and ``--channels-last``."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
import torch

from monai_glam.apps.cli import main
from monai_glam.engines import ENGINES, forward_model, inference_settings
from monai_glam.networks import GLAM, glam_preset
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


@pytest.mark.parametrize(("kwargs", "channels_last"), [({}, True), ({"channels_last": False}, False)])
def test_settings_hold_the_memory_format(kwargs, channels_last):
    settings = inference_settings(device="cpu", **kwargs)
    assert settings.channels_last is channels_last
    assert settings.to_json()["channels_last"] is channels_last


def _tiny_glam() -> GLAM:
    torch.manual_seed(0)
    return GLAM(**glam_preset("tiny")["glam"]).eval()


@pytest.mark.parametrize("channels_last", [True, False])
def test_forward_model_sets_the_weight_layout_and_keeps_the_outputs(channels_last):
    reference, model = _tiny_glam(), _tiny_glam()
    image = torch.rand(2, 1, 256, 160)
    assert forward_model(model, (256, 160), channels_last=channels_last) is model  # in place, the same module
    # Weights with several input channels and a kernel wider than 1 tell the two layouts apart.
    layered = [p for p in model.parameters() if p.dim() == 4 and p.shape[1] > 1 and p.shape[-1] > 1]
    assert layered
    assert all(p.is_contiguous(memory_format=torch.channels_last) for p in layered) is channels_last
    with torch.inference_mode():
        want, got = reference(image), model(image)
    for key, value in want.items():
        torch.testing.assert_close(got[key], value, atol=1e-5, rtol=1e-5, msg=key)


def test_forward_model_rejects_an_unknown_engine():
    with pytest.raises(ValueError, match=r"engine must be one of .* got 'tensorrt'"):
        forward_model(_tiny_glam(), (256, 160), engine="tensorrt")


def _rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def _assert_same_predictions(expected_run: Path, run: Path) -> None:
    """The two runs' ``predictions.csv`` list the same images with scores within 1e-5 and the same text columns."""
    expected, got = _rows(expected_run / "predictions.csv"), _rows(run / "predictions.csv")
    assert [row["image_id"] for row in got] == [row["image_id"] for row in expected]
    for want, have in zip(expected, got, strict=True):
        for column, value in want.items():
            try:
                assert float(have[column]) == pytest.approx(float(value), abs=1e-5), column
            except ValueError:  # text columns
                assert have[column] == value, column


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
    _assert_same_predictions(folder / "torch", output)
    maps = sorted(p.relative_to(output) for p in (output / "saliency").rglob("*.png"))
    assert maps == sorted(p.relative_to(folder / "torch") for p in (folder / "torch" / "saliency").rglob("*.png"))
    assert '"engine": "' + engine + '"' in (output / "run.json").read_text()


def test_contiguous_weights_give_the_channels_last_results(torch_run):
    folder, common = torch_run
    output = folder / "contiguous"
    assert main(["infer", *common, "--no-channels-last", "--output", str(output)]) == 0
    _assert_same_predictions(folder / "torch", output)
    assert json.loads((output / "run.json").read_text())["channels_last"] is False
    assert json.loads((folder / "torch" / "run.json").read_text())["channels_last"] is True
