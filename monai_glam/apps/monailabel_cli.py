"""``monai-glam monailabel init DIR --checkpoint C``: write a MONAI Label app folder serving GLAM.

Argument parsing only: the folder is written by :func:`monai_glam.integrations.init_label_app`. Nothing here
imports MONAI Label, so the command runs in any environment (the server then runs in MONAI Label's own).
"""

from __future__ import annotations

import argparse
import shlex
from typing import Any

__all__ = ["add_parser"]


def add_parser(subparsers: Any) -> argparse.ArgumentParser:
    """Register ``monailabel`` (with its action ``init``) on the ``monai-glam`` command line."""
    parser = subparsers.add_parser(
        "monailabel",
        help="serve GLAM to MONAI Label clients (3D Slicer, CVAT, HTTP): write the app folder",
        description=(
            "GLAM as a MONAI Label app. 'init' writes an app folder; start it with MONAI Label's own command in the "
            "environment where monai_glam[monailabel] is installed (see docs/monailabel.md)."
        ),
    )
    actions = parser.add_subparsers(dest="monailabel_action", metavar="ACTION")
    actions.required = True
    init = actions.add_parser(
        "init",
        help="write a MONAI Label app folder serving a GLAM checkpoint",
        description=(
            "Write DIR/main.py (importing monai_glam's GLAMLabelApp) and DIR/model/glam/model.pt with its "
            "model_config.json. The checkpoint is loaded first, so weights that do not fit their model config are "
            "refused here. DIR must be writable by the server (it adds lib/, logs/, bin/ and training runs)."
        ),
    )
    init.add_argument("dir", metavar="DIR", help="the app folder (created; refused when it holds files)")
    init.add_argument(
        "--checkpoint",
        required=True,
        help="weights: last.pt/best.pt, a GLAM state dict, or a published NYU .ckpt (detected from its keys)",
    )
    init.add_argument(
        "--model-config",
        help="JSON of GLAM arguments (default: model_config.json beside the checkpoint, else the paper's GLAM)",
    )
    init.add_argument(
        "--overwrite",
        action="store_true",
        help="DIR holds files: replace main.py and the model, keep the rest (default: refuse)",
    )
    init.set_defaults(func=_run_init)
    return parser


def _run_init(args: argparse.Namespace) -> int:
    from monai_glam.integrations.app_folder import init_label_app

    paths = init_label_app(args.dir, args.checkpoint, args.model_config, overwrite=args.overwrite)
    app = shlex.quote(str(paths["app"]))
    print(f"wrote the MONAI Label app {paths['app']} serving {paths['checkpoint']} ({paths['model_config'].name})")
    print(f"start it: monailabel start_server --app {app} --studies IMAGES --host 127.0.0.1 --port 8000")
    return 0
