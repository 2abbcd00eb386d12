#!/bin/sh
# The armv7 linker (.cargo/config.toml): Debian's cross gcc driving rustup's own lld (rust-lld,
# through its gcc-ld/ld.lld shim). GNU ld 2.40 links a static fer-device that crashes before
# main: calls to glibc's ifunc'ed memcpy, beyond a branch's 32 MB reach, go through a veneer
# into the IPLT before glibc has filled its GOT slot (BENCHMARKS.md, session 29). lld's output runs.
host=$(rustc -vV | sed -n "s/^host: //p")
exec arm-linux-gnueabihf-gcc -fuse-ld=lld -B"$(rustc --print sysroot)/lib/rustlib/$host/bin/gcc-ld" "$@"
