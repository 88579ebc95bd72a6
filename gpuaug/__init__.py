"""gpuaug: batched GPU augmentation with exact label transforms for face multitask data."""

from gpuaug.augment import AugmentedBatch, FaceAugment
from gpuaug.batch import FaceBatch, collate
from gpuaug.clips import AugmentedClips, ClipAugment
from gpuaug.config import AugmentConfig
from gpuaug.errors import BatchError, FaceDataError
from gpuaug.labels.custom import ARKIT52, ClassLabel, FlipVector, PointFlags
from gpuaug.load.clips import FaceClips
from gpuaug.load.frames import FaceFrames
from gpuaug.load.resident import ResidentFrames
from gpuaug.load.resident_clips import ResidentClips
from gpuaug.load.stream import StreamLoader
from gpuaug.load.video import FaceVideo, FrameProblem, read_video
from gpuaug.params import AugmentParams, sample_params
from gpuaug.sample import FaceSample
from gpuaug.window import ReadWindow

__all__ = [
    "ARKIT52",
    "AugmentConfig",
    "AugmentParams",
    "AugmentedBatch",
    "AugmentedClips",
    "BatchError",
    "ClassLabel",
    "ClipAugment",
    "FaceAugment",
    "FaceBatch",
    "FaceClips",
    "FaceDataError",
    "FaceFrames",
    "FaceSample",
    "FaceVideo",
    "FlipVector",
    "FrameProblem",
    "PointFlags",
    "ReadWindow",
    "ResidentClips",
    "ResidentFrames",
    "StreamLoader",
    "collate",
    "read_video",
    "sample_params",
]
__version__ = "0.1.0"
