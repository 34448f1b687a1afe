from __future__ import annotations

import math
import warnings
from pathlib import Path

import pytest
import torch
from ignite.engine import Engine, Events

from monai_glam.handlers.best_checkpoint import BestCheckpointSaver


def _evaluator(scores: list[dict[str, float]], saver: BestCheckpointSaver, network: torch.nn.Module) -> Engine:
    """An engine whose epoch ``e`` reports ``scores[e - 1]`` as metrics and then bumps the network's bias."""
    engine = Engine(lambda engine, batch: None)

    @engine.on(Events.EPOCH_COMPLETED)
    def _metrics(engine: Engine) -> None:  # registered before the saver, as MONAI's metrics are
        engine.state.metrics.update(scores[engine.state.epoch - 1])
        with torch.no_grad():
            network.bias.fill_(float(engine.state.epoch))

    saver.attach(engine)
    return engine


def _saved_epoch(path: Path) -> int:
    state = torch.load(path, weights_only=True)
    assert set(state) == {"weight", "bias"}  # the network's state dict itself, as MONAI's CheckpointSaver writes
    return int(state["bias"][0].item())


def test_saves_on_improvement_only_and_cleans_stale_temporaries(tmp_path: Path) -> None:
    path = tmp_path / "best.pt"
    stale = tmp_path / ".best.pt.abc123.tmp.pt"
    stale.write_bytes(b"partial")
    other = tmp_path / ".last.pt.abc123.tmp.pt"
    other.write_bytes(b"not ours")
    network = torch.nn.Linear(2, 1)
    saver = BestCheckpointSaver(path, {"network": network}, "val_auc")
    engine = _evaluator([{"val_auc": 0.6}, {"val_auc": 0.8}, {"val_auc": 0.7}, {"val_auc": 0.8}], saver, network)
    assert not stale.exists() and other.exists()
    engine.run([0], max_epochs=4)
    assert _saved_epoch(path) == 2
    assert saver.best_score == 0.8 and saver.best_epoch == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == [".last.pt.abc123.tmp.pt", "best.pt"]


def test_several_objects_are_saved_by_name(tmp_path: Path) -> None:
    network = torch.nn.Linear(2, 1)
    optimizer = torch.optim.SGD(network.parameters(), lr=0.1)
    saver = BestCheckpointSaver(tmp_path / "best.pt", {"network": network, "optimizer": optimizer})
    _evaluator([{"val_auc": 0.5}], saver, network).run([0], max_epochs=1)
    assert set(torch.load(tmp_path / "best.pt", weights_only=True)) == {"network", "optimizer"}


def test_nan_key_metric_falls_back_to_the_finite_per_class_mean_and_warns_once(tmp_path: Path) -> None:
    path = tmp_path / "best.pt"
    network = torch.nn.Linear(2, 1)
    nan = math.nan
    scores = [
        {"val_auc": nan, "val_auc_benign": nan, "val_auc_malignant": 0.6},
        {"val_auc": nan, "val_auc_benign": nan, "val_auc_malignant": 0.9},
        {"val_auc": nan, "val_auc_benign": nan, "val_auc_malignant": 0.7},
    ]
    saver = BestCheckpointSaver(path, {"network": network}, "val_auc")
    with pytest.warns(RuntimeWarning, match=r"val_auc is nan.*single label value") as record:
        _evaluator(scores, saver, network).run([0], max_epochs=3)
    assert len([w for w in record if issubclass(w.category, RuntimeWarning)]) == 1
    assert _saved_epoch(path) == 2  # not stuck at epoch 1
    assert saver.best_score == 0.9


def test_nan_without_any_finite_metric_saves_the_latest_model(tmp_path: Path) -> None:
    path = tmp_path / "best.pt"
    network = torch.nn.Linear(2, 1)
    saver = BestCheckpointSaver(path, {"network": network}, "val_auc")
    engine = _evaluator([{"val_auc": 0.9}, {"val_auc": math.nan}, {"val_auc": torch.tensor(math.nan)}], saver, network)
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        engine.run([0], max_epochs=3)
    assert _saved_epoch(path) == 3
    assert len(record) == 1 and "latest model" in str(record[0].message)


def test_a_missing_key_metric_is_named(tmp_path: Path) -> None:
    network = torch.nn.Linear(2, 1)
    saver = BestCheckpointSaver(tmp_path / "best.pt", {"network": network}, "val_auc")
    with pytest.raises(KeyError, match="no metric 'val_auc'"):
        _evaluator([{"val_acc": 0.5}], saver, network).run([0], max_epochs=1)


@pytest.mark.parametrize("error", [OSError(28, "No space left on device"), RuntimeError("file write failed")])
def test_a_failed_write_keeps_the_previous_file_and_raises_one_line(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, error: Exception
) -> None:
    path = tmp_path / "best.pt"
    network = torch.nn.Linear(2, 1)
    saver = BestCheckpointSaver(path, {"network": network}, "val_auc")
    engine = _evaluator([{"val_auc": 0.5}, {"val_auc": 0.9}], saver, network)
    engine.run([0], max_epochs=1)
    before = path.read_bytes()
    real_save = torch.save

    def failing_save(obj: object, target: object, *args: object, **kwargs: object) -> None:
        real_save(obj, target, *args, **kwargs)
        with open(target, "r+b") as handle:  # a partial write, then the failure
            handle.truncate(10)
        raise error

    monkeypatch.setattr(torch, "save", failing_save)
    with pytest.raises(OSError, match=r"^cannot write checkpoint .*best\.pt: ") as info:
        engine.run([0], max_epochs=2)
    assert "\n" not in str(info.value)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["best.pt"]
    assert saver.best_score == 0.5  # the next improvement tries again
    assert _saved_epoch(path) == 1


def test_rejects_bad_arguments(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="save_dict"):
        BestCheckpointSaver(tmp_path / "best.pt", {})
    with pytest.raises(ValueError, match="key_metric_name"):
        BestCheckpointSaver(tmp_path / "best.pt", {"n": torch.nn.Linear(1, 1)}, "")


def test_state_dict_round_trip_restores_the_best_score(tmp_path: Path) -> None:
    saver = BestCheckpointSaver(tmp_path / "best.pt", {"network": torch.nn.Linear(1, 1)})
    saver.best_score, saver.best_epoch = 0.75, 3
    restored = BestCheckpointSaver(tmp_path / "best.pt", {"network": torch.nn.Linear(1, 1)})
    restored.load_state_dict(saver.state_dict())
    assert (restored.best_score, restored.best_epoch) == (0.75, 3)
    assert not restored._improves(0.7) and restored._improves(0.8)
    restored.load_state_dict({})
    assert restored.best_score is None and restored._improves(0.1)
