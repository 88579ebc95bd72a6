"""Labels agree with pixels and with 3D geometry under every transform."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch
from conftest import posed_samples, random_poses

from gpuaug import AugmentConfig, FaceAugment, collate
from gpuaug.labels.flip_tables import FLIP_TABLES
from gpuaug.labels.matrix import decompose
from gpuaug.labels.rotation import pose_to_matrix
from gpuaug.labels.transform import transform_labels
from gpuaug.params import AugmentParams
from gpuaug.synth.face_model import INTEROCULAR, fit_similarity, mean_face

NO_COLOUR = AugmentConfig(brightness=0, contrast=0, saturation=0, hue=0, crop_margin=(0.2, 0.4),
                          max_rotation=40, flip_p=0.5)
TABLE = torch.tensor(FLIP_TABLES["ibug68"])


def _dot_frames(samples, sigma: float = 1.5) -> list:
    """Sample j gets ONE Gaussian dot, at its landmark j (cycled): a dot knows its index."""
    out = []
    for j, s in enumerate(samples):
        h, w = s.image.shape[:2]
        x, y = s.landmarks2d[j % 68]
        yy, xx = np.mgrid[0:h, 0:w]
        blob = np.exp(-((xx - x) ** 2 + (yy - y) ** 2) / (2 * sigma**2))
        out.append(replace(s, image=np.repeat((blob * 255).round().astype(np.uint8)[..., None], 3, 2)))
    return out


def test_dots_land_on_their_landmark_index(device):
    g = torch.Generator().manual_seed(11)
    base = posed_samples(random_poses(136, g), [(200, 240), (240, 320)], np.random.default_rng(11))
    batch = collate(_dot_frames(base)).to(device)
    aug = FaceAugment(NO_COLOUR).to(device)
    out = aug(batch, g)
    img = out.images[:, 0].double()
    mass = img.sum((1, 2))
    ys, xs = torch.meshgrid(torch.arange(128.0, device=device), torch.arange(128.0, device=device), indexing="ij")
    centroid = torch.stack([(img * xs).sum((1, 2)), (img * ys).sum((1, 2))], 1) / mass[:, None]
    j = torch.arange(136, device=device) % 68
    index = torch.where(out.flipped, TABLE.to(device)[j], j)  # where dot j must now be listed
    expected = out.landmarks2d[torch.arange(136, device=device), index].double()
    inside = ((expected > 6) & (expected < 121)).all(1)  # a dot cut by the border has a biased centroid
    assert inside.sum() > 100 and out.flipped.any() and (~out.flipped).any()
    err = (centroid - expected).norm(dim=1)[inside]
    assert err.max() < 0.5, f"worst dot off by {err.max():.3f} px"
    # Without the flip re-index the mirrored dots would be far off: the test can tell.
    wrong = out.landmarks2d[torch.arange(136, device=device), j].double()
    moved = out.flipped & inside & (index != j)
    assert ((centroid - wrong).norm(dim=1)[moved] > 2).all()


def _reprojection_error(out, k: torch.Tensor) -> torch.Tensor:
    """Max landmark error (fraction of inter-ocular distance) between the output landmarks and the mean
    face re-projected with the output pose, after fitting scale and translation; z checked too."""
    face = torch.from_numpy(mean_face()).float().to(out.head_pose.device)
    reproj = face @ pose_to_matrix(out.head_pose).transpose(1, 2)
    fitted = fit_similarity(reproj[..., :2], out.landmarks2d)
    iod = (out.landmarks2d[:, INTEROCULAR[0]] - out.landmarks2d[:, INTEROCULAR[1]]).norm(dim=1)
    err_xy = (fitted - out.landmarks2d).norm(dim=-1).amax(1) / iod
    z = out.landmarks3d[..., 2]
    s = (reproj[..., :2] - reproj[..., :2].mean(1, keepdim=True)).norm(dim=-1).sum(1)
    s = (fitted - fitted.mean(1, keepdim=True)).norm(dim=-1).sum(1) / s  # the fitted scale
    err_z = ((z - z.mean(1, keepdim=True)) - s[:, None] * (reproj[..., 2] - reproj[..., 2].mean(1, keepdim=True)))
    return torch.maximum(err_xy, err_z.abs().amax(1) / iod)


def test_pose_and_gaze_follow_the_image(device):
    g = torch.Generator().manual_seed(5)
    batch = collate(posed_samples(random_poses(256, g), [(120, 160)], np.random.default_rng(5))).to(device)
    out = FaceAugment(NO_COLOUR).to(device)(batch, g)
    assert out.flipped.any() and (out.params.angle.abs() > 20).any()
    k, _, _ = decompose(out.matrix)
    assert _reprojection_error(out, k).max() < 0.01
    # Gaze: in camera coordinates (y down, z away) its xy moves with the matrix's linear part, z stays.
    to_cam = torch.tensor([1.0, -1.0, -1.0], device=device)
    g_in, g_out = batch.gaze * to_cam, out.gaze * to_cam
    expected_xy = (out.matrix[:, :2, :2] @ g_in[:, :2, None])[..., 0] / k[:, None]
    torch.testing.assert_close(g_out[:, :2], expected_xy, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(g_out[:, 2], g_in[:, 2], atol=1e-6, rtol=0)


def test_naive_roll_update_fails_the_same_check():
    """``roll += theta`` is only exact at yaw = pitch = 0: the check above must see that."""
    g = torch.Generator().manual_seed(6)
    batch = collate(posed_samples(random_poses(64, g, yaw=40, pitch=30), [(120, 160)], np.random.default_rng(6)))
    aug = FaceAugment(replace(NO_COLOUR, flip_p=0.0, max_rotation=30))
    out = aug(batch, g)
    k, phi, _ = decompose(out.matrix)
    naive = replace(out, head_pose=batch.head_pose + torch.stack([0 * phi, 0 * phi, torch.rad2deg(phi)], 1))
    assert _reprojection_error(naive, k).max() > 0.02


def test_flip_twice_is_identity(face_batch):
    aug = FaceAugment()
    flip = torch.tensor([[-1.0, 0, 100], [0, 1, 0], [0, 0, 1]]).repeat(len(face_batch), 1, 1)
    b, table = face_batch, torch.tensor(aug.flip_table)
    once = transform_labels(flip, table, 128, b.bbox, b.landmarks2d, b.landmarks3d, b.head_pose, b.gaze)
    twice = transform_labels(flip, table, 128, once.bbox, once.landmarks2d, once.landmarks3d,
                             once.head_pose, once.gaze)
    for name in ("bbox", "landmarks2d", "landmarks3d", "head_pose", "gaze"):
        torch.testing.assert_close(getattr(twice, name), getattr(b, name), atol=1e-4, rtol=1e-5)
    assert not torch.allclose(once.landmarks2d, b.landmarks2d)


def test_to_source_inverts(face_batch, device):
    batch = face_batch.to(device)
    out = FaceAugment(AugmentConfig(flip_p=0.5, max_rotation=30)).to(device)(batch, torch.Generator().manual_seed(2))
    assert out.flipped.any()
    torch.testing.assert_close(out.to_source(out.landmarks2d), batch.landmarks2d, atol=2e-3, rtol=1e-5)


def test_identity_params_on_frame_sized_crop_return_the_input(device):
    rng = np.random.default_rng(0)
    samples = posed_samples(torch.zeros(3, 3), [(128, 128)], rng,
                            images=rng.integers(0, 256, (3, 128, 128, 3), dtype=np.uint8))
    samples = [replace(s, bbox=np.array([-0.5, -0.5, 127.5, 127.5], np.float32)) for s in samples]
    batch = collate(samples).to(device)
    aug = FaceAugment(AugmentConfig(grayscale_p=0.0)).to(device)

    out = aug.apply(batch, AugmentParams.identity(3).to(device))
    torch.testing.assert_close(out.matrix, torch.eye(3, device=device).expand(3, 3, 3))
    # Exact to the 8-bit level: every pixel comes back as the same uint8 value.
    assert torch.equal((out.images * 255).round().to(torch.uint8), batch.images.permute(0, 3, 1, 2))
    for name in ("landmarks2d", "landmarks3d", "head_pose", "gaze", "bbox"):
        torch.testing.assert_close(getattr(out, name), getattr(batch, name), atol=1e-4, rtol=1e-5)


@pytest.mark.parametrize("backend", ["torch"])
def test_pixels_outside_a_frame_are_fill(device, backend):
    """A small frame batched with a big one: what maps outside the small frame's true size is 0."""
    rng = np.random.default_rng(1)
    imgs = [np.full((40, 50, 3), 200, np.uint8), np.full((120, 160, 3), 255, np.uint8)]
    samples = posed_samples(torch.zeros(2, 3), [(40, 50), (120, 160)], rng, images=imgs)
    samples[0] = replace(samples[0], bbox=np.array([0, 0, 49, 39], np.float32))
    batch = collate(samples).to(device)
    cfg = AugmentConfig(brightness=0, contrast=0, saturation=0, hue=0, crop_margin=(1.0, 1.0), max_rotation=0,
                        max_shift=0, flip_p=0)
    out = FaceAugment(cfg, backend=backend).to(device)(batch)
    # Margin 1: side 150 around the 50 x 40 frame -> the frame fills [42.7, 85.3] x [46.9, 81.1] of 128.
    small = out.images[0, 0]
    assert small[:40].abs().max() == 0 and small[90:].abs().max() == 0 and small[:, :40].abs().max() == 0
    torch.testing.assert_close(small[55:75, 50:80], torch.full((20, 30), 200 / 255, device=device))
