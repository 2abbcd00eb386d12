#!/usr/bin/env bash
# Creates .venv-torch-ref: PyTorch 2.13.0 + torchvision 0.28.0 (+ Keras 3 on torch) from PyPI, the reference that the
# parity tests (scripts/pytorch_parity.py) and the trainer benchmark compare fer-trainer against.
# Safe to re-run. The PyPI torch wheel is a CUDA build and pulls its nvidia-* wheels (~3 GB);
# pip's cache (~/.cache/pip) keeps re-runs offline.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
venv=.venv-torch-ref
if "$venv/bin/python" -c "import torch, torchvision, safetensors.torch, keras, h5py, efficientnet_lite_pytorch, sys; sys.exit(torch.__version__.split('+')[0] != '2.13.0')" 2>/dev/null; then
  exit 0
fi
printf '\033[1;34m[torch-ref]\033[0m installing torch 2.13.0 + torchvision 0.28.0 into %s\n' "$venv"
python3 -m venv "$venv"
"$venv/bin/pip" install -q --disable-pip-version-check -r scripts/requirements-torch-ref.txt
