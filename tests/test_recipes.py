"""Every recipe builds, validates, and runs a step (at a small size) with labels and occlusion flags."""

from __future__ import annotations

import pytest
import torch

from gpuaug import AugmentConfig, FaceAugment, FaceBatch, recipes


@pytest.mark.parametrize("name", sorted(recipes.RECIPES))
def test_recipe_builds_and_runs(name: str, face_batch: FaceBatch) -> None:
    full = recipes.RECIPES[name]()
    assert isinstance(full, AugmentConfig)
    # The recipe's own numbers at a small output (blur sigmas scaled along, so they stay inside the image).
    small = recipes.RECIPES[name](out_size=64, blur_sigma=tuple(s / 4 for s in full.blur_sigma))
    out = FaceAugment(small)(face_batch, torch.Generator().manual_seed(0))
    assert out.images.shape == (8, small.channels, 64, 64) and torch.isfinite(out.images).all()
    assert out.occluded.shape == (8, 68) and out.valid.all()


def test_seed_is_the_default() -> None:
    assert recipes.seed() == AugmentConfig() and not recipes.seed().camera


def test_recipe_numbers() -> None:
    """A few numbers straight from the sources (see the docstrings)."""
    assert recipes.star().occluder_p == 0.4 and recipes.star().gamma == (0.25, 4.0) and recipes.star().blur_p == 0.3
    assert recipes.pipnet().occluder_size[1] == 0.4 and recipes.pipnet().blur_sigma[1] == 5.0
    assert recipes.rtmpose_face().scale == (0.6, 1.4) and recipes.rtmpose_face().max_rotation == 80.0
    assert recipes.hopenet().low_res == (1 / 16, 1 / 6) and recipes.hopenet().out_size == 224
    assert recipes.webcam().camera and recipes.star(out_size=128).out_size == 128
