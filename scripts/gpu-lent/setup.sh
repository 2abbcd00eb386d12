#!/usr/bin/env bash
# Sourced on the lent GPU machine (see pack.sh): reassembles libtorch 2.13 (CUDA 13) from the carried parts.
REPO=$PWD
if [ ! -f /tmp/lt/lib/libtorch_cuda.so ]; then
  cp .gpu/chunk /tmp/lt/part.6
  (cd /tmp/lt && cat part.0 part.1 part.2 part.3 part.4 part.5 part.6 > lt.tar.zst && sha256sum lt.tar.zst && mkdir -p lib && "$REPO/.gpu/zstd" -d --long=30 -q -c lt.tar.zst | tar -x -C lib && rm -f part.* lt.tar.zst)
fi
NV=/opt/torch/.venv/lib/python3.12/site-packages/nvidia
export LD_LIBRARY_PATH=/tmp/lt/lib:$(find $NV -type d -name lib | tr '\n' ':')
export LD_PRELOAD=/tmp/lt/lib/libtorch_cuda.so
