"""Training-ready output (dtype, normalisation, channels-last): every render path equals its float32 [0, 1]
output followed by the same ops, and the torch path does it in the render kernel."""

from __future__ import annotations

from functools import partial

import pytest
import torch

from gpuaug import AugmentConfig, FaceAugment
from gpuaug.backends.torch_backend import render, render_gather, render_reference

# Few combinations on purpose: each one is a new specialisation of the compiled kernel (seconds to build).
FORMATS = [
    {"out_dtype": "bfloat16", "mean": (0.485, 0.456, 0.406), "std": (0.229, 0.224, 0.225), "channels_last": True,
     "grayscale_p": 0.5},
    {"out_dtype": "float16", "mean": (0.5,), "std": (0.25,)},
    {"mean": (0.5,), "std": (0.5,), "channels_last": True, "grayscale_p": 0.0},
]
def render_dali(*args: object) -> torch.Tensor:
    pytest.importorskip("nvidia.dali", reason="NVIDIA DALI is not installed")
    from gpuaug.backends.dali_backend import DaliBackend

    return DaliBackend(num_threads=1)(*args)


PATHS = {"auto (compiled gather on the CPU, Triton on CUDA)": render, "eager gather": render_gather,
         "triton": partial(render, warp="triton"),
         "kornia reference": render_reference,
         "dali": render_dali}


def expected(plain: torch.Tensor, config: AugmentConfig) -> torch.Tensor:
    """The float32 output followed by the configured ops, written out by hand."""
    c = plain.shape[1]
    out = plain
    if config.mean is not None:
        mean = torch.tensor(config.mean).expand(c) if len(config.mean) == 1 else torch.tensor(config.mean)
        std = torch.tensor(config.std).expand(c) if len(config.std) == 1 else torch.tensor(config.std)
        out = (out - mean.to(out)[:, None, None]) / std.to(out)[:, None, None]
    return out.to(config.dtype)


@pytest.mark.parametrize("fmt", FORMATS, ids=lambda f: "-".join(f"{k}={v}" for k, v in f.items()))
@pytest.mark.parametrize("path", list(PATHS))
def test_output_format_equals_float32_then_ops(face_batch, device, fmt, path):
    batch = face_batch.to(device)
    grey = fmt.get("grayscale_p", 1.0)
    base = AugmentConfig(out_size=40, grayscale_p=grey)
    config = AugmentConfig(out_size=40, **{"grayscale_p": grey, **fmt})
    aug = FaceAugment(base)
    params = aug.sample_params(batch, torch.Generator().manual_seed(0))
    matrix = aug.matrix(batch, params)
    plain = PATHS[path](batch, matrix, params, base)
    out = PATHS[path](batch, matrix, params, config)
    assert out.dtype == config.dtype and out.shape == plain.shape and out.device == plain.device
    assert out.is_contiguous(memory_format=torch.channels_last) == config.channels_last or out.shape[1] == 1
    torch.testing.assert_close(out.float(), expected(plain, config).float(), atol=1e-3, rtol=1e-2)
    assert plain.dtype == torch.float32 and plain.is_contiguous()


def test_defaults_unchanged():
    c = AugmentConfig()
    assert (c.out_dtype, c.mean, c.std, c.channels_last) == ("float32", None, None, False)
    assert c.normalisation() is None


@pytest.mark.parametrize("bad", [{"out_dtype": "int8"}, {"mean": (0.5,)}, {"mean": (0.5, 0.5), "std": (1, 1)},
                                 {"mean": (0.5,), "std": (0.0,)}])
def test_bad_format_options_raise(bad):
    with pytest.raises(ValueError):
        AugmentConfig(**bad)
