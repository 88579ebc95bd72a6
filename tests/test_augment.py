"""FaceAugment: reproducibility, eval framing, channels, mixed sizes and the colour definitions."""

from __future__ import annotations

from dataclasses import fields, replace

import kornia.enhance as ke
import pytest
import torch

from gpuaug import AugmentConfig, FaceAugment
from gpuaug.backends.torch_backend import apply_colour
from gpuaug.colour import colour_affine, hue_matrix
from gpuaug.params import AugmentParams


def test_same_seed_same_params_and_output(face_batch, device):
    batch = face_batch.to(device)
    aug = FaceAugment(AugmentConfig(grayscale_p=0.5)).to(device)
    a = aug(batch, torch.Generator().manual_seed(7))
    b = aug(batch, torch.Generator().manual_seed(7))
    c = aug(batch, torch.Generator().manual_seed(8))
    for f in fields(a.params):
        assert torch.equal(getattr(a.params, f.name), getattr(b.params, f.name))
    assert torch.equal(a.images, b.images) and torch.equal(a.landmarks2d, b.landmarks2d)
    assert not torch.equal(a.images, c.images)
    replayed = aug.apply(batch, a.params)  # split API replays exactly
    assert torch.equal(replayed.images, a.images) and torch.equal(replayed.head_pose, a.head_pose)


def test_eval_is_deterministic_centred_framing(face_batch):
    aug = FaceAugment().eval()
    a, b = aug(face_batch, torch.Generator().manual_seed(1)), aug(face_batch, torch.Generator().manual_seed(2))
    assert torch.equal(a.images, b.images) and not a.flipped.any()
    centre = (face_batch.bbox[:, :2] + face_batch.bbox[:, 2:]) / 2
    torch.testing.assert_close(a.to_source(torch.full((len(a), 68, 2), 63.5)), centre[:, None].expand(-1, 68, -1))
    torch.testing.assert_close(a.head_pose, face_batch.head_pose, atol=1e-4, rtol=0)


@pytest.mark.parametrize(("grayscale_p", "channels"), [(1.0, 1), (0.5, 3), (0.0, 3)])
def test_output_shape_and_range(face_batch, grayscale_p, channels):
    out = FaceAugment(AugmentConfig(out_size=64, grayscale_p=grayscale_p))(face_batch, torch.Generator().manual_seed(0))
    assert out.images.shape == (8, channels, 64, 64) and out.images.dtype == torch.float32
    assert out.images.min() >= 0 and out.images.max() <= 1
    assert out.landmarks2d.shape == (8, 68, 2) and out.visible.dtype == torch.bool
    if channels == 3:  # grey samples carry three equal channels, colour ones do not
        grey = out.params.gray
        spread = (out.images.amax(1) - out.images.amin(1)).flatten(1).amax(1)
        assert (spread[grey] == 0).all()


def _params(n: int, **factors: float) -> AugmentParams:
    p = AugmentParams.identity(n)
    return replace(p, **{k: torch.full((n,), v) for k, v in factors.items()})


@pytest.fixture
def colour_image() -> torch.Tensor:
    g = torch.Generator().manual_seed(0)
    return 0.2 + 0.6 * torch.rand(2, 3, 16, 16, generator=g)  # away from 0 and 1: no clamping involved


@pytest.mark.parametrize("factor", [0.6, 1.3])
def test_colour_matches_torchvision_definitions_via_kornia(colour_image, factor):
    x = colour_image
    n = len(x)
    # torchvision's brightness is a gain; kornia's adjust_brightness adds, so compare with the gain.
    torch.testing.assert_close(apply_colour(x, _params(n, brightness=factor), 3), (x * factor).clamp(0, 1))
    torch.testing.assert_close(apply_colour(x, _params(n, saturation=factor), 3),
                               ke.adjust_saturation_with_gray_subtraction(x, factor), atol=1e-5, rtol=0)
    torch.testing.assert_close(apply_colour(x, _params(n, contrast=factor), 3),
                               ke.adjust_contrast_with_mean_subtraction(x, factor), atol=1e-5, rtol=0)


def test_hue_keeps_luma_and_greys_and_turns_red_toward_yellow():
    m = hue_matrix(torch.tensor([0.1, -0.1, 0.5]))
    w = torch.tensor([0.299, 0.587, 0.114])
    torch.testing.assert_close(w @ m, w.expand(3, 3), atol=1e-6, rtol=0)  # luma preserved
    torch.testing.assert_close(m @ torch.ones(3), torch.ones(3, 3), atol=1e-6, rtol=0)  # greys stay grey
    red = m @ torch.tensor([1.0, 0.0, 0.0])
    assert red[0, 1] > red[0, 2] and red[1, 2] > red[1, 1]  # +hue: toward green; -hue: toward blue
    torch.testing.assert_close(hue_matrix(torch.tensor([0.25])) @ hue_matrix(torch.tensor([0.25])),
                               hue_matrix(torch.tensor([0.5])), atol=1e-6, rtol=0)


def test_grey_row_is_luma_of_jittered_colour(colour_image):
    n = len(colour_image)
    p = replace(_params(n, brightness=1.2, contrast=0.8, saturation=1.3, hue=0.05), gray=torch.tensor([True, False]))
    a3, b3 = colour_affine(p, torch.full((n,), 0.5), 3)
    a1, _ = colour_affine(p, torch.full((n,), 0.5), 1)
    torch.testing.assert_close(a3[0], a1[0].expand(3, 3))  # grey sample: three equal rows
    # One output channel: every sample gets the luma of its jittered colour.
    torch.testing.assert_close(a1[1, 0], torch.tensor([0.299, 0.587, 0.114]) @ a3[1])
    assert torch.equal(b3[:, 0], b3[:, 2])


def test_frames_of_mixed_sizes_in_one_batch(face_batch):
    assert len(set(map(tuple, face_batch.sizes.tolist()))) == 2
    out = FaceAugment()(face_batch, torch.Generator().manual_seed(0))
    assert out.images.shape[0] == 8 and torch.isfinite(out.landmarks2d).all()


def test_identity_params_give_each_field_its_own_tensor() -> None:
    """Setting one field of identity params in place leaves every other field as it was."""
    from dataclasses import fields

    from gpuaug import AugmentParams

    params = AugmentParams.identity(3)
    storages = [getattr(params, f.name).untyped_storage().data_ptr() for f in fields(params)]
    assert len(set(storages)) == len(storages)
