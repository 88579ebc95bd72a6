"""Ahead-of-time compile of every Triton render-kernel variant the step can launch, for GPUs this machine does
not need to have: registers, spills, shared memory and theoretical occupancy per variant.

``python -m gpuaug.bench.kernels [--out bench/results/kernels_sm90.md] [--out-size 128]`` compiles each
variant with ``triton.compile`` for sm_90a (H100/H200) and sm_80 (A100) and runs the wheel's own ``ptxas -v``
on the PTX. The variants: pass 0 (grey sums; one for every config, see
:func:`gpuaug.backends.triton_render.launch_args`) and pass 1 for each of grey/colour x float32/bfloat16/float16
x normalised or not x contiguous or channels-last, plus pass 1 with the fused scene ops (gamma, occluders with
colour and noise fills, both) on the heaviest output format of each channel count.
"""

from __future__ import annotations

import argparse
import itertools
import os
import re
import subprocess
import tempfile
from collections.abc import Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass
from pathlib import Path

import torch

#: (arch, ptxas -arch) pairs compiled for.
ARCHS = ((90, "sm_90a"), (80, "sm_80"))
_TRITON_TYPES = {torch.float32: "fp32", torch.bfloat16: "bf16", torch.float16: "fp16"}
# Per SM, for the occupancy estimate (CUDA occupancy calculator rules): threads, registers, blocks, shared bytes.
_SM_LIMITS = {90: (2048, 65536, 32, 228 * 1024), 80: (2048, 65536, 32, 164 * 1024)}


@dataclass(frozen=True)
class Variant:
    """One launchable kernel: ``pass_`` 0 or 1 and the constexprs / output dtype of pass 1."""

    pass_: int
    channels: int = 1
    dtype: str = "float32"
    norm: bool = False
    channels_last: bool = False
    gamma: bool = False
    slots: int = 0  # occluder slots (with the noise fill) fused, 0: none

    @property
    def name(self) -> str:
        if self.pass_ == 0:
            return "pass 0 (grey sums)"
        layout = "channels_last" if self.channels_last else "contiguous"
        scene = ["gamma"] * self.gamma + [f"occluders M={self.slots}"] * (self.slots > 0)
        return ", ".join([f"pass 1, C={self.channels}", self.dtype, "norm" if self.norm else "no norm", layout,
                          *scene])


@dataclass(frozen=True)
class KernelReport:
    variant: str
    arch: str
    registers: int
    spill_stores: int
    spill_loads: int
    shared_bytes: int
    warps: int
    occupancy: float


def variants() -> list[Variant]:
    """Every variant the step can launch (pass 0 is shared by all configs)."""
    out = [Variant(0)]
    for c, dtype, norm, cl in itertools.product((1, 3), ("float32", "bfloat16", "float16"), (False, True),
                                                 (False, True)):
        out.append(Variant(1, c, dtype, norm, cl))
    for c, (gamma, slots) in itertools.product((1, 3), ((True, 0), (False, 2), (True, 2))):
        out.append(Variant(1, c, "bfloat16", True, True, gamma, slots))
    return out


def compile_variant(variant: Variant, arch: int, ptxas_arch: str, out_size: int = 128) -> KernelReport:
    """Compile ``variant`` for ``arch`` and read ptxas's resource usage."""
    import triton
    from triton.backends.compiler import GPUTarget
    from triton.compiler import ASTSource

    from gpuaug.backends.triton_render import GPU_WARPS, kernel_signature, launch_args

    dtype = getattr(torch, variant.dtype)
    constexprs, _ = launch_args(variant.pass_, variant.channels, variant.norm, variant.channels_last, out_size,
                                interpreted=False, gamma=variant.gamma, slots=variant.slots,
                                noise_fill=variant.slots > 0)
    signature = kernel_signature(dtype if variant.pass_ == 1 else torch.float32, _TRITON_TYPES)
    src = ASTSource(fn=_kernel(), signature=signature, constexprs=constexprs)
    compiled = triton.compile(src, target=GPUTarget("cuda", arch, 32), options={"num_warps": GPU_WARPS})
    regs, stores, loads, smem = _ptxas_usage(compiled.asm["ptx"], arch, ptxas_arch)
    smem = max(smem, int(compiled.metadata.shared))
    return KernelReport(variant.name, ptxas_arch, regs, stores, loads, smem, GPU_WARPS,
                        occupancy(regs, smem, GPU_WARPS, arch))


def _kernel():
    from gpuaug.backends.triton_render import render_kernel

    return render_kernel


def _ptxas_usage(ptx: str, arch: int, ptxas_arch: str) -> tuple[int, int, int, int]:
    """(registers, spill store bytes, spill load bytes, shared bytes) from ``ptxas -v`` of the bundled ptxas."""
    from triton.backends.nvidia import compiler as nvidia

    try:
        ptxas = nvidia.get_ptxas(arch).path
    except TypeError:  # older triton: one ptxas for every arch
        ptxas = nvidia.get_ptxas().path
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "kernel.ptx")
        Path(src).write_text(ptx)
        run = subprocess.run([ptxas, f"-arch={ptxas_arch}", "-v", src, "-o", os.path.join(tmp, "kernel.cubin")],
                             capture_output=True, text=True, check=True)
    text = run.stdout + run.stderr

    def number(pattern: str) -> int:
        found = re.search(pattern, text)
        return int(found.group(1)) if found else 0

    return (number(r"Used (\d+) registers"), number(r"(\d+) bytes spill stores"), number(r"(\d+) bytes spill loads"),
            number(r"(\d+) bytes smem"))


def occupancy(registers: int, shared: int, warps: int, arch: int) -> float:
    """Theoretical occupancy (resident warps / maximum) of a kernel using ``registers`` per thread, ``shared``
    bytes per block and ``warps`` per block (registers allocated per warp in units of 256)."""
    threads, regs_per_sm, max_blocks, smem_per_sm = _SM_LIMITS[arch]
    regs_per_warp = -(-max(registers, 1) * 32 // 256) * 256
    blocks = min(max_blocks, threads // (32 * warps), regs_per_sm // (regs_per_warp * warps),
                 smem_per_sm // shared if shared else max_blocks)
    return blocks * warps * 32 / threads


def _compile(job: tuple[Variant, int, str, int]) -> KernelReport:
    return compile_variant(*job)


def kernel_reports(out_size: int = 128, workers: int = 2) -> list[KernelReport]:
    """Every variant for every arch of :data:`ARCHS`, compiled in ``workers`` processes."""
    jobs = [(v, arch, name, out_size) for arch, name in ARCHS for v in variants()]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(_compile, jobs))


def markdown(reports: Sequence[KernelReport], out_size: int) -> str:
    import triton

    lines = [f"# Triton render kernel: resources per variant (S={out_size}, {reports[0].warps} warps)", "",
             f"Compiled ahead of time with triton {triton.__version__} (`python -m gpuaug.bench.kernels`), "
             "resource usage from the bundled `ptxas -v`; occupancy is the theoretical one (resident warps / 64).",
             "", "| variant | arch | registers | spill stores (B) | spill loads (B) | shared (B) | occupancy |",
             "|---|---|---:|---:|---:|---:|---:|"]
    lines += [f"| {r.variant} | {r.arch} | {r.registers} | {r.spill_stores} | {r.spill_loads} | {r.shared_bytes} | "
              f"{r.occupancy:.0%} |" for r in reports]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m gpuaug.bench.kernels", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="bench/results/kernels_sm90.md", help="markdown report (a .json beside it)")
    p.add_argument("--out-size", type=int, default=128)
    p.add_argument("--workers", type=int, default=min(4, os.cpu_count() or 1))
    args = p.parse_args(argv)
    reports = kernel_reports(args.out_size, args.workers)
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(markdown(reports, args.out_size))
    import json

    out.with_suffix(".json").write_text(json.dumps([asdict(r) for r in reports], indent=1) + "\n")
    print(out.read_text())
    spilled = [r for r in reports if r.spill_stores or r.spill_loads]
    return 1 if spilled else 0


if __name__ == "__main__":
    raise SystemExit(main())
