"""Visualisation of GLAM inputs, patch boxes, saliency maps and ground-truth contours."""

from __future__ import annotations

from monai_glam.visualize.overlay import CONTOUR_COLOURS, mask_contours, render_saliency_panel

__all__ = ["CONTOUR_COLOURS", "mask_contours", "render_saliency_panel"]
