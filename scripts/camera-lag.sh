#!/usr/bin/env bash
# How stale the frames are that fer-device works on when its pipeline is slower than the camera:
# a stand-in camera program (`camera.kind = "command"`) captures the astronaut at FPS into 4
# buffers (a full set drops the capture, as a sensor does) and sends them on a pipe; fer-device
# runs it for SECONDS by default (newest frame first) and with --every-frame. Lag of a frame =
# when its JSON line was written - when it was captured (the two clocks lined up on the first
# frame, which is processed as soon as it is read). Prints frames processed and skipped, lag
# p50 / max after the first quarter, and mean processing time.
#   scripts/camera-lag.sh [--bin FER_DEVICE] [--board BOARD.toml] [--fps 30] [--seconds 10]
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
bin=target/debug/fer-device board=board-configs/rpi-zero2w.toml fps=30 seconds=10
while [ $# -gt 0 ]; do
  case "$1" in
    --bin) bin=$2; shift 2 ;;
    --board) board=$2; shift 2 ;;
    --fps) fps=$2; shift 2 ;;
    --seconds) seconds=$2; shift 2 ;;
    *) echo "usage: $0 [--bin FER_DEVICE] [--board BOARD.toml] [--fps N] [--seconds N]" >&2; exit 2 ;;
  esac
done
work=$(mktemp -d) && trap 'rm -rf "$work"' EXIT
.venv-ref/bin/python - "$work/frame.i420" <<'PY'
import sys
import numpy as np
from PIL import Image
ycc = np.asarray(Image.open(".cache/fixtures/astronaut.png").convert("RGB").convert("YCbCr"), dtype=np.float64)
q = lambda a: np.clip(np.round(a), 0, 255).astype(np.uint8)
blocks = lambda a: (a[0::2, 0::2] + a[0::2, 1::2] + a[1::2, 0::2] + a[1::2, 1::2]) / 4
open(sys.argv[1], "wb").write(q(ycc[..., 0]).tobytes() + q(blocks(ycc[..., 1])).tobytes() + q(blocks(ycc[..., 2])).tobytes())
PY
cat >"$work/camera.py" <<'PY'
import collections, sys, threading, time
frame = open(sys.argv[1], "rb").read()
fps, seconds, log = float(sys.argv[2]), float(sys.argv[3]), open(sys.argv[4], "w")
buffers, ready, t0 = collections.deque(), threading.Condition(), time.monotonic()
def send():
    seq = 0
    while True:
        with ready:
            while not buffers:
                ready.wait()
            captured = buffers.popleft()
        sys.stdout.buffer.write(frame)
        sys.stdout.buffer.flush()
        log.write(f"{seq} {captured - t0:.4f}\n")
        log.flush()
        seq += 1
threading.Thread(target=send, daemon=True).start()
for n in range(int(fps * seconds)):
    due = t0 + n / fps
    time.sleep(max(0.0, due - time.monotonic()))
    with ready:
        if len(buffers) < 4:
            buffers.append(due)
            ready.notify()
time.sleep(3600)
PY
manifest=$(sed -n 's/^manifest *= *"\(.*\)".*/\1/p' "$board")
for mode in newest every-frame; do
  sed -e "s#^kind = \"v4l2\".*#kind = \"command\"\ncommand = [\"$root/.venv-ref/bin/python\", \"$work/camera.py\", \"$work/frame.i420\", \"$fps\", \"$seconds\", \"$work/sent-$mode.txt\"]\ncommand_format = \"yuvj420\"#" \
    -e '/^\[camera\]/,/^\[display\]/{s#^width = [0-9]*$#width = 512#; s#^height = [0-9]*$#height = 512#}' "$board" >"$work/board.toml"
  flag=() && [ $mode = every-frame ] && flag=(--every-frame)
  timeout -s TERM $((${seconds%.*} + 2)) "$bin" run --board "$work/board.toml" --model "$manifest" --source camera "${flag[@]}" \
    --headless --json "$work/$mode.jsonl" 2>"$work/$mode.log" || [ $? -eq 124 ]
  python3 - "$work" "$mode" <<'PY'
import json, sys
work, mode = sys.argv[1:]
frames = [json.loads(l) for l in open(f"{work}/{mode}.jsonl")]
captured = dict(tuple(map(float, l.split())) for l in open(f"{work}/sent-{mode}.txt"))
busy = lambda f: sum(f["timings_ms"].values())
offset = frames[0]["time_ms"] - busy(frames[0]) - 1000 * captured[0]
lags = sorted(f["time_ms"] - offset - 1000 * captured[f["frame"]] for f in frames[len(frames) // 4:])
read = max(f["frame"] for f in frames) + 1
print(f"{mode:<12} {len(frames)} frames processed of {read} read ({len(captured)} sent); lag p50 {lags[len(lags) // 2]:.0f} ms, max {lags[-1]:.0f} ms; processing {sum(map(busy, frames)) / len(frames):.0f} ms a frame")
PY
done
