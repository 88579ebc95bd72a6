"""Every figure of the documentation, from the bundled synthetic data: ``python docs/figures.py [OUT_DIR]``
(``make figures``; OUT_DIR defaults to ``docs/figures``).

- ``preview.png``, ``preview_source.png``: ``python -m gpuaug preview`` of the synthetic data set that
  ``make demo`` writes (6 videos x 32 frames, seed 0): 16 augmented crops, and their source frames.
- ``clips.png``, ``clips_source.png``: the same with ``--clips 8 --step 2 --drift 0.5 --count 3``.
- ``aug_<op>.png``: one augmentation at a time on one frame, before and after, labels drawn.
- ``pose_signs.png``, ``gaze_signs.png``, ``flip_table.png``, ``pixel_grid.png``, ``pose_rule.png``: the
  conventions.

Everything is drawn with the preview's colours (:mod:`gpuaug.preview`): landmarks red on the face's left
half, blue on its right, yellow on the midline; pose axes from the nose tip (head x red, y green, forward
blue); the gaze cyan. The speed and training plots are not drawn here: they are measurements, committed
with their runs in ``bench/results/``.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from dataclasses import fields, replace
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageDraw

from gpuaug import AugmentConfig, AugmentParams, FaceAugment, FaceFrames, FaceSample, collate
from gpuaug.cli import main as gpuaug_cli
from gpuaug.labels.flip_tables import FLIP_TABLES, flip_side
from gpuaug.preview import SIDE_COLOUR, draw_labels, pose_caption, tile
from gpuaug.synth.face_model import fit_similarity, project
from gpuaug.synth.render import draw_face
from gpuaug.synth.write import gaze_from_pose

SEED = 0
#: Which frame of the synthetic data set the augmentation figures show (a nearly frontal one, 200x200).
FRAME = 38
#: The "before" framing of the augmentation figures: identity params with the default margin's middle.
BASE_MARGIN = 0.1
#: (file stem, what changes, columns as (caption, params field values)).
OPS: list[tuple[str, list[tuple[str, dict]]]] = [
    ("brightness", [("brightness x0.6", {"brightness": 0.6}), ("brightness x1.4", {"brightness": 1.4})]),
    ("contrast", [("contrast x0.6", {"contrast": 0.6}), ("contrast x1.4", {"contrast": 1.4})]),
    ("saturation", [("saturation x0.3", {"saturation": 0.3}), ("saturation x1.6", {"saturation": 1.6})]),
    ("hue", [("hue -0.1 turn", {"hue": -0.1}), ("hue +0.1 turn", {"hue": 0.1})]),
    ("grayscale", [("grey", {"gray": True})]),
    ("crop_margin", [("margin 0.0", {"margin": 0.0}), ("margin 0.2", {"margin": 0.2})]),
    ("shift", [("shift x +0.125", {"shift": (0.125, 0.0)}), ("shift y +0.125", {"shift": (0.0, 0.125)})]),
    ("rotation", [("angle -15", {"angle": -15.0}), ("angle +15", {"angle": 15.0})]),
    ("scale", [("scale 0.8", {"scale": 0.8}), ("scale 1.25", {"scale": 1.25})]),
    ("flip", [("flip", {"flip": True}), ("flip, angle +15", {"flip": True, "angle": 15.0})]),
]


def save(img: Image.Image, path: Path) -> None:
    img.save(path)
    print(f"wrote {path}")


def caption(draw: ImageDraw.ImageDraw, xy: tuple[float, float], text: str, colour=(255, 255, 255)) -> None:
    """``text`` on a dark box, readable over any picture."""
    draw.rectangle(draw.textbbox(xy, text), fill=(0, 0, 0))
    draw.text(xy, text, fill=colour)


def params_for(columns: list[dict], margin: float = BASE_MARGIN) -> AugmentParams:
    """Identity params (crop ``margin``) for the before column, then one column per dict of field values."""
    identity = AugmentParams.identity(1 + len(columns), margin=margin)
    # identity() hands several fields one shared tensor (angle and hue, scale and the colour factors): copy
    # each before writing into it.
    base = replace(identity, **{f.name: getattr(identity, f.name).clone() for f in fields(identity)})
    for i, values in enumerate(columns, start=1):
        for name, value in values.items():
            getattr(base, name)[i] = torch.as_tensor(value)
    return base


def augmentation_figures(frames: FaceFrames, out: Path) -> None:
    """``aug_<op>.png``: frame :data:`FRAME` before (identity params) and after each op, labels drawn."""
    sample = frames[FRAME]
    aug = FaceAugment(AugmentConfig(grayscale_p=0.0))  # 3 output channels, so colour ops show
    for name, columns in OPS:
        params = params_for([values for _, values in columns])
        res = aug.apply(collate([sample] * len(params)), params)
        images = (res.images.clamp(0, 1) * 255).round().to(torch.uint8).permute(0, 2, 3, 1).numpy()
        poses = res.head_pose.numpy()
        captions = [f"before  {pose_caption(poses[0])}"]
        captions += [f"{text}  {pose_caption(p)}" for (text, _), p in zip(columns, poses[1:], strict=True)]
        sheet = tile(list(images), res.landmarks2d.numpy(), poses, res.gaze.numpy(), res.bbox.numpy(), captions,
                     zoom=2.0, columns=len(images))
        save(sheet, out / f"aug_{name}.png")


def posed_sample(pose: tuple[float, float, float], gaze: np.ndarray | None = None, size: int = 200) -> FaceSample:
    """A synthetic face with head pose ``pose`` (degrees) centred in a plain ``size`` square frame; gaze
    straight ahead of the head unless given ([x right, y up, z toward the camera])."""
    head = np.array([pose], dtype=np.float64)
    lm3d = project(torch.from_numpy(head), torch.tensor([size / 190.0], dtype=torch.float64),
                   torch.tensor([[size / 2, size / 2]], dtype=torch.float64))[0].numpy()
    gaze = gaze_from_pose(head, np.zeros((1, 2)))[0] if gaze is None else np.asarray(gaze, dtype=np.float64)
    img = Image.new("RGB", (size, size), (70, 80, 90))
    draw_face(img, lm3d[:, :2], gaze, (220, 170, 130))
    lo, hi = lm3d[:, :2].min(0), lm3d[:, :2].max(0)
    f32 = np.float32
    return FaceSample(np.asarray(img), np.concatenate([lo, hi]).astype(f32), lm3d[:, :2].astype(f32),
                      lm3d.astype(f32), np.asarray(pose, f32), gaze.astype(f32), (0, 0))


def sheet_of(samples: list[FaceSample], captions: list[str]) -> Image.Image:
    """Samples drawn with their own labels (no augmentation), one row."""
    return tile([s.image for s in samples], np.stack([s.landmarks2d for s in samples]),
                np.stack([s.head_pose for s in samples]), np.stack([s.gaze for s in samples]), None, captions,
                zoom=1.0, columns=len(samples))


def pose_figures(out: Path) -> None:
    """``pose_signs.png``: each angle alone, both signs; ``gaze_signs.png``: a frontal head looking around."""
    poses = [(0, 0, 0), (30, 0, 0), (-30, 0, 0), (0, 20, 0), (0, -20, 0), (0, 0, 20), (0, 0, -20)]
    names = ["frontal", "yaw +30", "yaw -30", "pitch +20", "pitch -20", "roll +20", "roll -20"]
    save(sheet_of([posed_sample(p) for p in poses], names), out / "pose_signs.png")
    gazes = [(0.0, 0.0, 1.0), (0.5, 0.0, 1.0), (-0.5, 0.0, 1.0), (0.0, 0.5, 1.0), (0.0, -0.5, 1.0)]
    names = ["gaze ahead", "gaze x +0.5", "gaze x -0.5", "gaze y +0.5", "gaze y -0.5"]
    save(sheet_of([posed_sample((0, 0, 0), np.array(g)) for g in gazes], names), out / "gaze_signs.png")


#: Points whose index the flip-table figure writes next to them.
NUMBERED = (0, 8, 16, 17, 21, 22, 26, 30, 31, 35, 36, 39, 42, 45, 48, 54)


def _draw_points(img: Image.Image, points: np.ndarray, index_of: np.ndarray, text: str) -> None:
    """Points coloured by the side their *index* belongs to; the numbers of :data:`NUMBERED` written."""
    draw = ImageDraw.Draw(img)
    for pos, i in enumerate(index_of):
        x, y = points[pos]
        draw.ellipse((x - 4, y - 4, x + 4, y + 4), fill=SIDE_COLOUR[flip_side("ibug68")[int(i)]])
        if int(i) in NUMBERED:
            draw.text((x + 5, y - 12), str(int(i)), fill=(255, 255, 255))
    caption(draw, (8, 8), text)


def flip_table_figure(out: Path) -> None:
    """``flip_table.png``: a turned face, its mirror re-indexed with the iBUG table, and the mirror without."""
    size = 360
    pts = project(torch.tensor([[25.0, 10.0, 0.0]], dtype=torch.float64), torch.tensor([size / 200.0],
                  dtype=torch.float64), torch.tensor([[size / 2, size / 2]], dtype=torch.float64))[0, :, :2].numpy()
    mirrored = pts * np.array([-1.0, 1.0]) + np.array([size - 1.0, 0.0])  # x -> S - 1 - x
    table = np.array(FLIP_TABLES["ibug68"])
    panels = [
        (pts, np.arange(68), "source (yaw +25)"),
        (mirrored[table], np.arange(68), "flipped, re-indexed: point i = mirror of table[i]"),
        (mirrored, np.arange(68), "flipped, NOT re-indexed (wrong)"),
    ]
    sheet = Image.new("RGB", (3 * size + 8, size), (32, 32, 32))
    for k, (points, index_of, text) in enumerate(panels):
        panel = Image.new("RGB", (size, size), (60, 60, 70))
        _draw_points(panel, points, index_of, text)
        sheet.paste(panel, (k * (size + 4), 0))
    save(sheet, out / "flip_table.png")


def pixel_grid_figure(out: Path) -> None:
    """``pixel_grid.png``: a 4-pixel output, pixel centres at integers, the image spanning [-0.5, 3.5]."""
    s, cell, pad = 4, 90, 70
    img = Image.new("RGB", (2 * pad + s * cell, 2 * pad + s * cell), (250, 250, 250))
    draw = ImageDraw.Draw(img)

    def at(v: float) -> float:  # pixel coordinate -> canvas position (pixel i spans [i - 0.5, i + 0.5])
        return pad + (v + 0.5) * cell

    for y in range(s):
        for x in range(s):
            draw.rectangle((at(x - 0.5), at(y - 0.5), at(x + 0.5), at(y + 0.5)), outline=(120, 120, 120),
                           fill=(225, 235, 250) if (x + y) % 2 else (245, 245, 250))
            draw.ellipse((at(x) - 4, at(y) - 4, at(x) + 4, at(y) + 4), fill=(200, 40, 40))
            draw.text((at(x) + 6, at(y) + 4), f"({x},{y})", fill=(40, 40, 40))
    c = (s - 1) / 2
    draw.line((at(c) - 10, at(c), at(c) + 10, at(c)), fill=(0, 120, 0), width=3)
    draw.line((at(c), at(c) - 10, at(c), at(c) + 10), fill=(0, 120, 0), width=3)
    draw.text((at(c) + 6, at(c) - 16), "centre (S-1)/2 = 1.5", fill=(0, 110, 0))
    for v in (-0.5, s - 0.5):
        draw.line((at(v), pad - 12, at(v), pad - 2), fill=(0, 0, 0), width=2)
        draw.text((at(v) - 12, pad - 28), f"x={v:g}", fill=(0, 0, 0))
        draw.line((pad - 12, at(v), pad - 2, at(v)), fill=(0, 0, 0), width=2)
        draw.text((4, at(v) - 6), f"y={v:g}", fill=(0, 0, 0))
    draw.text((pad, 2 * pad + s * cell - 40), f"S = {s}: (x, y) = (column, row), centres at integers; "
              f"the image spans [-0.5, {s - 0.5}]", fill=(0, 0, 0))
    save(img, out / "pixel_grid.png")


def pose_rule_figure(out: Path) -> None:
    """``pose_rule.png``: a turned, pitched head rotated in the image plane by 30 degrees; the mean face
    re-projected with gpuaug's output pose, and with the pose that ``roll += angle`` gives, each fitted to
    the output landmarks by scale and shift only."""
    sample = posed_sample((35.0, 20.0, 0.0), size=240)
    params = params_for([{"angle": 30.0}], margin=0.4)
    res = FaceAugment(AugmentConfig(grayscale_p=0.0)).apply(collate([sample] * 2), params)
    image = (res.images[1].clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 0).numpy()
    target = res.landmarks2d[1:2].double()
    seed_pose = torch.from_numpy(sample.head_pose).double() + torch.tensor([0.0, 0.0, 30.0], dtype=torch.float64)
    rules = [("gpuaug's pose", res.head_pose[1].double(), (0, 220, 0)), ("roll += angle", seed_pose, (255, 0, 255))]
    zoom, panels = 2.0, []
    for name, pose, colour in rules:
        fitted = fit_similarity(project(pose[None], torch.ones(1, dtype=torch.float64), torch.zeros(1, 2,
                                dtype=torch.float64))[..., :2], target)[0].numpy()
        miss = np.linalg.norm(fitted - target[0].numpy(), axis=1).mean()
        iod = np.linalg.norm(target[0, 36].numpy() - target[0, 45].numpy())
        pic = Image.fromarray(image).resize((round(128 * zoom),) * 2, Image.Resampling.NEAREST)
        draw_labels(pic, res.landmarks2d[1].numpy(), res.head_pose[1].numpy(), res.gaze[1].numpy(), zoom=zoom)
        draw = ImageDraw.Draw(pic)
        for x, y in (fitted + 0.5) * zoom:
            draw.ellipse((x - 3, y - 3, x + 3, y + 3), outline=colour, width=2)
        caption(draw, (4, 4), f"{name}: {pose_caption(pose.numpy())}")
        caption(draw, (4, 18), f"mean face re-projected: off by {100 * miss / iod:.1f}% IOD", colour)
        panels.append(pic)
    sheet = Image.new("RGB", (2 * panels[0].width + 4, panels[0].height), (32, 32, 32))
    for k, pic in enumerate(panels):
        sheet.paste(pic, (k * (pic.width + 4), 0))
    save(sheet, out / "pose_rule.png")


def audit_figure(data: Path, out: Path) -> None:
    """The audit's contact sheet for the pose check, on a copy of the data with the yaw's sign flipped on the
    most turned frame of each video and one video's landmarks swapped left for right on a frame."""
    from gpuaug.audit.report import contact_sheet
    from gpuaug.audit.run import score_frames

    planted = data.parent / "planted"
    shutil.copytree(data, planted)
    for i, path in enumerate(sorted(planted.glob("*.npz"))):
        arrays = dict(np.load(path))
        f = int(np.argmax(np.abs(arrays["headPose"][0])))
        arrays["headPose"][0, f] *= -1
        if i == 0:
            for key in ("landmarks2D", "landmarks3D"):
                arrays[key][..., 5] = arrays[key][list(FLIP_TABLES["ibug68"]), :, 5]
        np.savez(path, **arrays)
    frames = FaceFrames(planted, progress=False)
    contact_sheet(frames, score_frames(frames, progress=False), "pose", out / "audit_pose.png", worst=8)


def main(out_dir: str = "docs/figures") -> None:
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        data = Path(tmp) / "data"
        gpuaug_cli(["synth", str(data), "--frames", "32", "--seed", str(SEED)])  # make demo's data set
        gpuaug_cli(["preview", str(data), "--out", str(out / "preview.png"), "--seed", str(SEED)])
        gpuaug_cli(["preview", str(data), "--clips", "8", "--step", "2", "--drift", "0.5", "--count", "3",
                    "--out", str(out / "clips.png"), "--seed", str(SEED)])
        augmentation_figures(FaceFrames(data, progress=False), out)
        audit_figure(data, out)
    pose_figures(out)
    flip_table_figure(out)
    pixel_grid_figure(out)
    pose_rule_figure(out)


if __name__ == "__main__":
    main(*sys.argv[1:2])
