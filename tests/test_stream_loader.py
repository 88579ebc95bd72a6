"""StreamLoader: the batches FaceFrames.batch gives, in the sampler's order, every item once per epoch per
rank, seeded and resumable; buffers recycled without overwriting a batch in use; read errors raised in the
caller. With augment=: (batch, params) pairs, the params drawn per group of DRAW_GROUP batches from (seed, epoch,
rank, group), each frame read through its draw's window, the output that of whole frames."""

from __future__ import annotations

import itertools
import json
import threading
import traceback
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import cuda_only
from seed_npz import seed_arrays, write_video
from torch.utils.data import DistributedSampler

import gpuaug
from gpuaug.distributed import rank_generator
from gpuaug.errors import FaceDataError
from gpuaug.load.draws import DRAW_GROUP, DRAW_STREAM, Draws, draw
from gpuaug.load.packed import pack
from gpuaug.window import ReadWindow

CONFIG = gpuaug.AugmentConfig(out_size=24)


@pytest.fixture(scope="module")
def packed(tmp_path_factory) -> Path:
    """7 noise videos of three frame sizes, 5 frames each (35 frames), packed."""
    root = tmp_path_factory.mktemp("stream")
    for v in range(7):
        arrays = seed_arrays(5, [(30, 40), (36, 28), (44, 52)][v % 3], seed=v)
        write_video(root / "npz" / f"v{v}.npz", arrays)
    pack(root / "npz", root / "packed", progress=False)
    return root / "packed"


def _keys(batches) -> list[tuple[int, int]]:
    return [tuple(k) for b in batches for k in b.keys.tolist()]


def _same(a: gpuaug.FaceBatch, b: gpuaug.FaceBatch) -> None:
    assert type(a) is type(b)
    for name in ("offsets", "strides", "sizes", "bbox", "landmarks2d", "landmarks3d", "head_pose", "gaze", "keys"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name
    assert torch.equal(a.images, b.images)


def test_batches_are_frames_batch_in_the_shuffled_order(packed: Path) -> None:
    """Each batch equals FaceFrames.batch of the epoch order's slice (window reads included); the order is
    ResidentFrames' (seed, epoch) permutation: every frame once, the last batch short."""
    frames = gpuaug.FaceFrames(packed)
    loader = gpuaug.StreamLoader(frames, 8, shuffle=True, seed=3, config=CONFIG, threads=2, in_flight=2)
    order = gpuaug.load.resident.epoch_order(len(frames), 1, 3, 0, torch.device("cpu")).numpy()
    batches = list(loader.batches(1))
    assert len(batches) == len(loader) == 5 and len(batches[-1]) == 35 - 32
    assert sorted(np.concatenate([loader.order(1)])) == list(range(35))
    for i, batch in enumerate(batches):
        _same(batch, frames.batch(order[8 * i:8 * i + 8], window=ReadWindow(CONFIG)))
    assert _keys(batches) != _keys(loader.batches(2))  # another epoch, another order
    assert _keys(gpuaug.StreamLoader(frames, 8, shuffle=True, seed=3).batches(1)) == _keys(batches)  # seeded


def test_resume_mid_epoch(packed: Path) -> None:
    """batches(epoch, start=k) gives the epoch's batches from k on, the same as an uninterrupted pass."""
    loader = gpuaug.StreamLoader(gpuaug.FaceFrames(packed), 6, shuffle=True, seed=1, config=CONFIG)
    full = list(loader.batches(4))
    for a, b in zip(full[3:], loader.batches(4, start=3), strict=True):
        _same(a, b)


@pytest.mark.parametrize("world", [1, 3])
def test_every_frame_once_per_epoch_per_rank(packed: Path, world: int) -> None:
    """DistributedSampler shards: each rank's loader yields exactly its sampler's indices, each once, in its
    order; the ranks together cover every frame; set_epoch reshuffles."""
    frames = gpuaug.FaceFrames(packed)
    for epoch in (0, 1):
        covered = []
        for rank in range(world):
            sampler = DistributedSampler(frames, num_replicas=world, rank=rank, shuffle=True, seed=7)
            loader = gpuaug.StreamLoader(frames, 4, sampler=sampler, config=CONFIG)
            loader.set_epoch(epoch)
            got = _keys(iter(loader))
            sampler.set_epoch(epoch)
            expected = list(sampler)
            assert got == [frames.locate(i) for i in expected]
            assert len(set(got)) == len(got) == len(sampler)  # once each (35 frames: no padding for 1 or 5)
            covered += expected
        assert sorted(set(covered)) == list(range(len(frames)))


def test_clip_batches(packed: Path) -> None:
    """FaceClips: B clips of T clip-major frames, read around each clip's box."""
    clips = gpuaug.FaceClips(gpuaug.FaceFrames(packed), 3)
    loader = gpuaug.StreamLoader(clips, 2, config=CONFIG, crop="union")
    first = next(iter(loader))
    _same(first, clips.batch([0, 1], window=ReadWindow(CONFIG, clip_length=3, crop="union")))


def test_a_held_batch_is_never_overwritten(packed: Path) -> None:
    """Buffers are recycled (a handful for a whole epoch), but one the caller still holds is not refilled."""
    frames = gpuaug.FaceFrames(packed)
    loader = gpuaug.StreamLoader(frames, 4, shuffle=True, config=CONFIG, in_flight=2)
    it = loader.batches(0)
    held = next(it)
    expected = held.pixels.clone()
    pointers = {b.pixels.data_ptr() for b in it}
    assert torch.equal(held.pixels, expected)
    assert held.pixels.data_ptr() not in pointers
    assert len(pointers) <= 2 + 2  # recycled: in flight + the one in hand + one


def _corrupt_index(packed: Path, tmp: Path) -> Path:
    """A copy of ``packed`` whose index puts the last video past the end of its image file."""
    copy = tmp / "bad_index"
    copy.mkdir()
    for f in packed.iterdir():
        (copy / f.name).write_bytes(f.read_bytes())
    index = json.loads((copy / "index.json").read_text())
    index["videos"][-1]["shard_row"] += 3
    (copy / "index.json").write_text(json.dumps(index))
    return copy


def _truncate(packed: Path, tmp: Path) -> Path:
    """A copy of ``packed`` whose 30x40 image file lost its last two frames."""
    copy = tmp / "truncated"
    copy.mkdir()
    for f in packed.iterdir():
        data = f.read_bytes()
        (copy / f.name).write_bytes(data[:-2 * 30 * 40 * 3] if f.name == "images_30x40.u8" else data)
    return copy


@pytest.mark.parametrize("spoil", [_truncate, _corrupt_index], ids=["truncated", "wrong index"])
def test_bad_packed_file_raises_in_the_caller(packed: Path, tmp_path: Path, spoil) -> None:
    """A FaceDataError naming the image file, raised from a reading thread into the caller's loop; the
    threads are gone afterwards."""
    bad = spoil(packed, tmp_path)
    loader = gpuaug.StreamLoader(gpuaug.FaceFrames(bad), 8, config=CONFIG)
    with pytest.raises(FaceDataError, match=r"images_\d+x\d+\.u8.*(truncated|index)") as info:
        list(loader.batches(0))
    assert "_read" in [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert not [t for t in threading.enumerate() if t.name.startswith("gpuaug-stream")]


def test_bad_label_file_raises_in_the_caller_with_augment(packed: Path, tmp_path: Path) -> None:
    """augment=: the boxes are read first, for a group's draws, in a reading thread: a truncated box file is a
    FaceDataError naming it, raised in the caller's loop; the threads are gone afterwards."""
    copy = tmp_path / "short_boxes"
    copy.mkdir()
    for f in packed.iterdir():
        data = f.read_bytes()
        (copy / f.name).write_bytes(data[:-2 * 4 * 4] if f.name == "bbox.f32" else data)
    loader = gpuaug.StreamLoader(gpuaug.FaceFrames(copy), 4, augment=gpuaug.FaceAugment(CONFIG))
    with pytest.raises(FaceDataError, match=r"bbox\.f32.*truncated") as info:
        list(loader.batches(0))
    assert "_draw" in [frame.name for frame in traceback.extract_tb(info.value.__traceback__)]
    assert not [t for t in threading.enumerate() if t.name.startswith("gpuaug-stream")]


@pytest.mark.parametrize("draws", [False, True], ids=["config", "augment"])
def test_stopping_early_ends_the_threads(packed: Path, draws: bool) -> None:
    """Closing a pass after one batch ends the threads (with augment=: one thread, draws still queued)."""
    frames = gpuaug.FaceFrames(packed)
    options = {"augment": gpuaug.FaceAugment(CONFIG), "threads": 1, "in_flight": 1} if draws else {"config": CONFIG}
    it = gpuaug.StreamLoader(frames, 4, **options).batches(0)
    next(it)
    it.close()
    assert not [t for t in threading.enumerate() if t.name.startswith("gpuaug-stream")]


def test_augment_start_and_drop_last(packed: Path) -> None:
    """augment=: drop_last keeps the full batches, each with its rows of the draw of its group, which holds no
    dropped frame (35 = 5 x 6 + 5: the short batch would be in the same group); a start past the last batch
    yields nothing; a negative start is refused."""
    frames, aug = gpuaug.FaceFrames(packed), gpuaug.FaceAugment(CONFIG)
    loader = gpuaug.StreamLoader(frames, 6, shuffle=True, seed=2, augment=aug, drop_last=True)
    pairs = list(loader.batches(0))
    assert len(pairs) == len(loader) == 5 and all(len(b) == len(p) == 6 for b, p in pairs)
    for (_, params), drawn in zip(pairs, _group_draws(loader, aug, 0, 2), strict=True):
        _same_params(params, drawn.params)
    assert list(loader.batches(0, start=len(loader))) == []
    with pytest.raises(ValueError, match="start"):
        next(loader.batches(0, start=-1))


def test_bad_arguments(packed: Path) -> None:
    frames = gpuaug.FaceFrames(packed)
    with pytest.raises(ValueError, match="batch_size"):
        gpuaug.StreamLoader(frames, 0)
    with pytest.raises(ValueError, match="not both"):
        gpuaug.StreamLoader(frames, 4, shuffle=True, sampler=range(3))
    npz = gpuaug.FaceFrames(packed.parent / "npz")
    with pytest.raises(ValueError, match=r"packed data.*num_workers"):
        gpuaug.StreamLoader(npz, 4)


def _same_params(a: gpuaug.AugmentParams, b: gpuaug.AugmentParams) -> None:
    for name, value in vars(a).items():
        assert torch.equal(value, getattr(b, name)), name


def _outputs_equal(a, b) -> None:
    for name in ("images", "bbox", "landmarks2d", "landmarks3d", "head_pose", "gaze", "visible", "matrix"):
        assert torch.equal(getattr(a, name), getattr(b, name)), name


def _group_draws(loader: gpuaug.StreamLoader, aug: gpuaug.FaceAugment | gpuaug.ClipAugment, epoch: int, seed: int,
                 rank: int = 0) -> list[Draws]:
    """The draws of each batch of ``loader``'s ``epoch``, made by hand: per group of DRAW_GROUP batches, ``draw``
    of the group's frames (clips: T frames per clip) from the (seed, epoch, rank, DRAW_STREAM, group) generator,
    then the batch's rows."""
    clips = isinstance(loader.data, gpuaug.FaceClips)
    frames, per_item = (loader.data.frames, loader.data.length) if clips else (loader.data, 1)
    order, b = loader.order(epoch), loader.batch_size
    chunks = [order[i:i + b] for i in range(0, len(order), b)]
    if loader.drop_last and len(chunks[-1]) < b:
        chunks.pop()
    out = []
    for g in range(0, len(chunks), DRAW_GROUP):
        group = np.concatenate(chunks[g:g + DRAW_GROUP])
        boxes = frames.boxes(loader.data.frame_indices(group) if clips else group)
        drawn = draw(aug, *boxes, rank_generator(seed, epoch, rank, DRAW_STREAM, g // DRAW_GROUP))
        starts = per_item * np.cumsum([0] + [len(c) for c in chunks[g:g + DRAW_GROUP]])
        out += [drawn.rows(a, b) for a, b in itertools.pairwise(starts)]
    return out


def test_augment_yields_batches_and_their_draws(packed: Path) -> None:
    """augment=: every frame once per epoch; each pair is FaceFrames.batch of the order's slice read through its
    rows of its group's draw (two groups here, the second short); aug.apply gives the whole frames' images and
    labels; the windows are smaller than the config's window of every draw; another epoch draws anew."""
    frames = gpuaug.FaceFrames(packed)
    aug = gpuaug.FaceAugment(CONFIG)
    loader = gpuaug.StreamLoader(frames, 4, shuffle=True, seed=3, augment=aug)
    order = loader.order(1)
    pairs = list(loader.batches(1))
    assert len(pairs) == len(loader) == 9 > DRAW_GROUP
    assert sorted(_keys(b for b, _ in pairs)) == sorted(frames.locate(i) for i in range(35))
    held = every = 0
    for i, ((batch, params), drawn) in enumerate(zip(pairs, _group_draws(loader, aug, 1, 3), strict=True)):
        chunk = order[4 * i:4 * i + 4]
        _same(batch, frames.batch(chunk, window=drawn.windows))
        _same_params(params, drawn.params)
        whole = frames.batch(chunk)
        _outputs_equal(aug.apply(batch, params), aug.apply(whole, params))
        held += batch.windows[:, 2:].prod(1).sum()
        every += ReadWindow(CONFIG)(whole.bbox, whole.sizes.numpy())[:, 2:].prod(1).sum()
    assert held < every  # (these faces nearly fill their frames: both windows are cut by the frame)
    assert not torch.equal(next(iter(loader.batches(2)))[1].angle, pairs[0][1].angle)
    # Batches of one group draw from one stream: batch 1 is not batch 0 again.
    assert not torch.equal(pairs[1][1].angle, pairs[0][1].angle)
    # The draws' own stream: not the (seed, epoch, rank) one a training loop draws its augmentation from.
    assert not torch.equal(aug.sample_params(pairs[0][0], rank_generator(3, 1, 0)).angle, pairs[0][1].angle)


def test_augment_draws_a_group_ahead(packed: Path, monkeypatch) -> None:
    """One thread runs the tasks in the order they were queued: a group's draw before its first read, the next
    group's right after that read, so it is made while this group's batches are read (no read after the first
    group waits for a draw); a resumed pass starts with the draw of its batch's group."""
    calls: list[str] = []
    draw_group, read = gpuaug.StreamLoader._draw, gpuaug.StreamLoader._read

    def logged_draw(self, chunks, group, *args):
        calls.append(f"D{group}")
        return draw_group(self, chunks, group, *args)

    def logged_read(self, indices, *args):
        calls.append("R")
        return read(self, indices, *args)

    monkeypatch.setattr(gpuaug.StreamLoader, "_draw", logged_draw)
    monkeypatch.setattr(gpuaug.StreamLoader, "_read", logged_read)
    loader = gpuaug.StreamLoader(gpuaug.FaceFrames(packed), 2, augment=gpuaug.FaceAugment(CONFIG), threads=1,
                                 in_flight=2)
    assert len(loader) == 18 > 2 * DRAW_GROUP
    list(loader.batches(0))
    g = DRAW_GROUP
    assert "".join(calls) == "D0RD1" + "R" * g + "D2" + "R" * (18 - 1 - g)
    calls.clear()
    list(loader.batches(0, start=g + 3))
    assert "".join(calls) == "D1RD2" + "R" * (18 - g - 4)


@pytest.mark.parametrize("start", [3, DRAW_GROUP - 1, DRAW_GROUP])
def test_augment_resumes_with_the_same_draws(packed: Path, start: int) -> None:
    """batches(epoch, start=k), k inside a group, at a group's start and at its last batch: the same (batch,
    params) as an uninterrupted pass from batch k on; a second loader with the same seed draws the same, one
    with another seed does not."""
    frames, aug = gpuaug.FaceFrames(packed), gpuaug.FaceAugment(CONFIG)
    loader = gpuaug.StreamLoader(frames, 4, shuffle=True, seed=1, augment=aug)
    full = list(loader.batches(4))
    for (a, pa), (b, pb) in zip(full[start:], loader.batches(4, start=start), strict=True):
        _same(a, b)
        _same_params(pa, pb)
    again = gpuaug.StreamLoader(frames, 4, shuffle=True, seed=1, augment=aug, threads=1, in_flight=1)
    for (a, pa), (b, pb) in zip(full, again.batches(4), strict=True):
        _same(a, b)
        _same_params(pa, pb)
    other = gpuaug.StreamLoader(frames, 4, shuffle=True, seed=2, augment=aug)
    assert not torch.equal(next(iter(other.batches(4)))[1].angle, full[0][1].angle)


def test_augment_mode_is_fixed_per_pass(packed: Path) -> None:
    """aug.eval() before a pass: the eval framing (what sample_params draws in eval mode) for every batch, even
    when the module goes back to training mid-pass (batches are read ahead); training draws otherwise."""
    frames, aug = gpuaug.FaceFrames(packed), gpuaug.FaceAugment(CONFIG)
    loader = gpuaug.StreamLoader(frames, 8, augment=aug, in_flight=2)
    aug.eval()
    it = loader.batches(0)
    _, params = next(it)
    aug.train()  # mid-pass
    eval_params = [params] + [p for _, p in it]
    assert len(eval_params) == 5
    for p in eval_params:
        _same_params(p, gpuaug.sample_params(CONFIG, len(p), train=False))
    trained = [p for _, p in loader.batches(0)]
    assert all(p.angle.abs().min() > 0 for p in trained)


def test_augment_ranks_draw_independently(packed: Path) -> None:
    """DistributedSampler ranks (one seed, as sharding needs): rank r's groups draw from (seed, epoch, r, group), so
    two ranks draw different params."""
    frames, aug = gpuaug.FaceFrames(packed), gpuaug.FaceAugment(CONFIG)
    drawn = []
    for rank in range(2):
        sampler = DistributedSampler(frames, num_replicas=2, rank=rank, shuffle=True, seed=7)
        loader = gpuaug.StreamLoader(frames, 4, sampler=sampler, seed=7, augment=aug)
        _, params = next(iter(loader))
        _same_params(params, _group_draws(loader, aug, 0, 7, rank)[0].params)
        drawn.append(params.angle)
    assert not torch.equal(*drawn)


def test_augment_clips(packed: Path) -> None:
    """FaceClips with augment=ClipAugment: (clip batch, params), the params T rows per clip of their group's draw
    (two groups), output equal to the whole clips'; eval draws once the frame augmentation is in eval mode."""
    clips = gpuaug.FaceClips(gpuaug.FaceFrames(packed), 3)
    clip_aug = gpuaug.ClipAugment(gpuaug.FaceAugment(CONFIG), 3, drift=0.5, crop="union")
    loader = gpuaug.StreamLoader(clips, 2, shuffle=True, seed=5, augment=clip_aug)
    order = loader.order(0)
    pairs = list(loader.batches(0))
    assert len(pairs) > DRAW_GROUP
    for i, ((batch, params), drawn) in enumerate(zip(pairs, _group_draws(loader, clip_aug, 0, 5), strict=True)):
        assert len(batch) == 3 * len(order[2 * i:2 * i + 2]) == len(params)
        _same_params(params, drawn.params)
        _outputs_equal(clip_aug.apply(batch, params), clip_aug.apply(clips.batch(order[2 * i:2 * i + 2]), params))
    clip_aug.aug.eval()  # the frame augmentation's mode is the one ClipAugment draws in
    _, params = next(iter(loader.batches(0)))
    _same_params(params, gpuaug.clip_params.sample_clip_params(CONFIG, 2, 3, train=False))


def test_augment_bad_arguments(packed: Path) -> None:
    frames = gpuaug.FaceFrames(packed)
    aug = gpuaug.FaceAugment(CONFIG)
    with pytest.raises(ValueError, match="not both"):
        gpuaug.StreamLoader(frames, 4, augment=aug, config=CONFIG)
    with pytest.raises(ValueError, match="FaceAugment"):
        gpuaug.StreamLoader(frames, 4, augment=gpuaug.ClipAugment(aug, 3))
    clips = gpuaug.FaceClips(frames, 3)
    with pytest.raises(ValueError, match=r"ClipAugment\(aug, 3\)"):
        gpuaug.StreamLoader(clips, 4, augment=aug)
    with pytest.raises(ValueError, match=r"ClipAugment\(aug, 3\)"):
        gpuaug.StreamLoader(clips, 4, augment=gpuaug.ClipAugment(aug, 2))


@cuda_only
def test_cuda_augment_hand_over(packed: Path) -> None:
    """On CUDA with augment=: batch and params arrive on the device, equal to the CPU loader's, and the step on
    the device gives the whole frames' output."""
    frames, aug = gpuaug.FaceFrames(packed), gpuaug.FaceAugment(CONFIG)
    on_cpu = list(gpuaug.StreamLoader(frames, 8, shuffle=True, augment=aug).batches(0))
    loader = gpuaug.StreamLoader(frames, 8, shuffle=True, device="cuda", augment=aug.to("cuda"), in_flight=2)
    order = loader.order(0)
    for i, ((a, pa), (b, pb)) in enumerate(zip(on_cpu, loader.batches(0), strict=True)):
        assert b.device.type == "cuda" and pb.angle.device.type == "cuda"
        _same(a, b.to("cpu"))
        _same_params(pa, pb.to("cpu"))
        whole = frames.batch(order[8 * i:8 * i + 8]).to("cuda")
        _outputs_equal(aug.apply(b, pb), aug.apply(whole, pb))


@cuda_only
def test_cuda_hand_over(packed: Path) -> None:
    """On CUDA: batches arrive on the device, equal to the CPU loader's, read into page-locked buffers."""
    frames = gpuaug.FaceFrames(packed)
    on_cpu = list(gpuaug.StreamLoader(frames, 8, shuffle=True, config=CONFIG).batches(0))
    loader = gpuaug.StreamLoader(frames, 8, shuffle=True, device="cuda", config=CONFIG, in_flight=2)
    for a, b in zip(on_cpu, loader.batches(0), strict=True):
        assert b.device.type == "cuda"
        _same(a, b.to("cpu"))
    assert all(buf.is_pinned() for buf in loader._pool._buffers)


TEXTURE = gpuaug.AugmentConfig(out_size=24, grayscale_p=0.0, occluder_p=1.0, occluder_max=2,
                               occluder_fill=("texture",))


@pytest.mark.parametrize("clips", [False, True])
def test_augment_texture_occluders_name_rows_of_their_own_batch(packed: Path, clips: bool) -> None:
    """A "texture" occluder shows another row of its batch: with params drawn for a group of batches, each batch's
    sources are re-numbered into the batch (clips: the same frame t of another clip of the batch), so every batch
    renders, bit-identical to its whole frames (the group's own row numbers went up to the group's size)."""
    frames = gpuaug.FaceFrames(packed)
    data = gpuaug.FaceClips(frames, 3) if clips else frames
    aug = gpuaug.FaceAugment(TEXTURE)
    augment = gpuaug.ClipAugment(aug, 3) if clips else aug
    loader = gpuaug.StreamLoader(data, 2 if clips else 4, shuffle=True, seed=2, augment=augment)
    order, per_item = loader.order(0), 3 if clips else 1
    pairs = list(loader.batches(0))
    assert len(pairs) > DRAW_GROUP
    for i, (batch, params) in enumerate(pairs):
        source = params.occluders[..., gpuaug.camera.sample.OCC["source"]].long()
        rows = torch.arange(len(params))[:, None].expand_as(source)
        assert ((source >= 0) & (source < len(params))).all()
        assert torch.equal(source % per_item, rows % per_item)  # the same frame t of its clip
        if len(params) > per_item:  # another item of the batch (a batch of one shows itself)
            assert not (source // per_item == rows // per_item).any()
        chunk = order[loader.batch_size * i:loader.batch_size * (i + 1)]
        _outputs_equal(augment.apply(batch, params), augment.apply(data.batch(chunk), params))
