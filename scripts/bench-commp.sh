#!/usr/bin/env bash
# CommP throughput: sealkit vs the reference (filecoin-proofs generate_piece_commitment) on the
# same random 1 GiB piece (1,065,353,216 payload bytes = 1 GiB padded), in one run.
# Also prints the single-core SHA-256 ceiling measured with openssl on this machine.
#
# usage: scripts/bench-commp.sh [SIZE_LOG2_PADDED=30]
set -euo pipefail
cd "$(dirname "$0")/.."
log2=${1:-30}
len=$(( (1 << log2) / 128 * 127 ))
file=${BENCH_DIR:-/var/tmp}/sealkit-bench-piece-$len
if [ ! -f "$file" ] || [ "$(stat -c %s "$file")" != "$len" ]; then
  echo "writing $len random bytes to $file" >&2
  head -c "$len" /dev/urandom > "$file.tmp" && mv "$file.tmp" "$file"
fi
cargo build --release --example bench_commp >&2
echo "machine: $(nproc) cores, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs)"
echo "date:    $(date -u +%Y-%m-%d)"
if command -v openssl >/dev/null; then
  # 16 KiB blocks: the per-call overhead vanishes, leaving the compression rate.
  rate=$(openssl speed -evp sha256 -seconds 3 -bytes 16384 2>/dev/null | awk '/^sha256/ {print $2}')
  rate=${rate%k}
  awk -v r="$rate" 'BEGIN {
    c = r * 1000 / 64;   # compressions per second on one core
    printf "ceiling: openssl sha256 %.1f M compressions/s on one core = %.0f MB/s of CommP payload (2 compressions per 32 padded bytes)\n", c / 1e6, c * 16 * 127 / 128 / 1e6 }'
fi
target/release/examples/bench_commp "$file" 1 "$(nproc)"
