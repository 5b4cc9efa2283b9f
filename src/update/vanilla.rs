//! ProveReplicaUpdate1: the vanilla partition proofs (docs/snap-deals.md#vanilla-partition-proofs)
//! and their bincode form, byte for byte the reference's `PartitionProof` as Lotus carries it.
//!
//! Partition k opens, at each of its challenges c, the old replica (the sector key) in the old
//! tree_r_last, the new data in the new tree_d and the new replica in the new tree_r_last, and
//! carries the tree_d row of apex leaves above its range. Every proof is checked
//! ([`verify_partition`]) before it is written.

use anyhow::{bail, ensure, Context, Result};
use blstrs::Scalar as Fr;

use super::challenges::challenges;
use super::params::UpdateShape;
use super::rho::{commitment, phi, Rhos};
use crate::commit::openings::SectorTrees;
use crate::hash::poseidon::{fr, hash2, hash_children};
use crate::merkle::path::{sha_children, MerklePath};
use crate::sector::proof::TreeShape;

/// The three openings of one challenge.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeProof {
    /// The sector key's node in the old tree_r_last.
    pub r_old: MerklePath,
    /// The new data's node in the new tree_d.
    pub d_new: MerklePath,
    /// The new replica's node in the new tree_r_last.
    pub r_new: MerklePath,
}

/// One partition's proof.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionProof {
    pub comm_c: [u8; 32],
    pub apex_leaves: Vec<[u8; 32]>,
    pub challenges: Vec<ChallengeProof>,
}

/// The trees a proof opens: the sector key's (tree_r_last) and the update's (tree_d and
/// tree_r_last).
pub struct UpdateTrees {
    pub old: SectorTrees,
    pub new: SectorTrees,
}

/// Proves partition `k` of an update whose new replica commits to `comm_r_new`.
pub fn prove_partition(
    shape: &UpdateShape,
    trees: &UpdateTrees,
    comm_c: &[u8; 32],
    comm_r_new: &[u8; 32],
    k: usize,
) -> Result<PartitionProof> {
    ensure!(
        k < shape.partitions,
        "partition {k} of {}",
        shape.partitions
    );
    let a = shape.apex_row() as usize;
    let apex_leaves = trees
        .new
        .tree_d_row(a, k * shape.apex_leaves, shape.apex_leaves)?;
    let r_new = commitment(comm_r_new, "comm_r of the update")?;
    let challenges = challenges(shape, &r_new, k)
        .into_iter()
        .map(|c| {
            Ok(ChallengeProof {
                r_old: trees.old.tree_r_path(c)?,
                d_new: trees.new.tree_d_path(c)?,
                r_new: trees.new.tree_r_path(c)?,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(PartitionProof {
        comm_c: *comm_c,
        apex_leaves,
        challenges,
    })
}

/// The public values an update proof is checked against.
#[derive(Debug, Clone, Copy)]
pub struct Public {
    pub comm_r_old: [u8; 32],
    pub comm_d_new: [u8; 32],
    pub comm_r_new: [u8; 32],
}

/// The reference's checks of one partition proof (`EmptySectorUpdate::verify`), with the
/// apex leaves checked as the nodes the tree_d paths pass through (the reference only tests
/// membership of siblings; a valid proof passes both).
pub fn verify_partition(
    shape: &UpdateShape,
    p: &PartitionProof,
    k: usize,
    public: &Public,
) -> Result<()> {
    ensure!(
        k < shape.partitions,
        "partition {k} of {}",
        shape.partitions
    );
    ensure!(
        p.apex_leaves.len() == shape.apex_leaves,
        "partition {k}: {} apex leaves, expected {}",
        p.apex_leaves.len(),
        shape.apex_leaves
    );
    ensure!(
        p.challenges.len() == shape.challenges,
        "partition {k}: {} challenge proofs, expected {}",
        p.challenges.len(),
        shape.challenges
    );
    let root_r_old = p.challenges[0].r_old.root;
    let root_r_new = p.challenges[0].r_new.root;
    ensure!(
        hash2(&p.comm_c, &root_r_old) == public.comm_r_old,
        "partition {k}: comm_c and the old tree_r_last root do not give comm_r_old"
    );
    ensure!(
        hash2(&p.comm_c, &root_r_new) == public.comm_r_new,
        "partition {k}: comm_c and the new tree_r_last root do not give comm_r_new"
    );
    let phi = phi(&public.comm_d_new, &public.comm_r_old)?;
    let rhos = Rhos::new(&phi, shape);
    let r_new = commitment(&public.comm_r_new, "comm_r_new")?;
    let a = shape.apex_row() as usize;
    for (c, cp) in challenges(shape, &r_new, k).into_iter().zip(&p.challenges) {
        cp.r_old.check("old tree_r_last path", c, hash_children)?;
        cp.d_new.check("new tree_d path", c, sha_children)?;
        cp.r_new.check("new tree_r_last path", c, hash_children)?;
        ensure!(
            cp.r_old.root == root_r_old,
            "challenge {c}: another old root"
        );
        ensure!(
            cp.r_new.root == root_r_new,
            "challenge {c}: another new root"
        );
        ensure!(
            cp.d_new.root == public.comm_d_new,
            "challenge {c}: the tree_d path does not lead to comm_d_new"
        );
        let want: Fr = fr(&cp.r_old.leaf) + fr(&cp.d_new.leaf) * rhos.of_node(c);
        ensure!(
            fr(&cp.r_new.leaf) == want,
            "challenge {c}: the new replica node is not the key plus data times rho"
        );
        // The tree_d node at the apex row above c must be partition k's apex leaf.
        let apex = tree_d_node_at(&cp.d_new, a);
        let index = (c >> a) as usize - k * shape.apex_leaves;
        if p.apex_leaves.get(index) != Some(&apex) {
            bail!("challenge {c}: the tree_d path does not pass through apex leaf {index}");
        }
    }
    Ok(())
}

/// The node a tree_d path passes through at `height` (0: its leaf).
fn tree_d_node_at(p: &MerklePath, height: usize) -> [u8; 32] {
    p.levels[..height].iter().fold(p.leaf, |node, level| {
        sha_children(&level.children_with(&node))
    })
}

/// bincode 1 of a partition proof (docs/snap-deals.md#serialization): little-endian, u64
/// lengths, u32 enum variants, struct fields in declaration order.
pub fn to_bincode(p: &PartitionProof, tree_r: TreeShape) -> Vec<u8> {
    let mut out = Vec::new();
    out.extend_from_slice(&p.comm_c);
    put_u64(&mut out, p.apex_leaves.len() as u64);
    for a in &p.apex_leaves {
        out.extend_from_slice(a);
    }
    put_u64(&mut out, p.challenges.len() as u64);
    for c in &p.challenges {
        put_proof(&mut out, &c.r_old, tree_r);
        put_proof(
            &mut out,
            &c.d_new,
            TreeShape {
                base: 2,
                sub: 0,
                top: 0,
            },
        );
        put_proof(&mut out, &c.r_new, tree_r);
    }
    out
}

fn put_u64(out: &mut Vec<u8>, v: u64) {
    out.extend_from_slice(&v.to_le_bytes());
}

/// A `MerkleProof` enum: Single (root, leaf, path), Sub (base path, sub path, root, leaf) or
/// Top (base, sub, top paths, root, leaf).
fn put_proof(out: &mut Vec<u8>, p: &MerklePath, shape: TreeShape) {
    let upper = usize::from(shape.sub > 0) + usize::from(shape.top > 0);
    let base = p.levels.len() - upper;
    let put_path = |out: &mut Vec<u8>, levels: &[crate::merkle::path::PathLevel]| {
        put_u64(out, levels.len() as u64);
        for l in levels {
            put_u64(out, l.siblings.len() as u64);
            for s in &l.siblings {
                out.extend_from_slice(s);
            }
            put_u64(out, l.index as u64);
        }
    };
    out.extend_from_slice(&(upper as u32).to_le_bytes());
    if upper == 0 {
        out.extend_from_slice(&p.root);
        out.extend_from_slice(&p.leaf);
        put_path(out, &p.levels);
    } else {
        put_path(out, &p.levels[..base]);
        for l in base..p.levels.len() {
            put_path(out, &p.levels[l..l + 1]);
        }
        out.extend_from_slice(&p.root);
        out.extend_from_slice(&p.leaf);
    }
}

/// The proofs of every partition, checked, as the bincode strings Lotus carries.
pub fn prove_all(
    shape: &UpdateShape,
    trees: &UpdateTrees,
    comm_c: &[u8; 32],
    public: &Public,
) -> Result<Vec<Vec<u8>>> {
    let tree_r = trees.new.proof().tree_shape();
    (0..shape.partitions)
        .map(|k| {
            let p = prove_partition(shape, trees, comm_c, &public.comm_r_new, k)?;
            verify_partition(shape, &p, k, public)
                .with_context(|| format!("the proof of partition {k} does not verify"))?;
            Ok(to_bincode(&p, tree_r))
        })
        .collect()
}
