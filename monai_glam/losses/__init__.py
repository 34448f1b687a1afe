"""Weak multiple-instance-learning losses for GLAM."""

from __future__ import annotations

from monai_glam.losses.glam_loss import GLAMLoss, GLAMLossTerms

__all__ = ["GLAMLoss", "GLAMLossTerms"]
