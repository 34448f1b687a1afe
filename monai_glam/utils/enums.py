"""Names used as dictionary keys across monai_glam, in one place.

Every key that more than one module reads or writes is defined here: GLAM's outputs (:class:`GLAMKeys`), the
keys of a preprocessed item and batch (:class:`BatchKeys`), the metadata the readers and transforms write on a
:class:`~monai.data.MetaTensor` (:class:`MetaKeys`), the loss terms (:class:`LossTermKeys`) and the class
names (:data:`CLASS_NAMES`). Members are ``str`` instances, so ``d[BatchKeys.MASK]`` and ``d["mask"]`` are the
same entry, and JSON/CSV files keep plain strings.
"""

from __future__ import annotations

from collections.abc import Sequence

from monai.utils import StrEnum

__all__ = [
    "CLASS_NAMES",
    "DEFAULT_MASK_KEYS",
    "BatchKeys",
    "GLAMKeys",
    "LossTermKeys",
    "MetaKeys",
    "TrainingOutputKeys",
    "mask_keys_for",
]

#: Display names of GLAM's two classes, in channel order: channel 0 is benign, channel 1 malignant.
CLASS_NAMES: tuple[str, ...] = ("benign", "malignant")


class GLAMKeys(StrEnum):
    """Keys of the dictionaries returned by :class:`~monai_glam.networks.nets.GLAM` and its modules.

    Members are ``str`` instances, so ``out[GLAMKeys.PROB_GLOBAL]`` and ``out["prob_global"]`` are the same.
    Channel ``0`` of every map or score is *benign* and channel ``1`` is *malignant*.
    """

    #: ``(N, C)`` image prediction of the global module, ŷ_g (a probability).
    PROB_GLOBAL = "prob_global"
    #: ``(N, C)`` image prediction of the local module, ŷ_l (a probability).
    PROB_LOCAL = "prob_local"
    #: ``(N, C, h, w)`` global saliency map S_g = Σ_i w_i · A_i, values in [0, 1].
    SALIENCY_GLOBAL = "saliency_global"
    #: ``(N, C, h, w)`` per-scale sigmoid map A1 (stride 16 in the paper configuration).
    SALIENCY_A1 = "saliency_a1"
    #: ``(N, C, h, w)`` per-scale sigmoid map A2 (stride 32, nearest-upsampled to A1's size).
    SALIENCY_A2 = "saliency_a2"
    #: ``(N, C, h, w)`` per-scale sigmoid map A3 (stride 64, nearest-upsampled to A1's size).
    SALIENCY_A3 = "saliency_a3"
    #: ``(N, K, 4)`` int64 boxes ``(row0, col0, row1, col1)`` of the selected patches, input pixels, in
    #: selection order (``row1``/``col1`` exclusive).
    PATCH_BOXES = "patch_boxes"
    #: ``(N, K, C, p/4, p/4)`` saliency maps of the selected patches, S_l.
    PATCH_SALIENCY = "patch_saliency"
    #: ``(N, C, H, W)`` fused full-resolution saliency map S = (S_l pasted + up(S_g)) / 2.
    SALIENCY = "saliency"


class BatchKeys(StrEnum):
    """Keys of a preprocessed item (and of a collated batch) in the training, validation and inference chains.

    ``IMAGE``, ``LABEL`` and ``PRED`` equal MONAI's ``CommonKeys``; the per-class ground-truth files are
    ``mask_<class>`` (:func:`mask_keys_for`), stacked by :class:`~monai_glam.transforms.GLAMTargetsd` into
    ``MASK`` with the availability flags ``MASK_AVAILABLE``.
    """

    #: ``(1, H, W)`` mammogram.
    IMAGE = "image"
    #: ``(C,)`` image-level labels in {0, 1} (benign, malignant).
    LABEL = "label"
    #: the network's output dictionary (engine outputs only).
    PRED = "pred"
    #: ``(C, H, W)`` ground-truth lesion masks stacked in channel order; zeros where a class has no mask.
    MASK = "mask"
    #: ``(C,)`` 1 where the class mask was read from a file, 0 where it was filled in.
    MASK_AVAILABLE = "mask_available"
    #: the datalist's DICOM copy of the image (optional).
    IMAGE_DICOM = "image_dicom"
    #: ``(1, H, W)`` copy of the loaded mammogram before any spatial step (inference chain only), for the
    #: original-geometry overlays.
    RAW_IMAGE = "raw_image"
    PATIENT_ID = "patient_id"
    EXAM_ID = "exam_id"


def mask_keys_for(class_names: Sequence[str] = CLASS_NAMES) -> tuple[str, ...]:
    """Datalist keys of the per-class mask files, ``mask_<class>`` in channel order."""
    return tuple(f"mask_{name}" for name in class_names)


#: Datalist keys of the per-class lesion masks, in channel order: ``("mask_benign", "mask_malignant")``.
DEFAULT_MASK_KEYS: tuple[str, ...] = mask_keys_for(CLASS_NAMES)


class MetaKeys(StrEnum):
    """Metadata keys on the mammogram :class:`~monai.data.MetaTensor` (readers and transforms write them)."""

    #: MONAI's own key for the source of an image (``LoadImage`` writes it, ``SaveImage`` reads it).
    FILENAME = "filename_or_obj"
    LATERALITY = "laterality"
    VIEW = "view"
    #: ``(row, col)`` pixel spacing in mm.
    SPACING = "spacing"
    BITS_STORED = "bits_stored"
    #: the exam list's flag that the raw image is stored mirrored.
    HORIZONTAL_FLIP = "horizontal_flip"
    #: set on an all-zero mask that ``LoadMammogramd(fill_missing_masks=True)`` made for an absent file.
    MASK_MISSING = "mask_missing"
    #: ``(top, bottom, left, right)`` of the breast region in the current frame.
    BREAST_BOX = "breast_box"
    #: ``(H, W)`` of the frame that ``BREAST_BOX`` refers to.
    BREAST_BOX_SHAPE = "breast_box_shape"
    #: ``(row, col)`` right-most point of the published cropping (``rightmost_points``), in the crop.
    RIGHTMOST_POINT = "rightmost_point"
    #: ``(row, col)`` bottom-most point of the published cropping (``bottommost_points``), in the crop.
    BOTTOMMOST_POINT = "bottommost_point"
    FACING_RIGHT = "facing_right"
    #: ``(top, bottom, left, right)`` of the breast crop in the raw image (the published ``window_location``).
    WINDOW_LOCATION = "window_location"
    CROPPED_SHAPE = "cropped_shape"
    FLIPPED = "flipped"
    #: ``(row, col)`` centre of the network window in the cropped right-facing image.
    BEST_CENTER = "best_center"
    #: ``(top, bottom, left, right)`` of the network window in the cropped right-facing image.
    WINDOW_BOX = "window_box"


class TrainingOutputKeys(StrEnum):
    """Keys a training-stage view of GLAM adds to :class:`GLAMKeys` (``GLAMStageNetwork`` in training mode)."""

    #: ``(N, C, h, w)`` S_g of the input flipped along both spatial axes, flipped back so that it lines up with
    #: ``saliency_global`` (``GLAMStageNetwork(flip_consistency=True)``; the loss's flip-consistency term).
    SALIENCY_GLOBAL_FLIPPED = "saliency_global_flipped"
    #: ``(N, K, C, p/4, p/4)`` S_l of each patch flipped along both spatial axes, flipped back so that it lines up
    #: with ``patch_saliency`` (``GLAMStageNetwork(local_flip_consistency=True)``).
    PATCH_SALIENCY_FLIPPED = "patch_saliency_flipped"
    #: ``(N, C)`` ŷ_g of the input with its S_g-salient regions erased (``GLAMStageNetwork(erasure=True)``; the
    #: loss's erasure term), computed by the global module in eval mode with detached weights, so that gradients
    #: reach the network only through the map that erased.
    PROB_GLOBAL_ERASED = "prob_global_erased"
    #: ``(N, C)`` ŷ_l of the patches with their S_l-salient regions erased (``GLAMStageNetwork(local_erasure=True)``).
    PROB_LOCAL_ERASED = "prob_local_erased"


class LossTermKeys(StrEnum):
    """Names of the terms :meth:`~monai_glam.losses.GLAMLoss.terms` returns (logged as ``loss_<name>``)."""

    BCE_GLOBAL = "bce_global"
    BCE_LOCAL = "bce_local"
    SPARSITY_GLOBAL = "sparsity_global"
    SPARSITY_LOCAL = "sparsity_local"
    FLIP_CONSISTENCY = "flip_consistency"
    FLIP_CONSISTENCY_LOCAL = "flip_consistency_local"
    ERASURE_GLOBAL = "erasure_global"
    ERASURE_LOCAL = "erasure_local"
