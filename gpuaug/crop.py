"""The box each sample is cropped around, from the labels its data set has.

A data set with boxes crops around them; one without (or a sample whose box is missing, NaN) crops around the
extent of its annotated landmarks; one with neither (a head-pose set of face crops) around the whole frame. The
crop matrix (:func:`~gpuaug.labels.matrix.crop_matrix`), the windows the loaders read
(:mod:`gpuaug.window`) and the params drawn in a loader (:mod:`gpuaug.load.draws`) all take this box, so they
agree on every sample. It sits at the bottom of the data flow with :mod:`gpuaug.sample`, so the input checks
can name the samples that have nothing to crop around.
"""

from __future__ import annotations

import torch


def crop_boxes(sizes: torch.Tensor, bbox: torch.Tensor | None = None,
               landmarks2d: torch.Tensor | None = None) -> torch.Tensor:
    """The (B, 4) float32 [x0, y0, x1, y1] source-pixel box each sample is cropped around: its box where it is
    finite; else the extent of its annotated (finite) landmarks; with neither kind in the batch, the whole
    frame [-0.5, -0.5, W - 0.5, H - 0.5] (pixel centres at integers). NaN where nothing is left: the sample is
    invalid. No host sync.

    Args:
        sizes: (B, 2) int64 frame sizes (H, W).
        bbox: (B, 4) boxes, or None when the data set has none.
        landmarks2d: (B, K, 2) landmarks (NaN: not annotated), or None when the data set has none.
    """
    whole = torch.cat([torch.full_like(sizes, -0.5, dtype=torch.float32), sizes.flip(1).float() - 0.5], 1)
    if bbox is None and landmarks2d is None:
        return whole
    out = torch.full_like(whole, torch.nan)
    if landmarks2d is not None:
        inf = torch.inf
        # Both coordinates NaN for a point not annotated (x * 0 is NaN for a NaN or inf x, else 0), then each
        # extent over the others (NaN read as +-inf: no sample-dependent branch); none annotated -> +-inf -> NaN.
        q = landmarks2d + (landmarks2d[..., :1] * 0 + landmarks2d[..., 1:] * 0)
        extent = torch.cat([q.nan_to_num(inf, inf, -inf).amin(1), q.nan_to_num(-inf, inf, -inf).amax(1)], 1)
        out = torch.where(torch.isfinite(extent), extent, out)
    if bbox is not None:
        out = torch.where(torch.isfinite(bbox).all(1, keepdim=True), bbox.float(), out)
    return out
