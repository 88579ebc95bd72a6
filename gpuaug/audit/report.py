"""The audit's outputs: the table (one row per frame), the summary, and a contact sheet per check of its worst
frames with their labels drawn and the score in the caption."""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from gpuaug.audit.checks import CHECKS
from gpuaug.audit.run import Scores
from gpuaug.crop import crop_boxes
from gpuaug.load.exclude import KEY_COLUMNS, TABLE
from gpuaug.load.frames import FaceFrames
from gpuaug.preview import tile

#: Side of a contact sheet's cell, pixels.
CELL = 160


def write_table(frames: FaceFrames, scores: Scores, path: Path) -> None:
    """``audit.csv``: video path, frame, flagged (0/1), reasons, then each check's score and flag."""
    flags = scores.flags
    with open(path, "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow([*KEY_COLUMNS, *(col for c in CHECKS for col in (c.name, f"{c.name}_flag"))])
        for i in range(len(scores.video)):
            reasons = "; ".join(f"{c.name} {scores.scores[c.name][i]:.3g} > {c.threshold:g}" for c in CHECKS
                                if flags[c.name][i])
            cells = []
            for c in CHECKS:
                value = scores.scores[c.name][i]
                cells += ["" if np.isnan(value) else f"{value:.6g}", int(flags[c.name][i])]
            writer.writerow([frames.videos[scores.video[i]].path, int(scores.frame[i]), int(bool(reasons)), reasons,
                             *cells])


def summary(scores: Scores) -> str:
    """A few lines: frames audited, flagged, and per check how many it scored and flagged (worst score)."""
    n, flags = len(scores.video), scores.flags
    lines = [f"{n} frames audited, {int(scores.flagged.sum())} flagged"]
    for c in CHECKS:
        s = scores.scores[c.name]
        scored = int(np.isfinite(s).sum())
        if not scored:
            lines.append(f"  {c.name:10s} not applicable (the data set lacks what it needs)")
            continue
        lines.append(f"  {c.name:10s} {int(flags[c.name].sum()):6d} flagged of {scored:6d}  worst {np.nanmax(s):.3g}"
                     f"  (threshold {c.threshold:g}: {c.score})")
    return "\n".join(lines)


def _cell(frames: FaceFrames, index: int) -> tuple[np.ndarray, dict[str, np.ndarray | None]]:
    """Frame ``index`` cropped to a square around its face (1.6x its crop box) at CELL pixels, with its labels
    moved into the cell."""
    s = frames[index]
    h, w = s.image.shape[:2]
    lift = {k: None if getattr(s, k) is None else np.asarray(getattr(s, k))[None] for k in ("bbox", "landmarks2d")}
    box = crop_boxes(torch.tensor([[h, w]]), *(None if v is None else torch.from_numpy(v).float()
                                              for v in lift.values()))[0].numpy()
    side = 1.6 * max(box[2] - box[0], box[3] - box[1], 1.0)
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    x0, y0 = cx - side / 2, cy - side / 2
    scale = CELL / side
    img = Image.fromarray(s.image).transform((CELL, CELL), Image.Transform.EXTENT, (x0, y0, x0 + side, y0 + side),
                                             Image.Resampling.BILINEAR)
    labels: dict[str, np.ndarray | None] = {"head_pose": s.head_pose, "gaze": s.gaze}
    labels["landmarks2d"] = None if s.landmarks2d is None else (s.landmarks2d - [x0, y0]) * scale
    labels["bbox"] = None if s.bbox is None else (s.bbox - [x0, y0, x0, y0]) * scale
    return np.asarray(img), labels


def contact_sheet(frames: FaceFrames, scores: Scores, check: str, path: Path, worst: int = 16) -> Path | None:
    """The ``worst`` highest-scoring frames of ``check`` (those it scored above 0) tiled with their labels and
    captions "check score v<video>/f<frame>", "FLAGGED" past the threshold; None when it scored none."""
    s = np.nan_to_num(scores.scores[check], nan=-np.inf)
    order = [i for i in np.argsort(-s, kind="stable")[:worst] if s[i] > 0]
    if not order:
        return None
    cells = [_cell(frames, int(i)) for i in order]
    kinds = ("landmarks2d", "head_pose", "gaze", "bbox")
    stacked = {k: None if cells[0][1][k] is None else np.stack([c[1][k] for c in cells]) for k in kinds}
    flagged = scores.flags[check]
    captions = [f"{check} {scores.scores[check][i]:.3g} v{scores.video[i]}/f{scores.frame[i]}"
                f"{' FLAGGED' if flagged[i] else ''}" for i in order]
    sheet = tile([c[0] for c in cells], stacked["landmarks2d"], stacked["head_pose"], stacked["gaze"],
                 stacked["bbox"], captions, zoom=1.0, columns=4)
    sheet.save(path)
    return path


def write_report(frames: FaceFrames, scores: Scores, out: str | Path, worst: int = 16) -> list[Path]:
    """The table, ``summary.txt`` and ``worst_<check>.png`` sheets under ``out``; returns the paths written.

    Args:
        frames: the data set the scores are of.
        scores: :func:`~gpuaug.audit.run.score_frames`' result.
        out: the report folder (made if missing).
        worst: frames per contact sheet.
    """
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_table(frames, scores, out / TABLE)
    (out / "summary.txt").write_text(summary(scores) + "\n")
    sheets = [contact_sheet(frames, scores, c.name, out / f"worst_{c.name}.png", worst) for c in CHECKS]
    return [out / TABLE, out / "summary.txt", *(p for p in sheets if p is not None)]
