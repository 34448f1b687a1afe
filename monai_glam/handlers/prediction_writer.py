"""Ignite handler that writes what the bundle's ``inference.json`` predicts, with ``monai-glam infer``'s writer."""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import torch
import torch.distributed as dist
from monai.data import MetaTensor
from monai.utils import CommonKeys, convert_to_numpy, min_version, optional_import

from monai_glam.transforms.dictionary import mask_was_read
from monai_glam.utils.distributed import is_main_process, rank_and_world_size
from monai_glam.utils.enums import MetaKeys
from monai_glam.utils.jobs import BackgroundJobs, InlineJobs
from monai_glam.utils.output_folder import check_output_folder
from monai_glam.writers import PREDICTION_OUTPUT_KEYS, field_text

if TYPE_CHECKING:
    from ignite.engine import Engine, Events

    from monai_glam.writers import ImagePrediction
else:
    Engine, _ = optional_import("ignite.engine", "0.4.11", min_version, "Engine")
    Events, _ = optional_import("ignite.engine", "0.4.11", min_version, "Events")

__all__ = ["PredictionWriterHandler"]

logger = logging.getLogger(__name__)


def _label(value: Any) -> tuple[int, ...] | None:
    if value is None:
        return None
    if isinstance(value, (list, tuple)):
        value = [float(torch.as_tensor(v)) for v in value]
    return tuple(int(round(float(v))) for v in np.asarray(convert_to_numpy(value), dtype=np.float64).reshape(-1))


def _source_path(item: Mapping[str, Any], key: str) -> str:
    """The file an item's value came from: its MetaTensor's ``filename_or_obj`` or the value itself (a path)."""
    value = item.get(key)
    if isinstance(value, MetaTensor):
        source = value.meta.get(MetaKeys.FILENAME, "")
        return "" if isinstance(source, (list, tuple)) else str(source)
    return value if isinstance(value, str) else ""


class PredictionWriterHandler:
    """Ignite handler that writes what ``inference.json`` produces through :class:`monai_glam.writers.PredictionWriter`
    (the writer of ``monai-glam infer``, so both write the same layout).

    Per image: ``saliency/<id>_<class>.nii.gz|.png`` and ``masks/<id>_<class>.nii.gz|.png`` in the original image
    geometry (the preprocessing is inverted with MONAI's ``Invertd``), ``overlays/<id>.png`` (in the original
    geometry; without the raw image in the batch it shows the network window's region only); at the end
    ``predictions.csv``, ``breasts.csv``, ``exams.csv``, ``failures.json`` and ``run.json``.

    It reads the decollated engine state (keep the evaluator's ``decollate=True``): GLAM's outputs either at the
    top level of each output item (after ``FlattenSubKeysd(keys="pred")``) or under ``pred``, and the batch
    items (the preprocessed image MetaTensor, network-frame ground-truth masks, datalist fields).

    Image ids and the row order come from the engine's dataset (``engine.data_loader.dataset.data``, the datalist),
    as in ``monai-glam infer``: an item that a :class:`~monai_glam.data.MammogramDataset` with
    ``skip_bad_items=True`` skipped keeps its id unused and is listed in ``failures.json`` (with ``num_workers=0``;
    DataLoader workers keep their own records, which only their log shows), and the good item it loaded in its
    place is written once.

    Under ``torch.distributed`` (``multi_gpu_inference.json``: a ``DistributedSampler`` with
    ``even_divisible=False``) every rank writes the maps of its own images and rank 0 writes the merged tables,
    ``failures.json`` and ``run.json`` once every rank is done: the same files as a single-process run.

    With ``write_queue_size`` > 0 the files are written on a background thread (as ``monai-glam infer`` does by
    default) while the engine loads and predicts the next batches; the outputs are the same files. Mapping a map
    back runs MONAI's ``Invertd`` on the preprocessing chain, which briefly changes the chain's transforms, so with
    a DataLoader without workers (``num_workers=0``: the chain runs on the engine's thread) the handler guards the
    dataset's transform with the same lock for the run. With workers the chain runs in their processes.

    Args:
        output_dir: output folder (created).
        preprocessing: the invertible preprocessing the images went through.
        overwrite: write into an ``output_dir`` that already holds results (files are replaced in place); without
            it such a folder is refused when the handler is built, before any image is read.
        write_queue_size: 0 writes each batch on the engine's thread; ``n`` >= 1 writes on a background thread, with
            up to ``n`` predicted items waiting for it (the engine blocks when more would wait).
        write_workers: background writer threads (with ``write_queue_size`` >= 1): more than one writes several
            images at once, for runs where writing is slower than the forward pass (a GPU); the files and tables
            are the same.
        writer_kwargs: further :class:`monai_glam.writers.PredictionWriter` arguments: ``thresholds``,
            ``class_names``, ``formats``, ``network_frame``, ``overlays``, ``overlay_size``.

    Raises:
        ValueError: ``output_dir`` holds results and ``overwrite`` is false, ``write_queue_size`` is negative,
            ``write_workers`` below 1, or above 1 with ``keep_original``.
    """

    def __init__(
        self,
        output_dir: str | os.PathLike[str],
        preprocessing: Any,
        overwrite: bool = False,
        write_queue_size: int = 0,
        write_workers: int = 1,
        **writer_kwargs: Any,
    ) -> None:
        from monai_glam.writers import OriginalGeometryInverter

        if isinstance(write_queue_size, bool) or not isinstance(write_queue_size, int) or write_queue_size < 0:
            raise ValueError(f"write_queue_size must be an integer >= 0, got {write_queue_size!r}.")
        if isinstance(write_workers, bool) or not isinstance(write_workers, int) or write_workers < 1:
            raise ValueError(f"write_workers must be an integer >= 1, got {write_workers!r}.")
        if write_workers > 1 and writer_kwargs.get("keep_original"):
            raise ValueError("keep_original keeps the last written image: it needs write_workers 1.")
        if is_main_process():
            check_output_folder(output_dir, overwrite, option="output_dir", how="--overwrite true")
        self.output_dir = output_dir
        self.preprocessing = preprocessing
        self.write_queue_size = int(write_queue_size)
        self.write_workers = int(write_workers)
        # Held while a map is mapped back and, without DataLoader workers, while the chain preprocesses an item.
        self._chain_lock = threading.Lock() if self.write_queue_size else None
        self.inverter = OriginalGeometryInverter(preprocessing, lock=self._chain_lock)
        self.writer_kwargs = writer_kwargs
        self._jobs: BackgroundJobs[_WriteItem] | InlineJobs[_WriteItem] = InlineJobs(self._write, self._record)
        self._guarded: tuple[Any, Any] | None = None
        self.started(None)  # checks the arguments now

    def attach(self, engine: Engine) -> None:
        engine.add_event_handler(Events.STARTED, self.started)
        engine.add_event_handler(Events.ITERATION_COMPLETED, self)
        engine.add_event_handler(Events.COMPLETED, self.completed)

    def started(self, engine: Engine | None) -> None:
        from monai_glam.writers import PredictionWriter

        # A run that ended with an error may have left its writer thread and its guard: end both before anything
        # of the new run exists.
        self._jobs.close(abort=True)
        self._unguard_chain()
        self.writer = PredictionWriter(self.output_dir, self.inverter, **self.writer_kwargs)
        #: datalist position of each written prediction, in writing order.
        self.positions: list[int] = []
        self._data = _datalist(engine)
        # (position, image id) of every datalist item, by source file: ids as one whole-list run assigns them.
        self._unclaimed: dict[str, list[tuple[int, str]]] = {}
        for position, item in enumerate(self._data or ()):
            source = item.get(CommonKeys.IMAGE, "") if isinstance(item, Mapping) else item
            image_id = self.writer.new_image_id(str(source) or "image")
            self._unclaimed.setdefault(_source_key(source), []).append((position, image_id))
        self._extra = 0
        if engine is not None and self.write_queue_size:
            self._jobs = BackgroundJobs(
                self._write,
                size=self.write_queue_size,
                name="monai-glam-bundle-write",
                workers=self.write_workers,
                commit=self._record,
            )
            self._guard_chain(engine)
        else:
            self._jobs = InlineJobs(self._write, self._record)
        if engine is not None and rank_and_world_size()[1] > 1:
            dist.barrier()  # rank 0 has checked output_dir (in __init__) before any rank writes into it

    def _claim(self, source: str) -> tuple[int, str] | None:
        """The datalist position and image id of the item loaded from ``source``; None when already written."""
        rank, world = rank_and_world_size()
        entries = self._unclaimed.get(_source_key(source))
        if entries is not None:
            if not entries:
                return None  # a skipping dataset loaded it twice
            # A file listed twice: take this rank's share first (a DistributedSampler without shuffling gives rank r
            # the positions r, r + world, ...).
            mine = [i for i, (position, _) in enumerate(entries) if position % world == rank]
            return entries.pop(mine[0] if mine else 0)
        # Not in the datalist (or none known): positions after it, distinct on every rank.
        position = len(self._data or ()) + self._extra * world + rank
        self._extra += 1
        return position, self.writer.new_image_id(source or "image")

    def __call__(self, engine: Engine) -> None:
        outputs, batch = engine.state.output, engine.state.batch
        if not isinstance(outputs, list) or not isinstance(batch, list):
            raise ValueError("PredictionWriterHandler needs decollated outputs: keep the evaluator's decollate=True.")
        for output, data in zip(outputs, batch, strict=True):
            image = data[CommonKeys.IMAGE]
            item = {key: field_text(data.get(key)) for key in ("patient_id", "exam_id", "laterality", "view")}
            item[CommonKeys.IMAGE] = _source_path(data, CommonKeys.IMAGE)
            claimed = self._claim(item[CommonKeys.IMAGE])
            if claimed is None:
                logger.debug("%s is already written (loaded again in place of a skipped item)", item[CommonKeys.IMAGE])
                continue
            position, image_id = claimed
            item[CommonKeys.LABEL] = _label(data.get(CommonKeys.LABEL))
            for key in self.writer.mask_keys:
                if mask_was_read(data.get(key)):
                    item[key] = _source_path(data, key)
            pred = output.get(CommonKeys.PRED, output)
            outputs_ = {key: pred[key] for key in PREDICTION_OUTPUT_KEYS if key in pred}
            data_ = {CommonKeys.IMAGE: image, **{key: data[key] for key in self.writer.mask_keys if key in data}}
            self._jobs.put(_WriteItem(position, image_id, item, data_, outputs_))

    def _write(self, job: _WriteItem) -> tuple[_WriteItem, ImagePrediction]:
        """Write one item's files (on any writer thread)."""
        return job, self.writer.write_outputs(job.image_id, job.item, job.data, job.outputs)

    def _record(self, written: tuple[_WriteItem, ImagePrediction]) -> None:
        """Record a written item, in the order the engine produced them."""
        job, prediction = written
        self.writer.record(prediction, job.item)
        self.positions.append(job.position)

    def _guard_chain(self, engine: Engine) -> None:
        """Run the dataset's transform under the chain lock when it is this chain and runs on the engine's thread."""
        loader, dataset = getattr(engine, "data_loader", None), _dataset(engine)
        if getattr(loader, "num_workers", 0) == 0 and getattr(dataset, "transform", None) is self.preprocessing:
            dataset.transform = _LockedTransform(self.preprocessing, self._chain_lock)
            self._guarded = (dataset, self.preprocessing)

    def _unguard_chain(self) -> None:
        if self._guarded is not None:
            dataset, transform = self._guarded
            dataset.transform = transform
            self._guarded = None

    def completed(self, engine: Engine) -> None:
        from monai_glam.writers import FailureLog, ItemFailure

        try:
            self._jobs.close()  # every queued item is written before the tables
        finally:
            self._unguard_chain()
        failures = FailureLog("bundle inference")
        skipped = getattr(_dataset(engine), "skipped", None) or {}
        for position, message in sorted(skipped.items()):
            item = self._data[position] if self._data is not None and position < len(self._data) else {}
            source = item.get(CommonKeys.IMAGE, "?") if isinstance(item, Mapping) else item
            failures.failures.append(ItemFailure(int(position), str(source), "load", str(message)))
        info: dict[str, Any] = {"source": "monai_glam bundle inference.json"}
        rank, world = rank_and_world_size()
        if world > 1:
            self.writer.merge_shards(failures, self.positions)
            info["num_processes"] = world
        else:
            order = sorted(range(len(self.positions)), key=self.positions.__getitem__)
            self.writer.predictions = [self.writer.predictions[i] for i in order]
        if rank == 0:
            paths = self.writer.finalize(failures, info)
            logger.info("wrote %d predictions to %s", len(self.writer.predictions), paths["images"])
        if world > 1:
            dist.barrier()  # no rank leaves before the tables exist


@dataclass
class _WriteItem:
    """One predicted item on its way to the writer: datalist position, image id, fields, inputs and outputs."""

    position: int
    image_id: str
    item: dict[str, Any]
    data: dict[str, Any]
    outputs: dict[str, Any]


class _LockedTransform:
    """Calls ``transform`` while holding ``lock`` (see :class:`PredictionWriterHandler`)."""

    def __init__(self, transform: Any, lock: threading.Lock | None) -> None:
        self.transform = transform
        self.lock = lock or threading.Lock()

    def __call__(self, data: Any) -> Any:
        with self.lock:
            return self.transform(data)


def _dataset(engine: Engine | None) -> Any:
    """The engine's dataset (``engine.data_loader.dataset``), None when it has none."""
    return getattr(getattr(engine, "data_loader", None), "dataset", None)


def _datalist(engine: Engine | None) -> Sequence[Any] | None:
    """The items of the engine's dataset (``engine.data_loader.dataset.data``), None when it has none."""
    data = getattr(_dataset(engine), "data", None)
    return data if isinstance(data, Sequence) and not isinstance(data, (str, bytes)) else None


def _source_key(source: Any) -> str:
    """A datalist path and the ``filename_or_obj`` a reader records for it compare equal."""
    return os.path.normpath(os.path.abspath(str(source))) if source not in (None, "") else ""
