"""The benchmark suite runs end to end on a tiny workload and writes its three result files."""

from __future__ import annotations

import json

from gpuaug.bench.cli import main
from gpuaug.bench.contenders import CONTENDERS
from gpuaug.bench.stream import PASS_EPOCHS
from gpuaug.bench.stream import chart as stream_chart

TINY = ["--batch", "4", "--height", "48", "--width", "64", "--repeats", "1", "--slow-repeats", "1", "--warmup", "0",
        "--devices", "cpu"]


def test_bench_smoke(tmp_path):
    args = [*TINY, "--loader-videos", "2", "--loader-frames", "3", "--loader-repeats", "1", "--loader-batch", "4",
            "--e2e-videos", "3", "--e2e-frames", "2", "--e2e-batch", "2", "--e2e-workers", "0", "1",
            "--e2e-repeats", "1", "--feed", "on", "--feed-width", "8", "--stream", "--out", str(tmp_path)]
    assert main(args) == 0
    (result_file,) = tmp_path.glob("bench_*.json")
    result = json.loads(result_file.read_text())
    rows = {r["name"]: r for r in result["contenders"]}
    assert rows["gpuaug torch"]["ratio_to_gpuaug"] == 1.0 and rows["gpuaug torch"]["img_per_s"] > 0
    measured = [r for r in rows.values() if not r.get("unavailable")]
    on_cpu = [c.name for c in CONTENDERS if "cpu" in c.devices]
    assert sorted(r["name"] for r in measured) == sorted(on_cpu), [r for r in rows.values() if r.get("unavailable")]
    assert all(r["ratio_to_gpuaug"] > 0 for r in measured)
    kinds = {(r["kind"], r["order"]) for r in result["loader"]}
    assert ("packed", "shuffled") in kinds and ("npz compressed", "sequential") in kinds
    assert all(r["frames"] == 2 * 3 - 4 for r in result["loader"])  # every frame after the untimed first batch
    paths = {(r["path"], r["workers"]) for r in result["end_to_end"]}
    assert paths == {("padded", 0), ("padded", 1), ("ragged", 0), ("ragged", 1), ("resident", 0), ("augment only", 0),
                     ("stream", 0), ("stream, whole frames", 0)}
    assert all(r["frames"] == 6 - 2 and r["frames_per_second"] > 0 for r in result["end_to_end"])
    feed = {(r["path"], r["workers"]): r for r in result["feed"]}
    assert set(feed) == {("train only", 0), ("ragged", 0), ("ragged", 1), ("resident", 0)}
    assert feed[("train only", 0)]["busy"] == 1 and all(r["busy"] > 0 and r["frames"] > 0 for r in feed.values())
    md = result_file.with_suffix(".md").read_text()
    assert all(f"| {r['name']} | " in md for r in measured) and "data wait" in md
    assert all(f"| {path} | " in md for path, _ in paths) and all(f"| {p} | {w} | " in md for p, w in feed)
    assert md.count(result["environment"]["devices"][0]) == 1  # the device named once, not on every row
    (stream_file,) = tmp_path.glob("stream_*.json")
    assert stream_file.with_suffix(".png").stat().st_size > 0  # the run's chart
    stream = json.loads(stream_file.read_text())
    stream_chart({**stream, "loader": []}, tmp_path / "cuda.png")  # a CUDA run has no loader-alone rows
    assert (tmp_path / "cuda.png").stat().st_size > 0
    assert set(stream["targets"]) == {"end to end vs augment only", "loader vs numpy.copyto of the same windows",
                                      "end to end vs augment only, mapped",
                                      "loader vs numpy.copyto of the same windows, mapped",
                                      "window bytes vs whole frame"}
    assert min(stream["draw_ms"].values()) > 0 and set(stream["draw_ms"]) == {"one batch", "one group"}
    size = stream["bytes_per_frame"]
    assert 0 < size["window (eval)"] < size["whole frame"]
    assert 0 < size["window (per draw)"] < size["window (train)"] < size["whole frame"]
    assert all(r["frames"] == 6 - 2 and r["frames_per_second"] > 0 for r in stream["end_to_end"])
    assert {r["path"] for r in stream["end_to_end"]} == {"stream", "stream, per-draw windows", "stream, whole frames",
                                                         "stream, per-draw windows, mapped", "ragged", "augment only"}
    assert {r["name"] for r in stream["loader"]} == {
        "stream loader, windows", "stream loader, per-draw windows", "stream loader, per-draw windows, mapped",
        "stream loader, whole frames",
        "numpy.copyto, same windows", "numpy.copyto, same per-draw windows", "numpy.copyto, contiguous"}
    # A loader-alone pass: one epoch of PASS_EPOCHS permutations, every frame that many times, for every row.
    assert all(r["frames"] == PASS_EPOCHS * stream["environment"]["frames"] for r in stream["loader"])


def test_bench_colour_output(tmp_path):
    """Colour output (grayscale_p 0): every batched contender runs, and the results get their own files."""
    args = [*TINY, "--grayscale-p", "0", "--only", "kornia", "DALI", "gpuaug", "--no-loader", "--no-e2e",
            "--out", str(tmp_path)]
    assert main(args) == 0
    (result_file,) = tmp_path.glob("bench_*_colour.json")
    rows = json.loads(result_file.read_text())["contenders"]
    assert rows and not [r for r in rows if r.get("unavailable")]


def test_target_bench_smoke(tmp_path):
    """The target benchmark writes its table: every row timed, ratios against mmpose's numpy and the step."""
    args = [*TINY, "--out-size", "32", "--heatmap", "16", "--no-loader", "--no-e2e", "--only", "nothing", "--targets",
            "--out", str(tmp_path)]
    assert main(args) == 0
    (result_file,) = tmp_path.glob("targets_*.json")
    rows = {r["name"]: r for r in json.loads(result_file.read_text())["rows"]}
    assert len(rows) == 3 + 4 + 1 + 2 and all(r["img_per_s"] > 0 for r in rows.values())
    md = result_file.with_suffix(".md").read_text()
    assert "| gpuaug HeatmapTarget msra 16x16 bfloat16 |" in md and "| step + SimCCTarget split 2 float32 |" in md


def test_kinds_bench_smoke(tmp_path):
    """The label kinds benchmark writes its table: every row timed, each batch carrying only its row's kinds in
    its row's layout."""
    import torch

    from gpuaug.bench.kinds import REFERENCE, ROWS, build_steps
    from gpuaug.bench.workload import make_workload

    args = [*TINY, "--out-size", "32", "--no-loader", "--no-e2e", "--only", "nothing", "--kinds",
            "--out", str(tmp_path)]
    assert main(args) == 0
    (result_file,) = tmp_path.glob("kinds_*.json")
    rows = {r["name"]: r for r in json.loads(result_file.read_text())["rows"]}
    assert set(rows) == set(ROWS) and all(r["img_per_s"] > 0 for r in rows.values())
    assert f"| {REFERENCE} |" in result_file.with_suffix(".md").read_text()
    for name, step in build_steps(make_workload(2, 48, 64, 32), torch.device("cpu")).items():
        out = step()
        table, kinds = ROWS[name]
        assert set(out.has) == set(kinds), name
        k = {"ibug68": 68, "lapa106": 106, "wflw98": 98}[table]
        assert out.landmarks2d is None or out.landmarks2d.shape[1] == k, name


def test_camera_bench_contenders_run():
    """The camera bench's contenders build the webcam chain and augment every frame: albumentations in the main
    process and in DataLoader workers (a batch holds every sample once), kornia batched."""
    import torch

    from gpuaug import recipes
    from gpuaug.bench.camera import _albumentations_workers, _kornia_webcam, webcam_albumentations
    from gpuaug.bench.contenders import _albumentations
    from gpuaug.bench.workload import Workload, make_workload

    work = make_workload(4, 60, 80, 32)
    webcam = Workload(**{**vars(work), "config": recipes.webcam(out_size=32)})
    cpu = torch.device("cpu")
    out = _albumentations(webcam, cpu, webcam_albumentations)()
    assert len(out) == 4 and all(img.shape[:2] == (32, 32) and kp.shape == (68, 2) for img, kp in out)
    batch = _albumentations_workers(webcam, cpu)()
    assert len(batch) == 4 and all(img.shape[:2] == (32, 32) for img, _ in batch)
    images, landmarks = _kornia_webcam(work, cpu)()
    assert images.shape[0] == 4 and images.shape[-2:] == (32, 32) and landmarks.shape == (4, 68, 2)
