//! fr32, CommP, zero commitments, alignment and CommD against the reference crates
//! (filecoin-proofs 19.1, fr32 12.1) on random inputs.

mod common;

use std::io::{Cursor, Read};

use common::*;
use filecoin_proofs::pieces::{compute_comm_d, get_piece_alignment, zero_padding};
use filecoin_proofs::{PieceInfo, SectorSize, UnpaddedBytesAmount};
use rand::Rng;
use sealkit::merkle::zero::zero_root;
use sealkit::piece::alignment::{fillers, reference_alignment};
use sealkit::piece::comm_d::{comm_d, PieceCommitment};
use sealkit::piece::commp::{commp_of_bytes, RAW_CHUNK};
use sealkit::piece::fr32;

#[test]
fn commp_of_random_payloads() {
    let mut rng = rng("commp_of_random_payloads");
    let mut sizes: Vec<usize> = vec![
        1,
        126,
        127,
        128,
        254,
        255,
        1016,
        1017,
        RAW_CHUNK,
        RAW_CHUNK + 1,
    ];
    sizes.extend((0..40).map(|_| rng.gen_range(1..5000)));
    sizes.extend((0..4).map(|_| rng.gen_range(5000..6 << 20)));
    for len in sizes {
        let payload = random_bytes(&mut rng, len);
        let ours = commp_of_bytes(&payload).unwrap();
        assert_eq!(
            hex(&ours.comm_p),
            hex(&reference_commp(&payload)),
            "payload of {len} bytes"
        );
        assert_eq!(ours.padded_size, padded(reference_piece_size(len as u64)));
        assert_eq!(ours.payload_size, len as u64);
    }
}

#[test]
fn fr32_pad_matches_reference_reader() {
    let mut rng = rng("fr32_pad_matches_reference_reader");
    for _ in 0..200 {
        let len = rng.gen_range(1..3000);
        let raw = random_bytes(&mut rng, len);
        let mut theirs = Vec::new();
        fr32_ref::Fr32Reader::new(Cursor::new(&raw))
            .read_to_end(&mut theirs)
            .unwrap();
        let ours = fr32::pad_to_vec(&raw);
        // The reference emits only the words that hold data; ours rounds up to whole blocks
        // whose remaining words are zero.
        assert_eq!(hex(&ours[..theirs.len()]), hex(&theirs), "len {len}");
        assert!(ours[theirs.len()..].iter().all(|&b| b == 0));
        assert_eq!(
            fr32::to_padded_bytes(len as u64),
            fr32_ref::to_padded_bytes(len) as u64
        );
    }
}

/// The reference's fr32 crate under a name that does not clash with ours.
mod fr32_ref {
    pub use ::fr32::*;
}

#[test]
fn fr32_unpad_ranges_match_reference() {
    let mut rng = rng("fr32_unpad_ranges_match_reference");
    let raw = random_bytes(&mut rng, 127 * 64);
    let padded = fr32::pad_to_vec(&raw);
    for _ in 0..300 {
        let offset = rng.gen_range(0..raw.len() - 1);
        let len = rng.gen_range(1..=raw.len() - offset);
        let mut theirs = Vec::new();
        fr32_ref::write_unpadded(&padded, &mut theirs, offset, len).unwrap();
        let (range, skip) = fr32::covering_blocks(offset as u64, len as u64);
        let ours = fr32::unpad_range(&padded[range.start as usize..range.end as usize], skip, len)
            .unwrap();
        assert_eq!(ours, theirs, "offset {offset} len {len}");
        assert_eq!(ours, raw[offset..offset + len]);
    }
    // Round trip of whole blocks.
    let mut back = vec![0u8; raw.len()];
    fr32::unpad(&padded, &mut back);
    assert_eq!(back, raw);
}

#[test]
fn zero_commitments_match_reference() {
    for k in 0..=20 {
        let unpadded = 127u64 << k;
        let theirs = zero_padding(UnpaddedBytesAmount(unpadded))
            .unwrap()
            .commitment;
        assert_eq!(
            hex(&zero_root(padded(unpadded))),
            hex(&theirs),
            "{unpadded} bytes"
        );
    }
    // Spec Appendix A.2: zero-sector CommD for every production size.
    for (size, want) in [
        (
            2u64 << 10,
            "fc7e928296e516faade986b28f92d44a4f24b935485223376a799027bc18f833",
        ),
        (
            8 << 20,
            "65f29e5d98d246c38b388cfc06db1f6b021303c5a289000bdce832a9c3ec421c",
        ),
        (
            512 << 20,
            "39560e7b13a93b07a243fd2720ffa7cb3e1d2e505ab3629e79f46313512cda06",
        ),
        (
            32 << 30,
            "077e5fde35c50a9303a55009e3498a4ebedff39c42b710b730d8ec7ac7afa63e",
        ),
        (
            64 << 30,
            "e64005a6bfe3777953b8ad6ef93f0fca1049b2041654f2a411f7702799cece02",
        ),
    ] {
        assert_eq!(hex(&zero_root(size)), want);
        assert_eq!(hex(&comm_d(size, &[]).unwrap()), want);
    }
}

#[test]
fn alignment_matches_reference() {
    let mut rng = rng("alignment_matches_reference");
    for _ in 0..2000 {
        let written = rng.gen_range(0..1u64 << 30);
        let piece = 127u64 << rng.gen_range(0..20);
        let a = get_piece_alignment(UnpaddedBytesAmount(written), UnpaddedBytesAmount(piece));
        assert_eq!(
            reference_alignment(written, piece),
            (u64::from(a.left_bytes), u64::from(a.right_bytes)),
            "written {written}, piece {piece}"
        );
    }
}

/// Random piece lists that fill an 8 MiB sector (with our fillers for alignment gaps and the
/// tail): our CommD equals the reference's `compute_comm_d` over the same list, and the
/// reference's over the deal pieces alone (it pads alignment itself) when they end the sector.
#[test]
fn comm_d_of_random_piece_lists() {
    let mut rng = rng("comm_d_of_random_piece_lists");
    let sector = 8u64 << 20;
    for _ in 0..60 {
        let mut list: Vec<PieceCommitment> = Vec::new();
        let mut end = 0u64;
        loop {
            let size = 128u64 << rng.gen_range(0..14);
            let at = end.div_ceil(size) * size;
            if at + size > sector || rng.gen_ratio(1, 12) {
                break;
            }
            for f in fillers(end, at) {
                list.push(PieceCommitment {
                    padded_size: f,
                    comm_p: zero_root(f),
                });
            }
            let mut comm_p: [u8; 32] = rng.gen();
            comm_p[31] &= 0x3f;
            list.push(PieceCommitment {
                padded_size: size,
                comm_p,
            });
            end = at + size;
        }
        for f in fillers(end, sector) {
            list.push(PieceCommitment {
                padded_size: f,
                comm_p: zero_root(f),
            });
        }
        if list.is_empty() {
            continue;
        }
        let infos: Vec<PieceInfo> = list
            .iter()
            .map(|p| {
                PieceInfo::new(p.comm_p, UnpaddedBytesAmount(p.padded_size / 128 * 127)).unwrap()
            })
            .collect();
        let theirs = compute_comm_d(SectorSize(sector), &infos).unwrap();
        assert_eq!(hex(&comm_d(sector, &list).unwrap()), hex(&theirs));
    }
}

/// CommD of pieces equals the root of the tree over the padded sector bytes (reference).
#[test]
fn comm_d_equals_tree_over_sector_bytes() {
    let mut rng = rng("comm_d_equals_tree_over_sector_bytes");
    let sector = 64u64 << 10;
    let mut bytes = vec![0u8; sector as usize];
    let mut list = Vec::new();
    let mut end = 0u64;
    for len in [300usize, 5000, 127, 20000] {
        let payload = random_bytes(&mut rng, len);
        let c = commp_of_bytes(&payload).unwrap();
        let at = end.div_ceil(c.padded_size) * c.padded_size;
        let p = fr32::pad_to_vec(&payload);
        bytes[at as usize..at as usize + p.len()].copy_from_slice(&p);
        for f in fillers(end, at) {
            list.push(PieceCommitment {
                padded_size: f,
                comm_p: zero_root(f),
            });
        }
        list.push(PieceCommitment {
            padded_size: c.padded_size,
            comm_p: c.comm_p,
        });
        end = at + c.padded_size;
    }
    assert_eq!(
        hex(&comm_d(sector, &list).unwrap()),
        hex(&reference_tree_root(&bytes))
    );
}
