"""Configs that reproduce published face recipes as far as gpuaug's ops allow, and a webcam preset.

Each function returns an :class:`~gpuaug.AugmentConfig`; keyword overrides replace fields (e.g.
``recipes.star(out_size=128)``). Each recipe's docstring names its source files (paths and lines inside the named
repository, at the commit given) and every number it takes from them, the defaults of the transforms a source
config leaves implicit included, then every remaining difference. Conventions where gpuaug lacks the source's op:
a draw from a normal truncated at +-1 factor is uniform over the same bounds; an unclipped normal is uniform over
its +-1.5 sigma; a filter kernel (box, median window, PIL's BLUR ring) is a Gaussian of the same per-axis
variance (a k-tap box: sigma ``sqrt((k^2 - 1) / 12)``); occluders are flat random colours at a random angle.
None of them normalises: the model's mean and std, where a source names them, are given to pass as ``mean`` and
``std``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import replace
from typing import Any

from gpuaug.config import AugmentConfig

#: ImageNet's per-channel mean and std in [0, 1] units (torchvision's, mmpose's ``[123.675, 116.28, 103.53]`` and
#: ``[58.395, 57.12, 57.375]`` over 255): the normalisation of RTMPose, PIPNet and HopeNet.
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
#: Pillow's ``ImageFilter.BLUR`` (``src/PIL/ImageFilter.py``, class BLUR): a 5 x 5 ring of ones, divided by 16.
PIL_BLUR = ((1, 1, 1, 1, 1), (1, 0, 0, 0, 1), (1, 0, 0, 0, 1), (1, 0, 0, 0, 1), (1, 1, 1, 1, 1))


def kernel_sigma(kernel: Sequence[Sequence[float]]) -> float:
    """The standard deviation along x, in pixels, of a filter kernel given as rows of weights (centred, taps one
    pixel apart): the sigma of the Gaussian with the kernel's variance (the same along y for the square symmetric
    kernels used here)."""
    total = sum(sum(row) for row in kernel)
    centre = (len(kernel[0]) - 1) / 2
    return math.sqrt(sum(w * (x - centre) ** 2 for row in kernel for x, w in enumerate(row)) / total)


def box_sigma(taps: int) -> float:
    """The Gaussian sigma with the variance of a box filter ``taps`` pixels wide: ``sqrt((taps^2 - 1) / 12)``."""
    return kernel_sigma([[1.0] * taps])


def head_multitask(**overrides: Any) -> AugmentConfig:
    """The default config, which is the chain of the face multitask data set's original CPU loader
    (jinac/head_multitask, data_util.py): colour jitter 0.4/0.4/0.4/0.1, grey, crop margin 0-0.2, rotation +-15
    degrees, shift +-0.125, flip 0.5, 128 x 128; no camera op."""
    return replace(AugmentConfig(), **overrides)


def rtmpose_face(**overrides: Any) -> AugmentConfig:
    """RTMPose-m face (WFLW), stage 1: open-mmlab/mmpose @759b39c
    ``configs/face_2d_keypoint/rtmpose/wflw/rtmpose-m_8xb64-60e_wflw-256x256.py`` (the same pipeline as the
    ``projects/rtmpose/rtmpose/face_2d_keypoint/wflw/`` copy it replaced), with the defaults of the transforms it
    names: ``mmpose/datasets/transforms/common_transforms.py`` ("ct"), mmdet's YOLOXHSVRandomAug, albumentations
    1.3.

    Reproduced: 256 x 256 colour (L42). GetBBoxCenterScale (L114) pads the box by 1.25 (default, ct:52): crop
    margin 0.125. RandomFlip p 0.5 (L115; default, ct:138). RandomBBoxTransform (L117-118 set scale_factor
    [0.6, 1.4], rotate_factor 80; defaults ct:471-476): shift_factor 0.16 with shift_prob 0.3 (one gate for both
    axes, ct:512-514), zoom on every sample (scale_prob 1.0), rotation with rotate_prob 0.6 (ct:525-527).
    YOLOXHSVRandomAug (L120; defaults 5, 30, 30): hue +-5 of OpenCV's 180 (5/180 turns), saturation and value
    +-30 of 255. Blur p 0.1 and MedianBlur p 0.1 (L124-125; default blur_limit 7: kernels 3, 5, 7) as one
    Gaussian blur p 1 - 0.9^2 = 0.19, sigma from the 3-tap box's to the 7-tap box's (0.82-2.0). CoarseDropout
    (L126-134): one hole, each side 0.2-0.4 of the image, p 1.0.

    Differences: mmpose draws shift, zoom and rotation from a normal truncated at +-1 factor (ct:487-491, std
    0.54 of the bound), here uniform over the same bounds. mmpose multiplies the box by s in [0.6, 1.4] (ct:548:
    s > 1 zooms out); gpuaug's zoom is 1/s, so 1/1.4-1/0.6 here (uniform in the zoom). mmpose moves the centre
    by 0.16 of the padded box's width along x and of its height along y (ct:547); gpuaug by 0.16 of the crop
    square's side, the padded box's larger side: the same for a square box, more on the shorter axis of one that
    is not. YOLOXHSVRandomAug adds int16-truncated gains (so at most 4 hue units) to H, S and V, each with p 0.5;
    here every sample's hue, saturation and brightness change, saturation and brightness as factors 1 +- 30/255
    (the same change at full saturation and at white). The two blurs stack on 1 % of samples; a median filter
    is not a Gaussian; the kernel is one of three sizes, here any sigma between. The hole is black, axis-aligned
    and inside the image, and cut after the blur; here a flat random colour at a random angle, centred anywhere
    in the output, and blurred with the image. Stage 2 (the last 10 of 60 epochs, L146-175 and L220-223):
    shift_factor 0, scale_factor [0.75, 1.25], rotate_factor 60, CoarseDropout p 0.5, i.e.
    ``rtmpose_face(max_shift=0.0, scale=(1 / 1.25, 1 / 0.75), max_rotation=60.0, occluder_p=0.5)``. The model
    normalises with ImageNet's mean and std (L51-55): pass ``mean=IMAGENET_MEAN, std=IMAGENET_STD``.
    """
    return replace(AugmentConfig(
        out_size=256, brightness=30 / 255, contrast=0.0, saturation=30 / 255, hue=5 / 180, grayscale_p=0.0,
        crop_margin=((1.25 - 1) / 2, (1.25 - 1) / 2), max_rotation=80.0, rotation_p=0.6, max_shift=0.16, shift_p=0.3,
        scale=(1 / 1.4, 1 / 0.6), flip_p=0.5,
        blur_p=1 - 0.9 * 0.9, blur_sigma=(box_sigma(3), box_sigma(7)),
        occluder_p=1.0, occluder_max=1, occluder_size=(0.2, 0.4), occluder_ellipse_p=0.0, occluder_fill=("colour",),
    ), **overrides)


def star(**overrides: Any) -> AugmentConfig:
    """STAR loss: ZhenglinZhou/STAR @9b12574 ``lib/dataset/augmentation.py`` (Augmentation, RandomTexture) with
    the values ``lib/dataset/alignmentDataset.py:61-77`` passes it and ``conf/alignment.py:21-25`` (256 x 256,
    aug_prob 1.0: every sample).

    Reproduced: flip 0.5 (L324); the crop is the metadata's scale * 200 pixels around its centre (L107-120,
    target_face_scale 1.0): the box given, margin 0; occlusion p 0.4 (L296); box blur p 0.3 (L298) of
    int(256 * 0.05 u) taps, applied only above 1 tap (L272-277): p 0.3 * (1 - 2 / 12.8) = 0.253, sigma from the
    2-tap box's to the 12-tap box's (0.5-3.45); gamma p 0.2 in 0.25-4 (L300, L279-285); noise blend p 0.2
    (L302, L287-292); grey 0.2 (L312), colour otherwise.

    Differences: shift, rotation and zoom are unclipped normals (L176-181, L194-197): shift sigma 0.05 of 255
    px (L194-195, align_corners), rotation sigma 18 degrees, zoom sigma 0.1 around 1; here uniform over +-1.5
    sigma: +-0.0747 of the side, +-27 degrees, 0.85-1.15. STAR shifts in output pixels after the rotation and
    zoom (L163-167); gpuaug moves the crop before them (the same up to the zoom factor). Gamma: half the samples
    uniform in 0.25-1, half in 1-4 (L280-283); here log-uniform in 0.25-4 (the same halves). The occluder
    (L259-269) is black and axis-aligned, 0.1-0.4 of the side high and 0-0.5 wide (its width tied to its
    height); here both sides 0.05-0.45 (the two ranges' mean ends), a flat random colour at a random angle. The
    noise blend (1 - a) x + a n (a up to 0.5, n uniform bytes) pulls toward mid-grey and adds uniform noise of
    std a / sqrt(12) <= 0.144; here additive Gaussian noise of std 0-0.144, without the pull. STAR occludes,
    blurs, applies gamma, blends noise, then greys (L294-313); gpuaug greys in the render, then gamma, occluder,
    blur, noise (a grey sample's occluder and noise are grey). The blur's sigma is uniform, not its taps. The
    model normalises with (x - 127.5) / 127.5 (conf/alignment.py:23-24): pass ``mean=0.5, std=0.5``.
    """
    return replace(AugmentConfig(
        out_size=256, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0, grayscale_p=0.2,
        crop_margin=(0.0, 0.0), max_rotation=1.5 * 18.0, max_shift=1.5 * 0.05 * 255 / 256,
        scale=(1 - 1.5 * 0.1, 1 + 1.5 * 0.1), flip_p=0.5,
        occluder_p=0.4, occluder_max=1, occluder_size=((0.1 + 0.0) / 2, (0.4 + 0.5) / 2), occluder_ellipse_p=0.0,
        occluder_fill=("colour",),
        blur_p=0.3 * (1 - 2 / (256 * 0.05)), blur_sigma=(box_sigma(2), box_sigma(int(256 * 0.05))),
        gamma_p=0.2, gamma=(0.25, 4.0),
        noise_p=0.2, noise_std=(0.0, 0.5 / math.sqrt(12)),
    ), **overrides)


def pipnet(**overrides: Any) -> AugmentConfig:
    """PIPNet: jhb86253817/PIPNet @b9eab58 ``lib/data_utils.py`` (ImageFolder_pip.__getitem__, L126-135) on the
    300W crops of ``lib/preprocess.py``, input 256 (``experiments/data_300W/pip_32_16_60_r18_l2_l1_10_1_nb10.py``
    L10).

    Reproduced: the landmark box grown by 1.1 (preprocess.py:24-28): crop margin 0.05 (WFLW grows its given box
    by 1.2, preprocess.py:88: pass ``crop_margin=(0.1, 0.1)``); random_translate p 0.5, +-30 px of 256 on each
    axis, one gate for both (L11-20); random_occlusion p 0.5, a flat random-colour rectangle, each side 0-0.4 of
    the image (L39-49; here 0.01-0.4: gpuaug's sizes start above 0); random_flip 0.5 (L56); random_rotate p 0.5,
    uniform +-30 degrees (L67-74, L134); random_blur p 0.3, PIL GaussianBlur of radius (its sigma) 0-5 (L34-35;
    here 0.1-5: below that a Gaussian changes nothing visible). Colour output.

    Differences: the translate is whole pixels (int() toward 0: -29..29, 0 twice as likely) and clamps
    landmarks it pushes out to the image edge (L27-28); gpuaug's labels stay exact. The preprocessing stretches
    the grown box to 256 x 256 (preprocess.py:40, aspect not kept); gpuaug crops a square of its larger side.
    What the translate and rotation bring in is black (the 256 crop has nothing beyond it); here it is the frame
    around the crop. The rectangle is axis-aligned, inside the image and 10 px clear of its right and bottom
    edges, and drawn before the flip and rotation (so turned with the face in half the samples); here at a
    random angle, centred anywhere in the output. The model normalises with ImageNet's mean and std
    (``lib/train.py:174``): pass ``mean=IMAGENET_MEAN, std=IMAGENET_STD``.
    """
    return replace(AugmentConfig(
        out_size=256, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0, grayscale_p=0.0,
        crop_margin=((1.1 - 1) / 2, (1.1 - 1) / 2), max_rotation=30.0, rotation_p=0.5, max_shift=30 / 256,
        shift_p=0.5, flip_p=0.5,
        occluder_p=0.5, occluder_max=1, occluder_size=(0.01, 0.4), occluder_ellipse_p=0.0, occluder_fill=("colour",),
        blur_p=0.3, blur_sigma=(0.1, 5.0),
    ), **overrides)


def _hopenet_margin(k: float) -> float:
    """HopeNet's 224 square, in units of a square landmark box's side, as a crop margin: the loose crop's width
    (1 + 0.6 k)^2 box widths, scaled to 240 and cut to 224."""
    return (224 / 240 * (1 + 0.6 * k) ** 2 - 1) / 2


def hopenet(**overrides: Any) -> AugmentConfig:
    """HopeNet: natanielruiz/deep-head-pose @f7bbb99 ``code/datasets.py`` (Pose_300W_LP_random_ds.__getitem__,
    L166-220) and the training transform of ``code/train_hopenet.py:101-103`` (Scale(240), RandomCrop(224)).

    Reproduced: 224 x 224 colour. The loose crop around the landmark box (k uniform in 0.2-0.4, L179-184: the
    left side grows by 0.6 k, the top by 2 k, then the right and bottom by 0.6 k of the grown box) is scaled to
    240 on its shorter side (its width, for a square box) and cut to 224: a square (224 / 240) (1 + 0.6 k)^2 box
    widths wide, crop margin 0.085-0.218; the cut's horizontal offset, 0-16 of 240 px on every sample, as a
    shift of +-8 / 224 of the side. Downsampling by ds in {1, 6, 11, 16} (L192-195): 3 in 4 samples at
    1/16-1/6 of the size. Flip 0.5 (L199-202). PIL's BLUR p 0.05 (L205-207) as a Gaussian of its kernel's
    variance (:data:`PIL_BLUR`, a 5 x 5 ring: sigma sqrt(2.75) = 1.66).

    Differences: vertically the 224 square is a random cut of a crop 1.25-1.45 times as tall as wide, so its
    centre falls anywhere from 0.27-0.41 of the side above the box centre to 0.07-0.15 below (k 0.2-0.4, square
    box); gpuaug's shift range is one, centred, for both axes: +-8 / 224 vertically too. The crop also sits
    0.18 k^2 box widths right of the box centre (under 0.02 of the side): not modelled. The margin is uniform
    between its ends (HopeNet's k is; the margin is nearly linear in it). For a box taller than wide gpuaug's
    square follows the height, HopeNet's the width. Downsampling is nearest both ways, by one of three factors,
    of the crop's own pixels (1/ds of the output only for a crop about 240 px wide); here area down and
    bilinear up, the size seen uniform in 1/16-1/6 of the output. HopeNet blurs after downsampling (here
    before) on the crop's pixels (the output's for a crop about 240 px wide), and its ring is not a Gaussian.
    The model normalises with ImageNet's mean and std (train_hopenet.py:103): pass ``mean=IMAGENET_MEAN,
    std=IMAGENET_STD``.
    """
    return replace(AugmentConfig(
        out_size=224, brightness=0.0, contrast=0.0, saturation=0.0, hue=0.0, grayscale_p=0.0,
        crop_margin=(_hopenet_margin(0.2), _hopenet_margin(0.4)), max_rotation=0.0, max_shift=(240 - 224) / 2 / 224,
        flip_p=0.5,
        low_res_p=0.75, low_res=(1 / 16, 1 / 6),
        blur_p=0.05, blur_sigma=(kernel_sigma(PIL_BLUR), kernel_sigma(PIL_BLUR)),
    ), **overrides)


def webcam(**overrides: Any) -> AugmentConfig:
    """Facial capture from webcams (gpuaug's own preset, not a paper's): the default chain plus hands in front of
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
    "head_multitask": head_multitask, "rtmpose_face": rtmpose_face, "star": star, "pipnet": pipnet,
    "hopenet": hopenet, "webcam": webcam,
}
