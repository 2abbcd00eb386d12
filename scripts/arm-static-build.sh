#!/usr/bin/env bash
# Builds the fer-device that ships on the boards (release, static as .cargo/config.toml links the
# ARM targets, V4L2 camera built in) and prints its path:
#   scripts/arm-static-build.sh [aarch64|armv7]     (default aarch64)
# scripts/package.sh packs it; scripts/arm-cost.sh boots it as an aarch64 VM's /init and
# scripts/insn-profile.sh traces it: one build, so what is measured is what ships.
set -euo pipefail
cd "$(dirname "$0")/.."
case ${1:-aarch64} in
  aarch64) triple=aarch64-unknown-linux-gnu ;;
  armv7) triple=armv7-unknown-linux-gnueabihf ;;
  *) echo "arm-static-build.sh: aarch64 or armv7, not $1" >&2; exit 2 ;;
esac
cargo build --locked --release --target "$triple" -p fer-device --features camera -q
echo "target/$triple/release/fer-device"
