//! What sealing costs on chain: every sector locks a precommit deposit when its precommit
//! lands and swaps it for its initial pledge when it is proven (an NI-PoRep sector pays the
//! pledge at once), both paid as message value from the wallet that sends the messages. A
//! sealing pipeline whose wallet runs dry stops at its next message, so `chain status` shows
//! what the sectors in the pipeline will still cost against what the wallet holds.
//!
//! The prices come from the node on a Lotus chain (`StateMinerPreCommitDepositForPower`,
//! `StateMinerInitialPledgeForSector`); the simulated chain uses [`sim_costs`].

use serde_json::{json, Value};

use super::db::Db;
use super::state::SectorState;
use crate::filecoin::token::{fil_text, ATTO_PER_FIL};
use crate::sector::proof::SealProof;

/// A committed-capacity sector's precommit deposit and initial pledge, attoFIL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SectorCosts {
    pub deposit: u128,
    pub pledge: u128,
}

const GIB32: u128 = 32 << 30;

/// The simulated chain's prices for a CC sector of `proof`'s size: 0.04 FIL of deposit and
/// 0.2 FIL of pledge per 32 GiB (mainnet's order of magnitude in 2025, where the deposit,
/// charged for ten times the sector's power, is still below the pledge), in proportion to the
/// size and at least 1 attoFIL. Interactive and NI sectors cost the same.
pub fn sim_costs(proof: SealProof) -> SectorCosts {
    let size = proof.sector_size() as u128;
    let of = |per_32gib: u128| (per_32gib * size / GIB32).max(1);
    SectorCosts {
        deposit: of(ATTO_PER_FIL / 25),
        pledge: of(ATTO_PER_FIL / 5),
    }
}

/// Where a sector stands in paying for itself on chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owes {
    /// Its precommit has not landed: the deposit, then the rest of the pledge (the most of
    /// the two is what the wallet must hold for it).
    Both,
    /// Precommitted, not proven: the pledge less the deposit it has locked.
    Pledge,
    Nothing,
}

/// What a sector in state `s` still has to pay (an NI-PoRep sector, which has no precommit,
/// is counted as `Both`: the pledge is the larger amount).
pub fn owes(s: SectorState) -> Owes {
    use SectorState::*;
    match s {
        AddPiece | AddPieceFailed | PreCommit1 | PreCommit1Failed | PreCommit2
        | PreCommit2Failed | PreCommitBatch | PreCommitBatchWait | PreCommitFailed => Owes::Both,
        WaitSeed | Commit1 | Commit1Failed | Commit2 | Commit2Failed | CommitBatch
        | CommitBatchWait | CommitFailed => Owes::Pledge,
        _ => Owes::Nothing,
    }
}

/// The funds part of `chain status`: prices per sector, the wallet's and the miner's
/// available balance, how many sectors still owe what, in all and beyond the wallet.
pub fn report(
    costs: SectorCosts,
    wallet: u128,
    miner_available: u128,
    db: &Db,
) -> anyhow::Result<Value> {
    let (mut both, mut rest) = (0u128, 0u128);
    for s in db.sectors()? {
        match owes(s.state) {
            Owes::Both => both += 1,
            Owes::Pledge => rest += 1,
            Owes::Nothing => {}
        }
    }
    let needed = both
        .saturating_mul(costs.pledge.max(costs.deposit))
        .saturating_add(rest.saturating_mul(costs.pledge.saturating_sub(costs.deposit)));
    Ok(json!({
        "worker_balance": fil_text(wallet),
        "miner_available_balance": fil_text(miner_available),
        "deposit_per_sector": fil_text(costs.deposit),
        "pledge_per_sector": fil_text(costs.pledge),
        "sectors_to_precommit": both as u64,
        "sectors_to_commit": rest as u64,
        "needed": fil_text(needed),
        "short": fil_text(needed.saturating_sub(wallet)),
    }))
}

/// `seal-sched chain fund AMOUNT`: adds FIL to the simulated chain's wallet.
pub fn fund_sim(
    repo: &super::repo::Repo,
    cfg: &super::config::Config,
    amount: &str,
) -> anyhow::Result<Value> {
    use anyhow::Context;
    if cfg.chain.kind != super::config::ChainKind::Sim {
        anyhow::bail!(
            "chain fund adds to the simulated chain's wallet; on a Lotus node send FIL to the worker address from your wallet (lotus send)"
        );
    }
    let atto = crate::filecoin::token::parse_fil(amount).context("AMOUNT")?;
    let wallet = super::engine::open_sim(repo, cfg)?.fund(atto)?;
    Ok(json!({"added": fil_text(atto), "wallet": fil_text(wallet)}))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sim_prices_scale_with_the_sector_and_never_reach_zero() {
        let p = |name: &str| sim_costs(SealProof::from_name(name).unwrap());
        let gib32 = p("StackedDrg32GiBV1_1");
        assert_eq!(gib32.deposit, 40_000_000_000_000_000);
        assert_eq!(gib32.pledge, 200_000_000_000_000_000);
        assert_eq!(p("StackedDrg64GiBV1_1").pledge, 2 * gib32.pledge);
        // 2 KiB is 2^-24 of 32 GiB: 0.2 FIL / 2^24, rounded down.
        let kib2 = p("StackedDrg2KiBV1_1");
        assert_eq!(kib2.pledge, 200_000_000_000_000_000 / (1 << 24));
        assert_eq!(kib2.deposit, 40_000_000_000_000_000 / (1 << 24));
        assert_eq!(p("StackedDrg2KiBV1_2_Feat_NonInteractivePoRep"), kib2);
        for proof in SealProof::all() {
            let c = sim_costs(proof);
            assert!(c.deposit >= 1 && c.deposit <= c.pledge, "{proof:?}");
        }
    }

    #[test]
    fn a_sector_owes_the_deposit_until_its_precommit_lands_then_the_rest() {
        use SectorState::*;
        assert_eq!(
            owes(PreCommitBatchWait),
            Owes::Both,
            "a sent precommit has not paid yet"
        );
        assert_eq!(owes(WaitSeed), Owes::Pledge);
        assert_eq!(
            owes(CommitBatchWait),
            Owes::Pledge,
            "a sent commit has not paid yet"
        );
        assert_eq!(owes(Proving), Owes::Nothing);
    }
}
