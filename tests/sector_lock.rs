//! Two processes never work on one sector at once: every phase tool takes the sector's lock
//! (a flock on its cache directory) and refuses to run while another live process holds it.

mod common;

use common::sector::{ok_doc, run_tool, sealed_sector};
use sealkit::sector::lock::SectorLock;
use sealkit::sector::proof::SealProof;

#[test]
fn every_phase_refuses_a_sector_another_process_holds() {
    let mut rng = common::rng("sector-lock");
    let dir = tempfile::tempdir().unwrap();
    let proof = SealProof::from_name("StackedDrg2KiBV1_1").unwrap();
    let (s, sealed) = sealed_sector(dir.path(), proof, &mut rng);
    let replica = std::fs::read(s.sealed()).unwrap();
    let mut with_seed = sealed.clone();
    with_seed.set_hex("seed", &[7u8; 32]);
    with_seed.set("seed_epoch", 10u64);

    // Another process (an orphaned phase, a second cron run) holds the sector.
    let held = SectorLock::acquire(&s.cache()).unwrap();
    for (bin, args, doc) in [
        (env!("CARGO_BIN_EXE_seal-ap"), vec!["--fill"], &s.doc),
        (env!("CARGO_BIN_EXE_seal-pc1"), vec![], &s.doc),
        (env!("CARGO_BIN_EXE_seal-pc2"), vec![], &sealed),
        (env!("CARGO_BIN_EXE_seal-c1"), vec![], &with_seed),
        (
            env!("CARGO_BIN_EXE_seal-unseal"),
            vec!["--piece", "0"],
            &sealed,
        ),
    ] {
        let out = run_tool(bin, &args, doc, dir.path());
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{bin} ran beside the holder");
        assert!(
            err.contains("in use by another live process"),
            "{bin}: {err}"
        );
        assert!(out.stdout.is_empty(), "{bin} printed a result");
    }
    assert_eq!(
        std::fs::read(s.sealed()).unwrap(),
        replica,
        "the replica is untouched"
    );
    // Once the holder is gone, the phase runs.
    drop(held);
    let again = ok_doc(run_tool(
        env!("CARGO_BIN_EXE_seal-pc2"),
        &[],
        &sealed,
        dir.path(),
    ));
    assert_eq!(again.get("comm_r"), sealed.get("comm_r"));
}
