"""Draw docs/camera_ops.png: the same frames under each camera op alone (one row per op, p = 1), then the webcam
preset; occluded landmarks hollow. Usage: python scripts/camera_ops_figure.py [out.png]"""

from __future__ import annotations

import sys
import tempfile
from dataclasses import replace
from pathlib import Path

import torch
from PIL import Image, ImageDraw, ImageFont

from gpuaug import AugmentConfig, FaceAugment, FaceFrames, collate, recipes
from gpuaug.preview import tile
from gpuaug.synth import write_dataset

ROWS = {
    "none": {},
    "gamma": dict(gamma_p=1.0, gamma=(0.4, 2.5)),
    "occluders": dict(occluder_p=1.0, occluder_max=2, occluder_size=(0.25, 0.5)),
    "blur": dict(blur_p=1.0, blur_sigma=(1.0, 2.5)),
    "motion blur": dict(motion_blur_p=1.0, motion_blur_length=(7.0, 13.0)),
    "low res": dict(low_res_p=1.0, low_res=(0.2, 0.4)),
    "noise": dict(noise_p=1.0, noise_std=(0.03, 0.08), shot_noise_p=1.0, shot_noise=(0.05, 0.15)),
    "jpeg": dict(jpeg_p=1.0, jpeg_quality=(8, 20)),
}
COLUMNS = 4
#: Width of the row-label column and the labels' font size, pixels (legible at the docs' page width).
LABEL_WIDTH, FONT_SIZE = 210, 30


def main() -> None:
    out = Path(sys.argv[1] if len(sys.argv) > 1 else "docs/camera_ops.png")
    with tempfile.TemporaryDirectory() as tmp:
        write_dataset(tmp, videos=3, frames=2, seed=0)
        frames = FaceFrames(tmp)
        batch = collate([frames[i] for i in range(COLUMNS)])
    base = AugmentConfig(grayscale_p=0.0, max_rotation=10.0)
    configs = {name: replace(base, **ops) for name, ops in ROWS.items()}
    configs["webcam preset"] = recipes.webcam(grayscale_p=0.0)
    images, labels, occluded = [], {k: [] for k in ("landmarks2d", "head_pose", "gaze")}, []
    for config in configs.values():
        result = FaceAugment(config)(batch, torch.Generator().manual_seed(1))  # same geometry on every row
        images += list((result.images.clamp(0, 1) * 255).round().byte().permute(0, 2, 3, 1).numpy())
        for key in labels:
            labels[key].append(getattr(result, key))
        occluded.append(result.occluded)
    stacked = {key: torch.cat(values).numpy() for key, values in labels.items()}
    grid = tile(images, stacked["landmarks2d"], stacked["head_pose"], stacked["gaze"], None, zoom=1.5,
                columns=COLUMNS, occluded=torch.cat(occluded).numpy())
    sheet = Image.new("RGB", (LABEL_WIDTH + grid.width, grid.height), (255, 255, 255))
    sheet.paste(grid, (LABEL_WIDTH, 0))
    draw, font = ImageDraw.Draw(sheet), ImageFont.load_default(size=FONT_SIZE)
    row = grid.height / len(configs)
    for i, name in enumerate(configs):
        draw.text((LABEL_WIDTH - 12, (i + 0.5) * row), name.replace(" ", "\n", 1) if len(name) > 10 else name,
                  fill=(0, 0, 0), font=font, anchor="rm", align="right")
    sheet.save(out)
    print(f"wrote {out} ({sheet.width} x {sheet.height})")


if __name__ == "__main__":
    main()
