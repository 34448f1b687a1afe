"""Export a :class:`~monai_glam.networks.nets.GLAM` to ONNX and run the exported model in another runtime.

The export goes through MONAI's :func:`monai.networks.utils.convert_to_onnx` with PyTorch's ``torch.export``
based exporter. GLAM's forward is data dependent (the patch is chosen on the global map), but every step of
that choice is a tensor operation, so the exported graph selects the patch from its input like the eager
model does; :func:`export_glam_onnx` checks this on an input different from the one it exported with.

ONNX Runtime and OpenVINO are optional (``pip install onnxruntime openvino``); ``onnx`` and ``onnxscript``
are needed to export.
"""

from __future__ import annotations

import os
import tempfile
import warnings
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from monai.networks.utils import convert_to_onnx
from monai.utils import OptionalImportError, optional_import
from torch import nn

from monai_glam.networks.nets.glam import GLAM
from monai_glam.utils.atomic import atomic_output_path
from monai_glam.utils.enums import GLAMKeys

__all__ = [
    "EXPORT_OUTPUT_KEYS",
    "ONNX_RUNTIMES",
    "GLAMTupleOutput",
    "OnnxGLAM",
    "export_glam_onnx",
    "max_output_difference",
    "missing_packages",
    "onnx_engine",
]

#: Names and order of the exported model's outputs: every :class:`GLAMKeys` entry, in the enum's order.
EXPORT_OUTPUT_KEYS: tuple[str, ...] = tuple(str(key.value) for key in GLAMKeys)
#: Runtimes :class:`OnnxGLAM` can run an exported model in.
ONNX_RUNTIMES: tuple[str, ...] = ("onnxruntime", "openvino")
#: Outputs that do not depend on the chosen patch.
GLOBAL_OUTPUT_KEYS: tuple[str, ...] = tuple(
    str(key.value)
    for key in (
        GLAMKeys.SALIENCY_A1,
        GLAMKeys.SALIENCY_A2,
        GLAMKeys.SALIENCY_A3,
        GLAMKeys.SALIENCY_GLOBAL,
        GLAMKeys.PROB_GLOBAL,
    )
)
#: Name of the exported model's input, ``(N, C_in, H, W)`` float32.
INPUT_NAME = "image"


class GLAMTupleOutput(nn.Module):
    """A :class:`GLAM` whose ``forward`` returns its outputs as a tuple ordered like :data:`EXPORT_OUTPUT_KEYS`.

    Exporters name outputs by position; the dict of :meth:`GLAM.forward` has no fixed order for them.

    Args:
        network: the model to wrap (its parameters are shared, not copied).
    """

    def __init__(self, network: GLAM) -> None:
        super().__init__()
        self.network = network

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        """``(N, C_in, H, W)`` -> the outputs of :meth:`GLAM.forward_outputs` in :data:`EXPORT_OUTPUT_KEYS` order."""
        outputs = self.network.forward_outputs(x)
        return tuple(outputs[key] for key in EXPORT_OUTPUT_KEYS)


def missing_packages(runtime: str | None = None) -> list[str]:
    """The packages that exporting (and, with ``runtime``, running in that runtime) needs but cannot import."""
    needed = ["onnx", "onnxscript"] + ([runtime] if runtime else [])
    return [name for name in needed if not optional_import(name)[1]]


def max_output_difference(reference: dict[str, torch.Tensor], other: dict[str, torch.Tensor]) -> dict[str, float]:
    """Largest absolute difference per output key between two output dicts (computed in float64).

    Raises:
        ValueError: when the two dicts do not have the same keys or an output's shape differs.
    """
    if set(reference) != set(other):
        raise ValueError(f"output keys differ: {sorted(reference)} vs {sorted(other)}.")
    differences = {}
    for key, value in reference.items():
        if tuple(value.shape) != tuple(other[key].shape):
            raise ValueError(f"output {key!r} has shape {tuple(other[key].shape)}, expected {tuple(value.shape)}.")
        differences[key] = float((value.double() - other[key].double()).abs().max()) if value.numel() else 0.0
    return differences


def _check_shape(window: Sequence[int], batch_size: int, in_channels: int) -> tuple[int, int, int, int]:
    window = tuple(int(v) for v in window)
    if len(window) != 2 or min(window) < 1:
        raise ValueError(f"window must be (height, width) with positive sizes, got {window}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be at least 1, got {batch_size}.")
    return (batch_size, in_channels, window[0], window[1])


def export_glam_onnx(
    network: GLAM,
    filename: str | os.PathLike,
    window: Sequence[int],
    batch_size: int = 1,
    opset_version: int = 18,
    check: bool = True,
    atol: float = 1e-4,
) -> Path:
    """Export ``network`` (in eval mode, float32) to an ONNX file for inputs of shape ``(batch_size, C_in, H, W)``.

    The file is written atomically (a temporary file renamed over ``filename``). Shapes are static: export once
    per window size and batch size. With ``check``, ONNX Runtime runs the exported file on random inputs that
    differ from the export's example: every output must agree with the eager model within ``atol``, with the
    same patch boxes (see ``_check_export`` for near ties of the patch choice).

    Args:
        network: the model to export; it is put in eval mode.
        filename: the ``.onnx`` file to write.
        window: ``(H, W)`` of the model input (the preset's window).
        batch_size: images per call of the exported model.
        opset_version: ONNX opset.
        check: compare the exported model with the eager one in ONNX Runtime (needs ``onnxruntime``).
        atol: largest absolute difference ``check`` accepts.

    Returns:
        the path written.

    Raises:
        ValueError: for a bad window or batch size.
        RuntimeError: when ``check`` finds an output that differs by more than ``atol``.
        OptionalImportError: when ``onnx``/``onnxscript`` (or ``onnxruntime`` with ``check``) is missing.
    """
    missing = missing_packages("onnxruntime" if check else None)
    if missing:  # fail here with the fix rather than deep inside torch.onnx
        raise OptionalImportError(f"exporting GLAM to ONNX needs {', '.join(missing)}: pip install {' '.join(missing)}")
    shape = _check_shape(window, batch_size, network.in_channels)
    path = Path(filename)
    network = network.eval()
    device = next(network.parameters()).device
    example = torch.randn(shape, generator=torch.Generator().manual_seed(0)).to(device)
    with atomic_output_path(path) as temporary, warnings.catch_warnings():
        # torch.export's own deprecation notices (FutureWarning) are about its internals, not the caller's code
        warnings.simplefilter("ignore", FutureWarning)
        convert_to_onnx(
            GLAMTupleOutput(network),
            inputs=[example],
            input_names=[INPUT_NAME],
            output_names=list(EXPORT_OUTPUT_KEYS),
            opset_version=opset_version,
            filename=str(temporary),
            verify=False,
            use_trace=True,
            dynamo=True,
            external_data=False,
            verbose=False,
        )
        if check:
            _check_export(network, OnnxGLAM(temporary, runtime="onnxruntime", threads=torch.get_num_threads()), atol)
    return path


def _check_export(network: GLAM, runner: OnnxGLAM, atol: float = 1e-4, attempts: int = 3) -> None:
    """Compare an exported model, loaded in ``runner``, with the eager model on random inputs of its input shape.

    The global outputs must agree on every probe. The outputs that depend on the chosen patch are compared on the
    first probe where both pick the same patches: on a nearly flat global map two windows can score within one
    float32 rounding step of each other, and a runtime that sums a window in another order may then take the
    neighbouring one. A patch choice that differs on every probe is an export error.
    """
    generator = torch.Generator().manual_seed(1)
    device = next(network.parameters()).device
    boxes_key = GLAMKeys.PATCH_BOXES.value
    for _ in range(attempts):
        probe = torch.randn(runner.input_shape, generator=generator)
        with torch.no_grad():
            expected = {key: value.cpu() for key, value in network(probe.to(device)).items()}
        differences = max_output_difference(expected, runner(probe))
        same_patches = differences[boxes_key] == 0
        compared = differences if same_patches else {key: differences[key] for key in GLOBAL_OUTPUT_KEYS}
        worst = max(compared, key=compared.__getitem__)
        if compared[worst] > atol:
            raise RuntimeError(
                f"the exported model differs from the eager one: {worst} by {compared[worst]:.3g} (tolerance {atol:g})."
            )
        if same_patches:
            return
    raise RuntimeError(f"the exported model chose other patches than the eager one on {attempts} random inputs.")


def onnx_engine(
    network: GLAM, window: Sequence[int], runtime: str = "onnxruntime", threads: int | None = None
) -> OnnxGLAM:
    """Export ``network`` for ``(1, C_in, H, W)`` inputs and load it in ``runtime``, ready to replace it in an inferer.

    The ONNX file lives in a temporary folder only while the runtime loads it. The loaded model is checked
    against ``network`` in ``runtime`` (see ``_check_export``). Export and check take 30–40 s at the paper size
    on two CPU cores.

    Args:
        network: the model (put in eval mode).
        window: ``(H, W)`` of the model input.
        runtime: one of :data:`ONNX_RUNTIMES`.
        threads: intra-op threads of the runtime (default: ``torch.get_num_threads()``).
    """
    if runtime not in ONNX_RUNTIMES:
        raise ValueError(f"runtime must be one of {ONNX_RUNTIMES}, got {runtime!r}.")
    with tempfile.TemporaryDirectory(prefix="monai-glam-onnx-") as folder:
        path = export_glam_onnx(network, Path(folder) / "glam.onnx", window, batch_size=1, check=False)
        runner = OnnxGLAM(path, runtime=runtime, threads=threads or torch.get_num_threads())
    # checked in the runtime that will run it
    _check_export(network, runner)
    return runner


class OnnxGLAM(torch.nn.Module):
    """Run an ONNX file written by :func:`export_glam_onnx` in ONNX Runtime or OpenVINO (CPU).

    Calling it with an ``(N, C_in, H, W)`` tensor returns a dict keyed by :class:`GLAMKeys`, like
    :meth:`GLAM.forward` in eval mode. It is a parameter-free ``nn.Module``, so MONAI's engines can hold it where
    they hold a network (``SupervisedEvaluator`` puts its network in eval mode for every iteration).

    Args:
        filename: the exported model.
        runtime: ``"onnxruntime"`` or ``"openvino"``.
        threads: intra-op threads (``None``: the runtime's default).

    Raises:
        ValueError: for an unknown runtime or a file whose outputs are not :data:`EXPORT_OUTPUT_KEYS`.
        FileNotFoundError: when ``filename`` does not exist.
        OptionalImportError: when the runtime is not installed.
    """

    def __init__(self, filename: str | os.PathLike, runtime: str = "onnxruntime", threads: int | None = None) -> None:
        super().__init__()
        if runtime not in ONNX_RUNTIMES:
            raise ValueError(f"runtime must be one of {ONNX_RUNTIMES}, got {runtime!r}.")
        if threads is not None and threads < 1:
            raise ValueError(f"threads must be at least 1, got {threads}.")
        path = Path(filename)
        if not path.is_file():
            raise FileNotFoundError(f"exported model not found: {path}")
        self.runtime = runtime
        self._run: Any
        if runtime == "onnxruntime":
            ort, _ = optional_import("onnxruntime")
            options = ort.SessionOptions()
            if threads is not None:
                options.intra_op_num_threads = threads
                options.inter_op_num_threads = 1
            session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
            names = [output.name for output in session.get_outputs()]
            shape = session.get_inputs()[0].shape
            self._run = lambda array: session.run(None, {INPUT_NAME: array})
        else:
            ov, _ = optional_import("openvino")
            config = {} if threads is None else {"INFERENCE_NUM_THREADS": threads}
            # f32 inference precision: OpenVINO would otherwise pick bf16 on CPUs that have it
            config["INFERENCE_PRECISION_HINT"] = "f32"
            compiled = ov.Core().compile_model(str(path), "CPU", config)
            names = [output.get_any_name() for output in compiled.outputs]
            shape = list(compiled.inputs[0].get_shape())
            request = compiled.create_infer_request()
            self._run = lambda array: [np.array(value) for value in request.infer([array]).values()]
        if tuple(names) != EXPORT_OUTPUT_KEYS:
            raise ValueError(f"{path} is not a GLAM export: outputs {names}, expected {list(EXPORT_OUTPUT_KEYS)}.")
        #: the static ``(N, C_in, H, W)`` input shape the model was exported for
        self.input_shape: tuple[int, ...] = tuple(int(v) for v in shape)

    def forward(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """``(N, C_in, H, W)`` float32 -> the outputs as CPU tensors keyed by :class:`GLAMKeys`.

        The runtime's input shape is static: a batch of a multiple of the exported batch size (any ``N`` for the
        batch size 1 that :func:`onnx_engine` exports) runs as consecutive exported-size batches, the outputs
        concatenated in order.

        Raises:
            ValueError: when ``x`` does not have the exported ``(C_in, H, W)``, or its batch is not a multiple of
                the exported batch size.
        """
        exported = self.input_shape[0]
        if tuple(x.shape[1:]) != self.input_shape[1:] or x.shape[0] % exported:
            raise ValueError(
                f"the exported model takes inputs of shape {list(self.input_shape)} (or batches of a multiple of "
                f"{exported}), got {list(x.shape)}; export it again for this window or batch size."
            )
        array = np.ascontiguousarray(x.detach().cpu().numpy(), dtype=np.float32)
        chunks = [self._run(array[start : start + exported]) for start in range(0, array.shape[0], exported)]
        return {
            key: torch.from_numpy(np.concatenate([np.asarray(chunk[position]) for chunk in chunks]))
            for position, key in enumerate(EXPORT_OUTPUT_KEYS)
        }
