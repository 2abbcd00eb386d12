#!/usr/bin/env bash
# Builds the static aarch64 fer-device (release, as shipped) that scripts/arm-cost.sh boots as an
# aarch64 VM's /init and scripts/insn-profile.sh traces, and prints its path: one build, so the
# two measure the same instructions. Static, as .cargo/config.toml links the ARM targets.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --locked --release --target aarch64-unknown-linux-gnu \
  -p fer-device --target-dir target/arm-cost -q
echo target/arm-cost/aarch64-unknown-linux-gnu/release/fer-device
