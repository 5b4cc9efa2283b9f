//! The update phases on sector documents: ReplicaUpdate (`seal-ru`), ProveReplicaUpdate1
//! (`seal-pru1`) and 2 (`seal-pru2`). Each checks what it reads against the document, holds the
//! sector lock and adds its outputs to the document's `update` object.

use std::path::PathBuf;

use anyhow::{ensure, Context, Result};

use super::encode::{encode_into, Encoded};
use super::key::read_p_aux;
use super::params::UpdateShape;
use super::vanilla::{prove_all, Public, UpdateTrees};
use super::UpdateFiles;
use crate::commit::openings::SectorTrees;
use crate::hash::poseidon::hash2;
use crate::merkle::zero::zero_root;
use crate::piece::cid::{commitment_to_cid, CommitmentKind};
use crate::sector::document::SectorDoc;
use crate::sector::lock::SectorLock;

/// File name of the vanilla proofs in the update cache: bincode of the list of partition
/// proofs (each itself bincode), as the reference's API hands Lotus `Vec<Vec<u8>>`.
pub const VANILLA_FILE: &str = "sealkit-update-vanilla-proofs.bin";

/// The old and new commitments of an update document.
struct Commitments {
    comm_r_old: [u8; 32],
    comm_d_new: [u8; 32],
}

fn commitments(doc: &SectorDoc, update: &SectorDoc) -> Result<Commitments> {
    let proof = doc.seal_proof()?;
    let comm_d = doc.hex32_after("comm_d", "run seal-ap and seal-pc1 first")?;
    ensure!(
        comm_d == zero_root(proof.sector_size()),
        "sector {} is not a committed-capacity sector (its comm_d is not the empty sector's): \
         snap deals update CC sectors only",
        doc.sector().map_or("?".into(), |n| n.to_string())
    );
    Ok(Commitments {
        comm_r_old: doc.hex32_after("comm_r", "the sector must be sealed (seal-pc2) first")?,
        comm_d_new: update.hex32_after(
            "comm_d",
            "add the deal pieces to the update first (seal-ap --update … --fill)",
        )?,
    })
}

/// ReplicaUpdate: encodes the update's data into the sector key and adds `comm_r_last`,
/// `comm_r` and `sealed_cid` to the document's `update`.
pub fn replica_update(doc: &mut SectorDoc, verbose: bool) -> Result<Encoded> {
    let f = UpdateFiles::of(doc)?;
    let _lock = SectorLock::acquire(&f.key_cache)?;
    let mut u = doc.update_doc()?;
    let c = commitments(doc, &u)?;
    let out = encode_into(
        &f,
        &c.comm_d_new,
        &c.comm_r_old,
        verbose,
        &crate::pc2::select_builder(false, verbose)?,
    )?;
    u.set_hex("comm_r_last", &out.comm_r_last_new);
    u.set_hex("comm_r", &out.comm_r_new);
    u.set(
        "sealed_cid",
        commitment_to_cid(CommitmentKind::Sealed, &out.comm_r_new),
    );
    doc.set_update_doc(&u);
    Ok(out)
}

/// ProveReplicaUpdate1: every partition's vanilla proof, checked, written to the update
/// cache; adds `vanilla_proofs` (its path) to the document's `update`.
pub fn prove_replica_update1(doc: &mut SectorDoc) -> Result<PathBuf> {
    let f = UpdateFiles::of(doc)?;
    let _lock = SectorLock::acquire(&f.key_cache)?;
    let mut u = doc.update_doc()?;
    let c = commitments(doc, &u)?;
    let comm_r_new = u.hex32_after("comm_r", "run seal-ru first")?;
    let shape = UpdateShape::of(f.proof)?;
    let (comm_c, comm_r_last_new) = read_p_aux(&f.cache)
        .with_context(|| format!("update cache {} (run seal-ru first)", f.cache.display()))?;
    ensure!(
        hash2(&comm_c, &comm_r_last_new) == comm_r_new,
        "the update cache {} does not belong to the update's comm_r (re-run seal-ru)",
        f.cache.display()
    );
    let trees = UpdateTrees {
        old: SectorTrees::open(f.proof, &f.key_cache, &f.key, false)
            .with_context(|| format!("sector key cache {}", f.key_cache.display()))?,
        new: SectorTrees::open(f.proof, &f.cache, &f.replica, false)
            .and_then(|t| t.with_tree_d(&f.cache))
            .with_context(|| format!("update cache {}", f.cache.display()))?,
    };
    let public = Public {
        comm_r_old: c.comm_r_old,
        comm_d_new: c.comm_d_new,
        comm_r_new,
    };
    let proofs = prove_all(&shape, &trees, &comm_c, &public)?;
    let path = f.cache.join(VANILLA_FILE);
    crate::fsutil::write_atomic(&path, &bincode_list(&proofs))?;
    u.set("vanilla_proofs", path.display().to_string());
    doc.set_update_doc(&u);
    Ok(path)
}

/// ProveReplicaUpdate2: the SNARK from the vanilla proofs, verified; adds `proof` (hex) to
/// the document's `update`.
pub fn prove_replica_update2(doc: &mut SectorDoc) -> Result<Vec<u8>> {
    let proof = doc.seal_proof()?;
    let mut u = doc.update_doc()?;
    let c = commitments(doc, &u)?;
    let comm_r_new = u.hex32_after("comm_r", "run seal-ru first")?;
    let path = PathBuf::from(
        u.get("vanilla_proofs")
            .and_then(|v| v.as_str())
            .context("the update has no \"vanilla_proofs\": run seal-pru1 first")?,
    );
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {}", path.display()))?;
    let vanilla = read_bincode_list(&bytes)
        .with_context(|| format!("{} is not a list of partition proofs", path.display()))?;
    let snark =
        crate::snark::update::prove(proof, &vanilla, c.comm_r_old, comm_r_new, c.comm_d_new)?;
    ensure!(
        crate::snark::update::verify(proof, &snark, c.comm_r_old, comm_r_new, c.comm_d_new)?,
        "the update proof just made does not verify (wrong parameters?)"
    );
    u.set("proof", crate::hex::encode(&snark));
    doc.set_update_doc(&u);
    Ok(snark)
}

/// RegenSectorKey (Lotus's GSK): writes the sector key (`paths.sealed`) and its tree_r_last,
/// p_aux and t_aux (in `paths.cache`) again from the update replica and the update's data,
/// kept only if they give the sector's comm_r.
pub fn regenerate_sector_key(doc: &SectorDoc, verbose: bool) -> Result<()> {
    let f = UpdateFiles::of(doc)?;
    let _lock = SectorLock::acquire(&f.key_cache)?;
    let u = doc.update_doc()?;
    let c = commitments(doc, &u)?;
    super::decode::remove_data(
        &f,
        &c.comm_d_new,
        &c.comm_r_old,
        verbose,
        &crate::pc2::select_builder(false, verbose)?,
    )
}

/// bincode 1 of a `Vec<Vec<u8>>`: a u64 count, then each as a u64 length and its bytes.
pub fn bincode_list(items: &[Vec<u8>]) -> Vec<u8> {
    let mut out = (items.len() as u64).to_le_bytes().to_vec();
    for i in items {
        out.extend_from_slice(&(i.len() as u64).to_le_bytes());
        out.extend_from_slice(i);
    }
    out
}

/// Reads [`bincode_list`]'s form back, refusing anything that does not end where it should.
pub fn read_bincode_list(mut b: &[u8]) -> Result<Vec<Vec<u8>>> {
    fn take<'a>(b: &mut &'a [u8], n: usize) -> Result<&'a [u8]> {
        ensure!(b.len() >= n, "truncated");
        let (h, t) = b.split_at(n);
        *b = t;
        Ok(h)
    }
    let count = u64::from_le_bytes(take(&mut b, 8)?.try_into().expect("8"));
    ensure!(count <= 64, "{count} partitions");
    let mut out = Vec::with_capacity(count as usize);
    for _ in 0..count {
        let n = u64::from_le_bytes(take(&mut b, 8)?.try_into().expect("8"));
        ensure!(n <= b.len() as u64, "truncated");
        out.push(take(&mut b, n as usize)?.to_vec());
    }
    ensure!(b.is_empty(), "{} bytes after the last proof", b.len());
    Ok(out)
}
