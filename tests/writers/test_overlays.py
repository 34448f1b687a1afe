"""Overlays in the original geometry: the raw mammogram as a reader sees it, with the maps and boxes mapped back."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from PIL import Image

from monai_glam.data import load_mammogram, write_png
from monai_glam.engines import build_inference_transforms
from monai_glam.utils.enums import BatchKeys
from monai_glam.visualize import CONTOUR_COLOURS
from monai_glam.writers import (
    BOX_COLOUR,
    OriginalGeometryInverter,
    PredictionWriter,
    box_outline_map,
    display_window,
    render_overlay,
    write_original_overlay,
)

RAW_SHAPE = (256, 160)
LESION_ROW, LESION_DEPTH, LESION_RADIUS = 80, 60, 8  # depth = columns from the chest wall
BOX_MARGIN = 6


def _raw_mammogram(laterality: str, view: str) -> tuple[np.ndarray, np.ndarray]:
    """A 16-bit raw mammogram in its stored orientation (L faces right, R faces left) and its lesion mask.

    The breast is a half ellipse on the chest-wall side; MLO views get a brighter pectoral triangle in the upper
    chest-wall corner; the lesion is a bright disc in the upper half, so a mirrored or shifted overlay misses it.
    """
    height, width = RAW_SHAPE
    rows, cols = np.mgrid[:height, :width]
    depth = cols if laterality == "L" else width - 1 - cols
    breast = ((rows - height / 2) / (0.45 * height)) ** 2 + (depth / (0.8 * width)) ** 2 < 1
    image = np.where(breast, 900.0 + 300.0 * (1.0 - depth / width), 0.0)
    if view == "MLO":
        image[breast & (depth < 40.0 * (1.0 - rows / 110.0))] = 1800.0
    lesion = (rows - LESION_ROW) ** 2 + (depth - LESION_DEPTH) ** 2 <= LESION_RADIUS**2
    image[lesion] = 3000.0
    return image.astype(np.uint16), lesion


def _item(folder: Path, laterality: str, view: str) -> tuple[dict[str, Any], np.ndarray]:
    image, lesion = _raw_mammogram(laterality, view)
    item = {"image": str(folder / "image.png"), "laterality": laterality, "view": view}
    write_png(item["image"], image)
    for name, mask in (("benign", np.zeros_like(lesion)), ("malignant", lesion)):
        item[f"mask_{name}"] = str(folder / f"mask_{name}.png")
        write_png(item[f"mask_{name}"], mask.astype(np.uint8) * 255)
    return item, lesion


def _bbox(mask: np.ndarray | torch.Tensor) -> tuple[int, int, int, int]:
    """``(row0, col0, row1, col1)`` of the set pixels, ends inclusive."""
    rows, cols = np.nonzero(np.asarray(mask))
    return int(rows.min()), int(cols.min()), int(rows.max()), int(cols.max())


def _fake_outputs(data: dict[str, Any]) -> dict[str, torch.Tensor]:
    """GLAM-like outputs whose malignant map is the lesion in the network frame, with a patch box around it."""
    lesion = data["mask_malignant"][0].as_tensor() > 0
    saliency = torch.stack([torch.zeros_like(lesion, dtype=torch.float32), lesion.float() * 0.9])
    r0, c0, r1, c1 = _bbox(lesion)
    box = torch.tensor([[r0 - BOX_MARGIN, c0 - BOX_MARGIN, r1 + 1 + BOX_MARGIN, c1 + 1 + BOX_MARGIN]])
    return {
        "prob_global": torch.tensor([0.1, 0.8]),
        "prob_local": torch.tensor([0.2, 0.7]),
        "saliency": saliency,
        "patch_boxes": box,
    }


def _is_red(pixel: np.ndarray) -> bool:
    red, green, blue = (int(v) for v in pixel)
    return red > green + 60 and red > blue + 60


def _is_grey(pixel: np.ndarray) -> bool:
    return int(pixel.max()) - int(pixel.min()) <= 2


@pytest.mark.parametrize(
    ("laterality", "view", "sliding_window"),
    [
        ("L", "CC", False),  # raw L faces right: not mirrored by the preprocessing
        ("L", "MLO", False),
        ("R", "CC", False),  # raw R faces left: mirrored by the preprocessing, mirrored back for the overlay
        ("R", "MLO", False),
        ("L", "MLO", True),  # padded breast crop instead of a best-center window
        ("R", "CC", True),
    ],
)
def test_overlay_shows_the_maps_where_the_lesion_is_in_the_raw_image(
    tmp_path: Path, laterality: str, view: str, sliding_window: bool
) -> None:
    item, lesion = _item(tmp_path, laterality, view)
    chain = build_inference_transforms((192, 128), 9, 4, sliding_window=sliding_window)
    data = chain(dict(item))
    raw = data.pop(BatchKeys.RAW_IMAGE)
    assert tuple(raw.shape) == (1, *RAW_SHAPE) and not raw.applied_operations
    assert torch.equal(raw, load_mammogram(item["image"]))  # the loaded image, neither cropped nor flipped
    assert data["image"].shape[1:] != RAW_SHAPE and bool(data["mask_malignant"].any())  # lesion in the window

    writer = PredictionWriter(
        tmp_path / "out",
        OriginalGeometryInverter(chain),
        formats=(),
        network_frame=True,
        overlay_size=max(RAW_SHAPE),
        keep_original=True,
    )
    writer.write("x", item, data, _fake_outputs(data), raw_image=raw)
    kept = writer.last_original
    assert kept is not None and not kept.window_only and tuple(kept.image.shape) == RAW_SHAPE

    row = LESION_ROW
    col = LESION_DEPTH if laterality == "L" else RAW_SHAPE[1] - 1 - LESION_DEPTH
    mirrored = RAW_SHAPE[1] - 1 - col
    assert lesion[row, col] and not lesion[row, mirrored]
    # The maps, boxes and ground truth came back onto the raw lesion, not onto its mirror image.
    assert kept.saliency[1, row, col] == pytest.approx(0.9) and kept.saliency[1, row, mirrored] == 0
    assert kept.masks is not None and np.array_equal(kept.masks[1].numpy(), lesion) and not kept.masks[0].any()
    assert kept.box_map is not None
    r0, c0, r1, c1 = _bbox(lesion)
    expected_box = (r0 - BOX_MARGIN, c0 - BOX_MARGIN, r1 + BOX_MARGIN, c1 + BOX_MARGIN)
    assert _bbox(kept.box_map) == expected_box
    assert not kept.box_map[r0 : r1 + 1, c0 : c1 + 1].any()  # an outline around the lesion, not over it

    combined = writer.render_original_overlay()  # full resolution, every class in its own colour
    assert combined.shape == (*RAW_SHAPE, 3) and combined.dtype == np.uint8
    assert writer.render_original_overlay() is combined  # rendered once per image
    assert _is_red(combined[row, col]) and _is_grey(combined[row, mirrored])
    yellow = np.round(np.asarray(BOX_COLOUR) * 255).astype(np.uint8)
    box_pixels = np.all(combined == yellow, axis=-1)
    assert box_pixels.any() and _bbox(box_pixels) == pytest.approx(expected_box, abs=1)

    # The PNG overlay: raw image, benign panel, malignant panel, each exactly the raw image's size (no margin).
    png = np.asarray(Image.open(tmp_path / "out" / "overlays" / "x.png"))
    height, width = RAW_SHAPE
    assert png.shape == (height, 3 * width, 3)
    benign, malignant = png[:, width : 2 * width], png[:, 2 * width :]
    assert not np.array_equal(malignant[row, col], benign[row, col])  # heat on the lesion
    assert np.array_equal(malignant[row, mirrored], benign[row, mirrored])  # none at its mirror image
    cyan = np.round(np.asarray(CONTOUR_COLOURS[1]) * 255).astype(np.uint8)
    contour = np.all(malignant == cyan, axis=-1)
    assert contour.any() and _bbox(contour) == pytest.approx(_bbox(lesion), abs=1)
    # --network-frame keeps the overlay on the network input.
    network = np.asarray(Image.open(tmp_path / "out" / "network_overlays" / "x.png"))
    assert network.shape[0] == data["image"].shape[1]


def test_without_the_raw_copy_the_window_is_mapped_back(tmp_path: Path) -> None:
    item, _ = _item(tmp_path, "R", "CC")
    chain = build_inference_transforms((128, 96), 9, 4)  # a window smaller than the breast, around the lesion
    data = chain(dict(item))
    raw = data.pop(BatchKeys.RAW_IMAGE)
    inverter = OriginalGeometryInverter(chain)
    renders = {}
    for name, raw_image in (("copy", raw), ("fallback", None)):
        writer = PredictionWriter(tmp_path / name, inverter, formats=(), overlays=False, keep_original=True)
        writer.write("x", item, data, _fake_outputs(data), raw_image=raw_image)
        assert writer.last_original is not None and writer.last_original.window_only == (raw_image is None)
        renders[name] = writer.render_original_overlay()
    window = inverter(torch.ones_like(data["image"].as_tensor()), data["image"])[0] > 0.5
    breast = raw[0].numpy() > 0
    outside = breast & ~window.numpy()
    assert outside.any()  # some breast lies outside the window
    assert renders["copy"].shape == renders["fallback"].shape == (*RAW_SHAPE, 3)
    assert (renders["fallback"][outside] == 0).all()  # black outside the window
    assert (renders["copy"][outside].max(axis=-1) > 0).mean() > 0.9  # the raw copy shows that tissue
    row, col = LESION_ROW, RAW_SHAPE[1] - 1 - LESION_DEPTH
    assert _is_red(renders["fallback"][row, col]) and _is_red(renders["copy"][row, col])


class _CountingInverter(OriginalGeometryInverter):
    """Records ``(channels, nearest)`` of every inversion."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[int, bool]] = []

    def __call__(self, data: torch.Tensor, reference: torch.Tensor, nearest: bool = False) -> torch.Tensor:
        self.calls.append((int(data.shape[0]), bool(nearest)))
        return super().__call__(data, reference, nearest)


@pytest.mark.parametrize(
    ("formats", "given", "expected"),
    [
        ((), True, [(3, True)]),  # ground truth (2) + boxes (1) in one nearest pass; the map was given
        ((), False, [(2, False), (3, True)]),  # the map once, then ground truth + boxes
        (("png",), False, [(2, False), (2, True), (3, True)]),  # + the thresholded masks for the mask files
        (("png",), True, [(2, True), (3, True)]),
    ],
)
def test_each_map_is_mapped_back_once(
    tmp_path: Path, formats: tuple[str, ...], given: bool, expected: list[tuple[int, bool]]
) -> None:
    item, _ = _item(tmp_path, "R", "CC")
    chain = build_inference_transforms((192, 128), 9, 4)
    data = chain(dict(item))
    outputs = _fake_outputs(data)
    inverter = _CountingInverter(chain)
    original = OriginalGeometryInverter(chain)(outputs["saliency"], data["image"]) if given else None
    writer = PredictionWriter(tmp_path / "out", inverter, formats=formats, overlay_size=64)
    writer.write("x", item, data, outputs, original_saliency=original)  # raw image from data["raw_image"]
    assert inverter.calls == expected
    assert writer.last_original is None  # nothing is kept without keep_original
    with pytest.raises(RuntimeError, match="keep_original"):
        writer.render_original_overlay()
    assert np.asarray(Image.open(tmp_path / "out" / "overlays" / "x.png")).shape == (64, 3 * 40, 3)


def test_the_copy_changes_nothing_else_in_the_chain(tmp_path: Path) -> None:
    item, _ = _item(tmp_path, "R", "MLO")
    for sliding_window in (False, True):
        with_copy = build_inference_transforms((192, 128), 9, 4, sliding_window=sliding_window)(dict(item))
        without = build_inference_transforms((192, 128), 9, 4, sliding_window, raw_image_key=None)(dict(item))
        assert BatchKeys.RAW_IMAGE not in without and set(with_copy) - set(without) == {BatchKeys.RAW_IMAGE}
        for key in without:
            if isinstance(without[key], torch.Tensor):
                assert torch.equal(with_copy[key], without[key])
                assert len(with_copy[key].applied_operations) == len(without[key].applied_operations)


@pytest.mark.parametrize(
    ("layout", "max_size", "expected"),
    [
        ("panels", 64, (64, 3 * 40, 3)),
        ("panels", None, (256, 3 * 160, 3)),
        ("combined", 64, (64, 40, 3)),
        ("combined", None, (256, 160, 3)),
        ("combined", 1000, (256, 160, 3)),  # never enlarged
    ],
)
def test_render_overlay_sizes(layout: str, max_size: int | None, expected: tuple[int, ...]) -> None:
    image, lesion = _raw_mammogram("L", "CC")
    saliency = np.stack([np.zeros(RAW_SHAPE), lesion * 0.8]).astype(np.float32)
    box = box_outline_map([[60, 40, 100, 80]], RAW_SHAPE)
    out = render_overlay(image, saliency, box, np.stack([lesion, lesion]), max_size=max_size, layout=layout)
    assert out.shape == expected and out.dtype == np.uint8


def test_box_outline_map_clips_and_outlines() -> None:
    outline = box_outline_map(torch.tensor([[1, 1, 4, 5], [6, -2, 20, 3]]), (8, 6))
    expected = np.zeros((8, 6), dtype=bool)
    expected[1, 1:5] = expected[3, 1:5] = expected[1:4, 1] = expected[1:4, 4] = True
    expected[6, 0:3] = expected[7, 0:3] = expected[6:8, 0] = expected[6:8, 2] = True  # clipped at the border
    assert np.array_equal(outline.numpy(), expected)


def test_display_window_ignores_background_and_a_hot_pixel() -> None:
    image = np.zeros((100, 100), dtype=np.float32)
    image[:, :60] = np.linspace(1000, 2000, 60)
    image[5, 5] = 60000.0  # a burnt-in marker
    low, high = display_window(image)
    assert 1000 <= low < 1020 and 1980 < high <= 2000
    assert display_window(np.full((4, 4), 7.0)) == (7.0, 7.0)
    flat_breast = np.zeros((4, 4), dtype=np.float32)
    flat_breast[:2] = 5.0
    assert display_window(flat_breast) == (0.0, 5.0)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"layout": "grid"}, "layout must be one of"),
        ({"max_size": 0}, "max_size"),
        ({"alpha": 1.5}, "alpha"),
        ({"masks": np.zeros((2, 8, 8))}, r"masks must be \(C, 16, 12\)"),
        ({"box_map": np.zeros((8, 8))}, r"box_map must be \(16, 12\)"),
    ],
)
def test_render_overlay_rejects_bad_arguments(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        render_overlay(np.ones((16, 12)), np.zeros((2, 16, 12)), **kwargs)


def test_combined_render_of_a_full_size_mammogram(tmp_path: Path) -> None:
    """3328×2560, the size of a full-field mammogram: shapes and colours; the time is printed, not gated."""
    height, width = 3328, 2560
    rows = torch.arange(height, dtype=torch.float32)[:, None]
    cols = torch.arange(width, dtype=torch.float32)[None, :]
    breast = ((rows - height / 2) / (0.45 * height)) ** 2 + (cols / (0.8 * width)) ** 2 < 1
    image = torch.where(breast, 1000.0 + 500.0 * torch.sin(rows / 50.0), torch.zeros(()))
    lesion = (rows - 1000) ** 2 + (cols - 800) ** 2 <= 60**2
    image[lesion] = 3000.0
    saliency = torch.zeros(2, height, width)
    saliency[1] = lesion.float() * 0.9
    saliency[0, 2000:2200, 400:600] = 0.9
    box_map = box_outline_map([[900, 700, 1100, 900]], (height, width))
    masks = torch.stack([torch.zeros_like(lesion), lesion])
    start = time.perf_counter()
    rgb = render_overlay(image, saliency, box_map, masks, max_size=None, layout="combined")
    elapsed = time.perf_counter() - start
    print(f"combined overlay of a {height}x{width} mammogram: {elapsed:.3f} s")
    assert rgb.shape == (height, width, 3) and rgb.dtype == np.uint8
    assert _is_red(rgb[1000, 800])  # malignant: red
    benign = rgb[2100, 500].astype(int)
    assert benign[1] > benign[0] + 60 and benign[1] > benign[2] + 60  # benign: green
    assert _is_grey(rgb[1500, 300]) and (rgb[10, width - 10] == 0).all()  # tissue grey, background black
    yellow = np.round(np.asarray(BOX_COLOUR) * 255).astype(np.uint8)
    box_pixels = np.all(rgb[890:1110, 690:910] == yellow, axis=-1)
    assert box_pixels[:, 105].sum() >= 2 * 3  # top and bottom lines, each at least 3 px thick
    written = write_original_overlay(tmp_path / "full.png", image, saliency, box_map, masks, max_size=512)
    assert np.asarray(Image.open(written)).shape == (512, 3 * 394, 3)
