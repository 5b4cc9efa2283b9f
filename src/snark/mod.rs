//! Commit2 and verification: the Groth16 SNARK over the reference's PoRep circuit.
//!
//! Unlike the earlier phases, nothing here is our own proving code, by design: the circuit is
//! `storage-proofs-porep`'s `StackedCircuit`, the prover bellperson's, driven through
//! filecoin-proofs' `seal_commit_phase2` (which also aggregates NI-PoRep proofs and verifies
//! what it made) and `verify_seal`. What this module adds is what operators need around
//! them: Commit1 files from any source, parameter checks with actionable errors, insecure
//! test parameters generated safely, and sector documents in and out.

pub mod aggregate;
pub mod c1_check;
pub mod config;
pub mod params;
pub mod prove;
pub mod update;
pub mod verify;

/// Runs `$body` with the type alias `$tree` bound to the reference's Merkle tree type for
/// `$proof`'s tree shape (the reference's API is generic over it).
#[macro_export]
macro_rules! with_tree_shape {
    ($proof:expr, $tree:ident => $body:expr) => {{
        use filecoin_proofs::constants::{
            SectorShapeBase, SectorShapeSub2, SectorShapeSub8, SectorShapeTop2,
        };
        let s = $proof.tree_shape();
        match (s.base, s.sub, s.top) {
            (8, 0, 0) => {
                type $tree = SectorShapeBase;
                $body
            }
            (8, 2, 0) => {
                type $tree = SectorShapeSub2;
                $body
            }
            (8, 8, 0) => {
                type $tree = SectorShapeSub8;
                $body
            }
            (8, 8, 2) => {
                type $tree = SectorShapeTop2;
                $body
            }
            _ => anyhow::bail!("no tree type for shape {s}"),
        }
    }};
}
