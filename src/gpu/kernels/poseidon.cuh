// Poseidon over BLS12-381 Fr with the MerkleTree domain tag, neptune's optimized static
// permutation (the one `Poseidon::hash` and so the reference runs), for width W = arity + 1.
//
// The constants are not in this file: the host builds one table per arity from neptune's
// `PoseidonConstants` (src/gpu/constants.rs, the same source the CPU code reads) and passes
// it as a buffer, so there is one source of truth. Table layout, Montgomery form:
//   [0]                    domain tag
//   [1, 1 + RC)            compressed round constants, RC = 2 * half * W + partial
//   next W * W             MDS matrix, row-major: mds[i * W + j] = m[i][j]
//   next W * W             pre-sparse matrix, row-major
//   next partial * (2W-1)  sparse matrices: w_hat[W] then v_rest[W - 1] for each round
// The state is multiplied as a row vector: new[j] = sum_i s[i] * m[i][j].
//
// Like fr.cuh, host-and-device, self-contained apart from fr.cuh.

#ifndef SEALKIT_POSEIDON_CUH
#define SEALKIT_POSEIDON_CUH

#ifndef SEALKIT_ONE_SOURCE
#include "fr.cuh"
#endif

// Offsets of a table's parts, from the width and round counts.
struct sk_layout {
    int width;
    int half;
    int partial;
    int rc;       // first round constant
    int mds;      // first MDS entry
    int pre;      // first pre-sparse entry
    int sparse;   // first sparse matrix
    int len;      // table length in elements
};

SK_HD sk_layout sk_poseidon_layout(int width, int half, int partial) {
    sk_layout t;
    t.width = width;
    t.half = half;
    t.partial = partial;
    t.rc = 1;
    t.mds = t.rc + 2 * half * width + partial;
    t.pre = t.mds + width * width;
    t.sparse = t.pre + width * width;
    t.len = t.sparse + partial * (2 * width - 1);
    return t;
}

// x^5.
SK_HD sk_fr sk_sbox(sk_fr x) { return sk_mul(sk_sqr(sk_sqr(x)), x); }

// S-box on every element, the round's constants (none after the last round), then
// state * m.
template <int W>
SK_HD void sk_full_round(sk_fr *s, const sk_fr *keys, const sk_fr *m) {
    sk_fr t[W];
    for (int i = 0; i < W; i++) {
        t[i] = sk_sbox(s[i]);
        if (keys) t[i] = sk_add(t[i], keys[i]);
    }
    for (int j = 0; j < W; j++) {
        sk_fr acc = sk_mul(t[0], m[j]);
        for (int i = 1; i < W; i++) acc = sk_add(acc, sk_mul(t[i], m[i * W + j]));
        s[j] = acc;
    }
}

// S-box and constant on element 0, then the sparse matrix: a dense first row w_hat and
// s[j] + v_rest[j - 1] * s[0] below it.
template <int W>
SK_HD void sk_partial_round(sk_fr *s, sk_fr key, const sk_fr *sparse) {
    const sk_fr *w_hat = sparse;
    const sk_fr *v_rest = sparse + W;
    sk_fr x0 = sk_add(sk_sbox(s[0]), key);
    s[0] = x0;
    sk_fr acc = sk_mul(s[0], w_hat[0]);
    for (int i = 1; i < W; i++) acc = sk_add(acc, sk_mul(s[i], w_hat[i]));
    for (int j = 1; j < W; j++) s[j] = sk_add(s[j], sk_mul(x0, v_rest[j - 1]));
    s[0] = acc;
}

// The hash of W - 1 elements in Montgomery form; returns element 1 of the permuted state.
template <int W>
SK_HD sk_fr sk_poseidon(const sk_fr *in, const sk_fr *table, int half, int partial) {
    sk_layout t = sk_poseidon_layout(W, half, partial);
    const sk_fr *rc = table + t.rc;
    sk_fr s[W];
    s[0] = table[0];
    for (int i = 1; i < W; i++) s[i] = in[i - 1];
    for (int i = 0; i < W; i++) s[i] = sk_add(s[i], rc[i]);
    int at = W;
    // The last full round before the partial rounds multiplies by the pre-sparse matrix.
    for (int r = 0; r < half; r++) {
        sk_full_round<W>(s, rc + at, r + 1 == half ? table + t.pre : table + t.mds);
        at += W;
    }
    for (int r = 0; r < partial; r++) {
        sk_partial_round<W>(s, rc[at], table + t.sparse + r * (2 * W - 1));
        at += 1;
    }
    for (int r = 1; r < half; r++) {
        sk_full_round<W>(s, rc + at, table + t.mds);
        at += W;
    }
    sk_full_round<W>(s, 0, table + t.mds);
    return s[1];
}

// Hash number h of a strided batch of canonical inputs: element i of hash h is the 4-word
// value at words 4 * (i * elem_stride + h * hash_stride) of `in`. Columns of layer-major
// data use (elem_stride = nodes, hash_stride = 1); a tree row's children use
// (1, arity). Writes the canonical hash to out[4h..4h+4]; returns false when an input was
// not canonical (>= p: not a node of any sector), which the caller reports as an error.
// This is the whole body of one kernel thread, so the host tests run exactly what the
// device runs.
template <int W>
SK_HD bool sk_hash_strided_one(const sk_u64 *in, sk_u64 elem_stride, sk_u64 hash_stride,
                               sk_u64 h, const sk_fr *table, int half, int partial,
                               sk_u64 *out) {
    sk_fr x[W - 1];
    bool ok = true;
    for (int i = 0; i < W - 1; i++) {
        const sk_u64 *e = in + 4 * ((sk_u64)i * elem_stride + h * hash_stride);
        sk_fr v = {{e[0], e[1], e[2], e[3]}};
        ok = ok && sk_is_canonical(&v);
        x[i] = sk_to_mont(v);
    }
    sk_fr r = sk_from_mont(sk_poseidon<W>(x, table, half, partial));
    for (int k = 0; k < 4; k++) out[4 * h + k] = r.l[k];
    return ok;
}

#endif
