"""gpuaug: batched GPU augmentation with exact label transforms for face multitask data."""

from gpuaug.augment import AugmentedBatch, FaceAugment
from gpuaug.batch import FaceBatch, collate
from gpuaug.config import AugmentConfig
from gpuaug.errors import BatchError, FaceDataError
from gpuaug.load.frames import FaceFrames, FaceSample
from gpuaug.load.resident import ResidentFrames
from gpuaug.load.video import FaceVideo, FrameProblem, read_video
from gpuaug.params import AugmentParams, sample_params

__all__ = [
    "AugmentConfig",
    "AugmentParams",
    "AugmentedBatch",
    "BatchError",
    "FaceAugment",
    "FaceBatch",
    "FaceDataError",
    "FaceFrames",
    "FaceSample",
    "FaceVideo",
    "FrameProblem",
    "ResidentFrames",
    "collate",
    "read_video",
    "sample_params",
]
__version__ = "0.1.0"
