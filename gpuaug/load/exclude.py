"""Frames a label audit flagged (``python -m gpuaug audit``), read back from its table to leave them out.

The audit writes ``audit.csv``: one row per frame with its video's path, its frame number, each check's score and
flag, ``flagged`` (any check) and ``reasons``. :class:`~gpuaug.FaceFrames` (``exclude=``) and the packer skip the
flagged frames, each with its reasons in the skip report.
"""

from __future__ import annotations

import csv
import os
from dataclasses import replace
from pathlib import Path

import numpy as np

from gpuaug.errors import FaceDataError
from gpuaug.load.sample import VideoIndex
from gpuaug.load.video import FrameProblem

#: The audit table's file name in a report folder, and the columns every row has (then per check: score, flag).
TABLE = "audit.csv"
KEY_COLUMNS = ("video", "frame", "flagged", "reasons")


def video_key(path: str | Path) -> str:
    """A video's path as the audit and the readers compare it (resolved, so relative and absolute spellings
    agree)."""
    return os.path.realpath(path)


def read_flags(report: str | Path) -> dict[tuple[str, int], str]:
    """(video key, frame number) -> reasons of every flagged frame of a report folder (or its ``audit.csv``);
    FaceDataError naming the file when it is not an audit table."""
    path = Path(report)
    path = path / TABLE if path.is_dir() else path
    if not path.is_file():
        raise FaceDataError(path, f"no audit table ({TABLE}): run `python -m gpuaug audit DATA --out REPORT` first")
    flags = {}
    with open(path, newline="") as f:
        reader = csv.DictReader(f)
        missing = set(KEY_COLUMNS) - set(reader.fieldnames or ())
        if missing:
            raise FaceDataError(path, f"not an audit table: no column {sorted(missing)}")
        for row in reader:
            if row["flagged"] == "1":
                flags[(video_key(row["video"]), int(row["frame"]))] = row["reasons"]
    return flags


def exclude_frames(video: VideoIndex, flags: dict[tuple[str, int], str]) -> VideoIndex:
    """``video`` without the frames ``flags`` (:func:`read_flags`) names, each moved to its skipped frames as an
    "audit" problem with the audit's reasons."""
    if not flags:
        return video
    key = video_key(video.path)
    out = np.array([(key, int(f)) in flags for f in video.frames], dtype=bool)
    if not out.any():
        return video
    problems = tuple(FrameProblem(video.path, int(f), "audit", flags[(key, int(f))]) for f in video.frames[out])
    return replace(video, frames=video.frames[~out], skipped=video.skipped + problems)
