"""Every recipe builds, validates, and runs a step (at a small size) with labels and occlusion flags; its numbers
follow from its source's (written out below, each with its file and line, defaults of the source's transforms
included); the rotation and shift gates draw at their rates, zero only their own field, and leave the default
draws bit for bit."""

from __future__ import annotations

import math
from dataclasses import fields, replace

import pytest
import torch

from gpuaug import AugmentConfig, FaceAugment, FaceBatch, recipes, sample_params


def _box_sigma(taps: int) -> float:
    """The std of a box of ``taps`` equal weights one pixel apart: sqrt((taps^2 - 1) / 12)."""
    return math.sqrt((taps * taps - 1) / 12)


@pytest.mark.parametrize("name", sorted(recipes.RECIPES))
def test_recipe_builds_and_runs(name: str, face_batch: FaceBatch) -> None:
    full = recipes.RECIPES[name]()
    assert isinstance(full, AugmentConfig)
    # The recipe's own numbers at a small output (blur sigmas scaled along, so they stay inside the image).
    small = recipes.RECIPES[name](out_size=64, blur_sigma=tuple(s / 4 for s in full.blur_sigma))
    out = FaceAugment(small)(face_batch, torch.Generator().manual_seed(0))
    assert out.images.shape == (8, small.channels, 64, 64) and torch.isfinite(out.images).all()
    assert out.occluded.shape == (8, 68) and out.valid.all()


def test_seed_is_the_default() -> None:
    assert recipes.head_multitask() == AugmentConfig() and not recipes.head_multitask().camera
    assert recipes.star(out_size=128).out_size == 128 and recipes.webcam().camera


def test_kernel_sigmas() -> None:
    """A k-tap box's variance is (k^2 - 1) / 12; Pillow's BLUR is the 5 x 5 ring of ones over 16
    (python-pillow/Pillow src/PIL/ImageFilter.py, class BLUR), whose columns at +-2 hold 5 taps and the
    columns at -1, 0, 1 two each: variance (2 * 5 * 2^2 + 2 * 2 * 1^2) / 16 = 2.75."""
    ring = ((1, 1, 1, 1, 1), (1, 0, 0, 0, 1), (1, 0, 0, 0, 1), (1, 0, 0, 0, 1), (1, 1, 1, 1, 1))
    assert tuple(map(tuple, recipes.PIL_BLUR)) == ring
    assert recipes.kernel_sigma(recipes.PIL_BLUR) == pytest.approx(math.sqrt((2 * 5 * 4 + 2 * 2 * 1) / 16))
    for taps in (2, 3, 5, 7, 12):
        assert recipes.box_sigma(taps) == pytest.approx(_box_sigma(taps))


def test_rtmpose_face_follows_mmpose() -> None:
    # open-mmlab/mmpose @759b39c, configs/face_2d_keypoint/rtmpose/wflw/rtmpose-m_8xb64-60e_wflw-256x256.py (CFG)
    # and mmpose/datasets/transforms/common_transforms.py (CT).
    input_size = 256                    # CFG:42 codec input_size (256, 256)
    padding = 1.25                      # CT:52 GetBBoxCenterScale default (CFG:114 sets none)
    flip_prob = 0.5                     # CT:138 RandomFlip default (CFG:115)
    shift_factor, shift_prob = 0.16, 0.3  # CT:471-472 RandomBBoxTransform defaults (CFG:117-118 sets neither)
    scale_factor = (0.6, 1.4)           # CFG:118
    rotate_factor, rotate_prob = 80.0, 0.6  # CFG:118; CT:476 default
    hue_delta, saturation_delta, value_delta = 5, 30, 30  # mmdet YOLOXHSVRandomAug defaults (CFG:120)
    blur_p, median_p = 0.1, 0.1         # CFG:124-125
    blur_taps = range(3, 7 + 1, 2)      # albumentations 1.3.1 Blur / MedianBlur default blur_limit 7: 3, 5, 7
    holes, hole, dropout_p = 1, (0.2, 0.4), 1.0  # CFG:126-134 CoarseDropout

    c = recipes.rtmpose_face()
    assert c.out_size == input_size and c.grayscale_p == 0.0 and c.contrast == 0.0
    margin = (padding - 1) / 2  # side = max(w, h) * padding = max(w, h) * (1 + 2 * margin)
    assert c.crop_margin == pytest.approx((margin, margin))
    assert c.flip_p == flip_prob
    assert c.max_shift == pytest.approx(shift_factor) and c.shift_p == shift_prob
    # mmpose multiplies the box by s (CT:548: s > 1 shows more); gpuaug's zoom is 1 / s.
    assert c.scale == pytest.approx((1 / scale_factor[1], 1 / scale_factor[0]))
    assert c.max_rotation == rotate_factor and c.rotation_p == rotate_prob
    assert c.hue == pytest.approx(hue_delta / 180)  # OpenCV's 8-bit hue: 180 units a turn
    assert c.saturation == pytest.approx(saturation_delta / 255) and c.brightness == pytest.approx(value_delta / 255)
    assert c.blur_p == pytest.approx(1 - (1 - blur_p) * (1 - median_p))
    assert c.blur_sigma == pytest.approx((_box_sigma(min(blur_taps)), _box_sigma(max(blur_taps))))
    assert (c.occluder_p, c.occluder_max, c.occluder_size) == (dropout_p, holes, hole)
    assert c.occluder_ellipse_p == 0.0 and c.occluder_fill == ("colour",)


def test_star_follows_its_source() -> None:
    # ZhenglinZhou/STAR @9b12574: lib/dataset/alignmentDataset.py (DS), lib/dataset/augmentation.py (AUG),
    # conf/alignment.py (CONF).
    image_size = 256                    # CONF:21-22
    flip_rate = 0.5                     # DS:68
    shift_sigma, rot_sigma, scale_sigma = 0.05, 18.0, 0.1  # DS:70-72 (rotation pi / 180 * 18 rad)
    gray, occ, blur, gamma, noise = 0.2, 0.4, 0.3, 0.2, 0.2  # DS:73-77
    pixels = image_size - 1             # AUG:184-186, 194-195: align_corners, shift * min(to_h, to_w)
    rh = (0.2, 0.8)                     # AUG:259 occluder height: h / 2 * rh (AUG:263)
    rw = (rh[0] - 0.2, rh[1] + 0.2)     # AUG:260 rw = rh - 0.2 + 0.4 u; width w / 2 * rw (AUG:264)
    kratio = 0.05                       # AUG:273-275: int(side * 0.05 u) taps, blurred only above 1
    gamma_range = (0.25, 4.0)           # AUG:281-283
    alpha = 0.5                         # AUG:290: (1 - a) x + a * uniform noise, a < 0.5
    spread = 1.5                        # recipes' convention: an unclipped normal is uniform over +-1.5 sigma

    c = recipes.star()
    assert c.out_size == image_size and c.flip_p == flip_rate and c.grayscale_p == gray
    assert c.crop_margin == (0.0, 0.0) and c.shift_p == 1.0 and c.rotation_p == 1.0
    assert c.max_shift == pytest.approx(spread * shift_sigma * pixels / image_size)
    assert c.max_rotation == pytest.approx(spread * rot_sigma)
    assert c.scale == pytest.approx((1 - spread * scale_sigma, 1 + spread * scale_sigma))
    heights, widths = (rh[0] / 2, rh[1] / 2), (rw[0] / 2, rw[1] / 2)
    assert c.occluder_p == occ and c.occluder_size == pytest.approx(
        ((heights[0] + widths[0]) / 2, (heights[1] + widths[1]) / 2))
    max_taps = image_size * kratio      # 12.8: taps 0..12
    assert c.blur_p == pytest.approx(blur * (1 - 2 / max_taps))  # int(.) < 2 blurs nothing
    assert c.blur_sigma == pytest.approx((_box_sigma(2), _box_sigma(int(max_taps))))
    assert c.gamma_p == gamma and c.gamma == gamma_range
    assert c.noise_p == noise and c.noise_std == pytest.approx((0.0, alpha / math.sqrt(12)))


def test_pipnet_follows_its_source() -> None:
    # jhb86253817/PIPNet @b9eab58: lib/data_utils.py (DU), lib/preprocess.py (PRE),
    # experiments/data_300W/pip_32_16_60_r18_l2_l1_10_1_nb10.py (EXP).
    input_size = 256                    # EXP:10
    crop_scale = 1.1                    # PRE:24 process_300w: the landmark box times 1.1
    translate_p, translate_px = 0.5, 30  # DU:11 random() > 0.5; DU:16, 20 int((random() - 0.5) * 60)
    occ_p, occ_max = 0.5, 0.4           # DU:39; DU:43-44 int(side * 0.4 * random())
    flip_p = 0.5                        # DU:56
    rotate_p, angle_max = 0.5, 30.0     # DU:67; DU:134
    blur_p, radius_max = 0.3, 5.0       # DU:34 random() > 0.7; DU:35 GaussianBlur(random() * 5)

    c = recipes.pipnet()
    assert c.out_size == input_size and c.grayscale_p == 0.0
    margin = (crop_scale - 1) / 2
    assert c.crop_margin == pytest.approx((margin, margin))
    assert c.max_shift == pytest.approx(translate_px / input_size) and c.shift_p == translate_p
    assert c.occluder_p == occ_p and c.occluder_size[1] == pytest.approx(occ_max) and c.occluder_max == 1
    assert c.occluder_ellipse_p == 0.0 and c.occluder_fill == ("colour",)
    assert c.flip_p == flip_p
    assert c.max_rotation == angle_max and c.rotation_p == rotate_p
    assert c.blur_p == pytest.approx(blur_p) and c.blur_sigma[1] == pytest.approx(radius_max)


def test_hopenet_follows_its_source() -> None:
    # natanielruiz/deep-head-pose @f7bbb99: code/datasets.py (DS, Pose_300W_LP_random_ds), code/train_hopenet.py
    # (TR).
    k = (0.2, 0.4)                      # DS:179 k = random() * 0.2 + 0.2
    grow = 0.6                          # DS:180, 182: left and right sides grow by 0.6 k (the right of the grown)
    scale_to, crop = 240, 224           # TR:101-102 Scale(240), RandomCrop(224)
    ds = tuple(1 + i * 5 for i in range(4))  # DS:192 1 + randint(0, 4) * 5
    flip_p, blur_p = 0.5, 0.05          # DS:199, DS:205

    c = recipes.hopenet()
    assert c.out_size == crop and c.grayscale_p == 0.0 and c.max_rotation == 0.0
    # A square box of side 1: the crop is (1 + grow k)^2 wide, the shorter side, scaled to 240 and cut to 224.
    margins = tuple((crop / scale_to * (1 + grow * kk) ** 2 - 1) / 2 for kk in k)
    assert c.crop_margin == pytest.approx(margins)
    assert c.max_shift == pytest.approx((scale_to - crop) / 2 / crop) and c.shift_p == 1.0
    assert c.low_res_p == pytest.approx(sum(d > 1 for d in ds) / len(ds))
    assert c.low_res == pytest.approx((1 / max(ds), 1 / min(d for d in ds if d > 1)))
    assert c.flip_p == flip_p and c.blur_p == blur_p
    assert c.blur_sigma == pytest.approx((math.sqrt(2.75), math.sqrt(2.75)))  # test_kernel_sigmas


@pytest.mark.parametrize("name", ["rotation_p", "shift_p"])
@pytest.mark.parametrize("value", [-0.1, 1.5])
def test_gate_probabilities_are_checked(name: str, value: float) -> None:
    with pytest.raises(ValueError, match=f"{name} must be in \\[0, 1\\]"):
        AugmentConfig(**{name: value})


def test_default_draws_are_unchanged() -> None:
    """The default config (gates at 1) draws what sample_params drew before the gates: the same values, from the
    same generator calls in the same order, and nothing more."""
    n, c = 4, AugmentConfig()
    g_params = torch.Generator().manual_seed(0)
    params = sample_params(c, n, g_params)
    # Recorded before the gates existed.
    assert params.angle.tolist() == [-14.33022689819336, -9.934231758117676, -6.183346748352051, 0.5556535720825195]
    assert params.margin.tolist() == [0.09925132244825363, 0.1536443680524826, 0.017695486545562744,
                                      0.026406098157167435]
    assert params.shift.tolist() == [[-0.04814429581165314, 0.033519670367240906],
                                     [-0.0024766474962234497, 0.09911118447780609],
                                     [-0.011093005537986755, 0.03307656943798065],
                                     [-0.037776634097099304, -0.02457067370414734]]
    # Every field from the draws written out, one torch.rand per field in the order sample_params makes them.
    g = torch.Generator().manual_seed(0)

    def u(lo: float, hi: float, k: int = n) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(k, generator=g)

    expected = dict(
        margin=u(*c.crop_margin), shift=u(-c.max_shift, c.max_shift, 2 * n).view(n, 2),
        angle=u(-c.max_rotation, c.max_rotation), scale=u(*c.scale), flip=torch.rand(n, generator=g) < c.flip_p,
        brightness=u(1 - c.brightness, 1 + c.brightness), contrast=u(1 - c.contrast, 1 + c.contrast),
        saturation=u(1 - c.saturation, 1 + c.saturation), hue=u(-c.hue, c.hue),
        gray=torch.rand(n, generator=g) < c.grayscale_p,
    )
    for name, value in expected.items():
        assert torch.equal(getattr(params, name), value), name
    assert torch.equal(torch.rand(8, generator=g_params), torch.rand(8, generator=g))  # nothing more drawn


def test_gates_zero_only_their_own_field() -> None:
    """A gate below 1 draws after everything else: every other field is the p = 1 draw of the same seed, and the
    gated field is that draw where kept, 0 elsewhere (the shift's two axes together)."""
    full = AugmentConfig(grayscale_p=0.5, blur_p=0.5, occluder_p=0.5, noise_p=0.5)  # camera ops draw too
    n = 256
    for name, field in (("rotation_p", "angle"), ("shift_p", "shift")):
        gated = replace(full, **{name: 0.5})
        a = sample_params(full, n, torch.Generator().manual_seed(3))
        b = sample_params(gated, n, torch.Generator().manual_seed(3))
        for f in fields(a):
            if f.name != field:
                assert torch.equal(getattr(a, f.name), getattr(b, f.name)), (name, f.name)
        drawn, kept_value = getattr(a, field).view(n, -1), getattr(b, field).view(n, -1)
        kept = (kept_value != 0).any(1)
        assert 0.3 * n < kept.sum() < 0.7 * n
        assert torch.equal(kept_value[kept], drawn[kept]) and (kept_value[~kept] == 0).all()


@pytest.mark.parametrize("recipe", ["rtmpose_face", "pipnet"])
def test_gates_draw_at_their_rates(recipe: str) -> None:
    """Over 20000 draws the fraction of samples rotated (shifted) is rotation_p (shift_p) within 5 binomial
    standard deviations; the shift's axes are gated together."""
    c, n = recipes.RECIPES[recipe](), 20000
    assert c.rotation_p < 1 and c.shift_p < 1
    p = sample_params(c, n, torch.Generator().manual_seed(0))
    for rate, kept in ((c.rotation_p, p.angle != 0), (c.shift_p, (p.shift != 0).any(1))):
        tolerance = 5 * math.sqrt(rate * (1 - rate) / n)
        assert abs(kept.double().mean().item() - rate) < tolerance
    assert torch.equal(p.shift[:, 0] != 0, p.shift[:, 1] != 0)
    for rate in (0.0, 1.0):
        q = sample_params(replace(c, rotation_p=rate, shift_p=rate), 1000, torch.Generator().manual_seed(0))
        assert bool((q.angle != 0).all()) == bool(rate) and bool((q.shift != 0).all()) == bool(rate)
        assert bool((q.angle == 0).all()) != bool(rate) and bool((q.shift == 0).all()) != bool(rate)
