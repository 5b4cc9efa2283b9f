#!/usr/bin/env bash
# PC1 batches larger than the memory budget (issue 17 part 3), side by side with the reference.
#
# BATCH 512MiB sectors (default 8; 300 MiB of random data each) sealed by one seal-pc1 call whose
# --memory is a quarter of the batch's layers (BATCH x 2 layers x 512 MiB / 4) plus the reader
# buffers of the sectors it then labels at once (1.5 MiB each), so the batch is streamed: half of
# the sectors label at a time and every layer >= 2 reads its expander parents back from the
# previous layer's files. Against the reference's seal_pre_commit_phase1 (multicore SDR, its best
# setting) sealing REF_RUNS sectors (default 1) one after another, scaled to BATCH. Sector 1's
# layers and tree_d are compared byte for byte with the reference's in the same run.
#
# Prints sectors/hour both ways and the ratio, peak RSS (and per sector), the disk reads and
# writes of our run (/usr/bin/time: what the page cache did not serve), and our per-group parent
# read rates from the layer files (seal-pc1 -v). The timed part holds flock /tmp/heavy.lock.
#
# usage: scripts/bench-pc1-streamed.sh   (env: BATCH, REF_RUNS, BENCH_DIR)
set -euo pipefail
cd "$(dirname "$0")/.."
batch=${BATCH:-8}
ref_runs=${REF_RUNS:-1}
work=${BENCH_DIR:-/var/tmp/sealkit-bench-pc1}
root=$PWD

if [ -z "${BENCH_LOCKED:-}" ]; then
  if ! ldconfig -p | grep -q libhwloc; then
    echo "installing libhwloc-dev (the reference's multicore SDR links it)" >&2
    apt-get install -y libhwloc-dev >&2 || sudo apt-get install -y libhwloc-dev >&2
  fi
  cargo build --release --bins >&2
  # The reference side shares our target directory, where its dependencies are mostly built.
  (cd bench && CARGO_TARGET_DIR="$root/target" cargo build --release >&2)
  exec env BENCH_LOCKED=1 flock /tmp/heavy.lock "$0" "$@"
fi
ours=$root/target/release
ref=$root/target/release/sealkit-bench

mkdir -p "$work"
export FIL_PROOFS_PARENT_CACHE=$work/parents
sector_doc() { # n -> path of a filled 512MiB sector document
  local n=$1 d=$work/s$1
  if [ ! -f "$d/ap.json" ]; then
    rm -rf "$d"; mkdir -p "$d"
    local ticket; ticket=$(head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n')
    printf '{"seal_proof":"StackedDrg512MiBV1_1","miner":1000,"sector":%d,"ticket":"%s","paths":{"unsealed":"%s/unsealed","sealed":"%s/sealed","cache":"%s/cache"}}\n' \
      "$n" "$ticket" "$d" "$d" "$d" > "$d/job.json"
    head -c $((300 << 20)) /dev/urandom > "$d/piece"
    "$ours/seal-ap" "$d/job.json" --piece "$d/piece" --fill > "$d/ap.json"
    rm "$d/piece"
  fi
  echo "$d/ap.json"
}
timed() { # label cmd... -> prints "label seconds peakMiB fs-inputs fs-outputs" (512-byte blocks)
  local label=$1; shift
  /usr/bin/time -f "%e %M %I %O" -o "$work/time" "$@" > /dev/null 2> "$work/stderr" || { cat "$work/stderr" >&2; exit 1; }
  read -r secs kb in out < "$work/time"
  echo "$label $secs $((kb / 1024)) $in $out"
}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB, load average $(cut -d' ' -f1-3 /proc/loadavg)"
echo "date:    $(date -u '+%Y-%m-%d %H:%M UTC')"

docs=()
for i in $(seq 1 "$batch"); do docs+=("$(sector_doc "$i")"); rm -rf "$work/s$i/cache"; done
"$ours/seal-pc1" --help > /dev/null
# The parent cache once, untimed (a 2KiB-sized run would not make the 512MiB graph's).
[ -n "$(ls "$work/parents" 2> /dev/null)" ] || "$ours/seal-pc1" "${docs[0]}" > /dev/null 2>&1
rm -rf "$work/s1/cache"

layers=$(( batch * 2 * (512 << 20) ))
ring=$(( 3 * 2048 * 8 * 32 ))
budget=$(( layers / 4 + batch / 2 * ring ))
echo "budget:  --memory $budget bytes = a quarter of the batch's $((layers >> 30)) GiB of layers + reader buffers for $((batch / 2)) sectors; the in-memory batch would need $(( batch * 4 * 512 )) MiB"

read -r _ t_ours m_ours in_ours out_ours < <(timed ours "$ours/seal-pc1" -v --memory "$budget" "${docs[@]}")
grep -E "streamed" "$work/stderr" | sed 's/^/  /'
cp "$work/stderr" "$work/streamed.log"

total=0
for i in $(seq 1 "$ref_runs"); do
  rm -rf "$work/ref$i"; mkdir -p "$work/ref$i"
  read -r _ t m_ref _ _ < <(FIL_PROOFS_USE_MULTICORE_SDR=1 timed ref "$ref" pc1 "${docs[$((i-1))]}" "$work/ref$i")
  for f in sc-02-data-layer-1.dat sc-02-data-layer-2.dat sc-02-data-tree-d.dat; do
    cmp "$work/s$i/cache/$f" "$work/ref$i/cache/$f"
  done
  rm -rf "$work/ref$i"
  total=$(awk -v a="$total" -v b="$t" 'BEGIN{print a+b}')
done
t_seq=$(awk -v t="$total" -v r="$ref_runs" -v b="$batch" 'BEGIN{printf "%.1f", t/r*b}')
compr=$(( 2 * (1 << 24) * 20 ))
echo "streamed batch of $batch x 512MiB: reference one after another $t_seq s ($ref_runs measured, scaled to $batch), peak $m_ref MiB | sealkit $t_ours s, peak RSS $m_ours MiB ($((m_ours / batch)) MiB per sector) | sectors/hour: reference $(awk -v t="$t_seq" -v b="$batch" 'BEGIN{printf "%.1f", 3600*b/t}'), sealkit $(awk -v t="$t_ours" -v b="$batch" 'BEGIN{printf "%.1f", 3600*b/t}') | ratio $(awk -v a="$t_seq" -v b="$t_ours" 'BEGIN{printf "%.2f", a/b}')x | $(awk -v c=$compr -v t="$t_ours" -v b="$batch" 'BEGIN{printf "%.1f", c*b/t/1e6}') M compressions/s on $(nproc) CPUs | disk: read $((in_ours / 2048)) MiB, wrote $((out_ours / 2048)) MiB | layers and tree_d of sector 1..$ref_runs identical to the reference's"
