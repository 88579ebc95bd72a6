"""Label audit: score every frame of a data set on checks that its labels agree with each other, flag those past
a threshold, and show the worst (``python -m gpuaug audit DATA --out REPORT``); ``FaceFrames(path,
exclude=REPORT)`` leaves the flagged frames out."""

from gpuaug.audit.checks import CHECKS, Check
from gpuaug.audit.report import write_report
from gpuaug.audit.run import Scores, score_frames

__all__ = ["CHECKS", "Check", "Scores", "score_frames", "write_report"]
