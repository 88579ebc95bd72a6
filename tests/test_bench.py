"""The benchmark suite runs end to end on a tiny workload and writes its three result files."""

from __future__ import annotations

import json

from gpuaug.bench.cli import main


def test_bench_smoke(tmp_path):
    args = ["--batch", "4", "--height", "48", "--width", "64", "--repeats", "1", "--slow-repeats", "1",
            "--warmup", "0", "--loader-videos", "2", "--loader-frames", "3", "--loader-repeats", "1",
            "--loader-batch", "4", "--devices", "cpu", "--out", str(tmp_path)]
    assert main(args) == 0
    (result_file,) = tmp_path.glob("bench_*.json")
    result = json.loads(result_file.read_text())
    rows = {r["name"]: r for r in result["contenders"]}
    assert rows["gpuaug torch"]["ratio_to_gpuaug"] == 1.0 and rows["gpuaug torch"]["img_per_s"] > 0
    measured = [r for r in rows.values() if not r.get("unavailable")]
    assert len(measured) == 6, [r["name"] for r in rows.values() if r.get("unavailable")]  # all six ran
    assert all(r["ratio_to_gpuaug"] > 0 for r in measured)
    kinds = {(r["kind"], r["order"]) for r in result["loader"]}
    assert ("packed", "shuffled") in kinds and ("npz compressed", "sequential") in kinds
    assert all(r["frames"] == 2 * 3 - 4 for r in result["loader"])  # every frame after the untimed first batch
    assert result_file.with_suffix(".md").read_text().count("| cpu") >= len(measured)
