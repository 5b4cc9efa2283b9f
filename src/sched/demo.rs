//! `seal-sched demo`: the README's main job. Seals a few 2KiB sectors, committed capacity
//! and one with a deal piece, from nothing to Proving on this machine: a fresh repository,
//! the simulated chain on a fast clock, one local worker; then prints each sector's timeline
//! and checks its proof with the reference verifier.

use std::path::{Path, PathBuf};

use anyhow::{ensure, Result};
use serde_json::{json, Value};

use super::daemon::{self, RunOptions};
use super::engine::open_chain;
use super::numbering::add_sector;
use super::repo::Repo;
use super::report;
use crate::sector::document::SectorDoc;
use crate::snark;

pub const DEFAULT_DIR: &str = "/var/tmp/sealkit-demo";
const MARKER: &str = "sealkit-demo";

pub struct DemoOptions {
    pub dir: Option<PathBuf>,
    pub cc: usize,
    pub deals: usize,
    /// CC sectors snapped up once sealed (needs the 2KiB update parameters).
    pub snap: usize,
}

/// Makes sure 2KiB Groth16 parameters exist, generating insecure test ones on first run.
pub fn ensure_test_params() -> Result<()> {
    if std::env::var_os(snark::params::PARAM_ENV).is_none() {
        std::env::set_var(snark::params::PARAM_ENV, "/var/tmp/sealkit-test-params");
    }
    let proof = crate::sector::proof::SealProof::from_name("StackedDrg2KiBV1_1")?;
    if snark::params::check_present(proof, true, false).is_err() {
        eprintln!(
            "seal-sched demo: first run: generating insecure 2KiB test parameters into {} \
             (about 12 minutes on 2 cores, 1.1 GB, once per machine)",
            std::env::var(snark::params::PARAM_ENV).unwrap_or_default()
        );
        snark::params::generate_test_params(proof)?;
    }
    Ok(())
}

/// Makes sure 2KiB sector-update (snap deal) parameters exist, generating insecure test ones
/// on first run (about 10 minutes on 2 cores, 656 MB, once per machine).
pub fn ensure_update_test_params() -> Result<()> {
    if std::env::var_os(snark::params::PARAM_ENV).is_none() {
        std::env::set_var(snark::params::PARAM_ENV, "/var/tmp/sealkit-test-params");
    }
    let proof = crate::sector::proof::SealProof::from_name("StackedDrg2KiBV1_1")?;
    if snark::update::check_present(proof, true).is_err() {
        snark::update::generate_test_params(proof)?;
    }
    Ok(())
}

pub fn run(opts: DemoOptions) -> Result<Value> {
    let dir = opts.dir.unwrap_or_else(|| PathBuf::from(DEFAULT_DIR));
    prepare_dir(&dir)?;
    ensure_test_params()?;
    let repo = Repo { root: dir.clone() };
    let mut cfg = repo.default_config()?;
    cfg.chain.epoch = "100ms".into();
    cfg.batching.precommit_batch_wait = "5s".into();
    cfg.batching.commit_batch_wait = "5s".into();
    cfg.batching.update_batch_wait = "5s".into();
    cfg.batching.precommit_batch_slack = "10s".into();
    cfg.batching.commit_batch_slack = "10s".into();
    cfg.sealing.retry_min = "5s".into();
    // Deadlines come hours early on a 100 ms chain: warn only inside the batch slack.
    cfg.alerts.batch_deadline = "10s".into();
    ensure!(
        opts.snap <= opts.cc,
        "--snap {} needs as many CC sectors (--cc {})",
        opts.snap,
        opts.cc
    );
    if opts.snap > 0 {
        ensure_update_test_params()?;
    }
    repo.init(Some(cfg.clone()))?;
    std::fs::write(dir.join(MARKER), b"")?;
    eprintln!(
        "seal-sched demo: repository {}; simulated chain with 100 ms epochs (seed after {} epochs); \
         batches wait 5 s; {} CC and {} deal sector(s) of 2KiB",
        dir.display(),
        cfg.chain.seed_delay,
        opts.cc,
        opts.deals
    );
    let mut db = repo.open_db()?;
    let chain = open_chain(&repo, &cfg)?;
    for _ in 0..opts.cc {
        add_sector(&mut db, &cfg, chain.as_ref(), &[], None, None)?;
    }
    for i in 0..opts.deals {
        let piece = repo.pieces_dir().join(format!("deal-{i}.car"));
        let mut bytes = vec![0u8; 1000];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
        std::fs::write(&piece, &bytes)?;
        add_sector(&mut db, &cfg, chain.as_ref(), &[piece], None, None)?;
    }
    let run_daemon = || {
        daemon::run(
            &repo,
            RunOptions {
                until_done: true,
                quiet: false,
                metrics: None,
            },
        )
    };
    run_daemon()?;
    let snapped = if opts.snap > 0 {
        let snapped = snap_phase(&repo, &mut db, &cfg, chain.as_ref(), opts.snap)?;
        run_daemon()?;
        snapped
    } else {
        Vec::new()
    };
    let mut out = Vec::new();
    let head = super::engine::open_chain(&repo, &cfg)?.head()?;
    for s in db.sectors()? {
        let (text, _) = report::status(&db, s.number, head)?;
        eprint!("{text}");
        let doc = SectorDoc::from_value(s.doc.clone(), &format!("sector {}", s.number))?;
        let verdict = snark::verify::verify(&doc)?;
        eprintln!(
            "  proof    {} bytes, verified: {}",
            doc.get("proof")
                .and_then(Value::as_str)
                .map_or(0, |p| p.len() / 2),
            verdict.valid
        );
        let mut v = json!({
            "sector": s.number, "state": s.state.as_str(), "deal": s.deal,
            "comm_d": s.doc.get("comm_d"), "comm_r": s.doc.get("comm_r"),
            "proof_valid": verdict.valid,
        });
        if let Some((_, piece)) = snapped.iter().find(|(n, _)| *n == s.number) {
            let (valid, returned) = check_snapped(&doc, piece)?;
            eprintln!(
                "  update   comm_r {}, proof verified: {valid}, unsealed piece equals the deal: {returned}",
                doc.get("update").and_then(|u| u.get("comm_r")).and_then(Value::as_str).unwrap_or("?")
            );
            v["update_comm_r"] = doc
                .get("update")
                .and_then(|u| u.get("comm_r"))
                .cloned()
                .into();
            v["update_proof_valid"] = valid.into();
            v["update_piece_returned"] = returned.into();
        }
        out.push(v);
    }
    let page = super::observe::save_page(&repo, &dir.join("timelines.html"))?;
    eprintln!(
        "seal-sched demo: the sectors' timelines are drawn in {} (open it in a browser; \
         `seal-sched --repo {} serve` shows the live view)",
        page.display(),
        dir.display()
    );
    let all_ok = out.iter().all(|v| {
        v["state"] == "Proving"
            && v["proof_valid"] == true
            && v.get("update_proof_valid").is_none_or(|u| *u == true)
            && v.get("update_piece_returned").is_none_or(|u| *u == true)
    }) && out
        .iter()
        .filter(|v| v.get("update_proof_valid").is_some())
        .count()
        == opts.snap;
    ensure!(
        all_ok,
        "not every demo sector reached Proving with a valid proof: {}",
        Value::Array(out)
    );
    Ok(Value::Array(out))
}

/// Snaps up `snap` of the sealed CC sectors with a random deal piece each, asks for the
/// unsealed copy of another CC sector (an UNS task), and adds a new CC sector, so that the
/// snap, unseal and PoRep pipelines run side by side. Returns the snapped sectors with
/// their pieces' bytes.
fn snap_phase(
    repo: &Repo,
    db: &mut super::db::Db,
    cfg: &super::config::Config,
    chain: &dyn super::chain::Chain,
    snap: usize,
) -> Result<Vec<(u64, Vec<u8>)>> {
    let cc: Vec<u64> = db
        .sectors()?
        .into_iter()
        .filter(|s| !s.deal)
        .map(|s| s.number)
        .collect();
    let mut snapped = Vec::new();
    for &n in cc.iter().take(snap) {
        let piece = repo.pieces_dir().join(format!("snap-{n}.car"));
        let mut bytes = vec![0u8; 1000];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
        std::fs::write(&piece, &bytes)?;
        super::proving::snap_up(cfg, db, Some(n), &[piece], None)?;
        snapped.push((n, bytes));
    }
    if let Some(&n) = cc.get(snap) {
        super::proving::request_unseal(db, n, false)?;
    }
    let fresh = add_sector(db, cfg, chain, &[], None, None)?;
    eprintln!(
        "seal-sched demo: snapping up sector(s) {:?}, unsealing sector {:?} again, sealing new sector {fresh} beside them",
        snapped.iter().map(|(n, _)| n).collect::<Vec<_>>(),
        cc.get(snap)
    );
    Ok(snapped)
}

/// A snapped sector's update proof verifies, and its unsealed copy gives the deal back.
fn check_snapped(doc: &SectorDoc, piece: &[u8]) -> Result<(bool, bool)> {
    let valid = snark::update::verify_doc(doc)?.valid;
    let mut got = Vec::new();
    crate::unseal::read_unsealed_copy(doc, crate::unseal::Request::Piece(0), false, &mut got)?;
    Ok((valid, got == piece))
}

/// The demo directory must be new, empty, or a previous demo's (which is replaced).
fn prepare_dir(dir: &Path) -> Result<()> {
    if dir.join(MARKER).exists() {
        std::fs::remove_dir_all(dir)?;
    } else if dir.exists() {
        ensure!(
            std::fs::read_dir(dir)?.next().is_none(),
            "{} exists and is not a previous demo: pick another directory",
            dir.display()
        );
    }
    Ok(())
}
