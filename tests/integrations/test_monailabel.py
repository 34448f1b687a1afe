"""GLAM served by a real MONAI Label server on 127.0.0.1 (needs MONAI Label: its own virtual environment).

Run with ``python -m pytest -q -m monailabel tests/integrations`` in the environment where
``monai_glam[monailabel]`` is installed; elsewhere the module is skipped. One server is started per module, in its
own process group, on a free loopback port, with its logs and MONAI Label's session and cache folders in a
temporary folder, and it is stopped in ``finally``.

The acceptance test of the integration: a tiny GLAM is trained (in the module fixture, about 15 s of CPU) on a few
synthetic mammograms with large bright lesions; the labelmap that ``/infer/glam`` returns for those images overlaps
their ground-truth malignant masks.
"""

from __future__ import annotations

import io
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytest.importorskip("monailabel")
requests = pytest.importorskip("requests")

from PIL import Image  # noqa: E402

from monai_glam.data import SyntheticMammogramGenerator, read_datalist, write_synthetic_dataset  # noqa: E402
from monai_glam.engines import run_training  # noqa: E402
from monai_glam.integrations import APP_MODEL_DIR, CHECKPOINT_NAME, GLAMPredictor  # noqa: E402
from monai_glam.metrics import select_dice_thresholds  # noqa: E402
from monai_glam.networks.io import read_model_config, save_model_config  # noqa: E402

pytestmark = pytest.mark.monailabel

SIZE = (256, 160)
#: Large, bright, well separated lesions (no calcification clusters): a tiny GLAM learns them in seconds.
LESIONS: dict[str, Any] = {
    "calcification_fraction": 0.0,
    "benign_radius": (0.09, 0.12),
    "malignant_radius": (0.09, 0.12),
    "benign_contrast": (0.6, 0.8),
    "malignant_contrast": (0.7, 0.9),
    "marker_probability": 0.0,
}
START_TIMEOUT_S = 120.0
TRAIN_TIMEOUT_S = 240.0


# ------------------------------------------------------------------------------------------------------------
# fixtures: a trained tiny GLAM, an app folder, a datastore and a running server


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """A tiny GLAM trained on 16 synthetic mammograms (global, then local), with Dice-optimal thresholds picked on
    those images and written into its model config."""
    folder = tmp_path_factory.mktemp("glam-trained")
    generator = SyntheticMammogramGenerator(size=SIZE, seed=0, **LESIONS)
    datalist = write_synthetic_dataset(
        folder / "data", num=16, size=SIZE, fractions=(1.0, 0.0, 0.0), progress=False, generator=generator
    )
    document = json.loads(datalist.read_text())
    document["validation"] = document["training"][:4]  # picks best.pt; these images are also trained on
    datalist.write_text(json.dumps(document))
    common: dict[str, Any] = {
        "preset": "tiny",
        "batch_size": 4,
        "learning_rate": 3e-3,
        "augment": False,
        "device": "cpu",
        "show_progress": False,
        "log_interval": 0,
        "image_interval": 0,
    }
    run_training(datalist, folder / "global", stage="global", epochs=10, **common)
    run_training(
        datalist, folder / "local", stage="local", epochs=6, init_checkpoint=folder / "global" / "best.pt", **common
    )
    checkpoint = folder / "local" / "best.pt"
    items = read_datalist(datalist, "training")
    predictor = GLAMPredictor(checkpoint, device="cpu")
    maps = [predictor.predict(item["image"]).saliency for item in items]
    masks = [_masks(item) for item in items]
    thresholds = select_dice_thresholds(maps, masks).thresholds
    config = read_model_config(checkpoint.parent / "model_config.json")
    model_config = folder / "served_config.json"
    save_model_config(model_config, config.glam, config.preprocessing, thresholds=tuple(thresholds))
    return {"checkpoint": checkpoint, "model_config": model_config, "items": items, "dicom": items[1]["image_dicom"]}


def _masks(item: dict[str, Any]) -> np.ndarray:
    return np.stack([np.array(Image.open(item[f"mask_{name}"])) > 0 for name in ("benign", "malignant")])


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def server(trained: dict[str, Any], tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """``monai-glam monailabel init`` then ``monailabel start_server`` on 127.0.0.1; stopped in ``finally``."""
    root = tmp_path_factory.mktemp("glam-label-server")
    app = root / "app"
    init = [sys.executable, "-m", "monai_glam.apps.cli", "monailabel", "init", str(app)]
    init += ["--checkpoint", str(trained["checkpoint"]), "--model-config", str(trained["model_config"])]
    done = subprocess.run(init, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    studies = root / "studies"
    studies.mkdir()
    for item in trained["items"]:
        shutil.copy(item["image"], studies)
    shutil.copy(trained["dicom"], studies / "dicom_image.dcm")
    Image.fromarray(np.full((64, 48, 3), 120, np.uint8)).save(studies / "colour.png")
    port = _free_port()
    env = dict(os.environ)
    env.update(
        OMP_NUM_THREADS=env.get("OMP_NUM_THREADS", "1"),
        MONAI_LABEL_TRACKING_ENABLED="false",
        MONAI_LABEL_SESSION_PATH=str(root / "sessions"),
        MONAI_LABEL_DATASTORE_CACHE_PATH=str(root / "cache"),
        MONAI_LABEL_DICOMWEB_CACHE_PATH=str(root / "cache"),
    )
    command = [sys.executable, "-m", "monailabel.main", "start_server", "--app", str(app), "--studies", str(studies)]
    command += ["--host", "127.0.0.1", "--port", str(port)]
    log_path = root / "server.log"
    with open(log_path, "w") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            if process.poll() is not None:
                pytest.fail(f"the server exited ({process.returncode}):\n{log_path.read_text()[-3000:]}")
            try:
                if requests.get(f"{base}/info/", timeout=5).status_code == 200:
                    break
            except requests.RequestException:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"the server did not answer in {START_TIMEOUT_S} s:\n{log_path.read_text()[-3000:]}")
            time.sleep(0.5)
        yield {"base": base, "app": app, "studies": studies, "log": log_path, **trained}
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)  # the server and any training subprocess it started
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait(timeout=30)


def _infer(server: dict[str, Any], model: str, image: str, output: str, **params: Any) -> requests.Response:
    url = f"{server['base']}/infer/{model}"
    return requests.post(
        url, params={"image": image, "output": output}, data={"params": json.dumps(params)}, timeout=120
    )


def _png(response: requests.Response) -> np.ndarray:
    assert response.status_code == 200, response.text
    return np.array(Image.open(io.BytesIO(response.content)))


def _dice(prediction: np.ndarray, truth: np.ndarray) -> float:
    return 2.0 * float((prediction & truth).sum()) / float(prediction.sum() + truth.sum())


# ------------------------------------------------------------------------------------------------------------
# tests (in this order: the last one trains and replaces the served model)


def test_info_lists_the_glam_models_and_trainer(server: dict[str, Any]) -> None:
    info = requests.get(f"{server['base']}/info/", timeout=30).json()
    glam = info["models"]["glam"]
    assert glam["type"] == "segmentation" and glam["dimension"] == 2
    assert glam["labels"] == {"benign": 1, "malignant": 2} and glam["glam"]["mammography"] is True
    assert glam["glam"]["window"] == list(SIZE) and glam["glam"]["thresholds"] == list(
        read_model_config(server["model_config"]).thresholds
    )
    assert info["models"]["glam_classification"]["type"] == "classification"
    assert info["labels"] == ["benign", "malignant"]
    assert "stage" in info["trainers"]["glam"]["config"]
    assert info["datastore"]["total"] == 18  # 16 PNGs, the DICOM file and the colour PNG


def test_labelmap_overlaps_the_lesions_the_model_was_trained_to_find(server: dict[str, Any]) -> None:
    """The acceptance test: ``/infer/glam`` returns, in the source geometry, a labelmap on the trained lesions."""
    dices, hits = [], []
    for item in server["items"]:
        truth = _masks(item)
        labelmap = _png(_infer(server, "glam", Path(item["image"]).stem, "image"))
        assert labelmap.dtype == np.uint8 and labelmap.shape == truth.shape[1:]  # the source image's shape
        assert set(np.unique(labelmap)) <= {0, 1, 2}
        if truth[1].any():
            malignant = labelmap == 2
            assert malignant.mean() < 0.5  # a finding, not the whole image
            hits.append(bool((malignant & truth[1]).any()))
            dices.append(_dice(malignant, truth[1]))
    # Measured on the 2-core CPU machine: every one of the 12 malignant images hit, mean Dice about 0.3.
    assert len(dices) >= 4 and np.mean(hits) >= 0.75 and float(np.mean(dices)) > 0.2, (hits, dices)


def test_segmentation_json_has_scores_thresholds_and_polygons(server: dict[str, Any]) -> None:
    # The first malignant image whose finding the model marks (the acceptance test above checks how many it finds;
    # this one checks the JSON of a found one).
    found = []
    for item in (item for item in server["items"] if _masks(item)[1].any()):
        response = _infer(server, "glam", Path(item["image"]).stem, "json")
        assert response.status_code == 200, response.text
        result = response.json()
        assert set(result["scores"]) == {"prob_global", "prob_local"}
        assert result["thresholds"] == dict(
            zip(("benign", "malignant"), read_model_config(server["model_config"]).thresholds, strict=True)
        )
        elements = result["annotations"][0]["annotation"]["elements"]
        found = [element for element in elements if element["label"] == "malignant"]
        if found:
            break
    assert found, "no malignant image got a malignant polygon"
    malignant = found[0]
    points = np.asarray(malignant["contours"][0])
    assert points.shape[1] == 2 and points[:, 0].min() >= 0 and points[:, 0].max() <= SIZE[1]  # x = column
    assert "prediction" not in result and result["image_size"] == list(SIZE)


def test_classification_returns_monai_label_predictions(server: dict[str, Any]) -> None:
    response = _infer(server, "glam_classification", Path(server["items"][0]["image"]).stem, "json")
    assert response.status_code == 200, response.text
    prediction = response.json()["prediction"]
    assert [(p["idx"], p["label"]) for p in prediction] == [(0, "benign"), (1, "malignant")]
    assert all(0.0 <= p["score"] <= 1.0 for p in prediction)


@pytest.mark.parametrize(
    ("image", "params", "status", "detail"),
    [
        ("no-such-image", {}, 404, "unknown image id 'no-such-image': not in the datastore"),
        ("colour", {}, 422, "colour.png: colour image (mode RGB); a grayscale mammogram is expected"),
        ("0_L-CC", {"thresholds": [0.5]}, 422, "params.thresholds must be 2 numbers"),
        ("0_L-CC", {"glam_output": "overlay"}, 422, "params.glam_output must be one of"),
        ("0_L-CC", {"result_extension": ".dcm"}, 422, "params.result_extension must be one of"),
    ],
)
def test_bad_requests_are_4xx_with_one_line(
    server: dict[str, Any], image: str, params: dict[str, Any], status: int, detail: str
) -> None:
    response = _infer(server, "glam", image, "json", **params)
    assert response.status_code == status, response.text
    assert response.json()["detail"].startswith(detail) and "\n" not in response.json()["detail"]


def test_uploaded_multi_frame_image_is_a_422(server: dict[str, Any]) -> None:
    frames = io.BytesIO()
    Image.new("L", (48, 64)).save(frames, format="TIFF", save_all=True, append_images=[Image.new("L", (48, 64))])
    upload = {"file": ("frames.tif", frames.getvalue(), "image/tiff")}
    response = requests.post(f"{server['base']}/infer/glam", params={"output": "json"}, files=upload, timeout=120)
    assert response.status_code == 422, response.text
    assert "multi-frame image (2 frames); one 2-D image expected" in response.json()["detail"]


def test_dicom_image_in_the_datastore(server: dict[str, Any]) -> None:
    import pydicom

    source = pydicom.dcmread(server["studies"] / "dicom_image.dcm")
    labelmap = _png(_infer(server, "glam", "dicom_image", "image"))
    assert labelmap.shape == (source.Rows, source.Columns) and set(np.unique(labelmap)) <= {0, 1, 2}
    nrrd = pytest.importorskip("nrrd")
    response = _infer(server, "glam", "dicom_image", "image", result_extension=".nrrd")
    assert response.status_code == 200, response.text
    path = server["app"].parent / "label.nrrd"
    path.write_bytes(response.content)
    data, header = nrrd.read(str(path), index_order="C")
    np.testing.assert_array_equal(data, labelmap)
    assert list(header["spacings"]) == pytest.approx([float(v) for v in reversed(source.PixelSpacing)])


def test_saliency_output_is_a_16_bit_map(server: dict[str, Any]) -> None:
    item = server["items"][0]
    saliency = _png(_infer(server, "glam", Path(item["image"]).stem, "image", glam_output="saliency_malignant"))
    assert saliency.dtype == np.uint16 and saliency.shape == SIZE


def test_training_publishes_a_checkpoint_the_next_infer_uses(server: dict[str, Any]) -> None:
    base = server["base"]
    for item in server["items"]:
        info = {"glam_label": item["label"]}
        response = requests.put(
            f"{base}/datastore/image/info", params={"image": Path(item["image"]).stem}, data={"info": json.dumps(info)}
        )
        assert response.status_code == 200, response.text
    served = server["app"] / APP_MODEL_DIR / CHECKPOINT_NAME
    stamp = served.stat().st_mtime_ns
    image = Path(server["items"][0]["image"]).stem
    before = _infer(server, "glam_classification", image, "json").json()["prediction"]
    request = {"stage": "global", "max_epochs": 1, "train_batch_size": 4, "learning_rate": 1e-2, "device": "cpu"}
    response = requests.post(f"{base}/train/glam", json=request, timeout=60)
    assert response.status_code == 200, response.text
    deadline = time.monotonic() + TRAIN_TIMEOUT_S
    while True:
        task = requests.get(f"{base}/train/", timeout=30).json()
        if task["status"] in ("DONE", "ERROR") or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    assert task["status"] == "DONE", "\n".join(task.get("details", [])) + server["log"].read_text()[-3000:]
    assert served.stat().st_mtime_ns != stamp
    runs = list((server["app"] / APP_MODEL_DIR / "runs").iterdir())
    assert len(runs) == 1 and any((runs[0] / "global" / "tensorboard").iterdir())
    stats = requests.get(f"{base}/info/", timeout=30).json()["train_stats"]["glam"]
    assert stats["published"] == str(served) and stats["num_training"] + stats["num_validation"] == 16
    after = _infer(server, "glam_classification", image, "json").json()["prediction"]
    assert [p["score"] for p in after] != [p["score"] for p in before]  # reloaded without a restart
