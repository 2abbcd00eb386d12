#!/usr/bin/env bash
# Interleaved latency comparisons for a noisy machine (BENCHMARKS.md): each round runs every
# contender once, one process each, and the figure is the median (and min) over the rounds of
# each run's median batch-1 latency, one thread.
#
#   scripts/bench-ab.sh binaries ROUNDS ITERATIONS MODEL.onnx BIN_A BIN_B...
#       fer-device binaries in turn: `BIN bench-models --plan fer --iterations N MODEL`
#   scripts/bench-ab.sh onnxruntime ROUNDS ITERATIONS MODEL.onnx BIN C H W
#       BIN's plan, then onnxruntime (.venv-ref, scripts/ort_reference.py bench) on the same
#       model and a 1 x C x H x W input; prints onnxruntime/tract too
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
mode=$1 rounds=$2 iterations=$3 model=$4
shift 4
tract() { "$1" bench-models --plan fer --iterations "$iterations" "$model" | awk -v k="$2" '/^bench-models/ {print k, $6 / 1e6}'; }
for _ in $(seq "$rounds"); do
  case "$mode" in
    binaries) for bin in "$@"; do tract "$bin" "$bin"; done ;;
    onnxruntime)
      tract "$1" tract
      "$root/.venv-ref/bin/python" "$root/scripts/ort_reference.py" bench "$model" "$2" "$3" "$4" "$iterations" |
        awk '{print "onnxruntime", $1}'
      ;;
    *) echo "unknown mode $mode (binaries | onnxruntime)" >&2; exit 2 ;;
  esac
done | python3 -c '
import collections, statistics, sys
runs = collections.defaultdict(list)
for line in sys.stdin:
    key, ms = line.split()
    runs[key].append(float(ms))
for key, ms in runs.items():
    print(f"{key}: median {statistics.median(ms):.4f} ms, min {min(ms):.4f} ms over {len(ms)} rounds")
if "tract" in runs and "onnxruntime" in runs:
    ratio = statistics.median(runs["onnxruntime"]) / statistics.median(runs["tract"])
    print(f"onnxruntime/tract {ratio:.3f} (medians)")
'
