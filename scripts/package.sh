#!/usr/bin/env bash
# Makes the package that goes onto a board: one static fer-device (with the V4L2 camera), the
# board config, the model it names and the face detector's cascade, the systemd service and
# deploy/install.sh. Prints the archive's path.
#
#   scripts/package.sh rpi4                         dist/fer-edge-rpi4-aarch64.tar.gz (64-bit OS)
#   scripts/package.sh rpi-zero2w --target armv7    dist/fer-edge-rpi-zero2w-armv7.tar.gz (32-bit OS)
#
# Options: --target aarch64|armv7 (default aarch64), --model MANIFEST (instead of the board
# config's [model] manifest), --bin PATH (an already built static fer-device for the target,
# instead of building the release one), --out DIR (default dist/).
# The package is checked before it is written: its binary is static, has the camera and, under
# qemu-user, runs `check-config` on the packaged config from inside the package (model hash,
# cascade found).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

usage() { sed -n '2,14p' "$0" >&2; exit 2; }
[ $# -ge 1 ] || usage
board=$1; shift
target=aarch64 model="" bin="" out=dist
while [ $# -gt 0 ]; do
  case $1 in
    --target) target=$2; shift 2 ;;
    --model) model=$2; shift 2 ;;
    --bin) bin=$2; shift 2 ;;
    --out) out=$2; shift 2 ;;
    *) usage ;;
  esac
done
config=board-configs/$board.toml
[ -f "$config" ] || { echo "package.sh: no board config $config" >&2; exit 1; }
case $target in
  aarch64) triple=aarch64-unknown-linux-gnu gnu=aarch64-linux-gnu qemu=(qemu-aarch64 -cpu cortex-a72) ;;
  armv7) triple=armv7-unknown-linux-gnueabihf gnu=arm-linux-gnueabihf qemu=(qemu-arm -cpu cortex-a7) ;;
  *) echo "package.sh: --target must be aarch64 or armv7, not $target" >&2; exit 2 ;;
esac

[ -n "$bin" ] || bin=$(scripts/arm-static-build.sh "$target")
if "$gnu-readelf" -l "$bin" | grep -q 'Requesting program interpreter'; then
  echo "package.sh: $bin is dynamically linked; the board needs a static binary" >&2
  exit 1
fi

# Model and cascade named by the config (read with Python's tomllib: no TOML parser in bash).
read -r cfg_manifest detector cfg_cascade < <(python3 -c '
import sys, tomllib
c = tomllib.load(open(sys.argv[1], "rb"))
d = c.get("detection", {})
print(c["model"]["manifest"], d.get("detector", "haar"), d.get("cascade", "") or "-")' "$config")
manifest=${model:-$cfg_manifest}
[ -f "$manifest" ] || { echo "package.sh: model manifest $manifest not found (fer-train import mini-xception makes the boards' default)" >&2; exit 1; }
if [ "$cfg_cascade" != - ]; then
  cascade=$cfg_cascade
elif [ "$detector" = lbp ]; then
  cascade=/usr/share/opencv4/lbpcascades/lbpcascade_frontalface_improved.xml
else
  cascade=/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml
fi
[ -f "$cascade" ] || { echo "package.sh: cascade $cascade not found (Debian's opencv-data: scripts/setup.sh)" >&2; exit 1; }

name=fer-edge-$board-$target
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
pkg=$stage/$name
model_name=$(basename "$(dirname "$manifest")")
onnx=$(python3 -c 'import json, sys; print(json.load(open(sys.argv[1]))["onnx_file"])' "$manifest")
mkdir -p "$pkg/bin" "$pkg/models/$model_name" "$pkg/share"
"$gnu-strip" -o "$pkg/bin/fer-device" "$bin"
cp "$manifest" "$pkg/models/$model_name/manifest.json"
cp "$(dirname "$manifest")/$onnx" "$pkg/models/$model_name/$onnx"
cp "$cascade" "$pkg/share/"
# The config with the packaged model and cascade, relative to the package (the service's
# working directory).
python3 - "$config" "models/$model_name/manifest.json" "share/$(basename "$cascade")" >"$pkg/board.toml" <<'PY'
import re, sys
text = open(sys.argv[1]).read()
text, n = re.subn(r'(?m)^manifest = .*$', f'manifest = "{sys.argv[2]}"', text)
assert n == 1, "board config: no [model] manifest line"
cascade = f'cascade = "{sys.argv[3]}"   # packaged copy of opencv-data\'s'
if re.search(r'(?m)^cascade = ', text):
    text = re.sub(r'(?m)^cascade = .*$', cascade, text)
else:
    text, n = re.subn(r'(?m)^\[detection\]$', '[detection]\n' + cascade, text)
    assert n == 1, "board config: no [detection] table"
sys.stdout.write(text)
PY
cp deploy/fer-edge.service deploy/install.sh "$pkg/"
echo "$target ($triple)" >"$pkg/TARGET"

# The packaged config, checked by the packaged binary from inside the package (no sysroot: a
# dynamic binary would not start).
report=$(cd "$pkg" && "${qemu[@]}" bin/fer-device check-config board.toml)
if ! grep -q 'hash verified' <<<"$report" || ! grep -q "cascade  share/.*: present" <<<"$report"; then
  printf '%s\n' "$report" >&2
  echo "package.sh: the packaged config does not find its model or cascade" >&2
  exit 1
fi
build=$(sed -n 's/^build *//p' <<<"$report")   # fer-device VERSION for ARCH-linux: camera support
if ! grep -q 'V4L2 camera (nokhwa) built in$' <<<"$build"; then
  echo "package.sh: $bin has no V4L2 camera support (${build:-an older fer-device}); the board's service reads the camera" >&2
  exit 1
fi

cat >"$pkg/README.txt" <<TXT
$name: fer-edge for the $board board ($(python3 -c 'import sys, tomllib; print(tomllib.load(open(sys.argv[1], "rb"))["description"])' "$config")).
$build; static, for $target Linux.
Made $(date -u +%Y-%m-%d) from $(git rev-parse --short HEAD)$(git diff --quiet HEAD -- . 2>/dev/null || echo ' (with uncommitted changes)').

  sudo ./install.sh           install into /opt/fer-edge, check board.toml against this board's
                              devices, and start the fer-edge service (systemd)
  journalctl -u fer-edge -f   its log
  cd /opt/fer-edge && bin/fer-device check-config board.toml    what it finds on this board
  cd /opt/fer-edge && bin/fer-device run --board board.toml --source camera --headless --max-frames 100

board.toml documents its fields (camera, display and its pins, model, detection, tracking);
edit it, then: sudo systemctl restart fer-edge. The model: models/$model_name (manifest.json
names its labels, input, normalisation and provenance). The cascade: share/, from OpenCV
(opencv-data; its licence is in the XML's header).
A Raspberry Pi Camera Module (a libcamera camera, no plain V4L2 one): set kind = "rpicam" in
board.toml's [camera] (a width that is a multiple of 64); fer-device then runs rpicam-vid
(sudo apt install rpicam-apps) and reads its frames, restarting it when it stops or stalls.
TXT
(cd "$pkg" && find . -type f ! -name SHA256SUMS -printf '%P\n' | sort | xargs sha256sum >SHA256SUMS)
mkdir -p "$out"
tar -C "$stage" -czf "$out/$name.tar.gz" "$name"
echo "$out/$name.tar.gz"
