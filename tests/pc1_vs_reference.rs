//! seal-pc1 against the reference's `seal_pre_commit_phase1` on random sectors of every proof
//! family: identical parent cache, layer files, tree_d, replica and comm_d; the reference's PC2
//! accepts our PC1 output and gives the reference's comm_r. Then kills, corruption and bad
//! input.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

use common::sector::*;
use common::*;
use filecoin_proofs::constants::SectorShapeBase;
use filecoin_proofs::{seal_pre_commit_phase1, seal_pre_commit_phase2, SealPreCommitPhase1Output};
use sealkit::sector::proof::SealProof;

const SEAL_PC1: &str = env!("CARGO_BIN_EXE_seal-pc1");

/// The reference reads FIL_PROOFS_PARENT_CACHE once; point it at a directory of its own so
/// the two implementations' cache files can be compared.
fn reference_parent_cache() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| {
        let d = tempfile::tempdir().unwrap();
        std::env::set_var("FIL_PROOFS_PARENT_CACHE", d.path());
        d
    })
    .path()
}

fn our_parent_cache() -> &'static Path {
    static DIR: OnceLock<tempfile::TempDir> = OnceLock::new();
    DIR.get_or_init(|| tempfile::tempdir().unwrap()).path()
}

fn seal_pc1(args: &[&Path]) -> Output {
    Command::new(SEAL_PC1)
        .args(args)
        .env("FIL_PROOFS_PARENT_CACHE", our_parent_cache())
        .output()
        .unwrap()
}

fn ok_docs(out: Output) -> Vec<serde_json::Value> {
    assert!(
        out.status.success(),
        "seal-pc1 failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::Deserializer::from_slice(&out.stdout)
        .into_iter()
        .map(|v| v.unwrap())
        .collect()
}

/// Runs the reference's PC1 on the sector's unsealed file into `<dir>/ref-*`.
fn reference_pc1(s: &TestSector) -> (PathBuf, PathBuf, SealPreCommitPhase1Output<SectorShapeBase>) {
    reference_parent_cache();
    let cache = s.dir.join("ref-cache");
    let sealed = s.dir.join("ref-sealed");
    fs::create_dir_all(&cache).unwrap();
    fs::write(&sealed, b"").unwrap();
    let out = seal_pre_commit_phase1::<_, _, _, SectorShapeBase>(
        &porep_config(s.proof),
        &cache,
        s.unsealed(),
        &sealed,
        s.doc.prover_id().unwrap(),
        storage_proofs_core::sector::SectorId::from(s.doc.sector().unwrap()),
        s.doc.ticket().unwrap(),
        &piece_infos(&s.doc),
    )
    .unwrap();
    (cache, sealed, out)
}

fn assert_same_file(a: &Path, b: &Path) {
    let (x, y) = (fs::read(a).unwrap(), fs::read(b).unwrap());
    assert_eq!(
        x.len(),
        y.len(),
        "{} and {} differ in size",
        a.display(),
        b.display()
    );
    assert!(x == y, "{} and {} differ", a.display(), b.display());
}

fn compare_with_reference(proof_id: u64, rounds: usize, with_pc2: bool) {
    let mut rng = rng(&format!("pc1_vs_reference_{proof_id}"));
    let proof = SealProof::from_id(proof_id).unwrap();
    for round in 0..rounds {
        let tmp = tempfile::tempdir().unwrap();
        let s = sector_with_random_pieces(tmp.path(), proof, &mut rng);
        let doc = &ok_docs(seal_pc1(&[&s.doc_file()]))[0];

        let (ref_cache, ref_sealed, ref_out) = reference_pc1(&s);
        assert_eq!(doc["comm_d"], hex(&ref_out.comm_d), "{proof} round {round}");
        for l in 1..=proof.layers() {
            let name = format!("sc-02-data-layer-{l}.dat");
            assert_same_file(&s.cache().join(&name), &ref_cache.join(&name));
        }
        assert_same_file(
            &s.cache().join("sc-02-data-tree-d.dat"),
            &ref_cache.join("sc-02-data-tree-d.dat"),
        );
        assert_same_file(&s.sealed(), &ref_sealed);

        let prover = s.doc.prover_id().unwrap();
        let want_rid = sealkit::sector::replica_id::replica_id(
            &prover,
            s.doc.sector().unwrap(),
            &s.doc.ticket().unwrap(),
            &ref_out.comm_d,
            &proof.porep_id(),
        );
        assert_eq!(doc["replica_id"], hex(&want_rid));

        if with_pc2 {
            // The reference's PC2 on its own PC1, and on ours: the same comm_r.
            let theirs =
                seal_pre_commit_phase2(&porep_config(proof), ref_out, &ref_cache, &ref_sealed)
                    .unwrap();
            let comm_d = sealkit::hex::decode32(doc["comm_d"].as_str().unwrap()).unwrap();
            let ours_in = pc1_output_for::<SectorShapeBase>(&s.cache(), proof, comm_d);
            let ours = seal_pre_commit_phase2(&porep_config(proof), ours_in, s.cache(), s.sealed())
                .unwrap();
            assert_eq!(hex(&ours.comm_r), hex(&theirs.comm_r));
        }
    }
}

#[test]
fn v1_2kib() {
    compare_with_reference(0, 3, true);
}

#[test]
fn v1_1_2kib() {
    compare_with_reference(5, 3, true);
}

#[test]
fn synthetic_2kib() {
    compare_with_reference(10, 2, true);
}

#[test]
fn non_interactive_2kib() {
    compare_with_reference(15, 2, true);
}

#[test]
fn v1_8mib() {
    compare_with_reference(1, 1, false);
}

#[test]
fn v1_1_8mib() {
    compare_with_reference(6, 1, true);
}

#[test]
fn synthetic_8mib() {
    compare_with_reference(11, 1, false);
}

#[test]
fn non_interactive_8mib() {
    compare_with_reference(16, 1, false);
}

#[test]
fn parent_cache_identical_to_reference() {
    // The 8 MiB V1_1 caches both implementations wrote (after v1_1_8mib or on their own).
    let mut rng = rng("parent_cache_identical_to_reference");
    let tmp = tempfile::tempdir().unwrap();
    let s = sector_with_random_pieces(tmp.path(), SealProof::from_id(5).unwrap(), &mut rng);
    ok_docs(seal_pc1(&[&s.doc_file()]));
    reference_pc1(&s);
    let name =
        "v28-sdr-parent-494d91dc80f2df5272c4b9e129bc7ade9405225993af9fe34e6542a39a47554b.cache";
    assert_same_file(
        &our_parent_cache().join(name),
        &reference_parent_cache().join(name),
    );
}
