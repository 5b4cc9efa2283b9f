//! The SHA-256 compression function in plain Rust (FIPS 180-4 §6.2.2), and the constants the
//! vector engines share.
//!
//! This is the engine of last resort (a CPU with neither SHA-NI, AVX2 nor AVX-512) and the
//! oracle the vector engines are tested against. It also computes, at compile time, the
//! message schedule of the constant second block of every 64-byte message, which the
//! engines add to the round constants once instead of expanding it per hash.

/// SHA-256 round constants (FIPS 180-4 §4.2.2).
pub const K: [u32; 64] = [
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
];

/// The second block of every 64-byte message: 0x80, zeros, then the bit length 512 big-endian.
pub const PAD_64: [u8; 64] = {
    let mut b = [0u8; 64];
    b[0] = 0x80;
    b[62] = 0x02;
    b
};

/// `K[t] + W[t]` for the message schedule `W` of [`PAD_64`]: the whole input of the second
/// compression of a 64-byte message, the same for every message.
pub const PAD_64_KW: [u32; 64] = {
    let w = schedule(&PAD_64);
    let mut kw = [0u32; 64];
    let mut t = 0;
    while t < 64 {
        kw[t] = K[t].wrapping_add(w[t]);
        t += 1;
    }
    kw
};

const fn small_sigma0(x: u32) -> u32 {
    x.rotate_right(7) ^ x.rotate_right(18) ^ (x >> 3)
}

const fn small_sigma1(x: u32) -> u32 {
    x.rotate_right(17) ^ x.rotate_right(19) ^ (x >> 10)
}

/// The message schedule `W[0..64]` of one block (FIPS 180-4 §6.2.2 step 1).
pub const fn schedule(block: &[u8; 64]) -> [u32; 64] {
    let mut w = [0u32; 64];
    let mut t = 0;
    while t < 16 {
        w[t] = u32::from_be_bytes([
            block[4 * t],
            block[4 * t + 1],
            block[4 * t + 2],
            block[4 * t + 3],
        ]);
        t += 1;
    }
    while t < 64 {
        w[t] = small_sigma1(w[t - 2])
            .wrapping_add(w[t - 7])
            .wrapping_add(small_sigma0(w[t - 15]))
            .wrapping_add(w[t - 16]);
        t += 1;
    }
    w
}

/// The 64 rounds over `K[t] + W[t]`, added into `state`.
#[inline]
pub fn rounds(state: &mut [u32; 8], kw: &[u32; 64]) {
    let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut h] = *state;
    for &x in kw {
        let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
        let ch = (e & f) ^ (!e & g);
        let t1 = h.wrapping_add(s1).wrapping_add(ch).wrapping_add(x);
        let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
        let maj = (a & b) ^ (a & c) ^ (b & c);
        let t2 = s0.wrapping_add(maj);
        h = g;
        g = f;
        f = e;
        e = d.wrapping_add(t1);
        d = c;
        c = b;
        b = a;
        a = t1.wrapping_add(t2);
    }
    for (s, v) in state.iter_mut().zip([a, b, c, d, e, f, g, h]) {
        *s = s.wrapping_add(v);
    }
}

/// Compresses `data` (whole 64-byte blocks) into `state`.
pub fn compress(state: &mut [u32; 8], data: &[u8]) {
    debug_assert!(data.len().is_multiple_of(64));
    for block in data.chunks_exact(64) {
        let w = schedule(block.try_into().expect("64-byte block"));
        let kw: [u32; 64] = std::array::from_fn(|t| K[t].wrapping_add(w[t]));
        rounds(state, &kw);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hash::sha256::H0;
    use sha2::{Digest, Sha256};

    /// A whole SHA-256 of `msg` on [`compress`], with FIPS 180-4 §5.1.1 padding.
    fn sha256(msg: &[u8]) -> [u8; 32] {
        let mut padded = msg.to_vec();
        padded.push(0x80);
        while padded.len() % 64 != 56 {
            padded.push(0);
        }
        padded.extend_from_slice(&(msg.len() as u64 * 8).to_be_bytes());
        let mut s = H0;
        compress(&mut s, &padded);
        let mut out = [0u8; 32];
        for (o, w) in out.chunks_exact_mut(4).zip(s) {
            o.copy_from_slice(&w.to_be_bytes());
        }
        out
    }

    /// FIPS 180-2 Appendix B (the examples FIPS 180-4 refers to).
    #[test]
    fn fips_vectors() {
        assert_eq!(
            crate::hex::encode(&sha256(b"abc")),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
        assert_eq!(
            crate::hex::encode(&sha256(
                b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq"
            )),
            "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
        );
        assert_eq!(
            crate::hex::encode(&sha256(&vec![b'a'; 1_000_000])),
            "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0"
        );
    }

    #[test]
    fn equals_sha2_and_pad_schedule() {
        let mut x = 0x9e3779b9u32;
        for len in [0usize, 1, 55, 56, 63, 64, 65, 119, 120, 128, 1000] {
            let msg: Vec<u8> = (0..len)
                .map(|_| {
                    x ^= x << 13;
                    x ^= x >> 17;
                    x ^= x << 5;
                    x as u8
                })
                .collect();
            let want: [u8; 32] = Sha256::digest(&msg).into();
            assert_eq!(sha256(&msg), want, "length {len}");
        }
        // The precomputed pad block gives the same state as compressing it.
        let mut a = [1, 2, 3, 4, 5, 6, 7, 8];
        let mut b = a;
        compress(&mut a, &PAD_64);
        rounds(&mut b, &PAD_64_KW);
        assert_eq!(a, b);
    }
}
