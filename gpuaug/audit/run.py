"""Scoring every frame of a data set: batched label checks on the device, the jump and pixel checks in frame
order within each video."""

from __future__ import annotations

import zlib
from dataclasses import dataclass

import numpy as np
import torch

from gpuaug.audit.checks import CHECKS, changes, jump_scores, label_scores, motion
from gpuaug.batch import FaceBatch
from gpuaug.load.frames import FaceFrames


@dataclass
class Scores:
    """Every usable frame's scores; ``flags`` (check name -> (n,) bool) and ``flagged`` ((n,) bool, any check)
    follow from them and the checks' thresholds.

    Args:
        video: (n,) each frame's video number.
        frame: (n,) its frame number in that video.
        scores: check name -> (n,) float64 (NaN: the check does not apply).
    """

    video: np.ndarray
    frame: np.ndarray
    scores: dict[str, np.ndarray]

    @property
    def flags(self) -> dict[str, np.ndarray]:
        return {c.name: self.scores[c.name] > c.threshold for c in CHECKS}  # NaN compares False

    @property
    def flagged(self) -> np.ndarray:
        """(n,) bool: some check flags the frame."""
        return np.stack(list(self.flags.values())).any(0)


def _pixel_facts(batch: FaceBatch) -> tuple[np.ndarray, list[tuple]]:
    """(B,) bool one-colour frames and a hashable fingerprint (shape, CRC-32 of the bytes) per frame of a batch
    on the host."""
    empty, prints = [], []
    for i in range(len(batch)):
        frame = batch.frame(i).numpy()
        empty.append(bool(frame.size) and frame.min() == frame.max())
        prints.append((frame.shape, zlib.crc32(np.ascontiguousarray(frame).data)))
    return np.array(empty), prints


def score_frames(frames: FaceFrames, batch_size: int = 256, device: str | torch.device = "cpu",
                 progress: bool | None = None) -> Scores:
    """Score every usable frame of ``frames`` (index order: video by video, frame order); label maths in
    float64 outside any autocast.

    Args:
        frames: the data set.
        batch_size: frames per batch.
        device: where the label checks run ("cuda" when there is one is faster).
        progress: progress bar; None shows it on a terminal only.
    """
    from tqdm.auto import tqdm

    video, frame = frames.source_frames()
    n = len(frames)
    label = {c.name: np.full(n, np.nan) for c in CHECKS}
    change: dict[str, np.ndarray] = {}
    empty, duplicate = np.zeros(n, bool), np.zeros(n, bool)
    first = np.ones(n, bool)
    first[1:] = (video[1:] != video[:-1])
    gap = np.ones(n)
    gap[1:] = np.maximum(frame[1:] - frame[:-1], 1)
    previous_motion, previous_print = None, None
    with torch.autocast(torch.device(device).type, enabled=False), \
            tqdm(total=n, desc="auditing", unit="frame", disable=None if progress is None else not progress) as bar:
        for start in range(0, n, batch_size):
            index = np.arange(start, min(start + batch_size, n))
            host = frames.batch(index)
            blank, prints = _pixel_facts(host)  # pixels on the host: no copy back, no sync per frame
            batch = host.to(device)
            scored = label_scores(batch)
            for name, values in zip(scored, torch.stack(list(scored.values())).cpu().numpy(), strict=True):
                label[name][index] = values  # one copy to the host per batch
            now = motion(batch)
            if now:
                shifted = {k: torch.cat([previous_motion[k] if previous_motion else v[:1], v[:-1]]) for k, v in
                           now.items()}
                for kind, values in changes(shifted, now).items():
                    change.setdefault(kind, np.full(n, np.nan))[index] = values.cpu().numpy() / gap[index]
                previous_motion = {k: v[-1:] for k, v in now.items()}
            empty[index] = blank
            for j, i in enumerate(index):
                before = prints[j - 1] if j else previous_print
                duplicate[i] = not first[i] and before == prints[j]
            previous_print = prints[-1]
            bar.update(len(index))
    label["jump"] = jump_scores(change, video, first) if change else np.full(n, np.nan)
    label["empty"], label["duplicate"] = empty.astype(float), duplicate.astype(float)
    return Scores(video, frame, label)
