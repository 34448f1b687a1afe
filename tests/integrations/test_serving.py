"""The server side without MONAI Label: the predictor, ``--conf`` settings, the app folder and ``init`` command,
training on image-level labels and publishing (main environment)."""

from __future__ import annotations

import importlib.util
import json
import os
import sys
from pathlib import Path

import nibabel
import numpy as np
import pytest
import torch
from PIL import Image

from monai_glam.data import read_datalist, write_synthetic_dataset
from monai_glam.engines import load_inference_model, run_inference
from monai_glam.integrations import (
    APP_MODEL_DIR,
    CHECKPOINT_NAME,
    BadImageError,
    GLAMPredictor,
    LabelTrainingOptions,
    init_label_app,
    labelled_datalist,
    parse_image_label,
    parse_server_settings,
    publish_checkpoint_pair,
    resolve_image_file,
    run_label_training,
)
from monai_glam.integrations.training import TRAIN_STATS_FILE, read_train_stats
from monai_glam.networks import GLAM
from monai_glam.networks.io import MODEL_CONFIG_NAME, read_model_config, save_model_config
from monai_glam.writers import write_nifti
from tests.writers.synthetic_run import TINY_GLAM, TINY_PREPROCESSING, make_checkpoint, run_cli


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Four 256x160 synthetic mammograms with DICOM copies, all in ``training``."""
    folder = tmp_path_factory.mktemp("synthetic")
    return write_synthetic_dataset(folder, num=4, size=(256, 160), seed=3, fractions=(1.0, 0.0, 0.0), progress=False)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_checkpoint(tmp_path_factory.mktemp("model"))


# ------------------------------------------------------------------------------------------------------------
# the predictor


def test_predictor_follows_the_infer_path(dataset: Path, checkpoint: Path, tmp_path: Path) -> None:
    """Scores and the original-geometry map are those ``monai-glam infer`` writes for the same image."""
    items = read_datalist(dataset, "training")
    predictor = GLAMPredictor(checkpoint, device="cpu")
    model, settings, _ = load_inference_model(checkpoint, device="cpu", formats=("nifti",), overlays=False)
    summary = run_inference(items[:2], model, tmp_path / "infer", settings)
    for item, record in zip(items[:2], summary.predictions, strict=True):
        answer = predictor.predict(item["image"])
        raw = np.array(Image.open(item["image"]))
        assert answer.saliency is not None and answer.saliency.shape == (2, *raw.shape)
        assert answer.saliency.dtype == np.float32 and answer.thresholds == (0.3, 0.3)  # the model config's
        for c, name in enumerate(("benign", "malignant")):
            written = np.asarray(
                nibabel.load(tmp_path / "infer" / "saliency" / f"{record.image_id}_{name}.nii.gz").dataobj
            )
            np.testing.assert_allclose(answer.saliency[c], written, atol=1e-6)
        np.testing.assert_allclose(answer.prob_global, record.prob_global, atol=1e-6)
        np.testing.assert_allclose(answer.prob_local, record.prob_local, atol=1e-6)


@pytest.mark.slow  # an ONNX export: the default suite covers --conf engine's parsing and its checks at load time
def test_predictor_runs_the_onnx_engine(dataset: Path, checkpoint: Path) -> None:
    """``--conf engine onnxruntime``: the exported model answers like eager torch (parity 1e-4, as infer's)."""
    pytest.importorskip("onnxruntime")
    image = read_datalist(dataset, "training")[0]["image"]
    eager = GLAMPredictor(checkpoint, device="cpu").predict(image)
    exported = GLAMPredictor(checkpoint, device="cpu", engine="onnxruntime")
    assert type(exported.load().model).__name__ == "OnnxGLAM"
    answer = exported.predict(image)
    np.testing.assert_allclose(answer.prob_global, eager.prob_global, atol=1e-4)
    np.testing.assert_allclose(answer.saliency, eager.saliency, atol=1e-4)


def test_predictor_reads_dicom_and_skips_maps_on_request(dataset: Path, checkpoint: Path) -> None:
    item = read_datalist(dataset, "training")[1]
    predictor = GLAMPredictor(checkpoint, device="cpu", thresholds=(0.2, 0.6))
    answer = predictor.predict(item["image_dicom"])
    assert answer.saliency is not None and answer.saliency.shape[1:] == (256, 160)
    assert answer.thresholds == (0.2, 0.6) and answer.spacing == pytest.approx((270 / 256, 270 / 256))
    scores_only = predictor.predict(item["image_dicom"], thresholds=(0.1, 0.1), maps=False)
    assert scores_only.saliency is None and scores_only.thresholds == (0.1, 0.1)
    np.testing.assert_allclose(scores_only.prob_global, answer.prob_global)


def test_predictor_reads_nifti_and_runs_a_sliding_window(dataset: Path, checkpoint: Path, tmp_path: Path) -> None:
    item = read_datalist(dataset, "training")[2]
    raw = np.array(Image.open(item["image"]))
    nifti = write_nifti(tmp_path / "2_R-CC.nii.gz", raw, spacing=(0.1, 0.1))  # axis 0 = rows, as the reader has it
    whole = GLAMPredictor(checkpoint, device="cpu").predict(nifti)
    from_png = GLAMPredictor(checkpoint, device="cpu").predict(item["image"])
    assert whole.spacing == pytest.approx((0.1, 0.1))
    np.testing.assert_allclose(whole.saliency, from_png.saliency, atol=1e-6)
    sliding = GLAMPredictor(checkpoint, device="cpu", sliding_window=True, overlap=0.25).predict(item["image"])
    assert sliding.saliency is not None and sliding.saliency.shape == (2, *raw.shape)
    assert not np.allclose(sliding.saliency, from_png.saliency)  # windows over the whole breast, not one window


def test_predictor_reloads_when_the_checkpoint_changes(dataset: Path, tmp_path: Path) -> None:
    image = read_datalist(dataset, "training")[0]["image"]
    served = make_checkpoint(tmp_path / "served", seed=0)
    predictor = GLAMPredictor(served, device="cpu")
    before = predictor.predict(image, maps=False).prob_global
    assert np.array_equal(predictor.predict(image, maps=False).prob_global, before)  # cached: same model
    first = predictor.load()
    torch.manual_seed(7)
    replacement = tmp_path / "replacement.pt"
    torch.save(GLAM(**TINY_GLAM).state_dict(), replacement)
    os.replace(replacement, served)  # as a publisher does
    after = predictor.predict(image, maps=False).prob_global
    assert predictor.load() is not first
    assert not np.allclose(after, before)


def test_bad_images_are_one_line_errors(checkpoint: Path, tmp_path: Path) -> None:
    predictor = GLAMPredictor(checkpoint, device="cpu")
    colour = tmp_path / "colour.png"
    Image.fromarray(np.full((64, 48, 3), 100, np.uint8)).save(colour)
    with pytest.raises(BadImageError, match=r"^colour.png: colour image \(mode RGB\)"):
        predictor.predict(colour)
    truncated = tmp_path / "truncated.png"
    truncated.write_bytes(b"\x89PNG\r\n\x1a\n" + b"\0" * 20)
    with pytest.raises(BadImageError, match=r"^truncated\.png: corrupt, truncated or unsupported"):
        predictor.predict(truncated)
    blank = tmp_path / "blank.png"
    Image.fromarray(np.zeros((256, 160), np.uint16)).save(blank)
    with pytest.raises(BadImageError, match=r"^blank\.png: "):
        predictor.predict(blank)
    frames = tmp_path / "frames.tif"
    Image.fromarray(np.zeros((64, 48), np.uint8)).save(frames, save_all=True, append_images=[Image.new("L", (48, 64))])
    with pytest.raises(BadImageError, match=r"^frames\.tif: multi-frame image \(2 frames\)"):
        predictor.predict(frames)
    with pytest.raises(FileNotFoundError, match=r"missing\.png: no such image"):
        predictor.predict(tmp_path / "missing.png")


def test_predictor_checks_its_settings_when_it_loads(checkpoint: Path) -> None:
    with pytest.raises(ValueError, match="precision must be one of"):
        GLAMPredictor(checkpoint, device="cpu", precision="fp8").load()
    with pytest.raises(ValueError, match="--engine must be one of"):
        GLAMPredictor(checkpoint, device="cpu", engine="tensorrt").load()
    with pytest.raises(ValueError, match="does not combine with --sliding-window"):
        GLAMPredictor(checkpoint, device="cpu", engine="onnxruntime", sliding_window=True).load()
    with pytest.raises(ValueError, match="thresholds must be two numbers in"):
        GLAMPredictor(checkpoint, device="cpu", thresholds=(0.5,)).load()


def test_series_folders_hold_one_image(tmp_path: Path) -> None:
    single = tmp_path / "single"
    single.mkdir()
    (single / "1.dcm").write_bytes(b"x")
    assert resolve_image_file(single) == single / "1.dcm"
    assert resolve_image_file(single / "1.dcm") == single / "1.dcm"
    (single / "2.dcm").write_bytes(b"x")
    with pytest.raises(BadImageError, match="series folder with 2 instances; one single-frame 2-D mammogram"):
        resolve_image_file(single)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadImageError, match="with no image file"):
        resolve_image_file(tmp_path / "empty")


# ------------------------------------------------------------------------------------------------------------
# --conf settings


def _app_with_model(folder: Path) -> Path:
    make_checkpoint(folder / APP_MODEL_DIR)
    (folder / APP_MODEL_DIR / "last.pt").rename(folder / APP_MODEL_DIR / CHECKPOINT_NAME)
    return folder


def test_settings_defaults_serve_the_apps_model(tmp_path: Path) -> None:
    app = _app_with_model(tmp_path / "app")
    settings = parse_server_settings({}, app)
    assert settings.checkpoint == (app / APP_MODEL_DIR / CHECKPOINT_NAME).resolve()
    assert settings.model_config is None and settings.thresholds is None and settings.device == "auto"
    assert settings.models == ("glam", "glam_classification") and settings.label_key == "glam_label"
    assert settings.serves_app_model
    outside = make_checkpoint(tmp_path / "elsewhere")
    assert not parse_server_settings({"checkpoint": str(outside)}, app).serves_app_model


@pytest.mark.parametrize(
    ("conf", "expected"),
    [
        ({"thresholds": "0.3,0.4"}, {"thresholds": (0.3, 0.4)}),
        ({"thresholds": "[0.3, 0.4]"}, {"thresholds": (0.3, 0.4)}),
        ({"thresholds": "0.3 0.4"}, {"thresholds": (0.3, 0.4)}),
        ({"window": "128,96", "buffer": "4", "erosion_iterations": "9"}, {"window": (128, 96), "buffer": 4}),
        ({"sliding_window": "TRUE", "overlap": "0.5", "sw_batch_size": "2"}, {"sliding_window": True, "overlap": 0.5}),
        ({"device": "cpu", "label_key": "labels", "models": "glam"}, {"device": "cpu", "models": ("glam",)}),
        ({"models": "glam_classification, glam"}, {"models": ("glam", "glam_classification")}),
        ({"precision": "bf16"}, {"precision": "bf16"}),  # checked when the model is loaded
        ({"engine": "onnxruntime"}, {"engine": "onnxruntime"}),  # checked when the model is loaded
        ({"server_mode": "true"}, {}),  # MONAI Label's own key is left to it
    ],
)
def test_settings_parse_conf_strings(tmp_path: Path, conf: dict[str, str], expected: dict[str, object]) -> None:
    settings = parse_server_settings(conf, _app_with_model(tmp_path / "app"))
    for key, value in expected.items():
        assert getattr(settings, key) == value


@pytest.mark.parametrize(
    ("conf", "problem"),
    [
        ({"treshold": "0.3"}, "unknown --conf key(s) ['treshold']; the GLAM app reads"),
        ({"thresholds": "0.3"}, "--conf thresholds must be 2 numbers separated by commas, got '0.3'"),
        ({"thresholds": "0.3,1.5"}, "--conf thresholds must be 2 numbers in [0, 1], got '0.3,1.5'"),
        ({"thresholds": "a,b"}, "--conf thresholds must be 2 numbers separated by commas, got 'a,b'"),
        ({"window": "128"}, "--conf window must be 2 numbers separated by commas, got '128'"),
        ({"window": "128,96.5"}, "--conf window must be two positive integers H,W, got '128,96.5'"),
        ({"sliding_window": "maybe"}, "--conf sliding_window must be true or false, got 'maybe'"),
        ({"overlap": "1"}, "--conf overlap must be a number in [0, 1), got '1'"),
        ({"sw_batch_size": "0"}, "--conf sw_batch_size must be an integer >= 1, got '0'"),
        ({"buffer": "-1"}, "--conf buffer must be an integer >= 0, got '-1'"),
        ({"device": "gpu0"}, "--conf device: unknown device 'gpu0'"),
        ({"models": "glam,sam"}, "--conf models must be all or a comma-separated subset of"),
        ({"label_key": " "}, "--conf label_key must be a non-empty image-info key"),
    ],
)
def test_settings_errors_name_the_key(tmp_path: Path, conf: dict[str, str], problem: str) -> None:
    with pytest.raises(ValueError) as caught:
        parse_server_settings(conf, _app_with_model(tmp_path / "app"))
    assert str(caught.value).startswith(problem)
    assert "\n" not in str(caught.value)


def test_settings_missing_files(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="monai-glam monailabel init DIR --checkpoint C"):
        parse_server_settings({}, tmp_path / "empty-app")
    app = _app_with_model(tmp_path / "app")
    with pytest.raises(FileNotFoundError, match="--conf model_config: no such file"):
        parse_server_settings({"model_config": str(tmp_path / "nope.json")}, app)


# ------------------------------------------------------------------------------------------------------------
# the app folder and ``monai-glam monailabel init``


def test_init_writes_a_ready_app_folder(checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    had_monailabel = "monailabel" in sys.modules
    app = tmp_path / "label-app"
    assert run_cli(["monailabel", "init", str(app), "--checkpoint", str(checkpoint)]) == 0
    out = capsys.readouterr().out
    assert f"monailabel start_server --app {app} --studies IMAGES --host 127.0.0.1" in out
    assert "GLAMLabelApp" in (app / "main.py").read_text()
    served = app / APP_MODEL_DIR / CHECKPOINT_NAME
    config = read_model_config(app / APP_MODEL_DIR / MODEL_CONFIG_NAME)
    assert config.glam == read_model_config(checkpoint.parent / MODEL_CONFIG_NAME).glam
    assert config.thresholds == (0.3, 0.3) and config.preprocessing["spatial_size"] == (128, 96)
    weights = torch.load(served, weights_only=True)  # a plain GLAM state dict, whatever the source layout
    assert weights.keys() == GLAM(**TINY_GLAM).state_dict().keys()
    # The command runs in any environment: it never imports MONAI Label.
    assert had_monailabel or "monailabel" not in sys.modules


def test_init_refuses_a_folder_with_files_unless_overwrite(
    checkpoint: Path, tmp_path: Path, capsys: pytest.CaptureFixture
) -> None:
    app = tmp_path / "app"
    assert run_cli(["monailabel", "init", str(app), "--checkpoint", str(checkpoint)]) == 0
    (app / APP_MODEL_DIR / "runs").mkdir()
    capsys.readouterr()
    assert run_cli(["monailabel", "init", str(app), "--checkpoint", str(checkpoint)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    other = make_checkpoint(tmp_path / "other", seed=5)
    config = tmp_path / "config.json"
    save_model_config(config, TINY_GLAM, TINY_PREPROCESSING, thresholds=(0.1, 0.9))
    argv = ["monailabel", "init", str(app), "--checkpoint", str(other), "--model-config", str(config), "--overwrite"]
    assert run_cli(argv) == 0
    assert read_model_config(app / APP_MODEL_DIR / MODEL_CONFIG_NAME).thresholds == (0.1, 0.9)
    assert (app / APP_MODEL_DIR / "runs").is_dir()  # earlier training runs are kept


@pytest.mark.parametrize(
    ("argv", "problem"),
    [
        (["--checkpoint", "{tmp}/missing.pt"], "checkpoint not found"),
        (["--checkpoint", "{bad}"], "does not fit the paper's GLAM configuration"),
        ([], "the following arguments are required: --checkpoint"),
    ],
)
def test_init_errors_are_one_line(tmp_path: Path, capsys: pytest.CaptureFixture, argv: list[str], problem: str) -> None:
    bad = make_checkpoint(tmp_path / "bad", with_config=False)  # tiny weights, no config: the paper's is assumed
    argv = [arg.format(tmp=tmp_path, bad=bad) for arg in argv]
    assert run_cli(["monailabel", "init", str(tmp_path / "app"), *argv]) == 2
    err = capsys.readouterr().err
    # Usage errors name the action (``monai-glam monailabel init: error:``), library errors the command.
    assert err.startswith("monai-glam monailabel") and ": error: " in err and problem in err and err.count("\n") == 1
    assert not (tmp_path / "app" / "main.py").exists()


def test_app_package_needs_monailabel() -> None:
    if importlib.util.find_spec("monailabel") is not None:
        pytest.skip("MONAI Label is installed here")
    with pytest.raises(ImportError) as caught:
        import monai_glam.integrations.monailabel  # noqa: F401
    message = str(caught.value)
    assert "MONAI Label 0.8.5" in message and 'pip install torch==2.13.0 "monai_glam[monailabel]"' in message
    assert "\n" not in message


# ------------------------------------------------------------------------------------------------------------
# training on image-level labels


def _images(dataset: Path) -> list[tuple[str, str, dict[str, object]]]:
    items = read_datalist(dataset, "training")
    return [(Path(item["image"]).stem, item["image"], {"glam_label": item["label"]}) for item in items]


def test_labelled_datalist_splits_the_labelled_images() -> None:
    images = [(f"img{i}", f"/data/img{i}.png", {"glam_label": [i % 2, 0]}) for i in range(10)]
    images.append(("unlabelled", "/data/u.png", {"other": 1}))
    images.append(("text", "/data/t.png", {"glam_label": "[1, 1]", "laterality": "L", "view": "CC"}))
    splits = labelled_datalist(images, val_split=0.25, seed=1)
    ids = [item["image_id"] for split in splits.values() for item in split]
    assert len(splits["validation"]) == 3 and len(splits["training"]) == 8
    assert sorted(ids) == sorted([f"img{i}" for i in range(10)] + ["text"])
    text = next(item for split in splits.values() for item in split if item["image_id"] == "text")
    assert text["label"] == [1, 1] and text["laterality"] == "L" and text["view"] == "CC"
    assert labelled_datalist(images, val_split=0.25, seed=1) == splits  # seeded
    assert len(labelled_datalist(images[:1], val_split=0.5)["training"]) == 1  # one image stays for training


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ([1], "must be [benign, malignant]"),
        ([1, 2], "label"),
        ("yes", "must be [benign, malignant]"),
    ],
)
def test_bad_image_labels_name_the_image(value: object, problem: str) -> None:
    with pytest.raises(ValueError, match=r"image 'x' \(glam_label\)") as caught:
        labelled_datalist([("x", "/x.png", {"glam_label": value})])
    assert problem in str(caught.value)
    assert parse_image_label([True, 0], "w") == [1, 0]


def test_no_labelled_image_says_how_to_set_labels() -> None:
    with pytest.raises(ValueError, match=r"PUT /datastore/image/info\?image=<id>"):
        labelled_datalist([("x", "/x.png", {})])


@pytest.mark.parametrize(
    ("request_", "expected"),
    [
        ({}, {"stage": "all", "max_epochs": 10}),
        ({"stage": ["global", "local"], "max_epochs": "2"}, {"stage": "global", "max_epochs": 2}),
        ({"learning_rate": "3e-3", "augment": "false", "publish": False}, {"learning_rate": 3e-3, "augment": False}),
        ({"model": "glam", "gpus": "all", "local_rank": 0}, {"stage": "all"}),  # MONAI Label's keys are ignored
    ],
)
def test_training_options_from_requests(request_: dict[str, object], expected: dict[str, object]) -> None:
    options = LabelTrainingOptions.from_request(request_)
    for key, value in expected.items():
        assert getattr(options, key) == value
    assert LabelTrainingOptions().config()["stage"] == ["all", "global", "local", "joint"]


@pytest.mark.parametrize(
    ("request_", "problem"),
    [
        ({"stage": "final"}, "stage must be one of ['all', 'global', 'local', 'joint']"),
        ({"max_epochs": 0}, "max_epochs must be an integer >= 1"),
        ({"max_epochs": 1.5}, "max_epochs must be an integer"),
        ({"val_split": 1}, "val_split must be in [0, 1)"),
        ({"augment": "perhaps"}, "augment must be true or false"),
        ({"learning_rate": "fast"}, "learning_rate must be a number"),
    ],
)
def test_bad_training_options(request_: dict[str, object], problem: str) -> None:
    with pytest.raises(ValueError) as caught:
        LabelTrainingOptions.from_request(request_)
    assert str(caught.value).startswith(problem)


def test_publish_keeps_the_served_thresholds(tmp_path: Path) -> None:
    run = tmp_path / "run"
    trained = make_checkpoint(run, seed=3)  # its config has thresholds 0.3 0.3
    served = tmp_path / "served"
    paths = publish_checkpoint_pair(trained, run / MODEL_CONFIG_NAME, served, thresholds=(0.2, 0.4))
    assert paths["checkpoint"].read_bytes() == trained.read_bytes()
    assert read_model_config(paths["model_config"]).thresholds == (0.2, 0.4)
    publish_checkpoint_pair(trained, run / MODEL_CONFIG_NAME, served)
    assert read_model_config(paths["model_config"]).thresholds == (0.3, 0.3)
    with pytest.raises(FileNotFoundError, match="nothing to publish"):
        publish_checkpoint_pair(tmp_path / "missing.pt", run / MODEL_CONFIG_NAME, served)


def test_train_stats_are_strict_json(tmp_path: Path) -> None:
    assert read_train_stats(tmp_path) == {}
    (tmp_path / TRAIN_STATS_FILE).write_text('{"val_auc": NaN, "epochs": 2}')
    assert read_train_stats(tmp_path) == {"val_auc": None, "epochs": 2}
    (tmp_path / TRAIN_STATS_FILE).write_text("{broken")
    assert read_train_stats(tmp_path) == {}


# Four images: every class has a single label value in a split, which the training warns about (on purpose).
@pytest.mark.filterwarnings("ignore::RuntimeWarning", "ignore::UserWarning")
def test_label_training_runs_a_stage_and_publishes(dataset: Path, checkpoint: Path, tmp_path: Path) -> None:
    app = tmp_path / "app"
    init_label_app(app, checkpoint)
    model_dir = app / APP_MODEL_DIR
    before = (model_dir / CHECKPOINT_NAME).read_bytes()
    # No augmentation: its published window noise (up to 100 pixels) needs a larger window than this 128x96 one.
    options = LabelTrainingOptions(
        stage="global", max_epochs=1, train_batch_size=2, val_split=0.25, augment=False, device="cpu"
    )
    stats = run_label_training(_images(dataset), model_dir, options, run_id="run1")
    run = model_dir / "runs" / "run1"
    assert (run / "datalist.json").is_file() and (run / "global" / "last.pt").is_file()
    assert any((run / "global" / "tensorboard").iterdir())
    assert stats["num_training"] == 3 and stats["num_validation"] == 1 and stats["published"]
    assert (model_dir / CHECKPOINT_NAME).read_bytes() != before
    served = read_model_config(model_dir / MODEL_CONFIG_NAME)
    assert (
        served.thresholds == (0.3, 0.3) and served.glam == read_model_config(checkpoint.parent / MODEL_CONFIG_NAME).glam
    )
    on_disk = json.loads((model_dir / TRAIN_STATS_FILE).read_text())  # strict JSON (json rejects nothing here)
    assert on_disk == stats and on_disk["stages"][0]["stage"] == "global"
    GLAMPredictor(model_dir / CHECKPOINT_NAME, device="cpu").load()  # the published pair loads
