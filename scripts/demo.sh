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
echo "== files in $work" >&2
ls -l "$work/unsealed" >&2
