"""Readers for public face data sets as they ship: each returns a :class:`~gpuaug.FaceFrames` over the images with
only the label kinds its set has, converted to gpuaug's conventions (pixel centres at integers from 0; head
pose [yaw, pitch, roll] degrees, :mod:`gpuaug.labels.rotation`). Pack one for the stream loader with
``python -m gpuaug pack --format 300w|wflw|300wlp SRC DST``.
"""

from gpuaug.datasets.w300 import read_300w, read_pts
from gpuaug.datasets.w300lp import pose_from_3ddfa, read_300wlp
from gpuaug.datasets.wflw import WFLW_ATTRIBUTES, read_wflw

__all__ = ["WFLW_ATTRIBUTES", "pose_from_3ddfa", "read_300w", "read_300wlp", "read_pts", "read_wflw"]
