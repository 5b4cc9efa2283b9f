//! Eight BLS12-381 scalar-field elements at once on AVX-512 IFMA.
//!
//! Poseidon spends nearly all its time in field multiplications. blst multiplies one element
//! at a time with 64-bit `mulx` chains; AVX-512 IFMA (`vpmadd52luq` / `vpmadd52huq`) instead
//! multiplies eight independent 52-bit pairs per instruction and adds the low or high 52 bits
//! of each 104-bit product to a 64-bit accumulator. So an element is held in **five 52-bit
//! limbs** (260 bits, room for the 255-bit modulus and lazy sums of a few of it), and eight
//! elements — eight independent hashes — sit side by side: limb `k` of all eight lanes is one
//! `__m512i`.
//!
//! Elements are in Montgomery form with `R = 2^260` (five limb-sized reduction steps). The
//! 12 spare bits of every 64-bit accumulator lane let a product's 10 columns absorb many
//! 52-bit partial products before any carry is propagated: a whole row of a Poseidon matrix
//! product (up to 17 products, 170 terms per column, < 2^60) is summed unreduced in a
//! [`Wide8`] and reduced once.
//!
//! **Bounds.** Montgomery reduction of `T` returns `(T + m·p) / R` with `m < R`, hence less
//! than `p + T/R`. With `p < 2^255` we have `p/R < 1/32`, so if `a < α·p` and `b < β·p` the
//! reduced product is below `p·(1 + αβ/32)`. The Poseidon code keeps every state element
//! below `3p` (see `poseidon_batch`); constants are canonical (`< p`). Every value here is
//! below `2^257`, so five 52-bit limbs never overflow, and limbs are kept normalised
//! (`< 2^52`) between operations because IFMA reads only the low 52 bits of its operands.

use std::arch::x86_64::*;

/// Lanes per vector: eight 64-bit lanes of a 512-bit register.
pub const LANES: usize = 8;

const MASK: u64 = (1 << 52) - 1;

/// The BLS12-381 scalar field modulus, 64-bit little-endian words.
pub const P64: [u64; 4] = [
    0xffff_ffff_0000_0001,
    0x53bd_a402_fffe_5bfe,
    0x3339_d808_09a1_d805,
    0x73ed_a753_299d_7d48,
];

/// 64-bit words to 52-bit limbs (the value must be below 2^260).
const fn limbs52(w: [u64; 4]) -> [u64; 5] {
    [
        w[0] & MASK,
        (w[0] >> 52 | w[1] << 12) & MASK,
        (w[1] >> 40 | w[2] << 24) & MASK,
        (w[2] >> 28 | w[3] << 36) & MASK,
        w[3] >> 16,
    ]
}

/// 52-bit limbs back to 64-bit words (the value must be below 2^256).
const fn words64(l: [u64; 5]) -> [u64; 4] {
    [
        l[0] | l[1] << 52,
        l[1] >> 12 | l[2] << 40,
        l[2] >> 24 | l[3] << 28,
        l[3] >> 36 | l[4] << 16,
    ]
}

/// `a + b` on 256-bit words, with the carry out.
const fn add256(a: [u64; 4], b: [u64; 4]) -> ([u64; 4], bool) {
    let mut r = [0u64; 4];
    let mut carry = false;
    let mut i = 0;
    while i < 4 {
        let (s, c1) = a[i].overflowing_add(b[i]);
        let (s, c2) = s.overflowing_add(carry as u64);
        r[i] = s;
        carry = c1 || c2;
        i += 1;
    }
    (r, carry)
}

/// `a − b` on 256-bit words, with the borrow out.
const fn sub256(a: [u64; 4], b: [u64; 4]) -> ([u64; 4], bool) {
    let mut r = [0u64; 4];
    let mut borrow = false;
    let mut i = 0;
    while i < 4 {
        let (s, b1) = a[i].overflowing_sub(b[i]);
        let (s, b2) = s.overflowing_sub(borrow as u64);
        r[i] = s;
        borrow = b1 || b2;
        i += 1;
    }
    (r, borrow)
}

/// `2^520 mod p` (R² for R = 2^260), by doubling 1 modulo p: converts into Montgomery form.
const fn r2_mod_p() -> [u64; 4] {
    let mut x = [1u64, 0, 0, 0];
    let mut i = 0;
    while i < 520 {
        // x < p < 2^255, so 2x fits in 256 bits.
        let (d, _) = add256(x, x);
        let (s, borrow) = sub256(d, P64);
        x = if borrow { d } else { s };
        i += 1;
    }
    x
}

/// `−p⁻¹ mod 2^52`, the Montgomery reduction factor of one 52-bit step.
const fn neg_pinv52() -> u64 {
    // Newton's iteration doubles the correct low bits each step: 1 → 2 → … → 64.
    let mut inv: u64 = 1;
    let mut i = 0;
    while i < 6 {
        inv = inv.wrapping_mul(2u64.wrapping_sub(P64[0].wrapping_mul(inv)));
        i += 1;
    }
    inv.wrapping_neg() & MASK
}

const P: [u64; 5] = limbs52(P64);
const TWO_P: [u64; 5] = limbs52(add256(P64, P64).0);
const R2: [u64; 5] = limbs52(r2_mod_p());
const PINV: u64 = neg_pinv52();

/// Is the 256-bit value below p (a canonical encoding)?
#[inline]
pub fn is_canonical(w: &[u64; 4]) -> bool {
    sub256(*w, P64).1
}

/// Proof that this CPU runs AVX-512 F and IFMA: the only way to reach the vector code.
#[derive(Debug, Clone, Copy)]
pub struct Ifma(());

impl Ifma {
    /// `Some` when the CPU has AVX-512 F and IFMA.
    pub fn detect() -> Option<Ifma> {
        (is_x86_feature_detected!("avx512f") && is_x86_feature_detected!("avx512ifma"))
            .then_some(Ifma(()))
    }

    /// A canonical value (64-bit words, `< p`) as a constant in Montgomery form.
    pub fn constant(self, w: [u64; 4]) -> Const {
        assert!(
            is_canonical(&w),
            "constant is not a canonical field element"
        );
        let lanes = [w; LANES];
        // SAFETY: an `Ifma` exists only after `detect` found AVX-512 F and IFMA.
        let c = unsafe { Fr8::from_words(&lanes) };
        // SAFETY: as above.
        let l = unsafe { c.sub_if_at_least(&P).limbs() };
        Const(l[0])
    }
}

/// A field constant shared by all lanes: canonical (`< p`) Montgomery form, 52-bit limbs.
/// Stored as scalars so that a table of them stays small; each limb is broadcast where used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Const([u64; 5]);

/// Eight field elements in Montgomery form, limbs normalised, each below 2^257.
#[derive(Clone, Copy)]
pub struct Fr8([__m512i; 5]);

/// An unreduced sum of products of [`Fr8`]s: ten 52-bit columns with up to 12 bits of carry
/// each (see the module documentation for how many products fit).
#[derive(Clone, Copy)]
pub struct Wide8([__m512i; 10]);

#[inline]
#[target_feature(enable = "avx512f,avx512ifma")]
fn splat(x: u64) -> __m512i {
    _mm512_set1_epi64(x as i64)
}

impl Wide8 {
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn zero() -> Wide8 {
        Wide8([_mm512_setzero_si512(); 10])
    }

    /// `self += a · b`: 25 low and 25 high half-products into the columns, no carries.
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn mul_add(&mut self, a: &Fr8, b: &Fr8) {
        for i in 0..5 {
            for j in 0..5 {
                self.0[i + j] = _mm512_madd52lo_epu64(self.0[i + j], a.0[i], b.0[j]);
                self.0[i + j + 1] = _mm512_madd52hi_epu64(self.0[i + j + 1], a.0[i], b.0[j]);
            }
        }
    }

    /// `self += a · c` for a constant `c` (the same in every lane).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn mul_add_const(&mut self, a: &Fr8, c: &Const) {
        for j in 0..5 {
            let cj = splat(c.0[j]);
            for i in 0..5 {
                self.0[i + j] = _mm512_madd52lo_epu64(self.0[i + j], a.0[i], cj);
                self.0[i + j + 1] = _mm512_madd52hi_epu64(self.0[i + j + 1], a.0[i], cj);
            }
        }
    }

    /// Montgomery reduction: `T · 2^−260 mod p`, below `p + T/2^260`, limbs normalised.
    ///
    /// Five steps each clear the lowest column: `m = col·(−p⁻¹) mod 2^52` makes `col + m·p`
    /// divisible by 2^52, and the exact quotient carries into the next column. The result is
    /// the top five columns after carry propagation.
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn reduce(self) -> Fr8 {
        let mut t = self.0;
        let zero = _mm512_setzero_si512();
        let pinv = splat(PINV);
        for i in 0..5 {
            // IFMA reads the low 52 bits of t[i]: exactly the column's value mod 2^52.
            let m = _mm512_madd52lo_epu64(zero, t[i], pinv);
            for (j, &pj) in P.iter().enumerate() {
                let pj = splat(pj);
                t[i + j] = _mm512_madd52lo_epu64(t[i + j], m, pj);
                t[i + j + 1] = _mm512_madd52hi_epu64(t[i + j + 1], m, pj);
            }
            t[i + 1] = _mm512_add_epi64(t[i + 1], _mm512_srli_epi64::<52>(t[i]));
        }
        Fr8([t[5], t[6], t[7], t[8], t[9]]).normalized()
    }
}

impl Fr8 {
    /// Carries every limb's bits above 52 into the next limb. The value is below 2^257, so
    /// nothing leaves the top limb.
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn normalized(self) -> Fr8 {
        let mut l = self.0;
        let mask = splat(MASK);
        for k in 0..4 {
            l[k + 1] = _mm512_add_epi64(l[k + 1], _mm512_srli_epi64::<52>(l[k]));
            l[k] = _mm512_and_si512(l[k], mask);
        }
        Fr8(l)
    }

    /// Montgomery product `a·b·2^−260 mod p` (below `p·(1 + αβ/32)` for `a < αp`, `b < βp`).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn mul(&self, b: &Fr8) -> Fr8 {
        let mut w = Wide8::zero();
        w.mul_add(self, b);
        w.reduce()
    }

    /// Montgomery product with a constant.
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn mul_const(&self, c: &Const) -> Fr8 {
        let mut w = Wide8::zero();
        w.mul_add_const(self, c);
        w.reduce()
    }

    /// Montgomery square: the ten cross products are computed once and doubled.
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn square(&self) -> Fr8 {
        let a = &self.0;
        let mut w = Wide8::zero();
        for i in 0..5 {
            for j in i + 1..5 {
                w.0[i + j] = _mm512_madd52lo_epu64(w.0[i + j], a[i], a[j]);
                w.0[i + j + 1] = _mm512_madd52hi_epu64(w.0[i + j + 1], a[i], a[j]);
            }
        }
        for c in w.0.iter_mut() {
            *c = _mm512_add_epi64(*c, *c);
        }
        for (i, &ai) in a.iter().enumerate() {
            w.0[2 * i] = _mm512_madd52lo_epu64(w.0[2 * i], ai, ai);
            w.0[2 * i + 1] = _mm512_madd52hi_epu64(w.0[2 * i + 1], ai, ai);
        }
        w.reduce()
    }

    /// `a + b`, not reduced (the caller keeps the sum below 2^257).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn add(&self, b: &Fr8) -> Fr8 {
        Fr8(std::array::from_fn(|k| _mm512_add_epi64(self.0[k], b.0[k]))).normalized()
    }

    /// `a + c` for a constant, not reduced.
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn add_const(&self, c: &Const) -> Fr8 {
        Fr8(std::array::from_fn(|k| {
            _mm512_add_epi64(self.0[k], splat(c.0[k]))
        }))
        .normalized()
    }

    /// `a − q` where `a ≥ q`, else `a`, lane by lane (`q` in 52-bit limbs).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn sub_if_at_least(&self, q: &[u64; 5]) -> Fr8 {
        let mask = splat(MASK);
        let mut d = [_mm512_setzero_si512(); 5];
        let mut borrow = _mm512_setzero_si512();
        for k in 0..5 {
            // Limbs are < 2^52, so each signed difference plus borrow (0 or −1) fits easily;
            // the arithmetic shift turns a negative limb into a borrow of −1.
            let x = _mm512_add_epi64(_mm512_sub_epi64(self.0[k], splat(q[k])), borrow);
            borrow = _mm512_srai_epi64::<52>(x);
            d[k] = if k < 4 { _mm512_and_si512(x, mask) } else { x };
        }
        let negative = _mm512_cmplt_epi64_mask(d[4], _mm512_setzero_si512());
        Fr8(std::array::from_fn(|k| {
            _mm512_mask_blend_epi64(negative, d[k], self.0[k])
        }))
    }

    /// Subtracts 2p from the lanes at or above 2p: a value below 4p ends below 2p.
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn reduce_2p(&self) -> Fr8 {
        self.sub_if_at_least(&TWO_P)
    }

    /// Eight canonical values (64-bit little-endian words, each `< p`) into Montgomery form
    /// (a Montgomery product with R² mod p; the result is below 1.1p).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn from_words(w: &[[u64; 4]; LANES]) -> Fr8 {
        let mut limbs = [[0u64; LANES]; 5];
        for (lane, w) in w.iter().enumerate() {
            for (k, l) in limbs52(*w).into_iter().enumerate() {
                limbs[k][lane] = l;
            }
        }
        // SAFETY: each `limbs[k]` is 8 initialised u64s (64 bytes); loadu allows any
        // alignment.
        let x = Fr8(std::array::from_fn(|k| unsafe {
            _mm512_loadu_si512(limbs[k].as_ptr().cast())
        }));
        x.mul_const(&Const(R2))
    }

    /// A constant in every lane.
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn splat(c: &Const) -> Fr8 {
        Fr8(std::array::from_fn(|k| splat(c.0[k])))
    }

    /// Each lane's limbs as they are (no conversion, no reduction).
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    fn limbs(&self) -> [[u64; 5]; LANES] {
        let mut limbs = [[0u64; LANES]; 5];
        for (k, l) in limbs.iter_mut().enumerate() {
            // SAFETY: `l` is 8 u64s (64 bytes) of writable memory; storeu allows any
            // alignment.
            unsafe { _mm512_storeu_si512(l.as_mut_ptr().cast(), self.0[k]) };
        }
        std::array::from_fn(|lane| std::array::from_fn(|k| limbs[k][lane]))
    }

    /// Each lane's canonical value (out of Montgomery form, fully reduced) as 64-bit
    /// little-endian words.
    #[inline]
    #[target_feature(enable = "avx512f,avx512ifma")]
    pub fn to_words(self) -> [[u64; 4]; LANES] {
        let mut w = Wide8::zero();
        w.0[..5].copy_from_slice(&self.0);
        // (x + m·p) / R ≤ p for x < 2^257 < R: one conditional subtraction of p is enough.
        w.reduce().sub_if_at_least(&P).limbs().map(words64)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use blstrs::Scalar as Fr;
    use ff::{Field, PrimeField};
    use rand::{Rng, SeedableRng};
    use rand_xorshift::XorShiftRng;

    fn words(f: &Fr) -> [u64; 4] {
        let b = f.to_repr();
        std::array::from_fn(|i| u64::from_le_bytes(b[8 * i..8 * i + 8].try_into().unwrap()))
    }

    fn fr(w: [u64; 4]) -> Fr {
        let mut b = [0u8; 32];
        for (i, x) in w.iter().enumerate() {
            b[8 * i..8 * i + 8].copy_from_slice(&x.to_le_bytes());
        }
        Fr::from_repr_vartime(b).expect("canonical")
    }

    /// Edge values (0, 1, 2, p−1, p−2, near 2^254 and the top of the field) and random ones.
    fn samples(n: usize) -> Vec<Fr> {
        let mut rng = XorShiftRng::seed_from_u64(7);
        let p_minus_1 = -Fr::ONE;
        let mut v = vec![
            Fr::ZERO,
            Fr::ONE,
            Fr::from(2),
            p_minus_1,
            p_minus_1 - Fr::ONE,
            Fr::from(2).pow_vartime([254]),
            Fr::from(2).pow_vartime([254]) - Fr::ONE,
            Fr::from(2).pow_vartime([252]) * Fr::from(7),
            fr([u64::MAX, u64::MAX, u64::MAX, P64[3] - 1]),
            fr([0, 0, 0, P64[3]]),
            Fr::from(u64::MAX),
            Fr::from(1u64 << 52),
            Fr::from((1u64 << 52) - 1),
        ];
        while v.len() < n {
            v.push(Fr::random(&mut rng));
        }
        v
    }

    fn lanes(v: &[Fr]) -> [[u64; 4]; LANES] {
        std::array::from_fn(|i| words(&v[i % v.len()]))
    }

    #[test]
    fn constants() {
        assert_eq!(words(&fr(P64.map(|_| 0))), [0; 4]);
        assert_eq!(fr(r2_mod_p()), Fr::from(2).pow_vartime([520]), "R² mod p");
        assert_eq!(PINV.wrapping_mul(P64[0]) & MASK, MASK, "p·(−p⁻¹) ≡ −1");
        assert_eq!(words64(P), P64);
        assert!(is_canonical(&words(&(-Fr::ONE))));
        assert!(!is_canonical(&P64));
        assert!(!is_canonical(&[u64::MAX; 4]));
    }

    #[test]
    fn arithmetic_matches_blstrs() {
        let Some(ifma) = Ifma::detect() else {
            eprintln!("no AVX-512 IFMA on this CPU: nothing to test");
            return;
        };
        let v = samples(400);
        let mut rng = XorShiftRng::seed_from_u64(9);
        for round in 0..200 {
            // Lanes hold different values; both edge values and random ones meet.
            let a: Vec<Fr> = (0..LANES)
                .map(|i| v[(round * 3 + i * 7) % v.len()])
                .collect();
            let b: Vec<Fr> = (0..LANES).map(|_| v[rng.gen_range(0..v.len())]).collect();
            let c = v[rng.gen_range(0..v.len())];
            let cc = ifma.constant(words(&c));
            // SAFETY: `ifma` proves the CPU features.
            let got = unsafe {
                let x = Fr8::from_words(&lanes(&a));
                let y = Fr8::from_words(&lanes(&b));
                let prod = x.mul(&y).to_words();
                let sq = x.square().to_words();
                let sum = x.add(&y).to_words();
                let mc = x.mul_const(&cc).to_words();
                let ac = x.add_const(&cc).to_words();
                let round_trip = x.to_words();
                // A lazy sum of 17 products, as in a width-17 matrix row.
                let mut w = Wide8::zero();
                for _ in 0..17 {
                    w.mul_add(&x.add(&x).add(&x), &y);
                }
                let row = w.reduce().to_words();
                // x + 2p is at least 2p and loses 2p; x (below 2p) is kept.
                let two_p = Fr8(std::array::from_fn(|k| splat(TWO_P[k])));
                let red = x.add(&two_p).reduce_2p().reduce_2p().to_words();
                (prod, sq, sum, mc, ac, round_trip, row, red)
            };
            for i in 0..LANES {
                assert_eq!(fr(got.0[i]), a[i] * b[i], "mul lane {i}");
                assert_eq!(fr(got.1[i]), a[i].square(), "square lane {i}");
                assert_eq!(fr(got.2[i]), a[i] + b[i], "add lane {i}");
                assert_eq!(fr(got.3[i]), a[i] * c, "mul_const lane {i}");
                assert_eq!(fr(got.4[i]), a[i] + c, "add_const lane {i}");
                assert_eq!(fr(got.5[i]), a[i], "round trip lane {i}");
                assert_eq!(fr(got.6[i]), a[i] * b[i] * Fr::from(51), "17·3ab lane {i}");
                assert_eq!(fr(got.7[i]), a[i], "reduce_2p lane {i}");
            }
        }
    }

    /// Representatives up to 3.2p (the Poseidon code allows 3p) still multiply exactly.
    #[test]
    fn lazy_values_above_3p() {
        if Ifma::detect().is_none() {
            return;
        }
        let v = samples(LANES);
        let top: Vec<Fr> = vec![-Fr::ONE; LANES];
        // SAFETY: detected above.
        let got = unsafe {
            // x + (p−1) + p: both Montgomery representatives are below 1.1p, the sum below
            // 3.2p, never reduced.
            let x = Fr8::from_words(&lanes(&v));
            let t = Fr8::from_words(&lanes(&top));
            let big = x.add(&t).add(&Fr8(std::array::from_fn(|k| splat(P[k]))));
            (big.mul(&big).to_words(), big.square().to_words())
        };
        for i in 0..LANES {
            let want = v[i] + top[i];
            assert_eq!(fr(got.0[i]), want.square());
            assert_eq!(fr(got.1[i]), want.square());
        }
    }
}
