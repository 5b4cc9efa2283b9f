#!/usr/bin/env bash
# The main job on an embedded default: builds sealkit and seals a 2 KiB sector with a random
# piece from nothing to a verified proof (AddPiece, PC1, PC2, C1, C2, verify), then unseals
# the piece, in a temporary directory. No external services.
#
# C2 needs Groth16 parameters. Unless FIL_PROOFS_PARAMETER_CACHE is set, random INSECURE test
# parameters are generated once per machine into /var/tmp/sealkit-test-params (about 12
# minutes on 2 cores and 1.1 GB; later runs reuse them; the test suite shares them).
#
# usage: scripts/pipeline-demo.sh [WORKDIR]
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
export FIL_PROOFS_PARAMETER_CACHE=${FIL_PROOFS_PARAMETER_CACHE:-/var/tmp/sealkit-test-params}
if ! ls "$FIL_PROOFS_PARAMETER_CACHE"/v28-*-8-0-0-sha256_hasher-032d3138*.vk >/dev/null 2>&1; then
  echo "== first run: generating insecure 2KiB test parameters into $FIL_PROOFS_PARAMETER_CACHE (about 12 minutes on 2 cores, once per machine)" >&2
  "$bin/seal-c2" --generate-test-params 2KiB
fi
seed=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
echo "== seal-c1 --seed <random> (challenges, vanilla proofs, Commit1 output)" >&2
"$bin/seal-c1" --seed "$seed" "$work/pc2.json" | tee "$work/c1.json"
echo "== seal-c2 (Groth16 proof over the reference circuit, verified before it is printed)" >&2
"$bin/seal-c2" "$work/c1.json" | tee "$work/proven.json"
echo "== seal-verify" >&2
"$bin/seal-verify" "$work/proven.json"
echo "== seal-unseal --piece 0: the piece comes back from the sealed replica" >&2
"$bin/seal-unseal" "$work/pc2.json" --piece 0 | cmp - "$work/piece.bin" && echo "piece 0 unsealed: identical to piece.bin" >&2
echo "== files in $work" >&2
ls -l "$work/unsealed" "$work/sealed" "$work/cache/s-t01000-1" >&2
