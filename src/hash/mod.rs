//! Hash functions as the Filecoin proofs use them.
//!
//! Only what sealing needs lives here: SHA-256 over 64-byte node pairs with the
//! result truncated to 254 bits (`sha256`). Poseidon arrives with PC2.

pub mod poseidon;
pub mod sha256;
pub mod sha256_lanes;
