"""WFLW: one annotation file of lines, each a face of an image under ``WFLW_images``.

A line holds 207 fields: 98 points as x y pairs (196 numbers), the box ``x_min y_min x_max y_max``, six
attribute flags (pose, expression, illumination, make-up, occlusion, blur: 0 or 1) and the image's path relative
to the images folder. The coordinates are taken as they are: WFLW's own evaluation code and mmpose's converter use
them unchanged as 0-based pixel coordinates, which is gpuaug's convention. An image with several faces has a
line per face, each its own sample. The flags come in as labels of your own (:data:`WFLW_ATTRIBUTES`, one
:class:`~gpuaug.ClassLabel` of two classes each, unchanged by a flip); augment with the ``"wflw98"`` flip table.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from gpuaug.errors import FaceDataError
from gpuaug.labels.custom import ClassLabel
from gpuaug.load.frames import FaceFrames
from gpuaug.load.images import ImageEntry, ImageSource

#: The six attribute flags of a WFLW line, in the file's order, as labels of your own (0 or 1 per face).
WFLW_ATTRIBUTES = tuple(ClassLabel(name, 2) for name in
                        ("pose", "expression", "illumination", "makeup", "occlusion", "blur"))
FIELDS = 98 * 2 + 4 + len(WFLW_ATTRIBUTES) + 1


def parse_line(line: str, path: Path, number: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, str]:
    """One annotation line -> (98, 2) float32 points, (4,) float32 box, (6,) int64 flags, image path; FaceDataError
    naming the file and line for a line of another length or a value that does not parse."""
    values = line.split()
    if len(values) != FIELDS:
        raise FaceDataError(path, f"line {number}: expected {FIELDS} fields (98 points x 2, a box of 4, "
                                  f"{len(WFLW_ATTRIBUTES)} attribute flags, the image path), got {len(values)}")
    try:
        numbers = np.asarray(values[:-1 - len(WFLW_ATTRIBUTES)], dtype=np.float32)
        flags = np.asarray([int(v) for v in values[-1 - len(WFLW_ATTRIBUTES):-1]], dtype=np.int64)
    except ValueError as exc:
        raise FaceDataError(path, f"line {number}: {exc}") from None
    if ((flags != 0) & (flags != 1)).any():
        raise FaceDataError(path, f"line {number}: attribute flags are 0 or 1, got {flags.tolist()}")
    return numbers[:196].reshape(98, 2), numbers[196:], flags, values[-1]


def read_wflw(annotation_file: str | Path, images_root: str | Path, progress: bool | None = None) -> FaceFrames:
    """The faces of a WFLW annotation file (e.g. ``list_98pt_rect_attr_train.txt``) over the images under
    ``images_root`` (``WFLW_images``): a :class:`~gpuaug.FaceFrames` with the box, 98 2D landmarks and the six
    attribute flags as labels of your own (module :mod:`gpuaug.datasets.wflw`). A malformed line raises
    :class:`~gpuaug.FaceDataError` naming the file and line; a missing image names the image and the line.

    Args:
        annotation_file: a WFLW annotation list (one face a line).
        images_root: the folder the lines' image paths start from.
        progress: progress bar while indexing; None shows it on a terminal only.
    """
    path, root = Path(annotation_file), Path(images_root)
    if not path.is_file():
        raise FaceDataError(path, "no such annotation file")
    entries = []
    for number, line in enumerate(path.read_text(errors="replace").splitlines(), start=1):
        if not line.strip():
            continue
        points, box, flags, image = parse_line(line, path, number)
        if not (root / image).is_file():
            raise FaceDataError(root / image, f"no such image (named on line {number} of {path})")
        custom = {spec.name: flags[i] for i, spec in enumerate(WFLW_ATTRIBUTES)}
        entries.append(ImageEntry(root / image, {"bbox": box, "landmarks2d": points}, custom, sources=(path,),
                                  name=f"{root / image}#line{number}"))
    if not entries:
        raise FaceDataError(path, "no annotation lines")
    return FaceFrames(ImageSource(entries, progress))
