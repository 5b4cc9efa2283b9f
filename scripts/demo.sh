#!/usr/bin/env bash
# The main job on an embedded default: builds sealkit, then `seal-sched demo` seals 2KiB
# sectors (two committed-capacity, one with a random deal piece) from nothing to Proving on
# this machine: the scheduler runs every phase (AddPiece, PC1, PC2, precommit batch, seed,
# C1, C2, commit batch, Finalize) as seal-* processes, with a simulated chain (fast epochs)
# and no external services, then prints each sector's timeline and verifies each proof.
#
# C2 needs Groth16 parameters. Unless FIL_PROOFS_PARAMETER_CACHE is set, random INSECURE test
# parameters are generated once per machine into /var/tmp/sealkit-test-params (about 12
# minutes on 2 cores and 1.1 GB; later runs reuse them; the test suite shares them).
# scripts/pipeline-demo.sh shows the same phases as a plain shell pipeline.
#
# It ends by printing where the picture of the sectors' timelines is: REPO_DIR/timelines.html,
# a self-contained page (a Gantt chart per sector, one bar per phase task) to open in a browser.
#
# usage: scripts/demo.sh [REPO_DIR]   (default /var/tmp/sealkit-demo, replaced on each run)
set -euo pipefail
cd "$(dirname "$0")/.."
repo="${1:-/var/tmp/sealkit-demo}"
cargo build --release --bins >&2
target/release/seal-sched --repo "$repo" demo
echo "demo.sh: the timelines: open file://$(realpath "$repo")/timelines.html in a browser," \
    "or run \`target/release/seal-sched --repo $repo serve\` and open http://127.0.0.1:9268/" >&2
