#!/usr/bin/env bash
# seal-sched's scheduling cost: one scheduling pass over a synthetic queue of 10,000 tasks
# (mixed task types, sizes 2KiB..32GiB, deal and CC sectors, storage locations) and 200
# workers (best of 5), then the CPU an idle daemon uses over 30 s.
#
# Lotus's scheduler is Go inside lotus-miner and cannot be run beside it here; the issue's
# targets are absolute: a pass well under a second, an idle daemon near zero CPU.
#
# usage: scripts/bench-sched.sh [TASKS] [WORKERS]
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bin seal-sched >&2
bin=$PWD/target/release/seal-sched
tasks=${1:-10000}; workers=${2:-200}
echo "machine: $(nproc) CPUs, $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | xargs), $(free -g | awk '/Mem:/ {print $2}') GiB"
echo "date:    $(date -u +%Y-%m-%d)"
"$bin" bench-pass --tasks "$tasks" --workers "$workers" | tee /dev/stderr | \
  awk -F'"seconds":' '{split($2, a, ","); printf "scheduling pass: %d tasks x %d workers in %.1f ms\n", '"$tasks"', '"$workers"', a[1] * 1000}'
repo=$(mktemp -d /tmp/sealkit-bench-sched.XXXXXX)
trap 'kill $pid 2>/dev/null || true; rm -rf "$repo"' EXIT
"$bin" --repo "$repo/r" init > /dev/null 2>&1
"$bin" --repo "$repo/r" run --quiet & pid=$!
sleep 2
read -r u0 s0 < <(awk '{print $14, $15}' /proc/$pid/stat)
sleep 30
read -r u1 s1 < <(awk '{print $14, $15}' /proc/$pid/stat)
hz=$(getconf CLK_TCK)
awk -v t=$(( (u1 - u0) + (s1 - s0) )) -v hz="$hz" \
  'BEGIN { printf "idle daemon: %.2f s CPU in 30 s (%.2f%% of one core)\n", t / hz, 100 * t / hz / 30 }'
