//! Filecoin protocol facts the chain adapter needs, in our own code: addresses (text, bytes
//! and the CBOR entropy the miner actor draws seal randomness with), the randomness draw,
//! the CBOR that messages and actor parameters are written in, and a message's CID. The
//! varint and base32 encodings they share with commitment CIDs are in `multiformats`.
//! Sources: docs/chain.md (ref-fvm `shared/src/address`, `shared/src/message.rs`,
//! builtin-actors `runtime/src/runtime/randomness.rs`).

pub mod address;
pub mod cbor;
pub mod message;
pub mod miner;
pub mod multiformats;
pub mod randomness;
pub mod token;
