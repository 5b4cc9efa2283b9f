//! The SDR label hash (docs/sdr-porep.md#labels).
//!
//! `label[ℓ][v] = trunc254(SHA256(H(ℓ,v) || 37 parent labels))`, a 1248-byte message: the
//! 64-byte header block `replica_id || u32_be(ℓ) || u64_be(v) || 0^20`, then the parent list
//! cycled to 37 entries (6 base parents in layer 1; 6 base + 8 expander parents in later
//! layers), then SHA-256 padding. Node 0 of every layer hashes the header alone.
//!
//! The header block does not depend on any label, so its compression can be done ahead of
//! time (by a prefetch thread); the hashing thread then runs the 19 remaining compressions.

use super::{BASE_DEGREE, DEGREE};
use crate::hash::sha256::{compress_blocks, state_to_node, H0};
use crate::hash::sha256_engine::{compress16_with, Engine, State16};
use crate::hash::sha256_lanes::{compress_lanes, compress_lanes_repeating};

/// The parent blocks of a layer-1 label's message in order: the 3 blocks of its 6 base
/// parents, six times.
const LAYER1_BLOCKS: [usize; 18] = [0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2, 0, 1, 2];

/// The parent blocks of a later layer's label in order: the 7 blocks of its 14 parents, twice,
/// then the first 4.
const LAYER_N_BLOCKS: [usize; 18] = [0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3, 4, 5, 6, 0, 1, 2, 3];

/// Bytes of a label.
pub const LABEL: usize = 32;
/// The final block after the 36 parents in 18 blocks: parent 37, then padding with the
/// message length 1248 bytes = 9984 bits = 0x2700.
const FINAL_PAD: [u8; 32] = {
    let mut b = [0u8; 32];
    b[0] = 0x80;
    b[30] = 0x27;
    b
};

/// The 64-byte header block of node `v` in `layer`.
#[inline]
pub fn header_block(replica_id: &[u8; 32], layer: u32, node: u64) -> [u8; 64] {
    let mut b = [0u8; 64];
    b[..32].copy_from_slice(replica_id);
    b[32..36].copy_from_slice(&layer.to_be_bytes());
    b[36..44].copy_from_slice(&node.to_be_bytes());
    b
}

/// SHA-256 state after the header block.
#[inline]
pub fn header_state(replica_id: &[u8; 32], layer: u32, node: u64) -> [u32; 8] {
    let mut s = H0;
    compress_blocks(&mut s, &header_block(replica_id, layer, node));
    s
}

/// Label of node 0: the header block alone, padded (64-byte message).
pub fn label_node0(replica_id: &[u8; 32], layer: u32) -> [u8; 32] {
    let mut msg = [0u8; 128];
    msg[..64].copy_from_slice(&header_block(replica_id, layer, 0));
    msg[64] = 0x80;
    msg[126] = 0x02; // 512 bits
    let mut s = H0;
    compress_blocks(&mut s, &msg);
    state_to_node(&s)
}

/// Label of a layer-1 node from its 6 base-parent labels (192 contiguous bytes), given the
/// state after its header block.
#[inline]
pub fn label_layer1(mut state: [u32; 8], parents: &[u8; BASE_DEGREE * LABEL]) -> [u8; 32] {
    // 36 parents = the 6 cycled six times = 18 blocks.
    for _ in 0..6 {
        compress_blocks(&mut state, parents);
    }
    finish(state, &parents[..LABEL])
}

/// Label of a node in layer ≥ 2 from its 14 parent labels (6 base of this layer, 8 expander
/// of the previous one; 448 contiguous bytes), given the state after its header block.
#[inline]
pub fn label_layer_n(mut state: [u32; 8], parents: &[u8; DEGREE * LABEL]) -> [u8; 32] {
    // 36 parents = all 14, all 14 again, then the first 8 = 7 + 7 + 4 blocks.
    compress_blocks(&mut state, parents);
    compress_blocks(&mut state, parents);
    compress_blocks(&mut state, &parents[..8 * LABEL]);
    finish(state, &parents[8 * LABEL..9 * LABEL])
}

/// [`label_layer1`] for `L` sectors at once (multi-lane SHA-NI), given their header states.
#[inline]
pub fn label_layer1_lanes<const L: usize>(
    states: &mut [[u32; 8]; L],
    parents: &[[u8; DEGREE * LABEL]; L],
) -> [[u8; 32]; L] {
    // 36 parents = the 6 cycled six times = blocks 0, 1, 2 six times.
    compress_lanes_repeating::<L>(
        states,
        std::array::from_fn(|l| &parents[l][..BASE_DEGREE * LABEL]),
        &LAYER1_BLOCKS,
    );
    finish_lanes(states, std::array::from_fn(|l| &parents[l][..LABEL]))
}

/// [`label_layer_n`] for `L` sectors at once (multi-lane SHA-NI), given their header states.
#[inline]
pub fn label_layer_n_lanes<const L: usize>(
    states: &mut [[u32; 8]; L],
    parents: &[[u8; DEGREE * LABEL]; L],
) -> [[u8; 32]; L] {
    compress_lanes_repeating::<L>(
        states,
        std::array::from_fn(|l| &parents[l][..]),
        &LAYER_N_BLOCKS,
    );
    finish_lanes(
        states,
        std::array::from_fn(|l| &parents[l][8 * LABEL..9 * LABEL]),
    )
}

/// Header states of node `v` in `layer` for `L` replicas.
#[inline]
pub fn header_states<const L: usize>(
    replica_ids: &[[u8; 32]; L],
    layer: u32,
    node: u64,
) -> [[u32; 8]; L] {
    let blocks: [[u8; 64]; L] = std::array::from_fn(|l| header_block(&replica_ids[l], layer, node));
    let mut states = [H0; L];
    compress_lanes::<L>(&mut states, std::array::from_fn(|l| &blocks[l][..]));
    states
}

/// Header states of node `v` in `layer` for up to 16 replicas, word-major, on `engine`
/// (lanes past `replica_ids.len()` hash a copy of the first replica's header).
#[inline]
pub fn header_states16(engine: Engine, replica_ids: &[[u8; 32]], layer: u32, node: u64) -> State16 {
    let lanes = replica_ids.len();
    let blocks: [[u8; 64]; 16] =
        std::array::from_fn(|l| header_block(&replica_ids[l.min(lanes - 1)], layer, node));
    let mut state: State16 = std::array::from_fn(|w| [H0[w]; 16]);
    compress16_with(
        engine,
        &mut state,
        &std::array::from_fn(|l| &blocks[l][..]),
        lanes,
    );
    state
}

/// [`label_layer1`] for the first `lanes` of 16 sectors on `engine` (16 AVX-512 lanes), given
/// their header states.
#[inline]
pub fn label_layer1_16(
    engine: Engine,
    state: &mut State16,
    parents: &[[u8; DEGREE * LABEL]; 16],
    lanes: usize,
) -> [[u8; 32]; 16] {
    let base: [&[u8]; 16] = std::array::from_fn(|l| &parents[l][..BASE_DEGREE * LABEL]);
    for _ in 0..6 {
        compress16_with(engine, state, &base, lanes);
    }
    finish16(engine, state, parents, 0, lanes)
}

/// [`label_layer_n`] for the first `lanes` of 16 sectors on `engine`, given their header
/// states.
#[inline]
pub fn label_layer_n_16(
    engine: Engine,
    state: &mut State16,
    parents: &[[u8; DEGREE * LABEL]; 16],
    lanes: usize,
) -> [[u8; 32]; 16] {
    let all: [&[u8]; 16] = std::array::from_fn(|l| &parents[l][..]);
    compress16_with(engine, state, &all, lanes);
    compress16_with(engine, state, &all, lanes);
    let first8: [&[u8]; 16] = std::array::from_fn(|l| &parents[l][..8 * LABEL]);
    compress16_with(engine, state, &first8, lanes);
    finish16(engine, state, parents, 8, lanes)
}

/// The final block (parent `last`, then padding) and the labels.
#[inline]
fn finish16(
    engine: Engine,
    state: &mut State16,
    parents: &[[u8; DEGREE * LABEL]; 16],
    last: usize,
    lanes: usize,
) -> [[u8; 32]; 16] {
    let blocks: [[u8; 64]; 16] = std::array::from_fn(|l| {
        let mut b = [0u8; 64];
        b[..32].copy_from_slice(&parents[l][last * LABEL..(last + 1) * LABEL]);
        b[32..].copy_from_slice(&FINAL_PAD);
        b
    });
    compress16_with(
        engine,
        state,
        &std::array::from_fn(|l| &blocks[l][..]),
        lanes,
    );
    std::array::from_fn(|l| state_to_node(&std::array::from_fn(|w| state[w][l])))
}

#[inline]
fn finish_lanes<const L: usize>(states: &mut [[u32; 8]; L], last: [&[u8]; L]) -> [[u8; 32]; L] {
    let blocks: [[u8; 64]; L] = std::array::from_fn(|l| {
        let mut b = [0u8; 64];
        b[..32].copy_from_slice(last[l]);
        b[32..].copy_from_slice(&FINAL_PAD);
        b
    });
    compress_lanes::<L>(states, std::array::from_fn(|l| &blocks[l][..]));
    std::array::from_fn(|l| state_to_node(&states[l]))
}

#[inline]
fn finish(mut state: [u32; 8], last_parent: &[u8]) -> [u8; 32] {
    let mut block = [0u8; 64];
    block[..32].copy_from_slice(last_parent);
    block[32..].copy_from_slice(&FINAL_PAD);
    compress_blocks(&mut state, &block);
    state_to_node(&state)
}

#[cfg(test)]
mod tests {
    use super::*;
    use sha2::{Digest, Sha256};

    fn reference_label(
        replica_id: &[u8; 32],
        layer: u32,
        node: u64,
        parents: &[[u8; 32]],
    ) -> [u8; 32] {
        let mut h = Sha256::new();
        h.update(header_block(replica_id, layer, node));
        for i in 0..37 {
            h.update(parents[i % parents.len()]);
        }
        let mut out: [u8; 32] = h.finalize().into();
        out[31] &= 0x3f;
        out
    }

    #[test]
    fn block_layouts_equal_plain_sha256() {
        let rid = [9u8; 32];
        let ps: Vec<[u8; 32]> = (0..14u8)
            .map(|i| [i.wrapping_mul(17).wrapping_add(3); 32])
            .collect();
        let flat6: [u8; 192] = ps[..6].concat().try_into().unwrap();
        let flat14: [u8; 448] = ps.concat().try_into().unwrap();
        assert_eq!(
            label_layer1(header_state(&rid, 1, 5), &flat6),
            reference_label(&rid, 1, 5, &ps[..6])
        );
        assert_eq!(
            label_layer_n(header_state(&rid, 3, 77), &flat14),
            reference_label(&rid, 3, 77, &ps)
        );
        // Lanes: three replicas at once equal three single labels.
        let rids = [[1u8; 32], [2u8; 32], [3u8; 32]];
        let bufs = [flat14, flat14, flat14];
        let got = label_layer_n_lanes::<3>(&mut header_states(&rids, 2, 9), &bufs);
        for l in 0..3 {
            assert_eq!(got[l], reference_label(&rids[l], 2, 9, &ps));
        }
        let got1 = label_layer1_lanes::<2>(
            &mut header_states(&rids[..2].try_into().unwrap(), 1, 4),
            &[flat14; 2],
        );
        assert_eq!(got1[1], reference_label(&rids[1], 1, 4, &ps[..6]));
        // Sixteen lanes on every engine, some of them unused.
        for e in crate::hash::sha256_engine::ALL
            .into_iter()
            .filter(|e| e.available())
        {
            let rids: Vec<[u8; 32]> = (0..11u8).map(|i| [i ^ 0x5a; 32]).collect();
            let bufs: [[u8; 448]; 16] = std::array::from_fn(|l| {
                let mut b = flat14;
                b[l % 448] ^= l as u8;
                b
            });
            let mut st = header_states16(e, &rids, 4, 1234);
            let got = label_layer_n_16(e, &mut st, &bufs, rids.len());
            let mut st1 = header_states16(e, &rids, 1, 99);
            let got1 = label_layer1_16(e, &mut st1, &bufs, rids.len());
            for l in 0..rids.len() {
                let ps: Vec<[u8; 32]> = bufs[l]
                    .chunks_exact(32)
                    .map(|c| c.try_into().unwrap())
                    .collect();
                assert_eq!(got[l], reference_label(&rids[l], 4, 1234, &ps), "{e:?} {l}");
                assert_eq!(got1[l], reference_label(&rids[l], 1, 99, &ps[..6]), "{e:?}");
            }
        }
        let mut want: [u8; 32] = Sha256::digest(header_block(&rid, 2, 0)).into();
        want[31] &= 0x3f;
        assert_eq!(label_node0(&rid, 2), want);
    }
}
