//! Merkle trees over 32-byte nodes.
//!
//! `binary`: SHA-256 binary trees computed in place (CommP, CommD).
//! `stack`: the running stack of aligned subtree roots that turns a stream of subtrees
//! (piece chunks, whole pieces) into one root, padding with known zero subtrees.
//! `zero`: roots of all-zero trees of every size.
//! `path`: inclusion paths (leaf to root) as vanilla proofs carry them.
//! `poseidon_tree`, `tree_d`: the SDR trees in the reference's file layouts.

pub mod binary;
pub mod path;
pub mod poseidon_tree;
pub mod stack;
pub mod tree_d;
pub mod zero;
