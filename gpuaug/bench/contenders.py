"""The contenders: each turns a :class:`Workload` into a step that augments the whole batch once.

Every step runs the original loader's chain (colour jitter, grey, bbox crop, rotation + shift, flip with landmark
swap, resize to S x S) on the same frames with landmarks, jitter ranges from the workload's config. A
builder raises :class:`Unavailable` when its library or device is missing; the harness reports that.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from gpuaug.bench.dali_pipeline import dali_step
from gpuaug.bench.step import Step, Unavailable
from gpuaug.bench.workload import Workload
from gpuaug.labels.flip_tables import resolve_flip_table


@dataclass(frozen=True)
class Contender:
    """name; build(workload, device) -> step; per_sample: a Python loop over frames (few repeats); devices:
    the device types it runs on."""

    name: str
    build: Callable[[Workload, torch.device], Step]
    per_sample: bool = False
    devices: tuple[str, ...] = ("cpu", "cuda")


def _seed(work: Workload, device: torch.device) -> Step:
    from gpuaug.bench.seed_pipeline import seed_step

    return seed_step(work, device)


def _torchvision(work: Workload, device: torch.device) -> Step:
    """The original loader's chain as its author would write it today: ``torchvision.transforms.v2`` per sample
    (ColorJitter -> RandomGrayscale -> crop to the box -> RandomHorizontalFlip -> RandomAffine -> Resize), the
    68 landmarks carried by v2 itself as ``KeyPoints`` where torchvision has them (>= 0.23; no left/right
    re-index: v2 has none)."""
    try:
        from torchvision import tv_tensors
        from torchvision.transforms import v2
    except ImportError as exc:
        raise Unavailable(f"torchvision not installed ({exc})") from exc
    c = work.config
    chain = v2.Compose([
        v2.ColorJitter(c.brightness, c.contrast, c.saturation, c.hue), v2.RandomGrayscale(c.grayscale_p),
        v2.RandomHorizontalFlip(c.flip_p), v2.RandomAffine(c.max_rotation, (c.max_shift, c.max_shift)),
        v2.Resize((c.out_size, c.out_size)),
    ])
    keypoints = getattr(tv_tensors, "KeyPoints", None)
    frames = [torch.from_numpy(f).to(device).permute(2, 0, 1) for f in work.frames]
    boxes = work.bbox.round().astype(int).tolist()

    def step() -> list[torch.Tensor]:
        out = []
        for img, (x0, y0, x1, y1), lm in zip(frames, boxes, work.landmarks2d, strict=True):
            crop = v2.functional.crop(img, y0, x0, y1 - y0, x1 - x0)
            if keypoints is None:
                out.append(chain(crop))
                continue
            points = keypoints(torch.as_tensor(lm - [x0, y0], device=device), canvas_size=crop.shape[-2:])
            out.append(chain(crop, points)[0])
        return out

    return step


def _factor_range(v: float) -> tuple[float, float]:
    """A jitter amount -> torchvision's factor range [max(0, 1 - v), 1 + v]."""
    return max(0.0, 1 - v), 1 + v


def _keep_channel_axis(img: np.ndarray, **_: object) -> np.ndarray:
    """ToGray(1) returns (H, W); albucore's Affine then takes the width for channels, so keep (H, W, 1)."""
    return img[..., None] if img.ndim == 2 else img


def _albumentations(work: Workload, device: torch.device, extra: Callable[..., list] | None = None,
                    per_item: bool = False) -> Step | Callable[[int], tuple[np.ndarray, np.ndarray]]:
    """The chain per sample in albumentations; ``extra(A, config)``: transforms appended after the resize (in
    output space, as gpuaug's camera ops). ``per_item``: the function of one sample index (what a DataLoader
    worker runs) instead of the step over all of them."""
    try:
        import albumentations as A
        import cv2
    except ImportError as exc:
        raise Unavailable(f"albumentationsx not installed ({exc})") from exc
    c = work.config
    table = resolve_flip_table(c.flip_table).tolist()
    ids = list(range(len(table)))
    pipeline = A.Compose(
        [
            A.ColorJitter(brightness_range=_factor_range(c.brightness), contrast_range=_factor_range(c.contrast),
                          saturation_range=_factor_range(c.saturation), hue_range=(-c.hue, c.hue), p=1),
            A.ToGray(num_output_channels=1, p=c.grayscale_p),
            A.Lambda(image=_keep_channel_axis),
            A.RandomCropNearBBox(max_part_shift=(0, 0), p=1),
            A.HorizontalFlip(p=c.flip_p),
            A.Affine(rotate=(-c.max_rotation, c.max_rotation), translate_percent=(-c.max_shift, c.max_shift),
                     interpolation=cv2.INTER_NEAREST, border_mode=cv2.BORDER_CONSTANT, fill=0, p=1),
            A.Resize(c.out_size, c.out_size),
            *(extra(A, c) if extra is not None else []),
        ],
        keypoint_params=A.KeypointParams(
            coord_format="xy", label_fields=["ids"], remove_invisible=False,
            label_mapping={"HorizontalFlip": {"ids": dict(zip(ids, table, strict=True))}},
        ),
    )
    margin = np.random.default_rng(0).uniform(*c.crop_margin, len(work))
    boxes = []
    for (x0, y0, x1, y1), m in zip(work.bbox, margin, strict=True):
        pad = m * max(x1 - x0, y1 - y0)
        boxes.append([max(0, int(x0 - pad)), max(0, int(y0 - pad)), int(x1 + pad), int(y1 + pad)])

    def item(i: int) -> tuple[np.ndarray, np.ndarray]:
        r = pipeline(image=work.frames[i], keypoints=work.landmarks2d[i], ids=ids, cropping_bbox=boxes[i])
        landmarks = np.empty_like(r["keypoints"])
        landmarks[np.asarray(r["ids"], dtype=np.int64)] = r["keypoints"]  # flipped samples come back re-labelled
        return r["image"], landmarks

    if per_item:
        return item
    return lambda: [item(i) for i in range(len(work))]


def kornia_crop(bbox: torch.Tensor, out_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """kornia's batched crop of each box to S x S: (B, 4) [x0, y0, x1, y1] -> the (B, 4, 2) corners
    ``crop_and_resize`` takes and the (B, 3, 3) matrix that moves points with it."""
    from kornia.geometry.transform import get_perspective_transform

    x0, y0, x1, y1 = bbox.unbind(1)
    corners = torch.stack([torch.stack(p, -1) for p in ((x0, y0), (x1, y0), (x1, y1), (x0, y1))], 1)
    s = out_size - 1
    dst = torch.tensor([[0, 0], [s, 0], [s, s], [0, s]], dtype=torch.float32, device=bbox.device)
    return corners, get_perspective_transform(corners, dst.expand(len(bbox), -1, -1))


def _kornia(work: Workload, device: torch.device) -> Step:
    import kornia.augmentation as K
    from kornia.geometry.transform import crop_and_resize
    from kornia.geometry.transform.imgwarp import transform_points

    c, s = work.config, work.config.out_size
    colour = K.AugmentationSequential(
        K.ColorJitter(c.brightness, c.contrast, c.saturation, c.hue, p=1), K.RandomGrayscale(p=c.grayscale_p),
    ).to(device)
    geometry = K.AugmentationSequential(
        K.RandomHorizontalFlip(p=c.flip_p),
        K.RandomAffine(degrees=c.max_rotation, translate=(c.max_shift, c.max_shift), resample="nearest", p=1),
        data_keys=["input", "keypoints"],
    ).to(device)
    table = resolve_flip_table(c.flip_table).to(device)
    frames, landmarks = work.batch.images.to(device), work.batch.landmarks2d.to(device)
    boxes, crop = kornia_crop(work.batch.bbox.to(device), s)

    def step() -> tuple[torch.Tensor, torch.Tensor]:
        img = colour(frames.permute(0, 3, 1, 2).float().div(255))
        # kornia's batched crop is crop + resize in one warp (sizes must match across the batch).
        img = crop_and_resize(img, boxes, (s, s))
        img, kp = geometry(img, transform_points(crop, landmarks))
        flipped = geometry._params[0].data["batch_prob"].to(device).bool()
        return img, torch.where(flipped[:, None, None], kp[:, table], kp)

    return step


def _gpuaug(backend: str, variant: str = "step") -> Callable[[Workload, torch.device], Step]:
    """gpuaug's step: ``"step"`` the whole ``FaceAugment`` call (on CUDA the Triton render kernel, on the CPU
    the compiled gather); ``"eager"`` with the eager torch gather instead; ``"graph"`` replayed as a CUDA
    graph; ``"pixels"`` the backend's render alone (no params,
    matrices or labels: the step minus this is what the labels cost)."""

    def build(work: Workload, device: torch.device) -> Step:
        from functools import partial

        from gpuaug.augment import FaceAugment
        from gpuaug.backends.torch_backend import render

        try:
            aug = FaceAugment(work.config, backend=backend).to(device)
        except ImportError as exc:
            raise Unavailable(str(exc)) from exc
        batch, g = work.batch.to(device), torch.Generator().manual_seed(0)
        if variant == "eager":
            aug.backend = partial(render, warp="gather")
        if variant == "graph":
            from gpuaug.graph import CapturedAugment

            return partial(CapturedAugment(aug, batch), batch, g)
        if variant == "pixels":
            params = aug.sample_params(batch, g)
            return partial(aug.backend, batch, aug.matrix(batch, params), params, aug.config)
        return partial(aug, batch, g)

    return build


CONTENDERS: tuple[Contender, ...] = (
    Contender("original loader per-sample (torch ops)", _seed, per_sample=True),
    Contender("original loader per-sample (torchvision v2)", _torchvision, per_sample=True, devices=("cuda",)),
    Contender("albumentationsx per-sample", _albumentations, per_sample=True, devices=("cpu",)),
    Contender("kornia AugmentationSequential", _kornia),
    Contender("DALI pipeline", dali_step),
    Contender("gpuaug torch", _gpuaug("torch")),
    Contender("gpuaug torch pixels only", _gpuaug("torch", "pixels")),
    Contender("gpuaug torch eager gather", _gpuaug("torch", "eager"), devices=("cuda",)),
    Contender("gpuaug torch CUDA graph", _gpuaug("torch", "graph"), devices=("cuda",)),
    Contender("gpuaug dali", _gpuaug("dali")),
)
REFERENCE = "gpuaug torch"
