//! Our miner-actor parameter encodings (`sealkit::filecoin::miner`) against an independent
//! implementation: ChainSafe's `fil_actor_miner_state`, which mirrors builtin-actors' types
//! per actors version over the Filecoin encoding crates. Random parameters are encoded by
//! us, decoded by them and compared field by field, and their own encoding of the decoded
//! value must be our bytes exactly (DAG-CBOR has one encoding per value).

mod common;

use cid::Cid;
use fil_actor_miner_state::v18 as actor;
use fvm_ipld_encoding::RawBytes;
use fvm_shared::address::Address;
use fvm_shared::sector::{RegisteredAggregateProof, RegisteredSealProof, RegisteredUpdateProof};
use rand::Rng;
use sealkit::filecoin::miner::*;
use sealkit::piece::cid::{commitment_cid_bytes, CommitmentKind};

fn commitment(rng: &mut impl Rng, kind: CommitmentKind) -> Vec<u8> {
    commitment_cid_bytes(kind, &rng.gen())
}

fn their_cid(bytes: &[u8]) -> Cid {
    Cid::try_from(bytes).unwrap()
}

/// The value decoded by the actors' crate; re-encoded by it, it must be our bytes.
fn decoded<T: serde::de::DeserializeOwned + serde::Serialize>(ours: &[u8]) -> T {
    let v: T = fvm_ipld_encoding::from_slice(ours).expect("the actors' crate decodes it");
    assert_eq!(
        fvm_ipld_encoding::to_vec(&v).unwrap(),
        ours,
        "the actors' crate encodes the same value differently"
    );
    v
}

fn pieces(rng: &mut impl Rng) -> Vec<PieceActivationManifest> {
    (0..rng.gen_range(0..4))
        .map(|_| PieceActivationManifest {
            cid: commitment(rng, CommitmentKind::Unsealed),
            size: 128 << rng.gen_range(0..28),
            verified_allocation_key: rng
                .gen_bool(0.5)
                .then(|| (rng.gen_range(0..1 << 40), rng.gen())),
            notify: (0..rng.gen_range(0..3))
                .map(|_| DataActivationNotification {
                    // f05, the market actor, and a CBOR deal id.
                    address: vec![0x00, 0x05],
                    payload: sealkit::filecoin::cbor::Cbor::Uint(rng.gen()).encode(),
                })
                .collect(),
        })
        .collect()
}

fn same_pieces(ours: &[PieceActivationManifest], theirs: &[actor::PieceActivationManifest]) {
    assert_eq!(ours.len(), theirs.len());
    for (o, t) in ours.iter().zip(theirs) {
        assert_eq!(t.cid, their_cid(&o.cid));
        assert_eq!(t.size.0, o.size);
        assert_eq!(
            t.verified_allocation_key.as_ref().map(|k| (k.client, k.id)),
            o.verified_allocation_key
        );
        assert_eq!(t.notify.len(), o.notify.len());
        for (on, tn) in o.notify.iter().zip(&t.notify) {
            assert_eq!(tn.address, Address::from_bytes(&on.address).unwrap());
            assert_eq!(tn.payload, RawBytes::new(on.payload.clone()));
        }
    }
}

fn proofs(rng: &mut impl Rng, n: usize) -> Vec<Vec<u8>> {
    (0..n).map(|_| common::random_bytes(rng, 192)).collect()
}

#[test]
fn precommit_batches_decode_to_the_same_sectors() {
    let mut rng = common::rng("actor-precommit");
    for round in 0..50 {
        let ours = PreCommitSectorBatchParams2 {
            sectors: (0..rng.gen_range(1..10))
                .map(|_| SectorPreCommitInfo {
                    seal_proof: rng.gen_range(0..20),
                    sector_number: rng.gen_range(0..1 << 63),
                    sealed_cid: commitment(&mut rng, CommitmentKind::Sealed),
                    seal_rand_epoch: rng.gen_range(-5..1 << 40),
                    deal_ids: (0..rng.gen_range(0..3)).map(|_| rng.gen()).collect(),
                    expiration: rng.gen_range(0..1 << 40),
                    unsealed_cid: rng
                        .gen_bool(0.5)
                        .then(|| commitment(&mut rng, CommitmentKind::Unsealed)),
                })
                .collect(),
        };
        let theirs: actor::PreCommitSectorBatchParams2 = decoded(&ours.encode());
        assert_eq!(theirs.sectors.len(), ours.sectors.len(), "round {round}");
        for (o, t) in ours.sectors.iter().zip(&theirs.sectors) {
            assert_eq!(t.seal_proof, RegisteredSealProof::from(o.seal_proof));
            assert_eq!(t.sector_number, o.sector_number);
            assert_eq!(t.sealed_cid, their_cid(&o.sealed_cid));
            assert_eq!(t.seal_rand_epoch, o.seal_rand_epoch);
            assert_eq!(t.deal_ids, o.deal_ids);
            assert_eq!(t.expiration, o.expiration);
            assert_eq!(t.unsealed_cid.0, o.unsealed_cid.as_deref().map(their_cid));
        }
    }
}

#[test]
fn prove_commit_batches_and_aggregates_decode_to_the_same_activations() {
    let mut rng = common::rng("actor-provecommit");
    for _ in 0..50 {
        let n = rng.gen_range(1..8);
        let aggregate = rng.gen_bool(0.5);
        let ours = ProveCommitSectors3Params {
            sector_activations: (0..n)
                .map(|_| SectorActivationManifest {
                    sector_number: rng.gen_range(0..1 << 40),
                    pieces: pieces(&mut rng),
                })
                .collect(),
            sector_proofs: if aggregate {
                vec![]
            } else {
                proofs(&mut rng, n)
            },
            aggregate_proof: if aggregate {
                common::random_bytes(&mut rng, 600)
            } else {
                vec![]
            },
            aggregate_proof_type: aggregate.then_some(SNARKPACK_V2),
            require_activation_success: rng.gen(),
            require_notification_success: rng.gen(),
        };
        let theirs: actor::ProveCommitSectors3Params = decoded(&ours.encode());
        assert_eq!(theirs.sector_activations.len(), n);
        for (o, t) in ours
            .sector_activations
            .iter()
            .zip(&theirs.sector_activations)
        {
            assert_eq!(t.sector_number, o.sector_number);
            same_pieces(&o.pieces, &t.pieces);
        }
        let their_proofs: Vec<Vec<u8>> = theirs.sector_proofs.iter().map(|p| p.to_vec()).collect();
        assert_eq!(their_proofs, ours.sector_proofs);
        assert_eq!(theirs.aggregate_proof.to_vec(), ours.aggregate_proof);
        assert_eq!(
            theirs.aggregate_proof_type,
            aggregate.then_some(RegisteredAggregateProof::SnarkPackV2)
        );
        assert_eq!(
            (
                theirs.require_activation_success,
                theirs.require_notification_success
            ),
            (
                ours.require_activation_success,
                ours.require_notification_success
            )
        );
    }
}

#[test]
fn replica_updates_decode_to_the_same_manifests() {
    let mut rng = common::rng("actor-update");
    for _ in 0..50 {
        let n = rng.gen_range(1..17);
        let ours = ProveReplicaUpdates3Params {
            sector_updates: (0..n)
                .map(|_| SectorUpdateManifest {
                    sector: rng.gen_range(0..1 << 40),
                    deadline: rng.gen_range(0..48),
                    partition: rng.gen_range(0..10),
                    new_sealed_cid: commitment(&mut rng, CommitmentKind::Sealed),
                    pieces: pieces(&mut rng),
                })
                .collect(),
            sector_proofs: proofs(&mut rng, n),
            aggregate_proof: vec![],
            update_proofs_type: rng.gen_range(0..5),
            aggregate_proof_type: None,
            require_activation_success: rng.gen(),
            require_notification_success: rng.gen(),
        };
        let theirs: actor::ProveReplicaUpdates3Params = decoded(&ours.encode());
        for (o, t) in ours.sector_updates.iter().zip(&theirs.sector_updates) {
            assert_eq!(
                (t.sector, t.deadline, t.partition),
                (o.sector, o.deadline, o.partition)
            );
            assert_eq!(t.new_sealed_cid, their_cid(&o.new_sealed_cid));
            same_pieces(&o.pieces, &t.pieces);
        }
        assert_eq!(theirs.sector_updates.len(), n);
        assert_eq!(theirs.sector_proofs.len(), n);
        assert_eq!(
            theirs.update_proofs_type,
            RegisteredUpdateProof::from(ours.update_proofs_type)
        );
        assert_eq!(theirs.aggregate_proof_type, None);
    }
}

#[test]
fn ni_porep_batches_decode_to_the_same_sectors() {
    let mut rng = common::rng("actor-ni");
    for _ in 0..50 {
        let miner = rng.gen_range(1000..1 << 40);
        let ours = ProveCommitSectorsNIParams {
            sectors: (0..rng.gen_range(1..66))
                .map(|_| {
                    let n = rng.gen_range(0..1 << 40);
                    SectorNIActivationInfo {
                        sealing_number: n,
                        sealer_id: miner,
                        sealed_cid: commitment(&mut rng, CommitmentKind::Sealed),
                        sector_number: n,
                        seal_rand_epoch: rng.gen_range(0..1 << 40),
                        expiration: rng.gen_range(0..1 << 40),
                    }
                })
                .collect(),
            aggregate_proof: common::random_bytes(&mut rng, 1000),
            seal_proof_type: rng.gen_range(15..20),
            aggregate_proof_type: SNARKPACK_V2,
            proving_deadline: rng.gen_range(0..48),
            require_activation_success: rng.gen(),
        };
        let theirs: actor::ProveCommitSectorsNIParams = decoded(&ours.encode());
        assert_eq!(theirs.sectors.len(), ours.sectors.len());
        for (o, t) in ours.sectors.iter().zip(&theirs.sectors) {
            assert_eq!(
                (t.sealing_number, t.sealer_id, t.sector_number),
                (o.sealing_number, o.sealer_id, o.sector_number)
            );
            assert_eq!(t.sealed_cid, their_cid(&o.sealed_cid));
            assert_eq!(
                (t.seal_rand_epoch, t.expiration),
                (o.seal_rand_epoch, o.expiration)
            );
        }
        assert_eq!(
            theirs.seal_proof_type,
            RegisteredSealProof::from(ours.seal_proof_type)
        );
        assert_eq!(theirs.aggregate_proof.to_vec(), ours.aggregate_proof);
        assert_eq!(theirs.proving_deadline, ours.proving_deadline);
    }
}

/// What the actor returns from a prove-commit batch, encoded by the actors' crate, reads
/// back to the same counts and codes.
#[test]
fn batch_returns_encoded_by_the_actors_read_back() {
    use fil_actor_miner_state::v18::ProveCommitSectors3Return;
    use fil_actors_shared::v18::{BatchReturn as Theirs, FailCode};
    use fvm_shared::error::ExitCode;
    let mut rng = common::rng("actor-batch-return");
    for _ in 0..50 {
        let fails: Vec<(u32, u32)> = (0..rng.gen_range(0..5))
            .map(|i| (i * 3 + rng.gen_range(0..3), rng.gen_range(16..40)))
            .collect();
        let theirs = ProveCommitSectors3Return {
            activation_results: Theirs {
                success_count: rng.gen_range(0..100),
                fail_codes: fails
                    .iter()
                    .map(|&(idx, code)| FailCode {
                        idx,
                        code: ExitCode::new(code),
                    })
                    .collect(),
            },
        };
        let bytes = fvm_ipld_encoding::to_vec(&theirs).unwrap();
        let ours = BatchReturn::decode(&bytes).unwrap();
        assert_eq!(
            ours.success_count,
            theirs.activation_results.success_count as u64
        );
        let want: Vec<(u64, u64)> = fails.iter().map(|&(i, c)| (i as u64, c as u64)).collect();
        assert_eq!(ours.fail_codes, want);
    }
}
