"""Each camera op (:mod:`gpuaug.camera`) against an implementation we did not write (OpenCV, kornia, Pillow) or a
hand-computed value: Gaussian blur, motion blur, low resolution, JPEG, gamma, noise, occluder coverage."""

from __future__ import annotations

import io

import cv2
import kornia
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from PIL import Image

from gpuaug.camera.blur import (
    correlate,
    correlate_taps,
    gaussian_blur,
    gaussian_radius,
    motion_blur,
    motion_radius,
    reflect_pad,
    separable_taps,
)
from gpuaug.camera.counter_noise import hash_normals, hash_uniform, mix32, normal_field
from gpuaug.camera.exposure import apply_gamma
from gpuaug.camera.jpeg import CHROMA_TABLE, LUMA_TABLE, jpeg, quant_tables
from gpuaug.camera.noise import sensor_noise
from gpuaug.camera.occluders import covers, occluded, occluder_table
from gpuaug.camera.resolution import band_width, least_small_size, low_resolution, most_taps
from gpuaug.camera.sample import OCC, OCCLUDER_COLUMNS


def _images(b: int = 2, c: int = 3, size: int = 40, seed: int = 0) -> torch.Tensor:
    return torch.from_numpy(np.random.default_rng(seed).random((b, c, size, size), dtype=np.float32))


def _hwc(x: torch.Tensor) -> np.ndarray:
    return x.permute(1, 2, 0).numpy()


def test_gaussian_blur_matches_opencv() -> None:
    x, sigma = _images(), torch.tensor([1.3, 0.6])
    radius = gaussian_radius(1.5)
    out = gaussian_blur(x, sigma, radius)
    for i in range(2):
        ref = cv2.GaussianBlur(_hwc(x[i]), (2 * radius + 1,) * 2, float(sigma[i]), borderType=cv2.BORDER_REFLECT_101)
        np.testing.assert_allclose(_hwc(out[i]), ref, atol=1e-5)


def test_gaussian_blur_zero_sigma_is_bit_identical() -> None:
    x = _images()
    assert torch.equal(gaussian_blur(x, torch.tensor([0.0, 0.0]), 3), x)


@pytest.mark.parametrize(("ry", "rx"), [(1, 1), (4, 2), (8, 8)])
def test_reflect_pad_is_torchs(ry: int, rx: int) -> None:
    x = _images(2, 3, 9)
    out = torch.full((2, 3, 9 + 2 * ry, 9 + 2 * rx), float("nan"))
    assert torch.equal(reflect_pad(x, ry, rx, out), F.pad(x, (rx, rx, ry, ry), mode="reflect"))


def test_taps_are_the_convolution() -> None:
    """The CPU chain's sums of shifted taps are the grouped convolution's correlation, per sample; the kernels
    are not symmetric, so a flipped or transposed tap, or one sample's kernel on another, fails."""
    x = _images(3, 2, 20)
    k = torch.rand(3, 5, 7, generator=torch.Generator().manual_seed(0))
    torch.testing.assert_close(correlate_taps(F.pad(x, (3, 3, 2, 2), mode="reflect"), k), correlate(x, k),
                               atol=1e-5, rtol=0)
    k1 = torch.rand(3, 7, generator=torch.Generator().manual_seed(1))
    torch.testing.assert_close(separable_taps(F.pad(x, (3, 3, 3, 3), mode="reflect"), k1),
                               correlate(correlate(x, k1[:, None, :]), k1[:, :, None]), atol=1e-5, rtol=0)


@pytest.mark.parametrize("length", [3, 5, 7])
@pytest.mark.parametrize("angle", [0.0, 17.0, 45.0, 90.0, 135.0, 160.0])
def test_motion_blur_matches_kornia(length: int, angle: float) -> None:
    """Same kernel as kornia's bilinear motion kernel; kornia turns counterclockwise on screen, we clockwise (the
    project's angle convention), hence -angle."""
    x = _images(size=24)
    out = motion_blur(x, torch.full((2,), float(length)), torch.full((2,), angle), motion_radius(length))
    ref = kornia.filters.motion_blur(x, length, -angle, 0.0, border_type="reflect", mode="bilinear")
    torch.testing.assert_close(out, ref, atol=2e-6, rtol=0)


def test_motion_blur_direction_by_hand() -> None:
    """An impulse at 0 degrees spreads along the row (x), at 90 degrees along the column (y): 1/5 on 5 pixels."""
    x = torch.zeros(2, 1, 15, 15)
    x[:, :, 7, 7] = 1
    out = motion_blur(x, torch.tensor([5.0, 5.0]), torch.tensor([0.0, 90.0]), motion_radius(5))
    row, col = torch.zeros(15, 15), torch.zeros(15, 15)
    row[7, 5:10], col[5:10, 7] = 0.2, 0.2
    torch.testing.assert_close(out[0, 0], row, atol=1e-6, rtol=0)
    torch.testing.assert_close(out[1, 0], col, atol=1e-6, rtol=0)


@pytest.mark.parametrize("least_fraction", [0.18, 0.45])
def test_low_resolution_matches_opencv(least_fraction: float) -> None:
    """Area down to round(f * S), bilinear back up: cv2.resize INTER_AREA then INTER_LINEAR, for every size the
    config can draw (f from its least fraction to 0.99 in steps of 0.01). Least s 18 at S = 40: a band of 7 taps;
    least s 7 (5.7 source pixels per small pixel, so the ends are partial pixels): 14, wider than the taps take,
    the operator's products."""
    x, size = _images(), 40
    least = least_small_size(least_fraction, size)
    assert (band_width(least, size) <= most_taps(size)) == (least_fraction == 0.45)
    for fraction in np.arange(least_fraction, 1.0, 0.01):
        small = round(fraction * size)
        out = low_resolution(x, torch.full((2,), float(fraction)), least=least)
        for i in range(2):
            down = cv2.resize(_hwc(x[i]), (small, small), interpolation=cv2.INTER_AREA)
            ref = cv2.resize(down, (size, size), interpolation=cv2.INTER_LINEAR)
            np.testing.assert_allclose(_hwc(out[i]), ref, atol=1e-5, err_msg=f"fraction {fraction:.2f}")


def test_low_resolution_below_the_least_size_reads_the_least() -> None:
    """A fraction under the config's range (params made by hand) renders as the least size, which the band holds."""
    x = _images()
    torch.testing.assert_close(low_resolution(x, torch.full((2,), 0.05), least=8),
                               low_resolution(x, torch.full((2,), 0.2), least=8), rtol=0, atol=0)


def test_low_resolution_at_full_size_is_bit_identical() -> None:
    x = _images()
    assert torch.equal(low_resolution(x, torch.ones(2), least=1), x)


def _pillow_jpeg(levels: np.ndarray, quality: int) -> tuple[np.ndarray, Image.Image]:
    buf = io.BytesIO()
    Image.fromarray(levels[..., 0] if levels.shape[2] == 1 else levels).save(buf, format="JPEG", quality=quality)
    decoded = Image.open(io.BytesIO(buf.getvalue()))
    out = np.asarray(decoded).astype(np.float32) / 255
    return (out[..., None] if out.ndim == 2 else out), decoded


def _photo(size: int, channels: int) -> np.ndarray:
    """A smooth random picture (blurred noise), closer to a photograph than white noise."""
    noise = (np.random.default_rng(1).random((size, size, 3)) * 255).astype(np.uint8)
    return cv2.GaussianBlur(noise, (9, 9), 3)[..., :channels].copy()


@pytest.mark.parametrize("quality", [5, 20, 50, 75, 95, 100])
def test_jpeg_tables_are_pillows(quality: int) -> None:
    """The quality-scaled tables are the ones Pillow's libjpeg writes into the file (Pillow lists them in
    natural order)."""
    _, decoded = _pillow_jpeg(_photo(16, 3), quality)
    q = torch.tensor([float(quality)])
    for k, table in enumerate((LUMA_TABLE, CHROMA_TABLE)):
        theirs = np.array(decoded.quantization[k], dtype=np.float32).reshape(8, 8)
        np.testing.assert_array_equal(quant_tables(q, table)[0].numpy(), theirs)


@pytest.mark.parametrize("quality", [30, 75, 95])
def test_jpeg_grey_matches_pillow(quality: int) -> None:
    """Grey: within 0.25/255 mean abs of Pillow's round trip (measured 0.004-0.05/255, max 1-2/255: libjpeg's
    DCT is fixed point, ours floating point), while the loss itself is 0.5-2/255."""
    levels = _photo(64, 1)
    ref, _ = _pillow_jpeg(levels, quality)
    x = torch.from_numpy(levels.astype(np.float32) / 255).permute(2, 0, 1)[None]
    out = _hwc(jpeg(x, torch.tensor([float(quality)]))[0])
    assert np.abs(out - ref).mean() <= 0.25 / 255
    assert np.abs(out - ref).mean() < np.abs(ref - levels / 255).mean() / 2  # closer to Pillow than to the input
    np.testing.assert_allclose(out * 255, np.round(out * 255), atol=1e-4)  # 8-bit levels, as a decoder gives


@pytest.mark.parametrize("quality", [30, 75, 95])
def test_jpeg_colour_matches_pillow(quality: int) -> None:
    """Colour 4:2:0: measured 0.02-0.12/255 mean abs from Pillow, max 2-4/255 (libjpeg-turbo's DCT is fixed
    point, ours floating point; the rest is its arithmetic: tests/test_jpeg_libjpeg.py); held to 0.3/255, and
    much closer to Pillow than to the input."""
    levels = _photo(64, 3)
    ref, _ = _pillow_jpeg(levels, quality)
    x = torch.from_numpy(levels.astype(np.float32) / 255).permute(2, 0, 1)[None]
    out = _hwc(jpeg(x, torch.tensor([float(quality)]))[0])
    assert np.abs(out - ref).mean() <= 0.3 / 255
    assert np.abs(out - ref).mean() < np.abs(ref - levels / 255).mean() / 2.5


def test_jpeg_odd_size_and_quality_zero() -> None:
    """A side that is no multiple of 16 is padded as libjpeg pads it and cropped back (measured 0.06/255 mean
    from Pillow; 0.54/255 when the chroma was padded like the luma); quality 0 leaves a sample untouched."""
    levels = _photo(37, 3)
    ref, _ = _pillow_jpeg(levels, 60)
    x = torch.from_numpy(levels.astype(np.float32) / 255).permute(2, 0, 1)[None].repeat(2, 1, 1, 1)
    out = jpeg(x, torch.tensor([60.0, 0.0]))
    assert np.abs(_hwc(out[0]) - ref).mean() <= 0.3 / 255
    assert torch.equal(out[1], x[1])


def test_gamma_is_the_formula() -> None:
    x = _images()
    g = torch.tensor([0.4, 2.5])
    out = apply_gamma(x, g)  # exp(g log x): a few float32 ulps from pow
    torch.testing.assert_close(out, x ** g[:, None, None, None], atol=0, rtol=4e-6)
    assert torch.equal(apply_gamma(x, torch.ones(2)), x)


def test_mix32_is_lowbias32() -> None:
    """The int32 hash against lowbias32 written with Python integers."""
    def reference(v: int) -> int:
        m = 0xFFFFFFFF
        v ^= v >> 16
        v = (v * 0x7FEB352D) & m
        v ^= v >> 15
        v = (v * 0x846CA68B) & m
        return v ^ (v >> 16)

    values = [0, 1, 2, 12345, 2**31 - 1, 2**31, 2**32 - 1, 987654321]
    words = torch.tensor([v - 2**32 if v >= 2**31 else v for v in values], dtype=torch.int32)
    assert [int(w) & 0xFFFFFFFF for w in mix32(words)] == [reference(v) for v in values]


def test_counter_noise_statistics_and_replay() -> None:
    index = torch.arange(200_000, dtype=torch.int32)[None]
    seeds = torch.tensor([[7.0], [8.0]])
    pairs = hash_normals(seeds, index, 1)  # (2, 200000, 2): both Box-Muller outputs per counter
    n = pairs.flatten(1)
    assert abs(float(n.mean())) < 0.01 and abs(float(n.std()) - 1) < 0.01
    assert abs(float((n.abs() < 1).float().mean()) - 0.6827) < 0.005  # a normal, not just unit variance
    for first, second in ((pairs[..., 0], pairs[..., 1]), (pairs[..., 0] ** 2, pairs[..., 1] ** 2)):
        # The two of a pair are independent: uncorrelated, and so are their squares (a shared radius would not be).
        assert abs(float(torch.corrcoef(torch.stack([first.flatten(), second.flatten()]))[0, 1])) < 0.01
    u = hash_uniform(seeds, index, 0)
    assert float(u.min()) > 0 and float(u.max()) < 1 and abs(float(u.mean()) - 0.5) < 0.005
    assert torch.equal(pairs, hash_normals(seeds, index, 1))  # replay
    assert float((n[0] - n[1]).abs().mean()) > 0.5  # seeds differ, noise differs
    assert abs(float(torch.corrcoef(torch.stack([n[0], n[1]]))[0, 1])) < 0.01


def test_normal_field_lays_pairs_along_rows() -> None:
    """Pixels 2k, 2k + 1 of a row: the pair of counter (c H + y) W' + k, W' = ceil(W / 2); an odd width drops the
    last one; shared samples have one field for every channel."""
    seed = torch.tensor([3.0, 4.0]).view(2, 1, 1, 1)
    field = normal_field(seed, (2, 3, 4, 5), torch.tensor([False, True]), 1)
    pairs = hash_normals(seed, torch.arange(3 * 4 * 3, dtype=torch.int32).view(1, 3, 4, 3), 1)
    assert torch.equal(field[0], pairs[0].flatten(-2)[..., :5])
    assert torch.equal(field[1, 1], field[1, 0]) and torch.equal(field[1, 0], pairs[1, 0].flatten(-2)[..., :5])


def test_sensor_noise_std_and_grey_samples() -> None:
    """Additive std s on mid grey: measured std s; shot noise k: std k * sqrt(x); grey samples stay grey."""
    x = torch.full((3, 3, 64, 64), 0.5)
    std = torch.tensor([0.05, 0.0, 0.05])
    shot = torch.tensor([0.0, 0.2, 0.0])
    out = sensor_noise(x, std, shot, torch.tensor([1.0, 2.0, 3.0]), torch.tensor([False, False, True]))
    assert abs(float((out[0] - 0.5).std()) - 0.05) < 0.002 and abs(float((out[0] - 0.5).mean())) < 0.002
    assert abs(float((out[1] - 0.5).std()) - 0.2 * 0.5 ** 0.5) < 0.004
    assert torch.equal(out[2, 0], out[2, 1]) and torch.equal(out[2, 1], out[2, 2])
    assert not torch.equal(out[0, 0], out[0, 1])
    same = sensor_noise(x, torch.zeros(3), torch.zeros(3), torch.zeros(3), torch.zeros(3, dtype=torch.bool))
    assert torch.equal(same, x)


def _occluder(cx: float, cy: float, hw: float, hh: float, angle: float = 0.0, ellipse: bool = False) -> torch.Tensor:
    occ = torch.zeros(1, 1, len(OCCLUDER_COLUMNS))
    for name, value in (("active", 1.0), ("ellipse", float(ellipse)), ("cx", cx), ("cy", cy), ("half_w", hw),
                        ("half_h", hh), ("angle", angle)):
        occ[0, 0, OCC[name]] = value
    return occ


def _coverage(occ: torch.Tensor, size: int = 21) -> torch.Tensor:
    v, u = torch.meshgrid(torch.arange(size).float(), torch.arange(size).float(), indexing="ij")
    return covers(occluder_table(occ), u.reshape(1, -1), v.reshape(1, -1)).view(size, size)


def test_occluder_coverage_by_hand() -> None:
    """Edges are inclusive and pixel centres sit at integers: a rectangle of half sides 3 around pixel (10, 10)
    covers the 7 x 7 pixels 7..13; a circle of radius 3 the 29 lattice points within 3 of its centre; a
    rectangle turned 90 degrees (clockwise on screen) swaps its sides."""
    rect = _coverage(_occluder(10, 10, 3, 3))
    expected = torch.zeros(21, 21, dtype=torch.bool)
    expected[7:14, 7:14] = True
    assert torch.equal(rect, expected)
    assert int(_coverage(_occluder(10, 10, 3, 3, ellipse=True)).sum()) == 29
    turned = _coverage(_occluder(10, 10, 3.5, 1.5, angle=torch.pi / 2))  # edges between pixel centres
    expected = torch.zeros(21, 21, dtype=torch.bool)
    expected[7:14, 9:12] = True
    assert torch.equal(turned, expected)


def test_occluded_uses_the_landmark_pixel() -> None:
    """A landmark is occluded when the pixel it falls in is covered: (6.6, 10) falls in pixel 7 (covered),
    (6.4, 10) in pixel 6 (not); outside the image, never."""
    occ = _occluder(10, 10, 3, 3)
    points = torch.tensor([[[6.6, 10.0], [6.4, 10.0], [13.4, 13.4], [13.6, 10.0], [float("nan"), 10.0]]])
    assert occluded(occ, points, 21).tolist() == [[True, False, True, False, False]]
    assert occluded(_occluder(0, 0, 3, 3), torch.tensor([[[-0.6, 0.0], [-0.4, 0.0]]]), 21).tolist() == [[False, True]]
    assert occluded(_occluder(20, 9, 3, 3), torch.tensor([[[20.6, 9.0], [20.4, 9.0]]]), 21).tolist() == [[False, True]]
