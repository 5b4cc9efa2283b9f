// BLS12-381 scalar field arithmetic for sealkit's Poseidon kernels.
//
// Elements are four 64-bit little-endian limbs in Montgomery form with R = 2^256, the form
// blstrs (and so neptune) keeps them in. Every function is plain C++ that compiles three
// ways: for the device (nvcc, NVRTC), and for the host, where the test suite builds it with
// the system C++ compiler and compares it with blstrs and neptune
// (tests/gpu_kernels_host.rs). The file is self-contained (no #include): NVRTC compiles it
// with no toolkit headers.
//
// Values are kept fully reduced (< p) after every operation: simple to reason about and
// bit-exact by construction; lazy reduction is a later optimisation the host tests would
// cover the same way.

#ifndef SEALKIT_FR_CUH
#define SEALKIT_FR_CUH

#if defined(__CUDACC__) || defined(__CUDACC_RTC__)
#define SK_HD __host__ __device__ __forceinline__
#else
#define SK_HD inline
#endif

typedef unsigned long long sk_u64;

struct sk_fr {
    sk_u64 l[4];
};

// The modulus p (little-endian limbs).
#define SK_P0 0xffffffff00000001ULL
#define SK_P1 0x53bda402fffe5bfeULL
#define SK_P2 0x3339d80809a1d805ULL
#define SK_P3 0x73eda753299d7d48ULL
// -p^-1 mod 2^64.
#define SK_INV 0xfffffffeffffffffULL

// a * b as a 128-bit (lo, hi) pair.
SK_HD void sk_mul_wide(sk_u64 a, sk_u64 b, sk_u64 *lo, sk_u64 *hi) {
#if defined(__CUDA_ARCH__)
    *lo = a * b;
    *hi = __umul64hi(a, b);
#else
    unsigned __int128 p = (unsigned __int128)a * b;
    *lo = (sk_u64)p;
    *hi = (sk_u64)(p >> 64);
#endif
}

// acc + b * c + *carry; returns the low word, the high word goes to *carry. Never
// overflows: (2^64 - 1) * (2^64 + 1) = 2^128 - 1.
SK_HD sk_u64 sk_mac(sk_u64 acc, sk_u64 b, sk_u64 c, sk_u64 *carry) {
    sk_u64 lo, hi;
    sk_mul_wide(b, c, &lo, &hi);
    lo += acc;
    hi += lo < acc;
    lo += *carry;
    hi += lo < *carry;
    *carry = hi;
    return lo;
}

// a + b + *carry with the carry out.
SK_HD sk_u64 sk_adc(sk_u64 a, sk_u64 b, sk_u64 *carry) {
    sk_u64 s = a + b;
    sk_u64 c = s < a;
    sk_u64 t = s + *carry;
    c += t < s;
    *carry = c;
    return t;
}

// a - b - *borrow with the borrow out.
SK_HD sk_u64 sk_sbb(sk_u64 a, sk_u64 b, sk_u64 *borrow) {
    sk_u64 d = a - b;
    sk_u64 w = a < b;
    sk_u64 t = d - *borrow;
    w += d < *borrow;
    *borrow = w;
    return t;
}

SK_HD sk_fr sk_modulus() {
    sk_fr p = {{SK_P0, SK_P1, SK_P2, SK_P3}};
    return p;
}

// r - p when r >= p (r < 2p), else r.
SK_HD sk_fr sk_reduce_once(sk_fr r) {
    sk_fr p = sk_modulus();
    sk_fr d;
    sk_u64 borrow = 0;
    for (int i = 0; i < 4; i++) d.l[i] = sk_sbb(r.l[i], p.l[i], &borrow);
    return borrow ? r : d;
}

// Is the 256-bit value below p (a canonical encoding)?
SK_HD bool sk_is_canonical(const sk_fr *a) {
    sk_fr p = sk_modulus();
    sk_u64 borrow = 0;
    for (int i = 0; i < 4; i++) sk_sbb(a->l[i], p.l[i], &borrow);
    return borrow != 0;
}

// (a + b) mod p for a, b < p. p < 2^255, so a + b fits in 256 bits.
SK_HD sk_fr sk_add(sk_fr a, sk_fr b) {
    sk_fr r;
    sk_u64 carry = 0;
    for (int i = 0; i < 4; i++) r.l[i] = sk_adc(a.l[i], b.l[i], &carry);
    return sk_reduce_once(r);
}

// (a - b) mod p for a, b < p.
SK_HD sk_fr sk_sub(sk_fr a, sk_fr b) {
    sk_fr r;
    sk_u64 borrow = 0;
    for (int i = 0; i < 4; i++) r.l[i] = sk_sbb(a.l[i], b.l[i], &borrow);
    if (borrow) {
        sk_fr p = sk_modulus();
        sk_u64 carry = 0;
        for (int i = 0; i < 4; i++) r.l[i] = sk_adc(r.l[i], p.l[i], &carry);
    }
    return r;
}

// Montgomery product a * b / 2^256 mod p for a, b < p (CIOS: multiply one word of b,
// then one reduction step, four times). The running value stays below 2p < 2^256 plus a
// top word, so one conditional subtraction leaves it canonical.
SK_HD sk_fr sk_mul(sk_fr a, sk_fr b) {
    sk_fr p = sk_modulus();
    sk_u64 t[6] = {0, 0, 0, 0, 0, 0};
    for (int i = 0; i < 4; i++) {
        sk_u64 c = 0;
        for (int j = 0; j < 4; j++) t[j] = sk_mac(t[j], a.l[j], b.l[i], &c);
        sk_u64 c2 = 0;
        t[4] = sk_adc(t[4], c, &c2);
        t[5] = c2;
        sk_u64 m = t[0] * SK_INV;
        c = 0;
        sk_mac(t[0], m, p.l[0], &c);
        for (int j = 1; j < 4; j++) t[j - 1] = sk_mac(t[j], m, p.l[j], &c);
        c2 = 0;
        t[3] = sk_adc(t[4], c, &c2);
        t[4] = t[5] + c2;
    }
    sk_fr r = {{t[0], t[1], t[2], t[3]}};
    return sk_reduce_once(r);
}

SK_HD sk_fr sk_sqr(sk_fr a) { return sk_mul(a, a); }

// 2^512 mod p: the Montgomery form of R, used to convert canonical values in.
SK_HD sk_fr sk_r2() {
    sk_fr r2 = {{0xc999e990f3f29c6dULL, 0x2b6cedcb87925c23ULL, 0x05d314967254398fULL,
                 0x0748d9d99f59ff11ULL}};
    return r2;
}

// Canonical value (< p) to Montgomery form.
SK_HD sk_fr sk_to_mont(sk_fr a) { return sk_mul(a, sk_r2()); }

// Montgomery form back to the canonical value.
SK_HD sk_fr sk_from_mont(sk_fr a) {
    sk_fr one = {{1, 0, 0, 0}};
    return sk_mul(a, one);
}

#endif
