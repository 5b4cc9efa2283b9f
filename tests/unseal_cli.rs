//! seal-unseal: after AP, PC1, PC2 and the layers deleted, every piece, random unpadded ranges
//! (any offset and length, not only multiples of 127) and the padded sector come back exactly
//! as the unsealed file holds them.

mod common;

use std::fs;
use std::path::Path;
use std::process::{Command, Output};

use common::sector::*;
use common::*;
use rand::Rng;
use sealkit::piece::fr32;
use sealkit::sector::document::SectorDoc;
use sealkit::sector::proof::SealProof;

fn run(bin: &str, args: &[&str], doc: &SectorDoc, dir: &Path) -> Output {
    let p = dir.join("doc.json");
    fs::write(&p, doc.to_json_line()).unwrap();
    Command::new(bin)
        .arg(&p)
        .args(args)
        .env(
            "FIL_PROOFS_PARENT_CACHE",
            std::env::temp_dir().join("sealkit-test-parents"),
        )
        .output()
        .unwrap()
}

fn ok_doc(out: Output) -> SectorDoc {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    SectorDoc::parse(std::str::from_utf8(&out.stdout).unwrap(), "stdout").unwrap()
}

fn sealed_sector(proof_id: u64, rng: &mut impl Rng, dir: &Path) -> (SectorDoc, Vec<u8>) {
    let proof = SealProof::from_id(proof_id).unwrap();
    let s = sector_with_random_pieces(&dir.join("s"), proof, rng);
    let pc1 = ok_doc(run(env!("CARGO_BIN_EXE_seal-pc1"), &[], &s.doc, dir));
    let pc2 = ok_doc(run(env!("CARGO_BIN_EXE_seal-pc2"), &[], &pc1, dir));
    // The layers are gone, as after Lotus's finalize.
    for l in 1..=proof.layers() {
        fs::remove_file(s.cache().join(format!("sc-02-data-layer-{l}.dat"))).unwrap();
    }
    let mut padded = fs::read(s.unsealed()).unwrap();
    padded.resize(proof.sector_size() as usize, 0);
    let mut unpadded = vec![0u8; padded.len() / 128 * 127];
    fr32::unpad(&padded, &mut unpadded);
    (pc2, unpadded)
}

const UNSEAL: &str = env!("CARGO_BIN_EXE_seal-unseal");

fn check(proof_id: u64, ranges: usize) {
    let mut rng = rng(&format!("unseal_{proof_id}"));
    let tmp = tempfile::tempdir().unwrap();
    let (doc, unpadded) = sealed_sector(proof_id, &mut rng, tmp.path());

    for (i, p) in doc.pieces().unwrap().iter().enumerate() {
        if p.filler {
            let out = run(UNSEAL, &["--piece", &i.to_string()], &doc, tmp.path());
            let e = String::from_utf8_lossy(&out.stderr);
            assert!(e.contains("zero filler"), "{e}");
            continue;
        }
        let out = run(UNSEAL, &["--piece", &i.to_string()], &doc, tmp.path());
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let start = (p.offset / 128 * 127) as usize;
        assert!(
            out.stdout == unpadded[start..start + p.payload_size as usize],
            "piece {i}"
        );
    }
    for _ in 0..ranges {
        let offset = rng.gen_range(0..unpadded.len() - 1);
        let len = rng.gen_range(1..=(unpadded.len() - offset).min(300_000));
        let out = run(
            UNSEAL,
            &["--offset", &offset.to_string(), "--len", &len.to_string()],
            &doc,
            tmp.path(),
        );
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.stdout == unpadded[offset..offset + len],
            "range {offset}+{len}"
        );
    }
    let target = tmp.path().join("unsealed-again");
    let out = run(
        UNSEAL,
        &["--padded", "--out", target.to_str().unwrap()],
        &doc,
        tmp.path(),
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let mut want = fs::read(tmp.path().join("s/unsealed")).unwrap();
    want.resize(doc.seal_proof().unwrap().sector_size() as usize, 0);
    assert!(fs::read(&target).unwrap() == want, "padded sector differs");
}

#[test]
fn unseal_2kib() {
    check(5, 30);
}

#[test]
fn unseal_8mib() {
    check(6, 4);
}

#[test]
fn bad_input() {
    let mut rng = rng("unseal_bad_input");
    let tmp = tempfile::tempdir().unwrap();
    let (doc, _) = sealed_sector(5, &mut rng, tmp.path());
    for (args, needle) in [
        (vec!["--piece", "99"], "no piece 99"),
        (vec!["--offset", "2000", "--len", "100"], "runs past"),
        (vec![], "say what to unseal"),
    ] {
        let out = run(UNSEAL, &args, &doc, tmp.path());
        assert!(!out.status.success());
        let e = String::from_utf8_lossy(&out.stderr);
        assert_eq!(e.trim_end().lines().count(), 1, "{e}");
        assert!(e.contains(needle), "{args:?}: {e}");
    }
    fs::remove_file(tmp.path().join("s/sealed")).unwrap();
    let out = run(UNSEAL, &["--offset", "0", "--len", "10"], &doc, tmp.path());
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("opening replica"));
}
