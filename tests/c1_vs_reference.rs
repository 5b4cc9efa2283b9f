//! seal-c1 against the reference's `seal_commit_phase1` on random sectors of every proof
//! family: the Commit1 output file is byte-identical; the synthetic proofs file written by
//! seal-pc2 is byte-identical to `generate_synth_proofs`'; bad input fails cleanly.

mod common;

use std::fs;
use std::path::Path;

use common::sector::*;
use common::*;
use filecoin_proofs::constants::SectorShapeBase;
use rand::Rng;
use sealkit::sector::proof::SealProof;

const SEAL_C1: &str = env!("CARGO_BIN_EXE_seal-c1");

fn our_c1(doc: &sealkit::sector::document::SectorDoc, seed: &[u8; 32], dir: &Path) -> Vec<u8> {
    let seed = sealkit::hex::encode(seed);
    let out = ok_doc(run_tool(SEAL_C1, &["--seed", &seed], doc, dir));
    fs::read(out.get("c1_output").unwrap().as_str().unwrap()).unwrap()
}

fn compare<Tree: 'static + storage_proofs_core::merkle::MerkleTreeTrait>(
    proof: SealProof,
    rounds: usize,
) {
    let mut rng = rng(&format!("c1_vs_reference_{proof}"));
    for _ in 0..rounds {
        let tmp = tempfile::tempdir().unwrap();
        let (s, doc) = sealed_sector(&tmp.path().join("s"), proof, &mut rng);
        let seed: [u8; 32] = rng.gen();
        let ours = our_c1(&doc, &seed, tmp.path());
        let theirs = serde_json::to_vec(&reference_c1::<Tree>(&s, &doc, seed)).unwrap();
        assert!(
            ours == theirs,
            "{proof}: Commit1 outputs differ ({} / {} bytes)",
            ours.len(),
            theirs.len()
        );
    }
}

#[test]
fn v1_2kib() {
    compare::<SectorShapeBase>(SealProof::from_id(0).unwrap(), 2);
}

#[test]
fn v1_1_2kib() {
    compare::<SectorShapeBase>(SealProof::from_id(5).unwrap(), 3);
}

#[test]
fn non_interactive_2kib() {
    compare::<SectorShapeBase>(SealProof::from_id(15).unwrap(), 2);
}

#[test]
fn v1_1_8mib() {
    compare::<SectorShapeBase>(SealProof::from_id(6).unwrap(), 1);
}

#[test]
fn non_interactive_8mib() {
    compare::<SectorShapeBase>(SealProof::from_id(16).unwrap(), 1);
}

/// The compound shapes of 32/64GiB sectors (Sub and Top proofs) at the test sizes.
#[test]
fn compound_shapes() {
    use filecoin_proofs::constants::{SectorShape16KiB, SectorShape32KiB, SectorShape4KiB};
    let p = SealProof::from_id(5).unwrap();
    compare::<SectorShape4KiB>(p.with_test_size(4 << 10).unwrap(), 1);
    compare::<SectorShape16KiB>(p.with_test_size(16 << 10).unwrap(), 1);
    compare::<SectorShape32KiB>(p.with_test_size(32 << 10).unwrap(), 1);
}

/// Synthetic PoRep: seal-pc2 leaves the reference's synthetic proofs file; C1 selects from it
/// after the layers are gone, and the reference's C1 selects the same bytes.
#[test]
fn synthetic_2kib() {
    let proof = SealProof::from_id(10).unwrap();
    let mut rng = rng("c1_vs_reference_synthetic");
    for _ in 0..2 {
        let tmp = tempfile::tempdir().unwrap();
        let (s, doc) = sealed_sector(&tmp.path().join("s"), proof, &mut rng);
        let file = s.cache().join("syn-porep-vanilla-proofs.dat");
        let ours = fs::read(&file).unwrap();
        assert_eq!(ours.len(), 575_072);
        fs::remove_file(&file).unwrap();
        filecoin_proofs::generate_synth_proofs::<_, SectorShapeBase>(
            &porep_config(proof),
            s.cache(),
            s.sealed(),
            doc.prover_id().unwrap(),
            storage_proofs_core::sector::SectorId::from(
                doc.get("sector").unwrap().as_u64().unwrap(),
            ),
            doc_hex32(&doc, "ticket"),
            filecoin_proofs::SealPreCommitOutput {
                comm_r: doc_hex32(&doc, "comm_r"),
                comm_d: doc_hex32(&doc, "comm_d"),
            },
            &piece_infos(&doc),
        )
        .unwrap();
        assert!(
            fs::read(&file).unwrap() == ours,
            "synthetic proofs files differ"
        );

        // The layers, tree_d and tree_c may go once the synthetic proofs exist.
        for e in fs::read_dir(s.cache()).unwrap() {
            let name = e.unwrap().file_name().into_string().unwrap();
            if name.contains("layer") || name.contains("tree-d") || name.contains("tree-c") {
                fs::remove_file(s.cache().join(name)).unwrap();
            }
        }
        let seed: [u8; 32] = rng.gen();
        let ours = our_c1(&doc, &seed, tmp.path());
        let theirs = serde_json::to_vec(&reference_c1::<SectorShapeBase>(&s, &doc, seed)).unwrap();
        assert!(ours == theirs, "synthetic Commit1 outputs differ");
    }
}

#[test]
fn bad_input() {
    let mut rng = rng("c1_bad_input");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    let (s, doc) = sealed_sector(&dir.join("s"), SealProof::from_id(5).unwrap(), &mut rng);
    // No seed, a zero seed, a malformed one.
    fails(run_tool(SEAL_C1, &[], &doc, dir), "seed");
    fails(
        run_tool(SEAL_C1, &["--seed", &"00".repeat(32)], &doc, dir),
        "all zeros",
    );
    fails(run_tool(SEAL_C1, &["--seed", "abc"], &doc, dir), "--seed");
    let seed = "07".repeat(32);
    // A comm_r from another sector.
    let mut other = doc.clone();
    other.set_hex("comm_r", &[9; 32]);
    fails(run_tool(SEAL_C1, &["--seed", &seed], &other, dir), "comm_r");
    // A corrupted label: the self-check refuses to write proofs that would not verify.
    let layer = s.cache().join("sc-02-data-layer-1.dat");
    let good = fs::read(&layer).unwrap();
    let mut bad = good.clone();
    for b in bad.iter_mut().step_by(97) {
        *b ^= 1;
    }
    fs::write(&layer, &bad).unwrap();
    fails(
        run_tool(SEAL_C1, &["--seed", &seed], &doc, dir),
        "self-check",
    );
    assert!(!s.cache().join("commit1-output.json").exists());
    fs::write(&layer, &good).unwrap();
    // A missing layer file.
    fs::remove_file(s.cache().join("sc-02-data-layer-2.dat")).unwrap();
    fails(run_tool(SEAL_C1, &["--seed", &seed], &doc, dir), "layer-2");
}

/// A truncated synthetic proofs file is named, not trusted.
#[test]
fn truncated_synthetic_file() {
    let mut rng = rng("c1_truncated_synth");
    let tmp = tempfile::tempdir().unwrap();
    let (s, doc) = sealed_sector(
        &tmp.path().join("s"),
        SealProof::from_id(10).unwrap(),
        &mut rng,
    );
    let file = s.cache().join("syn-porep-vanilla-proofs.dat");
    let f = fs::OpenOptions::new().write(true).open(&file).unwrap();
    f.set_len(100_000).unwrap();
    fails(
        run_tool(SEAL_C1, &["--seed", &"05".repeat(32)], &doc, tmp.path()),
        "truncated",
    );
}
