//! seal-pc2 against the reference's `seal_pre_commit_phase2` on random sectors of every proof
//! family: identical tree_c, tree_r_last, replica, p_aux, t_aux and comm_r; the known comm_r
//! (docs/sdr-porep.md#known-answers); our PC2 on the reference's PC1 output; re-runs (reusing
//! journaled trees) and kills; bad input.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::Duration;

use common::sector::*;
use common::*;
use filecoin_proofs::constants::SectorShapeBase;
use filecoin_proofs::{seal_pre_commit_phase1, seal_pre_commit_phase2};
use sealkit::sector::document::SectorDoc;
use sealkit::sector::proof::SealProof;

const SEAL_PC1: &str = env!("CARGO_BIN_EXE_seal-pc1");
const SEAL_PC2: &str = env!("CARGO_BIN_EXE_seal-pc2");

fn parents() -> PathBuf {
    std::env::temp_dir().join("sealkit-test-parents")
}

fn run(bin: &str, doc: &SectorDoc, dir: &Path) -> Output {
    let p = dir.join(format!("in-{}.json", std::process::id()));
    fs::write(&p, doc.to_json_line()).unwrap();
    Command::new(bin)
        .arg(&p)
        .env("FIL_PROOFS_PARENT_CACHE", parents())
        .output()
        .unwrap()
}

fn ok(out: Output) -> SectorDoc {
    assert!(
        out.status.success(),
        "failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    SectorDoc::parse(std::str::from_utf8(&out.stdout).unwrap(), "stdout").unwrap()
}

fn copy_dir(from: &Path, to: &Path) {
    fs::create_dir_all(to).unwrap();
    for e in fs::read_dir(from).unwrap() {
        let e = e.unwrap();
        fs::copy(e.path(), to.join(e.file_name())).unwrap();
    }
}

fn same(a: &Path, b: &Path) {
    let (x, y) = (fs::read(a).unwrap(), fs::read(b).unwrap());
    assert!(
        x == y,
        "{} and {} differ ({} / {} bytes)",
        a.display(),
        b.display(),
        x.len(),
        y.len()
    );
}

/// Our PC1 then our PC2; then the reference's PC2 on the same PC1 files in the same place.
fn compare(proof_id: u64, rounds: usize) {
    compare_shape::<SectorShapeBase>(SealProof::from_id(proof_id).unwrap(), rounds);
}

/// [`compare`] for any tree shape (the reference's tree type must match the proof's shape):
/// every file our PC2 adds must equal the reference's.
fn compare_shape<Tree: 'static + storage_proofs_core::merkle::MerkleTreeTrait>(
    proof: SealProof,
    rounds: usize,
) {
    let mut rng = rng(&format!("pc2_vs_reference_{proof}"));
    for _ in 0..rounds {
        let tmp = tempfile::tempdir().unwrap();
        let s = sector_with_random_pieces(&tmp.path().join("s"), proof, &mut rng);
        let doc = ok(run(SEAL_PC1, &s.doc, tmp.path()));
        let snap = tmp.path().join("snap");
        copy_dir(&s.cache(), &snap);
        fs::copy(s.sealed(), tmp.path().join("snap-sealed")).unwrap();

        let ours_doc = ok(run(SEAL_PC2, &doc, tmp.path()));
        let ours = tmp.path().join("ours");
        copy_dir(&s.cache(), &ours);
        fs::copy(s.sealed(), tmp.path().join("ours-sealed")).unwrap();

        // Restore PC1's state in the same directory, then the reference's PC2 there.
        fs::remove_dir_all(s.cache()).unwrap();
        copy_dir(&snap, &s.cache());
        fs::copy(tmp.path().join("snap-sealed"), s.sealed()).unwrap();
        let comm_d = sealkit::hex::decode32(doc.get("comm_d").unwrap().as_str().unwrap()).unwrap();
        let theirs = seal_pre_commit_phase2::<_, _, Tree>(
            &porep_config(proof),
            pc1_output_for::<Tree>(&s.cache(), proof, comm_d),
            s.cache(),
            s.sealed(),
        )
        .unwrap();

        assert_eq!(
            ours_doc.get("comm_r").unwrap().as_str().unwrap(),
            hex(&theirs.comm_r)
        );
        let mut added = 0;
        for e in fs::read_dir(&ours).unwrap() {
            let name = e.unwrap().file_name();
            // The synthetic proofs file is the reference's generate_synth_proofs' output, not
            // its PC2's: tests/c1_vs_reference.rs compares it.
            // The journal is ours alone (the reference resumes nothing).
            if name == "syn-porep-vanilla-proofs.dat" || name == sealkit::pc2::JOURNAL_FILE {
                continue;
            }
            if !snap.join(&name).exists() {
                same(&ours.join(&name), &s.cache().join(&name));
                added += 1;
            }
        }
        assert_eq!(
            added,
            2 + 2 * proof.tree_shape().base_trees(),
            "p_aux, t_aux and the tree files"
        );
        same(&tmp.path().join("ours-sealed"), &s.sealed());
    }
}

#[test]
fn v1_2kib() {
    compare(0, 2);
}

#[test]
fn v1_1_2kib() {
    compare(5, 2);
}

#[test]
fn synthetic_2kib() {
    compare(10, 1);
}

#[test]
fn non_interactive_2kib() {
    compare(15, 1);
}

/// The compound shapes of 32/64GiB sectors at the reference's test sizes.
#[test]
fn compound_shapes_match_reference() {
    use filecoin_proofs::constants::{SectorShape16KiB, SectorShape32KiB, SectorShape4KiB};
    let p = SealProof::from_id(5).unwrap();
    compare_shape::<SectorShape4KiB>(p.with_test_size(4 << 10).unwrap(), 1);
    compare_shape::<SectorShape16KiB>(p.with_test_size(16 << 10).unwrap(), 1);
    compare_shape::<SectorShape32KiB>(p.with_test_size(32 << 10).unwrap(), 1);
}

#[test]
fn v1_1_8mib() {
    compare(6, 1);
}

#[test]
fn non_interactive_8mib() {
    compare(16, 1);
}

/// Spec Appendix A.4 (a) and (b): known comm_c, comm_r_last and comm_r.
#[test]
fn known_answers() {
    for (data, comm_c, comm_r_last, comm_r) in [
        (
            None,
            "99f141f946d31a5abb25bb3d0dc5dea4f6bb51dacb255cfb1e3a13845b25cc55",
            "fbd5572981ecb169f987350db8fe4dcc13a4a2b8fbf5a1f6129ab5b04a371c5e",
            "5ef39cd8b8ff6434a5c5cceabed58a857113254b2d7fa34a98782db30582690b",
        ),
        (
            Some(
                (0..2032u32)
                    .map(|i| ((7 * i + 3) % 256) as u8)
                    .collect::<Vec<u8>>(),
            ),
            "a9a6798bb28cab722db3d91f6f87fa9f67b42d5b42e7a89a2d53fbcf7b28190c",
            "9b52bb84fbd3dac224a7fbb4771076d6e8bf299b53a6cfa2a22cc8436990d459",
            "2754fff8a9aaa335b58ef64a9430ed27c7df5260114ac67b6a3f5810b18e904d",
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().display();
        let mut doc = SectorDoc::parse(
            &format!(
                r#"{{"seal_proof":5,"prover_id":"{}","sector":42,"ticket":"{}",
            "paths":{{"unsealed":"{d}/u","sealed":"{d}/s","cache":"{d}/c"}}}}"#,
                "01".repeat(32),
                "02".repeat(32)
            ),
            "t",
        )
        .unwrap();
        let inputs = data
            .map(|b| {
                vec![sealkit::addpiece::PieceInput {
                    name: "p".into(),
                    len: Some(b.len() as u64),
                    reader: Box::new(std::io::Cursor::new(b)),
                }]
            })
            .unwrap_or_default();
        sealkit::addpiece::add_pieces(
            &mut doc,
            inputs,
            sealkit::addpiece::AddPieceOptions {
                fill: true,
                padded_size: None,
            },
        )
        .unwrap();
        let doc = ok(run(
            SEAL_PC2,
            &ok(run(SEAL_PC1, &doc, tmp.path())),
            tmp.path(),
        ));
        assert_eq!(doc.get("comm_c").unwrap(), comm_c);
        assert_eq!(doc.get("comm_r_last").unwrap(), comm_r_last);
        assert_eq!(doc.get("comm_r").unwrap(), comm_r);
        assert!(doc
            .get("sealed_cid")
            .unwrap()
            .as_str()
            .unwrap()
            .starts_with("bagboea4b5abc"));
        // Cache sizes after PC2 (docs/sdr-porep.md#known-answers): p_aux 64, tree-c 2336,
        // tree-r-last 32, t_aux for this path.
        let c = tmp.path().join("c");
        assert_eq!(fs::metadata(c.join("p_aux")).unwrap().len(), 64);
        assert_eq!(
            fs::metadata(c.join("sc-02-data-tree-c.dat")).unwrap().len(),
            2336
        );
        assert_eq!(
            fs::metadata(c.join("sc-02-data-tree-r-last.dat"))
                .unwrap()
                .len(),
            32
        );
    }
}

/// Our PC2 on the reference's PC1 output gives the reference's comm_r (and replica).
#[test]
fn our_pc2_on_reference_pc1() {
    std::env::set_var("FIL_PROOFS_PARENT_CACHE", parents());
    let mut rng = rng("our_pc2_on_reference_pc1");
    let proof = SealProof::from_id(5).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let s = sector_with_random_pieces(&tmp.path().join("s"), proof, &mut rng);
    // The reference's PC1 into the document's own cache and sealed paths.
    fs::create_dir_all(s.cache()).unwrap();
    fs::write(s.sealed(), b"").unwrap();
    let pc1 = seal_pre_commit_phase1::<_, _, _, SectorShapeBase>(
        &porep_config(proof),
        s.cache(),
        s.unsealed(),
        s.sealed(),
        s.doc.prover_id().unwrap(),
        storage_proofs_core::sector::SectorId::from(s.doc.sector().unwrap()),
        s.doc.ticket().unwrap(),
        &piece_infos(&s.doc),
    )
    .unwrap();
    // A copy for the reference's own PC2.
    let ref_cache = tmp.path().join("ref-cache");
    copy_dir(&s.cache(), &ref_cache);
    let ref_sealed = tmp.path().join("ref-sealed");
    fs::copy(s.sealed(), &ref_sealed).unwrap();
    let comm_d = pc1.comm_d;
    let theirs =
        seal_pre_commit_phase2(&porep_config(proof), pc1, &ref_cache, &ref_sealed).unwrap();

    let mut doc = s.doc.clone();
    let rid = sealkit::sector::replica_id::replica_id(
        &s.doc.prover_id().unwrap(),
        s.doc.sector().unwrap(),
        &s.doc.ticket().unwrap(),
        &comm_d,
        &proof.porep_id(),
    );
    doc.set_hex("replica_id", &rid);
    let ours = ok(run(SEAL_PC2, &doc, tmp.path()));
    assert_eq!(
        ours.get("comm_r").unwrap().as_str().unwrap(),
        hex(&theirs.comm_r)
    );
    same(&s.sealed(), &ref_sealed);
}

/// Running PC2 twice, or killing it at any moment and re-running, never double-encodes: the
/// replica and comm_r equal a single clean run's.
#[test]
fn rerun_and_kill_are_safe() {
    let mut rng = rng("pc2_rerun_and_kill_are_safe");
    let proof = SealProof::from_id(6).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let s = sector_with_random_pieces(&tmp.path().join("s"), proof, &mut rng);
    let pc1 = ok(run(SEAL_PC1, &s.doc, tmp.path()));
    let clean = ok(run(SEAL_PC2, &pc1, tmp.path()));
    let replica = fs::read(s.sealed()).unwrap();
    let again = ok(run(SEAL_PC2, &pc1, tmp.path()));
    assert_eq!(again.get("comm_r"), clean.get("comm_r"));
    assert!(
        fs::read(s.sealed()).unwrap() == replica,
        "a second PC2 changed the replica"
    );

    let p = tmp.path().join("pc1.json");
    fs::write(&p, pc1.to_json_line()).unwrap();
    for delay_ms in [5u64, 40, 120, 300] {
        let mut child = Command::new(SEAL_PC2)
            .arg(&p)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        std::thread::sleep(Duration::from_millis(delay_ms));
        let _ = child.kill();
        child.wait().unwrap();
        let after = ok(run(SEAL_PC2, &pc1, tmp.path()));
        assert_eq!(
            after.get("comm_r"),
            clean.get("comm_r"),
            "after a kill at {delay_ms} ms"
        );
        assert!(
            fs::read(s.sealed()).unwrap() == replica,
            "replica differs after a kill at {delay_ms} ms"
        );
    }
}

/// A re-run reuses the tree files the journal vouches for, and recomputes a damaged one
/// (or all of them without a journal) to the same bytes.
#[test]
fn rerun_reuses_finished_trees() {
    let mut rng = rng("pc2_rerun_reuses_finished_trees");
    let proof = SealProof::from_id(6).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    let s = sector_with_random_pieces(&tmp.path().join("s"), proof, &mut rng);
    let pc1 = ok(run(SEAL_PC1, &s.doc, tmp.path()));
    let clean = ok(run(SEAL_PC2, &pc1, tmp.path()));
    let (tree_c, tree_r) = (
        s.cache().join("sc-02-data-tree-c.dat"),
        s.cache().join("sc-02-data-tree-r-last.dat"),
    );
    let (c_bytes, r_bytes) = (fs::read(&tree_c).unwrap(), fs::read(&tree_r).unwrap());
    let rerun = |what: &str| -> String {
        let out = run(SEAL_PC2, &pc1, tmp.path());
        let err = String::from_utf8_lossy(&out.stderr).into_owned();
        let doc = ok(out);
        assert_eq!(doc.get("comm_r"), clean.get("comm_r"), "{what}");
        assert!(fs::read(&tree_c).unwrap() == c_bytes, "tree_c after {what}");
        assert!(
            fs::read(&tree_r).unwrap() == r_bytes,
            "tree_r_last after {what}"
        );
        err
    };

    let err = rerun("a plain re-run");
    assert!(
        err.contains("sc-02-data-tree-c.dat: complete and verified, reused"),
        "{err}"
    );
    assert!(
        err.contains("sc-02-data-tree-r-last.dat: complete and verified, reused"),
        "{err}"
    );

    let mut bad = c_bytes.clone();
    bad[c_bytes.len() / 2] ^= 0x10;
    fs::write(&tree_c, &bad).unwrap();
    let err = rerun("a corrupted tree_c");
    assert!(
        err.contains("sc-02-data-tree-c.dat: does not match the checksum"),
        "{err}"
    );
    assert!(
        err.contains("sc-02-data-tree-r-last.dat: complete and verified, reused"),
        "{err}"
    );

    fs::write(&tree_r, &r_bytes[..r_bytes.len() - 32]).unwrap();
    let err = rerun("a short tree_r_last");
    assert!(
        err.contains("sc-02-data-tree-r-last.dat: does not match the checksum"),
        "{err}"
    );

    fs::remove_file(s.cache().join(sealkit::pc2::JOURNAL_FILE)).unwrap();
    let err = rerun("a missing journal");
    assert!(!err.contains("reused"), "{err}");
}

#[test]
fn bad_input() {
    let mut rng = rng("pc2_bad_input");
    let tmp = tempfile::tempdir().unwrap();
    let s = sector_with_random_pieces(
        &tmp.path().join("s"),
        SealProof::from_id(5).unwrap(),
        &mut rng,
    );
    let err = |out: Output| {
        assert!(!out.status.success());
        assert!(out.stdout.is_empty());
        let e = String::from_utf8_lossy(&out.stderr).to_string();
        assert_eq!(e.trim_end().lines().count(), 1, "{e}");
        e
    };
    // PC1 never ran: no replica_id.
    assert!(err(run(SEAL_PC2, &s.doc, tmp.path())).contains("replica_id"));
    let pc1 = ok(run(SEAL_PC1, &s.doc, tmp.path()));
    // A layer file of the wrong size, then a missing one.
    let layer = s.cache().join("sc-02-data-layer-2.dat");
    let bytes = fs::read(&layer).unwrap();
    fs::write(&layer, &bytes[..1000]).unwrap();
    assert!(err(run(SEAL_PC2, &pc1, tmp.path())).contains("sc-02-data-layer-2.dat"));
    fs::remove_file(&layer).unwrap();
    assert!(err(run(SEAL_PC2, &pc1, tmp.path())).contains("sc-02-data-layer-2.dat"));
    // A replica_id that does not belong to the document.
    let mut wrong = pc1.clone();
    wrong.set_hex("replica_id", &[7u8; 32]);
    assert!(err(run(SEAL_PC2, &wrong, tmp.path())).contains("replica_id"));
}

/// Spec Appendix A.4, compound shapes: the 32/64GiB tree shapes (8-2-0, 8-8-0, 8-8-2) on the
/// reference's 4KiB, 16KiB and 32KiB test sizes, one full piece of the (7i + 3) pattern.
#[test]
fn compound_shapes_known_answers() {
    for (size, base_trees, comm_d, comm_c, comm_r_last, comm_r) in [
        (
            4u64 << 10,
            2usize,
            "66af3bb154aa2ac35f872bc7d372ca02ff84d669416875e9208b07ed3517b313",
            "57f25c521bfc276ee2265c66890dfcdaf11d14844fd29358f107180d58df6961",
            "22eabfd206750cb0ae2e59744aa776fc3de983ab14c279032e0fbb2af3e2b969",
            "3dd7b8d3f10672e4f31d1941ff559f2c4af81191e4058c3cf0c5c0ec184d8d26",
        ),
        (
            16 << 10,
            8,
            "788d599a794c07c147da19529cfda19c06ef8f673beaf4cc61f0ff27907b141a",
            "13ec2d1325ebcfea311002d3b5d241317b078cb6e6bb9b241d28156dfc9aec3e",
            "54ee753615daf14939af54eb8d3a675899e34df3d81a96650416127b93b10f0f",
            "634c2e8caefde0e3b60edfeb8a28949bd24bd540f72f00563e02aa1623f79f4d",
        ),
        (
            32 << 10,
            16,
            "c88f94f32ebb7c8bf2fc62b45aa6c19fdabd9d20f3113b86f98d6d1a0554b028",
            "52ff4346f5939fde650331564b23e99801eb53dc5a8ff951495254b48b30194b",
            "a82224d80eb19db32faa6d08b0a5873aed5834c12ed2180d986bb2ee2ba1e954",
            "d344c2f2c6458c08240fee057387572e0b5f947ebd4f6368a70844169cd8d851",
        ),
    ] {
        let tmp = tempfile::tempdir().unwrap();
        let d = tmp.path().display();
        let mut doc = SectorDoc::parse(
            &format!(
                r#"{{"seal_proof":5,"test_sector_size":{size},"prover_id":"{}","sector":42,"ticket":"{}",
                "paths":{{"unsealed":"{d}/u","sealed":"{d}/s","cache":"{d}/c"}}}}"#,
                "01".repeat(32),
                "02".repeat(32)
            ),
            "t",
        )
        .unwrap();
        let data: Vec<u8> = (0..size / 128 * 127)
            .map(|i| ((7 * i + 3) % 256) as u8)
            .collect();
        let input = sealkit::addpiece::PieceInput {
            name: "p".into(),
            len: Some(data.len() as u64),
            reader: Box::new(std::io::Cursor::new(data)),
        };
        sealkit::addpiece::add_pieces(&mut doc, vec![input], Default::default()).unwrap();
        assert_eq!(doc.get("comm_d").unwrap(), comm_d, "{size}");
        let doc = ok(run(
            SEAL_PC2,
            &ok(run(SEAL_PC1, &doc, tmp.path())),
            tmp.path(),
        ));
        assert_eq!(doc.get("comm_c").unwrap(), comm_c, "{size}");
        assert_eq!(doc.get("comm_r_last").unwrap(), comm_r_last, "{size}");
        assert_eq!(doc.get("comm_r").unwrap(), comm_r, "{size}");
        let c = tmp.path().join("c");
        for i in 0..base_trees {
            assert!(c.join(format!("sc-02-data-tree-c-{i}.dat")).exists());
            assert!(c.join(format!("sc-02-data-tree-r-last-{i}.dat")).exists());
        }
        assert!(!c.join("sc-02-data-tree-c.dat").exists());
        if size == 4 << 10 {
            assert_eq!(
                fs::metadata(c.join("sc-02-data-tree-c-0.dat"))
                    .unwrap()
                    .len(),
                2336
            );
            assert_eq!(
                fs::metadata(c.join("sc-02-data-tree-r-last-1.dat"))
                    .unwrap()
                    .len(),
                32
            );
            assert_eq!(
                fs::metadata(c.join("sc-02-data-tree-d.dat")).unwrap().len(),
                8160
            );
        }
    }
}
