#!/usr/bin/env bash
# The one install path, used by the Makefile (README), .ci/run and docker/Dockerfile.
# Usage: scripts/install.sh VENV_DIR [EXTRAS]
#   VENV_DIR  virtual environment to create/reuse ("-" installs into the current interpreter)
#   EXTRAS    pip extras of gpuaug, default "dali,test"; "" for the core install alone (torch, kornia, numpy,
#             pillow, tqdm: what `make demo` needs, about 1 GB)
# TORCH_SPEC (env) picks torch; pinned so pip never pulls an unpinned CUDA build by accident.
# TORCH_INDEX_URL (env), if set, is the index torch alone comes from, e.g. https://download.pytorch.org/whl/cpu
#   or .../whl/cu128 (docker/Dockerfile*); gpuaug and its other dependencies still come from PyPI.
set -euo pipefail
venv=${1:-.venv}
extras=${2-dali,test}  # an empty EXTRAS stays empty: the core install
torch_spec=${TORCH_SPEC:-torch==2.13.0}
here=$(cd "$(dirname "$0")/.." && pwd)

if [ "$venv" = "-" ]; then
  py=${PYTHON:-python3}
else
  [ -x "$venv/bin/python" ] || ${PYTHON:-python3} -m venv "$venv"
  py="$venv/bin/python"
fi
pip=("$py" -m pip install --quiet --disable-pip-version-check)
torch_index=()
[ -z "${TORCH_INDEX_URL:-}" ] || torch_index=(--index-url "$TORCH_INDEX_URL")
"${pip[@]}" "${torch_index[@]}" "$torch_spec"
target="$here"
[ -z "$extras" ] || target="$here[$extras]"
"${pip[@]}" -e "$target"
"$py" -c "import torch, kornia, gpuaug; print('gpuaug', gpuaug.__version__, 'torch', torch.__version__, 'kornia', kornia.__version__)"
