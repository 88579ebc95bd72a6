"""``DaliFaceLoader``: a :class:`FaceFrames` data set read by DALI workers, augmented, as AugmentedBatches.

One DALI pipeline per loader. A parallel batch ``external_source`` (Python worker processes) reads a
batch (:meth:`~gpuaug.FaceFrames.batch`), draws its params and matrix with the shared code
(:meth:`FaceAugment.sample_params`, :meth:`FaceAugment.matrix`) and hands DALI the frames (a ragged batch),
the per-sample render inputs and the raw labels. DALI renders the pixels (the DALI backend's
:func:`~gpuaug.backends.dali_backend.render_graph`); the main process redraws the same params from the
same seed and applies the shared label transforms (:meth:`FaceAugment.with_labels`).

Order and randomness are a pure function of (seed, epoch, rank, batch number), so a run is reproducible
whatever the number of workers. Every epoch permutes all frames as ``DistributedSampler(seed=seed)``
does after ``set_epoch(epoch)``, identically on every rank, and rank r of W takes positions r, r + W, ...
(the sampler's shard when W divides the frame count). Unlike the sampler it never repeats frames to even
the shards out: shards are disjoint, together hold every frame once per epoch, and differ in size by at
most one frame (so ranks can differ by one batch per epoch). Params come from
:func:`~gpuaug.distributed.rank_generator` (seed, epoch, rank, batch).
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, fields

import numpy as np
import torch

from gpuaug.augment import AugmentedBatch, FaceAugment, mask_invalid

# Through the backend module, which names the package to install when DALI is missing.
from gpuaug.backends.dali_backend import (
    RENDER_INPUTS,
    Pipeline,
    dali_device_id,
    default_threads,
    fn,
    frame_views,
    host_copy,
    render_graph,
    render_inputs,
    rendered_output,
)
from gpuaug.batch import FaceBatch
from gpuaug.config import CAMERA_PROBABILITIES, AugmentConfig
from gpuaug.distributed import rank_generator
from gpuaug.labels.custom import CustomLabel
from gpuaug.load.frames import FaceFrames
from gpuaug.sample import LABEL_FIELDS


def passthrough_fields(kinds: tuple[str, ...], labels: tuple[str, ...] = ()) -> tuple[str, ...]:
    """FaceBatch fields that pass through the pipeline untouched: everything but the pixel buffer's layout, with
    only the label ``kinds`` the data set has (``external_source`` cannot carry None), then each label of your own
    as "labels.<name>"."""
    plain = tuple(f.name for f in fields(FaceBatch) if f.name not in ("pixels", "offsets", "strides", "labels")
                  and (f.name not in LABEL_FIELDS or f.name in kinds))
    return plain + tuple(f"labels.{name}" for name in labels)


def _field(batch: FaceBatch, name: str) -> torch.Tensor:
    """A passthrough field of ``batch`` (:func:`passthrough_fields`)."""
    return batch.labels[name.removeprefix("labels.")] if name.startswith("labels.") else getattr(batch, name)


@functools.lru_cache(maxsize=2)
def _epoch_order(n_frames: int, seed: int, epoch: int, shuffle: bool) -> np.ndarray:
    """(n_frames,) frame order of one epoch, the same on every rank: DistributedSampler's permutation."""
    if not shuffle:
        return np.arange(n_frames)
    return torch.randperm(n_frames, generator=torch.Generator().manual_seed(seed + epoch)).numpy()


@dataclass(frozen=True)
class ShardPlan:
    """Which frames, and which random draws, the ``step``-th batch of one shard gets (stateless).

    ``step`` counts batches from the loader's start: epoch = step // batches_per_epoch.
    """

    n_frames: int
    batch_size: int
    seed: int = 0
    rank: int = 0
    world_size: int = 1
    shuffle: bool = True

    def __post_init__(self) -> None:
        if not 0 <= self.rank < self.world_size:
            raise ValueError(f"need 0 <= rank < world_size, got rank {self.rank}, world_size {self.world_size}")
        if self.batch_size < 1 or self.shard_size < 1:
            raise ValueError(f"batch_size ({self.batch_size}) and frames per shard ({self.shard_size}) must be >= 1")

    @property
    def shard_size(self) -> int:
        return len(range(self.rank, self.n_frames, self.world_size))

    @property
    def batches_per_epoch(self) -> int:
        return -(-self.shard_size // self.batch_size)

    def indices(self, step: int) -> np.ndarray:
        """Data set indices (int64) of batch ``step``; the last batch of an epoch may be short."""
        epoch, it = divmod(step, self.batches_per_epoch)
        shard = _epoch_order(self.n_frames, self.seed, epoch, self.shuffle)[self.rank :: self.world_size]
        return shard[it * self.batch_size : (it + 1) * self.batch_size]

    def generator(self, step: int) -> torch.Generator:
        """The CPU generator of batch ``step``'s augmentation params: one stream per batch, since workers
        draw batches out of order."""
        epoch, it = divmod(step, self.batches_per_epoch)
        return rank_generator(self.seed, epoch, self.rank, it)


def worker_start_method(device: torch.device) -> str:
    """"spawn" when the pipeline runs on CUDA or this process has initialised CUDA already (DALI refuses to
    fork a process holding a CUDA context, whatever the pipeline's device), else "fork" (faster to start)."""
    return "spawn" if device.type == "cuda" or torch.cuda.is_initialized() else "fork"


@dataclass
class _BatchSource:
    """The parallel ``external_source`` callback: runs in DALI's Python workers, so it is picklable."""

    frames: FaceFrames
    plan: ShardPlan
    aug: FaceAugment
    passthrough: tuple[str, ...]

    def __call__(self, info) -> tuple[np.ndarray, ...]:
        # One torch thread per worker (the workers are the parallelism); also, libgomp's thread pool
        # inherited through fork deadlocks at the first parallel region otherwise.
        if torch.get_num_threads() != 1:
            torch.set_num_threads(1)
        # Never raises StopIteration: epochs are counted by the loader, so workers prefetch across them.
        step = info.iteration
        batch = self.frames.batch(self.plan.indices(step))  # packed data: one copy from the memory maps
        params = self.aug.sample_params(batch, self.plan.generator(step))
        c = self.aug.config
        matrix = mask_invalid(batch, self.aug.matrix(batch, params), self.aug.labels)
        render = host_copy(*render_inputs(matrix, batch.sizes, params, c.out_size, c.channels))
        return (frame_views(batch), *render, *(_field(batch, f).numpy() for f in self.passthrough))


class DaliFaceLoader:
    """Iterate a :class:`FaceFrames` data set as augmented batches, pixels rendered by DALI.

    ``for batch in loader`` runs one epoch (``len(loader)`` batches of :class:`AugmentedBatch` on
    ``device``); the k-th pass is epoch k. Leaving a pass early (``break``) skips the rest of that epoch.

    Args:
        frames: the data set.
        batch_size: frames per batch (the last batch of an epoch may be short).
        config: augmentation config.
        train: False gives the deterministic eval framing (as ``FaceAugment.eval()``).
        seed: order and params are a function of (seed, epoch, rank, batch).
        rank: this process's rank (its shard).
        world_size: how many processes shard the data set.
        shuffle: permute frames each epoch (else data set order).
        device: "cpu" (DALI CPU-only pipeline) or a CUDA device.
        num_workers: Python worker processes reading frames.
        num_threads: DALI CPU threads.
        start_method: how workers start; default :func:`worker_start_method`.
        labels: the data set's labels of your own with their flip rules (``frames.label_names``), as for
            :class:`FaceAugment`.
    """

    def __init__(
        self,
        frames: FaceFrames,
        batch_size: int,
        config: AugmentConfig | None = None,
        seed: int = 0,
        rank: int = 0,
        world_size: int = 1,
        shuffle: bool = True,
        train: bool = True,
        device: torch.device | str = "cpu",
        num_workers: int = 2,
        num_threads: int | None = None,
        start_method: str | None = None,
        labels: Sequence[CustomLabel] = (),
    ) -> None:
        if config is not None and config.camera:
            on = [name for name in CAMERA_PROBABILITIES if getattr(config, name) > 0]
            raise ValueError(f"DaliFaceLoader renders inside its DALI pipeline, which has no camera ops; turn off "
                             f"{', '.join(on)} or use FaceAugment (backend 'torch' or 'dali') on loaded batches")
        self.device = torch.device(device)
        self.plan = ShardPlan(len(frames), batch_size, seed, rank, world_size, shuffle)
        self.aug = FaceAugment(config, backend="dali", labels=labels).train(train)
        self._step = 0
        self._passthrough = passthrough_fields(frames.kinds, frames.label_names)
        cuda = self.device.type == "cuda"
        self._pipe = Pipeline(
            batch_size=batch_size, num_threads=num_threads or default_threads(),
            device_id=dali_device_id(self.device), py_num_workers=num_workers,
            py_start_method=start_method or worker_start_method(self.device),
        )
        with self._pipe:
            config = self.aug.config
            n_render = len(RENDER_INPUTS[config.channels])
            passthrough = self._passthrough
            frames_node, *outputs = fn.external_source(
                source=_BatchSource(frames, self.plan, self.aug, passthrough),
                num_outputs=1 + n_render + len(passthrough), layout=["HWC"] + [""] * (n_render + len(passthrough)),
                parallel=True, batch=True,
                batch_info=True,
            )
            images = render_graph(frames_node.gpu() if cuda else frames_node, outputs[:n_render], config.out_size,
                                  config.channels, config.channels_last)
            self._pipe.set_outputs(images, *outputs[n_render:])
        self._pipe.build()

    def __len__(self) -> int:
        return self.plan.batches_per_epoch

    @property
    def epoch(self) -> int:
        """The epoch the next batch belongs to."""
        return self._step // len(self)

    def __iter__(self) -> Iterator[AugmentedBatch]:
        while self._step % len(self):  # a previous pass left early: drop the rest of its epoch
            self._next()
        for _ in range(len(self)):
            yield self._next()

    def _next(self) -> AugmentedBatch:
        step, self._step = self._step, self._step + 1
        images, *labels = self._pipe.run()
        raw = {f: torch.from_numpy(np.array(t.as_tensor())) for f, t in zip(self._passthrough, labels, strict=True)}
        raw["labels"] = {f.removeprefix("labels."): raw.pop(f) for f in list(raw) if f.startswith("labels.")}
        # The raw pixels never leave DALI; the label code reads everything but them.
        layout = torch.zeros(len(raw["keys"]), dtype=torch.int64)
        batch = FaceBatch(pixels=torch.empty(0, dtype=torch.uint8), offsets=layout, strides=layout, **raw)
        batch = batch.to(self.device)
        params = self.aug.sample_params(batch, self.plan.generator(step))
        images = rendered_output(images, self.device, self.aug.config)
        matrix = mask_invalid(batch, self.aug.matrix(batch, params), self.aug.labels)
        return self.aug.with_labels(batch, matrix, params, images)
