"""Static checks of the bundle: layout, metadata schema, metadata against the network, ``_target_`` names."""

from __future__ import annotations

import configparser
import json
import pydoc
from pathlib import Path

import pytest
import torch

from monai_glam.utils.enums import GLAMKeys
from tests.bundle.conftest import BUNDLE_DIR, CONFIG_WARNING, CONFIGS

pytestmark = [
    pytest.mark.filterwarnings(CONFIG_WARNING),
    pytest.mark.filterwarnings("ignore:No hash value provided:UserWarning"),
]

CONFIG_FILES = ["train.json", "evaluate.json", "inference.json", "multi_gpu_train.json", "multi_gpu_inference.json"]
SCHEMA_NAME = "meta_schema_20240725.json"


def _load(name: str) -> dict:
    return json.loads((CONFIGS / name).read_text(encoding="utf-8"))


def _targets(node) -> list[str]:
    if isinstance(node, dict):
        found = [node["_target_"]] if isinstance(node.get("_target_"), str) else []
        return found + [t for value in node.values() for t in _targets(value)]
    if isinstance(node, list):
        return [t for value in node for t in _targets(value)]
    return []


def test_layout():
    files = ["LICENSE", "configs/metadata.json", "configs/logging.conf", "docs/README.md", "models/.gitkeep"]
    for path in files + [f"configs/{name}" for name in CONFIG_FILES]:
        assert (BUNDLE_DIR / path).is_file(), path
    assert (BUNDLE_DIR / "LICENSE").read_text() == (BUNDLE_DIR.parent / "LICENSE").read_text()


@pytest.mark.parametrize("name", CONFIG_FILES)
def test_targets_resolve_and_are_unambiguous(name):
    from monai.bundle.config_item import ComponentLocator

    locator = ComponentLocator()
    targets = _targets(_load(name))
    assert targets
    for target in targets:
        if "." in target:
            assert pydoc.locate(target) is not None, target
        else:  # a short name must be a single MONAI component, never also a monai_glam one
            module = locator.get_component_module_name(target)
            assert isinstance(module, str) and module.startswith("monai."), (target, module)
    glam_targets = [t for t in targets if "glam" in t.lower()]
    assert all(t.startswith("monai_glam.") for t in glam_targets)


def test_standard_keys():
    train, infer = _load("train.json"), _load("inference.json")
    for key in ("bundle_root", "device", "dataset_dir", "output_dir", "network_def", "network", "val_interval"):
        assert key in train, key
    for key in ("preprocessing", "dataset", "dataloader", "inferer", "handlers", "trainer"):
        assert key in train["train"], key
    for key in ("preprocessing", "dataset", "dataloader", "inferer", "handlers", "evaluator", "key_metric"):
        assert key in train["validate"], key
    for key in (
        "bundle_root",
        "device",
        "dataset_dir",
        "output_dir",
        "network_def",
        "network",
        "preprocessing",
        "postprocessing",
        "inferer",
        "dataset",
        "evaluator",
        "handlers",
        "initialize",
        "run",
    ):
        assert key in infer, key
    assert {"initialize", "run", "finalize"} <= set(train)


def test_logging_conf_uses_logging_classes_only():
    from monai.bundle.workflows import _reject_executable_logging_config

    parser = configparser.ConfigParser()
    parser.read(CONFIGS / "logging.conf")
    assert parser["handler_consoleHandler"]["class"] == "StreamHandler"
    _reject_executable_logging_config(str(CONFIGS / "logging.conf"))  # MONAI's own check: raises when unsafe


def test_verify_metadata(shared_dir, tmp_path):
    from monai.bundle import verify_metadata

    schema = shared_dir / "schema" / SCHEMA_NAME
    if not schema.is_file():
        pytest.skip(f"{schema} is absent")
    verify_metadata(meta_file=str(CONFIGS / "metadata.json"), filepath=str(schema))


def test_verify_metadata_rejects_missing_field(shared_dir, tmp_path):
    from monai.bundle import verify_metadata

    schema = shared_dir / "schema" / SCHEMA_NAME
    if not schema.is_file():
        pytest.skip(f"{schema} is absent")
    broken = _load("metadata.json")
    del broken["network_data_format"]
    path = tmp_path / "metadata.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(ValueError, match="network_data_format"):
        verify_metadata(meta_file=str(path), filepath=str(schema))


def test_metadata_describes_every_network_output():
    """Each output of the default ``network_def`` has an entry whose channels, spatial shape and dtype match."""
    from monai_glam.networks import glam_network, preset_window

    meta = _load("metadata.json")
    train = _load("train.json")
    io_format = meta["network_data_format"]
    image = io_format["inputs"]["image"]
    assert list(preset_window(train["preset"])) == image["spatial_shape"]
    net = glam_network(train["preset"]).eval()
    with torch.no_grad():
        outputs = net(torch.randn(1, image["num_channels"], *image["spatial_shape"]))
    assert set(io_format["outputs"]) == {"pred", *(k.value for k in GLAMKeys)}
    outputs["pred"] = outputs[GLAMKeys.SALIENCY.value]  # what verify_net_in_out checks (output_key="saliency")
    for key, spec in io_format["outputs"].items():
        value = outputs[key]
        assert tuple(value.shape) == (1, spec["num_channels"], *spec["spatial_shape"]), key
        assert str(value.dtype) == f"torch.{spec['dtype']}", key
        if value.is_floating_point():
            low, high = spec["value_range"]
            assert low <= float(value.min()) and float(value.max()) <= high, key


def test_readme_commands_reference_real_configs_and_keys():
    """Every ``--config_file`` of the README exists and every ``--key`` override names a config key."""
    import re
    import shlex

    readme = (BUNDLE_DIR / "docs" / "README.md").read_text(encoding="utf-8")
    commands = [line for line in readme.splitlines() if "monai.bundle" in line and not line.startswith("#")]
    assert len(commands) >= 8
    keys = set()
    for name in CONFIG_FILES:
        keys |= set(_load(name))
    keys |= {f"train#{k}" for k in _load("train.json")["train"]}
    options = {"meta_file", "config_file", "logging_file", "filepath", "ckpt_file", "tracking"}
    for command in commands:
        words = shlex.split(command.strip().strip("`"))
        words = words[words.index("monai.bundle") :]  # the bundle's own arguments, not torchrun's
        for i, word in enumerate(words):
            if word == "--config_file":
                files = re.findall(r"configs/[\w.]+", words[i + 1])
                assert files and all((BUNDLE_DIR / f).is_file() for f in files), command
            elif word.startswith("--"):
                name = word[2:]
                root = name.split("#")[0] if name.startswith(("network_def#", "train#trainer")) else name
                assert name in options or root in keys or name in keys, (name, command)


def test_bundle_gitignore_keeps_outputs_out():
    ignored = Path(BUNDLE_DIR / ".gitignore").read_text().split()
    for entry in ("data/", "eval/", "runs/", "models/*"):
        assert entry in ignored, entry


@pytest.mark.parametrize(("precision", "expected"), [("fp32", "fp32"), ("bf16", "bf16"), ("auto", None)])
def test_train_precision_reaches_both_inferers(precision, expected):
    """``precision`` in ``train.json`` sets the training and validation forward passes (``auto`` resolved)."""
    from monai.bundle import ConfigParser

    from monai_glam.inferers import GLAMInferer
    from monai_glam.utils.precision import resolve_precision

    parser = ConfigParser(_load("train.json"))
    parser["precision"] = precision
    parser["device"] = "$torch.device('cpu')"
    expected = expected or resolve_precision("auto", "cpu")
    for section in ("train", "validate"):
        inferer = parser.get_parsed_content(f"{section}#inferer")
        assert isinstance(inferer, GLAMInferer) and inferer.precision == expected


@pytest.mark.parametrize("config_files", [["inference.json"], ["inference.json", "evaluate.json"]])
def test_inference_engine_picks_the_forward_network(config_files, monkeypatch):
    """``engine`` torch keeps the loaded network (in the ``channels_last`` layout asked for); another engine exports
    that same network for its runtime."""
    from monai.bundle import ConfigParser

    import monai_glam.engines.inference as inference

    calls = []
    monkeypatch.setattr(inference, "onnx_engine", lambda net, size, runtime: calls.append((net, size, runtime)) or net)
    for engine, channels_last in (("torch", True), ("torch", False), ("openvino", True)):
        parser = ConfigParser()
        parser.read_config([str(CONFIGS / name) for name in config_files])
        parser.update({"engine": engine, "preset": "tiny", "device": "$torch.device('cpu')"})
        parser["channels_last"] = channels_last
        network = parser.get_parsed_content("network")
        assert parser.get_parsed_content("forward_network") is network
        assert parser.get("evaluator#network") == "@forward_network"
        if engine == "torch":
            weight = network.global_network.backbone.stages[0][0].conv1.weight
            assert weight.is_contiguous(memory_format=torch.channels_last) is channels_last
    assert len(calls) == 1 and calls[0][0] is network and calls[0][2] == "openvino"
    assert tuple(calls[0][1]) == (256, 160)  # the preset's window
