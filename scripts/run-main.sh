#!/usr/bin/env bash
# The main job, end to end, on the built-in data: installs what is needed (scripts/setup.sh),
# builds, generates the built-in synthetic face dataset, writes it as a FER-2013 CSV and image
# folders, reads both back through the real FER-2013 loaders, and trains MobileNetV2 on it with
# libtorch (FER_EPOCHS=N shortens the run). Results go to out/.
#
# Training, export/quantization and the device pipeline join this script as they land
# (see README.md, "Status").
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
step() { printf '\n\033[1;32m==> %s\033[0m\n' "$*"; }

step "setup"
scripts/setup.sh
# shellcheck source=/dev/null
source .cache/torch-env.sh   # LIBTORCH / LD_LIBRARY_PATH for tch (written by scripts/libtorch.sh)

step "build (release)"
cargo build --locked --release -p fer-trainer
bin=target/release

step "built-in dataset -> out/builtin (FER-2013 CSV, image folders, preview.png)"
$bin/fer-train dataset builtin --out out/builtin

step "read back through the FER-2013 CSV loader"
$bin/fer-train dataset inspect --fer2013-csv out/builtin/fer2013.csv --on-error fail

step "read back through the FER-2013 folder loader"
$bin/fer-train dataset inspect --folders out/builtin/folders --on-error fail

step "train MobileNetV2-0.5 (48x48 gray) on the built-in data -> out/train-mnv2"
$bin/fer-train train --out out/train-mnv2 --epochs "${FER_EPOCHS:-30}"

step "done"
echo "results in out/builtin: fer2013.csv, folders/, preview.png (one row per emotion), builtin-config.json"
echo "results in out/train-mnv2: config.json, history.json, metrics.json, best.safetensors"
