"""The render as a hand-written Triton kernel: warp + colour + normalisation + dtype + memory format in one
source, run compiled on CUDA and by Triton's interpreter on CPU tensors (the tests' way to check it).

It computes exactly what its torch reference :func:`gpuaug.backends.gather.sample_colour` computes, same
arguments, same convention (bilinear, zero fill, pixel centres at integers; taps count only inside their
frame's true size) and the same safety (every byte index clamped into its frame and into the buffer; a map
that is not finite reads as fill, entries clamped so tap arithmetic stays defined).

Design: the contrast pivot needs each output image's mean grey before any output pixel can be written, so
the kernel runs twice over a grid of (B, tiles) programs, each owning ``BLOCK`` output pixels of one image:

1. ``PASS=0`` samples its tile and stores the tile's grey sum in ``partial[b, tile]``;
2. ``PASS=1`` sums image b's partials (a few dozen floats, fixed order), samples its tile again and writes
   the coloured, normalised, cast pixels.

Why not atomics: a float ``atomic_add`` sums in whatever order the programs finish, so the same seed would
not give bit-identical images run to run; the fixed-order sum does. Why not one program per image: at
B=256 that is two programs per SM on an H100, too few to hide the gathers' latency; tiles keep every image
spread over many SMs. Why recompute the taps in pass 2 instead of storing them: the tap bytes an image reads
are mostly still in L2 when its second pass runs, while a float32 scratch copy would cost 8 bytes of HBM
traffic per output value. Both passes are one kernel with a constexpr ``PASS``, so there is one tap source.

Block size is a heuristic (no autotuning at import), to be measured when hardware comes: 256 pixels with 4
warps on a GPU (2 pixels a thread; ``python -m gpuaug.bench.kernels`` shows 40-54 registers and no spills on
sm_90a: a small block keeps registers low and occupancy high); one tile per image under the interpreter,
which costs about 1 ms per program instance whatever its size. No libdevice: ``floor``, ``abs``, min/max,
``exp``/``log`` (gamma), IEEE division (``div_rn``) and arithmetic only.

Scene ops (constexprs ``GAMMA``, ``SLOTS``, ``NOISE_FILL``; all off is the plain render, the same variants bit
for bit): pass 1 applies gamma and occluders (flat-colour and counter-noise fills) to the clamped colour, before
the normalisation, from the per-sample inputs of :class:`~gpuaug.camera.scene.SceneInputs`; the camera chain then
skips them. Coverage is decided in float32 with the torch ops' operation order; on the GPU the compiler may
contract a product and a sum into one FMA, so a pixel centre within an ulp of an edge can differ from the torch
ops there (the interpreter, like torch, rounds every step).
"""

from __future__ import annotations

import contextlib

import torch
import triton
import triton.language as tl
from triton.runtime.interpreter import InterpretedFunction
from triton.runtime.jit import JITFunction

from gpuaug.backends.gather import map_bound
from gpuaug.camera.occluders import TAB
from gpuaug.camera.scene import SceneInputs
from gpuaug.colour import GRAY_WEIGHTS
from gpuaug.config import OCCLUDER_FILLS

GPU_BLOCK, GPU_WARPS = 256, 4  # 2 pixels a thread: 40-54 registers, 56-75 % occupancy on sm_90a
_INTERPRETER_BLOCK_MAX = 16384
# Where the kernel reads an occluder table's columns (gpuaug.camera.occluders.TABLE_COLUMNS) and the fill codes it
# draws (gpuaug.config.OCCLUDER_FILLS); globals a kernel reads must be constexprs.
_COLUMNS = tl.constexpr(len(TAB))
_ACTIVE, _ELLIPSE, _CX, _CY = (tl.constexpr(TAB[k]) for k in ("active", "ellipse", "cx", "cy"))
_HALF_W, _HALF_H, _COS, _SIN = (tl.constexpr(TAB[k]) for k in ("half_w", "half_h", "cos", "sin"))
_FILL, _RED = tl.constexpr(TAB["fill"]), tl.constexpr(TAB["r"])
_COLOUR_FILL, _NOISE_FILL = (tl.constexpr(OCCLUDER_FILLS.index(k)) for k in ("colour", "noise"))


def _render_kernel(
    pixels,  # (N,) uint8
    offsets,  # (B,) int64
    strides,  # (B,) int64
    sizes,  # (B, 2) int64 (H, W)
    inverse,  # (B, 2, 3) float32 output -> source
    rows,  # (B, C, 3) float32
    bias,  # (B, C) float32 bias per unit of mean grey
    scale,  # (C,) float32 (read only when NORM)
    shift,  # (C,) float32 (read only when NORM)
    partial,  # (B, tiles) float32 grey sum of each tile
    gamma,  # (B,) float32 (read only when GAMMA)
    occluders,  # (B, SLOTS, 12) float32 occluder table (read only when SLOTS > 0)
    noise,  # (B, 2) int64 hashed seed, channel stride of the fill noise (read only when NOISE_FILL)
    out,  # (B, C, S, S) of the output dtype, contiguous or channels-last
    last,  # N - 1
    out_size,  # S
    tiles,  # tiles per image
    bound,  # entries of the map are clamped into [-bound, bound]
    grey_r,  # ITU-R 601 luma weights
    grey_g,
    grey_b,
    C: tl.constexpr,
    PASS: tl.constexpr,
    NORM: tl.constexpr,
    CHANNELS_LAST: tl.constexpr,
    BLOCK: tl.constexpr,
    TILES_P2: tl.constexpr,
    GAMMA: tl.constexpr,
    SLOTS: tl.constexpr,
    NOISE_FILL: tl.constexpr,
):
    b = tl.program_id(0).to(tl.int64)
    t = tl.program_id(1)
    n = out_size * out_size
    p = t * BLOCK + tl.arange(0, BLOCK)
    inside = p < n
    u = (p % out_size).to(tl.float32)
    v = (p // out_size).to(tl.float32)

    # The per-sample map, made safe once (what gather.safe_inverse does): |x| <= FLT_MAX only for finite x.
    m0 = tl.load(inverse + b * 6 + 0)
    m1 = tl.load(inverse + b * 6 + 1)
    m2 = tl.load(inverse + b * 6 + 2)
    m3 = tl.load(inverse + b * 6 + 3)
    m4 = tl.load(inverse + b * 6 + 4)
    m5 = tl.load(inverse + b * 6 + 5)
    big = 3.4028234663852886e38
    finite = ((tl.abs(m0) <= big) & (tl.abs(m1) <= big) & (tl.abs(m2) <= big) & (tl.abs(m3) <= big)
              & (tl.abs(m4) <= big) & (tl.abs(m5) <= big))
    m0 = tl.where(finite, tl.minimum(tl.maximum(m0, -bound), bound), 0.0)
    m1 = tl.where(finite, tl.minimum(tl.maximum(m1, -bound), bound), 0.0)
    m2 = tl.where(finite, tl.minimum(tl.maximum(m2, -bound), bound), -bound)
    m3 = tl.where(finite, tl.minimum(tl.maximum(m3, -bound), bound), 0.0)
    m4 = tl.where(finite, tl.minimum(tl.maximum(m4, -bound), bound), 0.0)
    m5 = tl.where(finite, tl.minimum(tl.maximum(m5, -bound), bound), -bound)
    x = m0 * u + (m1 * v + m2)
    y = m3 * u + (m4 * v + m5)

    # Taps (gather.source_taps, gather._tent_weights): left/top tap clamped into [0, size - 2], tent weights,
    # 0 outside the frame.
    h = tl.load(sizes + b * 2)
    w = tl.load(sizes + b * 2 + 1)
    lx = tl.minimum(tl.maximum(tl.floor(x), 0.0), tl.maximum(w - 2, 0).to(tl.float32))
    ly = tl.minimum(tl.maximum(tl.floor(y), 0.0), tl.maximum(h - 2, 0).to(tl.float32))
    dx = x - lx
    dy = y - ly
    wx0 = tl.maximum(1 - tl.abs(dx), 0.0) * (w > 0).to(tl.float32)
    wx1 = tl.maximum(1 - tl.abs(dx - 1), 0.0) * (w > 1).to(tl.float32)
    wy0 = tl.maximum(1 - tl.abs(dy), 0.0) * (h > 0).to(tl.float32)
    wy1 = tl.maximum(1 - tl.abs(dy - 1), 0.0) * (h > 1).to(tl.float32)
    step = tl.load(strides + b)
    top = tl.load(offsets + b) + ly.to(tl.int64) * step + lx.to(tl.int64) * 3

    # tl.full and tl.reduce, not tl.zeros and tl.sum: those two are @jit functions of triton's standard
    # library, which the interpreter can only run when TRITON_INTERPRET=1 was set before triton was imported;
    # builtins (and the stdlib's _sum_combine, which the interpreter maps to np.sum) run either way, so one
    # process can run this source compiled on CUDA tensors and interpreted on CPU ones.
    red = tl.full([BLOCK], 0.0, tl.float32)
    green = tl.full([BLOCK], 0.0, tl.float32)
    blue = tl.full([BLOCK], 0.0, tl.float32)
    for k in tl.static_range(4):
        if k // 2 == 0:
            wy = wy0
            index = top
        else:
            wy = wy1
            index = top + step
        if k % 2 == 0:
            weight = wy * wx0
        else:
            weight = wy * wx1
            index = index + 3
        # Each byte index is clamped into the buffer too: offsets and strides that do not fit it stay inside.
        red += weight * tl.load(pixels + tl.minimum(tl.maximum(index, 0), last), mask=inside, other=0).to(tl.float32)
        green += weight * tl.load(pixels + tl.minimum(tl.maximum(index + 1, 0), last), mask=inside,
                                  other=0).to(tl.float32)
        blue += weight * tl.load(pixels + tl.minimum(tl.maximum(index + 2, 0), last), mask=inside,
                                 other=0).to(tl.float32)

    if PASS == 0:
        grey = tl.where(inside, grey_r * red + grey_g * green + grey_b * blue, 0.0)
        tl.store(partial + b * tiles + t, tl.reduce(grey, 0, tl.standard._sum_combine))
    else:
        j = tl.arange(0, TILES_P2)
        parts = tl.load(partial + b * tiles + j, mask=j < tiles, other=0.0)
        mean = tl.reduce(parts, 0, tl.standard._sum_combine) / n * (1 / 255)
        if GAMMA:
            g = tl.load(gamma + b)
        if SLOTS > 0:
            # The scene ops (gpuaug.camera.scene): the occluder that shows at each pixel is the last active slot
            # covering it (slots are painted in order), decided once for all channels. Coverage repeats
            # occluders.covers() op for op in float32, division rounded as IEEE (plain `/` is approximate on
            # the GPU), so a pixel centre on an edge is decided as the torch chain decides it.
            top = tl.full([BLOCK], -1, tl.int32)
            code = tl.full([BLOCK], -1.0, tl.float32)
            for m in tl.static_range(SLOTS):
                row = occluders + (b * SLOTS + m) * _COLUMNS
                dx = u - tl.load(row + _CX)
                dy = v - tl.load(row + _CY)
                cos = tl.load(row + _COS)
                sin = tl.load(row + _SIN)
                lx = tl.abs(dx * cos + dy * sin)
                ly = tl.abs(dy * cos - dx * sin)
                half_w = tl.load(row + _HALF_W)
                half_h = tl.load(row + _HALF_H)
                rect = (lx <= half_w) & (ly <= half_h)
                qx = tl.math.div_rn(lx, half_w)
                qy = tl.math.div_rn(ly, half_h)
                ellipse = qx * qx + qy * qy <= 1
                # Scalar flags select rather than `&` a block: Triton's interpreter cannot `&` a bool scalar
                # broadcast over a block.
                hit = tl.where(tl.load(row + _ACTIVE) > 0.5, tl.where(tl.load(row + _ELLIPSE) > 0.5, ellipse, rect),
                               False)
                top = tl.where(hit, m, top)
                code = tl.where(hit, tl.load(row + _FILL), code)
            if NOISE_FILL:
                # hash_uniform(seed, pixel_index, FILL_STREAM) in uint32 (wrapping products, logical shifts, as
                # counter_noise's int32 maths); the per-sample stream_base comes precomputed.
                base = tl.load(noise + b * 2).to(tl.uint32)
                plane = tl.load(noise + b * 2 + 1).to(tl.int32)
        for c in tl.static_range(C):
            r0 = tl.load(rows + (b * C + c) * 3 + 0) * (1 / 255)
            r1 = tl.load(rows + (b * C + c) * 3 + 1) * (1 / 255)
            r2 = tl.load(rows + (b * C + c) * 3 + 2) * (1 / 255)
            value = r0 * red + r1 * green + r2 * blue + tl.load(bias + b * C + c) * mean
            value = tl.minimum(tl.maximum(value, 0.0), 1.0)
            if GAMMA:  # apply_gamma: exp(g * log(x)), x as is where g == 1 (x is already clamped into [0, 1])
                value = tl.where(g == 1, value, tl.exp(tl.log(value) * g))
            if SLOTS > 0:  # draw_occluders' fills: "colour" (per slot), "noise"; any other shows the pixel as is
                colour = value
                for m in tl.static_range(SLOTS):
                    colour = tl.where(top == m, tl.load(occluders + (b * SLOTS + m) * _COLUMNS + _RED + c), colour)
                value = tl.where(code == _COLOUR_FILL, colour, value)
                if NOISE_FILL:
                    bits = (c * plane + p).to(tl.uint32, bitcast=True) + base
                    for k in tl.static_range(2):  # mix32(mix32(index + base) ^ base)
                        bits = bits ^ (bits >> 16)
                        bits = bits * 0x7FEB352D
                        bits = bits ^ (bits >> 15)
                        bits = bits * 0x846CA68B
                        bits = bits ^ (bits >> 16)
                        if k == 0:
                            bits = bits ^ base
                    value = tl.where(code == _NOISE_FILL, ((bits >> 8).to(tl.float32) + 0.5) * (1.0 / 16777216), value)
            if NORM:
                value = value * tl.load(scale + c) + tl.load(shift + c)
            where = b * C * n + p * C + c if CHANNELS_LAST else b * C * n + c * n + p
            tl.store(out + where, value.to(out.dtype.element_ty), mask=inside)


#: The kernel compiled for the GPU (also what ``triton.compile`` builds ahead of time).
render_kernel = JITFunction(_render_kernel)
#: The same source run by Triton's interpreter on CPU tensors (NumPy underneath).
render_kernel_interpreted = InterpretedFunction(_render_kernel)


def launch_shape(out_size: int, interpreted: bool) -> tuple[int, int, int]:
    """(BLOCK, tiles per image, TILES_P2) for an S x S output: GPU tiles of :data:`GPU_BLOCK` pixels, or one
    tile per image under the interpreter (its cost is per program instance)."""
    n = out_size * out_size
    block = min(triton.next_power_of_2(n), _INTERPRETER_BLOCK_MAX) if interpreted else GPU_BLOCK
    tiles = triton.cdiv(n, block)
    return block, tiles, triton.next_power_of_2(tiles)


def launch_args(
    pass_: int, channels: int, norm: bool, channels_last: bool, out_size: int, interpreted: bool,
    gamma: bool = False, slots: int = 0, noise_fill: bool = False,
) -> tuple[dict[str, int | bool], int]:
    """(constexprs, tiles per image) of one pass. Pass 0 reads neither the colour rows, the scene ops nor the
    output format, so it is launched with the same constexprs for every config (one compiled variant) and its
    ``out`` argument is the float32 partial-sum buffer. ``gamma``, ``slots`` (occluder slots, 0: none) and
    ``noise_fill`` switch the scene ops of pass 1 (:class:`~gpuaug.camera.scene.SceneInputs`); all off is the
    plain render."""
    block, tiles, tiles_p2 = launch_shape(out_size, interpreted)
    if pass_ == 0:
        channels, norm, channels_last, gamma, slots, noise_fill = 1, False, False, False, 0, False
    return {"C": channels, "PASS": pass_, "NORM": norm, "CHANNELS_LAST": channels_last, "BLOCK": block,
            "TILES_P2": tiles_p2, "GAMMA": gamma, "SLOTS": slots, "NOISE_FILL": noise_fill and slots > 0}, tiles


def kernel_signature(out_dtype: torch.dtype, types: dict[torch.dtype, str]) -> dict[str, str]:
    """The kernel's argument types for ``triton.compile`` (``types``: torch dtype -> triton type name)."""
    pointers = {"pixels": "*u8", "offsets": "*i64", "strides": "*i64", "sizes": "*i64", "inverse": "*fp32",
                "rows": "*fp32", "bias": "*fp32", "scale": "*fp32", "shift": "*fp32", "partial": "*fp32",
                "gamma": "*fp32", "occluders": "*fp32", "noise": "*i64", "out": "*" + types[out_dtype]}
    scalars = {"last": "i64", "out_size": "i32", "tiles": "i32", "bound": "fp32", "grey_r": "fp32",
               "grey_g": "fp32", "grey_b": "fp32"}
    constexprs = ("C", "PASS", "NORM", "CHANNELS_LAST", "BLOCK", "TILES_P2", "GAMMA", "SLOTS", "NOISE_FILL")
    return pointers | scalars | dict.fromkeys(constexprs, "constexpr")


def sample_colour_triton(
    pixels: torch.Tensor,
    offsets: torch.Tensor,
    strides: torch.Tensor,
    sizes: torch.Tensor,
    inverse: torch.Tensor,
    rows: torch.Tensor,
    bias_per_gray: torch.Tensor,
    norm: tuple[torch.Tensor, torch.Tensor] | None,
    out_size: int,
    dtype: torch.dtype = torch.float32,
    channels_last: bool = False,
    scene: SceneInputs | None = None,
) -> torch.Tensor:
    """:func:`gpuaug.backends.gather.sample_colour` by the Triton kernel (same arguments, same result):
    compiled on CUDA tensors (through the ``gpuaug::sample_colour`` custom op, so ``torch.compile`` traces
    it), interpreted on CPU tensors. ``scene``: the scene ops (gamma, occluders) to apply to the clamped
    colour, before the normalisation, as the camera chain's :func:`~gpuaug.camera.exposure.apply_gamma` and
    :func:`~gpuaug.camera.occluders.draw_occluders` would after a float32 [0, 1] render.

    Returns:
        (B, C, S, S) ``dtype``, C = ``rows.shape[1]``; channels-last memory format when ``channels_last``.
    """
    scene = scene or SceneInputs()
    scale, shift = norm if norm is not None else (None, None)
    # The kernel addresses bytes from the buffer's start: a strided view must be made dense first (free when it
    # is), and an empty buffer gets one zero byte, so the clamped taps always have a byte to read.
    pixels = pixels.contiguous() if pixels.numel() else pixels.new_zeros(1)
    return torch.ops.gpuaug.sample_colour(pixels, offsets.contiguous(), strides.contiguous(), sizes.contiguous(),
                                          inverse.contiguous(), rows.contiguous(), bias_per_gray.contiguous(),
                                          scale, shift, scene.gamma, scene.occluders, scene.noise, out_size, dtype,
                                          channels_last)


@torch.library.triton_op("gpuaug::sample_colour", mutates_args=())
def _sample_colour_op(
    pixels: torch.Tensor,
    offsets: torch.Tensor,
    strides: torch.Tensor,
    sizes: torch.Tensor,
    inverse: torch.Tensor,
    rows: torch.Tensor,
    bias_per_gray: torch.Tensor,
    scale: torch.Tensor | None,
    shift: torch.Tensor | None,
    gamma: torch.Tensor | None,
    occluders: torch.Tensor | None,
    noise: torch.Tensor | None,
    out_size: int,
    dtype: torch.dtype,
    channels_last: bool,
) -> torch.Tensor:
    b, c = rows.shape[0], rows.shape[1]
    interpreted = pixels.device.type != "cuda"
    memory_format = torch.channels_last if channels_last else torch.contiguous_format
    out = torch.empty((b, c, out_size, out_size), dtype=dtype, device=pixels.device, memory_format=memory_format)
    if b == 0:
        return out
    norm = scale is not None and shift is not None
    if not norm:
        scale = shift = rows  # never read (NORM is a constexpr False); any float32 pointer will do
    # The scene ops off: likewise never read, so the plain render keeps its compiled variants.
    scene = {"gamma": gamma is not None, "slots": 0 if occluders is None else occluders.shape[1],
             "noise_fill": noise is not None}
    gamma = rows if gamma is None else gamma
    occluders = rows if occluders is None else occluders
    noise = offsets if noise is None else noise
    kernel = render_kernel_interpreted if interpreted else torch.library.wrap_triton(render_kernel)
    bound = map_bound(out_size)  # as gather.safe_inverse
    partial = None
    # Triton launches on the current CUDA device and its current stream: make that the tensors' device.
    with contextlib.nullcontext() if interpreted else torch.cuda.device(pixels.device):
        for pass_ in (0, 1):
            constexprs, tiles = launch_args(pass_, c, norm, channels_last, out_size, interpreted, **scene)
            if partial is None:
                partial = torch.empty((b, tiles), dtype=torch.float32, device=pixels.device)
            kernel[(b, tiles)](pixels, offsets, strides, sizes, inverse, rows, bias_per_gray, scale, shift, partial,
                               gamma, occluders, noise, partial if pass_ == 0 else out, pixels.numel() - 1, out_size,
                               tiles, bound, *GRAY_WEIGHTS, **constexprs,
                               **({} if interpreted else {"num_warps": GPU_WARPS}))
    return out
