"""The bundle's workflows end to end, model-zoo style: create_workflow, check_properties, run, finalize."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest
import torch
from PIL import Image

from monai_glam.data import read_datalist, write_datalist
from tests.bundle.conftest import CONFIG_WARNING, RAW_SIZE, config, create

pytestmark = pytest.mark.filterwarnings(CONFIG_WARNING)

CLASSES = ("benign", "malignant")


def _scalar_tags(folder) -> tuple[set[str], set[str]]:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(folder), size_guidance={"images": 0, "scalars": 0}).Reload()
    return set(events.Tags()["scalars"]), set(events.Tags()["images"])


def test_train_global_stage_outputs(trained_bundle):
    models = trained_bundle / "models"
    assert sorted(p.name for p in models.iterdir()) == ["model.pt", "model_global.pt"]
    best = torch.load(models / "model_global.pt", weights_only=True)
    assert torch.equal(
        best["global_network.backbone.stem.weight"],
        torch.load(models / "model.pt", weights_only=True)["global_network.backbone.stem.weight"],
    )
    last = torch.load(trained_bundle / "runs" / "global" / "last.pt", weights_only=True)
    assert set(last) == {"network", "optimizer", "lr_scheduler", "trainer", "validation"}
    assert last["trainer"]["iteration"] == last["trainer"]["epoch_length"] == 4  # 16 images, batches of 4
    event_files = list((trained_bundle / "runs" / "global" / "tensorboard").iterdir())
    assert len(event_files) == 1, "one shared SummaryWriter"
    scalars, images = _scalar_tags(event_files[0].parent)
    expected = {
        "loss",
        "loss_bce_global",
        "loss_sparsity_global",
        "loss_erasure_global",  # the presets' erasure term (train.json's erasure_weight)
        "lr",
        "val_auc",
        "val_auc_benign",
        "val_auc_malignant",
        "val_dice_benign",
        "val_dice_malignant",
    }
    assert expected <= scalars
    assert {"train_saliency", "val_saliency"} <= images


def test_local_stage_starts_from_global_and_keeps_it_frozen(trained_bundle, synthetic_dir):
    workflow = create(
        config("train.json"),
        "train",
        trained_bundle,
        synthetic_dir,
        **{"stage": "local", "train#trainer#max_epochs": 1, "image_interval": 0},
    )
    assert workflow.check_properties() == []
    workflow.run()
    workflow.finalize()
    models = trained_bundle / "models"
    global_state = torch.load(models / "model_global.pt", weights_only=True)
    local_state = torch.load(models / "model_local.pt", weights_only=True)
    for key, value in global_state.items():
        if key.startswith("global_network."):
            assert torch.equal(value, local_state[key]), key  # loaded, then frozen (batch-norm stats too)
    changed = [
        k for k in global_state if k.startswith("local_network.") and not torch.equal(global_state[k], local_state[k])
    ]
    assert changed, "the local stage trains the local module"
    published = torch.load(models / "model.pt", weights_only=True)
    assert all(torch.equal(published[k], local_state[k]) for k in local_state)
    assert not (trained_bundle / "runs" / "local" / "tensorboard").exists() or not any(
        "saliency" in t for t in _scalar_tags(trained_bundle / "runs" / "local" / "tensorboard")[1]
    ), "image_interval=0 disables the saliency images"


def test_resume_continues_from_last_checkpoint(trained_bundle, synthetic_dir, tmp_path):
    import shutil

    root = tmp_path / "resumed"
    shutil.copytree(trained_bundle / "runs" / "global", root / "runs" / "global")
    workflow = create(
        config("train.json"),
        "train",
        root,
        synthetic_dir,
        **{"train#trainer#max_epochs": 2, "resume": True, "image_interval": 0},
    )
    seen = []
    trainer = workflow.trainer
    from ignite.engine import Events

    trainer.add_event_handler(Events.EPOCH_STARTED, lambda engine: seen.append(engine.state.epoch))
    workflow.run()
    workflow.finalize()
    assert seen == [2], "epoch 1 came from last.pt"
    state = torch.load(root / "runs" / "global" / "last.pt", weights_only=True)["trainer"]
    assert state["iteration"] == 2 * state["epoch_length"]


def test_missing_previous_stage_is_reported(synthetic_dir, tmp_path):
    with pytest.raises(RuntimeError) as info:
        create(config("train.json"), "train", tmp_path, synthetic_dir, stage="joint")
    assert "model_local.pt" in str(info.value.__cause__ or info.value)


def test_inference_writes_tables_maps_masks_overlays(trained_bundle, synthetic_dir, tmp_path):
    out = tmp_path / "infer"
    workflow = create(
        config("inference.json"), "infer", trained_bundle, synthetic_dir, output_dir=str(out), thresholds=[0.3, 0.3]
    )
    assert workflow.check_properties() == []
    workflow.run()
    workflow.finalize()
    items = read_datalist(synthetic_dir / "datalist.json", "test")
    with open(out / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    assert [r["image"] for r in rows] == [item["image"] for item in items]
    for row, item in zip(rows, items, strict=True):
        assert [int(row["label_benign"]), int(row["label_malignant"])] == item["label"]
        assert all(
            0.0 <= float(row[f"prob_{s}_{c}"]) <= 1.0 for s in ("global", "local") for c in ("benign", "malignant")
        )
        image_id = row["image_id"]
        for name in ("benign", "malignant"):
            saliency = np.asarray(Image.open(out / "saliency" / f"{image_id}_{name}.png"))
            mask = np.asarray(Image.open(out / "masks" / f"{image_id}_{name}.png"))
            assert saliency.shape == mask.shape == RAW_SIZE  # original geometry, not the 256x160 window
            assert set(np.unique(mask)) <= {0, 255}
            assert (out / "saliency" / f"{image_id}_{name}.nii.gz").is_file()
            assert (out / "masks" / f"{image_id}_{name}.nii.gz").is_file()
        overlay = Image.open(out / "overlays" / f"{image_id}.png")
        assert overlay.mode == "RGB" and overlay.size[0] > overlay.size[1]
    assert {"breasts.csv", "exams.csv", "failures.json", "run.json"} <= {p.name for p in out.iterdir()}
    assert json.loads((out / "failures.json").read_text()) == []


def _predictions(folder) -> list[dict[str, str]]:
    with open(folder / "predictions.csv", newline="") as handle:
        return list(csv.DictReader(handle))


@pytest.mark.slow  # an ONNX export and two inference runs; test_configs checks the engine key's wiring
def test_inference_engine_onnxruntime_matches_torch(trained_bundle, synthetic_dir, tmp_path):
    """``--engine onnxruntime``: the loaded weights exported to ONNX answer like eager torch (1e-4, as infer's)."""
    pytest.importorskip("onnxruntime")
    runs = {}
    for engine in ("torch", "onnxruntime"):
        out = tmp_path / engine
        workflow = create(
            config("inference.json"), "infer", trained_bundle, synthetic_dir, output_dir=str(out), engine=engine
        )
        workflow.run()
        if engine != "torch":
            assert type(workflow.evaluator.network).__name__ == "OnnxGLAM"
        workflow.finalize()
        runs[engine] = _predictions(out)
    assert [r["image_id"] for r in runs["torch"]] == [r["image_id"] for r in runs["onnxruntime"]]
    for eager, exported in zip(runs["torch"], runs["onnxruntime"], strict=True):
        for key in (f"prob_{s}_{c}" for s in ("global", "local") for c in CLASSES):
            assert abs(float(eager[key]) - float(exported[key])) <= 1e-4, key


def _run_inference(trained_bundle, synthetic_dir, out, **overrides):
    """``inference.json`` into ``out`` with ``overrides``: created, run and finalized; returns the workflow."""
    workflow = create(
        config("inference.json"), "infer", trained_bundle, synthetic_dir, output_dir=str(out), **overrides
    )
    workflow.run()
    workflow.finalize()
    return workflow


def test_inference_masks_follow_thresholds(trained_bundle, synthetic_dir, tmp_path):
    """Threshold 0 marks the whole window and 1 nothing (saliency < 1): masks really come from the map."""
    import nibabel

    counts = {}
    for threshold in (0.0, 1.0):
        out = tmp_path / f"t{threshold}"
        _run_inference(
            trained_bundle,
            synthetic_dir,
            out,
            thresholds=[threshold, threshold],
            split="validation",
            **{"prediction_writer#overlays": False, "prediction_writer#formats": ["nifti"]},
        )
        masks = sorted((out / "masks").glob("*.nii.gz"))
        counts[threshold] = sum(int(np.asarray(nibabel.load(m).dataobj).sum()) for m in masks)
        assert not (out / "overlays").exists()
    assert counts[1.0] == 0 < counts[0.0]


def test_inference_on_writer_threads_writes_the_same_files(trained_bundle, synthetic_dir, tmp_path):
    """``write_queue_size`` 2 (the default: a writer thread), three writer threads and 0 (the engine's thread)
    write identical files."""
    files = {}
    for size, workers in ((0, 1), (2, 1), (2, 3)):
        out = tmp_path / f"queue{size}-{workers}"
        workflow = _run_inference(
            trained_bundle,
            synthetic_dir,
            out,
            write_queue_size=size,
            write_workers=workers,
            **{"prediction_writer#formats": ["png"]},
        )
        # The dataset's transform was guarded by the writer's lock for the run (no DataLoader workers): restored.
        assert workflow.dataset.transform is workflow.preprocessing
        files[(size, workers)] = {
            path.relative_to(out).as_posix(): path.read_bytes()
            for path in sorted(out.rglob("*"))
            if path.is_file() and path.name != "run.json"
        }
    assert len([name for name in files[(0, 1)] if name.startswith("overlays/")]) == 8
    assert files[(2, 1)] == files[(0, 1)]
    assert files[(2, 3)] == files[(0, 1)]


def test_inference_lists_a_skipped_item_and_writes_its_replacement_once(trained_bundle, synthetic_dir, tmp_path):
    """The dataset loads the next good item in place of a broken one: one row per good item, the bad one listed."""
    items = read_datalist(synthetic_dir / "datalist.json", "test")[:3]
    broken = tmp_path / "broken.png"
    broken.write_bytes(b"not a png")
    items.insert(1, {"image": str(broken), "label": [0, 0]})
    datalist = tmp_path / "datalist.json"
    write_datalist(datalist, {"test": items})
    out = tmp_path / "infer"
    workflow = create(
        config("inference.json"),
        "infer",
        trained_bundle,
        synthetic_dir,
        output_dir=str(out),
        datalist=str(datalist),
        **{"prediction_writer#overlays": False, "prediction_writer#formats": ["png"]},
    )
    workflow.run()
    workflow.finalize()
    with open(out / "predictions.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    good = [items[0], *items[2:]]
    assert [r["image"] for r in rows] == [item["image"] for item in good]
    ids = [r["image_id"] for r in rows]
    assert len(set(ids)) == 3 and "broken" not in ids  # the bad item's id stays unused, as in monai-glam infer
    assert sorted(p.name for p in (out / "saliency").iterdir()) == sorted(f"{i}_{c}.png" for i in ids for c in CLASSES)
    failures = json.loads((out / "failures.json").read_text())
    assert [(f["index"], f["image"], f["stage"]) for f in failures] == [(1, str(broken), "load")]
    assert "broken.png" in failures[0]["error"]


def test_evaluate_writes_report(trained_bundle, synthetic_dir, tmp_path):
    out = tmp_path / "report"
    workflow = create(
        config("inference.json", "evaluate.json"),
        "eval",
        trained_bundle,
        synthetic_dir,
        output_dir=str(out),
        num_bootstrap=50,
        peak_min_distance=8,
        peak_sigma=2.0,
    )
    assert workflow.check_properties() == []
    workflow.run()
    workflow.finalize()
    report = json.loads((out / "report.json").read_text())
    items = read_datalist(synthetic_dir / "datalist.json", "test")
    assert report["num_images"] == len(items)
    assert set(report["classification"]) == {"image", "breast"}
    assert set(report["classification"]["image"]) == {"global", "local"}
    assert {"segmentation", "pointing_game", "froc"} <= set(report)
    for c, name in enumerate(("benign", "malignant")):  # Dice over the images that contain the class
        assert report["segmentation"][name]["num_images"] == sum(item["label"][c] for item in items)
        assert report["segmentation"][name]["threshold"] == 0.5
    for name in ("report.md", "roc_image.png", "roc_breast.png", "froc.png", "predictions.csv", "metrics.csv"):
        assert (out / name).is_file(), name
    metrics = (out / "metrics.csv").read_text()
    for key in ("test_auc", "test_auc_benign", "test_dice_malignant"):
        assert key in metrics


def _messages(err: BaseException | None) -> str:
    """The messages of an exception and its causes (MONAI wraps the errors of config expressions)."""
    texts = []
    while err is not None:
        texts.append(str(err))
        err = err.__cause__ or err.__context__
    return " | ".join(texts)


@pytest.mark.parametrize(
    "files, workflow_type, extra",
    [
        (("inference.json",), "infer", {}),
        (("inference.json", "evaluate.json"), "eval", {"num_bootstrap": 10}),
    ],
)
def test_results_are_not_overwritten_without_the_overwrite_key(
    trained_bundle, synthetic_dir, tmp_path, files, workflow_type, extra
):
    out = tmp_path / "out"
    out.mkdir()
    (out / "predictions.csv").write_text("earlier results")
    with pytest.raises(Exception) as refused:
        create(config(*files), workflow_type, trained_bundle, synthetic_dir, output_dir=str(out), **extra).run()
    assert "already holds results (predictions.csv); pass --overwrite true" in _messages(refused.value)
    assert (out / "predictions.csv").read_text() == "earlier results"
    workflow = create(
        config(*files), workflow_type, trained_bundle, synthetic_dir, output_dir=str(out), overwrite=True, **extra
    )
    workflow.run()
    workflow.finalize()
    assert (out / "predictions.csv").read_text() != "earlier results"


def test_training_into_a_finished_stage_needs_resume_or_overwrite(trained_bundle, synthetic_dir):
    with pytest.raises(Exception) as refused:
        create(config("train.json"), "train", trained_bundle, synthetic_dir, **{"train#trainer#max_epochs": 1})
    assert "already holds a training run" in _messages(refused.value)
