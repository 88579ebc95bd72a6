"""The Triton render kernel compiled ahead of time for Hopper (sm_90a) and Ampere (sm_80) on this CPU: every
variant the step can launch builds with the bundled ptxas and spills nothing."""

from __future__ import annotations

import pytest

pytest.importorskip("triton", reason="triton is not installed")

from gpuaug.bench.kernels import ARCHS, kernel_reports, markdown, occupancy, variants


def test_occupancy_by_hand() -> None:
    # 40 registers -> 1280 per warp, 4 warps a block -> 12 blocks by registers; 16 by threads: 12 * 4 / 64.
    assert occupancy(40, 0, 4, 90) == 0.75
    assert occupancy(255, 0, 4, 90) == 0.125  # 8192 registers a warp: 2 blocks of 4 warps
    assert occupancy(32, 100 * 1024, 4, 90) == 2 * 4 / 64  # shared memory: 2 blocks of 100 KiB in 228 KiB


def test_every_variant_compiles_for_hopper_and_ampere_without_spills(tmp_path) -> None:
    reports = kernel_reports(out_size=128, workers=2)
    assert len(reports) == len(variants()) * len(ARCHS) == 31 * 2
    spilled = [r for r in reports if r.spill_stores or r.spill_loads]
    assert not spilled, spilled
    assert all(0 < r.registers <= 255 and r.occupancy > 0 for r in reports)
    assert {r.arch for r in reports} == {"sm_90a", "sm_80"}
    assert markdown(reports, 128).count("| pass 1,") == 60
