"""Training targets built in the augmentation step, and their decoders (see :mod:`gpuaug.targets.spec`)."""

from gpuaug.targets.bins import (
    HOPENET_POSE,
    IGNORE_INDEX,
    L2CS_GAZE360,
    L2CS_MPIIGAZE,
    AngleBins,
    decode_bins,
    encode_bins,
    gaze_to_pitch_yaw,
    pitch_yaw_to_gaze,
)
from gpuaug.targets.heatmap import decode_heatmaps, encode_heatmaps
from gpuaug.targets.simcc import decode_simcc, encode_simcc
from gpuaug.targets.spec import (
    AngleBinLabels,
    GazeBinTarget,
    Heatmaps,
    HeatmapTarget,
    PoseBinTarget,
    SimCCLabels,
    SimCCTarget,
    TargetSpec,
)

__all__ = [
    "HOPENET_POSE",
    "IGNORE_INDEX",
    "L2CS_GAZE360",
    "L2CS_MPIIGAZE",
    "AngleBinLabels",
    "AngleBins",
    "GazeBinTarget",
    "HeatmapTarget",
    "Heatmaps",
    "PoseBinTarget",
    "SimCCLabels",
    "SimCCTarget",
    "TargetSpec",
    "decode_bins",
    "decode_heatmaps",
    "decode_simcc",
    "encode_bins",
    "encode_heatmaps",
    "encode_simcc",
    "gaze_to_pitch_yaw",
    "pitch_yaw_to_gaze",
]
