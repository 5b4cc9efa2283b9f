#!/usr/bin/env bash
# The main job on an embedded default: builds sealkit and runs the sealing pipeline on a
# 2 KiB sector with a random piece, in a temporary directory. No external services.
# The phases that exist so far run; each later phase joins this pipeline as it lands.
#
# usage: scripts/demo.sh [WORKDIR]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bins >&2
bin=$PWD/target/release
work=${1:-$(mktemp -d /tmp/sealkit-demo.XXXXXX)}
mkdir -p "$work"
ticket=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
cat > "$work/job.json" <<JSON
{"seal_proof": "StackedDrg2KiBV1_1", "miner": 1000, "sector": 1, "ticket": "$ticket",
 "paths": {"unsealed": "$work/unsealed/s-t01000-1", "sealed": "$work/sealed/s-t01000-1",
           "cache": "$work/cache/s-t01000-1"}}
JSON
head -c 1000 /dev/urandom > "$work/piece.bin"
echo "== seal-ap --commp (standalone piece commitment)" >&2
"$bin/seal-ap" --commp "$work/piece.bin"
echo "== seal-ap job.json --piece - --fill < piece.bin (AddPiece, then zero fillers to the sector end)" >&2
"$bin/seal-ap" "$work/job.json" --piece - --fill < "$work/piece.bin" | tee "$work/sector.json"
export FIL_PROOFS_PARENT_CACHE=${FIL_PROOFS_PARENT_CACHE:-$work/parents}
echo "== seal-pc1 (SDR labels, tree_d, replica copy)" >&2
"$bin/seal-pc1" "$work/sector.json" | tee "$work/pc1.json"
echo "== seal-pc2 (tree_c, encoding, tree_r_last, comm_r)" >&2
"$bin/seal-pc2" "$work/pc1.json" | tee "$work/pc2.json"
echo "== seal-unseal --piece 0: the piece comes back from the sealed replica" >&2
"$bin/seal-unseal" "$work/pc2.json" --piece 0 | cmp - "$work/piece.bin" && echo "piece 0 unsealed: identical to piece.bin" >&2
echo "== files in $work" >&2
ls -l "$work/unsealed" "$work/sealed" "$work/cache/s-t01000-1" >&2
