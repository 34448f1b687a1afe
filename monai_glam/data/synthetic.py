"""Synthetic mammograms with ground-truth lesion masks, for tests, demonstrations and benchmarks.

No public mammography data can be downloaded on the project's machines, so this module draws images that have
what the GLAM pipeline cares about, at three difficulty levels:

- ``easy`` (the default, what the demo trains on): a breast silhouette with a skin line and a thickness fall-off
  towards the skin, fatty background and fibroglandular texture from power-law (1/f^beta) noise, a pectoral muscle
  on MLO views; benign lesions (circumscribed round or oval masses) and malignant ones (spiculated masses and
  clusters of fine calcifications) that are large and bright, with configurable size and contrast.
- ``moderate`` and ``realistic``: parenchyma with a 1/f^3 power spectrum at a BI-RADS density grade (a-d) drawn
  per exam; lesion contrast that falls in dense tissue (masking); benign circumscribed masses and coarse
  (popcorn, rod-like) calcifications, malignant spiculated masses and clusters of fine pleomorphic sub-millimetre
  calcifications, 5-30 mm at the images' pixel spacing; unlabelled decoys (axillary lymph nodes on MLO views,
  vessels, some calcified, isolated benign calcifications). ``moderate`` draws larger (15-35 mm), higher-contrast
  lesions than ``realistic``.

At every level: a ground-truth mask per class in the raw geometry; image-level labels ``[benign, malignant]``
shared by both views of a breast (each lesion is drawn in both); raw orientation and value range like the NYU
data: 12-bit values in 16-bit PNGs, background exactly 0, L views facing right and R views facing left, and
sometimes a detached bright marker that the breast crop must ignore.

Everything is deterministic per ``seed``: image ``i`` depends only on ``seed``, ``i`` and the settings.
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
import scipy.fft
from scipy import ndimage
from scipy.special import expit

from monai_glam import __version__
from monai_glam.data.datalist import split_by_patient, write_datalist
from monai_glam.data.dicom import build_mammogram_dataset, write_dicom_mammogram
from monai_glam.data.image_writer import write_png

__all__ = [
    "DEMO_LESIONS",
    "DENSITY_GRADES",
    "DIFFICULTIES",
    "EXAM_VIEWS",
    "MIN_SIZE",
    "Finding",
    "Lesion",
    "SyntheticMammogram",
    "SyntheticMammogramGenerator",
    "power_law_noise",
    "synthetic_dicom_dataset",
    "write_synthetic_dataset",
]

#: Lesion settings of ``monai-glam demo`` (easy level): more conspicuous than the generator's defaults, so a tiny
#: model learns them in minutes. ``benchmarks/localization.py --difficulty demo`` uses the same data.
DEMO_LESIONS: dict[str, Any] = {
    "benign_contrast": (0.35, 0.5),
    "malignant_contrast": (0.5, 0.7),
    "calcification_contrast": (0.8, 1.0),
    "calcification_fraction": 0.25,
    "benign_radius": (0.05, 0.08),
    "malignant_radius": (0.05, 0.08),
}

# The four screening views of an exam, in the order images are generated.
EXAM_VIEWS = (("L", "CC"), ("L", "MLO"), ("R", "CC"), ("R", "MLO"))
#: The smallest (H, W) image the generator draws.
MIN_SIZE = (64, 48)
#: The generator's difficulty levels, from the demo's conspicuous lesions to realistic ones.
DIFFICULTIES = ("easy", "moderate", "realistic")
#: BI-RADS breast density grades: a almost entirely fatty, b scattered fibroglandular, c heterogeneously dense,
#: d extremely dense.
DENSITY_GRADES = ("a", "b", "c", "d")
_LESION_KINDS = ("mass", "spiculated", "calcifications")  # what the easy level draws
_BENIGN_KINDS = ("mass", "popcorn", "rod")
_MALIGNANT_KINDS = ("spiculated", "calcifications")
_FIELD_OF_VIEW_MM = 270.0  # detector height the image rows span; sets the pixel spacing
# Share of each grade in screening populations (BI-RADS 5th edition: about 10 % a, 40 % b, 40 % c, 10 % d).
_GRADE_FREQUENCIES = (0.1, 0.4, 0.4, 0.1)
# The tissue scale (0-1, 12-bit after quantisation) of a fully compressed breast: fat, and what fibroglandular
# tissue adds on top of it. A mass's contrast is its thickness over this reference thickness times about that
# difference (masses attenuate a little more than fibroglandular tissue).
_FAT_LEVEL = 0.28
_GLAND_CONTRAST = 0.32
_REFERENCE_THICKNESS_MM = 50.0
# Calcium attenuates far more than soft tissue, so dense surroundings hide calcifications much less than masses.
_CALCIFICATION_MASKING = 0.3
# Share of benign lesions that are coarse calcifications (popcorn or rod-like) rather than circumscribed masses.
_COARSE_FRACTION = 0.3


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


def _power_law_field(
    rng: np.random.Generator, shape: tuple[int, int], beta: float, cutoff: float, region: np.ndarray
) -> np.ndarray:
    """Float32 Gaussian noise with power spectrum ``(f**2 + cutoff**2) ** (-beta / 2)``, standardised in ``region``.

    Above ``cutoff`` (cycles per pixel) the spectrum is the power law ``1 / f**beta``; below it, flat, so that the
    largest scales (a breast-wide tilt) do not swamp the texture and a breast's fibroglandular fraction follows its
    density grade rather than the luck of the lowest frequencies. Float32 halves the memory traffic and the FFT
    time of full-size images.
    """
    height, width = shape
    spectrum = scipy.fft.rfft2(rng.standard_normal((height, width), dtype=np.float32))
    frequency2 = (
        np.fft.fftfreq(height).astype(np.float32)[:, None] ** 2 + np.fft.rfftfreq(width).astype(np.float32) ** 2
    )
    spectrum *= (frequency2 + np.float32(cutoff**2)) ** np.float32(-beta / 4.0)
    field = scipy.fft.irfft2(spectrum, s=(height, width))
    inside = field[region] if region.any() else field
    field -= inside.mean()
    field /= max(float(inside.std()), 1e-12)
    return field


@dataclass(frozen=True)
class Lesion:
    """One lesion of a breast, in view-independent coordinates.

    Attributes:
        kind: ``"mass"`` (benign, circumscribed), ``"spiculated"`` or ``"calcifications"`` (malignant); the
            ``moderate`` and ``realistic`` levels add the benign coarse calcifications ``"popcorn"`` and ``"rod"``
            (and use ``"speck"`` for isolated benign calcifications, which are decoys, not lesions).
        depth: position from the chest wall (0) to the nipple (1).
        lateral: position across the breast, -1 to 1 (the CC and MLO projections place it differently).
        radius: half the lesion's size as a fraction of the image height (the diameter in mm is
            :attr:`diameter_mm`).
        contrast: added intensity (the tissue spans about 0 to 1); at the graded levels the peak added intensity
            in fat of a mass, and for calcifications that of a 0.5 mm calcification (larger ones are brighter).
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
        return self.kind in _MALIGNANT_KINDS

    @property
    def diameter_mm(self) -> float:
        """Nominal size in mm (the pixel spacing is the field of view over the image height at every size)."""
        return 2.0 * self.radius * _FIELD_OF_VIEW_MM


@dataclass(frozen=True)
class Finding:
    """What one image shows of a lesion or a decoy, in the raw image geometry.

    Attributes:
        kind: a lesion kind (see :class:`Lesion`) or a decoy kind: ``"lymph_node"``, ``"vessel"``,
            ``"calcified_vessel"`` or ``"speck"`` (an isolated benign calcification).
        size_mm: nominal size: the diameter of a mass, speck or vessel, the core diameter of a spiculated mass,
            the extent of a group of calcifications, the long axis of a lymph node.
        center: (row, column) of its center in the raw image, in pixels.
        contrast: mean intensity it adds inside its mask (0-1 tissue scale, after masking by dense tissue).
    """

    kind: str
    size_mm: float
    center: tuple[float, float]
    contrast: float

    @property
    def category(self) -> str:
        """``"benign"``, ``"malignant"`` or ``"decoy"`` (in no mask and no label)."""
        if self.kind in _MALIGNANT_KINDS:
            return "malignant"
        return "benign" if self.kind in _BENIGN_KINDS else "decoy"


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
        difficulty: the generator's level.
        density: BI-RADS density grade ``"a"``-``"d"`` (``""`` at the easy level).
        fibroglandular_fraction: mean fibroglandular fraction of the breast (None at the easy level).
        lesions: the lesions this image shows.
        decoys: the unlabelled look-alikes it shows (lymph nodes, vessels, isolated calcifications).
        mask_decoy: (H, W) bool, the decoys' pixels (never in a lesion mask; None at the easy level).
        fibroglandular: (H, W) float32, the fibroglandular fraction of the tissue along each ray, 0 (fat) to 1
            (None at the easy level).
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
    difficulty: str = "easy"
    density: str = ""
    fibroglandular_fraction: float | None = None
    lesions: tuple[Finding, ...] = ()
    decoys: tuple[Finding, ...] = ()
    mask_decoy: np.ndarray | None = None
    fibroglandular: np.ndarray | None = None

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


def _check_difficulty(value: Any) -> str:
    if value not in DIFFICULTIES:
        raise ValueError(f"difficulty must be one of {', '.join(DIFFICULTIES)}, got {value!r}")
    return str(value)


def _check_density(value: str | Sequence[str] | None, difficulty: str) -> tuple[str, ...] | None:
    """The density grades a generator may draw (None: all, at their screening frequencies)."""
    if value is None:
        return None
    grades = (value,) if isinstance(value, str) else tuple(value)
    bad = [grade for grade in grades if grade not in DENSITY_GRADES]
    if not grades or bad:
        raise ValueError(f"density must be grades among {', '.join(DENSITY_GRADES)}, got {value!r}")
    if difficulty == "easy":
        raise ValueError(f"density applies to the moderate and realistic levels, not easy (got density={value!r})")
    return tuple(sorted(set(grades)))


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


@dataclass(frozen=True)
class _Level:
    """What sets a graded level's lesions apart: sizes (mm), contrast gain, masking by dense tissue."""

    mass_mm: tuple[float, float]  # diameter of circumscribed masses
    spiculated_mm: tuple[float, float]  # core diameter of spiculated masses
    cluster_mm: tuple[float, float]  # extent of a cluster of fine pleomorphic calcifications
    coarse_mm: tuple[float, float]  # extent of a group of coarse (popcorn, rod-like) calcifications
    speck_mm: tuple[float, float]  # size of one fine pleomorphic calcification
    gain: tuple[float, float]  # contrast multiplier, drawn per lesion
    masking: float  # share of a mass's contrast that fully dense tissue takes away


_LEVELS = {
    # The texture and decoys of the realistic level with larger, brighter, less masked lesions (and larger
    # calcifications, so clusters show at 256x160), sized so that the demo's tiny model learns them in minutes on
    # a CPU: with 10-30 mm lesions it stayed at chance after 20 epochs, with these it reached a validation AUC of
    # about 0.62 (480 images of 256x160, global stage).
    "moderate": _Level((15.0, 35.0), (15.0, 35.0), (10.0, 20.0), (10.0, 25.0), (0.3, 1.0), (2.0, 3.0), 0.5),
    "realistic": _Level((5.0, 30.0), (5.0, 30.0), (5.0, 15.0), (5.0, 25.0), (0.1, 0.5), (1.0, 1.0), 0.85),
}


@dataclass(frozen=True)
class _Grade:
    """Parenchyma of one density grade: the glandular fraction is ``clip(level + texture * N)``, N ~ 1/f^3."""

    level: float
    texture: float


# Denser grades have more fibroglandular tissue and more contrast in its texture (a larger amplitude of the
# power-law field), so both the fraction and the anatomical noise that masks lesions grow from a to d.
# With these the share of the breast's area that is dense (fibroglandular fraction above 0.15) is about 5 % (a),
# 30 % (b), 55 % (c) and 80 % (d), close to BI-RADS 4th edition's quartiles.
_GRADES = {"a": _Grade(-0.2, 0.2), "b": _Grade(0.08, 0.25), "c": _Grade(0.34, 0.28), "d": _Grade(0.7, 0.3)}


@dataclass(frozen=True)
class _Node:
    """An axillary lymph node of an MLO view, placed relative to the pectoral muscle's edge."""

    along: float  # down the muscle edge, as a fraction of the muscle's height
    offset: float  # in front of the edge, in node lengths
    length_mm: float
    aspect: float
    angle: float  # deviation of its long axis from the muscle edge
    hilum: bool  # a fatty hilum (the notch of a normal, reniform node)
    contrast: float


@dataclass(frozen=True)
class _Anatomy:
    """What a breast keeps in both of its views at the graded levels."""

    grade: str
    level: float  # this breast's offset of the glandular fraction around its grade's
    extent: float  # chest wall to nipple as a fraction of the image width
    specks: tuple[Lesion, ...]  # isolated benign calcifications (decoys)
    nodes: tuple[_Node, ...]  # axillary lymph nodes (MLO views only)


class SyntheticMammogramGenerator:
    """Draws synthetic screening exams (L-CC, L-MLO, R-CC, R-MLO) with lesions and masks.

    Sizes are fractions of the image height so the same settings work from 256x160 to 2944x1920; the pixel spacing
    is 270 mm over the image height (1.05 mm at 256 rows, 0.09 mm at 2944), so sizes in mm hold at every size.

    ``difficulty`` picks the level: ``easy`` (the default, exactly the images of earlier versions) draws large,
    bright lesions on a simple texture; ``moderate`` and ``realistic`` draw BI-RADS density grades a-d, masking by
    dense tissue, lesions of 5-30 mm (``moderate``: 15-35 mm and 2-3x the contrast) and unlabelled decoys
    (see ``docs/data.md``). At those levels the size and contrast arguments left at None take the level's own,
    size-dependent values; given, they replace them.

    Args:
        size: (H, W) of each raw image, at least 64x48.
        seed: base seed; image ``i`` depends only on ``seed`` and ``i``.
        benign_probability: chance that a breast has a benign lesion.
        malignant_probability: chance that a breast has a malignant lesion.
        calcification_fraction: share of malignant lesions that are calcification clusters (else spiculated masses).
        benign_radius: (min, max) benign lesion radius as a fraction of the image height (easy: (0.03, 0.055)).
        malignant_radius: (min, max) radius of spiculated cores and calcification clusters (easy: (0.025, 0.045)).
        benign_contrast: (min, max) added intensity of benign masses, tissue spanning about 0..1 (easy: (0.12, 0.2)).
        malignant_contrast: (min, max) added intensity of spiculated masses (easy: (0.14, 0.22)).
        calcification_contrast: (min, max) added intensity of single calcifications (easy: (0.35, 0.5); graded
            levels: of a 0.5 mm calcification).
        marker_probability: chance of a detached bright marker in a corner (the crop must ignore it).
        bits: significant bits of the output values (12 like the NYU data).
        difficulty: ``"easy"``, ``"moderate"`` or ``"realistic"``.
        density: graded levels only: a BI-RADS grade ``"a"``-``"d"`` (or several) that every exam gets (drawn
            among them at their screening frequencies); None draws all four (about 10/40/40/10 %).

    Raises:
        ValueError: an argument out of its range, an unknown difficulty or density grade, or a density at the
            easy level.
    """

    def __init__(
        self,
        size: Sequence[int] = (512, 320),
        seed: int = 0,
        benign_probability: float = 0.5,
        malignant_probability: float = 0.5,
        calcification_fraction: float = 0.4,
        benign_radius: Sequence[float] | None = None,
        malignant_radius: Sequence[float] | None = None,
        benign_contrast: Sequence[float] | None = None,
        malignant_contrast: Sequence[float] | None = None,
        calcification_contrast: Sequence[float] | None = None,
        marker_probability: float = 0.5,
        bits: int = 12,
        difficulty: str = "easy",
        density: str | Sequence[str] | None = None,
    ) -> None:
        if len(size) != 2 or int(size[0]) < MIN_SIZE[0] or int(size[1]) < MIN_SIZE[1]:
            raise ValueError(f"size must be (H, W) with H >= {MIN_SIZE[0]} and W >= {MIN_SIZE[1]}, got {size!r}")
        if not 8 <= int(bits) <= 16:
            raise ValueError(f"bits must be in 8..16, got {bits}")
        self.difficulty = _check_difficulty(difficulty)
        self.density = _check_density(density, self.difficulty)
        easy = self.difficulty == "easy"
        self.size = (int(size[0]), int(size[1]))
        self.seed = int(seed)
        self.benign_probability = _check_probability("benign_probability", benign_probability)
        self.malignant_probability = _check_probability("malignant_probability", malignant_probability)
        self.calcification_fraction = _check_probability("calcification_fraction", calcification_fraction)

        def setting(name: str, value: Sequence[float] | None, default: tuple[float, float], high: float) -> Any:
            # None keeps the easy level's historical default; the graded levels then use their own values.
            if value is None:
                return default if easy else None
            return _check_range(name, value, 0.005 if high < 1.0 else 0.0, high)

        self.benign_radius = setting("benign_radius", benign_radius, (0.03, 0.055), 0.2)
        self.malignant_radius = setting("malignant_radius", malignant_radius, (0.025, 0.045), 0.2)
        self.benign_contrast = setting("benign_contrast", benign_contrast, (0.12, 0.2), 1.0)
        self.malignant_contrast = setting("malignant_contrast", malignant_contrast, (0.14, 0.22), 1.0)
        self.calcification_contrast = setting("calcification_contrast", calcification_contrast, (0.35, 0.5), 1.0)
        self.marker_probability = _check_probability("marker_probability", marker_probability)
        self.bits = int(bits)
        self.spacing = (_FIELD_OF_VIEW_MM / self.size[0], _FIELD_OF_VIEW_MM / self.size[0])

    # ----------------------------------------------------------------------------------------------------------
    # what a breast holds

    def breast_lesions(self, exam: int, laterality: str) -> list[Lesion]:
        """The lesions of one breast; both of its views show them."""
        if self.difficulty != "easy":
            return self._graded_lesions(exam, laterality)
        rng = np.random.default_rng([self.seed, exam, 1 if laterality == "L" else 2])
        lesions = []
        if rng.random() < self.benign_probability:
            lesions.append(self._draw_lesion(rng, "mass", self.benign_radius, self.benign_contrast))
        if rng.random() < self.malignant_probability:
            if rng.random() < self.calcification_fraction:
                malignant = self._draw_lesion(rng, "calcifications", self.malignant_radius, self.calcification_contrast)
            else:
                malignant = self._draw_lesion(rng, "spiculated", self.malignant_radius, self.malignant_contrast)
            lesions.append(_apart(lesions, malignant))
        return lesions

    def breast_density(self, exam: int) -> str:
        """The BI-RADS density grade of an exam (both breasts share it, as BI-RADS rates the exam); easy: ``""``."""
        if self.difficulty == "easy":
            return ""
        grades = self.density or DENSITY_GRADES
        weights = np.array([_GRADE_FREQUENCIES[DENSITY_GRADES.index(grade)] for grade in grades])
        # Its own stream, so forcing a grade changes nothing else about the exam.
        rng = np.random.default_rng([self.seed, exam, 30])
        return grades[int(rng.choice(len(grades), p=weights / weights.sum()))]

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

    def _graded_lesions(self, exam: int, laterality: str) -> list[Lesion]:
        rng = np.random.default_rng([self.seed, exam, 1 if laterality == "L" else 2, 32])
        lesions = []
        if rng.random() < self.benign_probability:
            kind = "mass"
            if rng.random() < _COARSE_FRACTION:
                kind = "popcorn" if rng.random() < 0.5 else "rod"
            lesions.append(self._draw_graded_lesion(rng, kind))
        if rng.random() < self.malignant_probability:
            kind = "calcifications" if rng.random() < self.calcification_fraction else "spiculated"
            lesions.append(_apart(lesions, self._draw_graded_lesion(rng, kind)))
        return lesions

    def _draw_graded_lesion(self, rng: np.random.Generator, kind: str) -> Lesion:
        level = _LEVELS[self.difficulty]
        malignant = kind in _MALIGNANT_KINDS
        override = self.malignant_radius if malignant else self.benign_radius
        sizes = {
            "mass": level.mass_mm,
            "popcorn": level.coarse_mm,
            "rod": level.coarse_mm,
            "spiculated": level.spiculated_mm,
            "calcifications": level.cluster_mm,
        }
        low, high = (
            (2 * override[0] * _FIELD_OF_VIEW_MM, 2 * override[1] * _FIELD_OF_VIEW_MM) if override else sizes[kind]
        )
        # Log-uniform: screen-detected lesions are mostly small, so small sizes are as common as large ones per octave.
        diameter = float(np.exp(rng.uniform(np.log(low), np.log(high))))
        gain = float(rng.uniform(*level.gain))  # drawn even when unused, so overrides leave the positions alone
        if kind in ("mass", "spiculated"):
            given = self.benign_contrast if kind == "mass" else self.malignant_contrast
            # A mass adds attenuation in proportion to its thickness (about its diameter) over the breast's.
            thickness = diameter / _REFERENCE_THICKNESS_MM
            contrast = rng.uniform(*given) if given else rng.uniform(0.9, 1.25) * _GLAND_CONTRAST * thickness * gain
        else:
            given = self.calcification_contrast
            contrast = rng.uniform(*given) if given else rng.uniform(0.25, 0.4) * gain
        return Lesion(
            kind=kind,
            depth=float(rng.uniform(0.45, 0.85)),
            lateral=float(rng.uniform(-0.75, 0.75)),
            radius=diameter / 2.0 / _FIELD_OF_VIEW_MM,
            contrast=float(min(contrast, 1.0)),
            aspect=float(rng.uniform(0.6, 1.0)),
            # Rods run along the ducts, towards the nipple; other shapes take any orientation.
            angle=float(rng.uniform(-0.3, 0.3) if kind == "rod" else rng.uniform(0.0, np.pi)),
            shape_seed=int(rng.integers(2**31)),
        )

    def _anatomy(self, exam: int, laterality: str) -> _Anatomy:
        rng = np.random.default_rng([self.seed, exam, 1 if laterality == "L" else 2, 31])
        extent = float(rng.uniform(0.6, 0.8))
        level = float(rng.normal(0.0, 0.04))
        specks = []
        for _ in range(min(int(rng.poisson(1.2)), 5)):
            diameter = float(rng.uniform(0.3, 1.0))
            specks.append(
                Lesion(
                    kind="speck",
                    depth=float(rng.uniform(0.15, 0.9)),
                    lateral=float(rng.uniform(-0.9, 0.9)),
                    radius=diameter / 2.0 / _FIELD_OF_VIEW_MM,
                    contrast=float(min(rng.uniform(0.25, 0.4) * diameter / 0.5, 1.0)),
                    aspect=float(rng.uniform(0.6, 1.0)),
                    angle=float(rng.uniform(0.0, np.pi)),
                    shape_seed=0,
                )
            )
        nodes = []
        for _ in range(int(rng.choice(3, p=(0.3, 0.45, 0.25)))):
            length = float(rng.uniform(6.0, 18.0))
            aspect = float(rng.uniform(0.45, 0.75))
            nodes.append(
                _Node(
                    along=float(rng.uniform(0.15, 0.6)),
                    offset=float(rng.uniform(0.2, 1.0)),
                    length_mm=length,
                    aspect=aspect,
                    angle=float(rng.uniform(-0.4, 0.4)),
                    hilum=bool(rng.random() < 0.7),
                    # Lymphoid tissue about as dense as a mass of its thickness (the short axis); set in axillary
                    # fat, nodes stand out more than that alone, hence the larger factor than for masses.
                    contrast=float(rng.uniform(1.3, 1.8) * _GLAND_CONTRAST * length * aspect / _REFERENCE_THICKNESS_MM),
                )
            )
        return _Anatomy(self.breast_density(exam), level, extent, tuple(specks), tuple(nodes))

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
        if self.difficulty != "easy":
            return self._graded_image(index)
        exam, (laterality, view) = index // 4, EXAM_VIEWS[index % 4]
        lesions = self.breast_lesions(exam, laterality)
        rng = np.random.default_rng([self.seed, exam, 10 + index % 4])
        image, benign, malignant, placed = self._render(rng, view, lesions)
        if laterality == "R":  # raw R views face left
            image, benign, malignant = image[:, ::-1].copy(), benign[:, ::-1].copy(), malignant[:, ::-1].copy()
        label = (int(any(not lesion.malignant for lesion in lesions)), int(any(lesion.malignant for lesion in lesions)))
        findings = tuple(
            Finding(
                lesion.kind,
                2.0 * max(lesion.radius * self.size[0], 2.0) * self.spacing[0],  # _draw's radius, in mm
                self._raw_center(center, laterality),
                contrast,
            )
            for lesion, (center, contrast) in zip(lesions, placed, strict=True)
        )
        return SyntheticMammogram(
            image, benign, malignant, label, laterality, view, self.spacing, exam, index, lesions=findings
        )

    def _raw_center(self, center: tuple[float, float], laterality: str) -> tuple[float, float]:
        """A canonical (right-facing) position in the raw image: R views are mirrored."""
        row, col = float(center[0]), float(center[1])
        return (row, self.size[1] - 1.0 - col) if laterality == "R" else (row, col)

    def _render(self, rng: np.random.Generator, view: str, lesions: list[Lesion]) -> tuple[Any, ...]:
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
        placed = []  # (center, mean added intensity in the mask) per lesion, for the image's record
        for lesion in lesions:
            center = self._place(outline, lesion, view, depth_in)
            signal, mask = self._draw(lesion, center)
            tissue += signal
            inside = mask & breast
            (malignant if lesion.malignant else benign)[...] |= inside
            placed.append((center, float(signal[inside].mean()) if inside.any() else 0.0))
        tissue += 0.008 * rng.standard_normal(self.size)  # quantum noise

        top = 2**self.bits - 1
        image = np.where(breast, np.clip(np.rint(np.clip(tissue, 0.0, 1.0) * top), 1, top), 0).astype(np.uint16)
        if rng.random() < self.marker_probability:
            self._add_marker(rng, image, breast)
        return image, benign, malignant, placed

    def _breast_edge(self, rng: np.random.Generator, outline: _Silhouette, rows: np.ndarray) -> np.ndarray:
        """Per row, the column where the breast ends (the skin), as a (H,) float64 array."""
        height = self.size[0]
        relative = (rows[:, 0] - outline.center_row) / outline.half_height
        profile = np.sqrt(np.clip(1.0 - relative**2, 0.0, None)) ** 0.7
        # A few low harmonics make every outline a little different.
        phase = rng.uniform(0, 2 * np.pi, 3)
        wobble = sum(0.025 * np.sin((k + 2) * np.pi * rows[:, 0] / height + phase[k]) for k in range(3))
        return outline.extent * profile * (1.0 + wobble)

    def _breast_mask(self, rng: np.random.Generator, outline: _Silhouette, rows: np.ndarray, cols: np.ndarray):
        return cols < self._breast_edge(rng, outline, rows)[:, None]

    def _pectoral_geometry(self, rng: np.random.Generator) -> tuple[float, float]:
        """(width at the top row, height) of the pectoral muscle's triangle, in pixels."""
        height, width = self.size
        return width * rng.uniform(0.22, 0.35), height * rng.uniform(0.35, 0.55)

    def _pectoral(self, rng: np.random.Generator, rows: np.ndarray, cols: np.ndarray) -> np.ndarray:
        """Soft-edged triangle of muscle in the upper chest-wall corner of an MLO view."""
        top_width, muscle_height = self._pectoral_geometry(rng)
        boundary = top_width * (1.0 - rows / muscle_height)
        return 1.0 / (1.0 + np.exp(-(boundary - cols) / max(1.0, 0.004 * self.size[1])))

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

    # ----------------------------------------------------------------------------------------------------------
    # the graded levels (moderate, realistic)

    def _graded_image(self, index: int) -> SyntheticMammogram:
        exam, (laterality, view) = index // 4, EXAM_VIEWS[index % 4]
        lesions = self.breast_lesions(exam, laterality)
        anatomy = self._anatomy(exam, laterality)
        # Geometry (outline, muscle, vessels, marker) and texture (parenchyma, quantum noise) have their own
        # streams, so a forced density grade changes the parenchyma's mapping and nothing else.
        geometry_rng = np.random.default_rng([self.seed, exam, 40 + index % 4])
        texture_rng = np.random.default_rng([self.seed, exam, 50 + index % 4])
        scene = _GradedScene(self, geometry_rng, texture_rng, view, anatomy)
        scene.draw_lesions(lesions)
        scene.draw_decoys(anatomy)
        image, gland, benign, malignant, decoy = scene.finish()
        if laterality == "R":  # raw R views face left
            image, gland, benign, malignant, decoy = (
                a[:, ::-1].copy() for a in (image, gland, benign, malignant, decoy)
            )
        label = (int(any(not lesion.malignant for lesion in lesions)), int(any(lesion.malignant for lesion in lesions)))
        return SyntheticMammogram(
            image,
            benign,
            malignant,
            label,
            laterality,
            view,
            self.spacing,
            exam,
            index,
            difficulty=self.difficulty,
            density=anatomy.grade,
            fibroglandular_fraction=scene.fibroglandular_fraction,
            lesions=tuple(_to_raw(finding, self, laterality) for finding in scene.lesions),
            decoys=tuple(_to_raw(finding, self, laterality) for finding in scene.decoys),
            mask_decoy=decoy,
            fibroglandular=gland,
        )


def _to_raw(finding: Finding, generator: SyntheticMammogramGenerator, laterality: str) -> Finding:
    return Finding(finding.kind, finding.size_mm, generator._raw_center(finding.center, laterality), finding.contrast)


def _apart(lesions: list[Lesion], malignant: Lesion) -> Lesion:
    """Keep a breast's malignant lesion away from its benign one, so each mask outlines one lesion."""
    if lesions and abs(lesions[0].lateral - malignant.lateral) < 0.6:
        side = -1.0 if lesions[0].lateral > 0 else 1.0
        return _replace(malignant, lateral=side * max(abs(malignant.lateral), 0.4))
    return malignant


class _GradedScene:
    """One view of a graded level being drawn, in the canonical right-facing frame (chest wall at column 0).

    The image is built on a 0-1 tissue scale in float32: fat plus the fibroglandular fraction times its extra
    attenuation, scaled by the thickness fall-off at the skin, plus the skin, the pectoral muscle, then lesions and
    decoys, each drawn into a window of its own size (so drawing costs follow the lesion, not the image) and
    multiplied by ``1 - masking * gland`` (a lesion replaces tissue, so in dense tissue it adds less), then quantum
    noise.
    """

    def __init__(
        self,
        generator: SyntheticMammogramGenerator,
        rng: np.random.Generator,
        texture_rng: np.random.Generator,
        view: str,
        anatomy: _Anatomy,
    ) -> None:
        self.generator, self.rng, self.texture_rng, self.view = generator, rng, texture_rng, view
        self.size = generator.size
        self.spacing = float(generator.spacing[0])
        self.level = _LEVELS[generator.difficulty]
        height, width = self.size
        # The MLO view takes in a little more posterior tissue than the CC view of the same breast.
        extent = width * anatomy.extent * (1.04 if view == "MLO" else 1.0)
        if view == "CC":
            self.outline = _Silhouette(extent, height * rng.uniform(0.46, 0.54), height * 0.4)
        else:
            self.outline = _Silhouette(extent, height * rng.uniform(0.44, 0.5), height * 0.52)
        edge = generator._breast_edge(rng, self.outline, np.arange(height, dtype=np.float64)[:, None])
        rows = np.arange(height, dtype=np.float32)[:, None]
        cols = np.arange(width, dtype=np.float32)[None, :]
        self.breast = cols < edge[:, None]
        # Distance to the skin from the outline's local slope (the outline is one column per row): as good as a
        # distance transform near the skin, where it matters, at a fraction of the cost on 8-megapixel images.
        normal = (1.0 / np.sqrt(1.0 + np.gradient(edge) ** 2)).astype(np.float32)
        self.skin_distance = np.maximum((edge.astype(np.float32)[:, None] - cols) * normal[:, None], 0.0)
        depth_mm = self.skin_distance * self.spacing
        thickness = 1.0 - np.exp(-depth_mm / 9.0)
        skin_width = max(1.0, 1.5 / self.spacing)  # about 1.5 mm of skin
        skin = 0.1 * np.exp(-(((self.skin_distance - 0.5 * skin_width) / skin_width) ** 2))

        # The 1/f^3 texture holds from 2 mm to 12 cm (Burgess et al. 2001 measured beta ~ 3 in mammograms).
        field = _power_law_field(texture_rng, self.size, 3.0, self.spacing / 120.0, self.breast)
        grade = _GRADES[anatomy.grade]
        across = (rows - self.outline.center_row) / self.outline.half_height
        # Glandular tissue gathers behind the nipple and, on MLO views, up towards the axilla (upper outer quadrant).
        shift = 0.2 if view == "MLO" else 0.0
        envelope = np.exp(-((cols / extent - 0.45) ** 2) / 0.12) * np.exp(-((across + shift) ** 2) / 0.45)
        # Subcutaneous fat under the skin and retromammary fat in front of the chest wall hold no glands.
        fat = (1.0 - np.exp(-depth_mm / 6.0)) * expit((cols * self.spacing - 8.0) / 3.0)
        gland = grade.level + anatomy.level + 0.5 * (envelope - 0.5) + grade.texture * field
        # No less than no glands; near fully glandular the texture flattens out smoothly instead of clipping flat.
        np.maximum(gland, 0.0, out=gland)
        gland = np.where(gland < 0.75, gland, 0.75 + 0.25 * np.tanh((gland - 0.75) / 0.25))
        gland *= fat
        self.muscle_geometry: tuple[float, float] | None = None
        muscle = None
        if view == "MLO":
            self.muscle_geometry = generator._pectoral_geometry(rng)
            top_width, muscle_height = self.muscle_geometry
            boundary = top_width * (1.0 - rows / muscle_height)
            muscle = expit((boundary - cols) / max(1.0, 0.004 * width))
            gland *= 1.0 - muscle  # the glands lie in front of the muscle
        self.gland = gland
        # Fat is not blank either: ligaments and small vessels give it a faint texture of the same spectrum.
        self.tissue = thickness * (_FAT_LEVEL + 0.015 * field + _GLAND_CONTRAST * gland) + skin
        if muscle is not None:
            self.tissue += muscle * (0.3 + 0.015 * field)
        self.fibroglandular_fraction = float(gland[self.breast].mean()) if self.breast.any() else 0.0
        self.benign = np.zeros(self.size, dtype=bool)
        self.malignant = np.zeros(self.size, dtype=bool)
        self.decoy = np.zeros(self.size, dtype=bool)
        self.lesions: list[Finding] = []
        self.decoys: list[Finding] = []
        self.keep_out: list[tuple[float, float, float]] = []  # (row, col, radius) around each lesion, in pixels

    # lesions

    def draw_lesions(self, lesions: list[Lesion]) -> None:
        generator = self.generator
        for lesion in lesions:
            center = generator._place(self.outline, lesion, self.view, self.skin_distance)
            radius = max(lesion.radius * self.size[0], 0.5)
            reach = radius * (3.6 if lesion.kind == "spiculated" else 1.0) + 4.0
            patch = _Patch.around(center, reach, self.size)
            rng = np.random.default_rng(lesion.shape_seed)
            if lesion.kind == "mass":
                _paint_dome(patch, center, radius, radius * lesion.aspect, lesion.angle, lesion.contrast)
            elif lesion.kind == "spiculated":
                _paint_spiculated(patch, rng, center, radius, lesion.contrast, self.spacing)
            elif lesion.kind == "calcifications":
                _paint_cluster(patch, rng, center, radius, lesion, self.level.speck_mm, self.spacing)
            elif lesion.kind == "popcorn":
                _paint_popcorn(patch, rng, center, radius, lesion.contrast, self.spacing)
            else:
                _paint_rods(patch, rng, center, radius, lesion, self.spacing)
            masking = self.level.masking if lesion.kind in ("mass", "spiculated") else _CALCIFICATION_MASKING
            contrast = self._add(patch, masking, self.malignant if lesion.malignant else self.benign)
            self.lesions.append(Finding(lesion.kind, lesion.diameter_mm, center, contrast))
            # Decoys stay 5 mm clear of every lesion, so no mask ever takes in a decoy and none sits on a lesion.
            self.keep_out.append((center[0], center[1], reach + 5.0 / self.spacing))

    def _add(self, patch: _Patch, masking: float, target: np.ndarray) -> float:
        """Add a drawn patch to the image, masked by the tissue it replaces; returns its mean added intensity."""
        region = patch.region
        added = patch.signal * (1.0 - masking * self.gland[region])
        self.tissue[region] += added
        inside = patch.mask & self.breast[region]
        target[region] |= inside
        return float(added[inside].mean()) if inside.any() else 0.0

    # decoys

    def _clear(self, row: float, col: float, radius: float) -> bool:
        height, width = self.size
        if not (0 <= row < height and 0 <= col < width) or self.skin_distance[int(row), int(col)] <= radius + 1.0:
            return False
        return all(np.hypot(row - r, col - c) > keep + radius for r, c, keep in self.keep_out)

    def _add_decoy(self, patch: _Patch, kind: str, size_mm: float, center: tuple[float, float]) -> None:
        region = patch.region
        if (patch.mask & (self.benign[region] | self.malignant[region])).any():
            return  # a last guard: the keep-out distances should already prevent this
        contrast = self._add(patch, self.level.masking if kind != "speck" else _CALCIFICATION_MASKING, self.decoy)
        self.decoys.append(Finding(kind, size_mm, (float(center[0]), float(center[1])), contrast))

    def draw_decoys(self, anatomy: _Anatomy) -> None:
        """Isolated benign calcifications, axillary lymph nodes (MLO) and vessels: in no mask and no label."""
        for speck in anatomy.specks:
            center = self.outline.lesion_center(speck, self.view)
            radius = speck.radius * self.size[0]
            if not self._clear(center[0], center[1], radius + 2.0):
                continue
            patch = _Patch.around(center, radius * 3 + 5, self.size)
            _paint_speck(patch, center, 2 * radius, speck.aspect, speck.angle, speck.contrast)
            self._add_decoy(patch, "speck", speck.diameter_mm, center)
        if self.muscle_geometry is not None:
            for node in anatomy.nodes:
                self._draw_node(node)
        for _ in range(int(self.rng.integers(1, 5))):
            self._draw_vessel()

    def _draw_node(self, node: _Node) -> None:
        top_width, muscle_height = self.muscle_geometry  # type: ignore[misc]
        half = node.length_mm / 2.0 / self.spacing
        row = muscle_height * node.along
        col = top_width * (1.0 - row / muscle_height) + half + node.offset * 2.0 * half
        if not self._clear(row, col, half):
            return
        # Nodes lie along the muscle's edge (the axillary tail), give or take a little.
        angle = float(np.arctan2(muscle_height, -top_width)) + node.angle
        patch = _Patch.around((row, col), half + 3.0, self.size)
        window = patch.grid((row, col), half + 2.0)
        if window is None:
            return
        local, dy, dx = window
        along, across = _turn(dy, dx, angle)
        semi_major, semi_minor = max(half, 0.5), max(half * node.aspect, 0.5)
        rho2 = (along / semi_major) ** 2 + (across / semi_minor) ** 2
        dome = np.sqrt(np.clip(1.0 - rho2, 0.0, None))
        if node.hilum:
            # The fatty hilum: a fat-density notch entering the node from one side (a reniform node).
            hilum = (along / (0.45 * semi_major)) ** 2 + ((across - 0.55 * semi_minor) / (0.5 * semi_minor)) ** 2
            dome *= 1.0 - 0.85 * np.sqrt(np.clip(1.0 - hilum, 0.0, None))
        patch.signal[local] = np.maximum(patch.signal[local], node.contrast * dome)
        patch.mask[local] |= rho2 <= 1.0
        self._add_decoy(patch, "lymph_node", node.length_mm, (row, col))

    def _draw_vessel(self) -> None:
        rng = self.rng
        diameter = float(rng.uniform(1.0, 3.0))  # mm
        radius = diameter / 2.0 / self.spacing
        calcified = bool(rng.random() < 0.2)
        for _ in range(4):  # a few tries to route it clear of the lesions
            path = self._vessel_path()
            if len(path) >= 3 and all(
                np.hypot(path[:, 0] - r, path[:, 1] - c).min() > keep + radius for r, c, keep in self.keep_out
            ):
                break
        else:
            return
        low, high = path.min(axis=0), path.max(axis=0)
        reach = radius + 3.0
        patch = _Patch(
            max(int(low[0] - reach), 0),
            min(int(high[0] + reach) + 1, self.size[0]),
            max(int(low[1] - reach), 0),
            min(int(high[1] + reach) + 1, self.size[1]),
        )
        # A blood-filled cylinder, about as visible as a 5-10 mm mass (long, thin and straight-edged, it stands out
        # more than its thickness alone would make it); it narrows away from the chest wall.
        contrast = float(rng.uniform(0.03, 0.06))
        count = len(path) - 1
        widths = radius * np.linspace(1.0, 0.5, count + 1)
        for k in range(count):
            _paint_tube(patch, path[k], path[k + 1], widths[k], contrast, end_radius=widths[k + 1])
        if calcified:
            # Vascular calcification: two thin bright lines along the walls over part of the vessel (tram tracks).
            first = int(rng.integers(0, max(count // 2, 1)))
            last = min(count, first + max(2, int(count * rng.uniform(0.2, 0.5))))
            wall = float(rng.uniform(0.15, 0.3)) / self.spacing
            wall_contrast = float(rng.uniform(0.3, 0.5))
            for k in range(first, last):
                _paint_tube(patch, path[k], path[k + 1], wall, wall_contrast, offset=widths[k])
        middle = path[len(path) // 2]
        self._add_decoy(patch, "calcified_vessel" if calcified else "vessel", diameter, (middle[0], middle[1]))

    def _vessel_path(self) -> np.ndarray:
        """A smooth curve from the chest wall (or, on MLO views, the axilla) towards the nipple, (n, 2) row/col."""
        rng, outline = self.rng, self.outline
        if self.muscle_geometry is not None and rng.random() < 0.5:
            top_width, muscle_height = self.muscle_geometry
            row = muscle_height * rng.uniform(0.1, 0.6)
            start = (row, top_width * (1.0 - row / muscle_height) + self.size[1] * rng.uniform(0.02, 0.08))
        else:
            start = (
                outline.center_row + rng.uniform(-0.5, 0.5) * outline.half_height,
                outline.extent * rng.uniform(0.03, 0.2),
            )
        target = (
            outline.center_row + rng.uniform(-0.2, 0.2) * outline.half_height,
            outline.extent * rng.uniform(0.75, 0.95),
        )
        heading = np.arctan2(target[0] - start[0], target[1] - start[1])
        length = np.hypot(target[0] - start[0], target[1] - start[1]) * rng.uniform(0.6, 1.0)
        steps = np.linspace(0.0, 1.0, 48)
        amplitude, frequency, phase = (
            rng.uniform(0.05, 0.3, 2),
            rng.uniform([0.5, 1.5], [1.5, 3.0]),
            rng.uniform(0, 2 * np.pi, 2),
        )
        bend = (amplitude[:, None] * np.sin(2 * np.pi * frequency[:, None] * steps + phase[:, None])).sum(axis=0)
        step = length / (len(steps) - 1)
        path = np.empty((len(steps), 2))
        path[0] = start
        path[1:, 0] = start[0] + np.cumsum(step * np.sin(heading + bend[1:]))
        path[1:, 1] = start[1] + np.cumsum(step * np.cos(heading + bend[1:]))
        # It ends where it leaves the breast.
        rows, cols = np.rint(path[:, 0]).astype(int), np.rint(path[:, 1]).astype(int)
        inside = (rows >= 0) & (rows < self.size[0]) & (cols >= 0) & (cols < self.size[1])
        inside[inside] = self.breast[rows[inside], cols[inside]]
        stop = int(np.argmin(inside)) if not inside.all() else len(path)
        return path[:stop]

    # the image

    def finish(self) -> tuple[np.ndarray, ...]:
        """(image uint16, fibroglandular fraction, benign, malignant and decoy masks), canonical frame."""
        # Quantum noise falls with the pixel area (more photons per pixel); about 1 % of the range at 0.1 mm.
        sigma = float(np.clip(0.0008 / self.spacing, 0.0005, 0.01))
        self.tissue += sigma * self.texture_rng.standard_normal(self.size, dtype=np.float32)
        top = 2**self.generator.bits - 1
        scaled = np.rint(np.clip(self.tissue, 0.0, 1.0) * top)
        image = np.where(self.breast, np.clip(scaled, 1, top), 0).astype(np.uint16)
        if self.rng.random() < self.generator.marker_probability:
            self.generator._add_marker(self.rng, image, self.breast)
        return image, self.gland, self.benign, self.malignant, self.decoy


class _Patch:
    """A window of the image that one lesion or decoy is drawn into: its added intensity and its mask."""

    def __init__(self, top: int, bottom: int, left: int, right: int) -> None:
        self.top, self.bottom, self.left, self.right = top, max(bottom, top), left, max(right, left)
        self.signal = np.zeros((self.bottom - top, self.right - left), dtype=np.float32)
        self.mask = np.zeros(self.signal.shape, dtype=bool)

    @classmethod
    def around(cls, center: Sequence[float], reach: float, size: tuple[int, int]) -> _Patch:
        return cls(
            max(int(np.floor(center[0] - reach)), 0),
            min(int(np.ceil(center[0] + reach)) + 1, size[0]),
            max(int(np.floor(center[1] - reach)), 0),
            min(int(np.ceil(center[1] + reach)) + 1, size[1]),
        )

    @property
    def region(self) -> tuple[slice, slice]:
        """Where the patch lies in the image."""
        return slice(self.top, self.bottom), slice(self.left, self.right)

    def grid(
        self, center: Sequence[float], reach: float, box: tuple[float, float, float, float] | None = None
    ) -> tuple[tuple[slice, slice], np.ndarray, np.ndarray] | None:
        """The part of the patch within ``reach`` of ``center`` (or in ``box``: top, bottom, left, right).

        Returns:
            (patch slices, row offsets (h, 1), column offsets (1, w)) relative to ``center``, or None when empty.
        """
        if box is None:
            box = (center[0] - reach, center[0] + reach, center[1] - reach, center[1] + reach)
        top, bottom = max(int(np.floor(box[0])), self.top), min(int(np.ceil(box[1])) + 1, self.bottom)
        left, right = max(int(np.floor(box[2])), self.left), min(int(np.ceil(box[3])) + 1, self.right)
        if bottom <= top or right <= left:
            return None
        dy = np.arange(top, bottom, dtype=np.float32)[:, None] - np.float32(center[0])
        dx = np.arange(left, right, dtype=np.float32)[None, :] - np.float32(center[1])
        return (slice(top - self.top, bottom - self.top), slice(left - self.left, right - self.left)), dy, dx


def _turn(dy: np.ndarray, dx: np.ndarray, angle: float) -> tuple[np.ndarray, np.ndarray]:
    """Offsets along and across the direction ``angle`` (radians from the column axis towards the rows)."""
    cos, sin = np.float32(np.cos(angle)), np.float32(np.sin(angle))
    return dx * cos + dy * sin, -dx * sin + dy * cos


def _paint_dome(
    patch: _Patch,
    center: Sequence[float],
    semi_major: float,
    semi_minor: float,
    angle: float,
    contrast: float,
    grow: float = 0.0,
) -> None:
    """An ellipsoid seen from above (round or oval mass, coarse calcification): sharp-edged, thickest at its center.

    Its mask is the ellipse, grown by ``grow`` pixels.
    """
    window = patch.grid(center, max(semi_major, 0.5) + grow + 2.0)
    if window is None:
        return
    local, dy, dx = window
    along, across = _turn(dy, dx, angle)
    major, minor = max(semi_major, 0.5), max(semi_minor, 0.5)
    rho2 = (along / major) ** 2 + (across / minor) ** 2
    # Smaller than a pixel, it spreads its attenuation over the pixel instead of vanishing.
    scale = semi_major * semi_minor / (major * minor)
    patch.signal[local] = np.maximum(patch.signal[local], contrast * scale * np.sqrt(np.clip(1.0 - rho2, 0.0, None)))
    if grow:
        rho2 = (along / (major + grow)) ** 2 + (across / (minor + grow)) ** 2
    patch.mask[local] |= rho2 <= 1.0


def _paint_speck(
    patch: _Patch, center: Sequence[float], diameter: float, aspect: float, angle: float, contrast: float
) -> None:
    """One calcification of ``diameter`` pixels; its mask is the speck dilated by one pixel.

    Specks of a few pixels or more are drawn as sharp ellipsoids. A smaller one is blurred over about a pixel (the
    detector's spread) with its projected volume kept, so a 0.2 mm speck at 1 mm pixels is faint, as it would be.
    """
    semi_major, semi_minor = diameter / 2.0, diameter * aspect / 2.0
    if semi_major >= 1.5:
        _paint_dome(patch, center, semi_major, semi_minor, angle, contrast, grow=1.0)
        return
    sigma_major, sigma_minor = max(semi_major / 1.5, 0.6), max(semi_minor / 1.5, 0.6)
    window = patch.grid(center, 3.0 * sigma_major + 2.0)
    if window is None:
        return
    local, dy, dx = window
    along, across = _turn(dy, dx, angle)
    # Volume of the ellipsoid, 2/3 pi a b c with c ~ (a + b)/2 folded into the contrast, over the Gaussian's area.
    peak = contrast * min(1.0, semi_major * semi_minor / (3.0 * sigma_major * sigma_minor))
    blob = peak * np.exp(-0.5 * ((along / sigma_major) ** 2 + (across / sigma_minor) ** 2))
    patch.signal[local] = np.maximum(patch.signal[local], blob)
    patch.mask[local] |= (along / (semi_major + 1.0)) ** 2 + (across / (semi_minor + 1.0)) ** 2 <= 1.0


def _paint_tube(
    patch: _Patch,
    start: Sequence[float],
    end: Sequence[float],
    radius: float,
    contrast: float,
    end_radius: float | None = None,
    end_contrast: float | None = None,
    grow: float = 0.0,
    offset: float = 0.0,
) -> None:
    """A cylinder from ``start`` to ``end`` seen from the side (vessel, spicule, rod-like calcification).

    Radius and contrast change linearly to ``end_radius`` and ``end_contrast``. With ``offset`` it draws instead the
    two walls at that distance from the axis (vascular calcification). Thinner than a pixel, it spreads over one.
    """
    end_radius = radius if end_radius is None else end_radius
    end_contrast = contrast if end_contrast is None else end_contrast
    reach = max(radius, end_radius, 0.6) + offset + grow + 2.0
    box = (
        min(start[0], end[0]) - reach,
        max(start[0], end[0]) + reach,
        min(start[1], end[1]) - reach,
        max(start[1], end[1]) + reach,
    )
    window = patch.grid(start, reach, box)
    if window is None:
        return
    local, dy, dx = window
    step_row, step_col = np.float32(end[0] - start[0]), np.float32(end[1] - start[1])
    length2 = max(float(step_row**2 + step_col**2), 1e-6)
    t = np.clip((dy * step_row + dx * step_col) / np.float32(length2), 0.0, 1.0)
    distance = np.hypot(dy - t * step_row, dx - t * step_col)
    if offset:
        distance = np.abs(distance - np.float32(offset))
    local_radius = radius + (end_radius - radius) * t
    effective = np.maximum(local_radius, 0.6)
    chord = np.sqrt(np.clip(1.0 - (distance / effective) ** 2, 0.0, None))
    signal = (contrast + (end_contrast - contrast) * t) * (local_radius / effective) * chord
    patch.signal[local] = np.maximum(patch.signal[local], signal)
    patch.mask[local] |= distance <= effective + grow


def _paint_spiculated(
    patch: _Patch, rng: np.random.Generator, center: Sequence[float], radius: float, contrast: float, spacing: float
) -> None:
    """An irregular core with an ill-defined margin and thin spicules radiating from it; the mask takes in both."""
    window = patch.grid(center, 1.4 * radius + 3.0)
    if window is not None:
        local, dy, dx = window
        theta = np.arctan2(dy, dx)
        distance = np.hypot(dy, dx)
        boundary = np.full_like(theta, radius)
        for k in range(2, 7):  # lobulation: a few low harmonics of the outline (at most +-27 % together)
            boundary += np.float32(radius * 0.12 / (k - 1)) * np.cos(k * theta + np.float32(rng.uniform(0, 2 * np.pi)))
        margin = 0.1 * radius + 0.4  # ill-defined: the edge fades over about a tenth of the radius
        inside = expit((boundary - distance) / np.float32(margin))
        dome = np.sqrt(np.clip(1.0 - (distance / boundary) ** 2, 0.0, None))
        patch.signal[local] = np.maximum(patch.signal[local], contrast * inside * (0.5 + 0.5 * dome))
        patch.mask[local] |= distance <= boundary
    for _ in range(int(rng.integers(6, 17))):
        angle = rng.uniform(0, 2 * np.pi)
        direction = np.array([np.sin(angle), np.cos(angle)])
        start = np.asarray(center) + 0.6 * radius * direction
        end = np.asarray(center) + radius * (1.0 + rng.uniform(0.9, 2.2)) * direction
        width = rng.uniform(0.3, 1.0) / spacing  # 0.3-1 mm thick strands of tissue
        strength = contrast * rng.uniform(0.3, 0.5)
        _paint_tube(patch, start, end, width / 2.0, strength, end_radius=0.15 * width, end_contrast=0.2 * strength)


def _paint_cluster(
    patch: _Patch,
    rng: np.random.Generator,
    center: Sequence[float],
    radius: float,
    lesion: Lesion,
    speck_mm: tuple[float, float],
    spacing: float,
) -> None:
    """5-30 fine pleomorphic calcifications within ``radius`` pixels, often in a line or a segment (ducts)."""
    count = int(rng.integers(5, 31))
    elongation = rng.uniform(0.3, 1.0)
    along = rng.normal(0.0, 0.5, count)
    across = rng.normal(0.0, 0.5 * elongation, count)
    scale = np.maximum(np.hypot(along, across), 1.0)  # the few drawn beyond the edge go to the edge
    diameters = rng.uniform(*speck_mm, count) / spacing
    reach = np.maximum(radius - diameters / 2.0, 0.0)
    cos, sin = np.cos(lesion.angle), np.sin(lesion.angle)
    rows = center[0] + reach * (along * sin + across * cos) / scale
    cols = center[1] + reach * (along * cos - across * sin) / scale
    aspects, angles = rng.uniform(0.3, 1.0, count), rng.uniform(0.0, np.pi, count)
    jitter = rng.uniform(0.8, 1.2, count)
    for k in range(count):
        # Pleomorphic: specks of different sizes and shapes; a thicker one attenuates more.
        brightness = min(lesion.contrast * diameters[k] * spacing / 0.5 * jitter[k], 1.0)
        _paint_speck(patch, (rows[k], cols[k]), diameters[k], aspects[k], angles[k], brightness)


def _paint_popcorn(
    patch: _Patch, rng: np.random.Generator, center: Sequence[float], radius: float, contrast: float, spacing: float
) -> None:
    """Coarse "popcorn" calcification (an involuting fibroadenoma): 3-8 irregular 1-3 mm chunks."""
    for _ in range(int(rng.integers(3, 9))):
        size = min(rng.uniform(1.0, 3.0) / spacing, radius)
        distance, phi = (radius - size / 2.0) * np.sqrt(rng.random()), rng.uniform(0, 2 * np.pi)
        chunk = (center[0] + distance * np.sin(phi), center[1] + distance * np.cos(phi))
        brightness = min(contrast * size * spacing / 0.5, 1.0)
        for _ in range(2):  # two overlapping lumps make a chunk irregular
            shift = rng.normal(0.0, 0.2 * size, 2)
            _paint_speck(
                patch,
                (chunk[0] + shift[0], chunk[1] + shift[1]),
                size,
                rng.uniform(0.5, 1.0),
                rng.uniform(0, np.pi),
                brightness,
            )


def _paint_rods(
    patch: _Patch, rng: np.random.Generator, center: Sequence[float], radius: float, lesion: Lesion, spacing: float
) -> None:
    """Large rod-like (secretory) calcifications: 2-6 solid rods, 0.5-1.2 mm thick, 3-10 mm long, along the ducts."""
    for _ in range(int(rng.integers(2, 7))):
        width = rng.uniform(0.5, 1.2) / spacing
        length = min(rng.uniform(3.0, 10.0) / spacing, 1.6 * radius)
        direction = lesion.angle + rng.uniform(-0.3, 0.3)
        distance, phi = (radius - length / 2.0) * np.sqrt(rng.random()), rng.uniform(0, 2 * np.pi)
        middle = np.array([center[0] + distance * np.sin(phi), center[1] + distance * np.cos(phi)])
        half = 0.5 * length * np.array([np.sin(direction), np.cos(direction)])
        brightness = min(lesion.contrast * width * spacing / 0.5, 1.0)
        _paint_tube(
            patch, middle - half, middle + half, width / 2.0, brightness, end_radius=0.7 * width / 2.0, grow=1.0
        )


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
    names = _PIXEL_SETTINGS if generator.difficulty == "easy" else (*_PIXEL_SETTINGS, "difficulty", "density")
    # The easy level leaves its settings list as it was, so its files keep the UIDs they always had.
    settings = repr([(name, getattr(generator, name)) for name in names])
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


def _describe(findings: Sequence[Finding]) -> str:
    """A datalist field for findings, e.g. ``"mass 12.3 mm, calcifications 8.1 mm"``, or ``"none"``.

    A string, so batches of items collate; never empty, as datalist readers (MONAI's too) would take an empty
    string for the datalist's own folder.
    """
    return ", ".join(f"{finding.kind} {finding.size_mm:.1f} mm" for finding in findings) or "none"


def write_synthetic_dataset(
    out_dir: str | os.PathLike[str],
    num: int,
    size: Sequence[int] = (512, 320),
    seed: int = 0,
    write_dicom: bool = True,
    fractions: Sequence[float] = (0.8, 0.1, 0.1),
    progress: bool = True,
    generator: SyntheticMammogramGenerator | None = None,
    difficulty: str | None = None,
) -> Path:
    """Generate ``num`` synthetic mammograms and write them with masks, DICOM copies and a datalist.

    Layout under ``out_dir``: ``images/<exam>_<L|R>-<CC|MLO>.png`` (16-bit, 12-bit values),
    ``masks/<name>_benign.png`` and ``masks/<name>_malignant.png`` (8-bit, 0/255, raw geometry),
    ``dicom/<name>.dcm`` (Digital Mammography X-Ray Image For Presentation with every Type 1 and 2 attribute,
    see :func:`synthetic_dicom_dataset`; one study per exam; MONOCHROME2 for even image indices, MONOCHROME1
    for odd ones) and ``datalist.json`` (patient-level split). Every file is written atomically.

    At the moderate and realistic levels each datalist item also records ``difficulty``, ``density`` (BI-RADS
    grade), ``fibroglandular_fraction`` and, as text, ``lesions`` and ``decoys`` (kind and size in mm of each,
    e.g. ``"spiculated 11.2 mm"``, ``"none"`` without any); plain strings and numbers, so data loaders still
    collate the items.

    Args:
        out_dir: output folder (created).
        num: number of images (four per exam).
        size: (H, W) of each image.
        seed: generator seed.
        write_dicom: also write the DICOM files (the datalist's ``image_dicom``).
        fractions: (training, validation, test) shares of the patients.
        progress: show a progress bar.
        generator: a configured generator (its own size, seed and difficulty then apply).
        difficulty: ``"easy"`` (default), ``"moderate"`` or ``"realistic"``; with ``generator``, only its own.

    Returns:
        Path of the datalist JSON.

    Raises:
        ValueError: an unknown difficulty, or one that differs from ``generator``'s.
    """
    from tqdm import tqdm

    if difficulty is not None:
        _check_difficulty(difficulty)
    if generator is None:
        maker = SyntheticMammogramGenerator(size=size, seed=seed, difficulty=difficulty or "easy")
    elif difficulty is not None and difficulty != generator.difficulty:
        raise ValueError(f"difficulty {difficulty!r} differs from the generator's difficulty {generator.difficulty!r}")
    else:
        maker = generator
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
        if maker.difficulty != "easy":  # the easy level's datalist stays as it always was
            item["difficulty"] = maker.difficulty
            item["density"] = sample.density
            item["fibroglandular_fraction"] = round(float(sample.fibroglandular_fraction or 0.0), 4)
            item["lesions"] = _describe(sample.lesions)
            item["decoys"] = _describe(sample.decoys)
        for kind, mask in (("benign", sample.mask_benign), ("malignant", sample.mask_malignant)):
            mask_path = root / "masks" / f"{sample.name}_{kind}.png"
            write_png(mask_path, mask.astype(np.uint8) * 255)
            item[f"mask_{kind}"] = str(mask_path)
        if write_dicom:
            dicom_path = root / "dicom" / f"{sample.name}.dcm"
            write_dicom_mammogram(dicom_path, synthetic_dicom_dataset(sample, maker, patient_id=item["patient_id"]))
            item["image_dicom"] = str(dicom_path)
        items.append(item)
    level = "" if maker.difficulty == "easy" else f", difficulty {maker.difficulty}"
    return write_datalist(
        root / "datalist.json",
        split_by_patient(items, fractions, seed=maker.seed),
        name="synthetic-mammography",
        description=f"monai_glam synthetic mammograms: {num} images of {maker.size[0]}x{maker.size[1]}, "
        f"seed {maker.seed}{level}",
    )
