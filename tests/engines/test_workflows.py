from __future__ import annotations

import pytest
import torch
from ignite.engine import Events
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

from monai_glam.engines import create_glam_training, create_loader
from monai_glam.networks import GLAM, load_glam_weights
from tests.engines.synthetic_task import TINY_GLAM, make_dataset


def _loaders(train_count=48, val_count=24):
    train = create_loader(make_dataset(train_count, seed=1), batch_size=8, shuffle=True, seed=7)
    val = create_loader(make_dataset(val_count, seed=2), batch_size=8, shuffle=False)
    return train, val


def _record_epoch_losses(trainer) -> list[float]:
    losses: list[float] = []
    batch: list[float] = []
    trainer.add_event_handler(Events.ITERATION_COMPLETED, lambda e: batch.append(float(e.state.output["loss"])))

    def close_epoch(_):
        losses.append(sum(batch) / len(batch))
        batch.clear()

    trainer.add_event_handler(Events.EPOCH_COMPLETED, close_epoch)
    return losses


def test_tiny_run_learns_easy_task_and_logs(tmp_path):
    torch.manual_seed(0)
    glam = GLAM(**TINY_GLAM)
    train, val = _loaders()
    run = create_glam_training(glam, train, tmp_path, stage="global", val_loader=val, max_epochs=6, learning_rate=3e-3)
    losses = _record_epoch_losses(run.trainer)
    metrics = run.run()
    assert losses[-1] < 0.8 * losses[0]
    assert metrics["val_auc"] > 0.8
    assert metrics["val_auc_benign"] > 0.8 and metrics["val_auc_malignant"] > 0.8
    assert 0.0 <= metrics["val_dice_benign"] <= 1.0
    assert (tmp_path / "last.pt").is_file() and (tmp_path / "best.pt").is_file()

    events = EventAccumulator(str(tmp_path / "tensorboard"), size_guidance={"images": 0, "scalars": 0})
    events.Reload()
    scalars = set(events.Tags()["scalars"])
    assert {"loss", "loss_bce_global", "loss_sparsity_global", "lr", "val_auc", "val_auc_benign"} <= scalars
    assert {"val_dice_benign", "val_dice_malignant"} <= scalars
    assert len(events.Scalars("loss")) == 6 * 6  # every iteration of 6 epochs of 6 batches
    assert {"train_saliency", "val_saliency"} <= set(events.Tags()["images"])
    image = events.Images("train_saliency")[0]
    assert (image.height, image.width) == (128, 3 * 96)  # input + boxes, benign overlay, malignant overlay


def test_stages_chain_through_checkpoints(tmp_path):
    torch.manual_seed(0)
    train, _ = _loaders(16, 8)
    first = create_glam_training(GLAM(**TINY_GLAM), train, tmp_path / "global", max_epochs=1, tensorboard=False)
    first.run()
    second_model = GLAM(**TINY_GLAM)
    second = create_glam_training(
        second_model,
        train,
        tmp_path / "local",
        stage="local",
        max_epochs=1,
        tensorboard=False,
        init_checkpoint=first.last_checkpoint,
    )
    for key, value in first.glam.global_network.state_dict().items():
        assert torch.equal(second_model.global_network.state_dict()[key], value)
    second.run()
    reloaded = load_glam_weights(GLAM(**TINY_GLAM), second.last_checkpoint)
    for key, value in second_model.state_dict().items():
        assert torch.equal(reloaded.state_dict()[key], value)


def test_interrupted_and_resumed_run_matches_uninterrupted(tmp_path):
    def fresh_run(folder, resume=False):
        torch.manual_seed(0)
        glam = GLAM(**TINY_GLAM)
        train, val = _loaders(24, 8)
        run = create_glam_training(
            glam,
            train,
            folder,
            stage="joint",
            val_loader=val,
            max_epochs=4,
            learning_rate=3e-3,
            tensorboard=False,
            resume=resume,
        )
        return run

    reference = fresh_run(tmp_path / "straight")
    reference.run()

    interrupted = fresh_run(tmp_path / "resumed")
    interrupted.trainer.add_event_handler(Events.EPOCH_COMPLETED(once=2), lambda e: e.terminate())
    interrupted.run()
    assert interrupted.trainer.state.epoch == 2

    resumed = fresh_run(tmp_path / "resumed", resume=True)
    seen: list[tuple[int, int]] = []
    resumed.trainer.add_event_handler(
        Events.ITERATION_STARTED, lambda e: seen.append((e.state.epoch, e.state.iteration))
    )
    resumed.run()
    assert seen[0] == (3, 2 * 3 + 1)  # 3 iterations per epoch: continues at epoch 3, iteration 7
    assert resumed.trainer.state.epoch == 4
    for key, value in reference.glam.state_dict().items():
        assert torch.equal(resumed.glam.state_dict()[key], value), key
    # The validation bookkeeping came back too: the best epoch (1 here) and best.pt are those of the uninterrupted
    # run, not replaced by the first validation after the resume.
    assert resumed.evaluator.state.best_metric == reference.evaluator.state.best_metric
    assert resumed.evaluator.state.best_metric_epoch == reference.evaluator.state.best_metric_epoch
    best, expected = (torch.load(run.best_checkpoint, weights_only=True) for run in (resumed, reference))
    assert best.keys() == expected.keys() and all(torch.equal(best[k], expected[k]) for k in best)


def test_early_stopping_stops_on_flat_auc(tmp_path):
    torch.manual_seed(0)
    train, val = _loaders(16, 8)
    run = create_glam_training(
        GLAM(**TINY_GLAM),
        train,
        tmp_path,
        val_loader=val,
        max_epochs=20,
        learning_rate=0.0,
        early_stop_patience=2,
        tensorboard=False,
    )
    run.run()
    assert run.trainer.state.epoch == 3  # no learning: AUC never improves after epoch 1


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"max_epochs": 0}, ValueError, "max_epochs"),
        ({"val_interval": 0}, ValueError, "val_interval"),
        ({"stage": "warmup"}, ValueError, "warmup"),
        ({"init_checkpoint": "/nonexistent/last.pt"}, FileNotFoundError, "not found"),
    ],
)
def test_rejects_bad_arguments(tmp_path, kwargs, error, match):
    train, _ = _loaders(8, 8)
    with pytest.raises(error, match=match):
        create_glam_training(GLAM(**TINY_GLAM), train, tmp_path, tensorboard=False, **kwargs)


def _one_epoch_update(folder, **kwargs):
    """The weights' change over one epoch of two joint steps (lr 1e-2), with the dtypes the forward passes saw."""
    torch.manual_seed(0)
    glam = GLAM(**TINY_GLAM)
    start = torch.cat([p.detach().flatten().clone() for p in glam.parameters()])
    train = create_loader(make_dataset(8, seed=1), batch_size=4, shuffle=True, seed=7)
    run = create_glam_training(
        glam, train, folder, stage="joint", max_epochs=1, learning_rate=1e-2, tensorboard=False, **kwargs
    )
    forward: list[torch.dtype] = []
    glam.global_network.register_forward_hook(lambda _m, _i, out: forward.append(out["prob_global"].dtype))
    loss: list[torch.dtype] = []
    run.trainer.add_event_handler(
        Events.ITERATION_COMPLETED, lambda e: loss.append(e.state.output["pred"]["prob_global"].dtype)
    )
    run.run()
    return glam, torch.cat([p.detach().flatten() for p in glam.parameters()]) - start, forward, loss


@pytest.mark.parametrize(
    ("kwargs", "forward_dtype", "min_cosine"),
    [
        ({"channels_last": True}, torch.float32, 0.9999),  # the same training in another memory layout
        # forward passes in bfloat16: much the same steps (0.89 here; Adam's per-weight normalisation turns a
        # bfloat16 rounding of a near-zero gradient into a full step, so a few weights differ)
        ({"precision": "bf16"}, torch.bfloat16, 0.8),
    ],
)
def test_training_precision_and_layout(tmp_path, kwargs, forward_dtype, min_cosine):
    _, reference, _, _ = _one_epoch_update(tmp_path / "reference")
    glam, update, forward, loss = _one_epoch_update(tmp_path / "changed", **kwargs)
    assert set(forward) == {forward_dtype} and set(loss) == {torch.float32}  # the loss sees float32
    if kwargs.get("channels_last"):
        assert glam.local_network.stem.conv.weight.is_contiguous(memory_format=torch.channels_last)
    cosine = float(torch.nn.functional.cosine_similarity(update, reference, dim=0))
    assert cosine >= min_cosine


def test_load_glam_weights_rejects_other_configurations(tmp_path):
    torch.save({"network": GLAM(**TINY_GLAM).state_dict()}, tmp_path / "tiny.pt")
    with pytest.raises(ValueError, match="does not fit"):
        load_glam_weights(GLAM(), tmp_path / "tiny.pt")


def test_mlflow_tracking_to_sqlite(tmp_path):
    mlflow = pytest.importorskip("mlflow")
    torch.manual_seed(0)
    train, val = _loaders(8, 8)
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    run = create_glam_training(
        GLAM(**TINY_GLAM),
        train,
        tmp_path / "run",
        val_loader=val,
        max_epochs=1,
        tensorboard=False,
        mlflow_tracking_uri=uri,
    )
    run.run()
    client = mlflow.tracking.MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("monai_glam")
    runs = client.search_runs([experiment.experiment_id])
    logged = set().union(*(r.data.metrics for r in runs))
    assert {"loss", "loss_bce_global", "val_auc"} <= logged
