"""Batches from what users hold (FaceBatch.from_images): lists or dense tensors, either channel order, uint8 or
float, grey or colour, boxes in three formats; the usual mistakes raise or warn."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

from gpuaug import AugmentConfig, BatchError, FaceAugment, FaceBatch

CONFIG = AugmentConfig(out_size=24, grayscale_p=0.0)


def _frames(b: int = 3, h: int = 30, w: int = 40) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 256, (b, h, w, 3), dtype=np.uint8)


def _boxes(b: int = 3) -> np.ndarray:
    return np.array([[5.0, 4.0, 30.0, 25.0]] * b, np.float32) + np.arange(b, dtype=np.float32)[:, None]


def _render(batch: FaceBatch) -> torch.Tensor:
    aug = FaceAugment(CONFIG)
    return aug.apply(batch, aug.sample_params(batch, torch.Generator().manual_seed(0))).images


def test_every_form_of_the_same_frames_is_the_same_batch(face_batch: FaceBatch) -> None:
    """Dense HWC (numpy and torch), dense CHW (channels named), a list of frames, float frames in [0, 1]: the
    same pixels, the same render as collate's batch of those frames."""
    frames = _frames()
    boxes = _boxes()
    reference = _render(FaceBatch.from_images(frames, bbox=boxes))
    chw = torch.from_numpy(frames).permute(0, 3, 1, 2)
    forms = [FaceBatch.from_images(torch.from_numpy(frames), bbox=boxes),
             FaceBatch.from_images(chw, channels="chw", bbox=boxes),
             FaceBatch.from_images(list(frames), bbox=boxes),
             FaceBatch.from_images([f.permute(2, 0, 1) for f in torch.from_numpy(frames)], channels="chw", bbox=boxes),
             FaceBatch.from_images(chw.float() / 255, channels="chw", bbox=boxes)]
    for batch in forms:
        assert torch.equal(batch.images, torch.from_numpy(frames)) and batch.kinds == ("bbox",)
        assert torch.equal(_render(batch), reference)
    dense = FaceBatch.from_padded(torch.from_numpy(frames), torch.tensor([[30, 40]] * 3), bbox=torch.from_numpy(boxes),
                                  keys=torch.zeros(3, 2, dtype=torch.int64))
    assert torch.equal(_render(dense), reference)


def test_a_ragged_list_and_grey_frames() -> None:
    """Frames of different sizes make a ragged batch; a grey (H, W) frame gets its value on every channel."""
    rng = np.random.default_rng(1)
    grey = rng.integers(0, 256, (20, 26), dtype=np.uint8)
    colour = rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)
    batch = FaceBatch.from_images([grey, colour], bbox=_boxes(2))
    assert batch.sizes.tolist() == [[20, 26], [30, 40]]
    assert torch.equal(batch.frame(0), torch.from_numpy(grey)[..., None].expand(20, 26, 3))
    assert torch.equal(batch.frame(1), torch.from_numpy(colour))


def test_box_formats_are_the_same_boxes() -> None:
    frames, xyxy = _frames(), _boxes()
    wh = xyxy[:, 2:] - xyxy[:, :2]
    expected = FaceBatch.from_images(frames, bbox=xyxy).bbox
    assert torch.equal(FaceBatch.from_images(frames, bbox=np.concatenate([xyxy[:, :2], wh], 1),
                                             box_format="xywh").bbox, expected)
    centre = (xyxy[:, :2] + xyxy[:, 2:]) / 2
    assert torch.equal(FaceBatch.from_images(frames, bbox=np.concatenate([centre, wh], 1),
                                             box_format="cxcywh").bbox, expected)
    with pytest.raises(ValueError, match="box_format"):
        FaceBatch.from_images(frames, bbox=xyxy, box_format="ltrb")


def test_channels_first_without_its_order_named_raises(face_batch: FaceBatch) -> None:
    """A (B, 3, H, W) tensor without channels='chw' (and a channels-last one named 'chw') raises naming the shape
    and the order that fits; so does from_padded, which used to take it and render garbage."""
    chw = torch.from_numpy(_frames()).permute(0, 3, 1, 2)
    with pytest.raises(BatchError, match=r"\(3, 3, 30, 40\).*channels='hwc'.*channels='chw'"):
        FaceBatch.from_images(chw, bbox=_boxes())
    with pytest.raises(BatchError, match=r"\(3, 30, 40, 3\).*channels='chw'.*channels='hwc'"):
        FaceBatch.from_images(_frames(), channels="chw", bbox=_boxes())
    with pytest.raises(BatchError, match=r"from_padded takes \(B, H, W, 3\).*\(3, 3, 30, 40\).*channels='chw'"):
        FaceBatch.from_padded(chw, torch.tensor([[30, 40]] * 3), bbox=torch.from_numpy(_boxes()),
                              keys=torch.zeros(3, 2, dtype=torch.int64))


def test_float_frames_outside_unit_range_and_other_dtypes_raise() -> None:
    with pytest.raises(BatchError, match=r"\[0, 1\].*0-255"):
        FaceBatch.from_images(_frames().astype(np.float32), bbox=_boxes())
    with pytest.raises(BatchError, match="int16"):
        FaceBatch.from_images(_frames().astype(np.int16), bbox=_boxes())


def test_normalised_coordinates_warn() -> None:
    """Boxes or points all in [0, 1] on 30 x 40 frames: a warning to pass pixels; pixels: none."""
    frames = _frames()
    with pytest.warns(UserWarning, match=r"landmarks2d.*normalised"):
        FaceBatch.from_images(frames, landmarks2d=np.random.default_rng(0).uniform(0, 1, (3, 5, 2)))
    with pytest.warns(UserWarning, match=r"bbox.*normalised"):
        FaceBatch.from_images(frames, bbox=_boxes() / 40)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        FaceBatch.from_images(frames, bbox=_boxes(), landmarks2d=np.full((3, 5, 2), 12.0))
        FaceBatch.from_images(_frames(3, 4, 4), bbox=np.array([[0, 0, 1, 1]] * 3, np.float32))  # tiny frames


def test_unknown_label_names_raise() -> None:
    with pytest.raises(TypeError, match="boxes"):
        FaceBatch.from_images(_frames(), boxes=_boxes())
