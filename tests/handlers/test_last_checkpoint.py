from __future__ import annotations

import pytest
import torch
from ignite.engine import Engine

from monai_glam.handlers import LastCheckpointSaver


class Recorder:
    """An object with ``state_dict()`` that logs every call (and can be told to fail)."""

    def __init__(self) -> None:
        self.calls = 0
        self.fail = False

    def state_dict(self) -> dict[str, torch.Tensor]:
        if self.fail:
            raise RuntimeError("state_dict failed")
        self.calls += 1
        return {"calls": torch.tensor(self.calls)}


def _engine() -> Engine:
    return Engine(lambda engine, batch: None)


@pytest.mark.parametrize(
    ("epoch_level", "interval", "epochs", "expected_saves", "expected_iteration"),
    [
        (True, 1, 3, 3, 6),
        (True, 2, 5, 2, 8),  # saved after epochs 2 and 4 (2 iterations each)
        (False, 3, 2, 1, 3),  # iterations 3 of 4
    ],
)
def test_saves_at_the_interval_atomically_and_loads_with_weights_only(
    tmp_path, epoch_level, interval, epochs, expected_saves, expected_iteration
):
    path = tmp_path / "run" / "last.pt"  # the folder is created
    network = torch.nn.Linear(3, 2)
    optimizer = torch.optim.Adam(network.parameters(), lr=0.01)
    recorder = Recorder()
    engine = _engine()
    LastCheckpointSaver(
        path,
        {"network": network, "optimizer": optimizer, "trainer": engine, "recorder": recorder},
        interval,
        epoch_level,
    ).attach(engine)
    engine.run(range(2), max_epochs=epochs)

    assert sorted(p.name for p in path.parent.iterdir()) == ["last.pt"]  # no temporary file left behind
    checkpoint = torch.load(path, weights_only=True)
    assert set(checkpoint) == {"network", "optimizer", "trainer", "recorder"}
    assert recorder.calls == expected_saves
    assert checkpoint["recorder"]["calls"].item() == expected_saves
    assert checkpoint["trainer"]["iteration"] == expected_iteration
    assert checkpoint["trainer"]["max_epochs"] == epochs
    state = network.state_dict()
    assert checkpoint["network"].keys() == state.keys()
    for key, value in state.items():
        assert torch.equal(checkpoint["network"][key], value)
    assert checkpoint["optimizer"]["param_groups"][0]["lr"] == 0.01


def test_a_failed_save_keeps_the_previous_checkpoint_and_no_temporary_file(tmp_path):
    path = tmp_path / "last.pt"
    recorder = Recorder()
    engine = _engine()
    saver = LastCheckpointSaver(path, {"recorder": recorder})
    saver(engine)
    recorder.fail = True
    with pytest.raises(RuntimeError, match="state_dict failed"):
        saver(engine)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
    assert torch.load(path, weights_only=True)["recorder"]["calls"].item() == 1


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"interval": 0}, "interval must be >= 1, got 0"), ({"save_dict": {}}, "save_dict")],
)
def test_rejects_bad_arguments(tmp_path, kwargs, match):
    with pytest.raises(ValueError, match=match):
        LastCheckpointSaver(**{"path": tmp_path / "last.pt", "save_dict": {"r": Recorder()}, **kwargs})


def test_stale_temporaries_of_a_killed_run_are_removed_on_attach(tmp_path):
    path = tmp_path / "last.pt"
    stale = [tmp_path / ".last.pt.k1l2x3.tmp.pt", tmp_path / ".last.pt.zz.tmp"]
    kept = [tmp_path / ".best.pt.k1l2x3.tmp.pt", tmp_path / "last.pt.notes"]
    for file in stale + kept:
        file.write_bytes(b"x")
    LastCheckpointSaver(path, {"recorder": Recorder()}).attach(_engine())
    assert not any(file.exists() for file in stale)
    assert all(file.exists() for file in kept)


def test_a_write_error_raises_one_line_and_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    saver = LastCheckpointSaver(path, {"recorder": Recorder()})
    saver(_engine())
    before = path.read_bytes()

    def disk_full(obj, target, *args, **kwargs):
        with open(target, "wb") as handle:
            handle.write(b"PK\x03\x04partial")
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(torch, "save", disk_full)
    with pytest.raises(OSError, match=r"^cannot write checkpoint .*last\.pt: No space left on device$"):
        saver(_engine())
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["last.pt"]
