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

from gpuaug.labels.flip_tables import FLIP_TABLES, flip_side
from gpuaug.labels.rotation import pose_to_matrix

SIDE_COLOUR = {-1: (255, 60, 60), 0: (255, 230, 0), 1: (60, 140, 255)}
_IBUG68 = FLIP_TABLES["ibug68"]


def layout_table(n_points: int, table: Sequence[int] | None = None) -> tuple[int, ...] | None:
    """The flip table to colour ``n_points`` landmarks by: ``table`` when given, else the built-in table of that
    many points (each built-in layout has its own count), else None (every point drawn as midline)."""
    if table is not None:
        return tuple(int(i) for i in table)
    return next((t for t in FLIP_TABLES.values() if len(t) == n_points), None)


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
    landmarks: np.ndarray,
    head_pose: np.ndarray,
    gaze: np.ndarray,
    bbox: np.ndarray | None = None,
    zoom: float = 1.0,
    occluded: np.ndarray | None = None,
    table: Sequence[int] | None = None,
) -> None:
    """Draw on ``img`` (already ``zoom`` times the label's pixel grid). landmarks (K, 2) pixels (NaN: not
    annotated, not drawn), head_pose (3,) degrees, gaze (3,) [x right, y up, z toward camera], bbox (4,)
    [x0, y0, x1, y1], occluded (K,) bool: those landmarks drawn as rings; table: the layout's flip table
    (default: :func:`layout_table`)."""
    draw = ImageDraw.Draw(img)
    # Pixel centres sit at integers, so pixel i spans [i - 0.5, i + 0.5]: shift by 0.5 before zooming.
    lm = (np.asarray(landmarks, dtype=np.float64).reshape(-1, 2) + 0.5) * zoom
    table = layout_table(len(lm), table)
    side = flip_side(table) if table is not None else (0,) * len(lm)
    annotated = np.isfinite(lm).all(1)
    spread = float(np.ptp(lm[annotated, 1])) if annotated.any() else 0.0
    length = 0.6 * (spread or zoom * 10)
    if bbox is not None and np.isfinite(bbox).all():
        x0, y0, x1, y1 = ((np.asarray(bbox, dtype=np.float64) + 0.5) * zoom).tolist()
        draw.rectangle((x0, y0, x1, y1), outline=(0, 255, 120))
    anchors = _anchors(lm, table)
    if anchors is not None and np.isfinite(head_pose).all() and np.isfinite(gaze).all():
        nose, eyes = anchors
        rot = pose_to_matrix(torch.as_tensor(head_pose, dtype=torch.float64)).numpy()
        for axis, colour in ((rot[:, 0], (255, 0, 0)), (rot[:, 1], (0, 220, 0)), (-rot[:, 2], (0, 90, 255))):
            tip = nose + length * axis[:2]
            draw.line((*nose, *tip), fill=colour, width=2)
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


def tile(
    images: Sequence[np.ndarray],
    landmarks: np.ndarray,
    head_pose: np.ndarray,
    gaze: np.ndarray,
    bbox: np.ndarray | None = None,
    captions: Sequence[str] | None = None,
    zoom: float = 2.0,
    columns: int = 8,
    occluded: np.ndarray | None = None,
    table: Sequence[int] | None = None,
) -> Image.Image:
    """Grid of annotated frames. images: (H, W, 3) or (H, W, 1) uint8 each; labels (B, ...) numpy; occluded
    (B, K) bool (drawn hollow) or None; table: the layout's flip table (see :func:`draw_labels`)."""
    tiles = []
    for i, frame in enumerate(images):
        frame = np.repeat(frame, 3, axis=2) if frame.shape[2] == 1 else frame
        pic = Image.fromarray(frame).resize(
            (round(frame.shape[1] * zoom), round(frame.shape[0] * zoom)), Image.Resampling.NEAREST
        )
        draw_labels(pic, landmarks[i], head_pose[i], gaze[i], None if bbox is None else bbox[i], zoom,
                    None if occluded is None else occluded[i], table)
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


def pose_caption(pose: np.ndarray, flipped: bool = False) -> str:
    yaw, pitch, roll = (float(a) for a in pose)
    return f"y{yaw:+.0f} p{pitch:+.0f} r{roll:+.0f}" + (" flip" if flipped else "")


def preview_augmented(batch, path: str | Path, limit: int = 16, columns: int = 8) -> Path:
    """Save an :class:`~gpuaug.AugmentedBatch` (first ``limit`` samples, ``columns`` a row) as a PNG sheet."""
    n = min(limit, len(batch))
    images = (batch.images[:n].clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).cpu().numpy()
    names = ("landmarks2d", "head_pose", "gaze", "bbox", "occluded")
    labels = {k: getattr(batch, k)[:n].detach().cpu().numpy() for k in names}
    flips = batch.flipped[:n].cpu().tolist()
    captions = [pose_caption(labels["head_pose"][i], flips[i]) for i in range(n)]
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
    landmarks: np.ndarray,
    head_pose: np.ndarray,
    gaze: np.ndarray,
    bbox: np.ndarray,
    path: str | Path,
    columns: int = 4,
    table: Sequence[int] | None = None,
) -> Path:
    """Save raw frames (each (H, W, 3) uint8) with their source-space labels as a PNG sheet (``table``: the
    layout's flip table, see :func:`draw_labels`)."""
    captions = [pose_caption(p) for p in head_pose]
    tile(images, landmarks, head_pose, gaze, bbox, captions, zoom=1.0, columns=columns, table=table).save(path)
    return Path(path)
