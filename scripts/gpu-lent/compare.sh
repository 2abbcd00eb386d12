#!/usr/bin/env bash
set -uo pipefail
source .gpu/setup.sh
start=$(date +%s)
./.gpu/fer-train compare --epochs ${EPOCHS:-20} --out /tmp/compare > $OUT/compare-gpu.log 2>&1
echo "rc $? wall $(( $(date +%s) - start )) s" | tee -a $OUT/compare-gpu.log
grep -E "^== |accuracy .*tract|error" $OUT/compare-gpu.log
cp /tmp/compare/comparison.md /tmp/compare/comparison.json /tmp/compare/comparison.svg /tmp/compare/report.html $OUT/
