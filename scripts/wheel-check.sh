#!/usr/bin/env bash
# Build gpuaug's wheel and install it, alone, into a fresh virtual environment outside the source tree; then run
# `gpuaug info` there (one augment step on the bundled synthetic data, which reads the packaged mean face) and a
# first batch. What `pip install gpuaug-*.whl` gives a user, checked in CI (.ci/run).
# Usage: scripts/wheel-check.sh [DIST_DIR]   (the wheel is left in DIST_DIR, default dist/)
set -euo pipefail
here=$(cd "$(dirname "$0")/.." && pwd)
dist=${1:-$here/dist}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
pip_quiet=(--quiet --disable-pip-version-check)
rm -f "$dist"/gpuaug-*.whl
${PYTHON:-python3} -m pip wheel "${pip_quiet[@]}" --no-deps --wheel-dir "$dist" "$here"
wheel=$(ls "$dist"/gpuaug-*.whl)
${PYTHON:-python3} -m venv "$work/venv"
"$work/venv/bin/python" -m pip install "${pip_quiet[@]}" "${TORCH_SPEC:-torch==2.13.0}"
"$work/venv/bin/python" -m pip install "${pip_quiet[@]}" "$wheel"
cd "$work"  # nowhere near the sources: only the installed wheel can be imported
"$work/venv/bin/python" -m gpuaug info
"$work/venv/bin/python" - <<'PY'
import torch
import gpuaug
from gpuaug.synth.write import write_dataset

write_dataset("data", videos=2, frames=4)
batch = gpuaug.collate(list(gpuaug.FaceFrames("data", progress=False)))
out = gpuaug.FaceAugment(gpuaug.AugmentConfig(out_size=32))(batch, torch.Generator().manual_seed(0))
assert out.valid.all() and out.images.shape == (8, 1, 32, 32), out.images.shape
assert "site-packages" in gpuaug.__file__, gpuaug.__file__
print("first batch from the installed wheel: ok")
PY
echo "installed $(basename "$wheel") into a fresh venv: ok"
