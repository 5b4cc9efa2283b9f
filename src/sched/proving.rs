//! Operator requests on proving sectors: `sectors snap-up` (a CC sector takes deal data, the
//! snap-deal pipeline), `sectors unseal` (its unsealed copy, regenerated on demand by an UNS
//! task) and `sectors regen-key` (a snapped sector's lost sector key, by a GSK task). Each checks and moves the sector in one transaction, so the daemon beside it
//! sees the request whole or not at all.

use std::path::{Path, PathBuf};

use anyhow::{bail, ensure, Context, Result};
use serde::Serialize;
use serde_json::Value;

use super::config::Config;
use super::db::{self, sectors, tasks, Db, SectorRow};
use super::location::Location;
use super::numbering::{self, DEAL_PRIORITY};
use super::state::{SectorState, REGEN_KEY, SNAP_DEALS, UNSEAL};
use super::task_type::TaskType;
use crate::piece::cid::{self, CommitmentKind};
use crate::sector::document::SectorDoc;
use crate::unseal::Request;

/// What `sectors snap-up` did.
#[derive(Debug, Serialize)]
pub struct SnapUp {
    pub sector: u64,
    pub pieces: usize,
}

/// The sector `n` in a state an operator request may start from: Proving, no task, no batch.
fn proving(tx: &rusqlite::Connection, n: u64, what: &str) -> Result<SectorRow> {
    let s = sectors::get(tx, n)?.with_context(|| {
        format!("no sector {n} (or its row is quarantined: see `seal-sched sectors list`)")
    })?;
    ensure!(
        s.state == SectorState::Proving,
        "sector {n} is {}: only a Proving sector can be {what}",
        s.state
    );
    if let Some(t) = tasks::live_of(tx, n)?.first() {
        bail!(
            "sector {n} has a {} {} task ({})",
            t.state,
            t.kind.short(),
            t.id
        );
    }
    Ok(s)
}

/// Whether `s` is a committed-capacity sector never updated.
fn is_fresh_cc(s: &SectorRow) -> bool {
    !s.deal && s.pieces.is_empty() && s.doc.get("update").is_none()
}

/// Starts the snap-deal pipeline on proving CC sector `n` (`None`: the lowest-numbered one
/// with no task) with the deal `pieces`: they are what its AddPiece reads (kept in place
/// until then), the document gains an empty `update` and the sector moves to
/// SnapDealsAddPiece.
pub fn snap_up(
    cfg: &Config,
    db: &mut Db,
    n: Option<u64>,
    pieces: &[PathBuf],
    keep_unsealed: Option<bool>,
) -> Result<SnapUp> {
    ensure!(!pieces.is_empty(), "snap-up needs at least one --piece");
    let abs = numbering::piece_paths(pieces)?;
    db.tx(|tx| {
        let n = match n {
            Some(n) => n,
            None => {
                let mut found = None;
                for s in sectors::in_state(tx, SectorState::Proving)? {
                    if is_fresh_cc(&s) && tasks::live_of(tx, s.number)?.is_empty() {
                        found = Some(s.number);
                        break;
                    }
                }
                found.context("no proving committed-capacity sector to snap up")?
            }
        };
        let s = proving(tx, n, "snapped up")?;
        if let Some(u) = s.doc.get("update") {
            match u.get("landed_epoch") {
                Some(e) => bail!("sector {n} was snapped up already (its update landed at epoch {e})"),
                None => bail!("sector {n} has an unfinished update in its document: an update is started once"),
            }
        }
        ensure!(
            is_fresh_cc(&s),
            "sector {n} holds deal data: only a committed-capacity sector can be snapped up"
        );
        let doc = SectorDoc::from_value(s.doc.clone(), "sector")?;
        let proof = doc.seal_proof()?;
        crate::update::params::UpdateShape::of(proof)
            .with_context(|| format!("sector {n} ({}) cannot be updated", proof.name()))?;
        // A worker here proves PR2: its parameters must be ready now, not hours from now.
        let local_pr2 = cfg
            .workers
            .iter()
            .any(|w| !w.is_remote() && w.task_types().contains(&TaskType::ProveReplicaUpdate2));
        if local_pr2 {
            crate::snark::update::check_present(proof, true)
                .with_context(|| format!("sector {n} cannot be snapped up here yet"))?;
        }
        doc.hex32("comm_r")
            .with_context(|| format!("sector {n} has no comm_r"))?;
        let mut d = s.doc.clone();
        d["update"] = serde_json::json!({});
        if let Some(k) = keep_unsealed {
            d[numbering::KEEP_UNSEALED] = k.into();
        }
        db::set_doc(tx, n, &d)?;
        sectors::set_deal_pieces(tx, n, DEAL_PRIORITY, &abs)?;
        sectors::reset_retries(tx, n)?;
        db::set_state(
            tx,
            n,
            SNAP_DEALS.first,
            &format!("snap-up by the operator, {} piece(s)", abs.len()),
        )?;
        Ok(SnapUp {
            sector: n,
            pieces: abs.len(),
        })
    })
}

/// What `sectors unseal` asks for: a piece (by index in the sector's data or by its piece
/// CID), or the whole padded sector.
#[derive(Debug, Clone)]
pub enum Want {
    Piece(String),
    Padded,
}

/// Where an unseal request stands.
#[derive(Debug, PartialEq, Eq)]
pub enum Unsealed {
    /// The unsealed copy is there (on this machine): read it.
    Ready,
    /// An UNS task regenerates it: wait for the sector to be Proving again.
    Pending,
}

/// The sector's data document: its update's once snapped.
fn data_doc(doc: &SectorDoc) -> Result<SectorDoc> {
    Ok(crate::unseal::snapped_update(doc)?.unwrap_or_else(|| doc.clone()))
}

/// Whether sector `n`'s unsealed copy is on this machine; if it is not and the sector is
/// Proving, queues its regeneration (Proving → Unsealing, one transaction). `read_here`: the
/// caller reads the copy on this machine afterwards, so a sector on another host is refused
/// before anything is queued (its copy can be regenerated there with `read_here` false).
pub fn request_unseal(db: &mut Db, n: u64, read_here: bool) -> Result<Unsealed> {
    db.tx(|tx| {
        let s = sectors::get(tx, n)?.with_context(|| format!("no sector {n}"))?;
        if read_here {
            on_this_machine(&s)?;
        }
        match s.state {
            SectorState::Unsealing | SectorState::UnsealFailed => return Ok(Unsealed::Pending),
            SectorState::Proving => {}
            other => bail!("sector {n} is {other}: only a Proving sector can be unsealed"),
        }
        if copy_path(&s)?.is_some_and(|p| p.is_file()) {
            return Ok(Unsealed::Ready);
        }
        let s = proving(tx, n, "unsealed")?;
        db::set_state(
            tx,
            s.number,
            UNSEAL.first,
            "unseal requested by the operator",
        )?;
        Ok(Unsealed::Pending)
    })
}

/// What `sectors regen-key` did.
#[derive(Debug, Serialize)]
pub struct RegenKey {
    pub sector: u64,
    pub state: &'static str,
}

/// Queues the regeneration of snapped sector `n`'s sector key (Proving → RegenSectorKey, one
/// transaction). Refused unless the update has landed; on this machine, also while the key is
/// there, or when the update's data (the unsealed copy GSK reads) is gone.
pub fn request_regen_key(db: &mut Db, n: u64) -> Result<RegenKey> {
    db.tx(|tx| {
        let s = proving(tx, n, "given its sector key again")?;
        ensure!(
            s.doc["update"]["landed_epoch"].is_i64(),
            "sector {n} has no landed update: only a snapped sector's key can be regenerated (from its update)"
        );
        let here = s
            .location
            .as_deref()
            .map_or(Ok(true), |l| Location::parse(l).map(|at| at.is_local()))?;
        if here {
            let doc = SectorDoc::from_value(s.doc.clone(), "sector")?;
            if let Some(key) = doc.paths()?.sealed.filter(|p| p.exists()) {
                bail!(
                    "sector {n}'s sector key is there ({}): nothing to regenerate",
                    key.display()
                );
            }
            let copy = data_doc(&doc)?.paths()?.unsealed;
            ensure!(
                copy.is_some_and(|p| p.is_file()),
                "sector {n} has no unsealed copy of its update's data, which the sector key is computed from: `seal-sched sectors unseal {n} --no-wait` first"
            );
        }
        db::set_state(
            tx,
            n,
            REGEN_KEY.first,
            "sector key regeneration requested by the operator",
        )?;
        Ok(RegenKey {
            sector: n,
            state: REGEN_KEY.first.as_str(),
        })
    })
}

/// The sector's files are on this machine.
fn on_this_machine(s: &SectorRow) -> Result<()> {
    if let Some(l) = &s.location {
        let at = Location::parse(l)?;
        ensure!(
            at.is_local(),
            "sector {}'s files are on host {} ({l}): read its unsealed copy there with seal-unseal, or queue its regeneration with --no-wait",
            s.number,
            at.host
        );
    }
    Ok(())
}

/// The unsealed copy's path on this machine (`None`: the sector is on another host).
fn copy_path(s: &SectorRow) -> Result<Option<PathBuf>> {
    if let Some(l) = &s.location {
        if !Location::parse(l)?.is_local() {
            return Ok(None);
        }
    }
    let doc = SectorDoc::from_value(s.doc.clone(), "sector")?;
    Ok(data_doc(&doc)?.paths()?.unsealed)
}

/// Waits for an UNS task to bring sector `n` back to Proving (polling the database; the
/// daemon does the work). Fails if the unseal gave up.
pub fn wait_unsealed(db: &Db, n: u64, poll: std::time::Duration) -> Result<()> {
    loop {
        let s = db.sector(n)?.with_context(|| format!("no sector {n}"))?;
        match s.state {
            SectorState::Unsealing | SectorState::UnsealFailed => std::thread::sleep(poll),
            SectorState::Proving => {
                let path = copy_path(&s)?;
                return match path {
                    Some(p) if p.is_file() => Ok(()),
                    _ => bail!(
                        "sector {n}: the unseal gave up{}",
                        s.last_error.map(|e| format!(" ({e})")).unwrap_or_default()
                    ),
                };
            }
            other => bail!("sector {n} moved to {other} while it was being unsealed"),
        }
    }
}

/// Writes what `want` names from sector `n`'s unsealed copy to `out` (or stdout), checked
/// against the piece's comm_p (or comm_d) first; returns the bytes written.
pub fn read(db: &Db, n: u64, want: &Want, out: Option<&Path>) -> Result<u64> {
    let s = db.sector(n)?.with_context(|| format!("no sector {n}"))?;
    on_this_machine(&s)?;
    let doc = SectorDoc::from_value(s.doc.clone(), "sector")?;
    let request = match want {
        Want::Padded => Request::Padded,
        Want::Piece(p) => Request::Piece(piece_index(&data_doc(&doc)?, p)?),
    };
    crate::cli::write_output(out, |w| {
        crate::unseal::read_unsealed_copy(&doc, request, false, w)
    })
}

/// A piece named by its index or its piece CID (`baga6ea4sea…`) among the data's pieces.
fn piece_index(data: &SectorDoc, name: &str) -> Result<usize> {
    let pieces = data.pieces()?;
    if let Ok(i) = name.parse::<usize>() {
        ensure!(
            i < pieces.len(),
            "the sector has {} pieces, no piece {i}",
            pieces.len()
        );
        return Ok(i);
    }
    let comm_p = cid::cid_to_commitment(CommitmentKind::Unsealed, name)
        .with_context(|| format!("--piece {name:?} is neither an index nor a piece CID"))?;
    pieces
        .iter()
        .position(|p| !p.filler && p.comm_p == comm_p)
        .with_context(|| format!("the sector holds no piece {name}"))
}

/// The document `sectors unseal` reports for a finished request.
pub fn report(n: u64, bytes: u64, out: Option<&Path>) -> Value {
    serde_json::json!({
        "sector": n,
        "bytes": bytes,
        "out": out.map(|p| p.display().to_string()),
    })
}
