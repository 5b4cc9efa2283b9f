//! Hash functions as the Filecoin proofs use them.
//!
//! Only what sealing needs lives here: SHA-256 over 64-byte node pairs with the
//! result truncated to 254 bits (`sha256`). Poseidon arrives with PC2.

#[cfg(target_arch = "x86_64")]
mod field_ifma;
pub mod poseidon;
#[cfg(target_arch = "x86_64")]
mod poseidon_batch;
pub mod sha256;
pub mod sha256_engine;
pub mod sha256_lanes;
pub mod sha256_soft;
#[cfg(target_arch = "x86_64")]
pub mod sha256_x16;
#[cfg(target_arch = "x86_64")]
pub mod sha256_x8;
