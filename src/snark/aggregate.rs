//! SnarkPack aggregation: many sealed sectors' Groth16 proofs as one proof, for the miner
//! actor's `ProveCommitSectors3` aggregate (interactive PoRep) and `ProveCommitSectorsNI`
//! (NI-PoRep, which the actor takes only aggregated).
//!
//! As with Commit2, the prover is the reference's: filecoin-proofs'
//! `aggregate_seal_commit_proofs` and `verify_aggregate_seal_commit_proofs` (SnarkPack v2,
//! the only version the actor accepts), fed each sector's partition proofs. For an
//! interactive sector those are its `proof`; an NI sector's `proof` is already the aggregate
//! of its own partitions, so Commit2 also keeps them as `circuit_proofs`
//! ([`super::prove::commit2`]). What this module adds is the message's rules: one proof type
//! and one miner, no sector twice, the actor's bounds on the count, and the order. The actor
//! checks an aggregate against its sectors in message order and Lotus and Curio list them by
//! sector number, so the aggregate is always made, and returned, in that order.

use anyhow::{bail, ensure, Context, Result};
use bellperson::groth16::aggregate::AggregateVersion;
use filecoin_proofs::{
    aggregate_seal_commit_proofs, get_seal_inputs, verify_aggregate_seal_commit_proofs,
    SealCommitOutput, SINGLE_PARTITION_PROOF_LEN,
};
use storage_proofs_core::sector::SectorId;

use super::config::porep_config;
use super::params::check_present;
use crate::commit::challenges::Kind;
use crate::hex;
use crate::sector::document::SectorDoc;
use crate::sector::proof::SealProof;
use crate::with_tree_shape;

/// Sectors in one interactive aggregate (`ProveCommitSectors3`; builtin-actors
/// `MIN_AGGREGATED_SECTORS` / `MAX_AGGREGATED_SECTORS`).
pub const INTERACTIVE_SECTORS: std::ops::RangeInclusive<usize> = 4..=819;
/// Sectors in one `ProveCommitSectorsNI` aggregate (FIP-0092; the reference's
/// `FIP92_MIN/MAX_NI_POREP_AGGREGATION_PROOFS`).
pub const NI_SECTORS: std::ops::RangeInclusive<usize> = 1..=65;

/// The document field with an NI sector's partition proofs (hex), which Commit2 adds.
pub const CIRCUIT_PROOFS: &str = "circuit_proofs";

/// One aggregate and the sectors it proves, in the order it proves them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Aggregate {
    pub proof: SealProof,
    /// The sectors' prover (their miner's actor id, as a prover id).
    pub prover_id: [u8; 32],
    /// The miner's actor id, when the documents name it.
    pub miner: Option<u64>,
    pub sectors: Vec<u64>,
    pub bytes: Vec<u8>,
}

/// What aggregation reads of one sector.
struct Input {
    sector: u64,
    comm_r: [u8; 32],
    comm_d: [u8; 32],
    ticket: [u8; 32],
    seed: [u8; 32],
    circuit_proofs: Vec<u8>,
}

/// The bounds the actor puts on the number of sectors in one aggregate of `proof`'s kind.
pub fn bounds(proof: SealProof) -> std::ops::RangeInclusive<usize> {
    match Kind::of(proof) {
        Kind::NonInteractive => NI_SECTORS,
        _ => INTERACTIVE_SECTORS,
    }
}

/// Checks the documents as one message's sectors and reads them in sector order.
fn inputs(docs: &[SectorDoc]) -> Result<(SealProof, [u8; 32], Vec<Input>)> {
    let first = docs.first().context("no sector documents to aggregate")?;
    let (proof, prover_id) = (first.seal_proof()?, first.prover_id()?);
    let limits = bounds(proof);
    ensure!(
        limits.contains(&docs.len()),
        "{} sectors: the miner actor takes an aggregate of {} to {} {proof} sectors",
        docs.len(),
        limits.start(),
        limits.end()
    );
    let ni = Kind::of(proof) == Kind::NonInteractive;
    let partitions = proof.partitions();
    let mut out = Vec::with_capacity(docs.len());
    for doc in docs {
        let sector = doc.sector()?;
        let name = format!("sector {sector}");
        ensure!(
            doc.seal_proof()? == proof,
            "{name} is {}, not {proof}: one aggregate holds one proof type",
            doc.seal_proof()?
        );
        ensure!(
            doc.prover_id()? == prover_id,
            "{name} has another prover (miner) than sector {}: one aggregate is one miner's message",
            first.sector()?
        );
        let hint = "it is not a proven sector (run seal-c2)";
        let field = |k: &str| doc.hex32_after(k, hint).with_context(|| name.clone());
        let key = if ni { CIRCUIT_PROOFS } else { "proof" };
        let text = doc.get(key).and_then(|v| v.as_str()).with_context(|| {
            format!("{name} has no \"{key}\": run seal-c2 (version 24 or later for NI-PoRep)")
        })?;
        let circuit_proofs =
            hex::decode(text).with_context(|| format!("{name}: field \"{key}\""))?;
        ensure!(
            circuit_proofs.len() == partitions * SINGLE_PARTITION_PROOF_LEN,
            "{name}: field \"{key}\" holds {} bytes, not {partitions} partition proofs of {SINGLE_PARTITION_PROOF_LEN}",
            circuit_proofs.len()
        );
        out.push(Input {
            sector,
            comm_r: field("comm_r")?,
            comm_d: field("comm_d")?,
            ticket: doc.ticket().with_context(|| name.clone())?,
            seed: field("seed")?,
            circuit_proofs,
        });
    }
    out.sort_by_key(|i| i.sector);
    if let Some(w) = out.windows(2).find(|w| w[0].sector == w[1].sector) {
        bail!("sector {} is given twice", w[0].sector);
    }
    Ok((proof, prover_id, out))
}

/// Aggregates the proofs of `docs` (any order) and verifies the result before returning it:
/// it is never right to hand the chain an aggregate that does not verify.
pub fn aggregate(docs: &[SectorDoc]) -> Result<Aggregate> {
    let (proof, prover_id, inputs) = inputs(docs)?;
    check_present(proof, false, true)?;
    let config = porep_config(proof)?;
    let comm_rs: Vec<[u8; 32]> = inputs.iter().map(|i| i.comm_r).collect();
    let seeds: Vec<[u8; 32]> = inputs.iter().map(|i| i.seed).collect();
    let outputs: Vec<SealCommitOutput> = inputs
        .iter()
        .map(|i| SealCommitOutput {
            proof: i.circuit_proofs.clone(),
        })
        .collect();
    let bytes = with_tree_shape!(proof, Tree => {
        aggregate_seal_commit_proofs::<Tree>(&config, &comm_rs, &seeds, &outputs, AggregateVersion::V2)
            .context("aggregation failed")?
    });
    let agg = Aggregate {
        proof,
        prover_id,
        miner: docs[0].get("miner").map(|_| docs[0].miner()).transpose()?,
        sectors: inputs.iter().map(|i| i.sector).collect(),
        bytes,
    };
    ensure!(
        verify(docs, &agg.bytes)?,
        "the aggregate of sectors {:?} does not verify",
        agg.sectors
    );
    Ok(agg)
}

/// Whether `bytes` is the aggregate of `docs`' proofs in sector order, as the actor checks
/// it: each sector's public inputs from its commitments, ticket and seed.
pub fn verify(docs: &[SectorDoc], bytes: &[u8]) -> Result<bool> {
    let (proof, prover_id, inputs) = inputs(docs)?;
    check_present(proof, false, true)?;
    let config = porep_config(proof)?;
    let comm_rs: Vec<[u8; 32]> = inputs.iter().map(|i| i.comm_r).collect();
    let seeds: Vec<[u8; 32]> = inputs.iter().map(|i| i.seed).collect();
    with_tree_shape!(proof, Tree => {
        let mut public = Vec::new();
        for i in &inputs {
            public.extend(
                get_seal_inputs::<Tree>(
                    &config,
                    i.comm_r,
                    i.comm_d,
                    prover_id,
                    SectorId::from(i.sector),
                    i.ticket,
                    i.seed,
                )
                .with_context(|| format!("sector {}: public inputs", i.sector))?,
            );
        }
        // Malformed bytes are an invalid aggregate, not an error to stop on.
        Ok(verify_aggregate_seal_commit_proofs::<Tree>(
            &config,
            bytes.to_vec(),
            &comm_rs,
            &seeds,
            public,
            AggregateVersion::V2,
        )
        .unwrap_or(false))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A proven-looking document: the fields aggregation reads, with proof bytes of the
    /// right length (no proving happens before these checks).
    fn doc(proof: SealProof, sector: u64, miner: u64) -> SectorDoc {
        let key = if Kind::of(proof) == Kind::NonInteractive {
            CIRCUIT_PROOFS
        } else {
            "proof"
        };
        let h = |b: u8| hex::encode(&[b; 32]);
        let mut d = SectorDoc::from_value(
            serde_json::json!({
                "seal_proof": proof.name(), "miner": miner, "sector": sector,
                "comm_r": h(1), "comm_d": h(2), "ticket": h(3), "seed": h(4),
            }),
            "test",
        )
        .unwrap();
        d.set(
            key,
            hex::encode(&vec![9u8; proof.partitions() * SINGLE_PARTITION_PROOF_LEN]),
        );
        d
    }

    fn refusal(docs: &[SectorDoc]) -> String {
        format!("{:#}", inputs(docs).err().expect("refused"))
    }

    #[test]
    fn sectors_are_read_in_sector_order_within_the_actors_bounds() {
        let p = SealProof::from_name("StackedDrg32GiBV1_1").unwrap();
        let docs: Vec<_> = [9, 3, 7, 5].iter().map(|&n| doc(p, n, 1000)).collect();
        let (proof, prover, read) = inputs(&docs).unwrap();
        assert_eq!(proof, p);
        assert_eq!(prover, crate::sector::prover_id::prover_id_from_actor(1000));
        assert_eq!(
            read.iter().map(|i| i.sector).collect::<Vec<_>>(),
            [3, 5, 7, 9]
        );
        assert_eq!(
            refusal(&docs[..3]),
            "3 sectors: the miner actor takes an aggregate of 4 to 819 StackedDrg32GiBV1_1 sectors"
        );
        let many: Vec<_> = (0..820).map(|n| doc(p, n, 1000)).collect();
        assert!(refusal(&many).starts_with("820 sectors"));
        assert!(inputs(&many[..819]).is_ok());

        // NI: one sector is an aggregate already; 66 is one too many.
        let ni = SealProof::from_name("StackedDrg32GiBV1_2_Feat_NonInteractivePoRep").unwrap();
        assert!(inputs(&[doc(ni, 1, 1000)]).is_ok());
        let many: Vec<_> = (0..66).map(|n| doc(ni, n, 1000)).collect();
        assert!(
            refusal(&many).starts_with("66 sectors: the miner actor takes an aggregate of 1 to 65")
        );
        // An NI sector's one-sector aggregate is not its partition proofs.
        let mut old = doc(ni, 1, 1000);
        old.set(CIRCUIT_PROOFS, serde_json::Value::Null);
        old.set("proof", "00");
        assert!(refusal(&[old]).contains("sector 1 has no \"circuit_proofs\""));
    }

    #[test]
    fn one_message_is_one_proof_type_one_miner_and_each_sector_once() {
        let p = SealProof::from_name("StackedDrg32GiBV1_1").unwrap();
        let base: Vec<_> = (1..=4).map(|n| doc(p, n, 1000)).collect();
        let mut twice = base.clone();
        twice[3] = doc(p, 2, 1000);
        assert_eq!(refusal(&twice), "sector 2 is given twice");
        let mut other = base.clone();
        other[2] = doc(p, 3, 1001);
        assert_eq!(
            refusal(&other),
            "sector 3 has another prover (miner) than sector 1: one aggregate is one miner's message"
        );
        let mut mixed = base.clone();
        mixed[1] = doc(SealProof::from_name("StackedDrg32GiBV1").unwrap(), 2, 1000);
        assert!(refusal(&mixed).contains("one aggregate holds one proof type"));
        let mut short = base.clone();
        short[0].set("proof", "00".repeat(191));
        assert_eq!(
            refusal(&short),
            "sector 1: field \"proof\" holds 191 bytes, not 10 partition proofs of 192"
        );
        let mut unproven = base;
        unproven[0].set("proof", serde_json::Value::Null);
        assert!(refusal(&unproven).starts_with("sector 1 has no \"proof\": run seal-c2"));
    }
}
