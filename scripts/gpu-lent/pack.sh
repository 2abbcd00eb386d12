#!/usr/bin/env bash
# Prepares a CUDA run of fer-train on a machine that has an NVIDIA GPU and PyTorch's CUDA
# libraries but cannot download libtorch 2.13 (this workplace's lent GPU machines: PyTorch 2.11,
# no network, 64 MiB per transfer). Used for the GPU figures in BENCHMARKS.md.
#
# 1. Builds fer-train against the torch 2.13 wheel's libtorch *with* libtorch_cuda.so
#    (target/cuda/release/fer-train; --allow-shlib-undefined because the CUDA runtime libraries
#    are not on this machine).
# 2. Packs libtorch 2.13's shared libraries (zstd -19) into .gpu/part.N pieces of 58 MB.
# On the GPU machine, copy the parts to /tmp/lt/part.N one transfer at a time, put fer-train,
# zstd and these scripts in .gpu/, then run `bash .gpu/train.sh` or `bash .gpu/compare.sh`
# (setup.sh reassembles the libraries, points LD_LIBRARY_PATH at them and at PyTorch's
# nvidia/*/lib, and LD_PRELOADs libtorch_cuda.so, which the linker dropped as unneeded).
# On a normal CUDA machine none of this is needed: scripts/libtorch.sh installs torch 2.13 with
# CUDA and fer-train uses the GPU by itself.
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
bash scripts/libtorch.sh
command -v zstd >/dev/null || { echo "pack.sh needs zstd (apt-get install zstd)" >&2; exit 1; }
lt=.cache/libtorch-2.13.0-cuda
mkdir -p $lt/lib .gpu
ln -sfn ../libtorch-2.13.0/include $lt/include
for f in .cache/libtorch-2.13.0/lib/*; do ln -sfn "../../libtorch-2.13.0/lib/$(basename "$f")" "$lt/lib/$(basename "$f")"; done
[ -f $lt/lib/libtorch_cuda.so ] || unzip -p .cache/wheels/torch-2.13.0-*.whl torch/lib/libtorch_cuda.so > $lt/lib/libtorch_cuda.so
LIBTORCH=$root/$lt LD_LIBRARY_PATH=$root/$lt/lib CARGO_TARGET_DIR=$root/target/cuda \
  RUSTFLAGS="-C link-arg=-Wl,--allow-shlib-undefined" cargo build --release -p fer-trainer --bin fer-train
(cd $lt/lib && tar -ch libtorch_cuda.so libtorch_cpu.so libtorch.so libc10.so libc10_cuda.so libgomp.so.1 \
   libtorch_global_deps.so libtorch_nvshmem.so libcaffe2_nvrtc.so libcudart.so.13 libcupti.so.13) \
  | zstd -T0 -19 --long=30 -q -o .gpu/libtorch.tar.zst -f
(cd .gpu && split -b 58000000 -d -a 1 libtorch.tar.zst part. && rm libtorch.tar.zst)
cp target/cuda/release/fer-train "$(command -v zstd)" scripts/gpu-lent/*.sh scripts/gpu-lent/py .gpu/
ls -la .gpu
