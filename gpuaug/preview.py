"""Preview pictures: frames with landmarks, head-pose axes, gaze arrows and boxes, tiled into one PNG.

Landmarks are coloured by side (red for the lower index of a flip pair: the image's left half of a frontal face
in the built-in layouts; blue its partner; midline yellow), read from the layout's flip table (the augmented
batch's own, or the built-in table with as many points), so a wrong flip re-index shows at a glance; landmarks
under an occluder are drawn hollow, points not annotated (NaN) not at all. Pose axes start at the nose tip
(point 30 of the 68-point iBUG layout; the centre of the annotated points in any other): the head's x axis red,
y (down) green, forward (toward the camera) blue. The gaze arrow starts between the eyes (iBUG points 36 and 45;
the centre otherwise).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from gpuaug.labels.flip_tables import FLIP_TABLES, builtin_table, flip_side
from gpuaug.labels.rotation import pose_to_matrix

SIDE_COLOUR = {-1: (255, 60, 60), 0: (255, 230, 0), 1: (60, 140, 255)}
_IBUG68 = FLIP_TABLES["ibug68"]


def layout_table(n_points: int, table: Sequence[int] | None = None) -> tuple[int, ...] | None:
    """The flip table to colour ``n_points`` landmarks by: ``table`` when given, else the built-in table of that
    many points (:func:`~gpuaug.labels.flip_tables.builtin_table`), else None (every point drawn as midline)."""
    if table is not None:
        return tuple(int(i) for i in table)
    name = builtin_table(n_points)
    return None if name is None else FLIP_TABLES[name]


def _anchors(lm: np.ndarray, table: tuple[int, ...] | None) -> tuple[np.ndarray, np.ndarray] | None:
    """Where the pose axes and the gaze arrow start: the nose tip and between the eyes of the iBUG layout, else
    (or where those points are not annotated) the centre of the annotated points; None when there is none."""
    annotated = np.isfinite(lm).all(1)
    if not annotated.any():
        return None
    centre = lm[annotated].mean(0)
    if table != _IBUG68:
        return centre, centre
    nose = lm[30] if annotated[30] else centre
    eyes = (lm[36] + lm[45]) / 2 if annotated[36] and annotated[45] else centre
    return nose, eyes


def draw_labels(
    img: Image.Image,
    landmarks: np.ndarray | None,
    head_pose: np.ndarray | None = None,
    gaze: np.ndarray | None = None,
    bbox: np.ndarray | None = None,
    zoom: float = 1.0,
    occluded: np.ndarray | None = None,
    table: Sequence[int] | None = None,
) -> None:
    """Draw on ``img`` (already ``zoom`` times the label's pixel grid) the labels given (None: the data set has
    none of that kind; NaN: that sample's label is missing; either way nothing is drawn for it). landmarks (K, 2)
    pixels, head_pose (3,) degrees, gaze (3,) [x right, y up, z toward camera], bbox (4,) [x0, y0, x1, y1],
    occluded (K,) bool: those landmarks drawn as rings; table: the layout's flip table (default:
    :func:`layout_table`). Without landmarks the pose axes and the gaze start at the image's centre."""
    draw = ImageDraw.Draw(img)
    # Pixel centres sit at integers, so pixel i spans [i - 0.5, i + 0.5]: shift by 0.5 before zooming.
    lm = (np.asarray(landmarks if landmarks is not None else np.zeros((0, 2)), dtype=np.float64).reshape(-1, 2)
          + 0.5) * zoom
    table = layout_table(len(lm), table) if len(lm) else None
    side = flip_side(table) if table is not None else (0,) * len(lm)
    annotated = np.isfinite(lm).all(1)
    # Arrows 0.6 of the face's height; without landmarks 0.3 of the image's shorter side (from its centre).
    spread = float(np.ptp(lm[annotated, 1])) if annotated.any() else 0.5 * min(img.size) if landmarks is None else 0.0
    length = 0.6 * (spread or zoom * 10)
    if bbox is not None and np.isfinite(bbox).all():
        x0, y0, x1, y1 = ((np.asarray(bbox, dtype=np.float64) + 0.5) * zoom).tolist()
        draw.rectangle((x0, y0, x1, y1), outline=(0, 255, 120))
    centre = np.array(img.size, dtype=np.float64) / 2
    nose, eyes = _anchors(lm, table) or ((centre, centre) if landmarks is None else (None, None))
    if nose is not None and head_pose is not None and np.isfinite(head_pose).all():
        rot = pose_to_matrix(torch.as_tensor(head_pose, dtype=torch.float64)).numpy()
        for axis, colour in ((rot[:, 0], (255, 0, 0)), (rot[:, 1], (0, 220, 0)), (-rot[:, 2], (0, 90, 255))):
            tip = nose + length * axis[:2]
            draw.line((*nose, *tip), fill=colour, width=2)
    if eyes is not None and gaze is not None and np.isfinite(gaze).all():
        g = np.asarray(gaze, dtype=np.float64)
        tip = eyes + length * np.array([g[0], -g[1]]) / max(float(np.linalg.norm(g)), 1e-6)
        draw.line((*eyes, *tip), fill=(0, 255, 255), width=2)
        draw.ellipse((tip[0] - 3, tip[1] - 3, tip[0] + 3, tip[1] + 3), fill=(0, 255, 255))
    r = max(1.0, zoom)
    for i in np.flatnonzero(annotated).tolist():
        x, y = lm[i]
        if occluded is not None and occluded[i]:
            draw.ellipse((x - r - 1, y - r - 1, x + r + 1, y + r + 1), outline=SIDE_COLOUR[side[i]])
        else:
            draw.ellipse((x - r, y - r, x + r, y + r), fill=SIDE_COLOUR[side[i]])


def _row(labels: np.ndarray | None, i: int) -> np.ndarray | None:
    return None if labels is None else labels[i]


def tile(
    images: Sequence[np.ndarray],
    landmarks: np.ndarray | None,
    head_pose: np.ndarray | None = None,
    gaze: np.ndarray | None = None,
    bbox: np.ndarray | None = None,
    captions: Sequence[str] | None = None,
    zoom: float = 2.0,
    columns: int = 8,
    occluded: np.ndarray | None = None,
    table: Sequence[int] | None = None,
) -> Image.Image:
    """Grid of annotated frames. images: (H, W, 3) or (H, W, 1) uint8 each; labels (B, ...) numpy or None (the
    data set has none of that kind); occluded (B, K) bool (drawn hollow) or None; table: the layout's flip table
    (see :func:`draw_labels`)."""
    tiles = []
    for i, frame in enumerate(images):
        frame = np.repeat(frame, 3, axis=2) if frame.shape[2] == 1 else frame
        pic = Image.fromarray(frame).resize(
            (round(frame.shape[1] * zoom), round(frame.shape[0] * zoom)), Image.Resampling.NEAREST
        )
        draw_labels(pic, _row(landmarks, i), _row(head_pose, i), _row(gaze, i), _row(bbox, i), zoom,
                    _row(occluded, i), table)
        if captions:
            ImageDraw.Draw(pic).text((4, 4), captions[i], fill=(255, 255, 255))
        tiles.append(pic)
    cols = min(columns, len(tiles))
    rows = -(-len(tiles) // cols)
    cell_w, cell_h = max(t.width for t in tiles), max(t.height for t in tiles)
    sheet = Image.new("RGB", (cols * cell_w + (cols - 1) * 4, rows * cell_h + (rows - 1) * 4), (32, 32, 32))
    for i, t in enumerate(tiles):
        sheet.paste(t, ((i % cols) * (cell_w + 4), (i // cols) * (cell_h + 4)))
    return sheet


def pose_caption(pose: np.ndarray | None, flipped: bool = False) -> str:
    """"y+12 p-3 r+5" (yaw, pitch, roll degrees; nothing without a pose), then " flip" for a mirrored sample."""
    text = "" if pose is None or not np.isfinite(pose).all() else "y{:+.0f} p{:+.0f} r{:+.0f}".format(*map(float, pose))
    return (text + " flip" if flipped else text).strip()


def preview_augmented(batch, path: str | Path, limit: int = 16, columns: int = 8) -> Path:
    """Save an :class:`~gpuaug.AugmentedBatch` (first ``limit`` samples, ``columns`` a row) as a PNG sheet, with
    the labels it has."""
    n = min(limit, len(batch))
    images = (batch.images[:n].clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    names = ("landmarks2d", "head_pose", "gaze", "bbox", "occluded")
    labels = {k: None if getattr(batch, k) is None else getattr(batch, k)[:n].detach().cpu().numpy() for k in names}
    flips = batch.flipped[:n].cpu().tolist()
    captions = [pose_caption(_row(labels["head_pose"], i), flips[i]) for i in range(n)]
    sheet = tile(list(images), labels["landmarks2d"], labels["head_pose"], labels["gaze"], labels["bbox"],
                 captions, zoom=2.0, columns=columns, occluded=labels["occluded"], table=batch.flip_table.tolist())
    sheet.save(path)
    return Path(path)


def preview_clips(clips, path: str | Path, limit: int = 4) -> Path:
    """Save the first ``limit`` clips of an :class:`~gpuaug.AugmentedClips` as strips: one row per clip, its T
    frames left to right in time order."""
    length = clips.images.shape[1]
    return preview_augmented(clips.frames, path, limit=min(limit, len(clips)) * length, columns=length)


def preview_frames(
    images: Sequence[np.ndarray],
    landmarks: np.ndarray | None,
    head_pose: np.ndarray | None,
    gaze: np.ndarray | None,
    bbox: np.ndarray | None,
    path: str | Path,
    columns: int = 4,
    table: Sequence[int] | None = None,
) -> Path:
    """Save raw frames (each (H, W, 3) uint8) with their source-space labels (None: the data set has none of that
    kind) as a PNG sheet (``table``: the layout's flip table, see :func:`draw_labels`)."""
    captions = [pose_caption(_row(head_pose, i)) for i in range(len(images))]
    tile(images, landmarks, head_pose, gaze, bbox, captions, zoom=1.0, columns=columns, table=table).save(path)
    return Path(path)
