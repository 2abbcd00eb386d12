#!/usr/bin/env bash
# Fetches the real photographs the detector tests use into .cache/fixtures/ (git-ignored; never
# committed). Safe to re-run.
#   astronaut.png  scikit-image 0.26.0 wheel, skimage/data/astronaut.png (NASA photograph of
#                  Eileen Collins, public domain)
#   group.png      rustface 0.1.7 crate, test.png (group photo used by rustface's own tests; BSD-2)
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir=$root/.cache/fixtures
mkdir -p "$dir" "$root/.cache/downloads"
cd "$root/.cache/downloads"
if [ ! -f "$dir/astronaut.png" ]; then
  ls scikit_image-0.26.0-*.whl >/dev/null 2>&1 || python3 -m pip download -q --disable-pip-version-check --no-deps scikit-image==0.26.0
  python3 - "$dir" <<'PY'
import glob, sys, zipfile
with zipfile.ZipFile(glob.glob("scikit_image-0.26.0-*.whl")[0]) as z:
    open(sys.argv[1] + "/astronaut.png", "wb").write(z.read("skimage/data/astronaut.png"))
PY
fi
if [ ! -f "$dir/group.png" ]; then
  [ -f rustface-0.1.7.crate ] || curl -fsSL -o rustface-0.1.7.crate https://static.crates.io/crates/rustface/rustface-0.1.7.crate
  tar xzf rustface-0.1.7.crate -O rustface-0.1.7/test.png > "$dir/group.png"
fi
