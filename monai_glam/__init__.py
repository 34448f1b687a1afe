"""monai_glam: GLAM weakly-supervised high-resolution mammogram segmentation for MONAI.

GLAM (Global-Local Activation Maps) was introduced in Liu et al., "Weakly-supervised High-resolution
Segmentation of Mammography Images for Breast Cancer Diagnosis", MIDL 2021 (arXiv:2106.07049).
"""

from __future__ import annotations

__version__ = "0.1.0"

__all__ = ["__version__"]
