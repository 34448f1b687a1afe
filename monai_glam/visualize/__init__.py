"""Visualisation of GLAM inputs, patch boxes and saliency maps."""

from __future__ import annotations

from monai_glam.visualize.overlay import render_saliency_panel

__all__ = ["render_saliency_panel"]
