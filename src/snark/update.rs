//! ProveReplicaUpdate2 and update verification: the Groth16 SNARK over the reference's
//! `EmptySectorUpdateCircuit` (docs/snap-deals.md#snark).
//!
//! As for Commit2, the circuit and prover are the field's own: our vanilla partition proofs
//! ([`crate::update::vanilla`]) reach the reference's prover as the bincode bytes Lotus carries
//! between ProveReplicaUpdate1 and 2, read into its `PartitionProof` type. Parameters are the
//! `empty-sector-update-…` files (one set per sector size), found, checked and generated for
//! tests like the PoRep ones ([`super::params`]).

use anyhow::{bail, ensure, Context, Result};
use bellperson::groth16;
use blstrs::Bls12;
use filecoin_proofs::{
    generate_empty_sector_update_proof_with_vanilla, verify_empty_sector_update_proof,
};
use storage_proofs_core::compound_proof::CompoundProof;
use storage_proofs_core::parameter_cache::{
    parameter_cache_metadata_path, parameter_cache_params_path, parameter_cache_srs_key_path,
    parameter_cache_verifying_key_path, CacheableParameters,
};
use storage_proofs_update::{
    EmptySectorUpdate, EmptySectorUpdateCircuit, EmptySectorUpdateCompound, PartitionProof,
    PublicParams,
};

use super::config::porep_config;
use super::params::{generate_into, size_name, ParamFiles, PARAM_ENV};
use super::verify::Verdict;
use crate::hex;
use crate::sector::document::SectorDoc;
use crate::sector::proof::SealProof;
use crate::update::params::UpdateShape;
use crate::with_tree_shape;

/// Bytes of one partition's Groth16 proof (A, B, C compressed).
pub const PROOF_BYTES: usize = 192;

/// Where the update parameters of `proof`'s sector size are.
pub fn files(proof: SealProof) -> Result<ParamFiles> {
    UpdateShape::of(proof)?;
    with_tree_shape!(proof, Tree => {
        let pp = PublicParams::from_sector_size(proof.sector_size());
        let id = <EmptySectorUpdateCompound<Tree> as CacheableParameters<EmptySectorUpdateCircuit<Tree>, _>>::cache_identifier(&pp);
        Ok(ParamFiles {
            params: parameter_cache_params_path(&id),
            vk: parameter_cache_verifying_key_path(&id),
            meta: parameter_cache_metadata_path(&id),
            srs: parameter_cache_srs_key_path(&id, 0),
            cache_id: id,
        })
    })
}

/// Fails with an actionable message when a file PR2 (`need_params`) or verification needs is
/// missing.
pub fn check_present(proof: SealProof, need_params: bool) -> Result<ParamFiles> {
    let f = files(proof)?;
    let mut need = vec![&f.vk];
    if need_params {
        need.push(&f.params);
    }
    for p in need {
        if !p.exists() {
            bail!(
                "update parameter file {} is missing: fetch the real ones with `lotus fetch-params {}` \
                 (or `curio fetch-params`), or for testing only set {PARAM_ENV} to a scratch \
                 directory and run `seal-pru2 --generate-test-params {}`",
                p.display(),
                size_name(proof),
                size_name(proof)
            );
        }
    }
    Ok(f)
}

/// Random, insecure update parameters for `proof`'s sector size, unless they are there.
pub fn generate_test_params(proof: SealProof) -> Result<bool> {
    let f = files(proof)?;
    generate_into(&f, &size_name(proof), "seal-pru2", false, || {
        with_tree_shape!(proof, Tree => {
            let pp = PublicParams::from_sector_size(proof.sector_size());
            let circuit = <EmptySectorUpdateCompound<Tree> as CompoundProof<EmptySectorUpdate<Tree>, _>>::blank_circuit(&pp);
            let params = groth16::generate_random_parameters::<Bls12, _, _>(
                circuit,
                &mut rand::rngs::OsRng,
            )?;
            Ok((params, None))
        })
    })
}

/// The SNARK of an update from its vanilla partition proofs (bincode, one per partition, in
/// partition order): `partitions × 192` bytes. The reference's prover does not check what it
/// made; [`verify`] does, and the callers run it.
pub fn prove(
    proof: SealProof,
    vanilla: &[Vec<u8>],
    comm_r_old: [u8; 32],
    comm_r_new: [u8; 32],
    comm_d_new: [u8; 32],
) -> Result<Vec<u8>> {
    let shape = UpdateShape::of(proof)?;
    ensure!(
        vanilla.len() == shape.partitions,
        "{} vanilla partition proofs, expected {} for a {} sector",
        vanilla.len(),
        shape.partitions,
        size_name(proof)
    );
    check_present(proof, true)?;
    let config = porep_config(proof)?;
    with_tree_shape!(proof, Tree => {
        let proofs = vanilla
            .iter()
            .enumerate()
            .map(|(k, bytes)| {
                bincode::deserialize::<PartitionProof<Tree>>(bytes)
                    .with_context(|| format!("vanilla proof of partition {k} is not a partition proof of this sector size"))
            })
            .collect::<Result<Vec<_>>>()?;
        let out = generate_empty_sector_update_proof_with_vanilla::<Tree>(
            &config, proofs, comm_r_old, comm_r_new, comm_d_new,
        )?;
        Ok(out.0)
    })
}

/// Whether `snark` proves the update `comm_r_old → comm_r_new` with data `comm_d_new`.
pub fn verify(
    proof: SealProof,
    snark: &[u8],
    comm_r_old: [u8; 32],
    comm_r_new: [u8; 32],
    comm_d_new: [u8; 32],
) -> Result<bool> {
    let shape = UpdateShape::of(proof)?;
    ensure!(
        snark.len() == shape.partitions * PROOF_BYTES,
        "update proof has {} bytes, expected {} ({} partitions of {PROOF_BYTES})",
        snark.len(),
        shape.partitions * PROOF_BYTES,
        shape.partitions
    );
    check_present(proof, false)?;
    let config = porep_config(proof)?;
    with_tree_shape!(proof, Tree => {
        verify_empty_sector_update_proof::<Tree>(&config, snark, comm_r_old, comm_r_new, comm_d_new)
    })
}

/// Whether the document's `update.proof` proves its update: the sector's `comm_r` (the
/// sector key) to `update.comm_r` with the data `update.comm_d`. Errors are for documents
/// that cannot be checked at all (fields or parameters missing).
pub fn verify_doc(doc: &SectorDoc) -> Result<Verdict> {
    let proof = doc.seal_proof()?;
    let u = doc.update_doc()?;
    let comm_r_old = doc.hex32_after("comm_r", "the sector is not sealed")?;
    let hint = "it is not a proven update (run seal-pru2)";
    let (comm_r_new, comm_d_new) = (
        u.hex32_after("comm_r", hint)?,
        u.hex32_after("comm_d", hint)?,
    );
    let snark = hex::decode(
        u.get("proof")
            .and_then(|v| v.as_str())
            .context("the update has no \"proof\": run seal-pru2 first")?,
    )
    .context("field \"update.proof\"")?;
    check_present(proof, false)?;
    // A malformed proof (wrong length, bytes off the curve) is an invalid proof, not a
    // document that cannot be checked.
    Ok(
        match verify(proof, &snark, comm_r_old, comm_r_new, comm_d_new) {
            Ok(valid) => Verdict {
                valid,
                reason: None,
            },
            Err(e) => Verdict {
                valid: false,
                reason: Some(format!("{e:#}")),
            },
        },
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    /// docs/snap-deals.md#groth16-parameter-files: the cache ids of the five production sizes.
    #[test]
    fn cache_ids() {
        for (id, tail) in [
            (
                5,
                "8-0-0-fb9e095bebdd77511c0269b967b4d87ba8b8a525edaa0e165de23ba454510194",
            ),
            (
                6,
                "8-0-0-92180959e1918d26350b8e6cfe217bbdd0a2d8de51ebec269078b364b715ad63",
            ),
            (
                7,
                "8-0-0-61fa69f38b9cc771ba27b670124714b4ea77fbeae05e377fb859c4a43b73a30c",
            ),
            (
                8,
                "8-8-0-3b7f44a9362e3985369454947bc94022e118211e49fd672d52bec1cbfd599d18",
            ),
            (
                9,
                "8-8-2-102e1444a7e9a97ebf1e3d6855dcc77e66c011ea66f936d9b2c508f87f2f83a7",
            ),
        ] {
            let f = files(SealProof::from_id(id).unwrap()).unwrap();
            assert_eq!(
                f.cache_id,
                format!("empty-sector-update-merkletree-poseidon_hasher-{tail}")
            );
        }
    }
}
