//! The vanilla proof of one challenge (docs/sdr-porep.md#vanilla-proof) and its check.
//!
//! A challenge `c` opens: data node `c` in tree_d; the label columns of `c` and of its 14
//! parents in tree_c; replica node `c` in tree_r_last. The labeling proofs and the encoding
//! proof carry no extra data: they are the parent labels already in the parent columns (6
//! base parents from layer ℓ; for ℓ ≥ 2 also 8 expander parents from layer ℓ−1), cycled to
//! 37, exactly as the reference rebuilds them from its synthetic-proof file.

use anyhow::{ensure, Result};

use super::openings::SectorTrees;
use crate::hash::poseidon::{self, hash_children};
use crate::merkle::path::{sha_children, MerklePath};
use crate::sdr::graph::SdrGraph;
use crate::sdr::label::{header_state, label_layer1, label_layer_n};
use crate::sdr::{BASE_DEGREE, DEGREE};

/// Parent labels hashed into every label (docs/sdr-porep.md#labels).
pub const TOTAL_PARENTS: usize = 37;

/// A node's labels in every layer and their tree_c path.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ColumnOpening {
    pub node: u64,
    pub rows: Vec<[u8; 32]>,
    pub path: MerklePath,
}

/// Everything one challenge opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChallengeProof {
    pub challenge: u64,
    pub tree_d: MerklePath,
    pub column: ColumnOpening,
    /// 6 base parents, then 8 expander parents, in the graph's order.
    pub parents: Vec<ColumnOpening>,
    pub tree_r: MerklePath,
}

impl ChallengeProof {
    /// The 37 parent labels of the challenged node in `layer` (1-based).
    pub fn labeling_parents(&self, layer: usize) -> Vec<[u8; 32]> {
        let used = if layer == 1 { BASE_DEGREE } else { DEGREE };
        let labels: Vec<[u8; 32]> = self.parents[..used]
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let from = if i < BASE_DEGREE { layer } else { layer - 1 };
                p.rows[from - 1]
            })
            .collect();
        labels.iter().cycle().take(TOTAL_PARENTS).copied().collect()
    }
}

fn column_opening(trees: &SectorTrees, node: u64) -> Result<ColumnOpening> {
    Ok(ColumnOpening {
        node,
        rows: trees.column(node)?,
        path: trees.tree_c_path(node)?,
    })
}

/// Opens challenge `c` of a sector whose layers, tree_d and tree_c are still there.
pub fn prove(trees: &SectorTrees, graph: &SdrGraph, c: u64) -> Result<ChallengeProof> {
    let parents = graph
        .parents(c as u32)
        .iter()
        .map(|&p| column_opening(trees, p as u64))
        .collect::<Result<Vec<_>>>()?;
    Ok(ChallengeProof {
        challenge: c,
        tree_d: trees.tree_d_path(c)?,
        column: column_opening(trees, c)?,
        parents,
        tree_r: trees.tree_r_path(c)?,
    })
}

/// The public values a challenge proof is checked against.
pub struct Expected<'a> {
    pub graph: &'a SdrGraph,
    pub replica_id: [u8; 32],
    pub comm_d: [u8; 32],
    pub comm_c: [u8; 32],
    pub comm_r_last: [u8; 32],
}

/// Checks one challenge proof as the reference's vanilla verifier does: every path leads to
/// its commitment from the right position, columns hash to their tree_c leaves, the labels
/// recompute from the parents, and replica = label + data in the field.
pub fn check(p: &ChallengeProof, e: &Expected<'_>) -> Result<()> {
    let c = p.challenge;
    ensure!(c > 0 && c < e.graph.nodes, "challenge {c} is out of range");
    p.tree_d.check("tree_d path", c, sha_children)?;
    ensure!(
        p.tree_d.root == e.comm_d,
        "tree_d path of node {c}: root is not comm_d"
    );
    p.tree_r.check("tree_r_last path", c, hash_children)?;
    ensure!(
        p.tree_r.root == e.comm_r_last,
        "tree_r_last path of node {c}: root is not comm_r_last"
    );
    let want_parents = e.graph.parents(c as u32);
    ensure!(
        p.parents.len() == DEGREE,
        "challenge {c}: {} parent columns",
        p.parents.len()
    );
    for (col, want) in std::iter::once((&p.column, c))
        .chain(p.parents.iter().zip(want_parents.iter().map(|&x| x as u64)))
    {
        ensure!(
            col.node == want,
            "challenge {c}: column of node {} instead of {want}",
            col.node
        );
        col.path.check("tree_c path", want, hash_children)?;
        ensure!(
            col.path.root == e.comm_c,
            "tree_c path of node {want}: root is not comm_c"
        );
        let fr: Vec<_> = col.rows.iter().map(|r| poseidon::fr(r)).collect();
        ensure!(
            poseidon::hash_column(&fr) == col.path.leaf,
            "column of node {want} does not hash to its tree_c leaf"
        );
    }
    for layer in 1..=p.column.rows.len() {
        let parents = p.labeling_parents(layer).concat();
        let state = header_state(&e.replica_id, layer as u32, c);
        let label = if layer == 1 {
            label_layer1(
                state,
                parents[..BASE_DEGREE * 32].try_into().expect("6 labels"),
            )
        } else {
            label_layer_n(state, parents[..DEGREE * 32].try_into().expect("14 labels"))
        };
        ensure!(
            label == p.column.rows[layer - 1],
            "label of node {c} in layer {layer} does not follow from its parents"
        );
    }
    let key = p.column.rows.last().expect("at least one layer");
    ensure!(
        poseidon::add(key, &p.tree_d.leaf) == p.tree_r.leaf,
        "replica node {c} is not its data encoded with the last layer's label"
    );
    Ok(())
}
