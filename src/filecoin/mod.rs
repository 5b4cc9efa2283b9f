//! Filecoin protocol facts the chain adapter needs, in our own code: addresses (text, bytes
//! and the CBOR entropy the miner actor draws seal randomness with) and the randomness draw
//! itself. Sources: docs/chain.md (ref-fvm `shared/src/address`, builtin-actors
//! `runtime/src/runtime/randomness.rs`).

pub mod address;
pub mod randomness;
