"""Array transforms for mammograms: loading and the published NYU/GLAM preprocessing.

The published weights were trained on raw mammograms cropped to the breast (:class:`BreastCrop`), mirrored so
the breast points right (:class:`OrientToRight`), cut to a fixed window anchored at the breast's right-most
point (:class:`BestCenterWindow`) and standardized (:class:`StandardizeIntensity`).

Every transform takes a channel-first ``(C, H, W)`` tensor (usually a :class:`~monai.data.MetaTensor` from
:class:`LoadMammogram`) and returns a MetaTensor. The spatial ones record themselves in
``applied_operations`` through MONAI's :class:`~monai.transforms.InvertibleTransform` machinery, so
``inverse`` (and ``Invertd`` on the dictionary versions) maps outputs, e.g. saliency maps, back onto the raw
image. What they decide is also written to ``meta``: ``window_location`` (the crop box in the raw image),
``cropped_shape``, ``rightmost_point``/``bottommost_point`` (the window's anchors), ``flipped``, ``best_center``
(in the cropped right-facing image) and ``window_box``; the keys are :class:`~monai_glam.utils.enums.MetaKeys`.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any, ClassVar

import numpy as np
import torch
from monai.data import MetaTensor
from monai.transforms import CropForeground, Flip, InvertibleTransform, RandomizableTransform, Resize, Transform
from monai.transforms.croppad.array import Crop
from monai.transforms.spatial.functional import flip
from monai.utils import TraceKeys, TransformBackends, convert_to_numpy, convert_to_tensor

from monai_glam.data.image_reader import load_mammogram
from monai_glam.data.meta import normalize_laterality, normalize_view
from monai_glam.transforms.geometry import (
    BreastCropGeometry,
    best_center,
    breast_crop_geometry,
    extreme_points,
    raw_facing_right,
    window_box,
)
from monai_glam.utils.enums import MetaKeys

__all__ = [
    "BEST_CENTER",
    "BOTTOMMOST_POINT",
    "BREAST_BOX",
    "BREAST_BOX_SHAPE",
    "CROPPED_SHAPE",
    "FACING_RIGHT",
    "FLIPPED",
    "PAPER_WINDOW_SIZE",
    "RIGHTMOST_POINT",
    "WINDOW_BOX",
    "WINDOW_LOCATION",
    "BestCenterWindow",
    "BreastCrop",
    "LoadMammogram",
    "OrientToRight",
    "RandBestCenterWindow",
    "StandardizeIntensity",
]

# Meta keys written by the transforms: aliases of the MetaKeys members (plain ``str`` values, so the meta dicts
# keep plain string keys), kept for existing imports.
BREAST_BOX: str = MetaKeys.BREAST_BOX.value
BREAST_BOX_SHAPE: str = MetaKeys.BREAST_BOX_SHAPE.value
RIGHTMOST_POINT: str = MetaKeys.RIGHTMOST_POINT.value
BOTTOMMOST_POINT: str = MetaKeys.BOTTOMMOST_POINT.value
FACING_RIGHT: str = MetaKeys.FACING_RIGHT.value
WINDOW_LOCATION: str = MetaKeys.WINDOW_LOCATION.value
CROPPED_SHAPE: str = MetaKeys.CROPPED_SHAPE.value
FLIPPED: str = MetaKeys.FLIPPED.value
BEST_CENTER: str = MetaKeys.BEST_CENTER.value
WINDOW_BOX: str = MetaKeys.WINDOW_BOX.value

PAPER_WINDOW_SIZE = (2944, 1920)


def _as_image(img: Any) -> MetaTensor:
    """``img`` as a (C, H, W) MetaTensor (meta kept when it already is one)."""
    tensor = img if isinstance(img, MetaTensor) else convert_to_tensor(img, track_meta=True)
    if not isinstance(tensor, MetaTensor):  # track_meta is off globally: wrap anyway, the meta is needed here
        tensor = MetaTensor(tensor)
    if tensor.ndim != 3:
        raise ValueError(f"expected a channel-first (C, H, W) image, got shape {tuple(tensor.shape)}")
    if tensor.shape[-2] == 0 or tensor.shape[-1] == 0:
        raise ValueError(f"empty image of shape {tuple(tensor.shape)}")
    return tensor


def _window_size(spatial_size: Sequence[int], name: str = "spatial_size") -> tuple[int, int]:
    size = tuple(int(s) for s in spatial_size)
    if len(size) != 2 or min(size) < 1:
        raise ValueError(f"{name} must be two positive integers (h, w), got {spatial_size!r}")
    return size  # type: ignore[return-value]


def _source_name(img: MetaTensor) -> str:
    return str(img.meta.get(MetaKeys.FILENAME, "image"))


class LoadMammogram(Transform):
    """Load a DICOM, PNG or NIfTI mammogram as a (1, H, W) float32 MetaTensor.

    See :func:`monai_glam.data.load_mammogram` for formats, metadata and errors.

    Args:
        laterality: ``"L"``/``"R"`` to override the file's laterality.
        view: view code (``"CC"``, ``"MLO"``) to override the file's view.
        horizontal_flip: the exam list's flag that images are stored mirrored.
    """

    backend: ClassVar[list[TransformBackends]] = [TransformBackends.TORCH]

    def __init__(self, laterality: str | None = None, view: str | None = None, horizontal_flip: bool = False) -> None:
        self.laterality = laterality
        self.view = view
        self.horizontal_flip = horizontal_flip

    def __call__(self, path: str | os.PathLike[str]) -> MetaTensor:
        return load_mammogram(path, laterality=self.laterality, view=self.view, horizontal_flip=self.horizontal_flip)


def _facing_right(img: MetaTensor, laterality: str | None, horizontal_flip: bool | None) -> bool:
    """Raw orientation: explicit arguments, then what an earlier transform decided, then meta, then pixels."""
    meta = img.meta
    if laterality is None and FACING_RIGHT in meta:
        return bool(meta[FACING_RIGHT])
    side = normalize_laterality(laterality if laterality is not None else meta.get(MetaKeys.LATERALITY))
    mirrored = bool(meta.get(MetaKeys.HORIZONTAL_FLIP, False)) if horizontal_flip is None else bool(horizontal_flip)
    return raw_facing_right(side, mirrored, convert_to_numpy(img[0]) if not side else None)


class BreastCrop(Crop):
    """Crop a raw mammogram to its breast, as the published preprocessing did.

    Mask ``image > 0``, erode ``erosion_iterations`` times, keep the largest connected component, dilate it back,
    take its bounding box and add ``buffer`` pixels above, below and on the nipple side (away from the chest
    wall). The erosion and dilation remove thin lines and detached markers. The box is computed on the first
    channel and applied to all channels.

    Which side the chest wall is on comes from ``laterality``/``horizontal_flip`` (arguments, else the image's
    meta); when laterality is unknown the brighter half of the image is taken as the chest-wall side.

    Writes to ``meta``: ``window_location`` (top, bottom, left, right in the input), ``cropped_shape``,
    ``facing_right`` (the raw orientation), the breast region ``breast_box`` (with ``breast_box_shape``), and the
    published anchor points ``rightmost_point`` and ``bottommost_point``, (row, col) in the crop turned to point
    right (see :func:`~monai_glam.transforms.geometry.extreme_points`), which :class:`BestCenterWindow` uses.
    Inverse: zero-pads back to the input size.

    Args:
        erosion_iterations: erosion/dilation radius in pixels (published: 100). Scale it with the image size.
        buffer: margin in pixels (published: 50).
        laterality: ``"L"`` or ``"R"``, overrides the meta.
        horizontal_flip: overrides the meta's ``horizontal_flip``.
    """

    backend: ClassVar[list[TransformBackends]] = [TransformBackends.TORCH]

    def __init__(
        self,
        erosion_iterations: int = 100,
        buffer: int = 50,
        laterality: str | None = None,
        horizontal_flip: bool | None = None,
    ) -> None:
        super().__init__(lazy=False)
        if int(erosion_iterations) < 0:
            raise ValueError(f"erosion_iterations must be >= 0, got {erosion_iterations}")
        if int(buffer) < 0:
            raise ValueError(f"buffer must be >= 0, got {buffer}")
        if laterality is not None and not normalize_laterality(laterality):
            raise ValueError(f"laterality must be 'L' or 'R', got {laterality!r}")
        self.erosion_iterations = int(erosion_iterations)
        self.buffer = int(buffer)
        self.laterality = laterality
        self.horizontal_flip = horizontal_flip

    def compute_geometry(self, img: torch.Tensor) -> tuple[BreastCropGeometry, bool]:
        """The crop's geometry (box and region in input coordinates, anchor points) and the raw orientation.

        Args:
            img: (C, H, W) raw mammogram; the first channel decides.

        Returns:
            ``(geometry, facing_right)``.

        Raises:
            ValueError: the image is empty (no pixel above 0); the message names the source file.
        """
        image = _as_image(img)
        facing_right = _facing_right(image, self.laterality, self.horizontal_flip)
        try:
            geometry = breast_crop_geometry(
                convert_to_numpy(image[0]), facing_right, self.erosion_iterations, self.buffer
            )
        except ValueError as err:
            raise ValueError(f"{_source_name(image)}: {err}") from err
        return geometry, facing_right

    def crop(
        self, img: torch.Tensor, geometry: BreastCropGeometry | Sequence[int], facing_right: bool | None = None
    ) -> MetaTensor:
        """Crop ``img`` and record the crop in its meta.

        Args:
            img: (C, H, W) image in the raw frame.
            geometry: from :meth:`compute_geometry`, or just a box (top, bottom, left, right) to crop to (then
                no breast region or anchor points are recorded).
            facing_right: the raw orientation to record.

        Returns:
            (C, bottom - top, right - left) MetaTensor.
        """
        image = _as_image(img)
        box = geometry.window_location if isinstance(geometry, BreastCropGeometry) else geometry
        top, bottom, left, right = (int(v) for v in box)
        out = super().__call__(image, slices=(slice(top, bottom), slice(left, right)))
        out.meta[WINDOW_LOCATION] = (top, bottom, left, right)
        out.meta[CROPPED_SHAPE] = (bottom - top, right - left)
        if facing_right is not None:
            out.meta[FACING_RIGHT] = bool(facing_right)
        for key in (RIGHTMOST_POINT, BOTTOMMOST_POINT):  # stale ones from an earlier crop would mislead
            out.meta.pop(key, None)
        if isinstance(geometry, BreastCropGeometry):
            region = geometry.region
            out.meta[BREAST_BOX] = (region[0] - top, region[1] - top, region[2] - left, region[3] - left)
            out.meta[BREAST_BOX_SHAPE] = (bottom - top, right - left)
            out.meta[RIGHTMOST_POINT] = tuple(int(v) for v in geometry.rightmost_point)
            out.meta[BOTTOMMOST_POINT] = tuple(int(v) for v in geometry.bottommost_point)
        return out

    def __call__(self, img: torch.Tensor) -> MetaTensor:  # type: ignore[override]
        geometry, facing_right = self.compute_geometry(img)
        return self.crop(img, geometry, facing_right)


class OrientToRight(InvertibleTransform):
    """Mirror images so every breast faces right (chest wall on the left), as the published preprocessing did.

    Raw L views face right and raw R views face left; ``horizontal_flip`` (the exam list's flag) inverts that
    rule. The decision is taken from, in order: the arguments, a ``facing_right`` entry left by
    :class:`BreastCrop`, the meta's laterality, and as a last resort the image (the brighter half is the
    chest-wall side). Writes ``flipped`` and ``facing_right=True`` to ``meta`` and mirrors ``breast_box``.
    ``rightmost_point``/``bottommost_point`` from :class:`BreastCrop` are already in the right-facing frame and
    stay as they are; they are dropped when the arguments force a decision that contradicts the crop's
    orientation. Inverse: mirrors back when it mirrored.

    Args:
        laterality: ``"L"`` or ``"R"``, overrides the meta.
        horizontal_flip: overrides the meta's ``horizontal_flip``.
    """

    backend: ClassVar[list[TransformBackends]] = [TransformBackends.TORCH]

    def __init__(self, laterality: str | None = None, horizontal_flip: bool | None = None) -> None:
        if laterality is not None and not normalize_laterality(laterality):
            raise ValueError(f"laterality must be 'L' or 'R', got {laterality!r}")
        self.laterality = laterality
        self.horizontal_flip = horizontal_flip

    def needs_flip(self, img: torch.Tensor) -> bool:
        """Whether ``img`` faces left and must be mirrored."""
        return not _facing_right(_as_image(img), self.laterality, self.horizontal_flip)

    def orient(self, img: torch.Tensor, do_flip: bool) -> MetaTensor:
        """Mirror ``img`` left-right when ``do_flip`` and record it (also when not mirrored, for the inverse)."""
        image = _as_image(img)
        recorded = image.meta.get(FACING_RIGHT)
        if do_flip:
            out = flip(image, (1,), False, self.get_transform_info())
        else:
            out = MetaTensor(image.as_tensor().clone())
            out.copy_meta_from(image)
            self.push_transform(out, extra_info={"axes": None})
        out.meta[FLIPPED] = bool(do_flip)
        out.meta[FACING_RIGHT] = True
        if recorded is not None and bool(recorded) == bool(do_flip):  # anchors taken for the other orientation
            for key in (RIGHTMOST_POINT, BOTTOMMOST_POINT):
                out.meta.pop(key, None)
        box = out.meta.get(BREAST_BOX)
        if do_flip and box is not None:
            width = int(out.shape[-1])
            out.meta[BREAST_BOX] = (box[0], box[1], width - box[3], width - box[2])
        return out

    def __call__(self, img: torch.Tensor) -> MetaTensor:
        return self.orient(img, self.needs_flip(img))

    def inverse(self, data: torch.Tensor) -> torch.Tensor:
        transform = self.pop_transform(data)
        axes = transform[TraceKeys.EXTRA_INFO]["axes"]
        if not axes:
            return data
        flipper = Flip(spatial_axis=axes)
        with flipper.trace_transform(False):
            return flipper(data)


def _anchor_points(image: MetaTensor, breast: np.ndarray) -> tuple[int, int]:
    """Column of the published right-most point and row of the bottom-most point of a right-facing image.

    They come from :class:`BreastCrop`'s ``rightmost_point``/``bottommost_point`` when those describe this frame
    (the cropped shape, turned to face right). Otherwise the same rule is applied to the non-zero pixels
    themselves, with the published R-view convention when the image was mirrored (``flipped`` in the meta).
    """
    meta = image.meta
    rightmost, bottommost = meta.get(RIGHTMOST_POINT), meta.get(BOTTOMMOST_POINT)
    same_frame = tuple(int(v) for v in meta.get(CROPPED_SHAPE, ())) == tuple(image.shape[-2:])
    if rightmost is not None and bottommost is not None and same_frame and bool(meta.get(FACING_RIGHT, False)):
        return int(rightmost[1]), int(bottommost[0])
    if not breast.any():
        raise ValueError(f"{_source_name(image)}: empty image, no pixel is above 0")
    flipped = bool(meta.get(FLIPPED, False))
    try:
        (_, column), (row, _) = extreme_points(breast[:, ::-1] if flipped else breast, not flipped)
    except ValueError as err:
        raise ValueError(f"{_source_name(image)}: {err}") from err
    return column, row


class BestCenterWindow(CropForeground):
    """Cut the fixed-size window around the best center of a cropped, right-facing mammogram.

    The published rule (:func:`~monai_glam.transforms.geometry.best_center`): the center column is
    ``rightmost - w // 2 - 1`` with ``rightmost`` the column of the published right-most point, taken from the
    dilated breast region in the lower two thirds of the crop (``rightmost_point`` from :class:`BreastCrop`);
    for MLO the center row is ``bottommost - h // 2 - 1`` (the region's last row); for CC the row covering the
    most breast pixels is searched.
    Along an axis where the image is shorter than the window it is zero-padded (CC rows evenly, MLO rows below,
    columns on the right); along a longer axis the window is shifted inside the image. Without anchor points in
    the meta (an image that did not come from :class:`BreastCrop`) the rule is applied to the image's non-zero
    pixels. Writes ``best_center`` (row, col in the input) and ``window_box`` to ``meta``. Inverse: removes the
    padding and zero-pads back to the input size (MONAI's ``CropForeground``
    inverse, whose crop-and-pad machinery this transform reuses).

    Args:
        spatial_size: (h, w) of the window; the paper uses 2944x1920. Smaller sizes (e.g. 256x160) suit tests
            and CPU training on downscaled images.
        view: ``"CC"``, ``"MLO"``, … overrides the meta's view; only ``"MLO"`` anchors the row.
    """

    backend: ClassVar[list[TransformBackends]] = [TransformBackends.TORCH]

    def __init__(self, spatial_size: Sequence[int] = PAPER_WINDOW_SIZE, view: str | None = None) -> None:
        super().__init__(margin=0, allow_smaller=False, mode="constant")
        self.spatial_size = _window_size(spatial_size)
        if view is not None and not normalize_view(view):
            raise ValueError(f"view must be a view code such as 'CC' or 'MLO', got {view!r}")
        self.view = view

    def compute_window(
        self,
        img: torch.Tensor,
        spatial_size: Sequence[int] | None = None,
        offset: Sequence[int] = (0, 0),
    ) -> tuple[tuple[int, int], tuple[int, int, int, int]]:
        """Best center (row, col) and window box (top, bottom, left, right) in ``img``'s coordinates.

        Args:
            img: (C, H, W) cropped right-facing image; the first channel decides.
            spatial_size: window size, default ``self.spatial_size``.
            offset: (rows, cols) shift of the window (augmentation noise).
        """
        image = _as_image(img)
        size = self.spatial_size if spatial_size is None else _window_size(spatial_size)
        view = normalize_view(self.view if self.view is not None else image.meta.get(MetaKeys.VIEW))
        breast = convert_to_numpy(image[0]) > 0
        rightmost, bottommost = _anchor_points(image, breast)
        center = best_center(breast, view, size, rightmost, bottommost)
        return center, window_box(image.shape[-2:], center, size, view, offset)

    def cut(self, img: torch.Tensor, box: Sequence[int], center: Sequence[int] | None = None) -> MetaTensor:
        """Cut ``box`` out of ``img``, zero-padding what lies outside, and record it in the meta."""
        image = _as_image(img)
        top, bottom, left, right = (int(v) for v in box)
        out = self.crop_pad(image, np.asarray([top, left]), np.asarray([bottom, right]))
        out.meta[WINDOW_BOX] = (top, bottom, left, right)
        if center is not None:
            out.meta[BEST_CENTER] = (int(center[0]), int(center[1]))
        return out

    def __call__(self, img: torch.Tensor) -> MetaTensor:  # type: ignore[override]
        center, box = self.compute_window(img)
        return self.cut(img, box, center)


class RandBestCenterWindow(RandomizableTransform, InvertibleTransform):
    """:class:`BestCenterWindow` with the published training noise on the window position and size.

    Each call draws a shift of the window in ``[-max_crop_noise, max_crop_noise]`` pixels per axis and a size
    change in ``[-max_crop_size_noise, max_crop_size_noise]`` (both axes); the window of the changed size is cut
    and resized back to ``spatial_size`` (bilinear; masks nearest in the dictionary version). With probability
    ``1 - prob`` the plain best-center window is cut. Inverse: undoes the resize, then the cut.

    Args:
        spatial_size: (h, w) of the output.
        max_crop_noise: largest shift (rows, cols) in pixels (published: 100, 100).
        max_crop_size_noise: largest window size change in pixels (published: 100).
        view: overrides the meta's view.
        prob: probability of adding noise.
    """

    backend: ClassVar[list[TransformBackends]] = [TransformBackends.TORCH]

    def __init__(
        self,
        spatial_size: Sequence[int] = PAPER_WINDOW_SIZE,
        max_crop_noise: Sequence[int] = (100, 100),
        max_crop_size_noise: int = 100,
        view: str | None = None,
        prob: float = 1.0,
    ) -> None:
        RandomizableTransform.__init__(self, prob)
        self.cropper = BestCenterWindow(spatial_size, view)
        self.spatial_size = self.cropper.spatial_size
        noise = tuple(int(n) for n in max_crop_noise)
        if len(noise) != 2 or min(noise) < 0:
            raise ValueError(f"max_crop_noise must be two integers >= 0, got {max_crop_noise!r}")
        if not 0 <= int(max_crop_size_noise) < min(self.spatial_size):
            raise ValueError(
                f"max_crop_size_noise must be in [0, {min(self.spatial_size)}) for spatial_size "
                f"{self.spatial_size}, got {max_crop_size_noise}"
            )
        self.max_crop_noise = noise
        self.max_crop_size_noise = int(max_crop_size_noise)
        self.resizer = Resize(self.spatial_size, mode="bilinear")
        self.offset: tuple[int, int] = (0, 0)
        self.size_noise = 0

    def randomize(self, data: Any = None) -> None:
        super().randomize(None)
        if not self._do_transform:
            self.offset, self.size_noise = (0, 0), 0
            return
        rows, cols = self.max_crop_noise
        self.offset = (int(self.R.randint(-rows, rows + 1)), int(self.R.randint(-cols, cols + 1)))
        size = self.max_crop_size_noise
        self.size_noise = int(self.R.randint(-size, size + 1))

    def noisy_size(self) -> tuple[int, int]:
        """The window size drawn by the last :meth:`randomize`."""
        return self.spatial_size[0] + self.size_noise, self.spatial_size[1] + self.size_noise

    def cut(
        self, img: torch.Tensor, box: Sequence[int], center: Sequence[int] | None = None, mode: str = "bilinear"
    ) -> MetaTensor:
        """Cut ``box`` and resize it to ``spatial_size`` with interpolation ``mode`` when the size differs."""
        out = self.cropper.cut(img, box, center)
        if tuple(out.shape[-2:]) != self.spatial_size:
            out = self.resizer(out, mode=mode)
        return out

    def __call__(self, img: torch.Tensor, randomize: bool = True) -> MetaTensor:
        if randomize:
            self.randomize()
        center, box = self.cropper.compute_window(img, self.noisy_size(), self.offset)
        return self.cut(img, box, center)

    def inverse(self, data: torch.Tensor) -> torch.Tensor:
        last = data.applied_operations[-1] if isinstance(data, MetaTensor) and data.applied_operations else {}
        if last.get(TraceKeys.CLASS_NAME) == Resize.__name__:  # the size noise was non-zero: undo the resize
            data = self.resizer.inverse(data)
        return self.cropper.inverse(data)


class StandardizeIntensity(Transform):
    """Per-image standardization as published: subtract the mean, divide by ``max(std, eps)``.

    Mean and (population) standard deviation are taken over all pixels, background included, as published.

    Args:
        eps: lower bound of the divisor (published: 1e-5).
        channel_wise: standardize each channel on its own instead of the whole image.
    """

    backend: ClassVar[list[TransformBackends]] = [TransformBackends.TORCH]

    def __init__(self, eps: float = 1e-5, channel_wise: bool = False) -> None:
        if not eps > 0:
            raise ValueError(f"eps must be > 0, got {eps}")
        self.eps = float(eps)
        self.channel_wise = channel_wise

    def __call__(self, img: torch.Tensor) -> torch.Tensor:
        image = img if isinstance(img, torch.Tensor) else convert_to_tensor(img, track_meta=True)
        # float64 statistics: a 2944x1920 float32 sum loses digits the reference tolerances notice.
        values = image.to(torch.float64)
        dims = tuple(range(1, values.ndim)) if self.channel_wise else tuple(range(values.ndim))
        mean = values.mean(dim=dims, keepdim=True)
        std = values.std(dim=dims, keepdim=True, correction=0).clamp_min(self.eps)
        return ((values - mean) / std).to(torch.float32)
