// sealkit's Poseidon kernels: one thread per hash over a strided batch of canonical
// 32-byte nodes (column hashes from layer-major data, tree rows from contiguous children).
//
// Built at run time by NVRTC from the embedded source (src/gpu/cuda.rs concatenates
// fr.cuh, poseidon.cuh and this file with SEALKIT_ONE_SOURCE defined), or ahead of time by
// nvcc (scripts/test.sh compiles it to PTX when a pinned nvcc is installed, so a kernel
// that does not compile fails the tests).

#ifndef SEALKIT_ONE_SOURCE
#include "poseidon.cuh"
#endif

// n hashes; `table` is the arity's constant table; *bad is set to 1 when an input was not
// canonical.
#define SK_HASH_KERNEL(ARITY)                                                               \
    extern "C" __global__ void sk_poseidon_strided_##ARITY(                                 \
        const sk_u64 *in, sk_u64 elem_stride, sk_u64 hash_stride, sk_u64 n,                 \
        const sk_fr *table, int half, int partial, sk_u64 *out, unsigned int *bad) {        \
        sk_u64 h = (sk_u64)blockIdx.x * blockDim.x + threadIdx.x;                            \
        if (h >= n) return;                                                                  \
        if (!sk_hash_strided_one<ARITY + 1>(in, elem_stride, hash_stride, h, table, half,   \
                                            partial, out))                                   \
            atomicExch(bad, 1u);                                                             \
    }

SK_HASH_KERNEL(2)
SK_HASH_KERNEL(8)
SK_HASH_KERNEL(11)
SK_HASH_KERNEL(16)
