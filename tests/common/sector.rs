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

/// A sector of `proof` in `dir` with random ids and ticket, filled by AddPiece with random
/// pieces (possibly none) and zero fillers.
pub fn sector_with_random_pieces(dir: &Path, proof: SealProof, rng: &mut impl Rng) -> TestSector {
    fs::create_dir_all(dir).unwrap();
    let prover: [u8; 32] = rng.gen();
    let ticket: [u8; 32] = rng.gen();
    let sector: u64 = rng.gen();
    let d = dir.display();
    let mut doc = SectorDoc::parse(
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
    .unwrap();
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
