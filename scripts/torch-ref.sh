#!/usr/bin/env bash
# Creates .venv-torch-ref: PyTorch 2.13.0 + torchvision 0.28.0 (+ Keras 3 on torch) from PyPI, the reference that the
# parity tests (scripts/pytorch_parity.py) and the trainer benchmark compare fer-trainer against.
# Safe to re-run. The PyPI torch wheel is a CUDA build that needs its nvidia-* wheels to import
# (~2.7 GB installed); triton is left out (see requirements-torch-ref.txt). Disk matters on CI:
# the torch wheel comes from .cache/wheels/ (scripts/libtorch.sh downloaded it) and pip keeps no
# cache of its own (--no-cache-dir), so the only copy of the rest is the venv (~4 GB).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
venv=.venv-torch-ref
if KERAS_BACKEND=torch "$venv/bin/python" -c "import torch, torchvision, safetensors.torch, keras, h5py, efficientnet_lite_pytorch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null; then
  exit 0
fi
printf '\033[1;34m[torch-ref]\033[0m installing torch 2.13.0 + torchvision 0.28.0 into %s\n' "$venv"
python3 -m venv "$venv"
pip=("$venv/bin/pip" install -q --disable-pip-version-check --no-cache-dir --find-links "$root/.cache/wheels")
"${pip[@]}" --no-deps -r scripts/requirements-torch-ref-nodeps.txt
# pip then says "torch 2.13.0 requires triton ... which is not installed": on purpose, not shown.
"${pip[@]}" -r scripts/requirements-torch-ref.txt 2> >(grep -v -e "dependency resolver does not currently" -e "requires triton" >&2)
