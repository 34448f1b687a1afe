"""The one checkpoint reader and the model-config files: every layout, the ``train --init`` regression, bad files."""

from __future__ import annotations

import json
import os
import pickle
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import torch

from monai_glam.networks import GLAM, GLAMSingleOutput
from monai_glam.networks.io import (
    MODEL_CONFIG_NAME,
    ModelConfig,
    load_glam_weights,
    load_model,
    read_glam_state_dict,
    read_model_config,
    resolve_model_config,
    save_model_config,
)
from tests.networks.nyu_layout import randomize_batch_norms, to_nyu_layout
from tests.networks.small_configs import small

#: Preprocessing section of the model-config tests (any valid values).
PREPROCESSING = {"spatial_size": (128, 96), "erosion_iterations": 9, "buffer": 4}


@pytest.fixture(scope="module")
def reference() -> GLAM:
    torch.manual_seed(0)
    model = GLAM(**small())
    randomize_batch_norms(model)
    return model.eval()


def _optimizer_state(model: torch.nn.Module) -> dict[str, Any]:
    return torch.optim.Adam(model.parameters(), lr=1e-3).state_dict()


def make_checkpoint(folder: Path, seed: int = 0, with_config: bool = True) -> Path:
    """A training-style ``last.pt`` of a random small GLAM and, optionally, its ``model_config.json``."""
    torch.manual_seed(seed)
    model = GLAM(**small())
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "last.pt"
    torch.save({"network": model.state_dict(), "epoch": 1}, path)
    if with_config:
        save_model_config(folder / MODEL_CONFIG_NAME, small(), PREPROCESSING, thresholds=(0.3, 0.3))
    return path


#: layout name -> (state dict, module) -> what is saved; every one holds the same weights.
LAYOUTS: dict[str, Callable[[dict[str, torch.Tensor], torch.nn.Module], Any]] = {
    "training checkpoint": lambda state, model: {
        "network": state,
        "optimizer": _optimizer_state(model),
        "lr_scheduler": {"last_epoch": 3, "base_lrs": [1e-3]},
        "trainer": {"epoch_length": 4, "max_epochs": 9, "epoch": 3, "iteration": 12},
    },
    "bare state dict": lambda state, model: state,
    "state_dict wrapper": lambda state, model: {"state_dict": state, "epoch": 2},
    "model wrapper": lambda state, model: {"model": state},
    "nested wrappers": lambda state, model: {"state_dict": {"model": state}},
    "NYU layout": lambda state, model: to_nyu_layout(state),
    "NYU layout, wrapped": lambda state, model: {"state_dict": to_nyu_layout(state, with_unused=False)},
}


@pytest.mark.parametrize("zip_format", [True, False], ids=["zip", "legacy"])
@pytest.mark.parametrize("layout", list(LAYOUTS))
def test_every_layout_reads_the_same_weights(tmp_path: Path, reference: GLAM, layout: str, zip_format: bool) -> None:
    expected = reference.state_dict()
    path = tmp_path / "weights.pt"
    torch.save(LAYOUTS[layout](expected, reference), path, _use_new_zipfile_serialization=zip_format)
    state = read_glam_state_dict(path)
    assert set(state) == set(expected)
    for key, value in expected.items():
        assert torch.equal(state[key], value), key
    loaded = load_glam_weights(GLAM(**small()), path)
    for key, value in expected.items():
        assert torch.equal(loaded.state_dict()[key], value), key


def test_nyu_layout_loads_through_train_init_and_infer_paths(tmp_path: Path, reference: GLAM) -> None:
    """Regression: ``train --init model_sep.ckpt`` failed with "Missing key(s)" while ``infer`` loaded it."""
    path = tmp_path / "model_sep.ckpt"
    torch.save(to_nyu_layout(reference.state_dict()), path, _use_new_zipfile_serialization=False)
    image = torch.randn(1, 1, 256, 160)
    with torch.no_grad():
        expected = reference(image)["saliency"]

    trained = load_glam_weights(GLAM(**small()), path)  # the path `monai-glam train --init` takes
    assert trained.training  # loading weights does not change the mode of a model about to be trained
    save_model_config(tmp_path / MODEL_CONFIG_NAME, small())
    inferred = load_model(path)  # the path `monai-glam infer --checkpoint` takes
    assert not inferred.training
    with torch.no_grad():
        assert torch.equal(trained.eval()(image)["saliency"], expected)
        assert torch.equal(inferred(image)["saliency"], expected)


def test_single_output_glam_and_non_strict_loading(tmp_path: Path, reference: GLAM) -> None:
    state = reference.state_dict()
    torch.save({"network": state}, tmp_path / "full.pt")
    single = load_glam_weights(GLAMSingleOutput(output_key="prob_global", **small()), tmp_path / "full.pt")
    assert torch.equal(single.state_dict()["local_network.head.weight"], state["local_network.head.weight"])

    partial = {key: value for key, value in state.items() if key.startswith("global_network.")}
    partial["extra.weight"] = torch.zeros(1)
    torch.save(partial, tmp_path / "partial.pt")
    with pytest.raises(ValueError, match=r"missing \d+ key\(s\): local_network\..*unexpected 1 key\(s\): extra"):
        load_glam_weights(GLAM(**small()), tmp_path / "partial.pt")
    model = load_glam_weights(GLAM(**small()), tmp_path / "partial.pt", strict=False)
    assert torch.equal(model.state_dict()["global_network.heads.2.weight"], state["global_network.heads.2.weight"])
    with pytest.raises(ValueError, match=r"mis-shaped \d+ key\(s\)"):  # shapes must fit even when not strict
        load_glam_weights(GLAM(**small(global_channels=(8, 8, 16, 16, 64))), tmp_path / "partial.pt", strict=False)


class _RunsCode:
    """Pickles as a call to ``os.system``: a safe reader must refuse the file without running it."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[Any, ...]:
        return (os.system, (f"touch {self.marker}",))


def _write_truncated(path: Path, zip_format: bool) -> None:
    torch.save({"weight": torch.zeros(256)}, path, _use_new_zipfile_serialization=zip_format)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])


#: name -> (write the bad file at path, expected exception, regular expression its message must match).
BAD_FILES: dict[str, tuple[Callable[[Path], None], type[Exception], str]] = {
    "missing file": (lambda path: None, FileNotFoundError, "no such checkpoint"),
    "0-byte file": (lambda path: path.write_bytes(b""), ValueError, "empty file"),
    "truncated zip": (lambda path: _write_truncated(path, True), ValueError, "corrupt or truncated"),
    "truncated legacy": (lambda path: _write_truncated(path, False), ValueError, "corrupt or truncated"),
    "not a checkpoint": (lambda path: path.write_bytes(b"not a checkpoint"), ValueError, "cannot read checkpoint"),
    "os.system via torch.save": (
        lambda path: torch.save({"weight": torch.zeros(1), "x": _RunsCode(path.with_suffix(".pwned"))}, path),
        ValueError,
        r"refused: it references \w+\.system",
    ),
    "os.system raw pickle": (
        lambda path: path.write_bytes(pickle.dumps(_RunsCode(path.with_suffix(".pwned")), protocol=2)),
        ValueError,
        r"refused: it references \w+\.system",
    ),
    "a list": (lambda path: torch.save([torch.zeros(1)], path), ValueError, "holds a list, not a GLAM state dict"),
    "no tensors": (
        lambda path: torch.save({"optimizer": {"lr": 0.1}, "epoch": 3}, path),
        ValueError,
        r"no GLAM state dict of tensors: entry 'optimizer' is a dict",
    ),
    "empty dict": (lambda path: torch.save({}, path), ValueError, "empty state dict"),
    "unknown published key": (
        lambda path: torch.save({"detection_network.extra.weight": torch.zeros(1)}, path),
        ValueError,
        r"published layout.*detection_network\.extra\.weight",
    ),
}


@pytest.mark.parametrize("reader", ["read_glam_state_dict", "load_glam_weights", "load_model"])
@pytest.mark.parametrize("case", list(BAD_FILES))
def test_bad_files_give_a_one_line_reason(tmp_path: Path, case: str, reader: str) -> None:
    write, error, pattern = BAD_FILES[case]
    path = tmp_path / "bad.pt"
    write(path)
    read: dict[str, Callable[[], Any]] = {
        "read_glam_state_dict": lambda: read_glam_state_dict(path),
        "load_glam_weights": lambda: load_glam_weights(GLAM(**small()), path),
        "load_model": lambda: load_model(path, ModelConfig(glam=small())),
    }
    with pytest.raises(error, match=pattern) as caught:
        read[reader]()
    message = str(caught.value)
    assert str(path) in message and "\n" not in message and len(message) < 600
    assert "False" not in message  # never advise weights_only=False
    assert not path.with_suffix(".pwned").exists()  # the pickled call never ran


def test_wrong_configuration_gives_a_short_message(tmp_path: Path, reference: GLAM) -> None:
    torch.save({"network": reference.state_dict()}, tmp_path / "small.pt")
    with pytest.raises(ValueError) as caught:
        load_glam_weights(GLAM(), tmp_path / "small.pt")  # paper configuration: most keys differ
    message = str(caught.value)
    assert len(message) < 600 and "\n" not in message
    assert "does not fit this GLAM configuration" in message and "model config" in message and "preset" in message
    assert "mis-shaped" in message and "global_network.backbone.stem.weight (8, 1, 7, 7) != (16, 1, 7, 7)" in message
    quoted = [name for name in reference.state_dict() if name in message] + [
        name for name in GLAM().state_dict() if name in message and name not in reference.state_dict()
    ]
    assert 1 <= len(quoted) <= 5
    assert "more)" in message  # the rest are counted, not listed


def test_published_layout_into_wrong_configuration_names_the_key(tmp_path: Path, reference: GLAM) -> None:
    state = to_nyu_layout(reference.state_dict())
    del state["detection_network.gn_conv_last.weight"]
    torch.save(state, tmp_path / "m.ckpt")
    with pytest.raises(ValueError, match=r"missing 1 key\(s\): local_network\.head\.weight\)"):
        load_glam_weights(GLAM(**small()), tmp_path / "m.ckpt")


# ---------------------------------------------------------------------------------------------------------------
# Model configs (moved from tests/apps/test_model_io.py)
# ---------------------------------------------------------------------------------------------------------------


def test_save_and_read_round_trip(tmp_path: Path) -> None:
    path = save_model_config(tmp_path / "c.json", small(), PREPROCESSING, thresholds=(0.2, 0.7))
    document = json.loads(path.read_text())
    assert document["global_channels"] == [8, 8, 16, 16, 32]
    assert document["preprocessing"] == {"spatial_size": [128, 96], "erosion_iterations": 9, "buffer": 4}
    config = read_model_config(path)
    assert config.glam == small()  # lists come back as tuples
    assert config.preprocessing == PREPROCESSING
    assert config.thresholds == (0.2, 0.7) and config.source == path


def test_resolution_order(tmp_path: Path) -> None:
    checkpoint = make_checkpoint(tmp_path / "run")
    beside = resolve_model_config(checkpoint)
    assert beside.source == tmp_path / "run" / MODEL_CONFIG_NAME and beside.glam == small()
    explicit = save_model_config(tmp_path / "other.json", {**small(), "num_patches": 2})
    assert resolve_model_config(checkpoint, explicit).glam["num_patches"] == 2
    bare = make_checkpoint(tmp_path / "bare", with_config=False)
    assert resolve_model_config(bare) == ModelConfig()


@pytest.mark.parametrize("layout", ["training checkpoint", "bare state dict", "NYU layout"])
def test_load_model_reads_every_checkpoint_layout(tmp_path: Path, reference: GLAM, layout: str) -> None:
    torch.save(LAYOUTS[layout](reference.state_dict(), reference), tmp_path / "weights.pt")
    save_model_config(tmp_path / MODEL_CONFIG_NAME, small())
    model = load_model(tmp_path / "weights.pt")
    assert not model.training
    image = torch.randn(1, 1, 256, 160)
    with torch.no_grad():
        assert torch.equal(model(image)["prob_global"], reference(image)["prob_global"])


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"patch_sise": 32}, r"unknown GLAM argument\(s\) \['patch_sise'\]"),
        ({"preprocessing": {"window": [1, 2]}}, r"unknown preprocessing key\(s\) \['window'\]"),
        ({"preprocessing": {"spatial_size": [128]}}, "spatial_size must be two positive integers"),
        ({"preprocessing": {"buffer": -1}}, "buffer must be an integer >= 0"),
        ({"thresholds": [0.5, 2]}, r"thresholds must lie in \[0, 1\]"),
        ({"thresholds": "high"}, "thresholds must be a list of numbers"),
        ([1, 2], "a model config is a JSON object"),
    ],
)
def test_bad_model_configs_name_the_problem(tmp_path: Path, document: object, message: str) -> None:
    path = tmp_path / "c.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match=message):
        read_model_config(path)


def test_load_errors(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such checkpoint"):
        load_model(tmp_path / "missing.pt")
    with pytest.raises(FileNotFoundError, match="no such model config"):
        read_model_config(tmp_path / "missing.json")
    (tmp_path / "broken.json").write_text("{")
    with pytest.raises(ValueError, match="not valid JSON"):
        read_model_config(tmp_path / "broken.json")
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(ValueError, match="cannot read checkpoint"):
        load_model(tmp_path / "junk.pt")
    checkpoint = make_checkpoint(tmp_path / "run", with_config=False)
    with pytest.raises(ValueError, match="does not fit the paper's GLAM configuration"):
        load_model(checkpoint)
    wrong = save_model_config(tmp_path / "wrong.json", {**small(), "local_channels": (8, 8, 8, 16)})
    with pytest.raises(ValueError, match=r"does not fit model config .*wrong\.json"):
        load_model(checkpoint, wrong)
    invalid = save_model_config(tmp_path / "invalid.json", {"global_channels": (8, 8)})
    with pytest.raises(ValueError, match=r"invalid\.json: .*3 stages"):
        load_model(checkpoint, invalid)


@pytest.mark.parametrize("bad", [float("nan"), float("inf")])
def test_non_finite_weights_are_refused_with_the_first_key(tmp_path: Path, reference: GLAM, bad: float) -> None:
    state = {key: value.clone() for key, value in reference.state_dict().items()}
    key = next(k for k, v in state.items() if v.is_floating_point())
    state[key].view(-1)[0] = bad
    path = tmp_path / "diverged.pt"
    torch.save({"network": state}, path)
    kind = "NaN" if bad != bad else "Inf"
    message = rf"checkpoint .*diverged\.pt holds non-finite weights \({kind} in {key}\)"
    with pytest.raises(ValueError, match=message) as info:
        read_glam_state_dict(path)
    assert "\n" not in str(info.value)
    with pytest.raises(ValueError, match=message):
        load_glam_weights(GLAM(**small()), path)
    with pytest.raises(ValueError, match=message):
        load_model(path, ModelConfig(glam=small()))
    assert torch.isnan(read_glam_state_dict(path, allow_non_finite=True)[key]).any() == (kind == "NaN")
    load_glam_weights(GLAM(**small()), path, allow_non_finite=True)


@pytest.mark.parametrize(
    ("document", "message"),
    [
        ({"patch_size": "64"}, r'patch_size must be an integer or a list of 2 integers, got "64"'),
        ({"patch_size": True}, "patch_size must be an integer or a list of 2 integers, got true"),
        ({"patch_size": [64]}, r"patch_size must be an integer or a list of 2 integers, got \[64\]"),
        ({"num_classes": 2.0}, "num_classes must be an integer, got 2.0"),
        ({"num_patches": False}, "num_patches must be an integer, got false"),
        ({"global_channels": [8, "8", 16]}, r"global_channels must be a non-empty list of integers, got \[8, \"8\""),
        ({"global_blocks": [1, 1]}, r"global_blocks must be a list of 5 integers \(one per global_channels entry\)"),
        ({"local_blocks": [1, True, 1, 1]}, "local_blocks must be a list of 4 integers"),
        ({"scale_weights": [0.2, 0.8]}, r"scale_weights must be a list of 3 finite numbers, got \[0.2, 0.8\]"),
        ({"global_top_t": "0.03"}, r'global_top_t must be a finite number, got "0.03"'),
        ({"saliency_in_training": 1}, "saliency_in_training must be true or false, got 1"),
        ({"thresholds": [True, 0.5]}, r"thresholds must be a list of numbers, got \[true, 0.5\]"),
        ({"thresholds": ["0.5", 0.5]}, "thresholds must be a list of numbers"),
        ({"thresholds": [0.5]}, r"thresholds must be 2 numbers \(one per class\), got \[0.5\]"),
        ({"num_classes": 3, "thresholds": [0.5, 0.5]}, "thresholds must be 3 numbers"),
    ],
)
def test_model_config_values_are_type_checked(tmp_path: Path, document: dict[str, Any], message: str) -> None:
    path = tmp_path / "typed.json"
    path.write_text(json.dumps(document))
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: {message}") as info:
        read_model_config(path)
    assert "\n" not in str(info.value)


def test_typed_model_configs_accept_valid_values(tmp_path: Path) -> None:
    path = tmp_path / "ok.json"
    document = {**small(), "patch_size": [64, 32], "global_top_t": 1, "scale_weights": [0, 1, 0.5]}
    path.write_text(json.dumps({**document, "num_classes": 2, "thresholds": [0, 1]}))
    config = read_model_config(path)
    assert config.glam["patch_size"] == (64, 32) and config.thresholds == (0.0, 1.0)
    GLAM(**config.glam)
