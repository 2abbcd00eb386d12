#!/usr/bin/env bash
# Runs every fer-edge test: formatting, clippy, host tests, the Pillow reference check, and the
# tests of every crate that needs neither libtorch nor hardware, cross-compiled for aarch64 and
# armv7 and run under qemu-user. Installs what it needs first (scripts/setup.sh). CI runs this.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"

# Crates that run on the boards and need no libtorch or hardware: tested on all three targets,
# fer-device with its camera (as the board package ships it: scripts/package.sh). One fixed
# package list and feature set per target, so nothing is rebuilt twice.
CROSS_PKGS=(-p fer-core -p fer-device -p fer-e2e --features fer-device/camera)
CROSS_TARGETS=(aarch64-unknown-linux-gnu armv7-unknown-linux-gnueabihf)

summary=()
timings=()
stage="" stage_start=$SECONDS
step() { # ends the running stage (its time goes to the summary) and starts the next
  [ -n "$stage" ] && timings+=("$(printf '%4d s  %s' $((SECONDS - stage_start)) "$stage")")
  stage=$* stage_start=$SECONDS
  printf '\n\033[1;32m==> %s\033[0m\n' "$*"
}
run_tests() { # label, cargo args...
  local label=$1; shift
  local log; log=$(mktemp)
  cargo test --locked "$@" 2>&1 | tee "$log"
  local passed; passed=$(grep -Eo '^test result: ok\. [0-9]+ passed' "$log" | awk '{s+=$4} END {print s+0}')
  summary+=("$label: $passed tests passed")
  rm -f "$log"
}

# Everything is built once per run: incremental state would only cost disk (GBs on three targets).
export CARGO_INCREMENTAL=0

step "setup"
scripts/setup.sh
scripts/torch-ref.sh   # PyTorch + torchvision (+ Keras) reference for the trainer's parity tests
scripts/node-ref.sh    # face-api.js + TensorFlow.js reference for the face-api import test
# shellcheck source=/dev/null
source .cache/torch-env.sh   # LIBTORCH / LD_LIBRARY_PATH for tch (written by scripts/libtorch.sh)

step "cargo fmt --check"
cargo fmt --all -- --check

# Clippy lints the workspace's crates as they are compiled for the tests, instead of in a check
# build of its own: `cargo clippy` would compile every dependency a second time (metadata only,
# ~5.5 min on a 2-core machine). clippy-driver is rustc plus the lints, so the test binaries are
# the same; with -D warnings a lint fails the build. The ARM builds are linted the same way, which
# covers the aarch64 and armv7 kernels that an x86 `cargo clippy` never sees.
RUSTC_WORKSPACE_WRAPPER=$(rustc --print sysroot)/bin/clippy-driver
export RUSTC_WORKSPACE_WRAPPER
export CLIPPY_ARGS="-Dwarnings__CLIPPY_HACKERY__"
# CLIPPY_ARGS is how `cargo clippy` talks to clippy-driver, not a documented interface: make sure a
# lint still fails a build, so that a toolchain that reads it differently cannot pass unlinted code.
probe=$(mktemp -d)
echo 'pub fn f(x: u32) -> u32 { x.clone() }' >"$probe/probe.rs"
if "$RUSTC_WORKSPACE_WRAPPER" rustc --crate-type lib --emit=metadata -o "$probe/probe.rmeta" "$probe/probe.rs" \
  2>"$probe/log"; then
  echo "clippy-driver with CLIPPY_ARGS=$CLIPPY_ARGS let clippy::clone_on_copy through" >&2
  exit 1
fi
grep -q clone_on_copy "$probe/log"
rm -rf "$probe"

step "host tests (x86-64; clippy -D warnings on every target; fer-device with its V4L2 camera feature)"
run_tests "x86_64-unknown-linux-gnu" --workspace --all-targets --features fer-device/camera
run_tests "x86_64-unknown-linux-gnu (doctests)" --workspace --doc --features fer-device/camera

step "goldens vs their independent references (Pillow/NumPy, OpenCV)"
.venv-ref/bin/python scripts/preprocess_reference.py --check
.venv-ref/bin/python scripts/haar_reference.py --check
.venv-ref/bin/python scripts/haar_reference.py --lbp --check

for t in "${CROSS_TARGETS[@]}"; do
  step "tests on $t under qemu-user"
  run_tests "$t (qemu-user)" --target "$t" "${CROSS_PKGS[@]}"
done

# The runner's Cortex-A72 (Pi 4) has no dot product, so the integer kernels' SDOT build for the
# Pi 5 and Jetson Orin (Cortex-A76/A78) runs only here: the same test binaries, another CPU.
step "aarch64 integer kernels on a Cortex-A76 (dot product) under qemu-user"
CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="qemu-aarch64 -L /usr/aarch64-linux-gnu -cpu cortex-a76" \
  run_tests "aarch64 cortex-a76, int8 and QDQ tests (qemu-user)" --target aarch64-unknown-linux-gnu \
  "${CROSS_PKGS[@]}" -- int8 qdq

step "end to end: trainer -> ONNX -> fer-device on x86-64, aarch64 and armv7"
scripts/e2e.sh
summary+=("end-to-end: x86_64, aarch64, armv7 fer-device outputs agree")

step "summary"
printf '  %s\n' "${summary[@]}"
printf '\nstage times:\n'
printf '  %s\n' "${timings[@]}"
