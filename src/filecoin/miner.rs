//! The miner actor's onboarding methods and their parameters, written as the actor reads
//! them: every struct is a CBOR array of its fields in declaration order (builtin-actors
//! `actors/miner/src/types.rs`, `Serialize_tuple`; docs/chain.md#parameters). These four
//! methods are the whole onboarding surface from network version 23 on: precommit
//! batches, prove-commit batches or aggregates, snap-deal updates and NI-PoRep.
//!
//! CIDs are held in binary form (what CBOR tag 42 carries); proof type numbers are the
//! `RegisteredSealProof` / `RegisteredUpdateProof` / `RegisteredAggregateProof` values.

use anyhow::{bail, Context, Result};

use super::cbor::{self, Cbor};

/// Method numbers (builtin-actors `enum Method`, unchanged from actors v13/v14 to v18).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Method {
    PreCommitSectorBatch2 = 28,
    ProveCommitSectors3 = 34,
    ProveReplicaUpdates3 = 35,
    ProveCommitSectorsNI = 36,
}

impl Method {
    pub fn number(self) -> u64 {
        self as u64
    }
}

/// `RegisteredAggregateProof::SnarkPackV2`, the only aggregate the actor accepts.
pub const SNARKPACK_V2: i64 = 1;

fn cid(bytes: &[u8]) -> Cbor {
    Cbor::Cid(bytes.to_vec())
}

fn uints(v: &[u64]) -> Cbor {
    Cbor::Array(v.iter().map(|&n| Cbor::Uint(n)).collect())
}

fn byte_strings(v: &[Vec<u8>]) -> Cbor {
    Cbor::Array(v.iter().map(|b| Cbor::Bytes(b.clone())).collect())
}

fn optional(v: Option<Cbor>) -> Cbor {
    v.unwrap_or(Cbor::Null)
}

/// One sector of a `PreCommitSectorBatch2`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectorPreCommitInfo {
    pub seal_proof: i64,
    pub sector_number: u64,
    /// CommR's CID.
    pub sealed_cid: Vec<u8>,
    pub seal_rand_epoch: i64,
    /// Must be empty since DDO (actors v13); kept so the layout is the actor's.
    pub deal_ids: Vec<u64>,
    pub expiration: i64,
    /// CommD's CID; `None` for a committed-capacity (all-zero) sector.
    pub unsealed_cid: Option<Vec<u8>>,
}

impl SectorPreCommitInfo {
    fn to_cbor(&self) -> Cbor {
        Cbor::Array(vec![
            Cbor::int(self.seal_proof),
            Cbor::Uint(self.sector_number),
            cid(&self.sealed_cid),
            Cbor::int(self.seal_rand_epoch),
            uints(&self.deal_ids),
            Cbor::int(self.expiration),
            optional(self.unsealed_cid.as_deref().map(cid)),
        ])
    }
}

/// `PreCommitSectorBatchParams2`: all or nothing, no per-sector result.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PreCommitSectorBatchParams2 {
    pub sectors: Vec<SectorPreCommitInfo>,
}

impl PreCommitSectorBatchParams2 {
    pub fn encode(&self) -> Vec<u8> {
        Cbor::Array(vec![Cbor::Array(
            self.sectors.iter().map(|s| s.to_cbor()).collect(),
        )])
        .encode()
    }
}

/// A synchronous notification after activation (an f05 deal: the market actor and the
/// CBOR deal id).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DataActivationNotification {
    /// The actor's address in binary form.
    pub address: Vec<u8>,
    pub payload: Vec<u8>,
}

/// One piece of a sector's new data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PieceActivationManifest {
    /// CommP's CID.
    pub cid: Vec<u8>,
    /// Padded size in bytes.
    pub size: u64,
    /// A verified allocation claimed by this piece: (client actor id, allocation id).
    pub verified_allocation_key: Option<(u64, u64)>,
    pub notify: Vec<DataActivationNotification>,
}

impl PieceActivationManifest {
    fn to_cbor(&self) -> Cbor {
        Cbor::Array(vec![
            cid(&self.cid),
            Cbor::Uint(self.size),
            optional(
                self.verified_allocation_key
                    .map(|(client, id)| uints(&[client, id])),
            ),
            Cbor::Array(
                self.notify
                    .iter()
                    .map(|n| {
                        Cbor::Array(vec![
                            Cbor::Bytes(n.address.clone()),
                            Cbor::Bytes(n.payload.clone()),
                        ])
                    })
                    .collect(),
            ),
        ])
    }
}

fn pieces(p: &[PieceActivationManifest]) -> Cbor {
    Cbor::Array(p.iter().map(|p| p.to_cbor()).collect())
}

/// One sector of a `ProveCommitSectors3`; a committed-capacity sector has no pieces.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectorActivationManifest {
    pub sector_number: u64,
    pub pieces: Vec<PieceActivationManifest>,
}

/// `ProveCommitSectors3Params`: exactly one of `sector_proofs` (one per sector, in order)
/// and `aggregate_proof` (then `aggregate_proof_type` = [`SNARKPACK_V2`]) is non-empty.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProveCommitSectors3Params {
    pub sector_activations: Vec<SectorActivationManifest>,
    pub sector_proofs: Vec<Vec<u8>>,
    pub aggregate_proof: Vec<u8>,
    pub aggregate_proof_type: Option<i64>,
    pub require_activation_success: bool,
    pub require_notification_success: bool,
}

impl ProveCommitSectors3Params {
    pub fn encode(&self) -> Vec<u8> {
        Cbor::Array(vec![
            Cbor::Array(
                self.sector_activations
                    .iter()
                    .map(|a| Cbor::Array(vec![Cbor::Uint(a.sector_number), pieces(&a.pieces)]))
                    .collect(),
            ),
            byte_strings(&self.sector_proofs),
            Cbor::Bytes(self.aggregate_proof.clone()),
            optional(self.aggregate_proof_type.map(Cbor::int)),
            Cbor::Bool(self.require_activation_success),
            Cbor::Bool(self.require_notification_success),
        ])
        .encode()
    }
}

/// One sector of a `ProveReplicaUpdates3`: where it is proven (deadline, partition), its
/// new CommR and the pieces of its new data.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectorUpdateManifest {
    pub sector: u64,
    pub deadline: u64,
    pub partition: u64,
    pub new_sealed_cid: Vec<u8>,
    pub pieces: Vec<PieceActivationManifest>,
}

/// `ProveReplicaUpdates3Params`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProveReplicaUpdates3Params {
    pub sector_updates: Vec<SectorUpdateManifest>,
    pub sector_proofs: Vec<Vec<u8>>,
    pub aggregate_proof: Vec<u8>,
    /// `RegisteredUpdateProof` (0–4: 2KiB … 64GiB).
    pub update_proofs_type: i64,
    pub aggregate_proof_type: Option<i64>,
    pub require_activation_success: bool,
    pub require_notification_success: bool,
}

impl ProveReplicaUpdates3Params {
    pub fn encode(&self) -> Vec<u8> {
        Cbor::Array(vec![
            Cbor::Array(
                self.sector_updates
                    .iter()
                    .map(|u| {
                        Cbor::Array(vec![
                            Cbor::Uint(u.sector),
                            Cbor::Uint(u.deadline),
                            Cbor::Uint(u.partition),
                            cid(&u.new_sealed_cid),
                            pieces(&u.pieces),
                        ])
                    })
                    .collect(),
            ),
            byte_strings(&self.sector_proofs),
            Cbor::Bytes(self.aggregate_proof.clone()),
            Cbor::int(self.update_proofs_type),
            optional(self.aggregate_proof_type.map(Cbor::int)),
            Cbor::Bool(self.require_activation_success),
            Cbor::Bool(self.require_notification_success),
        ])
        .encode()
    }
}

/// One sector of a `ProveCommitSectorsNI` (no precommit; committed capacity only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SectorNIActivationInfo {
    /// The number the replica id was made with; must equal `sector_number` for now.
    pub sealing_number: u64,
    /// Must be the receiving miner's actor id.
    pub sealer_id: u64,
    pub sealed_cid: Vec<u8>,
    pub sector_number: u64,
    pub seal_rand_epoch: i64,
    pub expiration: i64,
}

/// `ProveCommitSectorsNIParams`: always one aggregate, even for one sector.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ProveCommitSectorsNIParams {
    pub sectors: Vec<SectorNIActivationInfo>,
    pub aggregate_proof: Vec<u8>,
    pub seal_proof_type: i64,
    pub aggregate_proof_type: i64,
    pub proving_deadline: u64,
    pub require_activation_success: bool,
}

impl ProveCommitSectorsNIParams {
    pub fn encode(&self) -> Vec<u8> {
        Cbor::Array(vec![
            Cbor::Array(
                self.sectors
                    .iter()
                    .map(|s| {
                        Cbor::Array(vec![
                            Cbor::Uint(s.sealing_number),
                            Cbor::Uint(s.sealer_id),
                            cid(&s.sealed_cid),
                            Cbor::Uint(s.sector_number),
                            Cbor::int(s.seal_rand_epoch),
                            Cbor::int(s.expiration),
                        ])
                    })
                    .collect(),
            ),
            Cbor::Bytes(self.aggregate_proof.clone()),
            Cbor::int(self.seal_proof_type),
            Cbor::int(self.aggregate_proof_type),
            Cbor::Uint(self.proving_deadline),
            Cbor::Bool(self.require_activation_success),
        ])
        .encode()
    }
}

/// What ProveCommitSectors3, ProveReplicaUpdates3 and ProveCommitSectorsNI return
/// (`BatchReturn`): how many sectors succeeded and the exit code of each that did not, by
/// its index in the message.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BatchReturn {
    pub success_count: u64,
    pub fail_codes: Vec<(u64, u64)>,
}

impl BatchReturn {
    pub fn decode(bytes: &[u8]) -> Result<BatchReturn> {
        let v = cbor::decode(bytes).context("BatchReturn")?;
        let bad = || anyhow::anyhow!("BatchReturn: not [success_count, [[index, code]…]]");
        let [count, fails] = v.as_array().ok_or_else(bad)? else {
            bail!(bad());
        };
        let fail_codes = fails
            .as_array()
            .ok_or_else(bad)?
            .iter()
            .map(|f| match f.as_array() {
                Some([i, c]) => Some((i.as_u64()?, c.as_u64()?)),
                _ => None,
            })
            .collect::<Option<Vec<_>>>()
            .ok_or_else(bad)?;
        Ok(BatchReturn {
            success_count: count.as_u64().ok_or_else(bad)?,
            fail_codes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::filecoin::multiformats::base32_decode;

    /// builtin-actors `actors/miner/tests/types_test.rs` (matched there against
    /// go-state-types): `bagboea4seaaqa` and `…aqc` are one-byte poseidon CIDs.
    #[test]
    fn prove_commit_sectors_ni_matches_the_actors_vectors() {
        let c = |s: &str| base32_decode(s.strip_prefix('b').unwrap()).unwrap();
        let sector = |n: u64, cid: &str| SectorNIActivationInfo {
            sealing_number: n,
            sealer_id: n + 1,
            sealed_cid: c(cid),
            sector_number: n + 2,
            seal_rand_epoch: n as i64 + 3,
            expiration: n as i64 + 4,
        };
        let params = |sectors, proof: &[u8], ty, deadline, require| ProveCommitSectorsNIParams {
            sectors,
            aggregate_proof: proof.to_vec(),
            seal_proof_type: ty,
            aggregate_proof_type: SNARKPACK_V2,
            proving_deadline: deadline,
            require_activation_success: require,
        };
        let hex = |p: ProveCommitSectorsNIParams| crate::hex::encode(&p.encode());
        assert_eq!(hex(params(vec![], &[], 8, 2, false)), "868040080102f4");
        let beef = [0xde, 0xad, 0xbe, 0xef];
        assert_eq!(
            hex(params(
                vec![sector(1, "bagboea4seaaqa")],
                &beef,
                18,
                6,
                true
            )),
            "8681860102d82a49000182e2039220010003040544deadbeef120106f5"
        );
        assert_eq!(
            hex(params(
                vec![sector(1, "bagboea4seaaqa"), sector(6, "bagboea4seaaqc")],
                &beef,
                18,
                11,
                false
            )),
            "8682860102d82a49000182e20392200100030405860607d82a49000182e2039220010108090a44deadbeef12010bf4"
        );
    }

    #[test]
    fn batch_returns_read_and_malformed_ones_are_refused() {
        let ok = Cbor::Array(vec![
            Cbor::Uint(2),
            Cbor::Array(vec![Cbor::Array(vec![Cbor::Uint(1), Cbor::Uint(16)])]),
        ]);
        assert_eq!(
            BatchReturn::decode(&ok.encode()).unwrap(),
            BatchReturn {
                success_count: 2,
                fail_codes: vec![(1, 16)]
            }
        );
        for bad in [
            Cbor::Uint(2),
            Cbor::Array(vec![Cbor::Uint(2)]),
            Cbor::Array(vec![Cbor::Uint(2), Cbor::Array(vec![Cbor::Uint(1)])]),
            Cbor::Array(vec![Cbor::int(-1), Cbor::Array(vec![])]),
        ] {
            assert!(BatchReturn::decode(&bad.encode()).is_err(), "{bad:?}");
        }
    }
}
