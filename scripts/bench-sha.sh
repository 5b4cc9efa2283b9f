#!/usr/bin/env bash
# SHA-256 compression rate on one core, every engine side by side in one process: sha2 (the
# reference's hasher, one chain) against our SHA-NI interleaving and AVX-512 / AVX2 lanes,
# with the ratio to sha2. Pinned to one CPU (BENCH_CPU, default 1).
#
# usage: scripts/bench-sha.sh [SECONDS_PER_ENGINE=2]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --example bench_sha >&2
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "date:    $(date -u +%Y-%m-%d)"
taskset -c "${BENCH_CPU:-1}" target/release/examples/bench_sha "${1:-2}"
