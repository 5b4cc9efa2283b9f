#!/usr/bin/env bash
# The test command: `scripts/test.sh [cargo test args]`, e.g. `scripts/test.sh --test ssh_farm`.
#
# The SSH integration tests start real sshd instances on 127.0.0.1 (tests/common/sshd.rs) and
# copy files with rsync, and tests/sched_view.rs loads the web view in headless Chromium, so
# this installs what they need when it is missing (Debian/Ubuntu: openssh-server for
# /usr/sbin/sshd, rsync, chromium for /usr/bin/chromium; through sudo unless root), then runs
# `cargo test --locked` with the given arguments. It also installs the pinned CUDA 13.0
# compiler wheels from PyPI (scripts/cuda-wheels.sh: nvcc and NVRTC, no GPU needed) so the
# tests compile the GPU kernels; without them those tests say so and pass.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
[[ -x /usr/sbin/sshd ]] || missing+=(openssh-server)
command -v rsync >/dev/null 2>&1 || missing+=(rsync)
[[ -x /usr/bin/chromium ]] || missing+=(chromium)
if ! command -v ssh >/dev/null 2>&1 || ! command -v ssh-keygen >/dev/null 2>&1; then
    missing+=(openssh-client)
fi

if ((${#missing[@]})); then
    echo "scripts/test.sh: installing ${missing[*]} (the SSH tests run real sshd on loopback; the web view test runs headless Chromium)" >&2
    if ! command -v apt-get >/dev/null 2>&1; then
        echo "scripts/test.sh: no apt-get here: install ${missing[*]} yourself" >&2
        exit 1
    fi
    sudo=""
    if ((EUID != 0)); then
        if ! command -v sudo >/dev/null 2>&1; then
            echo "scripts/test.sh: not root and no sudo: install ${missing[*]} as root" >&2
            exit 1
        fi
        sudo=sudo
    fi
    apt_install() {
        $sudo env DEBIAN_FRONTEND=noninteractive \
            apt-get install -y --no-install-recommends "${missing[@]}" >&2
    }
    if ! apt_install; then
        echo "scripts/test.sh: install failed; running apt-get update and trying again" >&2
        $sudo apt-get update >&2
        apt_install
    fi
fi

eval "$(scripts/cuda-wheels.sh)"
exec cargo test --locked "$@"
