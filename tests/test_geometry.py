"""Matrix algebra, rotation conventions and flip tables, checked against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from gpuaug.labels.flip_tables import FLIP_TABLES, resolve_flip_table
from gpuaug.labels.matrix import apply_points, crop_matrix, decompose
from gpuaug.labels.rotation import matrix_to_pose, pose_to_matrix


def _crop(bbox, margin=0.0, shift=(0.0, 0.0), angle=0.0, scale=1.0, flip=False, size=128):
    return crop_matrix(torch.tensor([bbox], dtype=torch.float32), torch.tensor([margin]), torch.tensor([shift]),
                       torch.tensor([angle]), torch.tensor([scale]), torch.tensor([flip]), size)


def test_crop_matrix_hand_values():
    # Box 40 x 20 centred at (30, 30): side 40 * (1 + 2 * 0.5) = 80, k = 128 / 80 = 1.6.
    m = _crop([10, 20, 50, 40], margin=0.5)
    pts = apply_points(m, torch.tensor([[[30.0, 30.0], [70.0, 30.0], [-10.0, -10.0]]]))
    expected = torch.tensor([[63.5, 63.5], [63.5 + 64, 63.5], [63.5 - 64, 63.5 - 64]])
    torch.testing.assert_close(pts[0], expected)


def test_rotation_is_clockwise_on_screen_and_flip_mirrors():
    m = _crop([0, 0, 10, 10], angle=90.0, size=10)  # k = 1, centre (5, 5) -> (4.5, 4.5)
    right_of_centre = apply_points(m, torch.tensor([[[8.0, 5.0]]]))[0, 0]
    torch.testing.assert_close(right_of_centre, torch.tensor([4.5, 7.5]))  # moved below: clockwise
    m = _crop([0, 0, 10, 10], flip=True, size=10)
    torch.testing.assert_close(apply_points(m, torch.tensor([[[8.0, 6.0]]]))[0, 0], torch.tensor([1.5, 5.5]))


def test_crop_matrix_is_the_documented_composition():
    # out = T((S-1)/2) @ k F R(angle) @ T(-(centre + shift * side)), each factor built by hand (float64, random
    # draws, both flips): the closed form crop_matrix writes out is that product.
    g = torch.Generator().manual_seed(3)
    n, size = 64, 97
    corner = torch.rand(n, 2, generator=g, dtype=torch.float64) * 800 - 100
    bbox = torch.cat([corner, corner + torch.rand(n, 2, generator=g, dtype=torch.float64) * 300 + 1], 1)
    margin, scale = torch.rand(n, generator=g, dtype=torch.float64) * 0.4, torch.rand(n, generator=g).double() + 0.5
    shift = torch.rand(n, 2, generator=g, dtype=torch.float64) - 0.5
    angle, flip = torch.rand(n, generator=g, dtype=torch.float64) * 360 - 180, torch.arange(n) % 2 == 0
    m = crop_matrix(bbox, margin, shift, angle, scale, flip, size)
    for i in range(n):
        x0, y0, x1, y1 = bbox[i].tolist()
        side = max(x1 - x0, y1 - y0) * (1 + 2 * margin[i].item())
        cx, cy = (x0 + x1) / 2 + shift[i, 0].item() * side, (y0 + y1) / 2 + shift[i, 1].item() * side
        k, a = size * scale[i].item() / side, math.radians(angle[i].item())
        rot = torch.tensor([[math.cos(a), -math.sin(a), 0], [math.sin(a), math.cos(a), 0], [0, 0, 1]],
                           dtype=torch.float64)
        mirror = torch.diag(torch.tensor([-1.0 if flip[i] else 1.0, 1.0, 1.0], dtype=torch.float64))
        to_centre = torch.tensor([[1, 0, -cx], [0, 1, -cy], [0, 0, 1]], dtype=torch.float64)
        to_out = torch.tensor([[1, 0, (size - 1) / 2], [0, 1, (size - 1) / 2], [0, 0, 1]], dtype=torch.float64)
        linear = k * mirror @ rot
        linear[2, 2] = 1.0
        expected = to_out @ linear @ to_centre
        torch.testing.assert_close(m[i], expected, rtol=1e-12, atol=1e-9)


@pytest.mark.parametrize("flip", [False, True])
def test_decompose_recovers_scale_angle_flip(flip):
    angles = torch.tensor([-170.0, -15.0, 0.0, 33.0, 179.0])
    n = len(angles)
    m = crop_matrix(torch.tensor([[0.0, 0.0, 50.0, 40.0]] * n), torch.zeros(n), torch.zeros(n, 2), angles,
                    torch.full((n,), 2.0), torch.full((n,), flip), 100)
    k, phi, flipped = decompose(m)
    torch.testing.assert_close(k, torch.full((n,), 4.0))
    # Mirror after a clockwise turn by a == turn by -a after a mirror.
    expected = torch.deg2rad(-angles if flip else angles)
    torch.testing.assert_close(torch.atan2(torch.sin(phi - expected), torch.cos(phi - expected)), torch.zeros(n),
                               atol=1e-5, rtol=0)
    assert flipped.tolist() == [flip] * n


def test_pose_conventions_by_hand():
    forward = torch.tensor([0.0, 0.0, -1.0])  # a frontal face looks toward the camera (-z)
    yaw30 = pose_to_matrix(torch.tensor([30.0, 0, 0])) @ forward
    torch.testing.assert_close(yaw30, torch.tensor([0.5, 0.0, -math.sqrt(3) / 2]))  # toward image right
    pitch30 = pose_to_matrix(torch.tensor([0, 30.0, 0])) @ forward
    torch.testing.assert_close(pitch30, torch.tensor([0.0, 0.5, -math.sqrt(3) / 2]))  # down (y down)
    roll90 = pose_to_matrix(torch.tensor([0, 0, 90.0])) @ torch.tensor([1.0, 0, 0])
    torch.testing.assert_close(roll90, torch.tensor([0.0, 1.0, 0.0]), atol=1e-6, rtol=0)  # right -> down: clockwise


def test_pose_round_trip():
    g = torch.Generator().manual_seed(0)
    pose = (torch.rand(500, 3, generator=g, dtype=torch.float64) * 2 - 1) * torch.tensor([179.0, 89.0, 179.0],
                                                                                         dtype=torch.float64)
    torch.testing.assert_close(matrix_to_pose(pose_to_matrix(pose)), pose)


def test_ibug_table_pairs_and_involution():
    t = FLIP_TABLES["ibug68"]
    pairs = {0: 16, 16: 0, 8: 8, 36: 45, 45: 36, 30: 30, 48: 54, 54: 48, 62: 62, 65: 67}
    assert {i: t[i] for i in pairs} == pairs
    table = resolve_flip_table("ibug68")
    assert torch.equal(table[table], torch.arange(68))
