"""Angle bins (head pose as HopeNet trains it, gaze as L2CS-Net does) and the gaze angle convention.

HopeNet (natanielruiz/deep-head-pose, ``datasets.py``: ``bins = np.array(range(-99, 102, 3))``,
``np.digitize(pose, bins) - 1``) classifies yaw, pitch and roll into 66 bins of 3 degrees over [-99, 99);
L2CS-Net (Ahmednull/L2CS-Net, ``datasets.py``) gaze pitch and yaw into 28 bins of 3 degrees from -42 (MPIIGaze)
or 90 bins of 4 degrees from -180 (Gaze360). Bin i covers [lo + i w, lo + (i + 1) w); an angle outside all bins
(or non-finite, or of an invalid sample) gets index :data:`IGNORE_INDEX` (``torch.nn.CrossEntropyLoss``'s default
ignore index) and weight 0.

Decoding is the softmax expectation over the bin CENTRES, lo + w (E[i] + 1/2). HopeNet and L2CS-Net compute
lo + w E[i] (the bins' left edges), which reads every angle half a bin (1.5 degrees for HopeNet) low; their
numbers are ours minus w / 2.

Gaze: gpuaug's gaze vectors are [x right, y up, z toward the camera] (:mod:`gpuaug.labels.transform`). ETH-XGaze
and L2CS-Net describe a gaze direction d in camera coordinates (x right, y down, z away) by pitch = asin(-d_y)
and yaw = atan2(-d_x, -d_z) (ETH-XGaze ``normalization_example.py``): 0, 0 looks straight into the camera, pitch
> 0 looks up, yaw > 0 looks toward the image's left. With g = (d_x, -d_y, -d_z) that is pitch = asin(g_y / |g|),
yaw = atan2(-g_x, g_z), and back: g = (-cos(pitch) sin(yaw), sin(pitch), cos(pitch) cos(yaw)).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

#: Index of an angle outside every bin: ``torch.nn.functional.cross_entropy``'s default ``ignore_index``.
IGNORE_INDEX = -100


@dataclass(frozen=True)
class AngleBins:
    """``count`` bins of ``width`` degrees from ``lo``: bin i covers [lo + i width, lo + (i + 1) width).

    Args:
        lo: the first bin's lower edge, degrees.
        width: bin width, degrees.
        count: number of bins.
    """

    lo: float
    width: float
    count: int

    def __post_init__(self) -> None:
        if not math.isfinite(self.lo):
            raise ValueError(f"lo must be a finite angle in degrees, got {self.lo}")
        if not (math.isfinite(self.width) and self.width > 0):
            raise ValueError(f"width must be > 0 degrees, got {self.width}")
        if not (isinstance(self.count, int) and self.count >= 2):
            raise ValueError(f"count must be an integer >= 2, got {self.count}")

    def centres(self, device: torch.device | str = "cpu") -> torch.Tensor:
        """(count,) float32 bin centres in degrees."""
        return self.lo + self.width * (torch.arange(self.count, device=device, dtype=torch.float32) + 0.5)


#: HopeNet's head pose bins: 66 of 3 degrees over [-99, 99).
HOPENET_POSE = AngleBins(-99.0, 3.0, 66)
#: L2CS-Net's gaze bins for MPIIGaze: 28 of 3 degrees over [-42, 42).
L2CS_MPIIGAZE = AngleBins(-42.0, 3.0, 28)
#: L2CS-Net's gaze bins for Gaze360: 90 of 4 degrees over [-180, 180).
L2CS_GAZE360 = AngleBins(-180.0, 4.0, 90)


def check_soft_sigma(soft_sigma: float | None) -> None:
    """ValueError unless ``soft_sigma`` is None (one-hot labels) or a positive number of degrees."""
    if soft_sigma is not None and not (math.isfinite(soft_sigma) and soft_sigma > 0):
        raise ValueError(f"soft_sigma must be > 0 degrees or None, got {soft_sigma}")


def encode_bins(angles: torch.Tensor, valid: torch.Tensor, bins: AngleBins, soft_sigma: float | None = None
                ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(B, A) degrees, (B, A) bool -> index (B, A) int64 (:data:`IGNORE_INDEX` where unusable), weights (B, A)
    float32 (1 where usable) and a soft label (B, A, count) float32: one-hot, or with ``soft_sigma`` (degrees) a
    Gaussian over the bin centres summing to 1; all zero where unusable. Binning in float64, so an angle on an
    edge lands in the bin it starts, as ``np.digitize``.

    Args:
        angles: (B, A) degrees.
        valid: (B, A) bool, the angle is usable.
        bins: the bins.
        soft_sigma: Gaussian soft label's sigma in degrees; None: one-hot.
    """
    check_soft_sigma(soft_sigma)
    with torch.autocast(angles.device.type, enabled=False):
        position = (angles.double() - bins.lo) / bins.width
        index = torch.floor(torch.nan_to_num(position, nan=-1.0, posinf=-1.0, neginf=-1.0))
        usable = valid & (index >= 0) & (index < bins.count)
        index = torch.where(usable, index, IGNORE_INDEX).long()
        if soft_sigma is None:
            soft = torch.nn.functional.one_hot(index.clamp_min(0), bins.count).float()
        else:
            near = torch.where(usable, angles.float(), 0.0)[..., None] - bins.centres(angles.device)
            soft = torch.softmax(-(near**2) / (2 * soft_sigma**2), -1)
        soft = torch.where(usable[..., None], soft, 0.0)
        return index, usable.float(), soft


def decode_bins(logits: torch.Tensor, bins: AngleBins) -> torch.Tensor:
    """(..., count) logits -> (...) degrees: the softmax expectation over the bin centres (module
    :mod:`gpuaug.targets.bins` says how this differs from HopeNet's and L2CS-Net's formula).

    Args:
        logits: (..., count) a network's logits over the bins.
        bins: the bins they are over.
    """
    if logits.shape[-1] != bins.count:
        raise ValueError(f"logits must end in {bins.count} bins, got shape {tuple(logits.shape)}")
    with torch.autocast(logits.device.type, enabled=False):
        return (torch.softmax(logits.float(), -1) * bins.centres(logits.device)).sum(-1)


def gaze_to_pitch_yaw(gaze: torch.Tensor) -> torch.Tensor:
    """(..., 3) gaze [x right, y up, z toward the camera], any length -> (..., 2) [pitch, yaw] degrees in the
    ETH-XGaze / L2CS-Net convention (module :mod:`gpuaug.targets.bins`). A zero vector has no direction: NaN
    for both (a bin target gives it weight 0). Straight up or down (x = z = 0) every yaw is the same direction:
    yaw 0 there, whatever the signs of the zeros (``atan2`` of signed zeros would give 0 or +-180).

    Args:
        gaze: (..., 3) [x right, y up, z toward the camera], any length.
    """
    with torch.autocast(gaze.device.type, enabled=False):
        g = gaze.float()
        x, y, z = g.unbind(-1)
        norm = g.norm(dim=-1)
        pitch = torch.asin((y / norm).clamp(-1, 1))  # 0 / 0: NaN for the zero vector
        pole = (x == 0) & (z == 0)
        yaw = torch.where(pole, torch.where(norm > 0, 0.0, torch.nan), torch.atan2(-x, z))
        return torch.rad2deg(torch.stack([pitch, yaw], -1))


def pitch_yaw_to_gaze(pitch_yaw: torch.Tensor) -> torch.Tensor:
    """(..., 2) [pitch, yaw] degrees (ETH-XGaze / L2CS-Net) -> (..., 3) unit gaze [x right, y up, z toward the
    camera]; the inverse of :func:`gaze_to_pitch_yaw`.

    Args:
        pitch_yaw: (..., 2) [pitch, yaw] degrees.
    """
    with torch.autocast(pitch_yaw.device.type, enabled=False):
        pitch, yaw = torch.deg2rad(pitch_yaw.float()).unbind(-1)
        return torch.stack([-pitch.cos() * yaw.sin(), pitch.sin(), pitch.cos() * yaw.cos()], -1)
