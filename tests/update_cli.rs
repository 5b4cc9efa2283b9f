//! The snap-deal tools end to end (seal-ru, seal-pru1, seal-pru2, seal-verify --update) and
//! their refusals of bad input: one line, non-zero exit, nothing destroyed.

mod common;

use std::fs;

use common::fails;
use common::sector::{
    cc_sealed_sector, doc_hex32, ok_doc, run_tool, sealed_sector, with_random_update,
};
use sealkit::sector::document::SectorDoc;
use sealkit::sector::proof::SealProof;
use sealkit::update::UpdateFiles;

const RU: &str = env!("CARGO_BIN_EXE_seal-ru");
const PRU1: &str = env!("CARGO_BIN_EXE_seal-pru1");
const PRU2: &str = env!("CARGO_BIN_EXE_seal-pru2");
const VERIFY: &str = env!("CARGO_BIN_EXE_seal-verify");

fn two_kib() -> SealProof {
    SealProof::from_id(5).unwrap()
}

/// The whole pipeline on a 2KiB sector; the reference's verifier accepts the SNARK and
/// rejects it for other commitments. About a minute of proving after the update parameters
/// exist, and their generation takes 10–20 minutes on 2 cores the first time on a machine:
/// run by hand (`cargo test --test update_cli -- --ignored`).
#[test]
#[ignore]
fn pipeline_proves_and_the_reference_verifies() {
    sealkit::sched::demo::ensure_update_test_params().unwrap();
    let mut rng = common::rng("pipeline_proves_and_the_reference_verifies");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let (_, mut doc) = cc_sealed_sector(&dir, two_kib(), &mut rng);
    with_random_update(&mut doc, &dir, &mut rng);
    let doc = ok_doc(run_tool(RU, &[], &doc, &dir));
    let doc = ok_doc(run_tool(PRU1, &[], &doc, &dir));
    let doc = ok_doc(run_tool(PRU2, &[], &doc, &dir));
    let u = doc.update_doc().unwrap();
    let snark = sealkit::hex::decode(u.get("proof").unwrap().as_str().unwrap()).unwrap();
    assert_eq!(snark.len(), 192);
    let (old, new, d) = (
        doc_hex32(&doc, "comm_r"),
        doc_hex32(&u, "comm_r"),
        doc_hex32(&u, "comm_d"),
    );
    let config = common::sector::porep_config(two_kib());
    type Tree = filecoin_proofs::constants::SectorShapeBase;
    let verify = |old, new, d| {
        filecoin_proofs::verify_empty_sector_update_proof::<Tree>(&config, &snark, old, new, d)
            .unwrap()
    };
    assert!(verify(old, new, d));
    assert!(!verify(new, old, d));
    assert!(!verify(old, new, old));

    let out = run_tool(VERIFY, &["--update"], &doc, &dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let line: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(line["valid"], true);
    assert_eq!(line["update"], true);
    let mut bad = doc.clone();
    let mut bu = bad.update_doc().unwrap();
    bu.set_hex("comm_d", &old);
    bad.set_update_doc(&bu);
    let out = run_tool(VERIFY, &["--update"], &bad, &dir);
    assert_eq!(out.status.code(), Some(1));
}

/// A CC sector with its update prepared (data added, nothing encoded yet).
fn prepared(dir: &std::path::Path, rng: &mut impl rand::Rng) -> SectorDoc {
    let (_, mut doc) = cc_sealed_sector(dir, two_kib(), rng);
    with_random_update(&mut doc, dir, rng);
    doc
}

/// A re-run of seal-ru for other data (a fall-back after a failed proof, another deal) that
/// fails once its new trees are in place must not leave the old update's p_aux (the mark of a
/// complete update cache) beside them.
#[test]
fn a_failed_re_run_of_seal_ru_leaves_no_stale_p_aux() {
    let mut rng = common::rng("a_failed_re_run_of_seal_ru_leaves_no_stale_p_aux");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let (_, base) = cc_sealed_sector(&dir, two_kib(), &mut rng);
    let mut doc = base.clone();
    with_random_update(&mut doc, &dir, &mut rng);
    ok_doc(run_tool(RU, &[], &doc, &dir));
    let f = UpdateFiles::of(&doc).unwrap();
    let p_aux = f.cache.join("p_aux");
    let old = fs::read(&p_aux).unwrap();
    let vanilla = f.cache.join(sealkit::update::phase::VANILLA_FILE);
    fs::write(&vanilla, b"the old update's proofs").unwrap();

    // Other data for the same sector; the update cache's t_aux cannot be replaced (a
    // directory stands there), so seal-ru fails after committing its trees.
    fs::remove_file(&f.data).unwrap();
    fs::remove_file(f.cache.join("seal-ap.journal")).ok();
    let mut doc = base.clone();
    with_random_update(&mut doc, &dir, &mut rng);
    let t_aux = f.cache.join("t_aux");
    fs::remove_file(&t_aux).unwrap();
    fs::create_dir(&t_aux).unwrap();
    fails(run_tool(RU, &[], &doc, &dir), "t_aux");
    assert!(
        !p_aux.exists(),
        "the old p_aux ({}) is left beside the new trees",
        sealkit::hex::encode(&old)
    );
    assert!(!vanilla.exists());

    // With t_aux writable again, the re-run completes the new update.
    fs::remove_dir(&t_aux).unwrap();
    let done = ok_doc(run_tool(RU, &[], &doc, &dir));
    let comm_r_last = &fs::read(&p_aux).unwrap()[32..];
    assert_eq!(
        comm_r_last,
        &doc_hex32(&done.update_doc().unwrap(), "comm_r_last")[..]
    );
    assert_ne!(fs::read(&p_aux).unwrap(), old);
}

#[test]
fn seal_ru_refuses_bad_input_and_destroys_nothing() {
    let mut rng = common::rng("seal_ru_refuses_bad_input_and_destroys_nothing");
    let tmp = tempfile::tempdir().unwrap();

    // A sector with deal data is not a CC sector.
    let (dir, mut doc) = (1..)
        .map(|i| {
            let dir = tmp.path().join(format!("deals-{i}"));
            let (_, doc) = sealed_sector(&dir, two_kib(), &mut rng);
            (dir, doc)
        })
        .find(|(_, doc)| doc.hex32("comm_d").unwrap() != sealkit::merkle::zero::zero_root(2048))
        .unwrap();
    with_random_update(&mut doc, &dir, &mut rng);
    fails(
        run_tool(RU, &[], &doc, &dir),
        "is not a committed-capacity sector",
    );
    assert!(!UpdateFiles::of(&doc).unwrap().replica.exists());

    // A data node at or above the field modulus.
    let dir = tmp.path().join("modulus");
    let doc = prepared(&dir, &mut rng);
    let f = UpdateFiles::of(&doc).unwrap();
    let mut data = fs::read(&f.data).unwrap();
    data[5 * 32 + 31] = 0xff;
    fs::write(&f.data, &data).unwrap();
    fails(
        run_tool(RU, &[], &doc, &dir),
        "node 5 is not below the field modulus",
    );
    assert!(!f.replica.exists());

    // A sector key that is not the sealed sector's (another CC sector's replica).
    let dir = tmp.path().join("key");
    let doc = prepared(&dir, &mut rng);
    let f = UpdateFiles::of(&doc).unwrap();
    let (other, _) = cc_sealed_sector(&tmp.path().join("other"), two_kib(), &mut rng);
    fs::copy(other.sealed(), &f.key).unwrap();
    let key = fs::read(&f.key).unwrap();
    fails(
        run_tool(RU, &[], &doc, &dir),
        "the sector key does not match its tree_r_last",
    );
    assert_eq!(fs::read(&f.key).unwrap(), key);
    assert!(!f.replica.exists());

    // A document whose comm_r is not the cache's.
    let dir = tmp.path().join("comm_r");
    let mut doc = prepared(&dir, &mut rng);
    doc.set_hex("comm_r", &[7; 32]);
    fails(run_tool(RU, &[], &doc, &dir), "does not belong to comm_r");
}

#[test]
fn prove_tools_refuse_missing_and_mismatched_inputs() {
    let mut rng = common::rng("prove_tools_refuse_missing_and_mismatched_inputs");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    // The update's data through the CLI: seal-ap --update, then seal-ru.
    let (_, mut doc) = cc_sealed_sector(&dir, two_kib(), &mut rng);
    let d = dir.display();
    doc.set(
        "update",
        serde_json::json!({"paths": {"unsealed": format!("{d}/new"), "sealed": format!("{d}/update"),
                                     "cache": format!("{d}/update-cache")}}),
    );
    let piece = dir.join("deal.car");
    fs::write(&piece, common::random_bytes(&mut rng, 1000)).unwrap();
    let piece = piece.to_str().unwrap().to_string();
    let before = doc.pieces().unwrap();
    let doc = ok_doc(run_tool(
        env!("CARGO_BIN_EXE_seal-ap"),
        &["--update", "--piece", &piece, "--fill"],
        &doc,
        &dir,
    ));
    assert_eq!(
        doc.update_doc().unwrap().pieces().unwrap()[0].payload_size,
        1000
    );
    assert_eq!(
        doc.pieces().unwrap(),
        before,
        "the sector's own pieces are untouched"
    );
    let doc = ok_doc(run_tool(RU, &[], &doc, &dir));
    let f = UpdateFiles::of(&doc).unwrap();

    // PR2 before PR1.
    fails(run_tool(PRU2, &[], &doc, &dir), "run seal-pru1 first");

    // A wrong number of partition proofs.
    let pru1 = ok_doc(run_tool(PRU1, &[], &doc, &dir));
    let path = pru1
        .update_doc()
        .unwrap()
        .get("vanilla_proofs")
        .unwrap()
        .as_str()
        .unwrap()
        .to_string();
    let one = sealkit::update::phase::read_bincode_list(&fs::read(&path).unwrap()).unwrap();
    fs::write(
        &path,
        sealkit::update::phase::bincode_list(&[one[0].clone(), one[0].clone()]),
    )
    .unwrap();
    fails(
        run_tool(PRU2, &[], &pru1, &dir),
        "2 vanilla partition proofs, expected 1",
    );
    fs::write(&path, b"garbage").unwrap();
    fails(
        run_tool(PRU2, &[], &pru1, &dir),
        "is not a list of partition proofs",
    );

    // A missing update cache.
    let replica = fs::read(&f.replica).unwrap();
    fs::remove_dir_all(&f.cache).unwrap();
    fails(run_tool(PRU1, &[], &doc, &dir), "run seal-ru first");
    assert_eq!(fs::read(&f.replica).unwrap(), replica);
}

/// seal-unseal on a snapped sector returns the deal's bytes, with the sector key kept and
/// with it released (regenerated from the layers, a CC sector's key).
#[test]
fn unseal_of_a_snapped_sector_returns_the_new_deal() {
    let mut rng = common::rng("unseal_of_a_snapped_sector_returns_the_new_deal");
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("s");
    let (s, mut doc) = cc_sealed_sector(&dir, two_kib(), &mut rng);
    let d = dir.display();
    doc.set(
        "update",
        serde_json::json!({"paths": {"unsealed": format!("{d}/new"), "sealed": format!("{d}/update"),
                                     "cache": format!("{d}/update-cache")}}),
    );
    let bytes = common::random_bytes(&mut rng, 700);
    let piece = dir.join("deal.car");
    fs::write(&piece, &bytes).unwrap();
    let piece = piece.to_str().unwrap().to_string();
    let doc = ok_doc(run_tool(
        env!("CARGO_BIN_EXE_seal-ap"),
        &["--update", "--piece", &piece, "--fill"],
        &doc,
        &dir,
    ));
    let doc = ok_doc(run_tool(RU, &[], &doc, &dir));
    // The new data file goes, as after a finalize that keeps no unsealed copy.
    fs::remove_file(dir.join("new")).unwrap();
    let unseal = env!("CARGO_BIN_EXE_seal-unseal");
    for key_kept in [true, false] {
        if !key_kept {
            fs::remove_file(s.sealed()).unwrap();
        }
        let out = run_tool(unseal, &["--piece", "0"], &doc, &dir);
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert_eq!(out.stdout, bytes, "key kept: {key_kept}");
    }
    // GSK: the released key comes back byte for byte (the new data file is needed again).
    let mut new = vec![0u8; 2048];
    let mut w = std::io::Cursor::new(&mut new[..]);
    let out = run_tool(unseal, &["--padded"], &doc, &dir);
    assert!(out.status.success());
    std::io::Write::write_all(&mut w, &out.stdout).unwrap();
    fs::write(dir.join("new"), &new).unwrap();
    let out = run_tool(unseal, &["--sector-key"], &doc, &dir);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(out.stdout.is_empty());
    let again = run_tool(unseal, &["--piece", "0"], &doc, &dir);
    assert_eq!(again.stdout, bytes);
    // A document whose update names other data is refused, nothing written.
    let mut bad = doc.clone();
    let mut u = bad.update_doc().unwrap();
    u.set_hex("comm_d", &[9; 32]);
    bad.set_update_doc(&u);
    fails(
        run_tool(unseal, &["--padded"], &bad, &dir),
        "does not match",
    );
}
