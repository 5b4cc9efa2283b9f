#!/usr/bin/env bash
# PC1 side by side: sealkit's seal-pc1 against the reference's seal_pre_commit_phase1 with
# multicore SDR (its best setting: feature multicore-sdr + FIL_PROOFS_USE_MULTICORE_SDR=1),
# on the same 512MiB sectors (random data), in one run. Prints times, peak memory, the ratio,
# and compressions per second against the single-core SHA-256 cap measured with openssl.
#
#   single: one sector, ours vs the reference.
#   batch:  BATCH sectors (default 4) with one seal-pc1 call, vs the reference sealing them one
#           after another. The reference's sequential time is REF_BATCH_RUNS measured runs
#           (default 1) scaled to BATCH sectors; set REF_BATCH_RUNS=$BATCH to run them all.
#   core:   BATCH sectors (default 16) on ONE core (taskset -c BENCH_CPU, default 1; --threads
#           1: one group on the 16 AVX-512 lanes) against the reference sealing one sector
#           with all cores; compared per core-hour, and against the engine's own 16-lane rate
#           measured on the same core in the same run (bench_sha). The layer buffers come
#           from a reserved, warmed huge-page pool (BENCH_HUGEPAGES=0: ordinary memory).
#
# usage: scripts/bench-pc1.sh [single|batch|all|core]   (env: BATCH, REF_BATCH_RUNS, BENCH_DIR, BENCH_CPU, PC1_MEMORY, BENCH_HUGEPAGES)
set -euo pipefail
cd "$(dirname "$0")/.."
mode=${1:-all}
if [ "$mode" = core ]; then batch=${BATCH:-16}; else batch=${BATCH:-4}; fi
ref_runs=${REF_BATCH_RUNS:-1}
work=${BENCH_DIR:-/var/tmp/sealkit-bench-pc1}
root=$PWD

if ! ldconfig -p | grep -q libhwloc; then
  echo "installing libhwloc-dev (the reference's multicore SDR links it)" >&2
  apt-get install -y libhwloc-dev >&2 || sudo apt-get install -y libhwloc-dev >&2
fi
cargo build --release --bins --example bench_sha >&2
(cd bench && cargo build --release >&2)
ours=$root/target/release
ref=$root/bench/target/release/sealkit-bench

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
timed() { # label cmd... -> prints "label seconds peakMiB"
  local label=$1; shift
  /usr/bin/time -f "%e %M" -o "$work/time" "$@" > /dev/null 2> "$work/stderr" || { cat "$work/stderr" >&2; exit 1; }
  read -r secs kb < "$work/time"
  echo "$label $secs $((kb / 1024))"
}

echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB"
echo "date:    $(date -u +%Y-%m-%d)"
rate=$(openssl speed -evp sha256 -seconds 3 -bytes 16384 2>/dev/null | awk '/^sha256/ {print $2}'); rate=${rate%k}
cap=$(awk -v r="$rate" 'BEGIN { printf "%.1f", r * 1000 / 64 / 1e6 }')
# Two layers of 2^24 labels, 20 compressions each.
compr=$(( 2 * (1 << 24) * 20 ))
echo "cap:     openssl sha256 = $cap M compressions/s on one core; one 512MiB sector = $((compr / 1000000)) M compressions = $(awk -v c=$compr -v k=$cap 'BEGIN{printf "%.1f", c/k/1e6}') s on one core"

d1=$(sector_doc 1)
"$ours/seal-pc1" "$d1" > /dev/null 2>&1 || true   # generates the parent cache once, untimed

if [ "$mode" = single ] || [ "$mode" = all ]; then
  rm -rf "$work/s1/cache"
  read -r _ t_ours m_ours < <(timed ours "$ours/seal-pc1" "$d1")
  rm -rf "$work/ref1"; mkdir -p "$work/ref1"
  read -r _ t_ref m_ref < <(FIL_PROOFS_USE_MULTICORE_SDR=1 timed ref "$ref" pc1 "$d1" "$work/ref1")
  for l in 1 2; do cmp "$work/s1/cache/sc-02-data-layer-$l.dat" "$work/ref1/cache/sc-02-data-layer-$l.dat"; done
  cmp "$work/s1/cache/sc-02-data-tree-d.dat" "$work/ref1/cache/sc-02-data-tree-d.dat"
  echo "single 512MiB: reference (multicore SDR) $t_ref s, peak $m_ref MiB | sealkit $t_ours s, peak $m_ours MiB | ratio $(awk -v a=$t_ref -v b=$t_ours 'BEGIN{printf "%.2f", a/b}')x | sealkit $(awk -v c=$compr -v t=$t_ours 'BEGIN{printf "%.1f", c/t/1e6}') M compressions/s = $(awk -v c=$compr -v t=$t_ours -v k=$cap 'BEGIN{printf "%.2f", t/(c/k/1e6)}')x the one-core cap; layers and tree_d identical"
  rm -rf "$work/ref1"
fi

if [ "$mode" = batch ] || [ "$mode" = all ]; then
  docs=()
  for i in $(seq 1 "$batch"); do docs+=("$(sector_doc "$i")"); rm -rf "$work/s$i/cache"; done
  read -r _ t_batch m_batch < <(timed ours "$ours/seal-pc1" "${docs[@]}")
  total=0
  for i in $(seq 1 "$ref_runs"); do
    rm -rf "$work/ref$i"; mkdir -p "$work/ref$i"
    read -r _ t m_ref < <(FIL_PROOFS_USE_MULTICORE_SDR=1 timed ref "$ref" pc1 "${docs[$((i-1))]}" "$work/ref$i")
    for l in 1 2; do cmp "$work/s$i/cache/sc-02-data-layer-$l.dat" "$work/ref$i/cache/sc-02-data-layer-$l.dat"; done
    rm -rf "$work/ref$i"
    total=$(awk -v a=$total -v b=$t 'BEGIN{print a+b}')
  done
  t_seq=$(awk -v t=$total -v r=$ref_runs -v b=$batch 'BEGIN{printf "%.1f", t/r*b}')
  echo "batch of $batch x 512MiB: reference one after another $t_seq s ($ref_runs measured, scaled to $batch) | sealkit batch $t_batch s, peak $m_batch MiB | sectors/hour: reference $(awk -v t=$t_seq -v b=$batch 'BEGIN{printf "%.1f", 3600*b/t}'), sealkit $(awk -v t=$t_batch -v b=$batch 'BEGIN{printf "%.1f", 3600*b/t}') | ratio $(awk -v a=$t_seq -v b=$t_batch 'BEGIN{printf "%.2f", a/b}')x | $(awk -v c=$compr -v t=$t_batch -v b=$batch 'BEGIN{printf "%.1f", c*b/t/1e6}') M compressions/s on $(nproc) CPUs"
fi

if [ "$mode" = core ]; then
  cpu=${BENCH_CPU:-1}
  # The engine's own rate for 19-block chains on 16 lanes, on the same core, this run.
  engine=$(taskset -c "$cpu" "$root/target/release/examples/bench_sha" 2 | awk '/^sealkit avx512/ && !/tree nodes/ {print $(NF-2)}')
  docs=()
  for i in $(seq 1 "$batch"); do docs+=("$(sector_doc "$i")"); rm -rf "$work/s$i/cache"; done
  mem=${PC1_MEMORY:-$(( batch * 2 * 512 + 1024 ))MiB}
  # The layer buffers (two layers of the batch) on the kernel's reserved huge pages, as a
  # sealing machine is set up (SupraSeal requires the same), the pool warmed as the batch
  # before would have left it: pages touched once stay backed, where fresh memory costs
  # 2.4-2.6 s per GiB to fault in on these VMs. BENCH_HUGEPAGES=0: ordinary memory only.
  pool_before=$(cat /proc/sys/vm/nr_hugepages)
  if [ "${BENCH_HUGEPAGES:-1}" = 1 ] && [ -w /proc/sys/vm/nr_hugepages ]; then
    trap 'echo "$pool_before" > /proc/sys/vm/nr_hugepages' EXIT
    # Two layers of the batch and two tree_d buffers (2 × 512MiB each), in 2 MiB pages.
    echo $(( pool_before + (batch * 2 * 512 + 2 * 1024) / 2 )) > /proc/sys/vm/nr_hugepages
    python3 - <<'PY'
import mmap
info = dict(l.split(':', 1) for l in open('/proc/meminfo'))
free, page = int(info['HugePages_Free'].split()[0]), int(info['Hugepagesize'].split()[0]) * 1024
m = mmap.mmap(-1, free * page, flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS | 0x40000)  # MAP_HUGETLB
for off in range(0, free * page, 4096):
    m[off] = 1
PY
    echo "huge-page pool: $(awk '/HugePages_Free/ {print $2}' /proc/meminfo) pages reserved and warmed for the layer buffers" >&2
  else
    echo "huge-page pool: not used (BENCH_HUGEPAGES=0 or not root)" >&2
  fi
  # Pool pages do not count in the peak RSS: the most in use, sampled, is added to it.
  pool_free() { awk '/HugePages_Free/ {print $2}' /proc/meminfo; }
  rm -f "$work/ours-done"
  ( low=$(pool_free); while [ ! -f "$work/ours-done" ]; do f=$(pool_free); [ "$f" -lt "$low" ] && low=$f; sleep 0.5; done
    echo "$low" > "$work/pool-low" ) &
  pool_start=$(pool_free)
  read -r _ t_core m_core < <(timed ours taskset -c "$cpu" "$ours/seal-pc1" -v --threads 1 --memory "$mem" "${docs[@]}")
  touch "$work/ours-done"; wait
  pool_mib=$(( (pool_start - $(cat "$work/pool-low")) * $(awk '/Hugepagesize/ {print $2}' /proc/meminfo) / 1024 ))
  echo "peak memory: RSS $m_core MiB + huge-page pool $pool_mib MiB" >&2
  m_core=$(( m_core + pool_mib ))
  echo "$pool_before" > /proc/sys/vm/nr_hugepages 2>/dev/null || true
  cp "$work/stderr" "$work/core-ours.log"   # -v: each layer's rate, tree_d, the batch's plan
  grep -E "batch|layer" "$work/core-ours.log" >&2 || true
  # Disk: the batch's outputs (3 GiB a sector) make room for the reference's one sector.
  for i in $(seq 2 "$batch"); do rm -rf "$work/s$i/cache" "$work/s$i/sealed"; done
  rm -rf "$work/ref1"; mkdir -p "$work/ref1"
  read -r _ t_ref m_ref < <(FIL_PROOFS_USE_MULTICORE_SDR=1 timed ref "$ref" pc1 "${docs[0]}" "$work/ref1")
  for l in 1 2; do cmp "$work/s1/cache/sc-02-data-layer-$l.dat" "$work/ref1/cache/sc-02-data-layer-$l.dat"; done
  cmp "$work/s1/cache/sc-02-data-tree-d.dat" "$work/ref1/cache/sc-02-data-tree-d.dat"
  rm -rf "$work/ref1"
  ncpu=$(nproc)
  awk -v n="$batch" -v t="$t_core" -v m="$m_core" -v tr="$t_ref" -v mr="$m_ref" -v c="$ncpu" -v k="$compr" -v e="${engine:-0}" 'BEGIN {
    ours = 3600 * n / t; refh = 3600 / (tr * c); rate = k * n / t / 1e6
    printf "one core, batch of %d x 512MiB: sealkit %.2f s, peak %d MiB (%.0f MiB per sector) = %.1f sectors per core-hour | reference one sector on %d cores %.2f s, peak %d MiB = %.2f sectors per core-hour | ratio %.2fx per core-hour\n", n, t, m, m / n, ours, c, tr, mr, refh, ours / refh
    if (e > 0) printf "hashing: %.1f M compressions/s = %.1f%% of the 16-lane engine on this core (%.1f M/s, bench_sha wall rate)\n", rate, 100 * rate / e, e
    else printf "hashing: %.1f M compressions/s (no AVX-512 here)\n", rate }'
  echo "sector 1: layers and tree_d identical to the reference's"
fi
