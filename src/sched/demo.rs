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
    cfg.batching.precommit_batch_slack = "10s".into();
    cfg.batching.commit_batch_slack = "10s".into();
    cfg.sealing.retry_min = "5s".into();
    // Deadlines come hours early on a 100 ms chain: warn only inside the batch slack.
    cfg.alerts.batch_deadline = "10s".into();
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
        add_sector(&mut db, &cfg, chain.as_ref(), &[], None)?;
    }
    for i in 0..opts.deals {
        let piece = repo.pieces_dir().join(format!("deal-{i}.car"));
        let mut bytes = vec![0u8; 1000];
        rand::RngCore::fill_bytes(&mut rand::rngs::OsRng, &mut bytes);
        std::fs::write(&piece, &bytes)?;
        add_sector(&mut db, &cfg, chain.as_ref(), &[piece], None)?;
    }
    daemon::run(
        &repo,
        RunOptions {
            until_done: true,
            quiet: false,
            metrics: None,
        },
    )?;
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
        out.push(json!({
            "sector": s.number, "state": s.state.as_str(), "deal": s.deal,
            "comm_d": s.doc.get("comm_d"), "comm_r": s.doc.get("comm_r"),
            "proof_valid": verdict.valid,
        }));
    }
    let page = super::observe::save_page(&repo, &dir.join("timelines.html"))?;
    eprintln!(
        "seal-sched demo: the sectors' timelines are drawn in {} (open it in a browser; \
         `seal-sched --repo {} serve` shows the live view)",
        page.display(),
        dir.display()
    );
    let all_ok = out
        .iter()
        .all(|v| v["state"] == "Proving" && v["proof_valid"] == true);
    ensure!(
        all_ok,
        "not every demo sector reached Proving with a valid proof: {}",
        Value::Array(out)
    );
    Ok(Value::Array(out))
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
