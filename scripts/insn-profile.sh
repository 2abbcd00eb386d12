#!/usr/bin/env bash
# Exact aarch64 instruction counts of chosen functions per inference, and where in them the
# instructions go, without an ARM board: runs the static aarch64 fer-device under qemu-aarch64
# (user mode) with `-singlestep -d exec,nochain`, which logs every executed instruction, filtered
# to the address ranges of the functions whose symbol matches REGEX, for one and for two timed
# inferences of MODEL (`bench-models --plan fer`); the difference of the two runs is one
# inference, so plan building and the warm-up are left out. This is the instruction-level view
# behind scripts/arm-cost.sh's per-node figures (the same instructions: QEMU icount counts guest
# instructions).
#
#   scripts/insn-profile.sh [--annotate N] REGEX MODEL.onnx
#
# Prints one line per matching function: executed instructions per inference and the symbol.
# --annotate N also writes each function's disassembly with a per-instruction count into
# .cache/insn-profile/<address>.txt and prints its N costliest runs of instructions executed
# equally often (its basic blocks: count x length, and the first instruction). REGEX is
# matched (grep -E) against mangled names, e.g. `window_portable|pointwise`.
#
# Needs qemu-user and the aarch64 cross linker/binutils (scripts/setup.sh installs them).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
annotate=0
if [ "${1:-}" = "--annotate" ]; then annotate=$2; shift 2; fi
if [ $# -ne 2 ]; then
  echo "usage: $0 [--annotate N] REGEX MODEL.onnx" >&2
  exit 2
fi
regex=$1
model=$2
work=.cache/insn-profile
mkdir -p "$work"
bin=$(scripts/arm-static-build.sh)
aarch64-linux-gnu-nm -S "$bin" | awk 'NF == 4' | grep -E "$regex" > "$work/syms.txt" || {
  echo "no symbol matches $regex" >&2
  exit 1
}
# One filter range per function (a single min..max range would trace whatever lies between).
ranges=$(awk '{printf "%s0x%s+0x%s", (NR > 1 ? "," : ""), $1, $2}' "$work/syms.txt")
for n in 1 2; do
  # Each executed instruction is one "Trace" line with its address second in brackets; the log
  # goes through a pipe and is counted as it comes (a whole inference is millions of lines).
  rm -f "$work/trace.fifo"
  mkfifo "$work/trace.fifo"
  awk -F'[][/]' '/^Trace/ {c[$3]++} END {for (a in c) print c[a], a}' "$work/trace.fifo" > "$work/hist-$n.txt" &
  counter=$!
  qemu-aarch64 -singlestep -d exec,nochain -dfilter "$ranges" -D "$work/trace.fifo" \
    "$bin" bench-models --plan fer --iterations "$n" "$model" > /dev/null || {
    kill "$counter" 2>/dev/null # (it may still wait for the pipe to be opened)
    exit 1
  }
  wait "$counter"
done
rm -f "$work/trace.fifo"
python3 - "$work" "$bin" "$annotate" <<'PY'
import collections, subprocess, sys
work, binary, annotate = sys.argv[1], sys.argv[2], int(sys.argv[3])
def hist(n):
    c = collections.Counter()
    for line in open(f"{work}/hist-{n}.txt"):
        k, a = line.split()
        c[int(a, 16)] += int(k)
    return c
one, two = hist(1), hist(2)
per = {a: two[a] - one.get(a, 0) for a in two}
for line in open(f"{work}/syms.txt"):
    addr, size, _, name = line.split()
    lo, hi = int(addr, 16), int(addr, 16) + int(size, 16)
    total = sum(v for a, v in per.items() if lo <= a < hi)
    if not total:
        continue
    print(f"{total:10d} instructions per inference  {name}")
    if not annotate:
        continue
    dis = subprocess.run(["aarch64-linux-gnu-objdump", "-d", "--no-show-raw-insn", f"--start-address={lo}",
                          f"--stop-address={hi}", binary], capture_output=True, text=True).stdout
    rows = []
    for l in dis.splitlines():
        l = l.strip()
        try:
            a = int(l.split(":")[0], 16)
        except ValueError:
            continue
        rows.append((per.get(a, 0), l))
    with open(f"{work}/{addr.lstrip('0')}.txt", "w") as f:
        f.writelines(f"{k:9d} {l}\n" for k, l in rows)
    # Runs of instructions executed equally often (basic blocks), by their share.
    runs, start = [], 0
    for i in range(1, len(rows) + 1):
        if i == len(rows) or rows[i][0] != rows[start][0]:
            if rows[start][0]:
                runs.append((rows[start][0] * (i - start), rows[start][0], i - start, rows[start][1]))
            start = i
    for cost, k, n, first in sorted(runs, reverse=True)[:annotate]:
        print(f"    {cost:9d} = {k} x {n} instructions from {first[:70]}")
    print(f"    annotated: {work}/{addr.lstrip('0')}.txt")
PY
