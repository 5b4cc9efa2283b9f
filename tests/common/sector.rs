//! Building test sectors: a document, random pieces through AddPiece, and the reference's
//! view of the same sector.
#![allow(dead_code)]

use std::fs;
use std::path::{Path, PathBuf};

use filecoin_proofs::{PieceInfo, PoRepConfig, UnpaddedBytesAmount};
use rand::Rng;
use sealkit::addpiece::{add_pieces, AddPieceOptions, PieceInput};
use sealkit::sector::document::SectorDoc;
use sealkit::sector::proof::{self, SealProof};
use storage_proofs_core::api_version::{ApiFeature, ApiVersion};

pub struct TestSector {
    pub dir: PathBuf,
    pub doc: SectorDoc,
    pub proof: SealProof,
}

impl TestSector {
    pub fn unsealed(&self) -> PathBuf {
        self.dir.join("unsealed")
    }
    pub fn sealed(&self) -> PathBuf {
        self.dir.join("sealed")
    }
    pub fn cache(&self) -> PathBuf {
        self.dir.join("cache")
    }
    pub fn doc_file(&self) -> PathBuf {
        let p = self.dir.join("doc.json");
        fs::write(&p, self.doc.to_json_line()).unwrap();
        p
    }
}

/// A new sector document of `proof` in `dir` (created) with random ids and ticket.
fn new_doc(dir: &Path, proof: SealProof, rng: &mut impl Rng) -> SectorDoc {
    fs::create_dir_all(dir).unwrap();
    let prover: [u8; 32] = rng.gen();
    let ticket: [u8; 32] = rng.gen();
    let sector: u64 = rng.gen();
    let d = dir.display();
    SectorDoc::parse(
        &format!(
            r#"{{"seal_proof": {}, {}"prover_id": "{}", "sector": {sector}, "ticket": "{}",
            "paths": {{"unsealed": "{d}/unsealed", "sealed": "{d}/sealed", "cache": "{d}/cache"}}}}"#,
            proof.id(),
            if proof.is_test_size() {
                format!("\"test_sector_size\": {}, ", proof.sector_size())
            } else {
                String::new()
            },
            sealkit::hex::encode(&prover),
            sealkit::hex::encode(&ticket)
        ),
        "test",
    )
    .unwrap()
}

/// A sector of `proof` in `dir` with random ids and ticket, filled by AddPiece with random
/// pieces (possibly none) and zero fillers.
pub fn sector_with_random_pieces(dir: &Path, proof: SealProof, rng: &mut impl Rng) -> TestSector {
    let mut doc = new_doc(dir, proof, rng);
    let max = proof.sector_size() / 128 * 127 / 2;
    for _ in 0..rng.gen_range(0..4) {
        let len = rng.gen_range(1..max) as usize;
        let bytes = super::random_bytes(rng, len);
        let input = PieceInput {
            name: "random".into(),
            len: Some(len as u64),
            reader: Box::new(std::io::Cursor::new(bytes)),
        };
        // A piece that no longer fits is skipped, as a deal would go to another sector.
        if let Err(e) = add_pieces(&mut doc, vec![input], AddPieceOptions::default()) {
            let e = format!("{e:#}");
            assert!(
                e.contains("does not fit") || e.contains("already complete"),
                "{e}"
            );
        }
    }
    add_pieces(
        &mut doc,
        vec![],
        AddPieceOptions {
            fill: true,
            padded_size: None,
        },
    )
    .unwrap();
    TestSector {
        dir: dir.to_path_buf(),
        doc,
        proof,
    }
}

/// The reference's PoRepConfig for a proof id.
pub fn porep_config(p: SealProof) -> PoRepConfig {
    let api = match p.api_version() {
        proof::ApiVersion::V1_0_0 => ApiVersion::V1_0_0,
        proof::ApiVersion::V1_1_0 => ApiVersion::V1_1_0,
        proof::ApiVersion::V1_2_0 => ApiVersion::V1_2_0,
    };
    let features = match p.feature() {
        Some(proof::Feature::SyntheticPoRep) => vec![ApiFeature::SyntheticPoRep],
        Some(proof::Feature::NonInteractivePoRep) => vec![ApiFeature::NonInteractivePoRep],
        None => vec![],
    };
    PoRepConfig::new_groth16_with_features(p.sector_size(), p.porep_id(), api, features).unwrap()
}

/// The document's pieces as the reference's PieceInfos.
pub fn piece_infos(doc: &SectorDoc) -> Vec<PieceInfo> {
    doc.pieces()
        .unwrap()
        .iter()
        .map(|p| PieceInfo::new(p.comm_p, UnpaddedBytesAmount(p.padded_size / 128 * 127)).unwrap())
        .collect()
}

/// The reference's PC1 output describing a finished PC1 in `cache` (ours or its own), so its
/// PC2 can run there.
pub fn pc1_output_for<Tree: storage_proofs_core::merkle::MerkleTreeTrait>(
    cache: &Path,
    proof: SealProof,
    comm_d: [u8; 32],
) -> filecoin_proofs::SealPreCommitPhase1Output<Tree> {
    let json = sealkit::pc1::reference_pc1_output_json(cache, proof, &comm_d).unwrap();
    serde_json::from_str(&json).unwrap()
}

/// Where the integration tests keep the SDR parent caches (shared by all tests).
pub fn parent_cache_dir() -> PathBuf {
    std::env::temp_dir().join("sealkit-test-parents")
}

/// Runs one of our binaries on a document, with the shared parent cache; returns the output.
pub fn run_tool(bin: &str, args: &[&str], doc: &SectorDoc, dir: &Path) -> std::process::Output {
    let p = dir.join(format!("in-{}.json", std::process::id()));
    fs::write(&p, doc.to_json_line()).unwrap();
    std::process::Command::new(bin)
        .args(args)
        .arg(&p)
        .env("FIL_PROOFS_PARENT_CACHE", parent_cache_dir())
        .output()
        .unwrap()
}

/// The document a successful run printed; panics with its stderr otherwise.
pub fn ok_doc(out: std::process::Output) -> SectorDoc {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    SectorDoc::parse(std::str::from_utf8(&out.stdout).unwrap(), "stdout").unwrap()
}

/// A random sector of `proof` in `dir` taken through our AddPiece, PC1 and PC2.
pub fn sealed_sector(dir: &Path, proof: SealProof, rng: &mut impl Rng) -> (TestSector, SectorDoc) {
    let s = sector_with_random_pieces(dir, proof, rng);
    let pc1 = ok_doc(run_tool(env!("CARGO_BIN_EXE_seal-pc1"), &[], &s.doc, dir));
    let pc2 = ok_doc(run_tool(env!("CARGO_BIN_EXE_seal-pc2"), &[], &pc1, dir));
    (s, pc2)
}

pub fn doc_hex32(doc: &SectorDoc, key: &str) -> [u8; 32] {
    sealkit::hex::decode32(doc.get(key).unwrap().as_str().unwrap()).unwrap()
}

/// The reference's Commit1 output for a sector after PC2 (ours or its own).
pub fn reference_c1<Tree: 'static + storage_proofs_core::merkle::MerkleTreeTrait>(
    s: &TestSector,
    doc: &SectorDoc,
    seed: [u8; 32],
) -> filecoin_proofs::SealCommitPhase1Output<Tree> {
    filecoin_proofs::seal_commit_phase1::<_, Tree>(
        &porep_config(s.proof),
        s.cache(),
        s.sealed(),
        doc.prover_id().unwrap(),
        storage_proofs_core::sector::SectorId::from(doc.get("sector").unwrap().as_u64().unwrap()),
        doc_hex32(doc, "ticket"),
        seed,
        filecoin_proofs::SealPreCommitOutput {
            comm_r: doc_hex32(doc, "comm_r"),
            comm_d: doc_hex32(doc, "comm_d"),
        },
        &piece_infos(doc),
    )
    .unwrap()
}

/// A committed-capacity sector of `proof` in `dir` (no pieces, zero data) with random ids,
/// taken through our AddPiece, PC1 and PC2: a sector key for snap deals.
pub fn cc_sealed_sector(
    dir: &Path,
    proof: SealProof,
    rng: &mut impl Rng,
) -> (TestSector, SectorDoc) {
    let mut doc = new_doc(dir, proof, rng);
    add_pieces(
        &mut doc,
        vec![],
        AddPieceOptions {
            fill: true,
            padded_size: None,
        },
    )
    .unwrap();
    let s = TestSector {
        dir: dir.to_path_buf(),
        doc,
        proof,
    };
    let pc1 = ok_doc(run_tool(env!("CARGO_BIN_EXE_seal-pc1"), &[], &s.doc, dir));
    let pc2 = ok_doc(run_tool(env!("CARGO_BIN_EXE_seal-pc2"), &[], &pc1, dir));
    (s, pc2)
}

/// Gives `doc` an `update` object in `dir` (new data `update-unsealed`, replica `update`,
/// cache `update-cache`) filled by our AddPiece with random pieces and zero fillers.
pub fn with_random_update(doc: &mut SectorDoc, dir: &Path, rng: &mut impl Rng) {
    let d = dir.display();
    doc.set(
        "update",
        serde_json::json!({"paths": {
            "unsealed": format!("{d}/update-unsealed"),
            "sealed": format!("{d}/update"),
            "cache": format!("{d}/update-cache"),
        }}),
    );
    let mut u = doc.update_doc().unwrap();
    let proof = u.seal_proof().unwrap();
    let max = proof.sector_size() / 128 * 127 / 2;
    for _ in 0..rng.gen_range(1..4) {
        let len = rng.gen_range(1..max) as usize;
        let input = PieceInput {
            name: "random".into(),
            len: Some(len as u64),
            reader: Box::new(std::io::Cursor::new(super::random_bytes(rng, len))),
        };
        if let Err(e) = add_pieces(&mut u, vec![input], AddPieceOptions::default()) {
            let e = format!("{e:#}");
            assert!(
                e.contains("does not fit") || e.contains("already complete"),
                "{e}"
            );
        }
    }
    add_pieces(
        &mut u,
        vec![],
        AddPieceOptions {
            fill: true,
            padded_size: None,
        },
    )
    .unwrap();
    doc.set_update_doc(&u);
}
