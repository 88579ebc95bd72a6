"""mmpose's codecs as its data loader runs them: per sample, per keypoint, in numpy (the bench's contender and
the tests' reference for :mod:`gpuaug.targets`).

Written here from mmpose 1.x's source (open-mmlab/mmpose, commit 759b39c, Apache-2.0) without importing it (mmpose
pulls mmcv and mmengine): each function names the one it follows and keeps its arithmetic, rounding and bounds,
loop structure included, because the loop is what the bench measures. Single instance (N = 1), the case of a
face crop. Keypoints (K, 2) in input pixels; visibility (K,).
"""

from __future__ import annotations

import numpy as np


def msra_encode(keypoints: np.ndarray, visible: np.ndarray, input_size: tuple[int, int],
                heatmap_size: tuple[int, int], sigma: float, unbiased: bool) -> tuple[np.ndarray, np.ndarray]:
    """``MSRAHeatmap.encode`` (codecs/msra_heatmap.py): keypoints / (input / heatmap), then
    ``generate_gaussian_heatmaps`` or, unbiased, ``generate_unbiased_gaussian_heatmaps``
    (codecs/utils/gaussian_heatmap.py). -> heatmaps (K, H, W) float32, weights (K,)."""
    scale = (np.array(input_size) / heatmap_size).astype(np.float32)
    mu = keypoints / scale
    return (unbiased_gaussians if unbiased else patch_gaussians)(mu, visible, heatmap_size, sigma, udp=False)


def udp_encode(keypoints: np.ndarray, visible: np.ndarray, input_size: tuple[int, int],
               heatmap_size: tuple[int, int], sigma: float) -> tuple[np.ndarray, np.ndarray]:
    """``UDPHeatmap.encode`` with ``heatmap_type="gaussian"`` (codecs/udp_heatmap.py): keypoints /
    ((input - 1) / (heatmap - 1)), then ``generate_udp_gaussian_heatmaps``."""
    scale = ((np.array(input_size) - 1) / (np.array(heatmap_size) - 1)).astype(np.float32)
    return patch_gaussians(keypoints / scale, visible, heatmap_size, sigma, udp=True)


def patch_gaussians(mu_all: np.ndarray, visible: np.ndarray, heatmap_size: tuple[int, int], sigma: float,
                    udp: bool) -> tuple[np.ndarray, np.ndarray]:
    """``generate_gaussian_heatmaps`` (udp=False) and ``generate_udp_gaussian_heatmaps`` (udp=True): a Gaussian
    on the 3-sigma patch around int(mu + 0.5), centred there (MSRA) or at mu itself (UDP)."""
    w, h = heatmap_size
    maps = np.zeros((len(mu_all), h, w), dtype=np.float32)
    weights = visible.astype(np.float32).copy()
    radius = sigma * 3
    size = 2 * radius + 1
    gx = np.arange(0, size, 1, dtype=np.float32)
    gy = gx[:, None]
    for k, point in enumerate(mu_all):
        if visible[k] < 0.5:
            continue
        centre = (point + 0.5).astype(np.int64)
        left, top = (centre - radius).astype(np.int64)
        right, bottom = (centre + radius + 1).astype(np.int64)
        if left >= w or top >= h or right < 0 or bottom < 0:
            weights[k] = 0
            continue
        x0 = y0 = size // 2
        if udp:
            x0 = x0 + (point[0] - centre[0])
            y0 = y0 + (point[1] - centre[1])
        gaussian = np.exp(-((gx - x0) ** 2 + (gy - y0) ** 2) / (2 * sigma**2))
        gx1, gx2 = max(0, -left), min(w, right) - left
        gy1, gy2 = max(0, -top), min(h, bottom) - top
        hx1, hx2, hy1, hy2 = max(0, left), min(w, right), max(0, top), min(h, bottom)
        region = maps[k, hy1:hy2, hx1:hx2]
        np.maximum(region, gaussian[gy1:gy2, gx1:gx2], out=region)
    return maps, weights


def unbiased_gaussians(mu_all: np.ndarray, visible: np.ndarray, heatmap_size: tuple[int, int], sigma: float,
                       udp: bool = False) -> tuple[np.ndarray, np.ndarray]:
    """``generate_unbiased_gaussian_heatmaps`` (DarkPose): the Gaussian at mu over the whole map; the 3-sigma
    patch only decides whether the keypoint misses the map."""
    w, h = heatmap_size
    maps = np.zeros((len(mu_all), h, w), dtype=np.float32)
    weights = visible.astype(np.float32).copy()
    radius = sigma * 3
    x = np.arange(0, w, 1, dtype=np.float32)
    y = np.arange(0, h, 1, dtype=np.float32)[:, None]
    for k, mu in enumerate(mu_all):
        if visible[k] < 0.5:
            continue
        left, top = mu - radius
        right, bottom = mu + radius + 1
        if left >= w or top >= h or right < 0 or bottom < 0:
            weights[k] = 0
            continue
        gaussian = np.exp(-((x - mu[0]) ** 2 + (y - mu[1]) ** 2) / (2 * sigma**2))
        np.maximum(gaussian, maps[k], out=maps[k])
    return maps, weights


def simcc_encode(keypoints: np.ndarray, visible: np.ndarray, input_size: tuple[int, int], split_ratio: float,
                 sigma: float | tuple[float, float], normalize: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``SimCCLabel._generate_gaussian`` (codecs/simcc_label.py) -> x (K, Wx), y (K, Wy) float32, weights (K,)."""
    sigmas = np.array([sigma, sigma] if np.isscalar(sigma) else sigma)
    w, h = input_size
    lx, ly = np.around(w * split_ratio).astype(int), np.around(h * split_ratio).astype(int)
    bins = np.around(keypoints * split_ratio).astype(np.int64)
    weights = visible.astype(np.float32).copy()
    tx = np.zeros((len(keypoints), lx), dtype=np.float32)
    ty = np.zeros((len(keypoints), ly), dtype=np.float32)
    radius = sigmas * 3
    x = np.arange(0, lx, 1, dtype=np.float32)
    y = np.arange(0, ly, 1, dtype=np.float32)
    for k, mu in enumerate(bins):
        if visible[k] < 0.5:
            continue
        left, top = mu - radius
        right, bottom = mu + radius + 1
        if left >= lx or top >= ly or right < 0 or bottom < 0:
            weights[k] = 0
            continue
        tx[k] = np.exp(-((x - mu[0]) ** 2) / (2 * sigmas[0] ** 2))
        ty[k] = np.exp(-((y - mu[1]) ** 2) / (2 * sigmas[1] ** 2))
    if normalize:
        norm = sigmas * np.sqrt(np.pi * 2)
        tx /= norm[0]
        ty /= norm[1]
    return tx, ty, weights


def heatmap_maximum(heatmaps: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``get_heatmap_maximum`` (codecs/utils/post_processing.py): (K, H, W) -> locs (K, 2), values (K,)."""
    k, h, w = heatmaps.shape
    flat = heatmaps.reshape(k, -1)
    y, x = np.unravel_index(np.argmax(flat, axis=1), shape=(h, w))
    locs = np.stack((x, y), axis=-1).astype(np.float32)
    values = np.amax(flat, axis=1)
    locs[values <= 0.0] = -1
    return locs, values


def modulate(heatmaps: np.ndarray, kernel: int) -> np.ndarray:
    """``gaussian_blur`` (codecs/utils/post_processing.py): zero border, ``cv2.GaussianBlur(k, k, 0)``, rescale
    to the original maximum (in place on a copy)."""
    import cv2

    border = (kernel - 1) // 2
    out = heatmaps.copy()
    k, h, w = out.shape
    for i in range(k):
        peak = np.max(out[i])
        padded = np.zeros((h + 2 * border, w + 2 * border), dtype=np.float32)
        padded[border:-border, border:-border] = out[i]
        padded = cv2.GaussianBlur(padded, (kernel, kernel), 0)
        out[i] = padded[border:-border, border:-border]
        out[i] *= peak / np.max(out[i])
    return out


def refine_quarter(locs: np.ndarray, heatmaps: np.ndarray) -> np.ndarray:
    """``refine_keypoints`` (codecs/utils/refinement.py): a quarter pixel toward the higher neighbour."""
    locs = locs.copy()
    _, h, w = heatmaps.shape
    for k in range(len(locs)):
        x, y = locs[k].astype(int)
        dx = heatmaps[k, y, x + 1] - heatmaps[k, y, x - 1] if 1 < x < w - 1 and 0 < y < h else 0.0
        dy = heatmaps[k, y + 1, x] - heatmaps[k, y - 1, x] if 1 < y < h - 1 and 0 < x < w else 0.0
        locs[k] += np.sign([dx, dy], dtype=np.float32) * 0.25
    return locs


def refine_dark(locs: np.ndarray, heatmaps: np.ndarray, kernel: int) -> np.ndarray:
    """``refine_keypoints_dark`` (codecs/utils/refinement.py): Newton step on the blurred log map."""
    locs = locs.copy()
    _, h, w = heatmaps.shape
    logs = np.log(np.maximum(modulate(heatmaps, kernel), 1e-10))
    for k in range(len(locs)):
        x, y = locs[k].astype(int)
        if not (1 < x < w - 2 and 1 < y < h - 2):
            continue
        m = logs[k]
        dx = 0.5 * (m[y, x + 1] - m[y, x - 1])
        dy = 0.5 * (m[y + 1, x] - m[y - 1, x])
        dxx = 0.25 * (m[y, x + 2] - 2 * m[y, x] + m[y, x - 2])
        dxy = 0.25 * (m[y + 1, x + 1] - m[y - 1, x + 1] - m[y + 1, x - 1] + m[y - 1, x - 1])
        dyy = 0.25 * (m[y + 2, x] - 2 * m[y, x] + m[y - 2, x])
        if dxx * dyy - dxy**2 != 0:
            hessian = np.array([[dxx, dxy], [dxy, dyy]])
            locs[k] += -(np.linalg.inv(hessian) @ np.array([[dx], [dy]]))[:, 0]
    return locs


def refine_dark_udp(locs: np.ndarray, heatmaps: np.ndarray, kernel: int) -> np.ndarray:
    """``refine_keypoints_dark_udp`` (codecs/utils/refinement.py): clipped log map, edge-padded, Newton step with
    the Hessian + float32 eps, read through flat indices as mmpose does."""
    locs = locs.copy()
    k, h, w = heatmaps.shape
    logs = np.log(np.clip(modulate(heatmaps, kernel), 1e-3, 50.0))
    flat = np.pad(logs, ((0, 0), (1, 1), (1, 1)), mode="edge").flatten()
    index = (locs[:, 0] + 1 + (locs[:, 1] + 1) * (w + 2) + (w + 2) * (h + 2) * np.arange(k)).astype(int)[:, None]
    i, ix1, iy1 = flat[index], flat[index + 1], flat[index + w + 2]
    ix1y1, ix1_y1_ = flat[index + w + 3], flat[index - w - 3]
    ix1_, iy1_ = flat[index - 1], flat[index - 2 - w]
    derivative = np.concatenate([0.5 * (ix1 - ix1_), 0.5 * (iy1 - iy1_)], axis=1).reshape(k, 2, 1)
    dxx, dyy = ix1 - 2 * i + ix1_, iy1 - 2 * i + iy1_
    dxy = 0.5 * (ix1y1 - ix1 - iy1 + i + i - ix1_ - iy1_ + ix1_y1_)
    hessian = np.concatenate([dxx, dxy, dxy, dyy], axis=1).reshape(k, 2, 2)
    hessian = np.linalg.inv(hessian + np.finfo(np.float32).eps * np.eye(2))
    locs -= np.einsum("imn,ink->imk", hessian, derivative).squeeze(-1)
    return locs
