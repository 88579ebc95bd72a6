"""DALI's own pipeline for the original loader's chain: slice the read window -> grey -> warp_affine ->
brightness/contrast.

The bbox crop, flip, rotation, shift and resize are one matrix built from DALI's ``fn.transforms`` ops, so
the frame is resampled once (bilinear, fill 0) straight to S x S, reading only the window of the frame the
warp needs (``fn.slice``; its corners come from the inverse matrix, built from the same draws, through
``fn.coord_transform`` and min/max reductions). Grey output (``grayscale_p=1``, the original loader's default): the
window goes to grey, one channel is warped, and brightness and contrast (``fn.brightness_contrast``) act on
the S x S output: the same job as gpuaug's, whose colour model (like DALI's linear one) has hue and
saturation keep luma, so they cannot change a grey output. Colour output (``grayscale_p=0``): the colour
jitter (``fn.color_twist``: brightness, contrast, saturation, hue) on the window, then a 3-channel warp.
Landmarks follow through ``fn.coord_transform`` with the same matrix; flipped samples are re-indexed
left/right on the host.

Why this order: on a CPU the colour ops cost in proportion to the pixels they touch, and a whole frame has
several times the pixels of the S x S output or of the read window (the box around the output square's
preimage, about 1.1 S^2); a warp of one channel costs well under half of a warp of three. Variants tried
on this project's 2-core machine during development, slowest to fastest: colour on whole frames then a
1-channel warp (the pipeline this one replaced), warp 3 channels then colour and grey on the output,
colour and grey on the window then a 1-channel warp, and this one. It clips once, on luma, where the seed
clips after each colour op: exactly as gpuaug does, so it is the fastest DALI pipeline for gpuaug's job.
The committed benchmark results give its speed (``bench/results/``).

Pixel convention: DALI puts pixel centres at +0.5 (the first pixel's corner is 0), the labels at
integers, so boxes and landmarks go in shifted by +0.5 and landmarks come out shifted back; the flip and
rotation centre is then S / 2, and image and landmarks share one matrix exactly.

CPU pipeline (``device_id=None``) on the CPU; on CUDA the frames are fed from the device (where the other
batched contenders hold them), the image ops run on the GPU and the images stay there.
"""

from __future__ import annotations

import numpy as np
import torch

from gpuaug.bench.step import Step, Unavailable
from gpuaug.bench.workload import Workload
from gpuaug.labels.flip_tables import resolve_flip_table


def dali_step(work: Workload, device: torch.device) -> Step:
    """A callable running one batch through the pipeline: returns (images, landmarks).

    images: (B, S, S, C) uint8 (C = 1 grey, 3 colour), a numpy array on the CPU, a DALI ``TensorListGPU`` on
    CUDA;
    landmarks: (B, L, 2) float32 numpy, output pixels (centres at integers), flipped samples re-indexed.
    """
    try:
        import nvidia.dali.fn as fn
        import nvidia.dali.types as types
        from nvidia.dali import math as dmath
        from nvidia.dali.data_node import DataNode
        from nvidia.dali.pipeline import pipeline_def
    except ImportError as exc:
        raise Unavailable(f"nvidia-dali not installed ({exc})") from exc
    c, s = work.config, float(work.config.out_size)
    if c.grayscale_p not in (0.0, 1.0):
        raise Unavailable(f"grayscale_p={c.grayscale_p}: this pipeline does all-grey (1) or all-colour (0) output")
    grey = c.grayscale_p == 1.0
    table = resolve_flip_table(c.flip_table).numpy()
    gpu = device.type == "cuda"
    # One contiguous (B, H, W, 3) buffer, read in place (no_copy): it never changes between steps.
    frames = torch.from_numpy(work.frames).to(device) if gpu else work.frames
    size = np.float32(work.frames.shape[2:0:-1])  # (W, H)
    half = np.float32(0.5)
    boxes, landmarks = work.bbox + half, work.landmarks2d + half  # into DALI's +0.5 pixel convention
    device_id = (torch.cuda.current_device() if device.index is None else device.index) if gpu else None

    def draw(lo: float, hi: float, n: int = 1) -> DataNode | np.ndarray:
        """Per sample, uniform in [lo, hi) (``n`` values when n > 1); a constant when lo == hi (a jitter
        of 0 turns an op off), since DALI rejects an empty range."""
        if lo == hi:
            return np.full(n, lo, np.float32) if n > 1 else np.float32(lo)
        return fn.random.uniform(range=[lo, hi], **({"shape": [n]} if n > 1 else {}))

    def factor(v: float) -> DataNode | np.ndarray:
        """A jitter factor in [max(0, 1 - v), 1 + v]."""
        return draw(max(0.0, 1 - v), 1 + v)

    @pipeline_def(batch_size=len(work), num_threads=torch.get_num_threads(), device_id=device_id,
                  exec_dynamic=True, prefetch_queue_depth=1)
    def pipeline():
        img = fn.external_source(source=lambda: frames, device="gpu" if gpu else "cpu", layout="HWC",
                                 dtype=types.UINT8, ndim=3, no_copy=True)
        box = fn.external_source(source=lambda: boxes, dtype=types.FLOAT, ndim=1, no_copy=True)
        pts = fn.external_source(source=lambda: landmarks, dtype=types.FLOAT, ndim=2, no_copy=True)
        # The matrices are built on the CPU: DALI takes per-sample matrices as CPU argument inputs, for
        # the GPU ops too.
        grow = (box[2:4] - box[0:2]) * draw(*c.crop_margin)
        lo, hi = box[0:2] - grow, box[2:4] + grow
        centre = [s / 2] * 2
        flip = fn.random.coin_flip(probability=c.flip_p, dtype=types.UINT8)
        mirror = flip * np.float32([-2, 0]) + np.float32([1, 1])  # x scale -1 on flipped samples
        angle, shift = draw(-c.max_rotation, c.max_rotation), draw(-c.max_shift * s, c.max_shift * s, 2)
        mt = fn.transforms.crop(from_start=lo, from_end=hi, to_start=[0.0, 0.0], to_end=[s, s])
        mt = fn.transforms.scale(mt, scale=mirror, center=centre)
        mt = fn.transforms.rotation(mt, angle=angle, center=centre)
        mt = fn.transforms.translation(mt, offset=shift)  # (2, 3) source -> output
        # Output -> source: the same steps undone in reverse order (DALI has no matrix inverse op).
        inv = fn.transforms.translation(offset=-shift)
        inv = fn.transforms.rotation(inv, angle=-angle, center=centre)
        inv = fn.transforms.scale(inv, scale=mirror, center=centre)
        inv = fn.transforms.crop(inv, from_start=[0.0, 0.0], from_end=[s, s], to_start=lo, to_end=hi)
        # The read window: the box around the output square's preimage, one pixel more each side for the
        # bilinear taps, cut to the frame (at least 1 x 1). Taps outside it are outside the frame too, so
        # they read the warp's fill, as warping the whole frame would.
        corners = fn.coord_transform(types.Constant(np.float32([[0, 0], [s, 0], [0, s], [s, s]]), device="cpu"), MT=inv)
        start = dmath.clamp(dmath.floor(fn.reductions.min(corners, axes=0)) - 1, 0, size - 1)
        end = dmath.max(dmath.min(dmath.ceil(fn.reductions.max(corners, axes=0)) + 1, size), start + 1)
        window = fn.slice(img, start=fn.cast(start, dtype=types.INT32), shape=fn.cast(end - start, dtype=types.INT32),
                          axis_names="WH")
        window_mt = fn.transforms.combine(fn.transforms.translation(offset=start), mt)  # window origin at start
        if grey:
            # Hue and saturation keep luma (gpuaug's colour model, and DALI's linear one): grey output needs
            # luma, the warp of one channel, then brightness and contrast on the S x S output.
            window = fn.color_space_conversion(window, image_type=types.RGB, output_type=types.GRAY)
            out = fn.warp_affine(window, matrix=window_mt, size=[s, s], fill_value=0, inverse_map=False)
            out = fn.brightness_contrast(out, brightness=factor(c.brightness), contrast=factor(c.contrast))
        else:
            window = fn.color_twist(window, brightness=factor(c.brightness), contrast=factor(c.contrast),
                                    saturation=factor(c.saturation), hue=draw(-360 * c.hue, 360 * c.hue))  # degrees
            out = fn.warp_affine(window, matrix=window_mt, size=[s, s], fill_value=0, inverse_map=False)
        return out, fn.coord_transform(pts, MT=mt), flip

    pipe = pipeline()
    pipe.build()

    def step() -> tuple[object, np.ndarray]:
        out, pts, flip = pipe.run()
        pts, flipped = pts.as_array() - half, flip.as_array().astype(bool)
        pts[flipped] = pts[flipped][:, table]
        return (out if gpu else out.as_array()), pts

    return step
