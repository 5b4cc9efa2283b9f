//! The phase tools refuse what would lose or corrupt a sector, with one line and nothing
//! written: one file as both unsealed and sealed, a re-run of AddPiece after sealing, a
//! corrupted layer under PC2, a document that is not the replica's under unseal, empty or
//! oversized documents, special files as sector paths or outputs, a corrupted parent cache, a
//! malformed Commit1 output; and they clean the temp files of killed runs.

mod common;

use std::fs;
use std::io::Write;
use std::os::unix::fs::symlink;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::sector::*;
use common::*;
use sealkit::sector::document::SectorDoc;
use sealkit::sector::proof::SealProof;

const AP: &str = env!("CARGO_BIN_EXE_seal-ap");
const PC1: &str = env!("CARGO_BIN_EXE_seal-pc1");
const PC2: &str = env!("CARGO_BIN_EXE_seal-pc2");
const C1: &str = env!("CARGO_BIN_EXE_seal-c1");
const C2: &str = env!("CARGO_BIN_EXE_seal-c2");
const VERIFY: &str = env!("CARGO_BIN_EXE_seal-verify");
const UNSEAL: &str = env!("CARGO_BIN_EXE_seal-unseal");

/// Asserts a clean failure of `tool`: non-zero exit, nothing on stdout, one line on stderr
/// holding every needle. Returns the line.
fn refused(o: &Output, tool: &str, needles: &[&str]) -> String {
    let e = String::from_utf8_lossy(&o.stderr).to_string();
    assert!(!o.status.success(), "{tool} should fail: {e}");
    assert!(o.status.code().is_some(), "{tool} killed by a signal: {e}");
    assert!(o.stdout.is_empty(), "{tool} printed on failure");
    assert_eq!(e.trim_end().lines().count(), 1, "one line: {e}");
    assert!(e.starts_with(&format!("{tool}: error: ")), "{e}");
    for n in needles {
        assert!(e.contains(n), "{n:?} not in {e}");
    }
    e
}

/// A 2 KiB sector of our AddPiece with at least one deal piece (not only fillers).
fn deal_sector(dir: &Path, test: &str) -> TestSector {
    let mut rng = rng(test);
    for i in 0.. {
        let s = sector_with_random_pieces(
            &dir.join(format!("s{i}")),
            SealProof::from_id(5).unwrap(),
            &mut rng,
        );
        if s.doc.pieces().unwrap().iter().any(|p| !p.filler) {
            return s;
        }
    }
    unreachable!()
}

fn with_paths(doc: &SectorDoc, unsealed: &Path, sealed: &Path, cache: &Path) -> SectorDoc {
    let mut d = doc.clone();
    d.set(
        "paths",
        serde_json::json!({"unsealed": unsealed.display().to_string(),
            "sealed": sealed.display().to_string(), "cache": cache.display().to_string()}),
    );
    d
}

/// Runs a tool on a document file with extra environment.
fn tool_env(
    bin: &str,
    args: &[&str],
    doc: &SectorDoc,
    dir: &Path,
    env: &[(&str, &Path)],
) -> Output {
    let p = dir.join("in.json");
    fs::write(&p, doc.to_json_line()).unwrap();
    let mut c = Command::new(bin);
    c.args(args)
        .arg(&p)
        .env("FIL_PROOFS_PARENT_CACHE", parent_cache_dir());
    for (k, v) in env {
        c.env(k, v);
    }
    c.output().unwrap()
}

/// Waits for a child at most `limit`; kills it and fails the test if it is still running
/// (a hang guard, not a timing assertion).
fn output_within(mut child: std::process::Child, limit: Duration, what: &str) -> Output {
    let start = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if start.elapsed() > limit {
            child.kill().ok();
            child.wait().ok();
            panic!("{what} hung");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().unwrap()
}

/// The pid of a process that has exited.
fn dead_pid() -> u32 {
    let mut c = Command::new("true").spawn().unwrap();
    let pid = c.id();
    c.wait().unwrap();
    pid
}

/// Defect: `paths.unsealed` naming the replica let PC1 replace the deal data and PC2 encode
/// it in place. Same string, `..`, symlink, hard link, and a `..` through a missing directory.
#[test]
fn unsealed_and_sealed_naming_one_file_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let s = deal_sector(t, "guards_same_file");
    let unsealed = s.unsealed();
    let before = fs::read(&unsealed).unwrap();
    fs::create_dir(t.join("sub")).unwrap();
    symlink(&unsealed, t.join("link")).unwrap();
    fs::hard_link(&unsealed, t.join("hard")).unwrap();
    let rel = unsealed.strip_prefix(t).unwrap();
    for sealed in [
        unsealed.clone(),
        t.join("sub/..").join(rel),
        t.join("link"),
        t.join("hard"),
        t.join("missing/..").join(rel),
    ] {
        let doc = with_paths(&s.doc, &unsealed, &sealed, &s.cache());
        refused(
            &run_tool(PC1, &[], &doc, t),
            "seal-pc1",
            &["\"paths.unsealed\"", "\"paths.sealed\"", "same file"],
        );
        assert_eq!(fs::read(&unsealed).unwrap(), before, "{}", sealed.display());
    }
    let pc1 = ok_doc(run_tool(PC1, &[], &s.doc, t));
    let doc = with_paths(&pc1, &unsealed, &t.join("hard"), &s.cache());
    refused(
        &run_tool(PC2, &[], &doc, t),
        "seal-pc2",
        &["\"paths.unsealed\"", "\"paths.sealed\"", "same file"],
    );
    assert_eq!(fs::read(&unsealed).unwrap(), before);
}

/// Defect: re-running seal-ap with the original job after PC1 truncated and rewrote the
/// sealed sector's unsealed file. Now the same job prints the same document and touches
/// nothing; another piece, or an earlier version's journal on a sealed sector, is refused.
#[test]
fn addpiece_rerun_after_pc1_keeps_the_unsealed_data() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let job = t.join("job.json");
    let d = t.display();
    fs::write(
        &job,
        format!(
            r#"{{"seal_proof": "StackedDrg2KiBV1_1", "miner": 1000, "sector": 7, "ticket": "{}",
            "paths": {{"unsealed": "{d}/unsealed", "sealed": "{d}/sealed", "cache": "{d}/cache"}}}}"#,
            "ab".repeat(32)
        ),
    )
    .unwrap();
    let mut rng = rng("guards_ap_rerun");
    let (a, b) = (t.join("a.car"), t.join("b.car"));
    fs::write(&a, random_bytes(&mut rng, 600)).unwrap();
    fs::write(&b, random_bytes(&mut rng, 600)).unwrap();
    let ap = |piece: &Path| {
        Command::new(AP)
            .arg(&job)
            .arg("--piece")
            .arg(piece)
            .arg("--fill")
            .output()
            .unwrap()
    };
    let first = ap(&a);
    let doc = ok_doc(first.clone());
    ok_doc(run_tool(PC1, &[], &doc, t));
    let unsealed = t.join("unsealed");
    let before = fs::read(&unsealed).unwrap();

    let again = ap(&a);
    assert!(
        again.status.success(),
        "{}",
        String::from_utf8_lossy(&again.stderr)
    );
    assert_eq!(again.stdout, first.stdout, "the same document again");
    assert_eq!(fs::read(&unsealed).unwrap(), before);

    refused(&ap(&b), "seal-ap", &["refusing to rewrite", "b.car"]);
    assert_eq!(fs::read(&unsealed).unwrap(), before);

    fs::write(t.join("cache/seal-ap.journal"), "{\"start\":0}\n").unwrap();
    refused(&ap(&b), "seal-ap", &["gone on past AddPiece"]);
    assert_eq!(fs::read(&unsealed).unwrap(), before);
}

/// Defect: PC2 used a layer that no longer matched the checksum PC1 recorded. Now it stops
/// before it commits a tree or touches the replica; after PC1 recomputes the layer, PC2 runs.
#[test]
fn pc2_refuses_a_corrupted_layer() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let s = deal_sector(t, "guards_pc2_layer");
    let pc1 = ok_doc(run_tool(PC1, &[], &s.doc, t));
    let sealed_before = fs::read(s.sealed()).unwrap();
    let layer = s.cache().join("sc-02-data-layer-2.dat");
    let mut bytes = fs::read(&layer).unwrap();
    bytes[1000] ^= 0x01;
    fs::write(&layer, &bytes).unwrap();
    refused(
        &run_tool(PC2, &[], &pc1, t),
        "seal-pc2",
        &["sc-02-data-layer-2.dat", "corrupted"],
    );
    assert_eq!(fs::read(s.sealed()).unwrap(), sealed_before);
    let left: Vec<String> = fs::read_dir(s.cache())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.contains("tree-c") || n.contains("pc2") || n.contains(".tmp-"))
        .collect();
    assert!(left.is_empty(), "{left:?}");
    ok_doc(run_tool(PC1, &[], &s.doc, t));
    ok_doc(run_tool(PC2, &[], &pc1, t));
}

/// Defect: seal-unseal printed noise with exit 0 for a document of another ticket. Now every
/// kind of request is checked against the document's commitments before a byte is written;
/// and --out never replaces a symlink.
#[test]
fn unseal_checks_what_it_decoded() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let s = deal_sector(t, "guards_unseal");
    let pc1 = ok_doc(run_tool(PC1, &[], &s.doc, t));
    let pc2 = ok_doc(run_tool(PC2, &[], &pc1, t));
    let pieces = pc2.pieces().unwrap();
    let (i, p) = pieces.iter().enumerate().find(|(_, p)| !p.filler).unwrap();
    let idx = i.to_string();

    // The right document: the piece's payload, as the unsealed file holds it.
    let unsealed = fs::read(s.unsealed()).unwrap();
    let padded = &unsealed[p.offset as usize..(p.offset + p.padded_size) as usize];
    let mut raw = vec![0u8; padded.len() / 128 * 127];
    sealkit::piece::fr32::unpad(padded, &mut raw);
    let out = run_tool(UNSEAL, &["--piece", &idx], &pc2, t);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert_eq!(out.stdout, raw[..p.payload_size as usize]);

    let mut wrong = pc2.clone();
    wrong.set("ticket", "5a".repeat(32));
    for args in [
        vec!["--piece", idx.as_str()],
        vec!["--padded"],
        vec!["--offset", "0", "--len", "300"],
        vec!["--offset", "1500", "--len", "7"],
    ] {
        refused(
            &run_tool(UNSEAL, &args, &wrong, t),
            "seal-unseal",
            &["does not match", "does not belong to this replica"],
        );
    }
    let out_file = t.join("out.bin");
    let o = out_file.display().to_string();
    refused(
        &run_tool(UNSEAL, &["--padded", "--out", &o], &wrong, t),
        "seal-unseal",
        &["comm_d"],
    );
    assert!(!out_file.exists());

    let target = t.join("precious");
    fs::write(&target, b"keep").unwrap();
    symlink(&target, &out_file).unwrap();
    refused(
        &run_tool(UNSEAL, &["--padded", "--out", &o], &pc2, t),
        "seal-unseal",
        &["out.bin", "symbolic link"],
    );
    assert_eq!(fs::read(&target).unwrap(), b"keep");
    assert!(fs::symlink_metadata(&out_file)
        .unwrap()
        .file_type()
        .is_symlink());
}

/// Defect: empty stdin counted as no documents and success (`false | seal-verify && echo ok`).
#[test]
fn empty_input_is_an_error_for_every_tool() {
    let seed = "11".repeat(32);
    for (bin, tool, args) in [
        (VERIFY, "seal-verify", vec![]),
        (PC1, "seal-pc1", vec![]),
        (PC2, "seal-pc2", vec![]),
        (C1, "seal-c1", vec!["--seed", seed.as_str()]),
        (C2, "seal-c2", vec![]),
        (UNSEAL, "seal-unseal", vec!["--padded"]),
        (AP, "seal-ap", vec!["--fill"]),
    ] {
        for input in ["", " \n\t\n"] {
            let mut child = Command::new(bin)
                .args(&args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap();
            child
                .stdin
                .take()
                .unwrap()
                .write_all(input.as_bytes())
                .unwrap();
            let out = child.wait_with_output().unwrap();
            refused(&out, tool, &["stdin", "empty"]);
        }
    }
}

/// Defect: documents had no size limit.
#[test]
fn oversized_document_is_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let p = tmp.path().join("big.json");
    let mut text = " ".repeat(17 << 20);
    text.push_str("{}");
    fs::write(&p, text).unwrap();
    refused(
        &Command::new(PC1).arg(&p).output().unwrap(),
        "seal-pc1",
        &["big.json", "larger than 16MiB"],
    );
}

/// Defect: a FIFO as a sector path hung PC1 forever, and a journal name that was a symlink
/// was renamed over.
#[test]
fn special_files_as_sector_paths_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let s = deal_sector(t, "guards_special");
    let fifo = t.join("fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    let doc = with_paths(&s.doc, &fifo, &s.sealed(), &s.cache());
    let p = t.join("fifo.json");
    fs::write(&p, doc.to_json_line()).unwrap();
    let child = Command::new(PC1)
        .arg(&p)
        .env("FIL_PROOFS_PARENT_CACHE", parent_cache_dir())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let out = output_within(child, Duration::from_secs(120), "seal-pc1 on a FIFO");
    refused(&out, "seal-pc1", &["fifo", "named pipe"]);

    fs::create_dir_all(s.cache()).unwrap();
    let elsewhere = t.join("elsewhere.json");
    fs::write(&elsewhere, "{}").unwrap();
    symlink(&elsewhere, s.cache().join("sealkit-pc1.json")).unwrap();
    refused(
        &run_tool(PC1, &[], &s.doc, t),
        "seal-pc1",
        &["sealkit-pc1.json", "symbolic link"],
    );
    assert_eq!(fs::read_to_string(&elsewhere).unwrap(), "{}");
}

/// Defects: a corrupted parent cache crashed PC1 with SIGSEGV; a full-size temp of a killed
/// generator stayed forever. Now the cache is checked, regenerated under the lock, and the
/// dead temp removed; PC1 then gives the same layers as with a good cache.
#[test]
fn corrupted_parent_cache_is_regenerated() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let s = deal_sector(t, "guards_parents");
    let good = ok_doc(run_tool(PC1, &[], &s.doc, t));
    let layers_good = fs::read(s.cache().join("sc-02-data-layer-2.dat")).unwrap();
    fs::remove_dir_all(s.cache()).unwrap();

    let proof = SealProof::from_id(5).unwrap();
    let graph =
        sealkit::sdr::graph::SdrGraph::new(proof.nodes(), proof.porep_id(), proof.api_version());
    let name = sealkit::sdr::parent_cache::file_name(&graph);
    let parents = t.join("parents");
    fs::create_dir(&parents).unwrap();
    let mut bytes = fs::read(parent_cache_dir().join(&name)).unwrap();
    let want = bytes.clone();
    bytes[3 * 56..3 * 56 + 4].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    fs::write(parents.join(&name), &bytes).unwrap();
    let stale = parents.join(format!("{name}.tmp-{}", dead_pid()));
    fs::write(&stale, &want).unwrap();

    let out = tool_env(
        PC1,
        &[],
        &s.doc,
        t,
        &[("FIL_PROOFS_PARENT_CACHE", &parents)],
    );
    let err = String::from_utf8_lossy(&out.stderr).to_string();
    assert!(out.status.success(), "{err}");
    assert!(err.contains("corrupt"), "{err}");
    assert_eq!(ok_doc(out), good);
    assert_eq!(fs::read(parents.join(&name)).unwrap(), want);
    assert!(!stale.exists());
    assert_eq!(
        fs::read(s.cache().join("sc-02-data-layer-2.dat")).unwrap(),
        layers_good
    );
}

/// Defect: temps of killed runs were never cleaned (and PC1 removed its own kind of temps
/// even when a live process owned them). Dead owners' temps go; live ones and other names stay.
#[test]
fn dead_runs_temps_are_removed_live_ones_kept() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let s = deal_sector(t, "guards_temps");
    let dead = dead_pid();
    let live = std::process::id();
    fs::create_dir_all(s.cache()).unwrap();
    let gone: Vec<PathBuf> = vec![
        s.cache().join(format!("sealkit-pc1.json.tmp-{dead}")),
        s.cache().join(format!("sc-02-data-layer-1.dat.tmp-{dead}")),
        s.sealed().with_file_name(format!("sealed.tmp-{dead}")),
    ];
    let kept: Vec<PathBuf> = vec![
        s.cache().join(format!("sc-02-data-layer-2.dat.tmp-{live}")),
        s.cache().join("notes.tmp-x1"),
        s.cache().join("notes.txt"),
    ];
    for p in gone.iter().chain(&kept) {
        fs::write(p, b"x").unwrap();
    }
    ok_doc(run_tool(PC1, &[], &s.doc, t));
    for p in &gone {
        assert!(!p.exists(), "{} left", p.display());
    }
    for p in &kept {
        assert!(p.exists(), "{} removed", p.display());
    }
}

/// A change made to a good Commit1 output.
type Mutation = Box<dyn Fn(&mut serde_json::Value)>;

/// Defect: a structurally wrong Commit1 output went to the prover. Now its shape is checked
/// first (no parameters are needed to see the error), naming the field.
#[test]
fn malformed_commit1_output_is_refused_before_proving() {
    let tmp = tempfile::tempdir().unwrap();
    let t = tmp.path();
    let s = deal_sector(t, "guards_c1");
    let pc1 = ok_doc(run_tool(PC1, &[], &s.doc, t));
    let pc2 = ok_doc(run_tool(PC2, &[], &pc1, t));
    let seed = "22".repeat(32);
    let c1 = ok_doc(run_tool(C1, &["--seed", &seed], &pc2, t));
    let c1_path = PathBuf::from(c1.get("c1_output").unwrap().as_str().unwrap());
    let good: serde_json::Value = serde_json::from_slice(&fs::read(&c1_path).unwrap()).unwrap();
    sealkit::snark::c1_check::check_structure(&good, s.proof, &c1_path).unwrap();

    let no_params = t.join("no-params");
    fs::create_dir(&no_params).unwrap();
    let bad_path = t.join("bad-c1.json");
    let bp = bad_path.display().to_string();
    let cases: Vec<(Mutation, &str)> = vec![
        (
            Box::new(|v| {
                v["vanilla_proofs"][0].as_array_mut().unwrap().pop();
            }),
            "\"vanilla_proofs[0]\" has 1 challenge proofs",
        ),
        (
            Box::new(|v| {
                let p = v["vanilla_proofs"][0].clone();
                v["vanilla_proofs"].as_array_mut().unwrap().push(p);
            }),
            "\"vanilla_proofs\" has 2 partitions",
        ),
        (
            Box::new(|v| {
                v["vanilla_proofs"][0][1]["labeling_proofs"]
                    .as_array_mut()
                    .unwrap()
                    .pop();
            }),
            "\"vanilla_proofs[0][1].labeling_proofs\"",
        ),
    ];
    for (mutate, needle) in cases {
        let mut v = good.clone();
        mutate(&mut v);
        fs::write(&bad_path, v.to_string()).unwrap();
        refused(
            &tool_env(
                C2,
                &["--c1", &bp],
                &c1,
                t,
                &[("FIL_PROOFS_PARAMETER_CACHE", &no_params)],
            ),
            "seal-c2",
            &["bad-c1.json", needle],
        );
    }
}
