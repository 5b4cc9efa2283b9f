#!/usr/bin/env bash
# The GPU check of issue 15, in two steps.
#
#   scripts/gpu-check.sh prepare   # here (any x86-64 Linux with Rust, no GPU needed)
#   scripts/gpu-check.sh run       # on the GPU host, from the repository root
#
# prepare: builds the binaries with the cuda feature (release, stripped: no Rust or network
# needed on the GPU host; they need only glibc, and load libcuda/libnvrtc at run time) into
# .gpu/ (git-ignored; carry it to the GPU host, about 30 MiB), and seals a 2 KiB and an 8 MiB
# sector with fixed pieces and tickets on the CPU, keeping their comm_r in .gpu/kat.txt
# (the CPU path equals rust-fil-proofs: tests/pc2_vs_reference.rs).
#
# run: one go, within ~10 minutes, writing a log to ${OUT:-.gpu/out}:
#   1. nvidia-smi, seal-gpu info (driver, device, NVRTC);
#   2. seal-gpu selftest: GPU column hashes (arities 2, 8, 11, 16) and oct/binary tree rows
#      and roots equal to the CPU's on random data, kernels compiled by NVRTC; then again
#      --quick with the kernels compiled by the host's nvcc (SEALKIT_CUDA_MODULE, sm_90);
#   3. the 2 KiB and 8 MiB sectors sealed again with seal-pc2 --gpu: comm_r equal to kat.txt;
#   4. a 512 MiB sector: PC1 once, PC2 on the CPU, then PC2 --gpu: comm_r compared;
#   5. seal-gpu bench: one 32 GiB-shaped partition (2^27 nodes, 11 synthetic layers) timed,
#      extrapolated to a 32 GiB sector.
# GPU Commit2 is not built (no cuda-supraseal in this build): reported as skipped.
# Exit status 0 only when every comparison was equal.
set -uo pipefail
cd "$(dirname "$0")/.."
gpu=.gpu
bins=(seal-gpu seal-ap seal-pc1 seal-pc2)

# A sector's job document: seal_proof, sector number, fixed ticket, paths under $1.
job() {
    local work=$1 proof=$2 n=$3
    cat <<JSON
{"seal_proof": "$proof", "miner": 1000, "sector": $n,
 "ticket": "0b0c0d0e0f101112131415161718191a1b1c1d1e1f202122232425262728292a",
 "paths": {"unsealed": "$work/unsealed/s-t01000-$n", "sealed": "$work/sealed/s-t01000-$n",
           "cache": "$work/cache/s-t01000-$n"}}
JSON
}

# AddPiece (a fixed 1,000-byte piece, zero fillers) and PC1 of one sector into $1; prints
# the PC1 document's file.
seal_pc1() {
    local work=$1 proof=$2 n=$3 bin=$4
    mkdir -p "$work"
    job "$work" "$proof" "$n" > "$work/job.json"
    yes sealkit-gpu-check | head -c 1000 > "$work/piece.bin"
    "$bin/seal-ap" "$work/job.json" --piece - --fill < "$work/piece.bin" > "$work/ap.json" &&
        FIL_PROOFS_PARENT_CACHE=$work/../parents "$bin/seal-pc1" "$work/ap.json" > "$work/pc1.json" &&
        echo "$work/pc1.json"
}

comm_r() { sed -n 's/.*"comm_r": *"\([0-9a-f]*\)".*/\1/p' "$1"; }

prepare() {
    cargo build --release --features cuda --bins >&2 || exit 1
    rm -rf "$gpu"
    mkdir -p "$gpu/bin"
    for b in "${bins[@]}"; do
        cp "target/release/$b" "$gpu/bin/" && strip "$gpu/bin/$b"
    done
    cp src/gpu/kernels/*.cu src/gpu/kernels/*.cuh "$gpu/"
    local work
    work=$(mktemp -d /tmp/sealkit-gpu-kat.XXXXXX)
    : > "$gpu/kat.txt"
    for proof in StackedDrg2KiBV1_1 StackedDrg8MiBV1_1; do
        local pc1
        pc1=$(seal_pc1 "$work/$proof" "$proof" 1 "$gpu/bin") || exit 1
        "$gpu/bin/seal-pc2" "$pc1" > "$work/$proof/pc2.json" || exit 1
        echo "$proof $(comm_r "$work/$proof/pc2.json")" >> "$gpu/kat.txt"
    done
    rm -rf "$work"
    cat "$gpu/kat.txt" >&2
    du -sh "$gpu" >&2
    echo "prepared $gpu: carry it to the GPU host and run scripts/gpu-check.sh run" >&2
}

run() {
    local out=${OUT:-$gpu/out} bin=$gpu/bin fails=0
    mkdir -p "$out"
    exec > >(tee "$out/gpu-check.log") 2>&1
    export LD_LIBRARY_PATH=/usr/local/nvidia/lib64:/usr/local/nvidia/lib:/usr/local/cuda/lib64:${LD_LIBRARY_PATH:-}
    check() { # name, command...: runs it, counts a failure
        local name=$1
        shift
        echo "== $name"
        if "$@"; then echo "-- $name: ok"; else echo "-- $name: FAILED"; fails=$((fails + 1)); fi
    }
    echo "== environment"
    nvidia-smi || echo "nvidia-smi failed"
    nvcc --version 2>/dev/null | tail -1
    ldconfig -p 2>/dev/null | grep -E 'libcuda\.so|libnvrtc\.so'
    check "seal-gpu info" "$bin/seal-gpu" info
    check "selftest (NVRTC)" timeout 240 "$bin/seal-gpu" selftest
    if command -v nvcc >/dev/null 2>&1; then
        check "nvcc sm_90 cubin" nvcc -cubin -arch=sm_90 -I "$gpu" "$gpu/poseidon.cu" -o "$out/poseidon.cubin"
        check "selftest --quick (nvcc cubin)" env SEALKIT_CUDA_MODULE="$out/poseidon.cubin" \
            timeout 120 "$bin/seal-gpu" selftest --quick
    else
        echo "== no nvcc: the precompiled-module path is not checked"
    fi
    local work=$out/seal
    rm -rf "$work"
    mkdir -p "$work"
    while read -r proof want; do
        local pc1="" got=""
        if pc1=$(seal_pc1 "$work/$proof" "$proof" 1 "$bin"); then
            SEALKIT_GPU=1 timeout 120 "$bin/seal-pc2" -v "$pc1" > "$work/$proof/pc2.json"
            got=$(comm_r "$work/$proof/pc2.json")
        fi
        check "$proof comm_r on the GPU ($got) equals the CPU's ($want)" test "${got:-x}" = "$want"
    done < "$gpu/kat.txt"
    local big=$work/512MiB pc1="" cpu="" gpu_r=""
    if pc1=$(timeout 300 bash -c "$(declare -f job seal_pc1); seal_pc1 $big StackedDrg512MiBV1_1 2 $bin"); then
        timeout 120 "$bin/seal-pc2" -v "$pc1" > "$big/pc2-cpu.json" && cpu=$(comm_r "$big/pc2-cpu.json")
        # A fresh PC2: without the journal and the tree files it would reuse.
        rm -f "$big"/cache/s-t01000-2/sealkit-pc2.json "$big"/cache/s-t01000-2/sc-02-data-tree-{c,r-last}*.dat
        SEALKIT_GPU=1 timeout 120 "$bin/seal-pc2" -v "$pc1" > "$big/pc2-gpu.json" && gpu_r=$(comm_r "$big/pc2-gpu.json")
    fi
    check "512MiB comm_r GPU (${gpu_r:-none}) equals CPU (${cpu:-none})" test -n "${cpu:-}" -a "${cpu:-x}" = "${gpu_r:-y}"
    rm -rf "$work"
    check "bench: one 32 GiB partition (2^27 nodes, 11 layers)" timeout 300 "$bin/seal-gpu" bench --log2-nodes 27 --layers 11
    echo "== GPU Commit2: skipped (this build has no cuda-supraseal C2)"
    echo "== $fails check(s) failed"
    ((fails == 0))
}

case ${1:-} in
prepare) prepare ;;
run) run ;;
*)
    echo "usage: scripts/gpu-check.sh prepare|run" >&2
    exit 2
    ;;
esac
