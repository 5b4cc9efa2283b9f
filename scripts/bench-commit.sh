#!/usr/bin/env bash
# C1 and C2 side by side: sealkit's seal-c1 / seal-c2 against the reference's
# seal_commit_phase1 / seal_commit_phase2 on the same sealed sectors (2KiB and 8MiB, V1_1), in
# one run. Checks the two Commit1 outputs are byte-identical; prints times and ratios.
# C2 needs parameters in FIL_PROOFS_PARAMETER_CACHE (default: the test parameters); a size
# without them has its C2 skipped, unless BENCH_GENERATE=1 generates them first (2KiB: about
# 12 minutes on 2 cores; 8MiB: longer).
#
# usage: scripts/bench-commit.sh [SIZES...]   (default: 2KiB 8MiB; env: BENCH_DIR, BENCH_GENERATE)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${BENCH_DIR:-/var/tmp/sealkit-bench-commit}
sizes=("$@"); [ ${#sizes[@]} -gt 0 ] || sizes=(2KiB 8MiB)
cargo build --release --bins >&2
(cd bench && cargo build --release >&2)
ours=$PWD/target/release
ref=$PWD/bench/target/release/sealkit-bench
export FIL_PROOFS_PARENT_CACHE=${FIL_PROOFS_PARENT_CACHE:-$work/parents}
export FIL_PROOFS_PARAMETER_CACHE=${FIL_PROOFS_PARAMETER_CACHE:-/var/tmp/sealkit-test-params}
timed() {
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" > "$work/out" 2> "$work/err" || { cat "$work/err" >&2; exit 1; }
  read -r secs kb < "$work/time"; echo "$secs"
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{printf "%.2f", a/b}'; }
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB"
echo "date:    $(date -u +%Y-%m-%d)"
for size in "${sizes[@]}"; do
  d=$work/$size; rm -rf "$d"; mkdir -p "$d"
  ticket=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  seed=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  printf '{"seal_proof":"StackedDrg%sV1_1","miner":1000,"sector":1,"ticket":"%s","paths":{"unsealed":"%s/unsealed","sealed":"%s/sealed","cache":"%s/cache"}}\n' \
    "$size" "$ticket" "$d" "$d" "$d" > "$d/job.json"
  head -c 1000 /dev/urandom | "$ours/seal-ap" "$d/job.json" --piece - --fill | "$ours/seal-pc1" | "$ours/seal-pc2" > "$d/pc2.json"
  if [ "${BENCH_GENERATE:-0}" = 1 ]; then "$ours/seal-c2" --generate-test-params "$size" >&2; fi
  t_ours_c1=$(timed "$ours/seal-c1" --seed "$seed" "$d/pc2.json"); cp "$work/out" "$d/c1.json"
  t_ref_c1=$(timed "$ref" c1 "$d/pc2.json" "$seed" "$d/ref-c1.json")
  cmp "$d/cache/commit1-output.json" "$d/ref-c1.json"
  echo "C1 $size: reference $t_ref_c1 s | sealkit $t_ours_c1 s | ratio $(ratio "$t_ref_c1" "$t_ours_c1")x | Commit1 outputs identical"
  if ! /usr/bin/time -f "%e %M" -o "$work/time" "$ours/seal-c2" "$d/c1.json" > "$d/c2.json" 2> "$work/err"; then
    grep -q "is missing" "$work/err" || { cat "$work/err" >&2; exit 1; }
    echo "C2 $size: skipped (no parameters in $FIL_PROOFS_PARAMETER_CACHE; BENCH_GENERATE=1 makes them)"
    continue
  fi
  read -r t_ours_c2 _ < "$work/time"
  t_ref_c2=$(timed "$ref" c2 "$d/pc2.json" "$d/ref-c1.json")
  "$ours/seal-verify" "$d/c2.json" > /dev/null
  echo "C2 $size: reference $t_ref_c2 s | sealkit $t_ours_c2 s | ratio $(ratio "$t_ref_c2" "$t_ours_c2")x | proof verified (same circuit and prover: parity expected)"
done
