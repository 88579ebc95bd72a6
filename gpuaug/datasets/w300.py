"""300W and the sets in its layout (iBUG, HELEN, LFPW, AFW, menpo): images with a sibling ``.pts`` file each.

A ``.pts`` file reads::

    version: 1
    n_points:  68
    {
    x y
    ...
    }

Its coordinates are 1-based (the first pixel's centre is (1, 1), MATLAB's convention, as the 300W challenge's own
tools and Menpo read them); gpuaug's pixel centres are at integers from 0, so each point becomes ``(x - 1, y -
1)``. The sets ship no box: the crop frames the landmarks' extent.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gpuaug.datasets.files import annotation_files, sibling_image
from gpuaug.errors import FaceDataError
from gpuaug.load.frames import FaceFrames
from gpuaug.load.images import ImageEntry, ImageSource


def read_pts(path: str | Path) -> np.ndarray:
    """(K, 2) float32 points of a ``.pts`` file, 1-based as written; FaceDataError naming the file and the line of
    what does not parse (a header, a point, a count that disagrees with ``n_points``, a missing ``}``).

    Args:
        path: the ``.pts`` file.
    """
    path = Path(path)
    lines = path.read_text(errors="replace").splitlines()
    header = {}
    i = 0
    while i < len(lines) and lines[i].strip() != "{":
        key, _, value = lines[i].partition(":")
        header[key.strip()] = value.strip()
        i += 1
    if i == len(lines):
        raise FaceDataError(path, f"line {len(lines)}: no '{{' opening the points (a .pts header is 'version: 1', "
                                  "'n_points: K', then '{')")
    try:
        count = int(header["n_points"])
    except (KeyError, ValueError):
        raise FaceDataError(path, f"line {i}: no 'n_points: K' header before '{{'") from None
    points = []
    for number, line in enumerate(lines[i + 1:], start=i + 2):
        if line.strip() == "}":
            break
        values = line.split()
        try:
            if len(values) != 2:
                raise ValueError
            points.append((float(values[0]), float(values[1])))
        except ValueError:
            raise FaceDataError(path, f"line {number}: expected 'x y', got {line.strip()!r}") from None
    else:
        raise FaceDataError(path, f"line {len(lines)}: the file ends before '}}' (truncated?): {len(points)} of "
                                  f"{count} points")
    if len(points) != count:
        raise FaceDataError(path, f"n_points says {count}, the file lists {len(points)}")
    return np.asarray(points, dtype=np.float32).reshape(-1, 2)


def read_300w(root: str | Path, progress: bool | None = None) -> FaceFrames:
    """Every ``.pts`` under ``root`` with the image beside it (same stem; .jpg, .png, ...): a
    :class:`~gpuaug.FaceFrames` with 2D landmarks only, converted from the file's 1-based coordinates to gpuaug's
    (minus 1; module docstring). 68 points: augment with the ``"ibug68"`` flip table (the default). A malformed
    ``.pts`` or a missing image raises :class:`~gpuaug.FaceDataError` naming the file (and the line).

    Args:
        root: the folder searched (recursively) for ``.pts`` files.
        progress: progress bar while indexing; None shows it on a terminal only.
    """
    entries = []
    for pts in annotation_files(root, ".pts"):
        entries.append(ImageEntry(sibling_image(pts), {"landmarks2d": read_pts(pts) - 1.0}, sources=(pts,)))
    return FaceFrames(ImageSource(entries, progress))
