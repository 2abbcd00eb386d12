#!/usr/bin/env bash
set -uo pipefail
source .gpu/setup.sh
B=./.gpu/fer-train
for b in 128 1024; do $B bench-train --cuda --python ./.gpu/py --steps 100 --warmup 20 --batch $b 2>&1 | grep -v Warning | tee -a $OUT/bench-gpu.txt; done
start=$(date +%s)
$B train-and-export --models-dir /tmp/models --epochs 30 > $OUT/train-gpu.log 2>&1
echo "rc $? wall $(( $(date +%s) - start )) s" | tee -a $OUT/train-gpu.log
grep -E "best|exported|int8|accuracy|wrote" $OUT/train-gpu.log | grep -v Warning | tail -12
d=/tmp/models/mobilenetv2-0.5-builtin
cp $d/training/metrics.json $OUT/metrics.json; cp $d/training/report.html $OUT/report.html; cp $d/manifest.json $OUT/manifest.json
cp $d-int8/manifest.json $OUT/manifest-int8.json
