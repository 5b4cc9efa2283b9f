#!/usr/bin/env bash
# PC2 side by side: sealkit's seal-pc2 against the reference's seal_pre_commit_phase2 on the
# same 512MiB sector, in one run: both start from identical PC1 output (ours, which the
# reference accepts byte for byte). Prints times, peak memory, the ratio and comm_r, after
# a one-core Poseidon microbenchmark (our IFMA permutation vs neptune, per arity).
#
# usage: scripts/bench-pc2.sh   (env: BENCH_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${BENCH_DIR:-/var/tmp/sealkit-bench-pc2}
cargo build --release --bins >&2
(cd bench && cargo build --release >&2)
ours=$PWD/target/release
ref=$PWD/bench/target/release/sealkit-bench
export FIL_PROOFS_PARENT_CACHE=${FIL_PROOFS_PARENT_CACHE:-/var/tmp/sealkit-bench-pc1/parents}
mkdir -p "$work"
d=$work/s
if [ ! -f "$d/pc1.json" ]; then
  rm -rf "$d"; mkdir -p "$d"
  ticket=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  printf '{"seal_proof":"StackedDrg512MiBV1_1","miner":1000,"sector":1,"ticket":"%s","paths":{"unsealed":"%s/unsealed","sealed":"%s/sealed","cache":"%s/cache"}}\n' \
    "$ticket" "$d" "$d" "$d" > "$d/job.json"
  head -c $((300 << 20)) /dev/urandom > "$d/piece"
  "$ours/seal-ap" "$d/job.json" --piece "$d/piece" --fill > "$d/ap.json"
  rm "$d/piece"
  "$ours/seal-pc1" "$d/ap.json" > "$d/pc1.json"
  cp -r "$d/cache" "$work/pc1-cache"; cp "$d/sealed" "$work/pc1-sealed"
fi
timed() {
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" > "$work/out" 2> "$work/err" || { cat "$work/err" >&2; exit 1; }
  read -r secs kb < "$work/time"; echo "$secs $((kb / 1024))"
}
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB"
echo "date:    $(date -u +%Y-%m-%d)"
"$ref" poseidon 2 || echo "(no Poseidon microbenchmark: $?)"
echo "seal-pc2 Poseidon backend: ${SEALKIT_POSEIDON:-ifma where the CPU has it}"
rm -rf "$d/cache"; cp -r "$work/pc1-cache" "$d/cache"; cp "$work/pc1-sealed" "$d/sealed"
read -r t_ours m_ours < <(timed "$ours/seal-pc2" "$d/pc1.json")
comm_ours=$(grep -o '"comm_r":"[0-9a-f]*"' "$work/out" | cut -d'"' -f4)
rm -rf "$work/ref"; mkdir -p "$work/ref"; cp -r "$work/pc1-cache" "$work/ref/cache"; cp "$work/pc1-sealed" "$work/ref/sealed"
read -r t_ref m_ref < <(timed "$ref" pc2 "$d/pc1.json" "$work/ref/cache" "$work/ref/sealed")
comm_ref=$(grep -o 'comm_r [0-9a-f]*' "$work/err" | cut -d' ' -f2)
[ "$comm_ours" = "$comm_ref" ] || { echo "comm_r differs: $comm_ours vs $comm_ref" >&2; exit 1; }
cmp "$d/sealed" "$work/ref/sealed"
echo "PC2 512MiB: reference $t_ref s, peak $m_ref MiB | sealkit $t_ours s, peak $m_ours MiB | ratio $(awk -v a=$t_ref -v b=$t_ours 'BEGIN{printf "%.2f", a/b}')x | comm_r $comm_ours identical, replica identical"
