"""The MONAI Label app folder that ``monai-glam monailabel init`` writes (no MONAI Label import).

Layout::

    DIR/main.py                        imports GLAMLabelApp, which MONAI Label finds there
    DIR/model/glam/model.pt            the served weights, a plain GLAM state dict
    DIR/model/glam/model_config.json   the GLAM arguments, preprocessing and thresholds they need

The folder must be writable by the server: ``monailabel start_server`` creates ``lib/``, ``logs/`` and ``bin/`` in
it, and training writes ``model/glam/runs/`` and replaces ``model.pt`` and ``model_config.json``. That is why the
app is written into a folder of the user's rather than shipped inside the package.
"""

from __future__ import annotations

import os
from pathlib import Path

from monai_glam.handlers.last_checkpoint import write_checkpoint
from monai_glam.networks.io import MODEL_CONFIG_NAME, load_model, resolve_model_config, save_model_config
from monai_glam.utils.atomic import atomic_write_text
from monai_glam.utils.output_folder import check_output_folder

__all__ = ["APP_MODEL_DIR", "CHECKPOINT_NAME", "MAIN_PY", "init_label_app"]

#: The app's model folder, relative to the app folder.
APP_MODEL_DIR = Path("model") / "glam"
#: The served checkpoint's file name in :data:`APP_MODEL_DIR`.
CHECKPOINT_NAME = "model.pt"
#: ``main.py`` of the app: MONAI Label imports it and takes the class whose direct base is ``MONAILabelApp``.
MAIN_PY = (
    '"""MONAI Label app serving GLAM (written by `monai-glam monailabel init`; see docs/monailabel.md)."""\n'
    "\n"
    "from monai_glam.integrations.monailabel import GLAMLabelApp  # noqa: F401  (MONAI Label finds the app here)\n"
)


def init_label_app(
    folder: str | os.PathLike[str],
    checkpoint: str | os.PathLike[str],
    model_config: str | os.PathLike[str] | None = None,
    overwrite: bool = False,
) -> dict[str, Path]:
    """Write a ready MONAI Label app folder serving ``checkpoint``.

    The checkpoint is loaded first (:func:`~monai_glam.networks.io.load_model`, with ``model_config`` or the
    ``model_config.json`` beside it, else the paper's GLAM), so a checkpoint that does not fit its configuration
    is refused here rather than when the server starts. Its weights are saved as a plain GLAM state dict
    (whatever the source layout: training checkpoint, state dict, published NYU checkpoint) together with the
    resolved model config; both are written atomically.

    Args:
        folder: the app folder (created).
        checkpoint: the weights to serve.
        model_config: their model config; default ``model_config.json`` beside the checkpoint.
        overwrite: write into a folder that already holds files (``main.py`` and the model are replaced; other
            files, e.g. earlier training runs, are kept).

    Returns:
        ``{"app": folder, "main": main.py, "checkpoint": model.pt, "model_config": model_config.json}``.

    Raises:
        ValueError: ``folder`` holds files and ``overwrite`` is false, or an unreadable checkpoint or config.
        FileNotFoundError: no such checkpoint or model config.
    """
    app = Path(folder)
    check_output_folder(app, overwrite, option="DIR")
    config = resolve_model_config(checkpoint, model_config)
    model = load_model(checkpoint, config, device="cpu")
    model_dir = app / APP_MODEL_DIR
    model_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "app": app,
        "main": app / "main.py",
        "checkpoint": model_dir / CHECKPOINT_NAME,
        "model_config": model_dir / MODEL_CONFIG_NAME,
    }
    # The config first: a server already running on this folder reloads when the checkpoint changes.
    save_model_config(paths["model_config"], config.glam, config.preprocessing or None, config.thresholds)
    write_checkpoint(model.state_dict(), paths["checkpoint"])
    atomic_write_text(paths["main"], MAIN_PY)
    return paths
