#!/usr/bin/env bash
# Installs face-api.js 1.7.15 + TensorFlow.js 4.22.0 (pure JavaScript, CPU backend) from npm into
# the git-ignored .cache/node-ref, from the committed lock file scripts/faceapi-ref/. This is the
# original runtime that the face-api import parity test (scripts/faceapi_reference.cjs) compares
# fer-trainer against. Safe to re-run: reinstalls only when the lock file changed.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest="$root/.cache/node-ref"
if ! command -v npm >/dev/null; then
  echo "node-ref.sh: npm not found (Debian: apt-get install nodejs npm)" >&2
  exit 1
fi
if [ -f "$dest/package-lock.json" ] && cmp -s "$dest/package-lock.json" "$root/scripts/faceapi-ref/package-lock.json" \
   && [ -d "$dest/node_modules/@vladmandic/face-api" ]; then
  exit 0
fi
printf '\033[1;34m[node-ref]\033[0m installing face-api.js 1.7.15 + tfjs 4.22.0 into %s\n' "$dest"
mkdir -p "$dest"
cp "$root/scripts/faceapi-ref/package.json" "$root/scripts/faceapi-ref/package-lock.json" "$dest/"
(cd "$dest" && npm ci --silent --no-audit --no-fund)
