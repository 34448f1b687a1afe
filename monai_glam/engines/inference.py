"""Run a trained GLAM over mammograms and write its outputs: the library behind ``monai-glam infer``.

The images go through the published preprocessing (breast crop, right-facing orientation, best-center window,
standardization), GLAM runs on the window (or, with ``sliding_window``, on the whole cropped breast window by
window), and :class:`~monai_glam.writers.PredictionWriter` writes scores, maps and masks in the original image
geometry (the spatial preprocessing undone with MONAI's ``Invertd``), overlays and tables. A bad item is
reported, listed in ``failures.json`` and skipped. An optional :class:`~monai_glam.metrics.EvaluationCollector`
keeps what the evaluation needs in memory while the images stream past.

By default (``InferenceSettings.pipelined``) the run is a three-stage pipeline in one process: while the main thread
runs the forward pass of image ``i``, a reader thread reads and preprocesses image ``i + 1`` and a writer thread
writes the outputs of the images before ``i`` (at most :data:`WRITE_QUEUE_SIZE` of them wait in its queue). Most of
what the threads do (decoding, zlib, torch and numpy kernels) releases the GIL, so they fill the cores the forward
pass leaves idle. The outputs are those of a serial run, file for file; the writer thread writes the images in
datalist order, and a failure in it is recorded for its image. With ``InferenceSettings.write_workers`` > 1 several
writer threads write several images at once and their records (predictions, failures, evaluation) are committed
one at a time in datalist order, so the outputs are again a serial run's.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from monai.transforms import Compose, CopyItemsd, DivisiblePadd, SpatialPadd

from monai_glam.engines.evaluation import record_inference
from monai_glam.inferers import GLAMInferer, GLAMSlidingWindowInferer
from monai_glam.networks import GLAM
from monai_glam.networks.export import ONNX_RUNTIMES, OnnxGLAM, missing_packages, onnx_engine
from monai_glam.networks.io import ModelConfig, load_model, resolve_model_config
from monai_glam.transforms import glam_transforms, scaled_crop_parameters
from monai_glam.transforms.array import PAPER_WINDOW_SIZE
from monai_glam.transforms.dictionary import BreastCropd, LoadMammogramd, OrientToRightd, StandardizeIntensityd
from monai_glam.utils.device import resolve_device
from monai_glam.utils.distributed import destroy_distributed, init_distributed_from_env, rank_and_world_size
from monai_glam.utils.enums import CLASS_NAMES, DEFAULT_MASK_KEYS, BatchKeys, GLAMKeys, mask_keys_for
from monai_glam.utils.jobs import BackgroundJobs, InlineJobs
from monai_glam.utils.output_folder import StagedFolder, staged_output_folder
from monai_glam.utils.precision import PRECISIONS, resolve_precision
from monai_glam.utils.signals import RunInterruptedError, StopRequest, signal_name
from monai_glam.writers import (
    ITEM_ERRORS,
    PREDICTION_OUTPUT_KEYS,
    FailureLog,
    ImagePrediction,
    OriginalGeometryInverter,
    PredictionWriter,
)

if TYPE_CHECKING:
    from monai_glam.metrics.evaluation import EvaluationCollector

__all__ = [
    "ENGINES",
    "IMAGE_SUFFIXES",
    "MAP_STRIDE",
    "STAGES",
    "WRITE_QUEUE_SIZE",
    "InferenceSettings",
    "InferenceSummary",
    "aligned_overlap",
    "build_inference_transforms",
    "build_inferer",
    "collect_images",
    "forward_model",
    "inference_settings",
    "load_inference_model",
    "run_inference",
]

logger = logging.getLogger(__name__)

#: Suffixes of the image files :func:`collect_images` picks up in a folder.
IMAGE_SUFFIXES = (".png", ".dcm", ".dicom", ".nii", ".nii.gz")
#: The stages :func:`run_inference` times per image (:attr:`InferenceSummary.timings`).
STAGES = ("read", "preprocess", "forward", "write", "evaluate")
#: Predicted images a pipelined :func:`run_inference` lets wait for the writer thread (besides the one it writes):
#: enough to absorb an image that is slower to write than to predict, few enough to bound the memory (each holds
#: its raw image, preprocessed image and maps, about 100 MB at 3328x2560).
WRITE_QUEUE_SIZE = 2
#: The map stride of GLAM's coarse outputs: sliding windows must start on multiples of it.
MAP_STRIDE = 16


#: Forward-pass engines: eager PyTorch, or the model exported to ONNX (:mod:`monai_glam.networks.export`) and run
#: in ONNX Runtime or OpenVINO on the CPU (whole-image inference in float32 only).
ENGINES: tuple[str, ...] = ("torch", *ONNX_RUNTIMES)


@dataclass(frozen=True)
class InferenceSettings:
    """How to preprocess, run and write.

    Attributes:
        window: (h, w) model window (paper: 2944x1920).
        erosion_iterations: breast-crop erosion radius (paper: 100 at 2944x1920).
        buffer: breast-crop margin (paper: 50).
        thresholds: per-class thresholds of the fused map.
        sliding_window: run windows of ``window`` over the whole cropped breast instead of one best-center window.
        overlap: sliding-window overlap, rounded per dimension so every window starts on a multiple of 16.
        sw_batch_size: windows per forward pass.
        device: torch device.
        formats: map formats to write (``nifti``, ``png``); empty writes no maps.
        network_frame: also write maps and masks in the network frame.
        overlays: write one overlay PNG per image.
        overlay_size: longest side of an overlay panel.
        progress: show a progress bar.
        dicom: for DICOM sources, also write DICOM results (segmentations and a secondary-capture overlay).
        precision: ``fp32`` or ``bf16`` (``auto`` already resolved for ``device``), see
            :mod:`monai_glam.utils.precision`.
        pipelined: read and preprocess the next image on a thread, and write the outputs on another, while the
            forward pass runs (same outputs as a serial run); ``False`` does everything in turn on one thread.
        write_workers: writer threads of a pipelined run. One is enough where the forward pass sets the pace (a
            CPU run of the paper preset); where the outputs take longer to write than the forward pass (a GPU, bf16
            on a CPU with AMX, small presets), more threads write several images at once (each holds one more
            predicted image in memory, about 100 MB at 3328x2560). The files and tables are the same for any number.
        engine: the forward pass's engine, one of :data:`ENGINES`.
        channels_last: :func:`load_inference_model` puts the network's weights in ``torch.channels_last`` memory
            format (``engine`` ``torch`` only), the layout oneDNN and cuDNN run convolutions fastest in; the outputs
            equal the contiguous layout's up to float rounding.
    """

    window: tuple[int, int] = PAPER_WINDOW_SIZE
    erosion_iterations: int = 100
    buffer: int = 50
    thresholds: tuple[float, ...] = (0.5, 0.5)
    sliding_window: bool = False
    overlap: float = 0.25
    sw_batch_size: int = 1
    device: str = "cpu"
    formats: tuple[str, ...] = ("nifti", "png")
    network_frame: bool = False
    overlays: bool = True
    overlay_size: int = 512
    progress: bool = True
    dicom: bool = False
    precision: str = "fp32"
    pipelined: bool = True
    engine: str = "torch"
    channels_last: bool = True
    write_workers: int = 1

    def to_json(self) -> dict[str, Any]:
        """The settings as JSON values (for ``run.json``)."""
        return {
            "window": list(self.window),
            "erosion_iterations": self.erosion_iterations,
            "buffer": self.buffer,
            "sliding_window": self.sliding_window,
            "overlap": self.overlap,
            "device": self.device,
            "precision": self.precision,
            "engine": self.engine,
            "channels_last": self.channels_last,
        }


@dataclass
class InferenceSummary:
    """What :func:`run_inference` produced.

    Attributes:
        predictions: one record per image that went through.
        failures: the items that were skipped.
        paths: the tables, ``failures.json`` and ``run.json``.
        output_dir: the run's folder.
        dicom_skipped: with DICOM results asked for, the sources that got none because they are not DICOM.
        timings: seconds spent per stage over this process's items (:data:`STAGES`: ``read`` the file,
            ``preprocess``, ``forward``, ``write`` the outputs, ``evaluate``), and ``wall``: the wall time of the
            whole loop over the items. Each stage's figure is its busy time (the time its thread spent on it); in a
            pipelined run the stages overlap, so they add up to more than ``wall``.
    """

    predictions: list[ImagePrediction]
    failures: FailureLog
    paths: dict[str, Path]
    output_dir: Path
    dicom_skipped: list[str] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)

    def published(self, folder: StagedFolder) -> InferenceSummary:
        """The same summary with its paths where ``folder`` publishes them (unchanged unless it was staged)."""
        paths = {key: folder.published(path) for key, path in self.paths.items()}
        output_dir = folder.published(self.output_dir)
        return InferenceSummary(self.predictions, self.failures, paths, output_dir, self.dicom_skipped, self.timings)


def aligned_overlap(roi_size: Sequence[int], overlap: float, stride: int = MAP_STRIDE) -> tuple[float, float]:
    """Per-dimension overlaps close to ``overlap`` whose window steps are multiples of ``stride``.

    MONAI steps ``int(roi * (1 - overlap))`` pixels; GLAM's coarse maps need steps on a multiple of 16.

    Raises:
        ValueError: an overlap outside [0, 1) or a window size that is not a multiple of ``stride``.
    """
    if not 0.0 <= float(overlap) < 1.0:
        raise ValueError(f"overlap must be in [0, 1), got {overlap}")
    overlaps = []
    for roi in (int(r) for r in roi_size):
        if roi % stride:
            raise ValueError(f"the sliding window {tuple(roi_size)} must be a multiple of {stride} in each dimension")
        step = max(stride, int(roi * (1.0 - float(overlap))) // stride * stride)
        # Half a pixel more than the step: int() of roi * (1 - overlap) then gives exactly the step.
        overlaps.append(0.0 if step >= roi else 1.0 - (step + 0.5) / roi)
    return overlaps[0], overlaps[1]


def build_inference_transforms(
    window: Sequence[int],
    erosion_iterations: int,
    buffer: int,
    sliding_window: bool = False,
    mask_keys: Sequence[str] = DEFAULT_MASK_KEYS,
    raw_image_key: str | None = BatchKeys.RAW_IMAGE,
) -> Compose:
    """The preprocessing chain for inference; its spatial steps are invertible.

    Whole-image mode is :func:`~monai_glam.transforms.glam_transforms` without targets (best-center window of size
    ``window``). Sliding-window mode loads, crops to the breast and orients it like the published pipeline, then
    pads the cropped image at its end to a multiple of 16 and at least ``window`` instead of cutting a window.
    Masks that an item lacks become empty masks marked ``mask_missing``.

    Right after loading, the image is copied under ``raw_image_key`` (MONAI's ``CopyItemsd``): the raw mammogram
    in its own orientation and size, which :class:`~monai_glam.writers.PredictionWriter` draws the overlays on
    (one raw image per item; hand it to the writer with ``data.pop(raw_image_key)`` so it is freed after writing).
    The copy is not transformed further and is not part of what ``Invertd`` inverts (the ``image`` key).
    ``raw_image_key=None`` makes no copy.
    """
    if not sliding_window:
        chain = glam_transforms(
            window, with_targets=False, mask_keys=mask_keys, erosion_iterations=erosion_iterations, buffer=buffer
        )
        transforms = list(chain.transforms)
    else:
        keys = (BatchKeys.IMAGE.value, *mask_keys)
        transforms = [
            LoadMammogramd(keys, mask_keys=mask_keys, fill_missing_masks=True),
            BreastCropd(keys, erosion_iterations=erosion_iterations, buffer=buffer),
            OrientToRightd(keys),
            DivisiblePadd(keys, k=MAP_STRIDE, method="end"),
            SpatialPadd(keys, spatial_size=tuple(window), method="end"),
            StandardizeIntensityd(BatchKeys.IMAGE),
        ]
    if raw_image_key is not None:
        after_load = next(i for i, t in enumerate(transforms) if isinstance(t, LoadMammogramd)) + 1
        transforms.insert(after_load, CopyItemsd(BatchKeys.IMAGE, names=str(raw_image_key)))
    return Compose(transforms)


def build_inferer(
    settings: InferenceSettings, output_keys: Sequence[str] | None = None
) -> GLAMInferer | GLAMSlidingWindowInferer:
    """The inferer of ``settings``: :class:`GLAMSlidingWindowInferer` over the cropped breast (windows of the model
    size, the overlap aligned to the map stride) with ``sliding_window``, else :class:`GLAMInferer` on the
    best-center window; both at ``settings.precision``.

    Args:
        settings: checked settings (:func:`inference_settings`).
        output_keys: outputs to keep (whole-image inferer only; the sliding window returns its own set).
    """
    if settings.sliding_window:
        return GLAMSlidingWindowInferer(
            roi_size=settings.window,
            sw_batch_size=settings.sw_batch_size,
            overlap=aligned_overlap(settings.window, settings.overlap),
            precision=settings.precision,
        )
    return GLAMInferer(output_keys=output_keys, precision=settings.precision)


def collect_images(paths: Sequence[str]) -> list[dict[str, str]]:
    """Datalist-like items ``{"image": path}`` from files and folders (a folder gives its image files, sorted).

    Raises:
        FileNotFoundError: a path that does not exist.
        ValueError: no image found.
    """
    items = []
    for text in paths:
        path = Path(text)
        if path.is_dir():
            files = sorted(p for p in path.iterdir() if p.is_file() and p.name.lower().endswith(IMAGE_SUFFIXES))
            items += [{"image": str(p)} for p in files]
        elif path.is_file():
            items.append({"image": str(path)})
        else:
            raise FileNotFoundError(f"{path}: no such image file or folder")
    if not items:
        raise ValueError(f"no image files ({', '.join(IMAGE_SUFFIXES)}) found in {list(paths)}")
    return items


def _per_image(outputs: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The first (only) image of a batch of outputs, on the CPU."""
    return {key: value[0].detach().cpu() for key, value in outputs.items() if key in PREDICTION_OUTPUT_KEYS}


def run_inference(
    items: Sequence[Mapping[str, Any]],
    model: GLAM | OnnxGLAM,
    output_dir: str | Path,
    settings: InferenceSettings | None = None,
    class_names: Sequence[str] = CLASS_NAMES,
    run_info: Mapping[str, Any] | None = None,
    collector: EvaluationCollector | None = None,
    overwrite: bool = False,
) -> InferenceSummary:
    """Predict every item and write the outputs; a failing item is recorded and skipped.

    An ``output_dir`` that already holds files is refused unless ``overwrite``; then the new outputs are written
    into a staging folder and replace the old ones only when at least one image went through, so a run where
    every item fails, or that is interrupted, leaves the earlier results as they were
    (:func:`~monai_glam.utils.output_folder.staged_output_folder`). SIGINT/SIGTERM stop the run after the
    current image: the tables, ``failures.json`` and ``run.json`` (``"interrupted": "SIGINT"``) then list the
    images done so far, and :class:`~monai_glam.utils.signals.RunInterruptedError` is raised.

    Args:
        items: datalist items (``image``, optional ``label``, ``mask_<class>``, ``laterality``, ``view``,
            ``horizontal_flip``, ``patient_id``, ``exam_id``).
        model: GLAM in eval mode, on ``settings.device`` (or the :class:`OnnxGLAM` of an ONNX ``settings.engine``).
        output_dir: the output folder (created).
        settings: preprocessing, inference and writing options (default :class:`InferenceSettings`).
        class_names: class names in channel order.
        run_info: extra entries for ``run.json`` (e.g. the checkpoint).
        collector: keeps each image's scores, map and ground truth in memory for the evaluation report
            (:class:`~monai_glam.metrics.EvaluationCollector`), whatever ``settings.formats`` writes.
        overwrite: replace the results already in ``output_dir`` (once this run has some).

    Returns:
        :class:`InferenceSummary`.

    Raises:
        ValueError: ``output_dir`` holds files and ``overwrite`` is false.
        RunInterruptedError: a signal stopped the run (the message says what was kept).
    """
    settings = settings or InferenceSettings()
    target = Path(output_dir)
    started_group = init_distributed_from_env(torch.device(settings.device))
    try:
        summary, stop, folder = _run_in_folder(
            items, model, target, settings, class_names, run_info, collector, overwrite
        )
    finally:
        if started_group:
            destroy_distributed()
    if stop.signum is not None:
        done = f"{len(summary.predictions)} of {len(items)} images"
        if folder.staged:
            kept = f"the earlier results in {target} are unchanged (this run's results were discarded)"
        else:
            kept = f"{summary.paths['images']} and the other tables list them"
        raise RunInterruptedError(stop.signum, f"stopped by {signal_name(stop.signum)} after {done}; {kept}")
    if folder.keep:
        summary = summary.published(folder)
    return summary


def _run_in_folder(
    items: Sequence[Mapping[str, Any]],
    model: GLAM | OnnxGLAM,
    target: Path,
    settings: InferenceSettings,
    class_names: Sequence[str],
    run_info: Mapping[str, Any] | None,
    collector: EvaluationCollector | None,
    overwrite: bool,
) -> tuple[InferenceSummary, StopRequest, StagedFolder]:
    """:func:`_predict_items` in ``target`` (staged with ``overwrite``), under a :class:`StopRequest`."""
    _, world = rank_and_world_size()
    if world > 1 and overwrite:
        raise ValueError("--overwrite is not supported under torchrun: give the sharded run a new --output folder")
    if world > 1 and collector is not None:
        raise ValueError(
            "evaluate does not run under torchrun: run 'monai-glam infer' sharded, then 'monai-glam evaluate "
            "--predictions' on its folder"
        )
    with StopRequest(what="the current image") as stop, staged_output_folder(target, overwrite) as folder:
        if world > 1:
            torch.distributed.barrier()  # every rank has checked the folder before any rank writes into it
        summary = _predict_items(items, model, folder.path, settings, class_names, run_info, collector, stop)
        folder.keep = bool(summary.predictions) and not stop.requested
    return summary, stop, folder


def _lap(timings: dict[str, float], stage: str, since: float) -> float:
    """Add the time since ``since`` to ``timings[stage]``; returns now."""
    now = time.perf_counter()
    timings[stage] += now - since
    return now


@dataclass
class _Loaded:
    """One item read and preprocessed, or the error that stopped it, with the seconds its steps took.

    Attributes:
        data: the preprocessed item (``None`` when a step failed).
        stage: the step that failed (``read`` or ``preprocess``).
        error: that step's error.
        read: seconds spent reading (only when reading succeeded).
        preprocess: seconds spent preprocessing (only when preprocessing succeeded).
    """

    data: dict[str, Any] | None = None
    stage: str = "read"
    error: BaseException | None = None
    read: float = 0.0
    preprocess: float = 0.0


def _load_item(chain: Compose, item: Mapping[str, Any], lock: threading.Lock) -> _Loaded:
    """Read (``LoadMammogramd``) and preprocess one item under ``lock`` (see :class:`OriginalGeometryInverter`)."""
    loaded = _Loaded()
    with lock:
        try:
            clock = time.perf_counter()
            data = chain(dict(item), end=1)  # LoadMammogramd: reading and decoding
            now = time.perf_counter()
            loaded.read, clock = now - clock, now
            loaded.stage = "preprocess"
            data = chain(data, start=1)
            loaded.preprocess = time.perf_counter() - clock
        except ITEM_ERRORS as err:
            loaded.error = err
            return loaded
    loaded.data = data
    return loaded


def _loaded_items(
    indices: Sequence[int], load: Callable[[int], _Loaded], pipelined: bool, stop: StopRequest
) -> Iterator[tuple[int, _Loaded]]:
    """``(index, load(index))`` in order, until ``stop`` is requested (checked before each item).

    Pipelined, the next item is loaded on a reader thread while the caller works on the current one; an item
    loaded ahead when the caller stops (or leaves the loop) is dropped unrecorded, as if it had not been read.
    """
    if not pipelined:
        for index in indices:
            if stop.requested:
                return
            yield index, load(index)
        return
    pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="monai-glam-read")
    try:
        upcoming: Future[_Loaded] | None = pool.submit(load, indices[0]) if indices else None
        for position, index in enumerate(indices):
            if stop.requested or upcoming is None:
                return
            current = upcoming
            upcoming = pool.submit(load, indices[position + 1]) if position + 1 < len(indices) else None
            yield index, current.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


@dataclass
class _WriteJob:
    """A predicted item on its way to the writer: its datalist entry, preprocessed data and GLAM outputs."""

    index: int
    item: Mapping[str, Any]
    data: dict[str, Any]
    outputs: dict[str, torch.Tensor]


@dataclass
class _Written:
    """What writing one item produced, for :meth:`_ItemWriter.commit`: its record or its error, and the seconds."""

    job: _WriteJob
    prediction: ImagePrediction | None = None
    saliency: torch.Tensor | None = None
    original: torch.Tensor | None = None
    error: BaseException | None = None
    seconds: float = 0.0


class _ItemWriter:
    """Writes one predicted item (maps, masks, overlays), then records it (prediction, evaluation) or its failure.

    :meth:`__call__` writes the files and may run on several writer threads at once (the writer's file output is
    thread-safe, the chain's inversion holds its lock); :meth:`commit` records the results one at a time in
    datalist order, so :attr:`done`, the writer's predictions, the failures and the collector keep the order of a
    serial run.
    """

    def __init__(
        self,
        writer: PredictionWriter,
        inverter: OriginalGeometryInverter,
        image_ids: Sequence[str],
        failures: FailureLog,
        timings: dict[str, float],
        collector: EvaluationCollector | None,
        needs_original: bool,
    ) -> None:
        self.writer = writer
        self.inverter = inverter
        self.image_ids = image_ids
        self.failures = failures
        self.timings = timings
        self.collector = collector
        self.needs_original = needs_original
        #: indices of the items whose outputs were written, in order.
        self.done: list[int] = []

    def __call__(self, job: _WriteJob) -> _Written:
        written = _Written(job)
        clock = time.perf_counter()
        try:
            written.saliency = job.outputs[GLAMKeys.SALIENCY].float()
            # The writer and an original-frame evaluation both need the map on the raw image: invert it once.
            if self.needs_original:
                written.original = self.inverter(written.saliency, job.data[BatchKeys.IMAGE])
            written.prediction = self.writer.write_outputs(
                self.image_ids[job.index],
                job.item,
                job.data,
                job.outputs,
                original_saliency=written.original,
                raw_image=job.data.pop(BatchKeys.RAW_IMAGE, None),  # out of ``data``: freed once written
            )
        except ITEM_ERRORS as err:
            written.error = err
        written.seconds = time.perf_counter() - clock
        return written

    def commit(self, written: _Written) -> None:
        """Record one written item (in datalist order): its prediction and evaluation, or its failure."""
        job, stage = written.job, "write"
        self.timings["write"] += written.seconds
        try:
            if written.error is not None:
                raise written.error
            self.writer.record(written.prediction, job.item)
            self.done.append(job.index)
            if self.collector is not None:
                stage, clock = "evaluate", time.perf_counter()
                record_inference(
                    self.collector, written.prediction, job.item, job.data, written.saliency, written.original
                )
                _lap(self.timings, "evaluate", clock)
        except ITEM_ERRORS as err:
            self.failures.add(job.index, job.item.get(BatchKeys.IMAGE, "?"), stage, err)


def _predict_items(
    items: Sequence[Mapping[str, Any]],
    model: GLAM | OnnxGLAM,
    output_dir: Path,
    settings: InferenceSettings,
    class_names: Sequence[str],
    run_info: Mapping[str, Any] | None,
    collector: EvaluationCollector | None,
    stop: StopRequest,
) -> InferenceSummary:
    """The loop of :func:`run_inference` over the items, writing into ``output_dir``; stops early on ``stop``.

    With ``settings.pipelined`` the reading and preprocessing of the next item and the writing of the previous
    ones run on threads while the forward pass runs (see the module docstring); on ``stop`` the item loaded
    ahead is dropped and the items already predicted are written before the tables.
    """
    from tqdm import tqdm

    started = time.perf_counter()
    mask_keys = mask_keys_for(class_names)
    chain = build_inference_transforms(
        settings.window, settings.erosion_iterations, settings.buffer, settings.sliding_window, mask_keys
    )
    chain_lock = threading.Lock()  # the chain runs forward on the reader thread and backward on the writer thread
    inferer = build_inferer(settings)
    inverter = OriginalGeometryInverter(chain, lock=chain_lock)
    writer = PredictionWriter(
        output_dir,
        inverter,
        thresholds=settings.thresholds,
        class_names=class_names,
        formats=settings.formats,
        network_frame=settings.network_frame,
        overlays=settings.overlays,
        overlay_size=settings.overlay_size,
        dicom=settings.dicom,
    )
    failures = FailureLog("infer")
    timings = dict.fromkeys(STAGES, 0.0)
    # Image ids from the whole list, identical on every rank, so a sharded run names its files as one run would.
    image_ids = [writer.new_image_id(item.get(BatchKeys.IMAGE, "?")) for item in items]
    rank, world = rank_and_world_size()
    shard = range(rank, len(items), world)  # every item on exactly one rank
    needs_original = bool(settings.formats) or (collector is not None and collector.frame == "original")
    write = _ItemWriter(writer, inverter, image_ids, failures, timings, collector, needs_original)
    writes: BackgroundJobs[_WriteJob] | InlineJobs[_WriteJob]
    if settings.pipelined:
        writes = BackgroundJobs(
            write, size=WRITE_QUEUE_SIZE, name="monai-glam-write", workers=settings.write_workers, commit=write.commit
        )
    else:
        writes = InlineJobs(write, commit=write.commit)
    loaded_items = _loaded_items(shard, lambda i: _load_item(chain, items[i], chain_lock), settings.pipelined, stop)
    progress = settings.progress and rank == 0
    try:
        for index, loaded in tqdm(loaded_items, total=len(shard), desc="infer", unit="image", disable=not progress):
            item = items[index]
            timings["read"] += loaded.read
            timings["preprocess"] += loaded.preprocess
            if loaded.data is None:
                failures.add(index, item.get(BatchKeys.IMAGE, "?"), loaded.stage, loaded.error)
                continue
            try:
                clock = time.perf_counter()
                with torch.inference_mode():
                    batch = loaded.data[BatchKeys.IMAGE].as_tensor()[None].to(settings.device)
                    outputs = _per_image(inferer(batch, model))
                _lap(timings, "forward", clock)
            except ITEM_ERRORS as err:
                failures.add(index, item.get(BatchKeys.IMAGE, "?"), "inference", err)
                continue
            writes.put(_WriteJob(index, item, loaded.data, outputs))
    except BaseException:
        writes.close(abort=True)
        raise
    finally:
        loaded_items.close()  # a reader thread still loading ahead finishes and is dropped
    writes.close()  # the images already predicted are written, also after a stop request
    # Failures come from three threads; a serial run lists them in datalist order.
    failures.failures.sort(key=lambda failure: failure.index)
    timings["wall"] = time.perf_counter() - started
    info = {**dict(run_info or {}), **settings.to_json(), "num_items": len(items)}
    if stop.signum is not None:
        info["interrupted"] = signal_name(stop.signum)
    if world > 1:
        # Rank 0 writes the tables of the whole run once every rank is done; the maps are already written.
        writer.merge_shards(failures, write.done)
        info["num_processes"] = world
        paths = writer.finalize(failures, info) if rank == 0 else writer.table_paths()
        torch.distributed.barrier()  # no rank reports (or leaves) before the tables exist
    else:
        paths = writer.finalize(failures, info)
    return InferenceSummary(writer.predictions, failures, paths, Path(output_dir), writer.dicom_skipped, timings)


def inference_settings(
    config: ModelConfig | None = None,
    window: Sequence[int] | None = None,
    erosion_iterations: int | None = None,
    buffer: int | None = None,
    thresholds: Sequence[float] | None = None,
    sliding_window: bool = False,
    overlap: float = 0.25,
    sw_batch_size: int = 1,
    device: str = "auto",
    formats: Sequence[str] = ("nifti", "png"),
    network_frame: bool = False,
    overlays: bool = True,
    overlay_size: int = 512,
    progress: bool = True,
    num_classes: int = len(CLASS_NAMES),
    dicom: bool = False,
    precision: str = "fp32",
    pipelined: bool = True,
    engine: str = "torch",
    channels_last: bool = True,
    write_workers: int = 1,
) -> InferenceSettings:
    """Check the options and combine them with a model config's preprocessing and thresholds.

    Each of ``window``, ``erosion_iterations``, ``buffer`` and ``thresholds`` is taken, in order, from the
    argument, the model config, then the default (the paper window, crop parameters scaled to its height,
    0.5 per class). ``pipelined`` overlaps reading, preprocessing and writing with the forward pass on threads
    (:attr:`InferenceSettings.pipelined`) with ``write_workers`` writer threads; the outputs depend on neither.

    Raises:
        ValueError: a bad window, crop parameter, threshold, overlap, batch size, overlay size, writer count, device
            or precision (the message names the option).
    """
    config = config or ModelConfig()
    preprocessing = config.preprocessing
    size = tuple(window) if window else tuple(preprocessing.get("spatial_size", PAPER_WINDOW_SIZE))
    if len(size) != 2 or not all(isinstance(v, int) and v > 0 for v in size):
        raise ValueError(f"--window must be two positive integers, got {list(size)}")
    erosion, margin = scaled_crop_parameters(size)
    erosion = erosion_iterations if erosion_iterations is not None else preprocessing.get("erosion_iterations", erosion)
    margin = buffer if buffer is not None else preprocessing.get("buffer", margin)
    if erosion < 0 or margin < 0:
        raise ValueError(f"--erosion-iterations and --buffer must be >= 0, got {erosion} and {margin}")
    chosen = tuple(thresholds) if thresholds else (config.thresholds or (0.5,) * num_classes)
    if len(chosen) != num_classes or not all(0.0 <= t <= 1.0 for t in chosen):
        origin = "--thresholds" if thresholds else f"thresholds of {config.source}"
        count = {1: "one number", 2: "two numbers", 3: "three numbers"}.get(num_classes, f"{num_classes} numbers")
        raise ValueError(f"{origin} must be {count} in [0, 1], got {list(chosen)}")
    if sliding_window:
        aligned_overlap(size, overlap)  # checks the window and the overlap before any work
    if precision not in PRECISIONS:
        raise ValueError(f"--precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if engine not in ENGINES:
        raise ValueError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine != "torch":
        missing = missing_packages(engine)
        if missing:
            raise ValueError(f"--engine {engine} needs {', '.join(missing)}: pip install {' '.join(missing)}")
        # The exported model is the whole-image float32 forward pass for one (1, C, H, W) window, on the CPU.
        if sliding_window:
            raise ValueError(f"--engine {engine} runs the whole-image model; it does not combine with --sliding-window")
        if precision == "bf16":
            raise ValueError(f"--engine {engine} runs in float32; use --precision fp32 or auto with it")
        precision = "fp32"
        if str(device) == "auto":
            device = "cpu"
    resolved_device = resolve_device(device)
    if engine != "torch" and resolved_device.type != "cpu":
        raise ValueError(f"--engine {engine} runs on the CPU, got --device {device}; use --engine torch on a GPU")
    for name, value in (
        ("--sw-batch-size", sw_batch_size),
        ("--overlay-size", overlay_size),
        ("--write-workers", write_workers),
    ):
        if int(value) < 1:
            raise ValueError(f"{name} must be >= 1, got {value}")
    return InferenceSettings(
        window=(int(size[0]), int(size[1])),
        erosion_iterations=int(erosion),
        buffer=int(margin),
        thresholds=tuple(float(t) for t in chosen),
        sliding_window=bool(sliding_window),
        overlap=float(overlap),
        sw_batch_size=int(sw_batch_size),
        device=str(resolved_device),
        formats=tuple(formats),
        network_frame=bool(network_frame),
        overlays=bool(overlays),
        overlay_size=int(overlay_size),
        progress=bool(progress),
        dicom=bool(dicom),
        precision=resolve_precision(precision, resolved_device),
        pipelined=bool(pipelined),
        engine=engine,
        channels_last=bool(channels_last) and engine == "torch",
        write_workers=int(write_workers),
    )


def forward_model(
    model: GLAM, window: Sequence[int], engine: str = "torch", channels_last: bool = True
) -> GLAM | OnnxGLAM:
    """The model that runs the forward passes of :func:`run_inference` (and of the bundle's evaluator).

    Args:
        model: GLAM in eval mode with its weights loaded.
        window: ``(h, w)`` model window (the exported model's input size).
        engine: ``torch`` runs ``model`` itself; ``onnxruntime`` / ``openvino`` export it to ONNX and load it there
            (:func:`~monai_glam.networks.export.onnx_engine`).
        channels_last: with ``engine`` ``torch``, put the weights in ``torch.channels_last`` memory format (in place),
            which makes the convolutions pick that layout for the ``(N, 1, H, W)`` input too: the faster one in oneDNN
            and cuDNN; the outputs equal the contiguous layout's up to float rounding.

    Raises:
        ValueError: an unknown ``engine``.
    """
    if engine not in ENGINES:
        raise ValueError(f"engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine != "torch":
        return onnx_engine(model, window, runtime=engine)
    if channels_last:
        model.to(memory_format=torch.channels_last)
    return model


def load_inference_model(
    checkpoint: str | Path, model_config: str | Path | None = None, **settings: Any
) -> tuple[GLAM | OnnxGLAM, InferenceSettings, dict[str, Any]]:
    """Resolve the model config, check the settings and load the model for :func:`run_inference`.

    Args:
        checkpoint: weights (training checkpoint, GLAM state dict or published NYU checkpoint).
        model_config: a model config file; default ``model_config.json`` beside the checkpoint, else the paper's.
        settings: :func:`inference_settings` options (``window``, ``thresholds``, ``device``, ...).

    Returns:
        ``(model, settings, run_info)``: GLAM in eval mode on the settings' device (with an ONNX ``engine``: the
        model exported and loaded in that runtime, an :class:`~monai_glam.networks.export.OnnxGLAM`), the checked
        settings, and the checkpoint and model config paths for ``run.json``.
    """
    config = resolve_model_config(checkpoint, model_config)
    checked = inference_settings(config, **settings)
    model = load_model(checkpoint, config, checked.device)
    model.check_input_size(checked.window)
    model = forward_model(model, checked.window, engine=checked.engine, channels_last=checked.channels_last)
    run_info = {
        "checkpoint": str(Path(checkpoint).resolve()),
        "model_config": str(config.source.resolve()) if config.source is not None else None,
    }
    return model, checked, run_info
