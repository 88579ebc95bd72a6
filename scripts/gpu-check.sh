#!/usr/bin/env bash
# The GPU check: one call on a GPU machine whose Python already has torch with CUDA and triton, and no package
# index. Run from the repository root:
#
#   bash scripts/gpu-check.sh            # results in $OUT when set, else gpu-check-out/
#
# Carried wheels (kornia, kornia-rs; DALI if carried) are installed first: .devwheels/install.sh when there, else
# the .devwheels/*.whl files (e.g. `pip download -d .devwheels --no-deps kornia kornia-rs` on a machine that has
# an index). Then, each stage under its
# own time limit (at most 500 s in all, so the call fits one 600 s command with room for the start):
#   1. pytest -m cuda (every CUDA test, 120 s per test at most)
#   2. the bench on CUDA: B=256 grey float32 with the resident and streamed (StreamLoader) end-to-end paths
#      and the CNN feed; B=1024 grey float32, grey bfloat16 and colour float32 (gpuaug torch with the Triton
#      render, plain and CUDA-graph captured, the eager gather, pixels only, kornia AugmentationSequential, the
#      seed's chain per sample in torch ops and in torchvision v2, DALI where its wheels were carried)
#   3. the target benchmark at B=1024: 64x64 heatmaps (float32, bf16) and SimCC alone and in the step, next to
#      mmpose's per-sample numpy codecs
#   4. the camera ops at B=1024: the webcam preset and the STAR recipe against the base step, and kornia's chain
#   5. a torch.profiler kernel table of each warp and of the whole step at B=1024
#   6. the stream bench at B=256: bytes per frame, and end to end with StreamLoader(augment=) (each draw's
#      window, params drawn in the loader) against config windows, whole frames and augment-only
# It writes 5 files, each brought up to date after every stage (a run stopped early keeps what it has):
# summary.md (every table and each stage's exit status), pytest.log, profile.txt, bench.tar.gz (the bench's
# json/md/png files, to copy into bench/results/) and env.txt.
set -uo pipefail
cd "$(dirname "$0")/.."
out=${OUT:-gpu-check-out}
mkdir -p "$out"
work=$(mktemp -d)
export PYTHONPATH="$PWD${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1
summary="$out/summary.md"
echo "# GPU check $(date -u +%Y-%m-%dT%H:%MZ)" > "$summary"

collect() {  # copy what the stages made so far into $OUT
  [ -d "$work/bench" ] && tar -czf "$out/bench.tar.gz" -C "$work" bench
  cat "$work"/profile/*.txt > "$out/profile.txt" 2>/dev/null
  return 0
}

stage() {  # stage NAME SECONDS CMD...: run CMD under a time limit, record its exit status, collect
  local name=$1 limit=$2 start=$SECONDS
  shift 2
  echo "== $name" >&2
  timeout --signal=INT --kill-after=10 "$limit" "$@"
  local rc=$?
  echo "- $name: exit $rc in $((SECONDS - start)) s" >> "$summary"
  collect
  return $rc
}

{
  nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv 2>&1
  python3 -c "import torch, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__)"
} > "$out/env.txt" 2>&1
if [ -f .devwheels/install.sh ]; then
  stage "install carried wheels" 40 bash .devwheels/install.sh
elif compgen -G ".devwheels/*.whl" > /dev/null; then  # wheels put there by hand (pip download -d .devwheels)
  stage "install carried wheels" 40 python3 -m pip install --quiet --no-index --no-deps .devwheels/*.whl
fi

# Every failure, not just the first: one GPU run has to show all of them.
stage "pytest -m cuda" 135 python3 -m pytest -q -m cuda -p no:cacheprovider --timeout 60 -rfEs \
  > "$out/pytest.log" 2>&1
tail -n 40 "$out/pytest.log" | sed 's/^/    /' >> "$summary"

bench=(python3 -m gpuaug bench --devices cuda --out "$work/bench" --repeats 5 --slow-repeats 1)
stage "bench B=256 grey float32 (+ resident and stream e2e, feed)" 110 "${bench[@]}" --no-loader --e2e-workers 0 4 \
  --e2e-videos 16 --e2e-frames 16 --e2e-repeats 2 --feed on
stage "bench B=1024 grey float32" 45 "${bench[@]}" --batch 1024 --no-loader --no-e2e
stage "bench B=1024 grey bfloat16" 30 "${bench[@]}" --batch 1024 --no-loader --no-e2e --out-dtype bfloat16 \
  --only "gpuaug torch" kornia DALI
stage "bench B=1024 colour float32" 45 "${bench[@]}" --batch 1024 --no-loader --no-e2e --grayscale-p 0
stage "targets B=1024" 30 python3 -m gpuaug.bench.targets --devices cuda --batch 1024 --out "$work/bench" \
  --repeats 5 --slow-repeats 1
stage "camera ops B=1024" 35 python3 -m gpuaug.bench.camera --device cuda --batch 1024 --repeats 5 --no-compiled \
  --out "$work/bench"
stage "profile B=1024" 35 python3 -m gpuaug.bench.profile --device cuda --batch 1024 --out "$work/profile"
stage "stream B=256" 35 python3 -m gpuaug.bench.stream --devices cuda --e2e-videos 16 --e2e-frames 16 \
  --e2e-repeats 3 --out "$work/bench"

cat "$work"/bench/*.md >> "$summary" 2>/dev/null
cat "$summary"
