"""Configs that reproduce published face recipes as far as gpuaug's ops allow, and a webcam preset.

Each function returns an :class:`~gpuaug.AugmentConfig`; keyword overrides replace fields (e.g.
``recipes.star(out_size=128)``). Where a recipe draws from a normal distribution, gpuaug's uniform range spans
about its +-1.5 sigma; where it uses an op gpuaug lacks (box or median blur, a black hole), the nearest op stands
in: a box of width k is a Gaussian of sigma ``k / sqrt(12)``; occluder fills are flat random colours. The source
of every number is named in each docstring (paths inside the named repositories).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from gpuaug.config import AugmentConfig


def _box_sigma(width: float) -> float:
    """The Gaussian sigma with the variance of a box filter ``width`` pixels wide."""
    return width / math.sqrt(12)


def seed(**overrides: Any) -> AugmentConfig:
    """Today's default (the seed loader's chain): colour jitter 0.4/0.4/0.4/0.1, grey, crop margin 0-0.2,
    rotation +-15 degrees, shift +-0.125, flip 0.5, 128 x 128; no camera op."""
    return replace(AugmentConfig(), **overrides)


def rtmpose_face(**overrides: Any) -> AugmentConfig:
    """RTMPose face, stage 1: open-mmlab/mmpose
    ``projects/rtmpose/rtmpose/face_2d_keypoint/wflw/rtmpose-m_8xb64-60e_wflw-256x256.py``.

    256 x 256; RandomFlip (0.5); RandomBBoxTransform scale_factor [0.6, 1.4], rotate_factor 80 (mmpose draws
    normal, clipped; here uniform scale 0.6-1.4 and rotation +-80); YOLOXHSVRandomAug (hue 5, saturation 30,
    value 30 of OpenCV's 180/255 scales: hue 0.028 turns, saturation and brightness 0.12); Albumentation Blur
    p 0.1 (box 3-7) and MedianBlur p 0.1 (as one Gaussian blur, p 0.19, sigma 0.87-2.0); CoarseDropout one hole
    0.2-0.4 of each side, p 1.0 (a rectangle, random colour instead of black). Colour output.
    """
    return replace(AugmentConfig(
        out_size=256, brightness=0.12, contrast=0.0, saturation=0.12, hue=5 / 180, grayscale_p=0.0,
        crop_margin=(0.0, 0.0), max_rotation=80.0, max_shift=0.0, scale=(0.6, 1.4), flip_p=0.5,
        blur_p=0.19, blur_sigma=(_box_sigma(3), _box_sigma(7)),
        occluder_p=1.0, occluder_max=1, occluder_size=(0.2, 0.4), occluder_ellipse_p=0.0, occluder_fill=("colour",),
    ), **overrides)


def star(**overrides: Any) -> AugmentConfig:
    """STAR loss: ZhenglinZhou/STAR ``lib/dataset/augmentation.py`` (Augmentation, RandomTexture).

    256 x 256; flip 0.5; shift normal sigma 0.05 of the side, rotation sigma 18 degrees, scale sigma 0.1 (here
    uniform +-0.075, +-27 degrees, 0.85-1.15); grey 0.2; occlusion p 0.4, a black rectangle 0.1-0.4 of the side
    high and 0-0.5 wide (here 0.05-0.45, random colour); box blur p 0.3 up to 5 % of the side (up to 12.8 px:
    sigma up to 3.7); gamma p 0.2 in 0.25-4; noise blend p 0.2 with alpha up to 0.5 of uniform noise (std up to
    0.14: additive Gaussian 0-0.14).
    """
    return replace(AugmentConfig(
        out_size=256, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0, grayscale_p=0.2,
        crop_margin=(0.0, 0.0), max_rotation=27.0, max_shift=0.075, scale=(0.85, 1.15), flip_p=0.5,
        occluder_p=0.4, occluder_max=1, occluder_size=(0.05, 0.45), occluder_ellipse_p=0.0, occluder_fill=("colour",),
        blur_p=0.3, blur_sigma=(0.3, _box_sigma(0.05 * 256)),
        gamma_p=0.2, gamma=(0.25, 4.0),
        noise_p=0.2, noise_std=(0.0, 0.5 / math.sqrt(12)),
    ), **overrides)


def pipnet(**overrides: Any) -> AugmentConfig:
    """PIPNet: jhb86253817/PIPNet ``lib/data_utils.py`` (ImageFolder_pip.__getitem__).

    256 x 256; random_translate p 0.5 +-30 px (+-0.117 of the side); random_occlusion p 0.5, a random-colour
    rectangle up to 0.4 x 0.4 of the image; flip 0.5; random_rotate p 0.5 +-30 degrees (here every sample,
    +-30); random_blur p 0.3, PIL GaussianBlur radius 0-5 (sigma 0.1-5 here). Colour output.
    """
    return replace(AugmentConfig(
        out_size=256, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0, grayscale_p=0.0,
        crop_margin=(0.0, 0.0), max_rotation=30.0, max_shift=30 / 256, flip_p=0.5,
        occluder_p=0.5, occluder_max=1, occluder_size=(0.01, 0.4), occluder_ellipse_p=0.0, occluder_fill=("colour",),
        blur_p=0.3, blur_sigma=(0.1, 5.0),
    ), **overrides)


def hopenet(**overrides: Any) -> AugmentConfig:
    """HopeNet: natanielruiz/deep-head-pose ``code/datasets.py`` (Pose_300W_LP_random_ds).

    Loose crop k 0.2-0.4 (sides grown by 0.6 k, the top by 2 k: margin 0.12-0.4 here); downsampled by ds in
    {1, 6, 11, 16} (nearest) and back, so 3 in 4 samples at 1/16-1/6 of the size (area and bilinear here);
    flip 0.5; PIL BLUR (5 x 5 box) p 0.05 (sigma 1.44); 224 x 224 colour input.
    """
    return replace(AugmentConfig(
        out_size=224, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0, grayscale_p=0.0,
        crop_margin=(0.12, 0.4), max_rotation=0.0, max_shift=0.0, flip_p=0.5,
        low_res_p=0.75, low_res=(1 / 16, 1 / 6),
        blur_p=0.05, blur_sigma=(_box_sigma(5), _box_sigma(5)),
    ), **overrides)


def webcam(**overrides: Any) -> AugmentConfig:
    """Facial capture from webcams (gpuaug's own preset, not a paper's): the seed chain plus hands in front of
    the face (1-2 occluders, p 0.3, 0.15-0.45 of the side, rectangles or ellipses, flat, noise or another
    face's pixels), motion blur (p 0.3, 3-9 px), defocus (p 0.2, sigma 0.5-1.5), exposure (gamma p 0.3,
    0.6-2.2), low resolution (p 0.3, 0.35-0.8 of the side), read noise (p 0.4, std 0.005-0.04), low-light shot
    noise (p 0.3, 0.02-0.08 at white) and video compression (JPEG p 0.5, quality 35-90); 128 x 128 grey."""
    return replace(AugmentConfig(
        occluder_p=0.3, occluder_max=2, occluder_size=(0.15, 0.45), occluder_ellipse_p=0.5,
        motion_blur_p=0.3, motion_blur_length=(3.0, 9.0), blur_p=0.2, blur_sigma=(0.5, 1.5),
        gamma_p=0.3, gamma=(0.6, 2.2), low_res_p=0.3, low_res=(0.35, 0.8),
        noise_p=0.4, noise_std=(0.005, 0.04), shot_noise_p=0.3, shot_noise=(0.02, 0.08),
        jpeg_p=0.5, jpeg_quality=(35, 90),
    ), **overrides)


#: Every recipe by name.
RECIPES: dict[str, Callable[..., AugmentConfig]] = {
    "seed": seed, "rtmpose_face": rtmpose_face, "star": star, "pipnet": pipnet, "hopenet": hopenet, "webcam": webcam,
}
