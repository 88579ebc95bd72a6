"""Draw a face from posed 68 landmarks over a textured background (PIL), pupils placed by the gaze."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

_JAW, _BROWS = range(0, 17), (range(17, 22), range(22, 27))
_EYES = (range(36, 42), range(42, 48))
_NOSE_BRIDGE, _NOSE_BASE = range(27, 31), range(31, 36)
_OUTER_LIPS, _INNER_LIPS = range(48, 60), range(60, 68)


def textured_background(height: int, width: int, rng: np.random.Generator) -> Image.Image:
    """Smooth colour blobs plus fine grain: something a face can stand out from."""
    coarse = rng.integers(40, 200, size=(4, 5, 3), dtype=np.uint8)
    img = Image.fromarray(coarse).resize((width, height), Image.Resampling.BICUBIC)
    draw = ImageDraw.Draw(img)
    for _ in range(12):
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        r = rng.uniform(0.03, 0.12) * min(height, width)
        colour = tuple(int(c) for c in rng.integers(30, 220, 3))
        draw.ellipse((x - r, y - r, x + r, y + r), fill=colour)
    img = img.filter(ImageFilter.GaussianBlur(1.5))
    grain = rng.normal(0, 6, size=(height, width, 3))
    return Image.fromarray(np.clip(np.asarray(img, dtype=np.float64) + grain, 0, 255).astype(np.uint8))


def _pts(lm: np.ndarray, idx: range | list[int]) -> list[tuple[float, float]]:
    return [(float(lm[i, 0]), float(lm[i, 1])) for i in idx]


def draw_face(img: Image.Image, landmarks: np.ndarray, gaze: np.ndarray, skin: tuple[int, int, int]) -> None:
    """Draw in place: filled outline, brows, eyes with pupils, nose, lips.

    landmarks (68, 2) pixels; gaze (3,) [x right, y up, z toward camera] moves the pupils.
    """
    lm = landmarks
    draw = ImageDraw.Draw(img)
    up = lm[27] - lm[8]  # chin -> nose bridge: the face's "up" on screen
    forehead = [lm[i] + 0.45 * up for i in reversed(range(17, 27))]
    outline = _pts(lm, _JAW) + [(float(x), float(y)) for x, y in forehead]
    shade = tuple(int(c * 0.7) for c in skin)
    draw.polygon(outline, fill=skin, outline=shade, width=2)
    eye_w = float(np.linalg.norm(lm[39] - lm[36]))
    line_w = max(1, round(eye_w / 6))
    for brow in _BROWS:
        draw.line(_pts(lm, brow), fill=(70, 45, 30), width=line_w + 1, joint="curve")
    g = np.asarray(gaze, dtype=np.float64)
    look = np.array([g[0], -g[1]]) / max(float(np.linalg.norm(g)), 1e-6)  # screen direction of the gaze
    for eye in _EYES:
        draw.polygon(_pts(lm, eye), fill=(245, 245, 240), outline=(60, 40, 30))
        centre = lm[list(eye)].mean(axis=0) + 0.25 * eye_w * look
        for r, colour in ((0.2 * eye_w, (70, 110, 60)), (0.1 * eye_w, (10, 10, 10))):
            draw.ellipse((centre[0] - r, centre[1] - r, centre[0] + r, centre[1] + r), fill=colour)
    draw.line(_pts(lm, _NOSE_BRIDGE), fill=shade, width=line_w)
    draw.line(_pts(lm, _NOSE_BASE), fill=shade, width=line_w)
    draw.polygon(_pts(lm, _OUTER_LIPS), fill=(180, 60, 70), outline=(120, 30, 40))
    draw.polygon(_pts(lm, _INNER_LIPS), fill=(90, 20, 30))
