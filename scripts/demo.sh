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
# usage: scripts/demo.sh [REPO_DIR]   (default /var/tmp/sealkit-demo, replaced on each run)
set -euo pipefail
cd "$(dirname "$0")/.."
cargo build --release --bins >&2
exec target/release/seal-sched ${1:+--repo "$1"} demo
