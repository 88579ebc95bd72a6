"""The torch backend: one resample per sample, colour and output format fused; one fast path per device.

Warps, all with the same convention (bilinear, zero fill, pixel centres at integers, ``align_corners=True``):

- ``"triton"`` (:mod:`gpuaug.backends.triton_render`): a hand-written Triton kernel reading the uint8 buffer
  by offset and stride, colour, normalisation, dtype and memory format fused; compiled on CUDA tensors,
  run by Triton's interpreter on CPU tensors (how the tests hold it to the others).
- ``"gather"`` (:mod:`gpuaug.backends.gather`): the same maths in plain torch ops (its reference); eager.
- ``"kornia"``: kornia's ``warp_affine`` on the float-converted zero-padded batch, then colour and output
  format in separate passes: the reference every other warp is tested against.

``"auto"`` (the default): on CUDA the Triton kernel (the eager gather where triton is not installed); on the
CPU the gather's three stages compiled by ``torch.compile`` (Inductor's C++ loops) into memory the render
keeps (:mod:`gpuaug.backends.staged_gather`), kornia where it cannot be compiled.
Only a compiler's own failure (named exception types, logged as a warning) switches a device to its
fallback, never a caller's error, a CUDA error or anything during CUDA graph capture. The compiled CPU
gather has one variant per config: batch size, grad mode, inference mode, autocast and views of the
per-sample fields do not recompile it (it is called in a fixed state, see
:func:`~gpuaug.backends.staged_gather.sample_colour_staged`).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import torch
from kornia.geometry.transform import warp_affine

from gpuaug.backends.gather import sample_colour
from gpuaug.backends.staged_gather import sample_colour_staged
from gpuaug.batch import FaceBatch
from gpuaug.camera.ops import CAMERA_OPS, apply_camera, fusible_ops
from gpuaug.camera.scene import SceneInputs, scene_inputs
from gpuaug.colour import GRAY_WEIGHTS, colour_affine
from gpuaug.config import AugmentConfig
from gpuaug.device_constants import constant
from gpuaug.labels.matrix import affine_inverse
from gpuaug.output import finish, normalisation, render_config
from gpuaug.params import AugmentParams

Warp = Literal["auto", "gather", "triton", "kornia"]
Sampler = Callable[..., torch.Tensor]
_log = logging.getLogger(__name__)
_compiled: dict[str, Sampler | None] = {}  # device type -> fast sampler, None once it failed or is off


def _triton_sampler() -> Sampler | None:
    """:func:`~gpuaug.backends.triton_render.sample_colour_triton`, or None where triton is not installed."""
    try:
        from gpuaug.backends.triton_render import sample_colour_triton
    except ImportError:
        return None
    return sample_colour_triton


def compiler_errors() -> tuple[type[BaseException], ...]:
    """The exception types that mean "this compiler cannot build or run the kernel here" (Inductor, Dynamo's
    recompile limit, Triton), the only ones that switch a device to its fallback."""
    from torch._dynamo.exc import BackendCompilerFailed, FailOnRecompileLimitHit

    errors: list[type[BaseException]] = [BackendCompilerFailed, FailOnRecompileLimitHit]
    try:  # TritonError: the base of CompilationError, OutOfResources, PTXASError
        from triton.runtime.errors import TritonError

        errors.append(TritonError)
    except ImportError:
        pass
    return tuple(errors)


def _is_compiler_failure(exc: BaseException) -> bool:
    """A named compiler error, or Triton's MLIR lowering failing (it raises a plain RuntimeError)."""
    return isinstance(exc, compiler_errors()) or (
        isinstance(exc, RuntimeError) and "PassManager::run failed" in str(exc))


def apply_colour(images: torch.Tensor, params: AugmentParams, channels: int) -> torch.Tensor:
    """(B, 3, S, S) float [0, 1] -> (B, channels, S, S): the shared per-sample colour map, clamped."""
    w = constant(GRAY_WEIGHTS, images.device, images.dtype)
    mean_gray = (images * w[:, None, None]).sum(dim=(1, 2, 3)) / images[0, 0].numel()
    a, b = colour_affine(params, mean_gray, channels)
    return ((a[:, :, :, None, None] * images[:, None]).sum(2) + b[:, :, None, None]).clamp_(0, 1)


def render_reference(
    batch: FaceBatch, matrix: torch.Tensor, params: AugmentParams, config: AugmentConfig
) -> torch.Tensor:
    """kornia ``warp_affine`` on the zero-padded float batch, then colour and output format (separate passes)."""
    # batch.images pads with zeros beyond each frame's size, and zero is the fill, so the padding is never
    # anything but fill to the bilinear taps.
    src = batch.images.permute(0, 3, 1, 2).float().div_(255)
    size = config.out_size
    with torch.autocast(batch.device.type, enabled=False):
        warped = warp_affine(src, matrix[:, :2].float(), (size, size), align_corners=True)
    # A sample without a finite matrix (invalid input) is fill, as in the gather paths, not kornia's NaN.
    warped = torch.where(torch.isfinite(matrix).flatten(1).all(1)[:, None, None, None], warped, 0.0)
    return finish(apply_colour(warped, params, config.channels), config)


def _compiled_gather(device_type: str) -> Sampler | None:
    """The compiled gather for a device type (:func:`~gpuaug.backends.staged_gather.sample_colour_staged`), or
    None when switched off with ``GPUAUG_COMPILE=0`` or after it failed."""
    if device_type not in _compiled:
        # The stages write into host memory the render keeps: CPU tensors only (other devices: the reference).
        enabled = os.environ.get("GPUAUG_COMPILE", "1") != "0" and device_type == "cpu"
        _compiled[device_type] = sample_colour_staged if enabled else None
    return _compiled[device_type]


def render_gather(
    batch: FaceBatch,
    matrix: torch.Tensor,
    params: AugmentParams,
    config: AugmentConfig,
    sampler: Sampler = sample_colour,
    scene: SceneInputs | None = None,
) -> torch.Tensor:
    """Sample only the output pixels from the uint8 buffer, colour and output format fused, with ``sampler``
    (:func:`~gpuaug.backends.gather.sample_colour` or a kernel with its signature); ``scene``: the scene ops it
    applies too (a sampler taking ``scene``, the Triton kernel)."""
    extra = {} if scene is None else {"scene": scene}
    with torch.autocast(batch.device.type, enabled=False):
        inverse = affine_inverse(matrix.double())[:, :2].float()
        # The colour bias is linear in the warped image's mean grey (the contrast pivot), known only after the
        # warp: hand the sampler the bias per unit of mean grey.
        rows, bias_per_gray = colour_affine(params, torch.ones_like(params.contrast), config.channels)
    return sampler(batch.pixels, batch.offsets, batch.strides, batch.sizes, inverse, rows.float(),
                   bias_per_gray.float(), normalisation(config, batch.device), config.out_size, config.dtype,
                   config.channels_last, **extra)


def auto_render(device_type: str) -> str:
    """What ``warp="auto"`` renders with on a device type now (after a step ran there, it says what that step
    used): the Triton kernel, the compiled gather, the eager gather or kornia."""
    if device_type == "cuda":
        return "Triton kernel" if _compiled.setdefault("cuda", _triton_sampler()) is not None else (
            "eager gather (triton not installed)")
    if _compiled_gather(device_type) is not None:
        return "compiled gather (torch.compile)"
    return "kornia warp_affine (the compiled gather is off or failed)"


def kernel_renders(warp: Warp, device: torch.device) -> bool:
    """Whether ``render`` with ``warp`` runs the Triton kernel on ``device`` (so it can apply the scene ops)."""
    return warp == "triton" or (warp == "auto" and device.type == "cuda"
                                and _compiled.setdefault("cuda", _triton_sampler()) is not None)


def render(
    batch: FaceBatch,
    matrix: torch.Tensor,
    params: AugmentParams,
    config: AugmentConfig,
    warp: Warp = "auto",
    scene: tuple[str, ...] = (),
) -> torch.Tensor:
    """Warp (bilinear, zero fill, pixel centres at integers), colour, output format; see the module docstring.

    ``warp``: ``"auto"``, ``"triton"`` (the Triton kernel on any device: interpreted on the CPU, slow),
    ``"gather"`` (eager gather, never compiled) or ``"kornia"`` (the reference). ``scene``: leading camera ops
    of ``config`` (:func:`~gpuaug.camera.ops.fusible_ops`) applied after the colour, before the output format:
    inside the Triton kernel where it runs, else by the camera chain's torch ops.
    """
    args = (batch, matrix, params, config)
    if scene and not kernel_renders(warp, batch.device):
        images = render(batch, matrix, params, render_config(config), warp)
        others = [op.name for op in CAMERA_OPS if op.name not in scene]
        return finish(apply_camera(images, params, config, skip=others), config)
    if warp == "kornia":
        return render_reference(*args)
    if warp == "gather":
        return render_gather(*args)
    inputs = scene_inputs(params, config, scene) if scene else None
    if warp == "triton":
        sampler = _triton_sampler()
        if sampler is None:
            raise ImportError("warp='triton' needs triton (pip install 'triton>=3.2')")
        return render_gather(*args, sampler=sampler, scene=inputs)
    if warp != "auto":
        raise ValueError(f"unknown warp {warp!r}; choose 'auto', 'triton', 'gather' or 'kornia'")
    device_type = batch.device.type
    if device_type == "cuda":
        fast = _compiled.setdefault("cuda", _triton_sampler())
        fallback: Warp = "gather"
    else:
        fast, fallback = _compiled_gather(device_type), "kornia"
    if fast is None:
        return render(*args, warp=fallback, scene=scene)
    try:
        return render_gather(*args, sampler=fast, scene=inputs)
    except Exception as exc:
        if not _is_compiler_failure(exc):
            raise
        if device_type == "cuda" and torch.cuda.is_current_stream_capturing():
            raise  # a fallback now would be captured into the graph for good
        _log.warning("the %s render kernel failed to compile (%s: %s); using warp=%r from now on", device_type,
                     type(exc).__name__, exc, fallback)
        _compiled[device_type] = None
        return render(*args, warp=fallback, scene=scene)


@dataclass(frozen=True)
class TorchBackend:
    """The torch backend (:func:`render` with ``warp``) as :class:`~gpuaug.FaceAugment` calls it: it names the
    camera ops its render applies itself (:meth:`fused_ops`) and takes them as ``scene``."""

    warp: Warp = "auto"

    def __call__(self, batch: FaceBatch, matrix: torch.Tensor, params: AugmentParams, config: AugmentConfig,
                 scene: tuple[str, ...] = ()) -> torch.Tensor:
        return render(batch, matrix, params, config, self.warp, scene)

    def fused_ops(self, config: AugmentConfig, device: torch.device) -> tuple[str, ...]:
        """The leading camera ops of ``config`` the render applies on ``device``: the scene ops the Triton
        kernel fuses (:func:`~gpuaug.camera.ops.fusible_ops`) where it runs, else none (the chain runs them, on
        the CPU staged per op)."""
        return fusible_ops(config) if kernel_renders(self.warp, device) else ()
