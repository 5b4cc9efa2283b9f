//! Handing a proven sector to lotus-miner, which proves it every day (WindowPoSt) where
//! sealkit does not: the `RemoteSectorMeta` that lotus-miner's admin method `SectorReceive`
//! imports a sector with, in state Proving, its files left where they are
//! (docs/chain.md#after-proving-windowpost).
//!
//! Every field lotus-miner checks comes from the sector's own record: the ticket and seed
//! (which it draws again from its chain and compares), CommD and CommR as commitment CIDs,
//! the proof (which it verifies), the pieces, and the messages that took the sector on
//! chain. The files are `Local`: the storage path they are in is attached to lotus-miner
//! (`lotus-miner storage attach`; sealkit's paths carry a `sectorstore.json`).

use anyhow::{ensure, Context, Result};
use serde_json::{json, Value};

use super::batch::BatchState;
use super::chain::MsgKind;
use super::db::{sectors, Db};
use super::lotus::json::base64_encode;
use super::state::SectorState;
use crate::piece::cid::{commitment_to_cid, CommitmentKind};
use crate::sector::document::SectorDoc;

/// The `RemoteSectorMeta` JSON of Proving sector `n`.
pub fn lotus_meta(db: &Db, n: u64) -> Result<Value> {
    let row = sectors::get(&db.conn, n)?.with_context(|| {
        format!("no sector {n} (or its row is quarantined: see `seal-sched sectors list`)")
    })?;
    ensure!(
        row.state == SectorState::Proving,
        "sector {n} is {}: only a Proving sector is handed to lotus-miner",
        row.state
    );
    ensure!(
        row.doc.get("update").is_none(),
        "sector {n} carries a snap deal: SectorReceive imports sealed sectors only"
    );
    let doc = SectorDoc::from_value(row.doc, &format!("sector {n}"))?;
    let proof = doc.seal_proof()?;
    // RemoteSectorMeta describes a sector by its precommit and seed, which an NI sector does
    // not have; lotus-miner's receive checks them, so it is not handed over this way.
    ensure!(
        !proof.is_non_interactive(),
        "sector {n} is an NI-PoRep sector (no precommit, no seed epoch): lotus-miner's SectorReceive cannot take it"
    );
    let cid = |kind, key: &str| -> Result<Value> {
        Ok(json!({"/": commitment_to_cid(kind, &doc.hex32(key)?)}))
    };
    let comm_d = cid(CommitmentKind::Unsealed, "comm_d")?;
    // Lotus keeps a committed-capacity sector as one piece of zeros the size of the sector
    // (its commitment is the sector's CommD); filler pieces are pieces without deal info.
    let mut pieces: Vec<Value> = doc
        .pieces()?
        .iter()
        .map(|p| {
            json!({"Piece": {"Size": p.padded_size,
                "PieceCID": {"/": commitment_to_cid(CommitmentKind::Unsealed, &p.comm_p)}},
                "DealInfo": null})
        })
        .collect();
    if pieces.is_empty() {
        pieces.push(
            json!({"Piece": {"Size": proof.sector_size(), "PieceCID": comm_d},
            "DealInfo": null}),
        );
    }
    let hex_b64 = |key: &str| -> Result<String> {
        let text = doc
            .get(key)
            .and_then(Value::as_str)
            .with_context(|| format!("sector {n} has no {key}"))?;
        Ok(base64_encode(
            &crate::hex::decode(text).with_context(|| format!("sector {n}: field {key:?}"))?,
        ))
    };
    let here = json!({"Local": true, "URL": "", "Headers": null});
    Ok(json!({
        "State": "Proving",
        "Sector": {"Miner": doc.miner()?, "Number": n},
        "Type": proof.id(),
        "Pieces": pieces,
        "TicketValue": base64_encode(&doc.ticket()?),
        "TicketEpoch": doc.u64("ticket_epoch")?,
        "PreCommit1Out": null,
        "CommD": comm_d,
        "CommR": cid(CommitmentKind::Sealed, "comm_r")?,
        "PreCommitInfo": null,
        // Stored by lotus-miner for a commit's value, which a proven sector never needs.
        "PreCommitDeposit": "0",
        "PreCommitMessage": landed_message(db, MsgKind::PreCommit, n)?,
        "PreCommitTipSet": null,
        "SeedValue": base64_encode(&doc.hex32("seed")?),
        "SeedEpoch": doc.u64("seed_epoch")?,
        "CommitProof": hex_b64("proof")?,
        "CommitMessage": landed_message(db, MsgKind::ProveCommit, n)?,
        "Log": null,
        "DataUnsealed": here,
        "DataSealed": here,
        "DataCache": here,
        "RemoteCommit1Endpoint": "",
        "RemoteCommit2Endpoint": "",
        "RemoteSealingDoneEndpoint": "",
    }))
}

/// The CID of the landed message of `kind` that carried sector `n` (the latest, after
/// retries), as a CID object; `null` when there is none.
fn landed_message(db: &Db, kind: MsgKind, n: u64) -> Result<Value> {
    Ok(db
        .batches()?
        .into_iter()
        .filter(|b| b.kind == kind && b.state == BatchState::Landed && b.sectors.contains(&n))
        .filter_map(|b| b.message)
        .next_back()
        .map_or(Value::Null, |c| json!({"/": c})))
}
