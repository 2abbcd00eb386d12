#!/usr/bin/env bash
# Deterministic ARM cost of ONNX models without an ARM board (../shared/ARM-COST.md): boots a
# Debian arm64 kernel in full-system QEMU with `-icount shift=0` (the guest clock advances one
# nanosecond per guest instruction) and a static aarch64 fer-device as /init, which runs
# `bench-models` on the given ONNX files and powers off. The printed "median_ns" figures are
# therefore guest instructions per batch-1 inference (QEMU icount), not Pi milliseconds.
#
#   scripts/arm-cost.sh [--cpu cortex-a72|cortex-a76] [--iterations N] [--profile] [--profile-nodes N] [--onnxruntime] MODEL.onnx...
#   scripts/arm-cost.sh [--cpu ...] [--iterations N] [--onnxruntime] [--frame-color auto|rgb|gray] --pipeline BOARD.toml IMAGE|FORMAT:WxH:FRAMES|mjpeg:FRAMES
#   scripts/arm-cost.sh [--cpu ...] [--iterations N] --decode IMAGE [WIDTHxHEIGHT]
#
# --bin PATH measures that static aarch64 fer-device (another build, to compare) instead of
# building this tree's with scripts/arm-static-build.sh.
# --profile adds the time per op kind and the 12 slowest nodes (bench-models --profile);
# --profile-nodes N lists N of them (0: every node) and implies --profile.
# --onnxruntime also runs each model in onnxruntime in the same VM and process, interleaved
# (`bench-models --onnxruntime`): the aarch64 libonnxruntime.so of PyPI's wheel of the version
# scripts/requirements-ref.txt pins (downloaded once into .cache/arm-cost/ort/), loaded by a
# dynamically linked aarch64 fer-device with the cross toolchain's glibc and libstdc++ beside
# it in the VM; its figures are guest instructions too. With --pipeline, `bench` compares the
# board's classifier with it the same way.
# --pipeline runs `fer-device bench` instead: the board config's whole pipeline (decode, detect,
# classify, track, draw, screen) on IMAGE, N passes, with the board's model and the cascade from
# /usr/share/opencv4 copied into the VM; its "ms" columns are then millions of guest
# instructions per frame and stage. --frame-color is bench's (what frames are decoded to).
# --decode runs `fer-device bench-decode` on IMAGE as a camera frame (default 640x480): the
# decoding of each camera pixel format, in millions of guest instructions per frame.
#
# Installs what it needs on first use (qemu-system-arm, cpio, the arm64 kernel package into
# .cache/arm-cost/). Output: one line per model, also saved to .cache/arm-cost/last-<cpu>.txt.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
cpu=cortex-a72
iterations=20
models=()
board=
image=
decode=
profile=
profile_nodes=
ort=
bin=
frame_color=
while [ $# -gt 0 ]; do
  case "$1" in
    --cpu) cpu=$2; shift 2 ;;
    --iterations) iterations=$2; shift 2 ;;
    --profile) profile="--profile $profile_nodes"; shift ;;
    --profile-nodes) profile_nodes="--profile-nodes $2"; profile="--profile $profile_nodes"; shift 2 ;;
    --pipeline) board=$2; image=$3; shift 3 ;;
    --decode)
      image=$2; decode=640x480; shift 2
      if [[ ${1:-} =~ ^[0-9]+x[0-9]+$ ]]; then decode=$1; shift; fi ;;
    --onnxruntime) ort=1; shift ;;
    --bin) bin=$2; shift 2 ;;
    --frame-color) frame_color="--frame-color $2"; shift 2 ;;
    *) models+=("$1"); shift ;;
  esac
done
if [ -z "$board" ] && [ -z "$decode" ] && [ ${#models[@]} -eq 0 ]; then
  echo "usage: $0 [--cpu CPU] [--iterations N] MODEL.onnx... | --pipeline BOARD.toml IMAGE | --decode IMAGE [WxH]" >&2
  exit 2
fi
as_root() { if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi; }
work=.cache/arm-cost
mkdir -p "$work"

if ! command -v qemu-system-aarch64 >/dev/null || ! command -v cpio >/dev/null; then
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends qemu-system-arm cpio
fi
kernel=$(ls "$work"/kern/boot/vmlinuz-* 2>/dev/null | head -1 || true)
if [ -z "$kernel" ]; then
  dpkg --print-foreign-architectures | grep -qx arm64 || { as_root dpkg --add-architecture arm64; }
  as_root apt-get update -qq
  pkg=$(apt-cache depends linux-image-arm64:arm64 | sed -n 's/.*Depends: \(linux-image-[0-9].*-arm64\).*/\1/p' | head -1)
  (cd "$work" && apt-get download "$pkg:arm64" && dpkg-deb -x linux-image-*_arm64.deb kern/ && rm -f linux-image-*_arm64.deb)
  kernel=$(ls "$work"/kern/boot/vmlinuz-* | head -1)
fi

# A static aarch64 fer-device (release, as shipped) as the VM's /init (a dynamic one with
# --onnxruntime), with the models beside it.
rm -rf "$work/initfs" && mkdir -p "$work/initfs/m"
ort_arg=
if [ -n "$ort" ]; then
  # onnxruntime is a shared library: a dynamic fer-device, and the libraries both need.
  version=$(sed -n 's/^onnxruntime==//p' scripts/requirements-ref.txt)
  lib=$work/ort/onnxruntime/capi/libonnxruntime.so.$version
  if [ ! -f "$lib" ]; then
    [ -x .venv-ref/bin/pip ] || { echo "arm-cost: --onnxruntime needs .venv-ref (scripts/setup.sh)" >&2; exit 1; }
    rm -rf "$work/ort" && mkdir -p "$work/ort"
    .venv-ref/bin/pip download -q --disable-pip-version-check --no-deps --only-binary=:all: \
      --platform manylinux_2_28_aarch64 --python-version 3.11 "onnxruntime==$version" -d "$work/ort"
    (cd "$work/ort" && python3 -m zipfile -e onnxruntime-*.whl . && rm -f onnxruntime-*.whl)
  fi
  # (.cargo/config.toml links the ARM targets statically; RUSTFLAGS replaces that.)
  RUSTFLAGS="-C target-feature=-crt-static" cargo build --locked --release --target aarch64-unknown-linux-gnu \
    -p fer-device --target-dir target/arm-cost-dyn -q
  cp target/arm-cost-dyn/aarch64-unknown-linux-gnu/release/fer-device "$work/initfs/init"
  mkdir -p "$work/initfs/lib/aarch64-linux-gnu" "$work/initfs/ort"
  cp -L /usr/aarch64-linux-gnu/lib/ld-linux-aarch64.so.1 "$work/initfs/lib/"
  for l in libc.so.6 libm.so.6 libdl.so.2 librt.so.1 libpthread.so.0 libgcc_s.so.1 libstdc++.so.6; do
    cp -L "/usr/aarch64-linux-gnu/lib/$l" "$work/initfs/lib/aarch64-linux-gnu/"
  done
  cp "$lib" "$work/initfs/ort/"
  ort_arg="--onnxruntime /ort/$(basename "$lib")"
else
  cp "${bin:-$(scripts/arm-static-build.sh)}" "$work/initfs/init"
fi
args=()
if [ -n "$board" ]; then
  # The files the board config names, at the same (relative or absolute) paths inside the VM.
  manifest=$(sed -n 's/^manifest *= *"\(.*\)".*/\1/p' "$board")
  mkdir -p "$work/initfs/board-configs" "$work/initfs/$(dirname "$manifest")" "$work/initfs/img"
  cp "$board" "$work/initfs/board-configs/"
  cp -r "$(dirname "$manifest")/." "$work/initfs/$(dirname "$manifest")/"
  mkdir -p "$work/initfs/usr/share/opencv4"
  cp -r /usr/share/opencv4/haarcascades /usr/share/opencv4/lbpcascades "$work/initfs/usr/share/opencv4/"
  # IMAGE is a photograph, or raw camera frames as FORMAT:WIDTHxHEIGHT:PATH (yuyv:640x480:cam.yuv).
  if [[ $image =~ ^(yuyv|nv12|yuv420|yuvj420|gray|rgb|bgr):([0-9]+x[0-9]+):(.+)$ ]]; then
    cp "${BASH_REMATCH[3]}" "$work/initfs/img/"
    source="${BASH_REMATCH[1]}:${BASH_REMATCH[2]}:/img/$(basename "${BASH_REMATCH[3]}")"
  elif [[ $image =~ ^mjpeg:(.+)$ ]]; then
    cp "${BASH_REMATCH[1]}" "$work/initfs/img/"
    source="mjpeg:/img/$(basename "${BASH_REMATCH[1]}")"
  else
    cp "$image" "$work/initfs/img/"
    source="image:/img/$(basename "$image")"
  fi
  cmd="bench --poweroff --board board-configs/$(basename "$board") --source $source --passes $iterations $ort_arg $frame_color"
elif [ -n "$decode" ]; then
  mkdir -p "$work/initfs/img"
  cp "$image" "$work/initfs/img/"
  cmd="bench-decode --poweroff --width ${decode%x*} --height ${decode#*x} --iterations $iterations /img/$(basename "$image")"
else
  for i in "${!models[@]}"; do
    cp "${models[$i]}" "$work/initfs/m/$i.onnx"
    args+=("/m/$i.onnx")
  done
  cmd="bench-models --poweroff --iterations $iterations $profile $ort_arg ${args[*]}"
fi
(cd "$work/initfs" && find . | cpio -o -H newc --quiet | gzip -1) > "$work/bench.cpio.gz"
out="$work/last-$cpu.txt"
timeout 3000 qemu-system-aarch64 -M virt -cpu "$cpu" -m 1024 -nographic -nic none -icount shift=0 \
  -kernel "$kernel" -initrd "$work/bench.cpio.gz" \
  -append "console=ttyAMA0 quiet -- $cmd" \
  | tr -d '\r' | grep -E '^(bench-models|bench-decode|format|MJPEG|YUYV|NV12|YUV420|YUVJ420|GRAY|RGB|kernels|error|note|fer-device bench|stage|decode|detect|classify|track|draw|screen|total|fps|start-up|classifier|profile|  )' > "$out.raw"
# Name the models again (the VM saw /m/<i>.onnx).
while read -r line; do
  if [[ $line =~ ^bench-models\ /m/([0-9]+)\.onnx\ (.*)$ ]]; then
    echo "cpu $cpu model ${models[${BASH_REMATCH[1]}]} ${BASH_REMATCH[2]}"
  else
    echo "$line"
  fi
done < "$out.raw" | tee "$out"
rm -f "$out.raw"
