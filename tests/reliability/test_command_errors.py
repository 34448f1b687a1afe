"""Probe every ``monai-glam`` sub-command with bad arguments and bad files, through the real command line.

Issue 13: a bad input gives exactly one line on stderr, ``monai-glam <cmd>: error: ...`` naming the option or
the file and the problem, a non-zero exit status (2 for usage errors) and no traceback. :data:`CASES` holds one
row per input: the argument list (with ``{placeholders}`` for the files the row's ``make`` step writes into a
fresh folder), the expected status and the substrings the line must hold. A split of unreadable files is the one
exception: each bad item is reported on its own line (as in a mixed split) before the error line.

What a terminal would show on stderr is reproduced in-process: :func:`monai_glam.apps.cli.main` runs under
``capsys``, Python warnings are printed as the command line formats them (one line each), and log records that no
handler takes are printed the way :data:`logging.lastResort` prints them (the command line configures no logging).
"""

from __future__ import annotations

import io
import json
import logging
import os
import pickle
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from monai_glam.apps.cli import main
from monai_glam.data import (
    build_mammogram_dataset,
    load_mammogram,
    read_datalist,
    write_dicom_mammogram,
    write_synthetic_dataset,
)
from monai_glam.networks import GLAM, glam_network
from monai_glam.writers import read_predictions
from tests.data.dicom_edit import set_decimal_string
from tests.networks.nyu_layout import to_nyu_layout
from tests.writers.synthetic_run import TINY_GLAM, make_checkpoint

#: The sub-commands; an error of any other argument list is the top-level parser's (``monai-glam: error:``).
COMMANDS = ("synth", "train", "infer", "evaluate", "convert-nyu", "demo")

# ------------------------------------------------------------------------------------------------------------
# Inputs and the command runner
# ------------------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Inputs:
    """Good inputs, made once per module, that the rows spoil one at a time.

    Attributes:
        datalist: 8 synthetic 256x160 mammograms; 4 in ``training`` (each class both present and absent, so
            training warns about nothing), 4 in ``test``.
        training: the training items (absolute paths).
        test: the test items.
        checkpoint: a tiny GLAM's ``last.pt`` (128x96 window, 32x32 patches).
        model_config: its ``model_config.json``.
        small_weights: a ``GLAM.state_dict()`` of the ``small`` preset (another preset's weights).
        paper_weights: a ``GLAM.state_dict()`` of the ``paper`` preset (the layout ``convert-nyu`` writes).
    """

    datalist: Path
    training: list[dict[str, Any]]
    test: list[dict[str, Any]]
    checkpoint: Path
    model_config: Path
    small_weights: Path
    paper_weights: Path


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    root = tmp_path_factory.mktemp("inputs")
    datalist = write_synthetic_dataset(
        root / "data", num=8, size=(256, 160), seed=5, write_dicom=False, fractions=(0.5, 0.0, 0.5), progress=False
    )
    checkpoint = make_checkpoint(root / "model")
    small, paper = root / "small.pt", root / "paper.pt"
    torch.save(glam_network("small").state_dict(), small)
    torch.save(glam_network("paper").state_dict(), paper)
    return Inputs(
        datalist=datalist,
        training=read_datalist(datalist, "training"),
        test=read_datalist(datalist, "test"),
        checkpoint=checkpoint,
        model_config=checkpoint.parent / "model_config.json",
        small_weights=small,
        paper_weights=paper,
    )


@dataclass(frozen=True)
class Result:
    """What a command run showed: its exit status, stdout, and stderr as the lines a terminal would show."""

    status: int
    out: str
    err: list[str]


class _LastResort(logging.Handler):
    """Prints records as :data:`logging.lastResort` does when no handler below the root logger takes them."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.setFormatter(logging.Formatter())

    def emit(self, record: logging.LogRecord) -> None:
        logger: logging.Logger | None = None if record.name == "root" else logging.getLogger(record.name)
        while logger is not None and logger is not logging.root:
            if logger.handlers:
                return
            logger = logger.parent if logger.propagate else None
        sys.stderr.write(self.format(record) + "\n")


def _print_warning(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
    """The interpreter's ``warnings.showwarning``: the text :func:`warnings.formatwarning` gives (the command line
    sets a one-line format while it runs), written to the current ``sys.stderr``."""
    sys.stderr.write(warnings.formatwarning(message, category, filename, lineno, line))


def run_command(argv: Sequence[str], capsys: pytest.CaptureFixture[str]) -> Result:
    """``monai-glam ARGV`` in-process, with warnings and unhandled log records shown on stderr."""
    capsys.readouterr()
    handler = _LastResort()
    logging.root.addHandler(handler)
    try:
        with warnings.catch_warnings():
            warnings.showwarning = _print_warning  # pytest records warnings; print them as the interpreter does
            warnings.simplefilter("default")  # the interpreter's defaults
            for category in (DeprecationWarning, PendingDeprecationWarning, ImportWarning, ResourceWarning):
                warnings.filterwarnings("ignore", category=category)
            status = main(list(argv))
    finally:
        logging.root.removeHandler(handler)
    captured = capsys.readouterr()
    err = captured.err.strip()
    return Result(status, captured.out, err.splitlines() if err else [])


# ------------------------------------------------------------------------------------------------------------
# Files the rows write (each ``make`` step gets the row's fresh folder and the good inputs)
# ------------------------------------------------------------------------------------------------------------

Make = Callable[[Path, Inputs], None]


def _bytes(name: str, content: bytes) -> Make:
    def make(folder: Path, good: Inputs) -> None:
        (folder / name).write_bytes(content)

    return make


def _json(name: str, document: Callable[[Inputs], Any]) -> Make:
    def make(folder: Path, good: Inputs) -> None:
        (folder / name).write_text(json.dumps(document(good)), encoding="utf-8")

    return make


def _folder(name: str) -> Make:
    def make(folder: Path, good: Inputs) -> None:
        (folder / name).mkdir()

    return make


def _all_unreadable(name: str) -> Make:
    """A datalist whose every image is a text file named ``.png``, in both ``training`` and ``test``."""

    def make(folder: Path, good: Inputs) -> None:
        items = []
        for index in range(4):
            file_name = f"not_an_image_{index}.png"
            (folder / file_name).write_text("this is not an image\n")
            items.append({"image": file_name, "label": [index % 2, (index // 2) % 2]})  # both classes mixed
        (folder / name).write_text(json.dumps({"training": items, "test": items}))

    return make


def _state_dict_bytes(state: dict[str, torch.Tensor]) -> bytes:
    buffer = io.BytesIO()
    torch.save(state, buffer)
    return buffer.getvalue()


def _tiny_state() -> dict[str, torch.Tensor]:
    torch.manual_seed(0)
    return glam_network("tiny").state_dict()


def _truncated_checkpoint(name: str, keep: int | None = None) -> Make:
    """A tiny GLAM's checkpoint cut after ``keep`` bytes (default: half of it)."""

    def make(folder: Path, good: Inputs) -> None:
        data = _state_dict_bytes(_tiny_state())
        (folder / name).write_bytes(data[: len(data) // 2 if keep is None else keep])

    return make


class _RunsCode:
    """Pickles as a call of ``os.system("true")``: unpickling it would run a shell command (never done here)."""

    def __reduce__(self) -> tuple[Callable[..., Any], tuple[str]]:
        return (os.system, ("true",))


def _code_pickle(name: str, protocol: int | None = None) -> Make:
    def make(folder: Path, good: Inputs) -> None:
        (folder / name).write_bytes(pickle.dumps({"network": _RunsCode()}, protocol=protocol))

    return make


def _weights(name: str, build: Callable[[], dict[str, torch.Tensor]]) -> Make:
    def make(folder: Path, good: Inputs) -> None:
        torch.save(build(), folder / name)

    return make


def _nan_weights() -> dict[str, torch.Tensor]:
    state = _tiny_state()
    state["local_network.head.weight"] = torch.full_like(state["local_network.head.weight"], float("nan"))
    return state


def _random_tensors() -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    return {f"layer{i}.weight": torch.randn(3, generator=generator) for i in range(200)}


def _nyu_with_unknown_keys() -> dict[str, torch.Tensor]:
    """The published layout with 141 keys no rule maps: the reader must not list them all."""
    state = to_nyu_layout(GLAM().state_dict())
    state.update({f"detection_network.extra_head.{i}.weight": torch.zeros(1) for i in range(141)})
    return state


# ------------------------------------------------------------------------------------------------------------
# The table
# ------------------------------------------------------------------------------------------------------------

_OUT = "{tmp}/out"
SYNTH = ["synth", "--out", _OUT, "--no-progress"]
TRAIN = ["train", "--datalist", "{datalist}", "--output", _OUT, "--preset", "tiny", "--epochs", "1"]
TRAIN += ["--batch-size", "2", "--no-progress", "--device", "cpu"]
INFER = ["infer", "--datalist", "{datalist}", "--checkpoint", "{checkpoint}", "--output", _OUT, "--no-progress"]
EVAL = ["evaluate", "--datalist", "{datalist}", "--checkpoint", "{checkpoint}", "--output", _OUT, "--no-progress"]
DEMO = ["demo", "--output", _OUT, "--minimal", "--no-progress"]
NO_CUDA = pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present")
NO_MPS = pytest.mark.skipif(torch.backends.mps.is_available(), reason="MPS is present")


def case(
    name: str,
    argv: list[str],
    status: int,
    *expected: str,
    make: Make | None = None,
    marks: Sequence[pytest.MarkDecorator] = (),
) -> Any:
    """One table row: ``argv`` (placeholders filled per row) must fail with ``status`` and one line holding
    every ``expected`` substring."""
    return pytest.param(argv, make, status, expected, id=name, marks=list(marks))


CASES = [
    # --- the top-level parser ---------------------------------------------------------------------------------
    case("cli-no-command", [], 2, "the following arguments are required: COMMAND"),
    case("cli-unknown-command", ["fly"], 2, "argument COMMAND: invalid choice: 'fly'"),
    # --- synth (every numeric option: NUMERIC_OPTIONS below) ------------------------------------------------------
    case("synth-size-small", [*SYNTH, "--size", "16", "16"], 2, "--size must be at least 64 48 (H W), got 16 16"),
    case("synth-size-one", [*SYNTH, "--size", "256"], 2, "argument --size: expected 2 arguments"),
    case("synth-fractions-sum", [*SYNTH, "--fractions", "0.5", "0.5", "0.5"], 2, "--fractions must sum to 1"),
    case("synth-fractions-two", [*SYNTH, "--fractions", "1", "0"], 2, "argument --fractions: expected 3 arguments"),
    # --- train: numbers and choices (every numeric option: NUMERIC_OPTIONS below) ---------------------------------
    case("train-seed-big", [*TRAIN, "--seed", str(2**32)], 2, "argument --seed", "<= 4294967295", "got 4294967296"),
    case("train-epochs-1.5", [*TRAIN, "--epochs", "1.5"], 2, "argument --epochs", "got '1.5'"),
    case("train-lr-inf", [*TRAIN, "--lr", "inf"], 2, "argument --lr: must be a number > 0, got inf"),
    case("train-window-one", [*TRAIN, "--window", "8"], 2, "argument --window: expected 2 arguments"),
    case(
        "infer-window-huge",
        [*INFER, "--window", "100000", "100000"],
        2,
        "argument --window: must be an integer >= 1 and <= 16384, got 100000",
    ),
    case(
        "infer-output-under-a-file",
        [*INFER, "--output", "{tmp}/file/out"],
        2,
        "cannot create --output {tmp}/file/out: Not a directory",
        make=_bytes("file", b"x"),
    ),
    case("train-window-8", [*TRAIN, "--window", "8", "8"], 2, "window [8, 8] is smaller than this GLAM's 64x64 patch"),
    case(
        "train-window-8-before-any-image",
        [*TRAIN, "--datalist", "{tmp}/d.json", "--window", "8", "8"],
        2,
        "window [8, 8] is smaller than this GLAM's 64x64 patch",
        make=_all_unreadable("d.json"),
    ),
    case("train-stage", [*TRAIN, "--stage", "all"], 2, "argument --stage: invalid choice: 'all'"),
    case("train-preset", [*TRAIN, "--preset", "huge"], 2, "argument --preset: invalid choice: 'huge'"),
    case("train-no-output", ["train", "--datalist", "{datalist}"], 2, "the following arguments are required: --output"),
    case("train-device-tpu", [*TRAIN, "--device", "tpu"], 2, "unknown device 'tpu'"),
    case("train-device-cuda", [*TRAIN, "--device", "cuda"], 2, "'cuda'", "CUDA is not available", marks=[NO_CUDA]),
    case("train-device-mps", [*TRAIN, "--device", "mps"], 2, "'mps'", "no MPS", marks=[NO_MPS]),
    # --- train: datalists -------------------------------------------------------------------------------------
    case(
        "train-datalist-missing",
        [*TRAIN, "--datalist", "{tmp}/missing.json"],
        2,
        "{tmp}/missing.json: no such datalist file",
    ),
    case(
        "train-datalist-not-json",
        [*TRAIN, "--datalist", "{tmp}/d.json"],
        2,
        "{tmp}/d.json: not valid JSON",
        make=_bytes("d.json", b'{"training": [\n'),
    ),
    case(
        "train-datalist-split-object",
        [*TRAIN, "--datalist", "{tmp}/d.json"],
        2,
        "{tmp}/d.json: split 'training' must be a list of items, got an object",
        make=_json("d.json", lambda good: {"training": good.training[0]}),
    ),
    case(
        "train-datalist-image-5",
        [*TRAIN, "--datalist", "{tmp}/d.json"],
        2,
        "{tmp}/d.json training[1]: 'image' must be a file path (a string), got a number 5",
        make=_json("d.json", lambda good: {"training": [good.training[0], {"image": 5, "label": [0, 1]}]}),
    ),
    case(
        "train-datalist-no-label",
        [*TRAIN, "--datalist", "{tmp}/d.json"],
        2,
        "{tmp}/d.json training[0]",
        "has no 'label' [benign, malignant]",
        make=_json("d.json", lambda good: {"training": [{"image": good.training[0]["image"]}]}),
    ),
    case(
        "train-datalist-bad-label",
        [*TRAIN, "--datalist", "{tmp}/d.json"],
        2,
        "{tmp}/d.json training[0] label must be 0 or 1, got 2",
        make=_json("d.json", lambda good: {"training": [{**good.training[0], "label": [2, 0]}]}),
    ),
    case(
        "train-datalist-duplicate",
        [*TRAIN, "--datalist", "{tmp}/d.json"],
        2,
        "{tmp}/d.json training: image",
        "is listed twice (training[0] and training[2])",
        make=_json("d.json", lambda good: {"training": [good.training[0], good.training[1], good.training[0]]}),
    ),
    case(
        "train-datalist-empty-training",
        [*TRAIN, "--datalist", "{tmp}/d.json"],
        2,
        "{tmp}/d.json has no 'training' items",
        make=_json("d.json", lambda good: {"training": [], "test": good.test}),
    ),
    case(
        "train-datalist-csv-without-split",
        [*TRAIN, "--datalist", "{tmp}/d.csv"],
        2,
        "{tmp}/d.csv: a CSV datalist needs a 'split' column",
        make=_bytes("d.csv", "image,benign,malignant\na.png,0,1\n".encode("utf-8-sig")),
    ),
    # --- train: model configs ---------------------------------------------------------------------------------
    case(
        "train-config-patch-string",
        [*TRAIN, "--model-config", "{tmp}/m.json"],
        2,
        '{tmp}/m.json: patch_size must be an integer or a list of 2 integers, got "64"',
        make=_json("m.json", lambda good: {"patch_size": "64"}),
    ),
    case(
        "train-config-patch-true",
        [*TRAIN, "--model-config", "{tmp}/m.json"],
        2,
        "{tmp}/m.json: patch_size must be an integer or a list of 2 integers, got true",
        make=_json("m.json", lambda good: {"patch_size": True}),
    ),
    case(
        "train-config-unknown-key",
        [*TRAIN, "--model-config", "{tmp}/m.json"],
        2,
        "{tmp}/m.json: unknown GLAM argument(s) ['patch_sise']",
        make=_json("m.json", lambda good: {"patch_sise": 64}),
    ),
    case(
        "train-config-not-json",
        [*TRAIN, "--model-config", "{tmp}/m.json"],
        2,
        "{tmp}/m.json: not valid JSON",
        make=_bytes("m.json", b"patch_size: 64\n"),
    ),
    case(
        "train-config-missing",
        [*TRAIN, "--model-config", "{tmp}/m.json"],
        2,
        "{tmp}/m.json: no such model config file",
    ),
    # --- train --init: checkpoints ----------------------------------------------------------------------------
    case("train-init-missing", [*TRAIN, "--init", "{tmp}/w.pt"], 2, "checkpoint not found: {tmp}/w.pt"),
    case(
        "train-init-zero-bytes",
        [*TRAIN, "--init", "{tmp}/w.pt"],
        2,
        "cannot read checkpoint {tmp}/w.pt: empty file",
        make=_bytes("w.pt", b""),
    ),
    case(
        "train-init-directory",
        [*TRAIN, "--init", "{tmp}/w.pt"],
        2,
        "{tmp}/w.pt",
        "is a directory",
        make=_folder("w.pt"),
    ),
    case(
        "train-init-truncated",
        [*TRAIN, "--init", "{tmp}/w.pt"],
        2,
        "cannot read checkpoint {tmp}/w.pt: corrupt or truncated file",
        make=_truncated_checkpoint("w.pt"),
    ),
    case(
        "train-init-truncated-to-32-kib",
        [*TRAIN, "--init", "{tmp}/w.pt"],
        2,
        "cannot read checkpoint {tmp}/w.pt: corrupt or truncated file",
        make=_truncated_checkpoint("w.pt", keep=32 * 1024),
    ),
    case(
        "train-init-os-system-pickle",
        [*TRAIN, "--init", "{tmp}/w.pt"],
        2,
        "cannot read checkpoint {tmp}/w.pt: refused: it references",
        "system",
        make=_code_pickle("w.pt"),
    ),
    case(
        "train-init-os-system-pickle-protocol-2",
        [*TRAIN, "--init", "{tmp}/w.pt"],
        2,
        "cannot read checkpoint {tmp}/w.pt: refused: it references",
        "system",
        make=_code_pickle("w.pt", protocol=2),
    ),
    case(
        "train-init-other-preset",
        [*TRAIN, "--init", "{small}"],
        2,
        "checkpoint {small} does not fit this GLAM configuration",
        "mis-shaped",
        "(+",
    ),
    case(
        "train-init-nan",
        [*TRAIN, "--init", "{tmp}/w.pt"],
        2,
        "checkpoint {tmp}/w.pt holds non-finite weights (NaN in local_network.head.weight)",
        make=_weights("w.pt", _nan_weights),
    ),
    # --- infer: numbers, choices and devices -------------------------------------------------------------------
    case("infer-window-one", [*INFER, "--window", "8"], 2, "argument --window: expected 2 arguments"),
    case("infer-window-8", [*INFER, "--window", "8", "8"], 2, "window [8, 8] is smaller than this GLAM's 32x32 patch"),
    case("infer-thresholds-nan", [*INFER, "--thresholds", "nan", "0.5"], 2, "argument --thresholds", "got nan"),
    case("infer-thresholds-one", [*INFER, "--thresholds", "0.5"], 2, "argument --thresholds: expected 2 arguments"),
    case("infer-formats", [*INFER, "--formats", "jpeg"], 2, "argument --formats: invalid choice: 'jpeg'"),
    case("infer-split", [*INFER, "--split", "train"], 2, "unknown split 'train'"),
    case(
        "infer-no-source",
        ["infer", "--checkpoint", "{checkpoint}", "--output", _OUT],
        2,
        "one of the arguments --datalist --images is required",
    ),
    case(
        "infer-images-missing",
        ["infer", "--images", "{tmp}/x.png", "--checkpoint", "{checkpoint}", "--output", _OUT],
        2,
        "{tmp}/x.png: no such image file or folder",
    ),
    case("infer-device-tpu", [*INFER, "--device", "tpu"], 2, "unknown device 'tpu'"),
    case("infer-device-cuda", [*INFER, "--device", "cuda"], 2, "'cuda'", "CUDA is not available", marks=[NO_CUDA]),
    case("infer-device-mps", [*INFER, "--device", "mps"], 2, "'mps'", "no MPS", marks=[NO_MPS]),
    # --- infer: datalists -------------------------------------------------------------------------------------
    case(
        "infer-datalist-missing",
        [*INFER, "--datalist", "{tmp}/missing.json"],
        2,
        "{tmp}/missing.json: no such datalist file",
    ),
    case(
        "infer-datalist-not-json",
        [*INFER, "--datalist", "{tmp}/d.json"],
        2,
        "{tmp}/d.json: not valid JSON",
        make=_bytes("d.json", b"test:\n  - a.png\n"),
    ),
    case(
        "infer-datalist-is-a-png",
        [*INFER, "--datalist", "{tmp}/d.json"],
        2,
        "{tmp}/d.json: not a UTF-8 text file (invalid start byte at byte 0)",
        make=_bytes("d.json", b"\x89PNG\r\n\x1a\n"),
    ),
    case(
        "infer-datalist-utf16",
        [*INFER, "--datalist", "{tmp}/d.json"],
        2,
        "{tmp}/d.json: not a UTF-8 text file",
        make=_bytes("d.json", '{"test": ["a.png"]}'.encode("utf-16")),
    ),
    case(
        "infer-datalist-split-object",
        [*INFER, "--datalist", "{tmp}/d.json"],
        2,
        "{tmp}/d.json: split 'test' must be a list of items, got an object",
        make=_json("d.json", lambda good: {"test": {"image": "a.png"}}),
    ),
    case(
        "infer-datalist-image-5",
        [*INFER, "--datalist", "{tmp}/d.json"],
        2,
        "{tmp}/d.json test[0]: 'image' must be a file path (a string), got a number 5",
        make=_json("d.json", lambda good: {"test": [{"image": 5}]}),
    ),
    case(
        "infer-datalist-duplicate",
        [*INFER, "--datalist", "{tmp}/d.json"],
        2,
        "{tmp}/d.json test: image",
        "is listed twice (test[0] and test[1])",
        make=_json("d.json", lambda good: {"test": [good.test[0]["image"], good.test[0]["image"]]}),
    ),
    case(
        "infer-datalist-empty-split",
        [*INFER, "--datalist", "{tmp}/d.json"],
        2,
        "{tmp}/d.json has no 'test' items",
        make=_json("d.json", lambda good: {"training": good.training}),
    ),
    case(
        "infer-csv-bad-split-name",
        [*INFER, "--datalist", "{tmp}/d.csv"],
        2,
        "{tmp}/d.csv line 2: split must be one of training, validation, test, got 'train'",
        make=_bytes("d.csv", b"image,split\na.png,train\n"),
    ),
    # --- infer --checkpoint and --model-config ---------------------------------------------------------------
    case("infer-checkpoint-missing", [*INFER, "--checkpoint", "{tmp}/w.pt"], 2, "checkpoint not found: {tmp}/w.pt"),
    case(
        "infer-checkpoint-zero-bytes",
        [*INFER, "--checkpoint", "{tmp}/w.pt", "--model-config", "{config}"],
        2,
        "cannot read checkpoint {tmp}/w.pt: empty file",
        make=_bytes("w.pt", b""),
    ),
    case(
        "infer-checkpoint-truncated",
        [*INFER, "--checkpoint", "{tmp}/w.pt", "--model-config", "{config}"],
        2,
        "cannot read checkpoint {tmp}/w.pt: corrupt or truncated file",
        make=_truncated_checkpoint("w.pt"),
    ),
    case(
        "infer-checkpoint-truncated-to-32-kib",
        [*INFER, "--checkpoint", "{tmp}/w.pt", "--model-config", "{config}"],
        2,
        "cannot read checkpoint {tmp}/w.pt: corrupt or truncated file",
        make=_truncated_checkpoint("w.pt", keep=32 * 1024),
    ),
    case(
        "infer-checkpoint-os-system-pickle",
        [*INFER, "--checkpoint", "{tmp}/w.pt", "--model-config", "{config}"],
        2,
        "cannot read checkpoint {tmp}/w.pt: refused: it references",
        "system",
        make=_code_pickle("w.pt"),
    ),
    case(
        "infer-checkpoint-os-system-pickle-protocol-2",
        [*INFER, "--checkpoint", "{tmp}/w.pt", "--model-config", "{config}"],
        2,
        "cannot read checkpoint {tmp}/w.pt: refused: it references",
        "system",
        make=_code_pickle("w.pt", protocol=2),
    ),
    case(
        "infer-checkpoint-other-preset",
        [*INFER, "--checkpoint", "{small}", "--model-config", "{config}"],
        2,
        "checkpoint {small} does not fit model config {config}",
        "mis-shaped",
    ),
    case(
        "infer-checkpoint-nan",
        [*INFER, "--checkpoint", "{tmp}/w.pt", "--model-config", "{config}"],
        2,
        "checkpoint {tmp}/w.pt holds non-finite weights (NaN in local_network.head.weight)",
        make=_weights("w.pt", _nan_weights),
    ),
    case(
        "infer-config-patch-string",
        [*INFER, "--model-config", "{tmp}/m.json"],
        2,
        '{tmp}/m.json: patch_size must be an integer or a list of 2 integers, got "64"',
        make=_json("m.json", lambda good: {**TINY_GLAM, "patch_size": "64"}),
    ),
    case(
        "infer-config-patch-true",
        [*INFER, "--model-config", "{tmp}/m.json"],
        2,
        "{tmp}/m.json: patch_size must be an integer or a list of 2 integers, got true",
        make=_json("m.json", lambda good: {**TINY_GLAM, "patch_size": True}),
    ),
    case(
        "infer-config-unknown-key",
        [*INFER, "--model-config", "{tmp}/m.json"],
        2,
        "{tmp}/m.json: unknown GLAM argument(s) ['window']",
        make=_json("m.json", lambda good: {**TINY_GLAM, "window": [128, 96]}),
    ),
    case(
        "infer-config-bad-thresholds",
        [*INFER, "--model-config", "{tmp}/m.json"],
        2,
        "{tmp}/m.json: thresholds must lie in [0, 1], got [0.5, 2.0]",
        make=_json("m.json", lambda good: {**TINY_GLAM, "thresholds": [0.5, 2]}),
    ),
    case(
        "infer-config-not-json",
        [*INFER, "--model-config", "{tmp}/m.json"],
        2,
        "{tmp}/m.json: not valid JSON",
        make=_bytes("m.json", b""),
    ),
    case(
        "infer-config-not-utf8",
        [*INFER, "--model-config", "{tmp}/m.json"],
        2,
        "{tmp}/m.json: not",
        make=_bytes("m.json", b"\x89PNG\r\n\x1a\n"),
    ),
    # --- evaluate ---------------------------------------------------------------------------------------------
    case("eval-frame", [*EVAL, "--frame", "raw"], 2, "argument --frame: invalid choice: 'raw'"),
    case("eval-window-8", [*EVAL, "--window", "8", "8"], 2, "window [8, 8] is smaller than this GLAM's 32x32 patch"),
    case("eval-device-tpu", [*EVAL, "--device", "tpu"], 2, "unknown device 'tpu'"),
    case("eval-device-cuda", [*EVAL, "--device", "cuda"], 2, "'cuda'", "CUDA is not available", marks=[NO_CUDA]),
    case(
        "eval-datalist-no-label",
        [*EVAL, "--datalist", "{tmp}/d.json"],
        2,
        "{tmp}/d.json test[0]",
        "has no 'label' [benign, malignant]",
        make=_json("d.json", lambda good: {"test": [{"image": good.test[0]["image"]}]}),
    ),
    case(
        "eval-datalist-without-checkpoint",
        ["evaluate", "--datalist", "{datalist}", "--output", _OUT],
        2,
        "--datalist needs --checkpoint",
    ),
    case(
        "eval-predictions-missing",
        ["evaluate", "--predictions", "{tmp}/run", "--output", _OUT],
        2,
        "{tmp}/run: no predictions.csv",
    ),
    case(
        "eval-checkpoint-zero-bytes",
        [*EVAL, "--checkpoint", "{tmp}/w.pt", "--model-config", "{config}"],
        2,
        "cannot read checkpoint {tmp}/w.pt: empty file",
        make=_bytes("w.pt", b""),
    ),
    # --- demo -------------------------------------------------------------------------------------------------
    case("demo-num-7", ["demo", "--output", _OUT, "--num", "7"], 2, "argument --num: must be an integer >= 8, got 7"),
    case("demo-lr-neg", [*DEMO, "--lr=-0.1"], 2, "argument --lr: must be a number > 0, got -0.1"),
    case("demo-seed-big", [*DEMO, "--seed", str(2**32)], 2, "argument --seed", "got 4294967296"),
    case("demo-preset", [*DEMO, "--preset", "huge"], 2, "argument --preset: invalid choice: 'huge'"),
    case("demo-device-tpu", [*DEMO, "--device", "tpu"], 2, "unknown device 'tpu'"),
    case("demo-device-cuda", [*DEMO, "--device", "cuda"], 2, "'cuda'", "CUDA is not available", marks=[NO_CUDA]),
    case("demo-device-mps", [*DEMO, "--device", "mps"], 2, "'mps'", "no MPS", marks=[NO_MPS]),
    # --- convert-nyu ------------------------------------------------------------------------------------------
    case("convert-no-args", ["convert-nyu"], 2, "the following arguments are required: IN, OUT"),
    case("convert-missing", ["convert-nyu", "{tmp}/in.ckpt", _OUT], 2, "checkpoint not found: {tmp}/in.ckpt"),
    case(
        "convert-zero-bytes",
        ["convert-nyu", "{tmp}/in.ckpt", _OUT],
        2,
        "cannot read checkpoint {tmp}/in.ckpt: empty file",
        make=_bytes("in.ckpt", b""),
    ),
    case(
        "convert-os-system-pickle",
        ["convert-nyu", "{tmp}/in.ckpt", _OUT],
        2,
        "cannot read checkpoint {tmp}/in.ckpt: refused: it references",
        "system",
        make=_code_pickle("in.ckpt", protocol=2),
    ),
    case(
        "convert-monai-glam-paper-weights",
        ["convert-nyu", "{paper}", _OUT],
        2,
        "{paper} is not a published GLAM checkpoint",
        "its 351 keys are already monai_glam's GLAM names",
    ),
    case(
        "convert-monai-glam-tiny-training-checkpoint",
        ["convert-nyu", "{checkpoint}", _OUT],
        2,
        "{checkpoint} is not a published GLAM checkpoint",
        "already monai_glam's GLAM names",
    ),
    case(
        "convert-random-tensors",
        ["convert-nyu", "{tmp}/in.ckpt", _OUT],
        2,
        "{tmp}/in.ckpt is not a published GLAM checkpoint",
        "none of its 200 keys starts with global_network.downsampling_branch.",
        "(first keys: layer0.weight, layer1.weight, layer2.weight)",
        make=_weights("in.ckpt", _random_tensors),
    ),
    case(
        "convert-published-layout-of-tiny-glam",
        ["convert-nyu", "{tmp}/in.ckpt", _OUT],
        2,
        "checkpoint {tmp}/in.ckpt does not fit this GLAM configuration",
        make=_weights("in.ckpt", lambda: to_nyu_layout(_tiny_state())),
    ),
    case(
        "convert-published-layout-141-unknown-keys",
        ["convert-nyu", "{tmp}/in.ckpt", _OUT],
        2,
        "checkpoint {tmp}/in.ckpt (published layout): 141 unexpected key(s)",
        make=_weights("in.ckpt", _nyu_with_unknown_keys),
    ),
]

#: Every numeric option of every command: (command line, option, a valid value for the option's other places,
#: an out-of-range value, what the value must be). Each gives a row with the out-of-range value and one with
#: a non-number.
NUMERIC_OPTIONS: list[tuple[list[str], str, str, str, str]] = [
    (SYNTH, "--num", "8", "0", "an integer >= 1"),
    (SYNTH, "--size", "160", "-160", "an integer >= 1"),
    (SYNTH, "--seed", "0", "-1", "an integer >= 0 and <= 4294967295"),
    (SYNTH, "--fractions", "0", "1.5", "a number >= 0 and <= 1"),
    (TRAIN, "--window", "160", "0", "an integer >= 1 and <= 16384"),
    (TRAIN, "--epochs", "1", "0", "an integer >= 1"),
    (TRAIN, "--batch-size", "2", "0", "an integer >= 1"),
    (TRAIN, "--lr", "0.1", "0", "a number > 0"),
    (TRAIN, "--weight-decay", "0", "-1e-5", "a number >= 0"),
    (TRAIN, "--val-interval", "1", "0", "an integer >= 1"),
    (TRAIN, "--num-workers", "0", "-1", "an integer >= 0"),
    (TRAIN, "--seed", "0", "-1", "an integer >= 0 and <= 4294967295"),
    (TRAIN, "--early-stop", "0", "-1", "an integer >= 0"),
    (TRAIN, "--image-interval", "1", "-1", "an integer >= 0"),
    (TRAIN, "--log-interval", "1", "-1", "an integer >= 0"),
    *(
        (command, option, good, bad, what)
        for command in (INFER, EVAL)
        for option, good, bad, what in (
            ("--window", "96", "-8", "an integer >= 1 and <= 16384"),
            ("--erosion-iterations", "0", "-1", "an integer >= 0"),
            ("--buffer", "0", "-4", "an integer >= 0"),
            ("--thresholds", "0.5", "1.5", "a number >= 0 and <= 1"),
            ("--overlap", "0.5", "1", "a number >= 0 and < 1"),
            ("--sw-batch-size", "1", "0", "an integer >= 1"),
            ("--overlay-size", "64", "0", "an integer >= 1"),
        )
    ),
    (EVAL, "--downsample", "1", "0", "an integer >= 1"),
    (EVAL, "--num-bootstrap", "10", "0", "an integer >= 1"),
    (EVAL, "--seed", "0", "-1", "an integer >= 0 and <= 4294967295"),
    (EVAL, "--peak-sigma", "4", "-4", "a number > 0"),
    (EVAL, "--peak-min-distance", "32", "0", "an integer >= 1"),
    (DEMO, "--num", "16", "7", "an integer >= 8"),
    (DEMO, "--global-epochs", "1", "0", "an integer >= 1"),
    (DEMO, "--local-epochs", "1", "0", "an integer >= 1"),
    (DEMO, "--batch-size", "8", "0", "an integer >= 1"),
    (DEMO, "--lr", "0.1", "-3e-3", "a number > 0"),
    (DEMO, "--num-bootstrap", "50", "0", "an integer >= 1"),
    (DEMO, "--seed", "0", "-1", "an integer >= 0 and <= 4294967295"),
]
_NARGS = {"--size": 2, "--window": 2, "--thresholds": 2, "--fractions": 3}


def _numeric_cases() -> list[Any]:
    rows = []
    for command, option, good, bad, what in NUMERIC_OPTIONS:
        others = [good] * (_NARGS.get(option, 1) - 1)
        name = f"{command[0]}{option}"
        for value, shown in ((bad, bad), ("x", "'x'")):
            # "--option=-1" keeps a leading minus from reading as an option; with several values the bad one is
            # last (argparse reads "-8" as a value there: no option of these parsers looks like a number).
            argv = [*command, option, *others, value] if others else [*command, f"{option}={value}"]
            rows.append(case(f"{name}={value}", argv, 2, f"argument {option}: must be {what}, got {shown}"))
    return rows


CASES += _numeric_cases()


def _fill(text: str, folder: Path, good: Inputs) -> str:
    return text.format(
        tmp=folder,
        datalist=good.datalist,
        checkpoint=good.checkpoint,
        config=good.model_config,
        small=good.small_weights,
        paper=good.paper_weights,
    )


def _prefix(argv: Sequence[str]) -> str:
    return f"monai-glam {argv[0]}: error: " if argv and argv[0] in COMMANDS else "monai-glam: error: "


@pytest.mark.parametrize(("argv", "make", "status", "expected"), CASES)
def test_bad_input_is_one_line_naming_option_or_file(
    argv: list[str],
    make: Make | None,
    status: int,
    expected: tuple[str, ...],
    inputs: Inputs,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    if make is not None:
        make(tmp_path, inputs)
    filled = [_fill(arg, tmp_path, inputs) for arg in argv]
    result = run_command(filled, capsys)
    shown = "\n".join(result.err)
    assert "Traceback" not in shown and "Traceback" not in result.out, shown + result.out
    assert len(result.err) == 1, shown
    assert result.status == status, shown
    (line,) = result.err
    assert line.startswith(_prefix(filled)), line
    for text in expected:
        assert _fill(text, tmp_path, inputs) in line, line


# ------------------------------------------------------------------------------------------------------------
# Refused before any work: nothing is written
# ------------------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "argv",
    [
        pytest.param([*TRAIN, "--window", "8", "8"], id="train-window-smaller-than-patch"),
        pytest.param([*SYNTH, "--fractions", "0.5", "0.5", "0.5"], id="synth-fractions"),
        pytest.param([*SYNTH, "--size", "32", "32"], id="synth-size"),
        pytest.param([*DEMO, "--device", "tpu"], id="demo-device"),
        pytest.param(["convert-nyu", "{checkpoint}", _OUT], id="convert-not-published"),
    ],
)
def test_refused_before_anything_is_written(
    argv: list[str], inputs: Inputs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    result = run_command([_fill(arg, tmp_path, inputs) for arg in argv], capsys)
    assert result.status == 2 and len(result.err) == 1, result.err
    assert sorted(tmp_path.iterdir()) == []  # the output (folder or file) was not created


# ------------------------------------------------------------------------------------------------------------
# infer on a datalist with bad images: the good items are processed, failures.json names each bad file
# ------------------------------------------------------------------------------------------------------------


def _text_as_png(folder: Path, good: Inputs) -> Path:
    path = folder / "text.png"
    path.write_text("a radiology report, not an image\n")
    return path


def _truncated_png(folder: Path, good: Inputs) -> Path:
    data = Path(good.test[0]["image"]).read_bytes()
    path = folder / "truncated.png"
    path.write_bytes(data[: len(data) // 2])
    return path


def _rgb_png(folder: Path, good: Inputs) -> Path:
    path = folder / "rgb.png"
    Image.fromarray(np.full((256, 160, 3), 90, dtype=np.uint8)).save(path)
    return path


def _empty_dicom(folder: Path, good: Inputs) -> Path:
    path = folder / "empty.dcm"
    path.write_bytes(b"")
    return path


def _directory(folder: Path, good: Inputs) -> Path:
    path = folder / "folder.png"
    path.mkdir()
    return path


@pytest.mark.parametrize(
    ("make_bad", "problem"),
    [
        pytest.param(_text_as_png, "corrupt, truncated or unsupported image file", id="text-named-png"),
        pytest.param(_truncated_png, "corrupt, truncated or unsupported image file", id="truncated-png"),
        pytest.param(_rgb_png, "colour image (mode RGB)", id="rgb-png"),
        pytest.param(_empty_dicom, "empty file (0 bytes)", id="zero-byte-dicom"),
        pytest.param(_directory, "is a directory, not an image file", id="directory"),
    ],
)
def test_infer_lists_bad_images_and_processes_the_others(
    make_bad: Callable[[Path, Inputs], Path],
    problem: str,
    inputs: Inputs,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    bad = make_bad(tmp_path, inputs)
    good_items = [{"image": item["image"]} for item in inputs.test[:2]]
    datalist = tmp_path / "d.json"
    datalist.write_text(json.dumps({"test": [good_items[0], {"image": str(bad)}, good_items[1]]}))
    out = tmp_path / "out"
    argv = ["infer", "--datalist", str(datalist), "--checkpoint", str(inputs.checkpoint), "--output", str(out)]
    result = run_command([*argv, "--formats", "png", "--no-overlays", "--no-progress"], capsys)
    # Exit status 1 when some items failed (monai_glam.apps.arguments.report_summary, documented in infer --help).
    assert result.status == 1, result.err
    assert not any("Traceback" in line for line in result.err)
    predictions, _ = read_predictions(out / "predictions.csv")
    assert [p.image_id for p in predictions] == [Path(item["image"]).stem for item in good_items]
    failures = json.loads((out / "failures.json").read_text())
    assert [(f["index"], f["image"], f["stage"]) for f in failures] == [(1, str(bad), "read")]
    assert f"{bad}: {problem}" in failures[0]["error"]
    assert f"see {out / 'failures.json'}" in result.out


# ------------------------------------------------------------------------------------------------------------
# Inputs that must work
# ------------------------------------------------------------------------------------------------------------


def _csv_datalist_with_bom(folder: Path, good: Inputs) -> list[str]:
    path = folder / "list.csv"
    rows = [f"{item['image']},test" for item in good.test[:2]] + [f"{good.training[0]['image']},training"]
    path.write_bytes(("image,split\n" + "\n".join(rows) + "\n").encode("utf-8-sig"))  # Excel's "CSV UTF-8"
    return ["--datalist", str(path)]


def _json_datalist_with_bom(folder: Path, good: Inputs) -> list[str]:
    path = folder / "list.json"
    path.write_bytes(json.dumps({"test": [item["image"] for item in good.test[:2]]}).encode("utf-8-sig"))
    return ["--datalist", str(path)]


def _dicom_with_malformed_spacing(folder: Path, good: Inputs) -> list[str]:
    pixels = load_mammogram(good.test[0]["image"])[0].numpy().astype(np.uint16)
    path = folder / "spacing.dcm"
    write_dicom_mammogram(path, build_mammogram_dataset(pixels, "L", "CC"))
    raw = set_decimal_string(path.read_bytes(), 0x0018, 0x1164, "a\\b")  # ImagerPixelSpacing
    path.write_bytes(set_decimal_string(raw, 0x0028, 0x0030, "0.1"))  # PixelSpacing: a single value
    return ["--images", str(path)]


@pytest.mark.parametrize(
    ("make", "count", "warns"),
    [
        pytest.param(_csv_datalist_with_bom, 2, (), id="csv-datalist-with-bom"),
        pytest.param(
            _json_datalist_with_bom,
            2,
            (),
            id="json-datalist-with-bom",
        ),
        pytest.param(
            _dicom_with_malformed_spacing,
            1,
            ("tag ImagerPixelSpacing is 'a\\b', not two numbers", "tag PixelSpacing is '0.1', not two numbers"),
            id="dicom-malformed-pixel-spacing",
        ),
    ],
)
def test_inputs_that_must_work(
    make: Callable[[Path, Inputs], list[str]],
    count: int,
    warns: tuple[str, ...],
    inputs: Inputs,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    source = make(tmp_path, inputs)
    out = tmp_path / "out"
    argv = ["infer", *source, "--checkpoint", str(inputs.checkpoint), "--output", str(out)]
    result = run_command([*argv, "--formats", "nifti", "--no-overlays", "--no-progress"], capsys)
    assert result.status == 0, result.err
    predictions, _ = read_predictions(out / "predictions.csv")
    assert len(predictions) == count
    assert json.loads((out / "failures.json").read_text()) == []
    for text in warns:
        assert any(text in line and source[-1] in line for line in result.err), result.err


@pytest.mark.parametrize(
    ("argv", "error"),
    [
        pytest.param([*TRAIN, "--datalist", "{tmp}/d.json"], "training split of {tmp}/d.json: all 4 items", id="train"),
        pytest.param([*INFER, "--datalist", "{tmp}/d.json"], "no image could be processed", id="infer"),
    ],
)
def test_an_all_unreadable_split_reports_each_file_then_one_error(
    argv: list[str], error: str, inputs: Inputs, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Every bad item is reported (one line naming its file, as in a mixed split), then one error line."""
    _all_unreadable("d.json")(tmp_path, inputs)
    filled = [_fill(arg, tmp_path, inputs) for arg in argv]
    result = run_command(filled, capsys)
    shown = "\n".join(result.err)
    assert "Traceback" not in shown and "Traceback" not in result.out, shown + result.out
    assert result.status == 2, shown
    *reports, last = result.err
    assert last.startswith(_prefix(filled)) and _fill(error, tmp_path, inputs) in last, last
    assert len(reports) == 4 and all("skipping item" in line and "not_an_image_" in line for line in reports), shown
