//! seal-pc1 under kills, corruption and bad input: results equal an uninterrupted run, a
//! corrupted layer is detected and recomputed, and bad input is one line with nothing lost.

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use common::sector::*;
use common::*;
use sealkit::sector::proof::SealProof;

const SEAL_PC1: &str = env!("CARGO_BIN_EXE_seal-pc1");

fn parent_dir() -> PathBuf {
    std::env::temp_dir().join("sealkit-test-parents")
}

fn pc1_cmd(args: &[&Path]) -> Command {
    let mut c = Command::new(SEAL_PC1);
    c.args(args).env("FIL_PROOFS_PARENT_CACHE", parent_dir());
    c
}

fn pc1(args: &[&Path]) -> Output {
    pc1_cmd(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut v: Vec<(String, Vec<u8>)> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .filter(|e| e.file_name().to_string_lossy().starts_with("sc-02-data-"))
        .map(|e| {
            (
                e.file_name().to_string_lossy().to_string(),
                fs::read(e.path()).unwrap(),
            )
        })
        .collect();
    v.sort();
    v
}

fn err_line(o: &Output) -> String {
    assert!(!o.status.success(), "expected failure");
    assert!(o.stdout.is_empty(), "no JSON on failure");
    let e = stderr(o);
    assert_eq!(e.trim_end().lines().count(), 1, "one line: {e}");
    assert!(e.starts_with("seal-pc1: error: "), "{e}");
    e
}

/// Kill seal-pc1 while it labels layer 2 (layer 1 done), re-run: it reuses layer 1 and the
/// cache directory ends up byte-identical to an uninterrupted run's.
#[test]
fn sigkill_mid_layer_then_rerun() {
    let mut rng = rng("sigkill_mid_layer_then_rerun");
    let tmp = tempfile::tempdir().unwrap();
    let proof = SealProof::from_id(6).unwrap();
    let s = sector_with_random_pieces(&tmp.path().join("a"), proof, &mut rng);
    let doc = s.doc_file();
    // Warm the parent cache so the kill lands in labeling.
    assert!(pc1(&[&doc]).status.success());
    let clean = files(&s.cache());
    for f in fs::read_dir(s.cache()).unwrap() {
        fs::remove_file(f.unwrap().path()).unwrap();
    }

    let mut child = pc1_cmd(&[&doc])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(60);
    // Layer 1 is committed (its journal entry is written after it is durable, in the
    // background) and layer 2 is being labeled.
    let layer2_started = || {
        let journal = fs::read_to_string(s.cache().join("sealkit-pc1.json")).unwrap_or_default();
        journal.contains("sc-02-data-layer-1.dat")
            && fs::read_dir(s.cache())
                .map(|d| {
                    d.flatten().any(|e| {
                        e.file_name()
                            .to_string_lossy()
                            .starts_with("sc-02-data-layer-2.dat.tmp-")
                    })
                })
                .unwrap_or(false)
    };
    while !layer2_started() {
        assert!(Instant::now() < deadline, "seal-pc1 never started layer 2");
        if child.try_wait().unwrap().is_some() {
            panic!("seal-pc1 finished before it could be killed; use a larger sector");
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(!s.cache().join("sc-02-data-layer-2.dat").exists());

    let out = pc1(&[&doc]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert!(
        stderr(&out).contains("sc-02-data-layer-1.dat: complete and verified, reused"),
        "{}",
        stderr(&out)
    );
    assert_eq!(
        files(&s.cache()),
        clean,
        "resumed run differs from a clean run"
    );
}

/// Flip one byte in a finished layer: the re-run notices and recomputes it.
#[test]
fn corrupted_layer_is_recomputed() {
    let mut rng = rng("corrupted_layer_is_recomputed");
    let tmp = tempfile::tempdir().unwrap();
    let s = sector_with_random_pieces(tmp.path(), SealProof::from_id(5).unwrap(), &mut rng);
    let doc = s.doc_file();
    let first = pc1(&[&doc]);
    assert!(first.status.success(), "{}", stderr(&first));
    let clean = files(&s.cache());

    let layer1 = s.cache().join("sc-02-data-layer-1.dat");
    let mut bytes = fs::read(&layer1).unwrap();
    bytes[777] ^= 0x01;
    fs::write(&layer1, &bytes).unwrap();
    // And truncate layer 2: the reference would trust neither... it checks only the size.
    let layer2 = s.cache().join("sc-02-data-layer-2.dat");
    let l2 = fs::read(&layer2).unwrap();
    fs::write(&layer2, &l2[..l2.len() - 32]).unwrap();

    let again = pc1(&[&doc]);
    assert!(again.status.success(), "{}", stderr(&again));
    let e = stderr(&again);
    assert!(e.contains("sc-02-data-layer-1.dat: does not match"), "{e}");
    assert!(e.contains("sc-02-data-layer-2.dat: does not match"), "{e}");
    assert!(
        e.contains("sc-02-data-tree-d.dat: complete and verified"),
        "{e}"
    );
    assert_eq!(files(&s.cache()), clean);
    assert_eq!(first.stdout, again.stdout);
}

#[test]
fn batch_prints_one_document_per_line() {
    let mut rng = rng("batch_prints_one_document_per_line");
    let tmp = tempfile::tempdir().unwrap();
    let p = SealProof::from_id(5).unwrap();
    let sectors: Vec<TestSector> = ["a", "b", "c"]
        .iter()
        .map(|n| sector_with_random_pieces(&tmp.path().join(n), p, &mut rng))
        .collect();
    // One document from a file, two more in one stream: a batch of three.
    let both = tmp.path().join("both.json");
    let text = format!(
        "{}\n{}\n",
        sectors[1].doc.to_json_line(),
        sectors[2].doc.to_json_line()
    );
    fs::write(&both, text).unwrap();
    let out = pc1(&[&sectors[0].doc_file(), &both]);
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), 3);
    // Each line is its own sector, in order, and each sector's files equal a single run's.
    let batch_files: Vec<_> = sectors.iter().map(|s| files(&s.cache())).collect();
    for (s, (line, batch)) in sectors.iter().zip(lines.iter().zip(&batch_files)) {
        assert_eq!(line["sector"], s.doc.get("sector").unwrap().clone());
        for f in fs::read_dir(s.cache()).unwrap() {
            fs::remove_file(f.unwrap().path()).unwrap();
        }
        let single = pc1(&[&s.doc_file()]);
        assert!(single.status.success(), "{}", stderr(&single));
        let v: serde_json::Value = serde_json::from_slice(&single.stdout).unwrap();
        assert_eq!(&v, line);
        assert_eq!(
            &files(&s.cache()),
            batch,
            "batch output differs from a single run"
        );
    }
    // The same sector twice in one batch is refused.
    let e = err_line(&pc1(&[&sectors[0].doc_file(), &sectors[0].doc_file()]));
    assert!(e.contains("same sector files"), "{e}");
}

#[test]
fn bad_input() {
    let mut rng = rng("pc1_bad_input");
    let tmp = tempfile::tempdir().unwrap();
    let s = sector_with_random_pieces(
        &tmp.path().join("s"),
        SealProof::from_id(5).unwrap(),
        &mut rng,
    );
    let unsealed_before = fs::read(s.unsealed()).unwrap();

    // A document of another phase: AddPiece has not run (no comm_d).
    let mut early = s.doc.clone();
    early.set("comm_d", serde_json::Value::Null);
    let p = tmp.path().join("early.json");
    fs::write(&p, early.to_json_line()).unwrap();
    assert!(err_line(&pc1(&[&p])).contains("comm_d"));

    // ... or PC2 already ran.
    let mut late = s.doc.clone();
    late.set("comm_r", "00".repeat(32));
    fs::write(&p, late.to_json_line()).unwrap();
    assert!(err_line(&pc1(&[&p])).contains("comm_r"));

    // comm_d that is not the pieces' CommD.
    let mut wrong = s.doc.clone();
    wrong.set("comm_d", "11".repeat(32));
    fs::write(&p, wrong.to_json_line()).unwrap();
    assert!(err_line(&pc1(&[&p])).contains("comm_d"));

    // Mixed proof types in one batch.
    let other = sector_with_random_pieces(
        &tmp.path().join("o"),
        SealProof::from_id(0).unwrap(),
        &mut rng,
    );
    let e = err_line(&pc1(&[&s.doc_file(), &other.doc_file()]));
    assert!(e.contains("one proof type"), "{e}");

    // Missing unsealed file.
    let mut gone = s.doc.clone();
    gone.set(
        "paths",
        serde_json::json!({"unsealed": tmp.path().join("nope").display().to_string(),
        "sealed": s.sealed().display().to_string(), "cache": s.cache().display().to_string()}),
    );
    fs::write(&p, gone.to_json_line()).unwrap();
    assert!(err_line(&pc1(&[&p])).contains("nope"));

    assert_eq!(fs::read(s.unsealed()).unwrap(), unsealed_before);
}

/// A cache directory on a full filesystem (a 64 KiB tmpfs): a one-line error, a non-zero exit,
/// and the unsealed file untouched. Needs permission to mount; says so and passes otherwise.
#[test]
fn full_disk() {
    let mut rng = rng("pc1_full_disk");
    let tmp = tempfile::tempdir().unwrap();
    let s = sector_with_random_pieces(
        &tmp.path().join("s"),
        SealProof::from_id(6).unwrap(),
        &mut rng,
    );
    let small = tmp.path().join("small");
    fs::create_dir_all(&small).unwrap();
    let mounted = Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=64k", "tmpfs"])
        .arg(&small)
        .stderr(Stdio::null())
        .status()
        .map(|s| s.success())
        .unwrap_or(false);
    if !mounted {
        eprintln!("full_disk: cannot mount a tmpfs here (not root?); skipped");
        return;
    }
    let before = fs::read(s.unsealed()).unwrap();
    let mut doc = s.doc.clone();
    doc.set("paths", serde_json::json!({"unsealed": s.unsealed().display().to_string(),
        "sealed": s.sealed().display().to_string(), "cache": small.join("cache").display().to_string()}));
    let p = tmp.path().join("full.json");
    fs::write(&p, doc.to_json_line()).unwrap();
    let out = pc1(&[&p]);
    Command::new("umount").arg(&small).status().unwrap();
    let e = err_line(&out);
    assert!(e.contains("No space left") || e.contains("space"), "{e}");
    assert_eq!(fs::read(s.unsealed()).unwrap(), before);
}

/// Several seal-pc1 processes starting at once on an empty parent cache directory: one
/// generates the file, the others wait for it; all succeed, and the file is the reference's
/// (its published digest).
#[test]
fn concurrent_starts_share_one_parent_cache() {
    use sha2::{Digest, Sha256};
    let mut rng = rng("concurrent_starts_share_one_parent_cache");
    let tmp = tempfile::tempdir().unwrap();
    let parents = tmp.path().join("parents");
    let p = SealProof::from_id(6).unwrap(); // 8MiB V1_1: a 14 MiB cache, long enough to race
    let sectors: Vec<TestSector> = (0..3)
        .map(|i| sector_with_random_pieces(&tmp.path().join(format!("s{i}")), p, &mut rng))
        .collect();
    let children: Vec<_> = sectors
        .iter()
        .map(|s| {
            Command::new(SEAL_PC1)
                .arg(s.doc_file())
                .env("FIL_PROOFS_PARENT_CACHE", &parents)
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap()
        })
        .collect();
    for c in children {
        let out = c.wait_with_output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
    }
    let graph = sealkit::sdr::graph::SdrGraph::new(p.nodes(), p.porep_id(), p.api_version());
    let name = sealkit::sdr::parent_cache::file_name(&graph);
    let bytes = fs::read(parents.join(&name)).unwrap();
    // The digest the reference publishes for this file (storage-proofs-porep parent_cache.json).
    assert_eq!(
        Some(sealkit::hex::encode(&Sha256::digest(&bytes)).as_str()),
        sealkit::sdr::parent_cache::manifest_digest(&name)
    );
    let leftovers: Vec<_> = fs::read_dir(&parents)
        .unwrap()
        .flatten()
        .filter(|e| e.file_name().to_string_lossy().contains(".tmp-"))
        .collect();
    assert!(leftovers.is_empty(), "temp files left behind");
}

/// With one CPU (`--threads 1`, as under `taskset -c 0`) the hashing thread gathers its own
/// parents instead of using a prefetch thread; the files must be the same bytes.
#[test]
fn one_cpu_path_equals_pipelined_path() {
    let mut rng = rng("one_cpu_path_equals_pipelined_path");
    let tmp = tempfile::tempdir().unwrap();
    let s = sector_with_random_pieces(tmp.path(), SealProof::from_id(6).unwrap(), &mut rng);
    let doc = s.doc_file();
    let two = pc1_cmd(&[&doc]).arg("--threads").arg("2").output().unwrap();
    assert!(two.status.success(), "{}", stderr(&two));
    let pipelined = files(&s.cache());
    for f in fs::read_dir(s.cache()).unwrap() {
        fs::remove_file(f.unwrap().path()).unwrap();
    }
    let one = pc1_cmd(&[&doc]).arg("--threads").arg("1").output().unwrap();
    assert!(one.status.success(), "{}", stderr(&one));
    assert_eq!(files(&s.cache()), pipelined);
    assert_eq!(one.stdout, two.stdout);
}

/// In a batch the sectors' data is read (replica copy, tree_d, the CommD check) beside the
/// first layer's labeling. When one sector's unsealed data no longer has the document's
/// CommD, the batch fails with one line naming that file and writes no layer of any sector.
#[test]
fn batch_with_changed_data_writes_no_layer() {
    let mut rng = rng("batch_with_changed_data_writes_no_layer");
    let tmp = tempfile::tempdir().unwrap();
    let proof = SealProof::from_id(5).unwrap();
    let sectors: Vec<TestSector> = (0..3)
        .map(|i| sector_with_random_pieces(&tmp.path().join(format!("s{i}")), proof, &mut rng))
        .collect();
    let mut data = fs::read(sectors[1].unsealed()).unwrap();
    data[0] ^= 1;
    fs::write(sectors[1].unsealed(), &data).unwrap();
    let docs: Vec<PathBuf> = sectors.iter().map(|s| s.doc_file()).collect();
    let refs: Vec<&Path> = docs.iter().map(|d| d.as_path()).collect();
    let e = err_line(&pc1(&refs));
    assert!(
        e.contains(&sectors[1].unsealed().display().to_string()) && e.contains("CommD"),
        "{e}"
    );
    for s in &sectors {
        let layers: Vec<String> = files(&s.cache())
            .into_iter()
            .map(|(name, _)| name)
            .filter(|name| name.contains("layer"))
            .collect();
        assert!(layers.is_empty(), "{layers:?}");
    }
}

/// Runs `sectors` as one batch (with `args` and environment `env`), then each alone with the
/// default settings: every sector's documents and files must be the same bytes. Returns the
/// batch run's stderr.
fn batch_equals_single_runs(sectors: &[TestSector], args: &[&str], env: &[(&str, &str)]) -> String {
    let docs: Vec<PathBuf> = sectors.iter().map(|s| s.doc_file()).collect();
    let doc_refs: Vec<&Path> = docs.iter().map(|d| d.as_path()).collect();
    let out = pc1_cmd(&doc_refs)
        .args(args)
        .envs(env.iter().copied())
        .output()
        .unwrap();
    assert!(out.status.success(), "{}", stderr(&out));
    let lines: Vec<serde_json::Value> = String::from_utf8(out.stdout.clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(lines.len(), sectors.len());
    for (s, line) in sectors.iter().zip(&lines) {
        let batch = files(&s.cache());
        for f in fs::read_dir(s.cache()).unwrap() {
            fs::remove_file(f.unwrap().path()).unwrap();
        }
        let single = pc1(&[&s.doc_file()]);
        assert!(single.status.success(), "{}", stderr(&single));
        let v: serde_json::Value = serde_json::from_slice(&single.stdout).unwrap();
        assert_eq!(&v, line);
        assert!(
            files(&s.cache()) == batch,
            "batch {args:?} {env:?} differs from a single run"
        );
    }
    stderr(&out)
}

/// Batches hashed on the vector lanes of the SHA-256 engine (AVX-512: 16 sectors per core)
/// give every sector the files a single-sector run gives: a group of 13 2KiB sectors on one
/// CPU (wide enough for the automatic choice), and two 8MiB sectors forced onto the lanes.
/// Forcing the portable engine gives the same files; a bad setting is one line.
#[test]
fn vector_lane_batches_equal_single_runs() {
    use sealkit::hash::sha256_engine::Engine;
    let mut rng = rng("vector_lane_batches_equal_single_runs");
    let tmp = tempfile::tempdir().unwrap();
    let small = SealProof::from_id(5).unwrap();
    let group: Vec<TestSector> = (0..13)
        .map(|i| sector_with_random_pieces(&tmp.path().join(format!("s{i}")), small, &mut rng))
        .collect();
    let log = batch_equals_single_runs(&group, &["--threads", "1", "-v"], &[]);
    if Engine::Avx512.available() {
        assert!(log.contains("1 groups: 13 on avx512"), "{log}");
    }
    batch_equals_single_runs(&group[..3], &[], &[("SEALKIT_SHA_ENGINE", "portable")]);

    let big = SealProof::from_id(6).unwrap();
    let two: Vec<TestSector> = (0..2)
        .map(|i| sector_with_random_pieces(&tmp.path().join(format!("b{i}")), big, &mut rng))
        .collect();
    let forced = ["avx512", "avx2"]
        .into_iter()
        .find(|name| sealkit::hash::sha256_engine::choose(Some(name)).is_ok());
    if let Some(name) = forced {
        let log = batch_equals_single_runs(&two, &["-v"], &[("SEALKIT_SHA_ENGINE", name)]);
        assert!(log.contains(&format!("1 on {name}")), "{log}");
    }

    let bad = pc1_cmd(&[&group[0].doc_file()])
        .env("SEALKIT_SHA_ENGINE", "avx1024")
        .output()
        .unwrap();
    let e = err_line(&bad);
    assert!(e.contains("SEALKIT_SHA_ENGINE"), "{e}");
}

/// Batches larger than the memory budget (`--memory`) are streamed: each group holds only
/// the layer it labels and reads the previous one back from the files. Every sector's files
/// and document must be the bytes of an in-memory batch and of single runs: 13 2KiB sectors
/// one at a time, three 8MiB sectors in rounds of two, on two CPUs and on one, and
/// a re-run that finds one sector's layer 2 gone. A budget below one sector's need, or one
/// that is not a size, is one line.
#[test]
fn streamed_batches_equal_in_memory_and_single_runs() {
    let mut rng = rng("streamed_batches_equal_in_memory_and_single_runs");
    let tmp = tempfile::tempdir().unwrap();
    let small = SealProof::from_id(5).unwrap();
    let group: Vec<TestSector> = (0..13)
        .map(|i| sector_with_random_pieces(&tmp.path().join(format!("s{i}")), small, &mut rng))
        .collect();
    // 2KiB: the in-memory batch of 13 needs 26 × 2 KiB = 52 KiB; one sector streamed takes
    // 2 KiB of layer and 48 KiB of reader buffers, so 51 KiB labels one at a time.
    let args = ["--threads", "1", "-v", "--memory", "51KiB"];
    let log = batch_equals_single_runs(&group, &args, &[]);
    assert!(
        log.contains("streamed batch: sectors 1..1 (1 groups: 1 on"),
        "{log}"
    );
    assert!(log.contains("streamed batch: sectors 13..13"), "{log}");

    let big = SealProof::from_id(6).unwrap();
    let three: Vec<TestSector> = (0..3)
        .map(|i| sector_with_random_pieces(&tmp.path().join(format!("b{i}")), big, &mut rng))
        .collect();
    let docs: Vec<PathBuf> = three.iter().map(|s| s.doc_file()).collect();
    let doc_refs: Vec<&Path> = docs.iter().map(|d| d.as_path()).collect();
    let in_memory = pc1_cmd(&doc_refs).arg("-v").output().unwrap();
    assert!(in_memory.status.success(), "{}", stderr(&in_memory));
    assert!(!stderr(&in_memory).contains("streamed"));
    let reference: Vec<_> = three.iter().map(|s| files(&s.cache())).collect();
    // 8MiB: 9.5 MiB per sector labeling, so 20 MiB holds two at once.
    // Two CPUs (a group of one each), one (a group of two), and a group of two on the
    // AVX-512 lanes where there are any.
    let forced = sealkit::hash::sha256_engine::choose(Some("avx512")).is_ok();
    for (threads, engine) in [("2", None), ("1", None), ("1", Some("avx512"))] {
        if engine.is_some() && !forced {
            continue;
        }
        for s in &three {
            fs::remove_dir_all(s.cache()).unwrap();
        }
        let args = ["--threads", threads, "-v", "--memory", "20MiB"];
        let mut cmd = pc1_cmd(&doc_refs);
        if let Some(e) = engine {
            cmd.env("SEALKIT_SHA_ENGINE", e);
        }
        let out = cmd.args(args).output().unwrap();
        assert!(out.status.success(), "{}", stderr(&out));
        assert_eq!(out.stdout, in_memory.stdout);
        let log = stderr(&out);
        assert!(log.contains("streamed batch: sectors 1..2"), "{log}");
        if let Some(e) = engine {
            assert!(log.contains(&format!("2 on {e}")), "{log}");
        }
        assert!(log.contains("streamed batch: sectors 3..3"), "{log}");
        let streamed: Vec<_> = three.iter().map(|s| files(&s.cache())).collect();
        assert!(
            streamed == reference,
            "streamed batch ({threads} CPUs, {engine:?}) differs from in-memory batch"
        );
    }
    fs::remove_file(three[1].cache().join("sc-02-data-layer-2.dat")).unwrap();
    let again = pc1_cmd(&doc_refs)
        .args(["--memory", "20MiB"])
        .output()
        .unwrap();
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(again.stdout, in_memory.stdout);
    let resumed: Vec<_> = three.iter().map(|s| files(&s.cache())).collect();
    assert!(resumed == reference, "resumed streamed batch differs");
    batch_equals_single_runs(&three, &["--memory", "20MiB"], &[]);

    for (bad, says) in [
        ("8MiB", "below the 16.0 MiB"),
        ("0", "below"),
        ("lots", "--memory"),
        ("-1GiB", "--memory"),
    ] {
        let e = err_line(
            &pc1_cmd(&doc_refs)
                .arg(format!("--memory={bad}"))
                .output()
                .unwrap(),
        );
        assert!(e.contains(says), "{bad}: {e}");
    }
}
