"""Window reads (gpuaug/window.py): a batch holding only the part of each frame that the config's draws can
sample renders bit-identical to whole frames, for the draws at the very ends of every range; a window one
pixel short on any side does not. The same for per-draw windows (window.matrix_windows, load/draws.py): the
window of one draw's matrix."""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np
import pytest
import torch
from seed_npz import seed_arrays, write_video

import gpuaug
from gpuaug.backends.torch_backend import render
from gpuaug.batch import FaceBatch
from gpuaug.clip_params import clip_boxes
from gpuaug.load.draws import boxes_only, draw
from gpuaug.load.packed import pack
from gpuaug.params import AugmentParams, sample_params
from gpuaug.window import ReadWindow, matrix_windows, reach, read_windows

SIZES = [(48, 64), (60, 80), (72, 56)]  # three frame sizes: a ragged batch
#: The default ranges, and wide ones: rotation past 45 degrees, negative margin, zoom out and in, big shifts.
CONFIGS = {
    "default": gpuaug.AugmentConfig(out_size=24, grayscale_p=0.0),
    "wide": gpuaug.AugmentConfig(out_size=24, grayscale_p=0.0, crop_margin=(-0.2, 0.4), max_rotation=60.0,
                                 max_shift=0.3, scale=(0.7, 1.3)),
}
T = 3  # clip length


def _boxes(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """(6, 4) small boxes [x0, y0, x1, y1] inside an (H, W) frame: two anywhere, then touching the left, top,
    right and bottom edges (their windows are cut by the frame)."""
    h, w = size
    side = rng.uniform(0.12, 0.2, 6) * min(h, w)
    x0, y0 = rng.uniform(0, w - side), rng.uniform(0, h - side)
    x0[2], y0[3], x0[4], y0[5] = 0.3, 0.4, w - 1.2 - side[4], h - 1.3 - side[5]
    return np.stack([x0, y0, x0 + side, y0 + side], 1)


@pytest.fixture(scope="module")
def data(tmp_path_factory) -> dict[str, gpuaug.FaceFrames]:
    """The same noise videos (small faces, some at the frame edge) as npz and packed."""
    root = tmp_path_factory.mktemp("windows")
    rng = np.random.default_rng(5)
    for v, size in enumerate(SIZES):
        arrays = seed_arrays(6, size, seed=v)
        box = _boxes(size, rng)  # (N, 4)
        corners = [box[:, [0, 1]], box[:, [0, 3]], box[:, [2, 1]], box[:, [2, 3]]]  # TL, BL, TR, BR
        arrays["boundingBox"] = np.stack([c.T for c in corners]).astype(np.float32)  # (4, 2, N)
        inside = box[None, :, :2] + (box[None, :, 2:] - box[None, :, :2]) * rng.uniform(0, 1, (68, 6, 1))
        arrays["landmarks2D"] = inside.transpose(0, 2, 1).astype(np.float32)  # (68, 2, N)
        arrays["landmarks3D"][:, :2] = arrays["landmarks2D"]
        write_video(root / "npz" / f"v{v}.npz", arrays)
    pack(root / "npz", root / "packed", progress=False)
    return {"npz": gpuaug.FaceFrames(root / "npz"), "packed": gpuaug.FaceFrames(root / "packed")}


def extreme_params(config: gpuaug.AugmentConfig, n: int, train: bool) -> AugmentParams:
    """Params for n samples at every corner of the config's ranges (largest margin, smallest zoom, shift
    (+-max, +-max), angle +-min(max, 45) and +max, mirrored or not), as (corners * n) rows, corner-major;
    ``train=False``: the eval framing."""
    if not train:
        return sample_params(config, n, train=False)
    turn = min(config.max_rotation, 45.0)
    corners = [(sx, sy, a, f) for sx in (-1, 1) for sy in (-1, 1) for a in (-turn, turn, config.max_rotation)
               for f in (False, True)]
    m = len(corners) * n
    s = config.max_shift
    return replace(
        AugmentParams.identity(m),  # colour and camera ops at their identity
        margin=torch.full((m,), config.crop_margin[1]),
        shift=torch.tensor([[sx * s, sy * s] for sx, sy, _, _ in corners]).repeat_interleave(n, 0),
        angle=torch.tensor([a for _, _, a, _ in corners]).repeat_interleave(n),
        scale=torch.full((m,), config.scale[0]),
        flip=torch.tensor([f for _, _, _, f in corners]).repeat_interleave(n))


def _tiled(batch: FaceBatch, times: int) -> FaceBatch:
    """``batch``'s samples ``times`` over (sharing its pixels)."""
    return batch.select(torch.arange(len(batch)).repeat(times))


def _renders(whole: FaceBatch, windowed: FaceBatch, params: AugmentParams, config: gpuaug.AugmentConfig,
             boxes: torch.Tensor | None = None, warp: str = "gather") -> tuple[torch.Tensor, torch.Tensor]:
    times = len(params) // len(whole)
    whole, windowed = _tiled(whole, times), _tiled(windowed, times)
    box = whole.bbox if boxes is None else boxes.repeat(times, 1)
    aug = gpuaug.FaceAugment(config)
    matrix = aug.matrix(whole, params, box)
    return render(whole, matrix, params, config, warp), render(windowed, matrix, params, config, warp)


def test_reach_by_hand() -> None:
    """Default ranges: (1 + 2 * 0.2) * ((127 / 256) * (cos 15 + sin 15) / 1 + 0.125); eval: 1.2 * 127 / 256."""
    c = gpuaug.AugmentConfig()
    turn = math.cos(math.radians(15)) + math.sin(math.radians(15))
    assert reach(c) == pytest.approx(1.4 * (127 / 256 * turn + 0.125), rel=1e-12)
    assert reach(c, train=False) == pytest.approx(1.2 * 127 / 256, rel=1e-12)
    assert reach(replace(c, max_rotation=80)) == reach(replace(c, max_rotation=45))  # 45 degrees is the widest


def test_windows_by_hand() -> None:
    """A 10 x 20 box centred at (50, 40) with reach 1 (half side 20 + 0.05 slack): columns floor(29.95) = 29 ..
    floor(70.05) + 1 = 71, rows 19 .. 61, clamped to the frame; a non-finite box gets the whole frame."""
    boxes = torch.tensor([[45.0, 30.0, 55.0, 50.0], [45.0, 30.0, 55.0, 50.0], [float("nan"), 0, 1, 1]])
    sizes = np.array([[100, 100], [45, 60], [7, 9]])
    assert read_windows(boxes, sizes, 1.0).tolist() == [[19, 29, 43, 43], [19, 29, 26, 31], [0, 0, 7, 9]]


@pytest.mark.parametrize("source", ["packed", "npz"])
@pytest.mark.parametrize("config", list(CONFIGS), ids=list(CONFIGS))
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_windowed_batch_renders_as_whole_frames(data, source: str, config: str, train: bool) -> None:
    """Every corner of the ranges (rotation up to the limit, faces at the frame edges), three frame sizes:
    the windowed batch renders bit-identical to the ragged and the padded whole-frame batches, with the
    reference gather and the kornia reference, while holding fewer bytes."""
    frames, cfg = data[source], CONFIGS[config]
    idx = np.arange(len(frames))
    whole = frames.batch(idx)
    windowed = frames.batch(idx, window=ReadWindow(cfg, train))
    assert isinstance(windowed, gpuaug.batch.WindowedBatch)
    assert windowed.pixels.numel() < 0.8 * whole.pixels.numel()
    assert (windowed.windows[:, 2:] < windowed.sizes).any(1).all()  # every window cuts something
    params = extreme_params(cfg, len(whole), train)
    a, b = _renders(whole, windowed, params, cfg)
    assert torch.equal(a, b)
    assert a.abs().sum() > 0
    padded = gpuaug.collate(whole, layout="padded")
    assert torch.equal(_renders(padded, windowed, params, cfg)[0], b)
    assert torch.equal(*_renders(whole, windowed, params, cfg, warp="kornia"))


@pytest.mark.parametrize("crop", ["mean", "union", "frame"])
def test_clip_windows_render_as_whole_clips(data, crop: str) -> None:
    """Clips: windows around the clip's box (clip_boxes), every corner of the ranges, packed."""
    cfg = CONFIGS["wide"]
    clips = gpuaug.FaceClips(data["packed"], T)
    ids = np.arange(len(clips))
    whole, windowed = clips.batch(ids), clips.batch(ids, window=ReadWindow(cfg, clip_length=T, crop=crop))
    clip_aug = gpuaug.ClipAugment(gpuaug.FaceAugment(cfg), T, crop=crop)
    params = extreme_params(cfg, len(whole), True)
    assert torch.equal(*_renders(whole, windowed, params, cfg, clip_boxes(whole.bbox, T, crop)))
    # The boxes the render crops around are ClipAugment's own.
    one = gpuaug.params.sample_params(cfg, len(whole), torch.Generator().manual_seed(0))
    assert torch.equal(clip_aug.matrix(whole, one), clip_aug.aug.matrix(whole, one, clip_boxes(whole.bbox, T, crop)))


def _shrunk(window: ReadWindow, side: int):
    """``window`` with one more pixel cut off ``side`` (0 top, 1 left, 2 bottom, 3 right) where the frame did
    not cut it already."""
    def read(bbox: torch.Tensor, sizes: np.ndarray) -> np.ndarray:
        w = window(bbox, sizes).copy()
        if side < 2:
            w[:, side] += 1
            w[:, side + 2] -= 1
        else:
            w[:, side] -= 1
        return w
    return read


@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
@pytest.mark.parametrize("side", range(4), ids=["top", "left", "bottom", "right"])
def test_a_window_one_pixel_short_changes_the_output(data, train: bool, side: int) -> None:
    """The windows are tight: cut one pixel off any side and the extreme draws read bytes that are not the
    frame's (so the tests above would catch a window one pixel short)."""
    frames, cfg = data["packed"], CONFIGS["default"]
    idx = np.arange(len(frames))
    whole = frames.batch(idx)
    short = frames.batch(idx, window=_shrunk(ReadWindow(cfg, train), side))
    a, b = _renders(whole, short, extreme_params(cfg, len(whole), train), cfg)
    assert not torch.equal(a, b)


def test_augment_step_and_labels(data) -> None:
    """The whole FaceAugment step (the compiled CPU render) on a windowed batch: images and every label equal
    the whole-frame step's for the same seed; a windowed batch's frame() is the frame inside its window."""
    frames, cfg = data["packed"], CONFIGS["default"]
    idx = np.arange(len(frames))
    whole, windowed = frames.batch(idx), frames.batch(idx, window=ReadWindow(cfg))
    aug = gpuaug.FaceAugment(cfg)
    a = aug(whole, torch.Generator().manual_seed(0))
    b = aug(windowed, torch.Generator().manual_seed(0))
    for name in ("images", "bbox", "landmarks2d", "landmarks3d", "head_pose", "gaze", "visible", "matrix"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    top, left, h, w = windowed.windows[0].tolist()
    frame = windowed.frame(0)
    assert torch.equal(frame[top:top + h, left:left + w], whole.frame(0)[top:top + h, left:left + w])
    assert frame.sum() == frame[top:top + h, left:left + w].sum()  # zeros outside the window


@pytest.mark.parametrize("grayscale_p", [0.0, 1.0], ids=["colour", "grey"])
def test_dali_backend_renders_windows_as_whole_frames(data, grayscale_p: float) -> None:
    """The DALI backend gets each windowed frame whole again, zeros outside the window (taps there weigh 0):
    the same output as from whole frames, at every corner of the ranges."""
    pytest.importorskip("nvidia.dali", reason="NVIDIA DALI is not installed (pip install nvidia-dali-cuda120)")
    frames, cfg = data["packed"], replace(CONFIGS["wide"], grayscale_p=grayscale_p)
    idx = np.arange(len(frames))
    whole, windowed = frames.batch(idx), frames.batch(idx, window=ReadWindow(cfg))
    params = extreme_params(cfg, len(whole), True)
    times = len(params) // len(whole)
    aug = gpuaug.FaceAugment(cfg, backend="dali")
    a, b = (aug.apply(_tiled(batch, times), params).images for batch in (whole, windowed))
    assert torch.equal(a, b)


# --- per-draw windows -------------------------------------------------------------------------------------------

#: Every camera op on, occluders of every fill ("texture" shows another sample's tile): they act on the output
#: tile only, so they need no source pixel beyond the draw's window.
CAMERA = replace(CONFIGS["wide"], gamma_p=0.5, occluder_p=1.0, occluder_max=2, blur_p=0.5, motion_blur_p=0.5,
                 low_res_p=0.5, noise_p=0.5, shot_noise_p=0.5, jpeg_p=0.5)


def _draw_windowed(frames: gpuaug.FaceFrames, params: AugmentParams, config: gpuaug.AugmentConfig,
                   shrink: int | None = None) -> tuple[FaceBatch, FaceBatch]:
    """Every frame ``len(params) / len(frames)`` times over, whole and read through the per-draw windows of
    ``params`` (``shrink``: one more pixel cut off that side, 0 top, 1 left, 2 bottom, 3 right)."""
    idx = np.tile(np.arange(len(frames)), len(params) // len(frames))
    whole = frames.batch(idx)
    windows = matrix_windows(gpuaug.FaceAugment(config).matrix(whole, params), whole.sizes.numpy(), config.out_size)
    if shrink is not None:
        windows = windows.copy()
        windows[:, shrink] += shrink < 2
        windows[:, shrink % 2 + 2] -= 1
    return whole, frames.batch(idx, window=windows)


@pytest.mark.filterwarnings("error::RuntimeWarning")  # the invalid samples' inf/NaN are expected: no warning
def test_matrix_windows_by_hand() -> None:
    """S = 4. A shift by (-9.25, -19.5): output pixel centres 0..3 come from x 9.25..12.25, y 19.5..22.5, so
    columns 9 .. floor(12.3) + 1 = 13 and rows 19 .. 23. A 90-degree turn at zoom 2 around (10.5, 20.5): the
    corners come from +-0.75 around it, columns 9 .. 12 and rows 19 .. 22. The shift in a 21 x 11 frame: cut to
    columns 9, 10 and rows 19, 20. A NaN matrix, and a singular one (a zero-size crop box): the whole frame."""
    shift = torch.tensor([[1.0, 0, -9.25], [0, 1, -19.5], [0, 0, 1]])
    around = torch.tensor([[1.0, 0, -10.5], [0, 1, -20.5], [0, 0, 1]])
    turn = torch.tensor([[0.0, -2, 1.5], [2, 0, 1.5], [0, 0, 1]]) @ around  # (S - 1) / 2 = 1.5: the output centre
    singular = torch.tensor([[2.0, 4, 1], [1, 2, 1], [0, 0, 1]])
    matrix = torch.stack([shift, turn, shift, torch.full((3, 3), float("nan")), singular])
    sizes = np.array([[100, 100], [100, 100], [21, 11], [7, 9], [5, 6]])
    assert matrix_windows(matrix, sizes, 4).tolist() == [[19, 9, 5, 5], [19, 9, 4, 4], [19, 9, 2, 2], [0, 0, 7, 9],
                                                         [0, 0, 5, 6]]


@pytest.mark.parametrize("source", ["packed", "npz"])
def test_given_windows_are_checked(data, source: str) -> None:
    """Windows given as an array are read as given (a window at a frame's far corner), and refused when they are
    not a non-empty part of the frame (negative start, past the edge, empty) or not (B, 4) integers: such a
    window would read other bytes without an error."""
    frames = data[source]
    size = frames.frame_sizes([0, 1])  # (2, 2) H, W
    corner = np.array([[size[0, 0] - 2, size[0, 1] - 3, 2, 3], [0, 0, 1, 1]])
    windowed, whole = frames.batch([0, 1], window=corner), frames.batch([0, 1])
    assert torch.equal(windowed.frame(0)[-2:, -3:], whole.frame(0)[-2:, -3:])
    assert windowed.windows.tolist() == corner.tolist()
    for window in ([-1, 0, 2, 2], [0, size[1, 1] - 1, 1, 2], [0, 0, 0, 4]):  # negative, past the edge, empty
        with pytest.raises(ValueError, match=r"window \[.*\] .* of sample 1 is not a non-empty part of its"):
            frames.batch([0, 1], window=np.array([[0, 0, 1, 1], window]))
    for shape_or_type in (np.zeros((1, 4), np.int64), np.ones((2, 4), np.float32)):
        with pytest.raises(ValueError, match=r"\(2, 4\) integers"):
            frames.batch([0, 1], window=shape_or_type)


def test_boxes_alone(data) -> None:
    """FaceFrames.boxes: the batch's boxes and frame sizes without its pixels (packed); npz is refused."""
    idx = np.array([5, 0, 17, 3])
    bbox, sizes = data["packed"].boxes(idx)
    whole = data["packed"].batch(idx)
    assert torch.equal(bbox, whole.bbox) and np.array_equal(sizes, whole.sizes.numpy())
    with pytest.raises(TypeError, match="packed"):
        data["npz"].boxes(idx)


@pytest.mark.parametrize("source", ["packed", "npz"])
@pytest.mark.parametrize("config", list(CONFIGS), ids=list(CONFIGS))
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_draw_windows_render_as_whole_frames(data, source: str, config: str, train: bool) -> None:
    """Each draw's own window (the corners of the ranges: rotation up to the limit, widest margin, smallest
    zoom, shifts of +-max, mirrored or not; faces at the frame edges; three frame sizes) renders bit-identical
    to the ragged and padded whole frames with the reference gather and kornia; in training it holds fewer
    pixels than the window of every draw."""
    frames, cfg = data[source], CONFIGS[config]
    params = extreme_params(cfg, len(frames), train)
    whole, windowed = _draw_windowed(frames, params, cfg)
    held = windowed.windows[:, 2:].prod(1).sum().item()
    every = ReadWindow(cfg, train)(whole.bbox, whole.sizes.numpy())[:, 2:].prod(1).sum()
    assert held < 0.8 * every if train else held <= every  # eval: one framing, so the same window
    matrix = gpuaug.FaceAugment(cfg).matrix(whole, params)
    a = render(whole, matrix, params, cfg, "gather")
    assert torch.equal(a, render(windowed, matrix, params, cfg, "gather"))
    assert a.abs().sum() > 0
    padded = gpuaug.collate(whole, layout="padded")
    assert torch.equal(render(padded, matrix, params, cfg, "gather"), a)
    assert torch.equal(render(whole, matrix, params, cfg, "kornia"), render(windowed, matrix, params, cfg, "kornia"))


@pytest.mark.parametrize("side", range(4), ids=["top", "left", "bottom", "right"])
def test_a_draw_window_one_pixel_short_changes_the_output(data, side: int) -> None:
    """Per-draw windows are tight: one more pixel off any side and the render reads bytes that are not the
    frame's."""
    frames, cfg = data["packed"], CONFIGS["default"]
    params = extreme_params(cfg, len(frames), True)
    whole, short = _draw_windowed(frames, params, cfg, shrink=side)
    matrix = gpuaug.FaceAugment(cfg).matrix(whole, params)
    assert not torch.equal(render(whole, matrix, params, cfg, "gather"), render(short, matrix, params, cfg, "gather"))


_LABELS = ("images", "bbox", "landmarks2d", "landmarks3d", "head_pose", "gaze", "visible", "occluded", "matrix",
           "valid")


def _draw_windows_match(aug: gpuaug.FaceAugment | gpuaug.ClipAugment, data: gpuaug.FaceFrames | gpuaug.FaceClips,
                        idx: np.ndarray, seed: int, train: bool) -> tuple[gpuaug.FaceBatch, gpuaug.AugmentedBatch]:
    """Read ``idx`` of ``data`` through the windows of :func:`draw` of ``aug`` (a FaceAugment or ClipAugment) and
    whole: the draws are ``aug.sample_params``' for the same seed, and the output (images and labels) is the
    same bit for bit. Returns the windowed batch and its output."""
    clips = isinstance(data, gpuaug.FaceClips)
    frames, frame_idx = (data.frames, data.frame_indices(idx)) if clips else (data, idx)
    drawn = draw(aug, *frames.boxes(frame_idx), torch.Generator().manual_seed(seed), train)
    windowed, whole = data.batch(idx, window=drawn.windows), data.batch(idx)
    expected = aug.sample_params(whole, torch.Generator().manual_seed(seed))
    assert all(torch.equal(a, b) for a, b in zip(vars(drawn.params).values(), vars(expected).values(), strict=True))
    a, b = aug.apply(whole, drawn.params), aug.apply(windowed, drawn.params)
    for name in _LABELS:
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    return windowed, a


@pytest.mark.parametrize("config", ["default", "camera"])
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_drawn_params_augment_as_whole_frames(data, config: str, train: bool) -> None:
    """draw() draws the params (as aug.sample_params would from the same generator, in the given mode)
    and reads their windows: aug.apply (the compiled CPU render, every camera op) gives the whole frames'
    images and labels, bit for bit."""
    frames, cfg = data["packed"], CAMERA if config == "camera" else CONFIGS["default"]
    idx = np.arange(len(frames))
    aug = gpuaug.FaceAugment(cfg).train(train)
    windowed, a = _draw_windows_match(aug, frames, idx, 4, train)
    assert (windowed.windows[:, 2:] < windowed.sizes).any(1).all()  # every window cuts something
    if config == "camera" and train:
        assert a.occluded.any()  # the occluders did draw


@pytest.mark.parametrize("crop", ["mean", "union", "frame"])
@pytest.mark.parametrize("train", [True, False], ids=["train", "eval"])
def test_clip_draw_windows_render_as_whole_clips(data, crop: str, train: bool) -> None:
    """Clips (drifting camera): the window of each frame's draw around its clip's box; ClipAugment.apply gives
    the whole clips' output, and the params are ClipAugment.sample_params' for the same generator."""
    cfg = CONFIGS["wide"]
    clips = gpuaug.FaceClips(data["packed"], T)
    ids = np.arange(len(clips))
    clip_aug = gpuaug.ClipAugment(gpuaug.FaceAugment(cfg), T, drift=0.5, crop=crop).train(train)
    _draw_windows_match(clip_aug, clips, ids, 1, train)


def test_sample_params_follow_the_given_mode_not_the_module() -> None:
    """sample_params takes the mode it is given: eval draws from a module in training mode, and back."""
    aug = gpuaug.FaceAugment(CONFIGS["default"])
    boxes = boxes_only(torch.tensor([[1.0, 2, 9, 12]] * 4), np.array([[30, 40]] * 4))
    eval_draw = aug.sample_params(boxes, torch.Generator().manual_seed(0), train=False)
    assert torch.equal(eval_draw.angle, torch.zeros(4)) and not eval_draw.flip.any()
    train_draw = aug.eval().sample_params(boxes, torch.Generator().manual_seed(0), train=True)
    assert torch.equal(train_draw.angle, aug.train().sample_params(boxes, torch.Generator().manual_seed(0)).angle)
    assert train_draw.angle.abs().min() > 0


def test_dali_backend_renders_draw_windows_as_whole_frames(data) -> None:
    """The DALI backend on per-draw windows: the whole frames' output at every corner of the ranges."""
    pytest.importorskip("nvidia.dali", reason="NVIDIA DALI is not installed (pip install nvidia-dali-cuda120)")
    frames, cfg = data["packed"], CONFIGS["wide"]
    params = extreme_params(cfg, len(frames), True)
    whole, windowed = _draw_windowed(frames, params, cfg)
    aug = gpuaug.FaceAugment(cfg, backend="dali")
    assert torch.equal(aug.apply(whole, params).images, aug.apply(windowed, params).images)
