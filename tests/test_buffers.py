"""Recycled pixel buffers: reused only once nothing refers to them, so a batch in use is never overwritten."""

from __future__ import annotations

import torch

from gpuaug.buffers import pixel_buffer, scratch


def _ptr(t: torch.Tensor) -> int:
    return t.untyped_storage().data_ptr()


def test_buffer_reused_only_when_unreferenced():
    n = 3 * 2**20
    first = pixel_buffer(n)
    view, array = first[10:20], first.numpy()
    held = _ptr(first)
    del first
    assert _ptr(pixel_buffer(n)) != held  # a view and an array still refer to it
    del view
    assert _ptr(pixel_buffer(n)) != held
    del array
    assert _ptr(pixel_buffer(n)) == held  # nothing refers to it any more: recycled
    assert pixel_buffer(n // 2).numel() == n // 2  # smaller batches fit recycled buffers


def test_batches_in_use_keep_their_bytes(face_batch):
    """Two live batches built one after the other do not share memory."""
    from gpuaug import collate
    from gpuaug.sample import FaceSample

    def samples(value: int) -> list[FaceSample]:
        return [FaceSample(torch.full((400, 600, 3), value, dtype=torch.uint8).numpy(), *(
            getattr(face_batch, k)[0].numpy() for k in ("bbox", "landmarks2d", "landmarks3d", "head_pose", "gaze")),
            key=(0, i)) for i in range(4)]

    a = collate(samples(1))
    b = collate(samples(2))
    assert (a.pixels == 1).all() and (b.pixels == 2).all()
    del a
    c = collate(samples(3))
    assert (b.pixels == 2).all() and (c.pixels == 3).all()


def test_scratch_is_the_same_memory_per_name():
    """Scratch: one buffer per name and thread, reused by every call that fits it, typed and shaped as asked."""
    a = scratch("t", (4, 8))
    assert a.shape == (4, 8) and a.dtype == torch.float32 and a.is_contiguous()
    assert _ptr(scratch("t", (2, 8))) == _ptr(a)  # smaller: the same memory
    assert _ptr(scratch("u", (4, 8))) != _ptr(a)  # another name: its own
    assert scratch("t", (2, 3), torch.int64).dtype == torch.int64
    big = scratch("t", (400, 800))
    assert _ptr(big) != _ptr(a) and _ptr(scratch("t", (4, 8))) == _ptr(big)  # grown once, then reused


def test_pool_hands_a_buffer_to_one_caller_at_a_time():
    """What take() returns already holds its buffer: a second take() right after (another thread, say) gets
    other memory; a buffer moved to shared memory (pickled to another process) is never handed out again."""
    from gpuaug.buffers import BufferPool

    pool = BufferPool(4)
    a = pool.take(1000)
    b = pool.take(1000)
    assert _ptr(a) != _ptr(b)
    held = _ptr(a)
    del a
    assert _ptr(pool.take(1000)) == held  # free again: recycled
    shared = pool.take(1000)
    shared.share_memory_()  # what pickling a CPU tensor to another process does to its storage
    moved = _ptr(shared)
    del shared
    assert all(_ptr(pool.take(1000)) != moved for _ in range(5))
