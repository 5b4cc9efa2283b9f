#!/usr/bin/env bash
# Snap deals side by side: sealkit's seal-ru and seal-pru1 against the reference's
# encode_into and generate_partition_proofs on the same 512MiB CC sector and new data, in one
# run. Checks that the update replica, every update-cache file and the vanilla proofs are
# byte-identical, and prints times, peak memory and the ratios.
#
# usage: scripts/bench-snap.sh   (env: BENCH_DIR; the timed part holds /tmp/heavy.lock)
set -euo pipefail
cd "$(dirname "$0")/.."
work=${BENCH_DIR:-/var/tmp/sealkit-bench-snap}
tgt=${CARGO_TARGET_DIR:-$PWD/target}
cargo build --release --bins >&2
(cd bench && CARGO_TARGET_DIR=$tgt cargo build --release >&2)
ours=$tgt/release
ref=$tgt/release/sealkit-bench
export FIL_PROOFS_PARENT_CACHE=${FIL_PROOFS_PARENT_CACHE:-/var/tmp/sealkit-bench-pc1/parents}
mkdir -p "$work"
d=$work/s
if [ ! -f "$d/pc2.json" ]; then
  rm -rf "$d"; mkdir -p "$d"
  ticket=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
  printf '{"seal_proof":"StackedDrg512MiBV1_1","miner":1000,"sector":1,"ticket":"%s","paths":{"unsealed":"%s/unsealed","sealed":"%s/sealed","cache":"%s/cache"}}\n' \
    "$ticket" "$d" "$d" "$d" > "$d/job.json"
  "$ours/seal-ap" "$d/job.json" --fill > "$d/ap.json"
  "$ours/seal-pc1" "$d/ap.json" > "$d/pc1.json"
  "$ours/seal-pc2" "$d/pc1.json" > "$d/pc2.json"
  rm -f "$d"/cache/sc-02-data-layer-* "$d"/cache/sc-02-data-tree-c*
  # The update: a 300 MiB deal, then zero fill.
  python3 -c 'import json,sys; d=json.load(open(sys.argv[1])); p=sys.argv[2]; d["update"]={"paths":{"unsealed":p+"/new","sealed":p+"/update","cache":p+"/update-cache"}}; print(json.dumps(d))' "$d/pc2.json" "$d" > "$d/snap.json"
  head -c $((300 << 20)) /dev/urandom > "$d/piece"
  "$ours/seal-ap" --update "$d/snap.json" --piece "$d/piece" --fill > "$d/ap-update.json"
  rm "$d/piece"
fi
timed() {
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" > "$work/out" 2> "$work/err" || { cat "$work/err" >&2; exit 1; }
  read -r secs kb < "$work/time"; echo "$secs $((kb / 1024))"
}
run() {
  echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB, load $(cut -d' ' -f1 /proc/loadavg)"
  echo "date:    $(date -u +%Y-%m-%d)"
  rm -rf "$d/update" "$d/update-cache" "$work/ref"
  read -r t_ours m_ours < <(timed "$ours/seal-ru" "$d/ap-update.json")
  cp "$work/out" "$d/ru.json"
  comm_ours=$(grep -o '"comm_r":"[0-9a-f]*"' "$d/ru.json" | tail -1 | cut -d'"' -f4)
  read -r t_ref m_ref < <(timed "$ref" ru "$d/ap-update.json" "$work/ref")
  comm_ref=$(grep -o 'comm_r_new [0-9a-f]*' "$work/err" | cut -d' ' -f2)
  [ "$comm_ours" = "$comm_ref" ] || { echo "comm_r_new differs: $comm_ours vs $comm_ref" >&2; exit 1; }
  cmp "$d/update" "$work/ref/update"
  for f in "$work"/ref/update-cache/*; do cmp "$f" "$d/update-cache/$(basename "$f")"; done
  echo "RU 512MiB:  reference $t_ref s, peak $m_ref MiB | sealkit $t_ours s, peak $m_ours MiB | ratio $(awk -v a="$t_ref" -v b="$t_ours" 'BEGIN{printf "%.2f", a/b}')x | comm_r_new $comm_ours, update replica and cache identical"
  read -r t_ours m_ours < <(timed "$ours/seal-pru1" "$d/ru.json")
  read -r t_ref m_ref < <(timed "$ref" pru1 "$d/ru.json" "$work/ref-vanilla.bin")
  cmp "$d/update-cache/sealkit-update-vanilla-proofs.bin" "$work/ref-vanilla.bin"
  echo "PR1 512MiB: reference $t_ref s, peak $m_ref MiB | sealkit $t_ours s, peak $m_ours MiB | ratio $(awk -v a="$t_ref" -v b="$t_ours" 'BEGIN{printf "%.2f", a/b}')x | 16 partition proofs identical"
}
exec 9>/tmp/heavy.lock
flock 9
run
