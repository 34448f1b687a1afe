"""ONNX export of GLAM and the exported model in ONNX Runtime and OpenVINO."""

from __future__ import annotations

import os

import pytest
import torch

from monai_glam.networks import GLAM
from monai_glam.networks.export import (
    EXPORT_OUTPUT_KEYS,
    GLAMTupleOutput,
    OnnxGLAM,
    _check_export,
    export_glam_onnx,
    max_output_difference,
    missing_packages,
)
from monai_glam.utils import GLAMKeys

onnx = pytest.importorskip("onnx")
pytest.importorskip("onnxscript")
pytest.importorskip("onnxruntime")

WINDOW = (128, 96)
BATCH = 2


def _model() -> GLAM:
    torch.manual_seed(0)
    return GLAM(
        global_channels=(4, 8, 8, 8, 8),
        global_blocks=(1, 1, 1, 1, 1),
        local_channels=(4, 8, 8, 8),
        local_blocks=(1, 1, 1, 1),
        patch_size=32,
        global_padding_mode="replicate",
    ).eval()


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    model = _model()
    path = export_glam_onnx(model, tmp_path_factory.mktemp("onnx") / "glam.onnx", WINDOW, batch_size=BATCH)
    return model, path


def _spot_input(row: int, col: int) -> torch.Tensor:
    """Dark images with one bright square, so the chosen patch follows the square."""
    x = torch.full((BATCH, 1, *WINDOW), -1.0)
    x[:, :, row : row + 16, col : col + 16] = 3.0
    return x


def test_export_writes_a_readable_file_with_every_output(exported):
    _, path = exported
    model = onnx.load(str(path))
    assert tuple(output.name for output in model.graph.output) == EXPORT_OUTPUT_KEYS
    assert [input_.name for input_ in model.graph.input] == ["image"]
    assert oct(os.stat(path).st_mode & 0o777) != oct(0o600)  # not mkstemp's private mode
    assert not [p for p in path.parent.iterdir() if p != path]  # no temporary file left behind


@pytest.mark.parametrize("runtime", ["onnxruntime", "openvino"])
@pytest.mark.parametrize("spot", [(8, 8), (96, 64), (40, 70)])
def test_exported_model_matches_eager_and_follows_the_input(exported, runtime, spot):
    if runtime == "openvino":
        pytest.importorskip("openvino")
    model, path = exported
    x = _spot_input(*spot)
    with torch.no_grad():
        expected = model(x)
    outputs = OnnxGLAM(path, runtime=runtime, threads=1)(x)
    differences = max_output_difference(expected, outputs)
    assert differences[GLAMKeys.PATCH_BOXES.value] == 0
    assert max(differences.values()) < 1e-5, differences
    assert outputs[GLAMKeys.PATCH_BOXES].dtype == torch.int64


def test_patch_choice_is_not_frozen_at_export(exported):
    _, path = exported
    runner = OnnxGLAM(path, threads=1)
    boxes = {spot: runner(_spot_input(*spot))[GLAMKeys.PATCH_BOXES] for spot in [(8, 8), (96, 64)]}
    assert not torch.equal(boxes[(8, 8)], boxes[(96, 64)])


def test_tuple_wrapper_orders_outputs_like_the_keys():
    model = _model()
    x = torch.randn(1, 1, *WINDOW)
    with torch.no_grad():
        as_dict, as_tuple = model(x), GLAMTupleOutput(model)(x)
    assert len(as_tuple) == len(EXPORT_OUTPUT_KEYS)
    for key, value in zip(EXPORT_OUTPUT_KEYS, as_tuple, strict=True):
        assert torch.equal(as_dict[key], value), key


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": (128,)}, "window"),
        ({"window": (0, 96)}, "window"),
        ({"window": WINDOW, "batch_size": 0}, "batch_size"),
    ],
)
def test_export_rejects_bad_shapes(tmp_path, kwargs, message):
    with pytest.raises(ValueError, match=message):
        export_glam_onnx(_model(), tmp_path / "m.onnx", **kwargs)
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("runtime", "threads", "error", "message"),
    [
        ("tensorrt", None, ValueError, "runtime"),
        ("onnxruntime", 0, ValueError, "threads"),
        ("onnxruntime", None, FileNotFoundError, "not found"),
    ],
)
def test_runner_rejects_bad_arguments(tmp_path, runtime, threads, error, message):
    with pytest.raises(error, match=message):
        OnnxGLAM(tmp_path / "missing.onnx", runtime=runtime, threads=threads)


def test_runner_rejects_a_model_that_is_not_a_glam_export(tmp_path):
    helper = onnx.helper
    tensor = helper.make_tensor_value_info("image", onnx.TensorProto.FLOAT, [1, 1, 4, 4])
    output = helper.make_tensor_value_info("out", onnx.TensorProto.FLOAT, [1, 1, 4, 4])
    graph = helper.make_graph([helper.make_node("Identity", ["image"], ["out"])], "identity", [tensor], [output])
    path = tmp_path / "identity.onnx"
    onnx.save(helper.make_model(graph, opset_imports=[helper.make_opsetid("", 18)]), str(path))
    with pytest.raises(ValueError, match="not a GLAM export"):
        OnnxGLAM(path)


def test_max_output_difference_checks_keys_and_shapes():
    a = {"x": torch.zeros(2, 3)}
    assert max_output_difference(a, {"x": torch.full((2, 3), 0.5)}) == {"x": 0.5}
    with pytest.raises(ValueError, match="keys"):
        max_output_difference(a, {"y": torch.zeros(2, 3)})
    with pytest.raises(ValueError, match="shape"):
        max_output_difference(a, {"x": torch.zeros(3, 2)})


@pytest.mark.parametrize("shape", [(1, 1, *WINDOW), (3, 1, *WINDOW), (BATCH, 1, 64, 96)])
def test_runner_rejects_an_input_of_another_shape(exported, shape):
    _, path = exported
    runner = OnnxGLAM(path, threads=1)
    assert runner.input_shape == (BATCH, 1, *WINDOW)
    got = ", ".join(str(v) for v in shape)
    with pytest.raises(ValueError, match=rf"inputs of shape \[2, 1, 128, 96\] .*, got \[{got}\]"):
        runner(torch.zeros(shape))


def test_runner_runs_a_multiple_of_the_exported_batch_in_order(exported):
    """MONAI's engines hold the runner like a network: eval mode, any multiple of the exported batch size."""
    model, path = exported
    runner = OnnxGLAM(path, threads=1).eval()
    x = torch.cat([_spot_input(8, 8), _spot_input(96, 64)])  # two exported-size batches
    with torch.no_grad():
        expected = model(x)
    differences = max_output_difference(expected, runner(x))
    assert differences[GLAMKeys.PATCH_BOXES.value] == 0 and max(differences.values()) < 1e-5, differences
    assert isinstance(runner, torch.nn.Module) and not list(runner.parameters())


def test_check_fails_for_a_model_that_is_not_the_exported_one(exported):
    model, path = exported
    other = _model()
    with torch.no_grad():
        for parameter in other.global_network.parameters():
            parameter.add_(0.1)
    _check_export(model, OnnxGLAM(path, threads=1))  # the model it came from passes
    with pytest.raises(RuntimeError, match=r"differs from the eager one|other patches"):
        _check_export(other, OnnxGLAM(path, threads=1))


def test_missing_packages_names_what_cannot_be_imported():
    assert missing_packages() == []
    assert missing_packages("no_such_runtime_package") == ["no_such_runtime_package"]
