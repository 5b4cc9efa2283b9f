//! Gas: what executing a message costs, and which form of a prove-commit batch goes out.
//!
//! Since FIP-0100 (nv25) there is no batch fee, and aggregating proofs is expected to save
//! gas (FIP-0100's figures: `ProveCommitSectors3` of 4 sectors, 145 M gas per sector
//! batched against 129.3 M aggregated), but the node is the judge: as Curio does, the
//! publisher has the chain quote both forms of an interactive batch it may aggregate and
//! sends the cheaper one at (base fee + premium) × gas limit, the aggregate on a tie or
//! when the plain batch cannot be quoted (docs/chain.md#gas). The quotes are recorded in
//! the batch's message before its first send, so every send of it is the same message.

use serde::{Deserialize, Serialize};

use super::chain::MsgKind;

/// A message's cost as the chain quoted it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quote {
    pub gas_limit: u64,
    /// attoFIL: (base fee + premium) × gas limit.
    pub fee: u128,
}

/// The two forms of an interactive prove-commit batch, as quoted before its first send
/// (attoFIL, decimal; `None`: the chain would not quote that form, with why in the batch's
/// events).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Quotes {
    pub plain: Option<String>,
    pub aggregate: Option<String>,
}

impl Quotes {
    pub fn of(plain: Option<Quote>, aggregate: Option<Quote>) -> Quotes {
        Quotes {
            plain: plain.map(|q| q.fee.to_string()),
            aggregate: aggregate.map(|q| q.fee.to_string()),
        }
    }

    /// Whether the plain batch goes instead of the aggregate: only when it was quoted
    /// strictly lower.
    pub fn plain_is_cheaper(&self) -> bool {
        let fee = |s: &Option<String>| s.as_deref().and_then(|t| t.parse::<u128>().ok());
        match (fee(&self.plain), fee(&self.aggregate)) {
            (Some(p), Some(a)) => p < a,
            _ => false,
        }
    }
}

/// The simulated chain's base fee, attoFIL per gas unit (mainnet's floor, where it has
/// mostly stayed since 2024), with no premium.
pub const SIM_BASE_FEE: u128 = 100;

/// Gas the simulated chain charges for a message of `kind` with `sectors` sectors:
/// straight lines through FIP-0100's measured points, which is all that is published.
/// PreCommitSectorBatch2: 16.7 M for one sector, 18.4 M for four. ProveCommitSectors3:
/// 267.5 M for one, 580 M for four batched, 517.2 M for four aggregated (the aggregate
/// line assumes the batched line's fixed part). NI commits go aggregated. An update has no
/// published figure: it is charged as a batched prove-commit.
pub fn sim_gas(kind: MsgKind, sectors: u64, aggregated: bool) -> u64 {
    let (fixed, per_sector) = match (kind, aggregated) {
        (MsgKind::PreCommit, _) => (16_133_333, 566_667),
        (MsgKind::ProveCommit, true) => (163_333_333, 88_466_667),
        (MsgKind::ProveCommit, false) | (MsgKind::ReplicaUpdate, _) => (163_333_333, 104_166_667),
    };
    fixed + per_sector * sectors
}

/// The simulated chain's quote for such a message.
pub fn sim_quote(kind: MsgKind, sectors: u64, aggregated: bool) -> Quote {
    let gas_limit = sim_gas(kind, sectors, aggregated);
    Quote {
        gas_limit,
        fee: u128::from(gas_limit) * SIM_BASE_FEE,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The schedule passes through FIP-0100's published points (to 0.1 M gas).
    #[test]
    fn sim_schedule_fits_the_published_points() {
        let m = |g: u64| (g as f64 / 1e5).round() / 10.0;
        assert_eq!(m(sim_gas(MsgKind::PreCommit, 1, false)), 16.7);
        assert_eq!(m(sim_gas(MsgKind::PreCommit, 4, false)), 18.4);
        assert_eq!(m(sim_gas(MsgKind::ProveCommit, 1, false)), 267.5);
        assert_eq!(m(sim_gas(MsgKind::ProveCommit, 4, false)), 580.0);
        assert_eq!(m(sim_gas(MsgKind::ProveCommit, 4, true)), 517.2);
        assert_eq!(
            sim_quote(MsgKind::PreCommit, 1, false).fee,
            16_700_000 * 100
        );
    }

    /// The plain batch wins only when quoted strictly lower; a form without a quote never
    /// wins over one with.
    #[test]
    fn plain_only_when_strictly_cheaper() {
        let q = |p: Option<u128>, a: Option<u128>| Quotes {
            plain: p.map(|x| x.to_string()),
            aggregate: a.map(|x| x.to_string()),
        };
        assert!(q(Some(9), Some(10)).plain_is_cheaper());
        assert!(!q(Some(10), Some(10)).plain_is_cheaper());
        assert!(!q(Some(11), Some(10)).plain_is_cheaper());
        assert!(!q(None, Some(10)).plain_is_cheaper());
        assert!(!q(Some(1), None).plain_is_cheaper());
    }
}
