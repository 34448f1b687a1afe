"""Synthetic mammograms with ground-truth lesion masks, for tests, demonstrations and benchmarks.

No public mammography data can be downloaded on the project's machines, so this module draws images that have
what the GLAM pipeline cares about:

- a breast silhouette with a skin line and a thickness fall-off towards the skin, fatty background and
  fibroglandular texture from power-law (1/f^beta) noise, a pectoral muscle on MLO views;
- benign lesions (circumscribed round or oval masses) and malignant ones (spiculated masses and clusters of
  fine calcifications), with configurable size and contrast, and a ground-truth mask per class;
- image-level labels ``[benign, malignant]`` shared by both views of a breast (each lesion is drawn in both);
- raw orientation and value range like the NYU data: 12-bit values in 16-bit PNGs, background exactly 0,
  L views facing right and R views facing left, masks in the same raw geometry, and sometimes a detached
  bright marker that the breast crop must ignore.

Everything is deterministic per ``seed``: image ``i`` depends only on ``seed`` and ``i``.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from monai_glam import __version__
from monai_glam.data.datalist import split_by_patient, write_datalist
from monai_glam.data.dicom import build_mammogram_dataset, write_dicom_mammogram
from monai_glam.data.image_writer import write_png

__all__ = [
    "EXAM_VIEWS",
    "MIN_SIZE",
    "Lesion",
    "SyntheticMammogram",
    "SyntheticMammogramGenerator",
    "power_law_noise",
    "synthetic_dicom_dataset",
    "write_synthetic_dataset",
]

# The four screening views of an exam, in the order images are generated.
EXAM_VIEWS = (("L", "CC"), ("L", "MLO"), ("R", "CC"), ("R", "MLO"))
#: The smallest (H, W) image the generator draws.
MIN_SIZE = (64, 48)
_LESION_KINDS = ("mass", "spiculated", "calcifications")
_FIELD_OF_VIEW_MM = 270.0  # detector height the image rows span; sets the pixel spacing


def power_law_noise(rng: np.random.Generator, shape: Sequence[int], beta: float) -> np.ndarray:
    """Gaussian noise with power spectrum ``1 / f**beta`` (beta ~ 3 looks like breast tissue), zero mean, unit std.

    Args:
        rng: random generator.
        shape: (H, W).
        beta: spectral exponent; 0 is white noise, larger is smoother.

    Returns:
        (H, W) float64 array.
    """
    height, width = int(shape[0]), int(shape[1])
    spectrum = np.fft.rfft2(rng.standard_normal((height, width)))
    frequency = np.hypot(np.fft.fftfreq(height)[:, None], np.fft.rfftfreq(width)[None, :])
    frequency[0, 0] = 1.0 / max(height, width)  # keep the mean finite
    noise = np.fft.irfft2(spectrum * frequency ** (-beta / 2.0), s=(height, width))
    noise -= noise.mean()
    return noise / max(float(noise.std()), 1e-12)


@dataclass(frozen=True)
class Lesion:
    """One lesion of a breast, in view-independent coordinates.

    Attributes:
        kind: ``"mass"`` (benign, circumscribed), ``"spiculated"`` or ``"calcifications"`` (malignant).
        depth: position from the chest wall (0) to the nipple (1).
        lateral: position across the breast, -1 to 1 (the CC and MLO projections place it differently).
        radius: size as a fraction of the image height.
        contrast: added intensity (the tissue spans about 0 to 1).
        aspect: minor/major axis ratio of a mass.
        angle: orientation in radians.
        shape_seed: seeds the lesion's own irregularity, the same in both views.
    """

    kind: str
    depth: float
    lateral: float
    radius: float
    contrast: float
    aspect: float
    angle: float
    shape_seed: int

    @property
    def malignant(self) -> bool:
        return self.kind != "mass"


@dataclass(frozen=True)
class SyntheticMammogram:
    """A generated mammogram in raw orientation.

    Attributes:
        image: (H, W) uint16, values in ``[0, 2**bits - 1]``, background 0.
        mask_benign: (H, W) bool, benign lesions.
        mask_malignant: (H, W) bool, malignant lesions.
        label: ``(benign, malignant)`` image-level labels (0/1).
        laterality: ``"L"`` or ``"R"``.
        view: ``"CC"`` or ``"MLO"``.
        spacing: (row, col) pixel spacing in mm.
        exam: exam index (the synthetic patient).
        index: image index within the whole generated set.
    """

    image: np.ndarray
    mask_benign: np.ndarray
    mask_malignant: np.ndarray
    label: tuple[int, int]
    laterality: str
    view: str
    spacing: tuple[float, float]
    exam: int
    index: int

    @property
    def name(self) -> str:
        """File stem in the NYU convention, e.g. ``3_L-MLO``."""
        return f"{self.exam}_{self.laterality}-{self.view}"


def _check_range(name: str, value: Sequence[float], low: float, high: float) -> tuple[float, float]:
    pair = (float(value[0]), float(value[1])) if len(value) == 2 else None
    if pair is None or not low <= pair[0] <= pair[1] <= high:
        raise ValueError(f"{name} must be (min, max) with {low} <= min <= max <= {high}, got {value!r}")
    return pair


def _check_probability(name: str, value: float) -> float:
    if not 0.0 <= float(value) <= 1.0:
        raise ValueError(f"{name} must be in [0, 1], got {value}")
    return float(value)


@dataclass(frozen=True)
class _Silhouette:
    """Breast outline in the canonical right-facing frame (chest wall at column 0)."""

    extent: float  # columns from the chest wall to the nipple
    center_row: float
    half_height: float

    def lesion_center(self, lesion: Lesion, view: str) -> tuple[float, float]:
        column = lesion.depth * self.extent
        # Across the breast the available half-height shrinks towards the nipple; MLO projects the lesion
        # mirrored and shifted relative to CC, as the oblique beam does.
        across = lesion.lateral if view == "CC" else float(np.clip(-0.8 * lesion.lateral + 0.15, -1.0, 1.0))
        room = self.half_height * np.sqrt(max(1.0 - lesion.depth**2, 0.05)) * 0.75
        return self.center_row + across * room, column


class SyntheticMammogramGenerator:
    """Draws synthetic screening exams (L-CC, L-MLO, R-CC, R-MLO) with lesions and masks.

    Sizes are fractions of the image height so the same settings work from 256x160 to 2944x1920.

    Args:
        size: (H, W) of each raw image, at least 64x48.
        seed: base seed; image ``i`` depends only on ``seed`` and ``i``.
        benign_probability: chance that a breast has a benign mass.
        malignant_probability: chance that a breast has a malignant lesion.
        calcification_fraction: share of malignant lesions that are calcification clusters (else spiculated masses).
        benign_radius: (min, max) mass radius as a fraction of the image height.
        malignant_radius: (min, max) radius of spiculated cores and calcification clusters.
        benign_contrast: (min, max) added intensity of benign masses (tissue spans about 0..1).
        malignant_contrast: (min, max) added intensity of spiculated masses.
        calcification_contrast: (min, max) added intensity of single calcifications.
        marker_probability: chance of a detached bright marker in a corner (the crop must ignore it).
        bits: significant bits of the output values (12 like the NYU data).
    """

    def __init__(
        self,
        size: Sequence[int] = (512, 320),
        seed: int = 0,
        benign_probability: float = 0.5,
        malignant_probability: float = 0.5,
        calcification_fraction: float = 0.4,
        benign_radius: Sequence[float] = (0.03, 0.055),
        malignant_radius: Sequence[float] = (0.025, 0.045),
        benign_contrast: Sequence[float] = (0.12, 0.2),
        malignant_contrast: Sequence[float] = (0.14, 0.22),
        calcification_contrast: Sequence[float] = (0.35, 0.5),
        marker_probability: float = 0.5,
        bits: int = 12,
    ) -> None:
        if len(size) != 2 or int(size[0]) < MIN_SIZE[0] or int(size[1]) < MIN_SIZE[1]:
            raise ValueError(f"size must be (H, W) with H >= {MIN_SIZE[0]} and W >= {MIN_SIZE[1]}, got {size!r}")
        if not 8 <= int(bits) <= 16:
            raise ValueError(f"bits must be in 8..16, got {bits}")
        self.size = (int(size[0]), int(size[1]))
        self.seed = int(seed)
        self.benign_probability = _check_probability("benign_probability", benign_probability)
        self.malignant_probability = _check_probability("malignant_probability", malignant_probability)
        self.calcification_fraction = _check_probability("calcification_fraction", calcification_fraction)
        self.benign_radius = _check_range("benign_radius", benign_radius, 0.005, 0.2)
        self.malignant_radius = _check_range("malignant_radius", malignant_radius, 0.005, 0.2)
        self.benign_contrast = _check_range("benign_contrast", benign_contrast, 0.0, 1.0)
        self.malignant_contrast = _check_range("malignant_contrast", malignant_contrast, 0.0, 1.0)
        self.calcification_contrast = _check_range("calcification_contrast", calcification_contrast, 0.0, 1.0)
        self.marker_probability = _check_probability("marker_probability", marker_probability)
        self.bits = int(bits)
        self.spacing = (_FIELD_OF_VIEW_MM / self.size[0], _FIELD_OF_VIEW_MM / self.size[0])

    # ----------------------------------------------------------------------------------------------------------
    # what a breast holds

    def breast_lesions(self, exam: int, laterality: str) -> list[Lesion]:
        """The lesions of one breast; both of its views show them."""
        rng = np.random.default_rng([self.seed, exam, 1 if laterality == "L" else 2])
        lesions = []
        if rng.random() < self.benign_probability:
            lesions.append(self._draw_lesion(rng, "mass", self.benign_radius, self.benign_contrast))
        if rng.random() < self.malignant_probability:
            if rng.random() < self.calcification_fraction:
                malignant = self._draw_lesion(rng, "calcifications", self.malignant_radius, self.calcification_contrast)
            else:
                malignant = self._draw_lesion(rng, "spiculated", self.malignant_radius, self.malignant_contrast)
            if lesions and abs(lesions[0].lateral - malignant.lateral) < 0.6:
                # Keep the two lesions apart so each mask outlines one lesion.
                side = -1.0 if lesions[0].lateral > 0 else 1.0
                malignant = _replace(malignant, lateral=side * max(abs(malignant.lateral), 0.4))
            lesions.append(malignant)
        return lesions

    @staticmethod
    def _draw_lesion(
        rng: np.random.Generator, kind: str, radius: tuple[float, float], contrast: tuple[float, float]
    ) -> Lesion:
        return Lesion(
            kind=kind,
            depth=float(rng.uniform(0.3, 0.75)),
            lateral=float(rng.uniform(-0.7, 0.7)),
            radius=float(rng.uniform(*radius)),
            contrast=float(rng.uniform(*contrast)),
            aspect=float(rng.uniform(0.6, 1.0)),
            angle=float(rng.uniform(0.0, np.pi)),
            shape_seed=int(rng.integers(2**31)),
        )

    # ----------------------------------------------------------------------------------------------------------
    # drawing

    def generate(self, num: int) -> Iterator[SyntheticMammogram]:
        """Yield ``num`` images: exam 0's four views, then exam 1's, …"""
        if int(num) < 1:
            raise ValueError(f"num must be >= 1, got {num}")
        for index in range(int(num)):
            yield self.image(index)

    def image(self, index: int) -> SyntheticMammogram:
        """Image ``index`` of the set (exam ``index // 4``, view ``EXAM_VIEWS[index % 4]``)."""
        if index < 0:
            raise ValueError(f"index must be >= 0, got {index}")
        exam, (laterality, view) = index // 4, EXAM_VIEWS[index % 4]
        lesions = self.breast_lesions(exam, laterality)
        rng = np.random.default_rng([self.seed, exam, 10 + index % 4])
        image, benign, malignant = self._render(rng, view, lesions)
        if laterality == "R":  # raw R views face left
            image, benign, malignant = image[:, ::-1].copy(), benign[:, ::-1].copy(), malignant[:, ::-1].copy()
        label = (int(any(not lesion.malignant for lesion in lesions)), int(any(lesion.malignant for lesion in lesions)))
        return SyntheticMammogram(image, benign, malignant, label, laterality, view, self.spacing, exam, index)

    def _render(self, rng: np.random.Generator, view: str, lesions: list[Lesion]) -> tuple[np.ndarray, ...]:
        height, width = self.size
        rows = np.arange(height, dtype=np.float64)[:, None]
        cols = np.arange(width, dtype=np.float64)[None, :]
        if view == "CC":
            outline = _Silhouette(width * rng.uniform(0.6, 0.8), height * rng.uniform(0.46, 0.54), height * 0.4)
        else:  # MLO: taller, reaching the top edge (axilla)
            outline = _Silhouette(width * rng.uniform(0.6, 0.8), height * rng.uniform(0.44, 0.5), height * 0.52)
        breast = self._breast_mask(rng, outline, rows, cols)
        depth_in = ndimage.distance_transform_edt(breast)
        # Compressed breasts thin out towards the skin, and the skin itself is a thin brighter line.
        thickness = 1.0 - np.exp(-depth_in / (0.05 * width))
        skin_width = max(1.0, 0.004 * height)
        skin = np.exp(-(((depth_in - 0.5 * skin_width) / skin_width) ** 2))

        envelope = np.exp(
            -(((cols / outline.extent - 0.4) ** 2) / 0.12 + ((rows - outline.center_row) / outline.half_height) ** 2)
        )
        density = 1.0 / (1.0 + np.exp(-(1.6 * power_law_noise(rng, self.size, 3.0) + 3.0 * envelope - 1.6)))
        tissue = thickness * (0.3 + 0.32 * density) + 0.025 * power_law_noise(rng, self.size, 1.5)
        tissue += 0.12 * skin
        if view == "MLO":
            tissue += self._pectoral(rng, rows, cols) * (0.3 + 0.03 * power_law_noise(rng, self.size, 2.0))

        benign = np.zeros(self.size, dtype=bool)
        malignant = np.zeros(self.size, dtype=bool)
        for lesion in lesions:
            center = self._place(outline, lesion, view, depth_in)
            signal, mask = self._draw(lesion, center)
            tissue += signal
            (malignant if lesion.malignant else benign)[...] |= mask & breast
        tissue += 0.008 * rng.standard_normal(self.size)  # quantum noise

        top = 2**self.bits - 1
        image = np.where(breast, np.clip(np.rint(np.clip(tissue, 0.0, 1.0) * top), 1, top), 0).astype(np.uint16)
        if rng.random() < self.marker_probability:
            self._add_marker(rng, image, breast)
        return image, benign, malignant

    def _breast_mask(self, rng: np.random.Generator, outline: _Silhouette, rows: np.ndarray, cols: np.ndarray):
        height = self.size[0]
        relative = (rows[:, 0] - outline.center_row) / outline.half_height
        profile = np.sqrt(np.clip(1.0 - relative**2, 0.0, None)) ** 0.7
        # A few low harmonics make every outline a little different.
        phase = rng.uniform(0, 2 * np.pi, 3)
        wobble = sum(0.025 * np.sin((k + 2) * np.pi * rows[:, 0] / height + phase[k]) for k in range(3))
        edge = outline.extent * profile * (1.0 + wobble)
        return cols < edge[:, None]

    def _pectoral(self, rng: np.random.Generator, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Soft-edged triangle of muscle in the upper chest-wall corner of an MLO view."""
        height, width = self.size
        top_width, muscle_height = width * rng.uniform(0.22, 0.35), height * rng.uniform(0.35, 0.55)
        boundary = top_width * (1.0 - rows / muscle_height)
        return 1.0 / (1.0 + np.exp(-(boundary - cols) / max(1.0, 0.004 * width)))

    def _place(self, outline: _Silhouette, lesion: Lesion, view: str, margin: np.ndarray) -> tuple[float, float]:
        """Lesion center inside the breast (``margin``: distance to the skin), moved inwards until the lesion fits."""
        height = self.size[0]
        radius = lesion.radius * height * (2.0 if lesion.kind == "spiculated" else 1.2)
        if view == "MLO":  # keep clear of the pectoral muscle in the upper chest-wall corner
            lesion = _replace(lesion, depth=max(lesion.depth, 0.45))
        row, col = outline.lesion_center(lesion, view)
        for _ in range(20):
            r, c = int(np.clip(round(row), 0, height - 1)), int(np.clip(round(col), 0, self.size[1] - 1))
            if margin[r, c] > radius:
                break
            row += 0.15 * (outline.center_row - row)
            col += 0.15 * (0.45 * outline.extent - col)
        return row, col

    def _draw(self, lesion: Lesion, center: tuple[float, float]) -> tuple[np.ndarray, np.ndarray]:
        """Intensity added by the lesion and its ground-truth mask, both (H, W)."""
        height, width = self.size
        rng = np.random.default_rng(lesion.shape_seed)
        radius = max(lesion.radius * height, 2.0)
        reach = radius * (3.2 if lesion.kind == "spiculated" else 1.6) + 3
        top, left = max(int(center[0] - reach), 0), max(int(center[1] - reach), 0)
        bottom, right = min(int(center[0] + reach) + 1, height), min(int(center[1] + reach) + 1, width)
        dy = np.arange(top, bottom, dtype=np.float64)[:, None] - center[0]
        dx = np.arange(left, right, dtype=np.float64)[None, :] - center[1]
        if lesion.kind == "mass":
            local_signal, local_mask = _circumscribed_mass(lesion, radius, dy, dx)
        elif lesion.kind == "spiculated":
            local_signal, local_mask = _spiculated_mass(rng, lesion, radius, dy, dx)
        else:
            local_signal, local_mask = _calcification_cluster(rng, lesion, radius, height, dy, dx)
        signal = np.zeros(self.size)
        mask = np.zeros(self.size, dtype=bool)
        signal[top:bottom, left:right] = local_signal
        mask[top:bottom, left:right] = local_mask
        return signal, mask

    def _add_marker(self, rng: np.random.Generator, image: np.ndarray, breast: np.ndarray) -> None:
        """A bright rectangle (like a lead view marker) in the nipple-side corner, when it is clear of the breast."""
        height, width = self.size
        marker_h, marker_w = max(3, int(0.03 * height)), max(3, int(0.08 * width))
        top = int(rng.uniform(0.02, 0.08) * height) if rng.random() < 0.5 else height - marker_h - 4
        left = width - marker_w - max(2, int(0.03 * width))
        guard = 6
        region = breast[max(top - guard, 0) : top + marker_h + guard, max(left - guard, 0) : left + marker_w + guard]
        if not region.any():
            image[top : top + marker_h, left : left + marker_w] = 2**self.bits - 1


def _replace(lesion: Lesion, **changes: Any) -> Lesion:
    return Lesion(**{**lesion.__dict__, **changes})


def _rotated(lesion: Lesion, dy: np.ndarray, dx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    cos, sin = np.cos(lesion.angle), np.sin(lesion.angle)
    return dx * cos + dy * sin, -dx * sin + dy * cos


def _circumscribed_mass(lesion: Lesion, radius: float, dy: np.ndarray, dx: np.ndarray):
    """Round or oval mass with a sharp (circumscribed) margin and a slightly domed inside."""
    along, across = _rotated(lesion, dy, dx)
    rho = np.sqrt((along / radius) ** 2 + (across / (radius * lesion.aspect)) ** 2)
    edge = 1.0 / (1.0 + np.exp(-(1.0 - rho) * radius / 0.8))  # about one pixel wide
    signal = lesion.contrast * edge * (0.85 + 0.15 * np.clip(1.0 - rho**2, 0.0, 1.0))
    return signal, rho <= 1.0


def _spiculated_mass(rng: np.random.Generator, lesion: Lesion, radius: float, dy: np.ndarray, dx: np.ndarray):
    """Irregular core with an ill-defined margin and thin spicules radiating from it."""
    theta = np.arctan2(dy, dx)
    distance = np.hypot(dy, dx)
    boundary = np.ones_like(theta)
    for k in range(3, 8):
        boundary += 0.18 / (k - 2) * np.cos(k * theta + rng.uniform(0, 2 * np.pi))
    core_radius = radius * boundary
    core = 1.0 / (1.0 + np.exp(-(core_radius - distance) / (0.12 * radius)))
    spicules = np.zeros_like(distance)
    width = max(0.8, 0.07 * radius)
    for angle in rng.uniform(0, 2 * np.pi, int(rng.integers(8, 15))):
        length = radius * rng.uniform(1.6, 3.0)
        along = dx * np.cos(angle) + dy * np.sin(angle)
        across = -dx * np.sin(angle) + dy * np.cos(angle)
        fade = np.clip(1.0 - along / length, 0.0, 1.0) * (along > 0)
        spicules = np.maximum(spicules, fade * np.exp(-((across / width) ** 2)))
    signal = lesion.contrast * np.maximum(core, 0.6 * spicules)
    return signal, (core >= 0.5) | (spicules >= 0.5)


def _calcification_cluster(
    rng: np.random.Generator, lesion: Lesion, radius: float, height: int, dy: np.ndarray, dx: np.ndarray
):
    """A cluster of fine, bright calcifications; the mask outlines each with a small margin."""
    count = int(rng.integers(6, 16))
    dot_radius = max(0.6, 0.0025 * height)
    offsets = rng.normal(0.0, 0.45 * radius, size=(count, 2))
    signal = np.zeros_like(dy + dx)
    mask = np.zeros(signal.shape, dtype=bool)
    for offset_y, offset_x in offsets:
        distance2 = (dy - offset_y) ** 2 + (dx - offset_x) ** 2
        brightness = lesion.contrast * rng.uniform(0.7, 1.0)
        signal = np.maximum(signal, brightness * np.exp(-distance2 / (2.0 * dot_radius**2)))
        mask |= distance2 <= (2.0 * dot_radius + 1.0) ** 2
    return signal, mask


# --------------------------------------------------------------------------------------------------------------
# DICOM copies: Digital Mammography X-Ray Image IOD, "For Presentation" (PS3.3 A.27)

#: CID 4014 "View for Mammography" (PS3.16): SNOMED CT codes of the views the generator draws.
_VIEW_CODES = {"CC": ("399162004", "cranio-caudal"), "MLO": ("399368009", "medio-lateral oblique")}
#: CID 4013 "Anatomic Region for Mammography": the only region a mammogram images.
_BREAST_CODE = ("76752008", "Breast")
#: Study dates are drawn from the five years after this day (a fixed epoch keeps the files reproducible).
_FIRST_STUDY_DAY = date(2015, 1, 5)
#: The generator attributes that decide the pixels (the constructor's arguments), hashed into the UIDs.
_PIXEL_SETTINGS = (
    "size",
    "seed",
    "benign_probability",
    "malignant_probability",
    "calcification_fraction",
    "benign_radius",
    "malignant_radius",
    "benign_contrast",
    "malignant_contrast",
    "calcification_contrast",
    "marker_probability",
    "bits",
)


def _code_item(value: str, meaning: str) -> Any:
    """One Code Sequence Macro item (PS3.3 Table 8.8-1) of a SNOMED CT concept."""
    from pydicom.dataset import Dataset

    item = Dataset()
    item.CodeValue = value
    item.CodingSchemeDesignator = "SCT"
    item.CodeMeaning = meaning
    return item


def _uid_root(generator: SyntheticMammogramGenerator) -> str:
    """Entropy for the UIDs of a generated set: the seed and every setting that changes the pixels.

    A UID names one object forever (PS3.5 chapter 9), so two sets that differ only in size or lesion settings must
    not share UIDs, while regenerating a set with the same settings gives the same UIDs again.
    """
    settings = repr([(name, getattr(generator, name)) for name in _PIXEL_SETTINGS])
    return f"monai_glam-synthetic-{generator.seed}-{hashlib.sha256(settings.encode()).hexdigest()[:16]}"


def _clock(seconds: int) -> str:
    """A DICOM TM value (HHMMSS) of ``seconds`` after midnight."""
    return f"{seconds // 3600:02d}{seconds // 60 % 60:02d}{seconds % 60:02d}"


def _exam_attributes(generator: SyntheticMammogramGenerator, exam: int) -> tuple[dict[str, Any], int]:
    """Patient and General Study values shared by the four views of ``exam`` (one synthetic patient, one study).

    They come from their own random stream (``[seed, exam, 20]``), so the images stay what they were.

    Returns:
        ``(attributes, study_seconds)``: the attributes by keyword, and the study's start in seconds after
        midnight (the views' content times follow it).
    """
    from pydicom.uid import generate_uid

    rng = np.random.default_rng([generator.seed, exam, 20])
    study_day = _FIRST_STUDY_DAY + timedelta(days=int(rng.integers(0, 5 * 365)))
    birthday = study_day - timedelta(days=int(rng.integers(40 * 365, 75 * 365)))  # the screening age range
    age = study_day.year - birthday.year - ((study_day.month, study_day.day) < (birthday.month, birthday.day))
    seconds = int(rng.integers(8 * 3600, 17 * 3600))  # during opening hours
    attributes = {
        "PatientName": f"SYNTHETIC^{exam:05d}",  # PN: family name ^ given name
        "PatientBirthDate": birthday.strftime("%Y%m%d"),
        "PatientSex": "F",
        "PatientAge": f"{age:03d}Y",
        "StudyInstanceUID": generate_uid(entropy_srcs=[_uid_root(generator), f"exam-{exam}", "study"]),
        "StudyDate": study_day.strftime("%Y%m%d"),
        "StudyTime": _clock(seconds),
        "ReferringPhysicianName": "",  # Type 2: a synthetic study has no referring physician
        "StudyID": str(exam + 1),  # SH (at most 16 characters), like the accession number
        "AccessionNumber": f"SYN{exam:07d}",
        "StudyDescription": "Synthetic screening mammography",
    }
    return attributes, seconds


def synthetic_dicom_dataset(
    sample: SyntheticMammogram,
    generator: SyntheticMammogramGenerator,
    patient_id: str | None = None,
    photometric: str | None = None,
) -> Any:
    """A complete "Digital Mammography X-Ray Image - For Presentation" dataset of a generated image.

    :func:`~monai_glam.data.dicom.build_mammogram_dataset` encodes the pixels, laterality, view and spacing; this
    adds every other Type 1 and Type 2 attribute (and the applicable 1C/2C ones) of the IOD's modules, so
    validators (``dciodvfy``) and DICOM toolkits (``highdicom``) accept the file. The four views of an exam
    share the patient and the study (UID, date, time, ID, accession number); every image is its own series.

    Args:
        sample: a generated image (from ``generator``).
        generator: the generator that drew it (its seed and settings make the UIDs).
        patient_id: PatientID; default ``synthetic-<exam>`` as in the datalist.
        photometric: ``"MONOCHROME2"`` or ``"MONOCHROME1"``; default MONOCHROME1 for odd image indices.

    Returns:
        A ``pydicom.dataset.FileDataset`` for :func:`~monai_glam.data.dicom.write_dicom_mammogram`.
    """
    from pydicom.sequence import Sequence as DicomSequence

    if photometric is None:
        photometric = "MONOCHROME1" if sample.index % 2 else "MONOCHROME2"
    view_number = sample.index % len(EXAM_VIEWS)  # 0..3: the view's place in its exam
    dataset = build_mammogram_dataset(
        sample.image,
        laterality=sample.laterality,
        view=sample.view,
        spacing=sample.spacing,
        photometric=photometric,
        bits_stored=generator.bits,
        patient_id=patient_id if patient_id is not None else f"synthetic-{sample.exam:05d}",
        uid_seed=f"{_uid_root(generator)}-{sample.index}",
    )
    inverse = dataset.PhotometricInterpretation == "MONOCHROME1"  # as build_mammogram_dataset normalised it
    exam, study_seconds = _exam_attributes(generator, sample.exam)
    for keyword, value in exam.items():  # Patient and General Study modules (C.7.1.1, C.7.2.1)
        setattr(dataset, keyword, value)

    # General Series and DX Series (Modality MG, PresentationIntentType are set already): one series per view.
    dataset.SeriesNumber = view_number + 1
    dataset.SeriesDescription = f"{sample.laterality} {sample.view}"
    # General Equipment: Manufacturer is Type 2; the rest says where the file came from.
    dataset.Manufacturer = "monai_glam"
    dataset.ManufacturerModelName = "SyntheticMammogramGenerator"
    dataset.SoftwareVersions = __version__
    # General Image: the views are acquired a minute apart, after the study starts.
    dataset.InstanceNumber = 1
    dataset.ContentDate = dataset.StudyDate
    dataset.ContentTime = _clock(study_seconds + 60 * (view_number + 1))
    dataset.AcquisitionDate = dataset.ContentDate
    dataset.AcquisitionTime = dataset.ContentTime

    # DX Image (C.8.11.3), all Type 1. Image Type: the Mammography Image module (C.8.11.7.1.4) wants Value 3
    # present and empty for an ordinary (not stereotactic, tomosynthesis or contrast-enhanced) mammogram.
    dataset.ImageType = ["ORIGINAL", "PRIMARY", ""]
    dataset.PixelIntensityRelationship = "LOG"  # the values follow attenuation, not detector dose
    # The sign relates stored values to X-ray intensity: dense tissue (less intensity) is bright in MONOCHROME2
    # (higher values: -1) and stored dark in MONOCHROME1 (lower values: +1).
    dataset.PixelIntensityRelationshipSign = 1 if inverse else -1
    # DX allows only the identity modality rescale (intercept 0, slope 1), so the stored values are the
    # values the project's reader returns.
    dataset.RescaleIntercept = "0"
    dataset.RescaleSlope = "1"
    dataset.RescaleType = "US"  # unspecified units
    # The Presentation LUT Shape must match the photometric interpretation: IDENTITY for MONOCHROME2,
    # INVERSE for MONOCHROME1 (dciodvfy reports IDENTITY on a MONOCHROME1 image as an error).
    dataset.PresentationLUTShape = "INVERSE" if inverse else "IDENTITY"
    dataset.LossyImageCompression = "00"
    dataset.BurnedInAnnotation = "NO"
    dataset.RecognizableVisualFeatures = "NO"
    dataset.QualityControlImage = "NO"
    # VOI LUT (required For Presentation): a linear window over the whole stored range.
    top = 2**generator.bits
    dataset.WindowCenter = str(top // 2)
    dataset.WindowWidth = str(top)
    dataset.VOILUTFunction = "LINEAR"
    dataset.WindowCenterWidthExplanation = "FULL RANGE"

    # DX Detector (C.8.11.4): ImagerPixelSpacing (Type 1) and PixelSpacing are the file's one pixel spacing,
    # both written by build_mammogram_dataset; being equal, they need no Pixel Spacing Calibration Type.
    dataset.DetectorType = "DIRECT"  # Type 2; a direct-conversion (a-Se) detector, as most mammography units
    # DX Anatomy Imaged and Mammography Image (C.8.11.7): the breast, with Image Laterality set already.
    dataset.AnatomicRegionSequence = DicomSequence([_code_item(*_BREAST_CODE)])
    dataset.OrganExposed = "BREAST"
    dataset.PartialView = "NO"
    dataset.BreastImplantPresent = "NO"
    # DX Positioning and Mammography Image: the positioner and the coded view (Type 1). ViewPosition, which
    # the readers use, stays; PatientOrientation (A\R, P\L, A\FR, P\FL) came with the laterality and view.
    dataset.PositionerType = "MAMMOGRAPHIC"
    view_item = _code_item(*_VIEW_CODES[sample.view])
    view_item.ViewModifierCodeSequence = DicomSequence([])  # Type 2: a plain view has no modifier
    dataset.ViewCodeSequence = DicomSequence([view_item])
    # Acquisition Context (Type 2 sequence): nothing to record.
    dataset.AcquisitionContextSequence = DicomSequence([])
    return dataset


def write_synthetic_dataset(
    out_dir: str | os.PathLike[str],
    num: int,
    size: Sequence[int] = (512, 320),
    seed: int = 0,
    write_dicom: bool = True,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    progress: bool = True,
    generator: SyntheticMammogramGenerator | None = None,
) -> Path:
    """Generate ``num`` synthetic mammograms and write them with masks, DICOM copies and a datalist.

    Layout under ``out_dir``: ``images/<exam>_<L|R>-<CC|MLO>.png`` (16-bit, 12-bit values),
    ``masks/<name>_benign.png`` and ``masks/<name>_malignant.png`` (8-bit, 0/255, raw geometry),
    ``dicom/<name>.dcm`` (Digital Mammography X-Ray Image For Presentation with every Type 1 and 2 attribute,
    see :func:`synthetic_dicom_dataset`; one study per exam; MONOCHROME2 for even image indices, MONOCHROME1
    for odd ones) and ``datalist.json`` (patient-level split). Every file is written atomically.

    Args:
        out_dir: output folder (created).
        num: number of images (four per exam).
        size: (H, W) of each image.
        seed: generator seed.
        write_dicom: also write the DICOM files (the datalist's ``image_dicom``).
        fractions: (training, validation, test) shares of the patients.
        progress: show a progress bar.
        generator: a configured generator (its own size and seed then apply).

    Returns:
        Path of the datalist JSON.
    """
    from tqdm import tqdm

    maker = generator if generator is not None else SyntheticMammogramGenerator(size=size, seed=seed)
    split_by_patient([], fractions)  # check the fractions before spending time on images
    root = Path(out_dir)
    items = []
    for sample in tqdm(maker.generate(num), total=int(num), desc="synth", unit="image", disable=not progress):
        image_path = root / "images" / f"{sample.name}.png"
        write_png(image_path, sample.image)
        item: dict[str, Any] = {
            "image": str(image_path),
            "label": list(sample.label),
            "laterality": sample.laterality,
            "view": sample.view,
            "patient_id": f"synthetic-{sample.exam:05d}",
            "exam_id": str(sample.exam),
            "horizontal_flip": False,
        }
        for kind, mask in (("benign", sample.mask_benign), ("malignant", sample.mask_malignant)):
            mask_path = root / "masks" / f"{sample.name}_{kind}.png"
            write_png(mask_path, mask.astype(np.uint8) * 255)
            item[f"mask_{kind}"] = str(mask_path)
        if write_dicom:
            dicom_path = root / "dicom" / f"{sample.name}.dcm"
            write_dicom_mammogram(dicom_path, synthetic_dicom_dataset(sample, maker, patient_id=item["patient_id"]))
            item["image_dicom"] = str(dicom_path)
        items.append(item)
    return write_datalist(
        root / "datalist.json",
        split_by_patient(items, fractions, seed=maker.seed),
        name="synthetic-mammography",
        description=f"monai_glam synthetic mammograms: {num} images of {maker.size[0]}x{maker.size[1]}, "
        f"seed {maker.seed}",
    )
