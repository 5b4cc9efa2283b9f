#!/usr/bin/env bash
# Installs NVIDIA's pinned CUDA 13.0 compiler wheels from PyPI (nvcc with its crt headers and
# NVVM, the runtime headers, NVRTC; about 190 MB, no GPU or driver needed) under
# target/cuda-13.0.88, and prints the environment that points the tests at them:
#
#     eval "$(scripts/cuda-wheels.sh)"
#
# SEALKIT_NVCC makes tests/gpu_kernels_nvcc.rs compile the kernels to PTX and sm_90 code;
# LD_LIBRARY_PATH lets a `--features cuda` build load NVRTC (gpu::cuda's
# nvrtc_compiles_the_kernels test). 13.0.88 matches the GPU host's toolkit: its PTX (ISA 9.0)
# loads on 13.0+ drivers, a newer wheel's would not. Without python3 or the registry, or with
# SEALKIT_NO_CUDA_WHEELS=1, it prints nothing and says why on stderr: those tests then skip.
set -uo pipefail
cd "$(dirname "$0")/.."

if [[ ${SEALKIT_NO_CUDA_WHEELS:-} == 1 ]]; then
    echo "scripts/cuda-wheels.sh: SEALKIT_NO_CUDA_WHEELS=1: kernels not compiled" >&2
    exit 0
fi
root=target/cuda-13.0.88
cu=$root/nvidia/cu13
if [[ ! -x $cu/bin/nvcc || ! -e $cu/lib/libnvrtc.so.13 ]]; then
    if ! command -v python3 >/dev/null 2>&1; then
        echo "scripts/cuda-wheels.sh: no python3: kernels not compiled with nvcc/NVRTC" >&2
        exit 0
    fi
    tmp=$(mktemp -d)
    trap 'rm -rf "$tmp"' EXIT
    echo "scripts/cuda-wheels.sh: downloading the CUDA 13.0.88 compiler wheels" >&2
    if ! python3 -m pip download --quiet --disable-pip-version-check --no-deps \
        --only-binary=:all: -d "$tmp" \
        nvidia-cuda-nvcc==13.0.88 nvidia-cuda-crt==13.0.88 nvidia-nvvm==13.0.88 \
        nvidia-cuda-nvrtc==13.0.88 nvidia-cuda-runtime==13.0.96 >&2; then
        echo "scripts/cuda-wheels.sh: download failed: kernels not compiled with nvcc/NVRTC" >&2
        exit 0
    fi
    rm -rf "$root"
    mkdir -p "$root"
    for w in "$tmp"/*.whl; do
        python3 -m zipfile -e "$w" "$root" || exit 0
    done
    # zipfile does not keep the executable bits.
    chmod +x "$cu"/bin/* "$cu"/nvvm/bin/* 2>/dev/null
fi
abs=$(cd "$cu" && pwd)
echo "export SEALKIT_NVCC=$abs/bin/nvcc"
echo "export LD_LIBRARY_PATH=$abs/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}"
