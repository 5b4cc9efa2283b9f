//! Sector numbers: the one place a number is given out.
//!
//! A number names files (`s-t0<miner>-<n>` under every storage path) and a chain record
//! (the miner's allocated sectors), and both outlive this scheduler's database: a lost or
//! fresh `sched.db`, a storage path attached from another installation, or an operator's
//! `--number` can all name a sector that already exists. Sealing "a new sector" over such
//! a number overwrites a proving sector's replica. So a number is only handed out when the
//! database, the chain and every storage path agree it is unused, and the reservation is
//! committed in the same transaction that creates the sector row. The counter only grows
//! (`meta.next_sector`), so a removed sector's number is never reused.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use rusqlite::Transaction;

use super::chain::Chain;
use super::config::Config;
use super::db::{self, sectors, Db};
use super::location::Location;
use super::state;
use super::storage;

/// The largest sector number the miner actor accepts (`abi.MaxSectorNumber`, `math.MaxInt64`).
pub const MAX_SECTOR_NUMBER: u64 = i64::MAX as u64;

/// How many taken numbers in a row allocation skips before it gives up and asks the
/// operator (a storage path full of foreign sectors is worth a look, not a long loop).
const MAX_SKIP: u64 = 100_000;

const COUNTER: &str = "next_sector";

/// The priority of a sector with deals (Lotus's `DealSectorPriority`): ahead of CC sectors.
pub(crate) const DEAL_PRIORITY: i64 = 1024;

/// The document field that overrides `[sealing] keep_unsealed` for one sector (Lotus's
/// per-deal KeepUnsealed): `false` keeps no unsealed copy after Finalize.
pub const KEEP_UNSEALED: &str = "keep_unsealed";

/// Why `n` cannot be used, or `None` when it is free everywhere we can see.
fn taken(
    tx: &Transaction,
    cfg: &Config,
    chain: &dyn Chain,
    roots: &[PathBuf],
    n: u64,
) -> Result<Option<String>> {
    if sectors::exists(tx, n)? {
        return Ok(Some("it is in the database".into()));
    }
    if chain.sector_allocated(cfg.sealing.miner, n)? {
        return Ok(Some("the chain has it allocated".into()));
    }
    let name = storage::sector_name(cfg.sealing.miner, n);
    if let Some(root) = roots.iter().find(|r| storage::holds(r, &name)) {
        return Ok(Some(format!("{} holds files named {name}", root.display())));
    }
    Ok(None)
}

/// Every storage path on this machine that a worker names.
fn local_roots(cfg: &Config) -> Vec<PathBuf> {
    let mut roots: Vec<PathBuf> = cfg
        .workers
        .iter()
        .filter(|w| !w.is_remote())
        .flat_map(|w| w.storage.iter().map(PathBuf::from))
        .collect();
    roots.sort();
    roots.dedup();
    roots
}

/// Reserves a sector number: `explicit` if it is free, else the next free one.
fn reserve(
    tx: &Transaction,
    cfg: &Config,
    chain: &dyn Chain,
    explicit: Option<u64>,
) -> Result<u64> {
    let roots = local_roots(cfg);
    if let Some(n) = explicit {
        ensure!(
            n <= MAX_SECTOR_NUMBER,
            "sector number {n} is above the largest the chain accepts ({MAX_SECTOR_NUMBER})"
        );
        if let Some(why) = taken(tx, cfg, chain, &roots, n)? {
            bail!("sector number {n} is already used: {why}");
        }
        return Ok(n);
    }
    let counter: u64 = match db::meta(tx, COUNTER)? {
        Some(v) => v.parse().with_context(|| {
            format!("meta.{COUNTER} in the state database is not a number: {v:?}")
        })?,
        None => 1,
    };
    // Below an operator's explicit numbers near the top, the highest number in use.
    let highest = sectors::highest_below(tx, MAX_SECTOR_NUMBER)?;
    let mut n = counter.max(highest.map_or(1, |h| h + 1)).max(1);
    for _ in 0..MAX_SKIP {
        ensure!(
            n <= MAX_SECTOR_NUMBER,
            "no sector numbers are left below {MAX_SECTOR_NUMBER}: give one with --number"
        );
        match taken(tx, cfg, chain, &roots, n)? {
            None => return Ok(n),
            Some(why) => {
                db::event(
                    tx,
                    None,
                    "number",
                    &format!("skipped sector number {n}: {why}"),
                )?;
                n += 1;
            }
        }
    }
    bail!("{MAX_SKIP} sector numbers in a row from {counter} are taken; give one with --number")
}

/// Adds a sector: CC (`pieces` empty) or with deal pieces (priority 1024, Lotus's
/// DealSectorPriority). `number` defaults to the next free one; a taken number is an error.
pub fn add_sector(
    db: &mut Db,
    cfg: &Config,
    chain: &dyn Chain,
    pieces: &[PathBuf],
    number: Option<u64>,
    keep_unsealed: Option<bool>,
) -> Result<u64> {
    let proof = cfg.seal_proof()?;
    let abs = piece_paths(pieces)?;
    let first = state::INTERACTIVE_POREP.first;
    db.tx(|tx| {
        let n = reserve(tx, cfg, chain, number)?;
        if number.is_none() {
            // An operator's explicit number does not move the counter (one near the top
            // would end numbering); the counter skips it when it gets there.
            db::set_meta(tx, COUNTER, &(n + 1).to_string())?;
        }
        let mut doc = serde_json::json!({"seal_proof": proof.name(), "miner": cfg.sealing.miner, "sector": n});
        if let Some(k) = keep_unsealed {
            doc[KEEP_UNSEALED] = k.into();
        }
        let deal = !abs.is_empty();
        sectors::insert(
            tx,
            &sectors::NewSector {
                number: n,
                state: first,
                deal,
                priority: if deal { DEAL_PRIORITY } else { 0 },
                doc: &doc,
                pieces: &abs,
            },
        )?;
        db::event(tx, Some(n), "state", &format!("{first}: {}", if deal { format!("deal sector, {} piece(s)", abs.len()) } else { "committed capacity".into() }))?;
        Ok(n)
    })
}

/// Deal piece files as the absolute paths AddPiece reads them from later.
pub fn piece_paths(pieces: &[PathBuf]) -> Result<Vec<String>> {
    pieces
        .iter()
        .map(|p| {
            let a = std::fs::canonicalize(p)
                .with_context(|| format!("piece file {} cannot be read", p.display()))?;
            Ok(a.display().to_string())
        })
        .collect()
}

/// The last check before a new sector's first phase writes anything: the storage path it
/// was given must not hold files of that name (a path attached after the number was
/// reserved, or files copied in by hand). The daemon checks this machine's paths when it
/// places the sector; the supervisor checks again on the host that runs the phase
/// (`seal-sched host holds` for a remote one).
pub fn check_fresh(root: &Location, name: &str) -> Result<()> {
    if root.is_local() && storage::holds(Path::new(&root.path), name) {
        return Err(Occupied::at(root, name).into());
    }
    Ok(())
}

/// A new sector's storage path already holds files of its name.
#[derive(Debug)]
pub struct Occupied(String);

impl Occupied {
    pub fn at(root: &Location, name: &str) -> Occupied {
        Occupied(format!(
            "storage path {root} already holds files named {name}: refusing to seal a new sector \
             over them (move them away, or remove this sector)"
        ))
    }
}

impl std::fmt::Display for Occupied {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for Occupied {}
