"""DALI's own pipeline for the seed's chain: color_twist -> grey -> one warp_affine (+ coord_transform).

The bbox crop, flip, rotation, shift and resize are one matrix built from DALI's ``fn.transforms`` ops, so
the frame is resampled once (bilinear); landmarks follow through ``coord_transform`` with the same
matrix, and flipped samples swap left/right points with a second ``coord_transform`` whose matrix is the
flip permutation (landmarks transposed so the 68 points are the coordinate axis). CPU pipeline when the
device is the CPU (``device_id=None``), else the GPU ops with the frames copied in by DALI.
"""

from __future__ import annotations

import numpy as np
import torch

from gpuaug.bench.contenders import Step, Unavailable
from gpuaug.bench.workload import Workload
from gpuaug.labels.flip_tables import resolve_flip_table


def dali_step(work: Workload, device: torch.device) -> Step:
    """A callable running one batch through the DALI pipeline and fetching its outputs."""
    try:
        import nvidia.dali.fn as fn
        import nvidia.dali.types as types
        from nvidia.dali.pipeline import pipeline_def
    except ImportError as exc:
        raise Unavailable(f"nvidia-dali not installed ({exc})") from exc
    c, s = work.config, float(work.config.out_size)
    table = resolve_flip_table(c.flip_table).numpy()
    frames, boxes, landmarks = list(work.frames), list(work.bbox), list(work.landmarks2d)
    gpu = device.type == "cuda"

    @pipeline_def(batch_size=len(work), num_threads=torch.get_num_threads(),
                  device_id=(device.index or 0) if gpu else None, exec_dynamic=True, prefetch_queue_depth=1)
    def pipeline():
        img = fn.external_source(source=lambda: frames, layout="HWC")
        box = fn.external_source(source=lambda: boxes)
        pts = fn.external_source(source=lambda: landmarks)
        if gpu:
            img = img.gpu()

        def uniform(v: float, lo: float = 0.0):
            return fn.random.uniform(range=[max(lo, 1 - v), 1 + v])

        img = fn.color_twist(img, brightness=uniform(c.brightness), contrast=uniform(c.contrast),
                             saturation=uniform(c.saturation),
                             hue=fn.random.uniform(range=[-360 * c.hue, 360 * c.hue]))
        img = fn.color_space_conversion(img, image_type=types.RGB, output_type=types.GRAY)
        lo, hi = box[0:2], box[2:4]
        grow = (hi - lo) * fn.random.uniform(range=list(c.crop_margin))
        centre = [s / 2 - 0.5] * 2
        flip = fn.cast(fn.random.coin_flip(probability=c.flip_p), dtype=types.FLOAT)
        mt = fn.transforms.crop(from_start=lo - grow, from_end=hi + grow, to_start=[0.0, 0.0], to_end=[s, s])
        mt = fn.transforms.scale(mt, scale=flip * np.float32([-2, 0]) + np.float32([1, 1]), center=centre)
        mt = fn.transforms.rotation(mt, angle=fn.random.uniform(range=[-c.max_rotation, c.max_rotation]),
                                    center=centre)
        mt = fn.transforms.translation(mt, offset=fn.random.uniform(range=[-c.max_shift * s, c.max_shift * s],
                                                                      shape=[2]))
        out = fn.warp_affine(img, matrix=mt, size=[s, s], fill_value=0, inverse_map=False)
        return out, fn.coord_transform(pts, MT=mt), flip

    pipe = pipeline()
    pipe.build()

    def step() -> tuple[np.ndarray, np.ndarray]:
        out, pts, flip = pipe.run()
        pts, flipped = pts.as_array(), flip.as_array().astype(bool)
        pts[flipped] = pts[flipped][:, table]
        return out.as_cpu().as_array() if gpu else out.as_array(), pts

    return step
