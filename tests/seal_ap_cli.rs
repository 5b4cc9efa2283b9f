//! `seal-ap` end to end: the unsealed file it writes equals the reference's `add_piece`
//! output for the same pieces, CommD equals the reference's, bad input leaves everything as it
//! was, and a run killed mid-piece can be re-run.

mod common;

use std::fs;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use common::*;
use filecoin_proofs::pieces::compute_comm_d;
use filecoin_proofs::{add_piece, PieceInfo, SectorSize, UnpaddedBytesAmount};
use rand::Rng;
use serde_json::Value;

const SEAL_AP: &str = env!("CARGO_BIN_EXE_seal-ap");

struct Sector {
    dir: tempfile::TempDir,
    doc: PathBuf,
}

impl Sector {
    fn new(proof: &str) -> Sector {
        let dir = tempfile::tempdir().unwrap();
        let doc = dir.path().join("job.json");
        let d = dir.path().display();
        fs::write(
            &doc,
            format!(
                r#"{{"seal_proof": "{proof}", "miner": 1000, "sector": 7,
                "ticket": "{}", "paths": {{"unsealed": "{d}/unsealed/s-t01000-7",
                "sealed": "{d}/sealed/s-t01000-7", "cache": "{d}/cache/s-t01000-7"}},
                "operator": {{"batch": "b1"}}}}"#,
                "ab".repeat(32)
            ),
        )
        .unwrap();
        Sector { dir, doc }
    }

    fn path(&self, name: &str) -> PathBuf {
        self.dir.path().join(name)
    }

    fn unsealed(&self) -> PathBuf {
        self.path("unsealed/s-t01000-7")
    }

    fn write_piece(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let p = self.path(name);
        fs::write(&p, bytes).unwrap();
        p
    }
}

/// Starts seal-ap with every standard stream piped.
fn spawn_seal_ap<S: AsRef<std::ffi::OsStr>>(args: &[S]) -> std::process::Child {
    Command::new(SEAL_AP)
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn seal_ap(args: &[&str], stdin: Option<&[u8]>) -> Output {
    let mut child = spawn_seal_ap(args);
    let mut input = child.stdin.take().unwrap();
    if let Some(b) = stdin {
        input.write_all(b).unwrap();
    }
    drop(input);
    child.wait_with_output().unwrap()
}

fn ok_doc(out: Output) -> Value {
    assert!(
        out.status.success(),
        "seal-ap failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(
        out.stderr.is_empty(),
        "unexpected stderr: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

fn err_line(out: &Output) -> String {
    assert!(
        !out.status.success(),
        "expected failure, got {}",
        String::from_utf8_lossy(&out.stdout)
    );
    assert!(out.stdout.is_empty(), "stdout must stay empty on error");
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert_eq!(
        err.trim_end().lines().count(),
        1,
        "error must be one line: {err}"
    );
    assert!(err.starts_with("seal-ap: error: "), "{err}");
    err
}

/// The reference's unsealed file for the given payloads, each zero-padded to its piece size
/// as Lotus does, followed by zero fillers to the end of the sector, and its CommD.
fn reference_unsealed(sector_size: u64, payloads: &[Vec<u8>]) -> (Vec<u8>, [u8; 32]) {
    let mut out = Vec::new();
    let mut lengths: Vec<UnpaddedBytesAmount> = Vec::new();
    let mut infos: Vec<PieceInfo> = Vec::new();
    for p in payloads {
        let size = reference_piece_size(p.len() as u64);
        let mut data = p.clone();
        data.resize(size as usize, 0);
        let (info, _) = add_piece(
            Cursor::new(data),
            &mut out,
            UnpaddedBytesAmount(size),
            &lengths,
        )
        .unwrap();
        lengths.push(UnpaddedBytesAmount(size));
        infos.push(info);
    }
    // Lotus completes a sector with zero pieces of the remaining sizes, smallest first.
    let mut pos = out.len() as u64;
    while pos < sector_size {
        let mut f = 1u64 << pos.trailing_zeros();
        if pos == 0 {
            f = sector_size;
        }
        let unpadded = f / 128 * 127;
        let (info, _) = add_piece(
            Cursor::new(vec![0u8; unpadded as usize]),
            &mut out,
            UnpaddedBytesAmount(unpadded),
            &lengths,
        )
        .unwrap();
        lengths.push(UnpaddedBytesAmount(unpadded));
        infos.push(info);
        pos += f;
    }
    assert_eq!(out.len() as u64, sector_size);
    let comm_d = compute_comm_d(SectorSize(sector_size), &infos).unwrap();
    (out, comm_d)
}

fn check_against_reference(sector: &Sector, doc: &Value, sector_size: u64, payloads: &[Vec<u8>]) {
    let (want_bytes, want_comm_d) = reference_unsealed(sector_size, payloads);
    let got = fs::read(sector.unsealed()).unwrap();
    assert_eq!(got.len(), want_bytes.len());
    assert!(
        got == want_bytes,
        "unsealed file differs from the reference's add_piece output"
    );
    assert_eq!(doc["comm_d"], hex(&want_comm_d));
    assert_eq!(
        doc["comm_d"].as_str().unwrap(),
        hex(&reference_tree_root(&got))
    );
    // Deal pieces carry the reference's CommP, in order.
    let deals: Vec<&Value> = doc["pieces"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|p| p.get("filler").is_none())
        .collect();
    assert_eq!(deals.len(), payloads.len());
    for (rec, p) in deals.iter().zip(payloads) {
        assert_eq!(rec["comm_p"], hex(&reference_commp(p)));
        assert_eq!(rec["payload_size"], p.len() as u64);
    }
}

#[test]
fn pieces_and_fill_match_reference_2kib() {
    let mut rng = rng("pieces_and_fill_match_reference_2kib");
    for round in 0..6 {
        let s = Sector::new(if round % 2 == 0 {
            "StackedDrg2KiBV1_1"
        } else {
            "5"
        });
        let n = rng.gen_range(1..4);
        let payloads: Vec<Vec<u8>> = (0..n)
            .map(|_| {
                let len = rng.gen_range(1..300);
                random_bytes(&mut rng, len)
            })
            .collect();
        let mut args = vec![s.doc.to_str().unwrap().to_string()];
        for (i, p) in payloads.iter().enumerate() {
            args.push("--piece".into());
            args.push(s.write_piece(&format!("p{i}"), p).display().to_string());
        }
        args.push("--fill".into());
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let doc = ok_doc(seal_ap(&argv, None));
        check_against_reference(&s, &doc, 2048, &payloads);
        assert_eq!(doc["operator"]["batch"], "b1", "unknown fields are kept");
    }
}

#[test]
fn pieces_one_run_at_a_time_8mib() {
    let mut rng = rng("pieces_one_run_at_a_time_8mib");
    let s = Sector::new("StackedDrg8MiBV1_1");
    let payloads: Vec<Vec<u8>> = [100_000usize, 1_500_000, 3000, 700_000]
        .iter()
        .map(|&n| random_bytes(&mut rng, n))
        .collect();
    // Each piece in its own run, the document piped from one run to the next; the second
    // piece comes from stdin (unknown length, so it is moved into alignment after reading).
    let mut doc_text = fs::read(&s.doc).unwrap();
    for (i, p) in payloads.iter().enumerate() {
        let out = if i == 1 {
            let docfile = s.path("doc-in.json");
            fs::write(&docfile, &doc_text).unwrap();
            seal_ap(&[docfile.to_str().unwrap()], Some(p))
        } else {
            let piece = s.write_piece(&format!("p{i}"), p);
            seal_ap(&["-", "--piece", piece.to_str().unwrap()], Some(&doc_text))
        };
        doc_text = serde_json::to_vec(&ok_doc(out)).unwrap();
    }
    let doc = ok_doc(seal_ap(&["--fill"], Some(&doc_text)));
    check_against_reference(&s, &doc, 8 << 20, &payloads);
    // Re-running --fill on a complete sector changes nothing.
    let again = ok_doc(seal_ap(
        &["--fill"],
        Some(&serde_json::to_vec(&doc).unwrap()),
    ));
    assert_eq!(again, doc);
}

#[test]
fn committed_capacity_sector_cid() {
    let s = Sector::new("StackedDrg2KiBV1_1");
    let doc = ok_doc(seal_ap(&[s.doc.to_str().unwrap(), "--fill"], None));
    assert_eq!(
        doc["comm_d"],
        "fc7e928296e516faade986b28f92d44a4f24b935485223376a799027bc18f833"
    );
    assert_eq!(fs::metadata(s.unsealed()).unwrap().len(), 2048);
    assert_eq!(doc["pieces"].as_array().unwrap().len(), 1);
    assert_eq!(
        doc["unsealed_cid"],
        sealkit::piece::cid::commitment_to_cid(
            sealkit::piece::cid::CommitmentKind::Unsealed,
            &sealkit::hex::decode32(doc["comm_d"].as_str().unwrap()).unwrap(),
        )
    );
}

#[test]
fn commp_subcommand() {
    // go-fil-commcid fixture: 127 bytes each of 0, 1, 2, 3.
    let payload: Vec<u8> = (0..4u8).flat_map(|b| [b; 127]).collect();
    let out = seal_ap(&["--commp", "-"], Some(&payload));
    let v = ok_doc(out);
    assert_eq!(
        v["piece_cid"],
        "baga6ea4seaqes3nobte6ezpp4wqan2age2s5yxcatzotcvobhgcmv5wi2xh5mbi"
    );
    assert_eq!(v["comm_p"], hex(&reference_commp(&payload)));
    assert_eq!(
        (
            v["payload_size"].as_u64(),
            v["unpadded_size"].as_u64(),
            v["padded_size"].as_u64()
        ),
        (Some(508), Some(508), Some(512))
    );
}

fn snapshot(p: &Path) -> Option<Vec<u8>> {
    fs::read(p).ok()
}

#[test]
fn bad_input_is_one_line_and_changes_nothing() {
    let s = Sector::new("StackedDrg2KiBV1_1");
    let first = s.write_piece("first", &[7u8; 500]);
    let doc = ok_doc(seal_ap(
        &[s.doc.to_str().unwrap(), "--piece", first.to_str().unwrap()],
        None,
    ));
    let docfile = s.path("after-first.json");
    fs::write(&docfile, serde_json::to_vec(&doc).unwrap()).unwrap();
    let before = snapshot(&s.unsealed());
    let d = docfile.to_str().unwrap();

    let empty = s.write_piece("empty", &[]);
    let big = s.write_piece("big", &vec![1u8; 1600]);
    // (arguments, stdin, what the error must mention)
    type Case<'a> = (Vec<String>, Option<Vec<u8>>, &'a str);
    let cases: Vec<Case> = vec![
        (
            vec![d.into(), "--piece".into(), empty.display().to_string()],
            None,
            "piece is empty",
        ),
        (
            vec![d.into(), "--piece".into(), big.display().to_string()],
            None,
            "does not fit",
        ),
        (vec![d.into()], Some(vec![9u8; 1600]), "larger than"),
        (
            vec![
                d.into(),
                "--piece".into(),
                s.path("missing").display().to_string(),
            ],
            None,
            "missing",
        ),
        (
            vec!["-".into(), "--fill".into()],
            Some(br#"{"seal_proof": "StackedDrg3KiBV1", "paths": {"unsealed": "/x"}}"#.to_vec()),
            "seal_proof",
        ),
        (
            vec!["-".into(), "--fill".into()],
            Some(br#"{"seal_proof": 5, "paths": {"unsealed": 5}}"#.to_vec()),
            "paths.unsealed",
        ),
        (
            vec!["-".into(), "--fill".into()],
            Some(br#"{"seal_proof": 5}"#.to_vec()),
            "paths",
        ),
        (
            vec!["-".into(), "--fill".into()],
            Some(b"{\"seal_proof\": 5, ".to_vec()),
            "not a JSON sector document",
        ),
        (
            vec!["-".into(), "--fill".into()],
            Some(b"[]".to_vec()),
            "must be a JSON object",
        ),
        (
            vec![s.path("nodoc.json").display().to_string(), "--fill".into()],
            None,
            "nodoc.json",
        ),
        (
            vec![d.into(), "--piece".into(), "-".into()],
            Some(vec![]),
            "piece is empty",
        ),
        (
            vec![
                d.into(),
                "--piece-size".into(),
                "100".into(),
                "--piece".into(),
                first.display().to_string(),
            ],
            None,
            "--piece-size",
        ),
    ];
    for (args, stdin, needle) in cases {
        let argv: Vec<&str> = args.iter().map(String::as_str).collect();
        let err = err_line(&seal_ap(&argv, stdin.as_deref()));
        assert!(
            err.contains(needle),
            "{args:?}: {err:?} should mention {needle:?}"
        );
        assert_eq!(
            snapshot(&s.unsealed()),
            before,
            "{args:?} changed the unsealed file"
        );
    }
    // A recorded piece list that does not match the file is refused, file untouched.
    let mut v = doc.clone();
    v["pieces"][0]["offset"] = 128.into();
    let err = err_line(&seal_ap(
        &["-", "--fill"],
        Some(&serde_json::to_vec(&v).unwrap()),
    ));
    assert!(err.contains("pieces[0]"), "{err}");
    assert_eq!(snapshot(&s.unsealed()), before);
}

/// SIGKILL while a piece streams in from a pipe, then re-run with the same document: the
/// interrupted tail is discarded and the result equals a clean run. Bytes past the recorded
/// pieces that no seal-ap run put there are refused, not overwritten.
#[test]
fn killed_run_is_safe_to_rerun() {
    let mut rng = rng("killed_run_is_safe_to_rerun");
    let s = Sector::new("StackedDrg8MiBV1_1");
    let payload = random_bytes(&mut rng, 6 << 20);
    let mut child = spawn_seal_ap(&[&s.doc]);
    let mut input = child.stdin.take().unwrap();
    // Enough for seal-ap to write at least one batch (at most 2 chunks per thread) to the
    // file, but not the whole piece; it then blocks on stdin and is killed.
    input.write_all(&payload[..5 << 20]).unwrap();
    input.flush().unwrap();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    while fs::metadata(s.unsealed()).map(|m| m.len()).unwrap_or(0) == 0 {
        assert!(std::time::Instant::now() < deadline, "seal-ap never wrote");
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    drop(input);
    assert!(
        fs::metadata(s.unsealed()).unwrap().len() > 0,
        "the kill left a partial append"
    );

    let piece = s.write_piece("piece", &payload);
    let doc = ok_doc_allowing_notice(seal_ap(
        &[
            s.doc.to_str().unwrap(),
            "--piece",
            piece.to_str().unwrap(),
            "--fill",
        ],
        None,
    ));
    check_against_reference(&s, &doc, 8 << 20, &[payload]);

    // Foreign bytes past the recorded end: refuse.
    let fresh = Sector::new("StackedDrg2KiBV1_1");
    fs::create_dir_all(fresh.unsealed().parent().unwrap()).unwrap();
    fs::write(fresh.unsealed(), [1u8; 256]).unwrap();
    let err = err_line(&seal_ap(&[fresh.doc.to_str().unwrap(), "--fill"], None));
    assert!(err.contains("refusing"), "{err}");
    assert_eq!(fs::read(fresh.unsealed()).unwrap(), vec![1u8; 256]);
}

fn ok_doc_allowing_notice(out: Output) -> Value {
    assert!(
        out.status.success(),
        "seal-ap failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).unwrap()
}

/// `--piece-size`: a deal's piece size larger than its payload. CommP is the reference's for
/// the payload zero-padded to that size, and the piece takes that much room.
#[test]
fn piece_size_larger_than_payload() {
    let mut rng = rng("piece_size_larger_than_payload");
    let s = Sector::new("StackedDrg8MiBV1_1");
    let payload = random_bytes(&mut rng, 3000);
    let piece = s.write_piece("p", &payload);
    let doc = ok_doc(seal_ap(
        &[
            s.doc.to_str().unwrap(),
            "--piece",
            piece.to_str().unwrap(),
            "--piece-size",
            "64KiB",
        ],
        None,
    ));
    let rec = &doc["pieces"][0];
    assert_eq!(rec["padded_size"], 65536);
    assert_eq!(rec["payload_size"], 3000);
    let mut padded = payload.clone();
    padded.resize(65536 / 128 * 127, 0);
    let want = filecoin_proofs::generate_piece_commitment(
        Cursor::new(padded),
        UnpaddedBytesAmount(65536 / 128 * 127),
    )
    .unwrap()
    .commitment;
    assert_eq!(rec["comm_p"], hex(&want));
    assert_eq!(fs::metadata(s.unsealed()).unwrap().len(), 65536);
}
