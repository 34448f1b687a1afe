"""GLAM as a MONAI Label app: ``GLAMLabelApp`` with the ``glam`` and ``glam_classification`` infer models and a
``glam`` train task on image-level labels (see docs/monailabel.md).

This subpackage is the only code of monai_glam that imports ``monailabel``, an optional dependency whose pins
(numpy 1.26, pydicom 2.4) differ from the main environment's: install it in its own virtual environment with
``pip install torch==2.13.0 "monai_glam[monailabel]"`` then ``pip install --no-deps monailabel==0.8.5``.
Supported: MONAI Label 0.8.5. Importing this package without MONAI Label raises a one-line ``ImportError`` saying
so; another 0.8.x release gives a warning, any other release an ``ImportError``.

An app folder written by ``monai-glam monailabel init DIR --checkpoint C`` has a ``main.py`` that imports
:class:`GLAMLabelApp`; ``monailabel start_server --app DIR --studies IMAGES --host 127.0.0.1`` serves it.
"""

from __future__ import annotations

import warnings

from monai.utils import optional_import

__all__ = ["INSTALL_HINT", "SUPPORTED_MONAILABEL", "GLAMLabelApp", "check_monailabel"]

#: The MONAI Label release this integration is written and tested against.
SUPPORTED_MONAILABEL = "0.8.5"
#: How to install it (one line).
INSTALL_HINT = (
    'pip install torch==2.13.0 "monai_glam[monailabel]" && pip install --no-deps monailabel==0.8.5, in a virtual '
    "environment of its own (docs/monailabel.md)"
)


def check_monailabel() -> str:
    """The installed MONAI Label version, checked against :data:`SUPPORTED_MONAILABEL`.

    Raises:
        ImportError: MONAI Label is missing, does not import, or is not a 0.8 release (one line each).
    """
    monailabel, found = optional_import("monailabel")
    if not found:
        raise ImportError(
            f"monai_glam.integrations.monailabel needs MONAI Label {SUPPORTED_MONAILABEL}, which is not installed: "
            f"{INSTALL_HINT}"
        )
    version = str(getattr(monailabel, "__version__", "unknown"))
    if version.split("+")[0].split(".")[:2] != SUPPORTED_MONAILABEL.split(".")[:2]:
        raise ImportError(
            f"monai_glam.integrations.monailabel supports MONAI Label {SUPPORTED_MONAILABEL}, found {version}: "
            f"{INSTALL_HINT}"
        )
    if version.split("+")[0] != SUPPORTED_MONAILABEL:
        warnings.warn(
            f"monai_glam.integrations.monailabel is tested with MONAI Label {SUPPORTED_MONAILABEL}, found {version}",
            RuntimeWarning,
            stacklevel=2,
        )
    # The app module pulls in MONAI Label's datastores, which fail on pydicom 3 (pydicom-seg) among others.
    _, usable = optional_import("monailabel.interfaces.app")
    if not usable:
        raise ImportError(
            f"MONAI Label {version} is installed but monailabel.interfaces.app does not import (its pins: numpy 1.26, "
            f"pydicom 2.4.4, pynetdicom<3); {INSTALL_HINT}"
        )
    return version


check_monailabel()

from monai_glam.integrations.monailabel.app import GLAMLabelApp  # noqa: E402  (after the check, on purpose)
